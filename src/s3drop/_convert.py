"""Images stored as another format than they came in: a HEIC or HEIF from a phone, which no
browser but Safari shows, becomes a JPEG every browser shows.

Decoded by libheif (pillow-heif) in the bounded sandbox, like every decode; its ``irot``/``imir``
applied by libheif (and only by it: pillow-heif reports an EXIF orientation of 1 afterwards, and
an EXIF orientation inside a HEIF is ignored, as the standard says); its colour profile kept;
nothing else of its metadata (EXIF, XMP, depth and gain maps, thumbnails) is read or stored.
The thumbnail and the responsive variants (:mod:`s3drop._variants`) are made from the same decode,
never from the JPEG it becomes, as every other format's are.
"""

from __future__ import annotations

import functools
import io
from typing import TYPE_CHECKING

from PIL import Image

from ._errors import CorruptImage
from ._formats import Format, by_type

if TYPE_CHECKING:
    from ._containers import Layout
    from ._images import ImageLimits, ProcessedImage


@functools.cache
def register_heif() -> None:
    """Let Pillow open HEIF files, without their thumbnails, depth and auxiliary images (s3drop
    reads only the primary picture). Called once in each decode worker, before it is ready."""
    import pillow_heif

    pillow_heif.register_heif_opener(thumbnails=False, depth_images=False, aux_images=False)


def convert(fmt: Format, layout: Layout, limits: ImageLimits) -> ProcessedImage:
    """Decode ``layout.stripped`` (walked by ``fmt``'s plugin) and encode it as the type ``fmt``
    is stored as, with ``fmt``'s save options; the thumbnail, the placeholder (of the picture
    stored, transparency flattened as in the JPEG) and the variants from the same decode."""
    from ._images import ProcessedImage, _check_size, _thumbnail, _variants

    register_heif()
    image = Image.open(io.BytesIO(layout.stripped), formats=[fmt.pillow])
    if image.width > layout.width or image.height > layout.height:
        # libheif crops to a clean aperture (clap), never enlarges: the header's size is the most
        _check_size(image.size, layout, fmt.label)
    image.load()
    if image.im.size != image.size:
        raise CorruptImage(
            f"the {fmt.label} image says {image.width} x {image.height} pixels, but it decodes to "
            f"{image.im.size[0]} x {image.im.size[1]}"
        )
    icc = image.info.get("icc_profile")
    picture = _opaque(image)
    target = by_type(fmt.stored_as or fmt.content_type)
    out = io.BytesIO()
    options: dict[str, object] = {**fmt.save}
    if icc:
        options["icc_profile"] = icc
    picture.save(out, target.pillow, **options)
    thumbnail, placeholder = _thumbnail(picture, limits.thumbnail_size, icc)
    return ProcessedImage(
        content_type=target.content_type,
        format=target.name,
        width=picture.width,
        height=picture.height,
        frames=1,
        data=out.getvalue(),
        thumbnail=thumbnail,
        placeholder=placeholder,
        variants=_variants(picture, *picture.size, icc, limits),
    )


def _opaque(image: Image.Image) -> Image.Image:
    """RGB (or greyscale) for a JPEG: transparency flattened onto white."""
    if image.mode in ("RGB", "L"):
        return image
    if "A" in image.mode or image.has_transparency_data:
        rgba = image.convert("RGBA")
        flat = Image.new("RGB", rgba.size, (255, 255, 255))
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    return image.convert("RGB")
