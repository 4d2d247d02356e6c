"""What uvicorn does not bound on its own: how long a request head may take, and how many
connections one worker holds open.

uvicorn's ``timeout_keep_alive`` runs only between two requests of one connection, after an
answer: a client that connects and sends nothing, or sends a request head a byte at a time (a
slowloris), is kept forever, and each one holds a file descriptor. ``limit_concurrency`` answers
503 to a new *request* when too many connections are open, but still accepts and keeps the
connections themselves. :class:`GuardedHttpToolsProtocol` (uvicorn's httptools protocol, which
``s3drop serve`` runs) adds:

- a deadline for each request head (``S3DROP_HEADER_TIMEOUT``): from the moment the connection
  opens, or the previous answer ends, to the end of the head's headers. Bytes arriving slowly do
  not extend it. When it passes, the connection is closed.
- a cap on the size of a request head (:data:`MAX_HEAD_BYTES`): llhttp, httptools' parser, has
  none, and uvicorn's ``h11_max_incomplete_event_size`` applies to h11 only; past it the answer is
  ``431`` and the connection is closed.
- a cap on open connections per worker (``S3DROP_MAX_CONNECTIONS``): one over it is answered
  ``503`` and closed at once, so a flood of idle connections cannot use up the descriptors.

A request's body is bounded by :class:`~s3drop.web._timeouts.BodyTimeoutMiddleware` (any route:
408 when the body stops arriving for ``S3DROP_UPLOAD_IDLE_TIMEOUT`` seconds, plus one) and, first,
by the local backend's storage endpoint itself (400 ``RequestTimeout`` in S3's XML, its temp file
removed).
"""

from __future__ import annotations

import asyncio
import functools
import json

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from .._config import Settings
from .._errors import json_error

#: Bytes of one request head (request line and headers). Browsers send a few KiB (cookies
#: included); nginx takes 32 KiB by default, Node 16 KiB.
MAX_HEAD_BYTES = 64 * 1024


def _refusal(status: bytes, code: str, message: str, *extra: bytes) -> bytes:
    """A whole HTTP answer, written before any request was parsed: JSON, then close."""
    body = json.dumps(json_error(code, message)).encode()
    head = [
        b"HTTP/1.1 " + status,
        b"Content-Type: application/json",
        b"Connection: close",
        *extra,
        b"Content-Length: %d" % len(body),
    ]
    return b"\r\n".join(head) + b"\r\n\r\n" + body


_TOO_LARGE = _refusal(
    b"431 Request Header Fields Too Large",
    "request_head_too_large",
    f"the request line and headers are longer than {MAX_HEAD_BYTES // 1024} KiB",
)
_BUSY = _refusal(
    b"503 Service Unavailable",
    "too_many_connections",
    "too many open connections; try again",
    b"Retry-After: 1",
)


@functools.cache
def _limits() -> tuple[float, int]:
    """``(header_timeout, max_connections)`` from the settings, read once per worker."""
    settings = Settings()
    return settings.header_timeout, settings.max_connections


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a request-head deadline and a connection cap."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.header_timeout, self.max_connections = _limits()
        self._head_deadline: asyncio.TimerHandle | None = None
        self._head_bytes = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            transport.write(_BUSY)
            transport.close()
            return
        self._arm_head_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_deadline()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._head_deadline is None:  # a body, or a head already whole
            super().data_received(data)
            return
        self._head_bytes += len(data)
        super().data_received(data)
        if (
            self._head_deadline is not None  # the head is still not complete
            and self._head_bytes > MAX_HEAD_BYTES
            and not self.transport.is_closing()
        ):
            self.transport.write(_TOO_LARGE)
            self.transport.close()

    def on_headers_complete(self) -> None:
        self._cancel_head_deadline()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        pipelined = bool(self.pipeline)  # its head is in already
        # Answered before the body ended (a refused upload past what the app drains): the
        # rest of the body is no next request's head; the connection cannot be reused.
        unread = self.cycle is not None and self.cycle.more_body
        super().on_response_complete()
        if self.transport.is_closing():
            return
        if unread:
            self.transport.close()
        elif not pipelined:
            self._arm_head_deadline()

    def _arm_head_deadline(self) -> None:
        self._cancel_head_deadline()
        self._head_bytes = 0
        self._head_deadline = self.loop.call_later(self.header_timeout, self._head_too_slow)

    def _cancel_head_deadline(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _head_too_slow(self) -> None:
        self._head_deadline = None
        if not self.transport.is_closing():
            self.transport.close()
