"""Counters in one SQLite file, shared by every worker process of one machine.

Blocking (a file, and locks other connections hold): async callers run it in a thread. A call
that waits longer than :data:`BUSY_TIMEOUT` for another connection's lock gives up with
:class:`~s3drop._errors.LimitsUnavailable` and counts nothing; on a full disk it is
:class:`~s3drop._errors.InsufficientStorage` (507).
"""

from __future__ import annotations

import random
import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from .._errors import InsufficientStorage, LimitsUnavailable
from .base import Full, Take, retry_after, window_start

#: Seconds a SQLite call waits for another connection's lock before the store gives up (503).
BUSY_TIMEOUT = 1.0


class SQLiteLimitStore:
    """Counters in the SQLite file ``path`` (created with its folder), one connection a thread."""

    blocking = True

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

    def take(self, takes: Sequence[Take], *, now: float) -> Full | None:
        return self.take_many([takes], now=now)[0]

    def take_many(self, batch: Sequence[Sequence[Take]], *, now: float) -> list[Full | None]:
        """Every list of takes in one transaction (a group commit: one lock, one WAL write)."""
        try:
            return self._take_many(batch, now)
        except sqlite3.OperationalError as exc:
            raise _unavailable(exc) from exc

    def _take_many(self, batch: Sequence[Sequence[Take]], now: float) -> list[Full | None]:
        db = self._connect()
        writes = any(take.count and take.amount for takes in batch for take in takes)
        # Only checks: a plain read, no write lock. Else one write transaction for all of them.
        db.execute("BEGIN IMMEDIATE" if writes else "BEGIN")
        try:
            results = [self._take(db, takes, now) for takes in batch]
            db.execute("COMMIT")
            return results
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    @staticmethod
    def _take(db: sqlite3.Connection, takes: Sequence[Take], now: float) -> Full | None:
        """One list of takes inside the open transaction: all of them, or none and the full one."""
        found = []
        for take in takes:
            start = window_start(now, take.window)
            row = db.execute(
                "SELECT used FROM counters WHERE key = ? AND start = ?", (take.key, start)
            ).fetchone()
            if (row[0] if row else 0) + take.amount > take.limit:
                return Full(take, retry_after(now, take.window))
            found.append((take, start, row is not None))
        for take, start, existed in found:
            if not (take.count and take.amount):
                continue
            db.execute(
                "INSERT INTO counters (key, start, used) VALUES (?, ?, ?) "
                "ON CONFLICT (key, start) DO UPDATE SET used = used + excluded.used",
                (take.key, start, take.amount),
            )
            if take.window and not existed:
                # a new window began: forget this key's old ones
                db.execute("DELETE FROM counters WHERE key = ? AND start < ?", (take.key, start))
        return None

    def peek(self, key: str, *, window: int = 0, now: float) -> int:
        try:
            row = (
                self._connect()
                .execute(
                    "SELECT used FROM counters WHERE key = ? AND start = ?",
                    (key, window_start(now, window)),
                )
                .fetchone()
            )
        except sqlite3.OperationalError as exc:
            raise _unavailable(exc) from exc
        return int(row[0]) if row else 0

    def add(self, key: str, amount: int, *, window: int = 0, now: float) -> None:
        try:
            self._connect().execute(
                "INSERT INTO counters (key, start, used) VALUES (?, ?, MAX(0, ?)) "
                "ON CONFLICT (key, start) DO UPDATE SET used = MAX(0, used + ?)",
                (key, window_start(now, window), amount, amount),
            )
        except sqlite3.OperationalError as exc:
            raise _unavailable(exc) from exc


def _unavailable(exc: sqlite3.OperationalError) -> LimitsUnavailable | InsufficientStorage:
    if getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL:
        return InsufficientStorage(
            f"no space left for the limits database ({exc}); nothing was counted"
        )
    return LimitsUnavailable(
        f"the limits database is not answering ({exc}); nothing was counted, try again shortly"
    )
