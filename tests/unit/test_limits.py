from __future__ import annotations

import threading
from pathlib import Path

import pytest

from s3drop.config import Settings
from s3drop.errors import RateLimited
from s3drop.limits import Limits, LimitStore, MemoryLimitStore, SQLiteLimitStore


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> LimitStore:
    if request.param == "memory":
        return MemoryLimitStore()
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
    limits.check_stored("user:a")
    limits.stored("user:a", 1)
    limits.stored("user:a", 1)
    with pytest.raises(RateLimited, match="image limit"):
        limits.check_stored("user:a")
    limits.stored("user:a", -1)
    limits.check_stored("user:a")


def test_sqlite_store_is_shared_and_exact_under_contention(tmp_path: Path) -> None:
    path = tmp_path / "limits.sqlite3"
    taken: list[bool] = []

    def worker() -> None:
        store = SQLiteLimitStore(path)  # one store per "process", one file
        for _ in range(25):
            taken.append(store.take("k", 1, limit=60, window=60, now=5.0) is None)

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

    from s3drop.errors import LimitsUnavailable
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
