"""SHA-256 in the background: hashlib releases the GIL on large buffers, and so do Pillow's
decoders, so a file's hash costs no time when it is taken while the file decodes::

    uploaded = Digest(data)             # starts hashing in a thread
    processed = decode(data)            # meanwhile
    if uploaded.hexdigest() != expected: ...

Small buffers are hashed at once (a thread would cost more than the hash).
"""

from __future__ import annotations

import hashlib
import threading

#: Below this many bytes a buffer is hashed at once, in the caller's thread.
BACKGROUND_BYTES = 1024 * 1024


class Digest:
    """The SHA-256 of ``data``, taken in a thread from now on."""

    def __init__(self, data: bytes) -> None:
        self.data: bytes | None = data
        self._hex = ""
        self._thread: threading.Thread | None = None
        if len(data) < BACKGROUND_BYTES:
            self._run()
        else:
            self._thread = threading.Thread(target=self._run, name="s3drop-sha256", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        assert self.data is not None
        self._hex = hashlib.sha256(self.data).hexdigest()

    def hexdigest(self) -> str:
        """The hash (waits for the thread)."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.data = None  # the buffer is the caller's again to drop
        return self._hex

    def of(self, data: bytes) -> str:
        """The SHA-256 of ``data``: this digest's when it is the same buffer, else a new one."""
        same = data is self.data
        digest = self.hexdigest()
        return digest if same else hashlib.sha256(data).hexdigest()
