"""Proposed fixes to s3drop, applied at run time so their effect can be measured before anyone
edits src/: ``python -m bench --fix NAME`` (or ``BENCH_FIXES=name,name`` for subprocesses).

A default run applies none: the table measures the code as it is. Each fix here is the exact change
the bench README recommends, written as a monkeypatch.
"""

from __future__ import annotations

import os
from collections.abc import Callable

ENV = "BENCH_FIXES"


def _workers_not_niced() -> None:
    """Decode workers at the server's own CPU priority instead of ``nice`` 10. Not a proposal: a
    diagnosis. On a machine that other work keeps busy (a shared CI or dev box at load 10+), a
    niced worker gets a tenth of a normal process's share, and the e2e figure measures that
    starvation rather than s3drop; on an idle machine the two should agree."""
    from s3drop import _sandbox_worker as sandbox_worker

    sandbox_worker._BOOT = sandbox_worker._BOOT.replace(
        "from s3drop._sandbox_worker import _main;",
        "import s3drop._sandbox_worker as s; s.NICE = 0; from s3drop._sandbox_worker import _main;",
    )


def _batch_wait() -> None:
    """The limits batcher waits one more turn of the event loop before it sends a batch, so that
    signs parsed in the next turn join it (larger batches, one round trip fewer, ~one turn's
    latency more). Measured 2026-12-01 (``python -m bench limits --fix batch-wait``): Redis/SQLite
    CPU per sign 0.86x with it, 0.89-0.92x without, so not adopted; kept to measure again."""
    import asyncio

    from s3drop.limits import _batch as batch

    original = batch.TakeBatcher._drain

    async def drain(self: batch.TakeBatcher) -> None:
        await asyncio.sleep(0)
        await original(self)

    batch.TakeBatcher._drain = drain  # type: ignore[method-assign]


FIXES: dict[str, Callable[[], None]] = {
    "batch-wait": _batch_wait,
    "workers-not-niced": _workers_not_niced,
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
