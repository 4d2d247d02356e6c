"""The browser half of ``bench variants``: which file Chromium fetches for a photo in a 400 CSS-px
slot at a device pixel ratio of 2, and how many bytes, from the page's own ``srcset``.

The bundled app on the local backend (``bench.common.serve``, not pinned), the photo uploaded the
way the page does it (sign, POST to storage, complete), then the gallery opened in Playwright's
Chromium (Debian's, ``/usr/bin/chromium``) at 472 x 900 CSS pixels, ``device_scale_factor=2``; the
viewer is opened on the photo: its slot is the viewport less 72 CSS pixels of frame, 400. Every
response is logged with its URL and body size; the figure is the body of the response whose URL
is the viewer image's ``currentSrc`` (the candidate Chromium chose).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import httpx

from .common import serve

VIEWPORT = {"width": 472, "height": 900}
SLOT = 400


def fetched_bytes(workdir: Path, photo: Path) -> dict[str, Any]:
    """What the browser fetched for ``photo`` (a JPEG) in the viewer's 400 CSS-px slot."""
    from playwright.sync_api import sync_playwright

    data = photo.read_bytes()
    with serve(workdir, env={"S3DROP_MAX_BYTES": "64MiB"}, name="variants", pin=False) as server:
        with httpx.Client(base_url=server.url, timeout=120) as http:
            _upload(http, data)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"]
            )
            context = browser.new_context(viewport=VIEWPORT, device_scale_factor=2)
            page = context.new_page()
            log: dict[str, int] = {}

            def logged(response: Any) -> None:
                if response.request.resource_type == "image":
                    log[response.url] = len(response.body())

            page.on("response", logged)
            page.goto(server.url + "/")
            page.locator(".tile-open").first.click()
            viewer = page.locator("#viewer-img")
            viewer.evaluate("img => img.decode()")
            chosen = viewer.evaluate("img => img.currentSrc")
            shown = viewer.evaluate("img => img.getBoundingClientRect().width")
            page.wait_for_load_state("networkidle")
            context.close()
            browser.close()
    return {
        "fetched": log[chosen],
        "original": len(data),
        "chosen": chosen.split("?")[0].rsplit("/", 1)[-1],
        "slot_css_px": shown,
        "images_fetched": {url.split("?")[0].rsplit("/", 1)[-1]: n for url, n in log.items()},
    }


def _upload(http: httpx.Client, data: bytes) -> None:
    sha256 = hashlib.sha256(data).hexdigest()
    body = {"filename": "photo.jpg", "content_type": "image/jpeg", "size": len(data)}
    answer = http.post("/api/uploads", json={**body, "sha256": sha256})
    answer.raise_for_status()
    form = answer.json()["upload"]
    posted = http.post(
        form["url"], data=form["fields"], files={"file": ("photo.jpg", data, "image/jpeg")}
    )
    posted.raise_for_status()
    http.post(f"/api/uploads/{form['id']}/complete").raise_for_status()
