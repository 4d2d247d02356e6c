"""Images as older versions of s3drop promoted them, for tests that what came before still
works (and, for a backfill, what it has to fill in)."""

from __future__ import annotations

import io

from PIL import Image

from s3drop import S3Drop
from s3drop._policy import image_key, new_upload_id, owner_key, thumbnail_key

from . import samples


def promote_as_before_placeholders(drop: S3Drop, data: bytes, filename: str) -> str:
    """Store the PNG ``data`` as a promotion before placeholders did: a key without ``p``/``c``
    segments, its WebP thumbnail naming it, its owner's (anonymous) index entry; its id."""
    picture = Image.open(io.BytesIO(data))
    upload_id = new_upload_id()
    key = image_key(
        upload_id,
        "image/png",
        width=picture.width,
        height=picture.height,
        size=len(data),
        filename=filename,
    )
    meta = {"owner": "anonymous", "filename": filename}
    picture.thumbnail((320, 320))
    drop.storage.put(
        thumbnail_key(upload_id),
        samples.encode(picture, "WEBP"),
        content_type="image/webp",
        metadata={"image": key.rpartition("/")[2], **meta},
    )
    drop.storage.put(key, data, content_type="image/png", metadata=meta)
    drop.storage.put(
        owner_key("anonymous", key), b"", content_type="application/x-empty", metadata={}
    )
    return upload_id
