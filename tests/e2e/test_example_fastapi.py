"""The FastAPI example (a photo journal, s3drop mounted at /uploads behind its own login), started
with its own ``run`` script and driven in chromium as its user would: sign in, upload through the
uploader element in the journal's own form, publish, reload, and see the photo the journal's record
names (pixels checked); a rejected file shows the reason and nothing lands in the journal's tables.
"""

from __future__ import annotations

import io
from collections.abc import Iterator

import httpx
import pytest
from PIL import Image
from playwright.sync_api import Page, expect

from tests import samples
from tests.conftest import OUTPUT
from tests.e2e.examples import Example, running_example

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Example]:
    """The journal, started once for the module by its own ``run`` script (tests/e2e/examples.py);
    each test signs in users of its own and looks at the rows and objects it added."""
    with running_example("fastapi", tmp_path_factory.mktemp("journal"), "JOURNAL_DATA") as running:
        yield running


def rows(example: Example, table: str) -> list[tuple[object, ...]]:
    """What the journal's own table holds."""
    return example.rows("journal.sqlite3", f"select * from {table}")  # noqa: S608 - our names


def new_rows(
    example: Example, table: str, before: list[tuple[object, ...]]
) -> list[tuple[object, ...]]:
    """The rows of ``table`` that were not there ``before`` (the module shares one journal)."""
    return [row for row in rows(example, table) if row not in before]


def stored(example: Example, prefix: str) -> list[str]:
    """s3drop's objects under ``prefix``."""
    return [key for key in example.stored() if key.startswith(prefix)]


def sign_in(page: Page, example: Example, name: str) -> None:
    page.goto(example.url)
    expect(page).to_have_url(f"{example.url}/login")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", "correct horse battery")
    page.click("button[type=submit]")
    expect(page.locator(".signed-in")).to_contain_text(f"Signed in as {name}")


def choose(page: Page, name: str, data: bytes) -> None:
    page.set_input_files(
        "s3drop-uploader #file-input",
        files=[{"name": name, "mimeType": "image/png", "buffer": data}],
    )


def state(page: Page, name: str, expected: str) -> str:
    item = page.locator(f's3drop-uploader li.file[data-name="{name}"]')
    expect(item).to_have_attribute("data-state", expected, timeout=20_000)
    return item.locator(".message").inner_text()


def test_a_post_with_a_photo_from_sign_in_to_reload(page: Page, example: Example) -> None:
    posts, photos = rows(example, "posts"), rows(example, "photos")
    images = stored(example, "images/")
    sign_in(page, example, "alice")
    # A file that is not what it says: the element shows the server's reason, nothing is saved.
    choose(page, "holiday.png", b"<!doctype html><title>not a picture</title>" + b" " * 200)
    message = state(page, "holiday.png", "rejected")
    assert message.startswith("Rejected: "), message
    assert len(message) > 20, message
    page.fill("input[name=title]", "Nothing to show")
    page.click("#new-post button[type=submit]")
    expect(page.locator("p.error")).to_have_text("Add at least one photo.")
    expect(page.locator("input[name=title]")).to_have_value("Nothing to show")  # kept
    assert rows(example, "posts") == posts
    assert rows(example, "photos") == photos
    assert stored(example, "images/") == images

    # A real photo: uploaded through the element, its id submitted with the journal's own form.
    accepted: list[str] = []
    page.expose_function("noteAccepted", lambda image_id: accepted.append(image_id))
    page.evaluate(
        """document.querySelector("s3drop-uploader").addEventListener("s3drop:accepted",
             (event) => window.noteAccepted(event.detail.image.id))"""
    )
    photo = samples.encode(samples.quadrants((240, 160)), "PNG")
    choose(page, "harbour.png", photo)
    assert state(page, "harbour.png", "done").startswith("Done")
    assert len(accepted) == 1
    # The element put the id into the journal's form, as a form control does.
    submitted = page.evaluate(
        "() => new FormData(document.querySelector('#new-post')).getAll('photos')"
    )
    assert submitted == accepted
    OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUTPUT / "example-fastapi-upload.png"), full_page=True)
    page.fill("input[name=title]", "Harbour at dawn")
    page.click("#new-post button[type=submit]")
    expect(page.locator("article.post h3")).to_have_text("Harbour at dawn")
    ((post_id, _user, title, _created),) = new_rows(example, "posts", posts)
    assert title == "Harbour at dawn"
    assert new_rows(example, "photos", photos) == [(post_id, 0, accepted[0])]

    # Reload: the photo comes from the journal's row, through s3drop's stable URL.
    page.reload()
    image = page.locator(f'article.post img[data-image="{accepted[0]}"]')
    expect(image).to_be_visible()
    page.wait_for_function(
        "(img) => img.complete && img.naturalWidth > 0", arg=image.element_handle()
    )
    src = image.get_attribute("src")
    assert src == f"{example.url}/uploads/api/images/{accepted[0]}/thumbnail"
    page.screenshot(path=str(OUTPUT / "example-fastapi.png"), full_page=True)
    shown = Image.open(io.BytesIO(image.screenshot(animations="disabled"))).convert("RGB")
    width, height = shown.size
    assert abs(width / height - 240 / 160) < 0.05, shown.size  # the whole photo, not cropped
    for (x, y), colour in {
        (0.25, 0.25): samples.TOP_LEFT,
        (0.75, 0.25): samples.TOP_RIGHT,
        (0.25, 0.75): samples.BOTTOM_LEFT,
        (0.75, 0.75): samples.BOTTOM_RIGHT,
    }.items():
        pixel = shown.getpixel((int(x * width), int(y * height)))
        assert isinstance(pixel, tuple)
        assert all(abs(a - b) <= 12 for a, b in zip(pixel, colour, strict=True)), (pixel, colour)

    # The original, through the link around the thumbnail.
    with httpx.Client(cookies={c["name"]: c["value"] for c in page.context.cookies()}) as http:
        original = http.get(
            f"{example.url}/uploads/api/images/{accepted[0]}/original", follow_redirects=True
        )
    assert original.status_code == 200
    assert Image.open(io.BytesIO(original.content)).size == (240, 160)


def test_another_user_sees_none_of_it(page: Page, example: Example) -> None:
    posts, photos = rows(example, "posts"), rows(example, "photos")
    sign_in(page, example, "carol")
    choose(page, "mine.png", samples.encode(samples.quadrants((80, 60)), "PNG"))
    state(page, "mine.png", "done")
    page.fill("input[name=title]", "Mine")
    page.click("#new-post button[type=submit]")
    expect(page.locator("article.post")).to_have_count(1)
    ((image_id,),) = [(row[2],) for row in new_rows(example, "photos", photos)]
    page.click(".signed-in button")
    sign_in(page, example, "dave")
    expect(page.locator("#no-posts")).to_be_visible()
    # Nor may dave post carol's image id as his own, or read it.
    answer = page.request.post(f"{example.url}/posts", form={"title": "Stolen", "photos": image_id})
    assert answer.status == 422
    assert len(rows(example, "posts")) == len(posts) + 1
    theirs = page.request.get(
        f"{example.url}/uploads/api/images/{image_id}/original", max_redirects=0
    )
    assert theirs.status == 403
