"""The benchmark app: s3drop's own app, plus baseline endpoints behind the same middleware.

``create_bench_app()`` is a uvicorn factory (``uvicorn --factory bench.app:create_bench_app``) that
reads Settings from the environment, builds :func:`s3drop.web.app.create_app`, and adds:

- ``POST /api/bench/noop``: parses the sign endpoint's JSON body model (``SignRequest``) and answers a
  small JSON dict; an ``async def``, the cheapest thing FastAPI can do with that body behind
  s3drop's middleware (a row of the sign benchmark's in-process diagnostics).
- ``POST /bench/sink``: reads the request body (``request.stream()``) and discards it. The baseline
  of the upload benchmark; outside ``/api`` like ``POST /storage``.
- ``POST /bench/sink-file``: the same, writing each chunk to a file in the data folder (then deleted):
  what the disk writes alone cost (a diagnostic; no multipart parsing, no policy check).

Every route sits behind the same middleware stack as the real ones (Starlette builds the stack
around the router, so routes added after ``create_app`` pass through it too).

``S3DROP_BENCH_LIMITS=memory`` (or ``limits="memory"``) swaps the app's limit store for the
in-process one, ``sqlite`` for the SQLite file even when ``S3DROP_REDIS_URL`` is set; the default,
``settings``, is the app's own choice.
"""

from __future__ import annotations

import os

from fastapi import FastAPI, Request
from fastapi.responses import Response

from s3drop._config import Settings
from s3drop._uploads import S3Drop
from s3drop.limits import MemoryLimitStore, SQLiteLimitStore
from s3drop.web._routes import SignRequest
from s3drop.web.app import create_app

from . import fixes


def create_bench_app(limits: str | None = None) -> FastAPI:
    fixes.apply()  # proposed fixes named in $BENCH_FIXES (none by default)
    settings = Settings()
    limits = limits or os.environ.get("S3DROP_BENCH_LIMITS", "settings")
    # "settings": the app's own choice (Redis when S3DROP_REDIS_URL is set, else SQLite).
    store = MemoryLimitStore() if limits == "memory" else None
    if limits == "sqlite":
        store = SQLiteLimitStore(settings.data_dir / "limits.sqlite3")
    app = create_app(settings, limit_store=store)

    @app.post("/api/bench/noop")
    async def noop(body: SignRequest) -> dict[str, object]:
        return {"ok": True, "size": body.size}

    @app.post("/bench/sink")
    async def sink(request: Request) -> Response:
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
        return Response(status_code=204, headers={"x-bench-bytes": str(size)})

    @app.post("/bench/sink-file")
    async def sink_file(request: Request) -> Response:
        drop: S3Drop = request.app.state.drop
        path = drop.settings.data_dir / "tmp" / f"sink-{os.getpid()}.part"
        size = 0
        with path.open("wb") as out:
            async for chunk in request.stream():
                out.write(chunk)
                size += len(chunk)
        path.unlink()
        return Response(status_code=204, headers={"x-bench-bytes": str(size)})

    return app
