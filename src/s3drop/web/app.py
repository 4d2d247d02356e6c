"""The bundled web app: the upload page, a small JSON API, and the storage backend's own routes.

``create_app()`` builds it from :class:`~s3drop._config.Settings`; it runs on its own or mounted
under any prefix of another ASGI app (every URL it gives out follows, see :mod:`._mount`).
:func:`build_app` is what it shares with :func:`s3drop.integrations.fastapi.uploads_app` (the API,
the receiver, the element, the error answers, the middleware); a project on another framework uses
:class:`~s3drop._uploads.S3Drop` directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import signal
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import FrameType

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from .._auth import Authenticator
from .._config import Settings
from .._errors import (
    LimitsUnavailable,
    NotAuthenticated,
    S3DropError,
    ServerBusy,
    error_headers,
    error_json,
    json_error,
)
from .._logs import stop_background
from .._uploads import S3Drop
from .._version import __version__
from ..limits import LimitStore, app_limit_store
from ..storage._sigv4 import PUT_HEADERS
from ..storage.base import Storage
from . import _ops as ops
from . import _routes as routes
from ._assets import StaticAssets
from ._mount import MountMiddleware
from ._security import HostMiddleware, SecurityMiddleware
from ._timeouts import BodyTimeoutMiddleware

STATIC = Path(__file__).parent / "static"


def create_app(
    settings: Settings | None = None,
    *,
    storage: Storage | None = None,
    authenticate: Authenticator | None = None,
    limit_store: LimitStore | None = None,
) -> FastAPI:
    """The ASGI app for ``settings`` (read from the environment when None): the page, the API,
    the operations endpoints and the storage's own routes (the local backend's receiver). Mount
    it anywhere (``app.mount("/uploads", create_app())``): every URL it gives out follows the
    mount.

    ``storage``, ``authenticate`` and ``limit_store`` replace the built-ins the settings choose
    (for the limits: Redis at ``S3DROP_REDIS_URL``, else ``limits.sqlite3`` in the data folder).
    """
    settings = settings or Settings()
    if limit_store is None:
        limit_store = app_limit_store(settings)
    drop = S3Drop(settings, storage=storage, authenticate=authenticate, limit_store=limit_store)
    app = build_app(drop)
    app.include_router(routes.pages)
    app.include_router(ops.router)
    return app


def build_app(drop: S3Drop) -> FastAPI:
    """What every s3drop web app has: the JSON API, the static files (the uploader element), the
    storage's own routes (:meth:`Storage.http_routes <s3drop.storage.base.Storage.http_routes>`),
    s3drop's error answers, CORS and the browser hardening.
    :func:`create_app` adds the page and the operations endpoints;
    :func:`s3drop.integrations.fastapi.uploads_app` puts a host app's login in place of
    :func:`~s3drop.web._routes.current_principal`."""
    app = FastAPI(
        title="s3drop",
        version=__version__,
        docs_url=None,
        redoc_url=None,
        openapi_url="/api/openapi.json",
        lifespan=_lifespan,
    )
    app.state.drop = drop
    app.state.completions = routes.CompletionGate(drop.decoders.capacity)
    app.include_router(routes.api)
    storage_routes = drop.storage.http_routes()  # the backend's own, S3's XML answers
    app.router.routes.extend(storage_routes)
    app.state.assets = StaticAssets(STATIC)
    app.mount("/static", app.state.assets, name="static")
    app.add_exception_handler(S3DropError, _s3drop_error)
    app.add_exception_handler(Exception, _unexpected_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    origins = drop.settings.origins()
    app.add_middleware(
        CORSMiddleware,
        allow_origins=origins,
        allow_methods=["GET", "POST", "PUT", "DELETE"],
        # A presigned PUT to the local backend sends its signed headers (sigv4.put_headers).
        allow_headers=["Authorization", "Content-Type", *PUT_HEADERS],
        expose_headers=["ETag", "Location"],
        max_age=600,
    )
    app.add_middleware(
        SecurityMiddleware, origins=origins, storage_origins=drop.storage.browser_origins()
    )
    if storage_routes:  # after a checked Host: the URLs of the backend's routes follow it
        app.add_middleware(
            MountMiddleware, public_url=drop.settings.public_url, storage=drop.storage
        )
    app.add_middleware(HostMiddleware, hosts=drop.settings.hosts())  # before routing
    # The storage endpoint cuts a stalled upload itself (S3's XML); this catches every other body.
    app.add_middleware(BodyTimeoutMiddleware, timeout=drop.settings.upload_idle_timeout + 1)
    app.add_middleware(ops.LatencyMiddleware)  # outermost: times every answer
    return app


#: How often a backend that ``needs_sweeping`` removes uploads nobody completed (S3 has a
#: lifecycle rule).
SWEEP_EVERY = 3600


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    drop: S3Drop = app.state.drop
    sweeper = asyncio.create_task(_sweep(drop)) if drop.storage.needs_sweeping else None
    restore = _close_on_signal(drop, asyncio.get_running_loop())
    drop.decoders.warm()  # the first completion does not wait for its worker to start
    try:
        yield
    finally:
        restore()
        close = getattr(drop.limits.store, "aclose", None)
        if close is not None:  # the Redis store's connections of this event loop
            await close()
        if sweeper is not None:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
        # Every request has been answered: write their queued log lines now (a worker process
        # ends with the SIGTERM that stopped it, which runs no exit handler), the rest at once.
        await asyncio.to_thread(stop_background)
        # The decode workers stop; webhooks not yet sent stay in the outbox.
        await asyncio.to_thread(drop.close)


def _close_on_signal(drop: S3Drop, loop: asyncio.AbstractEventLoop) -> Callable[[], None]:
    """Stop the decode workers as soon as SIGTERM or SIGINT arrives, then let the server's own
    handler run: uvicorn waits for the requests in flight before it shuts down, and a completion
    waiting on a decode ends at once (503 busy, the upload stays in quarantine) instead of
    holding the shutdown up for as long as its decode may take. Returns the undo."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = {int(sig): signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}

    def handler(signum: int, frame: FrameType | None) -> None:
        loop.call_soon_threadsafe(drop.close)
        chained = previous[signum]
        if callable(chained):
            chained(signum, frame)
        elif chained == signal.SIG_DFL:
            signal.signal(signum, signal.SIG_DFL)
            signal.raise_signal(signum)

    for sig in previous:
        signal.signal(sig, handler)

    def restore() -> None:
        for sig, old in previous.items():
            if signal.getsignal(sig) is handler:
                signal.signal(sig, old)

    return restore


async def _sweep(drop: S3Drop) -> None:
    while True:
        try:
            await asyncio.to_thread(drop.sweep)
        except S3DropError as exc:
            logging.getLogger("s3drop").warning("sweep failed: %s", exc.message)
        await asyncio.sleep(SWEEP_EVERY)


def error_response(
    status: int, code: str, message: str, *, reference: str | None = None
) -> JSONResponse:
    extra = {"reference": reference} if reference is not None else {}
    return JSONResponse(json_error(code, message, **extra), status_code=status)


#: What a person using the page is told when the server or its storage fails. The operator's
#: details (which setting, which endpoint) go to the log under the same reference, never to them.
_PUBLIC_MESSAGES = {
    "storage_unavailable": "Storage cannot be reached right now. Please try again in a minute.",
    "storage_access_denied": "Storage is not set up correctly, so uploads cannot be saved.",
    "bucket_missing": "Storage is not set up correctly, so uploads cannot be saved.",
    "storage_error": "Storage could not save or read the file. Please try again later.",
}
_PUBLIC_FALLBACK = "Something went wrong on the server. Please try again later."


def _server_fault(status: int, code: str, detail: str) -> JSONResponse:
    """A 5xx for people: a plain message and a reference they can quote; details in the log."""
    reference = secrets.token_hex(4)
    logging.getLogger("s3drop").error("%s (reference %s): %s", code, reference, detail)
    message = f"{_PUBLIC_MESSAGES.get(code, _PUBLIC_FALLBACK)} (reference {reference})"
    return error_response(status, code, message, reference=reference)


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    return _server_fault(500, "internal", f"{type(exc).__name__}: {exc}")


async def _s3drop_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, S3DropError)
    if exc.status >= 500 and not isinstance(exc, LimitsUnavailable | ServerBusy):
        # A fault of the server or its storage: people get plain words and a reference.
        response = _server_fault(exc.status, exc.code, exc.message)
    else:  # with the image an AlreadyUploaded carries
        response = JSONResponse(error_json(exc), status_code=exc.status)
    response.headers.update(error_headers(exc))
    if isinstance(exc, NotAuthenticated):
        drop: S3Drop = request.app.state.drop
        scheme = "Basic" if drop.settings.auth_mode == "basic" else "Bearer"
        response.headers["WWW-Authenticate"] = f'{scheme} realm="s3drop"'
    return response


#: Codes for the HTTP errors FastAPI raises itself (no route, wrong method) or a host's
#: dependency raises (``HTTPException(401)``), so every answer has s3drop's error shape.
_HTTP_CODES = {
    400: "invalid_request",
    401: "not_authenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
}


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    headers = dict(exc.headers or {})  # Allow, for a 405
    code = _HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
    response = error_response(exc.status_code, code, message)
    response.headers.update(headers)
    return response


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"] if part != "body")
        problems.append(f"{where or 'body'}: {error['msg']}")
    return error_response(400, "invalid_request", "; ".join(problems))
