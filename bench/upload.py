"""2. Upload streaming on the local backend: one 200 MB body to ``POST /storage`` vs a sink.

The same client posts the same multipart body (the signed form's fields, then a 200 MB file) to
``POST /storage`` (s3drop checks the policy and streams the file to disk) and to ``POST /bench/sink``
(reads ``request.stream()`` and discards it) on the same server. The client is curl (``-F
file=@path`` streams the file from disk; ``--form-string`` keeps field values literal), pinned to
the other CPU. Each round signs a fresh form (not timed), uploads, and deletes what was stored.

While a body streams, another thread samples the server's RSS every 10 ms: the growth is the
largest sample minus the RSS just before the upload.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import httpx
import psutil  # type: ignore[import-untyped]

from .common import (
    CLIENT_CPU,
    MiB,
    Report,
    Row,
    RSSSampler,
    Series,
    Server,
    Target,
    paired_ratio,
    pinned,
    serve,
)

SIZE = 200 * 1000 * 1000
SETTINGS = {
    "S3DROP_MAX_BYTES": "300MB",
    "S3DROP_RATE_PER_MINUTE": str(10**9),
    "S3DROP_BYTES_PER_HOUR": str(10**15),
}


def make_body(path: Path, size: int = SIZE) -> Path:
    """``size`` bytes that look like a compressed photo to a parser: random."""
    if not path.exists() or path.stat().st_size != size:
        with path.open("wb") as out:
            left = size
            while left:
                chunk = os.urandom(min(left, 8 * MiB))
                out.write(chunk)
                left -= len(chunk)
    return path


def sign(server: Server, size: int) -> dict[str, str]:
    answer = httpx.post(
        f"{server.url}/api/uploads",
        json={"filename": "big.jpg", "content_type": "image/jpeg", "size": size},
        timeout=30,
    )
    answer.raise_for_status()
    fields: dict[str, str] = answer.json()["upload"]["fields"]
    return fields


def curl_post(url: str, fields: dict[str, str], file: Path) -> tuple[int, float]:
    """Post ``fields`` then ``file`` as multipart; (status, seconds) as curl measured them."""
    command = [
        "curl",
        "-sS",
        "-o",
        "/dev/null",
        "-H",
        "Expect:",
        "-w",
        "%{http_code} %{time_total}",
    ]
    for name, value in fields.items():
        command += ["--form-string", f"{name}={value}"]
    command += ["-F", f"file=@{file};type=image/jpeg", url]
    result = subprocess.run(
        pinned(command, CLIENT_CPU), capture_output=True, text=True, timeout=300, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"curl failed: {result.stderr}")
    status, seconds = result.stdout.split()
    return int(status), float(seconds)


def run(workdir: Path, *, rounds: int) -> Report:
    report = Report("upload", "Upload streaming, local backend (POST /storage vs a sink)")
    body = make_body(workdir / "body-200MB.bin")
    report.details["body_bytes"] = SIZE
    report.details["client"] = "curl -F file=@... (streams from disk), pinned apart from the server"
    with serve(workdir, env=SETTINGS, name="upload") as server:
        objects = server.data_dir / "objects"

        process = psutil.Process(server.pid)
        cpu_of: dict[str, list[float]] = {"upload": [], "sink": [], "file": []}

        def cpu() -> float:
            times = process.cpu_times()
            return float(times.user + times.system)

        def upload_once() -> tuple[float, int]:
            fields = sign(server, SIZE)
            with RSSSampler(server.pid) as rss:
                before = cpu()
                status, seconds = curl_post(f"{server.url}/storage", fields, body)
                cpu_of["upload"].append(cpu() - before)
            stored = objects / fields["key"]
            if status != 204 or stored.stat().st_size != SIZE:
                raise RuntimeError(f"the upload was not stored (HTTP {status}):\n{server.output()}")
            stored.unlink()
            return seconds, rss.growth

        def sink(path: str, name: str) -> Callable[[], tuple[float, int]]:
            def once() -> tuple[float, int]:
                fields = sign(server, SIZE)
                with RSSSampler(server.pid) as rss:
                    before = cpu()
                    status, seconds = curl_post(f"{server.url}{path}", fields, body)
                    cpu_of[name].append(cpu() - before)
                if status != 204:
                    raise RuntimeError(f"{path} answered {status}:\n{server.output()}")
                return seconds, rss.growth

            return once

        steps = {
            "upload": upload_once,
            "sink": sink("/bench/sink", "sink"),
            "file": sink("/bench/sink-file", "file"),
        }
        for step in steps.values():  # warm up every path (page cache, first-use allocations)
            step()
        for values in cpu_of.values():
            values.clear()
        seconds_of: dict[str, list[float]] = {name: [] for name in steps}
        growth_of: dict[str, list[float]] = {name: [] for name in steps}
        for index in range(rounds):
            order = list(steps) if index % 2 == 0 else list(reversed(steps))
            for name in order:
                seconds, growth = steps[name]()
                seconds_of[name].append(seconds)
                growth_of[name].append(growth / MiB)
        report.details["server_rss_after_mb"] = round(server.rss() / MiB, 1)
    up_s, sink_s = seconds_of["upload"], seconds_of["sink"]
    up_mbs = [SIZE / 1e6 / s for s in up_s]
    sink_mbs = [SIZE / 1e6 / s for s in sink_s]
    file_mbs = [SIZE / 1e6 / s for s in seconds_of["file"]]
    report.rows.append(
        Row(
            case="throughput, 200 MB body",
            subject=Series("POST /storage", "MB/s", up_mbs),
            baseline=Series("sink", "MB/s", sink_mbs),
            ratio=paired_ratio(up_mbs, sink_mbs, label="upload/sink"),
            ratio_means="upload MB/s / sink MB/s",
            target=Target("ratio", ">=", 0.8, "upload/sink >= 0.8"),
            extra={"upload_seconds": up_s, "sink_seconds": sink_s},
        )
    )
    report.rows.append(
        Row(
            case="server RSS growth during the upload",
            subject=Series("POST /storage", "MB", growth_of["upload"]),
            baseline=Series("sink", "MB", growth_of["sink"]),
            target=Target("value", "<", 25, "growth < 25 MB"),
        )
    )
    per_mb = {name: [c / (SIZE / 1e6) * 1000 for c in values] for name, values in cpu_of.items()}
    report.rows.append(
        Row(
            case="server CPU per MB received",
            subject=Series("POST /storage", "ms/MB", per_mb["upload"]),
            baseline=Series("sink", "ms/MB", per_mb["sink"]),
            ratio=paired_ratio(per_mb["upload"], per_mb["sink"], label="upload/sink"),
            ratio_means="CPU per MB, upload / sink (lower is better; steadier than MB/s here)",
            extra={"sink_file_ms_per_mb": per_mb["file"]},
        )
    )
    report.rows.append(
        Row(
            case="diag: sink that also writes the body to disk (no parsing, no policy)",
            subject=Series("sink-file", "MB/s", file_mbs),
            baseline=Series("sink", "MB/s", sink_mbs),
            ratio=paired_ratio(file_mbs, sink_mbs, label="file/sink"),
            ratio_means="sink-file MB/s / sink MB/s",
        )
    )
    return report
