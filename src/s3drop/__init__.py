"""s3drop: take images from your users straight into S3-compatible storage, safely.

The public API is what ``__all__`` names. Names are imported when first used (PEP 562), so that
``import s3drop`` (and the ``s3drop`` command) stays fast until the library is really needed.
"""

from __future__ import annotations

import importlib as _importlib
import typing

from ._version import __version__

if typing.TYPE_CHECKING:
    from .auth import Principal as Principal
    from .config import Settings as Settings
    from .errors import AlreadyCompleted as AlreadyCompleted
    from .errors import AlreadyUploaded as AlreadyUploaded
    from .errors import ConfigurationError as ConfigurationError
    from .errors import Forbidden as Forbidden
    from .errors import ImageRejected as ImageRejected
    from .errors import InsufficientStorage as InsufficientStorage
    from .errors import NotAuthenticated as NotAuthenticated
    from .errors import NotFound as NotFound
    from .errors import RateLimited as RateLimited
    from .errors import S3DropError as S3DropError
    from .errors import StorageError as StorageError
    from .errors import UploadRefused as UploadRefused
    from .errors import WebhookRefused as WebhookRefused
    from .gallery import Image as Image
    from .gallery import ImagePage as ImagePage
    from .gallery import ImageURL as ImageURL
    from .placeholders import Placeholder as Placeholder
    from .policy import UploadForm as UploadForm
    from .uploads import S3Drop as S3Drop
    from .webhooks import WebhookEvent as WebhookEvent

#: Where each public name lives.
_EXPORTS = {
    "AlreadyCompleted": ".errors",
    "AlreadyUploaded": ".errors",
    "ConfigurationError": ".errors",
    "Forbidden": ".errors",
    "Image": ".gallery",
    "ImagePage": ".gallery",
    "ImageRejected": ".errors",
    "ImageURL": ".gallery",
    "InsufficientStorage": ".errors",
    "NotAuthenticated": ".errors",
    "NotFound": ".errors",
    "Placeholder": ".placeholders",
    "Principal": ".auth",
    "RateLimited": ".errors",
    "S3Drop": ".uploads",
    "S3DropError": ".errors",
    "Settings": ".config",
    "StorageError": ".errors",
    "UploadForm": ".policy",
    "UploadRefused": ".errors",
    "WebhookEvent": ".webhooks",
    "WebhookRefused": ".errors",
}

__all__ = [*sorted(_EXPORTS), "__version__"]


def __getattr__(name: str) -> typing.Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 's3drop' has no attribute {name!r}")
    value = getattr(_importlib.import_module(module, __name__), name)
    globals()[name] = value  # once imported, a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
