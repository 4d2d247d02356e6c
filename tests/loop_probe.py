"""``python -m tests.loop_probe --port N``: the bundled app under uvicorn with an event-loop watch.

What ``create_app()`` serves (settings from the environment), on asyncio's own loop, plus two
routes for the test that drives it: ``POST /_probe/start`` starts watching (after the warm-up:
imports, first connections and FastAPI's per-route caches are not the app's steady state) and
``GET /_probe/report`` says what was seen since:

- ``slow_callbacks``: every callback (a task step, a timer, an I/O event) that used more than
  :data:`SLOW` of the loop thread's CPU time. This is asyncio debug mode's slow-callback check,
  measured in thread CPU time instead of wall time, so that a machine busy with other work (which
  stalls the whole process) does not count against the app while any real work done on the loop
  does; waiting is what the next check finds;
- ``max_lag``, ``max_callback_wall``: the largest delay of a probe task that asks to wake every
  10 ms, and the longest callback in wall time (both for information: on a shared machine they
  also measure the neighbours);
- ``blocking_calls``: every call, made on the event loop's thread while watching, to a function
  that waits on disk, a lock or a blocking socket (opening or stating files, renames, SQLite,
  ``time.sleep``, a blocking socket's connect/recv/send), with where it was called from. These are
  found however fast the disk is, so the test fails on a blocking call even on an idle machine.
"""

from __future__ import annotations

import argparse
import asyncio
import builtins
import io
import os
import socket
import sqlite3
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

import uvicorn
from fastapi import FastAPI

#: A callback holding the loop longer than this is a failure (see tests/test_event_loop.py).
SLOW = 0.05

watching = False
loop_thread: int | None = None
blocking_calls: list[dict[str, Any]] = []
slow_callbacks: list[str] = []
lags: list[float] = []
walls: list[float] = []


_inside = threading.local()


def _where() -> list[str]:
    """The callers, innermost first (no source lines: reading them would open files)."""
    frames = traceback.StackSummary.extract(traceback.walk_stack(None), lookup_lines=False)
    shown = [f"{f.filename.rsplit('/site-packages/', 1)[-1]}:{f.lineno} {f.name}" for f in frames]
    return shown[3:15]


def _note(what: str) -> None:
    if not watching or threading.get_ident() != loop_thread or getattr(_inside, "on", False):
        return
    _inside.on = True
    try:
        stack = _where()
        # debug mode's own bookkeeping (the traceback of every handle it creates) is not the app
        if not any("/linecache.py:" in frame for frame in stack):
            blocking_calls.append({"call": what, "stack": stack})
    finally:
        _inside.on = False


def _watch(owner: Any, name: str, label: str, when: Callable[..., bool] | None = None) -> None:
    original = getattr(owner, name)

    def watched(*args: Any, **kwargs: Any) -> Any:
        if when is None or when(*args, **kwargs):
            _note(label)
        return original(*args, **kwargs)

    setattr(owner, name, watched)


def _blocking_socket(sock: socket.socket, *args: Any, **kwargs: Any) -> bool:
    return sock.gettimeout() != 0.0  # asyncio's own sockets are non-blocking


class _WatchedConnection(sqlite3.Connection):
    def execute(self, *args: Any, **kwargs: Any) -> sqlite3.Cursor:
        _note("sqlite3 execute")
        return super().execute(*args, **kwargs)


def install_watch() -> None:
    for owner, name in [(builtins, "open"), (io, "open")]:
        _watch(owner, name, f"{owner.__name__}.open")
    for name in ("stat", "lstat", "replace", "rename", "unlink", "mkdir", "makedirs", "listdir"):
        _watch(os, name, f"os.{name}")
    _watch(os, "scandir", "os.scandir")
    _watch(time, "sleep", "time.sleep")
    for name in ("connect", "recv", "recv_into", "send", "sendall"):
        _watch(socket.socket, name, f"blocking socket.{name}", _blocking_socket)
    connect = sqlite3.connect

    def watched_connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        kwargs.setdefault("factory", _WatchedConnection)
        return connect(*args, **kwargs)

    sqlite3.connect = watched_connect  # type: ignore[assignment]


def install_callback_timer() -> None:
    """Time every callback the loop runs, in the loop thread's CPU time."""
    run = asyncio.events.Handle._run

    def timed(self: asyncio.events.Handle) -> None:
        if not watching:
            return run(self)
        cpu, wall = time.thread_time(), time.perf_counter()
        try:
            return run(self)
        finally:
            used, took = time.thread_time() - cpu, time.perf_counter() - wall
            walls.append(took)
            if used > SLOW:
                slow_callbacks.append(
                    f"{self!r} used {used * 1000:.0f} ms of CPU ({took * 1000:.0f} ms wall)"[:2000]
                )

    asyncio.events.Handle._run = timed  # type: ignore[method-assign]


async def _lag_probe() -> None:
    loop = asyncio.get_running_loop()
    while True:
        before = loop.time()
        await asyncio.sleep(0.01)
        if watching:
            lags.append(loop.time() - before - 0.01)


def probe_app() -> FastAPI:
    from s3drop.web.app import create_app

    app = create_app()

    @app.post("/_probe/start")
    async def start() -> dict[str, bool]:
        global watching
        blocking_calls.clear()
        slow_callbacks.clear()
        lags.clear()
        walls.clear()
        watching = True
        return {"watching": True}

    @app.get("/_probe/report")
    async def report() -> dict[str, Any]:
        global watching
        watching = False
        return {
            "blocking_calls": blocking_calls,
            "slow_callbacks": slow_callbacks,
            "max_lag": max(lags, default=0.0),
            "max_callback_wall": max(walls, default=0.0),
            "lag_samples": len(lags),
        }

    return app


async def main(port: int, *, serve_logs: bool = False) -> None:
    global loop_thread
    loop_thread = threading.get_ident()
    logging: dict[str, Any] = {"log_level": "warning"}
    if serve_logs:  # the logging of ``s3drop serve``: its audit trail and the access log
        from s3drop._logs import log_config

        logging = {"log_level": "info", "log_config": log_config("text")}
    install_watch()  # before the app opens anything (its SQLite connection, say)
    install_callback_timer()
    app = probe_app()
    probe = asyncio.create_task(_lag_probe())
    config = uvicorn.Config(app, host="127.0.0.1", port=port, loop="asyncio", **logging)
    await uvicorn.Server(config).serve()
    probe.cancel()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--serve-logs", action="store_true", help="log as s3drop serve does")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.port, serve_logs=arguments.serve_logs))
