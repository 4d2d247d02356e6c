"""Where bytes are kept: the contract (:mod:`.base`), the backends (:mod:`.local`, :mod:`.s3`),
the signing (:mod:`._sigv4`), S3's checks (:mod:`._verify`) and answers (:mod:`._s3_xml`).

:func:`open_storage` picks the backend the settings name; a backend's module is imported only
then (boto3 only for S3).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._errors import ConfigurationError

if TYPE_CHECKING:
    from .._config import Settings
    from .base import Storage


def open_storage(settings: Settings) -> Storage:
    """The backend the settings name."""
    if settings.storage_backend == "local":
        from .local import LocalStorage

        return LocalStorage(settings)
    try:
        from .s3 import S3Storage
    except ImportError as exc:  # pragma: no cover - boto3 is a dependency
        raise ConfigurationError(
            "S3DROP_BACKEND: the s3 backend needs boto3 (pip install boto3)"
        ) from exc
    return S3Storage(settings)
