"""Responsive variants for images promoted before them: ``s3drop variants --missing``.

An image's key says which variants it has (its ``.v`` segment, :mod:`s3drop._responsive`), so an
image without one gets them like this, decoding in the sandbox as a promotion does:

1. read the stored image and make its variants (:meth:`DecodePool.process
   <s3drop._sandbox.DecodePool.process>`);
2. put the variants;
3. copy the image to its new key, the old one plus ``.v<code>`` (same bytes, type and metadata);
4. put the owner's index entry for the new key;
5. point the thumbnail (which names its image, for ``image_url``) and the duplicate marker at the
   new key;
6. delete the old index entry, then the old key.

The image is never lost: until step 6 the old key still serves, and from step 3 on the new one
does (for a moment a listing shows both). A run that stops anywhere is finished by the next: an
id with both keys skips to step 4 (every later step is idempotent), an id with only its old key
starts again (its variants are simply written again). Images that need none (narrower than
every width, animated) are left as they are: their width, from their key, says so without a read,
except for an animation, which is read and decoded again on each run.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from . import _responsive as responsive
from ._errors import S3DropError
from ._policy import (
    IMAGES_PREFIX,
    ImageKey,
    decode_meta,
    digest_key,
    owner_key,
    parse_image_key,
    thumbnail_key,
)
from ._responsive import VariantSet

if TYPE_CHECKING:
    from ._uploads import S3Drop

#: Called after each image: (image id, what happened: "made", "finished", "none", "failed").
Progress = Callable[[str, str], None]


@dataclass
class BackfillReport:
    """What a run did, by image id."""

    made: list[str] = field(default_factory=list)
    finished: list[str] = field(default_factory=list)  # an interrupted run's, completed
    none_needed: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    variant_puts: int = 0

    def to_dict(self) -> dict[str, object]:
        return {
            "made": self.made,
            "finished": self.finished,
            "none_needed": len(self.none_needed),
            "failed": self.failed,
            "variant_puts": self.variant_puts,
        }


@dataclass(frozen=True)
class Pending:
    """One image whose key lacks its variants: its current key and, when an interrupted run
    already copied it, the new one."""

    old: ImageKey
    new: ImageKey | None


def pending(drop: S3Drop) -> list[Pending]:
    """Every image without variants in its key, oldest first (one listing of ``images/``)."""
    by_id: dict[str, list[ImageKey]] = defaultdict(list)
    for info in drop.storage.iter_all(IMAGES_PREFIX):
        facts = parse_image_key(info.key)
        if facts is not None:
            by_id[facts.id].append(facts)
    found = []
    for keys in by_id.values():
        old = next((facts for facts in keys if facts.variants is None), None)
        if old is not None:
            new = next((facts for facts in keys if facts.variants is not None), None)
            found.append(Pending(old, new))
    return found[::-1]


def fill_missing(drop: S3Drop, *, progress: Progress | None = None) -> BackfillReport:
    """Give every image that lacks them its variants (see the module's docstring)."""
    report = BackfillReport()
    widths = drop.settings.variant_widths if drop.settings.variant_formats else []
    for item in pending(drop):
        image_id = item.old.id
        try:
            if item.new is not None:
                _finish(drop, item.old, item.new)
                report.finished.append(image_id)
                outcome = "finished"
            elif not any(w < item.old.width for w in widths):
                report.none_needed.append(image_id)
                outcome = "none"
            else:
                made = _make(drop, item.old)
                if made is None:
                    report.none_needed.append(image_id)
                    outcome = "none"
                else:
                    report.made.append(image_id)
                    report.variant_puts += made.count
                    outcome = "made"
        except S3DropError as exc:
            report.failed[image_id] = f"{exc.code}: {exc.message}"
            outcome = "failed"
        if progress is not None:
            progress(image_id, outcome)
    return report


def _make(drop: S3Drop, old: ImageKey) -> VariantSet | None:
    """Steps 1 to 6 for one image; the variants made (None: it needs none, or it went)."""
    download = drop.storage.get(old.key)  # its facts and bytes: one GET
    if download is None:  # deleted meanwhile
        return None
    with download:
        info, data = download.info, download.read()
    processed = drop.decoders.process(
        data, old.content_type, drop.image_limits, pixels=old.width * old.height
    )
    made = VariantSet.of(processed.variants)
    if made is None:
        return None
    new = replace(old, variants=made.code)
    responsive.store(drop.storage, old.id, processed.variants, image=new.key.rpartition("/")[2])
    drop.storage.put(new.key, data, content_type=info.content_type, metadata=info.metadata)
    _finish(drop, old, new)
    return made


def _finish(drop: S3Drop, old: ImageKey, new: ImageKey) -> None:
    """Steps 4 to 6: the new key exists (with the variants it names)."""
    info = drop.storage.head(new.key)
    if info is None:
        return
    owner = decode_meta(info.metadata.get("owner", "anonymous"))
    drop.storage.put(
        owner_key(owner, new.key), b"", content_type="application/x-empty", metadata={}
    )
    new_name, old_name = new.key.rpartition("/")[2], old.key.rpartition("/")[2]
    thumb_key = thumbnail_key(old.id)
    thumb = drop.storage.get(thumb_key)
    if thumb is not None:
        with thumb:
            if thumb.info.metadata.get("image") == old_name:
                metadata = {**thumb.info.metadata, "image": new_name}
                drop.storage.put(
                    thumb_key, thumb.read(), content_type="image/webp", metadata=metadata
                )
    uploaded = info.metadata.get("source-sha256")
    if uploaded:
        marker_key = digest_key(owner, uploaded)
        marker = drop.storage.head(marker_key)
        if marker is not None and marker.metadata.get("image") == old.key:
            metadata = {**marker.metadata, "image": new.key}
            drop.storage.put(marker_key, b"", content_type="application/x-empty", metadata=metadata)
    drop.storage.delete(owner_key(owner, old.key))
    drop.storage.delete(old.key)
