"""System checks (``manage.py check``): a misconfigured s3drop is reported at start, by name.

- ``s3drop.E001``: ``S3DROP`` has a value s3drop refuses (the message names the setting and the fix);
- ``s3drop.E002``: ``S3DROP`` names a field s3drop does not have (a typo would be ignored);
- ``s3drop.E003``: ``S3DROP_ALLOW_ANONYMOUS`` without sessions (anonymous owners live in the session);
- ``s3drop.E004``: ``S3DROP_PRINCIPAL`` is not an importable callable;
- ``s3drop.W001``: the app's URLs are not included, so the uploader has nowhere to sign.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning, register
from django.core.exceptions import ImproperlyConfigured
from django.urls import NoReverseMatch, reverse
from django.utils.module_loading import import_string

from ..._config import Settings
from ..._errors import ConfigurationError
from .conf import allow_anonymous, s3drop_settings


@register()
def check_settings(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[CheckMessage]:
    problems: list[CheckMessage] = []
    raw = getattr(settings, "S3DROP", None) or {}
    if not isinstance(raw, dict):
        return [
            Error(
                f"S3DROP must be a dict of s3drop settings, not {type(raw).__name__}",
                hint='S3DROP = {"data_dir": BASE_DIR / "s3drop-data"}',
                id="s3drop.E001",
            )
        ]
    known = set(Settings.model_fields)
    unknown = sorted(str(name) for name in raw if name not in known)
    if unknown:
        problems.append(
            Error(
                f"S3DROP has settings s3drop does not know: {', '.join(unknown)}",
                hint=f"the settings are: {', '.join(sorted(known))}",
                id="s3drop.E002",
            )
        )
    try:
        s3drop_settings()
    except ConfigurationError as exc:
        problems.append(Error(f"S3DROP: {exc.message}", id="s3drop.E001"))
    if allow_anonymous():
        middleware = getattr(settings, "MIDDLEWARE", None) or []
        if "django.contrib.sessions.middleware.SessionMiddleware" not in middleware:
            problems.append(
                Error(
                    "S3DROP_ALLOW_ANONYMOUS needs sessions: each anonymous visitor's images "
                    "are owned by their session",
                    hint="add django.contrib.sessions.middleware.SessionMiddleware to MIDDLEWARE",
                    id="s3drop.E003",
                )
            )
    principal = getattr(settings, "S3DROP_PRINCIPAL", None)
    if principal:
        try:
            named = import_string(principal)
        except ImportError as exc:
            named = None
            reason = str(exc)
        else:
            reason = "it is not callable"
        if not callable(named):
            problems.append(
                Error(
                    f"S3DROP_PRINCIPAL {principal!r} cannot be used: {reason}",
                    hint="a dotted path to a function (user) -> owner name",
                    id="s3drop.E004",
                )
            )
    return problems


@register()
def check_urls(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[CheckMessage]:
    try:
        reverse("s3drop:sign")
    except ImproperlyConfigured:  # no URLconf at all: Django reports that itself
        return []
    except NoReverseMatch:
        return [
            Warning(
                "s3drop's URLs are not included: the uploader has nowhere to sign uploads",
                hint='urlpatterns += [path("uploads/", include("s3drop.integrations.django.urls"))]',
                id="s3drop.W001",
            )
        ]
    return []
