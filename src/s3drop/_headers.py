"""The caps every look at an image's bytes is bounded by, and what a file that is not an image is.

A file is judged before any decoder runs, from its first few kilobytes (its format from its magic
bytes, its dimensions from its header: :mod:`s3drop._formats`), so a file that is not an image, is
another type than it was declared as, or declares more pixels than s3drop decodes (a decompression
bomb) costs almost nothing. Never from the name or the declared type.

Every read of a header and every walk over a file's structure (:mod:`s3drop._plugins`) is bounded
by the caps below and refuses a file past them with :class:`~s3drop._errors.TooComplex`, before
any decoder runs, so no file costs more to judge than a real image of its size:

- :data:`MAX_SCANS` progressive JPEG scans. Each scan makes libjpeg pass over every coefficient of
  the image again: a 7000 x 7000 JPEG whose last scan is repeated 1,000 times is 260 KB and took
  27 s of CPU to decode. libjpeg(-turbo)'s standard progression writes 6 scans for greyscale,
  10 for colour, 18 for CMYK (``2 + 4n`` for n components, ``6n`` beyond four, so at most 60
  for the 10 components libjpeg supports); mozjpeg's scan optimisation picks a subset of 64
  candidate scans (23 for greyscale); Photoshop offers 3 to 5; cameras and phones write baseline
  JPEGs (one scan). libjpeg-turbo's own tools cap this (``djpeg -maxscans``, ``TJPARAM_SCANLIMIT``,
  which its fuzzers set to 500 for images of at most 1 megapixel); ours allows 50 megapixels, so
  the cap is 100, above anything an encoder writes.
- :func:`max_parts`: segments (JPEG), chunks (PNG, WebP), boxes (AVIF, HEIF) or blocks and
  sub-blocks (GIF) per file: 4,096 plus one per KiB of file. Real files stay far below: a JPEG has tens of
  segments (a few hundred with a multi-part ICC profile and 100 scans), libpng writes one IDAT per
  8 KiB, a GIF's data sub-blocks are 255 bytes. Without the cap, 2.5 million empty comment
  segments (10 MB) took 2.6 s to walk and 800,000 empty IDAT chunks 1.6 s; with it, each is
  refused after 14,000 steps.
- :data:`MAX_BOX_DEPTH` levels of nested ISO BMFF boxes (an AVIF's deepest box, ``av1C`` in a
  sequence's sample table, is 8 levels down); the walk is a loop, never a recursion.
"""

from __future__ import annotations

import re

from ._errors import TooComplex

#: Progressive scans in a JPEG (see the module docstring for why 100).
MAX_SCANS = 100
#: Levels of boxes inside boxes in an AVIF or HEIF.
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


def describe(head: bytes) -> str:
    """What a file that is none of the registered image formats is, from its first bytes (at
    least 32 make a sure answer): "a BMP image", "an HTML document", "a text file", ..."""
    if head[4:8] == b"ftyp":
        return "a video or other media file"
    for magic, offset, name in _OTHER_IMAGES:
        if head[offset:].startswith(magic):
            return name
    for magic, name in _OTHER_FILES:
        if head.startswith(magic):
            return name
    text = head[:4096].lstrip(b"\xef\xbb\xbf\xfe\xff\x00 \t\r\n").lower()
    if b"<svg" in text:
        return "an SVG document"
    if _HTML.search(text):
        return "an HTML document"
    if text.startswith(b"<?xml"):
        return "an XML document"
    try:
        decoded = head[:4096].decode("utf-8")
    except UnicodeDecodeError:
        decoded = "\0"
    if decoded and all(ch.isprintable() or ch in "\t\r\n\f" for ch in decoded):
        return "a text file"
    return "a file of no known image format"
