"""Does storage enforce every limit s3drop signs? The same cases against every backend.

Each case signs a form the way the app does (``S3Drop.presign``), then posts a real
``multipart/form-data`` body over HTTP with httpx: to s3drop's app for the local backend
(in-process, through httpx's ASGI transport; served by uvicorn in this process on a real socket
where a connection is the point), straight to Ceph RGW for the s3 backend. Every refusal asserts
the status and that nothing was stored: not at the signed key, and nothing else in the whole store
either. What each backend answered is collected into one table (see ``conftest.py``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import boto3
import httpx
import pytest
import uvicorn
from anyio.from_thread import start_blocking_portal
from tests.ceph.cluster import free_port
from tests.inprocess import AppServer

from s3drop import S3Drop, Settings, UploadForm
from s3drop._policy import encode_meta
from s3drop.storage._sigv4 import signing_key
from s3drop.storage.base import Storage
from s3drop.storage.local import LocalStorage
from s3drop.storage.s3 import S3Storage

MAX_BYTES = 64 * 1024
FILENAME = "café photo.png"
Record = Callable[[str, str, str], None]


@dataclass
class Target:
    """One backend under test: how to sign, where to post, how to look into storage."""

    name: str
    settings: dict[str, Any]
    storage: Storage
    base_url: str  # what root-relative form URLs resolve against
    local_data: Path | None = None
    #: An HTTP client that reaches the backend (the local backend runs in-process).
    client: Callable[[], httpx.Client] = lambda: httpx.Client(timeout=30)

    def drop(self, **overrides: Any) -> S3Drop:
        """The library as the app uses it, signing for this backend."""
        return S3Drop(Settings(**{**self.settings, **overrides}), storage=self.storage)

    def sign(self, *, size: int = 1000, expires_in: int | None = None) -> UploadForm:
        overrides = {} if expires_in is None else {"expires_in": expires_in}
        return self.drop(**overrides).presign(
            content_type="image/png", size=size, filename=FILENAME
        )

    def url(self, form: UploadForm) -> str:
        return urljoin(self.base_url, form.url)

    def post(
        self, form: UploadForm, body: bytes, *, fields: dict[str, str] | None = None
    ) -> httpx.Response:
        """Post ``fields`` (default: the form's) and then ``body`` as the file, as a browser does."""
        with self.client() as client:
            return client.post(
                self.url(form),
                data=form.fields if fields is None else fields,
                files={"file": ("photo.png", body, "image/png")},
            )

    def keys(self) -> list[str]:
        """Every key in the store."""
        return [info.key for info in self.storage.iter_all("")]

    def leftovers(self) -> list[str]:
        """Partial files the local backend left in its temporary folder (none, ever)."""
        if self.local_data is None:
            return []
        return [path.name for path in (self.local_data / "tmp").iterdir()]


@pytest.fixture(params=["local", "rgw"])
def target(request: pytest.FixtureRequest, make_app: Callable[..., AppServer]) -> Iterator[Target]:
    """The backend a case posts to. The local backend's receiver answers in-process (httpx's
    ASGI transport): these cases are about what storage accepts, not about sockets (the one that
    hangs up a real connection takes ``live_target``)."""
    if request.param == "local":
        server = make_app()
        settings = {"data_dir": server.data_dir, "max_bytes": MAX_BYTES}
        storage = LocalStorage(Settings(**settings))
        yield Target("local", settings, storage, server.url, server.data_dir, server.client)
        return
    yield from _rgw_target(request)


@pytest.fixture(params=["local", "rgw"])
def live_target(
    request: pytest.FixtureRequest, make_app: Callable[..., AppServer]
) -> Iterator[Target]:
    """Like ``target``, with the local backend's app served by uvicorn on a real socket: in this
    process, on a loop thread of its own (the connection is the point, not an interpreter start)."""
    if request.param == "local":
        server = make_app()
        settings = {"data_dir": server.data_dir, "max_bytes": MAX_BYTES}
        storage = LocalStorage(Settings(**settings))
        port = free_port()
        config = uvicorn.Config(
            server.app, host="127.0.0.1", port=port, lifespan="off", log_level="warning"
        )
        uvicorn_server = uvicorn.Server(config)
        with start_blocking_portal() as portal:
            serving = portal.start_task_soon(uvicorn_server.serve)
            deadline = time.monotonic() + 30
            while not uvicorn_server.started:
                assert not serving.done(), serving.exception()
                assert time.monotonic() < deadline, "uvicorn did not start within 30 s"
                time.sleep(0.01)
            try:
                url = f"http://127.0.0.1:{port}"
                yield Target("local", settings, storage, url, local_data=server.data_dir)
            finally:
                uvicorn_server.should_exit = True
                serving.result(timeout=30)
        return
    yield from _rgw_target(request)


def _rgw_target(request: pytest.FixtureRequest) -> Iterator[Target]:
    rgw = request.getfixturevalue("rgw")
    bucket = request.getfixturevalue("bucket")
    settings = {
        "bucket": bucket,
        "endpoint_url": rgw.endpoint,
        "region": "us-east-1",
        "max_bytes": MAX_BYTES,
    }
    session = boto3.Session(aws_access_key_id=rgw.access_key, aws_secret_access_key=rgw.secret_key)
    storage = S3Storage(Settings(**settings), session=session)
    yield Target("rgw", settings, storage, rgw.endpoint)
    storage.client.close()


def answer(response: httpx.Response) -> str:
    """``"204"`` or ``"403 AccessDenied"``: the status and S3's error code, if any."""
    code = ""
    if "<Code>" in response.text:
        code = response.text.split("<Code>", 1)[1].split("</Code>", 1)[0]
    return f"{response.status_code} {code}".strip()


def png_bytes(size: int) -> bytes:
    """``size`` bytes that start like a PNG (storage does not look inside; s3drop does later)."""
    head = b"\x89PNG\r\n\x1a\n"
    return (head + hashlib.sha256(str(size).encode()).digest() * (size // 32 + 1))[:size]


#: What a form signed with another secret gets: S3 says SignatureDoesNotMatch (so does the local
#: backend); RGW 16 says AccessDenied.
UNTRUSTED_SIGNATURE = {"local": "SignatureDoesNotMatch", "rgw": "AccessDenied"}


def assert_refused(
    target: Target,
    form: UploadForm,
    response: httpx.Response,
    status: int,
    code: str | dict[str, str],
) -> None:
    """Refused with ``status`` and S3's error ``code`` (per backend where they differ, as the
    conformance table shows), and nothing stored: not at the key, nothing anywhere."""
    expected = code if isinstance(code, str) else code[target.name]
    assert answer(response) == f"{status} {expected}", response.text
    assert target.storage.head(form.key) is None
    assert target.keys() == []
    assert target.leftovers() == []


# --- accepted ---------------------------------------------------------------------------------


def test_valid_upload_is_stored_byte_identical(target: Target, record: Record) -> None:
    form = target.sign(size=5000)
    body = png_bytes(5000)
    response = target.post(form, body)
    record("valid upload", target.name, answer(response))
    assert response.status_code == 204, response.text
    info = target.storage.head(form.key)
    assert info is not None
    assert info.size == 5000
    assert info.content_type == "image/png"
    assert info.metadata["filename"] == encode_meta(FILENAME)
    assert target.storage.read(form.key) == body
    assert target.keys() == [form.key]
    assert form.key.startswith("incoming/")
    assert target.leftovers() == []


def test_body_exactly_at_the_limit_is_stored(target: Target, record: Record) -> None:
    form = target.sign(size=MAX_BYTES)
    response = target.post(form, png_bytes(MAX_BYTES))
    record("body exactly max bytes", target.name, answer(response))
    assert response.status_code == 204, response.text
    assert target.storage.read(form.key) == png_bytes(MAX_BYTES)


# --- refused: the body ------------------------------------------------------------------------


def test_body_over_the_range_is_refused(target: Target, record: Record) -> None:
    form = target.sign(size=MAX_BYTES)
    response = target.post(form, png_bytes(MAX_BYTES + 1))
    record("body max + 1 bytes", target.name, answer(response))
    assert_refused(target, form, response, 400, "EntityTooLarge")
    assert "EntityTooLarge" in response.text


def test_far_larger_body_is_refused(target: Target, record: Record) -> None:
    form = target.sign(size=1000)
    response = target.post(form, png_bytes(4 * 1024 * 1024))
    record("body 4 MiB (64x max)", target.name, answer(response))
    assert_refused(target, form, response, 400, "EntityTooLarge")
    assert "EntityTooLarge" in response.text


@pytest.mark.parametrize(
    ("signed", "sent", "code"),
    [
        (1000, 999, "EntityTooSmall"),
        (1000, 1001, "EntityTooLarge"),
        (1, MAX_BYTES, "EntityTooLarge"),
        (MAX_BYTES, 1, "EntityTooSmall"),
    ],
    ids=["one-byte-short", "one-byte-over", "signed-1-sent-max", "signed-max-sent-1"],
)
def test_a_body_of_another_size_than_signed_is_refused(
    target: Target, record: Record, signed: int, sent: int, code: str
) -> None:
    """The form takes exactly the size the client claimed (what the limits counted): storage
    itself refuses any other, by a byte either way, and stores nothing."""
    form = target.sign(size=signed)
    response = target.post(form, png_bytes(sent))
    record(f"signed {signed} bytes, sent {sent}", target.name, answer(response))
    assert_refused(target, form, response, 400, code)
    assert f"<Code>{code}</Code>" in response.text
    policy = json.loads(base64.b64decode(form.fields["policy"]))
    assert ["content-length-range", signed, signed] in policy["conditions"]


def test_empty_body_is_refused(target: Target, record: Record) -> None:
    form = target.sign()
    response = target.post(form, b"")
    record("empty body", target.name, answer(response))
    assert_refused(target, form, response, 400, "EntityTooSmall")
    assert "EntityTooSmall" in response.text


# --- refused: the form ------------------------------------------------------------------------


def test_wrong_content_type_is_refused(target: Target, record: Record) -> None:
    form = target.sign()
    fields = {**form.fields, "Content-Type": "text/html"}
    response = target.post(form, png_bytes(1000), fields=fields)
    record("Content-Type changed to text/html", target.name, answer(response))
    assert_refused(target, form, response, 403, "AccessDenied")


def test_forged_signature_is_refused(target: Target, record: Record) -> None:
    form = target.sign()
    signature = form.fields["x-amz-signature"]
    forged = ("0" if signature[0] != "0" else "1") + signature[1:]
    fields = {**form.fields, "x-amz-signature": forged}
    response = target.post(form, png_bytes(1000), fields=fields)
    record("forged x-amz-signature", target.name, answer(response))
    assert_refused(target, form, response, 403, UNTRUSTED_SIGNATURE)


def test_expired_policy_is_refused(
    target: Target, record: Record, signed_ago: Callable[[float], AbstractContextManager[None]]
) -> None:
    """Signed 10 s ago for 5 s: expired 5 s ago by storage's own clock (a fresh form is stored:
    ``test_valid_upload_is_stored_byte_identical``)."""
    with signed_ago(10):
        form = target.sign(expires_in=5)
    assert form.expires_at < datetime.now(UTC) - timedelta(seconds=4)
    response = target.post(form, png_bytes(1000))
    record("policy expired", target.name, answer(response))
    assert_refused(target, form, response, 403, "AccessDenied")


def test_key_changed_after_signing_is_refused(target: Target, record: Record) -> None:
    form = target.sign()
    other = form.key.replace("incoming/", "images/")
    fields = {**form.fields, "key": other}
    response = target.post(form, png_bytes(1000), fields=fields)
    record("key changed after signing", target.name, answer(response))
    assert_refused(target, form, response, 403, "AccessDenied")
    assert target.storage.head(other) is None


def test_extra_unsigned_field_is_refused(target: Target, record: Record) -> None:
    form = target.sign()
    fields = {**form.fields, "x-amz-meta-owner": "someone-else"}
    response = target.post(form, png_bytes(1000), fields=fields)
    record("extra field not in the policy", target.name, answer(response))
    assert_refused(target, form, response, 403, "AccessDenied")


def test_self_made_policy_is_refused(target: Target, record: Record) -> None:
    """A client writes its own generous policy and signs it with a secret it made up."""
    form = target.sign()
    policy = json.loads(base64.b64decode(form.fields["policy"]))
    policy["conditions"] = [
        ["content-length-range", 0, 5 * 1024**3] if isinstance(c, list) else c
        for c in policy["conditions"]
    ]
    policy["expiration"] = (datetime.now(UTC) + timedelta(days=7)).strftime("%Y-%m-%dT%H:%M:%SZ")
    encoded = base64.b64encode(json.dumps(policy).encode()).decode()
    date = form.fields["x-amz-date"][:8]
    region = form.fields["x-amz-credential"].split("/")[2]
    key = signing_key("a-secret-the-client-made-up", date, region)
    fields = {
        **form.fields,
        "policy": encoded,
        "x-amz-signature": hmac.new(key, encoded.encode(), hashlib.sha256).hexdigest(),
    }
    response = target.post(form, png_bytes(MAX_BYTES + 1), fields=fields)
    record("self-made policy, own signature", target.name, answer(response))
    assert_refused(target, form, response, 403, UNTRUSTED_SIGNATURE)


def test_policy_without_signature_is_refused(target: Target, record: Record) -> None:
    form = target.sign()
    fields = {k: v for k, v in form.fields.items() if k != "x-amz-signature"}
    response = target.post(form, png_bytes(1000), fields=fields)
    record("signature field missing", target.name, answer(response))
    assert response.status_code in {400, 403}, response.text
    assert_refused(target, form, response, response.status_code, "InvalidArgument")


# --- refused: the connection ------------------------------------------------------------------


def test_aborted_upload_stores_nothing(live_target: Target, record: Record) -> None:
    """The client sends the form and half the file, then hangs up."""
    target = live_target
    form = target.sign(size=MAX_BYTES)
    request = httpx.Request(
        "POST",
        target.url(form),
        data=form.fields,
        files={"file": ("photo.png", png_bytes(MAX_BYTES), "image/png")},
    )
    body = request.read()
    url = urlsplit(target.url(form))
    head = (
        f"POST {url.path or '/'} HTTP/1.1\r\nHost: {url.netloc}\r\n"
        f"Content-Type: {request.headers['content-type']}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    with socket.create_connection((url.hostname, url.port or 80), timeout=10) as sock:
        sock.sendall(head + body[: len(body) - MAX_BYTES // 2])
        time.sleep(0.3)
    # Give storage time to notice the hang-up and clean up, then look.
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and target.leftovers():
        time.sleep(0.1)
    time.sleep(0.5)
    assert target.storage.head(form.key) is None
    assert target.keys() == []
    assert target.leftovers() == []
    record("aborted mid-body", target.name, "nothing stored")


# --- signed reads -----------------------------------------------------------------------------


def _tamper(url: str, how: str, other_key: str) -> str:
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    if how == "signature":
        query = [
            (k, ("0" if v[0] != "0" else "1") + v[1:])
            if k.lower().endswith("signature")
            else (k, v)
            for k, v in query
        ]
    elif how == "expiry":
        query = [
            (k, str(int(v) + 3600)) if k.lower() in {"expires", "x-amz-expires"} else (k, v)
            for k, v in query
        ]
    else:  # another object, the same signature
        path = parts.path.rsplit("/incoming/", 1)[0] + "/" + other_key
        parts = parts._replace(path=path)
    return urlunsplit(parts._replace(query=urlencode(query)))


def test_presigned_get_returns_the_bytes_and_refuses_tampering(
    target: Target, record: Record
) -> None:
    forms = [target.sign(size=3000), target.sign(size=4000)]
    for form, size in zip(forms, (3000, 4000), strict=True):
        assert target.post(form, png_bytes(size)).status_code == 204
    url = urljoin(target.base_url, target.storage.presign_get(forms[0].key, expires_in=300))
    with target.client() as client:
        good = client.get(url)
        record("presigned GET", target.name, answer(good))
        assert good.status_code == 200
        assert good.content == png_bytes(3000)
        for how in ("signature", "expiry", "key"):
            bad = client.get(_tamper(url, how, forms[1].key))
            record(f"presigned GET, {how} tampered", target.name, answer(bad))
            assert bad.status_code == 403, (how, bad.text)
            assert png_bytes(3000) not in bad.content
            assert png_bytes(4000) not in bad.content


@pytest.mark.parametrize(
    "key",
    ["images/8204119722354gcvd3nvk3j.300x200.3000.png", "images/odd name ~ +%&=;,ü🐈.png"],
    ids=["image-key", "key-to-quote"],
)
def test_presigned_get_serves_the_original_filename(
    target: Target, record: Record, key: str
) -> None:
    """The gallery's signed reads (made without boto3 on S3): the object, under its filename."""
    data = png_bytes(3000)
    target.storage.put(key, data, content_type="image/png", metadata={})
    signed = target.storage.presign_get(key, expires_in=300, filename=FILENAME)
    url = urljoin(target.base_url, signed)
    case = "presigned GET with a filename" + (", key to quote" if "odd" in key else "")
    with target.client() as client:
        good = client.get(url)
        record(case, target.name, answer(good))
        assert good.status_code == 200, good.text
        assert good.content == data
        assert good.headers["content-disposition"] == (
            "inline; filename*=UTF-8''caf%C3%A9%20photo.png"
        )
        parts = urlsplit(url)
        query = [
            (k, v.replace("photo.png", "photo.html"))
            if k in {"filename", "response-content-disposition"}
            else (k, v)
            for k, v in parse_qsl(parts.query, keep_blank_values=True)
        ]
        bad = client.get(urlunsplit(parts._replace(query=urlencode(query))))
        record(f"{case}, filename tampered", target.name, answer(bad))
        assert bad.status_code == 403, bad.text
        assert data not in bad.content
