"""The Django app in process: a real host project (tests/integrations/djangoproject) driven with
Django's test client. Views, CSRF, anonymous refusal and session owners, the error shapes, the
model field, the widget, the template tags, the system checks and the signals."""

from __future__ import annotations

import html
import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests import samples

if TYPE_CHECKING:
    from django.contrib.auth.models import User
    from django.core.checks import run_checks
    from django.core.exceptions import ValidationError
    from django.core.management import call_command
    from django.forms import modelform_factory
    from django.http import QueryDict
    from django.template import Context, Template
    from django.test import Client, override_settings

    from s3drop.integrations.django import signals
    from s3drop.integrations.django.fixtures import png_bytes
    from tests.integrations.djangoproject.models import Profile


def _set_up_django() -> None:
    """Django is configured and set up when this module's first test runs, not when pytest
    collects it: every xdist worker collects every module, and only the one that runs these tests
    should pay for Django (its setup, the ORM, the test client). The names the tests use become
    this module's globals here (the imports above are for the type checker)."""
    import django
    from django.conf import settings

    if not settings.configured:  # configured in process, never through os.environ
        from tests.integrations.djangoproject import settings as project

        settings.configure(
            **{name: getattr(project, name) for name in dir(project) if name.isupper()}
        )
        django.setup()
    from django.contrib.auth.models import User
    from django.core.checks import run_checks
    from django.core.exceptions import ValidationError
    from django.core.management import call_command
    from django.forms import modelform_factory
    from django.http import QueryDict
    from django.template import Context, Template
    from django.test import Client, override_settings

    from s3drop.integrations.django import signals
    from s3drop.integrations.django.fixtures import png_bytes
    from tests.integrations.djangoproject.models import Profile

    globals().update(
        User=User,
        run_checks=run_checks,
        ValidationError=ValidationError,
        call_command=call_command,
        modelform_factory=modelform_factory,
        QueryDict=QueryDict,
        Context=Context,
        Template=Template,
        Client=Client,
        override_settings=override_settings,
        signals=signals,
        png_bytes=png_bytes,
        Profile=Profile,
    )


@pytest.fixture(scope="module", autouse=True)
def _database() -> None:
    _set_up_django()
    call_command("migrate", run_syncdb=True, verbosity=0)


@pytest.fixture
def user() -> Iterator[User]:
    created = User.objects.create_user("ada", password="pw")
    yield created
    created.delete()


@pytest.fixture
def other() -> Iterator[User]:
    created = User.objects.create_user("bob", password="pw")
    yield created
    created.delete()


def stored(data_dir: Path) -> list[str]:
    """Every object in the local backend's data folder (what a refusal must not add to)."""
    objects = data_dir / "objects"
    if not objects.exists():
        return []
    return sorted(str(p.relative_to(objects)) for p in objects.rglob("*") if p.is_file())


def signed_in(user: User, **kwargs: Any) -> Client:
    client = Client(**kwargs)
    client.force_login(user)
    return client


def csrf_client(user: User | None) -> tuple[Client, dict[str, str]]:
    """A client that enforces CSRF, with the header the element sends (from the cookie)."""
    client = Client(enforce_csrf_checks=True)
    if user is not None:
        client.force_login(user)
    assert client.get("/uploads/api/config").status_code == 200  # sets the csrftoken cookie
    return client, {"X-CSRFToken": client.cookies["csrftoken"].value}


def sign(client: Client, data: bytes, headers: dict[str, str] | None = None, **claim: Any) -> Any:
    body = {"filename": "cat.png", "content_type": "image/png", "size": len(data), **claim}
    return client.post(
        "/uploads/api/uploads", json.dumps(body), "application/json", headers=headers or {}
    )


def post_form(client: Client, form: dict[str, Any], data: bytes) -> Any:
    boundary = "test-boundary-7d1f"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in form["fields"].items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="x"\r\n'
        f"Content-Type: {form['content_type']}\r\n\r\n".encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return client.generic(
        "POST", form["url"], b"".join(parts), f"multipart/form-data; boundary={boundary}"
    )


def upload(client: Client, data: bytes, headers: dict[str, str] | None = None) -> Any:
    """Sign, post to the app's own storage endpoint, complete: the element's three steps."""
    signed = sign(client, data, headers)
    assert signed.status_code == 201, signed.content
    form = signed.json()["upload"]
    assert form["url"] == "/uploads/storage"
    assert post_form(client, form, data).status_code == 204
    return client.post(f"/uploads/api/uploads/{form['id']}/complete", headers=headers or {})


def fetch(client: Client, url: str) -> tuple[int, str, bytes]:
    """GET a file the app streams: status, type and body (the stream closed)."""
    response = client.get(url)
    try:
        body = b"".join(response.streaming_content) if response.streaming else response.content
        return response.status_code, response.get("Content-Type", ""), body
    finally:
        response.close()


def error_of(response: Any) -> dict[str, str]:
    assert response["Content-Type"] == "application/json"
    error: dict[str, str] = response.json()["error"]
    assert set(error) == {"code", "message"}
    return error


# --- the API ----------------------------------------------------------------------------------


def test_signed_in_user_uploads_lists_reads_and_deletes(s3drop_data_dir: Path, user: User) -> None:
    client, csrf = csrf_client(user)
    seen: list[tuple[str, Any]] = []

    def on_accepted(sender: Any, image: Any, principal: Any, **kwargs: Any) -> None:
        seen.append(("accepted", image.id))

    def on_deleted(sender: Any, image_id: str, principal: Any, **kwargs: Any) -> None:
        seen.append(("deleted", image_id))

    signals.image_accepted.connect(on_accepted)
    signals.image_deleted.connect(on_deleted)
    try:
        done = upload(client, samples.png(), csrf)
        assert done.status_code == 200, done.content
        image = done.json()["image"]
        assert image["width"] == 320
        listed = client.get("/uploads/api/images").json()["images"]
        assert [item["id"] for item in listed] == [image["id"]]
        # The image URLs point into this app's own storage endpoint, and serve the bytes.
        status, content_type, body = fetch(client, image["url"])
        assert (status, content_type) == (200, "image/png")
        assert body.startswith(b"\x89PNG")
        one = client.get(f"/uploads/api/images/{image['id']}").json()["image"]
        assert one["filename"] == "cat.png"
        moved = client.get(f"/uploads/api/images/{image['id']}/thumbnail")
        assert moved.status_code == 302
        assert moved["Location"].startswith("/uploads/storage/thumbs/")
        assert fetch(client, moved["Location"])[:2] == (200, "image/webp")
        gone = client.delete(f"/uploads/api/images/{image['id']}", headers=csrf)
        assert gone.status_code == 204
    finally:
        signals.image_accepted.disconnect(on_accepted)
        signals.image_deleted.disconnect(on_deleted)
    assert seen == [("accepted", image["id"]), ("deleted", image["id"])]
    assert [p for p in stored(s3drop_data_dir) if p.startswith(("images/", "thumbs/"))] == []


def test_anonymous_user_is_refused_and_nothing_is_signed(s3drop_data_dir: Path) -> None:
    client, csrf = csrf_client(None)
    response = sign(client, samples.png(), csrf)
    assert response.status_code == 401
    assert error_of(response)["code"] == "not_authenticated"
    assert client.get("/uploads/api/images").status_code == 401
    assert stored(s3drop_data_dir) == []


def test_post_without_csrf_token_is_refused_with_json(s3drop_data_dir: Path, user: User) -> None:
    client, _ = csrf_client(user)
    response = sign(client, samples.png())
    assert response.status_code == 403
    assert error_of(response)["code"] == "csrf_failed"
    wrong = sign(client, samples.png(), {"X-CSRFToken": "x" * 32})
    assert wrong.status_code == 403
    assert stored(s3drop_data_dir) == []


def test_anonymous_sessions_each_own_their_images(s3drop_data_dir: Path) -> None:
    with override_settings(S3DROP_ALLOW_ANONYMOUS=True):
        first, first_csrf = csrf_client(None)
        second, second_csrf = csrf_client(None)
        done = upload(first, samples.png(), first_csrf)
        assert done.status_code == 200, done.content
        image_id = done.json()["image"]["id"]
        assert second.get("/uploads/api/images").json()["images"] == []
        assert second.get(f"/uploads/api/images/{image_id}").status_code == 403
        refused = second.delete(f"/uploads/api/images/{image_id}", headers=second_csrf)
        assert refused.status_code == 403
        assert error_of(refused)["code"] == "forbidden"
        assert [item["id"] for item in first.get("/uploads/api/images").json()["images"]] == [
            image_id
        ]


def test_a_blank_owner_name_is_refused(s3drop_data_dir: Path, user: User) -> None:
    with override_settings(S3DROP_PRINCIPAL="tests.integrations.test_django.blank_name"):
        response = sign(signed_in(user), samples.png())
        assert response.status_code == 401
        assert error_of(response)["code"] == "not_authenticated"
        assert stored(s3drop_data_dir) == []


def blank_name(user: Any) -> str:
    return "  "


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"not json", 400, "invalid_request"),
        (b"[1, 2]", 400, "invalid_request"),
        (b'{"filename": "a.png"}', 400, "invalid_request"),
        (
            b'{"filename": "a.txt", "content_type": "text/html", "size": 10}',
            415,
            "type_not_allowed",
        ),
        (
            b'{"filename": "a.png", "content_type": "image/png", "size": 99999999}',
            413,
            "file_too_large",
        ),
        (b'{"filename": "a.png", "content_type": "image/png", "size": 0}', 400, "file_empty"),
        (b"{" + b" " * 20000 + b"}", 400, "invalid_request"),
    ],
)
def test_bad_sign_requests_get_json_errors(
    s3drop_data_dir: Path, user: User, body: bytes, status: int, code: str
) -> None:
    response = signed_in(user).post("/uploads/api/uploads", body, "application/json")
    assert response.status_code == status
    assert error_of(response)["code"] == code
    assert stored(s3drop_data_dir) == []


def test_other_refusals_are_json_with_their_status(s3drop_data_dir: Path, user: User) -> None:
    client = signed_in(user)
    missing = client.post("/uploads/api/uploads/8204117022960ysdmyc35mf/complete")
    assert (missing.status_code, error_of(missing)["code"]) == (404, "not_found")
    wrong_method = client.put("/uploads/api/uploads")
    assert (wrong_method.status_code, error_of(wrong_method)["code"]) == (405, "method_not_allowed")
    nowhere = client.get("/uploads/api/nowhere")
    assert (nowhere.status_code, error_of(nowhere)["code"]) == (404, "not_found")
    bad_limit = client.get("/uploads/api/images?limit=500")
    assert (bad_limit.status_code, error_of(bad_limit)["code"]) == (400, "invalid_request")
    missing_image = client.get("/uploads/api/images/8204117022960ysdmyc35mf/original")
    assert (missing_image.status_code, error_of(missing_image)["code"]) == (404, "not_found")
    variant = client.get("/uploads/api/images/8204117022960ysdmyc35mf/poster")
    assert (variant.status_code, error_of(variant)["code"]) == (400, "invalid_request")
    assert stored(s3drop_data_dir) == []


def test_rejected_image_is_422_and_deleted(s3drop_data_dir: Path, user: User) -> None:
    client = signed_in(user)
    rejected: list[str] = []

    def on_rejected(sender: Any, upload_id: str, error: Any, **kwargs: Any) -> None:
        rejected.append(error.code)

    signals.image_rejected.connect(on_rejected)
    try:
        done = upload(client, b"<html>not a png</html>" * 10)
    finally:
        signals.image_rejected.disconnect(on_rejected)
    assert done.status_code == 422
    assert error_of(done)["code"] == "not_an_image"
    assert rejected == ["not_an_image"]
    assert stored(s3drop_data_dir) == []


def test_tampered_storage_post_is_refused_in_s3_xml(s3drop_data_dir: Path, user: User) -> None:
    client = signed_in(user)
    data = samples.png()
    form = sign(client, data).json()["upload"]
    form["fields"]["key"] = "incoming/someone-else.png"
    response = post_form(Client(), form, data)  # no session, no CSRF: it is S3's signed POST
    assert response.status_code == 403
    assert response["Content-Type"] == "application/xml"
    assert b"<Code>AccessDenied</Code>" in response.content
    assert stored(s3drop_data_dir) == []


def test_too_large_storage_post_is_refused_in_s3_xml(s3drop_data_dir: Path, user: User) -> None:
    client = signed_in(user)
    small = png_bytes(16, 16)
    with override_settings(S3DROP={"data_dir": s3drop_data_dir, "max_bytes": "64KiB"}):
        form = sign(client, small).json()["upload"]
        big = samples.png(3, (700, 700))  # several of the bridge's chunks, over the signed range
        assert len(big) > 3 * 64 * 1024
        response = post_form(Client(), form, big)
    assert response.status_code == 400
    assert b"<Code>EntityTooLarge</Code>" in response.content
    assert stored(s3drop_data_dir) == []


# --- the model field --------------------------------------------------------------------------


def test_field_accepts_the_users_own_image(s3drop_image_factory: Any, user: User) -> None:
    image = s3drop_image_factory(owner=user)
    profile = Profile(user=user, avatar=image.id)
    profile.full_clean()
    profile.save()
    assert Profile.objects.get(user=user).avatar == image.id


def test_the_image_factory_posts_any_filename_and_any_bytes(
    s3drop_image_factory: Any, user: User
) -> None:
    """The fixture's body is httpx's multipart encoding (a boundary of its own, the name escaped):
    a name with quotes and CR LF, and bytes holding the fixed boundary the hand-built body used,
    are stored and promoted (storage answered 400 to each before)."""
    old_boundary = b"\r\n--s3drop-fixture-boundary--\r\n"
    image = samples.png(7, (32, 32))
    data = image[:-12] + samples.png_chunk(b"tEXt", b"note\0" + old_boundary) + image[-12:]
    stored_image = s3drop_image_factory(owner=user, data=data, filename='my "best"\r\ncat.png')
    assert stored_image.filename == 'my "best"cat.png'
    assert (stored_image.width, stored_image.height, stored_image.owner) == (32, 32, "ada")


@pytest.mark.parametrize(
    ("value", "code"),
    [("not-an-id", "invalid"), ("8204117022960ysdmyc35mf", "image_missing")],
)
def test_field_refuses_an_id_that_names_no_image(
    s3drop_data_dir: Path, user: User, value: str, code: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        Profile(user=user, avatar=value).full_clean()
    assert refused.value.error_dict["avatar"][0].code == code
    with pytest.raises(ValidationError):
        Profile(user=user, avatar=value).save()
    assert not Profile.objects.filter(user=user).exists()


def test_field_refuses_someone_elses_image(
    s3drop_image_factory: Any, user: User, other: User
) -> None:
    theirs = s3drop_image_factory(owner=other)
    with pytest.raises(ValidationError) as refused:
        Profile(user=user, avatar=theirs.id).full_clean()
    assert refused.value.error_dict["avatar"][0].code == "not_owner"
    with pytest.raises(ValidationError):
        Profile(user=user, avatar=theirs.id).save()
    assert not Profile.objects.filter(user=user).exists()


def test_model_form_renders_the_uploader_and_validates(
    s3drop_image_factory: Any, user: User, other: User
) -> None:
    form_class = modelform_factory(Profile, fields=["avatar"])
    html = str(form_class(instance=Profile(user=user))["avatar"])
    assert '<input type="hidden"' not in html
    assert (
        '<s3drop-uploader name="avatar" max-files="1" id="id_avatar" api="/uploads/api/" '
        'data-csrf-header="X-CSRFToken" data-csrf-cookie="csrftoken"></s3drop-uploader>'
    ) in html
    media = str(form_class().media)
    assert '<script src="/uploads/static/s3drop-django.js" type="module"></script>' in media
    client = Client()
    glue = fetch(client, "/uploads/static/s3drop-django.js")
    assert glue[:2] == (200, "text/javascript; charset=utf-8")
    assert b'import "./s3drop-uploader.js";' in glue[2]
    assert fetch(client, "/uploads/static/s3drop-uploader.js")[0] == 200
    # The placeholders' decoder, which the element imports from beside itself.
    assert fetch(client, "/uploads/static/thumbhash.js")[:2] == (
        200,
        "text/javascript; charset=utf-8",
    )
    assert fetch(client, "/uploads/static/settings.py")[0] == 404
    theirs = s3drop_image_factory(owner=other)
    form = form_class({"avatar": theirs.id}, instance=Profile(user=user))
    assert not form.is_valid()
    assert "belongs to someone else" in form.errors["avatar"][0]
    mine = s3drop_image_factory(owner=user)
    data = QueryDict(mutable=True)
    data.setlist("avatar", ["", mine.id])  # the element's field, and a cleared one
    form = form_class(data, instance=Profile(user=user))
    assert form.is_valid(), form.errors
    profile = form.save(commit=False)
    assert profile.avatar == mine.id
    # Editing the row: the current image is kept (a hidden input) unless removed or replaced.
    editing = str(form_class(instance=profile)["avatar"])
    assert f'<input type="hidden" name="avatar" value="{mine.id}">' in editing
    assert '<img src="/uploads/storage/thumbs/' in editing
    kept = form_class(QueryDict(f"avatar={mine.id}"), instance=profile)
    assert kept.is_valid()
    assert kept.cleaned_data["avatar"] == mine.id
    removed = form_class(QueryDict(f"avatar={mine.id}&avatar-clear=on"), instance=profile)
    assert removed.is_valid()
    assert removed.cleaned_data["avatar"] == ""


# --- template tags ----------------------------------------------------------------------------


def test_template_tags_render_urls_that_serve_the_image(
    s3drop_image_factory: Any, user: User
) -> None:
    image = s3drop_image_factory(owner=user, data=png_bytes(40, 30))
    template = Template(
        "{% load s3drop %}{% s3drop_url id %}|{% s3drop_thumbnail_url id %}|"
        '{% s3drop_img id alt="Ada" class="avatar" %}|{% s3drop_img missing %}|'
        "{% s3drop_img id thumbhash=True %}"
    )
    url, thumb, img, nothing, blurred = template.render(
        Context({"id": image.id, "missing": "8204117022960ysdmyc35mf"})
    ).split("|")
    client = Client()  # the URLs are signed: no session needed
    assert fetch(client, html.unescape(url))[:2] == (200, "image/png")  # HTML-escaped: &amp;
    assert fetch(client, html.unescape(thumb))[:2] == (200, "image/webp")
    assert img.startswith('<img src="/uploads/storage/images/')
    # The image's dominant colour is painted behind it while it loads.
    assert image.placeholder is not None
    assert img.endswith(
        f' alt="Ada" style="background-color: #{image.placeholder.color}" class="avatar">'
    )
    assert nothing == ""
    # Opted in: the ThumbHash's picture as well, a PNG data URL.
    assert (
        f'style="background-color: #{image.placeholder.color}; background-image: url(data:image/png;base64,'
        in blurred
    )


# --- checks -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "ids"),
    [
        ({"S3DROP": {"max_bytes": "ten megs"}}, ["s3drop.E001"]),
        ({"S3DROP": {"max_byte": 10}}, ["s3drop.E002"]),
        (
            {
                "S3DROP_ALLOW_ANONYMOUS": True,
                "MIDDLEWARE": ["django.contrib.auth.middleware.AuthenticationMiddleware"],
            },
            ["s3drop.E003"],
        ),
        ({"S3DROP_PRINCIPAL": "no.such.function"}, ["s3drop.E004"]),
        ({"ROOT_URLCONF": "tests.integrations.djangoproject.nourls"}, ["s3drop.W001"]),
        ({}, []),
    ],
)
def test_system_checks_name_the_misconfiguration(
    s3drop_data_dir: Path, overrides: dict[str, Any], ids: list[str]
) -> None:
    with override_settings(**overrides):
        found = [m.id for m in run_checks() if (m.id or "").startswith("s3drop.")]
    assert found == ids


def test_config_is_the_bundled_apps() -> None:
    """The element reads auth and the browser's downscale from here as from the bundled app."""
    from s3drop.integrations.django.conf import get_drop

    served = Client().get("/uploads/api/config").json()
    assert served == get_drop().client_config()
    assert {"auth", "client_max_side", "client_quality", "types"} <= set(served)


def test_the_picture_tag_renders_sources_that_serve_the_variants(
    s3drop_image_factory: Any, user: User
) -> None:
    image = s3drop_image_factory(owner=user, data=png_bytes(700, 400))
    template = Template(
        "{% load s3drop %}"
        '{% s3drop_picture id sizes="50vw" alt=alt class="avatar" %}|{% s3drop_picture missing %}'
    )
    rendered, nothing = template.render(
        Context({"id": image.id, "missing": "8204117022960ysdmyc35mf", "alt": '"><script>'})
    ).split("|")
    assert rendered.startswith('<picture><source type="image/webp" srcset="/uploads/storage/')
    assert rendered.endswith(
        ' sizes="50vw" width="700" height="400" loading="lazy" decoding="async"'
        ' alt="&quot;&gt;&lt;script&gt;" class="avatar"></picture>'
    )
    srcset = html.unescape(rendered.split('srcset="', 1)[1].split('"', 1)[0])
    smallest = srcset.split(", ")[0].split(" ")[0]
    assert fetch(Client(), smallest)[:2] == (200, "image/webp")
    assert nothing == ""
