"""The host's Python callbacks: once per accepted image, on each refusal and each delete; one that
raises changes nothing but a log line. Through the library, and over HTTP into the bundled app
(in-process: a callback needs a Python host).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from s3drop import Image, ImageRejected, Principal, S3Drop, Settings
from s3drop._errors import NotAnImage
from s3drop._policy import encode_meta, new_upload_id, quarantine_key
from s3drop.limits import MemoryLimitStore
from s3drop.web.app import create_app

from . import samples

T = TypeVar("T")
ALICE = Principal("alice")


@pytest.fixture
def drop(tmp_path: Path) -> S3Drop:
    return S3Drop(Settings(data_dir=tmp_path / "data"), limit_store=MemoryLimitStore())


def quarantine(drop: S3Drop, data: bytes, *, owner: str = "alice") -> str:
    upload_id = new_upload_id()
    drop.storage.put(
        quarantine_key(upload_id, "image/png"),
        data,
        content_type="image/png",
        metadata={"filename": encode_meta("cat.png"), "owner": encode_meta(owner)},
    )
    return upload_id


def stored(drop: S3Drop) -> list[str]:
    return [info.key for info in drop.storage.iter_all("")]


def test_callbacks_get_the_image_the_refusal_and_the_delete(tmp_path: Path) -> None:
    calls: list[tuple[Any, ...]] = []
    drop = S3Drop(
        Settings(data_dir=tmp_path / "data"),
        limit_store=MemoryLimitStore(),
        on_accepted=lambda image, who: calls.append(("accepted", image, who)),
        on_rejected=lambda upload_id, error, who: calls.append(("rejected", upload_id, error, who)),
    )

    @drop.on_deleted
    def deleted(image_id: str, principal: Principal | None) -> None:
        calls.append(("deleted", image_id, principal))

    assert deleted.__name__ == "deleted"  # the decorator gives the function back
    good = quarantine(drop, samples.png(1, (40, 30)))
    image = drop.complete(good, principal=ALICE)
    bad = quarantine(drop, b"<html></html>")
    with pytest.raises(NotAnImage) as refused:
        drop.complete(bad, principal=ALICE)
    drop.delete_image(good)  # a trusted caller, as `s3drop rm --direct`
    assert calls == [
        ("accepted", image, ALICE),
        ("rejected", bad, refused.value, ALICE),
        ("deleted", good, None),
    ]
    assert isinstance(calls[0][1], Image)
    assert calls[0][1].owner == "alice"
    assert stored(drop) == []


def test_a_retried_or_raced_complete_calls_on_accepted_once(drop: S3Drop) -> None:
    """Eight threads complete the same upload at once, then once more: one call."""
    accepted: list[str] = []
    started = threading.Barrier(8)

    def slow_hook(image: Image, principal: Principal | None) -> None:
        accepted.append(image.id)

    drop.on_accepted(slow_hook)
    upload_id = quarantine(drop, samples.png(2, (400, 300)))

    def complete(_: int) -> Image:
        started.wait()
        return drop.complete(upload_id)

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        images = list(pool.map(complete, range(8)))
    assert {image.id for image in images} == {upload_id}
    assert drop.complete(upload_id).id == upload_id  # a retry after the fact
    assert accepted == [upload_id]
    assert [key for key in stored(drop) if key.startswith("images/")] == [images[0].key]
    assert drop._completing == {}  # nothing is held for ids no longer being completed


def test_a_callback_that_raises_loses_nothing(
    drop: S3Drop, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: object) -> None:
        raise RuntimeError("the host's database is down")

    after: list[object] = []
    drop.on_accepted(broken)
    drop.on_accepted(lambda image, who: after.append(image.id))  # later callbacks still run
    drop.on_rejected(broken)
    drop.on_deleted(broken)
    upload_id = quarantine(drop, samples.png(3, (40, 30)))
    image = drop.complete(upload_id)
    assert after == [upload_id]
    assert drop.get_image(upload_id).key == image.key  # stored and findable
    with pytest.raises(ImageRejected):  # the refusal, not the callback's error
        drop.complete(quarantine(drop, b"GIF89a not really"))
    drop.delete_image(upload_id)
    assert stored(drop) == []
    failures = [r for r in caplog.records if r.name == "s3drop.hooks"]
    assert [r.levelno for r in failures] == [logging.ERROR] * 3
    assert failures[0].getMessage() == (
        f"on_accepted callback test_a_callback_that_raises_loses_nothing.<locals>.broken failed "
        f"for {upload_id}"
    )
    assert all("the host's database is down" in (r.exc_text or "") for r in failures)


# --- over HTTP, into the bundled app ------------------------------------------------------------


def run(calls: Callable[[], Awaitable[T]]) -> T:
    """Run ``calls`` on an event loop of its own thread (Playwright keeps one in this one)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, calls()).result()  # type: ignore[arg-type]


def test_callbacks_over_http(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The app's own S3Drop takes callbacks; a raising one still gives the browser its 200."""
    app = create_app(Settings(data_dir=tmp_path / "data", rate_per_minute=1000))
    drop: S3Drop = app.state.drop
    events: list[tuple[str, str, str | None]] = []
    drop.on_accepted(lambda image, who: events.append(("accepted", image.id, who and who.name)))
    drop.on_rejected(lambda upload_id, e, who: events.append(("rejected", upload_id, e.code)))
    drop.on_deleted(lambda image_id, who: events.append(("deleted", image_id, who and who.name)))

    @drop.on_accepted
    def broken(image: Image, principal: Principal | None) -> None:
        raise RuntimeError("boom")

    async def calls() -> dict[str, httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as c:
            answers = {}
            for name, data in [("good", samples.png(4, (40, 30))), ("bad", b"<svg/>")]:
                claim = {"filename": "a.png", "content_type": "image/png", "size": len(data)}
                form = (await c.post("/api/uploads", json=claim)).json()["upload"]
                posted = await c.post(form["url"], data=form["fields"], files={"file": data})
                assert posted.status_code in (201, 204), posted.text
                answers[name] = await c.post(f"/api/uploads/{form['id']}/complete")
            image_id = answers["good"].json()["image"]["id"]
            answers["again"] = await c.post(f"/api/uploads/{image_id}/complete")
            answers["delete"] = await c.delete(f"/api/images/{image_id}")
            return answers

    answers = run(calls)
    assert [answers[name].status_code for name in ["good", "bad", "again", "delete"]] == [
        200,
        422,
        200,
        204,
    ]
    image_id = answers["good"].json()["image"]["id"]
    bad_id = answers["bad"].request.url.path.split("/")[-2]
    assert events == [
        ("accepted", image_id, "anonymous"),
        ("rejected", bad_id, "not_an_image"),
        ("deleted", image_id, "anonymous"),
    ]
    assert "on_accepted callback test_callbacks_over_http.<locals>.broken failed" in caplog.text
