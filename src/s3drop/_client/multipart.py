"""What the client posts to storage with a signed form, as httpx's own multipart encoder builds it:
every signed field in order, then the file last as ``file`` (S3 takes no field after the file),
streamed from disk in httpx's chunks (never read whole) with a ``Content-Length`` (S3's POST takes no
chunked body); the file's progress, reported by a reader around it; and the file's SHA-256, which
the server checks the stored bytes against.

httpx measures the file (``seek``/``tell``) to send a ``Content-Length`` and seeks it back to 0
each time it renders the body, so a retried request re-sends the same ``data``/``files`` from the
first byte, and :class:`ProgressReader` counts again from 0.

The file's name in its part header is escaped as httpx does: ``"`` CR LF as ``%22 %0D %0A`` (as
Chromium does), the other C0 controls as ``%XX`` and a backslash doubled (Chromium sends both as
they are), UTF-8 otherwise. It is inert: storage stores under the signed ``key`` (no
``${filename}``), the local backend reads only a part's ``name``, and the name s3drop keeps is the
one the server signed.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

#: ``progress(bytes_sent, total_bytes)``, called from the uploading thread as the body streams;
#: starts again from 0 when a failed attempt is retried.
Progress = Callable[[int, int], None]


class ProgressReader:
    """A binary file as httpx's encoder reads it, reporting ``progress(sent, total)`` as it goes.

    httpx asks for the next chunk only once it wrote the previous one to the connection, so the
    bytes read before a ``read`` are the bytes sent: that is what each ``read`` reports (0 first,
    once per attempt), and the end of the file reports them all. A ``seek`` (httpx's rewind before
    each attempt) moves the count with the file.
    """

    def __init__(self, file: BinaryIO, progress: Progress | None = None) -> None:
        self._file = file
        self._progress = progress
        self.total = os.fstat(file.fileno()).st_size
        self._sent = file.tell()
        self._reported: int | None = None

    def read(self, size: int = -1) -> bytes:
        self._report()
        chunk = self._file.read(size)
        self._sent += len(chunk)
        if not chunk:
            self._report()
        return chunk

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        self._sent = self._file.seek(offset, whence)
        self._reported = None
        return self._sent

    def tell(self) -> int:
        return self._sent

    def _report(self) -> None:
        if self._progress is not None and self._reported != self._sent:
            self._reported = self._sent
            self._progress(self._sent, self.total)


def file_sha256(path: str | Path) -> str:
    """The SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as file:
        while chunk := file.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()
