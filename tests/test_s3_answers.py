"""What S3 clients (Uppy, fetch, SDKs) expect from the local backend and the app, over HTTP.

In-process (httpx.ASGITransport): a stored POST answers ``ETag`` (quoted MD5) and ``Location``,
``success_action_status`` 200/201/204 as S3 does (201 with S3's XML); a presigned PUT is signed,
checked and stored; CORS lets another origin send both and read ``ETag`` and ``Location``; a route
or method that does not exist answers s3drop's error shape (S3's XML on the storage endpoint).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import httpx
import pytest

from s3drop import S3Drop, Settings
from s3drop.web.app import create_app
from tests import samples
from tests.conftest import run_async
from tests.inprocess import AppServer
from tests.test_endpoint_hardening import _fill, small_disk  # noqa: F401 (a fixture)

BASE = "http://127.0.0.1:8000"
OTHER = "http://127.0.0.1:9999"  # another origin, allowed to call the API (as Uppy's page)


def _app(tmp_path: Path, **settings: Any) -> Any:
    return create_app(
        Settings(
            data_dir=tmp_path / "data",
            rate_per_minute=1000,  # no S3DROP_PUBLIC_URL: URLs follow the request
            allowed_origins=[OTHER],
            **settings,
        )
    )


def _run(app: Any, calls: Callable[[httpx.AsyncClient], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
            return await calls(client)

    return run_async(main())


def _stored(app: Any) -> list[str]:
    drop: S3Drop = app.state.drop
    return [info.key for info in drop.storage.iter_all("")]


def _leftovers(tmp_path: Path) -> list[str]:
    return [path.name for path in (tmp_path / "data" / "tmp").iterdir()]


def _md5(data: bytes) -> str:
    return f'"{hashlib.md5(data, usedforsecurity=False).hexdigest()}"'


@pytest.mark.parametrize("status", [None, 200, 201, 204])
def test_a_stored_post_answers_etag_and_location_as_s3(tmp_path: Path, status: int | None) -> None:
    app = _app(tmp_path)
    data = samples.png(1)
    claim: dict[str, Any] = {"filename": "a.png", "content_type": "image/png", "size": len(data)}
    if status is not None:
        claim["success_action_status"] = status

    async def calls(client: httpx.AsyncClient) -> tuple[dict[str, Any], httpx.Response]:
        form = (await client.post("/api/uploads", json=claim)).json()["upload"]
        posted = await client.post(
            form["url"], data=form["fields"], files={"file": data}, headers={"Origin": OTHER}
        )
        return form, posted

    form, posted = _run(app, calls)
    assert posted.status_code == (status or 204), posted.text
    location = f"{BASE}/storage/{form['key']}"
    assert posted.headers["etag"] == _md5(data)
    assert posted.headers["location"] == location
    exposed = posted.headers["access-control-expose-headers"].lower()
    assert "etag" in exposed
    assert "location" in exposed
    if status == 201:
        answer = ElementTree.fromstring(posted.text)  # noqa: S314 (our own answer)
        assert answer.tag == "PostResponse"
        assert answer.findtext("ETag") == _md5(data)
        assert answer.findtext("Location") == location
        assert answer.findtext("Key") == form["key"]
        assert answer.findtext("Bucket") == "local"
    else:
        assert posted.content == b""
    assert _stored(app) == [form["key"]]


def test_an_unsigned_success_action_status_is_refused(tmp_path: Path) -> None:
    """Adding the field to a form signed without it is an extra field: refused, nothing stored."""
    app = _app(tmp_path)
    data = samples.png(1)

    async def calls(client: httpx.AsyncClient) -> httpx.Response:
        claim = {"filename": "a.png", "content_type": "image/png", "size": len(data)}
        form = (await client.post("/api/uploads", json=claim)).json()["upload"]
        fields = {**form["fields"], "success_action_status": "201"}
        return await client.post(form["url"], data=fields, files={"file": data})

    posted = _run(app, calls)
    assert posted.status_code == 403
    assert "Extra input fields: success_action_status" in posted.text
    assert _stored(app) == []
    assert _leftovers(tmp_path) == []


def test_a_put_is_signed_stored_and_completed(tmp_path: Path) -> None:
    app = _app(tmp_path)
    data = samples.png(2)
    digest = hashlib.sha256(data).hexdigest()

    async def calls(client: httpx.AsyncClient) -> tuple[Any, ...]:
        claim = {
            "filename": "a b.png",
            "content_type": "image/png",
            "size": len(data),
            "sha256": digest,
            "method": "PUT",
        }
        signed = await client.post("/api/uploads", json=claim, headers={"Origin": OTHER})
        form = signed.json()["upload"]
        preflight = await client.options(
            form["url"],
            headers={
                "Origin": OTHER,
                "Access-Control-Request-Method": "PUT",
                "Access-Control-Request-Headers": ",".join(form["headers"]).lower(),
            },
        )
        put = await client.put(
            form["url"], content=data, headers={**form["headers"], "Origin": OTHER}
        )
        done = await client.post(f"/api/uploads/{form['id']}/complete")
        return form, preflight, put, done

    form, preflight, put, done = _run(app, calls)
    assert form["method"] == "PUT"
    assert form["fields"] == {}
    assert form["url"].startswith(f"{BASE}/storage/{form['key']}?X-Amz-Algorithm=")
    assert form["headers"]["Content-Type"] == "image/png"
    assert form["headers"]["x-amz-content-sha256"] == digest
    assert preflight.status_code == 200, preflight.text
    assert "PUT" in preflight.headers["access-control-allow-methods"]
    assert put.status_code == 200, put.text
    assert put.headers["etag"] == _md5(data)
    assert "etag" in put.headers["access-control-expose-headers"].lower()
    assert done.status_code == 200, done.text
    assert done.json()["image"]["filename"] == "a b.png"


@pytest.mark.parametrize("change", ["type", "size", "key"])
def test_a_changed_put_is_refused_and_stores_nothing(tmp_path: Path, change: str) -> None:
    app = _app(tmp_path)
    data = samples.png(3)

    async def calls(client: httpx.AsyncClient) -> httpx.Response:
        claim = {"filename": "a.png", "content_type": "image/png", "size": len(data)}
        form = (await client.post("/api/uploads", json={**claim, "method": "PUT"})).json()
        url, headers, body = form["upload"]["url"], dict(form["upload"]["headers"]), data
        if change == "type":
            headers["Content-Type"] = "image/svg+xml"
        elif change == "size":
            body = data + b"\0"
        else:
            url = url.replace(".png?", "x.png?")
        return await client.put(url, content=body, headers=headers)

    put = _run(app, calls)
    assert put.status_code == 403
    assert put.headers["content-type"] == "application/xml"
    assert "<Code>SignatureDoesNotMatch</Code>" in put.text
    assert _stored(app) == []
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("PUT", "/api/uploads", 405, "method_not_allowed"),
        ("DELETE", "/api/config", 405, "method_not_allowed"),
        ("GET", "/api/nothing-here", 404, "not_found"),
    ],
)
def test_every_api_route_answers_s3drops_error_shape(
    tmp_path: Path, method: str, path: str, status: int, code: str
) -> None:
    app = _app(tmp_path)
    answer = _run(app, lambda client: client.request(method, path))
    assert answer.status_code == status
    assert answer.json()["error"]["code"] == code
    assert answer.json()["error"]["message"]
    if status == 405:
        assert "POST" in answer.headers["allow"] or "GET" in answer.headers["allow"]


def test_the_storage_endpoint_answers_s3s_xml_to_a_wrong_method(tmp_path: Path) -> None:
    app = _app(tmp_path)
    answer = _run(app, lambda client: client.delete("/storage/incoming/x.png"))
    assert answer.status_code == 405
    assert answer.headers["content-type"] == "application/xml"
    assert "<Code>MethodNotAllowed</Code>" in answer.text
    assert _stored(app) == []


def test_a_put_whose_body_stops_early_stores_nothing(tmp_path: Path) -> None:
    """The connection ends before Content-Length bytes arrived: 400 IncompleteBody, no object,
    no partial file."""
    app = _app(tmp_path)
    data = samples.png(4)

    async def calls(client: httpx.AsyncClient) -> httpx.Response:
        claim = {"filename": "a.png", "content_type": "image/png", "size": len(data)}
        form = (await client.post("/api/uploads", json={**claim, "method": "PUT"})).json()

        async def half() -> Any:
            yield data[: len(data) // 2]

        headers = {**form["upload"]["headers"], "Content-Length": str(len(data))}
        return await client.put(form["upload"]["url"], content=half(), headers=headers)

    put = _run(app, calls)
    assert put.status_code == 400
    assert "<Code>IncompleteBody</Code>" in put.text
    assert _stored(app) == []
    assert _leftovers(tmp_path) == []


def test_a_put_whose_metadata_write_finds_the_disk_full_is_507_insufficient_storage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The body arrived whole, then the disk fills while its metadata file is written: S3's
    507 InsufficientStorage, as the POST receiver answers it (it was 507 InternalError), and no
    object, metadata or temp file remains."""
    import errno
    import os

    from s3drop.storage import local

    app = _app(tmp_path)
    data = samples.png(5)
    real_replace = os.replace

    def replace(src: Any, dst: Any) -> None:
        if str(dst).endswith(".json"):
            raise OSError(errno.ENOSPC, "No space left on device")
        real_replace(src, dst)

    async def calls(client: httpx.AsyncClient) -> httpx.Response:
        claim = {"filename": "a.png", "content_type": "image/png", "size": len(data)}
        form = (await client.post("/api/uploads", json={**claim, "method": "PUT"})).json()
        monkeypatch.setattr(local.os, "replace", replace)
        return await client.put(
            form["upload"]["url"], content=data, headers=form["upload"]["headers"]
        )

    put = _run(app, calls)
    monkeypatch.undo()
    assert put.status_code == 507, put.text
    assert "<Code>InsufficientStorage</Code>" in put.text
    assert _stored(app) == []
    assert _leftovers(tmp_path) == []
    assert [p for p in (tmp_path / "data" / "meta").rglob("*") if p.is_file()] == []


def test_a_put_on_a_full_disk_answers_507_and_keeps_nothing(
    make_app: Callable[..., AppServer],
    small_disk: Path,  # noqa: F811 (the fixture imported above)
) -> None:
    """As the POST receiver: the kernel's ENOSPC is S3's 507 InsufficientStorage, no temp file
    and no object remain, and the same URL stores the file once there is space again."""
    data_dir = small_disk / "data"
    server = make_app(env={"S3DROP_DATA_DIR": str(data_dir), "S3DROP_MIN_FREE_BYTES": "1MiB"})
    # 1.5 MiB that start like a PNG: storage stores a PUT's bytes unread (encoding a real PNG
    # this large cost half a second of CPU).
    big = b"\x89PNG\r\n\x1a\n" + random.Random(3).randbytes(1_500_000)
    claim = {"filename": "big.png", "content_type": "image/png", "size": len(big), "method": "PUT"}
    with server.client() as http:
        form = http.post("/api/uploads", json=claim).json()["upload"]
        filler = _fill(small_disk, 256 * 1024)
        refused = http.put(form["url"], content=big, headers=form["headers"])
        assert refused.status_code == 507, refused.text
        assert "<Code>InsufficientStorage</Code>" in refused.text
        assert list((data_dir / "tmp").iterdir()) == []
        assert not [p for p in (data_dir / "objects").rglob("*") if p.is_file()]
        filler.unlink()
        stored = http.put(form["url"], content=big, headers=form["headers"])
    assert stored.status_code == 200, stored.text
    assert stored.headers["etag"] == _md5(big)
    assert "Traceback" not in server.output()
