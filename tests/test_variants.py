"""Responsive variants: made at promotion from the one decode, stored beside the original, named by
the image's key, listed with no extra request, deleted with their image, swept when orphaned."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PIL import Image

from s3drop import Settings
from s3drop._errors import ConfigurationError, InsufficientStorage
from s3drop._formats import VARIANT_TYPES, by_type, by_variant_letter
from s3drop._images import ImageLimits, process
from s3drop._policy import filename_label, image_key, parse_image_key
from s3drop._responsive import VariantSet, variant_key
from s3drop._uploads import S3Drop
from s3drop._variants import draft_size, plan, variant_height
from s3drop.limits import MemoryLimitStore
from s3drop.storage.local import LocalStorage

from . import samples
from .appflow import app_backend, fetch, upload
from .flow import Backend, complete
from .test_complete import keys, quarantine

TYPES = ["image/png", "image/jpeg", "image/gif", "image/webp", "image/avif"]
BOTH = "image/webp,image/avif"  # WebP is the default; AVIF on top, listed first


@pytest.fixture
def drop(tmp_path: Path) -> S3Drop:
    settings = Settings(data_dir=tmp_path / "data", allowed_types=TYPES, variant_formats=BOTH)
    return S3Drop(settings, limit_store=MemoryLimitStore())


def decoded(drop: S3Drop, key: str) -> Image.Image:
    image = Image.open(io.BytesIO(drop.storage.read(key)))
    image.load()
    return image


# --- what is made -------------------------------------------------------------------------------


def test_widths_below_the_original_only_never_upscaled() -> None:
    assert plan(6000, [1280, 320, 640]) == [320, 640, 1280]
    assert plan(640, [320, 640, 1280]) == [320]  # the original is the 640 candidate itself
    assert plan(300, [320, 640]) == []
    assert variant_height(6000, 4000, 1280) == 853
    assert variant_height(6000, 1, 320) == 1  # never zero


def test_a_jpeg_is_decoded_just_large_enough_for_the_widest_variant() -> None:
    limits = ImageLimits(variant_widths=(320, 640, 1280), variant_formats=("avif", "webp"))
    assert draft_size(6000, 4000, limits) == (1280, 853)  # libjpeg then decodes at 1/4
    assert draft_size(4000, 6000, limits) == (1280, 1920)  # portrait: the width still rules
    no_variants = ImageLimits(variant_widths=(320, 640, 1280), variant_formats=())
    assert draft_size(6000, 4000, no_variants) == (320, 213)  # the thumbnail's, as before


def test_a_photo_gets_every_width_in_every_format_upright() -> None:
    limits = ImageLimits(variant_widths=(100, 200, 400), variant_formats=("avif", "webp"))
    # Orientation 6: stored 576 x 960, shown 960 x 576; variants are of the upright picture.
    done = process(samples.oriented_jpeg(6, size=(960, 576)), "image/jpeg", limits)
    assert (done.width, done.height) == (960, 576)
    made = [(v.format, v.width, v.height) for v in done.variants]
    assert made == [
        ("avif", 100, 60), ("webp", 100, 60), ("avif", 200, 120), ("webp", 200, 120),
        ("avif", 400, 240), ("webp", 400, 240),
    ]  # fmt: skip
    for variant in done.variants:
        image = Image.open(io.BytesIO(variant.data))
        assert (image.format.lower(), image.size) == (
            variant.format,
            (variant.width, variant.height),
        )
        # Upright: the quadrants' top-left colour is still top left.
        top_left = image.convert("RGB").getpixel((variant.width // 8, variant.height // 8))
        assert sum(abs(a - b) for a, b in zip(top_left, samples.TOP_LEFT, strict=True)) < 60


def test_transparency_survives_in_both_formats() -> None:
    clear = Image.new("RGBA", (800, 400), (255, 0, 0, 0))
    clear.paste((0, 0, 255, 255), (0, 0, 400, 400))
    limits = ImageLimits(variant_widths=(200,), variant_formats=("avif", "webp"))
    done = process(samples.encode(clear, "PNG"), "image/png", limits)
    for variant in done.variants:
        image = Image.open(io.BytesIO(variant.data)).convert("RGBA")
        assert image.getpixel((20, 20))[3] > 240  # the opaque blue half
        assert image.getpixel((180, 80))[3] < 15  # the clear half


def test_an_animation_or_a_small_image_gets_none() -> None:
    limits = ImageLimits(variant_widths=(32,), variant_formats=("avif", "webp"))
    assert process(samples.gif(frames=3, size=(64, 48)), "image/gif", limits).variants == ()
    assert process(samples.png(size=(32, 24)), "image/png", limits).variants == ()


# --- the key says which exist -------------------------------------------------------------------


def test_the_key_names_its_variants_in_its_v_segment() -> None:
    found = VariantSet(types=("image/avif", "image/webp"), widths=(320, 640, 1280))
    assert found.code == "aw320-640-1280"
    assert found.count == 6
    assert VariantSet.parse(found.code) == found
    key = image_key(
        "8300000000000aaaaaaaaaa",
        "image/jpeg",
        width=6000,
        height=4000,
        size=9,
        filename="a.jpg",
        variants=found.code,
    )
    assert key.endswith(f".6000x4000.9.n{filename_label('a.jpg')}.vaw320-640-1280.jpg")
    facts = parse_image_key(key)
    assert facts is not None
    assert (facts.filename, facts.variants, facts.key) == ("a.jpg", found.code, key)
    assert variant_key(facts.id, 640, "image/webp") == "variants/8300000000000aaaaaaaaaa.640.webp"


@pytest.mark.parametrize(
    "name",
    [
        "8300000000000aaaaaaaaaa.10x10.9.vaw320.nmfrgg.jpg",  # out of order
        "8300000000000aaaaaaaaaa.10x10.9.vaw320.vaw640.jpg",  # twice
        "8300000000000aaaaaaaaaa.10x10.9.xabc.jpg",  # a segment nobody defined
        "8300000000000aaaaaaaaaa.10x10.9.v320.jpg",  # no type letter
        "8300000000000aaaaaaaaaa.10x10.9.vaw0320.jpg",  # not a width s3drop writes
    ],
)
def test_keys_s3drop_did_not_write_are_not_images(name: str) -> None:
    assert parse_image_key(f"images/{name}") is None


@pytest.mark.parametrize("code", ["wa320", "aw640-320", "aw320-320", "zw320", "aw"])
def test_variant_codes_s3drop_did_not_write_name_none(code: str) -> None:
    assert VariantSet.parse(code) is None


def test_settings_choose_widths_and_formats(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("S3DROP_VARIANT_WIDTHS", "1600, 400,800")
    monkeypatch.setenv("S3DROP_VARIANT_FORMATS", "image/webp")
    settings = Settings()
    assert (settings.variant_widths, settings.variant_formats) == ([400, 800, 1600], ["image/webp"])
    limits = ImageLimits.from_settings(settings)
    assert (limits.variant_widths, limits.variant_formats) == ((400, 800, 1600), ("webp",))
    with pytest.raises(
        ConfigurationError,
        match="S3DROP_VARIANT_FORMATS: 'image/png' cannot be a variant type; choose from "
        "image/avif, image/webp",
    ):
        Settings(variant_formats="image/png")
    with pytest.raises(ValueError, match="'png' is not a variant type"):
        ImageLimits(variant_formats=("png",))  # refused here, never in the decode as "corrupt"
    with pytest.raises(ConfigurationError, match=r"S3DROP_VARIANT_WIDTHS: .*16 to 8192"):
        Settings(variant_widths="0,320")


def test_the_registry_says_which_types_can_be_variants_and_their_letters() -> None:
    """One entry per format (s3drop._formats) holds whether it can be a variant type, its encoder
    options and its letter in the key; the letters are stored in keys, so they are pinned here."""
    assert VARIANT_TYPES == ("image/avif", "image/webp")  # the order a <picture> lists them
    letters = {t: by_type(t).variant for t in VARIANT_TYPES}
    assert {t: v.letter for t, v in letters.items() if v} == {"image/avif": "a", "image/webp": "w"}
    assert by_variant_letter("w") is by_type("image/webp")
    assert by_variant_letter("j") is None
    made = process(
        samples.png(size=(100, 60)),
        "image/png",
        ImageLimits(variant_widths=(50,), variant_formats=("avif", "webp")),
    )
    assert [(v.format, v.content_type) for v in made.variants] == [
        ("avif", "image/avif"),
        ("webp", "image/webp"),
    ]


# --- promotion, listing, deletion ---------------------------------------------------------------


def test_a_promoted_image_lists_a_ready_srcset_and_sources(drop: S3Drop) -> None:
    upload_id = quarantine(drop, samples.jpeg(size=(1400, 700)), "image/jpeg")
    image = drop.complete(upload_id)
    assert parse_image_key(image.key).variants == "aw320-640-1024"  # type: ignore[union-attr]
    expected = [f"variants/{upload_id}.{w}.{e}" for w in (1024, 320, 640) for e in ("avif", "webp")]
    assert keys(drop, "variants/") == expected
    for key in expected:
        width = int(key.split(".")[1])
        info = drop.storage.head(key)
        assert info is not None
        assert info.content_type == f"image/{key.rsplit('.', 1)[1]}"
        assert decoded(drop, key).size == (width, variant_height(1400, 700, width))
    (listed,) = drop.list_images().images
    as_json = listed.to_dict()
    assert as_json["sizes"] == "(max-width: 1400px) 100vw, 1400px"
    assert as_json["srcset"] == f"{listed.url} 1400w"  # the original, in its own type
    assert [source["type"] for source in as_json["sources"]] == ["image/avif", "image/webp"]
    for source in as_json["sources"]:
        ext = source["type"].partition("/")[2]
        candidates = [part.rsplit(" ", 1) for part in source["srcset"].split(", ")]
        assert [descriptor for _, descriptor in candidates] == ["320w", "640w", "1024w", "1400w"]
        assert candidates[-1][0] == listed.url  # the original is the widest candidate
        for (url, _), width in zip(candidates[:-1], (320, 640, 1024), strict=True):
            assert url == drop.storage.presign_get(
                f"variants/{upload_id}.{width}.{ext}", expires_in=drop.settings.get_expires_in
            )


def test_a_listing_of_images_with_variants_is_still_one_call(drop: S3Drop) -> None:
    calls: list[str] = []
    storage = drop.storage
    for name in ("list_objects", "head", "read"):
        original = getattr(storage, name)

        def counted(*args: object, _name: str = name, _original: object = original, **kw: object):  # type: ignore[no-untyped-def]
            calls.append(_name)
            return _original(*args, **kw)  # type: ignore[operator]

        setattr(storage, name, counted)
    for seed in range(3):
        drop.complete(quarantine(drop, samples.jpeg(seed, size=(700, 400)), "image/jpeg"))
    calls.clear()
    page = drop.list_images()
    assert calls == ["list_objects"]
    assert [len(image.sources) for image in page.images] == [2, 2, 2]


def test_deleting_an_image_deletes_its_variants(drop: S3Drop) -> None:
    keep = drop.complete(quarantine(drop, samples.jpeg(1, size=(700, 400)), "image/jpeg"))
    gone = drop.complete(quarantine(drop, samples.jpeg(2, size=(700, 400)), "image/jpeg"))
    drop.delete_image(gone.id)
    assert keys(drop, "variants/") == [
        f"variants/{keep.id}.{w}.{e}" for w in (320, 640) for e in ("avif", "webp")
    ]


def test_an_interrupted_delete_finishes_with_the_variants(drop: S3Drop) -> None:
    image = drop.complete(quarantine(drop, samples.jpeg(size=(700, 400)), "image/jpeg"))
    drop.storage.delete(image.key)  # a delete that stopped after the image went
    drop.delete_image(image.id)
    assert keys(drop, "variants/") == []
    assert keys(drop, "thumbs/") == []


class _FullForVariants(LocalStorage):
    """A disk that fills up on the second variant written."""

    written = 0

    def put(self, key: str, data: bytes, *, content_type: str, metadata: dict[str, str]) -> None:
        if key.startswith("variants/"):
            type(self).written += 1
            if type(self).written == 2:
                raise InsufficientStorage("the disk is full")
        super().put(key, data, content_type=content_type, metadata=metadata)


def test_a_variant_that_cannot_be_written_stores_nothing_and_a_retry_promotes(
    tmp_path: Path,
) -> None:
    settings = Settings(data_dir=tmp_path / "data", variant_formats=BOTH)
    drop = S3Drop(settings, storage=_FullForVariants(settings), limit_store=MemoryLimitStore())
    upload_id = quarantine(drop, samples.jpeg(size=(700, 400)), "image/jpeg")
    with pytest.raises(InsufficientStorage):
        drop.complete(upload_id)
    for prefix in ("images/", "thumbs/", "variants/", "owners/", "digests/"):
        assert keys(drop, prefix) == [], prefix
    assert len(keys(drop, "incoming/")) == 1  # kept for the retry
    image = drop.complete(upload_id)
    assert len(keys(drop, "variants/")) == 4
    assert drop.list_images().images[0].key == image.key


def test_sweep_removes_orphan_variants_after_the_grace_period(drop: S3Drop) -> None:
    live = drop.complete(quarantine(drop, samples.jpeg(1, size=(700, 400)), "image/jpeg"))
    orphan = drop.complete(quarantine(drop, samples.jpeg(2, size=(700, 400)), "image/jpeg"))
    drop.storage.delete(orphan.key)  # a crash between the variants and the image
    drop.storage.delete(f"thumbs/{orphan.id}.webp")
    assert drop.sweep() == 0  # younger than the grace period: perhaps still being promoted
    assert drop.sweep(now=datetime.now(UTC) + timedelta(hours=2)) == 4
    assert keys(drop, "variants/") == [
        f"variants/{live.id}.{w}.{e}" for w in (320, 640) for e in ("avif", "webp")
    ]


# --- over HTTP ----------------------------------------------------------------------------------


def test_the_api_answers_srcset_and_sources_that_serve_the_variants(tmp_path: Path) -> None:
    from s3drop.web.app import create_app

    from .inprocess import asgi_client, upload

    settings = Settings(data_dir=tmp_path / "data", variant_formats=BOTH)
    app = create_app(settings, limit_store=MemoryLimitStore())
    with asgi_client(app) as http:
        accepted = upload(http, "/api", samples.png(size=(700, 400)))
        (listed,) = http.get("/api/images").json()["images"]
        single = http.get(f"/api/images/{accepted['id']}").json()["image"]
        for image in (accepted, listed, single):
            assert [s["type"] for s in image["sources"]] == ["image/avif", "image/webp"]
            assert image["sizes"] == "(max-width: 700px) 100vw, 700px"
            assert image["srcset"] == f"{image['url']} 700w"
        for source in listed["sources"]:
            for candidate in source["srcset"].split(", ")[:-1]:
                url, width = candidate.split(" ")
                answer = http.get(url)
                assert answer.status_code == 200
                assert answer.headers["content-type"] == source["type"]
                shown = Image.open(io.BytesIO(answer.content))
                assert f"{shown.width}w" == width


def test_variant_urls_are_the_cdns_when_the_original_is(monkeypatch: pytest.MonkeyPatch) -> None:
    from s3drop._gallery import describe
    from s3drop.storage.s3 import S3Storage

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    facts = parse_image_key(
        image_key("8300000000000aaaaaaaaaa", "image/jpeg", width=2000, height=1000, size=9,
                  variants="aw320-640")
    )  # fmt: skip
    assert facts is not None
    for base, expected in [
        ("https://cdn.example.com", "https://cdn.example.com/variants/8300000000000aaaaaaaaaa.320.avif"),
        (None, "https://s3.example.com/photos/variants/8300000000000aaaaaaaaaa.320.avif?X-Amz-"),
    ]:  # fmt: skip
        settings = Settings(
            bucket="photos",
            region="us-east-1",
            endpoint_url="https://s3.example.com",
            public_base_url=base,
        )
        image = describe(S3Storage(settings), settings, facts)
        first = image.sources[0].srcset.split(" ")[0]
        assert first.startswith(expected)
        assert image.sources[0].srcset.endswith(f"{image.url} 2000w")
        # Signed in the same window as the original: the same URL on every page of the hour.
        assert describe(S3Storage(settings), settings, facts).sources == image.sources


def test_a_variant_too_tall_for_webp_is_not_made_and_the_image_is_accepted() -> None:
    tall = samples.png(size=(20, 20000))
    limits = ImageLimits(variant_widths=(10, 18), variant_formats=("webp",))
    done = process(tall, "image/png", limits)
    # 18 wide would be 18000 tall, past WebP's 16383; 10 wide is 10000.
    assert [(v.width, v.height) for v in done.variants] == [(10, 10000)]
    assert plan(20, [10, 18], 20000) == [10]


@pytest.fixture(params=["local", "rgw"])
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Backend]:
    """The app in-process (what it answers is the point), on the local backend or RGW."""
    with app_backend(request, tmp_path_factory, env={"S3DROP_VARIANT_FORMATS": BOTH}) as found:
        yield found


def test_over_http_the_variants_are_served_and_deleted_with_their_image(
    served: Backend,
) -> None:
    backend = served
    with backend.server.client() as http:
        upload_id = upload(backend, http, samples.png(size=(700, 400)), "image/png")
        image = complete(http, upload_id)
        expected = [f"variants/{upload_id}.{w}.{e}" for w in (320, 640) for e in ("avif", "webp")]
        assert backend.keys("variants/") == expected
        for source in image["sources"]:
            for candidate in source["srcset"].split(", ")[:-1]:
                url, width = candidate.split(" ")
                answer = fetch(backend, url)  # signed like the original
                assert answer.status_code == 200, answer.text
                assert answer.headers["content-type"] == source["type"]
                assert f"{Image.open(io.BytesIO(answer.content)).width}w" == width
        assert http.delete(f"/api/images/{upload_id}").status_code == 204
    assert backend.keys("variants/") == []
    assert backend.keys("images/") == []
