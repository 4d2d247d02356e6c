"""Cacheable answers (issue 16), over real HTTP in-process (httpx.ASGITransport).

The page's own files are compressed and versioned: immutable for a year under the version the page
names, revalidated (ETag, 304) under any other URL. Signed image and thumbnail URLs stay identical
within a window, so two listings a second apart give the same URLs, and the local backend lets a
browser keep what such a URL served until the URL expires.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import re
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import httpx
import pytest

from s3drop import Settings
from s3drop._policy import new_upload_id, quarantine_key
from s3drop.web._assets import FOREVER, REVALIDATE
from s3drop.web.app import STATIC, create_app
from tests import samples

T = TypeVar("T")


def run(app: object, calls: Callable[[httpx.AsyncClient], Awaitable[T]]) -> T:
    async def main() -> T:
        transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as c:
            return await calls(c)

    # In a thread of its own: the browser tests' Playwright keeps an event loop in this one.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, main()).result()


GZIP = {"Accept-Encoding": "gzip"}


def test_the_pages_files_are_versioned_compressed_and_cached_for_good(tmp_path: Path) -> None:
    app = create_app(Settings(data_dir=tmp_path / "data"))

    async def calls(c: httpx.AsyncClient) -> dict[str, httpx.Response]:
        answers = {"page": await c.get("/", headers=GZIP)}
        text = answers["page"].text
        for name in ("app.css", "app.js"):
            (url,) = re.findall(rf'"(static/{re.escape(name)}\?v=[0-9a-f]+)"', text)
            answers[name] = await c.get(f"/{url}", headers=GZIP)
        (url,) = re.findall(r'"\./(s3drop-uploader\.js\?v=[0-9a-f]+)"', answers["app.js"].text)
        answers["element"] = await c.get(f"/static/{url}", headers=GZIP)
        (url,) = re.findall(r'"\./(thumbhash\.js\?v=[0-9a-f]+)"', answers["element"].text)
        answers["thumbhash"] = await c.get(f"/static/{url}")
        answers["unversioned"] = await c.get("/static/s3drop-uploader.js", headers=GZIP)
        etag = answers["unversioned"].headers["ETag"]
        answers["again"] = await c.get(
            "/static/s3drop-uploader.js", headers={**GZIP, "If-None-Match": etag}
        )
        answers["plain"] = await c.get("/static/app.css?v=0123", headers={"Accept-Encoding": ""})
        answers["missing"] = await c.get("/static/nothing.js")
        answers["post"] = await c.post("/static/app.js")
        return answers

    answers = run(app, calls)
    page = answers["page"]
    assert page.status_code == 200
    assert page.headers["Cache-Control"] == REVALIDATE
    assert page.headers["Content-Encoding"] == "gzip"
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    sent = raw = 0
    for name, path in (
        ("app.css", "app.css"),
        ("app.js", "app.js"),
        ("element", "s3drop-uploader.js"),
    ):
        answer = answers[name]
        assert answer.status_code == 200, name
        assert answer.headers["Cache-Control"] == FOREVER, name
        assert answer.headers["Content-Encoding"] == "gzip", name
        assert "Accept-Encoding" in answer.headers["Vary"]
        source = (STATIC / path).read_bytes()
        sent += int(answer.headers["Content-Length"])
        raw += len(answer.content)
        if name == "element":  # the element names its import's version (the placeholders' decoder)
            (version,) = re.findall(rb'"\./thumbhash\.js\?v=([0-9a-f]+)"', answer.content)
            named = b'"./thumbhash.js?v=' + version + b'"'
            assert answer.content == source.replace(b'"./thumbhash.js"', named), name
        elif name != "app.js":  # app.js names its import's version; the rest are as written
            assert answer.content == source, name
    assert sent * 3 < raw, (sent, raw)  # gzip: well under a third
    unversioned = answers["unversioned"]
    assert unversioned.headers["Cache-Control"] == REVALIDATE
    assert (
        unversioned.content.replace(b"?v=" + version, b"")
        == (STATIC / "s3drop-uploader.js").read_bytes()
    )
    assert answers["thumbhash"].headers["Cache-Control"] == FOREVER
    assert answers["thumbhash"].content == (STATIC / "thumbhash.js").read_bytes()
    assert answers["again"].status_code == 304
    assert answers["again"].content == b""
    plain = answers["plain"]  # an old version: served, but not for good; no gzip unasked
    assert plain.headers["Cache-Control"] == REVALIDATE
    assert "Content-Encoding" not in plain.headers
    assert plain.content == (STATIC / "app.css").read_bytes()
    assert answers["missing"].status_code == 404
    assert answers["missing"].json()["error"]["code"] == "not_found"
    assert answers["post"].status_code == 405
    assert answers["post"].json()["error"]["code"] == "method_not_allowed"


def test_two_listings_a_second_apart_give_the_same_urls_that_browsers_may_keep(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = create_app(Settings(data_dir=tmp_path / "data"))
    drop = app.state.drop
    upload_id = new_upload_id()
    drop.storage.put(
        quarantine_key(upload_id, "image/png"),
        samples.png(1, (40, 30)),
        content_type="image/png",
        metadata={"filename": "kite.png"},
    )
    drop.complete(upload_id)
    # A clock in the middle of an hour, so the test never straddles a window's end.
    real = time.time()
    clock = [real - real % 3600 + 1800]
    monkeypatch.setattr(time, "time", lambda: clock[0])

    async def calls(c: httpx.AsyncClient) -> tuple[list[dict[str, str]], httpx.Response]:
        first = (await c.get("/api/images")).json()["images"][0]
        clock[0] += 1
        second = (await c.get("/api/images")).json()["images"][0]
        clock[0] += 1
        one = (await c.get(f"/api/images/{upload_id}")).json()["image"]
        thumb = await c.get(second["thumbnail_url"], headers=GZIP)
        return [first, second, one], thumb

    (first, second, one), thumb = run(app, calls)
    assert first["thumbnail_url"] == second["thumbnail_url"] == one["thumbnail_url"]
    assert first["url"] == second["url"]
    assert thumb.status_code == 200
    expires = int(re.search(r"expires=(\d+)", second["thumbnail_url"])[1])  # type: ignore[index]
    assert expires - clock[0] >= drop.settings.get_expires_in  # at least the configured life
    assert thumb.headers["Cache-Control"] == (
        f"private, max-age={expires - int(clock[0])}, immutable"
    )
    assert thumb.headers["ETag"]
    assert "Content-Encoding" not in thumb.headers  # image bytes are never gzipped
