"""Images for the benchmarks, made with Pillow (never downloaded): photo-like, with EXIF and GPS.

A photo compresses like a photo because it has smooth regions, edges and fine noise; a gradient
alone compresses to almost nothing and pure noise to almost nothing less than raw. So: gradients
per channel, a few hundred soft shapes, then Gaussian noise on top.
"""

from __future__ import annotations

import io
import random
from pathlib import Path

from PIL import ExifTags, Image, ImageChops, ImageDraw, ImageFilter


def photo(size: tuple[int, int], *, seed: int = 0, noise: float = 18.0) -> Image.Image:
    """A photo-like RGB image of ``size``."""
    rng = random.Random(seed)
    width, height = size
    small = (max(1, width // 8), max(1, height // 8))
    channels = [
        Image.linear_gradient("L").rotate(angle, expand=False).resize(small)
        for angle in (0, 90, 45 + seed % 90)
    ]
    base = Image.merge("RGB", channels)
    draw = ImageDraw.Draw(base)
    for _ in range(160):
        x, y = rng.randrange(small[0]), rng.randrange(small[1])
        r = rng.randrange(2, max(3, small[0] // 16))
        colour = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        if rng.random() < 0.5:
            draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)
        else:
            draw.rectangle((x - r, y - r // 2, x + r, y + r // 2), fill=colour)
    base = base.filter(ImageFilter.GaussianBlur(1.5)).resize(size, Image.Resampling.BILINEAR)
    # Fine detail: one noise field per channel, centred on 128, added around the picture.
    grain = Image.merge("RGB", [Image.effect_noise(size, noise) for _ in range(3)])
    return ImageChops.add(base, grain, scale=1.0, offset=-128)


def camera_exif() -> Image.Exif:
    """What a phone writes: make, model, time, orientation 1, GPS position."""
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "BenchPhone"
    exif[ExifTags.Base.Model] = "BP-24"
    exif[ExifTags.Base.DateTime] = "2024:05:01 12:00:00"
    exif[ExifTags.Base.Orientation] = 1
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (52.0, 22.0, 12.5)
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = (4.0, 53.0, 41.0)
    gps[ExifTags.GPS.GPSAltitude] = 2.5
    return exif


def jpeg_photo(size: tuple[int, int] = (6000, 4000), *, seed: int = 0, quality: int = 90) -> bytes:
    """A 24-megapixel photo-like JPEG at quality 90 with EXIF (orientation 1, GPS)."""
    out = io.BytesIO()
    photo(size, seed=seed).save(out, "JPEG", quality=quality, exif=camera_exif())
    return out.getvalue()


def png_photo(size: tuple[int, int] = (4240, 2832), *, seed: int = 1) -> bytes:
    """A 12-megapixel photo-like PNG (RGB)."""
    out = io.BytesIO()
    photo(size, seed=seed, noise=6.0).save(out, "PNG")
    return out.getvalue()


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def sized_jpeg(target: int, *, seed: int) -> bytes:
    """A photo-like JPEG of about ``target`` bytes (within a few per cent)."""
    # Bytes per pixel of this photo at quality 92, measured once on a small one, then scaled.
    probe = io.BytesIO()
    photo((400, 300), seed=seed).save(probe, "JPEG", quality=92)
    per_pixel = len(probe.getvalue()) / (400 * 300)
    pixels = target / per_pixel
    width = int((pixels * 4 / 3) ** 0.5)
    height = int(width * 3 / 4)
    out = io.BytesIO()
    photo((width, height), seed=seed).save(out, "JPEG", quality=92, exif=camera_exif())
    return out.getvalue()
