"""HEIC and HEIF from phones over HTTP (in-process): signed as image/heic into quarantine, verified
in the decode sandbox, stored as an upright JPEG without metadata; refused unless allowed. (The
hostile HEIC files are in the hostile-file suite, tests/test_complete.py.)"""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from s3drop import S3Drop
from s3drop._config import Settings
from s3drop._errors import InsufficientStorage
from s3drop._responsive import VariantSet
from s3drop.storage.local import LocalStorage
from s3drop.web.app import create_app

from . import samples
from .inprocess import asgi_client, stored

HEIC_ALLOWED = "image/png,image/jpeg,image/heic,image/heif"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[httpx.Client, S3Drop]]:
    settings = Settings(data_dir=tmp_path / "data", allowed_types=HEIC_ALLOWED)  # type: ignore[arg-type]
    app = create_app(settings)
    with asgi_client(app) as http:
        yield http, app.state.drop


def _post(http: httpx.Client, data: bytes, content_type: str) -> dict[str, Any]:
    """Sign for ``content_type`` and post ``data`` to the form; the form."""
    answer = http.post(
        "/api/uploads",
        json={"filename": "IMG_0001.HEIC", "content_type": content_type, "size": len(data)},
    )
    assert answer.status_code == 201, answer.text
    form: dict[str, Any] = answer.json()["upload"]
    posted = http.post(
        form["url"], data=form["fields"], files={"file": ("IMG_0001.HEIC", data, content_type)}
    )
    assert posted.status_code in (200, 201, 204), posted.text
    return form


def test_a_heic_is_signed_as_heic_and_stored_as_an_upright_jpeg(
    served: tuple[httpx.Client, S3Drop],
) -> None:
    http, drop = served
    data = samples.oriented_heic(6, size=(64, 48))
    form = _post(http, data, "image/heic")
    assert form["key"].startswith("incoming/")
    assert form["key"].endswith(".heic")
    assert stored(drop) == [form["key"]]
    done = http.post(f"/api/uploads/{form['id']}/complete")
    assert done.status_code == 200, done.text
    image = done.json()["image"]
    assert (image["format"], image["width"], image["height"]) == ("jpeg", 64, 48)
    keys = stored(drop)
    [key] = [key for key in keys if key.startswith("images/")]
    assert key.endswith(".jpg")
    assert not [key for key in keys if key.startswith("incoming/")]  # the HEIC is not kept
    assert not [key for key in keys if key.endswith(".heic")]
    info = drop.storage.head(key)
    assert info is not None
    assert info.content_type == "image/jpeg"
    jpeg = Image.open(io.BytesIO(drop.storage.read(key)))
    assert jpeg.format == "JPEG"
    # Upright, turned once: the marked corner is at the top left (twice would put it elsewhere).
    assert _close(jpeg.convert("RGB").getpixel((3, 3)), samples.MARK)
    assert _close(jpeg.convert("RGB").getpixel((60, 44)), (255, 0, 0))
    assert not jpeg.getexif()  # no EXIF (orientation, camera, GPS)
    assert b"Exif" not in drop.storage.read(key)


def _close(pixel: Any, colour: tuple[int, int, int]) -> bool:
    return all(abs(a - b) <= 24 for a, b in zip(pixel, colour, strict=True))


def test_heic_is_refused_at_signing_unless_allowed(tmp_path: Path) -> None:
    app = create_app(Settings(data_dir=tmp_path / "data"))
    with asgi_client(app) as http:
        data = samples.heic(1)
        answer = http.post(
            "/api/uploads",
            json={"filename": "IMG_0002.HEIC", "content_type": "image/heic", "size": len(data)},
        )
        assert answer.status_code == 415, answer.text
        assert answer.json()["error"]["code"] == "type_not_allowed"
        types = http.get("/api/config").json()["types"]
        assert "image/heic" not in [entry["type"] for entry in types]
        assert stored(app.state.drop) == []


def test_the_config_serves_heic_labels_and_extensions(
    served: tuple[httpx.Client, S3Drop],
) -> None:
    http, _ = served
    types = {entry["type"]: entry for entry in http.get("/api/config").json()["types"]}
    assert types["image/heic"] == {
        "type": "image/heic",
        "label": "HEIC",
        "extensions": [".heic"],
        "family": [{"type": "image/heif", "extensions": [".heif"]}],
    }
    assert types["image/heif"] == {
        "type": "image/heif",
        "label": "HEIF",
        "extensions": [".heif"],
        "family": [{"type": "image/heic", "extensions": [".heic"]}],
    }
    assert types["image/png"]["family"] == []


def test_the_original_heic_is_kept_only_when_asked_and_goes_with_its_image(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path / "data",
        allowed_types=HEIC_ALLOWED,  # type: ignore[arg-type]
        keep_heic_original=True,
    )
    app = create_app(settings)
    drop: S3Drop = app.state.drop
    data = samples.heic(11)
    with asgi_client(app) as http:
        form = _post(http, data, "image/heic")
        image = http.post(f"/api/uploads/{form['id']}/complete").json()["image"]
        original = f"originals/{image['id']}.heic"
        assert drop.storage.read(original) == data
        info = drop.storage.head(original)
        assert info is not None
        assert info.content_type == "image/heic"
        assert http.delete(f"/api/images/{image['id']}").status_code == 204
        assert stored(drop) == []


def test_sweep_removes_an_original_whose_image_is_gone(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path / "data",
        allowed_types=HEIC_ALLOWED,  # type: ignore[arg-type]
        keep_heic_original=True,
    )
    drop = create_app(settings).state.drop
    kept = create_app(settings)
    with asgi_client(kept) as http:
        form = _post(http, samples.heic(12), "image/heic")
        image_id = http.post(f"/api/uploads/{form['id']}/complete").json()["image"]["id"]
    # The image deleted while the setting was off: its original stays behind.
    off = Settings(data_dir=tmp_path / "data", allowed_types=HEIC_ALLOWED)  # type: ignore[arg-type]
    create_app(off).state.drop.delete_image(image_id)
    assert stored(drop) == [f"originals/{image_id}.heic"]
    assert drop.sweep(partial_older_than=timedelta(0)) == 1
    assert stored(drop) == []


# --- responsive variants, made from the one decode ------------------------------------------------


def _variant_keys(drop: S3Drop) -> list[str]:
    return sorted(info.key for info in drop.storage.iter_all("variants/"))


def test_an_accepted_heic_has_variants_made_from_its_one_decode(tmp_path: Path) -> None:
    """Converted images get their variants like every other path: the AVIF and WebP variants
    are made from the HEIC's own decode (upright: libheif applied its irot), never from the JPEG
    it is stored as, and its JSON names them."""
    settings = Settings(
        data_dir=tmp_path / "data",
        allowed_types=HEIC_ALLOWED,  # type: ignore[arg-type]
        variant_formats="image/webp,image/avif",  # type: ignore[arg-type]
    )
    app = create_app(settings)
    drop: S3Drop = app.state.drop
    with asgi_client(app) as http:
        form = _post(http, samples.oriented_heic(6, size=(720, 540)), "image/heic")
        done = http.post(f"/api/uploads/{form['id']}/complete")
        assert done.status_code == 200, done.text
        image = done.json()["image"]
        assert (image["format"], image["width"], image["height"]) == ("jpeg", 720, 540)
        assert image["srcset"] == f"{image['url']} 720w"  # the stored JPEG, the widest candidate
        assert image["sizes"] == "(max-width: 720px) 100vw, 720px"
        assert [source["type"] for source in image["sources"]] == ["image/avif", "image/webp"]
        made = VariantSet(types=("image/avif", "image/webp"), widths=(320, 640))
        assert _variant_keys(drop) == sorted(made.keys(image["id"]))
        listed = http.get(f"/api/images/{image['id']}").json()["image"]
        assert listed["sources"] == image["sources"]
        for source in image["sources"]:
            candidates = source["srcset"].split(", ")
            assert candidates[-1] == f"{image['url']} 720w"
            for candidate in candidates[:-1]:
                url, width = candidate.split(" ")
                answer = http.get(url)
                assert answer.status_code == 200, answer.text
                assert answer.headers["content-type"] == source["type"]
                shown = Image.open(io.BytesIO(answer.content)).convert("RGB")
                assert f"{shown.width}w" == width
                assert shown.height == shown.width * 540 // 720
                assert _close(shown.getpixel((4, 4)), samples.MARK)  # upright
                assert _close(shown.getpixel((shown.width - 4, shown.height - 4)), (255, 0, 0))
        assert http.delete(f"/api/images/{image['id']}").status_code == 204
        assert stored(drop) == []


class _FullAtTheImage(LocalStorage):
    """A disk that fills up when the image itself is written, after its variants were."""

    def put(self, key: str, data: bytes, *, content_type: str, metadata: dict[str, str]) -> None:
        if key.startswith("images/"):
            raise InsufficientStorage("the disk is full")
        super().put(key, data, content_type=content_type, metadata=metadata)


def test_a_refused_heic_leaves_nothing_under_variants(tmp_path: Path) -> None:
    """A HEIC wide enough for variants, refused as corrupt (cut in its picture data) or failing
    to be stored after its variants were written: nothing is left under variants/ (nor anywhere
    but the quarantine copy a retry of the full disk needs). Small widths for a small picture:
    the order of the writes is the point, not the size (a 720 x 540 HEVC encode and its AVIF
    variants cost seconds of CPU)."""
    settings = Settings(
        data_dir=tmp_path / "data",
        allowed_types=HEIC_ALLOWED,  # type: ignore[arg-type]
        variant_formats="image/webp,image/avif",  # type: ignore[arg-type]
        variant_widths="40,80",  # type: ignore[arg-type]
    )
    app = create_app(settings, storage=_FullAtTheImage(settings))
    drop: S3Drop = app.state.drop
    data = samples.heic(21, size=(160, 120))
    with asgi_client(app) as http:
        form = _post(http, data[: len(data) - 200], "image/heic")
        refused = http.post(f"/api/uploads/{form['id']}/complete")
        assert refused.status_code == 422, refused.text
        assert refused.json()["error"]["code"] == "corrupt_image"
        assert stored(drop) == []

        form = _post(http, data, "image/heic")
        full = http.post(f"/api/uploads/{form['id']}/complete")
        assert full.status_code == 507, full.text
        assert full.json()["error"]["code"] == "insufficient_storage"
        assert _variant_keys(drop) == []
        assert stored(drop) == [form["key"]]  # kept for a retry once the disk has room
