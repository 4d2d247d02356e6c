"""Storage requests per accepted image: counted, so that they cannot creep back (issue 13).

The completion of one JPEG larger than the first read (64 KiB) is counted twice on Ceph RGW: by
:class:`~s3drop.storage._counting.CountingStorage` around the backend (by kind and area) and by a
loopback proxy in front of RGW that sees every HTTP request boto3 sends (so a request the wrapper
missed, or a retry, would show). The local backend is counted by the wrapper alone.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

from s3drop import Settings
from s3drop import _formats as formats
from s3drop._auth import Principal
from s3drop._errors import AlreadyCompleted, InvalidRequest
from s3drop._formats import FORMATS
from s3drop._policy import is_upload_id, new_upload_id, quarantine_key, upload_type
from s3drop._uploads import S3Drop
from s3drop.limits import MemoryLimitStore, app_limit_store
from s3drop.storage._counting import CountingStorage
from s3drop.storage.base import Storage
from s3drop.storage.local import LocalStorage
from s3drop.storage.s3 import S3Storage

from . import samples
from .conftest import RGW
from .flaky_proxy import FlakyProxy, flaky_proxy

ALICE = Principal("alice")

#: What completing one accepted image may cost, by (kind, area): the upload read once, the
#: thumbnail and the image written, the owner's index entry (not in a shared gallery) and the
#: duplicate marker written, the quarantined copy deleted; plus one PUT per responsive variant
#: (:func:`expected`).
PRIVATE = {
    ("GET", "incoming"): 1,
    ("PUT", "thumbs"): 1,
    ("PUT", "images"): 1,
    ("PUT", "owners"): 1,
    ("PUT", "digests"): 1,
    ("DELETE", "incoming"): 1,
}
SHARED = {key: count for key, count in PRIVATE.items() if key[1] != "owners"}

#: How many variant objects each image gets with the default settings (widths 320, 640 and 1024,
#: in WebP; none as wide as the original): the 300-pixel wide one none, the 800-pixel wide
#: photo two (320 and 640).
VARIANTS = {"small": 0, "photo": 2}


def photo() -> bytes:
    """A JPEG longer than the first read of the header (64 KiB): the case that read it twice."""
    data = samples.jpeg(13, (800, 600))
    assert len(data) > 64 * 1024
    return data


def small() -> bytes:
    """A JPEG too narrow for any variant, also longer than the first read."""
    data = samples.jpeg(13, (300, 1000))
    assert len(data) > 64 * 1024
    return data


IMAGES = {"small": small, "photo": photo}


def expected(*, shared: bool, variants: int) -> dict[tuple[str, str], int]:
    """The requests by (kind, area) of one completion that writes ``variants`` variants."""
    requests = dict(SHARED if shared else PRIVATE)
    if variants:
        requests[("PUT", "variants")] = variants
    return requests


def _metadata(fields: dict[str, str]) -> dict[str, str]:
    return {
        name.removeprefix("x-amz-meta-"): value
        for name, value in fields.items()
        if name.startswith("x-amz-meta-")
    }


@contextlib.contextmanager
def s3_drop(
    rgw: RGW, bucket: str, tmp_path: Path, *, shared: bool
) -> Iterator[tuple[S3Drop, FlakyProxy]]:
    """An S3Drop on ``bucket`` whose every storage request goes through a counting proxy, with
    the limits store the bundled app uses (SQLite in the data folder)."""
    with flaky_proxy(rgw.endpoint) as proxy:
        settings = Settings(
            storage_backend="s3",
            bucket=bucket,
            endpoint_url=proxy.url,
            region="us-east-1",
            data_dir=tmp_path / "data",
            shared=shared,
            allowed_types=["image/png", "image/jpeg", "image/webp"],
        )
        session = boto3.Session(
            aws_access_key_id=rgw.access_key, aws_secret_access_key=rgw.secret_key
        )
        storage = CountingStorage(S3Storage(settings, session=session))
        drop = S3Drop(settings, storage=storage, limit_store=app_limit_store(settings))
        try:
            yield drop, proxy
        finally:
            drop.close()
            storage.inner.client.close()  # type: ignore[attr-defined]


def _kind(method: str, path: str, bucket: str) -> str:
    """An S3 request's kind from its method and path: a GET of the bucket itself lists."""
    if method == "GET" and path.rstrip("/") == f"/{bucket}":
        return "LIST"
    return method


CASES = [(False, "small"), (False, "photo"), (True, "photo")]
CASE_IDS = ["private-small", "private-photo", "shared-photo"]


@pytest.mark.parametrize(("shared", "name"), CASES, ids=CASE_IDS)
def test_completing_on_rgw_costs_at_most_five_requests_plus_the_owner_index_and_variants(
    rgw: RGW, bucket: str, tmp_path: Path, shared: bool, name: str
) -> None:
    """One GET of the upload (its facts come with the bytes), the writes, one DELETE: no HEAD per
    type, no listing, no second read; as the wrapper counts them and as RGW receives them. Each
    responsive variant is one PUT more (none for the small image, two for the photo)."""
    variants = VARIANTS[name]
    with s3_drop(rgw, bucket, tmp_path, shared=shared) as (drop, proxy):
        data = IMAGES[name]()
        form = drop.presign(
            content_type="image/jpeg", size=len(data), filename="a.jpg", principal=ALICE
        )
        posted = httpx.post(
            form.url, data=form.fields, files={"file": ("a.jpg", data, "image/jpeg")}
        )
        assert posted.status_code in (200, 201, 204), posted.text
        counting = drop.storage
        assert isinstance(counting, CountingStorage)
        seen = len(proxy.requests)
        with counting.counting() as requests:
            image = drop.complete(form.id, principal=ALICE)
        on_the_wire = proxy.requests[seen:]
        assert requests.by_area() == expected(shared=shared, variants=variants)
        assert len(requests) <= 5 + variants + (0 if shared else 1)
        assert Counter(_kind(method, path, bucket) for method, path in on_the_wire) == Counter(
            requests.by_kind()
        )
        # Behaviour is unchanged: the image is there, the quarantine is empty.
        client = rgw.client()
        listed = client.list_objects_v2(Bucket=bucket, Prefix="incoming/")
        assert listed.get("KeyCount", 0) == 0
        assert client.head_object(Bucket=bucket, Key=image.key)["ContentType"] == "image/jpeg"
        assert image.owner == "alice"
        assert [item.id for item in drop.list_images(principal=ALICE).images] == [image.id]


@pytest.mark.parametrize(("shared", "name"), CASES, ids=CASE_IDS)
def test_completing_on_the_local_backend_costs_the_same(
    tmp_path: Path, shared: bool, name: str
) -> None:
    settings = Settings(data_dir=tmp_path / "data", shared=shared)
    storage = CountingStorage(LocalStorage(settings))
    drop = S3Drop(settings, storage=storage, limit_store=app_limit_store(settings))
    data = IMAGES[name]()
    form = drop.presign(
        content_type="image/jpeg", size=len(data), filename="a.jpg", principal=ALICE
    )
    storage.put(form.key, data, content_type="image/jpeg", metadata=_metadata(form.fields))
    with storage.counting() as requests:
        image = drop.complete(form.id, principal=ALICE)
    drop.close()
    assert requests.by_area() == expected(shared=shared, variants=VARIANTS[name])
    assert len(requests) == 5 + VARIANTS[name] + (0 if shared else 1)
    assert len(list(storage.iter_all("variants/"))) == VARIANTS[name]  # what the key names
    assert [info.key for info in storage.iter_all("incoming/")] == []
    assert storage.read(image.key)[:2] == b"\xff\xd8"


def test_the_counter_counts_by_kind_and_area(tmp_path: Path) -> None:
    """The wrapper counts what passes through it, and only inside its ``with`` block."""
    inner: Storage = LocalStorage(Settings(data_dir=tmp_path))
    storage = CountingStorage(inner)
    storage.put("thumbs/x.webp", b"x", content_type="image/webp", metadata={})
    with storage.counting() as requests:
        assert storage.head("thumbs/x.webp") is not None
        download = storage.get("thumbs/x.webp")
        assert download is not None
        with download:
            assert download.read() == b"x"
        assert storage.get("thumbs/none.webp") is None
        storage.list_objects("thumbs/")
        storage.delete("thumbs/x.webp")
    assert requests.made == [
        ("HEAD", "thumbs/x.webp"),
        ("GET", "thumbs/x.webp"),
        ("GET", "thumbs/none.webp"),
        ("LIST", "thumbs/"),
        ("DELETE", "thumbs/x.webp"),
    ]
    assert requests.by_kind() == {"HEAD": 1, "GET": 2, "LIST": 1, "DELETE": 1}
    assert storage.total.by_kind()["PUT"] == 1
    unused: Any = storage.base_url  # what the backend alone has passes through
    assert unused == inner.base_url  # type: ignore[attr-defined]


@pytest.mark.parametrize("backend", ["local", "s3-behind-a-cdn"])
def test_the_counter_is_the_backend_it_wraps_to_the_app(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every attribute the storage template declares, the key check and the backend's HTTP half
    are the wrapped backend's, not the base class's defaults (an app over a counted local
    backend still receives uploads and sweeps; a CDN's URLs are still permanent)."""
    inner: Storage
    if backend == "local":
        inner = LocalStorage(Settings(data_dir=tmp_path))
    else:
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKTEST")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
        settings = Settings(
            storage_backend="s3",
            bucket="photos",
            endpoint_url="http://127.0.0.1:7480",
            public_base_url="https://cdn.example.com",
        )
        inner = S3Storage(settings)
    storage = CountingStorage(inner)
    declared = [
        name
        for name, value in vars(Storage).items()
        if not name.startswith("_") and not callable(value) and not isinstance(value, property)
    ]
    assert {"read_urls_expire", "needs_sweeping", "bucket"} <= set(declared)
    assert {name: getattr(storage, name) for name in declared} == {
        name: getattr(inner, name) for name in declared
    }
    assert storage.read_urls_expire is (backend == "local")
    assert [getattr(route, "path", None) for route in storage.http_routes()] == [
        getattr(route, "path", None) for route in inner.http_routes()
    ]
    with pytest.raises(InvalidRequest):
        storage.check_key("a" * 1025)
    with storage.served_at("http://testserver"), inner.served_at("http://testserver"):
        assert storage.presign_get("images/a.png", expires_in=60) == inner.presign_get(
            "images/a.png", expires_in=60
        )
    assert len(storage.total) == 0  # none of this is a storage request


def test_with_counters_in_memory_a_listing_asks_whether_the_image_exists(tmp_path: Path) -> None:
    """A store that forgets its claims when the process ends (memory) cannot vouch that no image
    was promoted before a restart: one listing more, and the same image."""
    settings = Settings(data_dir=tmp_path / "data")
    storage = CountingStorage(LocalStorage(settings))
    drop = S3Drop(settings, storage=storage, limit_store=MemoryLimitStore())
    data = photo()
    form = drop.presign(
        content_type="image/jpeg", size=len(data), filename="a.jpg", principal=ALICE
    )
    storage.put(form.key, data, content_type="image/jpeg", metadata=_metadata(form.fields))
    with storage.counting() as requests:
        drop.complete(form.id, principal=ALICE)
    drop.close()
    assert requests.by_area() == {
        **expected(shared=False, variants=VARIANTS["photo"]),
        ("LIST", "images"): 1,
    }


def test_an_id_that_names_no_type_is_found_by_trying_each(tmp_path: Path) -> None:
    """Ids signed before they named their type: a GET per type, the allowed ones first."""
    settings = Settings(data_dir=tmp_path / "data", allowed_types=["image/png", "image/jpeg"])
    storage = CountingStorage(LocalStorage(settings))
    drop = S3Drop(settings, storage=storage, limit_store=app_limit_store(settings))
    upload_id = new_upload_id()[:-1] + "z"  # a random last character that names no type
    assert upload_type(upload_id) is None
    storage.put(
        quarantine_key(upload_id, "image/jpeg"), photo(), content_type="image/jpeg", metadata={}
    )
    with storage.counting() as requests:
        drop.complete(upload_id)
    drop.close()
    assert requests.made[:2] == [
        ("GET", quarantine_key(upload_id, "image/png")),
        ("GET", quarantine_key(upload_id, "image/jpeg")),
    ]
    assert requests.by_area()[("GET", "incoming")] == 2


@pytest.mark.parametrize("content_type", list(FORMATS))
def test_a_signed_id_names_its_type(content_type: str) -> None:
    upload_id = new_upload_id(content_type=content_type)
    assert is_upload_id(upload_id)
    assert upload_type(upload_id) == content_type


#: The mark each format's ids end in. Ids signed with these are in buckets: a mark never changes
#: meaning (the first five are those ids had when they named their type's place in the old list
#: of known types, before the registry).
MARKS = {
    "image/png": "a",
    "image/jpeg": "b",
    "image/webp": "c",
    "image/gif": "d",
    "image/avif": "e",
    "image/heic": "f",
    "image/heif": "g",
}


def test_every_format_has_its_fixed_mark() -> None:
    assert {fmt.content_type: fmt.mark for fmt in FORMATS.values()} == MARKS


def test_reordering_the_registry_keeps_the_meaning_of_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    """The mark is the format's own, not its place: ids signed before a reorder (or before a
    format is added in front) still name their type after it."""
    signed = {content_type: new_upload_id(content_type=content_type) for content_type in FORMATS}
    reordered = dict(reversed(list(FORMATS.items())))
    monkeypatch.setattr(formats, "FORMATS", reordered)
    assert {upload_type(upload_id) for upload_id in signed.values()} == set(signed)
    assert all(upload_type(upload_id) == ct for ct, upload_id in signed.items())
    assert {ct: new_upload_id(content_type=ct)[-1] for ct in reordered} == MARKS


@pytest.mark.parametrize(
    ("marks", "message"),
    [
        ({"image/png": "a", "image/jpeg": "a"}, "image/jpeg and image/png share mark 'a'"),
        ({"image/png": "1"}, "image/png: mark '1' is not a free id character"),
        ({"image/png": "ab"}, "image/png: mark 'ab' is not a free id character"),
    ],
    ids=["shared", "not-base32", "two-characters"],
)
def test_a_registry_with_marks_that_could_mislead_is_refused(
    marks: dict[str, str], message: str
) -> None:
    registry = {ct: dataclasses.replace(FORMATS[ct], mark=mark) for ct, mark in marks.items()}
    with pytest.raises(ValueError, match=re.escape(message)):
        formats._check_marks(registry)


def test_junk_posted_again_after_the_promotion_is_refused_as_a_repost(tmp_path: Path) -> None:
    """With claims that outlive the process the image is not looked for before the decode; a
    file posted again with a used form that fails to decode is still answered as what it is, a
    repost (409 ``already_completed``), not as a rejected upload, and nothing is announced."""
    settings = Settings(data_dir=tmp_path / "data")
    rejected: list[str] = []
    drop = S3Drop(
        settings,
        limit_store=app_limit_store(settings),
        on_rejected=lambda upload_id, error, principal: rejected.append(upload_id),
    )
    data = photo()
    form = drop.presign(
        content_type="image/jpeg", size=len(data), filename="a.jpg", principal=ALICE
    )
    drop.storage.put(form.key, data, content_type="image/jpeg", metadata=_metadata(form.fields))
    image = drop.complete(form.id, principal=ALICE)
    junk = b"\xff\xd8" + b"not a jpeg" * 100
    drop.storage.put(form.key, junk, content_type="image/jpeg", metadata=_metadata(form.fields))
    later = time.time() + 5
    os.utime(settings.data_dir / "objects" / form.key, (later, later))
    with pytest.raises(AlreadyCompleted, match=f"already completed as {image.key};"):
        drop.complete(form.id, principal=ALICE)
    drop.close()
    assert rejected == []
    assert [info.key for info in drop.storage.iter_all("incoming/")] == []
    assert [info.key for info in drop.storage.iter_all("images/")] == [image.key]
