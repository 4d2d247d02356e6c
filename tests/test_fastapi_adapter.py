"""The FastAPI/Starlette adapter: ``uploads_app(drop, user=<the host's dependency>, principal=...)``
mounted under a prefix. The host's login decides who uploads (its 401 comes back in s3drop's error
shape), refusals are JSON 4xx (never a plain-text 500), the local receiver is part of what is
mounted, and ownership follows the host's users. In-process (ASGI)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import Depends, FastAPI, HTTPException, Request
from starlette.applications import Starlette
from starlette.routing import Mount

from s3drop import Principal, S3Drop, Settings
from s3drop.integrations.fastapi import uploads_app
from s3drop.limits import MemoryLimitStore

from . import samples
from .inprocess import BASE, asgi_client, sign, stored, upload


@dataclass
class User:
    """The host's own user model."""

    id: int
    login: str


USERS = {"s-alice": User(1, "alice"), "s-bob": User(2, "bob"), "s-blank": User(3, " ")}


def session_user(request: Request) -> User:
    """The host's dependency: a session cookie, 401 when signed out."""
    user = USERS.get(request.cookies.get("session", ""))
    if user is None:
        raise HTTPException(401, "sign in first", headers={"WWW-Authenticate": "Cookie"})
    return user


def current_user(user: User = Depends(session_user)) -> User:  # noqa: B008 - FastAPI's idiom
    """A dependency with a sub-dependency of its own, as hosts have."""
    return user


def make_drop(tmp_path: Path) -> S3Drop:
    return S3Drop(Settings(data_dir=tmp_path / "data"), limit_store=MemoryLimitStore())


@pytest.fixture
def drop(tmp_path: Path) -> S3Drop:
    return make_drop(tmp_path)


@pytest.fixture
def host(drop: S3Drop) -> Iterator[httpx.Client]:
    app = FastAPI()
    app.mount("/uploads", uploads_app(drop, user=current_user, principal=lambda user: user.login))
    with asgi_client(app) as http:
        yield http


def signed_in(http: httpx.Client, session: str) -> httpx.Client:
    http.cookies.set("session", session)
    return http


def test_the_hosts_dependency_refuses_with_401_in_s3drops_shape(
    host: httpx.Client, drop: S3Drop
) -> None:
    answer = sign(host, "/uploads/api", samples.png(0, (8, 8)))
    assert answer.status_code == 401
    assert answer.json() == {"error": {"code": "not_authenticated", "message": "sign in first"}}
    assert answer.headers["www-authenticate"] == "Cookie"  # the host's own headers kept
    assert host.get("/uploads/api/images").status_code == 401
    assert stored(drop) == []


def test_a_blank_user_name_is_refused_not_shared(host: httpx.Client, drop: S3Drop) -> None:
    answer = sign(signed_in(host, "s-blank"), "/uploads/api", samples.png(0, (8, 8)))
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "not_authenticated"
    assert stored(drop) == []


@pytest.mark.parametrize(
    ("content_type", "data", "status", "code"),
    [
        ("text/html", b"<script>alert(1)</script>", 415, "type_not_allowed"),
        ("image/png", b"", 400, "file_empty"),
        ("image/png", b"x" * (10 * 1024 * 1024 + 1), 413, "file_too_large"),
    ],
)
def test_refusals_are_json_4xx(
    host: httpx.Client,
    drop: S3Drop,
    content_type: str,
    data: bytes,
    status: int,
    code: str,
) -> None:
    answer = sign(signed_in(host, "s-alice"), "/uploads/api", data, content_type)
    assert answer.status_code == status
    assert answer.headers["content-type"] == "application/json"
    assert answer.json()["error"]["code"] == code
    assert stored(drop) == []


def test_a_rejected_image_is_json_422_and_nothing_is_kept(host: httpx.Client, drop: S3Drop) -> None:
    http = signed_in(host, "s-alice")
    fake = b"<html>not a png</html>"
    answer = sign(http, "/uploads/api", fake)
    form = answer.json()["upload"]
    assert form["url"] == f"{BASE}/uploads/storage"
    posted = http.post(
        form["url"], data=form["fields"], files={"file": ("a.png", fake, "image/png")}
    )
    assert posted.status_code == 204
    done = http.post(f"/uploads/api/uploads/{form['id']}/complete")
    assert done.status_code == 422
    assert done.json()["error"]["code"] == "not_an_image"
    assert stored(drop) == []


def test_uploads_belong_to_the_hosts_users(host: httpx.Client, drop: S3Drop) -> None:
    image = upload(signed_in(host, "s-alice"), "/uploads/api", samples.png(2, (40, 30)))
    (key,) = [key for key in stored(drop) if key.startswith("owners/")]
    assert key.startswith("owners/alice/")
    assert (
        host.get(f"/uploads/api/images/{image['id']}/thumbnail", follow_redirects=False).status_code
        == 302
    )
    bob = signed_in(host, "s-bob")
    assert bob.get("/uploads/api/images").json()["images"] == []
    theirs = bob.get(f"/uploads/api/images/{image['id']}/original", follow_redirects=False)
    assert theirs.status_code == 403
    assert bob.delete(f"/uploads/api/images/{image['id']}").status_code == 403
    assert len([key for key in stored(drop) if key.startswith("images/")]) == 1


def test_the_element_is_served_and_the_page_is_not(host: httpx.Client) -> None:
    element = host.get("/uploads/static/s3drop-uploader.js")
    assert element.status_code == 200
    assert "customElements.define" in element.text
    assert host.get("/uploads/").status_code == 404  # the host's pages are its own


def test_it_mounts_in_a_plain_starlette_app_with_a_principal_dependency(tmp_path: Path) -> None:
    drop = make_drop(tmp_path)

    async def who(request: Request) -> Principal | None:
        token = request.headers.get("x-user")
        return Principal(token) if token else None

    app = Starlette(routes=[Mount("/media", app=uploads_app(drop, user=who))])
    with asgi_client(app, headers={"x-user": "carol"}) as http:
        image = upload(http, "/media/api", samples.png(3, (40, 30)))
        assert image["url"].startswith(f"{BASE}/media/storage/images/")
        anonymous = http.get("/media/api/images", headers={"x-user": ""})
        assert anonymous.status_code == 401
        assert anonymous.json()["error"]["message"] == "sign in to upload images"


def test_a_host_served_on_its_own_name_says_so_in_the_settings(tmp_path: Path) -> None:
    """Host and Origin checks hold in the mounted app too: a name s3drop was not told about is
    refused; S3DROP_PUBLIC_URL (the mounted app's URL) names both host and origin."""
    page = {"Origin": "https://journal.example.com", "Cookie": "session=s-alice"}
    data = samples.png(0, (8, 8))
    claim = {"filename": "a.png", "content_type": "image/png", "size": len(data)}
    for public_url, status in [(None, 400), ("https://journal.example.com/uploads", 201)]:
        drop = S3Drop(
            Settings(data_dir=tmp_path / str(status), public_url=public_url),
            limit_store=MemoryLimitStore(),
        )
        app = FastAPI()
        app.mount("/uploads", uploads_app(drop, user=current_user, principal=lambda u: u.login))
        with asgi_client(app, base_url="https://journal.example.com") as http:
            answer = http.post("/uploads/api/uploads", json=claim, headers=page)
        assert answer.status_code == status, answer.text
        if status == 400:
            assert answer.json()["error"]["code"] == "invalid_host"
            assert stored(drop) == []
        else:
            assert answer.json()["upload"]["url"] == "https://journal.example.com/uploads/storage"
