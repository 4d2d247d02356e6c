"""Several instances over one Redis and one bucket: nothing else is shared, and it works.

Two ``s3drop serve`` processes on different ports with different data folders (no shared disk),
one Ceph RGW bucket, one ``redis-server``, configured as the README's "Running several machines"
says: behind a reverse proxy (``S3DROP_PUBLIC_URL``, ``S3DROP_TRUSTED_PROXIES``; the tests send
what the proxy would: its ``Host`` and ``X-Forwarded-For``), the same tokens, the same Redis.
And what happens when Redis goes away: signing fails closed, and comes back by itself.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from . import samples
from .conftest import RGW, LiveServer
from .redis_server import RedisServer
from .shared_server import shared_server

PUBLIC = "https://photos.example.com"
ALICE, BOB, CAROL = "alice-token-0123456789", "bob-token-0123456789ab", "carol-token-012345678"


#: The instances' limit of signs a minute (per caller): the first test signs once, the second
#: counts to it.
LIMIT = 7


@pytest.fixture(scope="module")
def instances(
    tmp_path_factory: pytest.TempPathFactory, rgw: RGW, redis_session: RedisServer
) -> Iterator[list[LiveServer]]:
    """The two instances and their bucket, for both tests that use them (each test takes the
    ``redis_server`` fixture: Redis is emptied, so every count starts from nothing); each test
    has callers of its own, and reads its own lines of the audit trail."""
    bucket = rgw.new_bucket("t-scale")
    shared = {
        **rgw.env(bucket),
        "S3DROP_REDIS_URL": redis_session.url,
        "S3DROP_TOKENS": f"alice:{ALICE},bob:{BOB},carol:{CAROL}",
        "S3DROP_PUBLIC_URL": PUBLIC,
        "S3DROP_TRUSTED_PROXIES": "127.0.0.1",
        "S3DROP_RATE_PER_MINUTE": str(LIMIT),
    }
    try:
        with (
            shared_server(tmp_path_factory, "scale-a", env=shared) as first,
            shared_server(tmp_path_factory, "scale-b", env=shared) as second,
        ):
            yield [first, second]
    finally:
        s3 = rgw.client()
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for item in page.get("Contents", []):
                s3.delete_object(Bucket=bucket, Key=item["Key"])
        s3.delete_bucket(Bucket=bucket)


def _client(server: LiveServer, token: str, client_address: str) -> httpx.Client:
    """What the proxy sends on: the public Host, the browser's address, the caller's token."""
    headers = {
        "Host": "photos.example.com",
        "X-Forwarded-For": client_address,
        "X-Forwarded-Proto": "https",
        "Authorization": f"Bearer {token}",
    }
    return server.client(headers=headers)


def _sign(http: httpx.Client, data: bytes) -> httpx.Response:
    body = {"filename": "cat.png", "content_type": "image/png", "size": len(data)}
    return http.post("/api/uploads", json=body)


def _audit(server: LiveServer, event: str) -> list[dict[str, Any]]:
    found = []
    for line in server.output().splitlines():
        start = line.find('{"event":')
        if start >= 0:
            entry = json.loads(line[start:])
            if entry["event"] == event:
                found.append(entry)
    return found


def test_two_instances_share_nothing_but_the_bucket_and_redis(
    instances: list[LiveServer], redis_server: RedisServer
) -> None:
    first, second = instances
    assert first.data_dir != second.data_dir
    data = samples.png(8)
    with _client(first, ALICE, "203.0.113.7") as one, _client(second, ALICE, "203.0.113.7") as two:
        # signed by the first, posted to the bucket, completed by the second
        answer = _sign(one, data)
        assert answer.status_code == 201, answer.text
        form = answer.json()["upload"]
        posted = httpx.post(
            form["url"], data=form["fields"], files={"file": ("cat.png", data, "image/png")}
        )
        assert posted.status_code in (200, 201, 204), posted.text
        done = two.post(f"/api/uploads/{form['id']}/complete")
        assert done.status_code == 200, done.text
        image = done.json()["image"]
        # completing it again on the first finds it promoted (the claim lives in Redis)
        again = one.post(f"/api/uploads/{form['id']}/complete")
        assert (again.status_code, again.json()["image"]["id"]) == (200, image["id"])
        # the same gallery from both, and the image itself from either's signed URL
        pages = [http.get("/api/images").json() for http in (one, two)]
        assert [[i["id"] for i in page["images"]] for page in pages] == [[image["id"]]] * 2
        for http in (one, two):
            fetched = httpx.get(http.get(f"/api/images/{image['id']}").json()["image"]["url"])
            assert fetched.status_code == 200
            assert fetched.content[:8] == b"\x89PNG\r\n\x1a\n"
        # deleted on the first: gone from both
        assert one.delete(f"/api/images/{image['id']}").status_code == 204
        assert [http.get("/api/images").json()["images"] for http in (one, two)] == [[], []]
        assert two.get(f"/api/images/{image['id']}").status_code == 404
    # one accept, counted once, in Redis; and nothing of it on either machine's disk
    assert len(_audit(first, "accept")) + len(_audit(second, "accept")) == 1  # none elsewhere
    for server in (first, second):
        files = sorted(str(p.relative_to(server.data_dir)) for p in server.data_dir.rglob("*"))
        assert not any("limits" in name or name.startswith("objects") for name in files), files


def test_a_limit_of_n_signs_a_minute_holds_exactly_across_two_instances(
    instances: list[LiveServer], redis_server: RedisServer
) -> None:
    limit = LIMIT
    servers = instances
    data = samples.png(4)
    if time.time() % 60 > 45:  # all of it inside one minute's window
        time.sleep(61 - time.time() % 60)
    bob = [_client(server, BOB, "198.51.100.20") for server in servers]
    carol = [_client(server, CAROL, "198.51.100.20") for server in servers]
    try:
        # one after another, alternating: 4 signed by one, 3 by the other, the 8th refused
        in_turn = [_sign(bob[n % 2], data).status_code for n in range(limit + 2)]
        # all at once, split evenly: still exactly the limit
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda n: _sign(carol[n % 2], data), range(3 * limit)))
        # and another caller is counted on their own
        with _client(servers[1], ALICE, "198.51.100.20") as alice:
            assert _sign(alice, data).status_code == 201
    finally:
        for http in [*bob, *carol]:
            http.close()
    assert in_turn == [201] * limit + [429, 429]
    signed = [len([e for e in _audit(s, "sign") if e["who"] == "bob"]) for s in servers]
    assert signed == [4, 3]
    statuses = [answer.status_code for answer in answers]
    assert statuses.count(201) == limit, statuses
    assert statuses.count(429) == 2 * limit, statuses
    for answer in answers:
        if answer.status_code == 429:
            assert answer.json()["error"]["code"] == "rate_limited"
            assert 1 <= int(answer.headers["retry-after"]) <= 60
            assert "upload" not in answer.json()
    # the signs the instances logged are exactly the accepted ones
    signed = [len([e for e in _audit(s, "sign") if e["who"] == "carol"]) for s in servers]
    assert sum(signed) == limit


@pytest.mark.alone  # asserts answers within a bound of wall time
def test_redis_going_away_fails_signing_closed_and_it_comes_back_by_itself(
    make_server: Callable[..., LiveServer], own_redis: RedisServer, tmp_path: Path
) -> None:
    server = make_server(env={"S3DROP_REDIS_URL": own_redis.url})
    data = samples.png(4)
    with server.client() as http:
        assert _sign(http, data).status_code == 201
        assert http.get("/readyz").status_code == 200
        pid = server.process.pid
        own_redis.stop()

        def sign_once() -> httpx.Response:
            with server.client() as own:
                return _sign(own, data)

        with ThreadPoolExecutor(4) as pool:
            signs = [pool.submit(sign_once) for _ in range(8)]
            probes: list[float] = []
            while not all(sign.done() for sign in signs) or len(probes) < 20:
                before = time.monotonic()
                assert http.get("/healthz").status_code == 200
                probes.append(time.monotonic() - before)
            answers = [sign.result() for sign in signs]
        for answer in answers:
            assert answer.status_code == 503, answer.text
            assert answer.json()["error"]["code"] == "limits_unavailable"
            assert str(own_redis.port) not in answer.text  # callers are not told where Redis is
            assert answer.headers["retry-after"] == "5"
            assert "upload" not in answer.json()
        # the event loop never waited on Redis (a refused connection is quick anyway; 0.5 s leaves
        # room for a machine shared with other work, and is half of the store's 1 s timeout)
        assert max(probes) < 0.5, probes
        ready = http.get("/readyz")
        assert ready.status_code == 503
        error = ready.json()["error"]
        assert error["code"] == "limits_unavailable"
        assert error["message"].startswith("limits: the limits store (Redis) is not answering")
        assert f"127.0.0.1:{own_redis.port}" in error["message"]  # which Redis, for the operator
        assert len(_audit(server, "sign")) == 1  # the refused ones signed nothing
        objects = server.data_dir / "objects"
        assert not objects.exists() or not [p for p in objects.rglob("*") if p.is_file()]
        own_redis.start()  # back: no restart of s3drop needed
        assert _sign(http, data).status_code == 201
        assert http.get("/readyz").status_code == 200
        assert server.process.pid == pid
        assert server.process.poll() is None
    assert "limits_unavailable" in server.output()
    assert f"limits in Redis at 127.0.0.1:{own_redis.port}," in server.output()  # the banner
