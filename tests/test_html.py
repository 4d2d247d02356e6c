"""``s3drop.html.picture``: a complete ``<picture>`` from an image, every value escaped, safe for
Jinja (FastAPI/Starlette, Flask) and Django templates as it is."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import jinja2
import pytest
from django.utils.html import conditional_escape

from s3drop import Settings
from s3drop._uploads import S3Drop
from s3drop.html import picture
from s3drop.limits import MemoryLimitStore

from . import samples
from .test_complete import quarantine

HOSTILE = '"><img src=x onerror=alert(1)> & <b>.png'


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def tags(markup: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = _Tags()
    parser.feed(markup)
    return parser.tags


@pytest.fixture
def drop(tmp_path: Path) -> S3Drop:
    settings = Settings(data_dir=tmp_path / "data", variant_formats="image/avif,image/webp")
    return S3Drop(settings, limit_store=MemoryLimitStore())


def test_a_picture_lists_avif_then_webp_then_the_original(drop: S3Drop) -> None:
    image = drop.complete(
        quarantine(drop, samples.png(size=(700, 400)), "image/png", filename=HOSTILE)
    )
    markup = picture(image)
    found = tags(markup)
    assert [tag for tag, _ in found] == ["picture", "source", "source", "img"]
    (_, avif), (_, webp), (_, img) = found[1:]
    assert (avif["type"], webp["type"]) == ("image/avif", "image/webp")
    assert (avif["srcset"], webp["srcset"]) == tuple(s.srcset for s in image.sources)
    sizes = "(max-width: 700px) 100vw, 700px"
    assert avif["sizes"] == webp["sizes"] == img["sizes"] == sizes
    assert img == {
        "src": image.url,
        "srcset": f"{image.url} 700w",
        "sizes": sizes,
        "width": "700",
        "height": "400",
        "loading": "lazy",
        "decoding": "async",
        "alt": HOSTILE,  # the filename, as text: no tag of its own
    }
    assert markup.endswith("></picture>")
    assert "<img src=x" not in markup
    assert "<b>" not in markup


def test_alt_sizes_and_attributes_are_escaped(drop: S3Drop) -> None:
    image = drop.complete(quarantine(drop, samples.png(size=(700, 400)), "image/png"))
    markup = picture(
        image, alt='" onload="alert(1)', sizes='100vw" onerror="x', class_="a<b", data_id=7
    )
    found = tags(markup)
    assert len(found) == 4
    img = found[-1][1]
    assert (img["alt"], img["sizes"], img["class"], img["data-id"]) == (
        '" onload="alert(1)',
        '100vw" onerror="x',
        "a<b",
        "7",
    )
    assert "onload" not in img
    assert "onerror" not in img


def test_the_api_json_renders_the_same_and_no_variants_is_an_img(drop: S3Drop) -> None:
    wide = drop.complete(quarantine(drop, samples.png(1, size=(700, 400)), "image/png"))
    assert picture(wide.to_dict(), alt="x") == picture(wide, alt="x")
    small = drop.complete(quarantine(drop, samples.png(2, size=(200, 150)), "image/png"))
    assert [tag for tag, _ in tags(picture(small))] == ["picture", "img"]


def test_templates_take_it_as_safe_markup(drop: S3Drop) -> None:
    image = drop.complete(quarantine(drop, samples.png(size=(700, 400)), "image/png"))
    markup = picture(image, alt="<cat>")
    jinja = jinja2.Environment(autoescape=True)
    assert (
        jinja.from_string("{{ picture(image, alt=alt) }}").render(
            picture=picture, image=image, alt="<cat>"
        )
        == markup
    )
    assert conditional_escape(markup) == markup
