"""Placeholders (s3drop._placeholders): the ThumbHash port against the reference encoder, the
dominant colour, their place in a key, and the vendored decoder the page uses.

The reference is the ``thumbhash`` npm package (Evan Wallace's), pinned by
tests/e2e/package-lock.json and installed by ``scripts/test`` (npm ci); node runs it.
"""

from __future__ import annotations

import base64
import dataclasses
import io
import json
import random
import subprocess
from pathlib import Path

import pytest
from PIL import Image, ImageDraw
from tests import samples

from s3drop._images import ImageLimits, process
from s3drop._placeholders import (
    Placeholder,
    dominant_color,
    placeholder_of,
    thumbhash,
    thumbhash_data_url,
    thumbhash_rgba,
)
from s3drop._policy import LABEL_BYTES, filename_label, image_key, owner_key, parse_image_key

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "tests" / "e2e" / "node_modules" / "thumbhash" / "thumbhash.js"
VENDORED = ROOT / "src" / "s3drop" / "web" / "static" / "thumbhash.js"
LOCK = ROOT / "tests" / "e2e" / "package-lock.json"


def _reference() -> Path:
    if not REFERENCE.exists():
        pytest.fail(f"{REFERENCE} is missing: run ./scripts/test, which installs it with npm ci")
    return REFERENCE


def _node(script: str, payload: object) -> object:
    """Run an ES module with the reference imported as ``thumbhash``; stdin is ``payload``."""
    code = (
        f"import * as thumbhash from {json.dumps(str(_reference()))};\n"
        "import { readFileSync } from 'node:fs';\n"
        "const input = JSON.parse(readFileSync(0, 'utf8'));\n" + script
    )
    done = subprocess.run(
        ["node", "--input-type=module", "-e", code],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return json.loads(done.stdout)


def _reference_hashes(images: list[Image.Image]) -> list[bytes]:
    cases = [[im.width, im.height, base64.b64encode(im.tobytes()).decode()] for im in images]
    found = _node(
        "console.log(JSON.stringify(input.map(([w, h, b]) =>"
        " Array.from(thumbhash.rgbaToThumbHash(w, h, Buffer.from(b, 'base64'))))));",
        cases,
    )
    assert isinstance(found, list)
    return [bytes(item) for item in found]


def _drawing(seed: int, size: tuple[int, int], *, alpha: bool) -> Image.Image:
    """Shapes of random colours (and opacities) on a random background, as RGBA."""
    rng = random.Random(seed)
    background = (rng.randrange(256), rng.randrange(256), rng.randrange(256), 255)
    if alpha:
        background = (*background[:3], rng.randrange(256))
    image = Image.new("RGBA", size, background)
    draw = ImageDraw.Draw(image)
    width, height = size
    for _ in range(8):
        x, y = rng.randrange(width), rng.randrange(height)
        box = (x, y, x + rng.randrange(1, width + 1), y + rng.randrange(1, height + 1))
        colour = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        draw.ellipse(box, fill=(*colour, rng.randrange(256) if alpha else 255))
    return image


SIZES = [(100, 100), (100, 67), (67, 100), (40, 100), (100, 13), (7, 5), (1, 1), (2, 100)]


def test_the_thumbhash_is_the_reference_encoders_byte_for_byte() -> None:
    images = [
        _drawing(seed, size, alpha=alpha)
        for seed, size in enumerate(SIZES)
        for alpha in (False, True)
    ]
    images.append(samples.photo(3, (100, 75)).convert("RGBA"))
    images.append(Image.new("RGBA", (30, 20), (0, 0, 0, 0)))  # wholly transparent
    mine = [thumbhash(im.width, im.height, im.tobytes()) for im in images]
    assert mine == _reference_hashes(images)
    assert {bool(found[2] & 0x80) for found in mine} == {True, False}  # alpha-aware: both kinds


def test_a_one_colour_image_decodes_as_the_references_does() -> None:
    """One colour: every AC term is rounding noise (1e-17) that both encoders normalise into
    arbitrary digits, and that a scale of 0 then discards; the header and the picture agree."""
    image = Image.new("RGBA", (30, 20), (12, 200, 99, 255))
    mine = thumbhash(30, 20, image.tobytes())
    (reference,) = _reference_hashes([image])
    assert mine[:5] == reference[:5]
    assert mine[2] & 0x7C == 0  # the luminance scale is 0
    decoded = _node(
        "console.log(JSON.stringify(input.map((b) =>"
        " Array.from(thumbhash.thumbHashToRGBA(Buffer.from(b, 'base64')).rgba))));",
        [base64.b64encode(found).decode() for found in (mine, reference)],
    )
    assert isinstance(decoded, list)
    assert decoded[0] == decoded[1]


def test_the_thumbhash_refuses_what_the_reference_refuses() -> None:
    with pytest.raises(ValueError, match="doesn't fit in 100x100"):
        thumbhash(101, 1, bytes(404))
    with pytest.raises(ValueError, match="RGBA"):
        thumbhash(2, 2, bytes(15))


def test_a_placeholder_decodes_to_the_image_blurred() -> None:
    """What the page paints: the reference decoder's picture of the hash of a red-over-blue
    image is red at the top and blue at the bottom."""
    image = Image.new("RGB", (320, 240), (20, 40, 230))
    image.paste((230, 30, 30), (0, 0, 320, 120))
    found = placeholder_of(image)
    decoded = _node(
        "const image = thumbhash.thumbHashToRGBA(Buffer.from(input, 'base64'));"
        "console.log(JSON.stringify({w: image.w, h: image.h, rgba: Array.from(image.rgba)}));",
        base64.b64encode(found.thumbhash).decode(),
    )
    assert isinstance(decoded, dict)
    width, height, rgba = decoded["w"], decoded["h"], decoded["rgba"]
    assert width == 32
    assert abs(width / height - 4 / 3) < 0.1  # about the aspect ratio (it travels as 7:5)
    top = rgba[(2 * width + width // 2) * 4 : (2 * width + width // 2) * 4 + 3]
    bottom = rgba[((height - 3) * width + width // 2) * 4 :][:3]
    assert top[0] > 150 > top[2], top
    assert bottom[2] > 150 > bottom[0], bottom


def test_the_python_decoder_paints_what_the_reference_decoder_paints() -> None:
    """The template helpers' ThumbHash picture (thumbhash_rgba) against thumbHashToRGBA: the same
    size, every channel of every pixel within one level."""
    images = [_drawing(seed, size, alpha=seed % 2 == 1) for seed, size in enumerate(SIZES)]
    hashes = [thumbhash(im.width, im.height, im.tobytes()) for im in images]
    found = _node(
        "console.log(JSON.stringify(input.map((b) => {"
        " const image = thumbhash.thumbHashToRGBA(Buffer.from(b, 'base64'));"
        " return [image.w, image.h, Array.from(image.rgba)]; })));",
        [base64.b64encode(found).decode() for found in hashes],
    )
    assert isinstance(found, list)
    for hash_, (width, height, reference) in zip(hashes, found, strict=True):
        mine = thumbhash_rgba(hash_)
        assert mine[:2] == (width, height)
        assert max(abs(a - b) for a, b in zip(mine[2], reference, strict=True)) <= 1
    url = thumbhash_data_url(hashes[0])
    assert url.startswith("data:image/png;base64,")
    with Image.open(io.BytesIO(base64.b64decode(url.partition(",")[2]))) as png:
        assert png.size == (found[0][0], found[0][1])


# --- the dominant colour ----------------------------------------------------------------------


def _seventy_percent(
    colour: tuple[int, int, int], size: tuple[int, int] = (100, 80)
) -> Image.Image:
    """``colour`` on 70% of the pixels, random colours on the rest, scattered."""
    rng = random.Random(7)
    pixels = [colour] * (size[0] * size[1] * 7 // 10)
    pixels += [
        (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        for _ in range(size[0] * size[1] - len(pixels))
    ]
    rng.shuffle(pixels)
    image = Image.new("RGB", size)
    image.putdata(pixels)
    return image


def _seventy_percent_block(colour: tuple[int, int, int]) -> Image.Image:
    """A 640 x 480 photo-like image whose left 70% is ``colour``."""
    image = samples.photo(5, (640, 480))
    image.paste(colour, (0, 0, 448, 480))
    return image


def _mean(image: Image.Image) -> tuple[int, ...]:
    rgb = image.convert("RGB")
    count = rgb.width * rgb.height
    histograms = [band.histogram() for band in rgb.split()]
    return tuple(round(sum(v * n for v, n in enumerate(h)) / count) for h in histograms)


def _close(found: str, expected: tuple[int, ...], within: int) -> bool:
    values = bytes.fromhex(found)
    return all(abs(a - b) <= within for a, b in zip(values, expected, strict=True))


@pytest.mark.parametrize("colour", [(200, 30, 40), (20, 120, 220), (250, 250, 250), (5, 5, 5)])
def test_the_dominant_colour_is_what_most_of_the_image_is_not_the_mean(
    colour: tuple[int, int, int],
) -> None:
    image = _seventy_percent(colour)
    found = dominant_color(image.convert("RGBA"))
    assert _close(found, colour, 3), (found, colour)
    assert not _close(found, _mean(image), 12)  # the mean is another colour
    assert _close(placeholder_of(image).color, colour, 3)  # and through the whole placeholder


def test_the_dominant_colour_counts_only_opaque_pixels() -> None:
    # 80% transparent black (what many PNG editors leave), 20% opaque orange.
    image = Image.new("RGBA", (100, 100), (0, 0, 0, 0))
    image.paste((240, 140, 20, 255), (0, 0, 100, 20))
    assert _close(dominant_color(image), (240, 140, 20), 2)
    empty = Image.new("RGBA", (10, 10), (30, 60, 90, 0))  # nothing opaque: all pixels count
    assert dominant_color(empty) == "1e3c5a"


def test_an_srgb_profile_leaves_the_colours_as_they_are() -> None:
    image = Image.new("RGB", (20, 20), (10, 200, 30))
    assert placeholder_of(image, samples.srgb_icc()) == placeholder_of(image)
    assert placeholder_of(image).color == "0ac81e"


# --- made where the image is verified -----------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        (samples.encode(_seventy_percent_block((200, 30, 40)), "PNG"), "image/png"),
        (
            samples.encode(_seventy_percent_block((200, 30, 40)), "WEBP", lossless=True),
            "image/webp",
        ),
        (
            samples.encode(_seventy_percent_block((200, 30, 40)), "JPEG", quality=95),
            "image/jpeg",
        ),
        (samples.oriented_jpeg(6, size=(320, 240)), "image/jpeg"),
        (samples.gif(frames=3), "image/gif"),
    ],
    ids=["png", "webp", "jpeg", "jpeg-rotated", "gif"],
)
def test_every_accepted_image_gets_a_placeholder(data: bytes, content_type: str) -> None:
    processed = process(data, content_type, ImageLimits())
    assert processed.placeholder is not None
    # Made from the upright image: a landscape hash for a landscape image, and not the reverse.
    landscape = bool(processed.placeholder.thumbhash[4] & 0x80)
    assert landscape == (processed.width > processed.height)
    if processed.width == 640:
        assert _close(processed.placeholder.color, (200, 30, 40), 2)


def test_a_transparent_png_gets_an_alpha_thumbhash() -> None:
    image = Image.new("RGBA", (200, 100), (0, 0, 0, 0))
    image.paste((30, 90, 200, 255), (50, 25, 150, 75))
    processed = process(samples.encode(image, "PNG"), "image/png", ImageLimits())
    assert processed.placeholder is not None
    assert processed.placeholder.thumbhash[2] & 0x80  # the hash says the image has alpha
    assert _close(processed.placeholder.color, (30, 90, 200), 4)


# --- in the key ---------------------------------------------------------------------------------

UPLOAD_ID = "8204117022958cs3xx22qm2"


def _alpha_placeholder() -> Placeholder:
    image = _drawing(1, (100, 100), alpha=True)
    return Placeholder(thumbhash(100, 100, image.tobytes()), "a1b2c3")


def test_a_key_carries_the_placeholder_and_gives_it_back() -> None:
    placeholder = _alpha_placeholder()
    key = image_key(
        UPLOAD_ID,
        "image/png",
        width=3,
        height=2,
        size=10,
        filename="cat.png",
        placeholder=placeholder,
    )
    name = key.removeprefix("images/")
    assert name.startswith(f"{UPLOAD_ID}.3x2.10.n{filename_label('cat.png')}.p")
    assert name.endswith(f".c{placeholder.color}.png")
    facts = parse_image_key(key)
    assert facts is not None
    assert facts.placeholder == placeholder
    assert facts.filename == "cat.png"
    assert facts.key == key
    assert parse_image_key(owner_key("alice", key)) == facts
    # A changed copy names its own key, not the one parsed.
    changed = dataclasses.replace(facts, width=4)
    assert changed.key == key.replace(".3x2.", ".4x2.")
    without_name = image_key(
        UPLOAD_ID, "image/gif", width=3, height=2, size=10, placeholder=placeholder
    )
    assert parse_image_key(without_name).placeholder == placeholder  # type: ignore[union-attr]
    assert placeholder.to_dict() == {
        "thumbhash": base64.b64encode(placeholder.thumbhash).decode(),
        "color": "#a1b2c3",
    }
    assert Placeholder.from_dict(placeholder.to_dict()) == placeholder
    assert Placeholder.from_dict(None) is None


def test_the_longest_key_stays_far_below_s3s_limit() -> None:
    """The longest filename label, the longest ThumbHash (an alpha one), the widest facts: well
    under S3's 1024 bytes, with room for the segments others add, and for an owner's index."""
    longest = "写" * (LABEL_BYTES // 3 + 1)
    key = image_key(
        "0" * 13 + "a" * 10,
        "image/jpeg",
        width=99_999_999,
        height=99_999_999,
        size=999_999_999_999,
        filename=longest,
        placeholder=_alpha_placeholder(),
    )
    assert parse_image_key(key) is not None
    assert len(key) < 300, len(key)
    assert len(owner_key("a" * 100, key)) < 1024 // 2


@pytest.mark.parametrize(
    "segments",
    [
        ".cabcdef.pqcaaaaaaaaa",  # out of order
        ".paaaaaaaaaaaaaa",  # a ThumbHash without its colour
        ".cabcdef",  # a colour without its ThumbHash
        ".paaaaaaaa.cABCDEF",  # not lowercase hex
        ".paaaaaaaa.cabcde",  # five digits
        ".pa1aaaaaaa.cabcdef",  # not base32
        ".paaaaaaaab.cabcdef",  # not a base32 s3drop wrote (stray bits)
        ".paaaaaaaa.cabcdef.cabcdef",  # twice
        ".xabc",  # a letter nobody wrote
        ".nmfrggzdfmztwq2lk.nmfrggzdfmztwq2lk",  # a name twice
    ],
)
def test_segments_s3drop_did_not_write_make_no_image(segments: str) -> None:
    assert parse_image_key(f"images/{UPLOAD_ID}.3x2.10{segments}.png") is None


def test_keys_of_images_promoted_before_placeholders_still_parse() -> None:
    for key in (
        f"images/{UPLOAD_ID}.3x2.10.png",
        f"images/{UPLOAD_ID}.3x2.10.n{filename_label('cat.png')}.png",
    ):
        facts = parse_image_key(key)
        assert facts is not None
        assert facts.placeholder is None
        assert facts.key == key


# --- the decoder the page uses ------------------------------------------------------------------


def test_the_vendored_decoder_is_the_pinned_npm_packages_file_with_its_license() -> None:
    lock = json.loads(LOCK.read_text())
    pinned = lock["packages"]["node_modules/thumbhash"]["version"]
    installed = json.loads((REFERENCE.parent / "package.json").read_text())
    assert installed["version"] == pinned == "0.1.1"
    vendored = VENDORED.read_text()
    header, _, rest = vendored.partition(" */\n")
    assert rest == _reference().read_text()  # unchanged, byte for byte
    assert f"thumbhash {pinned}" in header
    assert "MIT License" in header
    assert "Copyright (c) 2023 Evan Wallace" in header
    assert "Permission is hereby granted, free of charge" in header
