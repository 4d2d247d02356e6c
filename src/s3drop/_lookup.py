"""Finding an image from its id alone: its key, filename and owner from one HEAD of its
thumbnail (which names them), and a URL that reads it.

:meth:`S3Drop.get_image <s3drop._uploads.S3Drop.get_image>` calls :func:`locate`, and
:meth:`S3Drop.image_url <s3drop._uploads.S3Drop.image_url>` :func:`image_url`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ._auth import Principal
from ._config import Settings
from ._errors import InvalidRequest, NotFound
from ._gallery import VARIANTS, ImageURL, Variant
from ._policy import decode_meta, is_upload_id, parse_image_key, thumbnail_key
from ._promote import check_owner, find_promoted
from .storage.base import ObjectInfo, Storage


def locate(storage: Storage, image_id: str) -> ObjectInfo:
    """Image ``image_id``'s key, filename and owner, from one HEAD of its thumbnail, which
    names them; :class:`NotFound` when there is no such image.

    Images promoted before thumbnails named their image cost a listing and a HEAD instead.
    """
    if not is_upload_id(image_id):
        raise NotFound(f"no image {image_id!r}")
    thumb = storage.head(thumbnail_key(image_id))
    if thumb is None:
        raise NotFound(f"no image {image_id}")
    name = thumb.metadata.get("image")
    facts = parse_image_key(name) if name else None
    if facts is not None and facts.id == image_id:
        return ObjectInfo(
            key=facts.key,
            size=facts.size,
            content_type=facts.content_type,
            last_modified=thumb.last_modified,
            metadata=thumb.metadata,
        )
    found = find_promoted(storage, image_id)
    if found is None:
        raise NotFound(f"no image {image_id}")
    return found


def image_url(
    storage: Storage,
    settings: Settings,
    image_id: str,
    variant: Variant,
    principal: Principal | None,
) -> ImageURL:
    """A URL that reads image ``image_id`` now (see :meth:`S3Drop.image_url`): one HEAD."""
    if variant not in VARIANTS:
        raise InvalidRequest(f"no variant {variant!r}: ask for one of {', '.join(VARIANTS)}")
    info = locate(storage, image_id)
    check_owner(info, principal, shared=settings.shared)
    expires_in = settings.get_expires_in
    if variant == "thumbnail":
        url = storage.presign_get(thumbnail_key(image_id), expires_in=expires_in)
    else:
        filename = decode_meta(info.metadata.get("filename", "")) or None
        url = storage.presign_get(info.key, expires_in=expires_in, filename=filename)
    permanent = not storage.read_urls_expire
    expires_at = None if permanent else datetime.now(UTC) + timedelta(seconds=expires_in)
    facts = parse_image_key(info.key)  # its placeholder, from the key: no request
    placeholder = facts.placeholder if facts is not None else None
    return ImageURL(url=url, expires_at=expires_at, placeholder=placeholder)
