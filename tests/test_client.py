"""s3drop._client against a live server: the whole flow, retries of transient failures (through a
proxy that drops connections and answers 503 or 429 on purpose), no retry of a refusal, checks
before any byte is sent, and a big file streamed from disk."""

from __future__ import annotations

import io
import os
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

from s3drop._client import Client, ServerConfig, sniff_type
from s3drop._errors import (
    FileEmpty,
    FileTooLarge,
    NotFound,
    RateLimited,
    S3Error,
    TypeNotAllowed,
    Unreachable,
)

from .conftest import LiveServer, free_port
from .flaky_proxy import flaky_proxy
from .inprocess import AppServer
from .shared_server import shared_server

FAST = {"backoff": 0.01, "max_backoff": 0.05}
LIMITS = {"S3DROP_RATE_PER_MINUTE": "1000"}


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One server for this module's retry tests (each behind a proxy of its own, with files of
    its own): what a test must not leave behind is compared with what was there before it."""
    with shared_server(tmp_path_factory, "client", env=LIMITS) as server:
        yield server


def noise_png(path: Path, side: int) -> bytes:
    """A PNG of random pixels (it does not compress: about 3 * side**2 bytes)."""
    image = Image.frombytes("RGB", (side, side), os.urandom(side * side * 3))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    path.write_bytes(buffer.getvalue())
    return buffer.getvalue()


def quarantined(server: LiveServer) -> list[Path]:
    folder = server.data_dir / "objects" / "incoming"
    return sorted(path for path in folder.rglob("*") if path.is_file()) if folder.exists() else []


def stored_files(server: LiveServer) -> list[Path]:
    folder = server.data_dir / "objects"
    return sorted(path for path in folder.rglob("*") if path.is_file()) if folder.exists() else []


def leftovers(server: LiveServer) -> list[Path]:
    return [path for path in (server.data_dir / "tmp").iterdir() if not path.name.startswith(".")]


def test_upload_is_retried_after_the_connection_drops_mid_upload(
    live_server: LiveServer, tmp_path: Path
) -> None:
    server = live_server
    before = quarantined(server), leftovers(server)
    original = noise_png(tmp_path / "noise.png", 600)  # ~1 MB: the drop comes 64 KiB in
    faults = {("POST", "/storage"): ["reset", "reset"]}
    seen: list[tuple[int, int]] = []
    with flaky_proxy(server.url, faults) as proxy, Client(proxy.url, **FAST) as client:
        image = client.upload(tmp_path / "noise.png", progress=lambda s, t: seen.append((s, t)))
        assert proxy.count("POST", "/storage") == 3
        assert [fault for *_, fault in proxy.faults_done] == ["reset", "reset"]
    assert image["width"] == 600
    with server.client() as http:
        # The image's URL names the proxy the client used; read it from the server itself.
        assert http.get(httpx.URL(image["url"]).raw_path.decode()).content == original
    # The dropped attempts left nothing behind, in quarantine or half-written.
    assert (quarantined(server), leftovers(server)) == before
    # Progress restarted from 0 for each attempt and ended at the file's size.
    assert seen[-1] == (len(original), len(original))
    assert [sent for sent, _ in seen].count(0) == 3


def test_5xx_and_429_are_retried_with_backoff_honouring_retry_after(
    live_server: LiveServer, tmp_path: Path
) -> None:
    noise_png(tmp_path / "a.png", 20)
    faults = {("POST", "/api/uploads"): ["503", "429:1", "502"]}
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)  # recorded, not waited: what the client asked for is the point

    with (
        flaky_proxy(live_server.url, faults) as proxy,
        Client(proxy.url, sleep=sleep, **FAST) as client,
    ):
        image = client.upload(tmp_path / "a.png")
        assert proxy.count("POST", "/api/uploads") == 4
    assert image["id"]
    assert len(slept) == 3
    assert slept[1] >= 1.0  # Retry-After: 1
    assert all(0 < seconds <= 0.05 for seconds in (slept[0], slept[2]))


def test_a_refusal_is_never_retried(live_server: LiveServer, tmp_path: Path) -> None:
    path = tmp_path / "a.png"
    noise_png(path, 20)
    before = stored_files(live_server)
    with flaky_proxy(live_server.url) as proxy, Client(proxy.url, **FAST) as client:
        # The server refuses to sign (413): one request.
        with pytest.raises(FileTooLarge):
            client.sign(filename="a.png", content_type="image/png", size=10**12)
        assert proxy.count("POST", "/api/uploads") == 1
        # Storage refuses a form that was changed (403): one request, nothing stored.
        form = client.sign(filename="a.png", content_type="image/png", size=path.stat().st_size)
        fields = dict(form.fields, key=form.key.replace("incoming/", "images/"))
        tampered = type(form)(**{**form.__dict__, "fields": fields})
        with pytest.raises(S3Error) as refused:
            client.post_file(tampered, path)
        assert refused.value.status == 403
        assert proxy.count("POST", "/storage") == 1
        # Completing an upload that never arrived: 404, once.
        with pytest.raises(NotFound):
            client.complete(form.id)
        assert proxy.count("POST", f"/api/uploads/{form.id}/complete") == 1
    assert stored_files(live_server) == before


def test_429_with_a_long_retry_after_is_not_waited_for(
    live_server: LiveServer, tmp_path: Path
) -> None:
    faults = {("POST", "/api/uploads"): ["429:3600"]}
    with flaky_proxy(live_server.url, faults) as proxy, Client(proxy.url, **FAST) as client:
        with pytest.raises(RateLimited) as limited:
            client.sign(filename="a.png", content_type="image/png", size=100)
        assert limited.value.retry_after == 3600
        assert proxy.count("POST", "/api/uploads") == 1


def test_gives_up_after_the_last_retry(live_server: LiveServer, tmp_path: Path) -> None:
    noise_png(tmp_path / "a.png", 200)
    faults = {("POST", "/storage"): ["reset"] * 10}
    before = stored_files(live_server), leftovers(live_server)
    with (
        flaky_proxy(live_server.url, faults) as proxy,
        Client(proxy.url, retries=2, **FAST) as client,
    ):
        with pytest.raises(Unreachable) as failed:
            client.upload(tmp_path / "a.png")
        assert proxy.count("POST", "/storage") == 3
    assert "no answer after 3 attempts" in failed.value.message
    assert (stored_files(live_server), leftovers(live_server)) == before


def test_no_server_is_one_clear_error() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with (
        Client(url, retries=1, **FAST) as client,
        pytest.raises(Unreachable, match=rf"cannot reach {url}/api/config: .*Connection refused"),
    ):
        client.config()


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_files_the_server_would_refuse_are_refused_before_a_byte_is_sent(
    make_server: Callable[..., LiveServer], tmp_path: Path
) -> None:
    server = make_server(env={"S3DROP_MAX_BYTES": "5000"})
    gif = io.BytesIO()
    Image.new("RGB", (4, 4)).save(gif, "GIF")
    cases = [
        (_write(tmp_path / "empty.png", b""), FileEmpty, "empty"),
        (
            _write(tmp_path / "big.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 6000),
            FileTooLarge,
            "5.9 KiB; the server takes at most 4.9 KiB",
        ),
        (_write(tmp_path / "page.png", b"<html><script>alert(1)</script>"), TypeNotAllowed, "PNG"),
        (_write(tmp_path / "anim.gif", gif.getvalue()), TypeNotAllowed, "is GIF"),
    ]
    with flaky_proxy(server.url) as proxy, Client(proxy.url) as client:
        for path, error, words in cases:
            with pytest.raises(error, match=words):
                client.upload(path)
            result = client.upload_result(path)
            assert result.status == "refused"
            assert result.error_code == error.code
        assert proxy.requests == [("GET", "/api/config")]
    assert stored_files(server) == []


def test_a_big_file_streams_from_disk(
    make_server: Callable[..., LiveServer], tmp_path: Path
) -> None:
    """64 MB posted with a fraction of that in Python memory (measured with tracemalloc)."""
    size = 64 * 1024 * 1024
    server = make_server(env={"S3DROP_MAX_BYTES": str(size + 1000), **LIMITS})
    path = tmp_path / "big.png"
    with path.open("wb") as file:
        file.write(b"\x89PNG\r\n\x1a\n")
        file.truncate(size)  # sparse: the client only sniffs the first bytes
    with Client(server.url) as client:
        content_type, length = client.check_file(path)
        form = client.sign(filename="big.png", content_type=content_type, size=length)
        tracemalloc.start()
        try:
            started = time.perf_counter()
            client.post_file(form, path)
            seconds = time.perf_counter() - started
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    stored = server.data_dir / "objects" / form.key
    assert stored.stat().st_size == size
    print(f"posted {size >> 20} MiB in {seconds:.2f} s, peak traced memory {peak / 1e6:.1f} MB")
    assert peak < 8 * 1024 * 1024


def test_sniffing_and_names() -> None:
    assert sniff_type(b"\x89PNG\r\n\x1a\n....") == "image/png"
    assert sniff_type(b"\xff\xd8\xff\xe0") == "image/jpeg"
    assert sniff_type(b"GIF89a") == "image/gif"
    assert sniff_type(b"RIFF\0\0\0\0WEBPVP8 ") == "image/webp"
    assert sniff_type(b"\0\0\0\x1cftypavif") == "image/avif"
    # An AVIF may carry its brand among the compatible ones only, as the server accepts it.
    assert sniff_type(b"\0\0\0\x1cftypmif1\0\0\0\0mif1miafavif") == "image/avif"
    assert sniff_type(b"<svg") is None
    labels = {"image/png": "PNG", "image/jpeg": "JPEG", "image/webp": "WebP"}
    config = ServerConfig(allowed_types=list(labels), max_bytes=1, backend="local", labels=labels)
    assert config.type_names(["image/png", "image/jpeg", "image/webp"]) == "PNG, JPEG or WebP"
    assert config.type_names(["image/x-new"]) == "image/x-new"  # one the server did not label


def test_the_token_is_sent_to_the_server_and_never_to_storage(
    make_app: Callable[..., AppServer], tmp_path: Path
) -> None:
    token = "alice-token-0123456789"
    server = make_app(env={"S3DROP_TOKENS": f"alice:{token}"})
    path = tmp_path / "a.png"
    noise_png(path, 20)
    seen: list[httpx.Request] = []
    transport = server.transport()

    class Spy(httpx.BaseTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            seen.append(request)
            return transport.handle_request(request)

        def close(self) -> None:
            transport.close()

    with Client(server.url, token=token, transport=Spy()) as client:
        image = client.upload(path)
    assert image["id"]
    for request in seen:
        authorization = request.headers.get("authorization")
        if request.url.path.startswith("/storage"):
            assert authorization is None
        else:
            assert authorization == f"Bearer {token}"
    with Client(server.url, transport=server.transport()) as anonymous:
        result = anonymous.upload_result(path)
    assert (result.status, result.error_code) == ("refused", "not_authenticated")
