"""JPEG: magic bytes, the size in the frame header (SOF), and the segment walk (``APP1`` EXIF and
XMP, ``APP13`` IPTC, ``COM``, ``MPF`` and every other ``APPn`` dropped; ``APP0`` JFIF at its 14
standard bytes without a thumbnail, ``APP2`` ICC profile and ``APP14`` Adobe at its 12 kept; at most
:data:`~s3drop._headers.MAX_SCANS` progressive scans). Data after ``EOI`` is how phones store gain
maps, motion photos and previews, so the copy ends at ``EOI`` instead of refusing it."""

from __future__ import annotations

import re
import struct

from .._containers import Layout, exif_orientation, icc_profile
from .._errors import CorruptImage, TooComplex
from .._headers import MAX_SCANS, NeedMore, max_parts, too_complex

SOF_MARKERS = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def magic(head: bytes) -> bool:
    return head.startswith(b"\xff\xd8\xff")


def dimensions(head: bytes) -> tuple[int, int]:
    pos = 2
    cap = max_parts(len(head))
    for _ in range(cap):
        marker, pos, end = segment(head, pos, need_more=True)
        if marker in SOF_MARKERS:
            height, width = struct.unpack(">HH", head[pos + 5 : pos + 9])
            return width, height
        if marker == 0xDA or marker == 0xD9:
            raise CorruptImage("the JPEG image is corrupt: it has no frame header (SOF)")
        pos = end
    raise too_complex("JPEG", "segments", cap)


_NOT_FILL = re.compile(rb"[^\xff]")


def segment(data: bytes, pos: int, *, need_more: bool = False) -> tuple[int, int, int]:
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


#: A marker after entropy-coded data: 0xFF followed by neither a stuffed zero, a restart marker nor
#: a fill byte (``end() - 2`` is then the marker's 0xFF). A pattern that starts with one literal byte
#: lets the regex engine skip ahead by memchr; ``\xff+`` would backtrack at every 0xFF (30x slower).
_SCAN_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")


def _jfif(body: bytes) -> bytes | None:
    """A JFIF ``APP0`` at its standard 16 bytes: version, units, densities, and no thumbnail."""
    if len(body) < 14:
        return None
    return b"\xff\xe0\x00\x10" + body[:12] + b"\x00\x00"


def _adobe(body: bytes) -> bytes | None:
    """An Adobe ``APP14`` at its standard 14 bytes. libjpeg reads only its colour transform (and
    ignores a shorter one); version and flags are written as libjpeg writes them."""
    if len(body) < 12:
        return None
    return b"\xff\xee\x00\x0eAdobe\x00\x64\x00\x00\x00\x00" + body[11:12]


#: An ``APP2`` holds at most this many bytes of an ICC profile (65,535 minus the length field and
#: the 14-byte ``ICC_PROFILE\0`` header with its sequence number and count).
_ICC_CHUNK = 65519


def _jpeg_icc(chunks: list[bytes]) -> bytes:
    """The ``APP2`` segments of the ICC profile split over ``chunks`` (each an ``APP2`` payload
    after ``ICC_PROFILE\0``), rewritten; nothing when they do not make one sound profile."""
    count = chunks[0][1] if chunks[0][1:2] else 0
    order = sorted(chunks, key=lambda chunk: chunk[:1])
    if not 1 <= count == len(chunks) or [c[:2] for c in order] != [
        bytes([seq, count]) for seq in range(1, count + 1)
    ]:
        return b""
    profile = icc_profile(b"".join(chunk[2:] for chunk in order))
    if profile is None:
        return b""
    parts = [profile[at : at + _ICC_CHUNK] for at in range(0, len(profile), _ICC_CHUNK)]
    if len(parts) > 255:
        return b""
    return b"".join(
        b"\xff\xe2"
        + (16 + len(part)).to_bytes(2, "big")
        + b"ICC_PROFILE\0"
        + bytes([seq, len(parts)])
        + part
        for seq, part in enumerate(parts, 1)
    )


def walk(data: bytes, max_frames: int) -> Layout:
    view = memoryview(data)
    keep: list[bytes | memoryview] = [view[:2]]
    pos = 2
    width = height = 0
    orientation = 1
    scans = segments = 0
    cap = max_parts(len(data))
    icc: list[bytes] = []
    icc_at = -1
    while True:
        segments += 1
        if segments > cap:
            raise too_complex("JPEG", "segments", cap)
        marker, pos, end = segment(data, pos)
        if marker == 0xD9:
            keep.append(view[pos:end])
            break
        if 0xE0 <= marker <= 0xEF or marker == 0xFE:
            body = data[pos + 4 : end]
            if marker == 0xE1 and body.startswith(b"Exif\x00\x00"):
                orientation = exif_orientation(body[6:])
            elif marker == 0xE0 and body.startswith(b"JFIF\x00") and (jfif := _jfif(body)):
                keep.append(jfif)
            elif marker == 0xEE and body.startswith(b"Adobe") and (adobe := _adobe(body)):
                keep.append(adobe)
            elif marker == 0xE2 and body.startswith(b"ICC_PROFILE\x00"):
                if icc_at < 0:
                    icc_at = len(keep)
                icc.append(body[12:])
        else:
            keep.append(view[pos:end])
        if marker in SOF_MARKERS:
            height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
            if height == 0:
                raise CorruptImage("the JPEG image declares its height later (DNL): not supported")
        if marker == 0xDA:
            scans += 1
            if scans > MAX_SCANS:
                raise TooComplex(
                    f"the JPEG image has more than {MAX_SCANS} progressive scans; encoders write "
                    "at most a few dozen, and each one costs a pass over the whole image, so it "
                    "is refused before decoding"
                )
            found = _SCAN_MARKER.search(data, end)
            if found is None:
                raise CorruptImage("the JPEG image is truncated: its last scan is cut off")
            next_marker = found.end() - 2
            keep.append(view[end:next_marker])
            end = next_marker
        pos = end
    if not width:
        raise CorruptImage("the JPEG image is corrupt: it has no frame header (SOF)")
    if icc:
        keep.insert(icc_at, _jpeg_icc(icc))
    return Layout(width, height, 1, orientation, b"".join(keep))
