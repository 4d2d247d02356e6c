"""Placeholders over the API: every accepted image's ThumbHash and dominant colour, in listings at
no extra storage request, in single images and in the library's Image; ``null`` for images
promoted before placeholders existed.

In-process (ASGI): the sandbox's workers are real processes; the point here is the API's answers.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from s3drop import S3Drop, Settings
from s3drop.placeholders import Placeholder
from s3drop.policy import image_key, new_upload_id, owner_key, thumbnail_key
from s3drop.storage.base import ObjectInfo
from s3drop.storage.local import LocalStorage
from s3drop.web.app import create_app

from . import samples
from .inprocess import asgi_client, stored, upload

RED = (200, 30, 40)


def _mostly_red(seed: int) -> bytes:
    """A 400 x 300 photo whose left 70% is :data:`RED` (distinct bytes per seed)."""
    image = samples.photo(seed, (400, 300))
    image.paste(RED, (0, 0, 280, 300))
    return samples.encode(image, "PNG")


class _CountingStorage(LocalStorage):
    """The local backend, counting the storage requests a listing makes."""

    calls: list[str] = []

    def list_objects(
        self, prefix: str, *, start_after: str | None = None, limit: int = 1000
    ) -> list[ObjectInfo]:
        self.calls.append(f"list {prefix}")
        return super().list_objects(prefix, start_after=start_after, limit=limit)

    def head(self, key: str) -> ObjectInfo | None:
        self.calls.append(f"head {key}")
        return super().head(key)

    def read(self, key: str, **kwargs: Any) -> bytes:
        self.calls.append(f"read {key}")
        return super().read(key, **kwargs)


@pytest.fixture
def app_and_http(tmp_path: Path) -> Iterator[tuple[Any, httpx.Client]]:
    app = create_app(Settings(data_dir=tmp_path / "data"))
    with asgi_client(app) as http:
        yield app, http


def _close(color: str, expected: tuple[int, int, int], within: int) -> bool:
    found = bytes.fromhex(color.removeprefix("#"))
    return all(abs(a - b) <= within for a, b in zip(found, expected, strict=True))


def test_an_accepted_image_has_its_placeholder_everywhere_it_is_described(
    app_and_http: tuple[Any, httpx.Client],
) -> None:
    app, http = app_and_http
    drop: S3Drop = app.state.drop
    image = upload(http, "/api", _mostly_red(1))
    placeholder = image["placeholder"]
    assert set(placeholder) == {"thumbhash", "color"}
    assert _close(placeholder["color"], RED, 2), placeholder  # the dominant colour, not the mean
    thumbhash = base64.b64decode(placeholder["thumbhash"], validate=True)
    assert 20 <= len(thumbhash) <= 25
    assert thumbhash[4] & 0x80  # a landscape image's hash

    listed = http.get("/api/images").json()["images"]
    assert [item["placeholder"] for item in listed] == [placeholder]
    single = http.get(f"/api/images/{image['id']}").json()["image"]
    assert single["placeholder"] == placeholder
    # The library's Image says the same, and so does the key it was read from.
    assert drop.get_image(image["id"]).placeholder == Placeholder.from_dict(placeholder)
    assert drop.list_images().images[0].placeholder == Placeholder.from_dict(placeholder)


def test_a_gallery_page_with_placeholders_is_still_one_listing_call(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    storage = _CountingStorage(settings)
    drop = S3Drop(settings, storage=storage)
    for seed in range(3):
        upload_id = new_upload_id()
        drop.storage.put(
            f"incoming/{upload_id}.png",
            _mostly_red(seed),
            content_type="image/png",
            metadata={"filename": f"red-{seed}.png"},
        )
        drop.complete(upload_id)
    _CountingStorage.calls = []
    page = drop.list_images(limit=50)
    assert _CountingStorage.calls == ["list images/"]
    assert len(page.images) == 3
    assert all(image.placeholder is not None for image in page.images)
    assert all(
        _close(image.placeholder.color, RED, 2) for image in page.images if image.placeholder
    )


def test_a_transparent_image_gets_an_alpha_placeholder(
    app_and_http: tuple[Any, httpx.Client],
) -> None:
    _, http = app_and_http
    picture = Image.new("RGBA", (300, 200), (0, 0, 0, 0))
    picture.paste((30, 90, 200, 255), (60, 40, 240, 160))
    image = upload(http, "/api", samples.encode(picture, "PNG"))
    thumbhash = base64.b64decode(image["placeholder"]["thumbhash"])
    assert thumbhash[2] & 0x80  # the hash carries alpha
    assert _close(image["placeholder"]["color"], (30, 90, 200), 3)  # the opaque part's colour


def _promote_as_before(drop: S3Drop, data: bytes, filename: str) -> str:
    """What a promotion wrote before placeholders: a key without ``p``/``c`` segments, its
    thumbnail naming it, its owner's index entry."""
    upload_id = new_upload_id()
    key = image_key(
        upload_id, "image/png", width=400, height=300, size=len(data), filename=filename
    )
    meta = {"owner": "anonymous", "filename": filename}
    drop.storage.put(
        thumbnail_key(upload_id),
        samples.encode(Image.new("RGB", (32, 24)), "WEBP"),
        content_type="image/webp",
        metadata={"image": key.rpartition("/")[2], **meta},
    )
    drop.storage.put(key, data, content_type="image/png", metadata=meta)
    drop.storage.put(
        owner_key("anonymous", key), b"", content_type="application/x-empty", metadata={}
    )
    return upload_id


def test_images_promoted_before_placeholders_answer_null_and_nothing_breaks(
    app_and_http: tuple[Any, httpx.Client],
) -> None:
    app, http = app_and_http
    drop: S3Drop = app.state.drop
    old = _promote_as_before(drop, _mostly_red(7), "old.png")
    new = upload(http, "/api", _mostly_red(8))

    answer = http.get("/api/images")
    assert answer.status_code == 200
    listed = {item["id"]: item for item in answer.json()["images"]}
    assert set(listed) == {old, new["id"]}
    assert listed[old]["placeholder"] is None
    assert listed[old]["filename"] == "old.png"
    assert listed[new["id"]]["placeholder"] == new["placeholder"] is not None

    single = http.get(f"/api/images/{old}")
    assert single.status_code == 200
    assert single.json()["image"]["placeholder"] is None
    assert drop.get_image(old).placeholder is None
    assert http.get(f"/api/images/{old}/thumbnail").status_code in (302, 307)
    assert http.delete(f"/api/images/{old}").status_code == 204
    assert not [key for key in stored(drop) if old in key]
