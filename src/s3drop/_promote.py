"""Completion: find an upload, verify it, then promote it into the gallery or refuse it.

:meth:`S3Drop.complete <s3drop._uploads.S3Drop.complete>` calls :func:`complete`. One accepted
image costs these storage requests (``tests/test_roundtrips.py`` counts them, on RGW and on disk)::

    GET    incoming/<id>.<ext>        the upload: its size, type and metadata come with its bytes,
                                      and its id names its type (no HEAD per type, no second read)
    PUT    thumbs/<id>.webp           the thumbnail, naming its image and owner
    PUT    variants/<id>.<w>.<ext>    each responsive variant, in parallel (s3drop._responsive:
                                      one per width and type, 0 for a small image, 6 by default
                                      for one wider than 1280 pixels)
    PUT    images/<id>.<facts>.<ext>  the image, its key naming the variants (``.v``)
    PUT    owners/<owner>/<name>      its owner's index entry (not in a shared gallery)
    PUT    digests/<owner>/<sha256>   its duplicate marker
    DELETE incoming/<id>.<ext>        the quarantined copy

Whether the image was promoted already is asked of the limits store's claim, not of storage, when
the store keeps claims across restarts (SQLite, Redis); with counters in memory a listing and a
HEAD look for the image first, as a restarted process has forgotten its claims. Ids made before
they named their type, and a claim that was already taken, cost the lookups they need.
"""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, NoReturn

from . import _audit as audit
from . import _images as images
from . import _originals as originals
from . import _responsive as responsive
from ._auth import Principal
from ._digests import Digest
from ._errors import (
    AlreadyCompleted,
    ChecksumMismatch,
    Forbidden,
    ImageRejected,
    NotAnImage,
    NotFound,
    S3DropError,
    SizeMismatch,
    TypeMismatch,
)
from ._formats import FORMATS, by_key_extension
from ._gallery import Image, describe_stored, find_image
from ._policy import (
    decode_meta,
    digest_key,
    image_key,
    owner_key,
    parse_image_key,
    quarantine_key,
    thumbnail_key,
    upload_type,
)
from ._responsive import VariantSet
from ._units import format_size
from .storage.base import Download, ObjectInfo, Storage

if TYPE_CHECKING:
    from ._uploads import S3Drop

#: Who calls the library when the caller names nobody.
ANONYMOUS = Principal("anonymous", anonymous=True)

#: Seconds a completion that lost the claim waits for the winner's image to appear.
_AWAIT_PROMOTION = 5.0

#: Uploads up to this size are read with one read; larger ones header first, then the rest (a
#: file that is no image costs no more than its header, but the image is held twice a moment).
WHOLE_READ = 64 * 1024 * 1024


def complete(drop: S3Drop, upload_id: str, principal: Principal | None) -> Image:
    """Verify upload ``upload_id`` and promote it (see :meth:`S3Drop.complete`); the caller holds
    this process's lock of the id."""
    download = find_upload(drop.storage, upload_id, drop.settings.allowed_types)
    if download is None:
        promoted = find_promoted(drop.storage, upload_id)
        if promoted is None:
            raise NotFound(f"no upload {upload_id!r}: it never arrived, was rejected, or expired")
        check_owner(promoted, principal)
        return describe_stored(drop.storage, drop.settings, promoted)
    with download:
        info = download.info
        check_owner(info, principal)
        who = principal.name if principal else owner_of(info)
        promoted = None
        if not drop.limits.claims_durable:  # a restart forgot the claims: ask storage
            promoted = find_promoted(drop.storage, upload_id)
            if promoted is not None and info.last_modified > promoted.last_modified:
                # Posted after its image was promoted (a crash's leftover is older): no decode.
                _refuse_repost(drop, info, who, promoted)
        try:
            processed, uploaded_sha256 = verify(drop, download)
        except ImageRejected as exc:
            if promoted is None and drop.limits.claims_durable:  # was its image promoted?
                promoted = find_promoted(drop.storage, upload_id)
                if promoted is not None and info.last_modified > promoted.last_modified:
                    _refuse_repost(drop, info, who, promoted)  # as without the decode: 409
            drop.storage.delete(info.key)
            audit.record("reject", who=who, key=info.key, reason=exc.code, detail=exc.message)
            drop.hooks.reject(upload_id, exc, principal)
            raise
        except NotFound:  # gone while being read: a concurrent completion finished it
            promoted = find_promoted(drop.storage, upload_id)
            if promoted is None:
                raise
            return describe_stored(drop.storage, drop.settings, promoted)
    digest = processed.sha256 or hashlib.sha256(processed.data).hexdigest()
    metadata = {
        "width": str(processed.width),
        "height": str(processed.height),
        "format": processed.format,
        "bytes": str(len(processed.data)),
        "sha256": digest,
        "source-sha256": uploaded_sha256,
        "filename": info.metadata.get("filename", ""),
        "owner": info.metadata.get("owner", ANONYMOUS.name),
    }
    made = VariantSet.of(processed.variants)
    key = image_key(
        upload_id,
        processed.content_type,
        width=processed.width,
        height=processed.height,
        size=len(processed.data),
        filename=decode_meta(metadata["filename"]) or None,
        placeholder=processed.placeholder,
        variants=made.code if made else None,
    )
    # Who promotes: the first claim of this id, ever. A call that finds the image already
    # there, the same one (a retry after a crash, a concurrent call in another process),
    # finishes the job without claiming; a different one means the form was posted again.
    claimed = False
    if promoted is None:
        claimed = drop.limits.claim(upload_id)
        if not claimed:
            promoted = _await_image(drop.storage, upload_id)
            if promoted is not None and info.last_modified > promoted.last_modified:
                _refuse_repost(drop, info, who, promoted)  # posted after its image was promoted
            # No image: promoted, then deleted; or its promotion failed and was released.
            if promoted is None and not (claimed := drop.limits.claim(upload_id)):
                _refuse_repost(drop, info, who, None)
    if promoted is not None and (promoted.key != key or promoted.metadata.get("sha256") != digest):
        _refuse_repost(drop, info, who, promoted)
    storage = drop.storage
    # Thumbnail first, then the image, then its owner's index entry and duplicate marker, then
    # the quarantine copy goes: a crash between any two leaves the quarantine copy, and a
    # retry finishes the job.
    # The thumbnail names its image and owner: an id alone then finds both with one HEAD
    # (image_url), no listing.
    try:
        storage.put(
            thumbnail_key(upload_id),
            processed.thumbnail,
            content_type="image/webp",
            metadata={
                "image": key.rpartition("/")[2],
                "owner": metadata["owner"],
                "filename": metadata["filename"],
            },
        )
        # The variants the key names exist before it does (s3drop._responsive).
        responsive.store(storage, upload_id, processed.variants, image=key.rpartition("/")[2])
        storage.put(key, processed.data, content_type=processed.content_type, metadata=metadata)
    except S3DropError:  # e.g. a full disk: no thumbnail without its image, and a retry
        if promoted is None:  # may claim the promotion again
            storage.delete(thumbnail_key(upload_id))
            responsive.delete_keys(storage, made.keys(upload_id) if made else [])
        if claimed:
            drop.limits.release(upload_id)
        raise
    declared = _declared_type(info.key)
    if drop.settings.keep_heic_original and originals.converted(declared):
        originals.keep(storage, info, declared, key)
    if not drop.settings.shared:  # a shared gallery lists images/, never an owner's index
        storage.put(
            owner_key(owner_of(info), key), b"", content_type="application/x-empty", metadata={}
        )
    # The hash is the server's own, of the bytes it verified: never the client's claim.
    storage.put(
        digest_key(owner_of(info), uploaded_sha256),
        b"",
        content_type="application/x-empty",
        metadata={"image": key, "sha256": digest, "filename": metadata["filename"]},
    )
    storage.delete(info.key)
    stored = ObjectInfo(
        key=key,
        size=len(processed.data),
        content_type=processed.content_type,
        last_modified=datetime.now(UTC),
        metadata=metadata,
    )
    image = describe_stored(storage, drop.settings, stored)
    if claimed:
        _accepted(drop, image, info, principal, who)
    return image


def _accepted(
    drop: S3Drop, image: Image, info: ObjectInfo, principal: Principal | None, who: str
) -> None:
    """This call promoted ``image``: reached exactly once per image, whatever the retries, the
    concurrent calls and the processes (the claim in :func:`complete`). Count it against its
    owner and say so; callbacks on acceptance belong here."""
    limit_key = limit_key_of(info, principal)
    if limit_key is not None:
        drop.limits.stored(limit_key, 1)
    audit.record("accept", who=who, key=image.key, size=image.bytes, type=image.format)
    drop.hooks.accept(image, principal)


def _refuse_repost(
    drop: S3Drop, info: ObjectInfo, who: str, promoted: ObjectInfo | None
) -> NoReturn:
    """Delete a file posted again with a form whose upload was already promoted; 409."""
    drop.storage.delete(info.key)
    audit.record("refuse", who=who, key=info.key, reason=AlreadyCompleted.code)
    upload_id = info.key.rsplit("/", 1)[-1].split(".", 1)[0]
    what = f" as {promoted.key}" if promoted is not None else ""
    raise AlreadyCompleted(
        f"upload {upload_id} was already completed{what}; a form makes one image, so the "
        "file posted again with it was deleted: sign a new upload for another file"
    )


def _await_image(storage: Storage, upload_id: str) -> ObjectInfo | None:
    """The image another process claimed and is writing now (it claims once the file is
    verified, so that takes milliseconds); None if it does not appear within
    :data:`_AWAIT_PROMOTION` seconds."""
    deadline = time.monotonic() + _AWAIT_PROMOTION
    while True:
        promoted = find_promoted(storage, upload_id)
        if promoted is not None or time.monotonic() >= deadline:
            return promoted
        time.sleep(0.05)


def find_upload(storage: Storage, upload_id: str, allowed: list[str]) -> Download | None:
    """The upload's object in quarantine, opened: one GET of the type its id names
    (:func:`~s3drop._policy.upload_type`). An id that names none, or another type (ids made
    before they named it), costs a GET per type until one answers, the allowed types first."""
    named = upload_type(upload_id)
    others = [*allowed, *(t for t in FORMATS if t not in allowed)]
    candidates = ([named] if named else []) + [t for t in others if t != named]
    for content_type in candidates:
        found = storage.get(quarantine_key(upload_id, content_type))
        if found is not None:
            return found
    return None


def find_promoted(storage: Storage, upload_id: str) -> ObjectInfo | None:
    """The promoted image ``upload_id`` with its metadata: a listing call and a HEAD."""
    for key in find_image(storage, upload_id):
        if parse_image_key(key) is not None:
            return storage.head(key)
    return None


def verify(drop: S3Drop, download: Download) -> tuple[images.ProcessedImage, str]:
    """Judge the quarantined object; what to store and the SHA-256 of the bytes uploaded (the
    server's own hash), or ImageRejected. Reads its first bytes, and the rest only if they may
    be an image of the signed type."""
    info = download.info
    declared = _declared_type(info.key)
    if info.size == 0:
        raise NotAnImage("the file is empty (0 bytes)")
    if info.size > drop.settings.max_bytes:
        raise SizeMismatch(
            f"the stored file is {format_size(info.size)}; the limit is "
            f"{format_size(drop.settings.max_bytes)}"
        )
    stored_type = info.content_type.split(";")[0].strip().lower()
    if stored_type != declared:
        raise TypeMismatch(
            f"the file was stored as {stored_type or 'no type'}, but its upload was signed "
            f"for {declared}"
        )
    limits, allowed = drop.image_limits, drop.settings.allowed_types
    # One read of the whole object when it is small enough to hold at once, else its header
    # first: a 1 GB upload that is not an image costs no more than its first bytes (joining
    # the rest to it holds the file twice for a moment).
    data = download.read() if info.size <= WHOLE_READ else download.read(images.HEADER_BYTES)
    head = data[: images.HEADER_BYTES]
    content_type = images.check_header(
        head, declared=declared, allowed=allowed, limits=limits, whole=len(head) >= info.size
    )
    del head
    if len(data) < info.size:
        data += download.read()
    if content_type is None:  # the header is longer than the first read: judge it whole
        content_type = images.check_header(
            data, declared=declared, allowed=allowed, limits=limits, whole=True
        )
        assert content_type is not None
    if len(data) != info.size:
        raise SizeMismatch(
            f"the file changed while it was checked ({len(data)} bytes, not {info.size})"
        )
    pixels = images.header_pixels(data, content_type)
    uploaded = Digest(data)  # hashed while the worker decodes
    try:
        processed = drop.decoders.process(data, content_type, limits, pixels=pixels)
    except S3DropError as exc:  # a file changed on the way is reported as that first
        _check_checksum(info, uploaded.hexdigest(), cause=exc)
        raise
    actual = uploaded.hexdigest()
    _check_checksum(info, actual)
    return processed, actual


def _check_checksum(info: ObjectInfo, actual: str, *, cause: Exception | None = None) -> None:
    """Refuse an upload whose bytes are not the ones it was signed for (ChecksumMismatch)."""
    expected = info.metadata.get("sha256")
    if expected and actual != expected.lower():
        raise ChecksumMismatch(
            f"the stored file's SHA-256 is {actual}, not the {expected} it was signed "
            "with: it changed on the way"
        ) from cause


def check_owner(info: ObjectInfo, principal: Principal | None, *, shared: bool = False) -> None:
    """Refuse a principal that does not own ``info`` (:class:`Forbidden`); ``shared`` lets
    everyone act on every image, and None is a trusted caller."""
    if principal is not None and not shared and owner_of(info) != principal.name:
        raise Forbidden("this image belongs to someone else")


def owner_of(info: ObjectInfo) -> str:
    """Who uploaded ``info``: the owner recorded in its metadata (``anonymous`` if none is)."""
    owner = info.metadata.get("owner")
    return decode_meta(owner) if owner is not None else ANONYMOUS.name


def limit_key_of(info: ObjectInfo, principal: Principal | None) -> str | None:
    """Whose stored-images count an image counts against: its owner's."""
    owner = owner_of(info)
    if principal is not None and principal.name == owner:
        return principal.limit_key
    return f"user:{owner}" if owner != ANONYMOUS.name else None


def _declared_type(key: str) -> str:
    fmt = by_key_extension(key.rsplit(".", 1)[-1])
    assert fmt is not None, key  # quarantine keys are built by quarantine_key
    return fmt.content_type
