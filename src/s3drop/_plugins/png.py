"""PNG: magic bytes, the size in ``IHDR``, and the chunk walk (an allow-list of chunks, each at its
standard size, every CRC checked; ``tEXt``, ``zTXt``, ``iTXt``, ``eXIf``, ``tIME`` and private
chunks dropped)."""

from __future__ import annotations

import struct
import zlib

from .._containers import (
    MAX_ICC_BYTES,
    Layout,
    check_frames,
    exif_orientation,
    icc_profile,
    trailing,
)
from .._errors import CorruptImage
from .._headers import NeedMore, max_parts, too_complex


def magic(head: bytes) -> bool:
    return head.startswith(b"\x89PNG\r\n\x1a\n")


def dimensions(head: bytes) -> tuple[int, int]:
    if len(head) < 33:
        raise NeedMore
    if head[12:16] != b"IHDR":
        raise CorruptImage("the PNG image is corrupt: it does not start with its header (IHDR)")
    width, height = struct.unpack(">II", head[16:24])
    return width, height


_PNG_KEEP = {
    b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"cHRM", b"gAMA", b"iCCP", b"sBIT", b"sRGB",
    b"cICP", b"mDCV", b"mDCv", b"cLLI", b"cLLi", b"bKGD", b"pHYs", b"acTL", b"fcTL", b"fdAT",
}  # fmt: skip
#: The one size the PNG specification (3rd edition) allows for each fixed-size chunk.
_PNG_SIZE = {
    b"IEND": 0, b"acTL": 8, b"fcTL": 26, b"gAMA": 4, b"pHYs": 9, b"sRGB": 1, b"cHRM": 32,
    b"cICP": 4, b"mDCV": 24, b"mDCv": 24, b"cLLI": 8, b"cLLi": 8,
}  # fmt: skip
#: Chunks whose size depends on the colour type (IHDR's byte 9): {chunk: {colour type: size}}.
_PNG_SIZE_BY_COLOUR = {
    b"sBIT": {0: 1, 2: 3, 3: 3, 4: 2, 6: 4},
    b"bKGD": {0: 2, 2: 6, 3: 1, 4: 2, 6: 6},
    b"tRNS": {0: 2, 2: 6},  # colour type 3: one byte per palette entry, at most 256
}
#: Chunks whose wrong size makes the image (or its animation) another one: refused, not dropped.
_PNG_STRUCTURAL = {b"IEND", b"acTL", b"fcTL"}


def _chunk_fits(kind: bytes, length: int, colour: int, palette: int) -> bool:
    """Whether a kept chunk has the size the specification gives it."""
    if kind in _PNG_SIZE:
        return length == _PNG_SIZE[kind]
    if kind == b"tRNS" and colour == 3:
        return 1 <= length <= palette
    if kind in _PNG_SIZE_BY_COLOUR:
        return _PNG_SIZE_BY_COLOUR[kind].get(colour) == length
    return True


def _iccp(payload: bytes) -> bytes | None:
    """An ``iCCP`` chunk's payload when its profile is sound (:func:`icc_profile`), else None."""
    name_end = payload.find(b"\0", 0, 80)
    if name_end < 1 or payload[name_end + 1 : name_end + 2] != b"\0":  # compression method 0
        return None
    name = payload[:name_end]
    if any(byte < 32 or 126 < byte < 161 for byte in name):
        return None
    inflate = zlib.decompressobj()
    try:
        profile = inflate.decompress(payload[name_end + 2 :], MAX_ICC_BYTES + 1)
    except zlib.error:
        return None
    if not inflate.eof or inflate.unused_data or inflate.unconsumed_tail:
        return None
    clean = icc_profile(profile)
    if clean is None:
        return None
    if clean == profile:
        return payload
    return name + b"\0\0" + zlib.compress(clean)


def walk(data: bytes, max_frames: int) -> Layout:
    view = memoryview(data)
    keep: list[bytes | memoryview] = [view[:8]]
    pos = 8
    width = height = 0
    frames = 1
    fctl = 0
    orientation = 1
    chunks = 0
    colour = palette = 0
    changed = False
    cap = max_parts(len(data))
    while True:
        chunks += 1
        if chunks > cap:
            raise too_complex("PNG", "chunks", cap)
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
            colour = data[25]
        if kind == b"PLTE":
            if length % 3 or not 3 <= length <= 768:
                raise CorruptImage(f"the PNG image is corrupt: its palette is {length} bytes")
            palette = length // 3
        part: bytes | memoryview | None = view[pos:end]
        if kind not in _PNG_KEEP:
            if not kind[0] & 0x20:  # an unknown critical chunk: no decoder may ignore it
                raise CorruptImage(f"the PNG image has an unknown critical chunk {kind!r}")
            part = None
        elif not _chunk_fits(kind, length, colour, palette):
            if kind in _PNG_STRUCTURAL:
                raise CorruptImage(
                    f"the PNG image is corrupt: its {kind.decode('latin-1')!r} chunk is "
                    f"{length} bytes, not {_PNG_SIZE[kind]}"
                )
            part = None  # an ancillary chunk of another size than its own: dropped
        elif kind == b"acTL":
            frames = int.from_bytes(data[pos + 8 : pos + 12], "big")
            check_frames(frames, max_frames)
        elif kind == b"fcTL":
            fctl += 1
            check_frames(fctl, max_frames)
        elif kind == b"iCCP":
            payload = data[pos + 8 : end - 4]
            clean = _iccp(payload)
            if clean != payload:
                part = None if clean is None else _chunk(b"iCCP", clean)
        if kind == b"eXIf":
            orientation = exif_orientation(data[pos + 8 : end - 4])
        if part is not None:
            keep.append(part)
        changed = changed or part is None or isinstance(part, bytes)
        pos = end
        if kind == b"IEND":
            break
    if pos != len(data):
        raise trailing("PNG", len(data) - pos)
    # Nothing dropped or rewritten (the usual case): the bytes themselves, not a copy of them.
    stripped = b"".join(keep) if changed else data
    return Layout(width, height, frames, orientation, stripped)


def _chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload)
    return len(payload).to_bytes(4, "big") + kind + payload + crc.to_bytes(4, "big")
