"""Does storage enforce every limit s3drop signs into a presigned PUT? The cases of
``test_post_policy.py`` for ``PUT``, against the local backend (s3drop's app, in-process) and Ceph
RGW: each signs as the app does (``S3Drop.presign(method="PUT")``) and sends the body with httpx.
Every refusal asserts the status and that nothing was stored anywhere in the store.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import boto3
import httpx
import pytest
from tests.conformance.test_post_policy import FILENAME, MAX_BYTES, Target, answer, png_bytes
from tests.inprocess import AppServer

from s3drop import Settings, UploadForm
from s3drop.storage.local import LocalStorage
from s3drop.storage.s3 import S3Storage

Record = Callable[[str, str, str], None]


@pytest.fixture(params=["local", "rgw"])
def put_target(
    request: pytest.FixtureRequest, make_app: Callable[..., AppServer]
) -> Iterator[Target]:
    """The backend a case puts to; the local backend's receiver answers in-process."""
    if request.param == "local":
        server = make_app()
        # The local backend signs the host: it must know the URL it is reached at.
        settings = {"data_dir": server.data_dir, "max_bytes": MAX_BYTES, "public_url": server.url}
        storage = LocalStorage(Settings(**settings))
        yield Target("local", settings, storage, server.url, server.data_dir, server.client)
        return
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


def sign_put(
    target: Target, *, size: int = 1000, sha256: str | None = None, expires_in: int | None = None
) -> UploadForm:
    overrides = {} if expires_in is None else {"expires_in": expires_in}
    form = target.drop(**overrides).presign(
        content_type="image/png", size=size, filename=FILENAME, sha256=sha256, method="PUT"
    )
    assert form.method == "PUT"
    return form


def put(
    target: Target,
    form: UploadForm,
    body: bytes,
    *,
    url: str | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """PUT ``body`` with the form's headers (or ``headers``), as a browser's fetch does."""
    with target.client() as client:
        return client.put(
            url or form.url, content=body, headers=form.headers if headers is None else headers
        )


def assert_refused(
    target: Target, form: UploadForm, response: httpx.Response, status: int, code: str
) -> None:
    """Refused with ``status`` and S3's error ``code``, and nothing stored anywhere."""
    assert "<Error>" in response.text  # S3's XML
    assert answer(response) == f"{status} {code}", response.text
    assert target.storage.head(form.key) is None
    assert target.keys() == []
    assert target.leftovers() == []


def _with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query.update(changes)
    return urlunsplit(parts._replace(query=urlencode(query)))


def test_put_valid_upload_is_stored_with_s3s_etag(put_target: Target, record: Record) -> None:
    body = png_bytes(5000)
    form = sign_put(put_target, size=5000, sha256=hashlib.sha256(body).hexdigest())
    response = put(put_target, form, body)
    record("PUT valid upload", put_target.name, answer(response))
    assert response.status_code == 200, response.text
    assert response.headers["etag"] == f'"{hashlib.md5(body, usedforsecurity=False).hexdigest()}"'
    info = put_target.storage.head(form.key)
    assert info is not None
    assert (info.size, info.content_type) == (5000, "image/png")
    assert info.metadata["filename"] == form.headers["x-amz-meta-filename"]
    assert put_target.storage.read(form.key) == body
    assert put_target.keys() == [form.key]


@pytest.mark.parametrize("delta", [1, -1])
def test_put_of_another_size_is_refused(put_target: Target, record: Record, delta: int) -> None:
    form = sign_put(put_target, size=1000)
    response = put(put_target, form, png_bytes(1000 + delta))
    record(f"PUT {'larger' if delta > 0 else 'smaller'} body", put_target.name, answer(response))
    assert_refused(put_target, form, response, 403, "SignatureDoesNotMatch")


def test_put_of_another_type_is_refused(put_target: Target, record: Record) -> None:
    form = sign_put(put_target)
    response = put(
        put_target, form, png_bytes(1000), headers={**form.headers, "Content-Type": "text/html"}
    )
    record("PUT wrong type", put_target.name, answer(response))
    assert_refused(put_target, form, response, 403, "SignatureDoesNotMatch")


def test_put_with_tampered_signature_is_refused(put_target: Target, record: Record) -> None:
    form = sign_put(put_target)
    signature = dict(parse_qsl(urlsplit(form.url).query))["X-Amz-Signature"]
    forged = _with_query(form.url, **{"X-Amz-Signature": signature[::-1]})
    response = put(put_target, form, png_bytes(1000), url=forged)
    record("PUT forged signature", put_target.name, answer(response))
    assert_refused(put_target, form, response, 403, "SignatureDoesNotMatch")


def test_put_after_expiry_is_refused(
    put_target: Target, record: Record, signed_ago: Callable[[float], AbstractContextManager[None]]
) -> None:
    """Signed 10 s ago for 5 s: expired 5 s ago by storage's own clock (a fresh URL is stored:
    ``test_put_valid_upload_is_stored_with_s3s_etag``)."""
    with signed_ago(10):
        form = sign_put(put_target, expires_in=5)
    assert form.expires_at < datetime.now(UTC) - timedelta(seconds=4)
    response = put(put_target, form, png_bytes(1000))
    record("PUT expired", put_target.name, answer(response))
    assert_refused(put_target, form, response, 403, "AccessDenied")


def test_put_to_another_key_is_refused(put_target: Target, record: Record) -> None:
    form = sign_put(put_target)
    other = form.url.replace(form.key, form.key.replace(".png", "0.png"), 1)
    response = put(put_target, form, png_bytes(1000), url=other)
    record("PUT key changed", put_target.name, answer(response))
    assert_refused(put_target, form, response, 403, "SignatureDoesNotMatch")


def test_put_with_changed_metadata_is_refused(put_target: Target, record: Record) -> None:
    form = sign_put(put_target)
    response = put(
        put_target,
        form,
        png_bytes(1000),
        headers={**form.headers, "x-amz-meta-owner": "someone-else"},
    )
    record("PUT metadata changed", put_target.name, answer(response))
    assert_refused(put_target, form, response, 403, "SignatureDoesNotMatch")


def test_put_with_an_unsigned_amz_header(put_target: Target, record: Record) -> None:
    """AWS S3 refuses an ``x-amz-*`` header the URL does not sign: 403 ``AccessDenied``, "There
    were headers present in the request which were not signed", nothing stored. So does the local
    backend. Ceph RGW 16 does not check: it stores the object with the unsigned metadata (the
    table shows it). Of a quarantined object s3drop reads ``filename`` and ``owner`` (always
    signed) and ``sha256`` (checked against the bytes): an extra key goes no further."""
    form = sign_put(put_target)
    signed = dict(parse_qsl(urlsplit(form.url).query))["X-Amz-SignedHeaders"].split(";")
    assert "x-amz-meta-filename" in signed  # metadata is signed; the header added below is not
    response = put(
        put_target, form, png_bytes(1000), headers={**form.headers, "x-amz-meta-extra": "1"}
    )
    record("PUT unsigned x-amz-meta header", put_target.name, answer(response))
    if put_target.name == "rgw" and response.status_code == 200:
        stored = put_target.storage.head(form.key)
        assert stored is not None
        assert stored.metadata["extra"] == "1"  # stored though never signed: RGW's deviation
        return
    assert_refused(put_target, form, response, 403, "AccessDenied")
    assert "not signed: x-amz-meta-extra" in response.text


def test_put_of_other_bytes_than_the_signed_sha256_is_refused(
    put_target: Target, record: Record
) -> None:
    """The signed ``x-amz-content-sha256`` is the payload hash: both stores check the body
    against it (AWS S3 also checks ``x-amz-checksum-sha256``, which RGW 16 ignores)."""
    body = png_bytes(1000)
    form = sign_put(put_target, sha256=hashlib.sha256(b"other bytes").hexdigest())
    assert form.headers["x-amz-content-sha256"] != hashlib.sha256(body).hexdigest()
    response = put(put_target, form, body)
    record("PUT other bytes than the signed SHA-256", put_target.name, answer(response))
    assert_refused(put_target, form, response, 400, "XAmzContentSHA256Mismatch")
    assert "XAmzContentSHA256Mismatch" in response.text
