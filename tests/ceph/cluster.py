"""A throwaway Ceph cluster with a RADOS Gateway on loopback, for the tests and the benchmarks.

``throwaway_rgw()`` runs ``ceph-start.sh`` beside this file on free ports in a short folder under
/tmp (Ceph's admin socket paths must stay under 107 characters), yields an :class:`RGW`, and wipes
it all at the end. Needs Debian's ceph-mon, ceph-osd and radosgw (``scripts/test`` installs them).
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCRIPTS = Path(__file__).resolve().parent


class CephMissing(RuntimeError):
    """Ceph RGW is not installed on this machine."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class RGW:
    """A running RGW: where it answers, its S3 keys, and its folder."""

    endpoint: str
    access_key: str
    secret_key: str
    directory: Path
    scripts: Path = SCRIPTS
    _client: Any = field(default=None, repr=False)

    def env(self, bucket: str) -> dict[str, str]:
        """What s3drop needs to use ``bucket`` on this RGW."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_REGION": "us-east-1",
            "AWS_ENDPOINT_URL_S3": self.endpoint,
            "S3DROP_BUCKET": bucket,
        }

    def new_client(self, *, pool: int = 10) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name="us-east-1",
            config=Config(
                signature_version="s3v4",
                s3={"addressing_style": "path"},
                max_pool_connections=pool,
            ),
        )

    def client(self) -> Any:
        """One shared boto3 client (closed when RGW stops: no sockets left to the GC)."""
        if self._client is None:
            self._client = self.new_client()
        return self._client

    def new_bucket(self, prefix: str) -> str:
        name = f"{prefix}-{secrets.token_hex(4)}"
        self.client().create_bucket(Bucket=name)
        return name

    def script(self, name: str, *args: str) -> None:
        env = {**os.environ, "CEPH_S3_DIR": str(self.directory)}
        result = subprocess.run(
            ["bash", str(self.scripts / name), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"{name} failed:\n{result.stdout}\n{result.stderr}")

    def stop(self) -> None:
        """Stop the daemons, keeping the data (``restart`` brings it back)."""
        self.script("ceph-stop.sh")

    def restart(self) -> None:
        self.script("ceph-start.sh", "--keep")


@contextmanager
def throwaway_rgw(
    *, prefix: str = "s3d-ceph-", access_key: str = "s3drop-test", scripts: Path = SCRIPTS
) -> Iterator[RGW]:
    """Start a new cluster (about 2 s), yield it, and wipe it whatever happens."""
    if shutil.which("radosgw") is None:
        raise CephMissing("Ceph RGW is not installed: ./scripts/test installs it")
    directory = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    port = free_port()
    server = RGW(f"http://127.0.0.1:{port}", access_key, secrets.token_hex(16), directory, scripts)
    env = {
        **os.environ,
        "CEPH_S3_DIR": str(directory),
        "RGW_PORT": str(port),
        "MON_PORT": str(free_port()),
        "S3_ACCESS_KEY": server.access_key,
        "S3_SECRET_KEY": server.secret_key,
    }
    try:
        result = subprocess.run(
            ["bash", str(scripts / "ceph-start.sh")],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"Ceph RGW did not start:\n{result.stdout}\n{result.stderr}")
        yield server
    finally:
        if server._client is not None:
            server._client.close()
        subprocess.run(
            ["bash", str(scripts / "ceph-stop.sh"), "--wipe"],
            env=env,
            capture_output=True,
            timeout=120,
            check=False,
        )
        shutil.rmtree(directory, ignore_errors=True)
