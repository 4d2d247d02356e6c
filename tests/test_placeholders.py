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
import pillow_heif
import pytest
from PIL import Image

from s3drop import S3Drop, Settings
from s3drop._placeholders import Placeholder
from s3drop._policy import new_upload_id, quarantine_key
from s3drop.storage._counting import CountingStorage
from s3drop.storage.local import LocalStorage
from s3drop.web.app import create_app

from . import samples
from .inprocess import asgi_client, sign, stored, upload
from .promoted import promote_as_before_placeholders

RED = (200, 30, 40)


def _mostly_red(seed: int) -> bytes:
    """A 400 x 300 photo whose left 70% is :data:`RED` (distinct bytes per seed)."""
    image = samples.photo(seed, (400, 300))
    image.paste(RED, (0, 0, 280, 300))
    return samples.encode(image, "PNG")


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
    storage = CountingStorage(LocalStorage(settings))
    drop = S3Drop(settings, storage=storage)
    for seed in range(3):
        upload_id = new_upload_id()
        drop.storage.put(
            quarantine_key(upload_id, "image/png"),
            _mostly_red(seed),
            content_type="image/png",
            metadata={"filename": f"red-{seed}.png"},
        )
        drop.complete(upload_id)
    with storage.counting() as requests:
        page = drop.list_images(limit=50)
    assert requests.made == [("LIST", "images/")]
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


def test_images_promoted_before_placeholders_answer_null_and_nothing_breaks(
    app_and_http: tuple[Any, httpx.Client],
) -> None:
    app, http = app_and_http
    drop: S3Drop = app.state.drop
    old = promote_as_before_placeholders(drop, _mostly_red(7), "old.png")
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


# --- HEIC: converted to a JPEG (s3drop._convert), with the placeholder of what is stored ---------

HEIC_ALLOWED = "image/png,image/jpeg,image/heic,image/heif"


@pytest.fixture
def heic_http(tmp_path: Path) -> Iterator[tuple[S3Drop, httpx.Client]]:
    settings = Settings(data_dir=tmp_path / "data", allowed_types=HEIC_ALLOWED)  # type: ignore[arg-type]
    app = create_app(settings)
    with asgi_client(app) as http:
        yield app.state.drop, http


def _upload_heic(http: httpx.Client, data: bytes) -> dict[str, Any]:
    """Sign as ``image/heic``, post, complete: the accepted image's JSON."""
    answer = sign(http, "/api", data, "image/heic")
    assert answer.status_code == 201, answer.text
    form = answer.json()["upload"]
    files = {"file": ("IMG_0001.HEIC", data, "image/heic")}
    posted = http.post(form["url"], data=form["fields"], files=files)
    assert posted.status_code in (200, 201, 204), posted.text
    done = http.post(f"/api/uploads/{form['id']}/complete")
    assert done.status_code == 200, done.text
    image: dict[str, Any] = done.json()["image"]
    return image


def test_an_accepted_heic_has_the_placeholder_of_its_upright_jpeg_everywhere(
    heic_http: tuple[S3Drop, httpx.Client],
) -> None:
    drop, http = heic_http
    # Stored by the camera as a 48 x 64 portrait, turned upright (64 x 48) by its irot.
    image = _upload_heic(http, samples.oriented_heic(6, size=(64, 48)))
    assert (image["format"], image["width"], image["height"]) == ("jpeg", 64, 48)
    placeholder = image["placeholder"]
    assert placeholder is not None
    assert _close(placeholder["color"], (255, 0, 0), 8), placeholder  # marked(): red
    thumbhash = base64.b64decode(placeholder["thumbhash"], validate=True)
    assert thumbhash[4] & 0x80  # landscape: the upright picture's hash, not the sensor's
    assert not thumbhash[2] & 0x80  # opaque, as the JPEG is

    [key] = [key for key in stored(drop) if key.startswith("images/")]
    assert key.endswith(".jpg")
    assert http.get("/api/images").json()["images"][0]["placeholder"] == placeholder
    assert http.get(f"/api/images/{image['id']}").json()["image"]["placeholder"] == placeholder
    assert drop.get_image(image["id"]).placeholder == Placeholder.from_dict(placeholder)
    assert drop.list_images().images[0].placeholder == Placeholder.from_dict(placeholder)


def test_a_transparent_heic_gets_the_opaque_placeholder_of_the_jpeg_it_becomes(
    heic_http: tuple[S3Drop, httpx.Client],
) -> None:
    _, http = heic_http
    picture = Image.new("RGBA", (120, 80), (0, 0, 0, 0))
    picture.paste((30, 90, 200, 255), (0, 0, 60, 40))  # a quarter opaque blue, the rest clear
    pillow_heif.register_heif_opener()
    image = _upload_heic(http, samples.encode(picture, "HEIF", quality=90))
    thumbhash = base64.b64decode(image["placeholder"]["thumbhash"])
    assert not thumbhash[2] & 0x80  # no alpha: the JPEG is flattened onto white
    assert _close(image["placeholder"]["color"], (255, 255, 255), 3)  # and white is most of it
