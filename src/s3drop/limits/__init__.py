"""Abuse limits on signing: requests per minute, bytes signed per hour, images stored in total.

Counted per principal (per client address when anonymous). Over a limit, signing raises
:class:`~s3drop._errors.RateLimited` with the seconds until the window frees up (the app answers 429
with ``Retry-After``) and signs nothing. Every check of one sign is one call to the store
(:meth:`LimitStore.take` of three counters at once: one SQLite transaction, one Redis round trip),
and on the event loop the signs waiting at the same moment share one
(:meth:`~s3drop.limits.base.BatchLimitStore.take_many`, :mod:`s3drop.limits._batch`).

Counters live in a :class:`LimitStore` (:mod:`s3drop.limits.base` is the contract):

- :class:`~s3drop.limits.redis.RedisLimitStore` when ``S3DROP_REDIS_URL`` is set: one Redis shared
  by every instance on every machine, so the limits hold exactly however many there are.
- :class:`SQLiteLimitStore`: one file shared by every worker process of one machine. The bundled
  app and the CLI use ``<data folder>/limits.sqlite3`` when no Redis is set.
- :class:`MemoryLimitStore`: this process only. What :class:`~s3drop._uploads.S3Drop` uses when it
  is given no store and no Redis is set (a library creates no files it was not asked for).

The same store also claims each upload id once (:meth:`Limits.claim`): a counter of limit 1 that
never expires, taken atomically by whichever completion promotes the upload, in whichever process
or machine shares the store. That is what makes "promoted once, counted once" hold across workers.

A store that cannot answer (a SQLite file locked for longer than :data:`BUSY_TIMEOUT`, Redis down)
raises :class:`~s3drop._errors.LimitsUnavailable`: signing fails closed, 503 with ``Retry-After``,
nothing signed or counted.
"""

from __future__ import annotations

import asyncio
import functools
import time
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

from .._config import Settings
from .._errors import RateLimited
from ._batch import TakeBatcher, TakeMany
from .base import AsyncLimitStore, BatchLimitStore, Full, LimitStore, Take
from .memory import MemoryLimitStore
from .sqlite import BUSY_TIMEOUT, SQLiteLimitStore

__all__ = [
    "BUSY_TIMEOUT",
    "AsyncLimitStore",
    "BatchLimitStore",
    "Full",
    "LimitStore",
    "Limits",
    "MemoryLimitStore",
    "SQLiteLimitStore",
    "Take",
    "app_limit_store",
    "open_limit_store",
]


def open_limit_store(settings: Settings, *, sqlite: Path | None = None) -> LimitStore:
    """The store the settings name: Redis at ``S3DROP_REDIS_URL`` when set; else the SQLite file
    ``sqlite`` when given; else counters in this process."""
    if settings.redis_url:
        from .redis import RedisLimitStore

        return RedisLimitStore(settings.redis_url)
    if sqlite is not None:
        return SQLiteLimitStore(sqlite)
    return MemoryLimitStore()


def app_limit_store(settings: Settings) -> LimitStore:
    """The store the bundled app and the CLI share: Redis when set, else ``limits.sqlite3`` in the
    data folder (every worker process of the machine, and ``s3drop rm``, count in one place)."""
    return open_limit_store(settings, sqlite=settings.data_dir / "limits.sqlite3")


async def _take_many_async(
    store: Any, batch: list[Sequence[Take]], now: float
) -> list[Full | None]:
    found: list[Full | None] = await store.take_many_async(batch, now=now)
    return found


async def _take_many_in_thread(
    store: BatchLimitStore, batch: list[Sequence[Take]], now: float
) -> list[Full | None]:
    return await asyncio.to_thread(store.take_many, batch, now=now)


class Limits:
    """The limits the settings set, over a store."""

    def __init__(self, settings: Settings, store: LimitStore) -> None:
        self.settings = settings
        self.store = store
        # How the event loop calls the store: awaited, in a thread, or inline (decided once).
        self._awaits = isinstance(store, AsyncLimitStore)
        self._in_thread = not self._awaits and store.blocking
        #: Whether claims outlive this process (SQLite, Redis): a completion that claims an id
        #: then knows that no image of it was ever promoted, without asking storage.
        self.claims_durable = not isinstance(store, MemoryLimitStore)
        # Signs waiting on an awaited or threaded store share its calls (s3drop.limits._batch),
        # when it can take several at once: one batcher per event loop.
        self._take_many = self._batched_call()
        self._batchers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, TakeBatcher] = (
            weakref.WeakKeyDictionary()
        )

    def _batched_call(self) -> TakeMany | None:
        store = self.store
        if self._awaits and hasattr(store, "take_many_async"):
            return cast(TakeMany, functools.partial(_take_many_async, store))
        if self._in_thread and hasattr(store, "take_many"):
            batches = cast(BatchLimitStore, store)
            return cast(TakeMany, functools.partial(_take_many_in_thread, batches))
        return None

    def _sign_takes(self, who: str, size: int) -> tuple[Take, Take, Take]:
        settings = self.settings
        return (
            Take(f"{who}:images", 1, settings.max_images, count=False),
            Take(f"{who}:req", 1, settings.rate_per_minute, window=60),
            Take(f"{who}:bytes", size, settings.bytes_per_hour, window=3600),
        )

    def before_sign(self, who: str, size: int, *, now: float | None = None) -> None:
        """Count one sign request of ``size`` bytes for ``who``, or raise RateLimited and count
        nothing. One call to the store."""
        takes = self._sign_takes(who, size)
        self._refuse(takes, self.store.take(takes, now=time.time() if now is None else now))

    async def before_sign_async(self, who: str, size: int, *, now: float | None = None) -> None:
        """:meth:`before_sign` for the event loop: awaited (an async store), in a thread (a
        blocking one) or inline (one in memory)."""
        takes = self._sign_takes(who, size)
        if self._take_many is not None:
            loop = asyncio.get_running_loop()
            batcher = self._batchers.get(loop)
            if batcher is None:
                batcher = self._batchers[loop] = TakeBatcher(self._take_many)
            self._refuse(takes, await batcher.take(takes, now=now))
            return
        now = time.time() if now is None else now
        store = self.store
        if self._awaits:  # (no isinstance here: a Protocol check costs ~100 us)
            full = await cast(AsyncLimitStore, store).take_async(takes, now=now)
        elif self._in_thread:
            full = await asyncio.to_thread(store.take, takes, now=now)
        else:
            full = store.take(takes, now=now)
        self._refuse(takes, full)

    def _refuse(self, takes: Sequence[Take], full: Full | None) -> None:
        if full is None:
            return
        images, requests, _ = takes
        wait = full.retry_after
        if full.take is images:
            raise RateLimited(
                f"image limit reached: {self.settings.max_images} images; delete some first",
                retry_after=3600,
            )
        if full.take is requests:
            raise RateLimited(
                f"too many upload requests: the limit is {self.settings.rate_per_minute} a "
                f"minute; try again in {wait} s",
                retry_after=wait,
            )
        raise RateLimited(
            f"upload budget used up: {self.settings.bytes_per_hour} bytes an hour; try again "
            f"in {wait} s",
            retry_after=wait,
        )

    def claim(self, upload_id: str) -> bool:
        """Claim the promotion of ``upload_id``: True for the first caller ever, in any process
        sharing the store; False for every later one (the upload was promoted, or is being).

        Atomic because ``take`` is (a SQLite write transaction, a lock in memory, one Redis
        script): of any number of concurrent callers exactly one gets True. The claim never
        expires (one small counter per image), so a form posted again, even after its image was
        deleted, never makes a second image.
        """
        take = Take(f"upload:{upload_id}:promoted", 1, 1)
        return self.store.take([take], now=time.time()) is None

    def release(self, upload_id: str) -> None:
        """Give up a :meth:`claim` whose promotion failed before its image was stored (a full
        disk, storage gone): the next completion of ``upload_id`` may claim it again."""
        self.store.add(f"upload:{upload_id}:promoted", -1, now=time.time())

    def stored(self, who: str, delta: int) -> None:
        """An image of ``who``'s was accepted (+1) or deleted (-1)."""
        self.store.add(f"{who}:images", delta, now=time.time())

    def check(self) -> None:
        """Raise :class:`~s3drop._errors.LimitsUnavailable` unless the store answers now."""
        self.store.peek("ready", now=time.time())

    async def check_async(self) -> None:
        """:meth:`check` for the event loop."""
        store = self.store
        if self._awaits:
            await cast(AsyncLimitStore, store).peek_async("ready", now=time.time())
        elif self._in_thread:
            await asyncio.to_thread(store.peek, "ready", now=time.time())
        else:
            store.peek("ready", now=time.time())
