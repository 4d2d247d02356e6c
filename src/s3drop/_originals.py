"""The uploaded file kept beside the image it became, when the two are different formats and a
setting asks for it (``S3DROP_KEEP_HEIC_ORIGINAL``: a phone's HEIC beside the JPEG s3drop stores).

``originals/<id>.<ext>``, written by the promotion after the image (a crash before it leaves the
quarantine copy, and a retry writes it), deleted with the image, swept when its image is gone.
Never listed or served by s3drop: it is there for the host app (or a later conversion) to read.
"""

from __future__ import annotations

from ._formats import FORMATS, by_type
from .storage.base import ObjectInfo, Storage

ORIGINALS_PREFIX = "originals/"


def original_key(upload_id: str, content_type: str) -> str:
    return f"{ORIGINALS_PREFIX}{upload_id}.{by_type(content_type).key_extension}"


def converted(content_type: str) -> bool:
    """Whether an upload of ``content_type`` is stored as another format (its original differs)."""
    return by_type(content_type).stored_as is not None


def keep(storage: Storage, upload: ObjectInfo, content_type: str, image_key: str) -> None:
    """Copy the quarantined ``upload`` (of ``content_type``) beside the image ``image_key``."""
    upload_id = upload.key.rpartition("/")[2].partition(".")[0]
    storage.put(
        original_key(upload_id, content_type),
        storage.read(upload.key),
        content_type=content_type,
        metadata={"image": image_key.rpartition("/")[2], "owner": upload.metadata.get("owner", "")},
    )


def delete(storage: Storage, image_id: str) -> None:
    """Delete the originals image ``image_id`` may have (one per converted format; a delete of
    nothing is nothing)."""
    for fmt in FORMATS.values():
        if fmt.stored_as is not None:
            storage.delete(original_key(image_id, fmt.content_type))


def orphans(storage: Storage, promoted: set[str], older_than: float) -> list[str]:
    """The originals older than ``older_than`` (a timestamp) whose image is not in ``promoted``."""
    return [
        info.key
        for info in storage.iter_all(ORIGINALS_PREFIX)
        if info.last_modified.timestamp() < older_than
        and info.key.removeprefix(ORIGINALS_PREFIX).partition(".")[0] not in promoted
    ]
