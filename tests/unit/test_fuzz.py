"""Property tests of everything that reads untrusted bytes: the sniffer and the header readers
(:mod:`s3drop._headers`), the structure walks and the metadata strip (:mod:`s3drop._containers`),
and the whole judgement of a file (:func:`s3drop._images.check_header` then
:func:`s3drop._images.process`).

For any bytes, and for random mutations of every sample file, the answer is a result or an
:class:`~s3drop._errors.ImageRejected`, never another exception, within a time bound per example.
The budget is fixed (derandomised, no example database), so CI runs the same examples every time;
every bug found is kept as an ``@example``.
"""

from __future__ import annotations

import contextlib
import io
import struct
import zlib
from collections.abc import Callable
from datetime import timedelta
from functools import cache

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from PIL import Image
from tests import samples

from s3drop import _containers as containers
from s3drop import _formats as formats
from s3drop import _headers as headers
from s3drop import _images as images
from s3drop._errors import ImageRejected

#: Pillow warns about the corrupt EXIF it reads in mutated files; the answer is what matters here.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

LIMITS = images.ImageLimits(max_frames=50)
TYPES = list(formats.FORMATS)

#: Same examples on every run, nothing remembered between runs, a bound on each example; the
#: whole file takes about 3 s of CPU (under 15 s of wall time on a busy 2-core machine).
FUZZ = settings(
    derandomize=True,
    database=None,
    deadline=timedelta(seconds=2),
    max_examples=300,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

#: Mutations of the 16 sample files per test: 500 fixed ones, about 30 a sample, one edit to four
#: each (800 cost about 1.3 s of CPU more a run); the bugs found are kept as ``@example``.
MUTATIONS = 500

#: What each format's files start with, so arbitrary bytes after it reach the format's own code.
MAGIC = {
    "image/png": b"\x89PNG\r\n\x1a\n",
    "image/jpeg": b"\xff\xd8\xff",
    "image/gif": b"GIF89a",
    "image/webp": b"RIFF\x00\x01\x00\x00WEBP",
    "image/avif": b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf",
    "image/heic": b"\x00\x00\x00\x1cftypheic\x00\x00\x00\x00mif1heicmiaf",
    "image/heif": b"\x00\x00\x00\x18ftypmif1\x00\x00\x00\x00mif1miaf",
}


@cache
def sample_files() -> dict[str, tuple[bytes, str]]:
    """Small files of every format and flavour s3drop accepts: name -> (bytes, type)."""
    photo = samples.photo(3, (48, 32))
    apng = [samples.photo(i, (24, 16)) for i in range(3)]
    icc = samples.srgb_icc()
    return {
        "png": (samples.encode(photo, "PNG", icc_profile=icc), "image/png"),
        "png palette": (samples.encode(photo.convert("P"), "PNG", transparency=0), "image/png"),
        "png 16-bit": (samples.png16(), "image/png"),
        "apng": (
            samples.encode(apng[0], "PNG", save_all=True, append_images=apng[1:]),
            "image/png",
        ),
        "jpeg": (samples.encode(photo, "JPEG", icc_profile=icc), "image/jpeg"),
        "jpeg progressive": (samples.encode(photo, "JPEG", progressive=True), "image/jpeg"),
        "jpeg cmyk": (samples.encode(photo.convert("CMYK"), "JPEG"), "image/jpeg"),
        "jpeg exif": (samples.oriented_jpeg(6, size=(32, 16)), "image/jpeg"),
        "gif": (samples.gif(3, size=(24, 16)), "image/gif"),
        "gif looping": (samples.gif_of_frames(3), "image/gif"),
        "webp": (samples.encode(photo, "WEBP", icc_profile=icc), "image/webp"),
        "webp lossless": (samples.encode(photo, "WEBP", lossless=True), "image/webp"),
        "webp animated": (
            samples.encode(apng[0], "WEBP", save_all=True, append_images=apng[1:]),
            "image/webp",
        ),
        "avif": (samples.encode(photo, "AVIF", exif=samples.gps_exif()), "image/avif"),
        "heic": (samples.heic(3, (48, 32)), "image/heic"),
        "heic rotated": (samples.oriented_heic(6, size=(32, 16)), "image/heic"),
    }


def fix_png_crcs(data: bytes) -> bytes:
    """``data`` with every whole PNG chunk's CRC made right, so a mutation reaches past the check."""
    out = bytearray(data)
    pos = 8
    while pos + 12 <= len(out):
        length = int.from_bytes(out[pos : pos + 4], "big")
        end = pos + 12 + length
        if end > len(out):
            break
        out[end - 4 : end] = struct.pack(">I", zlib.crc32(out[pos + 4 : end - 4]))
        pos = end
    return bytes(out)


@st.composite
def mutated_samples(draw: st.DrawFn) -> tuple[str, bytes, str]:
    """A sample file with one to four random edits: bits flipped, a byte or a length field set,
    bytes inserted, deleted or duplicated, the end cut off."""
    name = draw(st.sampled_from(sorted(sample_files())))
    data, content_type = sample_files()[name]
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, max(len(out) - 1, 0)))
        edit = draw(st.sampled_from(["flip", "byte", "u32", "insert", "delete", "dup", "cut"]))
        if edit == "flip" and out:
            out[at] ^= 1 << draw(st.integers(0, 7))
        elif edit == "byte" and out:
            out[at] = draw(st.sampled_from([0x00, 0x01, 0x7F, 0x80, 0xFE, 0xFF]))
        elif edit == "u32":
            value = draw(st.sampled_from([0, 1, 8, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF]))
            out[at : at + 4] = value.to_bytes(4, draw(st.sampled_from(["big", "little"])))
        elif edit == "insert":
            out[at:at] = draw(st.binary(min_size=1, max_size=24))
        elif edit == "delete":
            del out[at : at + draw(st.integers(1, 24))]
        elif edit == "dup":
            out[at:at] = out[at : at + draw(st.integers(1, 64))]
        elif edit == "cut":
            del out[at:]
    result = bytes(out)
    if content_type == "image/png" and draw(st.booleans()):
        result = fix_png_crcs(result)
    return name, result, content_type


def edited(name: str, edit: Callable[[bytearray], object]) -> tuple[str, bytes, str]:
    """Sample ``name`` with ``edit`` applied: a bug the fuzzing found, kept as an example."""
    data, content_type = sample_files()[name]
    out = bytearray(data)
    edit(out)
    return name, bytes(out), content_type


def _unknown_codec_configuration(avif: bytearray) -> None:
    at = avif.index(b"av1C")
    avif[at : at + 4] = b"\xff" * 4  # libavif: "Missing or empty image item" (a RuntimeError)


def _bad_matrix_coefficients(avif: bytearray) -> None:
    at = avif.index(b"nclx")
    avif[at + 9] = 0x80  # libavif: "Conversion from YUV failed" (a RuntimeError)


def _riff_header_only(webp: bytearray) -> None:
    webp[4:] = bytes(4)  # a RIFF of no chunks: the walk asked for more (NeedMore), not refused


def judge(data: bytes, declared: str) -> images.ProcessedImage:
    head = data[: images.HEADER_BYTES]
    found = images.check_header(
        head, declared=declared, allowed=TYPES, limits=LIMITS, whole=len(head) == len(data)
    )
    if found is None:
        found = images.check_header(
            data, declared=declared, allowed=TYPES, limits=LIMITS, whole=True
        )
    assert found is not None
    return images.process(data, found, LIMITS)


# --- any bytes --------------------------------------------------------------------------------


@FUZZ
@given(st.binary(max_size=256))
def test_sniff_answers_for_any_bytes(data: bytes) -> None:
    found = formats.sniff(data)
    assert found.content_type is None or found.content_type in formats.FORMATS
    assert found.description


@FUZZ
@given(st.sampled_from(TYPES), st.binary(max_size=512))
def test_header_size_answers_or_rejects_any_bytes(content_type: str, tail: bytes) -> None:
    try:
        width, height = formats.header_size(MAGIC[content_type] + tail, content_type)
    except (headers.NeedMore, ImageRejected):
        return
    assert isinstance(width, int)
    assert isinstance(height, int)


@FUZZ
@given(st.sampled_from(TYPES), st.binary(max_size=512))
def test_walk_answers_or_rejects_any_bytes(content_type: str, tail: bytes) -> None:
    try:
        layout = formats.walk(MAGIC[content_type] + tail, content_type, max_frames=50)
    except ImageRejected:
        return
    _assert_strip_is_stable(layout, content_type)


@FUZZ
@given(st.sampled_from(TYPES), st.binary(max_size=512))
def test_the_whole_judgement_answers_or_rejects_any_bytes(content_type: str, tail: bytes) -> None:
    with contextlib.suppress(ImageRejected):
        judge(MAGIC[content_type] + tail, content_type)


# --- mutated samples --------------------------------------------------------------------------


def test_every_sample_is_accepted_as_it_is() -> None:
    for name, (data, content_type) in sample_files().items():
        processed = judge(data, content_type)
        stored_as = formats.by_type(content_type).stored_as or content_type
        assert processed.content_type == stored_as, name


def _assert_strip_is_stable(layout: containers.Layout, content_type: str) -> None:
    """What the strip keeps walks again to the same image, and strips to itself."""
    again = formats.walk(layout.stripped, content_type, max_frames=50)
    assert (again.width, again.height, again.frames) == (layout.width, layout.height, layout.frames)
    assert again.stripped == layout.stripped


@settings(FUZZ, max_examples=MUTATIONS)
@given(mutated_samples())
@example(edited("webp animated", _riff_header_only))
def test_the_walk_of_a_mutated_sample_answers_or_rejects(case: tuple[str, bytes, str]) -> None:
    _, data, content_type = case
    with contextlib.suppress(headers.NeedMore, ImageRejected):
        formats.header_size(data, content_type)
    try:
        layout = formats.walk(data, content_type, max_frames=50)
    except ImageRejected:
        return
    _assert_strip_is_stable(layout, content_type)


@settings(FUZZ, max_examples=MUTATIONS)
@given(mutated_samples())
@example(edited("avif", _unknown_codec_configuration))
@example(edited("avif", _bad_matrix_coefficients))
@example(edited("webp animated", _riff_header_only))
def test_the_judgement_of_a_mutated_sample_answers_or_rejects(
    case: tuple[str, bytes, str],
) -> None:
    _, data, content_type = case
    try:
        processed = judge(data, content_type)
    except ImageRejected:
        return
    assert processed.width >= 1
    assert processed.height >= 1
    Image.open(io.BytesIO(processed.thumbnail)).load()
