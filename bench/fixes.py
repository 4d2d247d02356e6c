"""Proposed fixes to s3drop, applied at run time so their effect can be measured before anyone
edits src/: ``python -m bench --fix NAME`` (or ``BENCH_FIXES=name,name`` for subprocesses).

A default run applies none: the table measures the code as it is. Each fix here is the exact change
the bench README recommends, written as a monkeypatch.
"""

from __future__ import annotations

import os
from collections.abc import Callable

ENV = "BENCH_FIXES"


def _sqlite_limits() -> None:
    """limits.py: one SQLite transaction per sign instead of three write transactions.

    ``check_stored`` takes 0 from the images counter, which still runs ``BEGIN IMMEDIATE`` and an
    upsert: a plain ``SELECT`` decides the same. ``before_sign`` takes from the request counter and
    then the bytes counter in two transactions (giving the first back when the second refuses): one
    transaction that checks both and then counts both leaves the same state. Applies to the
    built-in ``SQLiteLimitStore`` only; other stores keep the two-method protocol.
    """
    import time

    from s3drop.errors import RateLimited
    from s3drop.limits import Limits, SQLiteLimitStore, _retry_after, _window_start

    check_stored, before_sign = Limits.check_stored, Limits.before_sign

    def fast_check_stored(self: Limits, who: str) -> None:
        if not isinstance(self.store, SQLiteLimitStore):
            return check_stored(self, who)
        row = (
            self.store._connect()
            .execute("SELECT used FROM counters WHERE key = ? AND start = 0", (f"{who}:images",))
            .fetchone()
        )
        if (row[0] if row else 0) > self.settings.max_images - 1:
            raise RateLimited(
                f"image limit reached: {self.settings.max_images} images; delete some first",
                retry_after=3600,
            )
        return None

    def fast_before_sign(self: Limits, who: str, size: int, *, now: float | None = None) -> None:
        if not isinstance(self.store, SQLiteLimitStore):
            return before_sign(self, who, size, now=now)
        now = time.time() if now is None else now
        counters = [
            (f"{who}:req", 1, self.settings.rate_per_minute, 60),
            (f"{who}:bytes", size, self.settings.bytes_per_hour, 3600),
        ]
        db = self.store._connect()
        db.execute("BEGIN IMMEDIATE")
        try:
            for key, amount, limit, window in counters:
                start = _window_start(now, window)
                row = db.execute(
                    "SELECT used FROM counters WHERE key = ? AND start = ?", (key, start)
                ).fetchone()
                if (row[0] if row else 0) + amount > limit:
                    db.execute("ROLLBACK")
                    wait = _retry_after(now, start, window)
                    if window == 60:
                        raise RateLimited(
                            f"too many upload requests: the limit is {limit} a minute; try "
                            f"again in {wait} s",
                            retry_after=wait,
                        )
                    raise RateLimited(
                        f"upload budget used up: {limit} bytes an hour; try again in {wait} s",
                        retry_after=wait,
                    )
            for key, amount, _limit, window in counters:
                start = _window_start(now, window)
                fresh = (
                    db.execute(
                        "INSERT INTO counters (key, start, used) VALUES (?, ?, ?) "
                        "ON CONFLICT (key, start) DO UPDATE SET used = used + excluded.used "
                        "RETURNING used",
                        (key, start, amount),
                    ).fetchone()[0]
                    == amount
                )
                if fresh:  # a new window began: forget this key's old ones
                    db.execute("DELETE FROM counters WHERE key = ? AND start < ?", (key, start))
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        return None

    Limits.check_stored = fast_check_stored  # type: ignore[method-assign]
    Limits.before_sign = fast_before_sign  # type: ignore[method-assign]


FIXES: dict[str, Callable[[], None]] = {
    "sqlite-limits": _sqlite_limits,
}


def apply(names: list[str] | None = None) -> list[str]:
    """Apply ``names`` (default: those in ``$BENCH_FIXES``); the names applied."""
    if names is None:
        names = [n for n in os.environ.get(ENV, "").split(",") if n]
    for name in names:
        if name not in FIXES:
            raise ValueError(f"unknown fix {name!r}; known: {', '.join(FIXES)}")
        FIXES[name]()
    return names
