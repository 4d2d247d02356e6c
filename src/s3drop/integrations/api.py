"""The JSON API as plain blocking calls, for the adapters of synchronous frameworks (Django, Flask).

Each endpoint is one function from what the framework parsed (the caller's :class:`Principal`, the
body's bytes, the query) to an :class:`Answer`: a status, a body and headers, which the adapter
turns into its own response object. The answers are the bundled app's, byte for byte in shape:
``{"upload": ...}``, ``{"image": ...}``, ``{"images": [...], "next_cursor": ...}`` and, for every
refusal, ``{"error": {"code", "message"}}`` with the error's status (never 200, never a bare 500).

The local backend's receiving endpoint is here too: :func:`receive_post` drives
:meth:`LocalStorage.receive_post <s3drop.storage.local.LocalStorage.receive_post>` (an async
streaming parser) from a blocking ``read(n)`` over the request body, in a private event loop of
the calling worker thread. Its refusals are S3's XML, as S3 answers them.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import anyio
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .._auth import Principal
from .._errors import InvalidRequest, NotFound, S3DropError, S3Error, error_headers, error_json
from .._gallery import VARIANTS, ImageURL, Variant
from .._policy import is_upload_id
from .._uploads import S3Drop
from ..storage._s3_xml import MEDIA_TYPE, error_body
from ..storage.local import LocalStorage

#: The largest JSON body the API reads (as the bundled app).
MAX_JSON_BYTES = 16 * 1024
#: Bytes read from the request body at a time while receiving a local-backend POST.
CHUNK_BYTES = 256 * 1024
#: After a refusal, read and drop at most this much more of the body so the client sees the answer.
DRAIN_BYTES = 16 * 1024 * 1024

Read = Callable[[int], bytes]


@dataclass
class Answer:
    """One HTTP answer, framework-free: the adapter copies it into its own response."""

    status: int
    body: bytes = b""
    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    #: A file to send as the body instead (a local-backend read).
    file: Path | None = None


def json_answer(status: int, data: object, headers: Mapping[str, str] | None = None) -> Answer:
    body = json.dumps(data, separators=(",", ":")).encode()
    return Answer(status, body, "application/json", dict(headers or {}))


def error_answer(exc: S3DropError) -> Answer:
    """``{"error": {"code", "message"}}`` with the error's status and headers (``Retry-After``
    on 429 and 503), as the bundled app answers it (:func:`~s3drop._errors.error_json`): a duplicate
    at signing (409 ``already_uploaded``) also carries the ``image`` already there."""
    return json_answer(exc.status, error_json(exc), error_headers(exc))


class SignRequest(BaseModel):
    """What the client claims about the file it wants to upload."""

    model_config = ConfigDict(extra="ignore")

    filename: Annotated[str, Field(min_length=1, max_length=1024)]
    content_type: Annotated[str, Field(min_length=1, max_length=255)]
    size: Annotated[int, Field(ge=0, strict=True)]
    sha256: Annotated[str | None, Field(default=None, max_length=64)] = None


def parse_sign_request(body: bytes) -> SignRequest:
    """The sign call's JSON body, or :class:`InvalidRequest` naming what is wrong."""
    if len(body) > MAX_JSON_BYTES:
        raise InvalidRequest(f"the request body is over {MAX_JSON_BYTES} bytes")
    try:
        data = json.loads(body or b"null")
    except (ValueError, UnicodeDecodeError):
        raise InvalidRequest("the request body is not JSON") from None
    if not isinstance(data, dict):
        raise InvalidRequest('the request body must be a JSON object: {"filename", ...}')
    try:
        return SignRequest.model_validate(data)
    except ValidationError as exc:
        problems = [
            f"{'.'.join(str(part) for part in error['loc']) or 'body'}: {error['msg']}"
            for error in exc.errors()
        ]
        raise InvalidRequest("; ".join(problems)) from None


def _guarded(call: Callable[[], Answer]) -> Answer:
    try:
        return call()
    except S3DropError as exc:
        return error_answer(exc)


def config(drop: S3Drop) -> Answer:
    """``GET config``: what a page needs to check files before it asks to sign them."""
    return json_answer(200, drop.client_config())


def sign(drop: S3Drop, principal: Principal, body: bytes) -> Answer:
    """``POST uploads``: 201 ``{"upload": form}``, or the refusal (nothing is signed): 409
    ``already_uploaded`` with the ``image`` when the caller already has those bytes."""

    def call() -> Answer:
        claim = parse_sign_request(body)
        form = drop.presign(
            content_type=claim.content_type,
            size=claim.size,
            filename=claim.filename,
            sha256=claim.sha256,
            principal=principal,
        )
        return json_answer(201, {"upload": form.to_dict()})

    return _guarded(call)


def complete(drop: S3Drop, principal: Principal, upload_id: str) -> Answer:
    """``POST uploads/<id>/complete``: 200 ``{"image": ...}``, or 422 (the upload is deleted)."""
    return _guarded(
        lambda: json_answer(200, {"image": drop.complete(upload_id, principal=principal).to_dict()})
    )


def list_images(drop: S3Drop, principal: Principal, query: Mapping[str, str]) -> Answer:
    """``GET images?cursor=&limit=``: one page of the caller's images, newest first."""

    def call() -> Answer:
        try:
            limit = int(query.get("limit") or 50)
        except ValueError:
            raise InvalidRequest("limit must be a whole number") from None
        cursor = query.get("cursor") or None
        page = drop.list_images(cursor=cursor, limit=limit, principal=principal)
        return json_answer(200, page.to_dict())

    return _guarded(call)


def get_image(drop: S3Drop, principal: Principal, image_id: str) -> Answer:
    """``GET images/<id>``: 200 ``{"image": ...}`` with the original filename; 404; 403."""
    return _guarded(
        lambda: json_answer(200, {"image": drop.get_image(image_id, principal=principal).to_dict()})
    )


def delete_image(drop: S3Drop, principal: Principal, image_id: str) -> Answer:
    """``DELETE images/<id>``: 204; 404; 403 (and nothing changes)."""

    def call() -> Answer:
        drop.delete_image(image_id, principal=principal)
        return Answer(204)

    return _guarded(call)


def image_url(drop: S3Drop, image_id: str, *, variant: str = "original") -> str:
    """A fresh URL for a stored image id (its ``"original"`` or ``"thumbnail"``), for a trusted
    caller: the host's own templates, whose views decide who sees the page. One HEAD at most
    (:meth:`S3Drop.image_url <s3drop._uploads.S3Drop.image_url>`); raises NotFound."""
    return drop.image_url(image_id, variant=_variant(variant)).url


def picture(drop: S3Drop, image: Any, **options: Any) -> str:
    """:func:`s3drop.html.picture` of ``image``: an :class:`~s3drop._gallery.Image`, its JSON, or
    a stored id (read as a trusted caller: two HEADs); "" for an empty or unknown id."""
    from ..html import HTML
    from ..html import picture as render

    if isinstance(image, str) or image is None:
        if not image or not is_upload_id(image):
            return HTML("")
        try:
            image = drop.get_image(image)
        except NotFound:
            return HTML("")
    return render(image, **options)


def image_link(drop: S3Drop, image_id: str, *, variant: str = "original") -> ImageURL:
    """:func:`image_url` with the image's placeholder (from the same HEAD), for template helpers
    that paint it while the image loads."""
    return drop.image_url(image_id, variant=_variant(variant))


def _variant(name: str) -> Variant:
    for variant in VARIANTS:
        if name == variant:
            return variant
    raise InvalidRequest(f"no variant {name!r}: ask for one of {', '.join(VARIANTS)}")


def redirect_to_image(drop: S3Drop, principal: Principal, image_id: str, variant: str) -> Answer:
    """``GET images/<id>/original`` (or ``/thumbnail``): a redirect to a fresh signed URL (or the
    CDN's), cacheable by the caller's browser for at most half the URL's remaining life and by no
    shared cache (who may see an image depends on who asks); 404; 403."""

    def call() -> Answer:
        link = drop.image_url(image_id, variant=_variant(variant), principal=principal)
        return Answer(302, headers={"Location": link.url, "Cache-Control": link.cache_control()})

    return _guarded(call)


# --- the local backend's endpoints -----------------------------------------------------------


def s3_error_answer(exc: S3Error) -> Answer:
    """S3's XML error document with S3's status and code."""
    return Answer(exc.status, error_body(exc), MEDIA_TYPE)


async def _chunks(read: Read) -> AsyncIterator[bytes]:
    while chunk := read(CHUNK_BYTES):
        yield chunk


def receive_post(storage: LocalStorage, content_type: str | None, read: Read) -> Answer:
    """``POST storage``: the browser's signed form, checked as S3 checks it, streamed to disk.

    ``read(n)`` is the framework's blocking body reader (``request.read``, ``request.stream.read``);
    it returns ``b""`` at the end. A worker thread blocks on it exactly as it would on any
    upload, and nothing else runs in the private event loop this makes, so blocking it is safe.
    """
    try:
        received = _run_private_loop(storage.receive_post, content_type, _chunks(read))
    except S3Error as exc:
        _drain(read)
        return s3_error_answer(exc)
    except S3DropError as exc:  # the disk, not the form: S3's words for a server-side failure
        _drain(read)
        code = "ServiceUnavailable" if exc.status == 503 else "InternalError"
        return s3_error_answer(S3Error(exc.message, code=code, status=exc.status))
    _drain(read)
    return Answer(received.success_status)


def _run_private_loop(function: Any, *args: Any) -> Any:
    """``anyio.run(function, *args)``, in a thread of its own when this one already runs an event
    loop (a WSGI app called from async code, as under an ASGI adapter or a browser test harness):
    one thread may run one loop at a time."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return anyio.run(function, *args)
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="s3drop-receive") as pool:
        return pool.submit(anyio.run, function, *args).result()


def _drain(read: Read) -> None:
    seen = 0
    while seen <= DRAIN_BYTES:
        try:
            chunk = read(CHUNK_BYTES)
        except OSError:
            return
        if not chunk:
            return
        seen += len(chunk)


def serve_object(storage: LocalStorage, key: str, query: Mapping[str, str]) -> Answer:
    """``GET storage/<key>``: a signed local-backend read (403 changed or expired; 404)."""
    try:
        served = storage.serve(key, dict(query))
    except S3Error as exc:
        return s3_error_answer(exc)
    return Answer(200, content_type=served.content_type, headers=served.headers, file=served.path)


def local_storage(drop: S3Drop) -> LocalStorage | None:
    """The drop's local backend, or None on S3 (then the browser posts to the bucket)."""
    return drop.storage if isinstance(drop.storage, LocalStorage) else None
