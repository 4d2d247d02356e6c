"""Image files for the tests, made here with Pillow or by hand: good ones, odd ones, hostile ones.

Nothing is downloaded. Every hostile file is the smallest thing that shows the attack.
"""

from __future__ import annotations

import functools
import io
import re
import struct
import zlib
from typing import Any

from PIL import ExifTags, Image

#: The colours of the four quadrants of :func:`quadrants`, as an upright viewer shows them.
TOP_LEFT, TOP_RIGHT = (220, 30, 30), (30, 200, 40)
BOTTOM_LEFT, BOTTOM_RIGHT = (30, 40, 220), (240, 220, 30)

#: Pillow's transpose that undoes each EXIF orientation, and the one that makes it.
UNDO: dict[int, Image.Transpose] = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
MAKE: dict[int, Image.Transpose] = {
    **UNDO,
    6: Image.Transpose.ROTATE_90,
    8: Image.Transpose.ROTATE_270,
}
XMP = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-'
    b'syntax-ns#"><rdf:Description xmlns:exif="http://ns.adobe.com/exif/1.0/" '
    b'exif:GPSLatitude="52,22.0N"/></rdf:RDF></x:xmpmeta>'
)


def encode(image: Image.Image, fmt: str, **options: Any) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def quadrants(size: tuple[int, int] = (160, 96)) -> Image.Image:
    """Four solid quadrants: any rotation or flip shows in the corners."""
    width, height = size
    image = Image.new("RGB", size, TOP_LEFT)
    image.paste(TOP_RIGHT, (width // 2, 0, width, height // 2))
    image.paste(BOTTOM_LEFT, (0, height // 2, width // 2, height))
    image.paste(BOTTOM_RIGHT, (width // 2, height // 2, width, height))
    return image


def photo(seed: int = 0, size: tuple[int, int] = (320, 240)) -> Image.Image:
    """A colourful image with detail, different for every seed."""
    across = Image.linear_gradient("L").resize(size)
    down = Image.linear_gradient("L").rotate(90).resize(size)
    noise = Image.effect_noise(size, 40 + seed % 20)
    return Image.merge("RGB", [across, down, noise])


def png(seed: int = 0, size: tuple[int, int] = (320, 240), **options: Any) -> bytes:
    """A PNG of :func:`photo`. Its noise does not compress, so zlib level 1 by default: the same
    size within 3 %, four times faster to make (0.04 s instead of 0.16 s; the suite makes hundreds)."""
    options.setdefault("compress_level", 1)
    return encode(photo(seed, size), "PNG", **options)


def jpeg(seed: int = 0, size: tuple[int, int] = (320, 240), **options: Any) -> bytes:
    return encode(photo(seed, size), "JPEG", quality=90, **options)


def gps_exif(orientation: int | None = None) -> Image.Exif:
    """EXIF with a camera, a capture time, GPS coordinates and (optionally) an orientation."""
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "TestPhone"
    exif[ExifTags.Base.DateTime] = "2024:05:01 12:00:00"
    if orientation is not None:
        exif[ExifTags.Base.Orientation] = orientation
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (52.0, 22.0, 7.5)
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = (4.0, 53.0, 1.25)
    return exif


def oriented_jpeg(orientation: int, *, size: tuple[int, int] = (160, 96)) -> bytes:
    """A JPEG whose pixels are stored turned so that ``orientation`` shows :func:`quadrants`
    upright; with GPS EXIF, XMP and a comment."""
    upright = quadrants(size)
    stored = upright.transpose(MAKE[orientation]) if orientation in MAKE else upright
    return encode(
        stored,
        "JPEG",
        quality=95,
        exif=gps_exif(orientation),
        xmp=XMP,
        comment=b"shot at home",
    )


def cmyk_jpeg() -> bytes:
    return encode(photo(3).convert("CMYK"), "JPEG", quality=90)


def png16() -> bytes:
    """A 16-bit greyscale gradient: left black, right white."""
    image = Image.new("I;16", (256, 32))
    image.putdata([x * 257 for _ in range(32) for x in range(256)])
    return encode(image, "PNG")


def gif(frames: int = 1, size: tuple[int, int] = (64, 48)) -> bytes:
    images = [photo(i, size).convert("P") for i in range(frames)]
    return encode(images[0], "GIF", save_all=True, append_images=images[1:], duration=50)


def gif_of_frames(count: int) -> bytes:
    """A 1 x 1 GIF of ``count`` frames, written by hand (Pillow would take long to make it)."""
    header = b"GIF89a" + struct.pack("<HHBBB", 1, 1, 0x80, 0, 0) + b"\x00\x00\x00\xff\xff\xff"
    loop = b"\x21\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00"
    frames = []
    for index in range(count):
        pixel = index % 2
        lzw = 4 | (pixel << 3) | (5 << 6)  # clear, the pixel, end: three 3-bit codes
        frames.append(
            b"\x21\xf9\x04\x00\x02\x00\x00\x00"  # 20 ms
            + b"\x2c"
            + struct.pack("<HHHHB", 0, 0, 1, 1, 0)
            + b"\x02\x02"
            + lzw.to_bytes(2, "little")
            + b"\x00"
        )
    return header + loop + b"".join(frames) + b"\x3b"


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png(width: int = 30000, height: int = 30000) -> bytes:
    """A PNG of a few hundred bytes that declares ``width`` x ``height`` pixels (900 megapixels
    by default, about 2.7 GB decoded): an IHDR written by hand, then a little compressed data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = zlib.compress(b"\x00" * (1 + 3 * width) * 4, 9)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", rows)
        + png_chunk(b"IEND", b"")
    )


HTML = b"<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>\n"
SVG = (
    b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
    b"<script>alert(document.cookie)</script><rect width='10' height='10'/></svg>\n"
)


def hostile_files() -> dict[str, tuple[bytes, str]]:
    """Every hostile file the API must refuse: name -> (bytes, the type it is declared as)."""
    return dict(_hostile_files())


@functools.cache  # made once a session: the suite asks for it once per case (~0.1 s each)
def _hostile_files() -> dict[str, tuple[bytes, str]]:
    good = jpeg(7)
    return {
        "HTML declared image/png": (HTML, "image/png"),
        "SVG with a script declared image/png": (SVG, "image/png"),
        "PNG with HTML appended": (png(1) + HTML, "image/png"),
        "truncated JPEG": (good[: len(good) // 2], "image/jpeg"),
        "decompression bomb (30000 x 30000 PNG)": (bomb_png(), "image/png"),
        "GIF of 3000 frames": (gif_of_frames(3000), "image/gif"),
        "JPEG declared image/png": (good, "image/png"),
        **hostile_heic_files(),
    }


# --- structural floods: cheap to send, costly to walk or decode (issue 10) --------------------


def _after_soi(data: bytes) -> bytes:
    assert data.startswith(b"\xff\xd8")
    return data[2:]


@functools.cache  # 10 MB made once a process: the same refusal on every backend
def com_flood_jpeg(count: int = 2_500_000) -> bytes:
    """A small JPEG behind ``count`` empty comment segments (4 bytes each: 10 MB by default)."""
    return b"\xff\xd8" + b"\xff\xfe\x00\x02" * count + _after_soi(jpeg(size=(16, 16)))


@functools.cache  # 10 MB made once a process: the same refusal on every backend
def idat_flood_png(count: int = 800_000) -> bytes:
    """A small PNG whose image data is preceded by ``count`` empty IDAT chunks (12 bytes each:
    9.6 MB by default); an empty IDAT is valid, the zlib stream simply continues."""
    good = png(size=(16, 16))
    at = good.index(b"IDAT") - 4
    return good[:at] + png_chunk(b"IDAT", b"") * count + good[at:]


def jpeg_scans(data: bytes) -> list[tuple[int, int]]:
    """Where each scan of a JPEG starts (its SOS marker) and ends (the next marker)."""
    scans = []
    for found in re.finditer(rb"\xff\xda", data):
        start = found.start()
        length = int.from_bytes(data[start + 2 : start + 4], "big")
        end = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]").search(data, start + 2 + length)
        assert end is not None
        scans.append((start, end.start()))
    return scans


@functools.cache
def many_scans_jpeg(scans: int = 1000, size: tuple[int, int] = (7000, 7000)) -> bytes:
    """A flat grey progressive JPEG of ``size`` whose last scan (an AC refinement) is repeated
    until it has ``scans`` scans: 7000 x 7000 and 1000 scans is about 260 KB, and costs libjpeg a
    full pass over every coefficient per scan (about a minute of CPU)."""
    data = encode(Image.new("L", size, 128), "JPEG", progressive=True, quality=90)
    found = jpeg_scans(data)
    start, end = found[-1]
    return data[:end] + data[start:end] * (scans - len(found)) + data[end:]


def iso_box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def nested_avif(depth: int = 5000) -> bytes:
    """An AVIF whose ``meta`` box holds ``depth`` item-property boxes, each inside the last."""
    inner = iso_box(b"ispe", b"\x00\x00\x00\x00" + struct.pack(">II", 16, 16))
    for _ in range(depth):
        inner = iso_box(b"iprp", inner)
    ftyp = iso_box(b"ftyp", b"avif\x00\x00\x00\x00avifmif1miaf")
    return ftyp + iso_box(b"meta", b"\x00\x00\x00\x00" + inner) + iso_box(b"mdat", b"\x00" * 16)


# --- data hidden in the segments s3drop keeps (issue 10) ---------------------------------------

#: What a file smuggles; it must not be in anything s3drop stores.
HIDDEN = b"HIDDEN-PAYLOAD-s3drop-0xC0FFEE"


def avif_of_compatible_brand(seed: int = 0, size: tuple[int, int] = (64, 48)) -> bytes:
    """An AVIF whose major brand is the generic ``mif1``: ``avif`` is only among its compatible
    brands (HEIF allows it; some encoders write it so)."""
    data = bytearray(encode(photo(seed, size), "AVIF"))
    assert data[4:12] == b"ftypavif"
    assert b"avif" in data[16 : int.from_bytes(data[:4], "big")]
    data[8:12] = b"mif1"
    return bytes(data)


def jpeg_segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + (2 + len(payload)).to_bytes(2, "big") + payload


#: The creation date :func:`srgb_icc` carries (ICC header bytes 24-35: year, month, day, hour,
#: minute, second, each a big-endian uint16).
ICC_DATE = struct.pack(">6H", 2024, 1, 2, 3, 4, 5)


def srgb_icc() -> bytes:
    """LittleCMS's sRGB profile with a fixed creation date. LittleCMS stamps the clock's time into
    the header, so two profiles made a second apart differed in byte 35 and a test comparing one
    made by a sample with one it made itself failed whenever a second ticked in between."""
    from PIL import ImageCms

    profile = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    assert profile[36:40] == b"acsp"
    assert profile[84:100] == bytes(16)  # no profile ID (an MD5 that covers the date) to redo
    profile[24:36] = ICC_DATE
    return bytes(profile)


def icc_with_hidden_bytes() -> bytes:
    """A sound sRGB profile with :data:`HIDDEN` in its reserved header bytes and in a gap no tag
    points at (its declared size grown to match)."""
    profile = bytearray(srgb_icc())
    profile[100 : 100 + len(HIDDEN[:28])] = HIDDEN[:28]
    profile += HIDDEN
    profile[:4] = len(profile).to_bytes(4, "big")
    return bytes(profile)


def _jpeg_with(*segments: bytes, jfif: bytes | None = None) -> bytes:
    """A small JPEG with ``segments`` after its JFIF ``APP0`` (replaced by ``jfif`` if given)."""
    data = jpeg(5, size=(64, 48))
    assert data[2:4] == b"\xff\xe0"
    app0_end = 4 + int.from_bytes(data[4:6], "big")
    return b"\xff\xd8" + (jfif or data[2:app0_end]) + b"".join(segments) + data[app0_end:]


def _png_with(*chunks: bytes) -> bytes:
    """A small PNG with ``chunks`` right after its IHDR."""
    data = png(5, size=(64, 48))
    return data[:33] + b"".join(chunks) + data[33:]


def hidden_in_kept_segments() -> dict[str, tuple[bytes, str]]:
    """Files that hide :data:`HIDDEN` in a segment s3drop keeps: name -> (bytes, content type)."""
    return dict(_hidden_in_kept_segments())


@functools.cache  # made once a process, as _hostile_files: asked for once per case (~0.15 s each)
def _hidden_in_kept_segments() -> dict[str, tuple[bytes, str]]:
    jfif = b"JFIF\x00\x01\x01\x01\x00\x48\x00\x48\x00\x00"  # 72 dpi, no thumbnail
    adobe = b"Adobe\x00\x64\x00\x00\x00\x00\x01"  # transform 1: YCbCr
    fake_icc = b"ICC_PROFILE\x00\x01\x01" + HIDDEN * 8
    webp = encode(photo(5, (64, 48)), "WEBP", icc_profile=srgb_icc())
    return {
        "JPEG: JFIF APP0 tail": (_jpeg_with(jfif=jpeg_segment(0xE0, jfif + HIDDEN)), "image/jpeg"),
        "JPEG: Adobe APP14 tail": (_jpeg_with(jpeg_segment(0xEE, adobe + HIDDEN)), "image/jpeg"),
        "JPEG: a fake ICC profile": (_jpeg_with(jpeg_segment(0xE2, fake_icc)), "image/jpeg"),
        "JPEG: ICC profile reserved bytes and gap": (
            _jpeg_with(jpeg_segment(0xE2, b"ICC_PROFILE\x00\x01\x01" + icc_with_hidden_bytes())),
            "image/jpeg",
        ),
        "JPEG: ICC profile with a tail past its size": (
            _jpeg_with(jpeg_segment(0xE2, b"ICC_PROFILE\x00\x01\x01" + srgb_icc() + HIDDEN)),
            "image/jpeg",
        ),
        "PNG: oversized gAMA": (
            _png_with(png_chunk(b"gAMA", b"\0\0\xb1\x8f" + HIDDEN)),
            "image/png",
        ),
        "PNG: oversized pHYs": (
            _png_with(png_chunk(b"pHYs", b"\0\0\x0b\x13\0\0\x0b\x13\x01" + HIDDEN)),
            "image/png",
        ),
        "PNG: oversized sRGB": (_png_with(png_chunk(b"sRGB", b"\0" + HIDDEN)), "image/png"),
        "PNG: oversized cHRM": (_png_with(png_chunk(b"cHRM", bytes(32) + HIDDEN)), "image/png"),
        "PNG: a fake ICC profile": (
            _png_with(png_chunk(b"iCCP", b"icc\0\0" + zlib.compress(HIDDEN * 8, 0))),
            "image/png",
        ),
        "PNG: ICC profile reserved bytes and gap": (
            _png_with(png_chunk(b"iCCP", b"icc\0\0" + zlib.compress(icc_with_hidden_bytes(), 0))),
            "image/png",
        ),
        "PNG: data after the ICC profile's zlib stream": (
            _png_with(png_chunk(b"iCCP", b"icc\0\0" + zlib.compress(srgb_icc()) + HIDDEN)),
            "image/png",
        ),
        "WebP: an unknown chunk": (
            _riff(webp[12:] + b"HIDE" + len(HIDDEN).to_bytes(4, "little") + HIDDEN),
            "image/webp",
        ),
        "WebP: an unknown chunk in an animation frame": (_webp_frame_with_hidden(), "image/webp"),
        "GIF: a looping extension's extra sub-block": (_gif_with_looping_tail(), "image/gif"),
        "AVIF: a free box": (
            encode(photo(5, (64, 48)), "AVIF") + iso_box(b"free", HIDDEN),
            "image/avif",
        ),
        "AVIF: an unknown box": (
            encode(photo(5, (64, 48)), "AVIF") + iso_box(b"hide", HIDDEN),
            "image/avif",
        ),
    }


def _webp_frame_with_hidden() -> bytes:
    """An animated WebP whose first frame (``ANMF``) carries an unknown chunk after its image."""
    frames = [photo(i, (64, 48)) for i in range(2)]
    data = encode(frames[0], "WEBP", save_all=True, append_images=frames[1:])
    at = data.index(b"ANMF")
    size = int.from_bytes(data[at + 4 : at + 8], "little")
    extra = b"HIDE" + len(HIDDEN).to_bytes(4, "little") + HIDDEN
    assert size % 2 == 0
    assert len(HIDDEN) % 2 == 0
    frame = b"ANMF" + (size + len(extra)).to_bytes(4, "little") + data[at + 8 : at + 8 + size]
    return _riff(data[12:at] + frame + extra + data[at + 8 + size :])


def webp_with_odd_chunk() -> bytes:
    """A WebP with an odd-sized ICC profile chunk whose padding byte is not zero."""
    icc = bytearray(srgb_icc()) + b"\0"
    icc[:4] = len(icc).to_bytes(4, "big")
    data = encode(photo(5, (64, 48)), "WEBP", icc_profile=bytes(icc))
    at = data.index(b"ICCP") + 8 + len(icc)
    assert len(icc) % 2 == 1
    assert data[at] == 0
    return data[:at] + HIDDEN[:1] + data[at + 1 :]


def _riff(chunks: bytes) -> bytes:
    return b"RIFF" + (4 + len(chunks)).to_bytes(4, "little") + b"WEBP" + chunks


def _gif_with_looping_tail() -> bytes:
    data = gif_of_frames(3)
    at = data.index(b"NETSCAPE2.0") + 11 + 4  # after its one 3-byte sub-block
    assert data[at] == 0
    return data[:at] + bytes([len(HIDDEN)]) + HIDDEN + data[at:]


# --- HEIC / HEIF (issue 15), encoded with pillow-heif ----------------------------------------


def heic(seed: int = 0, size: tuple[int, int] = (64, 48), **options: Any) -> bytes:
    """A HEIC (HEVC in HEIF, brand ``heic``) of a photo-like picture."""
    import pillow_heif

    pillow_heif.register_heif_opener()
    return encode(photo(seed, size), "HEIF", quality=options.pop("quality", 80), **options)


#: The colour marking the top-left corner of an upright :func:`marked` picture.
MARK = (0, 0, 255)


def marked(size: tuple[int, int] = (64, 48)) -> Image.Image:
    """Red, with a blue top-left quarter (by area: a 1/4 x 1/4 corner): upright when the blue is
    at the top left."""
    image = Image.new("RGB", size, (255, 0, 0))
    image.paste(MARK, (0, 0, size[0] // 4, size[1] // 4))
    return image


def oriented_heic(orientation: int, size: tuple[int, int] = (64, 48)) -> bytes:
    """A HEIC that shows :func:`marked` upright after its ``orientation`` (EXIF's numbering) is
    applied: pillow-heif turns the EXIF orientation into the HEIF's ``irot``/``imir`` transforms;
    the EXIF item keeps saying ``orientation`` too, as phones write it, so a reader that applied
    both would turn the picture twice."""
    import pillow_heif

    pillow_heif.register_heif_opener()
    inverse = {2: 2, 3: 3, 4: 4, 5: 5, 6: 8, 7: 7, 8: 6}[orientation]
    stored = marked(size).transpose(UNDO[inverse])  # what the camera's sensor saw
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = bytearray(encode(stored, "HEIF", quality=90, exif=exif.tobytes()))
    at = data.find(b"\x12\x01\x03\x00\x01\x00\x00\x00")  # the Orientation entry, little-endian
    if at < 0:
        at = data.find(b"\x01\x12\x00\x03\x00\x00\x00\x01")
        data[at + 8 : at + 10] = orientation.to_bytes(2, "big")
    else:
        data[at + 8 : at + 10] = orientation.to_bytes(2, "little")
    return bytes(data)


def heic_with_ispe(width: int, height: int) -> bytes:
    """A small HEIC whose every ``ispe`` states ``width`` x ``height``."""
    data = bytearray(heic(5))
    at = data.find(b"ispe")
    while at >= 0:
        data[at + 8 : at + 16] = width.to_bytes(4, "big") + height.to_bytes(4, "big")
        at = data.find(b"ispe", at + 4)
    return bytes(data)


def heic_of_items(count: int) -> bytes:
    """A small HEIC whose item list (``iinf``) says it holds ``count`` items."""
    data = bytearray(heic(6))
    at = data.index(b"iinf")
    version = data[at + 4]
    width = 2 if version == 0 else 4
    data[at + 8 : at + 8 + width] = count.to_bytes(width, "big")
    return bytes(data)


def hostile_heic_files() -> dict[str, tuple[bytes, str]]:
    """The hostile-file suite's cases on the HEIC path: name -> (bytes, declared type)."""
    return dict(_hostile_heic_files())


@functools.cache  # made once a session, as _hostile_files
def _hostile_heic_files() -> dict[str, tuple[bytes, str]]:
    good = heic(7)
    return {
        "truncated HEIC": (good[: len(good) // 2], "image/heic"),
        "HEIC with a wrong ispe": (heic_with_ispe(32, 24), "image/heic"),
        "HEIC with a huge ispe (decompression bomb)": (heic_with_ispe(30000, 30000), "image/heic"),
        "HEIC of too many items": (heic_of_items(5000), "image/heic"),
        "HEIC with HTML appended": (good + HTML, "image/heic"),
        "HEIC declared image/jpeg": (good, "image/jpeg"),
    }
