"""Judging images by their bytes: sniffing, header-first size checks, structure walks, lossless
metadata stripping, orientation, thumbnails. No storage, no network."""

from __future__ import annotations

import io
import struct
import time

import pytest
from PIL import Image, ImageCms, ImageFile
from tests import samples

from s3drop import _containers as containers
from s3drop import _formats as formats
from s3drop import _headers as headers
from s3drop import _images as images
from s3drop._errors import (
    CorruptImage,
    ImageRejected,
    NotAnImage,
    TooManyFrames,
    TooManyPixels,
    TypeMismatch,
)

ALL = list(formats.FORMATS)
LIMITS = images.ImageLimits()


def judge(data: bytes, declared: str, limits: images.ImageLimits = LIMITS) -> images.ProcessedImage:
    """What completion does with a file once it is in storage: header first, then the whole."""
    head = data[: images.HEADER_BYTES]
    found = images.check_header(
        head, declared=declared, allowed=ALL, limits=limits, whole=len(head) == len(data)
    )
    if found is None:
        found = images.check_header(data, declared=declared, allowed=ALL, limits=limits, whole=True)
    assert found is not None
    return images.process(data, found, limits)


def decoded(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def near(a: tuple[int, ...], b: tuple[int, ...], tolerance: int = 24) -> bool:
    return all(abs(x - y) <= tolerance for x, y in zip(a, b, strict=False))


# --- sniffing ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "content_type", "description"),
    [
        (samples.png(), "image/png", "a PNG image"),
        (samples.jpeg(), "image/jpeg", "a JPEG image"),
        (samples.gif(), "image/gif", "a GIF image"),
        (samples.encode(samples.photo(), "WEBP"), "image/webp", "a WebP image"),
        (samples.encode(samples.photo(), "AVIF"), "image/avif", "an AVIF image"),
        (samples.HTML, None, "an HTML document"),
        (b"\xef\xbb\xbf  <html><p>hi", None, "an HTML document"),
        (samples.SVG, None, "an SVG document"),
        (b"<?xml version='1.0'?><note/>", None, "an XML document"),
        (b"%PDF-1.7\n", None, "a PDF document"),
        (b"PK\x03\x04rest", None, "a ZIP archive"),
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic", "image/heic", "a HEIC image"),
        (b"\x00\x00\x00\x14ftypmif1\x00\x00\x00\x00mif1", "image/heif", "a HEIF image"),
        (samples.encode(samples.photo(), "BMP"), None, "a BMP image"),
        (samples.encode(samples.photo(), "TIFF"), None, "a TIFF image"),
        (b"just some words\n", None, "a text file"),
        (bytes(range(256)) * 4, None, "a file of no known image format"),
    ],
)
def test_sniff_judges_by_the_bytes(data: bytes, content_type: str | None, description: str) -> None:
    found = formats.sniff(data[:64])
    assert found.content_type == content_type
    assert found.description == description


# --- the header, before any decoder -----------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        (samples.png(size=(301, 123)), "image/png"),
        (samples.jpeg(size=(301, 123)), "image/jpeg"),
        (samples.jpeg(size=(301, 123), progressive=True), "image/jpeg"),
        (samples.gif(size=(301, 123)), "image/gif"),
        (samples.encode(samples.photo(size=(301, 123)), "WEBP"), "image/webp"),
        (samples.encode(samples.photo(size=(301, 123)), "WEBP", lossless=True), "image/webp"),
        (samples.encode(samples.photo(size=(301, 123)), "WEBP", exif=b"Exif\0\0"), "image/webp"),
        (samples.encode(samples.photo(size=(301, 123)), "AVIF"), "image/avif"),
    ],
)
def test_header_size_is_read_without_decoding(data: bytes, content_type: str) -> None:
    assert formats.header_size(data, content_type) == (301, 123)
    with pytest.raises(headers.NeedMore):
        formats.header_size(data[:9], content_type)


def test_a_jpeg_header_longer_than_the_first_read_asks_for_more() -> None:
    big_exif = samples.gps_exif()
    big_exif[0x010E] = "x" * 60_000  # ImageDescription: the SOF now starts past 60 kB
    data = samples.encode(samples.photo(), "JPEG", exif=big_exif)
    assert (
        images.check_header(
            data[:1000], declared="image/jpeg", allowed=ALL, limits=LIMITS, whole=False
        )
        is None
    )
    assert judge(data, "image/jpeg").width == 320


def test_a_decompression_bomb_is_refused_from_its_header_before_any_decoding(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bomb = samples.bomb_png()
    assert len(bomb) < 4096

    def no_decoding(*args: object) -> None:
        raise AssertionError("a decoder ran")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    monkeypatch.setattr(Image, "open", no_decoding)
    with pytest.raises(TooManyPixels) as refused:
        images.check_header(bomb, declared="image/png", allowed=ALL, limits=LIMITS, whole=True)
    assert refused.value.message == (
        "the image is 30000 x 30000 pixels (900.0 megapixels); the limit is 50 megapixels"
    )


def test_the_longest_side_is_capped_too() -> None:
    with pytest.raises(TooManyPixels, match="20000 pixels on a side"):
        images.check_header(
            samples.bomb_png(30000, 10),
            declared="image/png",
            allowed=ALL,
            limits=LIMITS,
            whole=True,
        )


def test_pillows_own_bomb_limit_never_refuses_what_ours_allows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Pillow's limit scaled down (it warns past it, an error here, and refuses past twice it), so
    # that 1.2 MP stand for the 100 MP this took against its default of 89 MP.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 500_000)
    roomy = images.ImageLimits(max_pixels=2_000_000, max_side=20_000)
    wide = samples.encode(Image.new("1", (1_200, 1_000)), "PNG")  # past twice Pillow's limit
    processed = judge(wide, "image/png", roomy)
    assert (processed.width, processed.height) == (1_200, 1_000)


@pytest.mark.parametrize(
    ("data", "declared", "error", "message"),
    [
        (b"", "image/png", NotAnImage, "the file is empty (0 bytes)"),
        (samples.HTML, "image/png", NotAnImage, "the file is an HTML document, not an image"),
        (samples.SVG, "image/png", NotAnImage, "the file is an SVG document, not an image"),
        (
            samples.jpeg(),
            "image/png",
            TypeMismatch,
            "the file is a JPEG image, but it was uploaded as image/png",
        ),
        (
            samples.encode(samples.photo(), "TIFF"),
            "image/jpeg",
            NotAnImage,
            "the file is a TIFF image, not an image",
        ),
    ],
)
def test_refusals_from_the_first_bytes(
    data: bytes, declared: str, error: type[ImageRejected], message: str
) -> None:
    with pytest.raises(error) as refused:
        images.check_header(data, declared=declared, allowed=ALL, limits=LIMITS, whole=True)
    assert refused.value.message == message


def test_a_type_no_longer_allowed_is_refused() -> None:
    with pytest.raises(TypeMismatch, match="no longer an allowed type"):
        images.check_header(
            samples.gif(), declared="image/gif", allowed=["image/png"], limits=LIMITS, whole=True
        )


# --- the whole file: truncation, trailing data, frames ----------------------------------------


def test_a_png_with_html_appended_is_refused() -> None:
    with pytest.raises(CorruptImage, match=r"bytes of other data follow the end of the PNG"):
        judge(samples.png() + samples.HTML, "image/png")


@pytest.mark.parametrize(
    ("data", "declared", "name"),
    [
        (samples.gif(), "image/gif", "GIF"),
        (samples.encode(samples.photo(), "WEBP"), "image/webp", "WebP"),
    ],
)
def test_other_formats_with_data_appended_are_refused(
    data: bytes, declared: str, name: str
) -> None:
    with pytest.raises(CorruptImage, match=f"follow the end of the {name} image"):
        judge(data + samples.HTML, declared)


def test_a_jpeg_is_stored_up_to_its_end_marker_and_nothing_behind_it() -> None:
    """Phones put gain maps, motion photos and previews behind a JPEG's EOI: those images are
    accepted, and only the picture itself, up to its EOI, is stored."""
    original = samples.jpeg()
    processed = judge(original + samples.HTML, "image/jpeg")
    assert processed.data.endswith(b"\xff\xd9")
    assert b"<script>" not in processed.data
    assert len(processed.data) <= len(original)


@pytest.mark.parametrize("progressive", [False, True])
@pytest.mark.parametrize("keep", [0.3, 0.6, 0.95])
def test_a_truncated_jpeg_is_refused(progressive: bool, keep: float) -> None:
    data = samples.jpeg(progressive=progressive)
    with pytest.raises(CorruptImage, match="truncated"):
        judge(data[: int(len(data) * keep)], "image/jpeg")


@pytest.mark.parametrize("progressive", [False, True])
def test_the_scaled_jpeg_decode_itself_finds_truncation(progressive: bool) -> None:
    """The structure walk finds a missing end first; this proves the DCT-scaled decode (the draft
    used for speed) still reads every entropy-coded byte and fails on its own, too."""
    data = samples.jpeg(size=(1600, 1200), progressive=progressive)
    cut = data[: len(data) * 3 // 4]
    layout = containers.Layout(1600, 1200, 1, 1, cut)
    with pytest.raises(CorruptImage, match="truncated"), images._decoding("jpeg"):
        images._process_jpeg(layout, LIMITS)


def test_truncation_is_refused_even_if_pillow_is_told_to_load_truncated_images(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    data = samples.jpeg()
    with pytest.raises(CorruptImage, match="truncated"):
        judge(data[: len(data) // 2], "image/jpeg")
    data = samples.png()
    with pytest.raises(CorruptImage, match="truncated"):
        judge(data[: len(data) - 20], "image/png")


def test_a_png_chunk_with_a_wrong_checksum_is_refused() -> None:
    data = bytearray(samples.png())
    data[60] ^= 0xFF  # inside the first IDAT's data
    with pytest.raises(CorruptImage, match="checksum of its 'IDAT' chunk is wrong"):
        judge(bytes(data), "image/png")


def test_a_gif_of_thousands_of_frames_is_refused_after_counting_only_past_the_cap() -> None:
    data = samples.gif_of_frames(3000)
    assert Image.open(io.BytesIO(data)).n_frames == 3000  # a sound file, just too long
    # Corrupt frame 1000: a walk that stops at frame 501 never sees it.
    frame = len(data[data.index(b"\x21\xf9") :]) // 3000
    at = data.index(b"\x21\xf9") + 1000 * frame + 8
    broken = data[:at] + b"\x99" + data[at + 1 :]
    started = time.perf_counter()
    with pytest.raises(TooManyFrames) as refused:
        judge(broken, "image/gif")
    assert time.perf_counter() - started < 1
    assert refused.value.message == "the animation has more than 500 frames; the limit is 500"


@pytest.mark.parametrize(
    ("data", "declared"),
    [
        (samples.gif(3), "image/gif"),
        (
            samples.encode(
                samples.photo(0),
                "PNG",
                save_all=True,
                append_images=[samples.photo(1), samples.photo(2)],
            ),
            "image/png",
        ),
        (
            samples.encode(
                samples.photo(0),
                "WEBP",
                save_all=True,
                append_images=[samples.photo(1), samples.photo(2)],
            ),
            "image/webp",
        ),
    ],
)
def test_animations_within_the_cap_are_accepted(data: bytes, declared: str) -> None:
    processed = judge(data, declared)
    assert processed.frames == 3
    assert processed.data == data or len(processed.data) <= len(data)
    assert decoded(processed.data).n_frames == 3  # type: ignore[attr-defined]
    limits = images.ImageLimits(max_frames=2)
    with pytest.raises(TooManyFrames):
        judge(data, declared, limits)


# --- lossless metadata stripping --------------------------------------------------------------


def test_jpeg_metadata_is_stripped_losslessly_and_the_icc_profile_kept() -> None:
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    original = samples.encode(
        samples.photo(),
        "JPEG",
        quality=90,
        exif=samples.gps_exif(1),
        xmp=samples.XMP,
        comment=b"shot at home",
        icc_profile=icc,
    )
    processed = judge(original, "image/jpeg")
    out = decoded(processed.data)
    assert out.tobytes() == decoded(original).tobytes()  # not one pixel re-encoded
    assert out.info.get("icc_profile") == icc
    assert not out.getexif()
    assert "xmp" not in out.info
    assert "comment" not in out.info
    for trace in (b"Exif\0\0", b"TestPhone", b"adobe:ns:meta", b"shot at home", b"52,22"):
        assert trace not in processed.data


def test_a_jfif_thumbnail_is_dropped_and_jfif_kept() -> None:
    original = samples.jpeg()
    assert original[6:11] == b"JFIF\0"
    thumb = bytes([4, 4]) + bytes(4 * 4 * 3)
    length = 14 + len(thumb)
    with_thumb = (
        original[:4] + struct.pack(">H", length) + original[6:18] + thumb + original[4 + 2 + 14 :]
    )
    assert decoded(with_thumb).size == (320, 240)
    processed = judge(with_thumb, "image/jpeg")
    assert processed.data[2:20] == b"\xff\xe0\x00\x10JFIF\x00" + original[11:18] + b"\x00\x00"
    assert decoded(processed.data).tobytes() == decoded(original).tobytes()


def test_png_text_chunks_are_stripped_and_the_rest_kept_losslessly() -> None:
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "shot at home")
    info.add_itxt("XML:com.adobe.xmp", samples.XMP.decode(), zip=True)
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    original = samples.encode(
        samples.photo(),
        "PNG",
        pnginfo=info,
        exif=samples.gps_exif(1),
        icc_profile=icc,
        dpi=(300, 300),
    )
    processed = judge(original, "image/png")
    for kind in (b"tEXt", b"iTXt", b"eXIf", b"zTXt"):
        assert kind not in processed.data
    out = decoded(processed.data)
    assert out.tobytes() == decoded(original).tobytes()
    assert out.info["icc_profile"] == icc
    assert round(out.info["dpi"][0]) == 300
    assert b"shot at home" not in processed.data


def test_gif_comments_are_stripped_and_looping_kept() -> None:
    original = samples.encode(
        samples.photo().convert("P"),
        "GIF",
        save_all=True,
        append_images=[samples.photo(1).convert("P")],
        loop=0,
        comment=b"shot at home",
    )
    assert b"shot at home" in original
    processed = judge(original, "image/gif")
    assert b"shot at home" not in processed.data
    assert b"NETSCAPE2.0" in processed.data
    assert decoded(processed.data).info["loop"] == 0


def test_webp_exif_and_xmp_are_stripped() -> None:
    original = samples.encode(
        samples.photo(), "WEBP", exif=samples.gps_exif(1).tobytes(), xmp=samples.XMP
    )
    processed = judge(original, "image/webp")
    assert b"EXIF" not in processed.data
    assert b"XMP " not in processed.data
    assert b"TestPhone" not in processed.data
    assert decoded(processed.data).tobytes() == decoded(original).tobytes()


def test_avif_with_exif_is_re_encoded_without_it() -> None:
    original = samples.encode(samples.photo(), "AVIF", exif=samples.gps_exif(1), quality=90)
    assert b"TestPhone" in original
    processed = judge(original, "image/avif")
    assert b"TestPhone" not in processed.data
    assert decoded(processed.data).size == (320, 240)


# --- orientation ------------------------------------------------------------------------------


@pytest.mark.parametrize("orientation", range(1, 9))
def test_jpeg_orientation_is_applied_and_the_image_shows_upright(orientation: int) -> None:
    original = samples.oriented_jpeg(orientation)
    processed = judge(original, "image/jpeg")
    out = decoded(processed.data)  # no EXIF left to apply: the pixels themselves are upright
    assert (processed.width, processed.height) == out.size == (160, 96)
    assert near(out.getpixel((4, 4)), samples.TOP_LEFT)
    assert near(out.getpixel((155, 4)), samples.TOP_RIGHT)
    assert near(out.getpixel((4, 91)), samples.BOTTOM_LEFT)
    assert near(out.getpixel((155, 91)), samples.BOTTOM_RIGHT)
    assert b"Exif\0\0" not in processed.data
    assert not out.getexif()
    thumb = decoded(processed.thumbnail)
    assert thumb.width > thumb.height
    assert near(thumb.getpixel((2, 2)), samples.TOP_LEFT, 40)


def test_a_re_encoded_jpeg_keeps_its_quality() -> None:
    upright = samples.photo(5, (640, 480))
    stored = upright.transpose(samples.MAKE[6])
    original = samples.encode(stored, "JPEG", quality=85, exif=samples.gps_exif(6))
    processed = judge(original, "image/jpeg")
    out = decoded(processed.data)
    reference = decoded(original).transpose(samples.UNDO[6])
    difference = sum(
        abs(a - b) for a, b in zip(out.tobytes(), reference.tobytes(), strict=True)
    ) / len(out.tobytes())
    assert difference < 3.0  # mean error per channel, of 255: no visible loss
    assert len(processed.data) < len(original) * 1.25


def test_png_exif_orientation_is_applied() -> None:
    stored = samples.quadrants().transpose(samples.MAKE[6])
    original = samples.encode(stored, "PNG", exif=samples.gps_exif(6))
    processed = judge(original, "image/png")
    out = decoded(processed.data)
    assert out.size == (160, 96)
    assert out.getpixel((4, 4)) == samples.TOP_LEFT
    assert b"eXIf" not in processed.data


# --- accepted oddities and thumbnails ---------------------------------------------------------


def test_a_cmyk_jpeg_is_accepted_and_its_thumbnail_is_rgb() -> None:
    original = samples.cmyk_jpeg()
    processed = judge(original, "image/jpeg")
    assert decoded(processed.data).mode == "CMYK"
    assert processed.data == original  # nothing to strip
    thumb = decoded(processed.thumbnail)
    assert thumb.format == "WEBP"
    assert thumb.mode == "RGB"


def test_a_16_bit_png_is_accepted_and_its_thumbnail_keeps_the_tones() -> None:
    original = samples.png16()
    processed = judge(original, "image/png")
    assert processed.data == original
    thumb = decoded(processed.thumbnail).convert("L")
    assert thumb.getpixel((0, 5)) < 10
    assert 100 < thumb.getpixel((thumb.width // 2, 5)) < 156
    assert thumb.getpixel((thumb.width - 1, 5)) > 245


@pytest.mark.parametrize(("size", "thumb"), [((1600, 900), (320, 180)), ((90, 1000), (29, 320))])
def test_thumbnails_fit_the_box(size: tuple[int, int], thumb: tuple[int, int]) -> None:
    processed = judge(samples.jpeg(size=size), "image/jpeg")
    assert decoded(processed.thumbnail).size == thumb


def test_small_images_are_not_enlarged_and_transparency_is_kept() -> None:
    image = Image.new("RGBA", (40, 30), (255, 0, 0, 0))
    processed = judge(samples.encode(image, "PNG"), "image/png")
    thumb = decoded(processed.thumbnail)
    assert thumb.size == (40, 30)
    assert thumb.mode == "RGBA"
    assert thumb.getpixel((5, 5))[3] == 0


def test_a_palette_png_gets_a_smooth_thumbnail() -> None:
    image = samples.photo(size=(1000, 800)).convert("P")
    processed = judge(samples.encode(image, "PNG"), "image/png")
    assert decoded(processed.thumbnail).mode == "RGB"


@pytest.mark.parametrize(
    ("tiff", "orientation"),
    [
        (b"II*\x00\x08\x00\x00\x00\x01\x00\x12\x01\x03\x00\x01\x00\x00\x00\x06\x00\x00\x00", 6),
        (b"MM\x00*\x00\x00\x00\x08\x00\x01\x01\x12\x00\x03\x00\x00\x00\x01\x00\x03\x00\x00", 3),
        (b"II*\x00\x08\x00\x00\x00\x01\x00\x12\x01\x03\x00\x01\x00\x00\x00\x09\x00\x00\x00", 1),
        (b"II*\x00\xff\xff\x00\x00", 1),
        (b"nonsense", 1),
    ],
)
def test_exif_orientation_is_read_in_both_byte_orders(tiff: bytes, orientation: int) -> None:
    assert containers.exif_orientation(tiff) == orientation


@pytest.mark.parametrize(
    "data",
    [
        samples.jpeg(size=(640, 480), restart_marker_rows=1),
        samples.jpeg(size=(640, 480), restart_marker_rows=1, progressive=True),
        samples.jpeg(size=(641, 479), subsampling=0),
        samples.encode(samples.photo().convert("L"), "JPEG"),
    ],
)
def test_a_jpeg_without_metadata_is_stored_byte_for_byte(data: bytes) -> None:
    assert judge(data, "image/jpeg").data == data
