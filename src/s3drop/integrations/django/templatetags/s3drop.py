"""``{% load s3drop %}``: an image's URL, its thumbnail's, an ``<img>`` tag, and a ``<picture>``
with its responsive variants (:func:`s3drop.html.picture`), from its id (or an Image)::

    <img src="{% s3drop_url profile.avatar %}" alt="">
    {% s3drop_img profile.avatar alt=user.username thumbnail=True class="avatar" %}
    {% s3drop_picture profile.avatar sizes="(max-width: 600px) 100vw, 600px" alt="Ada" %}

``s3drop_img`` paints the image's dominant colour behind it while it loads (an inline
``background-color``, from the HEAD that signs the URL: no extra request).

The page is the host's, rendered by its own view, which decides who may see it: the tags are a
trusted caller and give a fresh signed URL (or the CDN URL) for any stored id. An empty or
unknown id renders as nothing; a storage that does not answer raises, as any broken
backend of a template would, rather than hide (an image deleted since the row was saved leaves no broken
``<img>``).
"""

from __future__ import annotations

from typing import Any

from django import template
from django.utils.html import format_html
from django.utils.safestring import SafeString

from ...._errors import NotFound
from ...._gallery import ImageURL
from ...._placeholders import placeholder_style
from ...._policy import is_upload_id
from ... import api
from ..conf import get_drop, mounted

register = template.Library()


def _link(image_id: Any, variant: str) -> ImageURL | None:
    if not image_id or not is_upload_id(str(image_id)):
        return None
    try:
        with mounted():
            return api.image_link(get_drop(), str(image_id), variant=variant)
    except NotFound:
        return None


def _url(image_id: Any, variant: str) -> str:
    link = _link(image_id, variant)
    return link.url if link is not None else ""


@register.simple_tag
def s3drop_url(image_id: Any) -> str:
    """A fresh URL of the image ``image_id`` ("" when there is none)."""
    return _url(image_id, "original")


@register.simple_tag
def s3drop_thumbnail_url(image_id: Any) -> str:
    """A fresh URL of the image's thumbnail (WebP; "" when there is none)."""
    return _url(image_id, "thumbnail")


@register.simple_tag
def s3drop_img(
    image_id: Any, *, alt: str = "", thumbnail: bool = False, thumbhash: bool = False, **attrs: Any
) -> SafeString | str:
    """``<img src=... alt=...>`` for the image (its thumbnail with ``thumbnail=True``), with any
    other attributes given (``class="avatar"``); nothing when there is no such image. The image's
    dominant colour is its background while it loads, and with ``thumbhash=True`` its ThumbHash
    picture too (for opaque images: it stays behind; ``style``, which an attribute ``style``
    given replaces)."""
    link = _link(image_id, "thumbnail" if thumbnail else "original")
    if link is None:
        return ""
    if link.placeholder is not None and "style" not in attrs:
        style = placeholder_style(link.placeholder, thumbhash=thumbhash)
        attrs = {"style": style, **attrs}
    extra = SafeString(
        "".join(
            format_html(' {}="{}"', name.replace("_", "-"), value) for name, value in attrs.items()
        )
    )
    return format_html('<img src="{}" alt="{}"{}>', link.url, alt, extra)


@register.simple_tag
def s3drop_picture(
    image: Any, *, sizes: str | None = None, alt: str | None = None, **attrs: Any
) -> SafeString | str:
    """``<picture>`` with a ``<source>`` per variant type and the original's ``<img srcset sizes
    width height loading="lazy" decoding="async" alt>``, for an image id, an Image or its JSON
    (:func:`s3drop.html.picture`; ``class="x"`` and other attributes go on the ``<img>``);
    nothing when there is no such image."""
    with mounted():
        html = api.picture(get_drop(), image, sizes=sizes, alt=alt, **attrs)
    return SafeString(html)
