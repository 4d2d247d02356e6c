"""The Django example (examples/django: a photo journal) as its users meet it: started with its
``run`` script, driven in Debian chromium. Sign up, upload through the element inside the
journal's own form, post, reload, and see the photo rendered from the journal's row; a rejected
file shows why and no row is saved; an anonymous caller and a CSRF-less POST are refused."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Page, expect

from .examples import (
    Example,
    assert_two_colours,
    running_example,
    screenshot_path,
    two_colour_png,
)

pytestmark = pytest.mark.browser

POSTS = "SELECT caption, photo FROM journal_post"


@pytest.fixture(scope="module")
def journal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Example]:
    with running_example("django", tmp_path_factory.mktemp("journal"), "JOURNAL_DATA") as app:
        yield app


def sign_up(page: Page, journal: Example, name: str) -> None:
    page.goto(f"{journal.url}/signup")
    page.fill("input[name=username]", name)
    page.fill("input[name=password1]", "a-long-enough-password-42")
    page.fill("input[name=password2]", "a-long-enough-password-42")
    page.click("button[type=submit]")
    expect(page.locator("header")).to_contain_text(name)


def choose(page: Page, name: str, data: bytes) -> None:
    uploader = page.locator("form.post s3drop-uploader")
    expect(uploader).to_contain_text(re.compile("PNG"))  # the server's settings arrived
    uploader.locator("input[type=file]").set_input_files(
        files=[{"name": name, "mimeType": "image/png", "buffer": data}]
    )


def test_upload_in_the_journals_form_and_see_it_from_its_row(page: Page, journal: Example) -> None:
    sign_up(page, journal, "ada")
    choose(page, "harbour.png", two_colour_png())
    done = page.locator('s3drop-uploader li.file[data-state="done"]')
    expect(done).to_have_count(1, timeout=20_000)
    image_id = page.evaluate("document.querySelector('s3drop-uploader').value[0]")
    page.fill("input[name=caption]", "The harbour at dawn")
    page.screenshot(path=screenshot_path("example-django-uploaded.png"), full_page=True)
    with page.expect_navigation():
        page.click("form.post button[type=submit]")
    assert journal.rows("journal.sqlite3", POSTS) == [("The harbour at dawn", image_id)]
    page.reload()
    photo = page.locator("article img.photo")
    expect(photo).to_have_attribute("alt", "The harbour at dawn")
    page.wait_for_function("document.querySelector('article img.photo').naturalWidth === 240")
    assert_two_colours(photo.screenshot())
    page.screenshot(path=screenshot_path("example-django.png"), full_page=True)


def test_rejected_file_shows_why_and_saves_no_row(page: Page, journal: Example) -> None:
    sign_up(page, journal, "bob")
    before = journal.rows("journal.sqlite3", POSTS)
    choose(page, "holiday.png", b"<html><script>alert(1)</script></html>" * 20)
    rejected = page.locator('s3drop-uploader li.file[data-state="rejected"]')
    expect(rejected).to_have_count(1, timeout=20_000)
    expect(rejected.locator(".message")).to_contain_text(re.compile("not an? (PNG|image)", re.I))
    page.screenshot(path=screenshot_path("example-django-rejected.png"), full_page=True)
    page.fill("input[name=caption]", "Should not be saved")
    assert page.evaluate("document.querySelector('form.post').checkValidity()") is False
    page.click("form.post button[type=submit]")  # the browser holds it: no image yet
    # Past the element: the journal's own field refuses an id that is not an image of bob's.
    token = page.locator("form.post input[name=csrfmiddlewaretoken]").input_value()
    forged = page.request.post(
        f"{journal.url}/",
        form={
            "csrfmiddlewaretoken": token,
            "caption": "Forged",
            "photo": "8204117022960ysdmyc35mf",
        },
    )
    assert forged.status == 200
    assert "no image 8204117022960ysdmyc35mf" in forged.text()
    assert journal.rows("journal.sqlite3", POSTS) == before
    assert not [key for key in journal.stored() if key.startswith("incoming/")]


def test_anonymous_caller_and_csrf_less_post_are_refused(page: Page, journal: Example) -> None:
    claim = {"filename": "a.png", "content_type": "image/png", "size": 1000}
    stored = journal.stored()
    with httpx.Client(base_url=journal.url) as anonymous:
        anonymous.get("/uploads/api/config")  # Django sets the CSRF cookie here
        token = anonymous.cookies["csrftoken"]
        refused = anonymous.post("/uploads/api/uploads", json=claim, headers={"X-CSRFToken": token})
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "not_authenticated"
    sign_up(page, journal, "cyd")
    csrf_less = page.request.post(
        f"{journal.url}/uploads/api/uploads",
        data=json.dumps(claim),
        headers={"Content-Type": "application/json"},
    )
    assert csrf_less.status == 403
    assert csrf_less.json()["error"]["code"] == "csrf_failed"
    assert journal.stored() == stored
