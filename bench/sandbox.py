"""6. The decode sandbox under bombs: peak server memory, and how long a legitimate image waits.

One server (``bench.app``, local backend, default sandbox settings: one decode worker per core
plus the small lane, 10 s of CPU and 1 GiB per decode), not pinned (its workers need the cores).
Memory is the RSS of the server process plus all its children (the decode workers), sampled every
20 ms with psutil.

- **memory**: 16 concurrent completes of the issue's memory bomb (95 KB, 7000 x 7000, 16-bit PNG:
  ~400 MB decoded) against the same server completing 16 legitimate 320 x 240 PNGs at once; the
  ratio is bomb peak / legit peak. Before the sandbox, the issue measured 6.07 GB for the bombs.
- **wait**: a 32 x 32 PNG's completion time (workers warm) while 8 bombs (2 KB lossless WebP, 7000 x 7000: ~1 s
  of CPU and ~800 MB each) are being completed, against the same completion on the idle server.
"""

from __future__ import annotations

import contextlib
import io
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import psutil
from PIL import Image

from .common import MiB, Report, Row, Series, Target, paired_ratio, serve

ENV = {
    "S3DROP_RATE_PER_MINUTE": str(10**9),
    "S3DROP_BYTES_PER_HOUR": str(10**15),
    "S3DROP_MAX_IMAGES": str(10**9),
    "S3DROP_ALLOWED_TYPES": "image/png,image/webp",
}


def _encode(image: Image.Image, fmt: str, **options: Any) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def _upload(url: str, data: bytes, content_type: str) -> str:
    with httpx.Client(base_url=url, timeout=120) as http:
        form = http.post(
            "/api/uploads",
            json={"filename": "x", "content_type": content_type, "size": len(data)},
        ).json()["upload"]
        answer = httpx.post(
            url + form["url"] if form["url"].startswith("/") else form["url"],
            data=form["fields"],
            files={"file": ("x", data, content_type)},
            timeout=120,
        )
        assert answer.status_code < 300, answer.text
        return str(form["id"])


def _complete(url: str, upload_id: str) -> tuple[int, float]:
    with httpx.Client(base_url=url, timeout=300) as http:
        start = time.perf_counter()
        status = http.post(f"/api/uploads/{upload_id}/complete").status_code
        return status, time.perf_counter() - start


def _all_at_once(url: str, data: bytes, content_type: str, count: int) -> Any:
    """Upload ``count`` copies, then a call that completes them all at once."""
    ids = [_upload(url, data, content_type) for _ in range(count)]

    def complete_all() -> list[tuple[int, float]]:
        with ThreadPoolExecutor(count) as pool:
            return list(pool.map(lambda upload_id: _complete(url, upload_id), ids))

    return complete_all


def _tree_rss(pid: int) -> int:
    process = psutil.Process(pid)
    total = 0
    for each in [process, *process.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            total += int(each.memory_info().rss)
    return total


def _peak_during(pid: int, work: Any) -> tuple[int, Any]:
    peak = _tree_rss(pid)
    with ThreadPoolExecutor(1) as runner:
        job = runner.submit(work)
        while not job.done():
            peak = max(peak, _tree_rss(pid))
            time.sleep(0.02)
        return peak, job.result()


def run(workdir: Path, *, rounds: int = 3) -> Report:
    report = Report("sandbox", "Decode sandbox under bombs (memory, legitimate wait)")
    bomb16 = _encode(Image.new("I;16", (7000, 7000)), "PNG")
    webp_bomb = _encode(Image.new("RGB", (7000, 7000)), "WEBP", lossless=True)
    legit = _encode(Image.new("RGB", (320, 240), (30, 120, 200)), "PNG")
    tiny = _encode(Image.new("RGB", (32, 32), (10, 200, 10)), "PNG")
    bomb_peak, legit_peak, idle_wait, busy_wait = [], [], [], []
    statuses: dict[str, list[int]] = {"png16": [], "webp": []}
    with serve(workdir, env=ENV, name="sandbox", pin=False) as server:
        url, pid = server.url, server.pid
        _complete(url, _upload(url, tiny, "image/png"))  # workers started
        for _ in range(rounds):
            peak, _ = _peak_during(pid, _all_at_once(url, legit, "image/png", 16))
            legit_peak.append(peak)
            peak, answers = _peak_during(pid, _all_at_once(url, bomb16, "image/png", 16))
            bomb_peak.append(peak)
            statuses["png16"] += [status for status, _ in answers]

            _complete(url, _upload(url, tiny, "image/png"))  # workers retired by the bombs: restart
            idle_wait.append(_complete(url, _upload(url, tiny, "image/png"))[1])
            bombs = [_upload(url, webp_bomb, "image/webp") for _ in range(8)]
            small = _upload(url, tiny, "image/png")
            with ThreadPoolExecutor(8) as pool:
                flying = [pool.submit(_complete, url, b) for b in bombs]
                time.sleep(0.5)  # all 8 in flight
                status, waited = _complete(url, small)
                assert status == 200
                assert not all(f.done() for f in flying), "the bombs were over too soon"
                statuses["webp"] += [f.result()[0] for f in flying]
            busy_wait.append(waited)
    report.rows.append(
        Row(
            "peak RSS, server + decode workers: 16 concurrent 16-bit PNG bombs vs 16 legit PNGs",
            Series("bombs", "MB", [p / MiB for p in bomb_peak]),
            Series("legit", "MB", [p / MiB for p in legit_peak]),
            paired_ratio(bomb_peak, legit_peak, label="bombs / legit"),
            "peak memory under 16 bombs relative to 16 legitimate completions",
            Target("value", "<", 3 * 1024, "< 3 GiB ((2 workers + 1) x 1 GiB bound)"),
            extra={"bomb statuses": statuses["png16"]},
        )
    )
    report.rows.append(
        Row(
            "a 32x32 PNG's completion while 8 WebP bombs are in flight vs on the idle server",
            Series("under bombs", "s", busy_wait),
            Series("idle", "s", idle_wait),
            paired_ratio(busy_wait, idle_wait, label="busy / idle"),
            "how much longer a legitimate completion takes behind 8 bombs",
            Target("value", "<", 1.0, "< 1 s"),
            extra={"bomb statuses": statuses["webp"]},
        )
    )
    return report
