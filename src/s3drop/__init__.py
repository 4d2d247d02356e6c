"""s3drop: take images from your users straight into S3-compatible storage, safely."""

from __future__ import annotations

from .auth import Principal as Principal
from .config import Settings as Settings
from .errors import ImageRejected as ImageRejected
from .errors import S3DropError as S3DropError
from .errors import WebhookRefused as WebhookRefused
from .gallery import Image as Image
from .gallery import ImagePage as ImagePage
from .policy import UploadForm as UploadForm
from .uploads import S3Drop as S3Drop
from .webhooks import WebhookEvent as WebhookEvent

__version__ = "0.1.0"

__all__ = [
    "Image",
    "ImagePage",
    "ImageRejected",
    "Principal",
    "S3Drop",
    "S3DropError",
    "Settings",
    "UploadForm",
    "WebhookEvent",
    "WebhookRefused",
    "__version__",
]
