"""Stable image URLs: a stored id is all a host keeps. ``S3Drop.image_url`` and
``GET /api/images/{id}/original|thumbnail`` map it to a fresh URL with one HEAD and no listing,
ownership and sharing applied; the endpoint redirects with cache headers that fit the URL's life."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from s3drop import ImageURL, Settings
from s3drop._auth import BearerTokens, Principal
from s3drop._errors import Forbidden, InvalidRequest, NotFound
from s3drop._policy import new_upload_id, quarantine_key, thumbnail_key
from s3drop._uploads import S3Drop
from s3drop.limits import MemoryLimitStore
from s3drop.storage._counting import CountingStorage
from s3drop.storage.local import LocalStorage
from s3drop.web.app import create_app

from . import samples
from .inprocess import BASE, asgi_client, upload

ALICE, BOB = Principal("alice"), Principal("bob")
TOKENS = {"alice": "alice-secret-token", "bob": "bob-secret-token-2"}


def make_drop(tmp_path: Path, **settings: object) -> tuple[S3Drop, CountingStorage]:
    config = Settings(data_dir=tmp_path / "data", **settings)  # type: ignore[arg-type]
    storage = CountingStorage(LocalStorage(config))
    return S3Drop(config, storage=storage, limit_store=MemoryLimitStore()), storage


def promote(drop: S3Drop, owner: str = "alice", seed: int = 0) -> str:
    upload_id = new_upload_id()
    drop.storage.put(
        quarantine_key(upload_id, "image/png"),
        samples.png(seed, (40, 30)),
        content_type="image/png",
        metadata={"filename": "cat.png", "owner": owner},
    )
    drop.complete(upload_id)
    return upload_id


@pytest.mark.parametrize("variant", ["original", "thumbnail"])
def test_an_id_becomes_a_url_with_one_head_and_no_listing(tmp_path: Path, variant: str) -> None:
    drop, storage = make_drop(tmp_path)
    for seed in range(5):  # others around it: nothing is looked through
        promote(drop, seed=seed)
    image_id = promote(drop, seed=9)
    with storage.counting() as requests:
        link = drop.image_url(image_id, variant=variant, principal=ALICE)  # type: ignore[arg-type]
    assert requests.made == [("HEAD", thumbnail_key(image_id))]
    assert link.expires_at is not None
    # The placeholder to paint meanwhile comes with it (from the key that HEAD named).
    assert link.placeholder is not None
    assert link.placeholder == drop.get_image(image_id).placeholder
    key = urlsplit(link.url).path.removeprefix("/storage/")
    if variant == "thumbnail":
        assert key == thumbnail_key(image_id)
    else:
        (original,) = [info.key for info in drop.storage.iter_all(f"images/{image_id}.")]
        assert key == original
        assert "filename=cat.png" in link.url
    assert str(link) == link.url


def test_a_url_expires_as_its_storage_says_whatever_the_backend_is_named(tmp_path: Path) -> None:
    """``expires_at`` is the storage's fact (``read_urls_expire``), not a guess from its name or
    from ``S3DROP_PUBLIC_BASE_URL`` (which the local backend does not use)."""
    drop, storage = make_drop(tmp_path, public_base_url="https://cdn.example.com")
    image_id = promote(drop)
    assert storage.read_urls_expire
    assert drop.image_url(image_id).expires_at is not None
    storage.read_urls_expire = False  # a backend whose read URLs are permanent (a CDN's)
    assert drop.image_url(image_id).expires_at is None
    assert drop.image_url(image_id, variant="thumbnail").expires_at is None


def test_ownership_and_sharing_apply(tmp_path: Path) -> None:
    drop, _ = make_drop(tmp_path)
    hers = promote(drop, owner="alice")
    with pytest.raises(Forbidden):
        drop.image_url(hers, principal=BOB)
    assert drop.image_url(hers, principal=ALICE).url
    assert drop.image_url(hers).url  # None: a trusted caller (the host decided)
    shared, _ = make_drop(tmp_path / "shared", shared=True)
    theirs = promote(shared, owner="alice")
    assert shared.image_url(theirs, variant="thumbnail", principal=BOB).url


@pytest.mark.parametrize("image_id", ["0000000000000aaaaaaaaaa", "../../etc/passwd", ""])
def test_unknown_and_malformed_ids_are_not_found(tmp_path: Path, image_id: str) -> None:
    drop, storage = make_drop(tmp_path)
    promote(drop)
    with storage.counting() as requests, pytest.raises(NotFound):
        drop.image_url(image_id, principal=ALICE)
    assert "LIST" not in requests.by_kind()


def test_an_unknown_variant_is_refused(tmp_path: Path) -> None:
    drop, _ = make_drop(tmp_path)
    with pytest.raises(InvalidRequest, match="original, thumbnail"):
        drop.image_url(promote(drop), variant="poster")  # type: ignore[arg-type]


def test_a_deleted_image_has_no_url(tmp_path: Path) -> None:
    drop, _ = make_drop(tmp_path)
    image_id = promote(drop)
    drop.delete_image(image_id)
    with pytest.raises(NotFound):
        drop.image_url(image_id)


def test_images_promoted_before_thumbnails_named_them_still_resolve(tmp_path: Path) -> None:
    drop, storage = make_drop(tmp_path)
    image_id = promote(drop, owner="alice")
    thumb = thumbnail_key(image_id)
    storage.put(thumb, storage.read(thumb), content_type="image/webp", metadata={})  # the old way
    with storage.counting() as requests, pytest.raises(Forbidden):
        drop.image_url(image_id, principal=BOB)
    assert ("LIST", f"images/{image_id}.") in requests.made  # the fallback: a listing, once
    assert f"/images/{image_id}." in drop.image_url(image_id, principal=ALICE).url


# --- the endpoint, in-process ------------------------------------------------------------------


Served = tuple[httpx.Client, S3Drop, CountingStorage]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    settings = Settings(data_dir=tmp_path / "data", get_expires_in=600)
    storage = CountingStorage(LocalStorage(settings))
    app = create_app(settings, storage=storage, authenticate=BearerTokens(TOKENS))
    drop: S3Drop = app.state.drop
    with asgi_client(app) as http:
        yield http, drop, storage


def _as(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[name]}"}


@pytest.mark.parametrize(
    ("variant", "media"), [("original", "image/png"), ("thumbnail", "image/webp")]
)
def test_the_endpoint_redirects_to_a_fresh_url_the_browser_may_cache(
    served: Served, variant: str, media: str
) -> None:
    http, drop, storage = served
    http.headers.update(_as("alice"))
    data = samples.png(3, (64, 48))
    image = upload(http, "/api", data)
    with storage.counting() as requests:
        answer = http.get(f"/api/images/{image['id']}/{variant}", follow_redirects=False)
    assert answer.status_code == 302
    assert requests.made == [("HEAD", thumbnail_key(image["id"]))]
    location = answer.headers["location"]
    assert location.startswith(f"{BASE}/storage/")  # absolute
    # Cacheable by this browser only, never past half of the signed URL's life (600 s).
    assert answer.headers["cache-control"] in ("private, max-age=299", "private, max-age=300")
    target = http.get(location)
    assert target.status_code == 200
    assert target.headers["content-type"] == media
    if variant == "original":
        assert target.content == drop.storage.read(
            next(iter(drop.storage.iter_all(f"images/{image['id']}."))).key
        )


def test_the_endpoint_applies_ownership(
    served: Served,
) -> None:
    http, _, _ = served
    http.headers.update(_as("alice"))
    image = upload(http, "/api", samples.png(1, (40, 30)))
    for variant in ("original", "thumbnail"):
        path = f"/api/images/{image['id']}/{variant}"
        theirs = http.get(path, headers=_as("bob"), follow_redirects=False)
        assert theirs.status_code == 403
        assert theirs.json()["error"]["code"] == "forbidden"
        assert "location" not in theirs.headers
        nobody = http.get(path, headers={"Authorization": ""}, follow_redirects=False)
        assert nobody.status_code == 401
        missing = http.get(f"/api/images/0000000000000aaaaaaaaaa/{variant}")
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "not_found"
    assert http.get(f"/api/images/{image['id']}/poster").status_code == 404


def test_cache_headers_fit_the_urls_life() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    signed = ImageURL("https://x/y", now + timedelta(seconds=600))
    assert signed.cache_control(now=now) == "private, max-age=300"
    assert signed.cache_control(now=now + timedelta(seconds=599)) == "private, max-age=0"
    assert signed.cache_control(now=now + timedelta(seconds=700)) == "private, max-age=0"
    assert ImageURL("https://cdn/y", None).cache_control() == "private, max-age=86400"


def test_get_image_needs_no_listing_and_sees_a_half_finished_delete(tmp_path: Path) -> None:
    drop, storage = make_drop(tmp_path)
    image_id = promote(drop)
    with storage.counting() as requests:
        image = drop.get_image(image_id, principal=ALICE)
    assert image.filename == "cat.png"
    assert image.sha256 is not None
    assert "LIST" not in requests.by_kind()
    storage.delete(image.key)  # a delete that stopped after its first step
    with pytest.raises(NotFound):
        drop.get_image(image_id, principal=ALICE)
    drop.delete_image(image_id)  # finishing it takes the thumbnail too
    with pytest.raises(NotFound):
        drop.image_url(image_id)
