"""The HEIF plugin and the HEIC -> JPEG conversion, on the bytes alone: upright in every EXIF
orientation (applied once, by libheif's irot/imir), no metadata, the caps of a HEIF's structure."""

from __future__ import annotations

import io
import struct
from typing import Any

import pytest
from PIL import Image
from tests import samples

from s3drop import _formats as formats
from s3drop import _images as images
from s3drop._errors import CorruptImage, TooComplex, TooManyPixels, TypeMismatch
from s3drop._plugins import heif, hevc

LIMITS = images.ImageLimits()
ALLOWED = list(formats.FORMATS)


def judge(data: bytes, declared: str) -> images.ProcessedImage:
    found = images.check_header(data, declared=declared, allowed=ALLOWED, limits=LIMITS, whole=True)
    assert found is not None
    return images.process(data, found, LIMITS)


@pytest.mark.parametrize("orientation", range(2, 9))
def test_a_turned_heic_is_stored_upright_turned_once(orientation: int) -> None:
    processed = judge(samples.oriented_heic(orientation), "image/heic")
    assert (processed.content_type, processed.format) == ("image/jpeg", "jpeg")
    assert (processed.width, processed.height) == (64, 48)
    picture = Image.open(io.BytesIO(processed.data))
    assert picture.format == "JPEG"
    assert not picture.getexif()
    corner, opposite = picture.getpixel((3, 3)), picture.getpixel((60, 44))
    assert max(abs(a - b) for a, b in zip(corner, samples.MARK, strict=True)) < 24, corner
    assert max(abs(a - b) for a, b in zip(opposite, (255, 0, 0), strict=True)) < 24, opposite


def test_a_heic_is_sniffed_by_its_brands_and_a_generic_heif_apart_from_it() -> None:
    assert formats.sniff(samples.heic()).content_type == "image/heic"
    generic = bytearray(samples.heic())
    generic[8:12] = b"mif1"
    generic[16:28] = b"mif1miafmiaf"  # no HEVC brand left
    assert formats.sniff(bytes(generic)).content_type == "image/heif"
    assert judge(bytes(generic), "image/heif").content_type == "image/jpeg"
    assert formats.sniff(samples.encode(samples.photo(), "AVIF")).content_type == "image/avif"


def test_the_header_size_is_the_largest_ispe() -> None:
    assert formats.header_size(samples.heic_with_ispe(30000, 30000), "image/heic") == (30000, 30000)
    with pytest.raises(TooManyPixels):
        judge(samples.heic_with_ispe(30000, 30000), "image/heic")


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("truncated HEIC", CorruptImage),
        ("HEIC with a wrong ispe", CorruptImage),  # before decoding: its HEVC data is 64 x 64
        ("HEIC with a huge ispe (decompression bomb)", TooManyPixels),
        ("HEIC of too many items", TooComplex),
        ("HEIC with HTML appended", CorruptImage),
        ("HEIC declared image/jpeg", TypeMismatch),
    ],
)
def test_a_hostile_heic_is_refused(name: str, error: type[Exception]) -> None:
    data, declared = samples.hostile_heic_files()[name]
    with pytest.raises(error):
        judge(data, declared)


def test_a_primary_item_that_is_not_hevc_is_refused() -> None:
    data = bytearray(samples.heic())
    at = data.index(b"hvc1", data.index(b"iinf"))
    data[at : at + 4] = b"av01"
    with pytest.raises(CorruptImage, match="'av01'"):
        heif.walk(bytes(data), 1, name="HEIC")


@pytest.mark.parametrize("size", [(130, 66), (320, 240), (333, 257)])
def test_the_coded_size_is_read_from_the_sps(size: tuple[int, int]) -> None:
    data = samples.heic(2, size)
    at = data.index(b"hvcC")
    box_end = at - 4 + int.from_bytes(data[at - 4 : at], "big")
    coded = hevc.coded_size(data[at + 4 : box_end])
    # x265 codes an odd side one pixel larger and crops it with a clean aperture (clap).
    assert coded == formats.header_size(data, "image/heic")
    assert coded == (size[0] + size[0] % 2, size[1] + size[1] % 2)


def test_an_ispe_that_is_not_the_coded_size_is_refused_before_decoding(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_decoder(*args: object, **kwargs: object) -> None:
        raise AssertionError("decoded")

    monkeypatch.setattr(Image, "open", no_decoder)
    for width, height in [(32, 24), (128, 128)]:
        with pytest.raises(CorruptImage, match="its HEVC data is 64 x 64"):
            judge(samples.heic_with_ispe(width, height), "image/heic")


def _ispe(width: int, height: int) -> bytes:
    return samples.iso_box(b"ispe", bytes(4) + struct.pack(">II", width, height))


def _grid_meta(tiles: int, tile: tuple[int, int], output: tuple[int, int]) -> tuple[bytes, Any]:
    """A parsed meta of a grid item 1 of ``output`` size over ``tiles`` items of ``tile`` size."""
    data = _ispe(*output) + _ispe(*tile)
    meta = object.__new__(heif._Meta)
    meta.name = "HEIC"
    meta.items = {1: b"grid", **dict.fromkeys(range(2, tiles + 2), b"hvc1")}
    meta.properties = [(b"ispe", 8, 20), (b"ispe", 28, 40)]
    meta.associations = {1: [1], **{n: [2] for n in range(2, tiles + 2)}}
    meta.tiles = {1: list(range(2, tiles + 2))}
    return data, meta


@pytest.mark.parametrize(
    ("tiles", "tile", "output", "refused"),
    [
        (48, (512, 512), (4032, 3024), None),  # a 12 MP iPhone photo: 8 x 6 tiles
        (192, (512, 512), (8064, 6048), None),  # 48 MP: 16 x 12
        (1000, (4096, 4096), (16, 16), "far more than it needs"),  # 16 gigapixels to decode
        (heif.MAX_TILES + 1, (16, 16), (528, 528), "more than 1,024 tiles"),
    ],
)
def test_a_grid_is_refused_past_its_caps(
    tiles: int, tile: tuple[int, int], output: tuple[int, int], refused: str | None
) -> None:
    data, meta = _grid_meta(tiles, tile, output)
    if refused is None:
        heif._check_grid(data, meta, 1, meta.tiles[1])
        return
    with pytest.raises(TooComplex, match=refused):
        heif._check_grid(data, meta, 1, meta.tiles[1])


def test_a_heic_uploaded_as_heif_and_a_heif_uploaded_as_heic_are_one_family() -> None:
    generic = bytearray(samples.heic(4))
    generic[8:12] = b"mif1"
    generic[16:28] = b"mif1miafmiaf"  # no HEVC brand: sniffed as image/heif
    assert judge(samples.heic(4), "image/heif").content_type == "image/jpeg"
    assert judge(bytes(generic), "image/heic").content_type == "image/jpeg"
    with pytest.raises(TypeMismatch, match="a HEIC image, but it was uploaded as image/avif"):
        judge(samples.heic(4), "image/avif")
