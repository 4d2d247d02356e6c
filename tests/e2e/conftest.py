"""Browser fixtures: one Debian chromium per session, a fresh context (and page) per test.

Playwright drives the system chromium at /usr/bin/chromium; no browser is ever downloaded. Each
page records JavaScript errors and Content-Security-Policy violations; a test that caused either
fails at teardown, so every browser test also proves the page runs under the CSP the app sends.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.conftest import LiveServer, isolate, start_server

CHROMIUM = "/usr/bin/chromium"

#: Runs before the page's own scripts (injected by the browser, so the CSP does not apply to it).
_WATCH = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(`${event.violatedDirective} blocked ${event.blockedURI}`);
});
"""


@dataclass
class PageProblems:
    """What went wrong in the page while a test drove it."""

    errors: list[str] = field(default_factory=list)


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"{CHROMIUM} is missing: run ./scripts/test, which installs Debian's chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield browser
        browser.close()


def module_server(
    tmp_path_factory: pytest.TempPathFactory, env: dict[str, str] | None = None
) -> LiveServer:
    """An s3drop started for a module's tests (stop it at the module's end): a start costs about
    0.8 s of CPU, a test's own owner or an emptied gallery (``empty_gallery``) almost nothing.
    No per-minute limit on signing (``env`` may set one)."""
    with pytest.MonkeyPatch.context() as patch:
        isolate(patch)
        # Signs are not counted by any browser test, and a module's tests sign more than the
        # default 60 a minute between them.
        env = {"S3DROP_RATE_PER_MINUTE": "100000", **(env or {})}
        return start_server(tmp_path_factory.mktemp("shared-server"), env=env)


@pytest.fixture(scope="session")
def default_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One s3drop on the embedded default for every browser module of the session (a start costs
    about 0.8 s of CPU); tests reach it through ``shared_server``, which empties it first."""
    server = module_server(tmp_path_factory)
    yield server
    server.stop()


@pytest.fixture
def shared_server(default_server: LiveServer) -> LiveServer:
    """The session's default s3drop with an empty gallery, as a fresh one has (other modules'
    tests used it before). Tests compare the data folder before and after (nothing new stored)."""
    empty_gallery(default_server)
    return default_server


@pytest.fixture
def empty_server(shared_server: LiveServer) -> LiveServer:
    """``shared_server`` (already emptied), by the name the gallery-counting tests use."""
    return shared_server


@pytest.fixture(scope="session")
def heic_session_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One s3drop that also takes HEIC (S3DROP_ALLOWED_TYPES=image/png,image/jpeg,image/heic),
    for the session's tests that upload a HEIC through the page."""
    env = {"S3DROP_ALLOWED_TYPES": "image/png,image/jpeg,image/heic"}
    server = module_server(tmp_path_factory, env)
    yield server
    server.stop()


@pytest.fixture
def heic_server(heic_session_server: LiveServer) -> LiveServer:
    """``heic_session_server`` with an empty gallery."""
    empty_gallery(heic_session_server)
    return heic_session_server


@pytest.fixture(scope="module")
def small_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """Like ``shared_server``, with a 200 kB limit (S3DROP_MAX_BYTES=200KB)."""
    server = module_server(tmp_path_factory, {"S3DROP_MAX_BYTES": "200KB"})
    yield server
    server.stop()


@contextmanager
def checked_page(browser: Browser) -> Iterator[Page]:
    """A page in a fresh context (no shared storage or cache), 1200 x 900 CSS pixels; on leaving,
    the context is closed and any JavaScript error or CSP violation it saw fails."""
    context = browser.new_context(viewport={"width": 1200, "height": 900}, locale="en-GB")
    context.add_init_script(_WATCH)
    context.set_default_timeout(10_000)
    page = context.new_page()
    problems = PageProblems()
    page.on("pageerror", lambda error: problems.errors.append(f"page error: {error}"))
    yield page
    violations: list[str] = []
    if not page.is_closed() and page.url.startswith("http"):
        violations = page.evaluate("window.__cspViolations || []")
    context.close()
    assert not problems.errors, problems.errors
    assert not violations, f"Content-Security-Policy violations: {violations}"


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A page of its own for each test (``checked_page``)."""
    with checked_page(browser) as page:
        yield page


def empty_gallery(server: LiveServer) -> None:
    """Delete every image of the (single, anonymous) owner: a test on a module's server starts
    from the empty gallery a fresh server has. Deleting takes each duplicate marker with it."""
    with server.client() as client:
        while images := client.get("/api/images", params={"limit": 100}).json()["images"]:
            for image in images:
                client.delete(f"/api/images/{image['id']}").raise_for_status()
