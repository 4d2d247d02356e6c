"""Shared fixtures: an isolated environment, live s3drop servers, and a real S3 engine (Ceph RGW).

Servers listen on 127.0.0.1 on free ports and are waited for; when one dies, its log is in the
failure message. Ceph RGW is started once per session by ``tests/ceph/ceph-start.sh`` (Debian's
ceph-mon, ceph-osd and radosgw; ``scripts/test`` installs them) and stopped at the end; so is a
``redis-server`` (``tests/redis_server.py``), emptied before each test that uses it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import fcntl
import functools
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from . import conformance_report
from .ceph.cluster import RGW, CephMissing, free_port, throwaway_rgw
from .inprocess import AppServer, app_servers
from .redis_server import RedisMissing, RedisServer, throwaway_redis

ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")
OUTPUT = ROOT / "test-output"


#: What a test never inherits from the machine's environment: s3drop's settings and the AWS SDK's.
MACHINE_SETTINGS = ("AWS_", "S3DROP_", "BUCKET_NAME")


def isolate(patch: pytest.MonkeyPatch, folder: Path | None = None) -> None:
    """No AWS_* or S3DROP_* setting leaks in from the machine; with ``folder``, no AWS config
    file or instance metadata is read either, and ``folder`` is the working directory (so no
    .env file is read). Undone with ``patch``."""
    for name in list(os.environ):
        if name.startswith(MACHINE_SETTINGS):
            patch.delenv(name)
    if folder is not None:
        patch.setenv("AWS_CONFIG_FILE", str(folder / "no-aws-config"))
        patch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(folder / "no-aws-credentials"))
        patch.setenv("AWS_EC2_METADATA_DISABLED", "true")
        patch.chdir(folder)


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Each test: nothing from the machine's environment (:func:`isolate`)."""
    isolate(monkeypatch, tmp_path)


@dataclass
class LiveServer:
    """A running ``s3drop serve`` in a subprocess."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path
    data_dir: Path
    env: dict[str, str]

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30, **kwargs)

    def output(self) -> str:
        """What the server wrote so far, once its log has settled.

        The server writes its log lines from a thread of its own (``s3drop._logs``), a moment after
        the response that caused them may have arrived here: read until the log is unchanged for
        50 ms (at most 5 s)."""
        text = self.log.read_text(errors="replace")
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            time.sleep(0.05)
            again = self.log.read_text(errors="replace")
            if again == text:
                break
            text = again
        return text

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


_ONE_DECODER = {"S3DROP_DECODE_WORKERS": "1"}


def start_server(
    tmp: Path, *, env: dict[str, str] | None = None, args: list[str] | None = None
) -> LiveServer:
    """Start ``s3drop serve`` on a free port with ``env`` (S3DROP_* etc.) and wait until it answers.

    One decode worker (plus the small lane) unless ``env`` configures the decode sandbox
    (``S3DROP_DECODE_*``): every start warms the whole pool, a process of ~0.1 CPU-second each,
    and a test that is not about the sandbox needs no second one."""
    port = free_port()
    data_dir = tmp / f"data-{port}"
    log = tmp / f"server-{port}.log"
    env = env or {}
    pool = {} if any(name.startswith("S3DROP_DECODE_") for name in env) else _ONE_DECODER
    full_env = {**os.environ, "S3DROP_DATA_DIR": str(data_dir), **pool, **env}
    command = [sys.executable, "-m", "s3drop", "serve", "--port", str(port), *(args or [])]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=full_env, cwd=tmp
        )
    server = LiveServer(f"http://127.0.0.1:{port}", process, log, data_dir, full_env)
    if not _wait_until_serving(server, port, deadline=time.monotonic() + 30):
        server.stop()
        raise RuntimeError(f"s3drop did not answer within 30 s:\n{server.output()}")
    return server


def _wait_until_serving(server: LiveServer, port: int, *, deadline: float) -> bool:
    """Wait until ``server`` answers ``/healthz`` with 200 (True) or ``deadline`` passes (False);
    raise with its log if it exits first. A connect attempt every 10 ms costs next to nothing,
    so the test goes on as soon as the port listens; then one GET waits for the answer."""
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"s3drop exited with {server.process.returncode}:\n{server.output()}"
            )
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                pass
        except OSError:
            time.sleep(0.01)
            continue
        try:
            left = max(deadline - time.monotonic(), 1)
            if httpx.get(f"{server.url}/healthz", timeout=left).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.01)
    return False


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[Callable[..., LiveServer]]:
    """Factory: ``make_server(env={...}, args=[...])`` -> a live server, stopped after the test."""
    started: list[LiveServer] = []

    def make(*, env: dict[str, str] | None = None, args: list[str] | None = None) -> LiveServer:
        server = start_server(tmp_path, env=env, args=args)
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


@pytest.fixture
def live_server(make_server: Callable[..., LiveServer]) -> LiveServer:
    """s3drop on the embedded default (local backend), on a free port."""
    return make_server()


# --- Ceph RGW -----------------------------------------------------------------------------------


@pytest.fixture(autouse=True, scope="session")
def _botocore_models_read_once() -> Iterator[None]:
    """Every new boto3 Session reads and parses S3's service model and endpoint rules again
    (~100 ms of CPU; ~10 ms with them read): the suite makes hundreds (each S3Storage of an app
    or a drop on RGW, each test's own session), a server makes one. One loader for the run."""
    import botocore.loaders
    import botocore.session

    with pytest.MonkeyPatch.context() as patch:
        once = functools.lru_cache(maxsize=None)(botocore.loaders.create_loader)
        patch.setattr(botocore.session, "create_loader", once)
        yield


@pytest.fixture(scope="session")
def rgw() -> Iterator[RGW]:
    """Ceph RGW for the whole session (about 2 s to start). Fails, never skips, without Ceph."""
    try:
        with throwaway_rgw() as server:
            yield server
    except (CephMissing, RuntimeError) as exc:
        pytest.fail(str(exc))


@pytest.fixture
def bucket(rgw: RGW) -> Iterator[str]:
    """A fresh, empty bucket on RGW, deleted with its contents after the test."""
    name = f"t-{secrets.token_hex(6)}"
    client = rgw.client()
    client.create_bucket(Bucket=name)
    yield name
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=name):
        if page.get("Contents"):  # one request a page, not one an object
            keys = [{"Key": item["Key"]} for item in page["Contents"]]
            client.delete_objects(Bucket=name, Delete={"Objects": keys, "Quiet": True})
    client.delete_bucket(Bucket=name)


def run_async(coroutine: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(coroutine)`` in a thread of its own: once a browser test ran, Playwright's sync
    API keeps an event loop running in the main thread for the rest of the session, and
    ``asyncio.run`` refuses to start another there."""
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="test-loop") as pool:
        return pool.submit(asyncio.run, coroutine).result()


# --- Redis --------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_session() -> Iterator[RedisServer]:
    """One redis-server for the session. Fails, never skips, without redis-server."""
    try:
        with throwaway_redis() as server:
            yield server
    except (RedisMissing, RuntimeError) as exc:
        pytest.fail(str(exc))


@pytest.fixture
def redis_server(redis_session: RedisServer) -> RedisServer:
    """The session's Redis, running and empty."""
    if not redis_session.ping():
        redis_session.start()
    redis_session.flush()
    return redis_session


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A redis-server of this test's own, to stop and start again (an outage)."""
    try:
        with throwaway_redis() as server:
            yield server
    except (RedisMissing, RuntimeError) as exc:
        pytest.fail(str(exc))


def within_one_minute(margin: float = 20.0) -> None:
    """The limits count in fixed one-minute windows: wait, when needed, so that what follows
    starts at least ``margin`` seconds before the minute ends and is counted in one window."""
    left = 60 - time.time() % 60
    if left < margin:
        time.sleep(left + 0.05)


# --- s3drop in-process --------------------------------------------------------------------------


@pytest.fixture
def make_app(tmp_path: Path) -> Iterator[Callable[..., AppServer]]:
    """Factory: ``make_app(env={...})`` -> ``create_app()`` in this process, read by the tests as
    a :class:`LiveServer` is (``url``, ``client()``, ``data_dir``, ``output()``), for HTTP
    semantics that need no process (signals, workers, uvicorn's own behaviour and logs do)."""
    with app_servers(tmp_path) as make:
        yield make


@pytest.fixture
def app_server(make_app: Callable[..., AppServer]) -> AppServer:
    """s3drop on the embedded default (local backend), in-process."""
    return make_app()


# --- reports that gather what the tests found ---------------------------------------------------


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    conformance_report.collect(report)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    conformance_report.summary(terminalreporter)


# --- timing-sensitive tests run alone -----------------------------------------------------------

#: The two lock files of this xdist run (opened once per worker, kept open).
_ALONE_LOCKS: list[int] = []


def _alone_locks() -> tuple[int, int] | None:
    """(turnstile, tests) lock descriptors shared by this run's xdist workers; None when the suite
    runs in one process."""
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    if run is None:
        return None
    if not _ALONE_LOCKS:
        for name in ("turnstile", "tests"):
            path = Path(tempfile.gettempdir()) / f"s3drop-tests-{run}-{name}.lock"
            _ALONE_LOCKS.append(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
    return _ALONE_LOCKS[0], _ALONE_LOCKS[1]


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item) -> Iterator[None]:
    """A test marked ``alone`` (it asserts that something answered within a bound of wall time)
    runs while no other xdist worker runs a test, as on the idle machine its bound was set for:
    every test holds a shared lock from its setup to its teardown, an ``alone`` one an exclusive
    lock. A waiting ``alone`` test holds the turnstile, so the other worker cannot keep it out by
    starting one test after another. Outside pytest-timeout's clock (this wrapper is outermost)."""
    locks = _alone_locks()
    if locks is None:
        yield
        return
    turnstile, tests = locks
    alone = item.get_closest_marker("alone") is not None
    fcntl.flock(turnstile, fcntl.LOCK_EX)
    fcntl.flock(tests, fcntl.LOCK_EX if alone else fcntl.LOCK_SH)
    fcntl.flock(turnstile, fcntl.LOCK_UN)
    try:
        yield
    finally:
        fcntl.flock(tests, fcntl.LOCK_UN)
