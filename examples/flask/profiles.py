"""Member profiles with an avatar: Flask, its own users table in SQLite, its own sign-in, and
s3drop's blueprint under /uploads/ for the avatar upload."""

from __future__ import annotations

import os
import secrets
import sqlite3
from pathlib import Path
from typing import Any

from flask import Flask, g, redirect, render_template, request, session, url_for
from werkzeug.security import check_password_hash, generate_password_hash
from werkzeug.wrappers import Response

from s3drop import Principal, S3Drop, S3DropError, Settings
from s3drop.integrations.flask import s3drop_blueprint

DATA = Path(os.environ.get("PROFILES_DATA", Path(__file__).parent / "var"))
DATABASE = DATA / "profiles.sqlite3"
SCHEMA = """
CREATE TABLE IF NOT EXISTS member (
    id INTEGER PRIMARY KEY,
    name TEXT UNIQUE NOT NULL,
    password TEXT NOT NULL,
    display_name TEXT NOT NULL DEFAULT '',
    avatar TEXT            -- an s3drop image id
)
"""

app = Flask(__name__)
app.config.update(SESSION_COOKIE_SAMESITE="Lax", SESSION_COOKIE_HTTPONLY=True)
DATA.mkdir(parents=True, exist_ok=True)
_secret = DATA / "secret_key"
if not _secret.exists():
    _secret.write_text(secrets.token_hex(32))
app.secret_key = _secret.read_text()

drop = S3Drop(Settings(data_dir=DATA / "s3drop", max_bytes="5MiB"))


def db() -> sqlite3.Connection:
    if "db" not in g:
        g.db = sqlite3.connect(DATABASE)
        g.db.row_factory = sqlite3.Row
        g.db.execute(SCHEMA)
    connection: sqlite3.Connection = g.db
    return connection


@app.teardown_appcontext
def close_db(error: BaseException | None) -> None:
    connection = g.pop("db", None)
    if connection is not None:
        connection.close()


def current_member() -> sqlite3.Row | None:
    member_id = session.get("member")
    if member_id is None:
        return None
    row: sqlite3.Row | None = (
        db().execute("SELECT * FROM member WHERE id = ?", (member_id,)).fetchone()
    )
    return row


def current_principal() -> Principal | None:
    """Who s3drop records as the owner: the signed-in member (None: nobody, 401)."""
    member = current_member()
    return Principal(member["name"]) if member is not None else None


app.register_blueprint(s3drop_blueprint(drop, principal=current_principal), url_prefix="/uploads")


@app.route("/", methods=["GET", "POST"])
def profile() -> Any:
    member = current_member()
    if member is None:
        return redirect(url_for("login"))
    error = None
    if request.method == "POST":
        chosen = [value for value in request.form.getlist("avatar") if value]
        avatar = chosen[-1] if chosen else None
        display_name = request.form.get("display_name", "").strip()[:80]
        try:
            if avatar is None:
                raise ValueError("choose an avatar")
            drop.image_url(avatar, principal=Principal(member["name"]))  # exists, and is theirs
        except (S3DropError, ValueError) as exc:
            error = getattr(exc, "message", str(exc))
        else:
            db().execute(
                "UPDATE member SET display_name = ?, avatar = ? WHERE id = ?",
                (display_name, avatar, member["id"]),
            )
            db().commit()
            return redirect(url_for("profile"))
    return render_template("profile.html", member=member, error=error)


@app.route("/signup", methods=["GET", "POST"])
def signup() -> Any:
    if request.method == "POST":
        name = request.form.get("name", "").strip()
        password = request.form.get("password", "")
        if not name or len(password) < 8:
            return render_template("sign.html", signup=True, error="a name and 8+ characters"), 400
        try:
            cursor = db().execute(
                "INSERT INTO member (name, password, display_name) VALUES (?, ?, ?)",
                (name, generate_password_hash(password), name),
            )
        except sqlite3.IntegrityError:
            return render_template("sign.html", signup=True, error="that name is taken"), 400
        db().commit()
        session["member"] = cursor.lastrowid
        return redirect(url_for("profile"))
    return render_template("sign.html", signup=True, error=None)


@app.route("/login", methods=["GET", "POST"])
def login() -> Any:
    if request.method == "POST":
        row = (
            db()
            .execute("SELECT * FROM member WHERE name = ?", (request.form.get("name", ""),))
            .fetchone()
        )
        if row is None or not check_password_hash(
            row["password"], request.form.get("password", "")
        ):
            return render_template("sign.html", signup=False, error="wrong name or password"), 400
        session["member"] = row["id"]
        return redirect(url_for("profile"))
    return render_template("sign.html", signup=False, error=None)


@app.post("/logout")
def logout() -> Response:
    session.clear()
    return redirect(url_for("login"))
