"""Counters in this process only: for tests and single-process embedding."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from .base import Full, Take, retry_after, window_start


class MemoryLimitStore:
    """Counters in a dict, behind a lock; nothing is shared with other processes."""

    blocking = False

    def __init__(self) -> None:
        self._counts: dict[tuple[str, int], int] = {}
        self._lock = threading.Lock()

    def take(self, takes: Sequence[Take], *, now: float) -> Full | None:
        with self._lock:
            slots = [(t, (t.key, window_start(now, t.window))) for t in takes]
            for take, slot in slots:
                if self._counts.get(slot, 0) + take.amount > take.limit:
                    return Full(take, retry_after(now, take.window))
            for take, slot in slots:
                if take.count and take.amount:
                    self._counts[slot] = self._counts.get(slot, 0) + take.amount
            return None

    def take_many(self, batch: Sequence[Sequence[Take]], *, now: float) -> list[Full | None]:
        return [self.take(takes, now=now) for takes in batch]

    def peek(self, key: str, *, window: int = 0, now: float) -> int:
        with self._lock:
            return self._counts.get((key, window_start(now, window)), 0)

    def add(self, key: str, amount: int, *, window: int = 0, now: float) -> None:
        slot = (key, window_start(now, window))
        with self._lock:
            self._counts[slot] = max(0, self._counts.get(slot, 0) + amount)
