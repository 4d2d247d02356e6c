"""9. Responsive variants: what they cost at promotion, and what they save a browser.

Promotion (``python -m bench.variants PIPELINE``, a fresh subprocess per round, as
:mod:`bench.verify` does it): ``S3Drop.complete`` of the 24-megapixel photo-like JPEG of
:mod:`bench.verify` on a local backend, with the default variants (``with``: the default
``S3DROP_VARIANT_WIDTHS`` in every default ``S3DROP_VARIANT_FORMATS``) and without
(``without``: ``S3DROP_VARIANT_FORMATS=""``, today's promotion: the same scaled decode, thumbnail
and puts). Time is the second (warm) run; memory is the peak RSS growth of the process plus its
decode worker's (``VmHWM``), as in :mod:`bench.verify`. The pipelines alternate, order flipped each
round.

HEIC (``diag``): ``images.process`` of :mod:`bench.heic`'s 12 MP phone HEIC (converted to the
stored JPEG), with the default variants vs without, in this process, alternating: a HEIC is decoded
at full size by libheif (no scaled decode), so its variants are resized from the full picture.

Browser (``bytes``): the bundled app on the local backend, the JPEG promoted with its variants,
the gallery page opened in Chromium (Playwright) at 400 x 800 CSS pixels and a device scale factor
of 2; every response's URL and body size is logged. The subject is the bytes of the image the
browser chose from the ``srcset`` for the gallery's slot (which the log names); the baseline is the
original's size, the bytes a page showing the original would fetch.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path
from typing import Any

from .common import Report, Row, Series, Target, paired_ratio, run_json
from .verify import CACHE, IMAGES, _Complete, _median, _tiny, sample

PIPELINES = ("with", "without", "avif")


def bench(resources: Any, args: argparse.Namespace) -> Report:
    """``python -m bench variants``: the hook :data:`bench.__main__.HOOKS` names."""
    return run(resources.workdir, rounds=args.rounds or 5)


def run(workdir: Path, *, rounds: int, browser: bool = True) -> Report:
    report = Report("variants", "Responsive variants: promotion cost, bytes a phone fetches")
    path = sample("jpeg")
    report.details["jpeg_bytes"] = path.stat().st_size
    got: dict[str, list[dict[str, Any]]] = {p: [] for p in PIPELINES}
    for index in range(rounds):
        order = PIPELINES if index % 2 == 0 else tuple(reversed(PIPELINES))
        for pipeline in order:
            got[pipeline].append(_subprocess(workdir, pipeline))
    ms = {p: [r["ms"] for r in runs] for p, runs in got.items()}
    peak = {p: [r["peak_mb"] for r in runs] for p, runs in got.items()}
    report.details["variants_made"] = got["with"][-1]["variants"]
    report.rows.append(
        Row(
            case="JPEG 24 MP: promote with the default variants vs without",
            subject=Series("with", "ms", ms["with"]),
            baseline=Series("without", "ms", ms["without"]),
            ratio=paired_ratio(ms["with"], ms["without"], label="slower by"),
            ratio_means="complete ms with variants / complete ms without",
            target=Target("ratio", "<=", 1.6, "<= 1.6x the time"),
        )
    )
    report.rows.append(
        Row(
            case="JPEG 24 MP: peak memory with the default variants vs without",
            subject=Series("with", "MB", peak["with"]),
            baseline=Series("without", "MB", peak["without"]),
            ratio=paired_ratio(peak["with"], peak["without"], label="share"),
            ratio_means="peak RSS growth with variants / without",
            target=Target("ratio", "<=", 1.2, "<= 1.2x the memory"),
        )
    )
    cpu = {p: [r["cpu_ms"] for r in runs] for p, runs in got.items()}
    report.rows.append(
        Row(
            case="diag: CPU time (process + decode worker) with the default variants vs without",
            subject=Series("with", "ms", cpu["with"]),
            baseline=Series("without", "ms", cpu["without"]),
            ratio=paired_ratio(cpu["with"], cpu["without"], label="more by"),
            ratio_means="CPU ms with variants / without (steadier than wall time on a busy machine)",
        )
    )
    report.rows.append(
        Row(
            case="diag: the same with AVIF too (S3DROP_VARIANT_FORMATS=image/avif,image/webp)",
            subject=Series("avif", "ms", ms["avif"]),
            baseline=Series("without", "ms", ms["without"]),
            ratio=paired_ratio(ms["avif"], ms["without"], label="slower by"),
            ratio_means="complete ms with AVIF and WebP variants / without",
            extra={
                "avif_peak_mb": _median(peak["avif"]),
                "without_peak_mb": _median(peak["without"]),
            },
        )
    )
    report.rows.append(_heic(workdir, rounds=max(2, rounds // 2)))
    if browser:
        from .variants_browser import fetched_bytes

        found = [fetched_bytes(workdir, path) for _ in range(max(1, rounds // 2))]
        report.details["browser_fetched"] = found[-1]
        report.rows.append(
            Row(
                case="24 MP photo in a 400 CSS-px slot at DPR 2: bytes fetched vs the original",
                subject=Series("fetched", "bytes", [f["fetched"] for f in found]),
                baseline=Series("original", "bytes", [f["original"] for f in found]),
                ratio=paired_ratio(
                    [f["fetched"] for f in found],
                    [f["original"] for f in found],
                    label="fewer by",
                    invert=True,
                ),
                ratio_means="the original's bytes / bytes of the image the browser fetched",
                target=Target("ratio", ">=", 20, "<= 1/20 (>= 20x fewer)"),
            )
        )
    return report


def _heic(workdir: Path, *, rounds: int) -> Row:
    from s3drop import _images as images
    from s3drop._config import Settings
    from s3drop._convert import register_heif

    from .heic import _sample

    register_heif()
    data = _sample(workdir)
    with_variants = images.ImageLimits.from_settings(Settings(data_dir=workdir / "unused"))
    without = images.ImageLimits()
    times: dict[str, list[float]] = {"with": [], "without": []}
    for index in range(rounds):
        for name in ("with", "without") if index % 2 == 0 else ("without", "with"):
            started = time.perf_counter()
            processed = images.process(
                data, "image/heic", with_variants if name == "with" else without
            )
            times[name].append((time.perf_counter() - started) * 1000)
            if name == "with" and not processed.variants:
                raise RuntimeError("the HEIC got no variants")
    return Row(
        case="diag: HEIC 12 MP: verify + convert with the default variants vs without",
        subject=Series("with", "ms", times["with"]),
        baseline=Series("without", "ms", times["without"]),
        ratio=paired_ratio(times["with"], times["without"], label="slower by"),
        ratio_means="process ms with variants / without (in this process, alternating)",
    )


def _subprocess(workdir: Path, pipeline: str) -> dict[str, Any]:
    return run_json("bench.variants", pipeline, workdir=workdir)


class _Promote(_Complete):
    """:class:`bench.verify._Complete` with the default variants, none, or AVIF and WebP."""

    def __init__(self, workdir: Path, *, pipeline: str) -> None:
        super().__init__(workdir, "image/jpeg")
        if pipeline != "with":
            from s3drop._config import Settings
            from s3drop._uploads import S3Drop
            from s3drop.limits import MemoryLimitStore

            data_dir, max_bytes = self.drop.settings.data_dir, self.drop.settings.max_bytes
            formats = "image/avif,image/webp" if pipeline == "avif" else ""
            settings = Settings(data_dir=data_dir, max_bytes=max_bytes, variant_formats=formats)
            self.drop = S3Drop(settings, limit_store=MemoryLimitStore())


def worker(pipeline: str, workdir: Path) -> dict[str, Any]:
    from . import fixes

    fixes.apply()
    promote = _Promote(workdir, pipeline=pipeline)
    promote(_tiny("image/jpeg"))
    data = (CACHE / IMAGES["jpeg"][0]).read_bytes()
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    workers_before = promote.worker_peak_kb()
    image: Any = None
    for _ in range(2):
        image = promote(data)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    peak += promote.worker_peak_kb() - workers_before
    wall, cpu = promote.last
    return {
        "pipeline": pipeline,
        "ms": wall * 1000,
        "cpu_ms": cpu * 1000,
        "peak_mb": (peak - baseline) / 1024,
        "variants": [source.type for source in image.sources],
        "key": image.key,
        "at": time.time(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.variants")
    parser.add_argument("pipeline", choices=PIPELINES)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp"))
    args = parser.parse_args()
    print(json.dumps(worker(args.pipeline, args.workdir)))


if __name__ == "__main__":
    main()
