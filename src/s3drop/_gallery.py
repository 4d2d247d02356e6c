"""The promoted images, as the gallery shows them: newest first, one listing call per page.

Upload ids start with inverted milliseconds, so key order is newest first, and a promoted image's
key carries the facts a gallery item shows: ``images/<id>.<width>x<height>.<bytes>.<ext>`` (see
:func:`s3drop._policy.image_key`). A page is therefore one ``list_objects`` call and, per image,
only two signed URLs computed locally: no read per image, and a cost that does not grow with the
number of images. The next page starts after the last id of this one.

Whose images: each promotion also writes a zero-byte entry of the same name into its owner's
index, ``owners/<owner>/`` (:func:`s3drop._policy.owner_key`). Unless the gallery is shared
(``S3DROP_SHARED``), a user's page lists that index: their own images only, just as fast. A
trusted caller (no principal: the CLI's ``--direct``, or a framework that checks access itself)
lists ``images/``.

The original filename, checksum and owner are the image object's metadata; :func:`describe_stored`
turns one HEAD answer into the full :class:`Image` (``GET /api/images/{id}``, completion).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from ._config import Settings
from ._errors import InvalidRequest
from ._formats import by_type
from ._placeholders import Placeholder
from ._policy import (
    IMAGES_PREFIX,
    ImageKey,
    decode_meta,
    id_time,
    image_prefix,
    is_upload_id,
    parse_image_key,
    thumbnail_key,
)
from ._responsive import Source, default_sizes, responsive
from .storage.base import ObjectInfo, Storage

#: The most images one page may hold.
MAX_PAGE = 100


@dataclass(frozen=True)
class Image:
    """One promoted image: where to read it and its thumbnail, and its facts.

    ``filename``, ``sha256`` and ``owner`` are known only where the image's metadata was read
    (:meth:`S3Drop.get_image <s3drop._uploads.S3Drop.get_image>`, completion); gallery pages leave
    them None. ``srcset``, ``sizes`` and ``sources`` (one per variant type, AVIF first) are what
    a ``<picture>`` needs (:mod:`s3drop._responsive`; :func:`s3drop.html.picture` renders one).
    """

    id: str
    key: str
    url: str
    thumbnail_url: str
    width: int
    height: int
    format: str
    bytes: int
    uploaded_at: datetime
    filename: str | None = None
    sha256: str | None = None
    owner: str | None = None
    srcset: str = ""
    sizes: str = ""
    sources: tuple[Source, ...] = ()
    #: What to paint while the image loads (None for images promoted before placeholders).
    placeholder: Placeholder | None = None

    def to_dict(self) -> dict[str, Any]:
        """The API's JSON for an image (``filename`` is null in gallery pages; ``placeholder``
        for images promoted before placeholders)."""
        return {
            "id": self.id,
            "url": self.url,
            "thumbnail_url": self.thumbnail_url,
            "width": self.width,
            "height": self.height,
            "format": self.format,
            "bytes": self.bytes,
            "uploaded_at": self.uploaded_at.isoformat(timespec="milliseconds").replace(
                "+00:00", "Z"
            ),
            "filename": self.filename,
            "srcset": self.srcset or f"{self.url} {self.width}w",
            "sizes": self.sizes or default_sizes(self.width),
            "sources": [source.to_dict() for source in self.sources],
            "placeholder": self.placeholder.to_dict() if self.placeholder else None,
        }


#: How long a browser may reuse a redirect to a CDN URL (which does not expire).
CDN_MAX_AGE = 86400

#: What :meth:`S3Drop.image_url <s3drop._uploads.S3Drop.image_url>` can point at.
Variant = Literal["original", "thumbnail"]
VARIANTS: tuple[Variant, ...] = ("original", "thumbnail")


@dataclass(frozen=True)
class ImageURL:
    """Where to read an image now: ``url`` works until ``expires_at`` (None: a CDN URL that does
    not expire); ``placeholder``, what to paint while it loads (None for older images)."""

    url: str
    expires_at: datetime | None
    placeholder: Placeholder | None = None

    def __str__(self) -> str:
        return self.url

    def cache_control(self, *, now: datetime | None = None) -> str:
        """``Cache-Control`` for an answer that redirects to this URL: ``private`` (who may see an
        image depends on who asks), fresh for half the URL's remaining life (a cached redirect
        never leads to an expired URL), or :data:`CDN_MAX_AGE` for a URL that does not expire."""
        if self.expires_at is None:
            return f"private, max-age={CDN_MAX_AGE}"
        remaining = (self.expires_at - (now or datetime.now(UTC))).total_seconds()
        return f"private, max-age={max(0, int(remaining) // 2)}"


@dataclass(frozen=True)
class ImagePage:
    """One page of the gallery; pass ``next_cursor`` back for the next (None: the last page)."""

    images: list[Image]
    next_cursor: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "images": [image.to_dict() for image in self.images],
            "next_cursor": self.next_cursor,
        }


def describe(
    storage: Storage,
    settings: Settings,
    facts: ImageKey,
    *,
    filename: str | None = None,
    sha256: str | None = None,
    owner: str | None = None,
) -> Image:
    """The gallery's view of one promoted image, from what its key says (and its metadata, when
    read). With a ``filename``, the image URL serves it under that name."""
    key = facts.key
    expires_in = settings.get_expires_in
    url = storage.presign_get(key, expires_in=expires_in, filename=filename)
    view = responsive(storage, settings, facts, url)
    return Image(
        id=facts.id,
        key=key,
        url=url,
        thumbnail_url=storage.presign_get(thumbnail_key(facts.id), expires_in=expires_in),
        width=facts.width,
        height=facts.height,
        format=by_type(facts.content_type).name,
        bytes=facts.size,
        uploaded_at=id_time(facts.id),
        filename=filename or facts.filename,
        sha256=sha256,
        owner=owner,
        srcset=view.srcset,
        sizes=view.sizes,
        sources=view.sources,
        placeholder=facts.placeholder,
    )


def describe_stored(storage: Storage, settings: Settings, info: ObjectInfo) -> Image:
    """The full view of one promoted image from its HEAD answer: facts, filename, owner."""
    facts = parse_image_key(info.key)
    if facts is None:
        raise ValueError(f"not a promoted image's key: {info.key!r}")
    owner = info.metadata.get("owner")
    return describe_with_metadata(
        storage,
        settings,
        facts,
        info.metadata,
        owner=decode_meta(owner) if owner is not None else None,
    )


def describe_with_metadata(
    storage: Storage,
    settings: Settings,
    facts: ImageKey,
    metadata: Mapping[str, str],
    *,
    owner: str | None,
) -> Image:
    """:func:`describe` with the filename and checksum an object's metadata gives (the image's
    own, or its duplicate marker's), the key's name standing in for a filename it lacks."""
    return describe(
        storage,
        settings,
        facts,
        filename=decode_meta(metadata.get("filename", "")) or facts.key.rpartition("/")[2],
        sha256=metadata.get("sha256"),
        owner=owner,
    )


def find_image(storage: Storage, upload_id: str) -> list[str]:
    """Every key of image ``upload_id`` (one, unless something other than s3drop wrote there):
    one listing call, like a HEAD."""
    return [info.key for info in storage.list_objects(image_prefix(upload_id), limit=8)]


def list_page(
    storage: Storage,
    settings: Settings,
    *,
    prefix: str = IMAGES_PREFIX,
    cursor: str | None,
    limit: int,
) -> ImagePage:
    """Up to ``limit`` images after ``cursor``, newest first, from one listing of ``prefix``
    (``images/``, or one owner's index)."""
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidRequest(f"limit must be between 1 and {MAX_PAGE}")
    start_after = None
    if cursor:
        if not is_upload_id(cursor):
            raise InvalidRequest("cursor is not one this server gave out")
        # Every key of that image sorts before this ('.' < '/'), every older image after it.
        start_after = f"{prefix}{cursor}/"
    listed = storage.list_objects(prefix, start_after=start_after, limit=limit + 1)
    more = len(listed) > limit
    listed = listed[:limit]
    images = []
    for info in listed:
        facts = parse_image_key(info.key)
        if facts is not None:  # anything else under the prefix is not the gallery's
            images.append(describe(storage, settings, facts))
    next_cursor = listed[-1].key.rpartition("/")[2][:23] if more else None
    return ImagePage(images=images, next_cursor=next_cursor)
