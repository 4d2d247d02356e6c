"""7. HEIC from a phone: verify + convert a 12 MP HEIC to the stored JPEG, against libheif's own
decode (and pyvips's HEIC -> JPEG when pyvips is installed), and the JPEG quality measurement.

- **convert**: ``images.check_header`` + ``images.process`` on a 4032 x 3024 photo-like HEIC
  (``bench.samples.photo``, encoded once by pillow-heif/x265 at quality 60 and cached in the work
  folder): the structure walk, libheif's decode, the JPEG at the registry's quality and the
  thumbnail. Baseline: pillow-heif's decode alone (``Image.open(...).load()``), in the same run;
  the ratio is convert / decode. With pyvips: ``pyvips.Image.new_from_buffer`` -> JPEG beside it,
  when its libheif decodes HEVC (pyvips-binary's is built without it: then a note says so).
- **quality**: the decoded HEIC encoded as JPEG at 75 to 95; bytes (against the HEIC's) and PSNR
  against the decoded HEIC, the figures the registry's quality (``formats._AS_JPEG``) was chosen by.
"""

from __future__ import annotations

import io
import math
import time
from pathlib import Path

from PIL import Image, ImageChops

from .common import Report, Row, Series
from .samples import photo

SIZE = (4032, 3024)


def _sample(workdir: Path) -> bytes:
    path = workdir / "phone-12mp.heic"
    if not path.exists():
        out = io.BytesIO()
        photo(SIZE, seed=3, noise=6.0).save(out, "HEIF", quality=60)
        path.write_bytes(out.getvalue())
    return path.read_bytes()


def _psnr(a: Image.Image, b: Image.Image) -> float:
    total = 0
    for channel in ImageChops.difference(a, b).split():
        total += sum(i * i * count for i, count in enumerate(channel.histogram()))
    mse = total / (a.width * a.height * 3)
    return 10 * math.log10(255 * 255 / mse) if mse else float("inf")


def run(workdir: Path, *, rounds: int) -> Report:
    from s3drop import _formats as formats
    from s3drop import _images as images
    from s3drop._convert import register_heif

    register_heif()
    report = Report("heic", "HEIC 12 MP: verify + convert to JPEG vs libheif's decode alone")
    data = _sample(workdir)
    report.details["heic_bytes"] = len(data)
    limits = images.ImageLimits()
    ours, decode, vips = [], [], []
    try:
        import pyvips  # type: ignore[import-not-found]
    except ImportError:
        pyvips = None
        report.note = "pyvips is not installed (pip install 'pyvips[binary]'): no pyvips figure"
    for _ in range(rounds):
        started = time.perf_counter()
        found = images.check_header(
            data[: images.HEADER_BYTES], declared="image/heic", allowed=["image/heic"],
            limits=limits, whole=False,
        ) or "image/heic"  # fmt: skip
        processed = images.process(data, found, limits)
        ours.append(time.perf_counter() - started)
        started = time.perf_counter()
        Image.open(io.BytesIO(data), formats=["HEIF"]).load()
        decode.append(time.perf_counter() - started)
        if pyvips is not None:
            started = time.perf_counter()
            try:
                pyvips.Image.new_from_buffer(data, "").write_to_buffer(".jpg[Q=88]")
            except pyvips.Error as exc:  # pyvips-binary's libheif is built without HEVC
                reason = " ".join(str(exc).split())
                report.note = f"pyvips cannot decode HEIC here (no HEVC in its libheif): {reason}"
                pyvips = None
            else:
                vips.append(time.perf_counter() - started)
    report.details["jpeg_bytes"] = len(processed.data)
    ratio = [a / b for a, b in zip(ours, decode, strict=True)]
    report.rows.append(
        Row(
            "verify + convert 12 MP HEIC",
            Series("s3drop", "s", ours),
            Series("pillow-heif decode", "s", decode),
            Series("ratio", "x", ratio),
            ratio_means="s3drop's time / libheif's decode alone",
            extra={"pyvips_heic_to_jpeg_s": vips} if vips else {},
        )
    )
    reference = Image.open(io.BytesIO(data), formats=["HEIF"]).convert("RGB")
    chosen = formats.by_type("image/heic").save.get("quality")
    for quality in (75, 80, 85, 88, 90, 92, 95):
        out = io.BytesIO()
        reference.save(out, "JPEG", quality=quality, optimize=True)
        back = Image.open(io.BytesIO(out.getvalue())).convert("RGB")
        report.details[f"jpeg_q{quality}"] = {
            "bytes": len(out.getvalue()),
            "of_heic": round(len(out.getvalue()) / len(data), 2),
            "psnr_db": round(_psnr(reference, back), 2),
            "chosen": quality == chosen,
        }
    return report
