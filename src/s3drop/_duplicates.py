"""Duplicate detection: the marker (:func:`~s3drop._policy.digest_key`) saying an owner already
has an accepted image of some bytes; found when signing, removed when the image is deleted.

:meth:`S3Drop.find_duplicate <s3drop._uploads.S3Drop.find_duplicate>` calls :func:`find_duplicate`,
:meth:`S3Drop.presign <s3drop._uploads.S3Drop.presign>` :func:`refuse_duplicate`, and
:func:`s3drop._cleanup.delete_image` :func:`forget_digest`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import _audit as audit
from ._auth import Principal
from ._config import Settings
from ._errors import AlreadyUploaded
from ._gallery import Image, describe_with_metadata
from ._policy import digest_key, parse_image_key
from ._promote import owner_of
from .storage.base import ObjectInfo, Storage

if TYPE_CHECKING:
    from ._uploads import S3Drop


def find_duplicate(storage: Storage, settings: Settings, owner: str, sha256: str) -> Image | None:
    """``owner``'s accepted image whose uploaded bytes had this SHA-256, or None: one HEAD (see
    :meth:`S3Drop.find_duplicate`)."""
    marker = storage.head(digest_key(owner, sha256))
    facts = parse_image_key(marker.metadata.get("image", "")) if marker is not None else None
    if marker is None or facts is None:
        return None
    return describe_with_metadata(storage, settings, facts, marker.metadata, owner=owner)


def refuse_duplicate(drop: S3Drop, principal: Principal, sha256: str) -> None:
    """Raise :class:`~s3drop._errors.AlreadyUploaded` if ``principal`` has an image of these bytes."""
    image = drop.find_duplicate(principal.name, sha256)
    if image is not None:
        audit.record("duplicate", who=principal.name, key=image.key)
        raise AlreadyUploaded(
            f"{image.filename} is already in your gallery (the same bytes, SHA-256 "
            f"{sha256[:12]}…): nothing was signed, no need to upload it again",
            image=image,
        )


def forget_digest(storage: Storage, info: ObjectInfo) -> None:
    """Remove the duplicate marker of image ``info`` if it names this image (the same bytes
    accepted twice, in a race, leave one marker: the other copy's)."""
    uploaded = info.metadata.get("source-sha256")
    if not uploaded:  # promoted before duplicates were tracked
        return
    key = digest_key(owner_of(info), uploaded)
    marker = storage.head(key)
    if marker is not None and marker.metadata.get("image") == info.key:
        storage.delete(key)
