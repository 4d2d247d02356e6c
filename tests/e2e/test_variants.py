"""The gallery on a phone fetches the variant its slot needs, never the original: Chromium's own
``srcset`` choice, proven by the request log (which URL was fetched, and its bytes)."""

from __future__ import annotations

import hashlib
from typing import Any

import httpx
from playwright.sync_api import Browser

from tests import samples
from tests.conftest import LiveServer


def _upload(server: LiveServer, data: bytes) -> dict[str, Any]:
    with httpx.Client(base_url=server.url, timeout=60) as http:
        body = {"filename": "wide.jpg", "content_type": "image/jpeg", "size": len(data)}
        answer = http.post(
            "/api/uploads", json={**body, "sha256": hashlib.sha256(data).hexdigest()}
        )
        assert answer.status_code == 201, answer.text
        form = answer.json()["upload"]
        posted = http.post(
            form["url"], data=form["fields"], files={"file": ("wide.jpg", data, "image/jpeg")}
        )
        assert posted.status_code in (200, 201, 204), posted.text
        done = http.post(f"/api/uploads/{form['id']}/complete")
        assert done.status_code == 200, done.text
        image: dict[str, Any] = done.json()["image"]
        return image


def _name(url: str) -> str:
    """``/storage/variants/<id>.640.webp?...`` -> ``variants/<id>.640.webp``."""
    return url.split("?")[0].split("/storage/", 1)[1]


def test_a_narrow_screen_fetches_a_small_variant_not_the_original(
    browser: Browser, shared_server: LiveServer
) -> None:
    server = shared_server
    data = samples.jpeg(size=(2400, 1600))
    image = _upload(server, data)
    objects = server.data_dir / "objects"
    context = browser.new_context(
        viewport={"width": 400, "height": 800}, device_scale_factor=2, locale="en-GB"
    )
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    fetched: dict[str, int] = {}

    def logged(response: Any) -> None:
        if "/storage/" in response.url and response.request.resource_type == "image":
            fetched[_name(response.url)] = len(response.body())

    page.on("response", logged)
    try:
        page.goto(server.url + "/")
        tile = page.locator(".tile-img").first
        tile.evaluate("img => img.decode()")
        # Two tiles a row: ~176 CSS px, 352 device pixels; sizes says 50vw (200): the 640 one.
        tile_file = _name(tile.evaluate("img => img.currentSrc"))
        assert tile_file == f"variants/{image['id']}.640.webp"
        page.locator(".tile-open").first.click()
        viewer = page.locator("#viewer-img")
        viewer.evaluate("img => img.decode()")
        # The viewer's slot: 400 - 72 = 328 CSS px, 656 device pixels: the 1024 one.
        viewer_file = _name(viewer.evaluate("img => img.currentSrc"))
        assert viewer_file == f"variants/{image['id']}.1024.webp"
        page.wait_for_load_state("networkidle")
    finally:
        context.close()
    assert not errors, errors
    # The log: exactly those two files, each as large as stored, and never the original.
    assert set(fetched) == {tile_file, viewer_file}
    for name, size in fetched.items():
        assert size == (objects / name).stat().st_size
    assert not any(name.startswith("images/") for name in fetched)
    assert sum(fetched.values()) * 20 < len(data)
