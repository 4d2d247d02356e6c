"""What every image format's structure walk shares: the :class:`Layout` it finds, and the checks
of what may ride inside an image (ICC profiles, EXIF orientation, data after the end).

Each format's walk (:mod:`s3drop._plugins`, found through :func:`s3drop._formats.walk`) checks the
whole file without decoding a pixel: where the image ends, how many frames it has, its EXIF
orientation, and a copy without metadata made by dropping chunks, never by re-encoding (the first
bytes alone are judged earlier, by :func:`s3drop._formats.header_size`):

====== ==========================================================================================
PNG    chunks kept from an allow-list (critical, colour, transparency, APNG), each only at its
       standard size (``gAMA`` 4 bytes, ``pHYs`` 9, ...); ``tEXt``, ``zTXt``, ``iTXt``, ``eXIf``,
       ``tIME`` and private chunks dropped; every CRC checked
JPEG   ``APP1`` (EXIF, XMP), ``APP13`` (IPTC), ``COM``, ``MPF`` and every other ``APPn`` dropped;
       ``APP0`` JFIF (its 14 standard bytes, no thumbnail), ``APP2`` ICC profile and ``APP14``
       Adobe (its 12 standard bytes) kept
GIF    comments, plain text and application extensions other than looping and ICC dropped; the
       kept ones rewritten at their standard sizes
WebP   ``EXIF`` and ``XMP`` chunks dropped and their flags cleared in ``VP8X``
AVIF   no lossless strip: an AVIF with EXIF or XMP items is re-encoded by :mod:`s3drop._images`
HEIC   no lossless strip and no browser shows it: always re-encoded, as a JPEG
====== ==========================================================================================

What is kept is rewritten at its standard length, so nothing rides along in a kept segment's tail;
an ICC profile is kept only when it is sound (:func:`icc_profile`: its declared size is its size, it
has the ``acsp`` signature and a tag table that fits), with its reserved bytes and the bytes no tag
points at zeroed, and is otherwise dropped. Every walk is bounded by the caps of
:mod:`s3drop._headers` (:class:`~s3drop._errors.TooComplex`).

Data after the end of the image (a file hidden behind a picture, or an HTML page appended to make a
polyglot) is refused, except after a JPEG: there it is how phones store gain maps (Ultra HDR), motion
photos and previews (MPF), so the copy simply ends at the image's ``EOI`` and nothing behind it is
ever stored.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from ._errors import CorruptImage, TooManyFrames


@dataclass(frozen=True)
class Layout:
    """One image file, walked: its size, frames, orientation, and a copy without metadata."""

    width: int
    height: int
    frames: int
    orientation: int
    stripped: bytes
    #: True when no lossless strip exists for what the file carries (AVIF with EXIF/XMP items, HEIC).
    needs_reencode: bool = False


def check_frames(frames: int, max_frames: int) -> None:
    if frames > max_frames:
        raise TooManyFrames(
            f"the animation has more than {max_frames} frames; the limit is {max_frames}"
        )


def trailing(name: str, extra: int) -> CorruptImage:
    return CorruptImage(
        f"{extra} bytes of other data follow the end of the {name} image; a file hidden behind a "
        "picture is not accepted"
    )


#: The largest ICC profile s3drop keeps (libpng's default limit on a decompressed chunk is 8 MB).
MAX_ICC_BYTES = 4 * 1024 * 1024


# --- ICC profiles ------------------------------------------------------------------------------

#: The most tags an ICC profile may list (a v4 display profile has about 10, a printer's 40).
MAX_ICC_TAGS = 200


def icc_profile(profile: bytes) -> bytes | None:
    """``profile`` if it is a sound ICC profile, else None.

    Sound: at most :data:`MAX_ICC_BYTES`, its declared size is its size, ``acsp`` at byte 36, 1 to
    :data:`MAX_ICC_TAGS` tags whose table and data lie inside it. What is returned has the header's
    reserved bytes (100 to 127) and every byte no tag points at zeroed, so nothing can hide there
    (and then no profile ID, which would no longer match).
    """
    size = len(profile)
    if not 132 <= size <= MAX_ICC_BYTES or int.from_bytes(profile[:4], "big") != size:
        return None
    count = int.from_bytes(profile[128:132], "big")
    table_end = 132 + 12 * count
    if profile[36:40] != b"acsp" or not 1 <= count <= MAX_ICC_TAGS or table_end > size:
        return None
    clean = bytearray(size)
    clean[:100] = profile[:100]
    clean[128:table_end] = profile[128:table_end]
    for entry in range(132, table_end, 12):
        offset = int.from_bytes(profile[entry + 4 : entry + 8], "big")
        length = int.from_bytes(profile[entry + 8 : entry + 12], "big")
        if offset < table_end or offset + length > size:
            return None
        clean[offset : offset + length] = profile[offset : offset + length]
    if clean == profile:
        return profile
    clean[84:100] = bytes(16)
    return bytes(clean)


# --- EXIF -------------------------------------------------------------------------------------


def exif_orientation(tiff: bytes) -> int:
    """The Orientation tag (1 to 8) of a TIFF-structured EXIF block; 1 when absent or malformed."""
    try:
        order = {b"II": "<", b"MM": ">"}[tiff[:2]]
        (ifd,) = struct.unpack(order + "I", tiff[4:8])
        (count,) = struct.unpack(order + "H", tiff[ifd : ifd + 2])
        for index in range(count):
            entry = ifd + 2 + 12 * index
            tag, kind = struct.unpack(order + "HH", tiff[entry : entry + 4])
            if tag == 0x0112 and kind == 3:
                (value,) = struct.unpack(order + "H", tiff[entry + 8 : entry + 10])
                return value if 1 <= value <= 8 else 1
    except (KeyError, struct.error):
        pass
    return 1
