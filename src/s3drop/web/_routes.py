"""Small endpoint functions: parse, call the library, shape the answer. No logic lives here."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Annotated, Literal, TypeVar

import anyio
import anyio.to_thread
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from .. import _metrics as metrics
from .._auth import Principal
from .._errors import AlreadyUploaded, ServerBusy
from .._gallery import ImageURL
from .._sandbox import RETRY_AFTER
from .._uploads import S3Drop
from ._assets import StaticAssets

api = APIRouter(prefix="/api")
pages = APIRouter()


T = TypeVar("T")


class CompletionGate:
    """How many completions the app takes at once, and the threads they wait on.

    A completion reads storage and then waits for a decode worker (:mod:`s3drop._sandbox`); both
    block, so it runs in a thread, but in a limiter of its own sized to the pool's capacity
    (workers, the small lane and its queue): however many bombs arrive, the shared thread pool
    that listing, deleting and ``/readyz`` use stays free. One completion more than the capacity
    is answered at once with 503 ``busy`` and Retry-After, before any thread is taken.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.limiter = anyio.CapacityLimiter(capacity)
        self.in_flight = 0

    @contextmanager
    def admit(self) -> Iterator[None]:
        if self.in_flight >= self.capacity:
            raise ServerBusy(
                f"the server is verifying {self.in_flight} images already; try again in a few "
                "seconds",
                retry_after=RETRY_AFTER,
            )
        self.in_flight += 1
        try:
            yield
        finally:
            self.in_flight -= 1

    async def run(self, call: Callable[[], T]) -> T:
        return await anyio.to_thread.run_sync(call, limiter=self.limiter)


def _drop(request: Request) -> S3Drop:
    drop: S3Drop = request.app.state.drop
    return drop


class SignRequest(BaseModel):
    """What the client claims about the file it wants to upload."""

    filename: Annotated[str, Field(min_length=1, max_length=1024)]
    content_type: Annotated[str, Field(min_length=1, max_length=255)]
    size: Annotated[int, Field(ge=0)]
    sha256: Annotated[str | None, Field(default=None, max_length=64)] = None
    #: POST: a form (POST policy); PUT: a presigned URL and the headers to send with it.
    method: Literal["POST", "PUT"] = "POST"
    #: POST only: the form's ``success_action_status`` (201: S3's XML answer, with the ETag).
    success_action_status: Literal[200, 201, 204] | None = None


async def current_principal(request: Request) -> Principal:
    """Who is calling, by the app's authenticator; 401 (NotAuthenticated) otherwise.

    The built-in authenticators only read headers, so they run on the event loop; a custom hook
    (which may query a database) runs in the thread pool unless it says ``blocking = False``.
    """
    client = request.client.host if request.client else None
    authenticate = _drop(request).authenticate
    if getattr(authenticate, "blocking", True):
        return await run_in_threadpool(authenticate, request.headers, client)
    return authenticate(request.headers, client)


#: Who calls the API: ``current_principal``, which an app may replace with a dependency of its
#: own through ``app.dependency_overrides`` (s3drop.integrations.fastapi does, with the host's).
Caller = Annotated[Principal, Depends(current_principal)]


@api.post("/uploads", status_code=201, response_model=None)
async def sign_upload(body: SignRequest, request: Request, principal: Caller) -> JSONResponse:
    # Never blocks the loop: the limit store and the signing say whether they block, and
    # presign_async awaits, threads or inlines each accordingly (S3Drop.presign_async).
    try:
        form = await _drop(request).presign_async(
            content_type=body.content_type,
            size=body.size,
            filename=body.filename,
            sha256=body.sha256,
            principal=principal,
            method=body.method,
            success_status=body.success_action_status,
        )
    except AlreadyUploaded:  # 409 with the image (the app's error handler): nothing to send
        metrics.duplicate()
        raise
    # The hot path: a JSONResponse straight from plain data skips FastAPI's jsonable_encoder walk.
    metrics.signed(form.content_type)
    return JSONResponse({"upload": form.to_dict()}, status_code=201)


@api.post("/uploads/{upload_id}/complete")
async def complete_upload(upload_id: str, request: Request, principal: Caller) -> dict[str, object]:
    # Completions wait on threads of their own, at most as many as the decode pool takes:
    # listing, deleting and the probes keep the shared thread pool (see CompletionGate). Nothing
    # of it runs on the event loop, the metrics files and the answer's signed URLs included.
    gate: CompletionGate = request.app.state.completions
    with gate.admit():
        return await gate.run(partial(_complete, _drop(request), upload_id, principal))


def _complete(drop: S3Drop, upload_id: str, principal: Principal) -> dict[str, object]:
    with metrics.completion() as accepted:
        image = drop.complete(upload_id, principal=principal)
        accepted(image.bytes)
    return {"image": image.to_dict()}


@api.get("/images")
def list_images(
    request: Request,
    principal: Caller,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
) -> dict[str, object]:
    page = _drop(request).list_images(cursor=cursor, limit=limit, principal=principal)
    return page.to_dict()


@api.get("/images/{image_id}")
def get_image(image_id: str, request: Request, principal: Caller) -> dict[str, object]:
    return {"image": _drop(request).get_image(image_id, principal=principal).to_dict()}


@api.get("/images/{image_id}/original", response_class=RedirectResponse)
def original(image_id: str, request: Request, principal: Caller) -> RedirectResponse:
    """The image itself: a redirect to a fresh signed (or CDN) URL, from the id alone."""
    return image_redirect(_drop(request).image_url(image_id, principal=principal))


@api.get("/images/{image_id}/thumbnail", response_class=RedirectResponse)
def thumbnail(image_id: str, request: Request, principal: Caller) -> RedirectResponse:
    """Its thumbnail, the same way."""
    link = _drop(request).image_url(image_id, variant="thumbnail", principal=principal)
    return image_redirect(link)


def image_redirect(link: ImageURL) -> RedirectResponse:
    """302 to ``link``, with the cache headers that fit its life (:meth:`ImageURL.cache_control`)."""
    return RedirectResponse(
        link.url, status_code=302, headers={"Cache-Control": link.cache_control()}
    )


@api.delete("/images/{image_id}", status_code=204)
def delete_image(image_id: str, request: Request, principal: Caller) -> Response:
    _drop(request).delete_image(image_id, principal=principal)
    return Response(status_code=204)


@api.get("/config")
async def client_config(request: Request) -> dict[str, object]:
    """What the page needs to check files before it asks to sign them.

    Open to everyone (the page loads it before signing in), but credentials that come with it are
    checked, so a client learns about a wrong token once, up front; ``auth`` says whether a token
    or password is needed at all.
    """
    if "authorization" in request.headers:
        await current_principal(request)
    return _drop(request).client_config()


@pages.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
async def index(request: Request) -> Response:
    """The page, naming its files by version (:mod:`s3drop.web._assets`); never cached unasked."""
    assets: StaticAssets = request.app.state.assets
    return assets.page.response(request.headers, versioned=False, method=request.method)


@pages.api_route("/healthz", methods=["GET", "HEAD"], include_in_schema=False)
async def healthz() -> dict[str, str]:
    return {"status": "ok"}
