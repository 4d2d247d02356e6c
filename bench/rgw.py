"""A throwaway Ceph RGW for the benchmarks: the tests' own recipe (tests/ceph/cluster.py).

``BENCH_CEPH_SCRIPTS`` points at another copy of the start/stop scripts (to try an RGW setting).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.ceph.cluster import RGW, SCRIPTS, CephMissing, throwaway_rgw

from .common import Pending

__all__ = ["RGW", "start_rgw"]


@contextmanager
def start_rgw() -> Iterator[RGW]:
    scripts = Path(os.environ.get("BENCH_CEPH_SCRIPTS", SCRIPTS))
    try:
        with throwaway_rgw(prefix="s3d-bench-", access_key="s3drop-bench", scripts=scripts) as rgw:
            yield rgw
    except CephMissing as exc:
        raise Pending(str(exc)) from exc
