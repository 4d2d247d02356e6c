"""The contract of a limit store: fixed-window counters, taken several at once, all or nothing.

A store keeps integer counters by key, each in a *window*: the ``window`` seconds (60, 3600) that
hold ``now``, or forever when ``window`` is 0. Three operations, named for what they do:

- :meth:`LimitStore.take`: add each :class:`Take`'s amount to its counter if every one of them
  stays within its limit, atomically, across every process that shares the store; else add nothing
  and say which one is full (:class:`Full`). One call, one round trip, however many counters.
- :meth:`LimitStore.peek`: a counter's value now.
- :meth:`LimitStore.add`: add to (or, negative, take off) a counter with no limit; never below 0.

A store may also take several signs' counters in one call (:class:`BatchLimitStore`,
``take_many``: each list of takes all or nothing on its own, one round trip for all): the event
loop then sends the signs waiting at the same time together (:mod:`s3drop.limits._batch`).

A store declares whether its calls wait on I/O (``blocking``: a disk, a lock, a network): async
callers run a blocking store in a thread. A store that also has the ``*_async`` methods
(:class:`AsyncLimitStore`) is awaited on the event loop instead. A store that cannot answer raises
:class:`~s3drop._errors.LimitsUnavailable` (nothing was counted).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class Take:
    """Room for ``amount`` in ``key``'s counter of the current ``window``, up to ``limit``.

    ``count=False`` only checks that the room is there and adds nothing (the stored-images
    counter at signing: there must be room for one more, but only an accepted image counts).
    """

    key: str
    amount: int
    limit: int
    window: int = 0
    count: bool = True


@dataclass(frozen=True, slots=True)
class Full:
    """The take that did not fit, and the seconds until its window ends (0: it never ends)."""

    take: Take
    retry_after: int


class LimitStore(Protocol):
    """Fixed-window counters shared by every process that signs."""

    #: True when the calls wait on I/O: async callers run them in a thread.
    blocking: bool

    def take(self, takes: Sequence[Take], *, now: float) -> Full | None:
        """All of ``takes`` or none: None when every one fit and was counted, else the first
        that did not fit (and nothing was counted)."""
        ...

    def peek(self, key: str, *, window: int = 0, now: float) -> int:
        """``key``'s counter in the window holding ``now`` (0 if it was never counted)."""
        ...

    def add(self, key: str, amount: int, *, window: int = 0, now: float) -> None:
        """Add ``amount`` (negative: take it off) to ``key``'s counter, never going below 0."""
        ...


class BatchLimitStore(LimitStore, Protocol):
    """A store that takes several lists of takes in one call (one transaction, one round trip)."""

    def take_many(self, batch: Sequence[Sequence[Take]], *, now: float) -> list[Full | None]:
        """:meth:`take` of each list in ``batch``, in order, each all or nothing on its own: one
        result per list. A failure of the store fails all of them (nothing counted)."""
        ...


@runtime_checkable
class AsyncLimitStore(LimitStore, Protocol):
    """A store that can also be awaited: the event loop waits for it without a thread."""

    async def take_async(self, takes: Sequence[Take], *, now: float) -> Full | None: ...

    async def peek_async(self, key: str, *, window: int = 0, now: float) -> int: ...

    async def add_async(self, key: str, amount: int, *, window: int = 0, now: float) -> None: ...


def window_start(now: float, window: int) -> int:
    """The first second of the ``window`` holding ``now`` (0 for a counter that never resets)."""
    return int(now // window * window) if window else 0


def retry_after(now: float, window: int) -> int:
    """Whole seconds until the ``window`` holding ``now`` ends (at least 1; 0 when it never does)."""
    if not window:
        return 0
    return max(1, int(window_start(now, window) + window - now + 0.999))
