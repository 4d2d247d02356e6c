"""Pixels ready to resize and encode for the web: the thumbnail's, the placeholder's and the
variants' common first steps (no palettes or 16-bit integers; RGB(A) in sRGB or an RGB profile)."""

from __future__ import annotations

import io

from PIL import Image, ImageCms

_SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


def pixel_mode(image: Image.Image) -> Image.Image:
    """A mode that resizes well: no palettes, no 16-bit integers."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        return image.convert("I").point(lambda value: value * (1 / 256)).convert("L")
    if image.mode == "F":
        return image.convert("L")
    if image.mode in ("P", "PA", "1"):
        return image.convert("RGBA" if image.has_transparency_data else "RGB")
    return image


def to_rgb(image: Image.Image, icc: bytes | None) -> tuple[Image.Image, bytes | None]:
    """RGB or RGBA for WebP, colour-managed into sRGB when the profile is not an RGB one."""
    if image.mode in ("RGB", "RGBA"):
        return image, icc if icc and profile_space(icc) == "RGB " else None
    if icc and image.mode in ("CMYK", "L"):
        try:
            profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            converted = ImageCms.profileToProfile(image, profile, _SRGB, outputMode="RGB")
        except (ImageCms.PyCMSError, OSError, ValueError):
            converted = None
        if converted is not None:
            return converted, None
    mode = "RGBA" if "A" in image.mode or image.has_transparency_data else "RGB"
    return image.convert(mode), None


def profile_space(icc: bytes) -> str:
    return icc[16:20].decode("latin-1") if len(icc) >= 20 else ""
