"""The fixtures the Django app ships for host projects, used by its own tests too."""

from __future__ import annotations

from s3drop.integrations.django.fixtures import (  # noqa: F401  (re-exported fixtures)
    s3drop_data_dir,
    s3drop_image_factory,
)
