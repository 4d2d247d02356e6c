"""Judge an image by its bytes, then make the copy s3drop stores and its thumbnail.

Two steps, cheapest first, so a hostile file costs little:

1. :func:`check_header` on the first bytes only (:mod:`s3drop._formats`): the real format from the
   magic bytes (never the name or the declared type), then the dimensions from the header, against
   the pixel cap and the maximum side, before any decoder runs. A decompression bomb stops here.
2. :func:`process` on the whole file: the structure walk of its format (:func:`s3drop._formats.walk`:
   truncation, data after the end, the frame cap, a copy without metadata), then a full decode of
   exactly the bytes that will be stored, then the thumbnail.

What is stored is upright and carries no EXIF, XMP, comments or text chunks, but keeps its ICC
colour profile; it is the original bytes minus metadata, except when an EXIF orientation has to be
applied (a JPEG is then re-encoded with its own quantisation tables, so quality holds) or an AVIF
carries metadata items. A JPEG is decoded at the scale of its thumbnail (libjpeg's DCT scaling):
every entropy-coded byte is still decoded, so truncation and corrupt scans are still found, at a
fraction of the time and memory of a full-size decode.
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from PIL import Image, JpegImagePlugin

from . import _variants as variants
from ._containers import Layout
from ._digests import Digest
from ._errors import CorruptImage, NotAnImage, TooManyFrames, TooManyPixels, TypeMismatch
from ._formats import Format, by_type, declared_as, header_size, sniff, walk
from ._headers import NeedMore
from ._pixels import pixel_mode, to_rgb
from ._placeholders import Placeholder, placeholder_of

if TYPE_CHECKING:  # the decode worker imports this module without pydantic
    from ._config import Settings

#: How many bytes :func:`check_header` needs to judge almost any file.
HEADER_BYTES = 64 * 1024

_TRANSPOSE: dict[int, Image.Transpose] = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


@dataclass(frozen=True)
class ImageLimits:
    """What an accepted image may be."""

    max_pixels: int = 50_000_000
    max_side: int = 20_000
    max_frames: int = 500
    thumbnail_size: int = 320
    #: Responsive variants (:mod:`s3drop._variants`): widths, and formats by their registry names
    #: (:attr:`s3drop._formats.Format.name`, ``avif``, ``webp``), in the order a <picture> lists them.
    variant_widths: tuple[int, ...] = ()
    variant_formats: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in self.variant_formats:  # here, not in the decode, where it would look corrupt
            variants.variant_type(name)

    @classmethod
    def from_settings(cls, settings: Settings) -> ImageLimits:
        return cls(
            max_pixels=settings.max_pixels,
            max_side=settings.max_side,
            max_frames=settings.max_frames,
            thumbnail_size=settings.thumbnail_size,
            variant_widths=tuple(settings.variant_widths),
            variant_formats=tuple(by_type(t).name for t in settings.variant_formats),
        )


@dataclass(frozen=True)
class ProcessedImage:
    """An accepted image: the bytes to store, their facts, a WebP thumbnail and the placeholder
    a page paints while it loads (:mod:`s3drop._placeholders`)."""

    content_type: str
    format: str
    width: int
    height: int
    frames: int
    data: bytes
    thumbnail: bytes
    variants: tuple[variants.EncodedVariant, ...] = ()
    placeholder: Placeholder | None = None
    #: The SHA-256 of ``data`` (hashed while the image decoded); "" when not known.
    sha256: str = ""


def check_header(
    head: bytes, *, declared: str, allowed: Sequence[str], limits: ImageLimits, whole: bool
) -> str | None:
    """Judge a file by its first bytes: its real content type, or None when more bytes are needed.

    ``declared`` is the type the upload was signed for; ``whole`` says ``head`` is the whole file.
    Raises :class:`NotAnImage`, :class:`TypeMismatch`, :class:`TooManyPixels` or
    :class:`CorruptImage`.
    """
    if not head:
        raise NotAnImage("the file is empty (0 bytes)")
    found = sniff(head)
    if found.format is None:
        raise NotAnImage(f"the file is {found.description}, not an image")
    if not declared_as(found.format, declared):
        raise TypeMismatch(f"the file is {found.description}, but it was uploaded as {declared}")
    if declared not in allowed:
        raise TypeMismatch(f"{declared} is no longer an allowed type ({', '.join(allowed)})")
    try:
        width, height = header_size(head, declared)
    except NeedMore:
        if not whole:
            return None
        label = found.format.label
        raise CorruptImage(f"the {label} image is truncated: it ends inside its header") from None
    check_dimensions(width, height, limits)
    return declared


def check_dimensions(width: int, height: int, limits: ImageLimits) -> None:
    """Refuse an image too large to decode safely (:class:`TooManyPixels`)."""
    if width < 1 or height < 1:
        raise CorruptImage(f"the image declares a size of {width} x {height} pixels")
    if width * height > limits.max_pixels:
        raise TooManyPixels(
            f"the image is {width} x {height} pixels ({width * height / 1e6:.1f} megapixels); the "
            f"limit is {limits.max_pixels / 1e6:g} megapixels"
        )
    if max(width, height) > limits.max_side:
        raise TooManyPixels(
            f"the image is {width} x {height} pixels; the limit is {limits.max_side} pixels on "
            "a side"
        )


def header_pixels(data: bytes, content_type: str) -> int:
    """Width x height as the header of ``data`` (which passed :func:`check_header`) states it."""
    try:
        width, height = header_size(data[:HEADER_BYTES], content_type)
    except NeedMore:
        width, height = header_size(data, content_type)
    return width * height


def process(data: bytes, content_type: str, limits: ImageLimits) -> ProcessedImage:
    """Verify the whole file and make what s3drop stores: upright, without metadata, a thumbnail.

    ``data`` must have passed :func:`check_header`. Raises an
    :class:`~s3drop._errors.ImageRejected` subclass for anything that is not a whole, sound image.
    The server runs this in :mod:`s3drop._sandbox`, under CPU and memory limits.
    """
    layout = walk(data, content_type, max_frames=limits.max_frames)
    check_dimensions(layout.width, layout.height, limits)
    _allow_pixels(limits.max_pixels)
    fmt = by_type(content_type)
    if fmt.check_coded is not None:
        fmt.check_coded(layout)
    digest = Digest(layout.stripped)  # what is stored is usually this: hashed meanwhile
    with _decoding(fmt.label):
        if fmt.stored_as is not None:  # e.g. HEIC, stored as a JPEG
            from ._convert import convert

            result = convert(fmt, layout, limits)
        elif fmt.name == "jpeg":
            result = _process_jpeg(layout, limits)
        else:
            result = _process_other(fmt, layout, limits)
    return replace(result, sha256=digest.of(result.data))


# --- JPEG -------------------------------------------------------------------------------------


def _process_jpeg(layout: Layout, limits: ImageLimits) -> ProcessedImage:
    size = limits.thumbnail_size
    image = Image.open(io.BytesIO(layout.stripped), formats=["JPEG"])
    assert isinstance(image, JpegImagePlugin.JpegImageFile)
    _check_size(image.size, layout, "JPEG")
    icc = image.info.get("icc_profile")
    if layout.orientation == 1:
        # Scaled decode: every scan is entropy-decoded (truncation is found), at 1/2..1/8 size
        # (as small as the thumbnail and the widest variant allow).
        image.draft(None, variants.draft_size(layout.width, layout.height, limits))
        image.load()
        thumbnail, placeholder = _thumbnail(image, size, icc)
        return ProcessedImage(
            content_type="image/jpeg",
            format="jpeg",
            width=layout.width,
            height=layout.height,
            frames=1,
            data=layout.stripped,
            thumbnail=thumbnail,
            placeholder=placeholder,
            variants=_variants(image, layout.width, layout.height, icc, limits),
        )
    # Orientation has to be applied: re-encode with the original's own quantisation tables.
    transpose = _TRANSPOSE[layout.orientation]
    qtables = image.quantization
    if layout.orientation >= 5:  # rotated a quarter turn: horizontal and vertical swap
        qtables = {k: [t[(i % 8) * 8 + i // 8] for i in range(64)] for k, t in qtables.items()}
    sampling = JpegImagePlugin.get_sampling(image)
    progressive = bool(image.info.get("progressive"))
    image.load()
    upright = image.transpose(transpose)
    image.close()
    out = io.BytesIO()
    options: dict[str, object] = {"qtables": qtables, "progressive": progressive}
    if sampling != -1:
        options["subsampling"] = sampling
    if icc:
        options["icc_profile"] = icc
    upright.save(out, "JPEG", **options)
    thumbnail, placeholder = _thumbnail(upright, size, icc)
    return ProcessedImage(
        content_type="image/jpeg",
        format="jpeg",
        width=upright.width,
        height=upright.height,
        frames=1,
        data=out.getvalue(),
        thumbnail=thumbnail,
        placeholder=placeholder,
        variants=_variants(upright, *upright.size, icc, limits),
    )


# --- PNG, GIF, WebP, AVIF ---------------------------------------------------------------------


def _process_other(fmt: Format, layout: Layout, limits: ImageLimits) -> ProcessedImage:
    image = Image.open(io.BytesIO(layout.stripped), formats=[fmt.pillow])
    frames = int(getattr(image, "n_frames", 1))
    if frames > limits.max_frames:
        raise TooManyFrames(f"the animation has {frames} frames; the limit is {limits.max_frames}")
    icc = image.info.get("icc_profile")
    name = fmt.label
    _check_size(image.size, layout, name)
    image.load()
    _check_size(image.im.size, layout, name)
    if frames > 1:
        _decode_frames(image, frames, limits.max_pixels)
        _check_size(image.im.size, layout, name)
    orientation = layout.orientation
    if fmt.decoder_orients:  # e.g. AVIF's irot/imir, which Pillow reports as an EXIF orientation
        orientation = int(image.getexif().get(0x0112, 1) or 1)
    upright: Image.Image = image
    if orientation in _TRANSPOSE and frames == 1:
        upright = image.transpose(_TRANSPOSE[orientation])
    data = layout.stripped
    if upright is not image or layout.needs_reencode:
        data = _encode(upright, fmt, icc, animated=frames > 1)
    thumbnail, placeholder = _thumbnail(upright, limits.thumbnail_size, icc)
    return ProcessedImage(
        content_type=fmt.content_type,
        format=fmt.name,
        width=upright.width,
        height=upright.height,
        frames=frames,
        data=data,
        thumbnail=thumbnail,
        placeholder=placeholder,
        variants=_variants(upright, *upright.size, icc, limits) if frames == 1 else (),
    )


def _decode_frames(image: Image.Image, frames: int, budget: int) -> None:
    """Decode the frames after the first while the pixels decoded stay within ``budget``.

    The structure walk already proved every frame is whole; this finds corrupt frame data without
    letting hundreds of full-size frames cost hundreds of decodes. Ends on the first frame.
    """
    decoded = image.width * image.height
    for index in range(1, frames):
        decoded += image.width * image.height
        if decoded > budget:
            break
        image.seek(index)
        image.load()
    image.seek(0)
    image.load()


def _encode(image: Image.Image, fmt: Format, icc: bytes | None, *, animated: bool) -> bytes:
    """``image`` without metadata, for what no lossless strip covers (orientation, AVIF items)."""
    out = io.BytesIO()
    options: dict[str, object] = {**fmt.save}
    if icc:
        options["icc_profile"] = icc
    if animated:  # stored as it plays; only its metadata goes
        options["save_all"] = True
    image.save(out, fmt.pillow, **options)
    return out.getvalue()


# --- the size stated is the size decoded -----------------------------------------------------


def _check_size(size: tuple[int, int], layout: Layout, name: str) -> None:
    """Refuse an image whose decoder found another size than its header states (the pixel cap
    judged the header's)."""
    if size != (layout.width, layout.height):
        raise CorruptImage(
            f"the {name} image's header says {layout.width} x {layout.height} pixels, but it "
            f"decodes to {size[0]} x {size[1]}"
        )


# --- thumbnails and variants ------------------------------------------------------------------


def _variants(
    image: Image.Image, width: int, height: int, icc: bytes | None, limits: ImageLimits
) -> tuple[variants.EncodedVariant, ...]:
    """:func:`s3drop._variants.make` of ``image`` (``width`` x ``height``, perhaps decoded smaller)."""
    if not variants.plan(width, limits.variant_widths, height) or not limits.variant_formats:
        return ()
    rgb, profile = to_rgb(pixel_mode(image), icc)
    return variants.make(rgb, width=width, height=height, icc=profile, limits=limits)


def _thumbnail(image: Image.Image, size: int, icc: bytes | None) -> tuple[bytes, Placeholder]:
    """A WebP of ``image`` (its current frame) within a ``size`` square, in sRGB or its profile,
    and the placeholder of that thumbnail-sized image."""
    small = pixel_mode(image)
    width, height = small.size
    if max(width, height) > size:
        if width >= height:
            target = (size, max(1, round(height * size / width)))
        else:
            target = (max(1, round(width * size / height)), size)
        small = small.resize(target, Image.Resampling.BICUBIC, reducing_gap=2.0)
    small, icc = to_rgb(small, icc)
    out = io.BytesIO()
    options: dict[str, object] = {"quality": 80, "method": 4}
    if icc:
        options["icc_profile"] = icc
    small.save(out, "WEBP", **options)
    return out.getvalue(), placeholder_of(small, icc)


# --- Pillow's errors, translated once ---------------------------------------------------------


def _allow_pixels(max_pixels: int) -> None:
    """Pillow's own bomb check must not refuse what ours allowed (ours runs first)."""
    if Image.MAX_IMAGE_PIXELS is not None and max_pixels > Image.MAX_IMAGE_PIXELS:
        Image.MAX_IMAGE_PIXELS = max_pixels


@contextmanager
def _decoding(name: str) -> Iterator[None]:
    try:
        yield
    except Image.DecompressionBombError as exc:
        raise TooManyPixels(f"the {name} image is too large to decode: {exc}") from exc
    except (
        OSError, SyntaxError, ValueError, EOFError, IndexError, KeyError, zlib.error,
        RuntimeError,  # Pillow's AVIF plugin: libavif's decode errors
    ) as exc:  # fmt: skip
        detail = str(exc) or type(exc).__name__
        raise CorruptImage(f"the {name} image could not be decoded: {detail}") from exc
