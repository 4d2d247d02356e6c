"""HEIF and HEIC (ISO/IEC 23008-12), as phones write them: magic bytes from the ``ftyp`` brands,
the largest ``ispe`` as the header's size, and the ISO BMFF walk with the caps a HEIF needs.

A phone's HEIC is a grid: a 12 MP iPhone photo is 48 tiles of 512 x 512 HEVC pictures, each an
item, with a ``grid`` item that assembles them, a thumbnail, EXIF and, often, a gain map (another
grid). libheif decodes every tile of the primary item, so beyond the pixel cap on every ``ispe``
(the header's size) the walk refuses, before any decoder runs:

- more than :data:`MAX_ITEMS` items (an iPhone's 48 MP photo has about 250);
- a grid of more than :data:`MAX_TILES` tiles, or whose tiles cover more than one row and one
  column of tiles beyond its output size (all its tiles are decoded: a 16 x 16 output over 1,000
  tiles of 4096 x 4096 would cost 16 gigapixels);
- a primary item that is not HEVC (``hvc1``) or a grid of HEVC tiles (libheif here decodes HEVC
  only);
- an HEVC picture whose coded size (its SPS, :mod:`s3drop._plugins.hevc`) is not its ``ispe``:
  libheif refuses it too (larger or smaller: "Decoded image does not have the size signaled in
  the file"), but only after decoding it.

Its ``irot``/``imir`` are applied by libheif (pillow-heif then reports an EXIF orientation of 1,
so nothing is rotated twice); an EXIF orientation inside a HEIF is ignored, as the HEIF standard
says readers must.
"""

from __future__ import annotations

import struct

from .._containers import Layout
from .._errors import CorruptImage, TooComplex
from . import avif, hevc, isobmff

#: Brands of HEVC-coded HEIF files (``image/heic``).
HEVC_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx"}
#: Brands of generic HEIF files (``image/heif``).
GENERIC_BRANDS = {b"mif1", b"msf1"}
#: Items in one file (an iPhone's 48 MP photo has about 250: 192 tiles, a gain map, EXIF).
MAX_ITEMS = 1024
#: Tiles in one grid (a 48 MP photo in 512 x 512 tiles is 192; 20,000 x 2,500 in 256 x 256 is 790).
MAX_TILES = 1024
#: The item types of a primary image libheif decodes here.
_DECODED = {b"hvc1", b"grid"}


def magic_heic(head: bytes) -> bool:
    brands = isobmff.brands(head)
    return bool(brands & HEVC_BRANDS) and not brands & avif.BRANDS


def magic_heif(head: bytes) -> bool:
    brands = isobmff.brands(head)
    return bool(brands & GENERIC_BRANDS) and not brands & (avif.BRANDS | HEVC_BRANDS)


def dimensions(head: bytes, *, name: str) -> tuple[int, int]:
    return isobmff.largest_ispe(head, name=name)


def _full(data: bytes, start: int) -> tuple[int, int, int]:
    """A full box's version, flags and the position after them."""
    return data[start], int.from_bytes(data[start + 1 : start + 4], "big"), start + 4


def _uint(data: bytes, pos: int, size: int) -> tuple[int, int]:
    if pos + size > len(data):
        raise IndexError(pos)
    return int.from_bytes(data[pos : pos + size], "big"), pos + size


class _Meta:
    """What the walk needs from the ``meta`` box: items, their properties and references."""

    def __init__(self, data: bytes, start: int, end: int, *, name: str) -> None:
        self.name = name
        self.primary = 0
        self.items: dict[int, bytes] = {}
        self.properties: list[tuple[bytes, int, int]] = []
        self.associations: dict[int, list[int]] = {}
        self.tiles: dict[int, list[int]] = {}
        for kind, inner, box_end in isobmff.boxes(
            data, start, end, need_more=False, name=self.name
        ):
            if kind == b"pitm":
                version, _flags, pos = _full(data, inner)
                self.primary, _ = _uint(data, pos, 2 if version == 0 else 4)
            elif kind == b"iinf":
                self._items(data, inner, box_end)
            elif kind == b"iref":
                self._references(data, inner, box_end)
            elif kind == b"iprp":
                self._properties(data, inner, box_end)

    def _items(self, data: bytes, start: int, end: int) -> None:
        version, _flags, pos = _full(data, start)
        count, pos = _uint(data, pos, 2 if version == 0 else 4)
        if count > MAX_ITEMS:
            raise _too_many(self.name, "items", MAX_ITEMS)
        for kind, inner, _ in isobmff.boxes(data, pos, end, need_more=False, name=self.name):
            if kind != b"infe" or data[inner] < 2:
                continue
            item, at = _uint(data, inner + 4, 2 if data[inner] == 2 else 4)
            self.items[item] = data[at + 2 : at + 6]
            if len(self.items) > MAX_ITEMS:
                raise _too_many(self.name, "items", MAX_ITEMS)

    def _references(self, data: bytes, start: int, end: int) -> None:
        version, _flags, pos = _full(data, start)
        size = 2 if version == 0 else 4
        for kind, inner, box_end in isobmff.boxes(data, pos, end, need_more=False, name=self.name):
            source, at = _uint(data, inner, size)
            count, at = _uint(data, at, 2)
            if at + count * size > box_end:
                raise CorruptImage(
                    f"the {self.name} image is corrupt: a reference list overflows its box"
                )
            if kind == b"dimg":
                targets = [_uint(data, at + i * size, size)[0] for i in range(count)]
                self.tiles.setdefault(source, []).extend(targets)

    def _properties(self, data: bytes, start: int, end: int) -> None:
        for kind, inner, box_end in isobmff.boxes(
            data, start, end, need_more=False, name=self.name
        ):
            if kind == b"ipco":
                self.properties = isobmff.boxes(
                    data, inner, box_end, need_more=False, name=self.name
                )
            elif kind == b"ipma":
                version, flags, pos = _full(data, inner)
                count, pos = _uint(data, pos, 4)
                if count > MAX_ITEMS:
                    raise _too_many(self.name, "items", MAX_ITEMS)
                for _ in range(count):
                    item, pos = _uint(data, pos, 2 if version < 1 else 4)
                    links, pos = _uint(data, pos, 1)
                    indices = []
                    for _ in range(links):
                        value, pos = _uint(data, pos, 2 if flags & 1 else 1)
                        indices.append(value & (0x7FFF if flags & 1 else 0x7F))
                    self.associations.setdefault(item, []).extend(indices)
                if pos > box_end:
                    raise CorruptImage(f"the {self.name} image is corrupt: its ipma box is cut off")

    def property(self, item: int, kind: bytes) -> tuple[int, int] | None:
        """Where the payload of ``item``'s first property of type ``kind`` starts and ends."""
        for index in self.associations.get(item, []):
            if 1 <= index <= len(self.properties) and self.properties[index - 1][0] == kind:
                return self.properties[index - 1][1:]
        return None

    def size(self, data: bytes, item: int) -> tuple[int, int]:
        found = self.property(item, b"ispe")
        if found is None:
            raise CorruptImage(f"the {self.name} image is corrupt: item {item} has no size (ispe)")
        width, height = struct.unpack(">II", data[found[0] + 4 : found[0] + 12])
        return width, height


def _too_many(name: str, parts: str, cap: int) -> TooComplex:
    return TooComplex(
        f"the {name} image has more than {cap:,} {parts}; phones write a few hundred at most, so it "
        "is refused before decoding"
    )


def walk(data: bytes, max_frames: int, *, name: str) -> Layout:
    """Check the boxes (:func:`s3drop._plugins.isobmff.walk`), the caps above and the primary
    item; the size is the primary item's ``ispe``, turned by its ``irot``. Always re-encoded (as
    the type its format is stored as), so the copy is only checked, never stored as it is."""
    stripped, top = isobmff.walk(data, name=name)
    meta = next(((start, end) for kind, start, end in top if kind == b"meta"), None)
    if meta is None:
        raise CorruptImage(f"the {name} image is corrupt: it has no metadata box")
    info = _Meta(data, meta[0] + 4, meta[1], name=name)
    kind = info.items.get(info.primary)
    if kind is None:
        raise CorruptImage(f"the {name} image is corrupt: its primary item is not listed")
    if kind not in _DECODED:
        raise CorruptImage(
            f"the {name} image's primary item is {kind.decode('latin-1')!r}; s3drop decodes HEVC "
            "images (hvc1) and grids of them"
        )
    width, height = info.size(data, info.primary)
    for grid, tiles in info.tiles.items():
        if info.items.get(grid) == b"grid":
            _check_grid(data, info, grid, tiles)
    pictures = info.tiles.get(info.primary, []) if kind == b"grid" else [info.primary]
    for item in sorted(set(pictures)):
        _check_coded_size(data, info, item)
    if (rotation := info.property(info.primary, b"irot")) is not None and data[rotation[0]] & 1:
        width, height = height, width
    return Layout(width, height, 1, 1, stripped, needs_reencode=True)


def _check_coded_size(data: bytes, info: _Meta, item: int) -> None:
    """An HEVC picture's coded size (its SPS) must be its ``ispe``, before libheif decodes it."""
    if info.items.get(item) != b"hvc1":
        raise CorruptImage(f"the {info.name} image is corrupt: item {item} is not an HEVC picture")
    found = info.property(item, b"hvcC")
    if found is None:
        raise CorruptImage(
            f"the {info.name} image is corrupt: item {item} has no HEVC configuration"
        )
    try:
        coded = hevc.coded_size(data[found[0] : found[1]])
    except (ValueError, IndexError) as exc:
        raise CorruptImage(
            f"the {info.name} image is corrupt: a malformed HEVC parameter set"
        ) from exc
    if coded is None:
        raise CorruptImage(f"the {info.name} image is corrupt: its HEVC configuration has no SPS")
    width, height = info.size(data, item)
    if coded != (width, height):
        raise CorruptImage(
            f"the {info.name} image's header says {width} x {height} pixels, but its HEVC data is "
            f"{coded[0]} x {coded[1]}"
        )


def _check_grid(data: bytes, info: _Meta, grid: int, tiles: list[int]) -> None:
    """A grid's tiles: at most :data:`MAX_TILES`, all of one size, covering its output with at
    most one row and one column of tiles to spare."""
    if not tiles:
        raise CorruptImage(f"the {info.name} image is corrupt: a grid has no tiles")
    if len(tiles) > MAX_TILES:
        raise _too_many(info.name, "tiles in a grid", MAX_TILES)
    width, height = info.size(data, grid)
    sizes = {info.size(data, tile) for tile in set(tiles)}
    if len(sizes) != 1:
        raise CorruptImage(f"the {info.name} image is corrupt: the tiles of a grid differ in size")
    [(tile_width, tile_height)] = sizes
    if len(tiles) * tile_width * tile_height > (width + tile_width) * (height + tile_height):
        raise TooComplex(
            f"the {info.name} image's grid of {width} x {height} pixels is made of {len(tiles)} tiles "
            f"of {tile_width} x {tile_height}, far more than it needs; refused before decoding"
        )
