"""The Flask blueprint in process: a real Flask app with its own sign-in (a session), driven with
Flask's test client. API, cross-site refusal, anonymous refusal and session owners, the error
shapes, the storage endpoint, the Jinja helpers."""

from __future__ import annotations

import hashlib
import html
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from s3drop import Principal, S3Drop, Settings
from s3drop.web.app import STATIC
from tests import samples

if TYPE_CHECKING:
    from flask import Flask, render_template_string, session
    from flask.testing import FlaskClient

    from s3drop.integrations.flask import s3drop_blueprint

ORIGIN = "http://localhost"


@pytest.fixture(scope="module", autouse=True)
def _flask() -> None:
    """Flask is imported when this module's first test runs, not when pytest collects it: every
    xdist worker collects every module, and only the one that runs these tests should pay for it.
    The names the tests use become this module's globals here (the imports above are for the
    type checker)."""
    from flask import Flask, render_template_string, session
    from flask.testing import FlaskClient

    from s3drop.integrations.flask import s3drop_blueprint

    globals().update(
        Flask=Flask,
        render_template_string=render_template_string,
        session=session,
        FlaskClient=FlaskClient,
        s3drop_blueprint=s3drop_blueprint,
    )


def make_app(data_dir: Path, **options: Any) -> tuple[Flask, S3Drop]:
    drop = S3Drop(Settings(data_dir=data_dir))
    app = Flask(__name__)
    app.secret_key = "tests-only"

    def current() -> Principal | None:
        name = session.get("user")
        return Principal(name) if name is not None else None

    app.register_blueprint(s3drop_blueprint(drop, principal=current, **options), url_prefix="/up")

    @app.post("/login/<name>")
    def login(name: str) -> str:
        session["user"] = name
        return "ok"

    return app, drop


@pytest.fixture
def app(tmp_path: Path) -> Flask:
    return make_app(tmp_path / "data")[0]


def objects(data_dir: Path) -> list[str]:
    found = data_dir / "objects"
    return sorted(str(p.relative_to(found)) for p in found.rglob("*") if p.is_file())


def signed_in(app: Flask, name: str = "ada") -> FlaskClient:
    client = app.test_client()
    assert client.post(f"/login/{name}").status_code == 200
    return client


def sign(client: FlaskClient, data: bytes, **claim: Any) -> Any:
    body = {"filename": "cat.png", "content_type": "image/png", "size": len(data), **claim}
    return client.post("/up/api/uploads", json=body, headers={"Origin": ORIGIN})


def post_form(client: FlaskClient, form: dict[str, Any], data: bytes) -> Any:
    boundary = "test-boundary-9c2e"
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
    return client.post(
        form["url"],
        data=b"".join(parts),
        content_type=f"multipart/form-data; boundary={boundary}",
    )


def upload(client: FlaskClient, data: bytes) -> Any:
    signed = sign(client, data)
    assert signed.status_code == 201, signed.data
    form = signed.get_json()["upload"]
    assert form["url"] == "/up/storage"
    assert post_form(client, form, data).status_code == 204
    return client.post(f"/up/api/uploads/{form['id']}/complete", headers={"Origin": ORIGIN})


def error_of(response: Any) -> dict[str, str]:
    assert response.content_type == "application/json"
    error: dict[str, str] = response.get_json()["error"]
    assert set(error) == {"code", "message"}
    return error


def fetch(client: FlaskClient, url: str) -> tuple[int, str, bytes]:
    response = client.get(url)
    try:
        return response.status_code, response.content_type, response.get_data()
    finally:
        response.close()


def test_signed_in_user_uploads_lists_reads_and_deletes(tmp_path: Path) -> None:
    app, _ = make_app(tmp_path / "data")
    client = signed_in(app)
    done = upload(client, samples.png())
    assert done.status_code == 200, done.data
    image = done.get_json()["image"]
    listed = client.get("/up/api/images").get_json()["images"]
    assert [item["id"] for item in listed] == [image["id"]]
    status, content_type, body = fetch(client, image["url"])
    assert (status, content_type) == (200, "image/png")
    assert body.startswith(b"\x89PNG")
    assert client.get(f"/up/api/images/{image['id']}").get_json()["image"]["filename"] == "cat.png"
    moved = client.get(f"/up/api/images/{image['id']}/thumbnail")
    assert moved.status_code == 302
    assert moved.headers["Cache-Control"].startswith("private, max-age=")
    original = client.get(f"/up/api/images/{image['id']}/original")
    assert fetch(client, original.headers["Location"])[:2] == (200, "image/png")
    assert fetch(client, moved.headers["Location"])[:2] == (200, "image/webp")
    other = signed_in(app, "bob")
    refused = other.delete(f"/up/api/images/{image['id']}", headers={"Origin": ORIGIN})
    assert (refused.status_code, error_of(refused)["code"]) == (403, "forbidden")
    gone = client.delete(f"/up/api/images/{image['id']}", headers={"Origin": ORIGIN})
    assert gone.status_code == 204
    assert [p for p in objects(tmp_path / "data") if p.startswith(("images/", "thumbs/"))] == []


def test_nobody_signed_in_is_refused_and_nothing_is_signed(tmp_path: Path) -> None:
    app, _ = make_app(tmp_path / "data")
    response = sign(app.test_client(), samples.png())
    assert (response.status_code, error_of(response)["code"]) == (401, "not_authenticated")
    assert objects(tmp_path / "data") == []


def test_cross_site_post_is_refused(tmp_path: Path) -> None:
    app, _ = make_app(tmp_path / "data")
    client = signed_in(app)
    body = {"filename": "cat.png", "content_type": "image/png", "size": 100}
    response = client.post("/up/api/uploads", json=body, headers={"Origin": "https://evil.test"})
    assert (response.status_code, error_of(response)["code"]) == (403, "forbidden")
    assert objects(tmp_path / "data") == []


def test_anonymous_sessions_each_own_their_images(tmp_path: Path) -> None:
    app, _ = make_app(tmp_path / "data", allow_anonymous=True)
    first, second = app.test_client(), app.test_client()
    done = upload(first, samples.png())
    assert done.status_code == 200, done.data
    image_id = done.get_json()["image"]["id"]
    assert second.get("/up/api/images").get_json()["images"] == []
    assert second.get(f"/up/api/images/{image_id}").status_code == 403
    assert [i["id"] for i in first.get("/up/api/images").get_json()["images"]] == [image_id]


def test_a_blank_principal_is_refused(tmp_path: Path) -> None:
    drop = S3Drop(Settings(data_dir=tmp_path / "data"))
    app = Flask(__name__)
    app.register_blueprint(
        s3drop_blueprint(drop, principal=lambda: Principal(" ")), url_prefix="/up"
    )
    response = sign(app.test_client(), samples.png())
    assert (response.status_code, error_of(response)["code"]) == (401, "not_authenticated")
    assert objects(tmp_path / "data") == []


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"not json", 400, "invalid_request"),
        (b'{"filename": "a.txt", "content_type": "text/html", "size": 9}', 415, "type_not_allowed"),
        (
            b'{"filename": "a.png", "content_type": "image/png", "size": 999999999}',
            413,
            "file_too_large",
        ),
        (b"{" + b" " * 20000 + b"}", 400, "invalid_request"),
    ],
)
def test_bad_sign_requests_get_json_errors(
    tmp_path: Path, body: bytes, status: int, code: str
) -> None:
    app, _ = make_app(tmp_path / "data")
    client = signed_in(app)
    response = client.post("/up/api/uploads", data=body, content_type="application/json")
    assert (response.status_code, error_of(response)["code"]) == (status, code)
    assert objects(tmp_path / "data") == []


def test_other_refusals_are_json(tmp_path: Path) -> None:
    app, _ = make_app(tmp_path / "data")
    client = signed_in(app)
    missing = client.post("/up/api/uploads/8204117022960ysdmyc35mf/complete")
    assert (missing.status_code, error_of(missing)["code"]) == (404, "not_found")
    nowhere = client.get("/up/api/nowhere")
    assert (nowhere.status_code, error_of(nowhere)["code"]) == (404, "not_found")
    assert client.get("/elsewhere").content_type.startswith("text/html")  # the host's own 404
    wrong = client.put("/up/api/uploads")
    assert (wrong.status_code, error_of(wrong)["code"]) == (405, "method_not_allowed")
    rejected = upload(client, b"<html>not a png</html>" * 10)
    assert (rejected.status_code, error_of(rejected)["code"]) == (422, "not_an_image")
    assert objects(tmp_path / "data") == []


def test_tampered_storage_post_is_refused_in_s3_xml(tmp_path: Path) -> None:
    app, _ = make_app(tmp_path / "data")
    client = signed_in(app)
    data = samples.png()
    form = sign(client, data).get_json()["upload"]
    form["fields"]["key"] = "incoming/someone-else.png"
    response = post_form(app.test_client(), form, data)
    assert response.status_code == 403
    assert response.content_type == "application/xml"
    assert b"<Code>AccessDenied</Code>" in response.data
    assert objects(tmp_path / "data") == []


def test_jinja_helpers_render_the_element_and_the_image(tmp_path: Path) -> None:
    app, _ = make_app(tmp_path / "data")
    client = signed_in(app)
    image = upload(client, samples.png()).get_json()["image"]
    image_id = image["id"]
    with app.test_request_context():
        rendered = render_template_string(
            "{{ s3drop_script() }}|{{ s3drop_uploader('photo', value=id, accept='image/png', required=False, multiple=None) }}|"
            "{{ s3drop_img(id, alt='A <cat>', class_='pic') }}|{{ s3drop_thumbnail_url(id) }}|"
            "{{ s3drop_img('8204117022960ysdmyc35mf') }}|{{ s3drop_img(id, thumbhash=True) }}",
            id=image_id,
        )
    script, uploader, img, thumb, nothing, blurred = rendered.split("|")
    assert script == '<script type="module" src="/up/static/s3drop-uploader.js"></script>'
    assert uploader == (
        f'<input type="hidden" name="photo" value="{image_id}">'
        '<s3drop-uploader name="photo" api="/up/api/" max-files="1" accept="image/png">'
        "</s3drop-uploader>"
    )
    assert img.startswith('<img src="/up/storage/images/')
    color = image["placeholder"]["color"]  # painted behind the image while it loads
    assert img.endswith(f' alt="A &lt;cat&gt;" style="background-color: {color}" class="pic">')
    src = html.unescape(img.split('"')[1])
    assert fetch(client, src)[:2] == (200, "image/png")
    assert fetch(client, html.unescape(thumb))[:2] == (200, "image/webp")
    assert nothing == ""
    assert "background-image: url(data:image/png;base64," in blurred  # the ThumbHash, opted in
    assert json.loads(client.get("/up/api/config").data)["backend"] == "local"
    with client.get("/up/static/thumbhash.js") as decoder:  # the element imports it from beside
        assert decoder.status_code == 200
        assert decoder.mimetype == "text/javascript"
        assert decoder.data == (STATIC / "thumbhash.js").read_bytes()


def test_anonymous_uploads_without_a_secret_key_are_a_named_configuration_error(
    tmp_path: Path,
) -> None:
    drop = S3Drop(Settings(data_dir=tmp_path / "data"))
    app = Flask(__name__)
    blueprint = s3drop_blueprint(drop, principal=lambda: None, allow_anonymous=True)
    app.register_blueprint(blueprint, url_prefix="/up")
    response = sign(app.test_client(), samples.png())
    assert (response.status_code, error_of(response)["code"]) == (500, "bad_configuration")
    assert "secret_key" in error_of(response)["message"]
    assert objects(tmp_path / "data") == []


def test_the_same_bytes_again_are_answered_at_signing_with_the_image(tmp_path: Path) -> None:
    """The adapters share integrations/api: a duplicate is 409 already_uploaded with the image,
    as in the bundled app, and nothing is signed or stored."""
    app, _ = make_app(tmp_path / "data")
    client = signed_in(app)
    data = samples.png(3)
    digest = hashlib.sha256(data).hexdigest()
    image = upload(client, data).get_json()["image"]
    before = objects(tmp_path / "data")
    again = sign(client, data, sha256=digest)
    assert again.status_code == 409
    body = again.get_json()
    assert body["error"]["code"] == "already_uploaded"
    assert "already in your gallery" in body["error"]["message"]
    assert body["image"]["id"] == image["id"]
    assert "upload" not in body
    assert objects(tmp_path / "data") == before
    other = signed_in(app, "bob")  # duplicates are per owner
    assert sign(other, data, sha256=digest).status_code == 201


def test_config_is_the_bundled_apps(tmp_path: Path) -> None:
    """The element reads auth and the browser's downscale from here as from the bundled app."""
    app, drop = make_app(tmp_path / "data")
    served = json.loads(app.test_client().get("/up/api/config").data)
    assert served == drop.client_config()
    assert {"auth", "client_max_side", "client_quality", "types"} <= set(served)


def test_the_picture_helper_renders_sources_that_serve_the_variants(tmp_path: Path) -> None:
    app, _ = make_app(tmp_path / "data")
    client = signed_in(app)
    image_id = upload(client, samples.png(size=(700, 400))).get_json()["image"]["id"]
    with app.test_request_context():
        rendered = render_template_string(
            "{{ s3drop_picture(id, sizes='50vw', alt=alt, class_='pic') }}|"
            "{{ s3drop_picture('8204117022960ysdmyc35mf') }}",
            id=image_id,
            alt='"><script>',
        )
    picture, nothing = rendered.split("|")
    assert picture.startswith('<picture><source type="image/webp" srcset="/up/storage/variants/')
    assert picture.endswith(
        ' sizes="50vw" width="700" height="400" loading="lazy" decoding="async"'
        ' alt="&quot;&gt;&lt;script&gt;" class="pic"></picture>'
    )
    srcset = html.unescape(picture.split('srcset="', 1)[1].split('"', 1)[0])
    smallest = srcset.split(", ")[0].split(" ")[0]
    assert fetch(client, smallest)[:2] == (200, "image/webp")
    assert nothing == ""
