"""Abuse limits on signing: requests per minute, bytes signed per hour, images stored in total.

Counted per principal (per client address when anonymous). Over a limit, signing raises
:class:`~s3drop.errors.RateLimited` with the seconds until the window frees up (the app answers 429
with ``Retry-After``) and signs nothing.

Counters live in a :class:`LimitStore`. The default, :class:`SQLiteLimitStore`, is one SQLite file in
the data folder, so every worker process of one machine shares it. Several machines need a shared
store: implement the two methods of :class:`LimitStore` over Redis (``INCRBY`` + ``EXPIRE`` in a
``MULTI``) or your database, and pass it to :class:`~s3drop.uploads.S3Drop`.

The same store also claims each upload id once (:meth:`Limits.claim`): a counter of limit 1 that
never expires, taken atomically by whichever completion promotes the upload, in whichever process
or machine shares the store. That is what makes "promoted once, counted once" hold across workers.

A store that cannot answer in time (a SQLite file locked by another connection for longer than
:data:`BUSY_TIMEOUT`) raises :class:`~s3drop.errors.LimitsUnavailable`: 503 with ``Retry-After``,
nothing signed or counted. The store blocks while it waits, so callers run it off the event loop.
"""

from __future__ import annotations

import random
import sqlite3
import threading
import time
from pathlib import Path
from typing import Protocol

from .config import Settings
from .errors import LimitsUnavailable, RateLimited

#: Seconds a SQLite call waits for another connection's lock before the store gives up (503).
BUSY_TIMEOUT = 1.0


class LimitStore(Protocol):
    """Fixed-window counters shared by every process that signs."""

    def take(self, key: str, amount: int, *, limit: int, window: int, now: float) -> int | None:
        """Add ``amount`` to ``key``'s counter for the window holding ``now`` if it stays within
        ``limit`` and return None; else add nothing and return the seconds until that window ends
        (0 for ``window`` 0, which means forever)."""
        ...

    def give_back(self, key: str, amount: int, *, window: int, now: float) -> None:
        """Take ``amount`` off ``key``'s counter for the window holding ``now`` (never below 0)."""
        ...


class MemoryLimitStore:
    """Counters in this process only: for tests and single-process embedding."""

    def __init__(self) -> None:
        self._counts: dict[tuple[str, int], int] = {}
        self._lock = threading.Lock()

    def take(self, key: str, amount: int, *, limit: int, window: int, now: float) -> int | None:
        start = _window_start(now, window)
        with self._lock:
            used = self._counts.get((key, start), 0)
            if used + amount > limit:
                return _retry_after(now, start, window)
            self._counts[(key, start)] = used + amount
            return None

    def give_back(self, key: str, amount: int, *, window: int, now: float) -> None:
        start = _window_start(now, window)
        with self._lock:
            self._counts[(key, start)] = max(0, self._counts.get((key, start), 0) - amount)


class SQLiteLimitStore:
    """Counters in one SQLite file, shared by every worker process on this machine."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        # Switching to WAL and creating the table take locks that SQLite may refuse at once
        # (without waiting) while another process does the same: retry, briefly.
        for attempt in range(100):
            try:
                db = self._connect()
                db.execute("PRAGMA journal_mode=WAL")
                db.execute(
                    "CREATE TABLE IF NOT EXISTS counters (key TEXT NOT NULL, start INTEGER NOT "
                    "NULL, used INTEGER NOT NULL, PRIMARY KEY (key, start)) WITHOUT ROWID"
                )
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or attempt == 99:
                    raise
                time.sleep(0.01 + random.random() * 0.02)

    def _connect(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT, isolation_level=None)
            db.execute("PRAGMA synchronous=NORMAL")
            self._local.db = db
        return db

    def take(self, key: str, amount: int, *, limit: int, window: int, now: float) -> int | None:
        try:
            return self._take(key, amount, limit=limit, window=window, now=now)
        except sqlite3.OperationalError as exc:
            raise _unavailable(exc) from exc

    def _take(self, key: str, amount: int, *, limit: int, window: int, now: float) -> int | None:
        start = _window_start(now, window)
        db = self._connect()
        if amount == 0:  # only asking whether the counter is full: a read, no write lock
            row = db.execute(
                "SELECT used FROM counters WHERE key = ? AND start = ?", (key, start)
            ).fetchone()
            return _retry_after(now, start, window) if (row[0] if row else 0) > limit else None
        db.execute("BEGIN IMMEDIATE")
        try:
            row = db.execute(
                "SELECT used FROM counters WHERE key = ? AND start = ?", (key, start)
            ).fetchone()
            used = row[0] if row else 0
            if used + amount > limit:
                db.execute("ROLLBACK")
                return _retry_after(now, start, window)
            db.execute(
                "INSERT INTO counters (key, start, used) VALUES (?, ?, ?) "
                "ON CONFLICT (key, start) DO UPDATE SET used = used + excluded.used",
                (key, start, amount),
            )
            if window and not row:
                # a new window began: forget this key's old ones
                db.execute("DELETE FROM counters WHERE key = ? AND start < ?", (key, start))
            db.execute("COMMIT")
            return None
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    def give_back(self, key: str, amount: int, *, window: int, now: float) -> None:
        start = _window_start(now, window)
        try:
            self._connect().execute(
                "UPDATE counters SET used = MAX(0, used - ?) WHERE key = ? AND start = ?",
                (amount, key, start),
            )
        except sqlite3.OperationalError as exc:
            raise _unavailable(exc) from exc


def _unavailable(exc: sqlite3.OperationalError) -> LimitsUnavailable:
    return LimitsUnavailable(
        f"the limits database is not answering ({exc}); nothing was counted, try again shortly"
    )


def _window_start(now: float, window: int) -> int:
    return int(now // window * window) if window else 0


def _retry_after(now: float, start: int, window: int) -> int:
    if not window:
        return 0
    return max(1, int(start + window - now + 0.999))


class Limits:
    """The limits the settings set, over a store."""

    def __init__(self, settings: Settings, store: LimitStore) -> None:
        self.settings = settings
        self.store = store

    def before_sign(self, who: str, size: int, *, now: float | None = None) -> None:
        """Count one sign request of ``size`` bytes for ``who``, or raise RateLimited."""
        now = time.time() if now is None else now
        wait = self.store.take(
            f"{who}:req", 1, limit=self.settings.rate_per_minute, window=60, now=now
        )
        if wait is not None:
            raise RateLimited(
                f"too many upload requests: the limit is {self.settings.rate_per_minute} a "
                f"minute; try again in {wait} s",
                retry_after=wait,
            )
        wait = self.store.take(
            f"{who}:bytes", size, limit=self.settings.bytes_per_hour, window=3600, now=now
        )
        if wait is not None:
            self.store.give_back(f"{who}:req", 1, window=60, now=now)
            raise RateLimited(
                f"upload budget used up: {self.settings.bytes_per_hour} bytes an hour; try again "
                f"in {wait} s",
                retry_after=wait,
            )

    def check_stored(self, who: str) -> None:
        """Raise RateLimited when ``who`` already has the most images allowed."""
        full = self.store.take(
            f"{who}:images", 0, limit=self.settings.max_images - 1, window=0, now=0
        )
        if full is not None:
            raise RateLimited(
                f"image limit reached: {self.settings.max_images} images; delete some first",
                retry_after=3600,
            )

    def claim(self, upload_id: str) -> bool:
        """Claim the promotion of ``upload_id``: True for the first caller ever, in any process
        sharing the store; False for every later one (the upload was promoted, or is being).

        Atomic because ``take`` is (a SQLite write transaction, a lock in memory, one Redis
        ``MULTI``): of any number of concurrent callers exactly one gets True. The claim never
        expires (one small row per image), so a form posted again, even after its image was
        deleted, never makes a second image.
        """
        return self.store.take(f"upload:{upload_id}:promoted", 1, limit=1, window=0, now=0) is None

    def stored(self, who: str, delta: int) -> None:
        """An image of ``who``'s was accepted (+1) or deleted (-1)."""
        if delta > 0:
            self.store.take(f"{who}:images", delta, limit=2**62, window=0, now=0)
        else:
            self.store.give_back(f"{who}:images", -delta, window=0, now=0)
