"""The uploader element in Chromium: a duplicate refused before any byte is sent, and the optional
downscale before upload, on the local backend and on Ceph RGW.

Storage POSTs are intercepted with Playwright's routing (a POST to storage is recorded, then let
through or, once the first copy is in, aborted), so "nothing was posted" is what the browser did,
and the storage listing before and after proves nothing was stored.
"""

from __future__ import annotations

import hashlib
import io
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from PIL import Image
from playwright.sync_api import Page, Route, expect

from s3drop._policy import parse_image_key
from tests import samples
from tests.conftest import RGW, LiveServer
from tests.e2e.conftest import module_server
from tests.e2e.test_page import (
    final_state,
    gradient_png,
    open_page,
    payload,
    row,
    stored_objects,
)
from tests.e2e.test_page_rgw import bucket_keys, bucket_ready

pytestmark = pytest.mark.browser


@dataclass
class Served:
    """The bundled page on one backend: where the browser posts files, and what storage holds."""

    server: LiveServer
    endpoint: str
    stored: Callable[[], list[str]]
    read: Callable[[str], bytes]


#: The downscaling tests' settings; the byte limit is over-the-limit's (every other file these
#: tests send is far under 200 KiB).
DOWNSCALING = {
    "S3DROP_CLIENT_MAX_SIDE": "400",
    "S3DROP_CLIENT_QUALITY": "80",
    "S3DROP_MAX_BYTES": "200KiB",
}


class Servers:
    """The module's servers, one per backend and settings, started when a test first needs one:
    tests on one server use bytes of their own and compare storage before and after. The local
    backend with no settings is the session's default server (``shared_server``, emptied first)."""

    def __init__(self, request: pytest.FixtureRequest, tmp: pytest.TempPathFactory) -> None:
        self.request, self.tmp = request, tmp
        self.served: dict[tuple[str, tuple[tuple[str, str], ...]], Served] = {}
        self.buckets: list[str] = []
        self.started: list[LiveServer] = []  # stopped at the module's end (not the session's)

    def get(self, backend: str, env: dict[str, str] | None = None) -> Served:
        settings = tuple(sorted((env or {}).items()))
        if (backend, settings) not in self.served:
            self.served[backend, settings] = self._start(backend, env or {})
        return self.served[backend, settings]

    def _start(self, backend: str, env: dict[str, str]) -> Served:
        if backend == "local":
            if env:
                server = module_server(self.tmp, env)
                self.started.append(server)
            else:
                server = self.request.getfixturevalue("default_server")
            return Served(
                server,
                f"{server.url}/storage",
                lambda: sorted(stored_objects(server)),
                lambda key: stored_objects(server)[key],
            )
        rgw: RGW = self.request.getfixturevalue("rgw")
        bucket = f"t-dedupe-{secrets.token_hex(4)}"
        rgw.client().create_bucket(Bucket=bucket)
        self.buckets.append(bucket)
        server = module_server(self.tmp, {**rgw.env(bucket), **env})
        self.started.append(server)
        bucket_ready(rgw, bucket, server.url)  # the page posts to RGW from the server's origin
        client = rgw.client()
        return Served(
            server,
            rgw.endpoint,
            lambda: bucket_keys(rgw, bucket),
            lambda key: client.get_object(Bucket=bucket, Key=key)["Body"].read(),
        )

    def stop(self) -> None:
        for server in self.started:
            server.stop()
        if self.buckets:
            rgw: RGW = self.request.getfixturevalue("rgw")
            client = rgw.client()
            for bucket in self.buckets:
                for key in bucket_keys(rgw, bucket):
                    client.delete_object(Bucket=bucket, Key=key)
                client.delete_bucket(Bucket=bucket)


@pytest.fixture(scope="module")
def servers(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Servers]:
    started = Servers(request, tmp_path_factory)
    yield started
    started.stop()


@pytest.fixture(params=["local", pytest.param("rgw", marks=pytest.mark.s3)])
def served(request: pytest.FixtureRequest, servers: Servers) -> Served:
    if request.param == "local":
        request.getfixturevalue("shared_server")  # the session's default, emptied for this test
    return servers.get(request.param)


@pytest.fixture(params=["local", pytest.param("rgw", marks=pytest.mark.s3)])
def downscaling(request: pytest.FixtureRequest, servers: Servers) -> Served:
    return servers.get(request.param, DOWNSCALING)


class StoragePosts:
    """Every POST the page sends to storage, through a route: let through while ``allow``."""

    def __init__(self, page: Page, endpoint: str) -> None:
        self.sent: list[int] = []  # body sizes
        self.allow = True
        page.route(f"{endpoint}/**", self._route)
        page.route(endpoint, self._route)

    def _route(self, route: Route) -> None:
        request = route.request
        if request.method != "POST":
            route.continue_()
            return
        self.sent.append(len(request.post_data_buffer or b""))
        if self.allow:
            route.continue_()
        else:
            route.abort()


def test_a_duplicate_is_refused_before_any_byte_is_sent(page: Page, served: Served) -> None:
    data = gradient_png(91)
    posts = StoragePosts(page, served.endpoint)
    signs: list[int] = []
    page.on(
        "response",
        lambda response: (
            signs.append(response.status)
            if response.request.method == "POST" and response.url.endswith("/api/uploads")
            else None
        ),
    )
    open_page(page, served.server)
    page.set_input_files("s3drop-uploader #file-input", files=[payload("first.png", data)])
    final_state(row(page, "first.png"), "done", timeout=30_000)
    assert len(posts.sent) == 1
    assert signs == [201]
    before = served.stored()
    (image_id,) = page.evaluate("document.querySelector('s3drop-uploader').value")

    posts.allow = False  # had the element posted again, the post would fail and be counted
    page.evaluate(
        """() => { window.duplicates = [];
            document.addEventListener("s3drop:accepted", (event) => {
              if (event.detail.duplicate) window.duplicates.push(event.detail.image.id);
            }); }"""
    )
    page.set_input_files("s3drop-uploader #file-input", files=[payload("again.png", data)])
    message = final_state(row(page, "again.png"), "done", timeout=30_000)

    assert message == "Already in your gallery"
    assert signs == [201, 409]
    assert len(posts.sent) == 1  # not one byte more went to storage
    assert served.stored() == before
    assert page.evaluate("window.duplicates") == [image_id]
    again = row(page, "again.png")
    assert again.get_attribute("data-duplicate") == ""
    thumb = again.locator(".file-thumb")
    expect(thumb).to_be_visible()
    assert image_id in (thumb.get_attribute("src") or "")
    # The gallery shows the image once; the element's value holds it (the form gets its id).
    expect(page.locator(f'[data-id="{image_id}"]')).to_have_count(1)
    assert page.evaluate("document.querySelector('s3drop-uploader').value") == [image_id] * 2


def test_downscale_sends_an_upright_copy_at_the_configured_side(
    page: Page, downscaling: Served
) -> None:
    original = samples.oriented_jpeg(6, size=(1600, 960))  # stored on its side, 960 x 1600
    posts = StoragePosts(page, downscaling.endpoint)
    open_page(page, downscaling.server)
    page.set_input_files(
        "s3drop-uploader #file-input", files=[payload("phone.jpg", original, "image/jpeg")]
    )
    message = final_state(row(page, "phone.jpg"), "done", timeout=30_000)
    assert message == "Done \u00b7 400 \u00d7 240"
    (sent,) = posts.sent
    assert sent < len(original)
    (image_id,) = page.evaluate("document.querySelector('s3drop-uploader').value")
    (key,) = [key for key in downscaling.stored() if key.startswith(f"images/{image_id}.")]
    facts = parse_image_key(key)
    assert facts is not None
    assert (facts.width, facts.height, facts.content_type) == (400, 240, "image/jpeg")
    shown = Image.open(io.BytesIO(downscaling.read(key))).convert("RGB")
    assert shown.size == (400, 240)
    # Upright: the top-left quadrant has the top-left colour (sideways it would not).
    for corner, colour in (((8, 8), samples.TOP_LEFT), ((392, 232), samples.BOTTOM_RIGHT)):
        pixel = shown.getpixel(corner)
        assert isinstance(pixel, tuple)
        assert all(abs(a - b) < 32 for a, b in zip(pixel, colour, strict=True)), (corner, pixel)
    # The checksum signed is that of the bytes sent (else completion would refuse them).
    assert hashlib.sha256(original).hexdigest() not in "".join(downscaling.stored())
    # The same photo again makes the same copy: found at signing, nothing sent.
    page.set_input_files(
        "s3drop-uploader #file-input", files=[payload("again.jpg", original, "image/jpeg")]
    )
    assert final_state(row(page, "again.jpg"), "done", timeout=30_000) == "Already in your gallery"
    assert len(posts.sent) == 1


def test_downscale_is_off_by_default(page: Page, shared_server: LiveServer) -> None:
    server = shared_server
    original = samples.oriented_jpeg(6, size=(1600, 960))
    open_page(page, server)
    assert page.evaluate("document.querySelector('s3drop-uploader').config.client_max_side") is None
    page.set_input_files(
        "s3drop-uploader #file-input", files=[payload("phone.jpg", original, "image/jpeg")]
    )
    assert (
        final_state(row(page, "phone.jpg"), "done", timeout=30_000) == "Done \u00b7 1600 \u00d7 960"
    )


def test_a_file_over_the_limit_is_sent_when_its_downscaled_copy_is_within_it(
    page: Page, servers: Servers
) -> None:
    server = servers.get("local", DOWNSCALING).server
    big = samples.jpeg(7, size=(2400, 1600))  # noise: far over 200 KiB
    assert len(big) > 200 * 1024
    posts = StoragePosts(page, f"{server.url}/storage")
    open_page(page, server)
    page.set_input_files(
        "s3drop-uploader #file-input", files=[payload("big.jpg", big, "image/jpeg")]
    )
    assert final_state(row(page, "big.jpg"), "done", timeout=30_000) == "Done \u00b7 400 \u00d7 267"
    (sent,) = posts.sent
    assert sent < 200 * 1024
    size_shown = row(page, "big.jpg").locator(".file-size").inner_text()
    original, arrow, copy = size_shown.partition(" \u2192 ")  # "1.2 MiB → 21.4 KiB"
    assert (original.endswith(" MiB"), arrow, copy.endswith(" KiB")) == (True, " \u2192 ", True)


def test_an_opaque_png_is_downscaled_to_jpeg_when_webp_is_not_allowed(
    page: Page, servers: Servers
) -> None:
    server = servers.get("local", DOWNSCALING).server  # PNG and JPEG allowed
    open_page(page, server)
    page.set_input_files(
        "s3drop-uploader #file-input", files=[payload("shot.png", gradient_png(93, (1200, 800)))]
    )
    assert (
        final_state(row(page, "shot.png"), "done", timeout=30_000) == "Done \u00b7 400 \u00d7 267"
    )
    (image,) = page.evaluate("document.querySelector('s3drop-uploader').images")
    assert (image["format"], image["filename"]) == ("jpeg", "shot.jpg")
