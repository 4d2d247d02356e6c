"""Stable image URLs on a real S3 engine (Ceph RGW): one HEAD and no listing, a presigned URL RGW
serves, ownership, and the CDN base URL with the redirect's cache headers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from tests import samples
from tests.conftest import RGW
from tests.inprocess import asgi_client

from s3drop import Principal, Settings
from s3drop._errors import Forbidden
from s3drop._policy import new_upload_id, quarantine_key, thumbnail_key
from s3drop._uploads import S3Drop
from s3drop.limits import MemoryLimitStore
from s3drop.storage.base import ObjectInfo
from s3drop.storage.s3 import S3Storage
from s3drop.web.app import create_app


class CountingS3(S3Storage):
    calls: list[str]

    def head(self, key: str) -> ObjectInfo | None:
        self.calls.append(f"head {key}")
        return super().head(key)

    def list_objects(
        self, prefix: str, *, start_after: str | None = None, limit: int = 1000
    ) -> list[ObjectInfo]:
        self.calls.append(f"list {prefix}")
        return super().list_objects(prefix, start_after=start_after, limit=limit)


@pytest.fixture
def make_drop(rgw: RGW, bucket: str, tmp_path: Path) -> Iterator[Any]:
    made: list[CountingS3] = []

    def make(**settings: Any) -> S3Drop:
        session = boto3.Session(
            aws_access_key_id=rgw.access_key, aws_secret_access_key=rgw.secret_key
        )
        config = Settings(
            bucket=bucket,
            endpoint_url=rgw.endpoint,
            region="us-east-1",
            data_dir=tmp_path / "data",
            **settings,
        )
        storage = CountingS3(config, session=session)
        storage.calls = []
        made.append(storage)
        return S3Drop(config, storage=storage, limit_store=MemoryLimitStore())

    yield make
    for storage in made:
        storage.client.close()


def promote(drop: S3Drop, owner: str = "alice") -> tuple[str, bytes]:
    upload_id = new_upload_id()
    data = samples.png(4, (64, 48))
    drop.storage.put(
        quarantine_key(upload_id, "image/png"),
        data,
        content_type="image/png",
        metadata={"filename": "harbour.png", "owner": owner},
    )
    drop.complete(upload_id)
    return upload_id, data


def test_one_head_no_listing_and_a_url_rgw_serves(make_drop: Any) -> None:
    drop = make_drop()
    image_id, _ = promote(drop)
    storage: CountingS3 = drop.storage  # type: ignore[assignment]
    storage.calls = []
    original = drop.image_url(image_id, principal=Principal("alice"))
    thumb = drop.image_url(image_id, variant="thumbnail", principal=Principal("alice"))
    assert storage.calls == [f"head {thumbnail_key(image_id)}"] * 2
    answer = httpx.get(original.url, timeout=30)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "image/png"
    (key,) = [info.key for info in storage.iter_all(f"images/{image_id}.")]
    assert answer.content == storage.read(key)
    assert "harbour.png" in answer.headers["content-disposition"]
    thumbnail = httpx.get(thumb.url, timeout=30)
    assert (thumbnail.status_code, thumbnail.headers["content-type"]) == (200, "image/webp")
    with pytest.raises(Forbidden):
        drop.image_url(image_id, principal=Principal("bob"))


def test_a_cdn_base_url_is_used_and_cached_for_a_day(make_drop: Any) -> None:
    drop = make_drop(public_base_url="https://cdn.example.com/media")
    image_id, _ = promote(drop, owner="anonymous")  # the app below has no login
    link = drop.image_url(image_id, variant="thumbnail")
    assert link.url == f"https://cdn.example.com/media/{thumbnail_key(image_id)}"
    assert link.expires_at is None
    app = create_app(drop.settings, storage=drop.storage, limit_store=MemoryLimitStore())
    with asgi_client(app) as http:
        answer = http.get(f"/api/images/{image_id}/original", follow_redirects=False)
    assert answer.status_code == 302
    assert answer.headers["location"].startswith(
        f"https://cdn.example.com/media/images/{image_id}."
    )
    assert answer.headers["cache-control"] == "private, max-age=86400"
