"""The ISO base media file format (ISO/IEC 14496-12) that AVIF and HEIF images are made of: brands,
boxes, the ``ispe`` sizes, and the walk both formats share.

Every walk is bounded by the caps of :mod:`s3drop._headers`: at most :data:`MAX_BOX_DEPTH` levels of
boxes inside boxes, :func:`~s3drop._headers.max_parts` boxes in all, and a loop, never a recursion.
"""

from __future__ import annotations

import struct

from .._containers import Layout
from .._errors import CorruptImage, TooComplex
from .._headers import MAX_BOX_DEPTH, NeedMore, max_parts, too_complex

Box = tuple[bytes, int, int]
"""(type, payload start, box end)."""


def brands(head: bytes) -> set[bytes]:
    """The major and compatible brands of the ``ftyp`` box at the start of ``head`` (empty when
    there is none)."""
    if head[4:8] != b"ftyp":
        return set()
    size = int.from_bytes(head[:4], "big")
    return {head[8:12]} | {head[i : i + 4] for i in range(16, min(size, len(head)) - 3, 4)}


def boxes(data: bytes, start: int, end: int, *, need_more: bool, name: str) -> list[Box]:
    """The boxes between ``start`` and ``end`` of the ``name`` image ``data``.

    A box may run past ``end`` only when ``end`` is the end of ``data`` (a truncated file: the
    caller decides); inside another box that is corrupt.
    """
    found: list[Box] = []
    cap = max_parts(len(data))
    pos = start
    while pos < end:
        if len(found) >= cap:
            raise too_complex(name, "boxes", cap)
        if pos + 8 > len(data):
            raise NeedMore if need_more else CorruptImage(f"the {name} image is truncated")
        size, kind = struct.unpack(">I4s", data[pos : pos + 8])
        header = 8
        if size == 1:
            if pos + 16 > len(data):
                raise NeedMore if need_more else CorruptImage(f"the {name} image is truncated")
            size = int.from_bytes(data[pos + 8 : pos + 16], "big")
            header = 16
        elif size == 0:
            size = end - pos
        if size < header:
            raise CorruptImage(f"the {name} image is corrupt: box {kind!r} has a bad size")
        if pos + size > len(data) and (need_more and kind != b"mdat"):
            raise NeedMore
        if pos + size > end and end < len(data):
            raise CorruptImage(f"the {name} image is corrupt: box {kind!r} overflows its parent")
        found.append((kind, pos + header, pos + size))
        pos += size
    return found


def tree(
    data: bytes, start: int, end: int, *, descend: set[bytes] | dict[bytes, int], name: str
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
        level = boxes(data, start, end, need_more=False, name=name)
        for kind, inner, box_end in reversed(level):
            if kind in skip:
                if depth >= MAX_BOX_DEPTH:
                    raise TooComplex(
                        f"the {name} image nests its boxes more than {MAX_BOX_DEPTH} levels deep; "
                        "real images have fewer than 10, so it is refused before decoding"
                    )
                stack.append((inner + skip[kind], box_end, depth + 1))
        found.extend((kind, inner, box_end, depth) for kind, inner, box_end in level)
        if len(found) > cap:
            raise too_complex(name, "boxes", cap)
    return found


def ispe_sizes(head: bytes, *, name: str) -> list[tuple[int, int]]:
    """Every ``ispe`` (image spatial extents) in the item properties of the first ``meta`` box.

    Raises :class:`NeedMore` when ``head`` ends before the ``meta`` box does,
    :class:`CorruptImage` when there is none before the media data or it states no size.
    """
    for box, start, end in boxes(head, 0, len(head), need_more=True, name=name):
        if box == b"meta":
            found = [
                struct.unpack(">II", head[inner + 4 : inner + 12])
                for kind, inner, _end, _depth in tree(
                    head, start + 4, end, descend={b"iprp", b"ipco"}, name=name
                )
                if kind == b"ispe"
            ]
            if not found:
                raise CorruptImage(
                    f"the {name} image is corrupt: no image size (ispe) in its header"
                )
            return found
        if box == b"mdat" or box == b"moov":
            break
    raise CorruptImage(f"the {name} image is corrupt: no metadata box before its data")


def largest_ispe(head: bytes, *, name: str) -> tuple[int, int]:
    """The largest width and height of any item (conservative: a grid's tiles never exceed it)."""
    found = ispe_sizes(head, name=name)
    return max(w for w, _ in found), max(h for _, h in found)


#: Boxes the structure walk looks inside: how many bytes of their payload come first.
CONTAINERS = {
    b"meta": 4, b"iprp": 0, b"ipco": 0, b"dinf": 0, b"grpl": 0,
    b"moov": 0, b"trak": 0, b"edts": 0, b"mdia": 0, b"minf": 0, b"stbl": 0,
}  # fmt: skip
#: The top-level boxes a decoder reads; any other one is blanked.
_TOP = {b"ftyp", b"meta", b"mdat", b"moov"}


def walk(data: bytes, *, name: str) -> tuple[bytes, list[Box]]:
    """Check that every box of ``data`` is whole and nested at most so deep; a copy in which every
    top-level box no decoder reads (free, skip, anything unknown) is blanked into an empty
    ``free`` box of the same size, so every offset into the file stays right; the top-level boxes.
    """
    top = boxes(data, 0, len(data), need_more=False, name=name)
    if not top or top[0][0] != b"ftyp":
        raise CorruptImage(f"the {name} image is corrupt: it does not start with ftyp")
    if top[-1][2] > len(data):
        raise CorruptImage(f"the {name} image is truncated: its last box is cut off")
    blanked: bytearray | None = None
    box_start = 0
    for kind, start, end in top:
        if kind in CONTAINERS:  # every box inside is whole, nested at most so deep
            tree(data, start + CONTAINERS[kind], end, descend=CONTAINERS, name=name)
        elif kind not in _TOP and data.count(0, start, end) != end - start:
            if blanked is None:
                blanked = bytearray(data)
            blanked[box_start + 4 : box_start + 8] = b"free"
            blanked[start:end] = bytes(end - start)
        box_start = end
    return (data if blanked is None else bytes(blanked)), top


def item_types(data: bytes, start: int, end: int, *, name: str) -> list[bytes]:
    """The item type of every ``infe`` (version 2 or 3) in the ``iinf`` of the meta box payload
    between ``start`` and ``end``."""
    found: list[bytes] = []
    for kind, inner, box_end in boxes(data, start, end, need_more=False, name=name):
        if kind != b"iinf":
            continue
        version = data[inner]
        pos = inner + 4 + (2 if version == 0 else 4)
        for entry, entry_start, _ in boxes(data, pos, box_end, need_more=False, name=name):
            if entry == b"infe" and data[entry_start] >= 2:
                id_size = 2 if data[entry_start] == 2 else 4
                at = entry_start + 4 + id_size + 2
                found.append(data[at : at + 4])
    return found


def layout(data: bytes, *, name: str, reencode: bool | None = None) -> Layout:
    """The :class:`Layout` of an AVIF or HEIF image: the size is the largest ``ispe``; it needs a
    re-encode when ``reencode`` says so, else when the meta box lists an EXIF or XMP item (no
    lossless strip exists for those)."""
    stripped, top = walk(data, name=name)
    if reencode is None:
        reencode = any(
            item in (b"Exif", b"mime")
            for kind, start, end in top
            if kind == b"meta"
            for item in item_types(data, start + 4, end, name=name)
        )
    width, height = largest_ispe(data, name=name)
    return Layout(width, height, 1, 1, stripped, needs_reencode=reencode)
