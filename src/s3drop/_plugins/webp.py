"""WebP: magic bytes, the size in the first chunk (``VP8X``, ``VP8 `` or ``VP8L``), and the chunk
walk (``EXIF`` and ``XMP`` dropped and their flags cleared in ``VP8X``; any chunk no decoder reads
dropped)."""

from __future__ import annotations

import struct

from .._containers import Layout, check_frames, icc_profile, trailing
from .._errors import CorruptImage
from .._headers import NeedMore, max_parts, too_complex


def magic(head: bytes) -> bool:
    return head[:4] == b"RIFF" and head[8:12] == b"WEBP"


def dimensions(head: bytes) -> tuple[int, int]:
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


#: The WebP chunks a decoder reads (besides EXIF and XMP, which go); any other chunk is dropped.
_WEBP_KEEP = {b"VP8X", b"ICCP", b"ANIM", b"ANMF", b"ALPH", b"VP8 ", b"VP8L"}
#: The payload size of the fixed-size ones.
_WEBP_SIZE = {b"VP8X": 10, b"ANIM": 6}


def walk(data: bytes, max_frames: int) -> Layout:
    riff_end = 8 + int.from_bytes(data[4:8], "little")
    if riff_end > len(data):
        raise CorruptImage("the WebP image is truncated: it is shorter than its RIFF header says")
    if riff_end < len(data):
        raise trailing("WebP", len(data) - riff_end)
    width, height = dimensions(data[:30])
    chunks: list[bytes | memoryview] = []
    view = memoryview(data)
    pos = 12
    frames = count = 0
    vp8x = -1
    icc = False
    cap = max_parts(len(data))
    while pos < riff_end:
        count += 1
        if count > cap:
            raise too_complex("WebP", "chunks", cap)
        kind = data[pos : pos + 4]
        size = int.from_bytes(data[pos + 4 : pos + 8], "little")
        end = pos + 8 + size + (size & 1)
        if end > riff_end:
            raise CorruptImage(f"the WebP image is truncated: its {kind!r} chunk is cut off")
        if kind == b"ANMF":
            frames += 1
            check_frames(frames, max_frames)
            if size < 16:
                raise CorruptImage("the WebP image is corrupt: an animation frame is too short")
            frame, count = _frame(data, pos + 8, pos + 8 + size, count, cap)
            chunks.append(_riff_chunk(kind, frame))
        elif kind in _WEBP_SIZE:
            if size < _WEBP_SIZE[kind]:
                raise CorruptImage(f"the WebP image is corrupt: its {kind!r} chunk is too short")
            if kind == b"VP8X":
                vp8x = len(chunks)
            payload = data[pos + 8 : pos + 8 + _WEBP_SIZE[kind]]
            chunks.append(kind + len(payload).to_bytes(4, "little") + payload)
        elif kind == b"ICCP":
            profile = data[pos + 8 : pos + 8 + size]
            clean = icc_profile(profile)
            if clean is not None:
                icc = True
                chunks.append(
                    _riff_kept(data, view, pos, size)
                    if clean is profile
                    else _riff_chunk(kind, clean)
                )
        elif kind in _WEBP_KEEP:
            chunks.append(_riff_kept(data, view, pos, size))
        pos = end
    if vp8x >= 0:
        header = bytes(chunks[vp8x])
        flags = header[8] & ~0x2C | (0x20 if icc else 0)  # EXIF, XMP gone; ICC as kept
        chunks[vp8x] = header[:8] + bytes([flags]) + header[9:]
    body = b"".join(chunks)
    header = b"RIFF" + (len(body) + 4).to_bytes(4, "little") + b"WEBP"
    # WebP's EXIF orientation is not applied by browsers: the image stays as they showed it.
    return Layout(width, height, max(frames, 1), 1, header + body)


def _frame(data: bytes, start: int, end: int, count: int, cap: int) -> tuple[bytes, int]:
    """An ``ANMF`` payload with only the image chunks it may hold (``ALPH``, ``VP8 ``, ``VP8L``),
    and the count of chunks walked so far."""
    view = memoryview(data)
    kept: list[bytes | memoryview] = [view[start : start + 16]]
    pos = start + 16
    while pos < end:
        count += 1
        if count > cap:
            raise too_complex("WebP", "chunks", cap)
        kind = data[pos : pos + 4]
        size = int.from_bytes(data[pos + 4 : pos + 8], "little")
        chunk_end = pos + 8 + size + (size & 1)
        if chunk_end > end:
            raise CorruptImage(f"the WebP image is corrupt: its {kind!r} chunk overflows its frame")
        if kind in (b"ALPH", b"VP8 ", b"VP8L"):
            kept.append(_riff_kept(data, view, pos, size))
        pos = chunk_end
    return b"".join(kept), count


def _riff_kept(data: bytes, view: memoryview, pos: int, size: int) -> bytes | memoryview:
    """A chunk kept as it is, but for a padding byte that is not zero."""
    end = pos + 8 + size
    if size & 1 and data[end]:
        return _riff_chunk(data[pos : pos + 4], data[pos + 8 : end])
    return view[pos : end + (size & 1)]


def _riff_chunk(kind: bytes, payload: bytes) -> bytes:
    return kind + len(payload).to_bytes(4, "little") + payload + b"\x00" * (len(payload) & 1)
