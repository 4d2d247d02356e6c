"""S3Storage against a real S3 engine (Ceph RGW): errors, an unreachable store. The storage contract
itself (put, read, listings), shared with the local backend, is tests/test_storage_contract.py."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from tests.conftest import RGW, free_port
from tests.inprocess import AppServer

from s3drop import Settings
from s3drop._errors import (
    BucketMissing,
    S3DropError,
    StorageAccessDenied,
    StorageUnavailable,
)
from s3drop._policy import new_upload_id
from s3drop.storage.s3 import S3Storage


@pytest.fixture
def make_storage(rgw: RGW) -> Iterator[Callable[..., S3Storage]]:
    """Factory: ``make_storage(bucket, secret=..., **settings)``; clients closed after the test."""
    made: list[S3Storage] = []

    def make(
        bucket: str, *, access: str | None = None, secret: str | None = None, **settings: Any
    ) -> S3Storage:
        session = boto3.Session(
            aws_access_key_id=access or rgw.access_key,
            aws_secret_access_key=secret or rgw.secret_key,
        )
        values = {"bucket": bucket, "endpoint_url": rgw.endpoint, "region": "us-east-1"}
        made.append(S3Storage(Settings(**{**values, **settings}), session=session))
        return made[-1]

    yield make
    for storage in made:
        storage.client.close()


def test_a_missing_bucket_is_named(make_storage: Callable[..., S3Storage]) -> None:
    storage = make_storage("no-such-bucket-here")
    with pytest.raises(BucketMissing, match="s3drop bucket init"):
        storage.check()
    with pytest.raises(BucketMissing):
        storage.list_objects("images/")
    with pytest.raises(BucketMissing):
        storage.put("images/a.png", b"x", content_type="image/png", metadata={})


def test_a_wrong_secret_is_access_denied(
    make_storage: Callable[..., S3Storage], bucket: str
) -> None:
    storage = make_storage(bucket, secret="not-the-secret")
    with pytest.raises(StorageAccessDenied, match="AWS_SECRET_ACCESS_KEY"):
        storage.list_objects("images/")
    with pytest.raises(StorageAccessDenied):
        storage.check()
    with pytest.raises(StorageAccessDenied):
        storage.put("images/a.png", b"x", content_type="image/png", metadata={})
    assert make_storage(bucket).list_objects("") == []


def test_an_unknown_access_key_is_access_denied(
    make_storage: Callable[..., S3Storage], bucket: str
) -> None:
    storage = make_storage(bucket, access="nobody", secret="x")
    with pytest.raises(StorageAccessDenied, match="AWS_ACCESS_KEY_ID"):
        storage.list_objects("")


# --- an unreachable store ---------------------------------------------------------------------


def _dead_endpoint() -> str:
    return f"http://127.0.0.1:{free_port()}"  # nothing listens there


CALLS: list[tuple[str, Callable[[S3Storage], object]]] = [
    ("check", lambda s: s.check()),
    ("head", lambda s: s.head("images/a.png")),
    ("read", lambda s: s.read("images/a.png")),
    ("list", lambda s: s.list_objects("images/")),
    ("put", lambda s: s.put("images/a.png", b"x", content_type="image/png", metadata={})),
    ("delete", lambda s: s.delete("images/a.png")),
]


@pytest.mark.parametrize("call", [c[1] for c in CALLS], ids=[c[0] for c in CALLS])
def test_an_unreachable_store_raises_storage_unavailable(
    call: Callable[[S3Storage], object],
) -> None:
    session = boto3.Session(aws_access_key_id="AK", aws_secret_access_key="SK")
    storage = S3Storage(Settings(bucket="photos", endpoint_url=_dead_endpoint()), session=session)
    started = time.monotonic()
    with pytest.raises(StorageUnavailable, match="AWS_ENDPOINT_URL_S3") as caught:
        call(storage)
    assert caught.value.status == 503
    assert time.monotonic() - started < 15  # a few quick retries, not a hang


def test_an_unreachable_store_is_a_503_with_a_reason_over_http(
    make_app: Callable[..., AppServer],
) -> None:
    """Every storage-touching endpoint answers 503 with a JSON reason; signing needs no store.
    (HTTP semantics: the app in-process.)"""
    server = make_app(
        env={
            "S3DROP_BUCKET": "photos",
            "AWS_ENDPOINT_URL_S3": _dead_endpoint(),
            "AWS_ACCESS_KEY_ID": "AK",
            "AWS_SECRET_ACCESS_KEY": "SK",
            "AWS_REGION": "us-east-1",
        }
    )
    upload_id = new_upload_id()
    probes = [
        ("GET", "/readyz"),
        ("GET", "/api/images"),
        ("POST", f"/api/uploads/{upload_id}/complete"),
        ("DELETE", f"/api/images/{upload_id}"),
    ]
    with server.client() as client:
        for method, path in probes:
            answer = client.request(method, path)
            assert answer.status_code == 503, (method, path, answer.text)
            error = answer.json()["error"]
            assert error["code"] == "storage_unavailable", (path, error)
            if path == "/readyz":  # for the operator: the reason itself
                assert "unreachable" in error["message"]
            else:  # for people: plain words, and a reference the log holds the reason under
                assert error["message"].startswith("Storage cannot be reached right now.")
                assert "unreachable" in next(
                    line for line in server.output().splitlines() if error["reference"] in line
                )
        signed = client.post(
            "/api/uploads", json={"filename": "a.png", "content_type": "image/png", "size": 10}
        )
        assert signed.status_code == 201, signed.text
        assert signed.json()["upload"]["url"].endswith("/photos")
    assert "Traceback" not in server.output()


def test_invalid_parameters_are_translated_too() -> None:
    """Nothing from botocore escapes the backend: the web layer only maps S3DropError."""
    session = boto3.Session(aws_access_key_id="AK", aws_secret_access_key="SK")
    storage = S3Storage(Settings(bucket="photos", endpoint_url=_dead_endpoint()), session=session)
    with pytest.raises(S3DropError):
        storage.presign_get("", expires_in=60)  # boto3 refuses an empty key
