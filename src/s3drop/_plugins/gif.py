"""GIF: magic bytes, the logical screen size, and the block walk (comments, plain text and
application extensions other than looping and ICC dropped; the kept ones rewritten at their
standard sizes; every data sub-block counted)."""

from __future__ import annotations

import struct

from .._containers import Layout, check_frames, icc_profile, trailing
from .._errors import CorruptImage
from .._headers import NeedMore, max_parts, too_complex


def magic(head: bytes) -> bool:
    return head[:6] in (b"GIF87a", b"GIF89a")


def dimensions(head: bytes) -> tuple[int, int]:
    if len(head) < 10:
        raise NeedMore
    width, height = struct.unpack("<HH", head[6:10])
    return width, height


_LOOPING = {b"NETSCAPE2.0", b"ANIMEXTS1.0"}


class _Blocks:
    """A GIF's data sub-blocks, counted against :func:`max_parts` (each costs a Python step; a real
    encoder fills them to 255 bytes, a flood of 1-byte ones would take seconds)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.steps = 0
        self.cap = max_parts(len(data)) + len(data) // 128

    def sub_blocks(self, pos: int) -> int:
        """The end of the data sub-blocks starting at ``pos``."""
        data = self.data
        while True:
            self.steps += 1
            if self.steps > self.cap:
                raise too_complex("GIF", "blocks", self.cap)
            size = data[pos]
            pos += 1 + size
            if size == 0:
                if pos > len(data):
                    raise IndexError
                return pos

    def payload(self, pos: int, end: int) -> bytes:
        """The data of the sub-blocks from ``pos`` to ``end`` (their terminator), joined."""
        parts = []
        while pos < end - 1:
            size = self.data[pos]
            parts.append(self.data[pos + 1 : pos + 1 + size])
            pos += 1 + size
        return b"".join(parts)


def _extension(walk: _Blocks, pos: int, end: int) -> bytes | None:
    """A kept extension at its standard size, or None: graphic control (delay, disposal,
    transparency), looping, ICC profile (sound ones only)."""
    data = walk.data
    label = data[pos + 1]
    if label == 0xF9:
        return bytes(data[pos : pos + 7]) + b"\x00" if data[pos + 2] == 4 else None
    if label != 0xFF or data[pos + 2] != 11:
        return None
    app = bytes(data[pos + 3 : pos + 14])
    payload = walk.payload(pos + 14, end)
    if app in _LOOPING and len(payload) >= 3 and payload[0] == 1:
        return b"\x21\xff\x0b" + app + b"\x03" + payload[:3] + b"\x00"
    if app == b"ICCRGBG1012" and (profile := icc_profile(payload)) is not None:
        blocks = [profile[at : at + 255] for at in range(0, len(profile), 255)]
        return b"\x21\xff\x0b" + app + b"".join(bytes([len(b)]) + b for b in blocks) + b"\x00"
    return None


def walk(data: bytes, max_frames: int) -> Layout:
    view = memoryview(data)
    width, height, flags = struct.unpack("<HHB", data[6:11])
    pos = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
    keep: list[bytes | memoryview] = [view[:pos]]
    frames = 0
    walk = _Blocks(data)
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
            check_frames(frames, max_frames)
            left, top, w, h, local = struct.unpack("<HHHHB", data[pos + 1 : pos + 10])
            width, height = max(width, left + w), max(height, top + h)
            end = pos + 10 + (3 << ((local & 7) + 1) if local & 0x80 else 0)
            end = walk.sub_blocks(end + 1)  # after the LZW minimum code size
            keep.append(view[pos:end])
        elif block == 0x21:
            end = walk.sub_blocks(pos + 2)
            extension = _extension(walk, pos, end)
            if extension is not None:
                keep.append(extension)
        else:
            raise CorruptImage(f"the GIF image is corrupt: unknown block 0x{block:02x}")
        pos = end
    if frames == 0:
        raise CorruptImage("the GIF image has no frames")
    if pos != len(data):
        raise trailing("GIF", len(data) - pos)
    return Layout(width, height, frames, 1, b"".join(keep))
