"""s3drop in a FastAPI or Starlette app: one call, mounted under any prefix, behind the app's own
login::

    from fastapi import FastAPI, HTTPException, Request
    from s3drop import S3Drop
    from s3drop.integrations.fastapi import uploads_app

    app = FastAPI()

    def current_user(request: Request) -> User:         # the app's own dependency
        ...                                             # raises HTTPException(401) when signed out

    app.mount("/uploads", uploads_app(S3Drop(), user=current_user, principal=lambda u: u.name))

What is mounted is an ASGI app with s3drop's JSON API (``/uploads/api/...``, stable image URLs
included), the uploader element (``/uploads/static/s3drop-uploader.js``), the local backend's
receiver when storage is local (``/uploads/storage``), and s3drop's error answers: every refusal,
the host dependency's ``HTTPException`` included, is ``{"error": {"code", "message"}}`` with its
4xx status. Every URL it gives out follows the mount (or ``S3DROP_PUBLIC_URL``, which then names
the mounted app: ``https://example.com/uploads``). It is the bundled app's own API and receiver,
built by the same function, without the page and the operations endpoints.

The mounted app checks ``Host`` and ``Origin`` as the bundled one does: tell the settings where the
host app is served (``S3DROP_PUBLIC_URL``, the mounted app's URL, names both; ``Settings(host=...,
port=...)`` does on a loopback address; ``S3DROP_ALLOWED_HOSTS``/``S3DROP_ALLOWED_ORIGINS`` add
more).
Mounted apps get no lifespan events: on the local backend, run ``drop.sweep()`` now and then (a
cron job, or the host's own lifespan) to remove uploads nobody completed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Depends, FastAPI

from .._auth import Principal
from .._errors import NotAuthenticated
from .._uploads import S3Drop
from ..web._routes import current_principal
from ..web.app import build_app

__all__ = ["principal_dependency", "uploads_app"]

#: Maps what the host's dependency returned to who uploads: a Principal, a user name, or None
#: (signed out: 401).
PrincipalMapper = Callable[[Any], Principal | str | None]


def uploads_app(
    drop: S3Drop | None = None,
    *,
    user: Callable[..., Any],
    principal: PrincipalMapper | None = None,
) -> FastAPI:
    """The s3drop app to mount in a host app, with the host's login deciding who uploads.

    ``user`` is the host's own FastAPI dependency (sync or async, with its own sub-dependencies:
    a session cookie, an OAuth2 bearer, a database); it runs on every API call and refuses as it
    always does (``HTTPException(401)`` comes back as ``not_authenticated``). ``principal`` turns
    what it returns into the owner of the uploads (see :func:`principal_dependency`). ``drop``
    defaults to ``S3Drop()`` (settings from the environment).
    """
    app = build_app(drop or S3Drop())
    app.dependency_overrides[current_principal] = principal_dependency(user, principal)
    return app


def principal_dependency(
    user: Callable[..., Any], principal: PrincipalMapper | None = None
) -> Callable[..., Awaitable[Principal]]:
    """A FastAPI dependency naming the s3drop :class:`~s3drop._auth.Principal` from the host's
    ``user`` dependency: ``principal(user)`` (default: the user itself), which may give a
    Principal, a name (``Principal(name)``), or None (401). A blank name is refused (401), so
    signed-out users never share one owner. ``principal`` runs on the event loop: keep it a quick
    mapping (the lookups belong in ``user``, which FastAPI runs in its thread pool if it is sync)."""
    found = Depends(user)

    async def caller(signed_in: Any = found) -> Principal:
        named = principal(signed_in) if principal is not None else signed_in
        if named is None:
            raise NotAuthenticated("sign in to upload images")
        if isinstance(named, Principal):
            return named
        if isinstance(named, str):
            return Principal(named)
        raise TypeError(
            f"principal() gave a {type(named).__name__}; give a Principal, a user name or None"
        )

    return caller
