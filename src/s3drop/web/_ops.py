"""Operations endpoints and the latency middleware.

- ``GET /healthz`` (in :mod:`._routes`): the process answers; nothing else is checked.
- ``GET /readyz``: storage and the limits store answer now (``Storage.check()``,
  ``Limits.check_async()``, each within :data:`READY_TIMEOUT`): 200 ``{"status": "ready"}``, or 503
  with ``{"error": {"code", "message"}}`` naming the reason (``limits_unavailable`` and which Redis
  when Redis is down), so a load balancer stops sending traffic to a worker that cannot serve and
  sends it again when it can.
- ``GET /metrics``: Prometheus exposition (:mod:`s3drop._metrics`), every worker's samples summed.
- :class:`LatencyMiddleware`: one histogram sample per HTTP request, labelled with the route
  *template* (``/api/uploads/{upload_id}/complete``, never the concrete path, so the label set stays
  small); requests that match no route count as ``unmatched``.
"""

from __future__ import annotations

import asyncio
import time

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import _metrics as metrics
from .._errors import LimitsUnavailable, S3DropError, StorageUnavailable, json_error

router = APIRouter(include_in_schema=False)


#: A probe slower than this is an answer too: not ready (load balancers give up after a few s).
READY_TIMEOUT = 5.0


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    drop = request.app.state.drop
    try:
        await asyncio.wait_for(run_in_threadpool(drop.storage.check), READY_TIMEOUT)
    except S3DropError as exc:
        return _not_ready(exc.code, exc.message)
    except TimeoutError:
        return _not_ready(
            StorageUnavailable.code, f"storage did not answer within {READY_TIMEOUT:.0f} s"
        )
    try:  # signing fails closed without its limits: not ready either
        await asyncio.wait_for(drop.limits.check_async(), READY_TIMEOUT)
    except S3DropError as exc:  # for the operator: with the cause (which Redis, what failed)
        cause = f" ({exc.__cause__})" if exc.__cause__ is not None else ""
        return _not_ready(exc.code, f"limits: {exc.message}{cause}")
    except TimeoutError:
        return _not_ready(
            LimitsUnavailable.code, f"the limits store did not answer within {READY_TIMEOUT:.0f} s"
        )
    return JSONResponse({"status": "ready"}, headers={"Cache-Control": "no-store"})


def _not_ready(code: str, message: str) -> JSONResponse:
    return JSONResponse(
        json_error(code, message),
        status_code=503,
        headers={"Cache-Control": "no-store"},
    )


@router.get("/metrics")
async def prometheus_metrics() -> Response:
    body, content_type = await run_in_threadpool(metrics.render)
    return Response(body, media_type=content_type, headers={"Cache-Control": "no-store"})


class LatencyMiddleware:
    """Times every HTTP request, from the first byte of the request to the last of the answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            metrics.request_done(scope["method"], template, status, time.perf_counter() - start)
