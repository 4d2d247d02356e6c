"""s3drop: take images from your users straight into S3-compatible storage, safely.

The public API is what ``__all__`` names. Names are imported when first used (PEP 562), so that
``import s3drop`` (and the ``s3drop`` command) stays fast until the library is really needed.

Public and private, as httpx marks them: a module is public when the README or an ``__all__`` tells
users to import it or name it, or when a framework finds it by its name (Django's ``apps``,
``urls``, ``templatetags``, ``migrations``). The public modules besides this one:
:mod:`s3drop.html`, :mod:`s3drop.integrations`, :mod:`s3drop.integrations.api`,
:mod:`s3drop.integrations.django`, :mod:`s3drop.integrations.django.apps`,
:mod:`s3drop.integrations.django.conf`, :mod:`s3drop.integrations.django.fields`,
:mod:`s3drop.integrations.django.fixtures`, :mod:`s3drop.integrations.django.signals`,
:mod:`s3drop.integrations.django.templatetags`,
:mod:`s3drop.integrations.django.templatetags.s3drop`, :mod:`s3drop.integrations.django.urls`,
:mod:`s3drop.integrations.fastapi`, :mod:`s3drop.integrations.flask`, :mod:`s3drop.limits`,
:mod:`s3drop.limits.base`, :mod:`s3drop.limits.memory`, :mod:`s3drop.limits.redis`,
:mod:`s3drop.limits.sqlite`, :mod:`s3drop.storage`, :mod:`s3drop.storage.base`,
:mod:`s3drop.storage.local`, :mod:`s3drop.storage.s3`, :mod:`s3drop.web`, :mod:`s3drop.web.app`,
:mod:`s3drop.web.connections`, :mod:`s3drop.webhooks`. Every other module or package starts with
``_`` (``_policy``, ``_cli``, ``web._routes``) and may change in any release; logger names
(``s3drop.hooks``, ``s3drop.audit``, ``s3drop.webhooks``) are not module names and do not change.
"""

from __future__ import annotations

import importlib as _importlib
import typing

from ._version import __version__

if typing.TYPE_CHECKING:
    from ._auth import Principal as Principal
    from ._config import Settings as Settings
    from ._errors import AlreadyCompleted as AlreadyCompleted
    from ._errors import AlreadyUploaded as AlreadyUploaded
    from ._errors import ConfigurationError as ConfigurationError
    from ._errors import Forbidden as Forbidden
    from ._errors import ImageRejected as ImageRejected
    from ._errors import InsufficientStorage as InsufficientStorage
    from ._errors import NotAuthenticated as NotAuthenticated
    from ._errors import NotFound as NotFound
    from ._errors import RateLimited as RateLimited
    from ._errors import S3DropError as S3DropError
    from ._errors import StorageError as StorageError
    from ._errors import UploadRefused as UploadRefused
    from ._errors import WebhookRefused as WebhookRefused
    from ._gallery import Image as Image
    from ._gallery import ImagePage as ImagePage
    from ._gallery import ImageURL as ImageURL
    from ._placeholders import Placeholder as Placeholder
    from ._policy import UploadForm as UploadForm
    from ._uploads import S3Drop as S3Drop
    from .webhooks import WebhookEvent as WebhookEvent

#: Where each public name lives.
_EXPORTS = {
    "AlreadyCompleted": "._errors",
    "AlreadyUploaded": "._errors",
    "ConfigurationError": "._errors",
    "Forbidden": "._errors",
    "Image": "._gallery",
    "ImagePage": "._gallery",
    "ImageRejected": "._errors",
    "ImageURL": "._gallery",
    "InsufficientStorage": "._errors",
    "NotAuthenticated": "._errors",
    "NotFound": "._errors",
    "Placeholder": "._placeholders",
    "Principal": "._auth",
    "RateLimited": "._errors",
    "S3Drop": "._uploads",
    "S3DropError": "._errors",
    "Settings": "._config",
    "StorageError": "._errors",
    "UploadForm": "._policy",
    "UploadRefused": "._errors",
    "WebhookEvent": ".webhooks",
    "WebhookRefused": "._errors",
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
