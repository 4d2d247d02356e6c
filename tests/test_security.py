"""Who may upload, how much, from where: every refusal over real HTTP against a live server.

Each refusal also proves that nothing was signed (no ``sign`` line in the audit trail, no form in
the answer) and nothing was stored (the data folder holds no object).
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from .conftest import LiveServer

ALICE = "alice-token-0123456789"
BOB = "bob-token-9876543210ab"
TOKENS = {"S3DROP_TOKENS": f"alice:{ALICE},bob:{BOB}"}
CLAIM = {"filename": "cat.png", "content_type": "image/png", "size": 1000}


def _signs(server: LiveServer) -> list[dict[str, object]]:
    """The ``sign`` events of the server's audit trail."""
    events = []
    for line in server.output().splitlines():
        start = line.find('{"event":')
        if start >= 0:
            events.append(json.loads(line[start:]))
    return [event for event in events if event["event"] == "sign"]


def _stored(server: LiveServer) -> list[Path]:
    objects = server.data_dir / "objects"
    return [path for path in objects.rglob("*") if path.is_file()] if objects.exists() else []


def _assert_nothing_signed_or_stored(server: LiveServer, response: httpx.Response) -> None:
    assert "upload" not in response.json()
    assert _signs(server) == []
    assert _stored(server) == []


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "bearer token is required"),
        (_bearer("not-a-token"), "not valid"),
        (_bearer(ALICE[:-1]), "not valid"),
        ({"Authorization": f"Basic {base64.b64encode(b'alice:' + ALICE.encode()).decode()}"}, ""),
    ],
)
def test_signing_needs_a_valid_token(
    make_server: Callable[..., LiveServer], headers: dict[str, str], message: str
) -> None:
    server = make_server(env=TOKENS)
    with server.client() as client:
        response = client.post("/api/uploads", json=CLAIM, headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="s3drop"'
    assert response.json()["error"]["code"] == "not_authenticated"
    assert message in response.json()["error"]["message"]
    _assert_nothing_signed_or_stored(server, response)


def test_a_valid_token_signs_and_records_the_owner(
    make_server: Callable[..., LiveServer],
) -> None:
    server = make_server(env=TOKENS)
    with server.client() as client:
        response = client.post("/api/uploads", json=CLAIM, headers=_bearer(BOB))
    assert response.status_code == 201
    assert response.json()["upload"]["fields"]["x-amz-meta-owner"] == "bob"
    assert [event["who"] for event in _signs(server)] == ["bob"]


def test_basic_auth(make_server: Callable[..., LiveServer]) -> None:
    server = make_server(env={"S3DROP_USERS": "carol:correct-horse-battery"})
    good = base64.b64encode(b"carol:correct-horse-battery").decode()
    bad = base64.b64encode(b"carol:wrong-horse-battery").decode()
    with server.client() as client:
        refused = client.post("/api/uploads", json=CLAIM, headers={"Authorization": f"Basic {bad}"})
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"] == 'Basic realm="s3drop"'
        _assert_nothing_signed_or_stored(server, refused)
        signed = client.post("/api/uploads", json=CLAIM, headers={"Authorization": f"Basic {good}"})
    assert signed.status_code == 201
    assert signed.json()["upload"]["fields"]["x-amz-meta-owner"] == "carol"


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Origin": "http://127.0.0.1:1"},
        {"Sec-Fetch-Site": "cross-site"},
    ],
)
def test_cross_origin_signing_is_refused(
    make_server: Callable[..., LiveServer], headers: dict[str, str]
) -> None:
    server = make_server(env=TOKENS)
    with server.client() as client:
        response = client.post("/api/uploads", json=CLAIM, headers={**_bearer(ALICE), **headers})
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden_origin"
    _assert_nothing_signed_or_stored(server, response)


def test_same_and_allowed_origins_may_sign(make_server: Callable[..., LiveServer]) -> None:
    server = make_server(env={**TOKENS, "S3DROP_ALLOWED_ORIGINS": "https://app.example"})
    with server.client() as client:
        own = client.post(
            "/api/uploads", json=CLAIM, headers={**_bearer(ALICE), "Origin": server.url}
        )
        other = client.post(
            "/api/uploads", json=CLAIM, headers={**_bearer(ALICE), "Origin": "https://app.example"}
        )
        preflight = client.options(
            "/api/uploads",
            headers={
                "Origin": "https://app.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization,content-type",
            },
        )
        evil = client.options(
            "/api/uploads",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        )
    assert (own.status_code, other.status_code) == (201, 201)
    assert preflight.headers["access-control-allow-origin"] == "https://app.example"
    assert "access-control-allow-origin" not in evil.headers


def test_rate_limit_answers_429_with_retry_after(make_server: Callable[..., LiveServer]) -> None:
    server = make_server(env={**TOKENS, "S3DROP_RATE_PER_MINUTE": "3"})
    with server.client() as client:
        answers = [
            client.post("/api/uploads", json=CLAIM, headers=_bearer(ALICE)).status_code
            for _ in range(3)
        ]
        refused = client.post("/api/uploads", json=CLAIM, headers=_bearer(ALICE))
        other_user = client.post("/api/uploads", json=CLAIM, headers=_bearer(BOB))
    assert answers == [201, 201, 201]
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.json()["error"]["code"] == "rate_limited"
    assert "upload" not in refused.json()
    assert [event["who"] for event in _signs(server)] == ["alice"] * 3 + ["bob"]
    assert other_user.status_code == 201


def test_byte_budget(make_server: Callable[..., LiveServer]) -> None:
    server = make_server(env={**TOKENS, "S3DROP_BYTES_PER_HOUR": "2500"})
    with server.client() as client:
        first = client.post("/api/uploads", json=CLAIM, headers=_bearer(ALICE))
        second = client.post("/api/uploads", json=CLAIM, headers=_bearer(ALICE))
        third = client.post("/api/uploads", json=CLAIM, headers=_bearer(ALICE))
        small = client.post("/api/uploads", json={**CLAIM, "size": 500}, headers=_bearer(ALICE))
    assert (first.status_code, second.status_code) == (201, 201)
    assert third.status_code == 429
    assert "budget" in third.json()["error"]["message"]
    assert 1 <= int(third.headers["retry-after"]) <= 3600
    assert small.status_code == 201
    assert len(_signs(server)) == 3


def test_limits_hold_across_workers(make_server: Callable[..., LiveServer]) -> None:
    server = make_server(
        env={**TOKENS, "S3DROP_RATE_PER_MINUTE": "4"},
        args=["--workers", "2", "--log-format", "json"],
    )

    def pids() -> set[int]:
        """The workers that answered a sign request (signed or refused), from the audit trail."""
        found = set()
        for line in server.output().splitlines():
            if line.startswith("{") and '"event":' in line:
                entry = json.loads(line)
                if entry.get("event") in {"sign", "refuse"}:
                    found.add(entry["pid"])
        return found

    statuses = []
    # New connections until both workers have answered (the kernel picks who accepts).
    while len(statuses) < 8 or (len(pids()) < 2 and len(statuses) < 60):
        with server.client() as client:
            statuses.append(
                client.post("/api/uploads", json=CLAIM, headers=_bearer(ALICE)).status_code
            )
    assert len(pids()) == 2
    assert statuses.count(201) == 4
    assert statuses.count(429) == len(statuses) - 4


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"{", 400, "invalid_request"),
        (b'{"filename": "a.png", "content_type": "image/png"}', 400, "invalid_request"),
        (
            b'{"filename": "a.png", "content_type": "image/png", "size": "big"}',
            400,
            "invalid_request",
        ),
        (json.dumps({**CLAIM, "filename": "x" * 20000}).encode(), 413, "body_too_large"),
    ],
)
def test_bad_json_bodies(
    make_server: Callable[..., LiveServer], body: bytes, status: int, code: str
) -> None:
    server = make_server(env=TOKENS)
    with server.client() as client:
        response = client.post(
            "/api/uploads",
            content=body,
            headers={**_bearer(ALICE), "Content-Type": "application/json"},
        )
    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    _assert_nothing_signed_or_stored(server, response)


def test_page_headers(live_server: LiveServer) -> None:
    with live_server.client() as client:
        page = client.get("/")
        api = client.get("/api/config")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp
    assert "'unsafe-inline'" not in csp
    assert "frame-ancestors 'none'" in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert "<script>" not in page.text
    assert api.headers["x-content-type-options"] == "nosniff"


def test_no_secrets_in_logs(make_server: Callable[..., LiveServer]) -> None:
    server = make_server(env=TOKENS)
    with server.client() as client:
        form = client.post("/api/uploads", json=CLAIM, headers=_bearer(ALICE)).json()["upload"]
        client.post("/api/uploads", json=CLAIM, headers=_bearer(BOB[:-2]))
    server.stop()
    logs = server.output()
    assert _signs(server)
    for secret in (
        ALICE,
        BOB,
        BOB[:-2],
        form["fields"]["x-amz-signature"],
        form["fields"]["policy"],
    ):
        assert secret not in logs


def _serve(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "s3drop", "serve", *args],
        env={**env, "S3DROP_DATA_DIR": str(cwd / "data")},
        capture_output=True,
        text=True,
        timeout=30,
        cwd=cwd,
    )


def test_public_bind_without_auth_refuses_to_start(tmp_path: Path) -> None:
    result = _serve(["--host", "0.0.0.0", "--port", "1"], dict(os.environ), tmp_path)
    assert result.returncode != 0
    assert "S3DROP_HOST" in result.stderr
    assert "--public" in result.stderr
    assert "Traceback" not in result.stderr


def test_public_is_an_explicit_choice() -> None:
    from s3drop.config import Settings
    from s3drop.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="S3DROP_HOST"):
        Settings(host="0.0.0.0")
    with pytest.raises(ConfigurationError, match="S3DROP_HOST"):
        Settings(host="192.0.2.10")
    assert Settings(host="0.0.0.0", public=True).auth_mode == "none"
    assert Settings(host="0.0.0.0", tokens=f"alice:{ALICE}").auth_mode == "token"
    assert Settings(host="::1").auth_mode == "none"


def test_a_custom_authentication_hook(tmp_path: Path) -> None:
    """The hook a framework plugs in: here a header set by a trusted proxy, else 401."""
    import asyncio
    import concurrent.futures
    from collections.abc import Mapping

    from s3drop import Principal, Settings
    from s3drop.errors import NotAuthenticated
    from s3drop.web.app import create_app

    def from_proxy(headers: Mapping[str, str], client: str | None) -> Principal:
        user = headers.get("x-authenticated-user")
        if not user:
            raise NotAuthenticated("sign in first")
        return Principal(user, address=client)

    app = create_app(Settings(data_dir=tmp_path / "data"), authenticate=from_proxy)

    async def calls() -> tuple[httpx.Response, httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as c:
            refused = await c.post("/api/uploads", json=CLAIM)
            user = {"X-Authenticated-User": "dora"}
            return refused, await c.post("/api/uploads", json=CLAIM, headers=user)

    # In a thread of its own: the browser tests' Playwright keeps an event loop in this one.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        refused, signed = pool.submit(asyncio.run, calls()).result()
    assert refused.status_code == 401
    assert refused.json()["error"]["message"] == "sign in first"
    assert signed.status_code == 201
    assert signed.json()["upload"]["fields"]["x-amz-meta-owner"] == "dora"


def _upload_and_complete(server: LiveServer, client: httpx.Client, seed: int) -> httpx.Response:
    from . import samples

    data = samples.png(seed, (40, 30))
    claim = {"filename": f"{seed}.png", "content_type": "image/png", "size": len(data)}
    signed = client.post("/api/uploads", json=claim)
    if signed.status_code != 201:
        return signed
    form = signed.json()["upload"]
    stored = httpx.post(
        form["url"],
        data=form["fields"],
        files={"file": (f"{seed}.png", data, "image/png")},
        timeout=30,
    )
    assert stored.status_code == 204, stored.text
    return client.post(f"/api/uploads/{form['id']}/complete")


def test_images_in_total_per_user(make_server: Callable[..., LiveServer]) -> None:
    server = make_server(env={**TOKENS, "S3DROP_MAX_IMAGES": "2"})
    with server.client(headers=_bearer(ALICE)) as alice, server.client(headers=_bearer(BOB)) as bob:
        assert _upload_and_complete(server, alice, 1).status_code == 200
        assert _upload_and_complete(server, alice, 2).status_code == 200
        refused = _upload_and_complete(server, alice, 3)
        assert refused.status_code == 429
        assert refused.json()["error"]["code"] == "rate_limited"
        assert "image limit" in refused.json()["error"]["message"]
        assert int(refused.headers["retry-after"]) > 0
        assert len(_signs(server)) == 2
        assert _upload_and_complete(server, bob, 4).status_code == 200  # bob has his own count
        first = alice.get("/api/images").json()["images"][0]["id"]
        assert alice.delete(f"/api/images/{first}").status_code == 204
        assert _upload_and_complete(server, alice, 5).status_code == 200  # room again


def test_served_files_are_inert(live_server: LiveServer) -> None:
    with live_server.client() as client:
        image = _upload_and_complete(live_server, client, 7).json()["image"]
        served = httpx.get(image["url"], timeout=30)
        thumb = httpx.get(image["thumbnail_url"], timeout=30)
    assert served.status_code == 200
    assert served.headers["content-type"] == "image/png"
    assert served.headers["x-content-type-options"] == "nosniff"
    assert served.headers["content-disposition"] == "inline; filename*=UTF-8''7.png"
    assert "sandbox" in served.headers["content-security-policy"]
    assert thumb.headers["content-type"] == "image/webp"
    assert thumb.headers["x-content-type-options"] == "nosniff"
