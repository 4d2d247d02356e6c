"""The client retries a failure of the moment, never a failure of the server's setup: a 502
``storage_access_denied`` (the server's storage credentials or bucket policy refuse it) answers the
same until someone fixes the setup, so retrying it only made ``s3drop upload`` wait ~5 s per file
before saying so."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from s3drop._client import Client
from s3drop._errors import S3DropError


@pytest.fixture
def answering() -> Iterator[tuple[str, list[str], dict[str, tuple[int, str]]]]:
    """A loopback server that answers every request with ``answer["now"]``: (status, error code)
    as s3drop's JSON error; it records each request's path."""
    seen: list[str] = []
    answer: dict[str, tuple[int, str]] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.path)
            status, code = answer["now"]
            body = json.dumps({"error": {"code": code, "message": f"{code} (test)"}}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen, answer
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    ("status", "code", "requests"),
    [
        (502, "storage_access_denied", 1),  # the setup: asked once
        (502, "bucket_missing", 1),
        (500, "bad_configuration", 1),
        (503, "storage_unavailable", 3),  # the moment: retried (retries=2 -> 3 attempts)
        (502, "storage_error", 3),
    ],
)
def test_a_setup_failure_is_not_retried_and_a_passing_one_is(
    answering: tuple[str, list[str], dict[str, tuple[int, str]]],
    status: int,
    code: str,
    requests: int,
) -> None:
    url, seen, answer = answering
    answer["now"] = (status, code)
    waits: list[float] = []
    with Client(url, retries=2, sleep=waits.append) as client, pytest.raises(S3DropError) as raised:
        client.list_images()
    assert (raised.value.status, raised.value.code) == (status, code)
    assert seen == ["/api/images"] * requests
    assert len(waits) == requests - 1
