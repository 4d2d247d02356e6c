"""One live ``s3drop serve`` for a module's tests that only read what they themselves made.

A start costs about a CPU-second (Python, FastAPI, pydantic-settings, the decode workers); a
module whose tests each need a process, but not a process of their own, shares one. Each test
keeps to its own files, owners or tokens, and counts metrics as differences (before and after),
so tests cannot see each other's state.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from .conftest import LiveServer, isolate, start_server


@contextlib.contextmanager
def shared_server(
    tmp_path_factory: pytest.TempPathFactory, name: str, *, env: dict[str, str] | None = None
) -> Iterator[LiveServer]:
    """A server started with ``env`` alone (as ``make_server`` would: nothing of the machine's
    AWS_* or S3DROP_* settings), stopped at the end of the ``with``."""
    with pytest.MonkeyPatch.context() as patch:
        tmp = tmp_path_factory.mktemp(name)
        isolate(patch, tmp)
        server = start_server(tmp, env=env)
    try:
        yield server
    finally:
        server.stop()
