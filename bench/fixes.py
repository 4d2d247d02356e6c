"""Proposed fixes to s3drop, applied at run time so their effect can be measured before anyone
edits src/: ``python -m bench --fix NAME`` (or ``BENCH_FIXES=name,name`` for subprocesses).

A default run applies none: the table measures the code as it is. Each fix here is the exact change
the bench README recommends, written as a monkeypatch.
"""

from __future__ import annotations

import os
from collections.abc import Callable

ENV = "BENCH_FIXES"


#: None proposed now: the one there was (one SQLite transaction per sign) is in limits/ itself.
FIXES: dict[str, Callable[[], None]] = {}


def apply(names: list[str] | None = None) -> list[str]:
    """Apply ``names`` (default: those in ``$BENCH_FIXES``); the names applied."""
    if names is None:
        names = [n for n in os.environ.get(ENV, "").split(",") if n]
    for name in names:
        if name not in FIXES:
            raise ValueError(f"unknown fix {name!r}; known: {', '.join(FIXES)}")
        FIXES[name]()
    return names
