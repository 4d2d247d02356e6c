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
    from s3drop import sandbox

    sandbox._BOOT = sandbox._BOOT.replace(
        "from s3drop.sandbox import _main;",
        "import s3drop.sandbox as s; s.NICE = 0; from s3drop.sandbox import _main;",
    )


#: The one there was (one SQLite transaction per sign) is in limits/ itself.
FIXES: dict[str, Callable[[], None]] = {"workers-not-niced": _workers_not_niced}


def apply(names: list[str] | None = None) -> list[str]:
    """Apply ``names`` (default: those in ``$BENCH_FIXES``); the names applied."""
    if names is None:
        names = [n for n in os.environ.get(ENV, "").split(",") if n]
    for name in names:
        if name not in FIXES:
            raise ValueError(f"unknown fix {name!r}; known: {', '.join(FIXES)}")
        FIXES[name]()
    return names
