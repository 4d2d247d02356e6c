"""3. Verification and promotion of one image: s3drop's complete step vs naive Pillow vs pyvips.

Images (made by :mod:`bench.samples`, cached in /tmp/s3drop-bench-cache): a 24-megapixel photo-like
JPEG at quality 90 with EXIF (orientation 1, GPS), and a 12-megapixel photo-like PNG (4240 x 2832).

Pipelines, each in a fresh subprocess per round (``python -m bench.verify PIPELINE IMAGE``):

- ``complete``: s3drop's own step on a local backend in a temporary folder. The object is put into
  quarantine with ``storage.put`` and the metadata a signed upload carries (filename, owner, the
  SHA-256 the page sends), then ``S3Drop.complete(id)`` is timed: read, sniff, header check,
  checksum, structure walk and metadata strip, decode, thumbnail, put image and thumbnail, delete the
  quarantine copy.
- ``naive``: Pillow as most code does it: open, full decode (``load()``), ``thumbnail((320, 320))``,
  save WebP.
- ``pyvips``: ``pyvips.Image.thumbnail_buffer(data, 320)`` then WebP (libvips' shrink-on-load; a
  practical lower bound). The libvips operation cache is off, or a second run would be free.

Each subprocess imports, warms the pipeline up on a tiny image of the same format, reads the file
into memory, then resets its peak resident memory to what it holds now (``/proc/self/clear_refs``;
so are the decode workers'), and runs the pipeline twice: the second run is timed (warm, as in a
server), and the peak (``VmHWM``: it sees libjpeg's and libvips' allocations, which tracemalloc does
not) minus the resident memory at the reset is the memory. (Taking ``ru_maxrss`` before and after
instead measured 0 for a pipeline whose peak stayed under an earlier high-water mark, and the ratio
divided by it.)
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .common import Pending, Report, Row, Series, Target, paired_ratio, run_json

CACHE = Path("/tmp/s3drop-bench-cache")
PIPELINES = ("complete", "naive", "pyvips")
#: name -> (file, content type); bump the version in the file name when samples.py changes.
IMAGES = {
    "jpeg": ("photo-24mp-v2.jpg", "image/jpeg"),
    "png": ("photo-12mp-v2.png", "image/png"),
}
THUMBNAIL = 320


def sample(name: str) -> Path:
    """The cached sample image ``name`` (``jpeg`` or ``png``), made on first use."""
    from . import samples

    file, _ = IMAGES[name]
    path = CACHE / file
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        data = samples.jpeg_photo() if name == "jpeg" else samples.png_photo()
        tmp = path.with_suffix(".part")
        tmp.write_bytes(data)
        tmp.replace(path)
    return path


def has_complete() -> bool:
    from s3drop._uploads import S3Drop

    return callable(getattr(S3Drop, "complete", None))


def run(workdir: Path, *, rounds: int) -> Report:
    if not has_complete():
        raise Pending("S3Drop.complete does not exist yet (issue 4)")
    report = Report("verify", "Verify + promote one image (complete vs naive Pillow vs pyvips)")
    pipelines = list(PIPELINES)
    if not _pyvips_available():
        pipelines.remove("pyvips")
        report.note = "pyvips is not installed (pip install pyvips pyvips-binary): no lower bound"
    for name in IMAGES:
        path = sample(name)
        report.details[f"{name}_bytes"] = path.stat().st_size
        got: dict[str, list[dict[str, Any]]] = {p: [] for p in pipelines}
        for index in range(rounds):
            order = pipelines if index % 2 == 0 else list(reversed(pipelines))
            for pipeline in order:
                got[pipeline].append(_subprocess(workdir, pipeline, name))
        report.rows.extend(_rows(name, got))
    return report


def _pyvips_available() -> bool:
    result = subprocess.run(
        [sys.executable, "-c", "import pyvips"], capture_output=True, check=False, timeout=60
    )
    return result.returncode == 0


def _subprocess(workdir: Path, pipeline: str, name: str) -> dict[str, Any]:
    return run_json("bench.verify", pipeline, name, workdir=workdir)


def _rows(name: str, got: dict[str, list[dict[str, Any]]]) -> list[Row]:
    ms = {p: [r["ms"] for r in runs] for p, runs in got.items()}
    peak = {p: [r["peak_mb"] for r in runs] for p, runs in got.items()}
    cpu = {p: [r["cpu_ms"] for r in runs] for p, runs in got.items()}
    label = "JPEG 24 MP" if name == "jpeg" else "PNG 12 MP"
    judged = name == "jpeg"  # the speed targets are for the JPEG
    rows = [
        Row(
            case=f"{label}: time vs naive Pillow",
            subject=Series("complete", "ms", ms["complete"]),
            baseline=Series("naive", "ms", ms["naive"]),
            ratio=paired_ratio(ms["complete"], ms["naive"], label="speed-up", invert=True),
            ratio_means="naive ms / complete ms (speed-up)",
            target=Target("ratio", ">=", 1.5, ">= 1.5x faster") if judged else None,
            extra={
                "complete_cpu_ms": _median(cpu["complete"]),
                "naive_cpu_ms": _median(cpu["naive"]),
            },
        )
    ]
    if "pyvips" in ms:
        rows.append(
            Row(
                case=f"{label}: time vs pyvips",
                subject=Series("complete", "ms", ms["complete"]),
                baseline=Series("pyvips", "ms", ms["pyvips"]),
                ratio=paired_ratio(ms["complete"], ms["pyvips"], label="slower by"),
                ratio_means="complete ms / pyvips ms",
                target=Target("ratio", "<=", 1.2, "<= 1.2x pyvips") if judged else None,
                extra={"pyvips_cpu_ms": _median(cpu["pyvips"])},
            )
        )
    rows.append(
        Row(
            case=f"{label}: peak memory vs naive",
            subject=Series("complete", "MB", peak["complete"]),
            baseline=Series("naive", "MB", peak["naive"]),
            ratio=paired_ratio(peak["complete"], peak["naive"], label="share"),
            ratio_means="complete peak RSS / naive peak RSS",
            target=Target("ratio", "<", 1 / 3, "< 1/3 of naive"),
            extra={"pyvips_peak_mb": _median(peak["pyvips"])} if "pyvips" in peak else {},
        )
    )
    return rows


def _median(values: list[float]) -> float:
    import statistics

    return round(statistics.median(values), 2)


# --- the worker: one pipeline, one image, in this (fresh) process ---------------------------------


def _naive(data: bytes) -> bytes:
    from PIL import Image

    image = Image.open(io.BytesIO(data))
    image.load()
    image.thumbnail((THUMBNAIL, THUMBNAIL))
    out = io.BytesIO()
    image.save(out, "WEBP")
    return out.getvalue()


def _pyvips(data: bytes) -> bytes:
    import pyvips  # type: ignore[import-untyped]

    thumb = pyvips.Image.thumbnail_buffer(data, THUMBNAIL)
    out: bytes = thumb.write_to_buffer(".webp")
    return out


class _Complete:
    """s3drop's complete step on a local backend in a folder of its own."""

    def __init__(self, workdir: Path, content_type: str) -> None:
        import hashlib
        import os

        from s3drop._config import Settings
        from s3drop._uploads import S3Drop
        from s3drop.limits import MemoryLimitStore

        self.hashlib = hashlib
        self.content_type = content_type
        data_dir = workdir / f"verify-{os.getpid()}"
        settings = Settings(data_dir=data_dir, max_bytes=300 * 1000 * 1000)
        self.drop = S3Drop(settings, limit_store=MemoryLimitStore())

    def __call__(self, data: bytes) -> object:
        from s3drop._policy import encode_meta, new_upload_id, quarantine_key

        upload_id = new_upload_id()
        self.drop.storage.put(
            quarantine_key(upload_id, self.content_type),
            data,
            content_type=self.content_type,
            metadata={
                "filename": encode_meta("photo"),
                "sha256": self.hashlib.sha256(data).hexdigest(),
                "owner": "anonymous",
            },
        )
        start = time.perf_counter()
        cpu = time.process_time() + self.worker_cpu()
        image = self.drop.complete(upload_id)
        self.last = (time.perf_counter() - start, time.process_time() + self.worker_cpu() - cpu)
        return image

    # The decode runs in a worker process of s3drop._sandbox: its CPU and memory count too.

    def worker_cpu(self) -> float:
        import psutil  # type: ignore[import-untyped]

        total = 0.0
        for pid in self.drop.decoders.pids():
            times = psutil.Process(pid).cpu_times()
            total += times.user + times.system
        return total

    def worker_peak_kb(self) -> int:
        """The decode workers' peak resident memory since :meth:`reset_peaks`, summed, in KiB."""
        return sum(_status_kb(pid, "VmHWM") for pid in self.drop.decoders.pids())

    def reset_peaks(self) -> int:
        """Start the workers' peak memory afresh; their resident memory now, summed, in KiB."""
        return sum(_reset_peak(pid) for pid in self.drop.decoders.pids())


def _status_kb(pid: int | str, name: str) -> int:
    """``name`` (VmHWM, VmRSS) of process ``pid`` from /proc, in KiB."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(f"{name}:"):
                return int(line.split()[1])
    return 0


def _reset_peak(pid: int | str = "self") -> int:
    """Reset the peak resident memory (VmHWM) of ``pid`` to its resident memory now, which is
    returned (KiB). Without this, a pipeline whose peak stays under an earlier high-water mark (an
    import, reading the file) measures 0 and the ratio divides by it."""
    with open(f"/proc/{pid}/clear_refs", "w") as refs:
        refs.write("5")
    return _status_kb(pid, "VmRSS")


def _tiny(content_type: str) -> bytes:
    from PIL import Image

    from .samples import camera_exif

    out = io.BytesIO()
    image = Image.new("RGB", (64, 48), (200, 100, 50))
    if content_type == "image/jpeg":
        image.save(out, "JPEG", quality=90, exif=camera_exif())
    else:
        image.save(out, "PNG")
    return out.getvalue()


def worker(pipeline: str, name: str, workdir: Path) -> dict[str, Any]:
    from . import fixes

    fixes.apply()
    _, content_type = IMAGES[name]
    complete: _Complete | None = None
    function: Callable[[bytes], object]
    if pipeline == "pyvips":
        import pyvips

        pyvips.cache_set_max(0)
        function = _pyvips
    elif pipeline == "naive":
        import PIL.WebPImagePlugin  # noqa: F401

        function = _naive
    else:
        complete = _Complete(workdir, content_type)
        function = complete
    function(_tiny(content_type))
    path = CACHE / IMAGES[name][0]
    if not path.exists():
        raise RuntimeError(f"{path} is missing: run() makes it before the workers start")
    data = path.read_bytes()
    baseline = _reset_peak()
    workers_before = complete.reset_peaks() if complete is not None else 0
    times: list[tuple[float, float]] = []
    for _ in range(2):
        start, cpu = time.perf_counter(), time.process_time()
        function(data)
        times.append((time.perf_counter() - start, time.process_time() - cpu))
        if complete is not None:  # time complete() alone, not the quarantine put before it
            times[-1] = complete.last
    peak = _status_kb("self", "VmHWM")
    if complete is not None:  # plus what the decode worker grew by (it is not a child that ended)
        peak += complete.worker_peak_kb() - workers_before
    wall, cpu = times[-1]
    return {
        "pipeline": pipeline,
        "image": name,
        "ms": wall * 1000,
        "cpu_ms": cpu * 1000,
        "first_ms": times[0][0] * 1000,
        "peak_mb": (peak - baseline) / 1024,
        "baseline_mb": baseline / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.verify")
    parser.add_argument("pipeline", choices=PIPELINES)
    parser.add_argument("image", choices=list(IMAGES))
    parser.add_argument("--workdir", type=Path, default=Path("/tmp"))
    args = parser.parse_args()
    print(json.dumps(worker(args.pipeline, args.image, args.workdir)))


if __name__ == "__main__":
    main()
