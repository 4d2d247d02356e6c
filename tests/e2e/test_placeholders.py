"""Placeholders in a real browser: the gallery tile, the viewer and the uploader element paint an
image's dominant colour and its ThumbHash before the image itself has arrived.

The image requests are held (``page.route``) so the test sees the page as a slow link shows it:
the placeholder painted, the image not loaded; then they are let go and the image replaces it.
Screenshots of both moments go to test-output/.
"""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from PIL import Image
from playwright.sync_api import Page, Route, expect

from s3drop import S3Drop, Settings
from tests import samples
from tests.conftest import LiveServer
from tests.e2e.test_page import open_page, payload, row, screenshot
from tests.promoted import promote_as_before_placeholders

pytestmark = pytest.mark.browser

RED = (200, 30, 40)


def _mostly_red(seed: int) -> bytes:
    image = samples.photo(seed, (400, 300))
    image.paste(RED, (0, 0, 280, 300))
    return samples.encode(image, "PNG")


def _accept(server: LiveServer, data: bytes, filename: str) -> dict[str, Any]:
    """Sign, post and complete over HTTP, as a client would: the accepted image's JSON."""
    with server.client() as http:
        answer = http.post(
            "/api/uploads",
            json={"filename": filename, "content_type": "image/png", "size": len(data)},
        )
        assert answer.status_code == 201, answer.text
        form = answer.json()["upload"]
        posted = http.post(
            form["url"], data=form["fields"], files={"file": (filename, data, "image/png")}
        )
        assert posted.status_code in (200, 201, 204), posted.text
        done = http.post(f"/api/uploads/{form['id']}/complete")
        assert done.status_code == 200, done.text
        image: dict[str, Any] = done.json()["image"]
        return image


class Held:
    """Holds the browser's GETs of URLs matching ``pattern`` until :meth:`release`."""

    def __init__(self, page: Page, pattern: re.Pattern[str]) -> None:
        self.page = page
        self.pattern = pattern
        self.routes: list[Route] = []
        page.route(pattern, lambda route: self.routes.append(route))

    def wait(self, count: int, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while len(self.routes) < count:
            assert time.monotonic() < deadline, f"only {len(self.routes)} requests were held"
            self.page.wait_for_timeout(20)

    def release(self) -> None:
        for route in self.routes:
            route.continue_()
        self.routes.clear()
        self.page.unroute(self.pattern)


def _rgb(color: str) -> str:
    """``#rrggbb`` as a computed style writes it."""
    red, green, blue = bytes.fromhex(color.removeprefix("#"))
    return f"rgb({red}, {green}, {blue})"


def _painted(page: Page, selector: str) -> dict[str, Any]:
    """What an <img> shows now: loaded or not, and its background (the placeholder)."""
    found: dict[str, Any] = page.locator(selector).evaluate(
        """(img) => {
            const style = getComputedStyle(img);
            const box = img.getBoundingClientRect();
            return {loaded: img.complete && img.naturalWidth > 0, color: style.backgroundColor,
                    image: style.backgroundImage, width: box.width, height: box.height};
        }"""
    )
    return found


#: What :func:`_wait` waits for: the ThumbHash decoded and painted (a few milliseconds) ...
_PAINTED = (
    "(img) => getComputedStyle(img).backgroundImage.startsWith('url(\"data:image/png;base64,')"
)
#: ... or the image loaded and its placeholder gone.
_LOADED = "(img) => img.complete && img.naturalWidth > 0 && !img.dataset.placeholder"


def _wait(page: Page, selector: str, until: str) -> dict[str, Any]:
    """The <img>'s state (:func:`_painted`) once ``until``, a function of it, holds."""
    page.wait_for_function(
        f"(selector) => ({until})(document.querySelector(selector))", arg=selector
    )
    return _painted(page, selector)


def test_the_gallery_and_the_viewer_paint_the_placeholder_before_the_image(
    page: Page, shared_server: LiveServer
) -> None:
    drop = S3Drop(Settings(data_dir=shared_server.data_dir))
    old = promote_as_before_placeholders(drop, _mostly_red(2), "before.png")
    image = _accept(shared_server, _mostly_red(1), "red.png")
    color = image["placeholder"]["color"]
    # A tile shows the smallest variant when there is one (this 400 px image has the 320 px
    # WebP), else the thumbnail (the older image): hold both kinds.
    thumbs = Held(page, re.compile(r"/storage/(thumbs|variants)/"))
    open_page(page, shared_server)
    thumbs.wait(2)

    tile = f'.tile[data-id="{image["id"]}"] .tile-img'
    held = _wait(page, tile, _PAINTED)
    assert not held["loaded"]  # the thumbnail has not arrived
    assert held["color"] == _rgb(color)  # the dominant colour, at once
    assert held["width"] > 100  # the tile keeps its size meanwhile
    assert held["height"] > 75
    # The tile's pixels are the placeholder's: mostly the red the image mostly is.
    shot = screenshot(page, "placeholders-gallery-held.png", clip=_clip(page, tile))
    assert _mostly(shot, RED)
    screenshot(page, "placeholders-gallery-page-held.png")
    # An image promoted before placeholders has none: nothing painted, nothing broken.
    before = _painted(page, f'.tile[data-id="{old}"] .tile-img')
    assert before["image"] == "none"
    assert before["color"] == "rgba(0, 0, 0, 0)"

    thumbs.release()
    loaded = _wait(page, tile, _LOADED)
    assert loaded["image"] == "none"  # the placeholder went once the image came
    assert loaded["color"] == "rgba(0, 0, 0, 0)"
    screenshot(page, "placeholders-gallery-loaded.png")
    assert _wait(page, f'.tile[data-id="{old}"] .tile-img', _LOADED)["loaded"]

    # The viewer: the original (or the variant its slot takes) is held; the placeholder shows in
    # its place meanwhile.
    originals = Held(page, re.compile(r"/storage/(images|variants)/"))
    page.locator(f'.tile[data-id="{image["id"]}"] .tile-open').click()
    originals.wait(1)
    viewer = _wait(page, "#viewer-img", _PAINTED)
    assert not viewer["loaded"]
    assert viewer["color"] == _rgb(color)
    assert viewer["width"] > 100
    assert viewer["height"] > 75
    screenshot(page, "placeholders-viewer-held.png")
    originals.release()
    assert _wait(page, "#viewer-img", _LOADED)["image"] == "none"


def test_the_element_paints_the_placeholder_of_a_file_it_could_not_preview(
    page: Page, shared_server: LiveServer
) -> None:
    """A file the browser cannot decode itself (previews that fail stand for any here; a real HEIC
    is the next test) gets the server's thumbnail once accepted, its placeholder painted meanwhile; so does
    a file already in the gallery (answered at signing, nothing sent)."""
    page.add_init_script("URL.createObjectURL = () => 'data:image/png;base64,AAAA';")
    again = _mostly_red(3)
    known = _accept(shared_server, again, "again.png")
    open_page(page, shared_server)
    page.evaluate(
        """() => { window.__accepted = [];
            document.querySelector("s3drop-uploader").addEventListener("s3drop:accepted",
                (event) => window.__accepted.push(event.detail)); }"""
    )
    thumbs = Held(page, re.compile(r"/storage/thumbs/"))
    files = [payload("again.png", again), payload("fresh.png", _mostly_red(4))]
    page.set_input_files("#file-input", files=files)
    for name in ("again.png", "fresh.png"):
        expect(row(page, name)).to_have_attribute("data-state", "done", timeout=15_000)
    thumbs.wait(2)
    # The host hears of each image with its placeholder.
    details = {detail["image"]["filename"]: detail for detail in page.evaluate("window.__accepted")}
    assert details["again.png"]["duplicate"] is True
    assert details["again.png"]["image"]["placeholder"] == known["placeholder"]
    assert details["fresh.png"]["image"]["placeholder"]["color"] is not None
    for name in ("again.png", "fresh.png"):
        thumb = row(page, name).locator(".file-thumb")
        page.wait_for_function(
            "(img) => getComputedStyle(img).backgroundImage.startsWith('url(\"data:')",
            arg=thumb.element_handle(),
        )
        state = thumb.evaluate(
            "(img) => ({loaded: img.naturalWidth > 0, hidden: img.hidden,"
            " color: getComputedStyle(img).backgroundColor})"
        )
        color = details[name]["image"]["placeholder"]["color"]
        assert state == {"loaded": False, "hidden": False, "color": _rgb(color)}
    screenshot(page, "placeholders-element-held.png", clip=_box(page.locator("s3drop-uploader")))
    thumbs.release()
    for name in ("again.png", "fresh.png"):
        thumb = row(page, name).locator(".file-thumb")
        page.wait_for_function(
            "(img) => img.naturalWidth > 0 && !img.dataset.placeholder", arg=thumb.element_handle()
        )


def test_an_uploaded_heic_has_its_placeholder_in_the_row_until_its_jpeg_thumbnail_loads(
    page: Page, heic_server: LiveServer
) -> None:
    """A real HEIC (Chromium cannot decode it, so the row has no preview of its own): the server
    converts it to a JPEG and answers its placeholder, which the row paints until the server's
    thumbnail has loaded."""
    server = heic_server
    open_page(page, server)
    thumbs = Held(page, re.compile(r"/storage/thumbs/"))
    data = samples.oriented_heic(6, size=(320, 240))  # red, turned upright by its irot
    page.set_input_files("#file-input", files=[payload("IMG_0042.heic", data, "image/heic")])
    expect(row(page, "IMG_0042.heic")).to_have_attribute("data-state", "done", timeout=30_000)
    thumbs.wait(1)
    thumb = row(page, "IMG_0042.heic").locator(".file-thumb")
    page.wait_for_function(
        "(img) => getComputedStyle(img).backgroundImage.startsWith('url(\"data:image/png')",
        arg=thumb.element_handle(),
    )
    state = thumb.evaluate(
        "(img) => ({loaded: img.naturalWidth > 0, hidden: img.hidden,"
        " color: getComputedStyle(img).backgroundColor})"
    )
    with server.client() as http:
        [image] = http.get("/api/images").json()["images"]
    assert image["format"] == "jpeg"
    color = image["placeholder"]["color"]
    found = bytes.fromhex(color[1:])
    assert all(abs(a - b) < 40 for a, b in zip(found, (255, 0, 0), strict=True)), color
    assert state == {"loaded": False, "hidden": False, "color": _rgb(color)}
    thumbs.release()
    page.wait_for_function(
        "(img) => img.naturalWidth > 0 && !img.dataset.placeholder", arg=thumb.element_handle()
    )


def _box(locator: Any) -> dict[str, float]:
    box = locator.bounding_box()
    assert box is not None
    return box  # type: ignore[no-any-return]


def _clip(page: Page, selector: str) -> dict[str, float]:
    return _box(page.locator(selector))


def _mostly(path: Any, color: tuple[int, int, int], within: int = 40) -> bool:
    """Whether most of a screenshot's pixels are near ``color``."""
    with Image.open(path) as shot:
        pixels = shot.convert("RGB").resize((40, 30)).get_flattened_data()
    near = [p for p in pixels if all(abs(a - b) <= within for a, b in zip(p, color, strict=True))]
    return len(near) > len(pixels) * 0.4
