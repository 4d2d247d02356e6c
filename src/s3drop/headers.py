"""What a file's first bytes say: its real format, from its magic bytes, and its dimensions.

Judged before any decoder runs, from the first few kilobytes alone, so a file that is not an image,
is another type than it was declared as, or declares more pixels than s3drop decodes (a
decompression bomb) costs almost nothing. Never from the name or the declared type.

Every walk over a file's structure, here and in :mod:`s3drop.containers`, is bounded by the caps
below and refuses a file past them with :class:`~s3drop.errors.TooComplex`, before any decoder
runs, so no file costs more to judge than a real image of its size:

- :data:`MAX_SCANS` progressive JPEG scans. Each scan makes libjpeg pass over every coefficient of
  the image again: a 7000 x 7000 JPEG whose last scan is repeated 1,000 times is 260 KB and took
  27 s of CPU to decode. libjpeg(-turbo)'s standard progression writes 6 scans for greyscale,
  10 for colour, 18 for CMYK (``2 + 4n`` for n components, ``6n`` beyond four, so at most 60
  for the 10 components libjpeg supports); mozjpeg's scan optimisation picks a subset of 64
  candidate scans (23 for greyscale); Photoshop offers 3 to 5; cameras and phones write baseline
  JPEGs (one scan). libjpeg-turbo's own tools cap this (``djpeg -maxscans``, ``TJPARAM_SCANLIMIT``,
  which its fuzzers set to 500 for images of at most 1 megapixel); ours allows 50 megapixels, so
  the cap is 100, above anything an encoder writes.
- :func:`max_parts`: segments (JPEG), chunks (PNG, WebP), boxes (AVIF) or blocks and sub-blocks
  (GIF) per file: 4,096 plus one per KiB of file. Real files stay far below: a JPEG has tens of
  segments (a few hundred with a multi-part ICC profile and 100 scans), libpng writes one IDAT per
  8 KiB, a GIF's data sub-blocks are 255 bytes. Without the cap, 2.5 million empty comment
  segments (10 MB) took 2.6 s to walk and 800,000 empty IDAT chunks 1.6 s; with it, each is
  refused after 14,000 steps.
- :data:`MAX_BOX_DEPTH` levels of nested AVIF boxes (an AVIF's deepest box, ``av1C`` in a
  sequence's sample table, is 8 levels down); the walk is a loop, never a recursion.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

from .errors import CorruptImage, TooComplex

#: The short format names s3drop reports, by content type.
FORMATS: dict[str, str] = {
    "image/png": "png",
    "image/jpeg": "jpeg",
    "image/webp": "webp",
    "image/gif": "gif",
    "image/avif": "avif",
}
FORMAT_NAMES = {"png": "PNG", "jpeg": "JPEG", "webp": "WebP", "gif": "GIF", "avif": "AVIF"}


#: Progressive scans in a JPEG (see the module docstring for why 100).
MAX_SCANS = 100
#: Levels of boxes inside boxes in an AVIF.
MAX_BOX_DEPTH = 16


def max_parts(size: int) -> int:
    """How many segments, chunks, boxes or blocks a file of ``size`` bytes may be made of."""
    return 4096 + size // 1024


def too_complex(name: str, parts: str, cap: int) -> TooComplex:
    return TooComplex(
        f"the {name} image is made of more than {cap:,} {parts}; real images have far fewer, so "
        "it is refused before decoding"
    )


class NeedMore(Exception):
    """The header is longer than the bytes given: read more of the file."""


@dataclass(frozen=True)
class Sniffed:
    """What a file's first bytes say it is: an image type s3drop knows, or a description."""

    content_type: str | None
    description: str


# --- sniffing ---------------------------------------------------------------------------------

_OTHER_IMAGES: list[tuple[bytes, int, str]] = [
    (b"BM", 0, "a BMP image"),
    (b"II*\x00", 0, "a TIFF image"),
    (b"MM\x00*", 0, "a TIFF image"),
    (b"\x00\x00\x01\x00", 0, "an ICO icon"),
    (b"\xff\x0a", 0, "a JPEG XL image"),
    (b"\x00\x00\x00\x0cJXL ", 0, "a JPEG XL image"),
    (b"8BPS", 0, "a Photoshop document"),
    (b"\x00\x00\x00\x0cjP  ", 0, "a JPEG 2000 image"),
]
_OTHER_FILES: list[tuple[bytes, str]] = [
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive"),
    (b"\x7fELF", "a program (ELF)"),
    (b"MZ", "a Windows program"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"Rar!", "a RAR archive"),
    (b"7z\xbc\xaf", "a 7-Zip archive"),
]
_HTML = re.compile(rb"<(!doctype\s+html|html|head|body|script|iframe|meta|title|div|a\s)", re.I)


def sniff(head: bytes) -> Sniffed:
    """The real type of a file from its first bytes (at least 32 make a sure answer)."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return Sniffed("image/png", "a PNG image")
    if head.startswith(b"\xff\xd8\xff"):
        return Sniffed("image/jpeg", "a JPEG image")
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return Sniffed("image/gif", "a GIF image")
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return Sniffed("image/webp", "a WebP image")
    if head[4:8] == b"ftyp":
        size = int.from_bytes(head[:4], "big")
        brands = {head[8:12]} | {head[i : i + 4] for i in range(16, min(size, len(head)), 4)}
        if brands & {b"avif", b"avis"}:
            return Sniffed("image/avif", "an AVIF image")
        if brands & {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"}:
            return Sniffed(None, "a HEIC image")
        return Sniffed(None, "a video or other media file")
    for magic, offset, name in _OTHER_IMAGES:
        if head[offset:].startswith(magic):
            return Sniffed(None, name)
    for magic, name in _OTHER_FILES:
        if head.startswith(magic):
            return Sniffed(None, name)
    text = head[:4096].lstrip(b"\xef\xbb\xbf\xfe\xff\x00 \t\r\n").lower()
    if b"<svg" in text:
        return Sniffed(None, "an SVG document")
    if _HTML.search(text):
        return Sniffed(None, "an HTML document")
    if text.startswith(b"<?xml"):
        return Sniffed(None, "an XML document")
    try:
        decoded = head[:4096].decode("utf-8")
    except UnicodeDecodeError:
        decoded = "\0"
    if decoded and all(ch.isprintable() or ch in "\t\r\n\f" for ch in decoded):
        return Sniffed(None, "a text file")
    return Sniffed(None, "a file of no known image format")


# --- dimensions from the header -----------------------------------------------------------------


def header_size(head: bytes, content_type: str) -> tuple[int, int]:
    """Width and height from the first bytes of a file of ``content_type`` (already sniffed).

    For AVIF, the largest ``ispe`` of any item (conservative: a grid's tiles never exceed it).
    Raises :class:`NeedMore` when ``head`` ends before the header does, :class:`CorruptImage` when
    the header is malformed.
    """
    fmt = FORMATS[content_type]
    try:
        if fmt == "png":
            return _png_size(head)
        if fmt == "jpeg":
            return _jpeg_size(head)
        if fmt == "gif":
            return _gif_size(head)
        if fmt == "webp":
            return webp_size(head)
        return avif_size(head)
    except (struct.error, IndexError):
        raise NeedMore from None


def _png_size(head: bytes) -> tuple[int, int]:
    if len(head) < 33:
        raise NeedMore
    if head[12:16] != b"IHDR":
        raise CorruptImage("the PNG image is corrupt: it does not start with its header (IHDR)")
    width, height = struct.unpack(">II", head[16:24])
    return width, height


SOF_MARKERS = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _jpeg_size(head: bytes) -> tuple[int, int]:
    pos = 2
    cap = max_parts(len(head))
    for _ in range(cap):
        marker, pos, end = jpeg_segment(head, pos, need_more=True)
        if marker in SOF_MARKERS:
            height, width = struct.unpack(">HH", head[pos + 5 : pos + 9])
            return width, height
        if marker == 0xDA or marker == 0xD9:
            raise CorruptImage("the JPEG image is corrupt: it has no frame header (SOF)")
        pos = end
    raise too_complex("JPEG", "segments", cap)


def _gif_size(head: bytes) -> tuple[int, int]:
    if len(head) < 10:
        raise NeedMore
    width, height = struct.unpack("<HH", head[6:10])
    return width, height


def webp_size(head: bytes) -> tuple[int, int]:
    if len(head) < 30:
        raise NeedMore
    fourcc, payload = head[12:16], head[20:30]
    if fourcc == b"VP8X":
        width = int.from_bytes(payload[4:7], "little") + 1
        height = int.from_bytes(payload[7:10], "little") + 1
        return width, height
    if fourcc == b"VP8 ":
        if payload[3:6] != b"\x9d\x01\x2a":
            raise CorruptImage("the WebP image is corrupt: bad VP8 frame header")
        width, height = struct.unpack("<HH", payload[6:10])
        return width & 0x3FFF, height & 0x3FFF
    if fourcc == b"VP8L":
        if payload[0] != 0x2F:
            raise CorruptImage("the WebP image is corrupt: bad VP8L signature")
        bits = int.from_bytes(payload[1:5], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    raise CorruptImage(f"the WebP image is corrupt: unknown first chunk {fourcc!r}")


def avif_size(head: bytes) -> tuple[int, int]:
    found: list[tuple[int, int]] = []
    for box, start, end in iso_boxes(head, 0, len(head), need_more=True):
        if box == b"meta":
            _find_ispe(head, start + 4, end, found)
            if not found:
                raise CorruptImage("the AVIF image is corrupt: no image size (ispe) in its header")
            return max(w for w, _ in found), max(h for _, h in found)
        if box == b"mdat" or box == b"moov":
            break
    raise CorruptImage("the AVIF image is corrupt: no metadata box before its data")


def _find_ispe(data: bytes, start: int, end: int, found: list[tuple[int, int]]) -> None:
    """Every ``ispe`` in the item properties of the meta box between ``start`` and ``end``."""
    for box, inner, _end, _depth in iso_tree(data, start, end, descend={b"iprp", b"ipco"}):
        if box == b"ispe":
            width, height = struct.unpack(">II", data[inner + 4 : inner + 12])
            found.append((width, height))


def iso_tree(
    data: bytes, start: int, end: int, *, descend: set[bytes] | dict[bytes, int]
) -> list[tuple[bytes, int, int, int]]:
    """The boxes between ``start`` and ``end`` and those inside the boxes whose type is in
    ``descend`` (a dict gives how many bytes of their payload come before their children):
    (type, payload start, box end, depth). A loop, not a recursion: at most
    :data:`MAX_BOX_DEPTH` levels and :func:`max_parts` boxes in all, or :class:`TooComplex`."""
    skip = descend if isinstance(descend, dict) else dict.fromkeys(descend, 0)
    cap = max_parts(len(data))
    found: list[tuple[bytes, int, int, int]] = []
    stack = [(start, end, 1)]
    while stack:
        start, end, depth = stack.pop()
        boxes = iso_boxes(data, start, end, need_more=False)
        for kind, inner, box_end in reversed(boxes):
            if kind in skip:
                if depth >= MAX_BOX_DEPTH:
                    raise TooComplex(
                        f"the AVIF image nests its boxes more than {MAX_BOX_DEPTH} levels deep; "
                        "real images have fewer than 10, so it is refused before decoding"
                    )
                stack.append((inner + skip[kind], box_end, depth + 1))
        found.extend((kind, inner, box_end, depth) for kind, inner, box_end in boxes)
        if len(found) > cap:
            raise too_complex("AVIF", "boxes", cap)
    return found


def iso_boxes(
    data: bytes, start: int, end: int, *, need_more: bool
) -> list[tuple[bytes, int, int]]:
    """ISO BMFF boxes between ``start`` and ``end``: (type, payload start, box end).

    A box may run past ``end`` only when ``end`` is the end of ``data`` (a truncated file: the
    caller decides); inside another box that is corrupt.
    """
    boxes: list[tuple[bytes, int, int]] = []
    cap = max_parts(len(data))
    pos = start
    while pos < end:
        if len(boxes) >= cap:
            raise too_complex("AVIF", "boxes", cap)
        if pos + 8 > len(data):
            raise NeedMore if need_more else CorruptImage("the AVIF image is truncated")
        size, kind = struct.unpack(">I4s", data[pos : pos + 8])
        header = 8
        if size == 1:
            if pos + 16 > len(data):
                raise NeedMore if need_more else CorruptImage("the AVIF image is truncated")
            size = int.from_bytes(data[pos + 8 : pos + 16], "big")
            header = 16
        elif size == 0:
            size = end - pos
        if size < header:
            raise CorruptImage(f"the AVIF image is corrupt: box {kind!r} has a bad size")
        if pos + size > len(data) and (need_more and kind != b"mdat"):
            raise NeedMore
        if pos + size > end and end < len(data):
            raise CorruptImage(f"the AVIF image is corrupt: box {kind!r} overflows its parent")
        boxes.append((kind, pos + header, pos + size))
        pos += size
    return boxes


_NOT_FILL = re.compile(rb"[^\xff]")


def jpeg_segment(data: bytes, pos: int, *, need_more: bool = False) -> tuple[int, int, int]:
    """The marker at ``pos``: (marker, its position, the end of its segment)."""
    if data[pos : pos + 2] == b"\xff\xff":  # fill bytes: found in C, not byte by byte
        found = _NOT_FILL.search(data, pos + 1)
        pos = found.start() - 1 if found else len(data) - 1
    if pos + 2 > len(data):
        if need_more:
            raise NeedMore
        raise CorruptImage("the JPEG image is truncated: it ends before its end marker (EOI)")
    if data[pos] != 0xFF:
        raise CorruptImage(f"the JPEG image is corrupt: no marker at byte {pos}")
    marker = data[pos + 1]
    if marker == 0xD9 or 0xD0 <= marker <= 0xD7 or marker == 0x01:
        return marker, pos, pos + 2
    if pos + 4 > len(data):
        if need_more:
            raise NeedMore
        raise CorruptImage("the JPEG image is truncated: a segment is cut off")
    end = pos + 2 + int.from_bytes(data[pos + 2 : pos + 4], "big")
    if end > len(data):
        if need_more:
            raise NeedMore
        raise CorruptImage("the JPEG image is truncated: a segment is cut off")
    return marker, pos, end
