"""The Flask example (examples/flask: member profiles with an avatar) as its users meet it:
started with its ``run`` script, driven in Debian chromium. Sign up, upload an avatar through the
element inside the profile's own form, save, reload, and see it rendered from the member's row;
a rejected file shows why and the row keeps no avatar; a cross-site or anonymous call is refused."""

from __future__ import annotations

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

MEMBER = "SELECT display_name, avatar FROM member WHERE name = '{}'"


@pytest.fixture(scope="module")
def profiles(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Example]:
    with running_example("flask", tmp_path_factory.mktemp("profiles"), "PROFILES_DATA") as app:
        yield app


def sign_up(page: Page, profiles: Example, name: str) -> None:
    page.goto(f"{profiles.url}/signup")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", "a-long-enough-password-42")
    page.click("button[type=submit]")
    expect(page.locator("header")).to_contain_text(name)


def choose(page: Page, name: str, data: bytes) -> None:
    uploader = page.locator("form.profile s3drop-uploader")
    expect(uploader).to_contain_text(re.compile("PNG"))
    uploader.locator("input[type=file]").set_input_files(
        files=[{"name": name, "mimeType": "image/png", "buffer": data}]
    )


def test_upload_an_avatar_in_the_profile_form_and_see_it_from_the_row(
    page: Page, profiles: Example
) -> None:
    sign_up(page, profiles, "ada")
    choose(page, "me.png", two_colour_png())
    expect(page.locator('s3drop-uploader li.file[data-state="done"]')).to_have_count(
        1, timeout=20_000
    )
    image_id = page.evaluate("document.querySelector('s3drop-uploader').value[0]")
    page.fill("input[name=display_name]", "Ada Lovelace")
    page.screenshot(path=screenshot_path("example-flask-uploaded.png"), full_page=True)
    with page.expect_navigation():
        page.click("form.profile button[type=submit]")
    assert profiles.rows("profiles.sqlite3", MEMBER.format("ada")) == [("Ada Lovelace", image_id)]
    page.reload()
    avatar = page.locator(".card img.avatar")
    expect(avatar).to_have_attribute("alt", "Ada Lovelace")
    page.wait_for_function("document.querySelector('.card img.avatar').naturalWidth === 240")
    assert_two_colours(avatar.screenshot())
    # Saved again without a new upload: the kept id (a hidden input) stays the avatar.
    page.fill("input[name=display_name]", "Ada King")
    with page.expect_navigation():
        page.click("form.profile button[type=submit]")
    assert profiles.rows("profiles.sqlite3", MEMBER.format("ada")) == [("Ada King", image_id)]
    page.screenshot(path=screenshot_path("example-flask.png"), full_page=True)


def test_rejected_file_shows_why_and_the_row_keeps_no_avatar(page: Page, profiles: Example) -> None:
    sign_up(page, profiles, "bob")
    choose(page, "me.png", b"<html><script>alert(1)</script></html>" * 20)
    rejected = page.locator('s3drop-uploader li.file[data-state="rejected"]')
    expect(rejected).to_have_count(1, timeout=20_000)
    expect(rejected.locator(".message")).to_contain_text(re.compile("not an? (PNG|image)", re.I))
    page.screenshot(path=screenshot_path("example-flask-rejected.png"), full_page=True)
    assert page.evaluate("document.querySelector('form.profile').checkValidity()") is False
    page.click("form.profile button[type=submit]")  # the browser holds it: no image yet
    forged = page.request.post(
        f"{profiles.url}/", form={"display_name": "Forged", "avatar": "8204117022960ysdmyc35mf"}
    )
    assert forged.status == 200
    assert "no image" in forged.text()
    assert profiles.rows("profiles.sqlite3", MEMBER.format("bob")) == [("bob", None)]
    assert not [key for key in profiles.stored() if key.startswith("incoming/")]


def test_anonymous_and_cross_site_calls_are_refused(page: Page, profiles: Example) -> None:
    claim = {"filename": "a.png", "content_type": "image/png", "size": 1000}
    stored = profiles.stored()
    anonymous = httpx.post(f"{profiles.url}/uploads/api/uploads", json=claim)
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "not_authenticated"
    sign_up(page, profiles, "cyd")
    cross_site = page.request.post(
        f"{profiles.url}/uploads/api/uploads",
        data=claim,
        headers={"Origin": "https://evil.example"},
    )
    assert cross_site.status == 403
    assert cross_site.json()["error"]["code"] == "forbidden"
    assert profiles.stored() == stored
