"""The JSON API and the local backend's storage endpoints, as Django views.

Thin: each view finds the caller (:func:`~.conf.principal_for`), checks CSRF, and hands the
parsed request to :mod:`s3drop.integrations.api`, whose answer it copies into a response.

CSRF is Django's own check (``CsrfViewMiddleware``, with the project's ``CSRF_*`` settings),
run by the views themselves so that a refusal is s3drop's JSON (403 ``csrf_failed``) rather than
Django's HTML page, and so that it holds even where the project left the middleware out. The
storage endpoint is exempt: what the browser posts there is S3's signed form, checked as S3
checks it, and it carries no cookie authority.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.http import FileResponse, HttpRequest, HttpResponse, HttpResponseBase
from django.middleware.csrf import CsrfViewMiddleware
from django.views.decorators.csrf import csrf_exempt, ensure_csrf_cookie
from django.views.decorators.http import require_http_methods

from ..._auth import Principal
from ..._errors import NotFound, S3DropError, json_error
from ...storage.local import LocalStorage
from .. import api
from .conf import get_drop, mounted, principal_for


def to_response(answer: api.Answer) -> HttpResponseBase:
    """An :class:`~s3drop.integrations.api.Answer` as a Django response."""
    response: HttpResponseBase
    if answer.file is not None:
        response = FileResponse(answer.file.open("rb"), content_type=answer.content_type)
    else:
        response = HttpResponse(answer.body, status=answer.status, content_type=answer.content_type)
    for name, value in answer.headers.items():
        response[name] = value
    response["X-Content-Type-Options"] = "nosniff"
    return response


class _JsonCsrf(CsrfViewMiddleware):
    """Django's CSRF check, answering a refusal in s3drop's JSON shape."""

    def _reject(self, request: HttpRequest, reason: str) -> HttpResponse:
        message = f"CSRF check failed: {reason}"
        answer = api.json_answer(403, json_error("csrf_failed", message))
        response = to_response(answer)
        assert isinstance(response, HttpResponse)
        return response


def _no_response(request: HttpRequest) -> HttpResponse:  # pragma: no cover - never called
    raise AssertionError("the CSRF check never calls the view")


_csrf = _JsonCsrf(_no_response)

View = Callable[..., HttpResponseBase]


def api_view(*methods: str) -> Callable[[Callable[..., api.Answer]], View]:
    """A view over one API call: allowed ``methods``, CSRF checked, the caller found (401 when
    nobody may be), any s3drop error turned into its JSON answer."""

    def decorate(call: Callable[..., api.Answer]) -> View:
        @functools.wraps(call)
        def view(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            if request.method not in methods:
                message = f"{request.method} is not allowed here: {', '.join(methods)}"
                error = json_error("method_not_allowed", message)
                return to_response(api.json_answer(405, error, {"Allow": ", ".join(methods)}))
            if request.method not in ("GET", "HEAD", "OPTIONS", "TRACE"):
                refusal = _csrf.process_view(request, view, args, kwargs)
                if refusal is not None:
                    return refusal
            try:
                principal = principal_for(request)
                with mounted():
                    answer = call(request, principal, *args, **kwargs)
            except S3DropError as exc:
                answer = api.error_answer(exc)
            response = to_response(answer)
            response["Cache-Control"] = answer.headers.get("Cache-Control", "no-store")
            return response

        return csrf_exempt(view)

    return decorate


def no_such_call(request: HttpRequest) -> HttpResponseBase:
    """Any other path under ``api/``: 404 in s3drop's JSON shape, not the project's HTML page."""
    return to_response(api.error_answer(NotFound(f"no API call {request.path}")))


@ensure_csrf_cookie
@require_http_methods(["GET"])
def config(request: HttpRequest) -> HttpResponseBase:
    """What the uploader element needs before it signs anything (and the CSRF cookie)."""
    return to_response(api.config(get_drop()))


@api_view("POST")
def sign(request: HttpRequest, principal: Principal) -> api.Answer:
    return api.sign(get_drop(), principal, request.read(api.MAX_JSON_BYTES + 1))


@api_view("POST")
def complete(request: HttpRequest, principal: Principal, upload_id: str) -> api.Answer:
    return api.complete(get_drop(), principal, upload_id)


@api_view("GET")
def images(request: HttpRequest, principal: Principal) -> api.Answer:
    return api.list_images(get_drop(), principal, request.GET.dict())


@api_view("GET", "DELETE")
def image(request: HttpRequest, principal: Principal, image_id: str) -> api.Answer:
    if request.method == "DELETE":
        return api.delete_image(get_drop(), principal, image_id)
    return api.get_image(get_drop(), principal, image_id)


@api_view("GET")
def image_file(
    request: HttpRequest, principal: Principal, image_id: str, variant: str
) -> api.Answer:
    """The stable URL of an image: a redirect to a fresh signed URL; ownership applies."""
    return api.redirect_to_image(get_drop(), principal, image_id, variant)


# --- the local backend ------------------------------------------------------------------------


def _local_or_404() -> LocalStorage:
    storage = api.local_storage(get_drop())
    if storage is None:
        raise NotFound("this s3drop stores on S3: the browser posts to the bucket")
    return storage


@csrf_exempt
@require_http_methods(["POST"])
def storage_post(request: HttpRequest) -> HttpResponseBase:
    """The browser's signed form, received as S3 receives it (S3's statuses and XML errors)."""
    try:
        storage = _local_or_404()
    except S3DropError as exc:
        return to_response(api.error_answer(exc))
    content_type = request.META.get("CONTENT_TYPE")
    return to_response(api.receive_post(storage, content_type, request.read))


@require_http_methods(["GET", "HEAD"])
def storage_get(request: HttpRequest, key: str) -> HttpResponseBase:
    """A signed read of a stored object (403 when the URL was changed or expired)."""
    try:
        storage = _local_or_404()
    except S3DropError as exc:
        return to_response(api.error_answer(exc))
    return to_response(api.serve_object(storage, key, request.GET.dict()))


#: The files ``static/<name>`` serves: the element from s3drop's one front end (and the ThumbHash
#: decoder it imports), and the module that gives it Django's CSRF token.
_STATIC_FILES = {
    "s3drop-uploader.js": ("web", "static", "s3drop-uploader.js"),
    "thumbhash.js": ("web", "static", "thumbhash.js"),
    "s3drop-django.js": ("integrations", "django", "static", "s3drop-django.js"),
}


@require_http_methods(["GET", "HEAD"])
def static(request: HttpRequest, name: str) -> HttpResponseBase:
    """The element's module and its Django glue (plain ES modules, no build step)."""
    parts = _STATIC_FILES.get(name)
    if parts is None:
        return to_response(api.error_answer(NotFound(f"no static file {name!r}")))
    path = Path(__file__).resolve().parents[2].joinpath(*parts)
    response = FileResponse(path.open("rb"), content_type="text/javascript; charset=utf-8")
    response["Cache-Control"] = "public, max-age=300"
    response["X-Content-Type-Options"] = "nosniff"
    return response
