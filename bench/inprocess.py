"""Where the sign route's time goes: the app driven in-process, CPU per request, no network.

``python -m bench.inprocess`` prints JSON: CPU microseconds per request (all threads, 16 requests in
flight on one event loop) for the no-op, the real sign route and its variants (see bench/app.py),
on the SQLite limit store and on the in-process one, plus the library calls alone. Without HTTP
parsing and sockets the figures are steady even on a busy machine: they are the cost model behind
the wrk figures. ``python -m bench.inprocess --profile /api/uploads`` prints a pyinstrument profile
of one route instead.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from typing import Any

BODY = b'{"filename":"photo.jpg","content_type":"image/jpeg","size":1048576}'
ROUTES = {
    "noop": "/api/bench/noop",
    "sign": "/api/uploads",
}
CONCURRENCY = 16

App = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


def _scope(path: str) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1:8000"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(BODY)).encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }


async def _request(app: App, path: str) -> None:
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": BODY, "more_body": False}
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    statuses: list[int] = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    await app(_scope(path), receive, send)
    if not statuses or statuses[0] >= 300:
        raise RuntimeError(f"{path} answered {statuses}")


async def cpu_per_request(app: App, path: str, count: int) -> float:
    """CPU microseconds per request, ``CONCURRENCY`` requests in flight."""

    async def worker(n: int) -> None:
        for _ in range(n):
            await _request(app, path)

    start = time.process_time()
    await asyncio.gather(*(worker(count // CONCURRENCY) for _ in range(CONCURRENCY)))
    return (time.process_time() - start) / (count // CONCURRENCY * CONCURRENCY) * 1e6


def _library(count: int) -> dict[str, float]:
    """The library calls the route makes, alone (microseconds per call)."""
    from pathlib import Path

    from s3drop._auth import Principal
    from s3drop._config import Settings
    from s3drop._policy import check_upload
    from s3drop._uploads import S3Drop
    from s3drop.limits import MemoryLimitStore, SQLiteLimitStore

    settings = Settings(
        data_dir=Path(os.environ["S3DROP_DATA_DIR"]) / "library",
        rate_per_minute=10**9,
        bytes_per_hour=10**15,
        max_images=10**9,
    )
    who = Principal("anonymous", anonymous=True, address="127.0.0.1")
    sqlite = SQLiteLimitStore(settings.data_dir / "limits.sqlite3")
    drops = {
        "sqlite": S3Drop(settings, limit_store=sqlite),
        "memory": S3Drop(settings, limit_store=MemoryLimitStore()),
    }
    found: dict[str, float] = {}

    def per_call(function: Callable[[], object]) -> float:
        for _ in range(100):
            function()
        start = time.process_time()
        for _ in range(count):
            function()
        return (time.process_time() - start) / count * 1e6

    for name, drop in drops.items():
        found[f"presign ({name} limits)"] = per_call(
            lambda d=drop: d.presign(  # type: ignore[misc]
                content_type="image/jpeg", size=1048576, filename="photo.jpg", principal=who
            )
        )

        def limits(d: S3Drop = drop) -> None:
            d.limits.before_sign(who.limit_key, 1048576)

        found[f"limits alone ({name}: before_sign)"] = per_call(limits)
    request = check_upload(
        settings, content_type="image/jpeg", size=1048576, filename="photo.jpg", owner="anonymous"
    )
    found["check_upload"] = per_call(
        lambda: check_upload(
            settings,
            content_type="image/jpeg",
            size=1048576,
            filename="photo.jpg",
            owner="anonymous",
        )
    )
    storage = drops["memory"].storage
    found["storage.presign_post (sign_post)"] = per_call(
        lambda: storage.presign_post(request, expires_in=600)
    )
    return found


def _apps() -> dict[str, tuple[App, str]]:
    """What is measured: name -> (ASGI app, path). The bare FastAPI + boto3 route (bench/bare.py,
    on the s3 backend's settings when they are set), s3drop's sign route on each limit store,
    and its no-op route (the cost of FastAPI and s3drop's middleware with nothing to do)."""
    from .app import create_bench_app
    from .bare import create_bare_app

    sqlite = create_bench_app(limits="sqlite")
    apps: dict[str, tuple[App, str]] = {
        "sign (sqlite limits)": (sqlite, ROUTES["sign"]),
        "sign (memory limits)": (create_bench_app(limits="memory"), ROUTES["sign"]),
        "noop (sqlite app)": (sqlite, ROUTES["noop"]),
    }
    if os.environ.get("BENCH_REDIS_URL"):
        os.environ["S3DROP_REDIS_URL"] = os.environ["BENCH_REDIS_URL"]
        apps["sign (redis limits)"] = (create_bench_app(limits="settings"), ROUTES["sign"])
        del os.environ["S3DROP_REDIS_URL"]
    if os.environ.get("S3DROP_BUCKET"):
        apps["bare"] = (create_bare_app(), "/sign")
    return apps


async def measure(rounds: int, count: int) -> dict[str, Any]:
    apps = _apps()
    for app, path in apps.values():
        await cpu_per_request(app, path, 400)
    samples: dict[str, list[float]] = {}
    for _ in range(rounds):
        for name, (app, path) in apps.items():
            cost = await cpu_per_request(app, path, count)
            samples.setdefault(name, []).append(cost)
    return {
        "cpu_us_per_request": {
            key: {
                "median": round(statistics.median(v), 1),
                "min": round(min(v), 1),
                "max": round(max(v), 1),
            }
            for key, v in samples.items()
        },
        "library_us_per_call": {k: round(v, 1) for k, v in _library(count).items()},
        "concurrency": CONCURRENCY,
        "requests_per_round": count,
    }


def _setup_env() -> str:
    folder = tempfile.mkdtemp(prefix="s3drop-bench-inproc-")
    os.environ.update(
        {
            "S3DROP_DATA_DIR": folder,
            "S3DROP_RATE_PER_MINUTE": str(10**9),
            "S3DROP_BYTES_PER_HOUR": str(10**15),
            "S3DROP_MAX_IMAGES": str(10**9),
        }
    )
    return folder


def _run(coroutine: Awaitable[Any]) -> Any:
    try:
        import uvloop
    except ImportError:  # pragma: no cover
        return asyncio.run(coroutine)  # type: ignore[arg-type]
    return uvloop.run(coroutine)  # type: ignore[arg-type]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.inprocess")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--profile", metavar="PATH", help="pyinstrument profile of one route")
    parser.add_argument(
        "--limits",
        default="sqlite",
        choices=["sqlite", "memory", "settings"],
        help="the limit store (settings: what S3DROP_REDIS_URL names, else SQLite)",
    )
    args = parser.parse_args()
    folder = _setup_env()
    try:
        _main(args)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _main(args: argparse.Namespace) -> None:
    if args.profile:
        from pyinstrument import Profiler

        from .app import create_bench_app

        app = create_bench_app(limits=args.limits)

        async def profile() -> None:
            await cpu_per_request(app, args.profile, 400)
            profiler = Profiler(interval=0.0005, async_mode="disabled")
            profiler.start()
            await cpu_per_request(app, args.profile, args.count)
            profiler.stop()
            print(profiler.output_text(unicode=False, color=False))

        _run(profile())
        return
    json.dump(_run(measure(args.rounds, args.count)), sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
