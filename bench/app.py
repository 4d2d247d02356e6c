"""The benchmark app: s3drop's own app, plus baseline endpoints behind the same middleware.

``create_bench_app()`` is a uvicorn factory (``uvicorn --factory bench.app:create_bench_app``) that
reads Settings from the environment, builds :func:`s3drop.web.app.create_app`, and adds:

- ``POST /api/bench/noop``: parses the sign endpoint's JSON body model (``SignRequest``) and answers a
  small JSON dict; an ``async def``, the cheapest thing FastAPI can do with that body. The baseline of
  the sign benchmark.
- ``POST /bench/sink``: reads the request body (``request.stream()``) and discards it. The baseline
  of the upload benchmark; outside ``/api`` like ``POST /storage``.
- ``POST /bench/sink-file``: the same, writing each chunk to a file in the data folder (then deleted):
  what the disk writes alone cost (a diagnostic; no multipart parsing, no policy check).

and, to say where the sign route's time goes (diagnostics, see bench/inprocess.py), variants of it
that differ in one thing each:

- ``POST /api/bench/noop-sync``: the no-op as a plain ``def`` with the sign route's (sync)
  authentication dependency: the two threadpool hops and nothing else.
- ``POST /api/bench/sign-1hop``: the sign route with the authentication dependency as ``async def``
  (one threadpool hop: the route itself).
- ``POST /api/bench/sign-async``: the same call as an ``async def`` route with an ``async def``
  dependency (no threadpool; the limit store runs on the event loop).
- ``POST /api/bench/sign-async-raw``: as ``sign-async``, answering a ``JSONResponse`` directly (no
  validation and serialisation of the ``dict[str, object]`` return annotation).

Every route sits behind the same middleware stack as the real ones (Starlette builds the stack
around the router, so routes added after ``create_app`` pass through it too).

``S3DROP_BENCH_LIMITS=memory`` (or ``limits="memory"``) swaps the app's limit store for the
in-process one, ``sqlite`` for the SQLite file even when ``S3DROP_REDIS_URL`` is set; the default,
``settings``, is the app's own choice.
"""

from __future__ import annotations

import os
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response

from s3drop import metrics
from s3drop.auth import Principal
from s3drop.config import Settings
from s3drop.limits import MemoryLimitStore, SQLiteLimitStore
from s3drop.uploads import S3Drop
from s3drop.web.app import create_app
from s3drop.web.routes import Caller, SignRequest, current_principal

from . import fixes


async def _principal_async(request: Request) -> Principal:
    """The sign route's authentication, as an ``async def`` dependency (no threadpool hop)."""
    return await current_principal(request)


AsyncCaller = Annotated[Principal, Depends(_principal_async)]


def _presign(request: Request, body: SignRequest, principal: Principal) -> dict[str, object]:
    drop: S3Drop = request.app.state.drop
    form = drop.presign(
        content_type=body.content_type,
        size=body.size,
        filename=body.filename,
        sha256=body.sha256,
        principal=principal,
    )
    metrics.signed(form.content_type)
    return {"upload": form.to_dict()}


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

    @app.post("/api/bench/noop-sync")
    def noop_sync(body: SignRequest, principal: Caller) -> dict[str, object]:
        return {"ok": True, "size": body.size}

    @app.post("/api/bench/sign-1hop", status_code=201)
    def sign_one_hop(
        body: SignRequest, request: Request, principal: AsyncCaller
    ) -> dict[str, object]:
        return _presign(request, body, principal)

    @app.post("/api/bench/sign-async", status_code=201)
    async def sign_async(
        body: SignRequest, request: Request, principal: AsyncCaller
    ) -> dict[str, object]:
        return _presign(request, body, principal)

    @app.post("/api/bench/sign-async-raw", response_model=None)
    async def sign_async_raw(
        body: SignRequest, request: Request, principal: AsyncCaller
    ) -> JSONResponse:
        return JSONResponse(_presign(request, body, principal), status_code=201)

    return app
