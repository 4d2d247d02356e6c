"""An in-process app in front of a real store: requests to the app's own URL
(:data:`tests.inprocess.BASE`) answered by the app in this process, every other one (Ceph RGW's
forms and signed URLs) sent over the network, as a browser or ``s3drop.client`` would send them.
For tests on RGW whose point is what the app and the store answer, not the app's process."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from .conftest import RGW
from .flow import Backend
from .inprocess import BASE, AppServer, app_servers


class RoutedTransport(httpx.BaseTransport):
    """The app's origin to ``app``'s in-process transport; any other origin over the network."""

    def __init__(self, app: httpx.BaseTransport) -> None:
        self.app = app
        self.network = httpx.HTTPTransport()
        self.origin = httpx.URL(BASE)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if (url.scheme, url.host, url.port) == (
            self.origin.scheme,
            self.origin.host,
            self.origin.port,
        ):
            return self.app.handle_request(request)
        return self.network.handle_request(request)

    def close(self) -> None:
        self.app.close()
        self.network.close()


def routed(server: AppServer) -> RoutedTransport:
    """A transport for ``s3drop.client.Client`` or ``httpx.Client``: ``server`` in-process, the
    store it signs for over the network."""
    return RoutedTransport(server.transport())


def routed_client(server: AppServer, **kwargs: Any) -> httpx.Client:
    """An ``httpx.Client`` at ``server``'s URL over :func:`routed`."""
    return httpx.Client(base_url=server.url, transport=routed(server), timeout=30, **kwargs)


class AppBackend(Backend):
    """A :class:`tests.flow.Backend` whose server is the app in-process (an
    :class:`~tests.inprocess.AppServer`); :meth:`http` reaches it and the store it signs for."""

    server: AppServer  # type: ignore[assignment]

    def http(self, **kwargs: Any) -> httpx.Client:
        """A client at the app's URL that also reaches the store's absolute URLs (RGW's)."""
        return routed_client(self.server, **kwargs)

    def get(self, url: str) -> httpx.Response:
        """GET a URL the API gave (the app's, root-relative or absolute, or the store's)."""
        with self.http() as http:
            return http.get(self.url(url))

    def post(self, form: dict[str, Any], data: bytes) -> None:
        """:func:`tests.flow.post`: the form to storage as a browser posts it, fields then file."""
        with self.http() as http:
            answer = http.post(
                self.url(form["url"]),
                data=form["fields"],
                files={"file": ("upload.bin", data, form["content_type"])},
            )
        assert answer.status_code in (200, 201, 204), answer.text


@contextlib.contextmanager
def app_backend(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    *,
    env: dict[str, str] | None = None,
) -> Iterator[AppBackend]:
    """:func:`tests.flow.live_backend` with the app in this process: ``create_app()`` on the
    local backend or on a fresh bucket of the session's RGW (emptied and removed afterwards), from
    a clean environment plus ``env``. For what the app and the store answer; a test about the
    server's process (workers, signals, uvicorn) keeps ``live_backend``."""
    full_env = {"S3DROP_RATE_PER_MINUTE": "10000", **(env or {})}
    rgw: RGW | None = None
    bucket: str | None = None
    if request.param == "rgw":
        rgw = request.getfixturevalue("rgw")
        bucket = f"t-{secrets.token_hex(6)}"
        rgw.client().create_bucket(Bucket=bucket)
        full_env.update(rgw.env(bucket))
    with app_servers(tmp_path_factory.mktemp(request.param)) as make:
        with pytest.MonkeyPatch.context() as patch:
            for name in list(os.environ):
                if name.startswith(("AWS_", "S3DROP_", "BUCKET_NAME")):
                    patch.delenv(name)
            server = make(env=full_env)
        backend = AppBackend(request.param, server, rgw, bucket)  # type: ignore[arg-type]
        try:
            yield backend
        finally:
            if backend.s3 is not None:
                for key in backend.keys(""):
                    backend.s3.delete_object(Bucket=bucket, Key=key)
                backend.s3.delete_bucket(Bucket=bucket)
