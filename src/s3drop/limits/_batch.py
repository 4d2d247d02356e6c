"""Group commit for the event loop: the signs that wait on the limit store at the same time share
one store call.

A sign's limits are one :meth:`~s3drop.limits.base.LimitStore.take`; on the event loop that is a
thread hop and a SQLite transaction, or a Redis round trip, each costing the server more CPU than
the counting itself. :class:`TakeBatcher` queues the takes of every sign that arrives while a
store call is in flight and sends them all in the next one
(:meth:`~s3drop.limits.base.BatchLimitStore.take_many`: one transaction, one script call), the way
databases group commits: idle, a sign goes alone at once (on the next turn of the loop, so signs
parsed in the same turn join it); busy, the batch grows by itself. Each sign's takes stay all or
nothing on their own, checked in arrival order, so the limits are as exact as one call a sign.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence

from .base import Full, Take

#: The store call behind a batcher: several signs' takes at ``now``, one result each.
TakeMany = Callable[[list[Sequence[Take]], float], Awaitable[list[Full | None]]]

_Waiting = list[tuple[Sequence[Take], "asyncio.Future[Full | None]"]]


class TakeBatcher:
    """One event loop's queue of takes for one store; at most one store call in flight."""

    def __init__(self, take_many: TakeMany) -> None:
        self._take_many = take_many
        # Keyed by the ``now`` the caller gave (None: the clock when the batch goes), so a batch
        # never mixes windows a caller chose.
        self._waiting: dict[float | None, _Waiting] = {}
        self._draining = False
        self._task: asyncio.Task[None] | None = None  # held: the loop keeps only weak references

    async def take(self, takes: Sequence[Take], *, now: float | None = None) -> Full | None:
        """:meth:`~s3drop.limits.base.LimitStore.take` of ``takes``, in the next batch."""
        future: asyncio.Future[Full | None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(now, []).append((takes, future))
        if not self._draining:
            self._draining = True
            self._task = asyncio.get_running_loop().create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self._waiting:
                now = next(iter(self._waiting))
                batch = self._waiting.pop(now)
                try:
                    results = await self._take_many(
                        [takes for takes, _ in batch], time.time() if now is None else now
                    )
                except Exception as exc:  # the store's failure is every waiting sign's
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (_, future), result in zip(batch, results, strict=True):
                    if not future.done():  # (a sign whose client left was counted all the same)
                        future.set_result(result)
        finally:
            self._draining = False
