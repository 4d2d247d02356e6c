"""Responsive variants in storage and on the page: their keys, their ``srcset``, their lifecycle.

:mod:`s3drop._variants` makes the bytes in the decode sandbox; this module stores them and says
where they are. Each variant is an object of its own beside the original,
``variants/<id>.<width>.<ext>``, and the image's key says which exist in its ``.v`` segment
(:func:`s3drop._policy.image_key`): the type letters (each variant type's letter in the registry,
:attr:`s3drop._formats.AsVariant.letter`: ``a`` AVIF, ``w`` WebP) then the widths,
``.vaw320-640-1280``. So a gallery page still costs one listing
call: the ``srcset`` of every image is computed from its key, with no read per image.

A promotion writes its variants (in parallel, :func:`store`) after the original is verified and
before the image's key that names them, so a listed image never points at a missing variant; a
crash in between leaves variants whose image does not exist, which ``sweep`` removes
(:meth:`S3Drop.sweep <s3drop._uploads.S3Drop.sweep>`). Deleting an image deletes its variants (:func:`delete`).

How many: ``len(widths) x len(types)`` PUTs per image (:attr:`VariantSet.count`; 6 with the
defaults for an image wider than 1280 pixels), on top of the promotion's own requests.
"""

from __future__ import annotations

import concurrent.futures
import functools
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ._config import Settings
from ._formats import VARIANT_TYPES, by_type, by_variant_letter
from ._policy import ImageKey
from ._variants import EncodedVariant
from .storage.base import Storage

VARIANTS_PREFIX = "variants/"
#: At most this many variant requests of one image run at once.
PARALLEL = 8

_POOL: concurrent.futures.ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


@dataclass(frozen=True)
class VariantSet:
    """Which variants of an image exist: every width in every type."""

    types: tuple[str, ...]
    widths: tuple[int, ...]

    @property
    def code(self) -> str:
        """The key's ``.v`` segment value: ``aw320-640-1280``."""
        letters = "".join(_letter(t) for t in self.types)
        return letters + "-".join(map(str, self.widths))

    @property
    def count(self) -> int:
        """How many variant objects (and PUTs) this is."""
        return len(self.types) * len(self.widths)

    @classmethod
    def parse(cls, code: str | None) -> VariantSet | None:
        """The set a ``.v`` segment names; None for none (or a code s3drop did not write)."""
        if not code:
            return None
        letters = code.rstrip("0123456789-")
        types = [fmt.content_type if (fmt := by_variant_letter(c)) else None for c in letters]
        try:
            widths = tuple(int(part) for part in code[len(letters) :].split("-"))
        except ValueError:
            return None
        order = [t for t in VARIANT_TYPES if t in types]
        if None in types or order != types or list(widths) != sorted(set(widths)):
            return None
        return cls(types=tuple(order), widths=widths)

    @classmethod
    def of(cls, made: Sequence[EncodedVariant]) -> VariantSet | None:
        """The set ``made`` (by :func:`s3drop._variants.make`) is; None when it is empty."""
        if not made:
            return None
        types = {variant.content_type for variant in made}
        return cls(
            types=tuple(t for t in VARIANT_TYPES if t in types),
            widths=tuple(sorted({variant.width for variant in made})),
        )

    def keys(self, upload_id: str) -> list[str]:
        return [variant_key(upload_id, w, t) for w in self.widths for t in self.types]


def variant_key(upload_id: str, width: int, content_type: str) -> str:
    """``variants/<id>.<width>.<ext>``."""
    return f"{VARIANTS_PREFIX}{upload_id}.{width}.{by_type(content_type).key_extension}"


def _letter(content_type: str) -> str:
    variant = by_type(content_type).variant
    assert variant is not None, content_type
    return variant.letter


def variant_id(key: str) -> str:
    """``variants/<id>.<width>.<ext>`` -> ``<id>``."""
    return key.removeprefix(VARIANTS_PREFIX).partition(".")[0]


@dataclass(frozen=True)
class Source:
    """One ``<source>`` of a ``<picture>``: a type and its ``srcset`` (the original last)."""

    type: str
    srcset: str

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "srcset": self.srcset}


@dataclass(frozen=True)
class Responsive:
    """What a page needs to show an image at the right size: ``srcset`` for the ``<img>`` (the
    original, in its own type), ``sizes``, and one :class:`Source` per variant type, AVIF first."""

    srcset: str
    sizes: str
    sources: tuple[Source, ...]


def default_sizes(width: int) -> str:
    """As wide as the viewport, never wider than the image itself."""
    return f"(max-width: {width}px) 100vw, {width}px"


def responsive(storage: Storage, settings: Settings, facts: ImageKey, url: str) -> Responsive:
    """The ``srcset``, ``sizes`` and ``<source>``s of the image ``facts`` describes (read at
    ``url``), from its key alone: the variants' URLs are signed like the original's (or the CDN's,
    with ``S3DROP_PUBLIC_BASE_URL``)."""
    original = f"{_candidate(url)} {facts.width}w"
    found = VariantSet.parse(facts.variants)
    sources: list[Source] = []
    if found is not None:
        expires_in = settings.get_expires_in
        for content_type in found.types:
            candidates = []
            for width in found.widths:
                key = variant_key(facts.id, width, content_type)
                signed = storage.presign_get(key, expires_in=expires_in)
                candidates.append(f"{_candidate(signed)} {width}w")
            sources.append(Source(content_type, ", ".join([*candidates, original])))
    return Responsive(srcset=original, sizes=default_sizes(facts.width), sources=tuple(sources))


def _candidate(url: str) -> str:
    """A URL as a ``srcset`` candidate: no whitespace, and no comma a parser could split at."""
    return url.replace(" ", "%20").replace(",", "%2C")


def _pool() -> concurrent.futures.ThreadPoolExecutor:
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = concurrent.futures.ThreadPoolExecutor(PARALLEL, "s3drop-variants")
        return _POOL


def _all(calls: Iterable[Callable[[], object]]) -> None:
    """Run every call in the pool; the first error, once all have finished."""
    futures = [_pool().submit(call) for call in calls]
    concurrent.futures.wait(futures)
    for future in futures:
        future.result()


def store(
    storage: Storage, upload_id: str, made: Sequence[EncodedVariant], *, image: str
) -> VariantSet | None:
    """Put ``made`` beside image ``upload_id`` (whose key's name is ``image``), in parallel; the
    set for the image's key. All or none: on an error, the ones written are deleted."""
    found = VariantSet.of(made)
    if found is None:
        return None
    metadata = {"image": image}
    puts = [(variant_key(upload_id, v.width, v.content_type), v) for v in made]
    try:
        _all(
            functools.partial(
                storage.put, key, v.data, content_type=v.content_type, metadata=metadata
            )
            for key, v in puts
        )
    except Exception:
        delete_keys(storage, [key for key, _ in puts])
        raise
    return found


def delete(storage: Storage, facts: ImageKey) -> None:
    """Delete the variants image ``facts`` names, in parallel (none: nothing to do)."""
    found = VariantSet.parse(facts.variants)
    if found is not None:
        delete_keys(storage, found.keys(facts.id))


def delete_keys(storage: Storage, keys: Sequence[str]) -> None:
    _all(functools.partial(storage.delete, key) for key in keys)
