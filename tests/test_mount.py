"""Mounted anywhere: ``host.mount("/uploads", create_app())`` gives a working page, static files,
API and (local backend) storage receiver under the prefix, every URL derived from where it is
mounted (ASGI ``root_path``); form and image URLs are absolute (``S3DROP_PUBLIC_URL``, else the
request's validated base), so a client on another origin need not guess. In-process (ASGI)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx
import pytest
from fastapi import FastAPI

from s3drop import S3Drop, Settings
from s3drop._client import Client
from s3drop.limits import MemoryLimitStore
from s3drop.web._mount import request_base
from s3drop.web.app import create_app

from . import samples
from .inprocess import BASE, asgi_client, asgi_transport, sign, stored, upload


class _Links(HTMLParser):
    """Every ``href`` and ``src`` of a page (``<a>``, ``<link>``, ``<script>``, ``<img>``)."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("href", "src") and value and not value.startswith(("#", "data:")):
                self.links.append(value)


def hosted(tmp_path: Path, **settings: object) -> tuple[FastAPI, S3Drop]:
    """Someone's own app with s3drop mounted at /uploads."""
    config = Settings(data_dir=tmp_path / "data", **settings)  # type: ignore[arg-type]
    uploads = create_app(config, limit_store=MemoryLimitStore())
    host = FastAPI()

    @host.get("/")
    async def home() -> dict[str, str]:
        return {"app": "the host's own"}

    host.mount("/uploads", uploads)
    drop: S3Drop = uploads.state.drop
    return host, drop


@pytest.fixture
def mounted(tmp_path: Path) -> Iterator[tuple[httpx.Client, S3Drop]]:
    host, drop = hosted(tmp_path)
    with asgi_client(host) as http:
        yield http, drop


def test_the_page_and_every_link_it_makes_resolve_under_the_prefix(
    mounted: tuple[httpx.Client, S3Drop],
) -> None:
    http, _ = mounted
    redirected = http.get("/uploads")
    assert redirected.status_code == 307
    assert redirected.headers["location"].endswith("/uploads/")
    page = http.get("/uploads/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    parser = _Links()
    parser.feed(page.text)
    assert parser.links, "the page links to nothing?"
    scripts = 0
    for link in parser.links:
        assert not link.startswith("/"), f"{link} ignores the mount"
        resolved = urljoin(f"{BASE}/uploads/", link)
        assert urlsplit(resolved).path.startswith("/uploads/"), resolved
        answer = http.get(resolved)
        assert answer.status_code == 200, f"{link} -> {resolved}: {answer.status_code}"
        if urlsplit(link).path.endswith(".js"):  # versioned: static/app.js?v=<hash>
            scripts += 1
            # Module imports inside are relative too, and resolve under the prefix.
            for imported in re.findall(r"""^import\b[^'"]*['"]([^'"]+)['"]""", answer.text, re.M):
                assert not imported.startswith("/"), imported
                assert http.get(urljoin(resolved, imported)).status_code == 200
    assert scripts >= 1
    assert http.get("/").json() == {"app": "the host's own"}  # the host's routes are untouched


def test_upload_end_to_end_under_the_prefix_with_absolute_urls(
    mounted: tuple[httpx.Client, S3Drop],
) -> None:
    http, drop = mounted
    data = samples.png(1, (64, 48))
    answer = sign(http, "/uploads/api", data)
    assert answer.status_code == 201, answer.text
    assert answer.json()["upload"]["url"] == f"{BASE}/uploads/storage"
    image = upload(http, "/uploads/api", data)
    for name in ("url", "thumbnail_url"):
        assert image[name].startswith(f"{BASE}/uploads/storage/"), image[name]
        assert http.get(image[name]).status_code == 200
    (listed,) = http.get("/uploads/api/images").json()["images"]
    assert listed["url"].startswith(f"{BASE}/uploads/storage/images/{image['id']}.")
    original = http.get(f"/uploads/api/images/{image['id']}/original", follow_redirects=False)
    assert original.status_code == 302
    assert original.headers["location"].startswith(f"{BASE}/uploads/storage/images/")
    served = http.get(original.headers["location"])
    assert served.headers["content-type"] == "image/png"
    assert http.get("/uploads/healthz").json() == {"status": "ok"}
    prefixes = [key.split("/")[0] for key in stored(drop)]
    assert prefixes == ["digests", "images", "owners", "thumbs"]  # digests: duplicate marker


def test_the_form_url_is_the_public_url_when_one_is_set(tmp_path: Path) -> None:
    host, _ = hosted(tmp_path, public_url="https://example.com/photos/")
    with asgi_client(host) as http:
        answer = sign(http, "/uploads/api", samples.png(0, (8, 8)))
    assert answer.json()["upload"]["url"] == "https://example.com/photos/storage"


def test_the_base_follows_the_host_and_scheme_the_request_came_with(
    mounted: tuple[httpx.Client, S3Drop],
) -> None:
    http, _ = mounted
    data = samples.png(0, (8, 8))
    answer = http.post(
        "https://localhost:8443/uploads/api/uploads",
        json={"filename": "a.png", "content_type": "image/png", "size": len(data)},
    )
    assert answer.json()["upload"]["url"] == "https://localhost:8443/uploads/storage"


@pytest.mark.parametrize(
    "host", ['evil.example"><script>', "a b", "evil.example/path", "user@evil.example"]
)
def test_a_host_header_unfit_for_a_url_never_reaches_one(
    mounted: tuple[httpx.Client, S3Drop], host: str
) -> None:
    http, _ = mounted
    data = samples.png(0, (8, 8))
    answer = http.post(
        "/uploads/api/uploads",
        json={"filename": "a.png", "content_type": "image/png", "size": len(data)},
        headers={"Host": host},
    )
    if answer.status_code == 400:  # refused before routing, where Hosts are checked
        assert answer.json()["error"]["code"] == "invalid_host"
    else:
        assert answer.status_code == 201, answer.text
        assert answer.json()["upload"]["url"] == "/uploads/storage"  # relative to the mount


@pytest.mark.parametrize(
    ("scope", "base"),
    [
        ({"scheme": "https", "headers": [(b"host", b"Example.COM")]}, "https://example.com"),
        (
            {"scheme": "http", "headers": [(b"host", b"[::1]:8000")], "root_path": "/a/b/"},
            "http://[::1]:8000/a/b",
        ),
        ({"scheme": "http", "headers": [], "server": ("10.0.0.2", 80)}, "http://10.0.0.2:80"),
        ({"scheme": "http", "headers": [(b"host", b"a.example/evil")]}, None),
        ({"scheme": "http", "headers": [(b"host", b"a.example")], "root_path": "/x y"}, None),
        ({"scheme": "ws", "headers": [(b"host", b"a.example")]}, None),
    ],
)
def test_the_request_base_is_built_only_from_parts_fit_for_a_url(
    scope: dict[str, object], base: str | None
) -> None:
    assert request_base(scope) == base


def test_cross_origin_writes_are_refused_under_the_prefix_too(
    mounted: tuple[httpx.Client, S3Drop],
) -> None:
    # The origin check looked for paths starting with /api/: under a mount the path is
    # /uploads/api/..., and a cross-site page could sign and delete.
    http, drop = mounted
    data = samples.png(0, (8, 8))
    answer = http.post(
        "/uploads/api/uploads",
        json={"filename": "a.png", "content_type": "image/png", "size": len(data)},
        headers={"Origin": "https://evil.example"},
    )
    assert answer.status_code == 403
    assert answer.json()["error"]["code"] == "forbidden_origin"
    assert stored(drop) == []


def test_unknown_paths_and_methods_answer_s3drops_error_shape(
    mounted: tuple[httpx.Client, S3Drop],
) -> None:
    http, _ = mounted
    missing = http.get("/uploads/api/nothing-here")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    wrong = http.put("/uploads/api/images")
    assert wrong.status_code == 405
    assert wrong.json()["error"]["code"] == "method_not_allowed"


def test_the_command_line_client_uploads_to_an_app_under_a_prefix(tmp_path: Path) -> None:
    host, drop = hosted(tmp_path)
    photo = tmp_path / "photo.png"
    photo.write_bytes(samples.png(5, (32, 24)))
    with asgi_transport(host) as transport, Client(f"{BASE}/uploads", transport=transport) as cli:
        image = cli.upload(photo)
        assert image["url"].startswith(f"{BASE}/uploads/storage/images/{image['id']}.")
        assert [item["id"] for item in cli.list_images().images] == [image["id"]]
        cli.delete_image(image["id"])
    assert stored(drop) == []
