"""Signed webhooks, received by a real HTTP server in the test that checks every delivery with
``s3drop.webhooks.verify`` (the receiver a host in another language would write).

The flow tests run ``s3drop serve`` in a subprocess pointed at that receiver: each accepted image
arrives exactly once (also when its completion is retried or raced), a 500 is retried with the same
delivery id, a replayed delivery is refused, and the request that caused a webhook is answered while
the receiver is still holding the delivery.
"""

from __future__ import annotations

import concurrent.futures
import http.server
import json
import logging
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx
import pytest

from s3drop import Principal, Settings, WebhookRefused
from s3drop._errors import ConfigurationError
from s3drop._outbox import WebhookSender
from s3drop._policy import encode_meta, new_upload_id, quarantine_key
from s3drop._uploads import S3Drop
from s3drop.webhooks import (
    RecentIds,
    generate_secret,
    sign,
    signed_headers,
    verify,
)

from . import samples
from .conftest import LiveServer
from .inprocess import AppServer

SECRET = generate_secret()


@dataclass
class Delivery:
    headers: dict[str, str]
    body: bytes
    status: int
    type: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


class Receiver:
    """A webhook receiver on a free loopback port: verifies, remembers ids, answers as told."""

    def __init__(self, secret: str = SECRET) -> None:
        self.secret = secret
        self.deliveries: list[Delivery] = []
        self.seen: set[str] = set()
        self.failures = 0  # answer 500 to this many verified deliveries first
        self.hold: threading.Event | None = None  # when set, hold each delivery until released
        self.entered = threading.Event()  # a delivery arrived (and is maybe being held)
        self.arrived = threading.Condition()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                headers = {name.lower(): value for name, value in self.headers.items()}
                receiver.entered.set()
                if receiver.hold is not None:
                    receiver.hold.wait(30)
                status, kind, data = 204, None, {}
                try:
                    if receiver.failures:
                        # A receiver that fails before it records the id: the retry must pass.
                        verify(receiver.secret, headers, body)
                        receiver.failures -= 1
                        status = 500
                    else:
                        event = verify(receiver.secret, headers, body, seen=receiver.seen)
                        kind, data = event.type, event.data
                except WebhookRefused:
                    status = 400
                with receiver.arrived:
                    receiver.deliveries.append(Delivery(headers, body, status, kind, data))
                    receiver.arrived.notify_all()
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/s3drop"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def accepted(self) -> list[Delivery]:
        return [d for d in self.deliveries if d.status == 204]

    def wait_for(self, count: int, timeout: float = 20.0) -> list[Delivery]:
        """Until ``count`` deliveries were answered 204; all deliveries so far."""
        with self.arrived:
            done = self.arrived.wait_for(lambda: len(self.accepted()) >= count, timeout)
        assert done, f"{len(self.accepted())} of {count} deliveries: {self.deliveries}"
        return list(self.deliveries)

    def stop(self) -> None:
        if self.hold is not None:
            self.hold.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiving = Receiver()
    yield receiving
    receiving.stop()


def hooked_env(receiver: Receiver) -> dict[str, str]:
    return {
        "S3DROP_WEBHOOK_URL": receiver.url,
        "S3DROP_WEBHOOK_SECRET": SECRET,
        "S3DROP_WEBHOOK_BACKOFF": "0.05",
        "S3DROP_RATE_PER_MINUTE": "10000",
    }


@pytest.fixture
def hooked_app(make_app: Callable[..., AppServer], receiver: Receiver) -> Iterator[AppServer]:
    """The app in-process, sending its webhooks to ``receiver`` (HTTP and the outbox are the
    point, not a process); its outbox stopped at the end, before the receiver is (the decode
    workers stay: other in-process apps of this process share them)."""
    server = make_app(env=hooked_env(receiver))
    yield server
    drop: S3Drop = server.app.state.drop  # type: ignore[attr-defined]
    assert drop.webhooks is not None
    drop.webhooks.close()


def upload(server: LiveServer | AppServer, http: httpx.Client, data: bytes) -> str:
    """Sign and post ``data`` to the server's storage; its upload id."""
    claim = {"filename": "cat.png", "content_type": "image/png", "size": len(data)}
    signed = http.post("/api/uploads", json=claim)
    assert signed.status_code == 201, signed.text
    form = signed.json()["upload"]
    posted = http.post(  # the form's URL is absolute (relative before mount's merge)
        urljoin(server.url + "/", form["url"]),
        data=form["fields"],
        files={"file": ("cat.png", data)},
    )
    assert posted.status_code in (200, 201, 204), posted.text
    upload_id: str = form["id"]
    return upload_id


# --- signing ------------------------------------------------------------------------------------


def test_the_signature_is_the_standard_webhooks_one() -> None:
    """The published Standard Webhooks test vector: any of its libraries verifies s3drop."""
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    expected = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    assert sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body) == expected


def test_verify_refuses_what_is_not_a_fresh_delivery_of_this_secret() -> None:
    body = b'{"type":"image.deleted","timestamp":"2026-12-01T00:00:00.000Z","data":{"id":"x"}}'
    headers = signed_headers(SECRET, "image.deleted.x", body)
    event = verify(SECRET, headers, body)
    assert (event.id, event.type, event.data) == ("image.deleted.x", "image.deleted", {"id": "x"})
    upper = {name.title(): value for name, value in headers.items()}  # header case is free
    assert verify(SECRET, upper, body.decode()).id == "image.deleted.x"
    refusals = {
        "wrong secret": (generate_secret(), headers, body, {}),
        "changed body": (SECRET, headers, body.replace(b'"x"', b'"y"'), {}),
        "no signature": (SECRET, {**headers, "webhook-signature": ""}, body, {}),
        "stale": (SECRET, headers, body, {"now": time.time() + 301}),
        "from the future": (SECRET, headers, body, {"now": time.time() - 301}),
        "bad timestamp": (SECRET, {**headers, "webhook-timestamp": "soon"}, body, {}),
    }
    for name, (secret, given, raw, options) in refusals.items():
        with pytest.raises(WebhookRefused) as refused:
            verify(secret, given, raw, **options)
        assert refused.value.status == 400, name
    seen: set[str] = set()
    verify(SECRET, headers, body, seen=seen)
    with pytest.raises(WebhookRefused, match="already received"):
        verify(SECRET, headers, body, seen=seen)


def test_a_webhook_needs_a_well_formed_secret(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="S3DROP_WEBHOOK_SECRET"):
        Settings(data_dir=tmp_path, webhook_url="http://127.0.0.1:9/hook")
    with pytest.raises(ConfigurationError, match=r"S3DROP_WEBHOOK_SECRET.*whsec_"):
        Settings(data_dir=tmp_path, webhook_url="http://127.0.0.1:9/h", webhook_secret="short")
    with pytest.raises(ConfigurationError, match="S3DROP_WEBHOOK_URL"):
        Settings(data_dir=tmp_path, webhook_url="ftp://x", webhook_secret=SECRET)


def test_the_cli_makes_a_secret() -> None:
    made = subprocess.run(
        [sys.executable, "-m", "s3drop", "webhook-secret"], capture_output=True, text=True
    )
    assert made.returncode == 0, made.stderr
    secret = made.stdout.strip()
    assert secret.startswith("whsec_")
    assert secret != SECRET
    assert Settings(webhook_url="http://127.0.0.1:9/h", webhook_secret=secret).webhook_secret


# --- delivery, through a live server ------------------------------------------------------------


def test_each_accepted_image_arrives_once_signed(hooked_app: AppServer, receiver: Receiver) -> None:
    """Completed, completed again, and raced by five concurrent completes: one delivery each."""
    server = hooked_app
    with server.client() as http:
        first = upload(server, http, samples.png(1, (40, 30)))
        answer = http.post(f"/api/uploads/{first}/complete")
        assert answer.status_code == 200, answer.text
        again = http.post(f"/api/uploads/{first}/complete")  # a retried complete
        assert again.status_code == 200
        raced = upload(server, http, samples.png(2, (40, 30)))
        with concurrent.futures.ThreadPoolExecutor(5) as pool:
            answers = list(
                pool.map(
                    lambda _: http.post(f"/api/uploads/{raced}/complete", timeout=30),
                    range(5),
                )
            )
        assert [a.status_code for a in answers] == [200] * 5
    deliveries = receiver.wait_for(2)
    time.sleep(0.5)  # a duplicate would be on its way by now (the outbox retries in 50 ms)
    assert len(receiver.deliveries) == 2, receiver.deliveries
    got = {d.data["id"]: d for d in deliveries}
    assert sorted(got) == sorted([first, raced])
    image = answer.json()["image"]
    delivery = got[first]
    assert delivery.type == "image.accepted"
    assert delivery.headers["webhook-id"] == f"image.accepted.{first}"
    assert delivery.headers["content-type"] == "application/json"
    assert delivery.headers["webhook-signature"].startswith("v1,")
    body = json.loads(delivery.body)
    assert body["type"] == "image.accepted"
    assert body["timestamp"].endswith("Z")
    signed_urls = ("url", "thumbnail_url")  # signed again for the webhook: same facts otherwise
    assert {k: v for k, v in body["data"].items() if k not in signed_urls} == {
        **{k: v for k, v in image.items() if k not in signed_urls},
        "sha256": body["data"]["sha256"],
        "owner": "anonymous",
        "principal": "anonymous",
    }
    assert len(body["data"]["sha256"]) == 64
    # The wrong secret does not verify what the right one did.
    with pytest.raises(WebhookRefused, match="does not match"):
        verify(generate_secret(), delivery.headers, delivery.body)


def test_two_workers_racing_on_one_upload_send_one_webhook(
    make_server: Any, receiver: Receiver
) -> None:
    """Two server processes race six completes of each upload: the claim in the limits store lets
    one of them promote and announce it (one ``accept`` in the audit trail per image), and the
    outbox they share keys events by id besides: one delivery per image."""
    server: LiveServer = make_server(env={**hooked_env(receiver), "S3DROP_WORKERS": "2"})
    ids = []
    with server.client() as http:
        for seed in range(3):
            upload_id = upload(server, http, samples.png(10 + seed, (40, 30)))
            ids.append(upload_id)
            with concurrent.futures.ThreadPoolExecutor(6) as pool:
                answers = list(
                    pool.map(
                        lambda _, u=upload_id: httpx.post(
                            f"{server.url}/api/uploads/{u}/complete", timeout=30
                        ),
                        range(6),
                    )
                )
            assert [a.status_code for a in answers] == [200] * 6, [a.text for a in answers]
    deliveries = receiver.wait_for(3)
    time.sleep(0.5)
    assert len(receiver.deliveries) == 3, receiver.deliveries
    assert sorted(d.data["id"] for d in deliveries) == sorted(ids)
    assert server.output().count('"event":"accept"') == 3


def test_a_500_is_retried_and_a_replay_is_refused(
    hooked_app: AppServer, receiver: Receiver
) -> None:
    receiver.failures = 2
    server = hooked_app
    with server.client() as http:
        upload_id = upload(server, http, samples.png(3, (40, 30)))
        assert http.post(f"/api/uploads/{upload_id}/complete").status_code == 200
    deliveries = receiver.wait_for(1)
    assert [d.status for d in deliveries] == [500, 500, 204]
    assert {d.headers["webhook-id"] for d in deliveries} == {f"image.accepted.{upload_id}"}
    retried = [line for line in server.output().splitlines() if "answered 500" in line]
    assert len(retried) == 2, server.output()
    # The same delivery sent again (an attacker who saw it, or a proxy that repeats it): refused.
    replay = httpx.post(receiver.url, content=deliveries[-1].body, headers=deliveries[-1].headers)
    assert replay.status_code == 400
    assert receiver.deliveries[-1].status == 400
    assert len(receiver.accepted()) == 1
    # And once its timestamp is stale, even a receiver that forgot the id refuses it.
    stamp = int(deliveries[-1].headers["webhook-timestamp"])
    with pytest.raises(WebhookRefused, match="at most 300 s"):
        verify(SECRET, deliveries[-1].headers, deliveries[-1].body, now=stamp + 301)


def test_the_request_is_answered_before_the_slow_receiver(
    hooked_app: AppServer, receiver: Receiver
) -> None:
    """The receiver holds every delivery until the test lets go: the completion is answered,
    and a rejection and a delete after it too, while the receiver holds the first delivery."""
    receiver.hold = threading.Event()
    server = hooked_app
    with server.client() as http:
        upload_id = upload(server, http, samples.png(4, (40, 30)))
        assert http.post(f"/api/uploads/{upload_id}/complete").status_code == 200
        assert receiver.entered.wait(10)  # image.accepted is at the receiver, unanswered
        bad = upload(server, http, b"<html>not an image</html>")
        refused = http.post(f"/api/uploads/{bad}/complete")
        assert refused.status_code == 422
        assert http.delete(f"/api/images/{upload_id}").status_code == 204
    assert receiver.deliveries == []  # nothing answered yet: the receiver is still holding
    receiver.hold.set()
    deliveries = receiver.wait_for(3)
    assert [(d.type, d.status) for d in deliveries] == [
        ("image.accepted", 204),
        ("image.rejected", 204),
        ("image.deleted", 204),
    ]
    assert deliveries[1].data == {
        "upload_id": bad,
        "error": {"code": "not_an_image", "message": refused.json()["error"]["message"]},
        "principal": "anonymous",
    }
    assert deliveries[2].data == {"id": upload_id, "principal": "anonymous"}


def test_s3drop_rm_sends_image_deleted(tmp_path: Path, receiver: Receiver) -> None:
    data_dir = tmp_path / "data"
    drop = S3Drop(Settings(data_dir=data_dir))
    upload_id = new_upload_id()
    drop.storage.put(
        quarantine_key(upload_id, "image/png"),
        samples.png(5, (40, 30)),
        content_type="image/png",
        metadata={"filename": encode_meta("a.png")},
    )
    drop.complete(upload_id)
    env = {"S3DROP_DATA_DIR": str(data_dir), **hooked_env(receiver)}
    removed = subprocess.run(
        [sys.executable, "-m", "s3drop", "rm", "--direct", upload_id],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        cwd=tmp_path,
    )
    assert removed.returncode == 0, removed.stderr
    (delivery,) = receiver.wait_for(1, timeout=1)  # sent before the command exited
    assert (delivery.type, delivery.data) == ("image.deleted", {"id": upload_id, "principal": None})


def drained(sender: WebhookSender) -> None:
    """Wait until the sender's outbox holds nothing undelivered."""
    deadline = time.monotonic() + 10
    while sender.pending() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sender.pending() == 0


# --- the outbox ---------------------------------------------------------------------------------


def test_the_outbox_survives_a_restart_and_is_bounded(
    tmp_path: Path, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "webhooks.sqlite3"
    first = WebhookSender(receiver.url, SECRET, path=path, max_queue=2)  # never started
    body = {"type": "image.deleted", "timestamp": "2026-12-01T00:00:00.000Z", "data": {"id": "a"}}
    assert first.send("image.deleted.a", body)
    assert not first.send("image.deleted.a", body)  # the same event twice is queued once
    assert first.send("image.deleted.b", {**body, "data": {"id": "b"}})
    assert not first.send("image.deleted.c", {**body, "data": {"id": "c"}})  # full: dropped
    assert "webhook outbox full (2 undelivered events): dropped image.deleted.c" in caplog.text
    first.close()  # a process that stopped before sending
    second = WebhookSender(receiver.url, SECRET, path=path, backoff=0.05)
    second.start()
    try:
        deliveries = receiver.wait_for(2)
        assert sorted(d.data["id"] for d in deliveries) == ["a", "b"]
        drained(second)
        assert not second.send("image.deleted.a", body)  # delivered ids are remembered a day
    finally:
        second.close()
    time.sleep(0.2)
    assert len(receiver.deliveries) == 2


def test_a_4xx_is_final_and_retries_are_bounded(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A 404 is not retried; a receiver that refuses connections, times out or keeps answering
    503 is tried ``attempts`` times."""
    calls: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        if request.url.path == "/gone":
            return httpx.Response(404)
        if request.url.path == "/slow":
            raise httpx.ReadTimeout("timed out", request=request)
        if request.url.path == "/busy":
            return httpx.Response(503)
        raise httpx.ConnectError("refused", request=request)

    for path, tries in [("/gone", 1), ("/down", 3), ("/slow", 3), ("/busy", 3)]:
        sender = WebhookSender(
            f"http://receiver.test{path}",
            SECRET,
            path=tmp_path / f"{path[1:]}.sqlite3",
            attempts=3,
            backoff=0.01,
            transport=httpx.MockTransport(answer),
        )
        sender.send("image.deleted.x", {"type": "image.deleted", "data": {"id": "x"}})
        sender.start()
        drained(sender)
        sender.close()
        assert calls.count(path) == tries
    assert "image.deleted.x to http://receiver.test/gone not retried after 1 attempt(s)" in (
        caplog.text
    )
    assert "giving up after 3 attempt(s): ConnectError" in caplog.text
    assert "giving up after 3 attempt(s): ReadTimeout" in caplog.text
    assert "giving up after 3 attempt(s): answered 503" in caplog.text


# --- the README's section, run ------------------------------------------------------------------


def readme_blocks(language: str) -> list[str]:
    """The ``language`` code blocks of the README's "Callbacks and webhooks" section."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme.split("### Callbacks and webhooks", 1)[1].split("\n## ", 1)[0]
    return re.findall(rf"```{language}\n(.*?)```", section, re.DOTALL)


def test_the_readme_callbacks_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("S3DROP_DATA_DIR", str(tmp_path / "data"))
    callbacks, _ = readme_blocks("python")
    rows: list[dict[str, Any]] = []

    class Photo:  # the host's model, as the snippet uses it
        @staticmethod
        def create(**row: Any) -> None:
            rows.append(row)

        @staticmethod
        def delete_where(image_id: str) -> None:
            rows[:] = [row for row in rows if row["image_id"] != image_id]

    namespace: dict[str, Any] = {"Photo": Photo, "log": logging.getLogger("host")}
    exec(callbacks, namespace)  # noqa: S102 (the README's own code, run as written)
    drop: S3Drop = namespace["drop"]
    upload_id = new_upload_id()
    drop.storage.put(
        quarantine_key(upload_id, "image/png"),
        samples.png(6, (64, 48)),
        content_type="image/png",
        metadata={"filename": encode_meta("cat.png"), "owner": encode_meta("alice")},
    )
    drop.complete(upload_id)
    assert rows == [{"image_id": upload_id, "owner": "alice", "width": 64}]
    drop.delete_image(upload_id)
    assert rows == []


def test_the_readme_receiver_and_event_body(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    receiver: Receiver,
) -> None:
    """The receiver snippet accepts a real delivery once; the body shown has a real one's shape."""
    monkeypatch.setenv("S3DROP_WEBHOOK_SECRET", SECRET)
    _, receiver_code = readme_blocks("python")
    namespace: dict[str, Any] = {}
    exec(receiver_code, namespace)  # noqa: S102 (the README's own code, run as written)
    settings = Settings(
        data_dir=tmp_path / "data",
        public_url="https://uploads.example.com",
        webhook_url=receiver.url,
        webhook_secret=SECRET,
    )
    drop = S3Drop(settings)
    upload_id = new_upload_id()
    drop.storage.put(
        quarantine_key(upload_id, "image/png"),
        samples.png(7, (64, 48)),
        content_type="image/png",
        metadata={"filename": encode_meta("cat.png"), "owner": encode_meta("alice")},
    )
    drop.complete(upload_id, principal=Principal("alice"))
    (delivery,) = receiver.wait_for(1)
    drop.close()
    headers, body = delivery.headers, delivery.body
    assert namespace["receive"](headers, body) == 204
    assert capsys.readouterr().out == f"new image {upload_id} from alice\n"
    assert namespace["receive"](headers, body) == 400  # replayed
    assert namespace["receive"](headers, body.replace(b"alice", b"mallory")) == 400
    (shown,) = readme_blocks("json")
    example = json.loads(shown)
    real = json.loads(body)
    assert list(example) == list(real)
    assert list(example["data"]) == list(real["data"])
    assert {k: type(v) for k, v in example["data"].items()} == {
        k: type(v) for k, v in real["data"].items()
    }
    assert real["data"]["url"].startswith("https://uploads.example.com/storage/images/")


FORKED_CHILD = """
import os, sys, time
from pathlib import Path
from s3drop._outbox import WebhookSender

sender = WebhookSender(sys.argv[1], sys.argv[2], path=Path(sys.argv[3]))
sender.start()
ready, go = os.pipe()
pid = os.fork()
if pid == 0:  # a worker forked after the library was built (gunicorn --preload)
    os.read(ready, 1)  # the parent's thread has stopped: only this process's can send
    sender.send("image.deleted.child", {"type": "image.deleted", "data": {"id": "child"}})
    deadline = time.monotonic() + 10
    while sender.pending() and time.monotonic() < deadline:
        time.sleep(0.01)
    os._exit(0 if not sender.pending() else 1)
sender.close()
os.write(go, b"!")
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status))
"""


def test_a_forked_worker_sends_from_its_own_thread(tmp_path: Path, receiver: Receiver) -> None:
    ran = subprocess.run(
        [sys.executable, "-c", FORKED_CHILD, receiver.url, SECRET, str(tmp_path / "o.sqlite3")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert ran.returncode == 0, ran.stderr
    (delivery,) = receiver.wait_for(1)
    assert delivery.data == {"id": "child"}


def test_recent_ids_forget_what_verify_would_refuse_anyway() -> None:
    seen = RecentIds(ttl=0.2)
    seen.add("a")
    assert "a" in seen
    assert len(seen) == 1
    time.sleep(0.25)
    seen.add("b")
    assert "a" not in seen
    assert "b" in seen
    assert len(seen) == 1
