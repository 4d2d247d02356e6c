"""s3drop as a Flask blueprint: the JSON API, the local backend's storage endpoint, and Jinja
helpers, for whoever the host app says the user is.

::

    from s3drop import Principal, S3Drop, Settings
    from s3drop.integrations.flask import s3drop_blueprint

    drop = S3Drop(Settings(data_dir="s3drop-data"))

    def current_principal() -> Principal | None:      # Flask-Login: current_user
        user = current_user
        return Principal(user.name) if user.is_authenticated else None

    app.register_blueprint(s3drop_blueprint(drop, principal=current_principal),
                           url_prefix="/uploads")

The blueprint serves the bundled app's paths under its prefix (``api/config``, ``api/uploads``,
``api/uploads/<id>/complete``, ``api/images``, ``api/images/<id>``, ``api/images/<id>/original`` and
``/thumbnail`` redirects, ``storage`` on the local backend, ``static/s3drop-uploader.js``). ``principal()`` runs
in the request context; None means nobody is signed in: 401, unless ``allow_anonymous=True``,
when each session (Flask's signed cookie session, so the app needs a ``secret_key``) gets an owner
of its own. Every refusal is ``{"error": {"code", "message"}}`` with its status.

Cross-site requests: a state-changing call (POST, DELETE) whose ``Origin`` is neither the app's
own nor in ``allowed_origins`` is refused (403 ``cross_origin``) before anything runs, so a hostile
page cannot sign or delete with the user's cookie; calls without ``Origin`` (scripts, not
browsers) carry on to ``principal()``. The storage endpoint is exempt: it takes S3's signed form.

Jinja globals, for the host's templates: ``s3drop_url(id)``, ``s3drop_thumbnail_url(id)``,
``s3drop_img(id, alt=..., thumbnail=False, **attrs)`` (fresh signed URLs; the template is the
host's, a trusted caller; the image's dominant colour is its inline background while it loads,
with ``thumbhash=True`` its ThumbHash picture too), ``s3drop_uploader(name, value=None, **attrs)`` (the
``<s3drop-uploader>`` element for a form) and ``s3drop_script()`` (its ``<script type=module>``).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from typing import Any

from flask import Blueprint, Response, current_app, request, send_file, session, url_for
from markupsafe import Markup

from .._auth import Principal
from .._errors import (
    ConfigurationError,
    Forbidden,
    NotAuthenticated,
    NotFound,
    S3DropError,
    json_error,
)
from .._gallery import ImageURL
from .._placeholders import placeholder_style
from .._policy import is_upload_id
from .._uploads import S3Drop
from ..storage.local import receiver_at
from . import api

#: Where a session's own anonymous owner name is kept.
SESSION_OWNER = "s3drop.owner"
#: The element's script, in s3drop's static folder (one front end for every host).
ELEMENT = "s3drop-uploader.js"
#: The ThumbHash decoder the element imports to paint placeholders.
THUMBHASH = "thumbhash.js"

PrincipalHook = Callable[[], Principal | None]


def s3drop_blueprint(
    drop: S3Drop,
    *,
    principal: PrincipalHook,
    allow_anonymous: bool = False,
    allowed_origins: Iterable[str] = (),
    name: str = "s3drop",
) -> Blueprint:
    """The blueprint for ``drop``; register it under the prefix of your choice."""
    bp = Blueprint(name, __name__)
    origins = {origin.lower().rstrip("/") for origin in allowed_origins}
    origins.update(origin.lower().rstrip("/") for origin in drop.settings.allowed_origins)
    local = api.local_storage(drop)

    def caller() -> Principal:
        found = principal()
        address = request.remote_addr
        if found is not None:
            if not found.name or not found.name.strip():
                raise NotAuthenticated("the signed-in user has no name to record as an owner")
            return found
        if not allow_anonymous:
            raise NotAuthenticated("sign in to upload images")
        if not current_app.secret_key:
            raise ConfigurationError(
                "allow_anonymous keeps each visitor's owner in Flask's session: set app.secret_key"
            )
        owner = session.get(SESSION_OWNER)
        if not isinstance(owner, str) or not owner:
            owner = f"anonymous-{secrets.token_urlsafe(16)}"
            session[SESSION_OWNER] = owner
        return Principal(owner, anonymous=True, address=address)

    def same_origin() -> None:
        origin = request.headers.get("Origin")
        if origin is None:
            return
        own = f"{request.scheme}://{request.host}".lower()
        given = origin.lower().rstrip("/")
        if given != own and given not in origins:
            raise Forbidden(f"cross-site request from {origin} refused")

    def mounted() -> AbstractContextManager[None]:
        # The browser posts the signed form to this blueprint's own storage endpoint, and reads
        # images from it, wherever the app registered the blueprint.
        return receiver_at((drop.settings.public_url or "") + url_for(f"{bp.name}.storage"))

    def answer(
        call: Callable[[Principal], api.Answer], *, state_changing: bool = False
    ) -> Response:
        try:
            if state_changing:
                same_origin()
            who = caller()
            with mounted():
                result = call(who)
        except S3DropError as exc:
            result = api.error_answer(exc)
        response = to_response(result)
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    @bp.get("/api/config")
    def config() -> Response:
        return to_response(api.config(drop))

    @bp.post("/api/uploads")
    def sign() -> Response:
        body = request.stream.read(api.MAX_JSON_BYTES + 1)  # more is refused, unread
        return answer(lambda who: api.sign(drop, who, body), state_changing=True)

    @bp.post("/api/uploads/<upload_id>/complete")
    def complete(upload_id: str) -> Response:
        return answer(lambda who: api.complete(drop, who, upload_id), state_changing=True)

    @bp.get("/api/images")
    def images() -> Response:
        query = request.args.to_dict()
        return answer(lambda who: api.list_images(drop, who, query))

    @bp.route("/api/images/<image_id>", methods=["GET", "DELETE"])
    def image(image_id: str) -> Response:
        if request.method == "DELETE":
            return answer(lambda who: api.delete_image(drop, who, image_id), state_changing=True)
        return answer(lambda who: api.get_image(drop, who, image_id))

    @bp.get("/api/images/<image_id>/<variant>")
    def image_file(image_id: str, variant: str) -> Response:
        return answer(lambda who: api.redirect_to_image(drop, who, image_id, variant))

    @bp.post("/storage")
    def storage() -> Response:
        if local is None:
            return to_response(api.error_answer(NotFound("this s3drop stores on S3")))
        return to_response(
            api.receive_post(local, request.headers.get("Content-Type"), request.stream.read)
        )

    @bp.get("/storage/<path:key>")
    def storage_object(key: str) -> Response:
        if local is None:
            return to_response(api.error_answer(NotFound("this s3drop stores on S3")))
        return to_response(api.serve_object(local, key, request.args.to_dict()))

    @bp.get("/static/s3drop-uploader.js")
    def element() -> Response:
        return _script(ELEMENT)

    @bp.get("/static/thumbhash.js")
    def thumbhash() -> Response:  # the placeholders' decoder, which the element imports
        return _script(THUMBHASH)

    prefixes: list[str] = []
    bp.record(lambda state: prefixes.append((state.url_prefix or "").rstrip("/") + "/"))

    @bp.app_errorhandler(404)
    def _not_found(error: Any) -> Any:
        if not any(request.path.startswith(prefix + "api/") for prefix in prefixes):
            return error  # another part of the host app: its own 404
        return to_response(api.error_answer(NotFound(f"no API call {request.path}")))

    @bp.app_errorhandler(405)
    def _not_allowed(error: Any) -> Any:
        if not any(request.path.startswith(prefix) for prefix in prefixes):
            return error  # another part of the host app: its own 405
        message = f"{request.method} is not allowed here"
        return to_response(api.json_answer(405, json_error("method_not_allowed", message)))

    # --- Jinja helpers ----------------------------------------------------------------------

    def link_of(image_id: Any, variant: str) -> ImageURL | None:
        if not image_id or not is_upload_id(str(image_id)):
            return None
        try:
            with mounted():
                return api.image_link(drop, str(image_id), variant=variant)
        except NotFound:
            return None

    def url_of(image_id: Any, variant: str) -> str:
        link = link_of(image_id, variant)
        return link.url if link is not None else ""

    @bp.app_template_global()
    def s3drop_url(image_id: Any) -> str:
        return url_of(image_id, "original")

    @bp.app_template_global()
    def s3drop_thumbnail_url(image_id: Any) -> str:
        return url_of(image_id, "thumbnail")

    @bp.app_template_global()
    def s3drop_img(
        image_id: Any, alt: str = "", thumbnail: bool = False, thumbhash: bool = False, **attrs: Any
    ) -> Markup:
        link = link_of(image_id, "thumbnail" if thumbnail else "original")
        if link is None:
            return Markup("")
        if link.placeholder is not None and "style" not in attrs:  # painted while it loads
            style = placeholder_style(link.placeholder, thumbhash=thumbhash)
            attrs = {"style": style, **attrs}
        return Markup('<img src="{}" alt="{}"{}>').format(link.url, alt, _attributes(attrs))

    @bp.app_template_global()
    def s3drop_picture(
        image: Any, sizes: str | None = None, alt: str | None = None, **attrs: Any
    ) -> str:
        """:func:`s3drop.html.picture` of an image id, an Image or its JSON ("" for none); safe
        markup (it has ``__html__``)."""
        with mounted():
            return api.picture(drop, image, sizes=sizes, alt=alt, **attrs)

    @bp.app_template_global()
    def s3drop_uploader(name: str, value: Any = None, **attrs: Any) -> Markup:
        """The element for a form field ``name``; with ``value`` (the row's current image id)
        a hidden input keeps it, and a new upload (later in the form) replaces it: read the
        field as the last non-empty value of ``request.form.getlist(name)``."""
        base = url_for(f"{bp.name}.config").removesuffix("config")
        shown: dict[str, Any] = {"name": name, "api": base, "max-files": "1", **attrs}
        element = Markup("<s3drop-uploader{}></s3drop-uploader>").format(_attributes(shown))
        if not value:
            return element
        shown.pop("required", None)  # the kept image satisfies it
        element = Markup("<s3drop-uploader{}></s3drop-uploader>").format(_attributes(shown))
        keep = Markup('<input type="hidden" name="{}" value="{}">').format(name, value)
        return keep + element

    @bp.app_template_global()
    def s3drop_script() -> Markup:
        src = url_for(f"{bp.name}.element")
        return Markup('<script type="module" src="{}"></script>').format(src)

    return bp


def _script(name: str) -> Response:
    from ..web.app import STATIC

    response = send_file(STATIC / name, mimetype="text/javascript", max_age=300)
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def _attributes(attrs: dict[str, Any]) -> Markup:
    """`` name="value"`` pairs, escaped (``data_x`` is written ``data-x``, ``class_`` ``class``;
    True is a bare boolean attribute, None and False leave the attribute out)."""
    pairs = (
        Markup(' {}="{}"').format(k.rstrip("_").replace("_", "-"), "" if v is True else v)
        for k, v in attrs.items()
        if v is not None and v is not False
    )
    return Markup("").join(pairs)


def to_response(answer: api.Answer) -> Response:
    """An :class:`~s3drop.integrations.api.Answer` as a Flask response."""
    if answer.file is not None:
        response = send_file(
            answer.file, mimetype=answer.content_type or "application/octet-stream"
        )
    else:
        response = Response(answer.body, status=answer.status, content_type=answer.content_type)
    for header, value in answer.headers.items():
        response.headers[header] = value
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
