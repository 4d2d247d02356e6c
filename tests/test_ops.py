"""Operations: /healthz and /readyz, /metrics summed over workers, several workers agreeing on
signatures, JSON logs, and a graceful shutdown that lets in-flight uploads finish."""

from __future__ import annotations

import dataclasses
import json
import logging
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from s3drop._client import Client
from s3drop._errors import FileTooLarge, ImageRejected, S3Error, TypeNotAllowed
from s3drop._logs import JSONFormatter, redact
from s3drop.web import _ops as ops

from .conftest import RGW, LiveServer
from .inprocess import AppServer
from .shared_server import shared_server
from .test_client import noise_png

LIMITS = {"S3DROP_RATE_PER_MINUTE": "1000"}


@pytest.fixture(scope="module")
def plain_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One ``s3drop serve`` with the defaults, for the tests that only send it a request or two
    and read their own answers or log lines (text logs, HEAD)."""
    with shared_server(tmp_path_factory, "ops") as server:
        yield server


def fresh() -> httpx.HTTPTransport:
    """One request per connection, so that requests spread over the workers."""
    return httpx.HTTPTransport(limits=httpx.Limits(max_keepalive_connections=0))


def json_lines(server: LiveServer) -> list[dict[str, Any]]:
    """Every JSON log line of the server (the first line, the CLI's banner, is text)."""
    return [json.loads(line) for line in server.output().splitlines() if line.startswith("{")]


def access(server: LiveServer) -> dict[str, dict[str, Any]]:
    """The access log by request path (paths carry a unique ``trace`` in these tests)."""
    return {line["path"]: line for line in json_lines(server) if line["logger"] == "uvicorn.access"}


def wait_for(check: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"not {what} within {seconds} s")


# --- /healthz and /readyz --------------------------------------------------------------------


def test_readyz_answers_503_with_the_reason_while_the_data_folder_is_unusable(
    app_server: AppServer, tmp_path: Path
) -> None:
    with app_server.client() as http:
        assert http.get("/healthz").json() == {"status": "ok"}
        ready = http.get("/readyz")
        assert (ready.status_code, ready.json()) == (200, {"status": "ready"})
        # Root ignores permissions, so chmod proves nothing: put a file where the folder was.
        aside = app_server.data_dir.rename(tmp_path / "aside")
        app_server.data_dir.write_text("not a folder")
        try:
            broken = http.get("/readyz")
            assert broken.status_code == 503
            error = broken.json()["error"]
            assert error["code"] == "storage_unavailable"
            assert str(app_server.data_dir) in error["message"]
            assert "not writable" in error["message"]
            assert http.get("/healthz").status_code == 200  # alive, just not ready
        finally:
            app_server.data_dir.unlink()
            aside.rename(app_server.data_dir)
        again = http.get("/readyz")
        assert (again.status_code, again.json()) == (200, {"status": "ready"})


@pytest.mark.s3
def test_readyz_follows_rgw_going_away_and_coming_back(
    make_server: Callable[..., LiveServer], rgw: RGW, bucket: str
) -> None:
    server = make_server(env=rgw.env(bucket))
    http = server.client()

    def status() -> int:
        return http.get("/readyz").status_code

    assert status() == 200
    try:
        rgw.stop()
        stopped = time.monotonic()
        wait_for(lambda: status() == 503, 60, "503 after RGW stopped")
        down = time.monotonic() - stopped
        error = http.get("/readyz").json()["error"]
        assert error["code"].startswith("storage")
        assert error["message"]
    finally:
        rgw.restart()
        wait_for(lambda: _answers(rgw.endpoint), 120, "RGW answering again")
    back = time.monotonic()
    wait_for(lambda: status() == 200, 60, "200 after RGW came back")
    assert http.get("/readyz").json() == {"status": "ready"}
    http.close()
    print(
        f"/readyz: 503 {down:.1f} s after RGW stopped ({error['code']}: {error['message']}); "
        f"200 {time.monotonic() - back:.1f} s after it answered again"
    )


def test_readyz_gives_up_on_storage_that_never_answers(
    make_app: Callable[..., AppServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An endpoint that accepts connections and never answers: 503 after READY_TIMEOUT.
    In-process: the app's own deadline is the point, not a process; it is shortened to 1 s here
    (the same code path, 4 s less waiting)."""
    timeout = 1.0
    monkeypatch.setattr(ops, "READY_TIMEOUT", timeout)
    with socket.create_server(("127.0.0.1", 0)) as silent:
        endpoint = f"http://127.0.0.1:{silent.getsockname()[1]}"
        server = make_app(
            env={
                "AWS_ACCESS_KEY_ID": "test",
                "AWS_SECRET_ACCESS_KEY": "test-secret",
                "AWS_REGION": "us-east-1",
                "AWS_ENDPOINT_URL_S3": endpoint,
                "S3DROP_BUCKET": "silent",
            }
        )
        with server.client() as http:
            started = time.monotonic()
            answer = http.get("/readyz", timeout=30)
            waited = time.monotonic() - started
    assert answer.status_code == 503
    assert answer.json()["error"] == {
        "code": "storage_unavailable",
        "message": f"storage did not answer within {timeout:.0f} s",
    }
    assert timeout <= waited < timeout + 3


def _answers(url: str) -> bool:
    try:
        httpx.get(url, timeout=2)
    except httpx.HTTPError:
        return False
    return True


# --- several workers ----------------------------------------------------------------------------


def test_three_workers_agree_on_signatures(
    make_server: Callable[..., LiveServer], tmp_path: Path
) -> None:
    """A form signed by one worker is accepted by another: the signing secret lives in the data
    folder, shared by every worker. Which worker served what is read from the JSON access log
    (each line carries its process id); each request carries a unique ``trace`` in its query."""
    server = make_server(args=["--workers", "3", "--log-format", "json"], env=LIMITS)

    def started() -> set[int]:
        return {
            line["pid"]
            for line in json_lines(server)
            if line["message"].startswith("Started server process")
            if "message" in line
        }

    wait_for(lambda: len(started()) == 3, 30, "three workers started")
    workers = started()
    path = tmp_path / "a.png"
    noise_png(path, 16)
    crossed = None
    with Client(server.url, transport=fresh()) as client:
        for round_ in range(40):
            form = client.sign(filename="a.png", content_type="image/png", size=path.stat().st_size)
            traced = dataclasses.replace(form, url=f"{form.url}?trace=post-{round_}")
            client.post_file(traced, path)
            # The audit line of the sign names the key; the JSON formatter adds the pid.
            sign_pid = next(
                line["pid"]
                for line in json_lines(server)
                if line.get("event") == "sign" and line.get("key") == form.key
            )
            post = access(server)[f"/storage?trace=post-{round_}"]
            assert post["status"] == 204
            if sign_pid != post["pid"]:
                crossed = (form, sign_pid, post["pid"])
                break
        assert crossed is not None, "40 rounds and every upload went to its signer"
        form, sign_pid, post_pid = crossed
        stored = server.data_dir / "objects" / form.key
        assert stored.read_bytes() == path.read_bytes()
    served = {line["pid"] for line in json_lines(server) if line["logger"] == "uvicorn.access"}
    assert len(workers) == 3
    assert served <= workers
    assert sign_pid in workers
    assert post_pid in workers
    print(f"signed by worker {sign_pid}, stored by worker {post_pid} (round {round_})")


@pytest.mark.s3
def test_three_workers_on_rgw_complete_what_another_signed(
    make_server: Callable[..., LiveServer], rgw: RGW, bucket: str, tmp_path: Path
) -> None:
    """On S3 the upload goes to storage; the completion may reach any worker, and any worker
    finds and verifies what another signed (audit lines carry the pid in JSON logs)."""
    server = make_server(
        args=["--workers", "3", "--log-format", "json"], env={**rgw.env(bucket), **LIMITS}
    )
    path = tmp_path / "a.png"

    def pid_of(event: str, key_start: str) -> int:
        return next(
            line["pid"]
            for line in json_lines(server)
            if line.get("event") == event and str(line.get("key", "")).startswith(key_start)
        )

    crossed = None
    with Client(server.url, transport=fresh()) as client:
        for _ in range(40):
            original = noise_png(path, 16)  # new bytes each time: the same again is a duplicate
            image = client.upload(path)
            signer = pid_of("sign", f"incoming/{image['id']}.")
            completer = pid_of("accept", f"images/{image['id']}.")
            if signer != completer:
                crossed = (image, signer, completer)
                break
    assert crossed is not None, "40 uploads and every completion went to the signer"
    image, signer, completer = crossed
    assert httpx.get(image["url"]).content == original

    def started() -> set[int]:
        return {
            line["pid"]
            for line in json_lines(server)
            if line.get("message", "").startswith("Started server process")
        }

    wait_for(lambda: len(started()) == 3, 30, "three workers started")
    workers = started()
    assert len(workers) == 3
    assert {signer, completer} <= workers


def test_metrics_count_the_uploads_just_made_across_workers(
    make_server: Callable[..., LiveServer], tmp_path: Path
) -> None:
    server = make_server(args=["--workers", "2", "--log-format", "json"], env=LIMITS)

    def storing_workers() -> set[int]:
        return {
            line["pid"]
            for line in json_lines(server)
            if line["logger"] == "uvicorn.access" and line["path"] == "/storage"
        }

    sizes = []
    accepted_bytes = 0
    with Client(server.url, transport=fresh()) as client:
        # Accepted: at least three, and until both workers have stored some (which one accepts a
        # connection is the kernel's choice), so the totals below must add up both.
        for index in range(30):
            path = tmp_path / f"ok-{index}.png"
            sizes.append(len(noise_png(path, 20 + index)))
            accepted_bytes += client.upload(path)["bytes"]
            if index >= 2 and len(storing_workers()) == 2:
                break
        accepted = len(sizes)
        # Rejected by verification: a PNG cut short.
        truncated = tmp_path / "cut.png"
        data = noise_png(truncated, 40)
        truncated.write_bytes(data[: len(data) // 2])
        sizes.append(len(data) // 2)
        with pytest.raises(ImageRejected) as rejected:
            client.upload(truncated)
        # Refused when signing (not counted as signed), and refused by storage (a changed form).
        with pytest.raises(TypeNotAllowed):
            client.sign(filename="a.gif", content_type="image/gif", size=10)
        with pytest.raises(FileTooLarge):
            client.sign(filename="a.png", content_type="image/png", size=10**12)
        form = client.sign(filename="a.png", content_type="image/png", size=100)
        changed = dataclasses.replace(form, fields={**form.fields, "key": "images/x.png"})
        with pytest.raises(S3Error):
            client.post_file(changed, tmp_path / "ok-0.png")
    # A request's latency is recorded just after its answer is sent: wait for the last one.
    last = (
        "s3drop_http_request_duration_seconds_count",
        (("method", "POST"), ("route", "/storage"), ("status", "403")),
    )
    wait_for(
        lambda: _samples(httpx.get(f"{server.url}/metrics")).get(last) == 1, 10, "all recorded"
    )
    # Whichever worker answers /metrics, it counts every worker's work.
    answers = [_samples(httpx.get(f"{server.url}/metrics")) for _ in range(6)]
    assert _same_but_for_metrics_latency(answers)
    samples = answers[-1]
    assert (
        samples[("s3drop_uploads_signed_total", (("content_type", "image/png"),))] == accepted + 2
    )
    assert samples[("s3drop_uploads_received_total", ())] == accepted + 1
    assert samples[("s3drop_received_bytes_total", ())] == sum(sizes)
    assert samples[("s3drop_posts_refused_total", (("code", "AccessDenied"),))] == 1
    assert samples[("s3drop_uploads_accepted_total", ())] == accepted
    reason = (("reason", rejected.value.code),)
    assert samples[("s3drop_uploads_rejected_total", reason)] == 1
    assert samples[("s3drop_accepted_bytes_total", ())] == accepted_bytes
    assert samples[("s3drop_verification_seconds_count", ())] == accepted + 1
    latency: dict[str, float] = {}
    for (name, labels), value in samples.items():
        route, status = dict(labels).get("route", ""), dict(labels).get("status")
        if name == "s3drop_http_request_duration_seconds_count" and status in _DONE:
            latency[route] = latency.get(route, 0) + value
    assert latency["/api/uploads"] == accepted + 2
    assert latency["/storage"] == accepted + 1
    complete = [route for route in latency if route.endswith("/complete")]
    assert complete, "completion requests are timed"
    assert "{" in complete[0], "latency is labelled by route template"
    assert latency[complete[0]] == accepted + 1
    assert len(storing_workers()) == 2, "the uploads were spread over both workers"
    print(f"{accepted} uploads accepted, stored by two workers, counted once each")


_DONE = ("200", "201", "204", "422")


def _samples(response: httpx.Response) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    found = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def _same_but_for_metrics_latency(answers: list[dict[Any, float]]) -> bool:
    """/metrics requests time themselves: those samples change between answers, nothing else."""

    def rest(answer: dict[Any, float]) -> dict[Any, float]:
        return {key: value for key, value in answer.items() if "/metrics" not in str(key[1])}

    return all(rest(answer) == rest(answers[0]) for answer in answers[1:])


def test_unmatched_paths_share_one_latency_label(app_server: AppServer) -> None:
    with app_server.client() as http:
        for path in ("/nope/1", "/nope/2", "/.env", "/wp-login.php"):
            assert http.get(path).status_code == 404
        samples = _samples(http.get("/metrics"))
    routes = {
        dict(labels)["route"]
        for (name, labels), _ in samples.items()
        if name == "s3drop_http_request_duration_seconds_count"
    }
    assert "unmatched" in routes
    assert not any("nope" in route or "wp-login" in route for route in routes)


@pytest.mark.parametrize("workers", [1, 2])
def test_metrics_folder_is_made_for_the_workers_and_removed_at_exit(
    make_server: Callable[..., LiveServer], tmp_path: Path, workers: int
) -> None:
    temp = tmp_path / "temp"
    temp.mkdir()
    server = make_server(args=["--workers", str(workers)], env={"TMPDIR": str(temp)})
    with server.client() as http:
        http.get("/metrics")
    folders = list(temp.glob("s3drop-metrics-*"))
    assert len(folders) == 1
    assert list(folders[0].glob("*.db")), "the workers write their samples there"
    server.stop()
    assert server.process.returncode == 0
    assert list(temp.glob("s3drop-metrics-*")) == []


# --- logs ---------------------------------------------------------------------------------------


def test_json_logs_are_one_object_per_line_without_signatures(
    make_server: Callable[..., LiveServer],
) -> None:
    server = make_server(args=["--log-format", "json"])
    secret = "0123456789abcdef" * 4
    with server.client() as http:
        http.get(f"/storage/incoming/x.png?expires=1&signature={secret}")
        http.get("/healthz")
    server.stop()
    lines = server.output().splitlines()
    assert lines[0].startswith("s3drop ")  # the banner, on the terminal before logging starts
    entries = [json.loads(line) for line in lines[1:]]  # every other line is JSON
    assert {"time", "level", "logger", "pid"} <= set(entries[0])
    reads = [entry for entry in entries if entry.get("method") == "GET"][-2:]
    assert [entry["status"] for entry in reads] == [403, 200]
    assert reads[0]["path"] == "/storage/incoming/x.png?expires=1&signature=REDACTED"
    assert secret not in server.output()


def test_text_logs_redact_signatures_too(plain_server: LiveServer) -> None:
    secret = "fedcba9876543210" * 4
    with plain_server.client() as http:
        http.get(f"/storage/incoming/x.png?expires=1&signature={secret}")
    # Its access line, once the log has settled (written by the server's log thread).
    assert "/storage/incoming/x.png?expires=1&signature=REDACTED" in plain_server.output()
    assert secret not in plain_server.output()


def test_json_formatter_keeps_extras_and_audit_fields() -> None:
    formatter = JSONFormatter()
    record = logging.LogRecord("s3drop.audit", logging.INFO, "", 0, '{"event":"sign"}', None, None)
    entry = json.loads(formatter.format(record))
    assert (entry["event"], entry["logger"], entry["level"]) == ("sign", "s3drop.audit", "info")
    record = logging.LogRecord("s3drop", logging.WARNING, "", 0, "hello %s", ("you",), None)
    record.key = "images/1.png"
    entry = json.loads(formatter.format(record))
    assert (entry["message"], entry["key"]) == ("hello you", "images/1.png")
    assert redact("/a?X-Amz-Signature=abc&x=1&token=t") == (
        "/a?X-Amz-Signature=REDACTED&x=1&token=REDACTED"
    )


# --- graceful shutdown --------------------------------------------------------------------------


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_lets_an_upload_in_flight_finish(
    make_server: Callable[..., LiveServer], tmp_path: Path, workers: int
) -> None:
    server = make_server(args=["--workers", str(workers)], env=LIMITS)
    path = tmp_path / "slow.png"
    original = noise_png(path, 300)  # ~270 KB: several of httpx's 64 KiB chunks
    client = Client(server.url, retries=0)
    form = client.sign(filename="slow.png", content_type="image/png", size=len(original))
    sending, release = threading.Event(), threading.Event()
    outcome: list[BaseException | None] = []

    def held(sent: int, total: int) -> None:
        # Part of the body is on the wire: hold the rest back until the server has been told to
        # stop and refuses new requests, so the upload is in flight through the whole shutdown.
        if 0 < sent < total and not release.is_set():
            sending.set()
            release.wait(30)

    def upload() -> None:
        try:
            client.post_file(form, path, progress=held)
        except BaseException as exc:
            outcome.append(exc)
        else:
            outcome.append(None)

    thread = threading.Thread(target=upload)
    thread.start()
    assert sending.wait(10)
    time.sleep(0.3)
    stopped = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    # Soon no new request is served (refused, or left unanswered), while the upload goes on.
    deadline, refused = time.monotonic() + 3, False
    while not refused and time.monotonic() < deadline:
        try:
            httpx.get(f"{server.url}/healthz", timeout=0.5)
        except httpx.TransportError:
            refused = True
        else:
            time.sleep(0.1)
    assert thread.is_alive(), "the upload ended before the server was told to stop"
    release.set()
    assert refused, "still serving new requests 3 s after SIGTERM"
    thread.join(30)
    assert outcome == [None], "the upload in flight was cut off"
    assert server.process.wait(20) == 0
    print(f"{workers} worker(s): exited {time.monotonic() - stopped:.1f} s after SIGTERM")
    assert (server.data_dir / "objects" / form.key).read_bytes() == original
    client.close()


def test_head_answers_like_get(plain_server: LiveServer) -> None:
    """Uptime checkers use HEAD."""
    for path in ("/", "/healthz"):
        answer = httpx.head(f"{plain_server.url}{path}")
        assert answer.status_code == 200, path
        assert answer.content == b""
