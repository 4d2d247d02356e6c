"""A throwaway ``redis-server`` on loopback, for the tests and the benchmarks.

Debian's ``redis-server`` (``scripts/test`` installs it) on a free port, in its own folder, saving
nothing (``--save '' --appendonly no``); :meth:`RedisServer.stop` and :meth:`RedisServer.start`
take it away and bring it back on the same port, as an outage would.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from .ceph.cluster import free_port


class RedisMissing(RuntimeError):
    """redis-server is not installed on this machine."""


@dataclass
class RedisServer:
    port: int
    directory: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def log(self) -> Path:
        return self.directory / "redis.log"

    def start(self) -> None:
        """Start it (again) on its port and wait until it answers PING."""
        binary = shutil.which("redis-server")
        if binary is None:
            raise RedisMissing("redis-server is not installed (apt-get install -y redis-server)")
        command = [
            binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.directory),
            "--logfile", str(self.log),
        ]  # fmt: skip
        self.process = subprocess.Popen(command, cwd=self.directory)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited: {self.log.read_text(errors='replace')}")
            if self.ping():
                return
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"redis-server did not answer within 10 s: {self.log}")

    def stop(self) -> None:
        """Kill it (an outage, not a shutdown) and wait until the port is free."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def flush(self) -> None:
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
            sock.sendall(b"FLUSHALL\r\n")
            assert sock.recv(16).startswith(b"+OK")


@contextmanager
def throwaway_redis() -> Iterator[RedisServer]:
    """A redis-server on a free loopback port, in a temporary folder; gone afterwards."""
    with tempfile.TemporaryDirectory(prefix="s3drop-redis-") as folder:
        server = RedisServer(free_port(), Path(folder))
        server.start()
        try:
            yield server
        finally:
            server.stop()
