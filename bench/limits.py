"""Where the limits count: sign with the Redis store vs the SQLite store; two instances vs one.

Both servers are the same bench app (one uvicorn worker pinned to CPU 0, wrk on CPU 1, as in
bench/sign.py) and differ in one setting: ``S3DROP_REDIS_URL`` names a ``redis-server`` (Debian's,
started here on loopback like the tests' fixture, saving nothing) or not (``limits.sqlite3`` in the
data folder). Each round runs both back to back, order alternating, at c=16 and c=64; the ratio
pairs the two slices of a round. Redis is left to the scheduler: on two cores there is no third for
it, and pinned beside wrk it starved (0.3x) while pinned beside the server it took the server's CPU
(``BENCH_REDIS_CPU=0`` or ``1`` pins it). The server CPU per sign (user + system, all threads) is
the figure a busy machine disturbs least: it says what the Redis store costs the server.

Two instances vs one: a second Redis-backed server (its own data folder, the same Redis) pinned to
CPU 1; each round loads instance A alone with ``c`` connections, then A and B at once with two wrk
processes of ``c / 2`` each (requests/s summed). The issue's target (>= 1.7x) assumes a core per
instance plus cores for wrk and Redis; on a 2-core machine wrk and Redis share CPU 1 with
instance B (and instance A's core with nothing of theirs only when the scheduler says so), so the
row is measured and reported with that caveat in the note, not left out.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
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
from .sign import SIGN, SLICE, UNLIMITED, Run, s3_env, wrk, wrk_many

CONCURRENCY = (16, 64)


@contextlib.contextmanager
def _redis() -> Iterator[RedisServer]:
    with throwaway_redis() as server:
        cpu = os.environ.get("BENCH_REDIS_CPU", "")
        if pinning_available() and server.process is not None and cpu:
            psutil.Process(server.process.pid).cpu_affinity([int(cpu)])
        yield server


def _limits_alone(url: str, workdir: Path, *, count: int = 3000) -> dict[str, float]:
    """CPU microseconds per ``Limits.before_sign_async`` (16 concurrent tasks, one event loop,
    this process): the store's own cost to the server, without HTTP or sockets to the app."""
    from s3drop._config import Settings
    from s3drop.limits import Limits, SQLiteLimitStore
    from s3drop.limits.redis import RedisLimitStore

    settings = Settings(rate_per_minute=10**9, bytes_per_hour=10**15, max_images=10**9)
    stores = {
        "redis": RedisLimitStore(url),
        "sqlite": SQLiteLimitStore(workdir / "alone-limits.sqlite3"),
    }

    async def cost(limits: Limits) -> float:
        async def worker() -> None:
            for _ in range(count // 16):
                await limits.before_sign_async("user:bench", 1)

        await asyncio.gather(*(worker() for _ in range(16)))  # warm up
        started = time.process_time()
        await asyncio.gather(*(worker() for _ in range(16)))
        return (time.process_time() - started) / (count // 16 * 16) * 1e6

    async def main() -> dict[str, float]:
        found = {name: await cost(Limits(settings, store)) for name, store in stores.items()}
        await stores["redis"].aclose()  # type: ignore[attr-defined]
        return found

    return asyncio.run(main())


def run(workdir: Path, *, rounds: int) -> Report:
    report = Report("limits", "Sign with the Redis limit store vs the SQLite one")
    report.details["slice_seconds"] = SLICE
    results: dict[tuple[int, str], list[Run]] = {}
    alone: dict[str, list[float]] = {}
    env = {**UNLIMITED, **s3_env()}
    with (
        _redis() as redis,
        serve(workdir, env=env, name="sqlite") as sqlite,
        serve(workdir, env={**env, "S3DROP_REDIS_URL": redis.url}, name="redis") as shared,
        serve(
            workdir, env={**env, "S3DROP_REDIS_URL": redis.url}, name="redis-b", cpu=CLIENT_CPU
        ) as second,
    ):
        for _ in range(rounds):
            for name, cost in _limits_alone(redis.url, workdir).items():
                alone.setdefault(name, []).append(cost)
        servers = {"sqlite": sqlite, "redis": shared}
        for connections in CONCURRENCY:
            for server in servers.values():  # warm up
                wrk(server, SIGN, connections=connections, seconds=1)
            for index in range(rounds):
                order = ("sqlite", "redis") if index % 2 == 0 else ("redis", "sqlite")
                for name in order:
                    got = wrk(servers[name], SIGN, connections=connections, seconds=SLICE)
                    results.setdefault((connections, name), []).append(got)
                pair = [shared, second]
                got = wrk_many(pair, SIGN, connections=connections, seconds=SLICE)
                results.setdefault((connections, "two"), []).append(got)
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
    subject, baseline = results[(16, "redis")], results[(16, "sqlite")]
    report.rows.append(
        Row(
            case="c=16 server CPU per sign, Redis store / SQLite store",
            subject=Series("Redis", "us", [r.cpu_us for r in subject]),
            baseline=Series("SQLite", "us", [r.cpu_us for r in baseline]),
            ratio=paired_ratio(
                [r.cpu_us for r in subject],
                [r.cpu_us for r in baseline],
                label="SQLite/Redis",
                invert=True,
            ),
            ratio_means="CPU per sign with SQLite / with Redis: the throughput ratio when CPU-bound",
        )
    )
    report.rows.append(
        Row(
            case="in-process CPU per before_sign_async (16 tasks), Redis / SQLite in a thread",
            subject=Series("Redis", "us", alone["redis"]),
            baseline=Series("SQLite", "us", alone["sqlite"]),
            ratio=paired_ratio(alone["redis"], alone["sqlite"], label="SQLite/Redis", invert=True),
            ratio_means="CPU per limits check with SQLite / with Redis",
        )
    )
    for connections in CONCURRENCY:
        two, one = results[(connections, "two")], results[(connections, "redis")]
        report.rows.append(
            Row(
                case=f"c={connections} sign req/s, two instances (CPU 0, CPU 1) / one (CPU 0)",
                subject=Series("two", "req/s", [r.rps for r in two]),
                baseline=Series("one", "req/s", [r.rps for r in one]),
                ratio=paired_ratio([r.rps for r in two], [r.rps for r in one], label="two/one"),
                ratio_means="requests/s of two Redis-backed instances / of one, same round",
                target=Target("ratio", ">=", 1.7, "two/one >= 1.7 (a core each)"),
                extra={
                    "p99_ms": sorted(r.p99_ms for r in two)[len(two) // 2],
                    "cpu_us_per_request": sorted(r.cpu_us for r in two)[len(two) // 2],
                },
            )
        )
    two, one = results[(16, "two")], results[(16, "redis")]
    report.rows.append(
        Row(
            case="c=16 server CPU per sign, two instances (both) / one",
            subject=Series("two", "us", [r.cpu_us for r in two]),
            baseline=Series("one", "us", [r.cpu_us for r in one]),
            ratio=paired_ratio(
                [r.cpu_us for r in two], [r.cpu_us for r in one], label="one/two", invert=True
            ),
            ratio_means="CPU per sign of one instance / of two sharing Redis: what scaling costs",
        )
    )
    if (os.cpu_count() or 1) < 4:
        report.note = (
            f"{os.cpu_count()} CPUs: instance B, wrk and Redis share CPU 1, so two instances "
            "cannot reach 2x here; the issue's 1.7x needs a core per instance plus one for wrk "
            "and Redis"
        )
    return report
