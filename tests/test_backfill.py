"""``s3drop variants --missing``: variants for images promoted without them, on the local backend
and on Ceph RGW; never losing an image, finishing an interrupted run, a second run a no-op."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from s3drop import Settings
from s3drop._backfill import fill_missing, pending
from s3drop._policy import parse_image_key
from s3drop._uploads import S3Drop
from s3drop.limits import MemoryLimitStore

from . import samples
from .cli_inprocess import run_cli
from .test_complete import quarantine


class MakeDrop:
    """``make_drop(**settings)``: an S3Drop on this test's store (a data dir of its own, or the
    test's RGW bucket); ``promoted()``: that store holding three images promoted before variants
    existed (see :func:`promote_without_variants`)."""

    def __init__(self, data_dir: Path, template: Callable[[], tuple[Path, list[str]]] | None):
        self.data_dir = data_dir
        self.template = template

    def __call__(self, **settings: Any) -> S3Drop:
        return S3Drop(Settings(data_dir=self.data_dir, **settings), limit_store=MemoryLimitStore())


@pytest.fixture(scope="module")
def local_template(
    tmp_path_factory: pytest.TempPathFactory,
) -> Callable[[], tuple[Path, list[str]]]:
    """The local store of :func:`promote_without_variants`, made once for the module (three
    decodes, thumbnails and promotions) the first time a test asks; each test gets a copy."""
    made: list[tuple[Path, list[str]]] = []

    def template() -> tuple[Path, list[str]]:
        if not made:
            data_dir = tmp_path_factory.mktemp("backfill") / "data"
            made.append((data_dir, _promote_three(MakeDrop(data_dir, None)(variant_formats=""))))
        return made[0]

    return template


@pytest.fixture(params=["local", "rgw"])
def make_drop(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    local_template: Callable[[], tuple[Path, list[str]]],
) -> MakeDrop:
    if request.param == "rgw":
        rgw = request.getfixturevalue("rgw")
        for name, value in rgw.env(request.getfixturevalue("bucket")).items():
            monkeypatch.setenv(name, value)
        return MakeDrop(tmp_path / "data", None)
    return MakeDrop(tmp_path / "data", local_template)


def keys(drop: S3Drop, prefix: str) -> list[str]:
    return [info.key for info in drop.storage.iter_all(prefix)]


def promote_without_variants(make_drop: MakeDrop) -> tuple[S3Drop, list[str]]:
    """Two wide JPEGs and one narrow PNG of alice's, promoted before variants existed; then a
    drop with the default variants (WebP 320, 640, 1024). On the local backend a copy of the
    module's one such store (the files, their times and metadata as promoting left them)."""
    if make_drop.template is None:
        ids = _promote_three(make_drop(variant_formats=""))
    else:
        data_dir, ids = make_drop.template()
        shutil.copytree(data_dir, make_drop.data_dir)
    return make_drop(), ids


def _promote_three(before: S3Drop) -> list[str]:
    ids = []
    for data, content_type in [
        (samples.jpeg(1, size=(700, 400)), "image/jpeg"),
        (samples.jpeg(2, size=(700, 400)), "image/jpeg"),
        (samples.png(3, size=(200, 150)), "image/png"),
    ]:
        sha256 = hashlib.sha256(data).hexdigest()
        upload_id = quarantine(before, data, content_type, owner="alice", sha256=sha256)
        ids.append(before.complete(upload_id).id)
    assert keys(before, "variants/") == []
    return ids


def assert_whole(drop: S3Drop, ids: list[str]) -> None:
    """Every image is there once, with its variants, its owner's index, its thumbnail and its
    duplicate marker all naming its one key."""
    images = keys(drop, "images/")
    assert sorted(parse_image_key(key).id for key in images) == sorted(ids)  # type: ignore[union-attr]
    assert [key.rpartition("/")[2] for key in images] == [
        key.rpartition("/")[2] for key in keys(drop, "owners/alice/")
    ]
    for key in images:
        facts = parse_image_key(key)
        assert facts is not None
        image = drop.get_image(facts.id)  # through the thumbnail, which names the key
        assert image.key == key
        heads = [drop.storage.head(m) for m in keys(drop, "digests/")]
        markers = [h for h in heads if h is not None and h.metadata["image"] == key]
        assert len(markers) == 1
        widths = [320, 640] if facts.width == 700 else []
        assert facts.variants == (f"w{'-'.join(map(str, widths))}" if widths else None)
        assert [len(image.sources)] == [1 if widths else 0]
        for width in widths:
            assert drop.storage.head(f"variants/{facts.id}.{width}.webp") is not None


def test_missing_variants_are_made_and_a_second_run_does_nothing(make_drop: MakeDrop) -> None:
    drop, ids = promote_without_variants(make_drop)
    assert [item.old.id for item in pending(drop)] == ids  # oldest first
    seen: list[tuple[str, str]] = []
    report = fill_missing(drop, progress=lambda image_id, outcome: seen.append((image_id, outcome)))
    assert seen == [(ids[0], "made"), (ids[1], "made"), (ids[2], "none")]
    assert (report.made, report.none_needed, report.failed) == (ids[:2], ids[2:], {})
    assert report.variant_puts == 4  # 320 and 640, in WebP, for each wide image
    assert_whole(drop, ids)
    everything = keys(drop, "")
    again = fill_missing(drop)
    assert (again.made, again.finished, again.none_needed) == ([], [], ids[2:])
    assert keys(drop, "") == everything
    drop.delete_image(ids[0])
    assert not [key for key in keys(drop, "variants/") if ids[0] in key]


class Crash(BaseException):
    """A run killed at one exact storage call (BaseException: nothing in s3drop catches it)."""


#: Where a run may stop: (method, key prefix) of the call that never happens.
STEPS = [
    ("put", "variants/"),
    ("put", "images/"),
    ("put", "owners/"),
    ("put", "thumbs/"),
    ("put", "digests/"),
    ("delete", "owners/"),
    ("delete", "images/"),
]


#: Every step on the local backend; two on RGW (a copy made, and a copy half cleaned up).
CASES = [("local", step) for step in STEPS] + [
    ("rgw", ("put", "owners/")),
    ("rgw", ("delete", "images/")),
]


@pytest.mark.parametrize(
    ("make_drop", "step"),
    CASES,
    ids=[f"{backend}-{m}-{p[:-1]}" for backend, (m, p) in CASES],
    indirect=["make_drop"],
)
def test_a_run_stopped_anywhere_loses_nothing_and_the_next_finishes(
    make_drop: MakeDrop, step: tuple[str, str]
) -> None:
    drop, ids = promote_without_variants(make_drop)
    method, prefix = step
    real = getattr(drop.storage, method)
    second = drop.get_image(ids[1])
    marker = f"digests/alice/{drop.storage.head(second.key).metadata['source-sha256']}"  # type: ignore[union-attr]

    def crashing(key: str, *args: Any, **kwargs: Any) -> Any:
        # Half-way: the first image is done, the second one's call at this step never happens.
        if key.startswith(prefix) and (ids[1] in key or key == marker):
            raise Crash(f"{method} {key}")
        return real(key, *args, **kwargs)

    setattr(drop.storage, method, crashing)
    with pytest.raises(Crash):
        fill_missing(drop)
    setattr(drop.storage, method, real)
    for image_id in ids:  # every image is still there, and found by its id
        assert drop.get_image(image_id).id == image_id
    report = fill_missing(drop)
    assert report.failed == {}
    assert ids[1] in report.made + report.finished
    assert_whole(drop, ids)
    assert fill_missing(drop).made == []


def test_the_command_counts_then_fills_with_a_progress_bar(tmp_path: Path) -> None:
    """``s3drop variants``, in this process (what it prints is the point, not its process)."""
    env = {"S3DROP_DATA_DIR": str(tmp_path / "data")}
    before = S3Drop(Settings(data_dir=tmp_path / "data", variant_formats=""))
    for seed in range(2):
        before.complete(quarantine(before, samples.jpeg(seed, size=(700, 400)), "image/jpeg"))

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return run_cli("variants", *args, env=env)

    counted = run("--json")
    assert (counted.returncode, json.loads(counted.stdout)) == (0, {"missing": 2})
    filled = run("--missing", "--progress")
    assert filled.returncode == 0, filled.stderr
    assert "variants" in filled.stdout  # the bar, finished
    assert "2/2" in filled.stdout
    assert filled.stdout.rstrip().endswith(
        "made variants for 2 images (4 objects); 0 needed none; 0 failed"
    )
    again = run("--missing", "--json")
    assert json.loads(again.stdout) == {
        "made": [], "finished": [], "none_needed": 0, "failed": {}, "variant_puts": 0,
    }  # fmt: skip
    assert run().stdout == "0 images lack variants; make them with: s3drop variants --missing\n"
