"""Log lines are formatted and written off the event loop (``s3drop._logs.BackgroundHandler``).

A server whose standard error nobody reads (a full pipe) keeps answering, its loop free; a full
queue drops lines (counted) instead of waiting; and a clean stop writes every line still queued.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import signal
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY

from s3drop import _logs as logs
from s3drop._logs import BackgroundHandler, stop_background

from .conftest import ROOT, free_port
from .test_event_loop import assert_loop_free, one_flow

#: The pipe the servers below write their standard error to: one page, full after ~30 lines.
PIPE_SIZE = 4096


class _Stream:
    """A stream that notes what was written from which thread; its writes wait while held."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.threads: set[int] = set()
        self.open = threading.Event()
        self.open.set()
        self.waiting = threading.Event()

    def write(self, text: str) -> None:
        if not self.open.is_set():
            self.waiting.set()
            self.open.wait()
        self.threads.add(threading.get_ident())
        self.lines.extend(text.splitlines())

    def flush(self) -> None:
        pass


class _NotingFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(name)s %(message)s")
        self.threads: set[int] = set()

    def format(self, record: logging.LogRecord) -> str:
        self.threads.add(threading.get_ident())
        return super().format(record)


@contextlib.contextmanager
def _loggers(*names: str, stream: _Stream) -> Iterator[tuple[list[logging.Logger], Any]]:
    """``names`` each logging through a BackgroundHandler of its own, all to ``stream``."""
    stop_background()  # a fresh writer, with this test's QUEUE_SIZE
    formatter = _NotingFormatter()
    found = []
    for name in names:
        handler = BackgroundHandler(stream)  # type: ignore[arg-type]
        handler.setFormatter(formatter)
        logger = logging.getLogger(name)
        logger.handlers = [handler]
        logger.propagate = False
        logger.setLevel(logging.INFO)
        found.append(logger)
    try:
        yield found, formatter
    finally:
        stream.open.set()
        for logger in found:
            for handler in logger.handlers:
                handler.close()
            logger.handlers = []


def test_lines_are_formatted_and_written_in_the_writer_thread_in_the_order_logged() -> None:
    stream = _Stream()
    with _loggers("test.logs.a", "test.logs.b", stream=stream) as ([first, second], formatter):
        for n in range(50):
            (first if n % 2 else second).info("line %d", n)
        stop_background()
        # every line, in order, though two handlers wrote them, none in this thread
        expected = [f"test.logs.{'a' if n % 2 else 'b'} line {n}" for n in range(50)]
        assert stream.lines == expected
        assert threading.get_ident() not in formatter.threads | stream.threads
        # stopped: a later line is written at once, here
        first.info("after the stop")
        assert stream.lines[-1] == "test.logs.a after the stop"
        assert threading.get_ident() in stream.threads


def test_a_line_that_propagates_is_written_by_each_handler() -> None:
    stream = _Stream()
    with _loggers("test.logs.parent", "test.logs.parent.c", stream=stream) as ([_, child], _f):
        child.propagate = True  # each line is queued for the child's handler, then the parent's
        for n in range(20):
            child.info("line %d", n)
        stop_background()
        assert threading.get_ident() not in stream.threads
    assert stream.lines == [f"test.logs.parent.c line {n // 2}" for n in range(40)]


def test_a_full_queue_drops_lines_and_counts_them_and_never_waits(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(logs, "QUEUE_SIZE", 5)
    stream = _Stream()
    stream.open.clear()  # standard error nobody reads
    before = REGISTRY.get_sample_value("s3drop_log_lines_dropped_total") or 0.0
    with _loggers("test.logs.full", stream=stream) as ([logger], _):
        logger.info("line 0")
        assert stream.waiting.wait(10)  # the writer is stuck on line 0
        for n in range(1, 20):
            logger.info("line %d", n)  # returns: this thread never waits for the stream
        dropped = REGISTRY.get_sample_value("s3drop_log_lines_dropped_total") or 0.0
        assert dropped - before == 14  # lines 1-5 wait in the queue, 6-19 are dropped
        stream.open.set()
        with caplog.at_level(logging.WARNING, logger="s3drop"):
            stop_background()
        assert stream.lines == [f"test.logs.full line {n}" for n in range(6)]
        assert "14 log lines were dropped: standard error was not read fast enough" in caplog.text


def test_stop_gives_up_on_a_stream_that_is_never_read() -> None:
    stream = _Stream()
    stream.open.clear()
    with _loggers("test.logs.stuck", stream=stream) as ([logger], _):
        logger.info("stuck")
        assert stream.waiting.wait(10)
        logger.info("queued")
        stop_background(timeout=0.2)  # returns (a shutdown is not held up for ever)
        # and a line logged after it is dropped, not waited for (the process can exit)
        after = threading.Thread(target=logger.info, args=("after the stop",), daemon=True)
        after.start()
        after.join(10)
        assert not after.is_alive(), "a line logged after the stop waited for standard error"
        assert stream.lines == []
    # read again, the writer thread writes what it held, then ends
    deadline = time.monotonic() + 10
    while len(stream.lines) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert stream.lines == ["test.logs.stuck stuck", "test.logs.stuck queued"]


# --- over real processes ------------------------------------------------------------------------


@contextlib.contextmanager
def _stderr_nobody_reads() -> Iterator[tuple[int, int]]:
    """A pipe of one page for a server's standard error: (read end, write end)."""
    read, write = os.pipe()
    fcntl.fcntl(write, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
    try:
        yield read, write
    finally:
        os.close(read)
        with contextlib.suppress(OSError):
            os.close(write)


def _unread(fd: int) -> int:
    buf = bytearray(4)
    fcntl.ioctl(fd, termios.FIONREAD, buf)
    return int.from_bytes(buf, sys.byteorder)


def _drain(fd: int, into: bytearray) -> threading.Thread:
    """Read ``fd`` to its end into ``into``, in a thread."""

    def read() -> None:
        while chunk := os.read(fd, 65536):
            into.extend(chunk)

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread


def _wait_until_up(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, "the server exited"
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        time.sleep(0.02)
    pytest.fail("the server did not answer within 30 s")


def _fresh_connections() -> httpx.Client:
    """One client for a test's many requests (a client of its own costs ~20 ms of CPU: its TLS
    context), opening a new connection for each, as separate callers would (and so that the
    kernel spreads them over the workers)."""
    return httpx.Client(timeout=30, limits=httpx.Limits(max_keepalive_connections=0))


def _sign(http: httpx.Client, url: str, n: int) -> None:
    body = {"filename": f"log-{n}.png", "content_type": "image/png", "size": 1000}
    # On a loop stuck writing to standard error this waits its 30 s and fails.
    answer = http.post(f"{url}/api/uploads", json=body, timeout=30)
    assert answer.status_code == 201, answer.text


def test_a_server_whose_stderr_nobody_reads_keeps_its_loop_free(tmp_path: Path) -> None:
    """The bundled app under tests/loop_probe.py with ``s3drop serve``'s logging, its standard
    error a one-page pipe nobody reads: 100 signs (~33 KiB of log lines), /healthz between them,
    all answered, the loop never held (tests/test_event_loop.py's checks); then, read at last and
    stopped, the server has written every sign's audit line."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "S3DROP_DATA_DIR": str(tmp_path / "data"),
        "S3DROP_RATE_PER_MINUTE": "100000",
        "S3DROP_PORT": str(port),
        "S3DROP_DECODE_WORKERS": "1",  # nothing is decoded: the fewest workers to warm
    }
    command = [sys.executable, "-m", "tests.loop_probe", "--port", str(port), "--serve-logs"]
    written = bytearray()
    with _stderr_nobody_reads() as (read, write):
        with (tmp_path / "stdout").open("wb") as out:
            process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=write)
        os.close(write)
        try:
            _wait_until_up(url, process)
            one_flow(url, 0)  # warm up (as tests/test_event_loop.py does)
            with (
                httpx.Client(base_url=url, timeout=30) as http,
                _fresh_connections() as signer,
            ):
                assert http.get("/healthz").status_code == 200  # FastAPI's route caches
                assert http.get("/_probe/report").status_code == 200
                assert http.post("/_probe/start").status_code == 200
                with ThreadPoolExecutor(4) as pool:
                    for start in range(0, 100, 20):
                        list(pool.map(lambda n: _sign(signer, url, n), range(start, start + 20)))
                        assert http.get("/healthz").status_code == 200
                report: dict[str, Any] = http.get("/_probe/report").json()
            full = _unread(read)
            reader = _drain(read, written)
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
            reader.join(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert full > PIPE_SIZE // 2, f"standard error was not full ({full} bytes unread)"
    assert_loop_free(report)
    text = written.decode(errors="replace")
    assert len(written) > 5 * PIPE_SIZE, text  # the rest waited in the server meanwhile
    signs = [line for line in text.splitlines() if '"event":"sign"' in line]
    assert len(signs) == 101, text[-2000:]  # the warm-up's and the 100
    assert "log lines were dropped" not in text


def test_serve_workers_write_every_line_at_sigterm(tmp_path: Path) -> None:
    """``s3drop serve --workers 2`` with its standard error a full pipe nobody reads: signs are
    answered by both workers; read at last and sent SIGTERM, it exits 0 having written every
    sign's audit line and access line (a worker ends with the SIGTERM that stopped it, which
    runs no exit handler: the app's shutdown writes the queue)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "S3DROP_DATA_DIR": str(tmp_path / "data"),
        "S3DROP_RATE_PER_MINUTE": "100000",
        "S3DROP_DECODE_WORKERS": "1",  # nothing is decoded: the fewest workers to warm
    }
    command = [sys.executable, "-m", "s3drop", "serve", "--port", str(port), "--workers", "2"]
    written = bytearray()
    with _stderr_nobody_reads() as (read, write):
        with (tmp_path / "stdout").open("wb") as out:
            process = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=out, stderr=write)
        os.close(write)
        try:
            _wait_until_up(url, process)
            with ThreadPoolExecutor(4) as pool, _fresh_connections() as signer:
                list(pool.map(lambda n: _sign(signer, url, n), range(80)))
            assert httpx.get(f"{url}/healthz", timeout=30).status_code == 200
            full = _unread(read)
            reader = _drain(read, written)
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=30) == 0
            reader.join(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert full > PIPE_SIZE // 2, f"standard error was not full ({full} bytes unread)"
    lines = written.decode(errors="replace").splitlines()
    signs = [line for line in lines if '"event":"sign"' in line]
    access = [line for line in lines if '"POST /api/uploads HTTP/1.1" 201' in line]
    assert (len(signs), len(access)) == (80, 80), "\n".join(lines[-40:])
    workers = {
        line.split("[")[1].split("]")[0] for line in lines if "Finished server process" in line
    }
    assert len(workers) == 2, "\n".join(lines[-40:])  # both wrote their last line too
