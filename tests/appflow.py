"""The upload flow of :mod:`tests.flow` in-process (its ``post``, ``upload`` and ``fetch`` work on
both, and are re-exported here): ``app_backend`` builds ``create_app()`` in this
process (no interpreter start, no uvicorn) on the local backend or on a fresh bucket of the
session's Ceph RGW, for tests of HTTP semantics that need no process.

Its clients route by host: the app's own URLs (``tests.inprocess.BASE``, where the local backend's
form and image URLs point) go through the ASGI transport, every other URL (RGW's form and signed
image URLs) over the network to RGW, as a browser's would.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from .ceph.cluster import RGW
from .conftest import isolate
from .flow import Backend, fetch, post, upload
from .inprocess import BASE, AppServer, app_servers

_APP = httpx.URL(BASE)


class _Routing(httpx.BaseTransport):
    """The app's own host through ``app``, every other host over the network."""

    def __init__(self, app: httpx.BaseTransport) -> None:
        self.app = app
        self.network = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if (request.url.host, request.url.port) == (_APP.host, _APP.port):
            return self.app.handle_request(request)
        return self.network.handle_request(request)

    def close(self) -> None:
        self.network.close()


class RoutedServer:
    """An :class:`AppServer` read as a :class:`tests.conftest.LiveServer` is (``url``,
    ``client()``, ``data_dir``, ``output()``), whose clients also reach RGW."""

    def __init__(self, app: AppServer) -> None:
        self.app = app
        self.url = app.url
        self.data_dir: Path = app.data_dir

    def client(self, **kwargs: Any) -> httpx.Client:
        transport = _Routing(self.app.transport())
        return httpx.Client(base_url=self.url, transport=transport, timeout=60, **kwargs)

    def output(self) -> str:
        return self.app.output()


@contextlib.contextmanager
def app_backend(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    *,
    env: dict[str, str] | None = None,
) -> Iterator[Backend]:
    """:func:`tests.flow.live_backend`, in-process: the app on ``request.param`` ("local" or
    "rgw"); its bucket emptied and removed afterwards. ``output()`` holds what s3drop logged
    while the backend was up."""
    full_env = {"S3DROP_RATE_PER_MINUTE": "10000", **(env or {})}
    rgw: RGW | None = None
    bucket: str | None = None
    if request.param == "rgw":
        rgw = request.getfixturevalue("rgw")
        bucket = f"t-{secrets.token_hex(6)}"
        rgw.client().create_bucket(Bucket=bucket)
        full_env.update(rgw.env(bucket))
    with (
        app_servers(tmp_path_factory.mktemp(f"app-{request.param}")) as make,
        pytest.MonkeyPatch.context() as patch,
    ):
        isolate(patch)
        server = RoutedServer(make(env=full_env))
        patch.undo()
        backend = Backend(request.param, server, rgw, bucket)  # type: ignore[arg-type]
        try:
            yield backend
        finally:
            if backend.s3 is not None:
                for key in backend.keys(""):
                    backend.s3.delete_object(Bucket=bucket, Key=key)
                backend.s3.delete_bucket(Bucket=bucket)


__all__ = ["Backend", "RoutedServer", "app_backend", "fetch", "post", "upload"]
