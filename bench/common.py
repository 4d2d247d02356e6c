"""What every benchmark shares: results as ratios, summaries over rounds, servers, RSS sampling.

A benchmark returns a :class:`Report`: a list of :class:`Row`, each comparing a subject (s3drop) with
its baseline measured in the same run, round by round, so every ratio pairs two figures taken
seconds apart on the same machine. Targets are judged on the median ratio (or the median value,
for absolute targets such as a p99 or an RSS).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx
import psutil  # type: ignore[import-untyped]

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
RESULTS = BENCH / "results"

#: CPU the server under test runs on, and CPU the load generator runs on (when taskset exists and
#: the machine has two cores or more): the server cannot steal the client's core, nor the client
#: the server's, so both sides of a ratio see the same contention.
SERVER_CPU = "0"
CLIENT_CPU = "1"


# --- figures ------------------------------------------------------------------------------------


@dataclass
class Series:
    """One figure over several rounds."""

    label: str
    unit: str
    values: list[float]

    def summary(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "unit": self.unit,
            "rounds": [round(v, 6) for v in self.values],
            "min": round(min(self.values), 6),
            "median": round(statistics.median(self.values), 6),
            "max": round(max(self.values), 6),
        }

    @property
    def median(self) -> float:
        return statistics.median(self.values)


Comparison = Literal[">=", "<=", "<", ">"]


@dataclass
class Target:
    """What the issue asks for: ``ratio >= 0.7``, ``value < 30`` (in the row's unit), judged on
    the median over the rounds; ``max <= 250``: on the largest value of any round."""

    on: Literal["ratio", "value", "max"]
    op: Comparison
    bound: float
    text: str

    def met(self, figure: float) -> bool:
        return {
            ">=": figure >= self.bound,
            "<=": figure <= self.bound,
            "<": figure < self.bound,
            ">": figure > self.bound,
        }[self.op]


@dataclass
class Row:
    """One line of the table: a subject, its same-run baseline, their ratio, and a target."""

    case: str
    subject: Series
    baseline: Series | None = None
    ratio: Series | None = None
    ratio_means: str = ""
    target: Target | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def judged(self) -> float | None:
        if self.target is None:
            return None
        series = self.ratio if self.target.on == "ratio" else self.subject
        if series is None:
            return None
        return max(series.values) if self.target.on == "max" else series.median

    def met(self) -> bool | None:
        figure = self.judged()
        if figure is None or self.target is None:
            return None
        return self.target.met(figure)

    def to_dict(self) -> dict[str, Any]:
        return {
            "case": self.case,
            "subject": self.subject.summary(),
            "baseline": self.baseline.summary() if self.baseline else None,
            "ratio": self.ratio.summary() if self.ratio else None,
            "ratio_means": self.ratio_means,
            "target": self.target.text if self.target else None,
            "judged_on": self.target.on if self.target else None,
            "met": self.met(),
            "extra": self.extra,
        }


@dataclass
class Report:
    """What one benchmark measured, or why it could not run yet."""

    name: str
    title: str
    status: Literal["ran", "pending", "failed"] = "ran"
    note: str = ""
    rows: list[Row] = field(default_factory=list)
    seconds: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "status": self.status,
            "note": self.note,
            "seconds": round(self.seconds, 1),
            "rows": [row.to_dict() for row in self.rows],
            "details": self.details,
        }


class Pending(Exception):
    """The feature a benchmark measures has not landed yet; the harness is ready for it."""


def paired_ratio(
    subject: Sequence[float], baseline: Sequence[float], *, label: str, invert: bool = False
) -> Series:
    """Round-by-round ``subject / baseline`` (``baseline / subject`` with ``invert``); a round
    whose divisor is 0 (nothing measured) gives ``inf``, which misses any target, rather than
    ending the run."""
    pairs = [(b, s) if invert else (s, b) for s, b in zip(subject, baseline, strict=True)]
    values = [top / bottom if bottom else math.inf for top, bottom in pairs]
    return Series(label, "x", values)


# --- the machine ------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    cpu = platform.processor() or ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    versions: dict[str, str] = {}
    from importlib.metadata import PackageNotFoundError, version

    for name in ("s3drop", "fastapi", "starlette", "uvicorn", "pillow", "boto3", "pyvips"):
        with contextlib.suppress(PackageNotFoundError):
            versions[name] = version(name)
    wrk = shutil.which("wrk")
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 1024**3, 1),
        "os": _os_name(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "packages": versions,
        "wrk": wrk is not None,
        "pinned": pinning_available(),
    }


def _os_name() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    return platform.system()


def pinning_available() -> bool:
    return shutil.which("taskset") is not None and (os.cpu_count() or 1) >= 2


def pinned(command: list[str], cpu: str) -> list[str]:
    """``command`` run on one CPU (when the machine can pin)."""
    return ["taskset", "-c", cpu, *command] if pinning_available() else command


# --- servers --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment without AWS_* / S3DROP_* settings, plus ``extra``."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("AWS_", "S3DROP_", "BUCKET_NAME"))
    }
    env["AWS_CONFIG_FILE"] = os.devnull
    env["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    env["PYTHONPATH"] = os.pathsep.join(p for p in [str(ROOT), env.get("PYTHONPATH", "")] if p)
    env.update(extra or {})
    return env


@dataclass
class Server:
    """The benchmark app (``bench.app``) under uvicorn, one worker, in a subprocess."""

    url: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path
    data_dir: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def rss(self) -> int:
        """Resident set size of the worker, in bytes."""
        return int(psutil.Process(self.pid).memory_info().rss)

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@contextlib.contextmanager
def serve(
    workdir: Path,
    *,
    env: dict[str, str],
    name: str = "server",
    pin: bool = True,
    cpu: str = SERVER_CPU,
    factory: str = "bench.app:create_bench_app",
) -> Iterator[Server]:
    """Start ``factory`` (default ``bench.app``) with ``env`` (S3DROP_* settings) on a free port,
    pinned to ``cpu``; stop it after.

    One uvicorn worker, no access log (the same for the endpoint under test and its baseline).
    """
    port = free_port()
    data_dir = workdir / f"{name}-data-{port}"
    log = workdir / f"{name}-{port}.log"
    full_env = clean_env({"S3DROP_DATA_DIR": str(data_dir), "S3DROP_PORT": str(port), **env})
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        factory,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--no-access-log",
        "--log-level",
        "warning",
        "--no-server-header",
    ]
    if pin:
        command = pinned(command, cpu)
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=full_env, cwd=workdir
        )
    server = Server(f"http://127.0.0.1:{port}", port, process, log, data_dir)
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the bench server exited:\n{server.output()}")
            try:
                if httpx.get(f"{server.url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the bench server did not answer:\n{server.output()}")
            time.sleep(0.05)
        yield server
    finally:
        server.stop()


class RSSSampler:
    """Samples a process's RSS from a thread every ``interval`` seconds while in a ``with``."""

    def __init__(self, pid: int, interval: float = 0.01) -> None:
        self.process = psutil.Process(pid)
        self.interval = interval
        self.samples: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(psutil.Error):
                self.samples.append(int(self.process.memory_info().rss))
            self._stop.wait(self.interval)

    def __enter__(self) -> RSSSampler:
        self.before = int(self.process.memory_info().rss)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def growth(self) -> int:
        return max([self.before, *self.samples]) - self.before


def run_json(module: str, *args: str, workdir: Path, timeout: float = 300) -> dict[str, Any]:
    """Run ``python -m <module> <args> --workdir <workdir>`` in a fresh process (its own peak
    memory, no state shared with the bench) and return the JSON of its last output line."""
    result = subprocess.run(
        [sys.executable, "-m", module, *args, "--workdir", str(workdir)],
        capture_output=True,
        text=True,
        env=clean_env(),
        cwd=workdir,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"{module} {' '.join(args)} failed:\n{result.stderr[-3000:]}")
    data: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return data


def timed(function: Callable[[], object]) -> float:
    """Seconds one call takes."""
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


MiB = 1024 * 1024
