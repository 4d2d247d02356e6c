"""The structure walks' caps (scans, segments, chunks, boxes, nesting) and what they keep: every
kept segment at its standard size, ICC profiles only when sound. No storage, no network."""

from __future__ import annotations

import io
import itertools
import struct
import zlib
from collections.abc import Callable

import pytest
from PIL import Image, ImageCms
from tests import samples

from s3drop import _containers as containers
from s3drop import _formats as formats
from s3drop import _headers as headers
from s3drop import _images as images
from s3drop._errors import CorruptImage, TooComplex
from s3drop._plugins import png

LIMITS = images.ImageLimits()


def judge(data: bytes, declared: str) -> images.ProcessedImage:
    """What completion does with a file in storage: its header first, then the whole of it."""
    head = data[: images.HEADER_BYTES]
    kinds = list(formats.FORMATS)
    found = images.check_header(
        head, declared=declared, allowed=kinds, limits=LIMITS, whole=len(head) == len(data)
    )
    if found is None:
        found = images.check_header(
            data, declared=declared, allowed=kinds, limits=LIMITS, whole=True
        )
    assert found is not None
    return images.process(data, found, LIMITS)


def decoded(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def _no_decoder(*args: object, **kwargs: object) -> Image.Image:
    raise AssertionError("a decoder ran")


# --- progressive scans ------------------------------------------------------------------------


def test_the_1000_scan_jpeg_is_refused_by_the_scan_cap_before_any_decode(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = samples.many_scans_jpeg()  # 7000 x 7000, 1000 scans, about 260 KB
    assert len(data) < 300_000
    assert len(samples.jpeg_scans(data)) == 1000
    monkeypatch.setattr(Image, "open", _no_decoder)  # before: 27 s of CPU, and accepted
    with pytest.raises(TooComplex) as refused:
        judge(data, "image/jpeg")
    assert refused.value.code == "too_complex"
    assert refused.value.status == 422
    assert refused.value.message == (
        "the JPEG image has more than 100 progressive scans; encoders write at most a few dozen, "
        "and each one costs a pass over the whole image, so it is refused before decoding"
    )


def test_a_jpeg_of_exactly_the_cap_of_scans_is_accepted_and_one_more_refused() -> None:
    assert judge(samples.many_scans_jpeg(headers.MAX_SCANS, (64, 64)), "image/jpeg").width == 64
    with pytest.raises(TooComplex):
        judge(samples.many_scans_jpeg(headers.MAX_SCANS + 1, (64, 64)), "image/jpeg")


@pytest.mark.parametrize(("mode", "scans"), [("L", 6), ("RGB", 10), ("CMYK", 18)])
def test_what_libjpeg_writes_is_far_below_the_scan_cap(mode: str, scans: int) -> None:
    data = samples.encode(samples.photo(1, (64, 48)).convert(mode), "JPEG", progressive=True)
    assert len(samples.jpeg_scans(data)) == scans < headers.MAX_SCANS
    assert judge(data, "image/jpeg").data == data


# --- segments, chunks, boxes, blocks ----------------------------------------------------------


def _webp_flood(count: int) -> bytes:
    webp = samples.encode(samples.photo(1, (16, 16)), "WEBP")
    return samples._riff(webp[12:] + b"JUNK\x00\x00\x00\x00" * count)


def _avif_flood(count: int) -> bytes:
    avif = samples.encode(samples.photo(1, (16, 16)), "AVIF")
    return avif + samples.iso_box(b"free", b"") * count


def _gif_flood(count: int) -> bytes:
    data = samples.gif_of_frames(1)
    # a comment extension of ``count`` one-byte sub-blocks
    return data[:-1] + b"\x21\xfe" + b"\x01x" * count + b"\x00" + data[-1:]


FLOODS: dict[str, tuple[Callable[[int], bytes], str, int, str]] = {
    # name: (make(count), type, count in about 10 MB, the parts the message names)
    "2.5 M empty JPEG comments": (samples.com_flood_jpeg, "image/jpeg", 2_500_000, "segments"),
    "800 k empty PNG IDAT chunks": (samples.idat_flood_png, "image/png", 800_000, "chunks"),
    "1.2 M empty WebP chunks": (_webp_flood, "image/webp", 1_200_000, "chunks"),
    "1.2 M empty AVIF boxes": (_avif_flood, "image/avif", 1_200_000, "boxes"),
    "5 M one-byte GIF sub-blocks": (_gif_flood, "image/gif", 5_000_000, "blocks"),
}


@pytest.mark.parametrize("name", list(FLOODS))
def test_a_flood_of_empty_parts_is_refused_in_milliseconds(name: str) -> None:
    make, content_type, count, parts = FLOODS[name]
    data = make(count)
    assert 9_000_000 < len(data) <= 10 * 1024 * 1024
    # Before: 2.6 s (JPEG), 1.6 s (PNG) of walking, then accepted (bench/ has no row for it: the
    # cap makes it a refusal, which is what is tested here, not a time).
    with pytest.raises(TooComplex, match=rf"is made of more than [\d,]+ {parts}; real images"):
        judge(data, content_type)
    # The walk alone refuses it too (the header check may have come first).
    with pytest.raises(TooComplex):
        formats.walk(data, content_type, max_frames=500)


@pytest.mark.parametrize("name", list(FLOODS))
def test_a_few_thousand_parts_are_still_accepted(name: str) -> None:
    make, content_type, _, _ = FLOODS[name]
    data = make(3000)
    assert judge(data, content_type).content_type == content_type


def test_a_jpeg_of_fill_bytes_is_accepted_and_they_are_dropped() -> None:
    good = samples.jpeg(size=(16, 16))
    data = good[:2] + b"\xff" * 9_000_000 + good[2:]  # fill bytes before a marker are legal
    processed = judge(data, "image/jpeg")
    assert processed.data == good


# --- AVIF nesting -----------------------------------------------------------------------------


def test_deeply_nested_avif_boxes_are_refused_without_recursion() -> None:
    data = samples.nested_avif(5000)
    with pytest.raises(TooComplex, match="nests its boxes more than 16 levels deep"):
        images.check_header(
            data, declared="image/avif", allowed=["image/avif"], limits=LIMITS, whole=True
        )
    with pytest.raises(TooComplex, match="nests its boxes more than 16 levels deep"):
        formats.walk(data, "image/avif", max_frames=500)


def test_avif_boxes_nested_within_the_cap_are_walked() -> None:
    assert formats.header_size(samples.nested_avif(10), "image/avif") == (16, 16)


def test_an_avif_box_that_overflows_its_parent_is_corrupt() -> None:
    data = bytearray(samples.nested_avif(3))
    at = data.index(b"ispe") - 4
    data[at : at + 4] = (1000).to_bytes(4, "big")
    with pytest.raises(CorruptImage, match="overflows its parent"):
        formats.header_size(bytes(data), "image/avif")


# --- kept segments, rewritten -----------------------------------------------------------------


@pytest.mark.parametrize("name", list(samples.hidden_in_kept_segments()))
def test_bytes_hidden_in_a_kept_segment_are_not_stored(name: str) -> None:
    data, content_type = samples.hidden_in_kept_segments()[name]
    assert samples.HIDDEN in data
    processed = judge(data, content_type)
    assert samples.HIDDEN not in processed.data
    assert samples.HIDDEN[:8] not in processed.data
    stored = decoded(processed.data)
    assert samples.HIDDEN[:8] not in stored.info.get("icc_profile", b"")
    assert stored.size == (64, 48) or content_type == "image/gif"


def _segments(data: bytes) -> dict[int, list[bytes]]:
    """A JPEG's segments before its first scan, by marker."""
    found: dict[int, list[bytes]] = {}
    pos = 2
    while data[pos + 1] != 0xDA:
        end = pos + 2 + int.from_bytes(data[pos + 2 : pos + 4], "big")
        found.setdefault(data[pos + 1], []).append(data[pos:end])
        pos = end
    return found


def test_jfif_and_adobe_are_kept_at_their_standard_sizes() -> None:
    hidden = samples.hidden_in_kept_segments()
    jfif = _segments(judge(hidden["JPEG: JFIF APP0 tail"][0], "image/jpeg").data)[0xE0]
    assert jfif == [b"\xff\xe0\x00\x10JFIF\x00\x01\x01\x01\x00\x48\x00\x48\x00\x00"]
    adobe = _segments(judge(hidden["JPEG: Adobe APP14 tail"][0], "image/jpeg").data)[0xEE]
    assert adobe == [b"\xff\xee\x00\x0eAdobe\x00\x64\x00\x00\x00\x00\x01"]


def test_a_cmyk_jpegs_adobe_segment_keeps_its_transform_and_its_colours() -> None:
    data = samples.cmyk_jpeg()
    processed = judge(data, "image/jpeg")
    assert decoded(processed.data).tobytes() == decoded(data).tobytes()
    assert [segment[-1] for segment in _segments(processed.data)[0xEE]] == [
        segment[-1] for segment in _segments(data)[0xEE]
    ]


def test_a_sound_icc_profile_with_hidden_bytes_is_kept_cleaned() -> None:
    icc = samples.srgb_icc()
    hidden = samples.hidden_in_kept_segments()
    for name in (
        "JPEG: ICC profile reserved bytes and gap",
        "PNG: ICC profile reserved bytes and gap",
    ):
        data, content_type = hidden[name]
        kept = decoded(judge(data, content_type).data).info["icc_profile"]
        assert kept[:84] == samples.icc_with_hidden_bytes()[:84]
        assert kept[84:128] == bytes(44)  # reserved bytes zeroed, and with them the profile ID
        assert kept[128 : len(icc)] == icc[128:]  # every tag as it was
        assert kept[len(icc) :] == bytes(len(samples.HIDDEN))
    for name in ("JPEG: a fake ICC profile", "JPEG: ICC profile with a tail past its size"):
        assert "icc_profile" not in decoded(judge(hidden[name][0], "image/jpeg").data).info


def test_the_samples_icc_profiles_do_not_depend_on_the_clock(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """LittleCMS writes the time into a profile's creation date: the test above, comparing a
    sample's profile with one it made itself, failed when a second ticked in between (byte 35,
    the seconds). Here every profile LittleCMS makes is a second later than the one before."""
    real = ImageCms.ImageCmsProfile.tobytes
    seconds = itertools.count()

    def ticking(profile: ImageCms.ImageCmsProfile) -> bytes:
        data = bytearray(real(profile))
        data[34:36] = (next(seconds) % 60).to_bytes(2, "big")
        return bytes(data)

    monkeypatch.setattr(ImageCms.ImageCmsProfile, "tobytes", ticking)
    assert samples.srgb_icc() == samples.srgb_icc()
    assert samples.icc_with_hidden_bytes() == samples.icc_with_hidden_bytes()
    assert samples.srgb_icc()[24:36] == samples.ICC_DATE


def test_a_profile_split_over_several_app2_segments_is_reassembled_or_dropped() -> None:
    icc = samples.srgb_icc()
    base = samples.jpeg(5, size=(64, 48))

    def with_chunks(*chunks: tuple[int, int, bytes]) -> bytes:
        app2 = b"".join(
            samples.jpeg_segment(0xE2, b"ICC_PROFILE\x00" + bytes([seq, count]) + part)
            for seq, count, part in chunks
        )
        return base[:2] + app2 + base[2:]

    halves = icc[:300], icc[300:]
    in_order = judge(with_chunks((1, 2, halves[0]), (2, 2, halves[1])), "image/jpeg")
    assert decoded(in_order.data).info["icc_profile"] == icc
    swapped = judge(with_chunks((2, 2, halves[1]), (1, 2, halves[0])), "image/jpeg")
    assert decoded(swapped.data).info["icc_profile"] == icc
    for broken in (
        with_chunks((1, 2, halves[0])),  # a chunk missing
        with_chunks((1, 2, halves[0]), (1, 2, halves[1])),  # a sequence number twice
        with_chunks((1, 2, halves[0]), (2, 3, halves[1])),  # counts that disagree
        with_chunks((1, 1, icc[:36] + b"xxxx" + icc[40:])),  # no 'acsp' signature
        with_chunks((1, 1, icc[:128] + (10_000).to_bytes(4, "big") + icc[132:])),  # tag count
    ):
        processed = judge(broken, "image/jpeg")
        assert b"ICC_PROFILE" not in processed.data
        assert "icc_profile" not in decoded(processed.data).info


@pytest.mark.parametrize(
    ("chunk", "kept"),
    [
        (b"gAMA", True),
        (b"pHYs", True),
        (b"sRGB", True),
        (b"cHRM", True),
        (b"tRNS", True),
        (b"bKGD", True),
        (b"sBIT", True),
    ],
)
def test_png_ancillary_chunks_are_kept_only_at_their_standard_size(
    chunk: bytes, kept: bool
) -> None:
    payload = {
        b"gAMA": b"\0\0\xb1\x8f",
        b"pHYs": b"\0\0\x0b\x13\0\0\x0b\x13\x01",
        b"sRGB": b"\0",
        b"cHRM": bytes(32),
        b"tRNS": b"\0\1\0\2\0\3",  # an RGB image: one colour, 6 bytes
        b"bKGD": b"\0\1\0\2\0\3",
        b"sBIT": b"\x08\x08\x08",
    }[chunk]
    good = samples._png_with(samples.png_chunk(chunk, payload))
    assert chunk in judge(good, "image/png").data
    for size in (len(payload) - 1, len(payload) + 1):
        odd = samples._png_with(samples.png_chunk(chunk, (payload * 2)[:size]))
        assert chunk not in judge(odd, "image/png").data


@pytest.mark.parametrize(
    ("chunk", "payload", "message"),
    [
        (b"fcTL", bytes(27), "'fcTL' chunk is 27 bytes, not 26"),
        (b"acTL", bytes(9), "'acTL' chunk is 9 bytes, not 8"),
        (b"PLTE", bytes(4), "its palette is 4 bytes"),
    ],
)
def test_png_structural_chunks_of_another_size_are_corrupt(
    chunk: bytes, payload: bytes, message: str
) -> None:
    with pytest.raises(CorruptImage, match=message):
        judge(samples._png_with(samples.png_chunk(chunk, payload)), "image/png")


def test_an_unchanged_png_is_stored_as_the_very_same_bytes() -> None:
    data = samples.png(2, size=(64, 48), icc_profile=samples.srgb_icc())
    assert formats.walk(data, "image/png", max_frames=500).stripped is data


def test_a_webp_chunks_padding_byte_is_stored_as_zero() -> None:
    data = samples.webp_with_odd_chunk()
    processed = judge(data, "image/webp")
    at = data.index(b"ICCP") + 8 + int.from_bytes(data[data.index(b"ICCP") + 4 :][:4], "little")
    assert data[at : at + 1] == samples.HIDDEN[:1]
    assert processed.data == data[:at] + b"\0" + data[at + 1 :]
    assert decoded(processed.data).info["icc_profile"] == decoded(data).info["icc_profile"]


def test_an_avif_box_no_decoder_reads_is_blanked_in_place() -> None:
    data, _ = samples.hidden_in_kept_segments()["AVIF: an unknown box"]
    processed = judge(data, "image/avif")
    size = 8 + len(samples.HIDDEN)
    assert processed.data == data[:-size] + size.to_bytes(4, "big") + b"free" + bytes(size - 8)
    assert decoded(processed.data).tobytes() == decoded(data).tobytes()


def test_icc_profile_checks() -> None:
    icc = samples.srgb_icc()
    assert containers.icc_profile(icc) is icc  # a clean profile is not copied
    assert containers.icc_profile(icc + b"x") is None  # size is not the declared one
    assert containers.icc_profile(icc[:131]) is None
    too_big = struct.pack(">I", 5 * 1024 * 1024) + bytes(5 * 1024 * 1024 - 4)
    assert containers.icc_profile(too_big) is None
    outside = bytearray(icc)
    outside[132 + 4 : 132 + 8] = (len(icc) - 4).to_bytes(4, "big")  # the first tag runs past
    assert containers.icc_profile(bytes(outside)) is None
    compressed = zlib.compress(icc)
    assert png._iccp(b"name\0\0" + compressed) == b"name\0\0" + compressed
    assert png._iccp(b"name\0\1" + compressed) is None  # an unknown method
    assert png._iccp(b"\0\0" + compressed) is None  # no name
    assert png._iccp(b"name\0\0" + compressed[:-4]) is None  # stream cut off
