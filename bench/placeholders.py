"""9. Placeholders: the gallery's first page of 50 among 10,000 images whose keys carry a ThumbHash
and a dominant colour, vs a bare listing; and what making them costs in the sandbox.

- **Listing** (local, and Ceph RGW when it can start): ``S3Drop.list_images(limit=50)`` against a
  bare listing of the same prefix (``os.scandir`` + sort, first 50; boto3
  ``list_objects_v2(MaxKeys=50)``), interleaved as in ``bench/gallery.py``, whose fill it reuses:
  one image promoted through ``complete()`` (so its key carries ``.n<name>.p<thumbhash>.c<rrggbb>``)
  stored again under 10,000 fresh ids. The storage calls of one page are counted (a wrapper
  around the backend): it must be exactly one listing call, no HEAD, no read; every image on the
  page must carry its placeholder. Target: within 1.2x the bare listing.
- **Sandbox cost**: in the process the decode worker runs (the same functions, timed in this
  process), for a 24 MP JPEG decoded at thumbnail scale as ``images.process`` does: the thumbnail
  (resize to 320 px + WebP) vs the placeholder computed from that thumbnail-sized image
  (``placeholder_of``: shrink to 100 px, ThumbHash, median-cut colour). A figure, no target; the
  issue asks that it be printed.
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .common import Pending, Report, Row, Series, paired_ratio
from .gallery import CALLS, PAGE, _measure, fill_local, fill_rgw, versus_bare

TARGET = 1.2


def _counted(storage: Any) -> list[str]:
    """Record every storage call a gallery page makes (list, head, read) on ``storage``."""
    calls: list[str] = []
    for name in ("list_objects", "head", "read", "iter_all"):
        original = getattr(storage, name)

        def wrapper(*args: Any, _name: str = name, _original: Any = original, **kw: Any) -> Any:
            calls.append(_name)
            return _original(*args, **kw)

        setattr(storage, name, wrapper)
    return calls


def _page_check(drop: Any, calls: list[str]) -> Callable[[], None]:
    def gallery() -> None:
        page = drop.list_images(limit=PAGE)
        if len(page.images) != PAGE or page.next_cursor is None:
            raise RuntimeError(f"the gallery gave {len(page.images)} images, not a full page")

    calls.clear()
    page = drop.list_images(limit=PAGE)
    if calls != ["list_objects"]:
        raise RuntimeError(f"a gallery page made {calls}, not one listing call")
    missing = [image.id for image in page.images if image.placeholder is None]
    if missing:
        raise RuntimeError(f"{len(missing)} images on the page have no placeholder")
    return gallery


def local(workdir: Path, *, rounds: int, count: int) -> tuple[Row, dict[str, Any]]:
    drop, bare = fill_local(workdir, "placeholders-local", count)
    gallery = _page_check(drop, _counted(drop.storage))
    subject, baseline = _measure(gallery, bare, rounds=rounds, calls=CALLS["local"])
    sample = _first_key(drop)
    case = f"local: first page of {PAGE} among {count + 1}, placeholders in keys"
    row = versus_bare(
        case, subject, baseline, backend="local", target=TARGET, storage_calls_per_page=1
    )
    return row, {"key_example": sample, "key_length": len(sample)}


def rgw(workdir: Path, server: Any, *, rounds: int, count: int) -> list[Row]:
    drop, bare, _ = fill_rgw(workdir, server, "placeholders", count)
    gallery = _page_check(drop, _counted(drop.storage))
    subject, baseline = _measure(gallery, bare, rounds=rounds, calls=CALLS["rgw"])
    fast_subject, fast_baseline = _measure(
        gallery, bare, rounds=rounds, calls=CALLS["rgw"], pick=min
    )
    fastest = Row(
        case="diag: RGW, the same page vs list_objects_v2, fastest call per round",
        subject=Series("list_images", "ms", fast_subject),
        baseline=Series("list_objects_v2", "ms", fast_baseline),
        ratio=paired_ratio(fast_subject, fast_baseline, label="gallery/bare"),
        ratio_means="fastest list_images ms / fastest list_objects_v2 ms of each round",
    )
    share = placeholder_share(drop, rounds=rounds)
    case = f"RGW: first page of {PAGE} among {count + 1}, placeholders in keys"
    row = versus_bare(
        case, subject, baseline, backend="rgw", target=TARGET, storage_calls_per_page=1
    )
    return [row, fastest, share]


def _first_key(drop: Any) -> str:
    """The gallery's first key: the one image promoted through ``complete()``, under another id
    (the same segments and length as every key there)."""
    newest: str = drop.storage.list_objects("images/", limit=1)[0].key
    return newest


def placeholder_share(drop: Any, *, rounds: int) -> Row:
    """What the placeholder segments cost a page: ``list_page`` over one real listing's 51 keys,
    as they are vs the same keys without ``.p``/``.c`` (what images promoted before had), the
    listing itself replayed from memory (so only the per-key work is timed)."""
    import re

    from s3drop._gallery import list_page
    from s3drop.storage.base import ObjectInfo

    listed = drop.storage.list_objects("images/", limit=PAGE + 1)
    bare = [
        ObjectInfo(
            key=re.sub(r"\.p[a-z2-7]+\.c[0-9a-f]{6}", "", info.key),
            size=info.size,
            content_type=info.content_type,
            last_modified=info.last_modified,
            metadata=info.metadata,
        )
        for info in listed
    ]

    class Replay:
        def __init__(self, infos: list[Any]) -> None:
            self.infos = infos

        def __getattr__(self, name: str) -> Any:
            return getattr(drop.storage, name)

        def list_objects(self, prefix: str, **kw: Any) -> list[Any]:
            return self.infos[: kw.get("limit", 1000)]

    with_them, without = Replay(listed), Replay(bare)

    def page(storage: Any) -> Callable[[], None]:
        def one() -> None:
            list_page(storage, drop.settings, cursor=None, limit=PAGE)

        return one

    subject, baseline = _measure(page(with_them), page(without), rounds=rounds, calls=25, pick=min)
    return Row(
        case="diag: per-key work of a page, keys with vs without placeholders (fastest call)",
        subject=Series("with .p.c", "ms", subject),
        baseline=Series("without", "ms", baseline),
        ratio=paired_ratio(subject, baseline, label="with/without"),
        ratio_means="list_page ms over the same 51 keys replayed, with / without .p.c segments; "
        "the fastest of 25 interleaved calls per round (on a loaded machine a median of calls "
        "this short measures the scheduler and the garbage collector)",
    )


def sandbox_cost(*, rounds: int) -> list[Row]:
    """The placeholder vs the thumbnail it rides on, for a 24 MP JPEG (ms per image)."""
    from PIL import Image

    from s3drop import _images as images
    from s3drop._placeholders import placeholder_of

    from .samples import jpeg_photo

    data = jpeg_photo((6000, 4000), seed=3)
    limits = images.ImageLimits()
    size = limits.thumbnail_size
    thumbs: list[float] = []
    marks: list[float] = []
    whole_process: list[float] = []
    for _ in range(rounds):
        start = time.perf_counter()
        images.process(data, "image/jpeg", limits)  # what the worker does for this file
        whole_process.append((time.perf_counter() - start) * 1000)
        t: list[float] = []
        m: list[float] = []
        for _ in range(5):
            image = Image.open(io.BytesIO(data))
            image.draft(None, (size, size))  # the scale images.process decodes at
            image.load()
            start = time.perf_counter()
            images._thumbnail(image, size, None)  # the WebP thumbnail and the placeholder
            whole = time.perf_counter() - start
            small = image.copy()
            small.thumbnail((size, size), Image.Resampling.BICUBIC)
            start = time.perf_counter()
            placeholder_of(small)
            alone = time.perf_counter() - start
            t.append((whole - alone) * 1000)
            m.append(alone * 1000)
        thumbs.append(statistics.median(t))
        marks.append(statistics.median(m))
    return [
        Row(
            case="sandbox: 24 MP JPEG, ThumbHash + colour vs its 320 px WebP thumbnail",
            subject=Series("placeholder", "ms", marks),
            baseline=Series("thumbnail", "ms", thumbs),
            ratio=paired_ratio(marks, thumbs, label="placeholder/thumbnail"),
            ratio_means="placeholder ms / thumbnail ms (same decoded image)",
        ),
        Row(
            case="sandbox: 24 MP JPEG, ThumbHash + colour vs the whole images.process",
            subject=Series("placeholder", "ms", marks),
            baseline=Series("images.process", "ms", whole_process),
            ratio=paired_ratio(marks, whole_process, label="placeholder/process"),
            ratio_means="placeholder ms / verify + strip + thumbnail + placeholder ms",
        ),
    ]


def run(workdir: Path, resources: Any, *, rounds: int, count: int) -> Report:
    try:
        from s3drop._placeholders import placeholder_of  # noqa: F401
    except ImportError as exc:
        raise Pending("s3drop._placeholders does not exist yet (issue 15)") from exc
    report = Report("placeholders", f"Placeholders: a page of {PAGE} among {count}; their cost")
    row, details = local(workdir, rounds=rounds, count=count)
    report.rows.append(row)
    report.details.update(details)
    report.rows.extend(sandbox_cost(rounds=rounds))
    try:
        server = resources.rgw()
    except Pending as exc:
        report.note = f"RGW part not run: {exc}"
        return report
    report.rows.extend(rgw(workdir, server, rounds=rounds, count=count))
    return report


def bench(resources: Any, args: argparse.Namespace) -> Report:
    """The ``python -m bench placeholders`` hook (:data:`bench.__main__.HOOKS`)."""
    return run(resources.workdir, resources, rounds=args.rounds or 5, count=args.images)
