"""Shared fixtures: an isolated environment, live s3drop servers, and a real S3 engine (Ceph RGW).

Servers listen on 127.0.0.1 on free ports and are waited for; when one dies, its log is in the
failure message. Ceph RGW is started once per session by ``tests/ceph/ceph-start.sh`` (Debian's
ceph-mon, ceph-osd and radosgw; ``scripts/test`` installs them) and stopped at the end.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "test-output"


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No AWS_* or S3DROP_* setting leaks in from the machine, and no .env file is read."""
    for name in list(os.environ):
        if name.startswith(("AWS_", "S3DROP_", "BUCKET_NAME")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.chdir(tmp_path)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


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
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_server(
    tmp: Path, *, env: dict[str, str] | None = None, args: list[str] | None = None
) -> LiveServer:
    """Start ``s3drop serve`` on a free port with ``env`` (S3DROP_* etc.) and wait until it answers."""
    port = free_port()
    data_dir = tmp / f"data-{port}"
    log = tmp / f"server-{port}.log"
    full_env = {**os.environ, "S3DROP_DATA_DIR": str(data_dir), **(env or {})}
    command = [sys.executable, "-m", "s3drop", "serve", "--port", str(port), *(args or [])]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=full_env, cwd=tmp
        )
    server = LiveServer(f"http://127.0.0.1:{port}", process, log, data_dir, full_env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"s3drop exited with {process.returncode}:\n{server.output()}")
        try:
            if httpx.get(f"{server.url}/healthz", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"s3drop did not answer within 30 s:\n{server.output()}")


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


@dataclass
class RGW:
    """A throwaway Ceph cluster with a RADOS Gateway on loopback."""

    endpoint: str
    access_key: str
    secret_key: str
    directory: Path
    _client: Any = field(default=None, repr=False)

    def env(self, bucket: str) -> dict[str, str]:
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_REGION": "us-east-1",
            "AWS_ENDPOINT_URL_S3": self.endpoint,
            "S3DROP_BUCKET": bucket,
        }

    def client(self) -> Any:
        """One boto3 client for the session (closed when RGW stops: no sockets left to the GC)."""
        if self._client is None:
            import boto3
            from botocore.config import Config

            self._client = boto3.client(
                "s3",
                endpoint_url=self.endpoint,
                aws_access_key_id=self.access_key,
                aws_secret_access_key=self.secret_key,
                region_name="us-east-1",
                config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
            )
        return self._client

    def script(self, name: str, *args: str) -> None:
        env = {**os.environ, "CEPH_S3_DIR": str(self.directory)}
        result = subprocess.run(
            ["bash", str(ROOT / "tests" / "ceph" / name), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        if result.returncode != 0:
            raise RuntimeError(f"{name} failed:\n{result.stdout}\n{result.stderr}")

    def stop(self) -> None:
        self.script("ceph-stop.sh")

    def restart(self) -> None:
        self.script("ceph-start.sh", "--keep")


@pytest.fixture(scope="session")
def rgw() -> Iterator[RGW]:
    """Ceph RGW for the whole session (about 2 s to start). Fails, never skips, without Ceph."""
    if shutil.which("radosgw") is None:
        pytest.fail("Ceph RGW is not installed: run ./scripts/test, which installs it")
    # Keep the path short: Ceph's admin socket paths must stay under 107 characters.
    directory = Path(tempfile.mkdtemp(prefix="s3d-ceph-", dir="/tmp"))
    access, secret = "s3drop-test", secrets.token_hex(16)
    port = free_port()
    server = RGW(f"http://127.0.0.1:{port}", access, secret, directory)
    env = {
        **os.environ,
        "CEPH_S3_DIR": str(directory),
        "RGW_PORT": str(port),
        "MON_PORT": str(free_port()),
        "S3_ACCESS_KEY": access,
        "S3_SECRET_KEY": secret,
    }
    result = subprocess.run(
        ["bash", str(ROOT / "tests" / "ceph" / "ceph-start.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if result.returncode != 0:
        pytest.fail(f"Ceph RGW did not start:\n{result.stdout}\n{result.stderr}")
    try:
        yield server
    finally:
        if server._client is not None:
            server._client.close()
        subprocess.run(
            ["bash", str(ROOT / "tests" / "ceph" / "ceph-stop.sh"), "--wipe"],
            env=env,
            capture_output=True,
            timeout=120,
        )


@pytest.fixture
def bucket(rgw: RGW) -> Iterator[str]:
    """A fresh, empty bucket on RGW, deleted with its contents after the test."""
    name = f"t-{secrets.token_hex(6)}"
    client = rgw.client()
    client.create_bucket(Bucket=name)
    yield name
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=name):
        for item in page.get("Contents", []):
            client.delete_object(Bucket=name, Key=item["Key"])
    client.delete_bucket(Bucket=name)
