"""The byte structure of each image format, walked whole without decoding a pixel.

:func:`walk` finds where the image ends, how many frames it has and its EXIF orientation, and makes
a copy without metadata by dropping chunks, never by re-encoding (the first bytes alone are judged
earlier, by :mod:`s3drop.headers`):

====== ==========================================================================================
PNG    chunks kept from an allow-list (critical, colour, transparency, APNG); ``tEXt``, ``zTXt``,
       ``iTXt``, ``eXIf``, ``tIME`` and private chunks dropped; every CRC checked
JPEG   ``APP1`` (EXIF, XMP), ``APP13`` (IPTC), ``COM``, ``MPF`` and every other ``APPn`` dropped;
       ``APP0`` JFIF (without its thumbnail), ``APP2`` ICC profile and ``APP14`` Adobe kept
GIF    comments, plain text and application extensions other than looping and ICC dropped
WebP   ``EXIF`` and ``XMP`` chunks dropped and their flags cleared in ``VP8X``
AVIF   no lossless strip: an AVIF with EXIF or XMP items is re-encoded by :mod:`s3drop.images`
====== ==========================================================================================

Data after the end of the image (a file hidden behind a picture, or an HTML page appended to make a
polyglot) is refused, except after a JPEG: there it is how phones store gain maps (Ultra HDR), motion
photos and previews (MPF), so the copy simply ends at the image's ``EOI`` and nothing behind it is
ever stored.
"""

from __future__ import annotations

import re
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass

from .errors import CorruptImage, TooManyFrames
from .headers import (
    FORMAT_NAMES,
    FORMATS,
    SOF_MARKERS,
    avif_size,
    iso_boxes,
    jpeg_segment,
    webp_size,
)


@dataclass(frozen=True)
class Layout:
    """One image file, walked: its size, frames, orientation, and a copy without metadata."""

    width: int
    height: int
    frames: int
    orientation: int
    stripped: bytes
    #: True when no lossless strip exists for what the file carries (AVIF with EXIF/XMP items).
    needs_reencode: bool = False


# --- walking the whole file -------------------------------------------------------------------


def walk(data: bytes, content_type: str, *, max_frames: int) -> Layout:
    """Check the whole structure of ``data`` and copy it without metadata.

    Raises :class:`CorruptImage` (truncated, malformed, data after the end of the image) or
    :class:`TooManyFrames`; the frame count is bounded, so a file of a million frames costs no more
    than one of ``max_frames + 1``.
    """
    walker: Callable[[bytes, int], Layout] = _WALKERS[FORMATS[content_type]]
    try:
        return walker(data, max_frames)
    except (struct.error, IndexError) as exc:
        name = FORMAT_NAMES[FORMATS[content_type]]
        raise CorruptImage(f"the {name} image is truncated or malformed") from exc


def _check_frames(frames: int, max_frames: int) -> None:
    if frames > max_frames:
        raise TooManyFrames(
            f"the animation has more than {max_frames} frames; the limit is {max_frames}"
        )


def _trailing(name: str, extra: int) -> CorruptImage:
    return CorruptImage(
        f"{extra} bytes of other data follow the end of the {name} image; a file hidden behind a "
        "picture is not accepted"
    )


# PNG

_PNG_KEEP = {
    b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"cHRM", b"gAMA", b"iCCP", b"sBIT", b"sRGB",
    b"cICP", b"mDCV", b"mDCv", b"cLLI", b"cLLi", b"bKGD", b"pHYs", b"acTL", b"fcTL", b"fdAT",
}  # fmt: skip


def _walk_png(data: bytes, max_frames: int) -> Layout:
    view = memoryview(data)
    keep: list[memoryview] = [view[:8]]
    pos = 8
    width = height = 0
    frames = 1
    fctl = 0
    orientation = 1
    chunks = 0
    while True:
        chunks += 1
        if pos + 12 > len(data):
            raise CorruptImage("the PNG image is truncated: it ends before its end chunk (IEND)")
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        end = pos + 12 + length
        if end > len(data):
            raise CorruptImage(
                f"the PNG image is truncated: its {kind.decode('latin-1')!r} chunk is cut off"
            )
        crc = int.from_bytes(data[end - 4 : end], "big")
        if zlib.crc32(view[pos + 4 : end - 4]) != crc:
            raise CorruptImage(
                f"the PNG image is corrupt: the checksum of its {kind.decode('latin-1')!r} chunk "
                "is wrong"
            )
        if pos == 8:
            if kind != b"IHDR" or length != 13:
                raise CorruptImage("the PNG image is corrupt: it does not start with IHDR")
            width, height = struct.unpack(">II", data[16:24])
        if kind == b"acTL":
            frames = int.from_bytes(data[pos + 8 : pos + 12], "big")
            _check_frames(frames, max_frames)
        elif kind == b"fcTL":
            fctl += 1
            _check_frames(fctl, max_frames)
        elif kind == b"eXIf":
            orientation = exif_orientation(data[pos + 8 : end - 4])
        if kind in _PNG_KEEP:
            keep.append(view[pos:end])
        elif not kind[0] & 0x20:  # an unknown critical chunk: no decoder may ignore it
            raise CorruptImage(f"the PNG image has an unknown critical chunk {kind!r}")
        pos = end
        if kind == b"IEND":
            break
    if pos != len(data):
        raise _trailing("PNG", len(data) - pos)
    # Nothing to drop (the usual case): the bytes themselves, not a copy as large as the file.
    stripped = data if len(keep) == 1 + chunks else b"".join(keep)
    return Layout(width, height, frames, orientation, stripped)


# JPEG

#: A marker after entropy-coded data: 0xFF followed by neither a stuffed zero, a restart marker nor
#: a fill byte (``end() - 2`` is then the marker's 0xFF). A pattern that starts with one literal byte
#: lets the regex engine skip ahead by memchr; ``\xff+`` would backtrack at every 0xFF (30x slower).
_SCAN_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")


def _keepjpeg_segment(marker: int, segment: bytes) -> bytes | None:
    """The segment to store for an APPn or COM marker (None: drop it); others are kept whole."""
    body = segment[4:]
    if marker == 0xE0 and body.startswith(b"JFIF\x00") and len(body) >= 14:
        if body[12] or body[13]:  # an embedded thumbnail: keep JFIF, drop the thumbnail
            return b"\xff\xe0\x00\x10" + body[:12] + b"\x00\x00"
        return segment
    if marker == 0xE2 and body.startswith(b"ICC_PROFILE\x00"):
        return segment
    if marker == 0xEE and body.startswith(b"Adobe"):
        return segment
    return None


def _walk_jpeg(data: bytes, max_frames: int) -> Layout:
    view = memoryview(data)
    keep: list[bytes | memoryview] = [view[:2]]
    pos = 2
    width = height = 0
    orientation = 1
    while True:
        marker, pos, end = jpeg_segment(data, pos)
        if marker == 0xD9:
            keep.append(view[pos:end])
            break
        if 0xE0 <= marker <= 0xEF or marker == 0xFE:
            if marker == 0xE1 and data[pos + 4 : pos + 10] == b"Exif\x00\x00":
                orientation = exif_orientation(data[pos + 10 : end])
            segment = _keepjpeg_segment(marker, data[pos:end])
            if segment is not None:
                keep.append(segment)
        else:
            keep.append(view[pos:end])
        if marker in SOF_MARKERS:
            height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
            if height == 0:
                raise CorruptImage("the JPEG image declares its height later (DNL): not supported")
        if marker == 0xDA:
            found = _SCAN_MARKER.search(data, end)
            if found is None:
                raise CorruptImage("the JPEG image is truncated: its last scan is cut off")
            next_marker = found.end() - 2
            keep.append(view[end:next_marker])
            end = next_marker
        pos = end
    if not width:
        raise CorruptImage("the JPEG image is corrupt: it has no frame header (SOF)")
    return Layout(width, height, 1, orientation, b"".join(keep))


# GIF

_GIF_APPS = {b"NETSCAPE2.0", b"ANIMEXTS1.0", b"ICCRGBG1012"}


def _gif_sub_blocks(data: bytes, pos: int) -> int:
    """The end of the data sub-blocks starting at ``pos``."""
    while True:
        size = data[pos]
        pos += 1 + size
        if size == 0:
            if pos > len(data):
                raise IndexError
            return pos


def _walk_gif(data: bytes, max_frames: int) -> Layout:
    view = memoryview(data)
    width, height, flags = struct.unpack("<HHB", data[6:11])
    pos = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
    keep: list[memoryview] = [view[:pos]]
    frames = 0
    while True:
        if pos >= len(data):
            raise CorruptImage("the GIF image is truncated: it ends before its trailer")
        block = data[pos]
        if block == 0x3B:
            keep.append(view[pos : pos + 1])
            pos += 1
            break
        if block == 0x2C:
            frames += 1
            _check_frames(frames, max_frames)
            left, top, w, h, local = struct.unpack("<HHHHB", data[pos + 1 : pos + 10])
            width, height = max(width, left + w), max(height, top + h)
            end = pos + 10 + (3 << ((local & 7) + 1) if local & 0x80 else 0)
            end = _gif_sub_blocks(data, end + 1)  # after the LZW minimum code size
            keep.append(view[pos:end])
        elif block == 0x21:
            label = data[pos + 1]
            end = _gif_sub_blocks(data, pos + 2)
            if label == 0xF9 or (label == 0xFF and bytes(data[pos + 3 : pos + 14]) in _GIF_APPS):
                keep.append(view[pos:end])
        else:
            raise CorruptImage(f"the GIF image is corrupt: unknown block 0x{block:02x}")
        pos = end
    if frames == 0:
        raise CorruptImage("the GIF image has no frames")
    if pos != len(data):
        raise _trailing("GIF", len(data) - pos)
    return Layout(width, height, frames, 1, b"".join(keep))


# WebP


def _walk_webp(data: bytes, max_frames: int) -> Layout:
    riff_end = 8 + int.from_bytes(data[4:8], "little")
    if riff_end > len(data):
        raise CorruptImage("the WebP image is truncated: it is shorter than its RIFF header says")
    if riff_end < len(data):
        raise _trailing("WebP", len(data) - riff_end)
    width, height = webp_size(data[:30])
    chunks: list[bytes | memoryview] = []
    view = memoryview(data)
    pos = 12
    frames = 0
    while pos < riff_end:
        kind = data[pos : pos + 4]
        end = pos + 8 + int.from_bytes(data[pos + 4 : pos + 8], "little")
        end += end & 1
        if end > riff_end:
            raise CorruptImage(f"the WebP image is truncated: its {kind!r} chunk is cut off")
        if kind == b"ANMF":
            frames += 1
            _check_frames(frames, max_frames)
        if kind == b"VP8X":
            flags = data[pos + 8] & ~0x0C  # no EXIF, no XMP
            chunks.append(bytes(view[pos : pos + 8]) + bytes([flags]) + view[pos + 9 : end])
        elif kind not in (b"EXIF", b"XMP "):
            chunks.append(view[pos:end])
        pos = end
    body = b"".join(chunks)
    header = b"RIFF" + (len(body) + 4).to_bytes(4, "little") + b"WEBP"
    # WebP's EXIF orientation is not applied by browsers: the image stays as they showed it.
    return Layout(width, height, max(frames, 1), 1, header + body)


# AVIF


def _walk_avif(data: bytes, max_frames: int) -> Layout:
    boxes = iso_boxes(data, 0, len(data), need_more=False)
    if not boxes or boxes[0][0] != b"ftyp":
        raise CorruptImage("the AVIF image is corrupt: it does not start with ftyp")
    if boxes[-1][2] > len(data):
        raise CorruptImage("the AVIF image is truncated: its last box is cut off")
    metadata = False
    for kind, start, end in boxes:
        if kind == b"meta":
            metadata = _avif_has_metadata(data, start + 4, end)
    width, height = avif_size(data)
    return Layout(width, height, 1, 1, data, needs_reencode=metadata)


def _avif_has_metadata(data: bytes, start: int, end: int) -> bool:
    """Whether the meta box lists an EXIF or XMP item."""
    for kind, inner, box_end in iso_boxes(data, start, end, need_more=False):
        if kind != b"iinf":
            continue
        version = data[inner]
        pos = inner + 4 + (2 if version == 0 else 4)
        for entry, entry_start, _ in iso_boxes(data, pos, box_end, need_more=False):
            if entry == b"infe" and data[entry_start] >= 2:
                id_size = 2 if data[entry_start] == 2 else 4
                item_type = data[entry_start + 4 + id_size + 2 : entry_start + 8 + id_size + 2]
                if item_type in (b"Exif", b"mime"):
                    return True
    return False


_WALKERS: dict[str, Callable[[bytes, int], Layout]] = {
    "png": _walk_png,
    "jpeg": _walk_jpeg,
    "gif": _walk_gif,
    "webp": _walk_webp,
    "avif": _walk_avif,
}


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
