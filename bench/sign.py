"""1. Signing under load (issue 13): ``POST /api/uploads`` on the s3 backend against a bare FastAPI
route signing the same POST policy with one reused boto3 client, and against ``/healthz``.

Two servers, both one uvicorn worker pinned to CPU 0 (wrk on CPU 1, ``taskset``), alive side by
side and loaded one at a time:

- **s3drop**: ``bench.app`` (s3drop's own app) on the s3 backend with static keys, default settings
  except the three limits raised out of reach (every sign still takes its three counters from the
  SQLite store in the data folder, none is refused). Signing a form contacts no storage, so the
  endpoint is an address nothing listens on (an RGW would only take CPU from the server).
- **bare**: ``bench.bare`` (see its docstring): the same body parsed, the same fields and
  conditions, ``generate_presigned_post`` of one boto3 client made at start-up; no auth, limits,
  audit, metrics or middleware.

Load comes from wrk (Debian's ``wrk``, a C event loop; ``bench/wrk/post_json.lua`` posts the JSON
body, or GETs with ``BENCH_METHOD=GET``, and prints a summary line with p50/p99/max). Each round
runs the three slices (bare sign, s3drop sign, s3drop ``/healthz``) back to back, ``SLICE`` seconds
each, in an order that rotates round by round, at c=16 and c=64; ratios pair the slices of one
round. Beside requests/s it records each server's CPU time per request (user + system, all
threads), which a busy machine disturbs far less than throughput.

Targets (issue 13): sign / bare >= 1.0 at c=16 and c=64; sign p99 at c=64 <= 2x the same server's
``/healthz`` p99; no sign over 250 ms at c=64 (the largest latency wrk saw in any round).
Diagnostics (no target): the same figures driven in-process (``bench/inprocess.py``: CPU per
request without sockets).
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import psutil  # type: ignore[import-untyped]

from .common import (
    BENCH,
    CLIENT_CPU,
    SERVER_CPU,
    MiB,
    Pending,
    Report,
    Row,
    Series,
    Server,
    Target,
    clean_env,
    free_port,
    paired_ratio,
    pinned,
    serve,
)

SIGN = "/api/uploads"
BARE = "/sign"
HEALTHZ = "/healthz"
BODY = '{"filename":"photo.jpg","content_type":"image/jpeg","size":1048576}'
SCRIPT = BENCH / "wrk" / "post_json.lua"
CONCURRENCY = (16, 64)
SLICE = 2
#: High enough that no request of the benchmark is ever limited (every sign still counts).
UNLIMITED = {
    "S3DROP_RATE_PER_MINUTE": str(10**9),
    "S3DROP_BYTES_PER_HOUR": str(10**15),
    "S3DROP_MAX_IMAGES": str(10**9),
}


def s3_env() -> dict[str, str]:
    """The s3 backend with static keys and an endpoint nothing listens on: signing a form makes
    no storage request, so none is needed (and an RGW would take the server's CPU)."""
    return {
        "S3DROP_BACKEND": "s3",
        "S3DROP_BUCKET": "photos",
        "AWS_ENDPOINT_URL_S3": f"http://127.0.0.1:{free_port()}",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "s3drop-bench",
        "AWS_SECRET_ACCESS_KEY": "s3drop-bench-secret",
    }


@dataclass
class Run:
    rps: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    cpu_us: float  # server CPU per request
    requests: int


def wrk(
    server: Server,
    path: str,
    *,
    connections: int,
    seconds: int,
    cpu: str = CLIENT_CPU,
    method: str = "POST",
) -> Run:
    """One wrk slice against ``path``; fails on any error or non-2xx answer."""
    return wrk_many(
        [server], path, connections=connections, seconds=seconds, cpu=cpu, method=method
    )


def wrk_many(
    servers: list[Server],
    path: str,
    *,
    connections: int,
    seconds: int,
    cpu: str = CLIENT_CPU,
    method: str = "POST",
) -> Run:
    """Slices against ``path`` on several servers at once (one wrk each, ``connections`` split
    evenly): requests/s summed, latencies the worst of them, CPU per request over all servers."""
    processes = [psutil.Process(server.pid) for server in servers]
    before = [process.cpu_times() for process in processes]
    each = max(1, connections // len(servers))
    running = [
        subprocess.Popen(
            pinned(
                [
                    "wrk",
                    "-t1",
                    f"-c{each}",
                    f"-d{seconds}s",
                    "--timeout",
                    "10s",
                    "-s",
                    str(SCRIPT),
                    server.url + path,
                ],
                cpu,
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={"BENCH_BODY": BODY, "BENCH_METHOD": method, "PATH": "/usr/bin:/bin"},
        )
        for server in servers
    ]
    outputs = [process.communicate(timeout=seconds + 30) for process in running]
    after = [process.cpu_times() for process in processes]
    found = []
    for server, process, (stdout, stderr) in zip(servers, running, outputs, strict=True):
        line = next((ln for ln in stdout.splitlines() if ln.startswith("BENCH-JSON ")), None)
        if process.returncode != 0 or line is None:
            raise RuntimeError(f"wrk failed on {path}:\n{stdout}\n{stderr}")
        data = json.loads(line.removeprefix("BENCH-JSON "))
        errors = {name: n for name, n in data["errors"].items() if n}
        if errors or not data["requests"]:
            raise RuntimeError(f"wrk saw errors on {path}: {errors}\n{server.output()}")
        found.append(data)
    cpu_seconds = sum(
        (a.user - b.user) + (a.system - b.system) for a, b in zip(after, before, strict=True)
    )
    requests = sum(data["requests"] for data in found)
    return Run(
        rps=sum(data["requests"] / (data["duration_us"] / 1e6) for data in found),
        p50_ms=max(data["p50_us"] for data in found) / 1000,
        p99_ms=max(data["p99_us"] for data in found) / 1000,
        max_ms=max(data["max_us"] for data in found) / 1000,
        cpu_us=cpu_seconds / requests * 1e6,
        requests=requests,
    )


def run(workdir: Path, *, rounds: int, diagnostics: bool = True) -> Report:
    if shutil.which("wrk") is None:
        raise Pending("wrk is not installed (apt-get install -y wrk)")
    report = Report("sign", "Signing under load (s3 backend) vs a bare FastAPI + boto3 route")
    report.details["load_generator"] = "wrk -t1 (C, event loop), pinned apart from the server"
    report.details["slice_seconds"] = SLICE
    env = {**UNLIMITED, **s3_env()}
    results: dict[tuple[int, str], list[Run]] = {}
    with (
        serve(workdir, env=env, name="sign") as server,
        serve(workdir, env=env, name="bare", factory="bench.bare:create_bare_app") as bare,
    ):
        plan = [(bare, BARE, "POST"), (server, SIGN, "POST"), (server, HEALTHZ, "GET")]
        for connections in CONCURRENCY:
            for target, path, method in plan:  # warm up: imports, connections, the SQLite file
                wrk(target, path, connections=connections, seconds=1, method=method)
            for index in range(rounds):
                shift = index % len(plan)
                for target, path, method in plan[shift:] + plan[:shift]:
                    got = wrk(target, path, connections=connections, seconds=SLICE, method=method)
                    results.setdefault((connections, path), []).append(got)
        rss = server.rss()

    for connections in CONCURRENCY:
        sign, base = results[(connections, SIGN)], results[(connections, BARE)]
        report.rows.append(
            Row(
                case=(
                    f"c={connections} req/s, sign / bare (p99 ms: sign "
                    f"{_med(r.p99_ms for r in sign):.1f}, bare {_med(r.p99_ms for r in base):.1f})"
                ),
                subject=Series("sign", "req/s", [r.rps for r in sign]),
                baseline=Series("bare", "req/s", [r.rps for r in base]),
                ratio=paired_ratio([r.rps for r in sign], [r.rps for r in base], label="ratio"),
                ratio_means="s3drop sign requests/s / bare FastAPI + boto3 requests/s",
                target=Target("ratio", ">=", 1.0, "sign/bare >= 1.0"),
                extra=_extra(sign, base),
            )
        )
    for connections in CONCURRENCY:
        sign, health = results[(connections, SIGN)], results[(connections, HEALTHZ)]
        report.rows.append(
            Row(
                case=f"c={connections} p99, sign / /healthz of the same server",
                subject=Series("sign p99", "ms", [r.p99_ms for r in sign]),
                baseline=Series("/healthz p99", "ms", [r.p99_ms for r in health]),
                ratio=paired_ratio(
                    [r.p99_ms for r in sign], [r.p99_ms for r in health], label="sign/healthz"
                ),
                ratio_means="sign p99 / /healthz p99, same server, same round",
                target=(
                    Target("ratio", "<=", 2.0, "sign p99 <= 2x /healthz p99")
                    if connections == 64
                    else None
                ),
                extra=_extra(sign, health),
            )
        )
    sign64, health64 = results[(64, SIGN)], results[(64, HEALTHZ)]
    report.rows.append(
        Row(
            case="c=64 slowest sign of any round (vs /healthz's slowest)",
            subject=Series("sign max", "ms", [r.max_ms for r in sign64]),
            baseline=Series("/healthz max", "ms", [r.max_ms for r in health64]),
            target=Target("max", "<=", 250, "no sign over 250 ms"),
        )
    )
    sign16, bare16 = results[(16, SIGN)], results[(16, BARE)]
    report.rows.append(
        Row(
            case="c=16 server CPU per request, sign / bare",
            subject=Series("sign", "us", [r.cpu_us for r in sign16]),
            baseline=Series("bare", "us", [r.cpu_us for r in bare16]),
            ratio=paired_ratio(
                [r.cpu_us for r in sign16],
                [r.cpu_us for r in bare16],
                label="bare/sign",
                invert=True,
            ),
            ratio_means="bare CPU / sign CPU: the throughput ratio when CPU-bound",
        )
    )
    report.rows.append(
        Row(case="server RSS after load", subject=Series("RSS, one worker", "MB", [rss / MiB]))
    )
    if diagnostics:
        report.rows.extend(_inprocess_rows(report, env))
    return report


def _extra(subject: list[Run], baseline: list[Run]) -> dict[str, float]:
    return {
        "p50_ms": _med(r.p50_ms for r in subject),
        "p99_ms": _med(r.p99_ms for r in subject),
        "max_ms": max(r.max_ms for r in subject),
        "baseline_p50_ms": _med(r.p50_ms for r in baseline),
        "baseline_p99_ms": _med(r.p99_ms for r in baseline),
        "baseline_max_ms": max(r.max_ms for r in baseline),
        "cpu_us_per_request": _med(r.cpu_us for r in subject),
        "baseline_cpu_us_per_request": _med(r.cpu_us for r in baseline),
    }


def _inprocess_rows(report: Report, env: dict[str, str]) -> list[Row]:
    """CPU per request with the apps driven in-process (bench/inprocess.py), pinned like the
    server: the steadiest figure of the sign route against the bare one."""
    result = subprocess.run(
        pinned(
            [sys.executable, "-m", "bench.inprocess", "--rounds", "3", "--count", "2000"],
            SERVER_CPU,
        ),
        capture_output=True,
        text=True,
        env=clean_env(env),
        timeout=600,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"bench.inprocess failed:\n{result.stderr[-3000:]}")
    data = json.loads(result.stdout)
    report.details["inprocess"] = data
    costs = data["cpu_us_per_request"]
    bare = costs["bare"]
    rows = []
    for name in costs:
        if name == "bare":
            continue
        cost = costs[name]
        rows.append(
            Row(
                case=f"in-process CPU/request: {name} vs bare",
                subject=Series(name, "us", [cost["min"], cost["median"], cost["max"]]),
                baseline=Series("bare", "us", [bare["min"], bare["median"], bare["max"]]),
                ratio=Series("bare/variant", "x", [bare["median"] / cost["median"]]),
                ratio_means="bare CPU / variant CPU: the throughput ratio when CPU-bound",
            )
        )
    return rows


def _med(values: Iterable[float]) -> float:
    return round(float(statistics.median(list(values))), 3)
