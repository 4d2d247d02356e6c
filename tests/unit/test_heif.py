"""The HEIF plugin and the HEIC -> JPEG conversion, on the bytes alone: upright in every EXIF
orientation (applied once, by libheif's irot/imir), no metadata, the caps of a HEIF's structure."""

from __future__ import annotations

import io

import pytest
from PIL import Image
from tests import samples

from s3drop import formats, images
from s3drop.errors import CorruptImage, TooComplex, TooManyPixels, TypeMismatch
from s3drop.plugins import heif

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
        ("HEIC with a wrong ispe", CorruptImage),
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
        heif.walk(bytes(data), 1)
