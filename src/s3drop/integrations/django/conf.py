"""The app's configuration, from Django settings, and who the caller is.

- ``S3DROP``: a dict of :class:`s3drop.Settings` fields (``{"data_dir": ..., "max_bytes":
  "5MiB", "bucket": ...}``); the environment's ``S3DROP_*``/``AWS_*`` fill in what it leaves out.
- ``S3DROP_ALLOW_ANONYMOUS`` (default False): let visitors who are not signed in upload; each
  session then owns its own images (an owner made for it and kept in the session), never a
  shared blank one.
- ``S3DROP_PRINCIPAL``: optional dotted path to ``f(user) -> str``, the owner name recorded for a
  signed-in user (default: ``user.get_username()``).

One :class:`~s3drop.S3Drop` per process, built on first use (:func:`get_drop`) and rebuilt when a
test overrides these settings.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.signals import setting_changed
from django.utils.module_loading import import_string

from ..._auth import Principal
from ..._config import Settings
from ..._errors import NotAuthenticated
from ..._uploads import S3Drop
from ...storage.local import receiver_at

if TYPE_CHECKING:
    from django.http import HttpRequest

#: Where a session's own anonymous owner name is kept.
SESSION_OWNER = "s3drop.owner"

_lock = threading.Lock()
_drop: S3Drop | None = None


def s3drop_settings() -> Settings:
    """``settings.S3DROP`` as :class:`s3drop.Settings` (raises ConfigurationError naming a bad
    field)."""
    values: dict[str, Any] = dict(getattr(settings, "S3DROP", None) or {})
    return Settings(**values)


def get_drop() -> S3Drop:
    """The process's :class:`S3Drop`, built from the settings on first use."""
    global _drop
    drop = _drop
    if drop is None:
        with _lock:
            if _drop is None:
                _drop = _build()
            drop = _drop
    return drop


def _build() -> S3Drop:
    drop = S3Drop(s3drop_settings())
    from . import signals

    signals.connect(drop)
    return drop


def mounted() -> AbstractContextManager[None]:
    """Within the block, the local backend's URLs (upload forms, signed reads) point at this
    app's own storage endpoint, wherever the project included the URLs (``/uploads/storage``,
    under ``S3DROP["public_url"]`` when set)."""
    from django.urls import reverse  # here: the fixtures plugin imports this module cheaply

    return receiver_at((get_drop().settings.public_url or "") + reverse("s3drop:storage"))


def reset(**kwargs: object) -> None:
    """Forget the built S3Drop (a test changed the settings)."""
    global _drop
    if kwargs.get("setting") in (None, "S3DROP", "S3DROP_PRINCIPAL", "ROOT_URLCONF"):
        with _lock:
            _drop = None


setting_changed.connect(reset)


def allow_anonymous() -> bool:
    return bool(getattr(settings, "S3DROP_ALLOW_ANONYMOUS", False))


def _owner_name() -> Callable[[Any], str]:
    path = getattr(settings, "S3DROP_PRINCIPAL", None)
    if path:
        named: Callable[[Any], str] = import_string(path)
        return named
    return lambda user: str(user.get_username())


def principal_for_user(user: Any) -> Principal:
    """The owner a Django user's uploads are recorded under."""
    name = _owner_name()(user)
    if not name or not name.strip():
        raise NotAuthenticated("this user has no name to record as the owner of an upload")
    return Principal(name)


def principal_for(request: HttpRequest) -> Principal:
    """Who is calling: the signed-in user; or, if allowed, this session's own anonymous owner;
    else :class:`~s3drop._errors.NotAuthenticated`."""
    user = getattr(request, "user", None)
    address = request.META.get("REMOTE_ADDR")
    if user is not None and user.is_authenticated:
        principal = principal_for_user(user)
        return Principal(principal.name, address=address)
    if not allow_anonymous():
        raise NotAuthenticated("sign in to upload images")
    session = getattr(request, "session", None)
    if session is None:
        raise NotAuthenticated("anonymous uploads need sessions (SessionMiddleware)")
    owner = session.get(SESSION_OWNER)
    if not isinstance(owner, str) or not owner:
        owner = f"anonymous-{secrets.token_urlsafe(16)}"
        session[SESSION_OWNER] = owner
    return Principal(owner, anonymous=True, address=address)
