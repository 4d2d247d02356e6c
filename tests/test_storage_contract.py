"""The storage contract, once, for every backend: the local one (files under the data folder) and
S3 (Ceph RGW). Put, head, read (ranges included), delete, what is missing, and listings: in the
byte order of whole keys as S3 lists them, from any ``start_after``, a page at a time. The local
backend emulates S3, so the same cases hold it to the same answers.

Backend-specific behaviour stays with its backend: tests/unit/test_local_storage.py (keys that
would leave the root, folder walks, signed reads) and tests/s3/test_s3_storage.py (errors, an
unreachable store).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from s3drop import Settings
from s3drop._errors import NotFound
from s3drop.storage.base import Storage
from s3drop.storage.local import LocalStorage
from s3drop.storage.s3 import S3Storage

from .conftest import RGW


@pytest.fixture(params=["local", pytest.param("rgw", marks=pytest.mark.s3)])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Storage]:
    """A fresh, empty store: a data folder of its own, or a new bucket on the session's RGW."""
    if request.param == "local":
        yield LocalStorage(Settings(data_dir=tmp_path / "data"))
        return
    rgw: RGW = request.getfixturevalue("rgw")
    bucket: str = request.getfixturevalue("bucket")
    session = boto3.Session(aws_access_key_id=rgw.access_key, aws_secret_access_key=rgw.secret_key)
    settings = Settings(bucket=bucket, endpoint_url=rgw.endpoint, region="us-east-1")
    s3 = S3Storage(settings, session=session)
    yield s3
    s3.client.close()


def test_put_head_read_delete(storage: Storage) -> None:
    storage.put("images/a.png", b"0123456789", content_type="image/png", metadata={"k": "v%20w"})
    info = storage.head("images/a.png")
    assert info is not None
    assert (info.size, info.content_type, info.metadata) == (10, "image/png", {"k": "v%20w"})
    assert storage.read("images/a.png") == b"0123456789"
    assert storage.read("images/a.png", start=2, end=5) == b"234"
    assert storage.read("images/a.png", start=8) == b"89"
    assert storage.read("images/a.png", end=3) == b"012"
    assert storage.read("images/a.png", start=5, end=5) == b""
    assert storage.read("images/a.png", start=10) == b""
    storage.delete("images/a.png")
    assert storage.head("images/a.png") is None
    if isinstance(storage, LocalStorage):  # its metadata goes with it
        assert not list((storage.root / "meta").rglob("*.json"))
    storage.delete("images/a.png")  # deleting what is not there is not an error
    storage.check()


def test_missing_objects(storage: Storage) -> None:
    assert storage.head("images/none.png") is None
    with pytest.raises(NotFound):
        storage.read("images/none.png")


def test_listing_is_in_key_order_with_start_after_and_pages(storage: Storage) -> None:
    for name in ["b", "a", "c", "d"]:
        storage.put(f"images/{name}.png", b"x", content_type="image/png", metadata={})
    storage.put("thumbs/a.webp", b"xy", content_type="image/webp", metadata={})
    keys = [info.key for info in storage.list_objects("images/")]
    assert keys == ["images/a.png", "images/b.png", "images/c.png", "images/d.png"]
    page = storage.list_objects("images/", start_after="images/b.png", limit=1)
    assert [info.key for info in page] == ["images/c.png"]
    assert [(i.key, i.size) for i in storage.iter_all("thumbs/")] == [("thumbs/a.webp", 2)]


# Names around '/': '-', '.' and '%' sort before it, so "a-b/x" < "a.png" < "a/x" < "a0" as whole
# keys, whatever order the folder names "a", "a-b" and the file "a.png" have among themselves.
TRICKY_KEYS = [
    "a!",
    "a-b/x",
    "a.png",
    "a/x",
    "a/y-z",
    "a/y/z",
    "a/y.z",
    "a/.hidden",
    "a%40b/c",
    "a0",
    "b",
    "owners/alice-b/2.png",
    "owners/alice/1.png",
    "owners/alice.c/3.png",
    "z/é",
    "z/e/f",
    "z/f",
]


def s3_order(keys: list[str], prefix: str, start_after: str | None, limit: int) -> list[str]:
    """What S3 lists: the keys under ``prefix`` in the byte order of their UTF-8, after
    ``start_after``, at most ``limit``."""
    listed = sorted((k for k in keys if k.startswith(prefix)), key=lambda k: k.encode())
    return [k for k in listed if start_after is None or k > start_after][:limit]


def test_listing_is_in_the_byte_order_of_whole_keys(storage: Storage) -> None:
    """Every prefix from every start, a page of one and the whole listing; pages of three too on
    the local backend, whose folder walk could go wrong across a page (S3 has no folders: on RGW
    they would be 240 requests more that only repeat what MaxKeys already showed)."""
    for key in TRICKY_KEYS:
        storage.put(key, key.encode(), content_type="text/plain", metadata={"k": "v"})
    prefixes = ["", "a", "a/", "a-", "a/y", "owners/", "owners/alice", "owners/alice/", "z/", "q"]
    afters = [None, "", "a/", "a/y", "a/y/", "owners/alice/", "zz", *TRICKY_KEYS]
    limits = (1, 3, 1000) if isinstance(storage, LocalStorage) else (1, 1000)
    for prefix in prefixes:
        for after in afters:
            for limit in limits:
                listed = storage.list_objects(prefix, start_after=after, limit=limit)
                expected = s3_order(TRICKY_KEYS, prefix, after, limit)
                assert [info.key for info in listed] == expected, (prefix, after, limit)
    assert [info.key for info in storage.iter_all("")] == s3_order(TRICKY_KEYS, "", None, 99)
