"""The storage base class as a template: the signing methods are the base's, for every backend,
and so is the key check. Both backends refuse the same keys, and nothing is signed for them."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from s3drop._config import Settings
from s3drop._errors import InvalidRequest
from s3drop._policy import check_upload
from s3drop.storage import open_storage
from s3drop.storage.base import Storage, check_key
from s3drop.storage.local import LocalStorage
from s3drop.storage.s3 import S3Storage

BAD_KEYS = [
    "",
    "/incoming/a.png",
    "incoming/../a.png",
    "incoming/./a.png",
    "incoming//a.png",
    "incoming/",
    "incoming\\a.png",
    "incoming/a\0.png",
    "a" * 1025,
]


@pytest.fixture(params=["local", "s3"])
def storage(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Storage:
    if request.param == "local":
        return open_storage(
            Settings(data_dir=tmp_path / "data", public_url="http://127.0.0.1:8000")
        )
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKTEST")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    return open_storage(
        Settings(storage_backend="s3", bucket="photos", endpoint_url="http://127.0.0.1:7480")
    )


def test_the_signing_methods_are_the_bases(storage: Storage) -> None:
    """A backend fills in hooks; it does not sign forms or check keys its own way."""
    for name in ("presign_post", "presign_put", "presign_get", "check_key"):
        assert getattr(type(storage), name) is getattr(Storage, name), name


@pytest.mark.parametrize("key", BAD_KEYS)
def test_every_backend_refuses_the_same_keys_and_signs_nothing(storage: Storage, key: str) -> None:
    request = dataclasses.replace(
        check_upload(Settings(), content_type="image/png", size=100, filename="a.png"), key=key
    )
    with pytest.raises(InvalidRequest, match="invalid object key"):
        storage.presign_post(request, expires_in=60)
    with pytest.raises(InvalidRequest, match="invalid object key"):
        storage.presign_put(request, expires_in=60)
    with pytest.raises(InvalidRequest, match="invalid object key"):
        storage.presign_get(key, expires_in=60)


def test_both_sign_what_s3drop_makes(storage: Storage) -> None:
    request = check_upload(Settings(), content_type="image/png", size=100, filename="a.png")
    form = storage.presign_post(request, expires_in=60)
    assert form.key == request.key
    assert form.fields["key"] == request.key
    assert storage.presign_put(request, expires_in=60).method == "PUT"
    assert storage.presign_get("owners/a%20b/x.png", expires_in=60)


@pytest.mark.parametrize("key", ["images/a.png", "owners/%2E%2E/x.png", "owners/a b/ä.png"])
def test_a_fair_key_passes(key: str) -> None:
    check_key(key)


def test_the_local_backend_takes_shorter_keys_than_s3() -> None:
    assert LocalStorage.max_key_bytes < S3Storage.max_key_bytes
    with pytest.raises(InvalidRequest):
        check_key("a" * 513, max_bytes=LocalStorage.max_key_bytes)
    check_key("a" * 513)
