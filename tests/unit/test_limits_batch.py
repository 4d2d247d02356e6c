"""Signs waiting on the limit store at once share one store call (s3drop.limits._batch), and the
limits stay exact: each sign's takes all or nothing, in arrival order."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import pytest
from tests.conftest import run_async
from tests.redis_server import RedisServer

from s3drop._config import Settings
from s3drop._errors import LimitsUnavailable, RateLimited
from s3drop.limits import Full, Limits, SQLiteLimitStore, Take
from s3drop.limits.redis import RedisLimitStore


class Counting(SQLiteLimitStore):
    """The SQLite store, counting its calls (and failing them on demand)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.batches: list[int] = []
        self.fail = False

    def take_many(self, batch: Sequence[Sequence[Take]], *, now: float) -> list[Full | None]:
        self.batches.append(len(batch))
        if self.fail:
            raise LimitsUnavailable("the limits database is not answering")
        return super().take_many(batch, now=now)


async def _sign_all(limits: Limits, count: int, *, now: float | None = 30.0) -> list[str]:
    async def one() -> str:
        try:
            await limits.before_sign_async("user:a", 10, now=now)
        except RateLimited as exc:
            return f"429 {'minute' if 'a minute' in exc.message else 'bytes'}"
        except LimitsUnavailable:
            return "503"
        return "ok"

    return list(await asyncio.gather(*(one() for _ in range(count))))


def test_concurrent_signs_share_one_sqlite_transaction_and_stay_exact(tmp_path: Path) -> None:
    store = Counting(tmp_path / "limits.sqlite3")
    limits = Limits(Settings(rate_per_minute=5, bytes_per_hour=10**6), store)
    results = run_async(_sign_all(limits, 16))
    assert sorted(results) == ["429 minute"] * 11 + ["ok"] * 5
    assert store.batches == [16]  # one transaction for all sixteen
    assert store.peek("user:a:req", window=60, now=30.0) == 5
    assert store.peek("user:a:bytes", window=3600, now=30.0) == 50  # refused signs added nothing


def test_each_sign_in_a_batch_is_all_or_nothing(tmp_path: Path) -> None:
    # Bytes run out first: the fourth sign's request counter must not move either.
    store = Counting(tmp_path / "limits.sqlite3")
    limits = Limits(Settings(rate_per_minute=100, bytes_per_hour=30), store)
    results = run_async(_sign_all(limits, 6))
    assert sorted(results) == ["429 bytes"] * 3 + ["ok"] * 3
    assert store.peek("user:a:req", window=60, now=30.0) == 3


def test_a_failing_store_fails_every_sign_of_the_batch_and_the_next_batch_runs(
    tmp_path: Path,
) -> None:
    store = Counting(tmp_path / "limits.sqlite3")
    limits = Limits(Settings(rate_per_minute=100), store)

    async def main() -> tuple[list[str], list[str]]:
        store.fail = True
        failed = await _sign_all(limits, 4, now=None)
        store.fail = False
        return failed, await _sign_all(limits, 4, now=None)

    failed, later = run_async(main())
    assert failed == ["503"] * 4
    assert later == ["ok"] * 4
    assert store.batches == [4, 4]


def test_concurrent_signs_share_one_redis_round_trip(redis_server: RedisServer) -> None:
    store = RedisLimitStore(redis_server.url)
    calls: list[int] = []
    take_many = store.take_many_async

    async def counted(batch: Sequence[Sequence[Take]], *, now: float) -> list[Full | None]:
        calls.append(len(batch))
        return await take_many(batch, now=now)

    store.take_many_async = counted  # type: ignore[method-assign]
    limits = Limits(Settings(rate_per_minute=5, bytes_per_hour=10**6), store)

    async def main() -> list[str]:
        try:
            return await _sign_all(limits, 16)
        finally:
            await store.aclose()

    assert sorted(run_async(main())) == ["429 minute"] * 11 + ["ok"] * 5
    assert calls == [16]
    assert store.peek("user:a:req", window=60, now=30.0) == 5


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
def test_take_many_keeps_each_list_on_its_own(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if kind == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        store: SQLiteLimitStore | RedisLimitStore = RedisLimitStore(server.url)
    else:
        store = SQLiteLimitStore(tmp_path / "limits.sqlite3")
    a, b = Take("a", 2, limit=3), Take("b", 1, limit=1)
    found = store.take_many([[a], [a, b], [b], [b]], now=0.0)
    # the second list fails on a (2 + 2 > 3) and adds nothing to b; the third takes b; the
    # fourth finds b full
    assert found == [None, Full(a, 0), None, Full(b, 0)]
    assert (store.peek("a", now=0.0), store.peek("b", now=0.0)) == (2, 1)


def test_the_async_connection_survives_a_script_flush_and_a_redis_restart(
    own_redis: RedisServer,
) -> None:
    import redis

    store = RedisLimitStore(own_redis.url)
    take = [Take("k", 1, limit=10)]

    async def main() -> list[Full | None]:
        found = [await store.take_async(take, now=0.0)]
        redis.Redis.from_url(own_redis.url).script_flush()
        found.append(await store.take_async(take, now=0.0))  # loaded again
        own_redis.stop()
        with pytest.raises(LimitsUnavailable):
            await store.take_async(take, now=0.0)
        own_redis.start()  # empty, and the connection this loop had is gone
        found.append(await store.take_async(take, now=0.0))
        await store.aclose()
        return found

    assert run_async(main()) == [None, None, None]
    assert store.peek("k", now=0.0) == 1  # counted once after the restart: nothing twice
