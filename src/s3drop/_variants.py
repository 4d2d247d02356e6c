"""Responsive variants: smaller copies of an accepted image, made from the decode it already got.

:func:`s3drop._images.process` calls :func:`make` inside the decode sandbox with the image it has
just decoded (and verified), so variants cost no second decode and run under the same CPU and
memory limits. A JPEG is decoded at the smallest DCT scale that still covers the widest variant
(:func:`draft_size`: libjpeg's 1/2, 1/4, 1/8 decode, the cheapest *reduce*); from there each
variant is resized from the previous, larger one (Pillow's ``reducing_gap`` box-reduces first,
then Lanczos does the last step; from a full-size decode, such as a HEIC's, the first step
box-reduces as far as a scaled decode would), widest first, then encoded in each configured format.

Never upscaled: only widths below the original's are made, and the original itself is the widest
candidate of every ``srcset`` (:mod:`s3drop._responsive`). Animated images get none (a still
variant of an animation would be a different picture).

No I/O and no settings here: the worker process imports this module without pydantic.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from PIL import Image

from ._formats import FORMATS, VARIANT_TYPES, Format, by_name, by_type


@dataclass(frozen=True)
class EncodedVariant:
    """One variant: ``format`` (its registry name, ``avif`` or ``webp``), its size and bytes."""

    format: str
    width: int
    height: int
    data: bytes

    @property
    def content_type(self) -> str:
        return by_name(self.format).content_type


#: The longest side WebP can encode (AVIF's is larger): a variant taller than this is not made.
MAX_SIDE = 16383


def plan(width: int, widths: Sequence[int], height: int = 1) -> list[int]:
    """The variant widths a ``width`` x ``height`` image gets: those below its width (never
    upscaled) whose height every format can encode, ascending."""
    return sorted({w for w in widths if w < width and variant_height(width, height, w) <= MAX_SIDE})


def variant_height(width: int, height: int, target: int) -> int:
    """The height of the variant ``target`` pixels wide of a ``width`` x ``height`` image."""
    return max(1, round(height * target / width))


class VariantLimits(Protocol):
    """What :func:`draft_size` and :func:`make` read of :class:`~s3drop._images.ImageLimits`."""

    @property
    def thumbnail_size(self) -> int: ...
    @property
    def variant_widths(self) -> tuple[int, ...]: ...
    @property
    def variant_formats(self) -> tuple[str, ...]: ...


def draft_size(width: int, height: int, limits: VariantLimits) -> tuple[int, int]:
    """The smallest size a scaled JPEG decode of a ``width`` x ``height`` image must keep to make
    the thumbnail (within a ``thumbnail_size`` square) and every planned variant, unscaled up."""
    scale = limits.thumbnail_size / max(width, height)
    need_w, need_h = min(width, round(width * scale)), min(height, round(height * scale))
    planned = plan(width, limits.variant_widths, height) if limits.variant_formats else []
    if planned:
        need_w = max(need_w, planned[-1])
        need_h = max(need_h, variant_height(width, height, planned[-1]))
    return max(1, need_w), max(1, need_h)


def make(
    image: Image.Image, *, width: int, height: int, icc: bytes | None, limits: VariantLimits
) -> tuple[EncodedVariant, ...]:
    """The variants of ``image`` (RGB or RGBA, upright, perhaps a scaled decode of an image
    ``width`` x ``height``): every planned width in every format, narrowest first."""
    planned = plan(width, limits.variant_widths, height)
    if not planned or not limits.variant_formats:
        return ()
    types = [variant_type(name) for name in limits.variant_formats]
    made: list[EncodedVariant] = []
    source = image
    for target in reversed(planned):
        size = (target, variant_height(width, height, target))
        if source.size != size:
            # From a full-size decode (not a JPEG's, already scaled), box-reduce by the largest
            # integer factor that keeps this size, as a scaled decode would (a 12 MP HEIC's
            # variants cost 1.56x its promotion's time without, 1.01x with: bench variants); then
            # Lanczos does the rest, as for every later width.
            gap = 1.0 if source is image else 2.0
            source = source.resize(size, Image.Resampling.LANCZOS, reducing_gap=gap)
        try:
            made += [_encode(source, fmt, icc) for fmt in types]
        except (OSError, ValueError):  # an encoder's refusal costs this width, never the image
            continue
    made.sort(key=lambda variant: variant.width)  # stable: the formats keep their order
    return tuple(made)


def variant_type(name: str) -> Format:
    """The registry's entry for the variant type named ``name``; ValueError for any other name."""
    fmt = next((fmt for fmt in FORMATS.values() if fmt.name == name), None)
    if fmt is None or fmt.variant is None:
        names = ", ".join(by_type(t).name for t in VARIANT_TYPES)
        raise ValueError(f"{name!r} is not a variant type (choose from {names})")
    return fmt


def _encode(image: Image.Image, fmt: Format, icc: bytes | None) -> EncodedVariant:
    """``image`` as a variant of type ``fmt``, with the registry's variant options for it."""
    assert fmt.variant is not None
    out = io.BytesIO()
    options: dict[str, object] = {**fmt.variant.options}
    if icc:
        options["icc_profile"] = icc
    image.save(out, fmt.pillow, **options)
    return EncodedVariant(
        format=fmt.name, width=image.width, height=image.height, data=out.getvalue()
    )
