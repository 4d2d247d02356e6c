"""Deleting: an image with everything stored for it, and what nobody will finish.

:meth:`S3Drop.delete_image <s3drop._uploads.S3Drop.delete_image>` calls :func:`delete_image`, and
:meth:`S3Drop.sweep <s3drop._uploads.S3Drop.sweep>` calls :func:`sweep`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from . import _audit as audit
from . import _duplicates as duplicates
from . import _originals as originals
from . import _responsive as responsive
from ._auth import Principal
from ._errors import NotFound
from ._gallery import find_image
from ._policy import (
    IMAGES_PREFIX,
    QUARANTINE_PREFIX,
    THUMBS_PREFIX,
    is_upload_id,
    owner_key,
    owner_prefix,
    parse_image_key,
    thumbnail_key,
)
from ._promote import check_owner, limit_key_of, owner_of

if TYPE_CHECKING:
    from ._uploads import S3Drop


def delete_image(drop: S3Drop, image_id: str, principal: Principal | None) -> None:
    """Delete image ``image_id``, its thumbnail, variants, kept original, owner's index entry and
    duplicate marker (see :meth:`S3Drop.delete_image`)."""
    if not is_upload_id(image_id):
        raise NotFound(f"no image {image_id!r}")
    keys = find_image(drop.storage, image_id)
    thumb = thumbnail_key(image_id)
    if not keys:
        # What an interrupted delete left: the thumbnail, the caller's own index entry.
        left = [thumb] if drop.storage.head(thumb) is not None else []
        if principal is not None:
            prefix = owner_prefix(principal.name) + image_id + "."
            left += [info.key for info in drop.storage.list_objects(prefix, limit=8)]
        if left:
            prefix = responsive.VARIANTS_PREFIX + image_id + "."
            left += [info.key for info in drop.storage.list_objects(prefix, limit=64)]
        if not left:
            raise NotFound(f"no image {image_id!r}")
        for key in left:
            drop.storage.delete(key)
        drop.hooks.delete(image_id, principal)  # the interrupted delete never told anyone
        return
    infos = [info for info in map(drop.storage.head, keys) if info is not None]
    for info in infos:
        check_owner(info, principal, shared=drop.settings.shared)
    # Out of duplicate finding first (a crash after it only costs an upload a duplicate
    # check would have saved), then out of every listing (the image), then out of its
    # owner's, then the thumbnail.
    for info in infos:
        duplicates.forget_digest(drop.storage, info)
    for info in infos:
        drop.storage.delete(info.key)
        drop.storage.delete(owner_key(owner_of(info), info.key))
        if (facts := parse_image_key(info.key)) is not None:
            responsive.delete(drop.storage, facts)
    drop.storage.delete(thumb)
    if drop.settings.keep_heic_original:
        originals.delete(drop.storage, image_id)
    for info in infos:
        limit_key = limit_key_of(info, principal)
        if limit_key is not None:
            drop.limits.stored(limit_key, -1)
        who = principal.name if principal else "library"
        audit.record("delete", who=who, key=info.key)
    drop.hooks.delete(image_id, principal)


def sweep(
    drop: S3Drop,
    *,
    older_than: timedelta,
    partial_older_than: timedelta,
    now: datetime | None = None,
) -> int:
    """Delete stale uploads, orphaned thumbnails, variants and originals, and the backend's
    half-written files; how many (see :meth:`S3Drop.sweep`)."""
    now = now or datetime.now(UTC)
    cutoff = now - older_than
    stale = [
        info.key for info in drop.storage.iter_all(QUARANTINE_PREFIX) if info.last_modified < cutoff
    ]
    # Thumbnails first, images second: an image promoted meanwhile is seen.
    partial_cutoff = now - partial_older_than
    thumbs = [
        info.key
        for info in drop.storage.iter_all(THUMBS_PREFIX)
        if info.last_modified < partial_cutoff
    ]
    variants = [
        info.key
        for info in drop.storage.iter_all(responsive.VARIANTS_PREFIX)
        if info.last_modified < partial_cutoff
    ]
    kept = drop.storage.list_objects(originals.ORIGINALS_PREFIX, limit=1)
    if thumbs or variants or kept:
        promoted = {
            parsed.id
            for info in drop.storage.iter_all(IMAGES_PREFIX)
            if (parsed := parse_image_key(info.key)) is not None
        }
        stale += [key for key in thumbs if _thumbnail_id(key) not in promoted]
        stale += [key for key in variants if responsive.variant_id(key) not in promoted]
        if kept:  # an original whose image was deleted while the setting was off
            stale += originals.orphans(drop.storage, promoted, partial_cutoff.timestamp())
    for key in stale:
        drop.storage.delete(key)
    removed = len(stale) + drop.storage.sweep_partial(partial_older_than.total_seconds())
    if removed:
        audit.record("sweep", who="library", count=removed)
    return removed


def _thumbnail_id(key: str) -> str:
    """``thumbs/<id>.webp`` -> ``<id>``."""
    return key.removeprefix(THUMBS_PREFIX).partition(".")[0]
