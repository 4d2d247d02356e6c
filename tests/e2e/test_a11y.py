"""WCAG 2.1 AA and a calm page, checked by tools nobody on this project wrote (issue 16).

- axe-core (npm, pinned by tests/e2e/package-lock.json; ``scripts/test`` installs it) runs in the
  page in every state a person meets: empty, uploading, mixed results, the viewer and the delete
  dialog, dark, narrow, and the uploader element alone in a plain host page. Zero violations of the
  WCAG 2.0/2.1 A/AA rules and of axe's best practices.
- Focus indicators: every focusable control, focused by keyboard, is screenshotted focused and
  unfocused; enough changed pixels to draw a 2 px ring round it must differ by 3:1 or more
  (WCAG 2.2's focus appearance, the stricter cousin of 2.4.7), in light, dark and forced colours.
- Announcements: one short sentence per file outcome, never progress.
- A calm page: the Layout Instability API (a PerformanceObserver for ``layout-shift``) while four
  files upload into a page with a gallery; the sum of every shift stays at or below 0.05.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageChops
from playwright.sync_api import Browser, Locator, Page, Route, expect
from playwright.sync_api import Error as PlaywrightError

from tests.conftest import OUTPUT, LiveServer
from tests.e2e.conftest import checked_page, empty_gallery
from tests.e2e.test_page import (
    HeldUploads,
    final_state,
    gradient_png,
    noise_png,
    open_page,
    payload,
    row,
)

pytestmark = pytest.mark.browser

AXE = Path(__file__).parent / "node_modules" / "axe-core" / "axe.min.js"
WCAG = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]

#: No CSS transition runs, in the document or in any shadow root (getAnimations() first applies
#: pending style changes, so one a scheme change starts is seen).
TRANSITIONS_ENDED = """() => {
  const hosts = [...document.querySelectorAll("*")].filter((el) => el.shadowRoot);
  return [document, ...hosts.map((el) => el.shadowRoot)].every((root) =>
    root.getAnimations().every((a) => !(a instanceof CSSTransition) || a.playState === "finished"));
}"""


@pytest.fixture(scope="module")
def axe_source() -> str:
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: run ./scripts/test, which installs it with npm ci")
    return AXE.read_text()


def axe_violations(page: Page, source: str, state: str) -> list[str]:
    """axe-core's violations in the page as it is now, one line each (rule, impact, where)."""
    page.mouse.move(0, 0)
    page.wait_for_function(TRANSITIONS_ENDED)  # colours after a scheme change or a hover are final
    # evaluate() runs outside the page's Content-Security-Policy, as a browser extension does.
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(source)
    found: list[dict[str, Any]] = page.evaluate(
        """async (tags) => {
            const result = await axe.run(document, {runOnly: {type: "tag", values: tags},
                                                   resultTypes: ["violations"]});
            return result.violations.map((v) => ({id: v.id, impact: v.impact,
                nodes: v.nodes.map((n) => JSON.stringify(n.target))}));
        }""",
        WCAG,
    )
    lines = [
        f"{state}: {v['id']} ({v['impact']}) x{len(v['nodes'])}: {v['nodes'][:3]}" for v in found
    ]
    _record("axe", {state: f"{len(found)} rules, {sum(len(v['nodes']) for v in found)} elements"})
    return lines


def _record(kind: str, numbers: dict[str, Any]) -> None:
    """Keep the measured numbers in test-output/a11y-numbers.json for the issue's note."""
    OUTPUT.mkdir(exist_ok=True)
    path = OUTPUT / "a11y-numbers.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    data.setdefault(kind, {}).update(numbers)
    path.write_text(json.dumps(data, indent=2, sort_keys=True))


def shot(page: Page, name: str) -> None:
    OUTPUT.mkdir(exist_ok=True)
    page.mouse.move(0, 0)
    page.screenshot(path=str(OUTPUT / name), full_page=True, animations="disabled")


# --- states -----------------------------------------------------------------------------------


def mixed_results(page: Page, server: LiveServer) -> list[Route]:
    """Uploads done, rejected, refused, failed, cancelled and one still on its way; returns the
    held storage POSTs (the caller lets them go)."""
    open_page(page, server)
    done = {"mountain-lake.png": 11, "city-lights.png": 12}
    page.set_input_files(
        "#file-input", files=[payload(name, gradient_png(seed)) for name, seed in done.items()]
    )
    for name in done:
        final_state(row(page, name), "done")
    held: list[Route] = []

    def storage(route: Route) -> None:
        body = route.request.post_data_buffer or b""
        if b'filename="refused-by-storage.png"' in body:
            route.fulfill(
                status=403,
                content_type="application/xml",
                body="<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>",
            )
        elif b'filename="cancelled.png"' in body:
            held.append(route)
        else:
            route.continue_()

    page.route(f"{server.url}/storage", storage)
    page.set_input_files(
        "#file-input",
        files=[
            payload("refused-by-storage.png", gradient_png(14)),
            payload("cancelled.png", gradient_png(15)),
            payload("holiday-video.mov", b"\0\0\0\x14ftypqt  " + bytes(64), "video/quicktime"),
            payload("scan.png", b"%PDF-1.7 not an image at all" + bytes(100)),
        ],
    )
    final_state(row(page, "refused-by-storage.png"), "failed")
    expect(row(page, "cancelled.png")).to_have_attribute("data-state", "uploading")
    row(page, "cancelled.png").get_by_role("button", name="Cancel upload of cancelled.png").click()
    final_state(row(page, "cancelled.png"), "cancelled")
    final_state(row(page, "holiday-video.mov"), "refused")
    final_state(row(page, "scan.png"), "rejected")
    expect(page.locator(".tile")).to_have_count(2)
    page.wait_for_function(
        "() => [...document.querySelectorAll('.tile-img')].every(i => i.complete && i.naturalWidth)"
    )
    page.unroute(f"{server.url}/storage", storage)
    return held


def release(held: list[Route]) -> None:
    for route in held:
        with contextlib.suppress(PlaywrightError):  # the browser may have let go of it
            route.abort()


@pytest.fixture
def server(shared_server: LiveServer) -> LiveServer:
    """The session's default s3drop with an empty gallery, as a fresh one has."""
    return shared_server


@pytest.fixture(scope="module")
def mixed(browser: Browser, default_server: LiveServer) -> Iterator[Page]:
    """One page in the mixed-results state, made once for the tests that only look at it (axe and
    the focus indicators, in each scheme and size); they run one after another in this module."""
    empty_gallery(default_server)
    with checked_page(browser) as page:
        held = mixed_results(page, default_server)
        yield page
        release(held)


@pytest.fixture
def mixed_page(mixed: Page) -> Page:
    """``mixed`` as a test first finds it: light, no forced colours, 1200 x 900, no dialog open."""
    mixed.keyboard.press("Escape")
    mixed.keyboard.press("Escape")
    expect(mixed.locator("dialog[open]")).to_have_count(0)
    mixed.emulate_media(color_scheme="light", forced_colors="none")
    mixed.set_viewport_size({"width": 1200, "height": 900})
    return mixed


# --- axe-core ---------------------------------------------------------------------------------


def test_axe_finds_nothing_on_the_empty_and_the_uploading_page(
    page: Page, server: LiveServer, axe_source: str
) -> None:
    open_page(page, server)
    expect(page.locator("#gallery-status")).to_have_text(re.compile("^No images yet"))
    problems = axe_violations(page, axe_source, "empty")
    page.emulate_media(color_scheme="dark")
    problems += axe_violations(page, axe_source, "empty, dark")
    page.emulate_media(color_scheme="light")

    held = HeldUploads(page, server)
    page.set_input_files(
        "#file-input",
        files=[payload("sunrise.png", gradient_png(31)), payload("harbour.png", gradient_png(32))],
    )
    held.wait(2)
    expect(row(page, "sunrise.png")).to_have_attribute("data-state", "uploading")
    problems += axe_violations(page, axe_source, "uploading")
    page.emulate_media(color_scheme="dark")
    problems += axe_violations(page, axe_source, "uploading, dark")
    held.release()
    final_state(row(page, "sunrise.png"), "done")
    final_state(row(page, "harbour.png"), "done")
    assert not problems, "\n".join(problems)


def test_axe_finds_nothing_with_mixed_results_dialogs_dark_and_narrow(
    mixed_page: Page, axe_source: str
) -> None:
    page = mixed_page
    problems = axe_violations(page, axe_source, "mixed results")
    shot(page, "a11y-mixed-light.png")
    page.locator(".tile-open").first.click()
    expect(page.locator("#viewer")).to_be_visible()
    problems += axe_violations(page, axe_source, "viewer")
    page.locator("#viewer-delete").click()
    expect(page.locator("#confirm")).to_be_visible()
    problems += axe_violations(page, axe_source, "delete confirm")
    page.keyboard.press("Escape")
    page.keyboard.press("Escape")
    expect(page.locator("#viewer")).to_be_hidden()

    page.emulate_media(color_scheme="dark")
    problems += axe_violations(page, axe_source, "mixed results, dark")
    shot(page, "a11y-mixed-dark.png")
    page.locator(".tile-delete").first.click()
    expect(page.locator("#confirm")).to_be_visible()
    problems += axe_violations(page, axe_source, "delete confirm, dark")
    page.keyboard.press("Escape")
    page.locator(".tile-open").first.click()
    problems += axe_violations(page, axe_source, "viewer, dark")
    page.keyboard.press("Escape")

    page.emulate_media(color_scheme="light")
    page.set_viewport_size({"width": 390, "height": 844})
    problems += axe_violations(page, axe_source, "mixed results, narrow")
    shot(page, "a11y-mixed-narrow.png")
    page.emulate_media(forced_colors="active")
    shot(page, "a11y-mixed-forced-colours.png")
    assert not problems, "\n".join(problems)


# --- focus indicators -------------------------------------------------------------------------


def _luminance(rgb: tuple[int, ...]) -> float:
    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(v) for v in rgb[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def _contrast(a: tuple[int, ...], b: tuple[int, ...]) -> float:
    light, dark = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def focus_contrast(page: Page, control: Locator, name: str) -> float:
    """The focus indicator's contrast: the lowest contrast (focused against unfocused) among the
    best-changed pixels that would draw a 2 CSS px ring round the control's perimeter."""
    control.scroll_into_view_if_needed()
    box = control.bounding_box()
    assert box is not None, name
    pad = 8
    clip = {
        "x": max(0, box["x"] - pad),
        "y": max(0, box["y"] - pad),
        "width": box["width"] + 2 * pad,
        "height": box["height"] + 2 * pad,
    }
    page.mouse.move(0, 0)
    control.evaluate("(el) => el.blur()")
    before = page.screenshot(clip=clip, animations="disabled")
    page.keyboard.press("Shift")  # keyboard modality: focus() shows :focus-visible
    control.focus()
    assert control.evaluate("(el) => el.matches(':focus-visible')"), f"{name}: not focus-visible"
    after = page.screenshot(clip=clip, animations="disabled")
    control.evaluate("(el) => el.blur()")
    old = Image.open(io.BytesIO(before)).convert("RGB")
    new = Image.open(io.BytesIO(after)).convert("RGB")
    changed = ImageChops.difference(old, new).convert("L").point(lambda v: 255 if v else 0)
    ratios = sorted(
        (
            _contrast(old.getpixel((x, y)), new.getpixel((x, y)))  # type: ignore[arg-type]
            for x in range(old.width)
            for y in range(old.height)
            if changed.getpixel((x, y))
        ),
        reverse=True,
    )
    needed = int(2 * 2 * (box["width"] + box["height"]))  # 2 px round the perimeter
    return ratios[needed - 1] if len(ratios) >= needed else 1.0


def focusable_controls(page: Page) -> Iterator[tuple[str, Locator]]:
    uploader = page.locator("s3drop-uploader")
    yield "skip link", page.locator(".skip-link")
    yield "brand link", page.locator(".brand")
    yield "drop zone", uploader.locator("#dropzone")
    yield "clear finished", uploader.locator("#clear-finished")
    yield "retry", row(page, "refused-by-storage.png").locator(".retry")
    yield "remove from list", row(page, "scan.png").locator(".remove")
    yield "tile view", page.locator(".tile-open").first
    yield "tile delete", page.locator(".tile-delete").first


@pytest.mark.parametrize("scheme", ["light", "dark", "forced colours"])
def test_every_focus_indicator_contrasts_three_to_one(mixed_page: Page, scheme: str) -> None:
    page = mixed_page
    if scheme == "dark":
        page.emulate_media(color_scheme="dark")
    elif scheme == "forced colours":
        page.emulate_media(forced_colors="active")
    page.locator("body").evaluate("() => document.fonts.ready")
    measured: dict[str, float] = {}
    for name, control in focusable_controls(page):
        measured[name] = focus_contrast(page, control, name)
    page.locator(".tile-open").first.click()
    for name in ("viewer-open", "viewer-delete", "viewer-close"):
        measured[name.replace("-", " ")] = focus_contrast(page, page.locator(f"#{name}"), name)
    page.locator("#viewer-delete").click()
    for name in ("confirm-cancel", "confirm-delete"):
        measured[name.replace("-", " ")] = focus_contrast(page, page.locator(f"#{name}"), name)
    page.keyboard.press("Escape")
    page.keyboard.press("Escape")
    _record("focus", {f"{scheme}: {name}": round(value, 2) for name, value in measured.items()})
    weak = {name: round(value, 2) for name, value in measured.items() if value < 3}
    assert not weak, f"{scheme}: focus indicators under 3:1: {weak}"


HOST_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>A plain page</title>
<script type="module" src="/static/s3drop-uploader.js"></script></head>
<body><main><h1>Your photos</h1>
<form><s3drop-uploader name="photos" multiple></s3drop-uploader></form>
</main></body></html>"""


def test_axe_finds_nothing_in_the_element_on_a_plain_page(
    page: Page, server: LiveServer, axe_source: str
) -> None:
    """The element alone, with its own default palette and with theme="dark", in a page that
    styles nothing: each state is checked in both (the theme is the attribute's CSS alone)."""
    page.route(
        f"{server.url}/plain.html",
        lambda route: route.fulfill(content_type="text/html", body=HOST_PAGE),
    )
    page.goto(f"{server.url}/plain.html")
    uploader = page.locator("s3drop-uploader")
    expect(uploader.locator("#dropzone-limits")).to_contain_text("up to")

    def both_themes(state: str, shoot: bool = False) -> list[str]:
        found = axe_violations(page, axe_source, f"element, {state}")
        if shoot:
            shot(page, "a11y-element.png")
        uploader.evaluate("(el) => el.setAttribute('theme', 'dark')")
        found += axe_violations(page, axe_source, f"element, dark, {state}")
        if shoot:
            shot(page, "a11y-element-dark.png")
        uploader.evaluate("(el) => el.removeAttribute('theme')")
        return found

    problems = both_themes("empty")
    uploader.locator("#file-input").set_input_files(
        [
            payload("kestrel.png", gradient_png(41)),
            payload("clip.mov", b"\0\0\0\x14ftypqt  " + bytes(64), "video/quicktime"),
            payload("fake.png", b"<!doctype html>" + bytes(200)),
        ]
    )
    final_state(uploader.locator('li.file[data-name="kestrel.png"]'), "done")
    final_state(uploader.locator('li.file[data-name="clip.mov"]'), "refused")
    final_state(uploader.locator('li.file[data-name="fake.png"]'), "rejected")
    problems += both_themes("results", shoot=True)
    assert not problems, "\n".join(problems)


def test_focus_after_a_delete_lands_on_a_visible_neighbour(page: Page, server: LiveServer) -> None:
    open_page(page, server)
    names = ["first.png", "second.png", "third.png"]
    page.set_input_files(
        "#file-input", files=[payload(name, gradient_png(60 + i)) for i, name in enumerate(names)]
    )
    for name in names:
        final_state(row(page, name), "done")
    expect(page.locator(".tile")).to_have_count(3)
    page.keyboard.press("Shift")
    middle = page.locator(".tile").nth(1)
    label = middle.locator(".tile-name").inner_text()
    after = page.locator(".tile").nth(2).get_attribute("data-id")
    neighbour = page.locator(f'.tile[data-id="{after}"] .tile-open')
    confirm = page.locator("#confirm")

    def delete(button: Locator) -> None:
        button.focus()
        page.keyboard.press("Enter")
        expect(confirm).to_be_visible()
        expect(page.locator("#confirm-cancel")).to_be_focused()
        page.keyboard.press("Tab")
        expect(page.locator("#confirm-delete")).to_be_focused()
        page.keyboard.press("Enter")
        try:  # a delete is a storage round trip: more than the default 5 s on a busy machine
            expect(confirm).to_be_hidden(timeout=15_000)
        except AssertionError as exc:  # say why the dialog stayed (its error line), if it did
            why = page.locator("#confirm-error").inner_text()
            raise AssertionError(f"the delete dialog stayed open: {why!r}") from exc

    delete(middle.locator(".tile-delete"))
    expect(page.locator(".tile")).to_have_count(2)
    expect(neighbour).to_be_focused()
    assert neighbour.evaluate("(el) => el.matches(':focus-visible')")
    expect(page.locator("#announcer")).to_contain_text(f"Deleted {label}")
    # The last one gone: focus goes to the gallery's heading, which shows it.
    for left in (1, 0):
        delete(page.locator(".tile-delete").first)
        expect(page.locator(".tile")).to_have_count(left)
    heading = page.locator("#gallery-title")
    expect(heading).to_be_focused()
    outline = heading.evaluate("(el) => getComputedStyle(el).outlineStyle")
    assert outline != "none"


# --- names and announcements ------------------------------------------------------------------


def test_one_short_sentence_per_file_outcome_and_unique_names(
    page: Page, server: LiveServer
) -> None:
    said: list[str] = []
    page.expose_function("__said", lambda text: said.append(text))
    page.add_init_script(
        """new MutationObserver((records) => {
            for (const record of records) {
              const target = record.target.nodeType === 1 ? record.target : record.target.parentElement;
              if (!target || !target.closest("[aria-live]")) continue;
              for (const node of record.addedNodes) {
                const text = (node.textContent || "").trim();
                if (text) window.__said(text);
              }
            }
          }).observe(document, {subtree: true, childList: true, characterData: true});
          const attach = Element.prototype.attachShadow;
          Element.prototype.attachShadow = function (init) {
            const root = attach.call(this, init);
            new MutationObserver((records) => {
              for (const record of records) {
                const target = record.target.nodeType === 1 ? record.target : record.target.parentElement;
                if (!target || !target.closest("[aria-live]")) continue;
                for (const node of record.addedNodes) {
                  const text = (node.textContent || "").trim();
                  if (text) window.__said(text);
                }
              }
            }).observe(root, {subtree: true, childList: true, characterData: true});
            return root;
          };"""
    )
    open_page(page, server)
    same = gradient_png(70)
    page.set_input_files(
        "#file-input",
        files=[
            payload("a.png", same),
            payload("b.png", gradient_png(71)),
            payload("clip.mov", b"\0\0\0\x14ftypqt  " + bytes(64), "video/quicktime"),
            payload("fake.png", b"<!doctype html>" + bytes(200)),
        ],
    )
    for name, state in [("a.png", "done"), ("b.png", "done"), ("clip.mov", "refused")]:
        final_state(row(page, name), state)
    final_state(row(page, "fake.png"), "rejected")
    page.wait_for_timeout(400)
    outcomes = [text for text in said if not text.startswith(("Loading", "Pasted"))]
    for name in ("a.png", "b.png", "clip.mov", "fake.png"):
        mine = [text for text in outcomes if text.startswith(f"{name}:")]
        assert len(mine) == 1, (name, said)
        assert len(mine[0]) <= 160, mine
    assert not [text for text in said if "%" in text or "…" in text], said
    names = ("a.png", "b.png", "clip.mov", "fake.png")
    assert all(sum(name in text for name in names) <= 1 for text in said), said
    _record("announcements", {"longest": max(len(text) for text in said)})

    # Two images of the same size uploaded in the same minute: different accessible names.
    page.reload()
    expect(page.locator(".tile")).to_have_count(2)
    names = page.locator(".tile-open").evaluate_all("(els) => els.map((e) => e.ariaLabel)")
    assert len(set(names)) == 2, names
    deletes = page.locator(".tile-delete").evaluate_all("(els) => els.map((e) => e.ariaLabel)")
    assert len(set(deletes)) == 2, deletes


# --- a calm page ------------------------------------------------------------------------------

SHIFTS = """
window.__shifts = [];
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    if (!entry.hadRecentInput) window.__shifts.push({value: entry.value, time: entry.startTime,
      sources: (entry.sources || []).map((s) => (s.node && (s.node.id || s.node.className)) || "?")});
  }
}).observe({type: "layout-shift", buffered: true});
"""


def test_a_four_file_upload_barely_shifts_the_page(page: Page, server: LiveServer) -> None:
    open_page(page, server)
    earlier = [payload(f"earlier-{i}.png", gradient_png(80 + i)) for i in range(5)]
    page.set_input_files("#file-input", files=earlier)
    for file in earlier:
        final_state(row(page, file["name"]), "done")
    page.add_init_script(SHIFTS)
    page.reload()
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    expect(page.locator(".tile")).to_have_count(5)
    page.wait_for_function(
        "() => [...document.querySelectorAll('.tile-img')].every(i => i.complete && i.naturalWidth)"
    )
    page.wait_for_timeout(300)
    page.evaluate("() => { window.__shifts = []; }")  # loading is not what this measures
    batch = [
        payload("big-noise.png", noise_png((500, 400))),
        payload("small.png", gradient_png(90)),
        payload("not-an-image.png", b"%PDF-1.7" + bytes(300)),
        payload("medium.png", gradient_png(91, (640, 480))),
    ]
    page.set_input_files("#file-input", files=batch)
    for file, state in zip(batch, ["done", "done", "rejected", "done"], strict=True):
        final_state(row(page, file["name"]), state)
    expect(page.locator(".tile")).to_have_count(8)
    page.wait_for_timeout(500)
    shifts: list[dict[str, Any]] = page.evaluate("() => window.__shifts")
    total = sum(shift["value"] for shift in shifts)
    _record("layout shift", {"four-file upload": round(total, 3)})
    assert total <= 0.05, f"layout shift {total:.3f}: {shifts}"


# --- a repeat visit ---------------------------------------------------------------------------


def next_second() -> None:
    """Wait until the clock's second has changed (at most a second, half of one on average)."""
    time.sleep(1.02 - time.time() % 1)


FETCHED = """() => performance.getEntriesByType("resource")
    .filter((entry) => /\\/(storage\\/thumbs|static)\\//.test(entry.name))
    .map((entry) => ({name: new URL(entry.name).pathname, bytes: entry.transferSize,
                      decoded: entry.decodedBodySize}))"""


def test_a_reload_fetches_no_thumbnail_or_static_file_again(page: Page, server: LiveServer) -> None:
    """Thumbnail URLs stay the same (signed within a window) and the page's files are versioned
    and immutable: a second visit takes all of them from the browser's cache."""
    open_page(page, server)
    names = [f"repeat-{i}.png" for i in range(3)]
    page.set_input_files(
        "#file-input", files=[payload(name, gradient_png(100 + i)) for i, name in enumerate(names)]
    )
    for name in names:
        final_state(row(page, name), "done")
    next_second()  # the old code signed every URL anew, and a signature counts seconds
    page.reload()
    expect(page.locator(".tile")).to_have_count(3)
    page.wait_for_function(
        "() => [...document.querySelectorAll('.tile-img')].every(i => i.complete && i.naturalWidth)"
    )
    next_second()
    page.reload()
    expect(page.locator(".tile")).to_have_count(3)
    page.wait_for_function(
        "() => [...document.querySelectorAll('.tile-img')].every(i => i.complete && i.naturalWidth)"
    )
    entries: list[dict[str, Any]] = page.evaluate(FETCHED)
    thumbs = [entry for entry in entries if "/thumbs/" in entry["name"]]
    assert len(thumbs) == 3, entries  # the measurement sees every thumbnail
    fetched = [entry["name"] for entry in entries if entry["bytes"] > 0]
    _record("repeat visit", {"fetched again on reload": len(fetched)})
    assert fetched == [], entries
