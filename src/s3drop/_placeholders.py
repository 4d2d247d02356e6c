"""What a page paints while an image loads: its ThumbHash and its dominant colour.

Both are made at promotion, in the decode sandbox (:mod:`s3drop._sandbox`), from the
thumbnail-sized image :mod:`s3drop._images` has already decoded (no second decode), and both travel
in the image's key (``.p<thumbhash>.c<rrggbb>``, see :func:`s3drop._policy.image_key`), so a
gallery page still costs one listing call and no read per image.

- The `ThumbHash <https://evanw.github.io/thumbhash/>`_ (Evan Wallace's algorithm, MIT): about 25
  bytes that decode to a blurred 32 px picture of the image, alpha included. :func:`thumbhash` is a
  port of the reference encoder (``rgbaToThumbHash`` of the ``thumbhash`` npm package, which the
  page and the element use to decode: ``web/static/thumbhash.js``); the tests hold it to that
  encoder.
- The dominant colour: the most populous of a few median-cut clusters of the opaque pixels, not the
  mean (the mean of a red flower on green leaves is brown). Painted at once, before the ThumbHash
  is decoded, and by the template helpers as an inline background.

Images promoted before placeholders existed have none: the API says ``"placeholder": null``.
"""

from __future__ import annotations

import base64
import io
import math
import re
from dataclasses import dataclass
from operator import mul
from typing import TYPE_CHECKING, Any

from . import _labels as labels

if TYPE_CHECKING:  # Pillow is imported where pixels are handled, so the CLI starts fast
    from PIL import Image

#: The largest side of the image a ThumbHash is computed from (the reference encoder's limit).
THUMBHASH_SIDE = 100
#: How many clusters the dominant colour is chosen among.
CLUSTERS = 8
#: A pixel at least this opaque counts for the dominant colour (when any pixel is).
OPAQUE = 128

_COLOR = re.compile(r"[0-9a-f]{6}")
_THUMBHASH_KEY = re.compile(r"[a-z2-7]{8,64}")


@dataclass(frozen=True)
class Placeholder:
    """An image's ThumbHash (raw bytes) and dominant colour (``rrggbb``, lowercase hex)."""

    thumbhash: bytes
    color: str

    def to_dict(self) -> dict[str, Any]:
        """The API's JSON: the ThumbHash in standard base64 (what the decoders take), the colour
        as CSS writes it."""
        return {"thumbhash": base64.b64encode(self.thumbhash).decode(), "color": f"#{self.color}"}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Placeholder | None:
        """The placeholder of the API's JSON (None stays None)."""
        if data is None:
            return None
        color = str(data["color"]).removeprefix("#").lower()
        if not _COLOR.fullmatch(color):
            raise ValueError(f"not a colour: {data['color']!r}")
        return cls(thumbhash=base64.b64decode(data["thumbhash"], validate=True), color=color)

    @property
    def css_color(self) -> str:
        """The colour as CSS writes it (``#rrggbb``)."""
        return f"#{self.color}"

    # --- in a key: ``p<thumbhash as base32>`` and ``c<rrggbb>`` (see s3drop._policy.image_key)

    @property
    def thumbhash_label(self) -> str:
        """The ThumbHash as key characters (``a-z2-7``): lowercase base32, no padding."""
        return labels.encode(self.thumbhash)

    @classmethod
    def from_labels(cls, thumbhash: str | None, color: str | None) -> Placeholder | None:
        """The placeholder a key's ``p`` and ``c`` segments stand for; None unless both are
        there and are ones s3drop wrote."""
        if thumbhash is None or color is None or not _COLOR.fullmatch(color):
            return None
        data = labels.decode(thumbhash) if _THUMBHASH_KEY.fullmatch(thumbhash) else None
        if data is None or len(data) < 5:  # a ThumbHash has 5 bytes of header at least
            return None
        return cls(thumbhash=data, color=color)


def placeholder_style(placeholder: Placeholder, *, thumbhash: bool = False) -> str:
    """An inline ``style`` that paints the dominant colour behind an ``<img>`` while it loads (the
    template helpers of the framework adapters use it); with ``thumbhash``, the ThumbHash's
    picture too (a PNG data URL of about 2 KB: it stays behind the image, so for opaque ones)."""
    style = f"background-color: {placeholder.css_color}"
    if thumbhash:
        style += f"; background-image: url({thumbhash_data_url(placeholder.thumbhash)})"
        style += "; background-size: cover; background-position: center"
    return style


def thumbhash_data_url(hash_: bytes) -> str:
    """The picture a ThumbHash stands for (:func:`thumbhash_rgba`) as a PNG data URL."""
    from PIL import Image

    width, height, rgba = thumbhash_rgba(hash_)
    out = io.BytesIO()
    Image.frombytes("RGBA", (width, height), rgba).save(out, "PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()


def thumbhash_rgba(hash_: bytes) -> tuple[int, int, bytes]:
    """A ThumbHash decoded to RGBA pixels (at most 32 a side): the reference decoder's
    ``thumbHashToRGBA``, with separable sums (a pixel may differ from it by one level)."""
    header24 = hash_[0] | (hash_[1] << 8) | (hash_[2] << 16)
    header16 = hash_[3] | (hash_[4] << 8)
    l_dc = (header24 & 63) / 63
    p_dc = ((header24 >> 6) & 63) / 31.5 - 1
    q_dc = ((header24 >> 12) & 63) / 31.5 - 1
    l_scale = ((header24 >> 18) & 31) / 31
    has_alpha = bool(header24 >> 23)
    p_scale = ((header16 >> 3) & 63) / 63
    q_scale = ((header16 >> 9) & 63) / 63
    landscape = bool(header16 >> 15)
    long_side = 5 if has_alpha else 7
    lx = max(3, long_side if landscape else header16 & 7)
    ly = max(3, header16 & 7 if landscape else long_side)
    a_dc = (hash_[5] & 15) / 15 if has_alpha else 1.0
    a_scale = (hash_[5] >> 4) / 15 if has_alpha else 0.0
    start = 6 if has_alpha else 5
    index = 0

    def channel(nx: int, ny: int, scale: float) -> list[list[float]]:
        """The AC terms by row (cy) and column (cx)."""
        nonlocal index
        rows: list[list[float]] = []
        for cy in range(ny):
            row = [0.0] if cy == 0 else []
            cx = 1 if cy == 0 else 0
            while cx * ny < nx * (ny - cy):
                nibble = (hash_[start + (index >> 1)] >> ((index & 1) << 2)) & 15
                row.append((nibble / 7.5 - 1) * scale)
                index += 1
                cx += 1
            rows.append(row)
        return rows

    l_ac = channel(lx, ly, l_scale)
    p_ac = channel(3, 3, p_scale * 1.25)
    q_ac = channel(3, 3, q_scale * 1.25)
    a_ac = channel(5, 5, a_scale) if has_alpha else []
    raw_lx = long_side if landscape else header16 & 7
    raw_ly = header16 & 7 if landscape else long_side
    ratio = raw_lx / raw_ly
    width = _round(32 if ratio > 1 else 32 * ratio)
    height = _round(32 / ratio if ratio > 1 else 32)
    n = max(lx, ly, 5 if has_alpha else 3)
    fxs = [[math.cos(math.pi / width * (x + 0.5) * cx) for x in range(width)] for cx in range(n)]
    fys = [
        [2 * math.cos(math.pi / height * (y + 0.5) * cy) for y in range(height)] for cy in range(n)
    ]

    def picture(dc: float, ac: list[list[float]]) -> list[float]:
        """dc + sum of ac[cy][cx] * fx * 2fy, for every pixel, row by row."""
        rows = [
            [sum(term * fxs[cx][x] for cx, term in enumerate(terms)) for x in range(width)]
            for terms in ac
        ]
        return [
            dc + sum(fys[cy][y] * row[x] for cy, row in enumerate(rows))
            for y in range(height)
            for x in range(width)
        ]

    lum, yb, rg = picture(l_dc, l_ac), picture(p_dc, p_ac), picture(q_dc, q_ac)
    alpha = picture(a_dc, a_ac) if has_alpha else [1.0] * (width * height)
    out = bytearray()
    for light, p, q, a in zip(lum, yb, rg, alpha, strict=True):
        blue = light - 2 / 3 * p
        red = (3 * light - blue + q) / 2
        green = red - q
        out += bytes(int(max(0.0, 255 * min(1.0, value))) for value in (red, green, blue, a))
    return width, height, bytes(out)


def placeholder_of(image: Image.Image, icc: bytes | None = None) -> Placeholder:
    """The placeholder of a decoded image (the thumbnail-sized one: it is shrunk here to at most
    :data:`THUMBHASH_SIDE` pixels a side). ``icc`` is the image's colour profile, if it has one
    other than sRGB: the colours are converted to sRGB, what a page paints in."""
    from PIL import Image

    small = image
    if max(small.size) > THUMBHASH_SIDE:
        small = small.copy()
        small.thumbnail((THUMBHASH_SIDE, THUMBHASH_SIDE), Image.Resampling.BOX)
    small = _srgb_rgba(small, icc)
    rgba = small.tobytes()
    width, height = small.size
    return Placeholder(thumbhash=thumbhash(width, height, rgba), color=dominant_color(small))


def _srgb_rgba(image: Image.Image, icc: bytes | None) -> Image.Image:
    from PIL import ImageCms

    if image.mode not in ("RGB", "RGBA"):
        mode = "RGBA" if "A" in image.mode or image.has_transparency_data else "RGB"
        image = image.convert(mode)
    if icc:
        try:
            profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            srgb = ImageCms.createProfile("sRGB")
            converted = ImageCms.profileToProfile(image, profile, srgb, outputMode=image.mode)
        except (ImageCms.PyCMSError, OSError, ValueError):
            converted = None
        if converted is not None:
            image = converted
    return image if image.mode == "RGBA" else image.convert("RGBA")


# --- the dominant colour ----------------------------------------------------------------------


def dominant_color(image: Image.Image) -> str:
    """The colour most of ``image`` (RGBA) is, as ``rrggbb``: the largest of :data:`CLUSTERS`
    median-cut clusters of its opaque pixels (of all pixels if none is opaque)."""
    from PIL import Image

    rgba = image.tobytes()
    alpha = rgba[3::4]
    if alpha.count(255) == len(alpha):
        pixels = image.convert("RGB")
    else:
        opaque = [i for i, a in enumerate(alpha) if a >= OPAQUE]
        if not opaque:
            opaque = list(range(len(alpha)))
        data = bytearray()
        for i in opaque:
            data += rgba[4 * i : 4 * i + 3]
        pixels = Image.frombytes("RGB", (len(opaque), 1), bytes(data))
    quantized = pixels.quantize(colors=CLUSTERS, method=Image.Quantize.MEDIANCUT)
    counts = quantized.getcolors(CLUSTERS) or [(1, 0)]
    _, index = max(counts, key=lambda count: count[0])
    assert isinstance(index, int)  # a palette image's colours are indices
    palette = quantized.getpalette() or [0, 0, 0]
    red, green, blue = palette[3 * index : 3 * index + 3]
    return f"{red:02x}{green:02x}{blue:02x}"


# --- ThumbHash (a port of the reference encoder, rgbaToThumbHash in thumbhash.js) --------------


def _round(value: float) -> int:
    """JavaScript's ``Math.round``: halves go up (Python's ``round`` goes to even)."""
    return math.floor(value + 0.5)


def thumbhash(width: int, height: int, rgba: bytes) -> bytes:
    """The ThumbHash of ``width`` x ``height`` pixels (each side at most 100), RGBA row by row,
    not premultiplied: the reference encoder's result, computed with separable sums (the same
    terms, summed in another order, so a value can differ in its last bits)."""
    if not (0 < width <= THUMBHASH_SIDE and 0 < height <= THUMBHASH_SIDE):
        raise ValueError(f"{width}x{height} doesn't fit in 100x100")
    if len(rgba) != 4 * width * height:
        raise ValueError(f"{len(rgba)} bytes are not {width}x{height} RGBA pixels")
    count = width * height
    red, green, blue, alpha = rgba[0::4], rgba[1::4], rgba[2::4], rgba[3::4]
    unit = [1 / 255 * v for v in range(256)]  # alpha / 255 * value, for alpha 1

    # The average colour, weighted by alpha
    if alpha.count(255) == count:
        avg_r, avg_g, avg_b, avg_a = (
            sum(unit[v] for v in red),
            sum(unit[v] for v in green),
            sum(unit[v] for v in blue),
            float(count),
        )
        alphas = [1.0] * count
    else:
        alphas = [v / 255 for v in alpha]
        avg_r = sum(a / 255 * v for a, v in zip(alphas, red, strict=True))
        avg_g = sum(a / 255 * v for a, v in zip(alphas, green, strict=True))
        avg_b = sum(a / 255 * v for a, v in zip(alphas, blue, strict=True))
        avg_a = sum(alphas)
    if avg_a:
        avg_r /= avg_a
        avg_g /= avg_a
        avg_b /= avg_a

    has_alpha = avg_a < count
    l_limit = 5 if has_alpha else 7  # fewer luminance bits when there is alpha
    lx = max(1, _round(l_limit * width / max(width, height)))
    ly = max(1, _round(l_limit * height / max(width, height)))

    # RGBA to LPQA, composited atop the average colour
    if has_alpha:
        reds = [avg_r * (1 - a) + a / 255 * v for a, v in zip(alphas, red, strict=True)]
        greens = [avg_g * (1 - a) + a / 255 * v for a, v in zip(alphas, green, strict=True)]
        blues = [avg_b * (1 - a) + a / 255 * v for a, v in zip(alphas, blue, strict=True)]
    else:  # avg * 0 + value / 255: the same numbers, faster
        reds = [0.0 + unit[v] for v in red]
        greens = [0.0 + unit[v] for v in green]
        blues = [0.0 + unit[v] for v in blue]
    lum = [(r + g + b) / 3 for r, g, b in zip(reds, greens, blues, strict=True)]
    yb = [(r + g) / 2 - b for r, g, b in zip(reds, greens, blues, strict=True)]
    rg = [r - g for r, g in zip(reds, greens, strict=True)]

    def channel(values: list[float], nx: int, ny: int) -> tuple[float, list[float], float]:
        """DC, normalised AC terms and scale of one channel's DCT (the reference's
        ``encodeChannel``)."""
        rows = [values[y * width : (y + 1) * width] for y in range(height)]
        fxs = [
            [math.cos(math.pi / width * cx * (x + 0.5)) for x in range(width)] for cx in range(nx)
        ]
        fys = [
            [math.cos(math.pi / height * cy * (y + 0.5)) for y in range(height)] for cy in range(ny)
        ]
        projections = [[sum(map(mul, row, fx)) for row in rows] for fx in fxs]
        dc, ac, scale = 0.0, [], 0.0
        for cy in range(ny):
            cx = 0
            while cx * ny < nx * (ny - cy):
                f = sum(map(mul, projections[cx], fys[cy])) / count
                if cx or cy:
                    ac.append(f)
                    scale = max(scale, abs(f))
                else:
                    dc = f
                cx += 1
        if scale:
            ac = [0.5 + 0.5 / scale * f for f in ac]
        return dc, ac, scale

    l_dc, l_ac, l_scale = channel(lum, max(3, lx), max(3, ly))
    p_dc, p_ac, p_scale = channel(yb, 3, 3)
    q_dc, q_ac, q_scale = channel(rg, 3, 3)

    # The constants
    landscape = width > height
    header24 = (
        _round(63 * l_dc)
        | (_round(31.5 + 31.5 * p_dc) << 6)
        | (_round(31.5 + 31.5 * q_dc) << 12)
        | (_round(31 * l_scale) << 18)
        | (int(has_alpha) << 23)
    )
    header16 = (
        (ly if landscape else lx)
        | (_round(63 * p_scale) << 3)
        | (_round(63 * q_scale) << 9)
        | (int(landscape) << 15)
    )
    out = [header24 & 255, (header24 >> 8) & 255, header24 >> 16, header16 & 255, header16 >> 8]
    channels = [l_ac, p_ac, q_ac]
    if has_alpha:
        a_dc, a_ac, a_scale = channel(alphas, 5, 5)
        out.append(_round(15 * a_dc) | (_round(15 * a_scale) << 4))
        channels.append(a_ac)

    # The varying factors, two to a byte
    start = len(out)
    index = 0
    for ac in channels:
        for f in ac:
            at = start + (index >> 1)
            if at == len(out):
                out.append(0)
            out[at] |= _round(15 * f) << ((index & 1) << 2)
            index += 1
    return bytes(out)
