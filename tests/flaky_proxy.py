"""A loopback HTTP/1.1 proxy that misbehaves on purpose, a bounded number of times.

It sits in front of a live s3drop server. Each request is matched by method and path against a
queue of faults; the first matching fault is used up:

- ``"reset"``: forward the request head and the first :data:`RESET_AFTER` bytes of its body to the
  server, then reset both connections (``SO_LINGER`` 0): a connection dropped mid-upload, as the
  client and the server both see it;
- ``"503"``: answer 503 without asking the server;
- ``"429:<seconds>"``: answer 429 with ``Retry-After: <seconds>``.

Anything else is forwarded, one request per connection (``Connection: close``), so every request
is seen. Every request is recorded as ``(method, path)``. Loopback only; every socket has a timeout.
"""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import threading
from collections.abc import Iterator
from urllib.parse import urlsplit

RESET_AFTER = 64 * 1024
_TIMEOUT = 30.0


class FlakyProxy:
    def __init__(self, upstream: str, faults: dict[tuple[str, str], list[str]] | None = None):
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.faults = {key: list(value) for key, value in (faults or {}).items()}
        self.requests: list[tuple[str, str]] = []
        self.faults_done: list[tuple[str, str, str]] = []
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._accepter = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> FlakyProxy:
        self._accepter.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._accepter.join(timeout=5)
        self._listener.close()
        for thread in self._threads:
            thread.join(timeout=5)

    def count(self, method: str, path: str) -> int:
        with self._lock:
            return self.requests.count((method, path))

    # --- serving ------------------------------------------------------------------------------

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(_TIMEOUT)
        with contextlib.closing(conn):
            head, rest = _read_head(conn)
            if head is None:
                return
            request_line, _, header_block = head.partition(b"\r\n")
            method, target, _version = request_line.decode("latin-1").split(" ", 2)
            path = target.split("?", 1)[0]
            with self._lock:
                self.requests.append((method, path))
                queue = self.faults.get((method, path), [])
                fault = queue.pop(0) if queue else None
                if fault:
                    self.faults_done.append((method, path, fault))
            length = _content_length(header_block)
            if fault == "reset":
                self._reset(conn, head, rest)
            elif fault is not None:
                _drain(conn, rest, length)
                status, _, seconds = fault.partition(":")
                _answer(conn, int(status), seconds or None)
            else:
                self._forward(conn, request_line, header_block, rest)

    def _forward(
        self, conn: socket.socket, request_line: bytes, header_block: bytes, rest: bytes
    ) -> None:
        headers = [
            line
            for line in header_block.split(b"\r\n")
            if line and not line.lower().startswith(b"connection:")
        ]
        head = b"\r\n".join([request_line, *headers, b"Connection: close", b"", b""])
        with socket.create_connection(self.upstream, timeout=_TIMEOUT) as upstream:
            upstream.sendall(head + rest)
            pump = threading.Thread(target=_pipe, args=(conn, upstream), daemon=True)
            pump.start()
            _pipe(upstream, conn)
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            pump.join(timeout=_TIMEOUT)

    def _reset(self, conn: socket.socket, head: bytes, rest: bytes) -> None:
        """Forward the head and part of the body, then drop both connections hard."""
        with socket.create_connection(self.upstream, timeout=_TIMEOUT) as upstream:
            body = rest
            while len(body) < RESET_AFTER:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                body += chunk
            upstream.sendall(head + body[:RESET_AFTER])
            for sock in (upstream, conn):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def _read_head(conn: socket.socket) -> tuple[bytes | None, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        try:
            chunk = conn.recv(65536)
        except OSError:
            return None, b""
        if not chunk or len(data) > 1 << 20:
            return None, b""
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def _content_length(header_block: bytes) -> int:
    for line in header_block.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value.strip())
    return 0


def _drain(conn: socket.socket, rest: bytes, length: int) -> None:
    got = len(rest)
    while got < length:
        chunk = conn.recv(65536)
        if not chunk:
            return
        got += len(chunk)


def _answer(conn: socket.socket, status: int, retry_after: str | None) -> None:
    body = json.dumps({"error": {"code": "injected", "message": f"injected {status}"}}).encode()
    lines = [
        f"HTTP/1.1 {status} Injected",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        "Connection: close",
    ]
    if retry_after is not None:
        lines.append(f"Retry-After: {retry_after}")
    conn.sendall("\r\n".join([*lines, "", ""]).encode() + body)


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while chunk := source.recv(65536):
            sink.sendall(chunk)


@contextlib.contextmanager
def flaky_proxy(
    upstream: str, faults: dict[tuple[str, str], list[str]] | None = None
) -> Iterator[FlakyProxy]:
    with FlakyProxy(upstream, faults) as proxy:
        yield proxy
