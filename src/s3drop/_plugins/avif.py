"""AVIF: an ``ftyp`` with the ``avif`` or ``avis`` brand (major or compatible), the largest
``ispe`` as its size, and the shared ISO BMFF walk. No lossless strip exists: an AVIF with EXIF or
XMP items is re-encoded by :mod:`s3drop._images`; the AV1 frame size is checked against ``ispe``
by :mod:`s3drop._av1` before decoding."""

from __future__ import annotations

import struct

from .. import _av1 as av1
from .._containers import Layout
from .._errors import CorruptImage
from . import isobmff

BRANDS = {b"avif", b"avis"}


def magic(head: bytes) -> bool:
    return bool(isobmff.brands(head) & BRANDS)


def dimensions(head: bytes) -> tuple[int, int]:
    return isobmff.largest_ispe(head, name="AVIF")


def walk(data: bytes, max_frames: int) -> Layout:
    return isobmff.layout(data, name="AVIF")


def check_coded(layout: Layout) -> None:
    """An AVIF's AV1 frames must not be larger than its ``ispe`` says (libavif would decode the
    larger frame and crop it, silently)."""
    try:
        sizes = av1.coded_sizes(layout.stripped)
    except (ValueError, IndexError, struct.error) as exc:
        raise CorruptImage("the AVIF image is corrupt: a malformed AV1 sequence header") from exc
    for width, height in sizes:
        if width > layout.width or height > layout.height:
            raise CorruptImage(
                f"the AVIF image's header says {layout.width} x {layout.height} pixels, but its "
                f"AV1 data is {width} x {height}"
            )
