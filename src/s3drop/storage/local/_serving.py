"""The local backend's HTTP half: the routes it contributes to the app that serves it
(:meth:`LocalStorage.http_routes <s3drop.storage.local.LocalStorage.http_routes>`).

``POST /storage`` takes the browser's form (:mod:`._post`), ``PUT /storage/<key>`` a presigned PUT
(:mod:`._put`), ``GET /storage/<key>`` a signed read. Every refusal is S3's XML with S3's status and
code, a wrong method included (405 ``MethodNotAllowed``), so a client that talks to S3 reads the
embedded default's answers with the same code. The web app mounts these routes as they are and
never needs to know which backend it runs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Match, Route
from starlette.types import Receive, Scope, Send

from ... import _metrics as metrics
from ..._errors import S3DropError, S3Error
from .._s3_xml import MEDIA_TYPE, error_body, post_response
from . import MOUNT
from ._post import ReceivedPost
from ._put import receive_put
from ._receive import BUCKET, drain

if TYPE_CHECKING:
    from . import LocalStorage


def http_routes(storage: LocalStorage) -> list[BaseRoute]:
    """``POST /storage`` and ``GET``/``HEAD``/``PUT /storage/<key>``, answering any other method
    with S3's 405."""

    async def bucket(request: Request) -> Response:
        if request.method != "POST":
            return _method_not_allowed("POST")
        return await _receive_upload(storage, request)

    async def obj(request: Request) -> Response:
        key: str = request.path_params["key"]
        if request.method in ("GET", "HEAD"):
            return await _read_object(storage, key, request)
        if request.method == "PUT":
            return await _receive_put_upload(storage, key, request)
        return _method_not_allowed("GET, HEAD, PUT")

    return [
        _NamedRoute(MOUNT, _AnyMethod(bucket), include_in_schema=False),
        _NamedRoute(MOUNT + "/{key:path}", _AnyMethod(obj), include_in_schema=False),
    ]


class _NamedRoute(Route):
    """A route that names itself in the request's scope, as FastAPI's own routes do, so that
    what reads ``scope["route"]`` (the request metrics' route label) sees it."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child_scope = super().matches(scope)
        if match is not Match.NONE:
            child_scope["route"] = self
        return match, child_scope


class _AnyMethod:
    """An endpoint that takes every method and answers a wrong one itself, in S3's words (a
    function endpoint would be GET only, and Starlette's 405 would not be S3's XML)."""

    def __init__(self, handle: Callable[[Request], Awaitable[Response]]) -> None:
        self.handle = handle

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self.handle(Request(scope, receive))
        await response(scope, receive, send)


def _s3_error(exc: S3DropError) -> Response:
    if not isinstance(exc, S3Error):  # the library's own errors, in S3's words
        code = "InvalidArgument" if exc.status < 500 else "InternalError"
        exc = S3Error(exc.message, code=code, status=exc.status)
    return Response(error_body(exc), status_code=exc.status, media_type=MEDIA_TYPE)


def _method_not_allowed(allow: str) -> Response:
    response = _s3_error(S3Error("Method Not Allowed", code="MethodNotAllowed", status=405))
    response.headers["Allow"] = allow
    return response


async def _receive_upload(storage: LocalStorage, request: Request) -> Response:
    body = request.stream()
    try:
        received = await storage.receive_post(request.headers.get("content-type"), body)
    except S3DropError as exc:
        await drain(body)
        metrics.post_refused(exc.code)
        return _s3_error(exc)
    await drain(body)
    metrics.received(received.size)
    return _post_answer(request, received)


def _post_answer(request: Request, received: ReceivedPost) -> Response:
    """What S3 answers a stored POST: ``ETag`` and ``Location`` headers, and for
    ``success_action_status`` 201 the ``PostResponse`` XML that repeats them."""
    location = f"{request.url.replace(query='')!s}/{quote(received.key)}"
    headers = {"ETag": received.etag, "Location": location}
    if received.success_status != 201:
        return Response(status_code=received.success_status, headers=headers)
    body = post_response(location=location, bucket=BUCKET, key=received.key, etag=received.etag)
    return Response(body, status_code=201, headers=headers, media_type=MEDIA_TYPE)


async def _receive_put_upload(storage: LocalStorage, key: str, request: Request) -> Response:
    body = request.stream()
    try:
        received = await receive_put(
            storage,
            key=key,
            path=request.url.path,
            query=dict(request.query_params),
            headers={name.lower(): value for name, value in request.headers.items()},
            body=body,
        )
    except S3DropError as exc:  # S3Error, or a key no store would take
        await drain(body)
        metrics.post_refused(exc.code)
        return _s3_error(exc)
    metrics.received(received.size)
    return Response(status_code=200, headers={"ETag": received.etag})


async def _read_object(storage: LocalStorage, key: str, request: Request) -> Response:
    try:
        # the signature check, then a stat and a metadata read: disk, so in a thread
        served = await run_in_threadpool(storage.serve, key, dict(request.query_params))
    except S3Error as exc:
        return _s3_error(exc)
    return FileResponse(served.path, media_type=served.content_type, headers=served.headers)
