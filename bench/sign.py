"""1. Signing under load: ``POST /api/uploads`` against a no-op JSON endpoint of the same server.

Load comes from wrk (Debian's ``wrk``, a C event loop; ``bench/wrk/post_json.lua`` posts the JSON
body and prints a summary line). It was chosen over a Python client because on a 2-core machine a
Python load generator needs a core of its own to keep up with one uvicorn worker; wrk drives
thousands of requests a second from a fraction of one. The server (one uvicorn worker) is pinned to
CPU 0 and wrk to CPU 1 when ``taskset`` is there.

Each round runs the no-op and the sign endpoint back to back (order alternating), ``SLICE`` seconds
each, at concurrency 1, 16 and 64; ratios pair the two slices of a round. Besides requests/s and
latency it records the server's CPU time per request (user + system, all threads), which a busy
machine disturbs far less than throughput: it says what a request costs, throughput says how many fit.

Diagnostics (no target; they say where the time goes), each a variant of the sign route that
differs in one thing (see bench/app.py): under wrk at c=16, ratio against the round's no-op slice,
and driven in-process by bench/inprocess.py (CPU per request without sockets, steady on a busy
machine). The in-memory limit store variant runs on a second server.
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
    paired_ratio,
    pinned,
    serve,
)

SIGN = "/api/uploads"
NOOP = "/api/bench/noop"
NOOP_SYNC = "/api/bench/noop-sync"
SIGN_1HOP = "/api/bench/sign-1hop"
SIGN_ASYNC = "/api/bench/sign-async"
BODY = '{"filename":"photo.jpg","content_type":"image/jpeg","size":1048576}'
SCRIPT = BENCH / "wrk" / "post_json.lua"
CONCURRENCY = (1, 16, 64)
SLICE = 2
#: High enough that no request of the benchmark is ever limited (every sign still counts).
UNLIMITED = {
    "S3DROP_RATE_PER_MINUTE": str(10**9),
    "S3DROP_BYTES_PER_HOUR": str(10**15),
    "S3DROP_MAX_IMAGES": str(10**9),
}


@dataclass
class Run:
    rps: float
    p50_ms: float
    p99_ms: float
    cpu_us: float  # server CPU per request
    requests: int


def wrk(server: Server, path: str, *, connections: int, seconds: int) -> Run:
    """One wrk slice against ``path``; fails on any error or non-2xx answer."""
    process = psutil.Process(server.pid)
    before = process.cpu_times()
    result = subprocess.run(
        pinned(
            [
                "wrk",
                "-t1",
                f"-c{connections}",
                f"-d{seconds}s",
                "--timeout",
                "10s",
                "-s",
                str(SCRIPT),
                server.url + path,
            ],
            CLIENT_CPU,
        ),
        capture_output=True,
        text=True,
        env={"BENCH_BODY": BODY, "PATH": "/usr/bin:/bin"},
        timeout=seconds + 30,
        check=False,
    )
    after = process.cpu_times()
    line = next((ln for ln in result.stdout.splitlines() if ln.startswith("BENCH-JSON ")), None)
    if result.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed on {path}:\n{result.stdout}\n{result.stderr}")
    data = json.loads(line.removeprefix("BENCH-JSON "))
    errors = {name: n for name, n in data["errors"].items() if n}
    if errors or not data["requests"]:
        raise RuntimeError(f"wrk saw errors on {path}: {errors}\n{server.output()}")
    cpu = (after.user - before.user) + (after.system - before.system)
    return Run(
        rps=data["requests"] / (data["duration_us"] / 1e6),
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        cpu_us=cpu / data["requests"] * 1e6,
        requests=data["requests"],
    )


def run(workdir: Path, *, rounds: int, diagnostics: bool = True) -> Report:
    if shutil.which("wrk") is None:
        raise Pending("wrk is not installed (apt-get install -y wrk)")
    report = Report("sign", "Signing under load (POST /api/uploads vs a no-op JSON endpoint)")
    report.details["load_generator"] = "wrk -t1 (C, event loop), pinned apart from the server"
    report.details["slice_seconds"] = SLICE
    with serve(workdir, env=UNLIMITED, name="sign") as server:
        results: dict[tuple[int, str], list[Run]] = {}
        for connections in CONCURRENCY:
            for path in (NOOP, SIGN):  # warm up: imports, connection set-up, the SQLite file
                wrk(server, path, connections=connections, seconds=1)
            for index in range(rounds):
                order = (NOOP, SIGN) if index % 2 == 0 else (SIGN, NOOP)
                for path in order:
                    got = wrk(server, path, connections=connections, seconds=SLICE)
                    results.setdefault((connections, path), []).append(got)
        rss = server.rss()
        diag: dict[str, list[Run]] = {}
        if diagnostics:
            diag = _diagnostics(workdir, server, rounds=rounds)

    for connections in CONCURRENCY:
        sign, noop = results[(connections, SIGN)], results[(connections, NOOP)]
        target = None
        if connections == 16:
            target = Target("ratio", ">=", 0.7, "sign/no-op >= 0.7")
        latency = (
            f"c={connections} throughput (p50/p99 ms: sign {_med(r.p50_ms for r in sign):.1f}/"
            f"{_med(r.p99_ms for r in sign):.1f}, no-op {_med(r.p50_ms for r in noop):.1f}/"
            f"{_med(r.p99_ms for r in noop):.1f})"
        )
        report.rows.append(_throughput_row(latency, sign, noop, target))
    sign64, noop64 = results[(64, SIGN)], results[(64, NOOP)]
    report.rows.append(
        Row(
            case="c=64 p99 latency",
            subject=Series("sign p99", "ms", [r.p99_ms for r in sign64]),
            baseline=Series("no-op p99", "ms", [r.p99_ms for r in noop64]),
            ratio=paired_ratio(
                [r.p99_ms for r in sign64], [r.p99_ms for r in noop64], label="sign/no-op"
            ),
            ratio_means="sign p99 / no-op p99",
            target=Target("value", "<", 30, "sign p99 < 30 ms"),
            extra={"sign_p50_ms": _med(r.p50_ms for r in sign64)},
        )
    )
    sign16, noop16 = results[(16, SIGN)], results[(16, NOOP)]
    report.rows.append(
        Row(
            case="c=16 server CPU per request",
            subject=Series("sign", "us", [r.cpu_us for r in sign16]),
            baseline=Series("no-op", "us", [r.cpu_us for r in noop16]),
            ratio=paired_ratio(
                [r.cpu_us for r in sign16], [r.cpu_us for r in noop16], label="sign/no-op"
            ),
            ratio_means="CPU per sign / CPU per no-op (lower is better; info)",
        )
    )
    report.rows.append(
        Row(
            case="server RSS after load",
            subject=Series("RSS, one worker", "MB", [rss / MiB]),
            target=Target("value", "<", 100, "RSS < 100 MB"),
        )
    )
    labels = {
        "noop-sync": "c=16 diag: no-op as def + sync auth dependency (the 2 threadpool hops)",
        "sign-1hop": "c=16 diag: sign with an async auth dependency (1 hop)",
        "sign-async": "c=16 diag: sign as async def, async dependency (0 hops), SQLite limits",
        "sign-async-memory": "c=16 diag: sign as async def (0 hops), in-memory limits",
    }
    diag_noop = diag.pop("_noop", [])
    for name, runs in diag.items():
        report.rows.append(_throughput_row(labels[name], runs, diag_noop, None, label=name))
    if diagnostics:
        report.rows.extend(_inprocess_rows(report))
    return report


def _diagnostics(workdir: Path, server: Server, *, rounds: int) -> dict[str, list[Run]]:
    """Where the sign route's time goes, at c=16; each slice paired with a no-op slice."""
    found: dict[str, list[Run]] = {}
    with serve(
        workdir, env={**UNLIMITED, "S3DROP_BENCH_LIMITS": "memory"}, name="sign-memory"
    ) as memory:
        plan = [
            ("noop-sync", server, NOOP_SYNC),
            ("sign-1hop", server, SIGN_1HOP),
            ("sign-async", server, SIGN_ASYNC),
            ("sign-async-memory", memory, SIGN_ASYNC),
        ]
        for _name, target, path in plan:
            wrk(target, path, connections=16, seconds=1)
        for _ in range(rounds):
            found.setdefault("_noop", []).append(wrk(server, NOOP, connections=16, seconds=SLICE))
            for name, target, path in plan:
                found.setdefault(name, []).append(wrk(target, path, connections=16, seconds=SLICE))
    return found


def _inprocess_rows(report: Report) -> list[Row]:
    """CPU per request with the app driven in-process (bench/inprocess.py), pinned like the server."""
    result = subprocess.run(
        pinned(
            [sys.executable, "-m", "bench.inprocess", "--rounds", "3", "--count", "1000"],
            SERVER_CPU,
        ),
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=300,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"bench.inprocess failed:\n{result.stderr[-3000:]}")
    data = json.loads(result.stdout)
    report.details["inprocess"] = data
    costs = data["cpu_us_per_request"]
    noop = costs["noop (sqlite limits)"]
    rows = []
    for name in (
        "sign (sqlite limits)",
        "sign-1hop (sqlite limits)",
        "sign-async (sqlite limits)",
        "sign-async (memory limits)",
    ):
        cost = costs[name]
        rows.append(
            Row(
                case=f"in-process CPU/request: {name}",
                subject=Series(name, "us", [cost["min"], cost["median"], cost["max"]]),
                baseline=Series("no-op", "us", [noop["min"], noop["median"], noop["max"]]),
                ratio=Series("no-op/variant", "x", [noop["median"] / cost["median"]]),
                ratio_means="no-op CPU / variant CPU: the throughput ratio when CPU-bound",
            )
        )
    return rows


def _throughput_row(
    case: str,
    subject: list[Run],
    baseline: list[Run],
    target: Target | None,
    *,
    label: str = "sign",
) -> Row:
    return Row(
        case=case,
        subject=Series(label, "req/s", [r.rps for r in subject]),
        baseline=Series("no-op", "req/s", [r.rps for r in baseline]),
        ratio=paired_ratio([r.rps for r in subject], [r.rps for r in baseline], label="ratio"),
        ratio_means="requests/s / no-op requests/s",
        target=target,
        extra={
            "p50_ms": _med(r.p50_ms for r in subject),
            "p99_ms": _med(r.p99_ms for r in subject),
            "baseline_p50_ms": _med(r.p50_ms for r in baseline),
            "baseline_p99_ms": _med(r.p99_ms for r in baseline),
            "cpu_us_per_request": _med(r.cpu_us for r in subject),
            "baseline_cpu_us_per_request": _med(r.cpu_us for r in baseline),
        },
    )


def _med(values: Iterable[float]) -> float:
    return round(float(statistics.median(list(values))), 3)
