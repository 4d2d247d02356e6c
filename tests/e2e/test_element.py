"""The <s3drop-uploader> element on someone else's page: a plain static site on another origin.

Each host page is served by a tiny static server on its own port (so the browser treats the s3drop
API, and on RGW the bucket, as other origins); s3drop allows the host through
``S3DROP_ALLOWED_ORIGINS``. The pages are built from the README's own snippets ("The uploader
element"), so every snippet shown there is run here. Events are observed from page script.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urljoin, urlsplit

import pytest
from PIL import Image
from playwright.sync_api import Page, expect

from tests.ceph.cluster import RGW, free_port
from tests.conftest import ROOT, LiveServer
from tests.e2e.conftest import module_server
from tests.e2e.test_page import (
    assert_stored,
    drop_files,
    final_state,
    gradient_png,
    payload,
    screenshot,
    stored_objects,
)
from tests.e2e.test_page_rgw import bucket_keys, bucket_ready

pytestmark = pytest.mark.browser

README_HOST = "https://uploads.example.com"
SIZES = json.loads((ROOT / "tests" / "sizes.json").read_text())


# --- the README's snippets --------------------------------------------------------------------


def readme_snippets() -> dict[str, list[str]]:
    """The fenced code blocks of the README's "The uploader element" section, by language."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## The uploader element\n", 1)[1].split("\n## ", 1)[0]
    blocks: dict[str, list[str]] = {}
    for language, body in re.findall(r"```(\w+)\n(.*?)```", section, re.DOTALL):
        blocks.setdefault(language, []).append(body)
    return blocks


SNIPPETS = readme_snippets()
#: Runs before anything else in a host page: records every s3drop event in a plain form.
RECORDER = """
window.events = [];
for (const type of ["s3drop:ready", "s3drop:progress", "s3drop:accepted", "s3drop:rejected",
                    "s3drop:failed", "s3drop:removed", "s3drop:unauthorized", "change"]) {
  document.addEventListener(type, (event) => {
    const d = event.detail || {};
    window.events.push({type, file: d.file ? d.file.name : null, image: d.image || null,
                        code: d.code || null, message: d.message || null, state: d.state || null});
  });
}
"""


def host_page(api: str, *, body: str, css: str = "", head: str = "") -> str:
    """A plain HTML page with the README's script tag pointing at ``api``, and ``body``."""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Host</title>
{head}
{f"<style>{css}</style>" if css else ""}
</head><body>
{body.replace(README_HOST, api)}
</body></html>"""


# --- a static host on another origin ----------------------------------------------------------


@dataclass
class StaticHost:
    """A tiny web server on a free port: serves ``pages``, records form POSTs."""

    url: str
    pages: dict[str, str] = field(default_factory=dict)  # path -> text (.js served as JavaScript)
    headers: dict[str, str] = field(default_factory=dict)  # sent with every answer
    posts: list[tuple[str, list[tuple[str, str]]]] = field(default_factory=list)


@pytest.fixture(scope="module")
def site() -> Iterator[StaticHost]:
    """The module's static host (one origin, so one s3drop can allow it for every test)."""
    port = free_port()
    site = StaticHost(f"http://127.0.0.1:{port}")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = urlsplit(self.path).path
            page = site.pages.get(path)
            kind = "text/javascript" if path.endswith(".js") else "text/html; charset=utf-8"
            self._answer(404 if page is None else 200, page or "not found", kind)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode()
            site.posts.append((self.path, parse_qsl(body, keep_blank_values=True)))
            self._answer(200, "<!doctype html><title>Saved</title><p>Saved")

        def _answer(self, status: int, text: str, kind: str = "text/html; charset=utf-8") -> None:
            data = text.encode()
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            for name, value in site.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield site
    server.shutdown()
    server.server_close()


@pytest.fixture
def host(site: StaticHost) -> StaticHost:
    """The module's static host with no pages, headers or posts yet."""
    site.pages.clear()
    site.headers.clear()
    site.posts.clear()
    return site


@pytest.fixture(scope="module")
def element_server(
    site: StaticHost, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """One s3drop (local backend) allowing the module's host, for the tests that need no token;
    each uploads bytes of its own and compares storage before and after."""
    server = module_server(tmp_path_factory, {"S3DROP_ALLOWED_ORIGINS": site.url})
    yield server
    server.stop()


def events(page: Page, kind: str) -> list[dict[str, Any]]:
    recorded: list[dict[str, Any]] = page.evaluate("window.events")
    return [event for event in recorded if event["type"] == kind]


def element_row(page: Page, name: str, element: str = "s3drop-uploader") -> Any:
    return page.locator(f'{element} li.file[data-name="{name}"]')


# --- sizes ------------------------------------------------------------------------------------


def test_format_size_matches_the_shared_table(page: Page, shared_server: LiveServer) -> None:
    """The element's formatSize against tests/sizes.json (the Python formatter's table too)."""
    page.goto(shared_server.url)
    written = page.evaluate(
        """async (cases) => {
            const module = await import("./static/s3drop-uploader.js");
            return cases.map(([size]) => module.formatSize(size));
        }""",
        SIZES["cases"],
    )
    assert written == [text for _, text in SIZES["cases"]]


# --- another origin, on each backend ----------------------------------------------------------


@dataclass
class Api:
    """s3drop serving a host on another origin, and what it holds in storage."""

    server: LiveServer
    stored: Callable[[], list[str]]


@pytest.fixture(params=["local", "rgw"])
def api_for_host(
    request: pytest.FixtureRequest, host: StaticHost, make_server: Callable[..., LiveServer]
) -> Api:
    allowed = {"S3DROP_ALLOWED_ORIGINS": host.url}
    if request.param == "local":
        server = request.getfixturevalue("element_server")
        return Api(server, lambda: sorted(stored_objects(server)))
    rgw: RGW = request.getfixturevalue("rgw")
    bucket: str = request.getfixturevalue("bucket")
    server = make_server(env={**rgw.env(bucket), **allowed})
    bucket_ready(rgw, bucket, host.url)  # the browser posts to RGW from the host's origin
    return Api(server, lambda: bucket_keys(rgw, bucket))


def test_element_on_another_origin_reports_accepted_and_rejected_files(
    page: Page, host: StaticHost, api_for_host: Api
) -> None:
    server = api_for_host.server
    (html,) = SNIPPETS["html"]
    (events_js,) = [js for js in SNIPPETS["js"] if "s3drop:accepted" in js]
    (css,) = SNIPPETS["css"]
    host.pages["/"] = host_page(
        server.url,
        head=f"<script>{RECORDER}</script>",
        css=css,
        body=f'{html}\n<script type="module">\n{events_js}\n</script>',
    )
    logged: list[str] = []
    page.on("console", lambda message: logged.append(message.text))
    page.goto(host.url)
    expect(page.locator("s3drop-uploader #dropzone-limits")).to_have_text(
        "PNG or JPEG · up to 10 MiB each · up to 4 files"
    )
    assert page.locator("s3drop-uploader #file-input").get_attribute("accept") == (
        "image/png,.png,image/jpeg,.jpg,.jpeg"
    )
    before = api_for_host.stored()
    good = gradient_png(61)
    fake = b"<!doctype html><title>not a picture</title>" + b" " * 200
    page.set_input_files(
        "s3drop-uploader #file-input",
        files=[
            payload("lighthouse.png", good),
            payload("fake.png", fake),
            payload("clip.mov", b"\0\0\0\x14ftypqt  " + bytes(64), "video/quicktime"),
        ],
    )
    final_state(element_row(page, "lighthouse.png"), "done", timeout=30_000)
    rejected_message = final_state(element_row(page, "fake.png"), "rejected", timeout=30_000)
    refused_message = final_state(element_row(page, "clip.mov"), "refused")

    # accepted: the image exactly as the API describes it (signed URLs aside: they are re-signed).
    (accepted,) = events(page, "s3drop:accepted")
    assert accepted["file"] == "lighthouse.png"
    image = accepted["image"]
    with server.client() as client:
        described = client.get(f"/api/images/{image['id']}").json()["image"]
    for signed in ("url", "thumbnail_url"):
        assert urlsplit(image.pop(signed)).path == urlsplit(described.pop(signed)).path
    # Its srcset is ready for the host's page: the API's, the URLs absolute (another origin).
    (url, descriptor), (given, expected) = (
        image.pop("srcset").split(" "),
        described.pop("srcset").split(" "),
    )
    absolute = urlsplit(urljoin(f"{server.url}/api/", given))
    assert (urlsplit(url)[:3], descriptor) == (absolute[:3], expected)
    assert absolute.netloc  # never relative to the host's page
    assert image == described
    assert image["filename"] == "lighthouse.png"
    assert (image["width"], image["height"], image["bytes"]) == (300, 200, len(good))
    assert page.evaluate("document.querySelector('s3drop-uploader').value") == [image["id"]]
    assert page.evaluate("document.querySelector('s3drop-uploader').images[0].id") == image["id"]
    assert page.evaluate("document.querySelector('s3drop-uploader').matches(':state(ready)')")
    assert page.evaluate("document.querySelector('s3drop-uploader').apiBase.href") == (
        f"{server.url}/api/"
    )
    states = [e["state"] for e in events(page, "s3drop:progress") if e["file"] == "lighthouse.png"]
    assert states[-1] == "done"
    assert {"queued", "uploading", "verifying"} <= set(states[:-1])

    # rejected: by the server after upload (with its code), and in the browser before any upload.
    reasons = {event["file"]: event for event in events(page, "s3drop:rejected")}
    assert sorted(reasons) == ["clip.mov", "fake.png"]
    assert reasons["fake.png"]["code"] == "not_an_image"
    assert reasons["fake.png"]["message"] == rejected_message
    assert rejected_message.startswith("Rejected: ")
    assert reasons["clip.mov"]["code"] == "type_not_allowed"
    assert reasons["clip.mov"]["message"] == refused_message
    assert refused_message == "Not an allowed type: video/quicktime. Allowed: PNG, JPEG"
    assert events(page, "s3drop:failed") == []

    # The README's listeners ran in the host page.
    assert f"stored {image['id']} lighthouse.png 300x200" in logged
    refused_lines = [line for line in logged if line.startswith("refused ")]
    assert sorted(refused_lines) == sorted(
        [
            f"refused fake.png not_an_image {rejected_message}",
            f"refused clip.mov type_not_allowed {refused_message}",
        ]
    )

    # Nothing of the rejected files is stored: only the accepted image's objects are new.
    new = sorted(set(api_for_host.stored()) - set(before))
    assert new, "nothing stored for the accepted image"
    marker = f"digests/anonymous/{hashlib.sha256(good).hexdigest()}"  # for duplicates
    assert all(image["id"] in key for key in new if key != marker), new
    assert marker in new

    # The README's styling reached inside the shadow root.
    dropzone = page.locator("s3drop-uploader #dropzone")
    assert dropzone.evaluate("e => getComputedStyle(e).padding") == "28px 16px"
    choose = page.locator("s3drop-uploader #choose-label")
    assert choose.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(15, 118, 110)"
    done = element_row(page, "lighthouse.png")
    assert done.evaluate("e => getComputedStyle(e).borderTopColor") == "rgb(15, 118, 110)"


# --- inside a form ----------------------------------------------------------------------------

FORM_CSS = """
:root { color-scheme: light dark; font-family: system-ui, sans-serif; }
body { max-width: 640px; margin: 40px auto; padding: 0 20px; background: Canvas; color: CanvasText; }
h1 { font-size: 1.5rem; margin-bottom: 4px; }
p.lead { margin-top: 0; color: GrayText; }
label.field { display: block; font-weight: 600; margin: 18px 0 6px; }
input[type=text] { box-sizing: border-box; width: 100%; padding: 8px 10px; font: inherit; border: 1px solid #cdd3dc;
                   border-radius: 8px; }
button.publish { margin-top: 18px; padding: 10px 18px; font: inherit; font-weight: 600;
                 border: 0; border-radius: 8px; background: #18202b; color: #fff; }
"""


def form_page(api: str) -> str:
    (html,) = SNIPPETS["html"]
    (token_js,) = [js for js in SNIPPETS["js"] if "uploader.headers" in js]
    form = html.split("<form", 1)[1]
    script_tag = html.split("<form", 1)[0]
    body = f"""{script_tag}
<h1>New post</h1>
<p class="lead">Share a few photos from your trip.</p>
<form{
        form.replace(
            "<s3drop-uploader",
            '<label class="field" for="title">Title</label>'
            '<input type="text" id="title" name="title" value="Harbour walk">'
            '<label class="field">Photos</label><s3drop-uploader',
            1,
        ).replace("<button>", '<button class="publish">')
    }
<script type="module">
{token_js}
</script>"""
    return host_page(api, head=f"<script>{RECORDER}</script>", css=FORM_CSS, body=body)


def test_element_in_a_form_submits_the_accepted_ids(
    page: Page, host: StaticHost, make_server: Callable[..., LiveServer]
) -> None:
    token = "s3drop-element-token-0123456789"
    server = make_server(
        env={"S3DROP_ALLOWED_ORIGINS": host.url, "S3DROP_TOKENS": f"writer:{token}"}
    )
    host.pages["/"] = form_page(server.url)
    page.context.add_init_script(f"sessionStorage.setItem('token', {json.dumps(token)})")
    page.goto(host.url)
    uploader = page.locator("s3drop-uploader")
    expect(uploader.locator("#dropzone-limits")).to_contain_text("up to 4 files")

    # required: an empty uploader keeps the form from submitting.
    page.get_by_role("button", name="Publish").click()
    assert page.evaluate("document.querySelector('form').checkValidity()") is False
    assert uploader.evaluate("e => e.validationMessage") == "Add at least one image"
    page.wait_for_timeout(200)
    assert host.posts == []

    names = [f"harbour-{n}.png" for n in range(5)]
    page.set_input_files(
        "s3drop-uploader #file-input",
        files=[payload(name, gradient_png(70 + n)) for n, name in enumerate(names)],
    )
    for name in names[:4]:
        final_state(element_row(page, name), "done", timeout=30_000)
    too_many = final_state(element_row(page, names[4]), "refused")
    assert too_many == "Too many files: this takes at most 4 files"
    (refusal,) = events(page, "s3drop:rejected")
    assert (refusal["file"], refusal["code"]) == (names[4], "too_many_files")

    accepted = {event["file"]: event["image"]["id"] for event in events(page, "s3drop:accepted")}
    assert sorted(accepted) == names[:4]
    with server.client(headers={"Authorization": f"Bearer {token}"}) as client:
        listed = [image["id"] for image in client.get("/api/images").json()["images"]]
    assert sorted(listed) == sorted(accepted.values())  # stored under the token's owner

    # Removing a file takes its id out of the form value (the image stays stored).
    element_row(page, names[1]).get_by_role(
        "button", name=f"Remove {names[1]} from the list"
    ).click()
    (removed,) = events(page, "s3drop:removed")
    assert removed["file"] == names[1]
    assert removed["image"]["id"] == accepted[names[1]]
    kept = [accepted[name] for name in (names[0], names[2], names[3])]
    assert uploader.evaluate("e => e.value") == kept
    assert uploader.evaluate("e => e.validity.valid") is True
    assert len(events(page, "change")) == 5  # four accepted, one removed

    page.mouse.move(0, 0)
    screenshot(page, "element-in-form.png", full_page=True)
    page.emulate_media(color_scheme="dark")
    screenshot(page, "element-in-form-dark.png", full_page=True)
    page.emulate_media(color_scheme="light")
    page.set_viewport_size({"width": 390, "height": 844})
    screenshot(page, "element-in-form-narrow.png", full_page=True)
    page.set_viewport_size({"width": 1200, "height": 900})

    with page.expect_navigation():
        page.get_by_role("button", name="Publish").click()
    ((path, fields),) = host.posts
    assert path == "/posts"
    assert fields == [("title", "Harbour walk"), *[("photos", image_id) for image_id in kept]]


# --- keyboard ---------------------------------------------------------------------------------


def test_element_by_keyboard_replaces_a_single_image(
    page: Page, host: StaticHost, element_server: LiveServer
) -> None:
    server = element_server
    host.pages["/"] = host_page(
        server.url,
        head=f"<script>{RECORDER}</script>",
        body=f'<script type="module" src="{server.url}/static/s3drop-uploader.js"></script>\n'
        '<form><s3drop-uploader name="avatar" required></s3drop-uploader></form>',
    )
    first, second = gradient_png(81), gradient_png(82)
    page.on("filechooser", lambda chooser: None)
    page.goto(host.url)
    uploader = page.locator("s3drop-uploader")
    expect(uploader.locator("#dropzone-limits")).to_have_text(
        "PNG or JPEG · up to 10 MiB each · one file"
    )
    expect(uploader.locator("#choose-label")).to_have_text("Choose a file")
    page.keyboard.press("Tab")
    expect(uploader.locator("#dropzone")).to_be_focused()
    expect(
        uploader.get_by_role("button", name="Drop images here, paste, or choose files")
    ).to_be_focused()
    with page.expect_file_chooser() as chooser:
        page.keyboard.press("Enter")
    assert not chooser.value.is_multiple()
    chooser.value.set_files([payload("me.png", first)])
    final_state(element_row(page, "me.png"), "done")
    first_id = uploader.evaluate("e => e.value[0]")

    # Space picks again; a single uploader swaps the image (the old one leaves the value).
    with page.expect_file_chooser() as chooser:
        page.keyboard.press(" ")
    chooser.value.set_files([payload("me-2.png", second)])
    final_state(element_row(page, "me-2.png"), "done")
    expect(element_row(page, "me.png")).to_have_count(0)
    second_id = uploader.evaluate("e => e.value[0]")
    assert second_id != first_id
    assert uploader.evaluate("e => e.value") == [second_id]
    assert [event["file"] for event in events(page, "s3drop:removed")] == ["me.png"]

    # Remove it by keyboard: focus goes back to the drop zone and the form is invalid again.
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    remove = element_row(page, "me-2.png").get_by_role(
        "button", name="Remove me-2.png from the list"
    )
    expect(remove).to_be_focused()
    page.keyboard.press("Enter")
    expect(element_row(page, "me-2.png")).to_have_count(0)
    expect(uploader.locator("#dropzone")).to_be_focused()
    assert uploader.evaluate("e => e.value") == []
    assert uploader.evaluate("e => e.validity.valueMissing") is True
    assert [event["file"] for event in events(page, "s3drop:removed")] == ["me.png", "me-2.png"]
    expect(uploader.locator("#live")).to_contain_text("me-2.png: Done")
    stored = list(stored_objects(server))  # both images stay stored: removing is not deleting
    for image_id in (first_id, second_id):
        assert any(key.startswith(f"images/{image_id}.") for key in stored), stored


# --- attributes, a self-hosted copy, a strict policy ------------------------------------------

STATIC = ROOT / "src" / "s3drop" / "web" / "static"


def test_self_hosted_copy_with_api_accept_theme_and_disabled_under_a_strict_csp(
    page: Page, host: StaticHost, element_server: LiveServer
) -> None:
    """The module copied into the host's own static folder (so ``api`` must say where the API
    is), on a page whose Content-Security-Policy allows no inline script or style at all."""
    server = element_server
    host.headers["Content-Security-Policy"] = (
        f"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: {server.url}; "
        f"connect-src 'self' {server.url}; object-src 'none'; base-uri 'none'"
    )
    host.pages["/static/s3drop-uploader.js"] = (STATIC / "s3drop-uploader.js").read_text()
    host.pages["/recorder.js"] = RECORDER
    host.pages["/"] = host_page(
        server.url,
        head='<script src="/recorder.js"></script>',
        body='<script type="module" src="/static/s3drop-uploader.js"></script>\n'
        f'<s3drop-uploader api="{server.url}/api" accept="image/png" theme="dark" multiple>'
        "</s3drop-uploader>",
    )
    chooser_opened: list[object] = []
    page.on("filechooser", lambda chooser: chooser_opened.append(chooser))
    page.goto(host.url)
    uploader = page.locator("s3drop-uploader")
    expect(uploader.locator("#dropzone-limits")).to_have_text("PNG · up to 10 MiB each")
    assert uploader.locator("#file-input").get_attribute("accept") == "image/png,.png"
    # theme="dark" on a light page: the element's own dark surface.
    dropzone = uploader.locator("#dropzone")
    assert dropzone.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(23, 28, 35)"

    jpeg = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 40, 40)).save(jpeg, "JPEG")
    png = gradient_png(91)
    page.set_input_files(
        "s3drop-uploader #file-input",
        files=[payload("red.jpg", jpeg.getvalue(), "image/jpeg"), payload("ok.png", png)],
    )
    assert final_state(element_row(page, "red.jpg"), "refused") == (
        "Not an allowed type: image/jpeg. Allowed: PNG"
    )
    final_state(element_row(page, "ok.png"), "done")
    assert [e["code"] for e in events(page, "s3drop:rejected")] == ["type_not_allowed"]
    assert_stored(server, {"ok.png": png})
    assert not any(key.endswith(".jpg") for key in stored_objects(server))

    # s3drop:add is cancelable: the host keeps files out before anything happens.
    page.evaluate(
        """document.querySelector("s3drop-uploader").addEventListener("s3drop:add", (event) => {
            if (event.detail.files.some((file) => file.name.startsWith("private"))) {
                event.preventDefault();
            }
        })"""
    )
    drop_files(page, [("private.png", gradient_png(93), "image/png")])
    page.wait_for_timeout(200)
    expect(element_row(page, "private.png")).to_have_count(0)
    drop_files(page, [("public.png", gradient_png(94), "image/png")])  # the control
    final_state(element_row(page, "public.png"), "done")

    # disabled: nothing new is taken, by drop or by keyboard.
    uploader.evaluate("e => e.setAttribute('disabled', '')")
    expect(dropzone).to_have_attribute("aria-disabled", "true")
    drop_files(page, [("late.png", gradient_png(92), "image/png")])
    dropzone.focus()
    page.keyboard.press("Enter")
    page.wait_for_timeout(300)
    assert chooser_opened == []
    uploader.evaluate("e => e.removeAttribute('disabled')")  # the control: enabled, it opens
    dropzone.focus()
    with page.expect_file_chooser():  # waited for, not a fixed time
        page.keyboard.press("Enter")
    assert len(chooser_opened) == 1
    expect(element_row(page, "late.png")).to_have_count(0)
    assert len(uploader.evaluate("e => e.value")) == 2
