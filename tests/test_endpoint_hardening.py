"""Attacks on the local backend's storage endpoint and on the server's connections, over real HTTP.

The tests play the attacker with httpx or raw sockets against ``s3drop serve`` (local backend,
loopback; one server shared by the tests whose requests are all refused, one with short timeouts
for the clients that stop sending), or against the app in-process where neither uvicorn nor a
socket is the point (the receiver's field cap, a full disk): a flood of form parts, oversized part headers and fields, bad boundaries, an upload that
stops sending, idle and half-sent request heads, a flood of connections. Every refusal is checked
for its status and S3 error code, and for leaving nothing behind (no object, nothing in ``tmp/``).
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from anyio.from_thread import start_blocking_portal

from s3drop import Settings
from s3drop.web.app import create_app

from . import samples
from .conftest import LiveServer, isolate, start_server
from .inprocess import AppServer


def _clean_server(tmp: Path, env: dict[str, str] | None = None) -> LiveServer:
    """A live server with ``env`` and nothing from the machine's environment."""
    with pytest.MonkeyPatch.context() as patch:
        isolate(patch)
        return start_server(tmp, env=env)


@pytest.fixture(scope="module")
def refusing_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One server for the tests whose requests are all refused (so each still finds nothing
    stored): a server start saved per test."""
    server = _clean_server(tmp_path_factory.mktemp("refusing"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def impatient_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One server with one-second timeouts for request heads and for uploads that stop, shared
    by the tests of clients that stop sending (each is refused: nothing is ever stored)."""
    env = {"S3DROP_UPLOAD_IDLE_TIMEOUT": "1", "S3DROP_HEADER_TIMEOUT": "1"}
    server = _clean_server(tmp_path_factory.mktemp("impatient"), env)
    yield server
    server.stop()


def _s3_code(response: httpx.Response) -> str:
    assert response.headers["content-type"].startswith("application/xml"), response.text
    match = re.search(r"<Code>([^<]*)</Code>", response.text)
    assert match is not None, response.text
    return match[1]


def _assert_nothing_stored(server: LiveServer | AppServer) -> None:
    objects = server.data_dir / "objects"
    stored = [p for p in objects.rglob("*") if p.is_file()] if objects.exists() else []
    assert stored == []
    assert list((server.data_dir / "tmp").iterdir()) == []


def _sign(server: LiveServer | AppServer, data: bytes) -> dict[str, object]:
    claim = {"filename": "cat.png", "content_type": "image/png", "size": len(data)}
    with server.client() as http:
        response = http.post("/api/uploads", json=claim)
    assert response.status_code == 201, response.text
    form: dict[str, object] = response.json()["upload"]
    return form


def _multipart(boundary: str, fields: list[tuple[str, str]], file: bytes | None = None) -> bytes:
    out = bytearray()
    for name, value in fields:
        out += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
        out += value.encode() + b"\r\n"
    if file is not None:
        out += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="cat.png"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        out += file + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out)


def _post(server: LiveServer | AppServer, body: bytes, boundary: str) -> httpx.Response:
    with server.client() as http:
        http.timeout = httpx.Timeout(60)
        return http.post(
            "/storage",
            content=body,
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        )


# --- the parts flood --------------------------------------------------------------------------


@pytest.mark.alone  # asserts answers within a bound of wall time
def test_a_flood_of_empty_parts_is_refused_fast_and_never_blocks_the_server(
    refusing_server: LiveServer,
) -> None:
    """Issue 10 #1: 8,000 empty parts took 5.8 s and froze every request; 20,000, 34 s. The
    8,000 alone fail the bounds below on that code (a second case of 20,000 was one more alone
    stretch for the other xdist worker to sit out, refused at the same 65th part)."""
    parts = 8_000
    boundary = "flood"
    body = _multipart(boundary, [(f"x-ignore-{n}", "") for n in range(parts)])
    answers: list[tuple[httpx.Response, float]] = []

    def flood() -> None:
        for _ in range(3):  # several, so the probes overlap the parsing
            start = time.perf_counter()
            answers.append((_post(refusing_server, body, boundary), time.perf_counter() - start))

    attacker = threading.Thread(target=flood)
    latencies: dict[str, list[float]] = {"/healthz": [], "/api/images": []}
    with httpx.Client(base_url=refusing_server.url, timeout=60) as probe:
        # Connected and warm (first-call imports) before the flood; what each probe takes with
        # no flood is the floor the 200 ms are counted from (it is a few ms on an idle machine,
        # more on a dev machine shared with other test runs).
        idle = dict.fromkeys(latencies, 0.0)
        for turn in range(20):
            path = "/healthz" if turn % 2 == 0 else "/api/images"
            start = time.perf_counter()
            assert probe.get(path).status_code == 200
            idle[path] = max(idle[path], time.perf_counter() - start) if turn > 1 else 0.0
        attacker.start()
        for turn in range(2000):  # bounded: the flood ends long before on the fixed code
            if not attacker.is_alive():
                break
            path = "/healthz" if turn % 2 == 0 else "/api/images"
            start = time.perf_counter()
            assert probe.get(path).status_code == 200
            latencies[path].append(time.perf_counter() - start)
            time.sleep(0.005)  # paced: a 200 ms stall is seen as well, with less CPU taken
        attacker.join(timeout=120)
    assert not attacker.is_alive()
    assert len(answers) == 3
    for response, seconds in answers:
        assert response.status_code == 400, response.text
        assert _s3_code(response) == "MalformedPOSTRequest"
        assert "more than 64 parts" in response.text
        assert seconds < 1.0, f"refused after {seconds:.2f} s"
    for path, waits in latencies.items():
        assert waits, f"no {path} probe ran while the flood was in flight"
        assert max(waits) < 0.2 + idle[path], (
            f"{path} waited {max(waits) * 1000:.0f} ms (without the flood: "
            f"{idle[path] * 1000:.0f} ms)"
        )
    _assert_nothing_stored(refusing_server)


@pytest.mark.parametrize(
    ("content_type", "code"),
    [
        ("multipart/form-data; boundary=" + "a" * 300, "MalformedPOSTRequest"),
        ("multipart/form-data; boundary=" + "a" * 71, "MalformedPOSTRequest"),
        ('multipart/form-data; boundary="a;b\\"c"', "MalformedPOSTRequest"),
        ('multipart/form-data; boundary="ends-with-space "', "MalformedPOSTRequest"),
        ("multipart/form-data", "InvalidArgument"),
        ("application/x-www-form-urlencoded", "InvalidArgument"),
    ],
)
def test_a_bad_boundary_is_a_400_not_a_500(
    refusing_server: LiveServer, content_type: str, code: str
) -> None:
    response = httpx.post(
        refusing_server.url + "/storage",
        content=b"--x\r\n\r\n--x--\r\n",
        headers={"Content-Type": content_type},
        timeout=30,
    )
    assert response.status_code == 400, response.text
    assert _s3_code(response) == code
    assert "Traceback" not in refusing_server.output()
    _assert_nothing_stored(refusing_server)


def _part_with_headers(boundary: str, headers: list[str]) -> bytes:
    head = "\r\n".join([*headers, ""])
    return f"--{boundary}\r\n{head}\r\nvalue\r\n--{boundary}--\r\n".encode()


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        (
            ['Content-Disposition: form-data; name="x-ignore-a"']
            + [f"X-Pad-{n}: {'j' * 4000}" for n in range(3)],
            "headers are longer than 8192 bytes",
        ),
        (
            ['Content-Disposition: form-data; name="x-ignore-a"']
            + [f"X-Pad-{n}: 1" for n in range(5)],
            "more than 4 headers",
        ),
    ],
)
def test_part_headers_are_capped(
    refusing_server: LiveServer, headers: list[str], message: str
) -> None:
    response = _post(refusing_server, _part_with_headers("cap", headers), "cap")
    assert response.status_code == 400, response.text
    assert _s3_code(response) == "MalformedPOSTRequest"
    assert message in response.text
    _assert_nothing_stored(refusing_server)


def test_fields_before_the_file_are_capped_at_s3s_20_kib(app_server: AppServer) -> None:
    live_server = app_server  # the receiver's cap is the app's: no process needed
    data = samples.png(1, (40, 30))
    form = _sign(live_server, data)
    fields = list(form["fields"].items())  # type: ignore[attr-defined]
    # S3 takes a form whose fields before the file fit in 20 KiB; so does s3drop ...
    padded = [*fields, ("x-ignore-pad", "p" * 12_000)]
    response = _post(live_server, _multipart("ok", padded, data), "ok")
    assert response.status_code == 204, response.text
    # ... and refuses one past it, before reading the file, as S3 does.
    form = _sign(live_server, data)
    fields = list(form["fields"].items())  # type: ignore[attr-defined]
    padded = [*fields, ("x-ignore-pad", "p" * 21_000)]
    objects_before = sorted((live_server.data_dir / "objects").rglob("*.png"))
    response = _post(live_server, _multipart("big", padded, data), "big")
    assert response.status_code == 400, response.text
    assert _s3_code(response) == "MaxPostPreDataLengthExceeded"
    assert sorted((live_server.data_dir / "objects").rglob("*.png")) == objects_before
    assert f"{form['id']}" not in str(objects_before)
    assert list((live_server.data_dir / "tmp").iterdir()) == []


@pytest.mark.parametrize("field", ["x-amz-signature", "x-amz-credential"])
def test_non_ascii_signatures_are_refused_not_a_500(
    refusing_server: LiveServer, field: str
) -> None:
    """Found while fuzzing the form: hmac.compare_digest raised TypeError on non-ASCII text."""
    data = samples.png(6, (40, 30))
    form = _sign(refusing_server, data)
    fields = dict(form["fields"])  # type: ignore[call-overload]
    fields[field] = "\u00e9" + fields[field][1:]
    response = _post(refusing_server, _multipart("na", list(fields.items()), data), "na")
    assert response.status_code == 403, response.text
    assert _s3_code(response) in {"SignatureDoesNotMatch", "InvalidAccessKeyId"}
    got = httpx.get(
        f"{refusing_server.url}/storage/images/a.png?expires=1&signature=\u00e9", timeout=10
    )
    assert got.status_code == 403, got.text
    assert _s3_code(got) == "SignatureDoesNotMatch"
    assert "Traceback" not in refusing_server.output()
    _assert_nothing_stored(refusing_server)


# --- bodies that stop, heads that never end, too many connections ------------------------------


def _connect(server: LiveServer) -> socket.socket:
    host, port = server.url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def _closed_within(
    sock: socket.socket, seconds: float, *, until: bytes | None = None
) -> tuple[bool, bytes]:
    """Read until the server closes ``sock``, sends ``until``, or ``seconds`` pass:
    (closed, what it sent)."""
    received = b""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0 and (until is None or until not in received):
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            return False, received
        except ConnectionResetError:
            return True, received
        if not chunk:
            return True, received
        received += chunk
    return False, received


def test_an_upload_that_stops_sending_is_cut_and_cleaned_up(impatient_server: LiveServer) -> None:
    server = impatient_server
    data = samples.png(2, (400, 300))
    form = _sign(server, data)
    body = _multipart("stall", list(form["fields"].items()), data)  # type: ignore[attr-defined]
    head = (
        "POST /storage HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Type: multipart/form-data; boundary=stall\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    with contextlib.closing(_connect(server)) as sock:
        sock.sendall(head + body[: len(body) - len(data) // 2])  # half the file, then silence
        for _ in range(50):  # the temp file exists while the upload is in flight
            if list((server.data_dir / "tmp").iterdir()):
                break
            time.sleep(0.05)
        assert list((server.data_dir / "tmp").iterdir()), "no temp file while uploading"
        started = time.monotonic()
        _, answer = _closed_within(sock, 8, until=b"</Error>")
        waited = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 400 "), answer[:200]
    assert b"<Code>RequestTimeout</Code>" in answer
    assert waited < 4, f"cut after {waited:.1f} s"
    _assert_nothing_stored(server)


def test_an_api_body_that_stops_arriving_is_answered_408_and_closed(
    impatient_server: LiveServer,
) -> None:
    server = impatient_server
    before = len(server.output())  # the server is shared: this test's lines are what follows
    head = (
        b"POST /api/uploads HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\nContent-Length: 200\r\n\r\n"
    )
    with contextlib.closing(_connect(server)) as sock:
        sock.sendall(head + b'{"filename": "cat')  # and then nothing
        started = time.monotonic()
        closed, answer = _closed_within(sock, 8)
        waited = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    assert b'"request_timeout"' in answer
    assert closed
    assert waited < 4, f"answered after {waited:.1f} s"
    logged = server.output()[before:]
    assert "Traceback" not in logged
    assert '"event": "sign"' not in logged.replace('"event":"sign"', '"event": "sign"')
    _assert_nothing_stored(server)


def test_idle_and_half_sent_request_heads_are_closed(impatient_server: LiveServer) -> None:
    """Issue 10: idle and partial-header connections were kept for more than 70 s."""
    server = impatient_server
    idle = [_connect(server) for _ in range(5)]
    slow = [_connect(server) for _ in range(5)]
    try:
        for sock in slow:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        started = time.monotonic()
        open_ = set(range(len(slow)))
        for _ in range(12):  # a header byte every 0.25 s does not keep a head alive
            if not open_:
                break  # every one was closed (the first sends after the close still succeed)
            for index in list(open_):
                try:
                    slow[index].sendall(b"X")
                except OSError:
                    open_.discard(index)
            time.sleep(0.25)
        for sock in idle + slow:
            closed, _ = _closed_within(sock, max(0.1, 4 - (time.monotonic() - started)))
            assert closed, "the server kept a connection whose request head never ended"
        # A legitimate request on a fresh connection is answered as before.
        assert httpx.get(server.url + "/healthz", timeout=5).status_code == 200
    finally:
        for sock in idle + slow:
            sock.close()


def test_an_endless_request_head_is_refused_431(refusing_server: LiveServer) -> None:
    live_server = refusing_server
    """httptools (llhttp) has no cap on a head's size: one header line of many MiB was buffered."""
    with contextlib.closing(_connect(live_server)) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ")
        with contextlib.suppress(OSError):  # the server may close while this still sends
            for _ in range(64):  # up to 4 MiB
                sock.sendall(b"a" * 65536)
        closed, answer = _closed_within(sock, 5)
    assert closed, "the server kept reading an endless request head"
    # Closing with unread bytes makes the kernel send a reset, which may discard the answer.
    assert answer == b"" or answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    assert httpx.get(live_server.url + "/healthz", timeout=5).status_code == 200


def test_a_refusal_before_a_long_body_ends_answers_once_and_closes(
    refusing_server: LiveServer,
) -> None:
    """Past what the server drains (16 MiB), the rest of a refused body is not read as a next
    request's head: one answer, then the connection closes."""
    size = 24 * 1024 * 1024
    head = (
        "POST /storage HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Type: multipart/form-data; boundary={'a' * 300}\r\n"
        f"Content-Length: {size}\r\n\r\n"
    ).encode()
    with contextlib.closing(_connect(refusing_server)) as sock:
        sock.sendall(head)

        def send_body() -> None:
            with contextlib.suppress(OSError):
                for _ in range(size // 65536):
                    sock.sendall(b"x" * 65536)

        sender = threading.Thread(target=send_body)
        sender.start()
        closed, answer = _closed_within(sock, 20)
        sender.join(timeout=20)
    assert closed
    assert answer.startswith(b"HTTP/1.1 400 "), answer[:200]
    assert answer.count(b"HTTP/1.1 ") == 1, answer
    _assert_nothing_stored(refusing_server)


def _fds(server: LiveServer) -> int:
    return len(list(Path(f"/proc/{server.process.pid}/fd").iterdir()))


def test_connections_over_the_cap_are_answered_503_and_closed(
    make_server: Callable[..., LiveServer],
) -> None:
    """Issue 10: about 1,100 idle connections used up the server's file descriptors."""
    server = make_server(env={"S3DROP_MAX_CONNECTIONS": "20", "S3DROP_HEADER_TIMEOUT": "60"})
    baseline = _fds(server)
    socks = [_connect(server) for _ in range(60)]
    try:
        refused = 0
        # One second for the server to refuse what is over the cap (every socket connected
        # before it starts), not 0.2 s for each of the 20 it keeps open. The last connected are
        # those over the cap (accepted in order): looked at first, and once the 40 are found, the
        # rest are only looked at (closed ones are still checked) rather than waited for.
        deadline = time.monotonic() + 1
        for sock in reversed(socks):
            wait = max(0.02, deadline - time.monotonic()) if refused < 40 else 0.005
            closed, answer = _closed_within(sock, wait)
            if closed:
                assert answer.startswith(b"HTTP/1.1 503 "), answer[:200]
                assert b"too_many_connections" in answer
                refused += 1
        assert refused >= 40
        assert _fds(server) <= baseline + 22
    finally:
        for sock in socks:
            sock.close()
    for _ in range(50):  # the slots come back once the idle connections go
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(server.url + "/healthz", timeout=5).status_code == 200:
                break
        time.sleep(0.1)
    else:
        pytest.fail("the server did not answer after the idle connections closed")


# --- a full disk ------------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 MiB tmpfs of its own: a disk that really fills, with ENOSPC from the kernel.

    CI runs as root (elsewhere, ``sudo -n``); a tmpfs is the real thing (the kernel's ENOSPC, no
    fault injection in the server) and needs no image file or loop device.
    """
    mount = tmp_path / "disk"
    mount.mkdir()
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    done = subprocess.run(
        [*sudo, "mount", "-t", "tmpfs", "-o", f"size=16m,uid={os.getuid()}", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(
            "cannot mount a tmpfs: the disk-full test needs root, or sudo without a password "
            f"(CI runs as root): {done.stderr.strip()}"
        )
    try:
        yield mount
    finally:
        subprocess.run([*sudo, "umount", "-l", str(mount)], check=False)


def _fill(disk: Path, leave: int, name: str = "filler") -> Path:
    """Write a filler file so that about ``leave`` bytes stay free on ``disk``."""
    stat = os.statvfs(disk)
    free = stat.f_bavail * stat.f_frsize
    filler = disk / name
    with filler.open("wb") as out:
        out.write(b"\0" * max(0, free - leave))
    return filler


def test_a_full_disk_answers_507_and_leaves_nothing_half_written(
    make_app: Callable[..., AppServer], small_disk: Path
) -> None:
    """Issue 10: a full disk gave a plain-text 500, left an orphan thumbnail and a half-written
    metadata temp file, and /readyz said ready with 4 KB free."""
    data_dir = small_disk / "data"
    # In-process: the app, its storage and its limits database meet the full disk, no process.
    server = make_app(env={"S3DROP_DATA_DIR": str(data_dir), "S3DROP_MIN_FREE_BYTES": "1MiB"})
    http = server.client()
    assert http.get("/readyz").status_code == 200
    big = samples.png(3, (1200, 900))  # 1.5 MiB; its thumbnail about 2 KiB
    later = _sign(server, big)
    stored = _post(
        server,
        _multipart("b", list(later["fields"].items()), big),
        "b",  # type: ignore[attr-defined]
    )
    assert stored.status_code == 204, stored.text
    refused = _sign(server, big)
    filler = _fill(small_disk, 256 * 1024)

    # The storage endpoint: 507 in S3's XML, nothing kept.
    fields = list(refused["fields"].items())  # type: ignore[attr-defined]
    response = _post(server, _multipart("f", fields, big), "f")
    assert response.status_code == 507, response.text
    assert _s3_code(response) == "InsufficientStorage"
    assert list((data_dir / "tmp").iterdir()) == []
    assert not list((data_dir / "objects").rglob(f"{refused['id']}*"))

    # /readyz: not ready below S3DROP_MIN_FREE_BYTES.
    ready = http.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["error"]["code"] == "insufficient_storage"

    # The API: the thumbnail fits, the image does not; 507 in JSON, no orphan thumbnail, no
    # metadata temp file, the quarantined upload kept for a retry.
    response = http.post(f"/api/uploads/{later['id']}/complete")
    assert response.status_code == 507, response.text
    assert response.json()["error"]["code"] == "insufficient_storage"
    objects = data_dir / "objects"
    assert sorted(p.relative_to(objects).as_posix() for p in objects.rglob("*") if p.is_file()) == [
        f"incoming/{later['id']}.png"
    ]
    assert [p for p in (data_dir / "meta").rglob(".*") if p.is_file()] == []
    assert list((data_dir / "tmp").iterdir()) == []
    assert "Traceback" not in server.output()

    # Not a byte left: signing (the limits database) answers 507 too, and signs nothing.
    last = _fill(small_disk, 0, "last")
    claim = {"filename": "cat.png", "content_type": "image/png", "size": 100}
    response = http.post("/api/uploads", json=claim)
    assert response.status_code == 507, response.text
    assert response.json()["error"]["code"] == "insufficient_storage"
    assert "upload" not in response.json()

    # Space again: the retry completes (the failed promotion gave its claim back), and the
    # server is ready.
    last.unlink()
    filler.unlink()
    response = http.post(f"/api/uploads/{later['id']}/complete")
    assert response.status_code == 200, response.text
    assert http.get("/readyz").status_code == 200


# --- what a crash leaves behind ---------------------------------------------------------------


def test_startup_removes_a_killed_uploads_temp_file_and_orphan_thumbnails(
    make_server: Callable[..., LiveServer], tmp_path: Path
) -> None:
    """Issue 10: ``kill -9`` mid-upload left ``tmp/*.part`` forever."""
    data_dir = tmp_path / "kept"
    server = make_server(env={"S3DROP_DATA_DIR": str(data_dir)})
    kept = samples.png(5, (40, 30))  # a promoted image: its thumbnail is no orphan
    kept_form = _sign(server, kept)
    fields = list(kept_form["fields"].items())  # type: ignore[attr-defined]
    assert _post(server, _multipart("p", fields, kept), "p").status_code == 204
    done = httpx.post(f"{server.url}/api/uploads/{kept_form['id']}/complete", timeout=30)
    assert done.status_code == 200, done.text
    kept_thumb = data_dir / "objects" / "thumbs" / f"{kept_form['id']}.webp"
    data = samples.png(4, (400, 300))
    form = _sign(server, data)
    body = _multipart("k", list(form["fields"].items()), data)  # type: ignore[attr-defined]
    head = (
        "POST /storage HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Type: multipart/form-data; boundary=k\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    with contextlib.closing(_connect(server)) as sock:
        sock.sendall(head + body[: len(body) // 2])
        for _ in range(100):
            parts = list((data_dir / "tmp").glob("*.part"))
            if parts:
                break
            time.sleep(0.05)
        server.process.kill()  # kill -9, mid-upload
        server.process.wait()
    assert len(parts) == 1
    # A crash's leftovers, an hour and more old: the cut upload, a metadata temp file, and a
    # thumbnail whose image is gone; and a fresh temp file (another worker's live upload).
    hours_ago = time.time() - 2 * 3600
    meta_tmp = data_dir / "meta" / "images" / ".x.png.json.1234abcd"
    meta_tmp.parent.mkdir(parents=True, exist_ok=True)
    meta_tmp.write_text("{")
    orphan = data_dir / "objects" / "thumbs" / f"{form['id']}.webp"
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(b"RIFF")
    orphan_meta = data_dir / "meta" / "thumbs" / f"{form['id']}.webp.json"
    orphan_meta.parent.mkdir(parents=True, exist_ok=True)
    orphan_meta.write_text('{"content_type": "image/webp", "metadata": {}}')
    for path in (parts[0], meta_tmp, orphan, orphan_meta, kept_thumb):
        os.utime(path, (hours_ago, hours_ago))
    live = data_dir / "tmp" / "live.part"
    live.write_bytes(b"in flight")

    # The restart: the app ``s3drop serve`` runs, with its lifespan (where the sweep starts), in
    # this process (the killed process above is the point, a second interpreter start is not).
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("S3DROP_DATA_DIR", str(data_dir))
        patch.setenv("S3DROP_DECODE_WORKERS", "1")  # as start_server: one worker is plenty
        app = create_app(Settings())
    with (
        start_blocking_portal() as portal,
        portal.wrap_async_context_manager(app.router.lifespan_context(app)),
    ):
        for _ in range(100):  # the sweep runs as the server starts
            if not parts[0].exists() and not orphan.exists():
                break
            time.sleep(0.05)
    assert not parts[0].exists()
    assert not meta_tmp.exists()
    assert not orphan.exists()
    assert not orphan_meta.exists()
    assert live.exists()
    assert kept_thumb.exists()
