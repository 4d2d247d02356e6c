"""PutSigner against boto3's generate_presigned_url('put_object', ...): the same URL for the same
inputs and clock; verify_put takes exactly what was signed and refuses every change to it."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from tests.unit.test_sign_get import CREDENTIALS, NOW, STORES, _storage

from s3drop._errors import S3Error
from s3drop._policy import Credentials, UploadRequest, decode_meta
from s3drop.storage._sigv4 import PutSigner, put_headers
from s3drop.storage._verify import verify_put

DIGEST = hashlib.sha256(b"x").hexdigest()
REQUESTS = [
    UploadRequest(
        id="8204119722354gcvd3nvk3j",
        key="incoming/8204119722354gcvd3nvk3j.png",
        content_type="image/png",
        max_bytes=48213,
        min_bytes=48213,
        metadata={"filename": "cat.png"},
    ),
    UploadRequest(
        id="8204119722354gcvd3nvk3j",
        key="incoming/8204119722354gcvd3nvk3j.jpg",
        content_type="image/jpeg",
        max_bytes=1,
        min_bytes=1,
        metadata={
            "filename": "photo from the caf%C3%A9 %F0%9F%90%88 100%25.jpg",
            "sha256": DIGEST,
            "owner": "b%C3%B8b",
        },
    ),
]


def _boto3_url(storage: Any, request: UploadRequest, *, expires_in: int) -> str:
    params: dict[str, Any] = {
        "Bucket": storage.bucket,
        "Key": request.key,
        "ContentType": request.content_type,
        "ContentLength": request.max_bytes,
        "Metadata": dict(request.metadata),
    }
    hooks = storage.client.meta.events
    digest = bytes.fromhex(request.metadata.get("sha256", ""))

    def content_sha256(request: Any, **_: Any) -> None:
        # botocore signs this header's value as the payload hash when it is set
        request.headers["X-Amz-Content-SHA256"] = digest.hex()

    if digest:
        params["ChecksumSHA256"] = base64.b64encode(digest).decode()
        hooks.register("before-sign.s3.PutObject", content_sha256)
    try:
        url: str = storage.client.generate_presigned_url(
            "put_object", Params=params, ExpiresIn=expires_in
        )
    finally:
        hooks.unregister("before-sign.s3.PutObject", content_sha256)
    return url


@pytest.mark.parametrize(("store", "settings"), STORES, ids=[name for name, _ in STORES])
@pytest.mark.parametrize("credentials", CREDENTIALS, ids=["plain", "session-token"])
def test_byte_identical_to_boto3(
    freeze_botocore: Callable[[datetime], None],
    tmp_path: Path,
    store: str,
    settings: dict[str, Any],
    credentials: Credentials,
) -> None:
    freeze_botocore(NOW)
    storage = _storage(tmp_path, credentials, **settings)
    for request in REQUESTS:
        for expires_in in (1, 600, 7 * 24 * 3600):
            ours = storage.put_signer.url(
                request.key,
                headers=put_headers(request),
                credentials=credentials,
                expires_in=expires_in,
                now=NOW,
            )
            assert ours == _boto3_url(storage, request, expires_in=expires_in)


def test_presign_put_returns_the_url_and_the_headers_to_send(tmp_path: Path) -> None:
    storage = _storage(
        tmp_path, CREDENTIALS[0], bucket="photos", endpoint_url="http://127.0.0.1:9", region="r"
    )
    form = storage.presign_put(REQUESTS[1], expires_in=600)
    assert form.method == "PUT"
    assert form.fields == {}
    assert form.url.startswith(f"http://127.0.0.1:9/photos/{REQUESTS[1].key}?")
    assert form.headers == {
        "Content-Type": "image/jpeg",
        "x-amz-meta-filename": REQUESTS[1].metadata["filename"],
        "x-amz-meta-sha256": DIGEST,
        "x-amz-meta-owner": "b%C3%B8b",
        "x-amz-checksum-sha256": base64.b64encode(bytes.fromhex(DIGEST)).decode(),
        "x-amz-content-sha256": DIGEST,
    }
    signed = dict(parse_qsl(urlsplit(form.url).query))["X-Amz-SignedHeaders"]
    assert signed == (
        "content-length;content-type;host;x-amz-checksum-sha256;x-amz-content-sha256;"
        "x-amz-meta-filename;x-amz-meta-owner;x-amz-meta-sha256"
    )
    assert decode_meta(form.headers["x-amz-meta-owner"]) == "bøb"


# --- verify_put: what the local backend checks ---------------------------------------------

LOCAL = Credentials("s3drop-local", "local-secret")
BASE = "http://127.0.0.1:8000/storage"


def _signed(
    request: UploadRequest = REQUESTS[1], **kw: Any
) -> tuple[str, dict[str, str], dict[str, str]]:
    url = PutSigner(BASE, region="local").url(
        request.key, headers=put_headers(request), credentials=LOCAL, expires_in=600, **kw
    )
    parts = urlsplit(url)
    headers = {name.lower(): value for name, value in put_headers(request).items()}
    headers["host"] = "127.0.0.1:8000"
    return parts.path, dict(parse_qsl(parts.query)), headers


def _verify(path: str, query: dict[str, str], headers: dict[str, str], **kw: Any) -> dict[str, str]:
    return verify_put(
        path=path, query=query, headers=headers, credentials=LOCAL, region="local", **kw
    )


def test_verify_put_takes_what_was_signed() -> None:
    path, query, headers = _signed()
    signed = _verify(path, query, headers)
    assert signed["content-type"] == "image/jpeg"
    assert signed["content-length"] == "1"


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ("size", "SignatureDoesNotMatch"),
        ("type", "SignatureDoesNotMatch"),
        ("key", "SignatureDoesNotMatch"),
        ("host", "SignatureDoesNotMatch"),
        ("metadata", "SignatureDoesNotMatch"),
        ("signature", "SignatureDoesNotMatch"),
        ("expires", "SignatureDoesNotMatch"),
        ("unsigned-header", "AccessDenied"),
        ("payload-hash", "SignatureDoesNotMatch"),
        ("missing-header", "SignatureDoesNotMatch"),
        ("access-key", "InvalidAccessKeyId"),
        ("region", "AuthorizationQueryParametersError"),
        ("algorithm", "AuthorizationQueryParametersError"),
    ],
)
def test_verify_put_refuses_every_change(change: str, code: str) -> None:
    path, query, headers = _signed()
    if change == "size":
        headers["content-length"] = "2"
    elif change == "type":
        headers["content-type"] = "image/png"
    elif change == "key":
        path = path.replace(".jpg", ".png")
    elif change == "host":
        headers["host"] = "evil.example:8000"
    elif change == "metadata":
        headers["x-amz-meta-owner"] = "mallory"
    elif change == "signature":
        query["X-Amz-Signature"] = "0" * 64
    elif change == "expires":
        query["X-Amz-Expires"] = "601"
    elif change == "unsigned-header":
        headers["x-amz-meta-extra"] = "1"
    elif change == "payload-hash":
        headers["x-amz-content-sha256"] = hashlib.sha256(b"y").hexdigest()
    elif change == "missing-header":
        del headers["x-amz-meta-owner"]
    elif change == "access-key":
        query["X-Amz-Credential"] = query["X-Amz-Credential"].replace("s3drop-local", "other")
    elif change == "region":
        query["X-Amz-Credential"] = query["X-Amz-Credential"].replace("/local/", "/us-east-1/")
    elif change == "algorithm":
        query["X-Amz-Algorithm"] = "AWS4-HMAC-SHA1"
    with pytest.raises(S3Error) as caught:
        _verify(path, query, headers)
    assert caught.value.code == code


def test_verify_put_refuses_an_expired_url() -> None:
    path, query, headers = _signed(now=NOW)
    signed_at = NOW.replace(microsecond=0).timestamp()
    with pytest.raises(S3Error, match="Request has expired") as caught:
        _verify(path, query, headers, now=signed_at + 600.5)
    assert caught.value.status == 403
    _verify(path, query, headers, now=signed_at + 600)  # the last second still counts
