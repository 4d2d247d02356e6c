"""Uppy and a plain fetch PUT in Chromium, from another origin, against s3drop on the local
backend and on Ceph RGW: the README's recipes ("Using Uppy or a plain fetch PUT"), run as written.

Uppy comes from npm (``scripts/test`` runs ``npm ci`` in ``tests/e2e/uppy``): Uppy 5.2.4 as its
own browser bundle, ``@uppy/core`` and ``@uppy/aws-s3`` 6.3.1 as npm ships them, joined into one
ES module by esbuild at install (no ``uppy`` bundle of 6.3 exists). A tiny static server on another
port serves the page: the README's helper, its postprocessor and one recipe in one module script,
the packages mapped by an import map. Each run uploads three files in one batch: a PNG (stored,
completed), a file named .png that is not an image (stored by storage, refused by complete: the
upload is deleted) and a text file (refused at signing). Refused files must show as failed in
Uppy with s3drop's own reason, and nothing of them may remain in storage.
"""

from __future__ import annotations

import base64
import re
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page

from tests import samples
from tests.conftest import RGW, LiveServer
from tests.e2e.conftest import empty_gallery, module_server
from tests.e2e.test_page_rgw import bucket_keys, bucket_ready

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
UPPY = Path(__file__).parent / "uppy"
README_API = "https://uploads.example.com"
PNG = samples.png(7, (64, 48))
FILES = [
    {"name": "cat.png", "type": "image/png", "data": PNG},
    {"name": "fake.png", "type": "image/png", "data": b"this is plain text, not an image\n"},
    {"name": "notes.txt", "type": "text/plain", "data": b"hello\n"},
]


# --- the README's snippets ---------------------------------------------------------------------


def readme_snippets() -> dict[str, str]:
    """The js blocks of "Using Uppy or a plain fetch PUT", by their first line (a comment)."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Using Uppy or a plain fetch PUT", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```js\n(.*?)```", section, re.DOTALL)
    return {block.splitlines()[0].removeprefix("// "): block for block in blocks}


SNIPPETS = readme_snippets()
HELPER = SNIPPETS["The helper: call s3drop's JSON API, throw its message on an error"]
POSTPROCESSOR = SNIPPETS[
    "Complete every upload in a postprocessor, so a refusal marks the file failed"
]
UPPY6 = SNIPPETS["Uppy 6.3+: @uppy/aws-s3 signRequest (PUT, or POST with method: 'POST')"]
UPPY5 = SNIPPETS["Uppy 5: @uppy/aws-s3 getUploadParameters with a POST form"]
UPPY5_RGW = SNIPPETS[
    "Uppy 5 on Ceph RGW: success_action_status 201, the ETag read from S3's XML answer"
]
FETCH_PUT = SNIPPETS["A plain fetch PUT"]

#: Appended to an Uppy recipe: add the files, upload, say what Uppy shows for each.
_RUN_UPPY = """
window.run = async (files, waitMs) => {
  for (const f of files) {
    const data = Uint8Array.from(atob(f.data), (c) => c.charCodeAt(0))
    uppy.addFile({ name: f.name, type: f.type, data: new Blob([data], { type: f.type }) })
  }
  const done = uppy.upload().then((result) => ({ finished: true, result }))
  const timeout = new Promise((resolve) => setTimeout(() => resolve({ finished: false }), waitMs))
  const outcome = await Promise.race([done, timeout])
  const files_ = uppy.getFiles().map((file) => ({
    name: file.name,
    error: file.error ?? null,
    percentage: file.progress.percentage ?? 0,
    complete: Boolean(file.progress.uploadComplete),
  }))
  const names = (list) => (list ?? []).map((file) => file.name).sort()
  return {
    finished: outcome.finished,
    successful: outcome.finished ? names(outcome.result.successful) : [],
    failed: outcome.finished ? names(outcome.result.failed) : [],
    files: files_,
  }
}
window.ready = true
"""

#: Appended to the fetch recipe: upload each file, say what happened.
_RUN_FETCH = """
window.run = async (files) => {
  const successful = [], failed = [], out = []
  for (const f of files) {
    const data = Uint8Array.from(atob(f.data), (c) => c.charCodeAt(0))
    const file = new File([data], f.name, { type: f.type })
    try {
      await uploadFile(file)
      successful.push(f.name)
      out.push({ name: f.name, error: null })
    } catch (error) {
      failed.push(f.name)
      out.push({ name: f.name, error: error.message })
    }
  }
  return { finished: true, successful: successful.sort(), failed: failed.sort(), files: out }
}
window.ready = true
"""


# --- serving the page from another origin -------------------------------------------------------


class _Handler(SimpleHTTPRequestHandler):
    extensions_map = {**SimpleHTTPRequestHandler.extensions_map, ".mjs": "text/javascript"}
    page = b""

    def do_GET(self) -> None:
        shims = {
            "/shim/6/core.mjs": "export { Uppy as default } from '/dist/uppy6.mjs'",
            "/shim/6/aws-s3.mjs": "export { AwsS3 as default } from '/dist/uppy6.mjs'",
            "/shim/5/core.mjs": (
                "export { Uppy as default } from '/node_modules/uppy5/dist/uppy.min.mjs'"
            ),
            "/shim/5/aws-s3.mjs": (
                "export { AwsS3 as default } from '/node_modules/uppy5/dist/uppy.min.mjs'"
            ),
        }
        if self.path == "/":
            self._send(self.server.page, "text/html; charset=utf-8")  # type: ignore[attr-defined]
        elif self.path in shims:
            self._send(shims[self.path].encode(), "text/javascript")
        else:
            super().do_GET()

    def _send(self, body: bytes, kind: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@dataclass
class PageServer:
    url: str
    server: ThreadingHTTPServer

    def show(self, page: Page, script: str, *, uppy: int | None) -> None:
        imports = (
            {"@uppy/core": f"/shim/{uppy}/core.mjs", "@uppy/aws-s3": f"/shim/{uppy}/aws-s3.mjs"}
            if uppy
            else {}
        )
        import_map = '{"imports": {' + ", ".join(f'"{k}": "{v}"' for k, v in imports.items())
        self.server.page = (  # type: ignore[attr-defined]
            "<!doctype html><html lang=en><title>Uppy and s3drop</title>"
            f'<script type="importmap">{import_map}}}}}</script>'
            f'<script type="module">\n{script}\n</script>'
        ).encode()
        page.goto(self.url + "/")
        page.wait_for_function("window.ready === true")


@pytest.fixture(scope="module")
def page_server() -> Iterator[PageServer]:
    if not (UPPY / "dist" / "uppy6.mjs").is_file() or not (UPPY / "node_modules").is_dir():
        pytest.fail(f"Uppy is not installed: run ./scripts/test (npm ci in {UPPY})")
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Handler, directory=str(UPPY)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield PageServer(f"http://127.0.0.1:{server.server_address[1]}", server)
    server.shutdown()
    server.server_close()


# --- the recipes --------------------------------------------------------------------------------

RECIPES: dict[str, tuple[str, int | None]] = {
    "uppy6-put": (UPPY6, 6),
    "uppy6-post": (UPPY6.replace("const method = 'PUT'", "const method = 'POST'"), 6),
    "uppy5-post": (UPPY5, 5),
    "uppy5-post-rgw": (UPPY5_RGW, 5),
    # The README's words: add method 'PUT' to the sign request, return { method: 'PUT', ... }.
    "uppy5-put": (
        UPPY5.replace(
            "size: file.size,\n    })", "size: file.size, method: 'PUT',\n    })"
        ).replace(
            "return { method: 'POST', url: upload.url, fields: upload.fields }",
            "return { method: 'PUT', url: upload.url, headers: upload.headers }",
        ),
        5,
    ),
    "fetch-put": (FETCH_PUT, None),
}


#: How each recipe sends the file to storage.
METHODS = {
    "uppy6-put": "PUT",
    "uppy6-post": "POST",
    "uppy5-post": "POST",
    "uppy5-post-rgw": "POST",
    "uppy5-put": "PUT",
    "fetch-put": "PUT",
}


def run_recipe(
    page: Page, pages: PageServer, api: str, recipe: str, wait_ms: int, storage: str
) -> Any:
    """Run ``recipe`` against the s3drop at ``api``; checks that the two files signed went to
    ``storage`` (the URL prefix of storage) with the recipe's method."""
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.method) if r.url.startswith(storage) else None)
    snippet, uppy = RECIPES[recipe]
    assert recipe != "uppy6-post" or "const method = 'POST'" in snippet
    assert recipe != "uppy5-put" or snippet.count("'PUT'") == 2
    script = HELPER + POSTPROCESSOR + snippet + (_RUN_UPPY if uppy else _RUN_FETCH)
    pages.show(page, script.replace(README_API, api), uppy=uppy)
    files = [{**f, "data": base64.b64encode(f["data"]).decode()} for f in FILES]
    outcome = page.evaluate("([files, wait]) => window.run(files, wait)", [files, wait_ms])
    assert sent == [METHODS[recipe]] * 2, sent
    return outcome


def assert_outcome(outcome: Any) -> None:
    """The PNG stored and completed; the other two failed, each with s3drop's own reason."""
    assert outcome["finished"], outcome
    assert outcome["successful"] == ["cat.png"], outcome
    assert outcome["failed"] == ["fake.png", "notes.txt"], outcome
    errors = {file["name"]: file["error"] for file in outcome["files"]}
    assert errors["cat.png"] is None
    assert "the file is a text file, not an image" in errors["fake.png"], errors
    assert "text/plain is not allowed" in errors["notes.txt"], errors


def assert_only_the_image_stored(keys: list[str]) -> None:
    """One image (its thumbnail and owner entry beside it), nothing of the refused files."""
    assert not [key for key in keys if key.startswith("incoming/")], keys
    images = [key for key in keys if key.startswith("images/")]
    assert len(images) == 1, keys
    assert ".64x48." in images[0], keys
    assert len([key for key in keys if key.startswith("thumbs/")]) == 1, keys


# --- local backend ------------------------------------------------------------------------------


def _local_keys(server: LiveServer) -> list[str]:
    objects = server.data_dir / "objects"
    return sorted(str(path.relative_to(objects)) for path in objects.rglob("*") if path.is_file())


@pytest.fixture(scope="module")
def local_api(
    page_server: PageServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """Zero configuration but the page's origin: forms and PUT URLs follow the request's base."""
    server = module_server(tmp_path_factory, {"S3DROP_ALLOWED_ORIGINS": page_server.url})
    yield server
    server.stop()


@pytest.mark.parametrize("recipe", list(RECIPES))
def test_recipe_on_the_local_backend(
    page: Page, page_server: PageServer, local_api: LiveServer, recipe: str
) -> None:
    server = local_api
    empty_gallery(server)  # every recipe sends the same cat.png: not a duplicate of the last one
    before = set(_local_keys(server))
    outcome = run_recipe(page, page_server, server.url, recipe, 20_000, f"{server.url}/storage")
    assert_outcome(outcome)
    assert_only_the_image_stored(sorted(set(_local_keys(server)) - before))
    assert list((server.data_dir / "tmp").iterdir()) == []


# --- Ceph RGW -------------------------------------------------------------------------------------


@dataclass
class RGWApi:
    """s3drop on RGW, one bucket (``bucket init`` for the page's origin) for the module."""

    server: LiveServer
    bucket: str

    def keys(self, rgw: RGW) -> list[str]:
        return bucket_keys(rgw, self.bucket)


@pytest.fixture(scope="module")
def rgw_module(
    rgw: RGW, page_server: PageServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RGWApi]:
    name = f"t-uppy-{secrets.token_hex(4)}"
    rgw.client().create_bucket(Bucket=name)
    bucket_ready(rgw, name, page_server.url)
    env = {**rgw.env(name), "S3DROP_ALLOWED_ORIGINS": page_server.url}
    server = module_server(tmp_path_factory, env)  # isolated from the caller's environment
    yield RGWApi(server, name)
    server.stop()
    _empty(rgw, name)
    rgw.client().delete_bucket(Bucket=name)


def _empty(rgw: RGW, bucket: str) -> None:
    client = rgw.client()
    for key in bucket_keys(rgw, bucket):
        client.delete_object(Bucket=bucket, Key=key)


@pytest.fixture
def rgw_api(rgw: RGW, rgw_module: RGWApi) -> RGWApi:
    """The module's s3drop on RGW, its bucket emptied for this test."""
    _empty(rgw, rgw_module.bucket)
    return rgw_module


@pytest.mark.s3
@pytest.mark.parametrize(
    "recipe", ["uppy6-put", "uppy6-post", "uppy5-post-rgw", "uppy5-put", "fetch-put"]
)
def test_recipe_on_rgw(
    page: Page, page_server: PageServer, rgw: RGW, rgw_api: RGWApi, recipe: str
) -> None:
    outcome = run_recipe(page, page_server, rgw_api.server.url, recipe, 20_000, rgw.endpoint)
    assert_outcome(outcome)
    assert_only_the_image_stored(rgw_api.keys(rgw))


@pytest.mark.s3
def test_uppy5_unchanged_waits_at_100_percent_on_rgw(
    page: Page, page_server: PageServer, rgw: RGW, rgw_api: RGWApi
) -> None:
    """Why the README gives Uppy 5 on RGW two more options: RGW stores the POST but sends no
    ETag header, and Uppy 5 waits for one: the PNG sits at 100 % and never completes."""
    outcome = run_recipe(page, page_server, rgw_api.server.url, "uppy5-post", 4_000, rgw.endpoint)
    assert not outcome["finished"], outcome
    png = next(file for file in outcome["files"] if file["name"] == "cat.png")
    assert png["percentage"] == 100
    assert not png["complete"]
    assert png["error"] is None
    stored = rgw_api.keys(rgw)
    assert [key for key in stored if key.startswith("incoming/")] != []  # stored, never completed
    assert not [key for key in stored if key.startswith("images/")]
