from __future__ import annotations

import threading
from pathlib import Path

import pytest
from tests.conftest import run_async
from tests.redis_server import RedisServer

from s3drop._config import Settings
from s3drop._errors import RateLimited
from s3drop.limits import Limits, LimitStore, MemoryLimitStore, SQLiteLimitStore, Take
from s3drop.limits.redis import RedisLimitStore


@pytest.fixture(params=["memory", "sqlite", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> LimitStore:
    if request.param == "memory":
        return MemoryLimitStore()
    if request.param == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        return RedisLimitStore(server.url)
    return SQLiteLimitStore(tmp_path / "limits.sqlite3")


def test_requests_per_minute(store: LimitStore) -> None:
    limits = Limits(Settings(rate_per_minute=2), store)
    limits.before_sign("user:a", 1, now=120.0)
    limits.before_sign("user:a", 1, now=150.0)
    with pytest.raises(RateLimited) as caught:
        limits.before_sign("user:a", 1, now=170.5)
    assert caught.value.retry_after == 10
    limits.before_sign("user:b", 1, now=170.5)  # others are not affected
    limits.before_sign("user:a", 1, now=180.0)  # a new minute


def test_bytes_per_hour_do_not_count_refused_requests(store: LimitStore) -> None:
    limits = Limits(Settings(rate_per_minute=3, bytes_per_hour=100), store)
    limits.before_sign("user:a", 60, now=0.0)
    with pytest.raises(RateLimited, match="budget"):
        limits.before_sign("user:a", 60, now=1.0)
    limits.before_sign("user:a", 40, now=2.0)
    limits.before_sign("user:a", 0, now=3.0)  # the third: the refused one gave its slot back
    with pytest.raises(RateLimited, match="a minute"):
        limits.before_sign("user:a", 0, now=4.0)


def test_images_in_total(store: LimitStore) -> None:
    limits = Limits(Settings(max_images=2), store)
    limits.before_sign("user:a", 1, now=0.0)  # signing checks the count and adds nothing to it
    assert store.peek("user:a:images", now=0.0) == 0
    limits.stored("user:a", 1)
    limits.stored("user:a", 1)
    with pytest.raises(RateLimited, match="image limit"):
        limits.before_sign("user:a", 1, now=1.0)
    assert store.peek("user:a:req", window=60, now=1.0) == 1  # the refusal counted nothing
    limits.stored("user:a", -1)
    limits.before_sign("user:a", 1, now=2.0)
    limits.stored("user:a", -5)  # never below 0
    assert store.peek("user:a:images", now=2.0) == 0


def test_take_is_all_or_nothing_and_names_the_full_counter(store: LimitStore) -> None:
    first, second = Take("a", 2, limit=3, window=60), Take("b", 5, limit=5, window=3600)
    assert store.take([first, second], now=10.0) is None
    full = store.take([first, second], now=20.0)
    assert full is not None
    assert full.take is first
    assert full.retry_after == 40
    assert store.peek("a", window=60, now=20.0) == 2
    assert store.peek("b", window=3600, now=20.0) == 5  # nothing added to b either
    assert store.take([Take("a", 1, limit=3, window=60)], now=59.0) is None
    assert store.take([Take("a", 2, limit=3, window=60)], now=60.0) is None  # a new window
    full = store.take([Take("b", 1, limit=5, window=3600)], now=3599.5)
    assert full is not None
    assert full.retry_after == 1
    check = Take("c", 1, limit=1, count=False)
    assert store.take([check], now=0.0) is None
    assert store.take([check], now=0.0) is None  # a check never fills the counter
    assert store.peek("c", now=0.0) == 0
    store.add("c", 1, now=0.0)
    full = store.take([check], now=0.0)
    assert full is not None
    assert full.retry_after == 0


def test_sqlite_store_is_shared_and_exact_under_contention(tmp_path: Path) -> None:
    path = tmp_path / "limits.sqlite3"
    taken: list[bool] = []

    def worker() -> None:
        store = SQLiteLimitStore(path)  # one store per "process", one file
        for _ in range(25):
            taken.append(store.take([Take("k", 1, limit=60, window=60)], now=5.0) is None)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert taken.count(True) == 60
    assert taken.count(False) == 40


def test_an_upload_id_is_claimed_once_by_any_number_of_callers(store: LimitStore) -> None:
    limits = Limits(Settings(), store)
    results: list[bool] = []
    barrier = threading.Barrier(8)

    def claim() -> None:
        barrier.wait()
        results.append(limits.claim("8204119722354gcvd3nvk3j"))

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False] * 7 + [True]
    assert limits.claim("8204119722354gcvd3nvk3j") is False  # ever after
    assert limits.claim("8204119722355aaaaaaaaaa") is True  # another id is its own


def test_a_locked_sqlite_store_gives_up_with_limits_unavailable(tmp_path: Path) -> None:
    import sqlite3
    import time

    from s3drop._errors import LimitsUnavailable
    from s3drop.limits import BUSY_TIMEOUT

    path = tmp_path / "limits.sqlite3"
    limits = Limits(Settings(), SQLiteLimitStore(path))
    locker = sqlite3.connect(path, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        started = time.monotonic()
        with pytest.raises(LimitsUnavailable, match="locked") as caught:
            limits.before_sign("user:a", 1)
        waited = time.monotonic() - started
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    assert (caught.value.status, caught.value.code, caught.value.retry_after) == (
        503,
        "limits_unavailable",
        1,
    )
    assert BUSY_TIMEOUT * 0.9 <= waited < BUSY_TIMEOUT + 1.5
    limits.before_sign("user:a", 1)  # the lock is gone: counted as usual, nothing left over


# --- the Redis store ---------------------------------------------------------------------------


def test_redis_counters_expire_on_their_own_and_a_sign_is_one_round_trip(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    import redis
    import redis.connection

    store = RedisLimitStore(redis_server.url)
    limits = Limits(Settings(), store)
    limits.before_sign("user:b", 100)  # connected, script loaded
    sent: list[object] = []
    send = redis.connection.Connection.send_packed_command

    def counting(
        self: redis.connection.Connection, command: object, check_health: bool = True
    ) -> None:
        sent.append(command)
        send(self, command, check_health)

    monkeypatch.setattr(redis.connection.Connection, "send_packed_command", counting)
    now = time.time()
    limits.before_sign("user:a", 100)
    assert len(sent) == 1  # three counters checked and counted: one EVALSHA
    monkeypatch.undo()
    limits.stored("user:a", 1)
    spy = redis.Redis.from_url(redis_server.url)
    keys = {key.decode(): spy.ttl(key) for key in spy.keys("s3drop:user:a:*")}
    minute, hour = int(now // 60 * 60), int(now // 3600 * 3600)
    assert set(keys) == {
        f"s3drop:user:a:req:{minute}",
        f"s3drop:user:a:bytes:{hour}",
        "s3drop:user:a:images",
    }
    assert 0 < keys[f"s3drop:user:a:req:{minute}"] <= 62
    assert 0 < keys[f"s3drop:user:a:bytes:{hour}"] <= 3602
    assert keys["s3drop:user:a:images"] == -1  # the stored-images count never expires


def test_redis_store_loads_its_script_again_when_redis_forgot_it(redis_server: RedisServer) -> None:
    import redis

    store = RedisLimitStore(redis_server.url)
    assert store.take([Take("k", 1, limit=2)], now=0.0) is None
    redis.Redis.from_url(redis_server.url).script_flush()
    assert store.take([Take("k", 1, limit=2)], now=0.0) is None
    assert store.take([Take("k", 1, limit=2)], now=0.0) is not None
    assert store.peek("k", now=0.0) == 2


def test_redis_store_async_is_the_same_counters(redis_server: RedisServer) -> None:
    import asyncio

    store = RedisLimitStore(redis_server.url)
    limits = Limits(Settings(rate_per_minute=3), store)

    async def main() -> list[str]:
        async def one() -> str:
            try:
                await limits.before_sign_async("user:a", 1, now=30.0)
            except RateLimited as exc:
                return f"429 {exc.retry_after}"
            return "ok"

        results = await asyncio.gather(*(one() for _ in range(5)))
        await limits.check_async()
        await store.aclose()
        return list(results)

    assert sorted(run_async(main())) == ["429 30", "429 30", "ok", "ok", "ok"]
    assert store.peek("user:a:req", window=60, now=30.0) == 3  # the sync side sees them


def test_redis_store_fails_closed_naming_redis_and_recovers(own_redis: RedisServer) -> None:

    from s3drop._errors import LimitsUnavailable

    store = RedisLimitStore(own_redis.url)
    limits = Limits(Settings(), store)

    async def sign_async() -> None:
        try:
            await limits.before_sign_async("user:a", 1)
        finally:
            await store.aclose()

    limits.before_sign("user:a", 1)
    own_redis.stop()
    where = r"^the limits store \(Redis\) is not answering; nothing was signed or counted"
    with pytest.raises(LimitsUnavailable, match=where) as caught:
        limits.before_sign("user:a", 1)
    assert f"127.0.0.1:{own_redis.port}" in str(caught.value.__cause__)  # what readyz adds
    assert (caught.value.status, caught.value.code, caught.value.retry_after) == (
        503,
        "limits_unavailable",
        5,
    )
    with pytest.raises(LimitsUnavailable, match=where):
        run_async(sign_async())
    with pytest.raises(LimitsUnavailable, match=where):
        limits.stored("user:a", 1)
    own_redis.start()  # back, and empty (it saved nothing): counting resumes on its own
    limits.before_sign("user:a", 1)
    run_async(sign_async())
    limits.check()
