"""The bundled page mounted under a prefix in someone else's app, in chromium: it loads styled,
under its strict CSP (the page fixture fails on any violation or script error), uploads through the
receiver under the prefix and shows the image in its gallery."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.ceph.cluster import free_port
from tests.conftest import MACHINE_SETTINGS, ROOT

from .test_page import final_state, gradient_png, payload, row

pytestmark = pytest.mark.browser


@pytest.fixture
def mounted(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    port = free_port()
    data = tmp_path / "data"
    env = {
        name: value for name, value in os.environ.items() if not name.startswith(MACHINE_SETTINGS)
    }
    env["S3DROP_DATA_DIR"] = str(data)
    env["S3DROP_PORT"] = str(port)  # where it is served: its origin may call the API
    log = tmp_path / "host.log"
    command = [sys.executable, "-m", "uvicorn", "tests.e2e.mounted_app:app", "--port", str(port)]
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the host app did not start:\n{log.read_text()}")
            try:
                if httpx.get(url, timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield url, data
    finally:
        process.terminate()
        process.wait(timeout=15)


def test_the_page_works_under_a_prefix(page: Page, mounted: tuple[str, Path]) -> None:
    url, data = mounted
    response = page.goto(f"{url}/uploads/")
    assert response is not None
    assert response.status == 200
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    # Styled: the stylesheet under the prefix applied (unstyled, .wrap has no max-width).
    assert page.evaluate("getComputedStyle(document.querySelector('.wrap')).maxWidth") == "960px"
    sent: list[str] = []
    page.on("request", lambda request: sent.append(request.url))
    image = gradient_png(7)
    page.set_input_files("#file-input", files=[payload("mounted.png", image)])
    assert final_state(row(page, "mounted.png"), "done").startswith("Done")
    expect(page.locator(".tile")).to_have_count(1)
    assert f"{url}/uploads/api/uploads" in sent
    assert f"{url}/uploads/storage" in sent
    assert not [
        sent_url for sent_url in sent if sent_url.startswith((f"{url}/api", f"{url}/storage"))
    ]
    assert len(list((data / "objects" / "images").iterdir())) == 1
