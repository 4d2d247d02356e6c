"""What s3drop._client posts to storage, now that httpx's multipart encoder builds it: the signed
fields in order then the file, with a ``Content-Length`` (S3's POST takes no chunked body); the
file read from disk in chunks; progress from 0 to the size on every attempt of a retried upload;
and a filename with quotes, CR/LF, a backslash and non-ASCII stored under the server's key, on
the local backend and on RGW.

All in-process (the app over httpx's ASGI transport): what is checked is the client's body, not a
socket. The tests that need no config of their own share one app (:func:`shared`), each with its
own bytes, and count what they stored as what appeared while they ran. A connection dropped on a
real socket is tests/test_client.py::test_upload_is_retried_after_the_connection_drops_mid_upload.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from s3drop._client import Client
from s3drop._client.multipart import ProgressReader
from s3drop._errors import S3DropError
from s3drop._filenames import sanitize_filename

from .conftest import RGW, isolate
from .inprocess import AppServer, app_servers, files_in
from .samples import png, png_chunk

#: Retries without waiting: the waits are not what these tests check.
FAST = {"backoff": 0.0, "max_backoff": 0.0}
LIMITS = {"S3DROP_RATE_PER_MINUTE": "1000"}
#: httpx's FileField.CHUNK_SIZE: how much of the file one read asks for.
CHUNK = 64 * 1024
#: A name as hostile as a browser lets a user pick: quotes, CR LF, a tab, a backslash, a
#: parameter-looking ``;x=y``, non-ASCII (httpx escapes " CR LF TAB as %22 %0D %0A %09 and
#: doubles the backslash; the rest goes as UTF-8).
ODD_NAME = 'dir\\my "best" cat\r\nline\tz é猫;x=y.png'


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    """One app (local backend) for this module's tests that need no config of their own, built
    in an environment as isolated as conftest's ``_isolated_environment`` makes each test's."""
    tmp = tmp_path_factory.mktemp("client-body")
    with app_servers(tmp) as make:
        with pytest.MonkeyPatch.context() as env:
            isolate(env, tmp)
            server = make(env=LIMITS)
        yield server


class Stored:
    """What the shared app's storage holds beyond what it held when this was made: what the
    test that made it stored (the tests of one module run one after another)."""

    def __init__(self, server: AppServer) -> None:
        self.root = server.data_dir / "objects"
        self.before = set(self.keys())

    def keys(self) -> list[str]:
        return files_in(self.root) if self.root.exists() else []

    def new(self, prefix: str = "") -> dict[str, bytes]:
        return {
            key: (self.root / key).read_bytes()
            for key in self.keys()
            if key not in self.before and key.startswith(prefix)
        }


def padded_png(path: Path, seed: int, size: int) -> bytes:
    """A PNG of exactly ``size`` bytes: a small image, padded with a text chunk before IEND."""
    image = png(seed, (32, 32))
    pad = size - len(image) - 12 - 4
    assert pad >= 0
    data = image[:-12] + png_chunk(b"tEXt", b"pad\0" + b"x" * pad) + image[-12:]
    assert len(data) == size
    path.write_bytes(data)
    return data


class Spy(httpx.BaseTransport):
    """Every request's headers and whole body, then the request passed on (or ``answers`` first:
    a status to give instead, once each, after reading the whole body)."""

    def __init__(self, inner: httpx.BaseTransport, answers: list[int] | None = None) -> None:
        self.inner = inner
        self.answers = list(answers or [])
        self.seen: list[tuple[httpx.Request, bytes]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        self.seen.append((request, body))
        if request.url.path.startswith("/storage") and self.answers:
            return httpx.Response(self.answers.pop(0), json={"error": {"code": "x", "message": ""}})
        return self.inner.handle_request(request)

    def posts(self) -> list[tuple[httpx.Request, bytes]]:
        return [(r, b) for r, b in self.seen if r.method == "POST" and r.url.path == "/storage"]

    def close(self) -> None:
        self.inner.close()


def parts(request: httpx.Request, body: bytes) -> list[tuple[bytes, bytes]]:
    """``(part headers, part content)`` of a multipart body, in order."""
    boundary = request.headers["content-type"].split("boundary=", 1)[1].encode()
    assert body.endswith(b"\r\n--" + boundary + b"--\r\n")
    chunks = body[: -len(boundary) - 8].split(b"--" + boundary + b"\r\n")
    assert chunks[0] == b""
    found = []
    for chunk in chunks[1:]:
        head, _, content = chunk.partition(b"\r\n\r\n")
        found.append((head, content.removesuffix(b"\r\n")))
    return found


def test_the_body_is_the_signed_fields_in_order_then_the_file_with_a_content_length(
    shared: AppServer, tmp_path: Path
) -> None:
    server = shared
    path = tmp_path / "cat.png"
    data = padded_png(path, 1, 3 * CHUNK + 5)
    spy = Spy(server.transport())
    with Client(server.url, transport=spy) as client:
        content_type, size = client.check_file(path)
        form = client.sign(filename=ODD_NAME, content_type=content_type, size=size)
        client.post_file(form, path, filename=ODD_NAME)
    [(request, body)] = spy.posts()
    # A length, never chunked: S3's browser POST needs one.
    assert request.headers["content-length"] == str(len(body))
    assert "transfer-encoding" not in request.headers
    found = parts(request, body)
    names = [head.split(b'name="', 1)[1].split(b'"', 1)[0].decode() for head, _ in found]
    assert names == [*form.fields, "file"]  # the fields as signed, in order; the file last
    assert [content.decode() for _, content in found[:-1]] == list(form.fields.values())
    file_head, file_content = found[-1]
    assert file_content == data
    assert file_head == (
        b'Content-Disposition: form-data; name="file"; '
        + b'filename="dir\\\\my %22best%22 cat%0D%0Aline%09z '
        + "é猫;x=y.png".encode()
        + b'"\r\nContent-Type: image/png'
    )
    assert (server.data_dir / "objects" / form.key).read_bytes() == data


def test_a_file_larger_than_a_chunk_is_read_from_disk_in_chunks(
    shared: AppServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = shared
    path = tmp_path / "cat.png"
    size = 2 * CHUNK + 123
    data = padded_png(path, 2, size)
    reads: list[tuple[int, int]] = []  # (asked, got)
    read = ProgressReader.read

    def recorded(self: ProgressReader, n: int = -1) -> bytes:
        chunk = read(self, n)
        reads.append((n, len(chunk)))
        return chunk

    monkeypatch.setattr(ProgressReader, "read", recorded)
    with Client(server.url, transport=server.transport()) as client:
        content_type, _ = client.check_file(path)
        form = client.sign(filename="cat.png", content_type=content_type, size=size)
        client.post_file(form, path)
    assert [asked for asked, _ in reads] == [CHUNK] * 4  # never the whole file (-1)
    assert [got for _, got in reads] == [CHUNK] * 2 + [123, 0]
    assert (server.data_dir / "objects" / form.key).read_bytes() == data


def test_a_retried_post_sends_the_whole_body_again_and_progress_restarts_from_0(
    shared: AppServer, tmp_path: Path
) -> None:
    server = shared
    path = tmp_path / "cat.png"
    size = 2 * CHUNK + 7
    data = padded_png(path, 3, size)
    spy = Spy(server.transport(), answers=[503, 502])
    seen: list[tuple[int, int]] = []
    with Client(server.url, transport=spy, **FAST) as client:
        client.upload(path, progress=lambda sent, total: seen.append((sent, total)))
    posts = spy.posts()
    assert len(posts) == 3
    for request, body in posts:
        assert request.headers["content-length"] == str(len(body))
        assert parts(request, body)[-1][1] == data
    attempt = [0, CHUNK, 2 * CHUNK, size]
    assert seen == [(sent, size) for sent in attempt * 3]


class _Dropping(httpx.BaseTransport):
    """The app in-process, but the first ``drops`` POSTs to storage are cut off once
    :data:`DROP_AFTER` bytes of their body were read: the client gets the ``httpx.WriteError``
    httpx raises for a connection reset while it sends, with its file read part way."""

    def __init__(self, inner: httpx.BaseTransport, drops: int) -> None:
        self.inner = inner
        self.drops = drops
        self.posts = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path == "/storage":
            self.posts += 1
            if self.drops:
                self.drops -= 1
                assert isinstance(request.stream, httpx.SyncByteStream)
                sent = 0
                for chunk in request.stream:
                    sent += len(chunk)
                    if sent >= DROP_AFTER:
                        raise httpx.WriteError(
                            "[Errno 104] Connection reset by peer", request=request
                        )
                raise AssertionError("the body ended before it was dropped")
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


#: How much of a dropped body was sent: a file's first chunk and the fields before it.
DROP_AFTER = CHUNK


def test_progress_goes_from_0_to_the_size_on_each_attempt_of_a_dropped_upload(
    shared: AppServer, tmp_path: Path
) -> None:
    server = shared
    path = tmp_path / "cat.png"
    size = 3 * CHUNK + 9
    padded_png(path, 4, size)
    seen: list[tuple[int, int]] = []
    dropping = _Dropping(server.transport(), drops=2)
    with Client(server.url, transport=dropping, **FAST) as client:
        image = client.upload(path, progress=lambda sent, total: seen.append((sent, total)))
        assert dropping.posts == 3
    assert {total for _, total in seen} == {size}
    sent = [sent for sent, _ in seen]
    starts = [index for index, value in enumerate(sent) if value == 0]
    assert len(starts) == 3
    assert starts[0] == 0
    attempts = [sent[a:b] for a, b in zip(starts, [*starts[1:], len(sent)], strict=True)]
    for numbers in attempts:
        assert numbers == sorted(set(numbers))  # rising, each count reported once
    assert attempts[2] == [*range(0, size, CHUNK), size]
    assert (image["width"], image["height"]) == (32, 32)  # the whole file arrived in the end


class _ToStorage(httpx.BaseTransport):
    """The API in-process, storage (RGW) over the network."""

    def __init__(self, api: httpx.BaseTransport, api_url: str) -> None:
        self.api = api
        self.api_host = httpx.URL(api_url).netloc
        self.network = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.netloc == self.api_host:
            return self.api.handle_request(request)
        return self.network.handle_request(request)

    def close(self) -> None:
        self.api.close()
        self.network.close()


@pytest.mark.parametrize("backend", ["local", "rgw"])
def test_a_filename_with_quotes_newlines_and_non_ascii_is_stored_under_the_servers_key(
    make_app: Callable[..., AppServer],
    tmp_path: Path,
    request: pytest.FixtureRequest,
    backend: str,
) -> None:
    path = tmp_path / "cat.png"
    data = png(5, (32, 32))  # its name is the point, not its size
    path.write_bytes(data)
    if backend == "rgw":
        rgw: RGW = request.getfixturevalue("rgw")
        bucket: str = request.getfixturevalue("bucket")
        server = make_app(env={**LIMITS, **rgw.env(bucket)})
        s3 = rgw.client()
        transport: httpx.BaseTransport = _ToStorage(server.transport(), server.url)

        def incoming() -> dict[str, bytes]:
            listed = s3.list_objects_v2(Bucket=bucket, Prefix="incoming/").get("Contents", [])
            return {
                item["Key"]: s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
                for item in listed
            }
    else:
        server = request.getfixturevalue("shared")
        transport = server.transport()
        stored = Stored(server)

        def incoming() -> dict[str, bytes]:
            return stored.new("incoming/")

    with Client(server.url, transport=transport) as client:
        content_type, size = client.check_file(path)
        form = client.sign(filename=ODD_NAME, content_type=content_type, size=size)
        client.post_file(form, path, filename=ODD_NAME)
        assert incoming() == {form.key: data}  # the server's key, whatever the file's name
        image = client.complete(form.id)
    # The name the server keeps is the one it was asked to sign (sanitised), not the body's.
    assert image["filename"] == sanitize_filename(ODD_NAME) == 'my "best" catlinez é猫;x=y.png'
    assert incoming() == {}


class _Refusing(httpx.BaseTransport):
    """The app in-process, but ``(method, path suffix) -> (status, body, content type)`` answered
    instead, every time."""

    def __init__(self, inner: httpx.BaseTransport, answers: dict[tuple[str, str], bytes]) -> None:
        self.inner = inner
        self.answers = answers

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        for (method, suffix), body in self.answers.items():
            if request.method == method and request.url.path.endswith(suffix):
                request.read()
                status = int(body[:3])
                kind = "application/xml" if body[3:4] == b"<" else "application/json"
                return httpx.Response(status, content=body[3:], headers={"content-type": kind})
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


_SIGN = ("POST", "/api/uploads")
_STORAGE = ("POST", "/storage")
_COMPLETE = ("POST", "/complete")
_JSON_503 = b'503{"error": {"code": "unavailable", "message": "try later"}}'
_XML_403 = b"403<Error><Code>AccessDenied</Code><Message>denied</Message></Error>"


@pytest.mark.parametrize(
    ("answers", "data", "status", "code", "signed"),
    [
        ({}, b"", "refused", "file_empty", False),  # the client's own check
        ({_SIGN: b'413{"error": {"code": "file_too_large", "message": "big"}}'}, None, "refused",
         "file_too_large", False),
        ({_SIGN: _JSON_503}, None, "failed", "unavailable", False),
        ({_STORAGE: _XML_403}, None, "failed", "AccessDenied", True),
        ({}, b"\x89PNG\r\n\x1a\n" + b"\x01" * 300, "rejected", "corrupt_image", True),
        ({_COMPLETE: _JSON_503}, None, "failed", "unavailable", True),
    ],
)  # fmt: skip
def test_upload_and_upload_result_are_one_flow(
    shared: AppServer,
    tmp_path: Path,
    answers: dict[tuple[str, str], bytes],
    data: bytes | None,
    status: str,
    code: str,
    signed: bool,
) -> None:
    """What ``upload`` raises, ``upload_result`` reports: the same code, and the status the stage
    it failed at gives (refused before storage, failed on the way, rejected by verification)."""
    server = shared
    path = tmp_path / "cat.png"
    path.write_bytes(png(6, (32, 32)) if data is None else data)
    before = Stored(server)
    transport = _Refusing(server.transport(), answers)
    with Client(server.url, transport=transport, retries=0) as client:
        with pytest.raises(S3DropError) as raised:
            client.upload(path)
        result = client.upload_result(path)
    assert raised.value.code == code
    assert (result.status, result.error_code) == (status, code)
    assert (result.id is not None) == signed
    assert result.path == str(path)
    stored = list(before.new())
    if answers.get(_COMPLETE):  # posted, never completed: in quarantine until swept
        assert [key.split("/")[0] for key in stored] == ["incoming", "incoming"]  # both tries
    else:
        assert stored == []  # refused, failed or rejected: nothing kept
