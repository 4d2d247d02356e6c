"""A HEIC from a phone, uploaded through the page in Chromium (which cannot show HEIC itself): the
server stores an upright JPEG and the page shows it, the marked corner at the top left."""

from __future__ import annotations

import re
from collections.abc import Callable

from playwright.sync_api import Page, expect

from tests import samples
from tests.conftest import LiveServer

from .test_page import final_state, open_page, payload, row, stored_objects

#: Pixels of the picture in the viewer (what the browser decoded from the stored JPEG) at the
#: marked corner and at the opposite one.
_CORNERS = """(img) => {
    const canvas = document.createElement("canvas");
    canvas.width = img.naturalWidth;
    canvas.height = img.naturalHeight;
    const context = canvas.getContext("2d");
    context.drawImage(img, 0, 0);
    const at = (x, y) => Array.from(context.getImageData(x, y, 1, 1).data.slice(0, 3));
    return {
        size: [img.naturalWidth, img.naturalHeight],
        corner: at(8, 8),
        opposite: at(img.naturalWidth - 8, img.naturalHeight - 8),
    };
}"""


def _close(pixel: list[int], colour: tuple[int, int, int]) -> bool:
    return all(abs(a - b) <= 32 for a, b in zip(pixel, colour, strict=True))


def test_a_heic_uploaded_through_the_page_is_shown_upright(
    page: Page, make_server: Callable[..., LiveServer]
) -> None:
    server = make_server(env={"S3DROP_ALLOWED_TYPES": "image/png,image/jpeg,image/heic"})
    open_page(page, server)
    # Taken with the phone turned (EXIF 6, irot 90 degrees in the HEIF); the browser gives a .heic
    # no type on Linux, so the element finds it by the server's extension list.
    data = samples.oriented_heic(6, size=(320, 240))
    page.set_input_files("#file-input", files=[payload("IMG_4021.heic", data, "")])
    final_state(row(page, "IMG_4021.heic"), "done")
    [key] = [key for key in stored_objects(server) if key.startswith("images/")]
    assert key.endswith(".jpg")
    assert not [key for key in stored_objects(server) if key.endswith(".heic")]

    tile = page.locator(".tile").first
    expect(tile).to_be_visible()
    tile.get_by_role("button", name=re.compile("^View ")).click()
    viewer = page.locator("#viewer-img")
    page.wait_for_function("() => document.getElementById('viewer-img').naturalWidth === 320")
    assert ".jpg" in (viewer.get_attribute("src") or "")
    seen = viewer.evaluate(_CORNERS)
    assert seen["size"] == [320, 240]
    assert _close(seen["corner"], samples.MARK), seen
    assert _close(seen["opposite"], (255, 0, 0)), seen
