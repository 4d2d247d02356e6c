"""The gallery: newest first, cursor pages without gaps or duplicates, one listing call a page,
each user's own images unless shared, delete, and the sweep of uploads nobody completed.
Library-level on the local backend, then over HTTP (the app in-process, ``tests.appflow``) on the
local backend and on Ceph RGW, with two users' bearer tokens for who may see and delete what; the
local server's own sweep on a live ``s3drop serve``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from anyio.from_thread import start_blocking_portal

from s3drop import Settings
from s3drop._auth import Principal
from s3drop._errors import Forbidden, InvalidRequest, NotFound
from s3drop._placeholders import Placeholder
from s3drop._policy import image_key, new_upload_id, quarantine_key
from s3drop._uploads import S3Drop
from s3drop.limits import MemoryLimitStore
from s3drop.storage._counting import CountingStorage
from s3drop.storage.local import LocalStorage
from s3drop.web.app import create_app

from . import samples
from .appflow import app_backend, fetch, upload
from .cli_inprocess import run_cli
from .flow import Backend, complete
from .inprocess import AppServer


@pytest.fixture
def drop(tmp_path: Path) -> S3Drop:
    return S3Drop(Settings(data_dir=tmp_path / "data"), limit_store=MemoryLimitStore())


ALICE, BOB = Principal("alice"), Principal("bob")


def promote(
    drop: S3Drop, *, count: int, start: float = 1_700_000_000.0, owner: str = "alice"
) -> list[str]:
    """``count`` accepted images of ``owner`` uploaded one second apart; their ids, oldest first."""
    ids = []
    for index in range(count):
        upload_id = new_upload_id(now=start + index)
        drop.storage.put(
            quarantine_key(upload_id, "image/png"),
            samples.png(index, (40, 30)),
            content_type="image/png",
            metadata={"filename": f"image-{index}.png", "owner": owner},
        )
        drop.complete(upload_id)
        ids.append(upload_id)
    return ids


def stored(drop: S3Drop, prefix: str) -> list[str]:
    return [info.key for info in drop.storage.iter_all(prefix)]


def all_pages(drop: S3Drop, limit: int) -> list[list[str]]:
    pages: list[list[str]] = []
    cursor = None
    while True:
        page = drop.list_images(cursor=cursor, limit=limit)
        pages.append([image.id for image in page.images])
        if page.next_cursor is None:
            return pages
        cursor = page.next_cursor
        assert len(pages) < 100


def test_pages_are_newest_first_without_gaps_or_duplicates(drop: S3Drop) -> None:
    ids = promote(drop, count=7)
    assert all_pages(drop, 3) == [ids[:3:-1], ids[3:0:-1], ids[:1]]


def test_a_last_full_page_has_no_next_cursor(drop: S3Drop) -> None:
    ids = promote(drop, count=6)
    assert all_pages(drop, 3) == [ids[:2:-1], ids[2::-1]]
    assert all_pages(drop, 100) == [ids[::-1]]


def test_an_image_added_between_pages_shifts_nothing(drop: S3Drop) -> None:
    ids = promote(drop, count=5)
    first = drop.list_images(limit=2)
    promote(drop, count=1, start=1_800_000_000.0)  # newer than all: it sorts before the cursor
    second = drop.list_images(cursor=first.next_cursor, limit=2)
    assert [image.id for image in first.images + second.images] == ids[:0:-1]


def test_each_image_has_its_facts_and_urls(drop: S3Drop) -> None:
    (upload_id,) = promote(drop, count=1)
    (key,) = stored(drop, "images/")
    size = len(drop.storage.read(key))
    (image,) = drop.list_images().images
    as_json = image.to_dict()
    placeholder = Placeholder.from_dict(as_json["placeholder"])
    assert placeholder is not None  # from the key too: no read
    assert key == image_key(
        upload_id,
        "image/png",
        width=40,
        height=30,
        size=size,
        filename="image-0.png",
        placeholder=placeholder,
    )
    assert as_json["id"] == upload_id
    assert (as_json["width"], as_json["height"], as_json["format"]) == (40, 30, "png")
    assert as_json["bytes"] == size
    assert as_json["filename"] == "image-0.png"  # from the key: a page reads no metadata
    assert as_json["uploaded_at"] == "2023-11-14T22:13:20.000Z"
    assert as_json["url"].startswith(f"/storage/{key}?")
    assert "filename=" not in as_json["url"]
    assert as_json["thumbnail_url"].startswith(f"/storage/thumbs/{upload_id}.webp?")

    full = drop.get_image(upload_id).to_dict()
    assert full["filename"] == "image-0.png"
    assert "filename=image-0.png" in full["url"]
    with_urls = ("url", "thumbnail_url", "srcset", "sources")
    assert {name: value for name, value in full.items() if name not in with_urls} == {
        name: value for name, value in as_json.items() if name not in with_urls
    }


def test_a_page_is_one_listing_call_and_nothing_per_image(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    storage = CountingStorage(LocalStorage(settings))
    drop = S3Drop(settings, storage=storage, limit_store=MemoryLimitStore())
    ids = promote(drop, count=4)
    for principal, prefix in [(None, "images/"), (ALICE, "owners/alice/")]:
        with storage.counting() as requests:
            page = drop.list_images(limit=3, principal=principal)
        assert requests.made == [("LIST", prefix)]
        assert [image.id for image in page.images] == ids[:0:-1]
        assert {(image.width, image.height, image.format) for image in page.images} == {
            (40, 30, "png")
        }
        assert all(image.bytes > 0 for image in page.images)
    oldest = stored(drop, "images/")[-1]
    with storage.counting() as requests:
        drop.get_image(ids[0])
    # The thumbnail names the image: two HEADs, no listing.
    assert requests.made == [("HEAD", f"thumbs/{ids[0]}.webp"), ("HEAD", oldest)]


def test_keys_that_are_not_images_are_left_out(drop: S3Drop) -> None:
    ids = promote(drop, count=3)
    for stray in [f"images/{ids[1]}.png", "images/notes.txt"]:
        drop.storage.put(stray, b"x", content_type="text/plain", metadata={})
    assert all_pages(drop, 2) == [ids[:0:-1], ids[:1]]


@pytest.mark.parametrize(
    ("cursor", "limit", "message"),
    [
        ("../../secret", 10, "cursor"),
        ("images/x", 10, "cursor"),
        (None, 0, "limit must be between 1 and 100"),
        (None, 101, "limit must be between 1 and 100"),
    ],
)
def test_bad_cursors_and_limits_are_refused(
    drop: S3Drop, cursor: str | None, limit: int, message: str
) -> None:
    with pytest.raises(InvalidRequest, match=message):
        drop.list_images(cursor=cursor, limit=limit)


def test_delete_removes_the_image_its_thumbnail_and_its_index_entry(drop: S3Drop) -> None:
    keep, gone = promote(drop, count=2)
    (kept,) = [key for key in stored(drop, "images/") if keep in key]
    drop.delete_image(gone)
    assert stored(drop, "images/") == [kept]
    assert stored(drop, "thumbs/") == [f"thumbs/{keep}.webp"]
    assert stored(drop, "owners/") == [kept.replace("images/", "owners/alice/")]
    assert [image.id for image in drop.list_images().images] == [keep]
    assert [image.id for image in drop.list_images(principal=ALICE).images] == [keep]
    with pytest.raises(NotFound):
        drop.delete_image(gone)
    with pytest.raises(NotFound):
        drop.get_image(gone)


def test_a_delete_interrupted_after_the_image_went_can_be_finished(drop: S3Drop) -> None:
    (upload_id,) = promote(drop, count=1)
    (key,) = stored(drop, "images/")
    drop.storage.delete(key)  # as if the process died right after the image went
    assert [image.id for image in drop.list_images(principal=ALICE).images] == [upload_id]
    drop.delete_image(upload_id, principal=ALICE)
    assert stored(drop, "thumbs/") == stored(drop, "owners/") == []
    with pytest.raises(NotFound):
        drop.delete_image(upload_id, principal=ALICE)


@pytest.mark.parametrize(
    "image_id", [new_upload_id(), "../images/x", ""], ids=["unknown", "traversal", "empty"]
)
def test_deleting_what_does_not_exist_is_not_found(drop: S3Drop, image_id: str) -> None:
    with pytest.raises(NotFound):
        drop.delete_image(image_id)


def test_each_user_lists_only_their_own_images(drop: S3Drop) -> None:
    alices = promote(drop, count=3, owner="alice")
    bobs = promote(drop, count=2, start=1_700_000_100.0, owner="bob")
    assert all_pages(drop, 100) == [bobs[::-1] + alices[::-1]]  # trusted: everything
    first = drop.list_images(limit=2, principal=ALICE)
    assert [image.id for image in first.images] == alices[:0:-1]
    rest = drop.list_images(cursor=first.next_cursor, limit=2, principal=ALICE)
    assert ([image.id for image in rest.images], rest.next_cursor) == (alices[:1], None)
    assert [image.id for image in drop.list_images(principal=BOB).images] == bobs[::-1]
    assert drop.list_images(principal=Principal("carol")).images == []


def test_only_the_owner_sees_and_deletes_an_image(drop: S3Drop) -> None:
    (upload_id,) = promote(drop, count=1)
    before = [stored(drop, prefix) for prefix in ("images/", "thumbs/", "owners/")]
    with pytest.raises(Forbidden):
        drop.delete_image(upload_id, principal=BOB)
    with pytest.raises(Forbidden):
        drop.get_image(upload_id, principal=BOB)
    assert [stored(drop, prefix) for prefix in ("images/", "thumbs/", "owners/")] == before
    assert drop.get_image(upload_id, principal=ALICE).owner == "alice"
    drop.delete_image(upload_id, principal=ALICE)
    assert drop.list_images().images == []


def test_a_shared_gallery_shows_everyone_everything(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", shared=True)
    drop = S3Drop(settings, limit_store=MemoryLimitStore())
    alices = promote(drop, count=2, owner="alice")
    bobs = promote(drop, count=1, start=1_700_000_100.0, owner="bob")
    everything = bobs[::-1] + alices[::-1]
    for principal in (ALICE, BOB, Principal("carol"), None):
        assert [image.id for image in drop.list_images(principal=principal).images] == everything
    assert drop.get_image(alices[0], principal=BOB).filename == "image-0.png"
    drop.delete_image(alices[0], principal=BOB)
    assert [image.id for image in drop.list_images(principal=ALICE).images] == everything[:2]
    assert not [key for key in stored(drop, "") if alices[0] in key]


# --- the sweep --------------------------------------------------------------------------------


def stale_upload(drop: S3Drop, *, age: timedelta) -> str:
    """A quarantined upload nobody completed, ``age`` old."""
    upload_id = new_upload_id()
    key = quarantine_key(upload_id, "image/png")
    drop.storage.put(key, samples.png(), content_type="image/png", metadata={})
    assert isinstance(drop.storage, LocalStorage)
    then = time.time() - age.total_seconds()
    os.utime(drop.storage._path(key), (then, then))
    return key


def test_sweep_removes_only_stale_uploads(drop: S3Drop) -> None:
    old = stale_upload(drop, age=timedelta(hours=25))
    fresh = stale_upload(drop, age=timedelta(minutes=5))
    (promoted,) = promote(drop, count=1)
    assert drop.sweep(older_than=timedelta(days=1)) == 1
    remaining = [info.key for info in drop.storage.iter_all("incoming/")]
    assert remaining == [fresh]
    assert old not in remaining
    assert [image.id for image in drop.list_images().images] == [promoted]
    assert drop.sweep(older_than=timedelta(minutes=1)) == 1
    assert drop.sweep() == 0


def test_the_sweep_command(drop: S3Drop, tmp_path: Path) -> None:
    stale_upload(drop, age=timedelta(hours=3))
    stale_upload(drop, age=timedelta(hours=1))
    env = {**os.environ, "S3DROP_DATA_DIR": str(tmp_path / "data")}

    def sweep(*args: str) -> str:
        # In this process (what the command prints is the point); the refusal below is a real
        # `python -m s3drop` run.
        result = run_cli("sweep", *args, env={"S3DROP_DATA_DIR": str(tmp_path / "data")})
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    assert sweep("--older-than", "2h") == "removed 1 stale uploads"
    assert json.loads(sweep("--older-than", "30m", "--json")) == {"removed": 1}
    assert sweep() == "removed 0 stale uploads"
    bad = subprocess.run(
        [sys.executable, "-m", "s3drop", "sweep", "--older-than", "soon"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode != 0
    assert "not a duration" in bad.stderr


def test_the_local_server_sweeps_on_its_own_and_needs_nothing_else(
    drop: S3Drop, tmp_path: Path
) -> None:
    old = stale_upload(drop, age=timedelta(days=2))
    fresh = stale_upload(drop, age=timedelta(minutes=1))
    # Nothing but where its files go: the local backend is the default. The app `s3drop serve`
    # runs, with its lifespan (where the sweep starts), in this process: no interpreter start.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("S3DROP_DATA_DIR", str(tmp_path / "data"))
        patch.setenv("S3DROP_DECODE_WORKERS", "1")  # as start_server: one worker is plenty
        app = create_app(Settings())
    with (
        start_blocking_portal() as portal,
        portal.wrap_async_context_manager(app.router.lifespan_context(app)),
        AppServer(app, tmp_path / "data", portal).client() as http,
    ):
        deadline = time.monotonic() + 10
        while drop.storage.head(old) is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert drop.storage.head(old) is None
        assert drop.storage.head(fresh) is not None
        answer = http.get("/api/images")
    assert answer.json() == {"images": [], "next_cursor": None}


# --- over HTTP, on each backend ---------------------------------------------------------------


@pytest.fixture(scope="module", params=["local", "rgw"])
def backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Backend]:
    with app_backend(request, tmp_path_factory) as found:
        yield found


def listing(http: httpx.Client, limit: int) -> list[list[str]]:
    pages: list[list[str]] = []
    params: dict[str, str | int] = {"limit": limit}
    while True:
        answer = http.get("/api/images", params=params)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert set(body) == {"images", "next_cursor"}
        pages.append([image["id"] for image in body["images"]])
        if body["next_cursor"] is None:
            return pages
        params["cursor"] = body["next_cursor"]
        assert len(pages) < 100


def test_pages_over_http(backend: Backend) -> None:
    with backend.server.client() as http:
        ids = []
        for index in range(7):
            upload_id = upload(backend, http, samples.png(index, (40, 30)), "image/png")
            ids.append(complete(http, upload_id)["id"])
            time.sleep(0.002)  # distinct milliseconds: a strict newest-first order
        pages = listing(http, 3)
        listed = [image_id for page in pages for image_id in page]
        assert len(listed) == len(set(listed))
        assert listed == sorted(listed)  # key order: newest first
        assert [image_id for image_id in listed if image_id in ids] == ids[::-1]
        assert all(len(page) == 3 for page in pages[:-1])
        assert 1 <= len(pages[-1]) <= 3
        (image,) = [
            item
            for item in http.get("/api/images", params={"limit": 100}).json()["images"]
            if item["id"] == ids[0]
        ]
        assert (image["width"], image["height"], image["format"]) == (40, 30, "png")
        assert fetch(backend, image["thumbnail_url"]).status_code == 200


@pytest.mark.parametrize(
    "params", [{"limit": 0}, {"limit": 101}, {"limit": "many"}, {"cursor": "../x"}]
)
def test_bad_list_parameters_are_400_over_http(
    backend: Backend, params: dict[str, str | int]
) -> None:
    with backend.server.client() as http:
        answer = http.get("/api/images", params=params)
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "invalid_request"


def test_delete_over_http(backend: Backend) -> None:
    with backend.server.client() as http:
        image = complete(http, upload(backend, http, samples.jpeg(), "image/jpeg"))
        name = image_key(
            image["id"],
            "image/jpeg",
            width=320,
            height=240,
            size=image["bytes"],
            filename="upload.bin",
            placeholder=Placeholder.from_dict(image["placeholder"]),
        ).removeprefix("images/")
        assert backend.keys(f"images/{image['id']}") == [f"images/{name}"]
        assert backend.keys(f"owners/anonymous/{image['id']}") == [f"owners/anonymous/{name}"]
        assert http.delete(f"/api/images/{image['id']}").status_code == 204
        assert backend.keys(f"images/{image['id']}") == []
        assert backend.keys(f"thumbs/{image['id']}") == []
        assert backend.keys(f"owners/anonymous/{image['id']}") == []
        listed = http.get("/api/images", params={"limit": 100}).json()["images"]
        assert image["id"] not in [item["id"] for item in listed]
        again = http.delete(f"/api/images/{image['id']}")
        assert again.status_code == 404
        assert again.json()["error"]["code"] == "not_found"
        assert http.delete("/api/images/not-an-id").status_code == 404


def test_one_image_with_its_filename_over_http(backend: Backend) -> None:
    with backend.server.client() as http:
        image = complete(http, upload(backend, http, samples.png(9, (40, 30)), "image/png"))
        answer = http.get(f"/api/images/{image['id']}")
        assert answer.status_code == 200, answer.text
        full = answer.json()["image"]
        assert full["filename"] == "upload.bin"
        listed = http.get("/api/images", params={"limit": 100}).json()["images"]
        (item,) = [item for item in listed if item["id"] == image["id"]]
        assert item["filename"] == "upload.bin"  # the key carries it: no read per listed image
        same = {"id", "width", "height", "format", "bytes", "uploaded_at"}
        assert {name: full[name] for name in same} == {name: item[name] for name in same}
        served = fetch(backend, full["url"])
        assert served.status_code == 200
        assert served.headers["content-disposition"] == "inline; filename*=UTF-8''upload.bin"
        assert len(served.content) == full["bytes"]
        for missing in (new_upload_id(), "not-an-id"):
            gone = http.get(f"/api/images/{missing}")
            assert gone.status_code == 404
            assert gone.json()["error"]["code"] == "not_found"


# --- who sees and deletes what, over HTTP with two users' tokens ------------------------------

ALICE_TOKEN = "alice-token-0123456789"
BOB_TOKEN = "bob-token-9876543210ab"
TOKENS = f"alice:{ALICE_TOKEN},bob:{BOB_TOKEN}"


@pytest.fixture(scope="module", params=["local", "rgw"])
def users(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Backend]:
    with app_backend(request, tmp_path_factory, env={"S3DROP_TOKENS": TOKENS}) as found:
        yield found


@pytest.fixture(scope="module", params=["local", "rgw"])
def shared_users(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Backend]:
    env = {"S3DROP_TOKENS": TOKENS, "S3DROP_SHARED": "true"}
    with app_backend(request, tmp_path_factory, env=env) as found:
        yield found


def _as(backend: Backend, token: str) -> httpx.Client:
    http = backend.server.client()
    http.headers["Authorization"] = f"Bearer {token}"
    return http


def _ids(http: httpx.Client) -> list[str]:
    answer = http.get("/api/images", params={"limit": 100})
    assert answer.status_code == 200, answer.text
    return [image["id"] for image in answer.json()["images"]]


def test_users_see_and_delete_only_their_own_images(users: Backend) -> None:
    with _as(users, ALICE_TOKEN) as alice, _as(users, BOB_TOKEN) as bob:
        hers = complete(alice, upload(users, alice, samples.png(1, (40, 30)), "image/png"))
        his = complete(bob, upload(users, bob, samples.png(2, (40, 30)), "image/png"))
        assert hers["id"] in _ids(alice)
        assert his["id"] not in _ids(alice)
        assert hers["id"] not in _ids(bob)
        assert his["id"] in _ids(bob)

        before = users.keys("")
        for answer in (
            bob.get(f"/api/images/{hers['id']}"),
            bob.delete(f"/api/images/{hers['id']}"),
            bob.post(f"/api/uploads/{hers['id']}/complete"),
        ):
            assert answer.status_code == 403, answer.text
            assert answer.json()["error"]["code"] == "forbidden"
        assert users.keys("") == before  # nothing changed
        assert alice.get(f"/api/images/{hers['id']}").json()["image"]["filename"] == "upload.bin"

        # Completing someone else's upload: refused, and it stays in quarantine for its owner.
        pending = upload(users, alice, samples.png(3, (40, 30)), "image/png")
        refused = bob.post(f"/api/uploads/{pending}/complete")
        assert refused.status_code == 403, refused.text
        assert len(users.keys(f"incoming/{pending}")) == 1
        assert users.keys(f"images/{pending}") == []
        assert complete(alice, pending)["id"] == pending
        assert pending in _ids(alice)
        assert pending not in _ids(bob)

        assert alice.delete(f"/api/images/{hers['id']}").status_code == 204
        assert [key for key in users.keys("") if hers["id"] in key] == []
        assert his["id"] in _ids(bob)


def test_a_shared_gallery_lets_everyone_see_and_delete(shared_users: Backend) -> None:
    with _as(shared_users, ALICE_TOKEN) as alice, _as(shared_users, BOB_TOKEN) as bob:
        hers = complete(alice, upload(shared_users, alice, samples.png(4, (40, 30)), "image/png"))
        his = complete(bob, upload(shared_users, bob, samples.png(5, (40, 30)), "image/png"))
        assert _ids(alice) == _ids(bob) == [his["id"], hers["id"]]
        assert bob.get(f"/api/images/{hers['id']}").status_code == 200
        pending = upload(shared_users, alice, samples.png(6, (40, 30)), "image/png")
        assert bob.post(f"/api/uploads/{pending}/complete").status_code == 403  # hers to finish
        assert len(shared_users.keys(f"incoming/{pending}")) == 1
        assert bob.delete(f"/api/images/{hers['id']}").status_code == 204
        assert [key for key in shared_users.keys("") if hers["id"] in key] == []
        assert _ids(alice) == [his["id"]]
