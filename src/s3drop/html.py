"""An image as HTML: a complete ``<picture>`` with its responsive variants, for any template.

One function that Django's ``{% s3drop_picture %}``, Flask's ``s3drop_picture()`` Jinja global
and a FastAPI/Starlette app's own templates share::

    from s3drop.html import picture

    picture(drop.get_image(image_id), sizes="(max-width: 600px) 100vw, 600px", alt="Ada")

renders one ``<source type srcset sizes>`` per variant type (AVIF first, then WebP), then the
original as the ``<img src srcset sizes width height loading decoding alt>`` every browser can
show, so the browser fetches the smallest file that fills the slot at its pixel ratio. Every
value is escaped; the result is marked safe for Jinja and Django (it has ``__html__``).
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Any

from ._gallery import Image
from ._responsive import Source, default_sizes


class HTML(str):
    """Markup that templates must not escape again (Jinja's and Django's ``__html__``)."""

    __slots__ = ()

    def __html__(self) -> str:
        return self


def picture(
    image: Image | Mapping[str, Any],
    *,
    sizes: str | None = None,
    alt: str | None = None,
    loading: str = "lazy",
    decoding: str = "async",
    **attrs: Any,
) -> HTML:
    """``<picture>`` for ``image`` (an :class:`~s3drop._gallery.Image`, or its API JSON).

    ``sizes`` says how wide the slot is (default: the viewport, never wider than the image);
    ``alt`` defaults to the filename when known, else ""; other keyword arguments become
    attributes of the ``<img>`` (``class_="avatar"`` -> ``class="avatar"``, ``data_id`` ->
    ``data-id``; True alone, False and None left out).
    """
    facts = _facts(image)
    chosen = sizes or facts["sizes"] or default_sizes(facts["width"])
    parts = ["<picture>"]
    for source in facts["sources"]:
        parts.append(
            f'<source type="{_e(source.type)}" srcset="{_e(source.srcset)}" sizes="{_e(chosen)}">'
        )
    img: dict[str, Any] = {
        "src": facts["url"],
        "srcset": facts["srcset"] or None,
        "sizes": chosen,
        "width": facts["width"],
        "height": facts["height"],
        "loading": loading,
        "decoding": decoding,
        "alt": (facts["filename"] or "") if alt is None else alt,
        **{name.rstrip("_").replace("_", "-"): value for name, value in attrs.items()},
    }
    parts.append(f"<img{_attributes(img)}></picture>")
    return HTML("".join(parts))


def _facts(image: Image | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(image, Image):
        return {
            "url": image.url,
            "srcset": image.srcset,
            "sizes": image.sizes,
            "sources": image.sources,
            "width": image.width,
            "height": image.height,
            "filename": image.filename,
        }
    sources = [Source(str(s["type"]), str(s["srcset"])) for s in image.get("sources") or []]
    return {
        "url": image["url"],
        "srcset": image.get("srcset") or "",
        "sizes": image.get("sizes") or "",
        "sources": sources,
        "width": int(image["width"]),
        "height": int(image["height"]),
        "filename": image.get("filename"),
    }


def _attributes(attrs: Mapping[str, Any]) -> str:
    out = []
    for name, value in attrs.items():
        if value is None or value is False:
            continue
        out.append(f" {_e(name)}" if value is True else f' {_e(name)}="{_e(str(value))}"')
    return "".join(out)


def _e(text: str) -> str:
    return escape(text, quote=True)
