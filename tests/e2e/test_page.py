"""The upload page in a real browser (Debian chromium via Playwright) against a live ``s3drop serve``.

Every upload goes the whole way: the page checks the file, hashes it, asks the server to sign,
posts the form straight to the local backend, asks the server to complete it, and the test then
reads the data folder to prove what was (or was not) stored. Storage failures are produced either
by the real server (an expired form) or by intercepting the browser's POST to storage.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import FilePayload, Locator, Page, Request, Route, expect

from tests.conftest import OUTPUT, LiveServer
from tests.e2e.conftest import module_server

pytestmark = pytest.mark.browser

FINAL = re.compile(r"^(done|rejected|failed|refused|cancelled)$")


# --- files ------------------------------------------------------------------------------------


def gradient_png(seed: int, size: tuple[int, int] = (300, 200)) -> bytes:
    """A colourful PNG without metadata, different for every seed."""
    width, height = size
    across = Image.linear_gradient("L").resize(size)
    down = Image.linear_gradient("L").rotate(90).resize(size)
    flat = Image.new("L", size, (seed * 67 + 40) % 256)
    channels = [across, down, flat]
    rotated = channels[seed % 3 :] + channels[: seed % 3]
    image = Image.merge("RGB", rotated)
    image.putpixel((seed % width, seed % height), (seed % 256, 7, 99))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def noise_png(size: tuple[int, int]) -> bytes:
    """A PNG of random pixels: it does not compress, so its size is about 3 bytes a pixel."""
    image = Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def payload(name: str, data: bytes, mime: str = "image/png") -> FilePayload:
    return {"name": name, "mimeType": mime, "buffer": data}


# --- the data folder --------------------------------------------------------------------------


def stored_objects(server: LiveServer) -> dict[str, bytes]:
    """Every object the local backend holds: key -> bytes."""
    root = server.data_dir / "objects"
    if not root.exists():
        return {}
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def assert_stored(server: LiveServer, originals: dict[str, bytes]) -> None:
    """Each original's exact bytes are stored under some key (incoming/ or images/)."""
    objects = stored_objects(server)
    for name, data in originals.items():
        keys = [key for key, stored in objects.items() if stored == data]
        assert keys, f"{name}: no stored object has its bytes; stored: {sorted(objects)}"
        assert all(re.match(STORED_KEY, key) for key in keys), keys


#: Quarantined ``incoming/<id>.png``, or promoted ``images/<id>.<width>x<height>.<bytes>.png``
#: with its name label and placeholder segments (``.n<label>.p<thumbhash>.c<rrggbb>``).
STORED_KEY = (
    r"^(incoming/\d{13}[a-z2-7]{10}|images/\d{13}[a-z2-7]{10}\.\d+x\d+\.\d+"
    r"(\.n[a-z2-7]+)?(\.p[a-z2-7]+\.c[0-9a-f]{6})?)\.png$"
)


# --- the page ---------------------------------------------------------------------------------


def open_page(page: Page, server: LiveServer) -> dict[str, str]:
    """Load the page and wait until it has the server's settings; returns the page's headers."""
    response = page.goto(server.url)
    assert response is not None
    assert response.status == 200
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    return response.headers


def row(page: Page, name: str) -> Locator:
    return page.locator(f'li.file[data-name="{name}"]')


def final_state(item: Locator, expected: str, timeout: float = 15_000) -> str:
    """Wait until the row reaches a final state; assert it is ``expected``; return its message."""
    expect(item).to_have_attribute("data-state", FINAL, timeout=timeout)
    state = item.get_attribute("data-state")
    message = item.locator(".message").inner_text()
    assert state == expected, f"{item}: {state}, {message!r}"
    return message


def _dispatch_files(
    page: Page, files: list[tuple[str, bytes, str]], *, how: str, selector: str = ""
) -> None:
    """Hand ``files`` to the page as a user would: ``how`` is "drop" (dragenter, dragover, drop
    on ``selector``) or "paste" (a paste event carrying the files)."""
    encoded = [
        {"name": name, "type": mime, "data": base64.b64encode(data).decode()}
        for name, data, mime in files
    ]
    page.evaluate(
        """({files, how, selector}) => {
            const transfer = new DataTransfer();
            for (const file of files) {
                const bytes = Uint8Array.from(atob(file.data), (c) => c.charCodeAt(0));
                transfer.items.add(new File([bytes], file.name, {type: file.type}));
            }
            const options = {bubbles: true, cancelable: true};
            if (how === "paste") {
                document.dispatchEvent(new ClipboardEvent("paste", {...options, clipboardData: transfer}));
                return;
            }
            const target = document.querySelector(selector);
            for (const type of ["dragenter", "dragover", "drop"]) {
                target.dispatchEvent(new DragEvent(type, {...options, dataTransfer: transfer}));
            }
        }""",
        {"files": encoded, "how": how, "selector": selector},
    )


def drop_files(
    page: Page, files: list[tuple[str, bytes, str]], selector: str = "s3drop-uploader"
) -> None:
    """Drop files on ``selector`` with a DataTransfer, as a user's drag and drop does."""
    _dispatch_files(page, files, how="drop", selector=selector)


def paste_files(page: Page, files: list[tuple[str, bytes, str]]) -> None:
    """Paste files into the page, as a user's Ctrl+V of copied images does."""
    _dispatch_files(page, files, how="paste")


def sign_requests(page: Page) -> list[Request]:
    """Every POST /api/uploads the page makes from now on."""
    seen: list[Request] = []

    def record(request: Request) -> None:
        if request.method == "POST" and request.url.endswith("/api/uploads"):
            seen.append(request)

    page.on("request", record)
    return seen


class HeldUploads:
    """Intercepts the browser's POSTs to storage and holds them until the test lets them go."""

    def __init__(self, page: Page, server: LiveServer) -> None:
        self.page = page
        self.pattern = f"{server.url}/storage"
        self.routes: list[Route] = []
        page.route(self.pattern, self._hold)

    def _hold(self, route: Route) -> None:
        if route.request.method != "POST":
            route.continue_()
            return
        self.routes.append(route)

    def wait(self, count: int = 1, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while len(self.routes) < count:
            assert time.monotonic() < deadline, f"only {len(self.routes)} uploads reached storage"
            self.page.wait_for_timeout(20)

    def release(self) -> None:
        """Let held requests go on to the server, and stop intercepting."""
        for route in self.routes:
            route.continue_()
        self.routes.clear()
        self.page.unroute(self.pattern, self._hold)


def screenshot(page: Page, name: str, **options: Any) -> Path:
    OUTPUT.mkdir(exist_ok=True)
    path = OUTPUT / name
    page.screenshot(path=str(path), animations="disabled", **options)
    return path


# --- tests ------------------------------------------------------------------------------------


def test_picker_and_drop_uploads_are_stored_byte_identical(
    page: Page, shared_server: LiveServer
) -> None:
    live_server = shared_server
    originals = {
        "sunrise.png": gradient_png(1),
        "harbour at dawn.png": gradient_png(2),
        "dropped.png": gradient_png(3),
    }
    signs = sign_requests(page)
    headers = open_page(page, live_server)
    # The page works under the app's strict policy (the page fixture fails on any violation).
    assert "script-src 'self'" in headers["content-security-policy"]
    assert "unsafe-inline" not in headers["content-security-policy"]
    expect(page.locator("#dropzone-limits")).to_have_text("PNG or JPEG · up to 10 MiB each")
    assert page.locator("#file-input").get_attribute("accept") == (
        "image/png,.png,image/jpeg,.jpg,.jpeg"
    )

    page.set_input_files(
        "#file-input",
        files=[
            payload("sunrise.png", originals["sunrise.png"]),
            payload("harbour at dawn.png", originals["harbour at dawn.png"]),
        ],
    )
    drop_files(page, [("dropped.png", originals["dropped.png"], "image/png")])

    for name in originals:
        message = final_state(row(page, name), "done")
        assert message.startswith("Done")
    assert_stored(live_server, originals)
    # The page sent each file's SHA-256 (WebCrypto) with its sign request.
    bodies: list[dict[str, Any]] = [request.post_data_json or {} for request in signs]
    sent = {body["filename"]: body for body in bodies}
    for name, data in originals.items():
        assert sent[name]["sha256"] == hashlib.sha256(data).hexdigest()
        assert sent[name]["size"] == len(data)
        assert sent[name]["content_type"] == "image/png"
    expect(page.locator("s3drop-uploader #live")).to_contain_text("Done")
    expect(page.locator("#queue-summary")).to_have_text("3 done")


def test_too_big_wrong_type_and_empty_are_refused_in_the_page(
    page: Page, small_server: LiveServer
) -> None:
    server = small_server
    before = stored_objects(server)
    big = noise_png((300, 300))
    assert len(big) > 200_000
    signs = sign_requests(page)
    open_page(page, server)
    expect(page.locator("#dropzone-limits")).to_have_text("PNG or JPEG · up to 195.3 KiB each")

    page.set_input_files(
        "#file-input",
        files=[
            payload("big.png", big),
            payload("x.html", b"<!doctype html><script>alert(1)</script>", "text/html"),
            payload("nothing.png", b""),
        ],
    )

    too_big = final_state(row(page, "big.png"), "refused")
    assert re.fullmatch(r"Too big: \d+(\.\d)? KiB, the limit is 195.3 KiB", too_big), too_big
    wrong = final_state(row(page, "x.html"), "refused")
    assert wrong == "Not an allowed type: text/html. Allowed: PNG, JPEG"
    empty = final_state(row(page, "nothing.png"), "refused")
    assert empty.startswith("Empty file")
    for name in ("big.png", "x.html", "nothing.png"):
        expect(row(page, name).locator(".message")).to_be_visible()
        expect(
            row(page, name).get_by_role("button", name=f"Remove {name} from the list")
        ).to_be_visible()
        expect(row(page, name).locator(".retry")).to_be_hidden()
    page.wait_for_timeout(200)  # nothing is on its way either
    assert signs == []
    assert stored_objects(server) == before


def test_cancel_mid_upload_stores_nothing_and_retry_uploads(
    page: Page, shared_server: LiveServer
) -> None:
    live_server = shared_server
    data = gradient_png(4)
    before = stored_objects(live_server)
    open_page(page, live_server)
    held = HeldUploads(page, live_server)
    page.set_input_files("#file-input", files=[payload("slow.png", data)])
    item = row(page, "slow.png")
    held.wait()
    expect(item).to_have_attribute("data-state", "uploading")
    expect(item.get_by_role("progressbar")).to_be_visible()

    item.get_by_role("button", name="Cancel upload of slow.png").click()
    assert final_state(item, "cancelled") == "Cancelled"
    expect(item.get_by_role("button", name="Retry upload of slow.png")).to_be_focused()
    for route in held.routes:  # the browser gave up on it; storage never sees it
        with contextlib.suppress(PlaywrightError):
            route.abort()
    held.routes.clear()
    page.unroute(held.pattern)
    assert stored_objects(live_server) == before

    item.get_by_role("button", name="Retry upload of slow.png").click()
    final_state(item, "done")
    assert_stored(live_server, {"slow.png": data})


STORAGE_REFUSALS = [
    pytest.param(
        403,
        "SignatureDoesNotMatch",
        "The request signature we calculated does not match the signature you provided.",
        "failed",
        "Storage refused the upload (SignatureDoesNotMatch)",
        id="signature",
    ),
    pytest.param(
        403,
        "AccessDenied",
        "Invalid according to Policy: Extra input fields: x-amz-meta-evil",
        "failed",
        "Storage refused the upload (AccessDenied)",
        id="access-denied",
    ),
    pytest.param(
        400,
        "EntityTooLarge",
        "Your proposed upload exceeds the maximum allowed size",
        "refused",
        "Too big: storage refused",
        id="too-large",
    ),
    pytest.param(
        None, None, None, "failed", "Network error: storage could not be reached", id="network"
    ),
]


@pytest.mark.parametrize(("status", "code", "detail", "state", "message"), STORAGE_REFUSALS)
def test_storage_refusal_is_explained(
    page: Page,
    shared_server: LiveServer,
    status: int | None,
    code: str | None,
    detail: str | None,
    state: str,
    message: str,
) -> None:
    def refuse(route: Route) -> None:
        if status is None:
            route.abort("connectionrefused")
            return
        route.fulfill(
            status=status,
            content_type="application/xml",
            body=f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
            f"<Message>{detail}</Message><RequestId>1</RequestId></Error>",
        )

    before = stored_objects(shared_server)
    open_page(page, shared_server)
    page.route(f"{shared_server.url}/storage", refuse)
    page.set_input_files("#file-input", files=[payload("refused.png", gradient_png(5))])
    shown = final_state(row(page, "refused.png"), state)
    assert shown.startswith(message), shown
    assert stored_objects(shared_server) == before


def test_expired_form_is_explained_and_retry_signs_again(
    page: Page, make_server: Callable[..., LiveServer]
) -> None:
    server = make_server(env={"S3DROP_EXPIRES_IN": "2"})
    data = gradient_png(6)
    signs = sign_requests(page)
    open_page(page, server)
    held = HeldUploads(page, server)
    page.set_input_files("#file-input", files=[payload("late.png", data)])
    held.wait()
    page.wait_for_timeout(2200)  # the form (valid 2 s from signing) expires while held
    held.release()  # the real server now judges it

    item = row(page, "late.png")
    assert final_state(item, "failed") == "The upload form expired; retry"
    assert stored_objects(server) == {}

    item.get_by_role("button", name="Retry upload of late.png").click()
    final_state(item, "done")
    assert len(signs) == 2  # a retry asks for a fresh form
    assert_stored(server, {"late.png": data})


def test_keyboard_opens_the_picker_and_paste_uploads(page: Page, shared_server: LiveServer) -> None:
    live_server = shared_server
    typed, pasted = gradient_png(7), gradient_png(8)
    # Playwright turns file-chooser interception on without waiting for the browser; listening
    # from the start makes sure it is on before the first key press.
    page.on("filechooser", lambda chooser: None)
    open_page(page, live_server)
    page.keyboard.press("Tab")  # the skip link
    page.keyboard.press("Tab")  # the brand link
    page.keyboard.press("Tab")
    expect(page.locator("#dropzone")).to_be_focused()
    with page.expect_file_chooser() as chooser:
        page.keyboard.press("Enter")
    assert chooser.value.is_multiple()
    chooser.value.set_files([payload("keyboard.png", typed)])
    final_state(row(page, "keyboard.png"), "done")

    with page.expect_file_chooser():
        page.keyboard.press(" ")

    paste_files(page, [("image.png", pasted, "image/png")])
    pasted_row = page.locator('li.file[data-name^="Pasted "]')
    final_state(pasted_row, "done")
    assert_stored(live_server, {"keyboard.png": typed, "pasted": pasted})


def test_page_with_mixed_states(page: Page, small_server: LiveServer) -> None:
    """The screenshot of record: done, uploading, refused, failed and cancelled side by side."""
    server = small_server
    open_page(page, server)
    names = {"mountain-lake.png": 11, "city-lights.png": 12, "meadow.png": 13}
    page.set_input_files(
        "#file-input", files=[payload(name, gradient_png(seed)) for name, seed in names.items()]
    )
    for name in names:
        final_state(row(page, name), "done")

    def storage(route: Route) -> None:
        body = route.request.post_data_buffer or b""
        if b'filename="refused-by-storage.png"' in body:
            route.fulfill(
                status=403,
                content_type="application/xml",
                body="<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>",
            )
        elif b'filename="cancelled.png"' in body or b'filename="in-flight.png"' in body:
            held.append(route)
        else:
            route.continue_()

    held: list[Route] = []
    page.route(f"{server.url}/storage", storage)
    page.set_input_files(
        "#file-input",
        files=[
            payload("refused-by-storage.png", gradient_png(14)),
            payload("cancelled.png", gradient_png(15)),
            payload("in-flight.png", gradient_png(16)),
            payload("holiday-video.mov", b"\0\0\0\x14ftypqt  " + bytes(64), "video/quicktime"),
            payload("panorama.png", noise_png((300, 300))),
            payload("scan.png", b"%PDF-1.7 not an image at all" + bytes(100)),
        ],
    )
    final_state(row(page, "refused-by-storage.png"), "failed")
    expect(row(page, "in-flight.png")).to_have_attribute("data-state", "uploading")
    expect(row(page, "cancelled.png")).to_have_attribute("data-state", "uploading")
    row(page, "cancelled.png").get_by_role("button", name="Cancel upload of cancelled.png").click()
    final_state(row(page, "cancelled.png"), "cancelled")
    final_state(row(page, "panorama.png"), "refused")
    final_state(row(page, "scan.png"), "rejected")
    page.mouse.move(0, 0)
    path = screenshot(page, "upload-page.png", full_page=True)
    assert path.stat().st_size > 10_000
    page.emulate_media(color_scheme="dark")
    screenshot(page, "upload-page-dark.png", full_page=True)
    page.emulate_media(color_scheme="light")
    page.set_viewport_size({"width": 390, "height": 844})
    screenshot(page, "upload-page-narrow.png", full_page=True)
    for route in held:
        with contextlib.suppress(PlaywrightError):  # the browser may have let go of it
            route.abort()


def test_an_empty_queue_says_where_uploads_will_appear(
    page: Page, empty_server: LiveServer
) -> None:
    """The room the page keeps for upload rows (queue-rows) holds a quiet note while the list is
    empty: there on arrival, gone with the first row, back when "Clear finished" empties the list.
    It is plain text, not a live region, and the room keeps its height throughout."""
    server = empty_server
    open_page(page, server)
    page.mouse.move(0, 0)
    empty = page.locator("#queue-empty")
    below = page.locator("#gallery-title")
    screenshot(page, "upload-page-empty.png", full_page=True)
    page.emulate_media(color_scheme="dark")
    screenshot(page, "upload-page-empty-dark.png", full_page=True)
    page.emulate_media(color_scheme="light")
    page.set_viewport_size({"width": 390, "height": 844})
    screenshot(page, "upload-page-empty-narrow.png", full_page=True)
    page.set_viewport_size({"width": 1200, "height": 900})

    expect(empty).to_be_visible()
    expect(empty).to_have_text(re.compile(r"No uploads yet\W+Each file you add gets a row here"))
    assert empty.evaluate(
        "(el) => !el.closest('[aria-live], [role=log], [role=status], [role=alert]')"
    ), "the note is read where it stands, not announced"
    expect(page.get_by_role("list", name="Uploads")).to_have_count(0)  # no empty list to read
    clear = page.get_by_role("button", name="Clear finished")
    expect(clear).to_be_hidden()  # nothing to clear yet
    top = below.bounding_box()
    assert top is not None

    page.set_input_files(
        "#file-input",
        files=[payload(f"first-{n}.png", gradient_png(40 + n)) for n in range(2)],
    )
    expect(empty).to_be_hidden()
    for n in range(2):
        final_state(row(page, f"first-{n}.png"), "done")
    expect(page.get_by_role("list", name="Uploads").get_by_role("listitem")).to_have_count(2)
    assert below.bounding_box() == top
    page.mouse.move(0, 0)
    screenshot(page, "upload-page-rows.png", full_page=True)

    clear.click()
    expect(page.locator("li.file")).to_have_count(0)
    expect(empty).to_be_visible()
    expect(clear).to_be_hidden()
    assert below.bounding_box() == top


# --- completion and the gallery ---------------------------------------------------------------


def test_rejected_upload_shows_the_reason(page: Page, shared_server: LiveServer) -> None:
    """Named .png and declared image/png, but not a PNG: only the server can tell, after upload."""
    fake = b"<!doctype html><title>not a picture</title>" + b" " * 200
    before = stored_objects(shared_server)
    open_page(page, shared_server)
    page.set_input_files("#file-input", files=[payload("holiday.png", fake)])
    message = final_state(row(page, "holiday.png"), "rejected")
    assert message.startswith("Rejected: "), message
    assert len(message) > len("Rejected: ") + 5
    expect(row(page, "holiday.png").locator(".retry")).to_be_hidden()
    assert stored_objects(shared_server) == before  # deleted from quarantine, never promoted
    expect(page.locator(".tile")).to_have_count(len(gallery_ids(shared_server)))


def gallery_ids(server: LiveServer) -> list[str]:
    with server.client() as client:
        answer = client.get("/api/images", params={"limit": 100})
    answer.raise_for_status()
    return [image["id"] for image in answer.json()["images"]]


def filenames(server: LiveServer, ids: list[str]) -> dict[str, str]:
    """Each image's original filename (``GET /api/images/{id}``; gallery pages do not carry it)."""
    with server.client() as client:
        answers = [client.get(f"/api/images/{image_id}") for image_id in ids]
    return {
        image_id: answer.json()["image"]["filename"]
        for image_id, answer in zip(ids, answers, strict=True)
    }


def tile_ids(page: Page) -> list[str]:
    ids: list[str] = page.locator(".tile").evaluate_all("tiles => tiles.map(t => t.dataset.id)")
    return ids


def rewrite_listings(
    page: Page, server: LiveServer, change: Callable[[dict[str, Any]], None]
) -> None:
    """Pass every gallery page (``GET /api/images?...``) the browser loads through ``change``."""

    def rewrite(route: Route) -> None:
        response = route.fetch()
        listing = response.json()
        for image in listing["images"]:
            change(image)
        route.fulfill(response=response, json=listing)

    page.route(re.compile(re.escape(f"{server.url}/api/images?") + ".*"), rewrite)


def test_gallery_shows_views_and_deletes_with_confirmation(
    page: Page, empty_server: LiveServer
) -> None:
    live_server = empty_server
    names = {"alpine-morning.png": 21, "tidal-pool.png": 22, "old-town.png": 23}
    # Gallery pages without filenames (as the API lists them today): tiles fall back to the
    # upload time, and the viewer asks for the name.
    rewrite_listings(page, live_server, lambda image: image.update(filename=None))
    open_page(page, live_server)
    expect(page.locator("#gallery-status")).to_have_text(
        "No images yet. Images you upload appear here."
    )
    page.set_input_files(
        "#file-input", files=[payload(name, gradient_png(seed)) for name, seed in names.items()]
    )
    for name in names:
        final_state(row(page, name), "done")
    expect(page.locator(".tile")).to_have_count(3)
    expect(page.locator("#gallery-status")).to_be_hidden()
    # Tiles added from each upload's answer know its filename and are captioned with it.
    captions = page.locator(".tile-name").all_inner_texts()
    assert sorted(captions) == sorted(names)

    page.reload()
    expect(page.locator(".tile")).to_have_count(3)
    ids = tile_ids(page)
    assert ids == sorted(ids) == gallery_ids(live_server)  # newest first
    expect(page.locator("#gallery-count")).to_have_text("3 images")
    page.wait_for_function(
        "() => [...document.querySelectorAll('.tile-img')].every(i => i.complete && i.naturalWidth)"
    )
    screenshot(page, "gallery.png", full_page=True)

    # Tiles show what the gallery page carries: size, bytes, upload time; here no filename.
    named = filenames(live_server, ids)
    assert sorted(named.values()) == sorted(names)
    first = page.locator(".tile").first
    expect(first.locator(".tile-meta")).to_have_text(re.compile(r"^300 \u00d7 200 \u00b7 \d"))
    uploaded = first.locator(".tile-name").inner_text()
    assert re.search(r"\d", uploaded), uploaded
    assert uploaded not in names
    expect(first.locator(".tile-img")).to_have_attribute("alt", re.compile("^Image 300 \u00d7 200"))

    # View one full size: the viewer asks the server for its filename.
    first.get_by_role("button", name=re.compile("^View Image 300 \u00d7 200, uploaded ")).click()
    viewer = page.locator("#viewer")
    expect(viewer).to_be_visible()
    label = named[ids[0]]
    expect(page.locator("#viewer-title")).to_have_text(label)
    expect(page.locator("#viewer-facts")).to_contain_text("300 \u00d7 200")
    expect(page.locator("#viewer-open")).to_have_attribute(
        "href", re.compile(f"filename={re.escape(label)}")
    )
    page.wait_for_function("() => document.getElementById('viewer-img').naturalWidth === 300")
    screenshot(page, "viewer.png")

    # Delete asks first; keeping it changes nothing.
    before = stored_objects(live_server)
    viewer.get_by_role("button", name="Delete").click()
    confirm = page.locator("#confirm")
    expect(confirm).to_be_visible()
    expect(page.locator("#confirm-text")).to_contain_text(label)
    expect(page.locator("#confirm-cancel")).to_be_focused()
    screenshot(page, "confirm-delete.png")
    confirm.get_by_role("button", name="Keep it").click()
    expect(confirm).to_be_hidden()
    expect(viewer).to_be_visible()
    page.keyboard.press("Escape")
    expect(viewer).to_be_hidden()
    assert stored_objects(live_server) == before
    expect(page.locator(".tile")).to_have_count(3)

    # Delete for real, from the tile's own button (its name unknown to the page: never viewed).
    victim = ids[1]
    tile = page.locator(f'.tile[data-id="{victim}"]')
    victim_label = tile.locator(".tile-img").get_attribute("alt")
    assert victim_label is not None
    assert victim_label.startswith("Image 300 \u00d7 200, uploaded ")
    tile.get_by_role("button", name=f"Delete {victim_label}").click()
    expect(confirm).to_be_visible()
    expect(page.locator("#confirm-text")).to_contain_text(victim_label)
    confirm.get_by_role("button", name="Delete").click()
    expect(confirm).to_be_hidden()
    expect(tile).to_have_count(0)
    expect(page.locator(".tile")).to_have_count(2)
    expect(page.locator("#announcer")).to_contain_text(f"Deleted {victim_label}")
    after = stored_objects(live_server)
    assert [key for key in after if victim in key] == []
    markers = {key for key in before if key.startswith("digests/")}  # named by bytes, not id
    assert {key for key in before if victim not in key} - markers == set(after) - markers
    assert len(markers - set(after)) == 1  # the victim's duplicate marker went with it
    assert {key for key in after if key.startswith("digests/")} <= markers
    assert victim not in gallery_ids(live_server)

    page.reload()
    expect(page.locator(".tile")).to_have_count(2)
    assert victim not in tile_ids(page)


def test_a_dialog_opened_again_at_once_acts_on_its_new_image(
    page: Page, shared_server: LiveServer
) -> None:
    """A dialog's close event comes a task after it closed. On a busy page the next click can come
    first: a viewer or delete dialog opened again before it must not be emptied by the stale
    event (it was: the viewer's Delete and the dialog's Delete did nothing, issue 11's flaky
    a11y test). And a delete whose answer comes after its dialog was dismissed and opened for
    another image closes nothing: the tile goes, the other image's question stays."""
    names = ["race-x.png", "race-y.png", "race-z.png"]
    open_page(page, shared_server)
    page.set_input_files(
        "#file-input", files=[payload(name, gradient_png(240 + i)) for i, name in enumerate(names)]
    )
    for name in names:
        final_state(row(page, name), "done")
    tiles = {name: page.locator(".tile").filter(has_text=name) for name in names}
    ids = {name: tiles[name].get_attribute("data-id") for name in names}
    viewer, confirm = page.locator("#viewer"), page.locator("#confirm")

    def in_one_task(first: str, then: str) -> None:
        page.evaluate(
            "([a, b]) => { document.querySelector(a).click(); document.querySelector(b).click(); }",
            [first, then],
        )

    # Close the viewer and open another image in it at once; then its Delete asks about that one.
    tiles["race-x.png"].locator(".tile-open").click()
    expect(page.locator("#viewer-title")).to_have_text("race-x.png")
    in_one_task("#viewer-close", f'.tile[data-id="{ids["race-y.png"]}"] .tile-open')
    expect(page.locator("#viewer-title")).to_have_text("race-y.png")
    page.locator("#viewer-delete").click()
    expect(confirm).to_be_visible()
    expect(page.locator("#confirm-text")).to_contain_text("race-y.png")
    # Keep it, and ask again at once: the dialog's Delete deletes.
    in_one_task("#confirm-cancel", "#viewer-delete")
    expect(confirm).to_be_visible()
    page.locator("#confirm-delete").click()
    expect(confirm).to_be_hidden()
    expect(viewer).to_be_hidden()
    expect(tiles["race-y.png"]).to_have_count(0)
    expect(page.locator("#announcer")).to_contain_text("Deleted race-y.png")
    with shared_server.client() as client:
        assert client.get(f"/api/images/{ids['race-y.png']}").status_code == 404

    # A delete answered after its dialog was dismissed and opened for another image.
    held: list[Route] = []
    pattern = f"{shared_server.url}/api/images/{ids['race-x.png']}"
    page.route(pattern, lambda route: held.append(route))
    tiles["race-x.png"].locator(".tile-delete").click()
    page.locator("#confirm-delete").click()
    expect(page.locator("#confirm-delete")).to_be_disabled()  # its DELETE is on its way
    deadline = time.monotonic() + 10
    while not held:  # handed to the test by the route
        assert time.monotonic() < deadline, "the DELETE never reached the route"
        page.wait_for_timeout(20)
    page.keyboard.press("Escape")
    expect(confirm).to_be_hidden()
    tiles["race-z.png"].locator(".tile-delete").click()
    expect(page.locator("#confirm-text")).to_contain_text("race-z.png")
    assert len(held) == 1, held
    held[0].continue_()
    expect(tiles["race-x.png"]).to_have_count(0)
    expect(page.locator("#announcer")).to_contain_text("Deleted race-x.png")
    expect(confirm).to_be_visible()
    expect(page.locator("#confirm-text")).to_contain_text("race-z.png")
    expect(page.locator("#confirm-delete")).to_be_enabled()
    expect(page.locator("#confirm-cancel")).to_be_focused()
    page.keyboard.press("Escape")
    expect(confirm).to_be_hidden()
    page.unroute(pattern)
    with shared_server.client() as client:
        assert client.get(f"/api/images/{ids['race-x.png']}").status_code == 404
        assert client.get(f"/api/images/{ids['race-z.png']}").status_code == 200


def test_gallery_pages_with_load_more(page: Page, empty_server: LiveServer) -> None:
    open_page(page, empty_server)
    count = 26  # the page asks for 24 at a time
    page.set_input_files(
        "#file-input",
        files=[
            payload(f"batch-{n:02d}.png", gradient_png(100 + n, (60, 40))) for n in range(count)
        ],
    )
    expect(page.locator('li.file[data-state="done"]')).to_have_count(count, timeout=30_000)
    page.reload()
    expect(page.locator(".tile")).to_have_count(24)
    expect(page.locator("#gallery-count")).to_have_text("24+ images")
    page.get_by_role("button", name="Load more").click()
    expect(page.locator(".tile")).to_have_count(count)
    expect(page.get_by_role("button", name="Load more")).to_be_hidden()
    ids = tile_ids(page)
    assert ids == sorted(ids)
    assert len(set(ids)) == count


TOKENS = {"tester": "s3drop-e2e-token-0123456789", "viewer": "s3drop-e2e-token-gallery-0123456789"}


@pytest.fixture(scope="module")
def token_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One s3drop asking for bearer tokens, one owner (and token) per test that uses it."""
    tokens = ",".join(f"{name}:{token}" for name, token in TOKENS.items())
    server = module_server(tmp_path_factory, {"S3DROP_TOKENS": tokens})
    yield server
    server.stop()


def test_token_protected_server_asks_for_a_token_and_uploads(
    page: Page, token_server: LiveServer
) -> None:
    token, server = TOKENS["tester"], token_server
    before = stored_objects(server)
    data = gradient_png(31)
    open_page(page, server)
    page.set_input_files("#file-input", files=[payload("private.png", data)])
    item = row(page, "private.png")
    assert final_state(item, "failed").startswith("Not signed in")
    signin = page.locator("#signin")
    expect(signin).to_be_visible()

    page.get_by_label("Access token").fill("not-the-right-token-at-all")
    signin.get_by_role("button", name="Use token").click()
    expect(page.locator("#signin-title")).to_have_text(
        "That access token was not accepted; enter another"
    )
    final_state(item, "failed")
    assert stored_objects(server) == before

    page.get_by_label("Access token").fill(token)
    signin.get_by_role("button", name="Use token").click()
    final_state(item, "done")
    expect(signin).to_be_hidden()
    assert_stored(server, {"private.png": data})
    assert token not in server.output()


def test_gallery_tiles_are_captioned_with_the_filename_the_api_gives(
    page: Page, shared_server: LiveServer
) -> None:
    """Issue 14 (14): tiles told apart by name, not by date, wherever the API names the image."""
    open_page(page, shared_server)
    page.set_input_files("#file-input", files=[payload("red-kite.png", gradient_png(51))])
    final_state(row(page, "red-kite.png"), "done")
    # From the upload's answer, which carries the filename; it joins the end of the gallery, so
    # no tile moves under the pointer (issue 16).
    fresh = page.locator(".tile").last
    expect(fresh.locator(".tile-name")).to_have_text("red-kite.png")
    expect(fresh.locator(".tile-img")).to_have_attribute("alt", "red-kite.png")
    expect(fresh.get_by_role("button", name="View red-kite.png")).to_be_visible()

    # A gallery page that names its images (a listing with filenames) captions every tile.
    rewrite_listings(
        page, shared_server, lambda image: image.update(filename=f"named-{image['id'][-4:]}.png")
    )
    page.reload()
    expect(page.locator(".tile-name").first).to_have_text(re.compile(r"^named-"))
    ids = tile_ids(page)
    expect(page.locator(".tile-name")).to_have_text([f"named-{i[-4:]}.png" for i in ids])
    expect(page.locator(".tile-meta").first).to_have_text(re.compile("^300 \u00d7 200 \u00b7 \\d"))


def test_server_failures_are_explained_in_the_users_terms(
    page: Page, shared_server: LiveServer
) -> None:
    """Issue 14 (8): never an operator's detail (settings, internal URLs), always something to do,
    with the reference the server gives; the details stay in the server's log."""
    operator = (
        "storage refused our credentials: check AWS_SECRET_ACCESS_KEY "
        "(http://10.0.0.5:7480/photos?X-Amz-Credential=AKIA)"
    )

    def sign_fails(route: Route) -> None:
        body = {
            "error": {"code": "storage_access_denied", "message": operator, "reference": "r-7f3a"}
        }
        route.fulfill(status=502, json=body)

    def complete_fails(route: Route) -> None:
        body = {"error": {"code": "storage_unavailable", "message": operator}}
        route.fulfill(status=503, json=body, headers={"X-Request-ID": "req-42"})

    before = stored_objects(shared_server)
    open_page(page, shared_server)
    page.evaluate(
        """window.failures = [];
        document.addEventListener("s3drop:failed", (event) => {
            const { file, code, message, status } = event.detail;
            window.failures.push([file.name, code, message, status]);
        });"""
    )
    page.route(f"{shared_server.url}/api/uploads", sign_fails)
    data = gradient_png(52)
    page.set_input_files("#file-input", files=[payload("ferry.png", data)])
    item = row(page, "ferry.png")
    assert final_state(item, "failed") == (
        "Could not start the upload: something went wrong on the server; try again later "
        "(reference r-7f3a)"
    )
    assert stored_objects(shared_server) == before

    page.unroute(f"{shared_server.url}/api/uploads", sign_fails)
    complete = re.compile(re.escape(f"{shared_server.url}/api/uploads/") + r"[^/]+/complete")
    page.route(complete, complete_fails)
    item.get_by_role("button", name="Retry upload of ferry.png").click()
    assert final_state(item, "failed") == (
        "Could not verify the upload: the service is busy or down for a moment; try again shortly "
        "(reference req-42)"
    )
    failures = page.evaluate("window.failures")
    assert [(name, code, status) for name, code, _, status in failures] == [
        ("ferry.png", "storage_access_denied", 502),
        ("ferry.png", "storage_unavailable", 503),
    ]
    assert all("AWS_" not in message for *_, message, _ in failures)
    text = page.locator("body").inner_text()
    assert "AWS_" not in text
    assert "10.0.0.5" not in text

    # The file is in quarantine already: a retry only asks the server to verify it again.
    page.unroute(complete, complete_fails)
    item.get_by_role("button", name="Retry upload of ferry.png").click()
    final_state(item, "done")
    assert_stored(shared_server, {"ferry.png": data})


def test_token_protected_gallery_shows_no_error_beside_the_sign_in(
    page: Page, token_server: LiveServer
) -> None:
    """Issue 14 (17): the sign-in banner says what to do; the gallery waits, with no red error."""
    token, server = TOKENS["viewer"], token_server
    open_page(page, server)
    expect(page.locator("#signin")).to_be_visible()
    status = page.locator("#gallery-status")
    expect(status).to_have_text("Sign in to see your images.")
    assert status.get_attribute("data-kind") != "error"
    assert "bearer" not in page.locator("main").inner_text().lower()
    page.get_by_label("Access token").fill(token)
    page.locator("#signin").get_by_role("button", name="Use token").click()
    expect(status).to_have_text("No images yet. Images you upload appear here.")
    expect(page.locator("#signin")).to_be_hidden()


STATIC = Path(__file__).resolve().parents[2] / "src" / "s3drop" / "web" / "static"


def test_page_source_is_csp_ready() -> None:
    """No inline script, handler or style that a strict Content-Security-Policy would block, and
    no absolute path: every URL is relative to where the app is mounted."""
    html = (STATIC / "index.html").read_text()
    scripts = {name: (STATIC / name).read_text() for name in ("app.js", "s3drop-uploader.js")}
    # One script element, an external module, empty: no inline code.
    assert re.findall(r"<script\b[^>]*>.*?</script>", html, re.DOTALL) == [
        '<script type="module" src="static/app.js"></script>'
    ]
    assert not re.search(r"\son[a-z]+\s*=", html)  # no onclick= and the like
    assert not re.search(r"\sstyle\s*=", html)
    assert "<style" not in html
    assert not re.search(r"(href|src)=\"/", html)
    for name, script in scripts.items():
        assert not re.search(r"setAttribute\(\s*[\"']style", script), name
        assert not re.search(r"insertAdjacentHTML|document\.write|\beval\(", script), name
        assert "new Function" not in script, name
        assert not re.search(r"[\"'`]/(api|static|storage)\b", script), name
        assert "<style" not in script, name
        assert not re.search(r"\sstyle=[\"']", script), name
    assert "innerHTML" not in scripts["app.js"]
    # The element's shadow tree comes from two static templates (no data is ever parsed as HTML).
    element = scripts["s3drop-uploader.js"]
    assert re.findall(r".*innerHTML.*", element) == [
        "  element.innerHTML = markup; // static markup only: never data"
    ]
    assert re.findall(r"= template\((\w+)\)", element) == ["MARKUP", "ROW"]
    for constant in ("MARKUP", "ROW", "ICON_UPLOAD"):
        body = re.search(rf"const {constant} =(.*?);\n", element, re.DOTALL)
        assert body is not None, constant
        assert "${" not in body[1].replace("${ICON_UPLOAD}", ""), constant
