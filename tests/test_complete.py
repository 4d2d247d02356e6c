"""Completion: verify an upload, then promote it or delete it with the exact reason.

Library-level tests write the quarantined object with ``storage.put`` (the browser's POST is not
the point there; and storage would refuse an empty body, so that is the only way to test one). The
API tests go the whole way over HTTP, the app in-process (``tests.appflow``): sign, post the form
to storage (the local backend's receiver in the app, or a real Ceph RGW over the network),
complete, list, delete; ``serve --workers 2`` is a live server. Every refusal proves nothing
remains in quarantine or in the gallery. The API's answers to the hostile files are written to
``test-output/hostile-files.md``.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import hashlib
import io
import json
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from s3drop import Settings
from s3drop._auth import Principal
from s3drop._errors import (
    AlreadyCompleted,
    ChecksumMismatch,
    Forbidden,
    ImageRejected,
    NotAnImage,
    NotFound,
    SizeMismatch,
    TypeMismatch,
)
from s3drop._policy import encode_meta, filename_label, new_upload_id, quarantine_key
from s3drop._uploads import S3Drop
from s3drop.limits import MemoryLimitStore, app_limit_store

from . import samples
from .appflow import app_backend, fetch, post, upload
from .conftest import OUTPUT, LiveServer
from .flow import Backend, complete, sign
from .flow import post as live_post

TYPES = ["image/png", "image/jpeg", "image/gif", "image/webp", "image/heic"]

#: The code and message the API must answer each hostile file with.
EXPECTED: dict[str, tuple[str, str]] = {
    "HTML declared image/png": ("not_an_image", "the file is an HTML document, not an image"),
    "SVG with a script declared image/png": (
        "not_an_image",
        "the file is an SVG document, not an image",
    ),
    "PNG with HTML appended": (
        "corrupt_image",
        f"{len(samples.HTML)} bytes of other data follow the end of the PNG image; a file hidden "
        "behind a picture is not accepted",
    ),
    "truncated JPEG": (
        "corrupt_image",
        "the JPEG image is truncated: its last scan is cut off",
    ),
    "decompression bomb (30000 x 30000 PNG)": (
        "too_many_pixels",
        "the image is 30000 x 30000 pixels (900.0 megapixels); the limit is 50 megapixels",
    ),
    "GIF of 3000 frames": (
        "too_many_frames",
        "the animation has more than 500 frames; the limit is 500",
    ),
    "JPEG declared image/png": (
        "type_mismatch",
        "the file is a JPEG image, but it was uploaded as image/png",
    ),
    # The HEIC path (issue 15): header-first caps, then libheif in the sandbox.
    "truncated HEIC": ("corrupt_image", "the HEIC image is truncated: its last box is cut off"),
    "HEIC with a wrong ispe": (
        "corrupt_image",
        "the HEIC image's header says 32 x 24 pixels, but its HEVC data is 64 x 64",
    ),
    "HEIC with a huge ispe (decompression bomb)": (
        "too_many_pixels",
        "the image is 30000 x 30000 pixels (900.0 megapixels); the limit is 50 megapixels",
    ),
    "HEIC of too many items": (
        "too_complex",
        "the HEIC image has more than 1,024 items; phones write a few hundred at most, so it is "
        "refused before decoding",
    ),
    "HEIC with HTML appended": (
        "corrupt_image",
        "the HEIC image is truncated: it ends inside its header",
    ),
    "HEIC declared image/jpeg": (
        "type_mismatch",
        "the file is a HEIC image, but it was uploaded as image/jpeg",
    ),
}


# --- library level ----------------------------------------------------------------------------


@pytest.fixture
def drop(tmp_path: Path) -> S3Drop:
    settings = Settings(data_dir=tmp_path / "data", allowed_types=TYPES)
    return S3Drop(settings, limit_store=MemoryLimitStore())


def quarantine(
    drop: S3Drop,
    data: bytes,
    content_type: str,
    *,
    sha256: str | None = None,
    owner: str | None = None,
    filename: str = "photo from the café.jpg",
    stored_as: str | None = None,
) -> str:
    """Put ``data`` where the browser's POST would have: ``incoming/<id>.<ext>``."""
    upload_id = new_upload_id()
    metadata = {"filename": encode_meta(filename)}
    if sha256 is not None:
        metadata["sha256"] = sha256
    if owner is not None:
        metadata["owner"] = encode_meta(owner)
    drop.storage.put(
        quarantine_key(upload_id, content_type),
        data,
        content_type=stored_as or content_type,
        metadata=metadata,
    )
    return upload_id


def keys(drop: S3Drop, prefix: str) -> list[str]:
    return [info.key for info in drop.storage.iter_all(prefix)]


def assert_nothing_stored(drop: S3Drop) -> None:
    assert keys(drop, "incoming/") == []
    assert keys(drop, "images/") == []
    assert keys(drop, "thumbs/") == []
    assert keys(drop, "variants/") == []
    assert keys(drop, "owners/") == []
    assert drop.list_images().images == []


@pytest.mark.parametrize("name", list(EXPECTED))
def test_each_hostile_file_is_refused_and_deleted(drop: S3Drop, name: str) -> None:
    data, declared = samples.hostile_files()[name]
    upload_id = quarantine(drop, data, declared)
    with pytest.raises(ImageRejected) as refused:
        drop.complete(upload_id)
    assert (refused.value.code, refused.value.message) == EXPECTED[name]
    assert refused.value.status == 422
    assert_nothing_stored(drop)


def test_a_zero_byte_file_is_refused_and_deleted(drop: S3Drop) -> None:
    upload_id = quarantine(drop, b"", "image/png")
    with pytest.raises(NotAnImage, match=r"^the file is empty \(0 bytes\)$"):
        drop.complete(upload_id)
    assert_nothing_stored(drop)


def test_an_object_stored_with_another_type_than_signed_is_refused(drop: S3Drop) -> None:
    upload_id = quarantine(drop, samples.png(), "image/png", stored_as="text/html")
    with pytest.raises(TypeMismatch, match="stored as text/html, but its upload was signed for"):
        drop.complete(upload_id)
    assert_nothing_stored(drop)


def test_an_object_over_the_size_limit_is_refused(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", max_bytes=1000)
    small = S3Drop(settings, limit_store=MemoryLimitStore())
    upload_id = quarantine(small, samples.png(), "image/png")
    with pytest.raises(SizeMismatch, match="the limit is 1000 bytes"):
        small.complete(upload_id)
    assert_nothing_stored(small)


def test_a_checksum_mismatch_is_refused(drop: S3Drop) -> None:
    data = samples.png()
    upload_id = quarantine(drop, data, "image/png", sha256=hashlib.sha256(b"other").hexdigest())
    with pytest.raises(ChecksumMismatch, match=hashlib.sha256(data).hexdigest()):
        drop.complete(upload_id)
    assert_nothing_stored(drop)


def test_a_matching_checksum_is_accepted(drop: S3Drop) -> None:
    data = samples.png()
    image = drop.complete(
        quarantine(drop, data, "image/png", sha256=hashlib.sha256(data).hexdigest())
    )
    assert image.format == "png"


def test_an_accepted_image_is_promoted_with_its_facts(drop: S3Drop) -> None:
    data = samples.jpeg(size=(640, 480), exif=samples.gps_exif(1))
    upload_id = quarantine(drop, data, "image/jpeg", owner="alice")
    image = drop.complete(upload_id)
    assert (image.id, image.width, image.height, image.format) == (upload_id, 640, 480, "jpeg")
    assert image.filename == "photo from the café.jpg"
    assert image.owner == "alice"
    assert keys(drop, "incoming/") == []
    # The key carries the gallery's facts, the filename, the placeholder and the variants made
    # included (in characters s3drop chose): 640 pixels wide, it has the 320 one, in WebP.
    assert image.placeholder is not None
    label = filename_label(image.filename)
    placeholder = f"p{image.placeholder.thumbhash_label}.c{image.placeholder.color}"
    name = f"{upload_id}.640x480.{image.bytes}.n{label}.{placeholder}.vw320.jpg"
    assert keys(drop, "images/") == [f"images/{name}"] == [image.key]
    assert keys(drop, "thumbs/") == [f"thumbs/{upload_id}.webp"]
    assert keys(drop, "variants/") == [f"variants/{upload_id}.320.webp"]
    assert keys(drop, "owners/") == [f"owners/alice/{name}"]  # alice's index
    assert drop.storage.read(f"owners/alice/{name}") == b""
    info = drop.storage.head(image.key)
    assert info is not None
    stored = drop.storage.read(info.key)
    assert info.content_type == "image/jpeg"
    assert info.metadata == {
        "width": "640",
        "height": "480",
        "format": "jpeg",
        "bytes": str(len(stored)),
        "sha256": hashlib.sha256(stored).hexdigest(),
        "source-sha256": hashlib.sha256(data).hexdigest(),  # what was uploaded: duplicates
        "filename": encode_meta("photo from the café.jpg"),
        "owner": "alice",
    }
    marker = f"digests/alice/{hashlib.sha256(data).hexdigest()}"
    assert keys(drop, "digests/") == [marker]
    assert drop.storage.head(marker).metadata["image"] == image.key  # type: ignore[union-attr]
    assert image.bytes == len(stored) < len(data)  # the EXIF went
    thumb = drop.storage.head(f"thumbs/{upload_id}.webp")
    assert thumb is not None
    assert thumb.content_type == "image/webp"
    assert Image.open(io.BytesIO(drop.storage.read(thumb.key))).size == (320, 240)
    as_json = image.to_dict()
    assert set(as_json) == {
        "id", "url", "thumbnail_url", "width", "height", "format", "bytes", "uploaded_at",
        "filename", "srcset", "sizes", "sources", "placeholder",
    }  # fmt: skip
    assert as_json["uploaded_at"].endswith("Z")


@pytest.mark.parametrize(
    ("make", "declared", "mode"),
    [(samples.cmyk_jpeg, "image/jpeg", "CMYK"), (samples.png16, "image/png", "I;16")],
)
def test_cmyk_jpeg_and_16_bit_png_are_accepted(
    drop: S3Drop, make: Any, declared: str, mode: str
) -> None:
    data = make()
    image = drop.complete(quarantine(drop, data, declared))
    stored = Image.open(io.BytesIO(drop.storage.read(image.key)))
    assert stored.mode == mode
    assert drop.storage.read(image.key) == data
    assert keys(drop, "incoming/") == []


def test_a_jpeg_with_orientation_6_and_gps_is_stored_upright_without_exif(drop: S3Drop) -> None:
    data = samples.oriented_jpeg(6)
    as_stored = Image.open(io.BytesIO(data))
    assert as_stored.size == (96, 160)  # the pixels lie on their side
    assert as_stored.getexif().get_ifd(0x8825)  # with GPS
    image = drop.complete(quarantine(drop, data, "image/jpeg"))
    assert (image.width, image.height) == (160, 96)
    promoted = drop.storage.read(image.key)
    shown = Image.open(io.BytesIO(promoted))
    assert shown.size == (160, 96)
    red = shown.convert("RGB").getpixel((4, 4))
    assert isinstance(red, tuple)
    assert all(abs(a - b) < 24 for a, b in zip(red, samples.TOP_LEFT, strict=True))
    assert not shown.getexif()
    for trace in (b"Exif\0\0", b"TestPhone", b"GPS", b"52,22", b"shot at home"):
        assert trace not in promoted


def test_completing_twice_returns_the_same_image(drop: S3Drop) -> None:
    upload_id = quarantine(drop, samples.png(), "image/png")
    first = drop.complete(upload_id)
    second = drop.complete(upload_id)
    assert (second.id, second.key, second.bytes, second.width) == (
        first.id,
        first.key,
        first.bytes,
        first.width,
    )
    assert keys(drop, "images/") == [first.key]


def test_a_retry_after_a_crash_before_the_quarantine_delete_finishes_the_job(drop: S3Drop) -> None:
    data = samples.png()
    upload_id = quarantine(drop, data, "image/png")
    first = drop.complete(upload_id)
    # As if the process had died after promoting, before deleting the quarantined copy (which
    # arrived before the image was written):
    leftover = quarantine_key(upload_id, "image/png")
    metadata = {"filename": encode_meta("photo from the café.jpg")}  # as the browser posted it
    drop.storage.put(leftover, data, content_type="image/png", metadata=metadata)
    promoted_at = (drop.settings.data_dir / "objects" / first.key).stat().st_mtime
    os.utime(drop.settings.data_dir / "objects" / leftover, (promoted_at - 5, promoted_at - 5))
    again = drop.complete(upload_id)
    assert again.key == first.key
    assert keys(drop, "incoming/") == []
    assert keys(drop, "images/") == [first.key]


def test_a_form_posted_again_after_its_image_was_deleted_makes_no_image(
    drop: S3Drop, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The id was claimed once and has no image: no second image, however long after."""
    monkeypatch.setattr("s3drop._promote._AWAIT_PROMOTION", 0.2)  # no other process is writing
    alice = Principal("alice")
    data = samples.png(5)
    upload_id = quarantine(drop, data, "image/png", owner="alice")
    drop.delete_image(drop.complete(upload_id, principal=alice).id, principal=alice)
    drop.storage.put(  # the same form, posted again: storage takes it
        quarantine_key(upload_id, "image/png"),
        data,
        content_type="image/png",
        metadata={"owner": "alice"},
    )
    with pytest.raises(AlreadyCompleted, match=f"^upload {upload_id} was already completed; a"):
        drop.complete(upload_id, principal=alice)
    assert_nothing_stored(drop)
    store = drop.limits.store
    assert isinstance(store, MemoryLimitStore)
    assert store._counts[("user:alice:images", 0)] == 0


def test_a_repost_as_old_as_its_image_is_judged_by_its_content(drop: S3Drop) -> None:
    """Storage times may have one-second steps: a file posted again in the second its image was
    written is verified, and refused because it is not that image."""
    upload_id = quarantine(drop, samples.png(6, (64, 48), compress_level=0), "image/png")
    image = drop.complete(upload_id)
    promoted = drop.storage.read(image.key)
    other = samples.png(7, (64, 48), compress_level=0)
    key = quarantine_key(upload_id, "image/png")
    drop.storage.put(key, other, content_type="image/png", metadata={})
    written = (drop.settings.data_dir / "objects" / image.key).stat().st_mtime
    os.utime(drop.settings.data_dir / "objects" / key, (written, written))
    with pytest.raises(AlreadyCompleted, match=f"already completed as {image.key};"):
        drop.complete(upload_id)
    assert keys(drop, "incoming/") == []
    assert keys(drop, "images/") == [image.key]
    assert drop.storage.read(image.key) == promoted
    assert drop.complete(upload_id).key == image.key  # a plain retry: the image


@pytest.mark.parametrize(
    "upload_id",
    [new_upload_id(), "../../etc/passwd", "x" * 23, ""],
    ids=["unknown", "traversal", "malformed", "empty"],  # the same in every xdist worker
)
def test_completing_an_unknown_upload_is_not_found(drop: S3Drop, upload_id: str) -> None:
    with pytest.raises(NotFound):
        drop.complete(upload_id)


def test_only_the_owner_completes_an_upload(drop: S3Drop) -> None:
    upload_id = quarantine(drop, samples.png(), "image/png", owner="alice")
    with pytest.raises(Forbidden):
        drop.complete(upload_id, principal=Principal("bob"))
    assert len(keys(drop, "incoming/")) == 1  # not someone else's to reject, nor to promote
    assert keys(drop, "images/") == keys(drop, "thumbs/") == keys(drop, "owners/") == []
    assert drop.complete(upload_id, principal=Principal("alice")).owner == "alice"
    with pytest.raises(Forbidden):  # nor to ask about once promoted
        drop.complete(upload_id, principal=Principal("bob"))


def test_an_upload_with_no_recorded_owner_is_anonymous(drop: S3Drop) -> None:
    upload_id = quarantine(drop, samples.png(), "image/png")
    image = drop.complete(upload_id)
    assert image.owner == "anonymous"
    assert keys(drop, "owners/") == [image.key.replace("images/", "owners/anonymous/")]
    anonymous = Principal("anonymous", anonymous=True)
    assert [found.id for found in drop.list_images(principal=anonymous).images] == [upload_id]
    assert drop.list_images(principal=Principal("alice")).images == []


def test_an_accepted_image_counts_against_its_owners_stored_images(drop: S3Drop) -> None:
    alice = Principal("alice")
    image = drop.complete(
        quarantine(drop, samples.png(), "image/png", owner="alice"), principal=alice
    )
    store = drop.limits.store
    assert isinstance(store, MemoryLimitStore)
    assert store._counts[("user:alice:images", 0)] == 1
    drop.delete_image(image.id, principal=alice)
    assert store._counts[("user:alice:images", 0)] == 0


# --- over HTTP, against a live server on each backend -----------------------------------------


HOSTILE_ROWS: list[tuple[str, str, str, int, str, str]] = []


@pytest.fixture(scope="module", params=["local", "rgw"])
def backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Backend]:
    with app_backend(
        request, tmp_path_factory, env={"S3DROP_ALLOWED_TYPES": ",".join(TYPES)}
    ) as found:
        yield found


@pytest.fixture(scope="module", autouse=True)
def _hostile_table() -> Iterator[None]:
    yield
    if not HOSTILE_ROWS:
        return
    OUTPUT.mkdir(exist_ok=True)
    lines = [
        "| file | declared as | backend | status | code | message |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, declared, backend, status, code, message in sorted(HOSTILE_ROWS):
        lines.append(f"| {name} | {declared} | {backend} | {status} | {code} | {message} |")
    (OUTPUT / "hostile-files.md").write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("name", list(EXPECTED))
def test_the_api_refuses_each_hostile_file_with_422_and_its_reason(
    backend: Backend, name: str
) -> None:
    data, declared = samples.hostile_files()[name]
    with backend.server.client() as http:
        upload_id = upload(backend, http, data, declared)
        answer = http.post(f"/api/uploads/{upload_id}/complete")
        assert answer.status_code == 422, answer.text
        error = answer.json()["error"]
        HOSTILE_ROWS.append(
            (name, declared, backend.name, answer.status_code, error["code"], error["message"])
        )
        assert (error["code"], error["message"]) == EXPECTED[name]
        assert backend.keys(f"incoming/{upload_id}") == []
        assert backend.keys(f"images/{upload_id}") == []
        assert backend.keys(f"thumbs/{upload_id}") == []
        listed = http.get("/api/images", params={"limit": 100}).json()["images"]
        assert upload_id not in [image["id"] for image in listed]
        # Completing it again: it is gone.
        assert http.post(f"/api/uploads/{upload_id}/complete").status_code == 404


def test_the_api_refuses_an_empty_file_before_signing(backend: Backend) -> None:
    with backend.server.client() as http:
        answer = http.post(
            "/api/uploads", json={"filename": "empty.png", "content_type": "image/png", "size": 0}
        )
    assert answer.status_code == 400
    error = answer.json()["error"]
    HOSTILE_ROWS.append(
        ("zero-byte file", "image/png", backend.name, 400, error["code"], error["message"])
    )
    assert error["code"] == "file_empty"


def test_the_whole_flow_over_http(backend: Backend) -> None:
    data = samples.oriented_jpeg(6)
    digest = hashlib.sha256(data).hexdigest()
    with backend.server.client() as http:
        form = sign(http, data, "image/jpeg", sha256=digest)
        post(backend, form, data)
        answer = http.post(f"/api/uploads/{form['id']}/complete")
        assert answer.status_code == 200, answer.text
        image = answer.json()["image"]
        assert image["id"] == form["id"]
        assert (image["width"], image["height"], image["format"]) == (160, 96, "jpeg")
        assert image["filename"] == "upload.bin"
        again = http.post(f"/api/uploads/{form['id']}/complete")
        assert again.status_code == 200
        assert again.json()["image"]["bytes"] == image["bytes"]
        assert backend.keys(f"incoming/{form['id']}") == []

        listed = http.get("/api/images").json()
        assert form["id"] in [item["id"] for item in listed["images"]]
        full = fetch(backend, image["url"])
        assert full.status_code == 200
        assert full.headers["content-type"] == "image/jpeg"
        assert len(full.content) == image["bytes"]
        assert b"Exif" not in full.content
        assert Image.open(io.BytesIO(full.content)).size == (160, 96)
        thumb = fetch(backend, image["thumbnail_url"])
        assert thumb.status_code == 200
        assert Image.open(io.BytesIO(thumb.content)).format == "WEBP"

        assert http.delete(f"/api/images/{form['id']}").status_code == 204
        assert backend.keys(f"images/{form['id']}") == []
        assert backend.keys(f"thumbs/{form['id']}") == []
        gone = http.delete(f"/api/images/{form['id']}")
        assert gone.status_code == 404
        assert gone.json()["error"]["code"] == "not_found"


def test_a_checksum_mismatch_over_http(backend: Backend) -> None:
    data = samples.png(4)
    with backend.server.client() as http:
        form = sign(http, data, "image/png", sha256=hashlib.sha256(b"something else").hexdigest())
        post(backend, form, data)
        answer = http.post(f"/api/uploads/{form['id']}/complete")
    assert answer.status_code == 422
    assert answer.json()["error"]["code"] == "checksum_mismatch"
    assert backend.keys(f"incoming/{form['id']}") == []


@pytest.mark.parametrize("upload_id", [new_upload_id(), "not-an-id"], ids=["unknown", "malformed"])
def test_completing_an_unknown_upload_over_http_is_404(backend: Backend, upload_id: str) -> None:
    with backend.server.client() as http:
        answer = http.post(f"/api/uploads/{upload_id}/complete")
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "not_found"


# --- one form, one upload, at most one image (over HTTP, each backend) --------------------------


def _images_counted(backend: Backend) -> int:
    """The anonymous test client's stored-images counter, read from the limits database."""
    path = backend.server.data_dir / "limits.sqlite3"
    with contextlib.closing(sqlite3.connect(path)) as db:
        row = db.execute(
            "SELECT used FROM counters WHERE key = ? AND start = 0", ("addr:127.0.0.1:images",)
        ).fetchone()
    return int(row[0]) if row else 0


def _audited(backend: Backend, event: str, upload_id: str) -> list[dict[str, Any]]:
    """The server's audit lines of ``event`` about ``upload_id``."""
    found = []
    for line in backend.server.output().splitlines():
        start = 0 if line.startswith("{") else line.find('{"event":')  # JSON logs, or text
        if start >= 0:
            entry = json.loads(line[start:])
            if entry.get("event") == event and upload_id in (entry.get("key") or ""):
                found.append(entry)
    return found


def _stored_for(backend: Backend, upload_id: str) -> dict[str, list[str]]:
    return {
        prefix: backend.keys(f"{prefix}{upload_id}")
        for prefix in ("incoming/", "images/", "thumbs/")
    } | {"owners/": [key for key in backend.keys("owners/") if upload_id in key]}


def test_a_form_posted_again_after_completion_makes_no_second_image(backend: Backend) -> None:
    """The same signed form, posted again with another file of the same size once its upload
    was promoted: completion refuses it (409) and deletes it; the image, its thumbnail and the
    count are the first upload's. A plain retry of complete still answers the image."""
    first, second = (samples.png(seed, (64, 48), compress_level=0) for seed in (21, 22))
    assert len(first) == len(second)
    assert first != second
    with backend.server.client() as http:
        form = sign(http, first, "image/png")
        post(backend, form, first)
        counted = _images_counted(backend)
        image = complete(http, form["id"])
        promoted = _stored_for(backend, form["id"])
        assert promoted["incoming/"] == []
        thumbnail = fetch(backend, image["thumbnail_url"]).content

        post(backend, form, second)  # storage cannot know the form was used: it takes the file
        assert backend.keys(form["key"]) == [form["key"]]
        again = http.post(f"/api/uploads/{form['id']}/complete")
        assert again.status_code == 409, again.text
        error = again.json()["error"]
        assert error["code"] == "already_completed"
        assert "sign a new upload" in error["message"]
        assert _stored_for(backend, form["id"]) == promoted  # the new file is gone
        assert fetch(backend, image["thumbnail_url"]).content == thumbnail
        assert _images_counted(backend) == counted + 1
        assert len(_audited(backend, "accept", form["id"])) == 1
        assert [e["reason"] for e in _audited(backend, "refuse", form["id"])] == [
            "already_completed"
        ]

        retry = http.post(f"/api/uploads/{form['id']}/complete")  # no new file: idempotent
        assert retry.status_code == 200, retry.text
        assert retry.json()["image"] == {**image, **_fresh_urls(retry.json()["image"])}
        listed = [item["id"] for item in http.get("/api/images?limit=100").json()["images"]]
        assert listed.count(form["id"]) == 1
    assert _stored_for(backend, form["id"]) == promoted
    assert _images_counted(backend) == counted + 1


def _fresh_urls(image: dict[str, Any]) -> dict[str, Any]:
    """Signed URLs carry a fresh expiry on every answer: compare everything else."""
    return {"url": image["url"], "thumbnail_url": image["thumbnail_url"]}


def test_concurrent_completions_of_one_id_promote_once_and_count_once(backend: Backend) -> None:
    data = samples.png(23, (1200, 900))  # a verification long enough for the calls to overlap
    with backend.server.client() as http:
        form = sign(http, data, "image/png")
        post(backend, form, data)
        counted = _images_counted(backend)
    url = f"/api/uploads/{form['id']}/complete"

    def one(_: int) -> httpx.Response:
        with backend.server.client() as http:  # a client (a connection) each
            return http.post(url)

    with concurrent.futures.ThreadPoolExecutor(5) as pool:
        answers = list(pool.map(one, range(5)))
    assert [answer.status_code for answer in answers] == [200] * 5, [a.text for a in answers]
    images = [answer.json()["image"] for answer in answers]
    assert {(image["id"], image["bytes"], image["width"]) for image in images} == {
        (form["id"], images[0]["bytes"], 1200)
    }
    stored = _stored_for(backend, form["id"])
    assert stored["incoming/"] == []
    assert len(stored["images/"]) == len(stored["thumbs/"]) == len(stored["owners/"]) == 1
    assert _images_counted(backend) == counted + 1
    assert len(_audited(backend, "accept", form["id"])) == 1


def test_a_form_signed_for_one_size_takes_no_other(backend: Backend) -> None:
    """Signed for 1 byte, a 3.6 MB PNG is refused by storage itself; nothing is stored and
    only the claimed byte was counted against the hourly budget."""
    data = samples.png(24, (1100, 1100), compress_level=0)
    assert len(data) > 3_500_000
    with backend.server.client() as http:
        answer = http.post(
            "/api/uploads", json={"filename": "lie.png", "content_type": "image/png", "size": 1}
        )
        assert answer.status_code == 201
        form = answer.json()["upload"]
        for body in (data, data[:2]):
            refused = http.post(
                backend.url(form["url"]),
                data=form["fields"],
                files={"file": ("lie.png", body, "image/png")},
                timeout=60,
            )
            assert refused.status_code == 400, refused.text
            assert "<Code>EntityTooLarge</Code>" in refused.text
        assert _stored_for(backend, form["id"]) == {
            "incoming/": [], "images/": [], "thumbs/": [], "owners/": []
        }  # fmt: skip
        gone = http.post(f"/api/uploads/{form['id']}/complete")
        assert gone.status_code == 404
        assert gone.json()["error"]["code"] == "not_found"
    assert form["max_bytes"] == 1  # what the form says it takes


def test_two_processes_completing_one_id_promote_once_and_count_once(tmp_path: Path) -> None:
    """Two S3Drop instances over one data folder, as two worker processes are: each has its own
    lock and its own SQLite connection, and only the claim in the shared limits database decides
    who promotes. Both answer the image; one counts it."""
    settings = Settings(data_dir=tmp_path / "data")
    workers = [S3Drop(settings, limit_store=app_limit_store(settings)) for _ in range(2)]
    data = samples.png(25, (1200, 900))
    alice = Principal("alice")
    upload_id = quarantine(workers[0], data, "image/png", owner="alice")
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        results = list(
            pool.map(lambda n: workers[n % 2].complete(upload_id, principal=alice), range(4))
        )
    assert {image.key for image in results} == {results[0].key}
    assert keys(workers[1], "incoming/") == []
    assert len(keys(workers[1], "images/")) == len(keys(workers[1], "owners/")) == 1
    path = tmp_path / "data" / "limits.sqlite3"
    with contextlib.closing(sqlite3.connect(path)) as db:
        counts = dict(db.execute("SELECT key, used FROM counters WHERE start = 0").fetchall())
    assert counts == {"user:alice:images": 1, f"upload:{upload_id}:promoted": 1}


def test_completions_spread_over_two_workers_promote_once_and_count_once(
    make_server: Any,
) -> None:
    """``serve --workers 2``: concurrent completions of one id on fresh connections, until both
    worker processes answered completions of the same upload. One image, counted once, one
    accept line, whoever answered."""
    server: LiveServer = make_server(args=["--workers", "2", "--log-format", "json"])
    local = Backend("local", server)
    data = samples.png(26, (1200, 900))
    url = f"{server.url}/api/uploads/{{}}/complete"

    def workers_of(upload_id: str) -> set[int]:
        found = set()
        for line in server.output().splitlines():
            if line.startswith("{") and f"/api/uploads/{upload_id}/complete" in line:
                entry = json.loads(line)
                if entry.get("logger") == "uvicorn.access":
                    found.add(entry["pid"])
        return found

    for _ in range(8):
        with server.client() as http:
            form = sign(http, data, "image/png")
            live_post(local, form, data)
        target = url.format(form["id"])
        with concurrent.futures.ThreadPoolExecutor(6) as pool:
            answers = list(pool.map(lambda t: httpx.post(t, timeout=60), [target] * 6))
        assert [answer.status_code for answer in answers] == [200] * 6
        assert len({answer.json()["image"]["bytes"] for answer in answers}) == 1
        stored = _stored_for(local, form["id"])
        assert stored["incoming/"] == []
        assert len(stored["images/"]) == len(stored["thumbs/"]) == len(stored["owners/"]) == 1
        assert len(_audited(local, "accept", form["id"])) == 1
        if len(workers_of(form["id"])) == 2:
            break
    else:
        pytest.fail("the kernel gave every connection to one worker, eight times")
    uploads = len(_audited(local, "sign", "incoming/"))
    assert _images_counted(local) == uploads  # one per upload, however many completions
