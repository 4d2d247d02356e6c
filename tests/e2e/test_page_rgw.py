"""The upload page in a real browser against s3drop on Ceph RGW: the browser posts cross-origin.

The page is served by s3drop on ``http://127.0.0.1:<port>``; the signed form goes straight to RGW
on another port, so the browser's CORS rules apply for real: an XMLHttpRequest with an upload
progress listener is preflighted, and RGW must allow the page's origin (``s3drop bucket init
--origin``). The stored bytes are then read back from RGW with boto3, and the gallery's thumbnails
load from presigned RGW URLs. Without ``bucket init`` (no CORS) the same upload must fail in the
page, with a clear message, and leave the bucket empty.

The page fixture (tests/e2e/conftest.py) fails a test on any JavaScript error or
Content-Security-Policy violation, so these tests also prove the CSP lets the page reach RGW.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, Request, Route, expect

from s3drop._bucket import init_bucket, open_bucket
from s3drop._config import Settings
from s3drop._placeholders import Placeholder
from s3drop._policy import image_key
from tests.conftest import RGW, LiveServer, isolate
from tests.e2e.conftest import module_server
from tests.e2e.test_page import (
    final_state,
    gradient_png,
    open_page,
    payload,
    row,
    screenshot,
    sign_requests,
)

pytestmark = [pytest.mark.browser, pytest.mark.s3]


def bucket_init(rgw: RGW, bucket: str, origin: str) -> list[dict[str, str]]:
    """``s3drop bucket init --origin <origin> --json`` in a subprocess, as an operator runs it."""
    result = subprocess.run(
        [sys.executable, "-m", "s3drop", "bucket", "init", "--origin", origin, "--json"],
        env={**os.environ, **rgw.env(bucket)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    steps: list[dict[str, str]] = json.loads(result.stdout)
    return steps


def bucket_ready(rgw: RGW, bucket: str, origin: str) -> None:
    """What ``bucket init --origin`` does (private, CORS for ``origin``, the quarantine's
    lifecycle), by the library in this process: for tests whose point is not the command (the
    first test below runs the command itself), without a Python start of its own."""
    with pytest.MonkeyPatch.context() as patch:
        isolate(patch)
        for name, value in rgw.env(bucket).items():
            patch.setenv(name, value)
        init_bucket(open_bucket(Settings(_env_file=None)), origins=[origin])


def bucket_keys(rgw: RGW, bucket: str) -> list[str]:
    answer = rgw.client().list_objects_v2(Bucket=bucket)
    return sorted(item["Key"] for item in answer.get("Contents", []))


@dataclass
class Preflight:
    """One CORS preflight the browser sent to storage, and what storage answered."""

    url: str
    request_headers: dict[str, str] = field(default_factory=dict)
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)  # names in lower case


class StorageTraffic:
    """What the browser sent to storage and what storage answered, CORS preflights included.

    Playwright's request events leave preflights out; Chromium's DevTools protocol shows them
    (as OPTIONS requests whose headers come in the ``...ExtraInfo`` events).
    """

    def __init__(self, page: Page, endpoint: str) -> None:
        self.endpoint = endpoint
        self.posts: list[Request] = []
        self.failed: list[str] = []
        self.cors_errors: list[str] = []  # Chromium's reason for each request CORS stopped
        self._ours_ids: set[str] = set()
        self._preflights: dict[str, Preflight] = {}
        self._sent_headers: dict[str, dict[str, str]] = {}
        self._answers: dict[str, tuple[int, dict[str, str]]] = {}
        cdp = page.context.new_cdp_session(page)
        cdp.on("Network.requestWillBeSent", self._sent)
        cdp.on("Network.requestWillBeSentExtraInfo", self._sent_extra)
        cdp.on("Network.responseReceivedExtraInfo", self._received_extra)
        cdp.on("Network.loadingFailed", self._loading_failed)
        cdp.send("Network.enable")
        page.on("request", self._request)
        page.on("requestfailed", self._request_failed)

    @property
    def preflights(self) -> list[Preflight]:
        for request_id, preflight in self._preflights.items():
            preflight.request_headers = self._sent_headers.get(request_id, {})
            preflight.status, preflight.headers = self._answers.get(request_id, (None, {}))
        return list(self._preflights.values())

    def _ours(self, url: str) -> bool:
        return url.startswith(self.endpoint)

    def _sent(self, event: dict[str, Any]) -> None:
        request = event["request"]
        if not self._ours(request["url"]):
            return
        self._ours_ids.add(event["requestId"])
        if request["method"] == "OPTIONS":
            self._preflights[event["requestId"]] = Preflight(request["url"])

    def _sent_extra(self, event: dict[str, Any]) -> None:
        self._sent_headers[event["requestId"]] = event["headers"]

    def _received_extra(self, event: dict[str, Any]) -> None:
        headers = {name.lower(): value for name, value in event["headers"].items()}
        self._answers[event["requestId"]] = (event["statusCode"], headers)

    def _loading_failed(self, event: dict[str, Any]) -> None:
        cors = event.get("corsErrorStatus")
        if cors and event["requestId"] in self._ours_ids:
            self.cors_errors.append(cors["corsError"])

    def _request(self, request: Request) -> None:
        if request.method == "POST" and self._ours(request.url):
            self.posts.append(request)

    def _request_failed(self, request: Request) -> None:
        if self._ours(request.url):
            self.failed.append(f"{request.method} {request.url}: {request.failure}")


def test_page_posts_cross_origin_to_rgw_and_the_bytes_are_stored(
    page: Page, rgw: RGW, bucket: str, make_server: Callable[..., LiveServer]
) -> None:
    server = make_server(env=rgw.env(bucket))
    steps = {step["name"]: step for step in bucket_init(rgw, bucket, server.url)}
    assert steps["CORS"]["outcome"] == "updated"
    assert server.url in steps["CORS"]["detail"]
    originals = {"fjord.png": gradient_png(41), "dune at noon.png": gradient_png(42)}
    traffic = StorageTraffic(page, rgw.endpoint)

    headers = open_page(page, server)
    policy = headers["content-security-policy"]
    assert f"connect-src 'self' {rgw.endpoint}" in policy
    assert f"img-src 'self' {rgw.endpoint}" in policy
    page.set_input_files(
        "#file-input", files=[payload(name, data) for name, data in originals.items()]
    )
    for name in originals:
        message = final_state(row(page, name), "done", timeout=30_000)
        assert message == "Done \u00b7 300 \u00d7 200", message

    # The browser posted each form straight to RGW, after a preflight RGW allowed.
    assert [request.url for request in traffic.posts] == [f"{rgw.endpoint}/{bucket}"] * 2
    for request in traffic.posts:
        response = request.response()
        assert response is not None
        assert response.status == 204
        assert response.headers["access-control-allow-origin"] == server.url
    assert traffic.failed == []
    preflights = traffic.preflights
    assert preflights, "the browser sent no CORS preflight to RGW"
    for preflight in preflights:
        assert preflight.url == f"{rgw.endpoint}/{bucket}"
        assert preflight.request_headers["Origin"] == server.url
        assert preflight.request_headers["Access-Control-Request-Method"] == "POST"
        assert preflight.status == 200, preflight
        assert preflight.headers["access-control-allow-origin"] == server.url
        assert "POST" in preflight.headers["access-control-allow-methods"]
    assert traffic.cors_errors == []

    # RGW holds the exact bytes under images/<id>.<width>x<height>.<bytes>.n<name>.p<thumbhash>.c<colour>.png, a thumbnail and
    # an entry in the owner's index per image, nothing in quarantine.
    with server.client() as client:
        answer = client.get("/api/images", params={"limit": 10})
        assert answer.status_code == 200
        listed = answer.json()["images"]
        details = [client.get(f"/api/images/{image['id']}").json()["image"] for image in listed]
    images = {image["filename"]: image for image in details}
    assert sorted(images) == sorted(originals)
    s3 = rgw.client()
    names = {}
    for name, data in originals.items():
        image_id = images[name]["id"]
        names[image_id] = image_key(
            image_id,
            "image/png",
            width=300,
            height=200,
            size=len(data),
            filename=name,
            placeholder=Placeholder.from_dict(images[name]["placeholder"]),
        ).removeprefix("images/")
        stored = s3.get_object(Bucket=bucket, Key=f"images/{names[image_id]}")
        assert stored["Body"].read() == data, name
        assert stored["ContentType"] == "image/png"
        thumb = s3.head_object(Bucket=bucket, Key=f"thumbs/{image_id}.webp")
        assert thumb["ContentLength"] > 0
        assert thumb["ContentType"] == "image/webp"
    assert bucket_keys(rgw, bucket) == sorted(
        [f"images/{n}" for n in names.values()]
        + [f"owners/anonymous/{n}" for n in names.values()]
        + [f"thumbs/{i}.webp" for i in names]
        # the duplicate markers, named by the SHA-256 of the bytes uploaded
        + [f"digests/anonymous/{hashlib.sha256(data).hexdigest()}" for data in originals.values()]
    )

    # The gallery shows both, its thumbnails loaded from presigned RGW URLs.
    expect(page.locator(".tile")).to_have_count(2)
    tiles = page.locator(".tile-img")
    for source in tiles.evaluate_all("imgs => imgs.map(i => i.src)"):
        assert source.startswith(f"{rgw.endpoint}/{bucket}/thumbs/"), source
        assert "X-Amz-Signature=" in source
    page.wait_for_function(
        "() => [...document.querySelectorAll('.tile-img')]"
        ".every(i => i.complete && i.naturalWidth > 0)"
    )
    page.mouse.move(0, 0)
    path = screenshot(page, "upload-page-rgw.png", full_page=True)
    assert path.stat().st_size > 10_000

    # Full size, from a presigned RGW URL too (with its Content-Disposition override).
    fjord = images["fjord.png"]["id"]
    page.locator(f'.tile[data-id="{fjord}"] .tile-open').click()
    expect(page.locator("#viewer")).to_be_visible()
    expect(page.locator("#viewer-title")).to_have_text("fjord.png")
    source = page.locator("#viewer-img").get_attribute("src", timeout=1000)
    assert source is not None
    assert source.startswith(f"{rgw.endpoint}/{bucket}/images/{names[fjord]}?"), source
    original = page.locator("#viewer-open").get_attribute("href", timeout=1000)
    assert original is not None
    assert "response-content-disposition=inline%3B%20filename%2A%3DUTF-8%27%27fjord.png" in original
    served = httpx.get(original, timeout=30)
    assert served.status_code == 200
    assert served.headers["content-disposition"] == "inline; filename*=UTF-8''fjord.png"
    assert served.content == originals["fjord.png"]
    page.wait_for_function("() => document.getElementById('viewer-img').naturalWidth === 300")
    page.keyboard.press("Escape")
    # A reload starts a fresh record: check this page's first.
    assert page.evaluate("window.__cspViolations") == []

    page.reload()  # a fresh list from the server: the same two, still loading from RGW
    expect(page.locator(".tile")).to_have_count(2)
    page.wait_for_function(
        "() => [...document.querySelectorAll('.tile-img')]"
        ".every(i => i.complete && i.naturalWidth > 0)"
    )


@dataclass
class NoCors:
    server: LiveServer
    bucket: str


@pytest.fixture(scope="module")
def no_cors(rgw: RGW, tmp_path_factory: pytest.TempPathFactory) -> Iterator[NoCors]:
    """s3drop on a bucket `bucket init` never set CORS on, for the tests that store nothing."""
    bucket = f"t-nocors-{secrets.token_hex(4)}"
    rgw.client().create_bucket(Bucket=bucket)
    server = module_server(tmp_path_factory, rgw.env(bucket))
    yield NoCors(server, bucket)
    server.stop()
    rgw.client().delete_bucket(Bucket=bucket)  # empty: both tests prove nothing was stored


def test_without_cors_on_the_bucket_the_page_explains_and_nothing_is_stored(
    page: Page, rgw: RGW, no_cors: NoCors
) -> None:
    """The negative control: the same upload to a bucket `bucket init` never set CORS on."""
    server, bucket = no_cors.server, no_cors.bucket
    s3 = rgw.client()
    with pytest.raises(s3.exceptions.ClientError, match="NoSuchCORSConfiguration"):
        s3.get_bucket_cors(Bucket=bucket)
    signs = sign_requests(page)
    traffic = StorageTraffic(page, rgw.endpoint)
    open_page(page, server)
    page.set_input_files("#file-input", files=[payload("no-cors.png", gradient_png(43))])

    item = row(page, "no-cors.png")
    assert final_state(item, "failed") == "Network error: storage could not be reached"
    expect(item.locator(".message")).to_be_visible()
    expect(item.get_by_role("button", name="Retry upload of no-cors.png")).to_be_visible()
    # The server signed the form; the browser's preflight to RGW was refused, so the form itself
    # never left the browser.
    (sign,) = signs
    signed = sign.response()
    assert signed is not None
    assert signed.status == 201
    (preflight,) = traffic.preflights
    assert preflight.request_headers["Origin"] == server.url
    assert preflight.status == 403, preflight
    assert "access-control-allow-origin" not in preflight.headers
    assert traffic.cors_errors == ["PreflightMissingAllowOriginHeader"]
    assert traffic.failed == [f"POST {rgw.endpoint}/{bucket}: net::ERR_FAILED"]
    assert bucket_keys(rgw, bucket) == []
    expect(page.locator(".tile")).to_have_count(0)


def test_the_csp_recorder_sees_a_policy_without_the_storage_origin(
    page: Page, rgw: RGW, no_cors: NoCors
) -> None:
    """A control for the other tests' clean CSP record: with RGW's origin cut out of the policy
    the app sends, the browser blocks the post to RGW and the page fixture's recorder sees it."""
    server, bucket = no_cors.server, no_cors.bucket

    def narrow(route: Route) -> None:
        response = route.fetch()
        headers = response.headers
        assert rgw.endpoint in headers["content-security-policy"]
        headers["content-security-policy"] = headers["content-security-policy"].replace(
            f" {rgw.endpoint}", ""
        )
        route.fulfill(response=response, headers=headers)

    page.route(f"{server.url}/", narrow)
    traffic = StorageTraffic(page, rgw.endpoint)
    open_page(page, server)
    page.set_input_files("#file-input", files=[payload("blocked.png", gradient_png(44))])
    assert final_state(row(page, "blocked.png"), "failed").startswith("Network error")
    violations = page.evaluate("window.__cspViolations")
    assert violations == [f"connect-src blocked {rgw.endpoint}/{bucket}"]
    assert traffic.preflights == []  # blocked before anything left the browser
    assert bucket_keys(rgw, bucket) == []
    page.evaluate("window.__cspViolations = []")  # seen and asserted: not a failure here
