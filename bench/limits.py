"""Where the limits count: sign with the Redis store vs the SQLite store; two instances vs one.

Both servers are the same bench app (one uvicorn worker pinned to CPU 0, wrk on CPU 1, as in
bench/sign.py) and differ in one setting: ``S3DROP_REDIS_URL`` names a ``redis-server`` (Debian's,
started here on loopback like the tests' fixture, saving nothing, pinned to CPU 1 as if it were
another machine) or not (``limits.sqlite3`` in the data folder). Each round runs both back to back,
order alternating, at c=16 and c=64; the ratio pairs the two slices of a round.

Two instances vs one (each instance on its own core, one Redis, the load split across both) needs
a core per instance plus one for wrk and Redis: on fewer than four CPUs that row is left out and
the report says so.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import psutil  # type: ignore[import-untyped]
from tests.redis_server import RedisServer, throwaway_redis

from .common import (
    CLIENT_CPU,
    Report,
    Row,
    Series,
    Target,
    paired_ratio,
    pinning_available,
    serve,
)
from .sign import SIGN, SLICE, UNLIMITED, Run, wrk

CONCURRENCY = (16, 64)


@contextlib.contextmanager
def _redis() -> Iterator[RedisServer]:
    with throwaway_redis() as server:
        if pinning_available() and server.process is not None:
            psutil.Process(server.process.pid).cpu_affinity([int(CLIENT_CPU)])
        yield server


def run(workdir: Path, *, rounds: int) -> Report:
    report = Report("limits", "Sign with the Redis limit store vs the SQLite one")
    report.details["slice_seconds"] = SLICE
    results: dict[tuple[int, str], list[Run]] = {}
    with (
        _redis() as redis,
        serve(workdir, env=UNLIMITED, name="sqlite") as sqlite,
        serve(workdir, env={**UNLIMITED, "S3DROP_REDIS_URL": redis.url}, name="redis") as shared,
    ):
        servers = {"sqlite": sqlite, "redis": shared}
        for connections in CONCURRENCY:
            for server in servers.values():  # warm up
                wrk(server, SIGN, connections=connections, seconds=1)
            for index in range(rounds):
                order = ("sqlite", "redis") if index % 2 == 0 else ("redis", "sqlite")
                for name in order:
                    got = wrk(servers[name], SIGN, connections=connections, seconds=SLICE)
                    results.setdefault((connections, name), []).append(got)
    for connections in CONCURRENCY:
        subject, baseline = results[(connections, "redis")], results[(connections, "sqlite")]
        report.rows.append(
            Row(
                case=f"c={connections} sign req/s, Redis store / SQLite store",
                subject=Series("Redis", "req/s", [r.rps for r in subject]),
                baseline=Series("SQLite", "req/s", [r.rps for r in baseline]),
                ratio=paired_ratio(
                    [r.rps for r in subject], [r.rps for r in baseline], label="Redis/SQLite"
                ),
                ratio_means="requests/s with Redis / requests/s with SQLite",
                target=Target("ratio", ">=", 0.9, "Redis/SQLite >= 0.9"),
                extra={
                    "p99_ms": sorted(r.p99_ms for r in subject)[len(subject) // 2],
                    "baseline_p99_ms": sorted(r.p99_ms for r in baseline)[len(baseline) // 2],
                    "cpu_us_per_request": sorted(r.cpu_us for r in subject)[len(subject) // 2],
                    "baseline_cpu_us_per_request": sorted(r.cpu_us for r in baseline)[
                        len(baseline) // 2
                    ],
                },
            )
        )
    if (os.cpu_count() or 1) < 4:
        report.note = (
            f"two instances vs one not measured: {os.cpu_count()} CPUs (it needs one per "
            "instance and more for wrk and Redis)"
        )
    return report
