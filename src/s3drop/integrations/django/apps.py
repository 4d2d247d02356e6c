"""The app config: registers the system checks when Django starts."""

from __future__ import annotations

from django.apps import AppConfig


class S3DropConfig(AppConfig):
    name = "s3drop.integrations.django"
    label = "s3drop"
    verbose_name = "s3drop uploads"

    def ready(self) -> None:
        from . import _checks as checks  # noqa: F401  (registers the checks)
