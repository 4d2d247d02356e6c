"""What the local backend's receivers share: the bucket and region its uploads are signed for, the
one loop that streams a body to disk (:func:`stream_into`), the disk's failures in S3's words
(:func:`disk_errors`) and reading what is left of a refused body (:func:`drain`).

The POST receiver (:mod:`._post`, a multipart parser) and the PUT receiver (:mod:`._put`, the raw
body) are both a :class:`Sink`: they take chunks on the event loop and write what they hold in a
thread, so network and disk overlap instead of taking turns.
"""

from __future__ import annotations

import contextlib
import errno
from collections.abc import AsyncIterator, Iterator
from typing import Protocol

import anyio
import anyio.to_thread

from ..._errors import InsufficientStorage, S3Error

#: The bucket and region the local backend's forms and URLs are signed for.
BUCKET = "local"
REGION = "local"
#: Bytes of a body held in memory before they are written out (in a thread).
FLUSH_BYTES = 1024 * 1024
#: After a refusal, read and discard at most this much more of the body, so the client gets to see
#: the answer rather than a reset connection; past it the connection is dropped.
_DRAIN_LIMIT = 16 * 1024 * 1024


async def drain(
    body: AsyncIterator[bytes], limit: int = _DRAIN_LIMIT, *, idle_timeout: float = 5.0
) -> None:
    """Read and drop what is left of a refused body, up to ``limit`` bytes, giving up when
    nothing arrives for ``idle_timeout`` seconds."""
    seen = 0
    chunks = aiter(body)
    with contextlib.suppress(Exception):
        while seen <= limit:
            with anyio.fail_after(idle_timeout):
                seen += len(await anext(chunks))


class Sink(Protocol):
    """Where :func:`stream_into` sends a body."""

    @property
    def done(self) -> bool:
        """True once the sink wants no more of the body (it ended, or it was refused)."""

    @property
    def wants_flush(self) -> bool:
        """True when what the sink holds should be written now."""

    def feed(self, chunk: bytes) -> None:
        """Take the next chunk (on the event loop: no disk)."""

    def flush(self) -> None:
        """Write what the sink holds (in a thread, never on the event loop)."""


async def stream_into(sink: Sink, body: AsyncIterator[bytes], *, idle_timeout: float) -> None:
    """Feed ``body`` to ``sink`` until it is done or the body ends, flushing it in a thread as it
    asks; cut the body (400 ``RequestTimeout``, as S3) when nothing arrives for ``idle_timeout``
    seconds."""
    chunks = aiter(body)
    while True:
        try:
            with anyio.fail_after(idle_timeout):
                chunk = await anext(chunks)
        except StopAsyncIteration:
            return
        except TimeoutError:
            raise S3Error(
                "Your socket connection to the server was not read from or written to "
                f"within the timeout period ({idle_timeout:g} s).",
                code="RequestTimeout",
                status=400,
            ) from None
        sink.feed(chunk)
        if sink.done:
            return
        if sink.wants_flush:
            await anyio.to_thread.run_sync(sink.flush)


@contextlib.contextmanager
def disk_errors() -> Iterator[None]:
    """The disk's failures in S3's words: a full disk or a spent quota 507
    ``InsufficientStorage``, any other 500 ``InternalError``."""
    try:
        yield
    except InsufficientStorage as exc:  # from the store's own writes (its metadata, the rename)
        raise S3Error(exc.message, code="InsufficientStorage", status=507) from exc
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise S3Error(
                f"no space left to store the upload: {exc.strerror}",
                code="InsufficientStorage",
                status=507,
            ) from exc
        raise S3Error(
            f"We encountered an internal error storing the upload ({exc.strerror}). "
            "Please try again.",
            code="InternalError",
            status=500,
        ) from exc
