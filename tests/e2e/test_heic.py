"""A HEIC from a phone, uploaded through the page in Chromium (which cannot show HEIC itself): the
server stores an upright JPEG and the page shows it, the marked corner at the top left."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable

from playwright.sync_api import Page, expect

from s3drop._units import format_size
from tests import samples
from tests.conftest import LiveServer

from .test_dedupe import StoragePosts
from .test_page import final_state, open_page, payload, row, sign_requests, stored_objects

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
    page: Page, heic_server: LiveServer
) -> None:
    server = heic_server
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


def test_a_heic_is_declared_as_the_heif_the_server_allows_and_sent_whole(
    page: Page, make_server: Callable[..., LiveServer]
) -> None:
    """Before: the element compared the browser's ``image/heic`` with the allowed types, refused it
    ("Not an allowed type") and its picker hid .heic files, though the server takes a HEIC declared
    as HEIF (one family, served by /api/config). The downscale is on, and Chromium cannot decode a
    HEIC: the original goes, and the row shows no copy's size."""
    server = make_server(
        env={
            "S3DROP_ALLOWED_TYPES": "image/jpeg,image/heif",
            "S3DROP_CLIENT_MAX_SIDE": "100",
            "S3DROP_MAX_BYTES": "200KiB",
        }
    )
    signs = sign_requests(page)
    posts = StoragePosts(page, f"{server.url}/storage")
    open_page(page, server)
    picker = (page.locator("s3drop-uploader #file-input").get_attribute("accept") or "").split(",")
    assert {"image/heif", ".heif", "image/heic", ".heic"} <= set(picker)

    labelled = samples.heic(21, size=(320, 240))  # as Chromium on macOS, Android name it
    untyped = samples.heic(22, size=(320, 240))  # as on Linux: no type, the name says .HEIC
    page.set_input_files(
        "s3drop-uploader #file-input",
        files=[
            payload("IMG_5001.heic", labelled, "image/heic"),
            payload("IMG_5002.HEIC", untyped, ""),
        ],
    )
    for name, data in (("IMG_5001.heic", labelled), ("IMG_5002.HEIC", untyped)):
        assert final_state(row(page, name), "done", timeout=30_000) == "Done \u00b7 320 \u00d7 240"
        size = row(page, name).locator(".file-size")
        assert size.inner_text() == format_size(len(data))  # no "→ copy" size
        assert row(page, name).get_attribute("data-sent-bytes") is None
    signed = {json.loads(request.post_data or "")["filename"]: request for request in signs}
    for name, data in (("IMG_5001.heic", labelled), ("IMG_5002.HEIC", untyped)):
        body = json.loads(signed[name].post_data or "")
        assert body["content_type"] == "image/heif"
        assert body["size"] == len(data)
        assert body["sha256"] == hashlib.sha256(data).hexdigest()  # the original's bytes
    assert len(posts.sent) == 2
    assert all(sent > len(labelled) for sent in posts.sent)
    images = sorted(key for key in stored_objects(server) if key.startswith("images/"))
    assert len(images) == 2
    assert all(key.endswith(".jpg") for key in images)

    # One over the limit, admitted for a copy that might fit, is refused for its own size.
    big = labelled + bytes(200 * 1024)  # the element judges its size (encoding a big HEIC: 17 s)
    page.set_input_files(
        "s3drop-uploader #file-input", files=[payload("IMG_5003.heic", big, "image/heic")]
    )
    message = final_state(row(page, "IMG_5003.heic"), "refused", timeout=30_000)
    assert message == f"Too big: {format_size(len(big))}, the limit is 200 KiB"
    assert len(signs) == 2
    assert len(posts.sent) == 2
    assert sorted(key for key in stored_objects(server) if key.startswith("images/")) == images
    assert not [key for key in stored_objects(server) if key.startswith("incoming/")]

    # Shown: the gallery's tiles draw the stored JPEGs.
    expect(page.locator(".tile")).to_have_count(2)
    page.wait_for_function(
        """() => { const imgs = Array.from(document.querySelectorAll(".tile .tile-img"));
            return imgs.length === 2 && imgs.every((img) => img.complete && img.naturalWidth > 0); }"""
    )
