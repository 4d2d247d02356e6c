"""A throwaway Ceph RGW for the benchmarks, started with the project's own tests/ceph scripts.

The same recipe as the tests' ``rgw`` fixture: free ports, a short folder in /tmp (Ceph's admin
socket paths must stay under 107 characters), memstore, wiped at the end.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .common import ROOT, Pending, free_port

#: The project's own scripts; ``BENCH_CEPH_SCRIPTS`` points at another copy (to try an RGW setting).
SCRIPTS = Path(os.environ.get("BENCH_CEPH_SCRIPTS", ROOT / "tests" / "ceph"))


@dataclass
class RGW:
    endpoint: str
    access_key: str
    secret_key: str
    directory: Path

    def env(self, bucket: str) -> dict[str, str]:
        """What s3drop needs to use ``bucket`` on this RGW."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_REGION": "us-east-1",
            "AWS_ENDPOINT_URL_S3": self.endpoint,
            "S3DROP_BUCKET": bucket,
        }

    def client(self, *, pool: int = 32) -> Any:
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

    def new_bucket(self, prefix: str) -> str:
        name = f"{prefix}-{secrets.token_hex(4)}"
        self.client().create_bucket(Bucket=name)
        return name


@contextmanager
def start_rgw() -> Iterator[RGW]:
    if shutil.which("radosgw") is None:
        raise Pending("Ceph RGW is not installed (./scripts/test installs it)")
    directory = Path(tempfile.mkdtemp(prefix="s3d-bench-", dir="/tmp"))
    access, secret = "s3drop-bench", secrets.token_hex(16)
    port = free_port()
    env = {
        **os.environ,
        "CEPH_S3_DIR": str(directory),
        "RGW_PORT": str(port),
        "MON_PORT": str(free_port()),
        "S3_ACCESS_KEY": access,
        "S3_SECRET_KEY": secret,
    }
    result = subprocess.run(
        ["bash", str(SCRIPTS / "ceph-start.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    try:
        if result.returncode != 0:
            raise RuntimeError(f"Ceph RGW did not start:\n{result.stdout}\n{result.stderr}")
        yield RGW(f"http://127.0.0.1:{port}", access, secret, directory)
    finally:
        subprocess.run(
            ["bash", str(SCRIPTS / "ceph-stop.sh"), "--wipe"],
            env=env,
            capture_output=True,
            timeout=120,
            check=False,
        )
        shutil.rmtree(directory, ignore_errors=True)
