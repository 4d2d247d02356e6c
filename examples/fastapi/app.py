"""A photo journal: posts with photos, in FastAPI, with s3drop mounted at /uploads behind the
journal's own login.

Start it with ``examples/fastapi/run --port 8001`` (it installs what it needs into the project's
.venv), open http://127.0.0.1:8001, pick a name and a password, write a post, drop photos on it.

What is the journal's own: its SQLite tables (users, sessions, posts, photos), its login (a
session cookie), its templates and the form. What s3drop adds: ``uploads_app`` (the upload API,
the storage receiver and the ``<s3drop-uploader>`` element, mounted under ``/uploads``) and one
library call (``image_url``) that checks a submitted photo is an accepted image of the user's. A
post keeps nothing but image ids; pages show them through the stable URLs
``/uploads/api/images/{id}/thumbnail`` and ``.../original``.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import os
import secrets
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import uvicorn
from fastapi import APIRouter, Depends, FastAPI, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from s3drop import Principal, S3Drop, S3DropError, Settings
from s3drop.integrations.fastapi import uploads_app

HERE = Path(__file__).resolve().parent
DATA = Path(os.environ.get("JOURNAL_DATA", HERE / "data"))
SESSION_COOKIE = "journal_session"
MAX_PHOTOS = 10

SCHEMA = """
create table if not exists users (
  id integer primary key, name text unique not null, salt blob not null, hash blob not null);
create table if not exists sessions (
  token text primary key, user_id integer not null references users(id));
create table if not exists posts (
  id integer primary key, user_id integer not null references users(id),
  title text not null, created_at real not null);
create table if not exists photos (
  post_id integer not null references posts(id), position integer not null,
  image_id text not null, primary key (post_id, position));
"""


@dataclass(frozen=True)
class User:
    id: int
    name: str


# --- the journal's own storage and login ----------------------------------------------------------


def database() -> Iterator[sqlite3.Connection]:
    """One connection per request (FastAPI runs these sync dependencies in its thread pool).
    Endpoints commit what they write before they answer; anything else is rolled back."""
    connection = sqlite3.connect(DATA / "journal.sqlite3", check_same_thread=False)
    try:
        yield connection
    finally:
        connection.close()


Database = Annotated[sqlite3.Connection, Depends(database)]


def _hash(password: str, salt: bytes) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1)


def signed_in_user(request: Request, db: Database) -> User | None:
    token = request.cookies.get(SESSION_COOKIE, "")
    row = db.execute(
        "select users.id, users.name from sessions join users on users.id = sessions.user_id"
        " where sessions.token = ?",
        (token,),
    ).fetchone()
    return User(*row) if row else None


def current_user(user: Annotated[User | None, Depends(signed_in_user)]) -> User:
    """The journal's login, as a dependency: its pages and s3drop's API both use it."""
    if user is None:
        raise HTTPException(401, "sign in to the journal first")
    return user


# --- the app --------------------------------------------------------------------------------------

pages = APIRouter()
templates = Jinja2Templates(directory=HERE / "templates")


def create_journal(settings: Settings | None = None) -> FastAPI:
    """The journal, with s3drop under /uploads. s3drop's settings come from the environment
    (S3DROP_*, AWS_*); by default its files go beside the journal's database."""
    DATA.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(DATA / "journal.sqlite3") as setup:
        setup.executescript(SCHEMA)
    drop = S3Drop(settings or Settings(data_dir=DATA / "s3drop"))

    app = FastAPI(title="Photo journal")
    app.state.drop = drop
    app.include_router(pages)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.mount(
        "/uploads",
        uploads_app(drop, user=current_user, principal=lambda user: user.name),
        name="uploads",
    )
    return app


def _posts(db: sqlite3.Connection, user: User) -> list[dict[str, Any]]:
    posts = []
    for post_id, title, created_at in db.execute(
        "select id, title, created_at from posts where user_id = ? order by id desc", (user.id,)
    ):
        photos = [
            image_id
            for (image_id,) in db.execute(
                "select image_id from photos where post_id = ? order by position", (post_id,)
            )
        ]
        posts.append({"id": post_id, "title": title, "created_at": created_at, "photos": photos})
    return posts


def _journal(
    request: Request,
    db: sqlite3.Connection,
    user: User,
    *,
    error: str = "",
    title: str = "",
    status: int = 200,
) -> Response:
    context = {"user": user, "posts": _posts(db, user), "error": error, "title": title}
    return templates.TemplateResponse(request, "journal.html", context, status_code=status)


@pages.get("/")
def journal(request: Request, db: Database) -> Response:
    user = signed_in_user(request, db)
    if user is None:
        return RedirectResponse("/login", status_code=303)
    return _journal(request, db, user)


@pages.post("/posts")
def publish(
    request: Request,
    db: Database,
    user: Annotated[User, Depends(current_user)],
    title: Annotated[str, Form(max_length=200)] = "",
    photos: Annotated[list[str], Form()] = [],  # noqa: B006 - FastAPI copies form defaults
) -> Response:
    """A post from the form: its title and the image ids the uploader element put in it."""
    if not title.strip():
        return _journal(request, db, user, error="Give the post a title.", status=422)
    if not photos:
        return _journal(request, db, user, error="Add at least one photo.", title=title, status=422)
    if len(photos) > MAX_PHOTOS:
        error = f"At most {MAX_PHOTOS} photos."
        return _journal(request, db, user, error=error, title=title, status=422)
    drop: S3Drop = request.app.state.drop
    for image_id in photos:
        try:  # an accepted image of this user's (one HEAD, no listing)
            drop.image_url(image_id, principal=Principal(user.name))
        except S3DropError as exc:
            error = f"Photo {image_id}: {exc.message}"
            return _journal(request, db, user, error=error, title=title, status=422)
    cursor = db.execute(
        "insert into posts (user_id, title, created_at) values (?, ?, ?)",
        (user.id, title.strip(), time.time()),
    )
    db.executemany(
        "insert into photos (post_id, position, image_id) values (?, ?, ?)",
        [(cursor.lastrowid, position, image_id) for position, image_id in enumerate(photos)],
    )
    db.commit()
    return RedirectResponse("/", status_code=303)


@pages.get("/login")
def login_page(request: Request) -> Response:
    return templates.TemplateResponse(request, "login.html", {"error": ""})


@pages.post("/login")
def login(
    request: Request,
    db: Database,
    name: Annotated[str, Form(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_.-]+$")],
    password: Annotated[str, Form(min_length=8, max_length=200)],
) -> Response:
    """Sign in; a name used for the first time is registered with that password."""
    row = db.execute("select id, salt, hash from users where name = ?", (name,)).fetchone()
    if row is None:
        salt = secrets.token_bytes(16)
        user_id = db.execute(
            "insert into users (name, salt, hash) values (?, ?, ?)",
            (name, salt, _hash(password, salt)),
        ).lastrowid
    elif hmac.compare_digest(_hash(password, row[1]), row[2]):
        user_id = row[0]
    else:
        context = {"error": "That password does not match this name."}
        return templates.TemplateResponse(request, "login.html", context, status_code=401)
    token = secrets.token_urlsafe(32)
    db.execute("insert into sessions (token, user_id) values (?, ?)", (token, user_id))
    db.commit()
    answer = RedirectResponse("/", status_code=303)
    answer.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="lax")
    return answer


@pages.post("/logout")
def logout(request: Request, db: Database) -> Response:
    db.execute("delete from sessions where token = ?", (request.cookies.get(SESSION_COOKIE, ""),))
    db.commit()
    answer = RedirectResponse("/login", status_code=303)
    answer.delete_cookie(SESSION_COOKIE)
    return answer


def main() -> None:
    parser = argparse.ArgumentParser(description="The photo journal example (FastAPI + s3drop).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    args = parser.parse_args()
    # s3drop learns where the journal is served (its own origin is then an allowed one); the
    # journal's login guards the uploads, so s3drop's own (S3DROP_AUTH) stays off on any address.
    where = {"host": args.host, "port": args.port, "public": True}
    if "S3DROP_DATA_DIR" not in os.environ:
        where["data_dir"] = DATA / "s3drop"
    journal = create_journal(Settings(**where))
    uvicorn.run(journal, host=args.host, port=args.port)


if __name__ == "__main__":
    main()
