"""HTTP in-process, through httpx's ASGI transport, from plain (sync) tests; and the upload flow
over it: sign, post to the form's URL as a browser would, complete. For tests of HTTP semantics
that need no process."""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
from anyio.from_thread import BlockingPortal, start_blocking_portal
from starlette.types import ASGIApp

from s3drop import S3Drop

#: Where the in-process client sends requests: the host every absolute URL names (a loopback
#: name, which every Host check accepts).
BASE = "http://127.0.0.1:8000"


class _PortalTransport(httpx.BaseTransport):
    """A sync transport over ``httpx.ASGITransport``, run on an event loop in a helper thread."""

    def __init__(self, app: ASGIApp, portal: BlockingPortal) -> None:
        self.asgi = httpx.ASGITransport(app=app)
        self.portal = portal

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self.portal.call(self._handle, request)

    async def _handle(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        forwarded = httpx.Request(
            request.method, request.url, headers=request.headers, content=body
        )
        answer = await self.asgi.handle_async_request(forwarded)
        # The bytes as sent (gzipped static files stay gzipped; the caller's client decodes them).
        content = b"".join([chunk async for chunk in answer.aiter_raw()])
        return httpx.Response(answer.status_code, headers=answer.headers, content=content)


@contextlib.contextmanager
def asgi_transport(app: ASGIApp) -> Iterator[httpx.BaseTransport]:
    """A sync transport on ``app`` in-process, for clients that take one (``s3drop._client``)."""
    with start_blocking_portal() as portal:
        yield _PortalTransport(app, portal)


@contextlib.contextmanager
def asgi_client(app: ASGIApp, *, base_url: str = BASE, **kwargs: Any) -> Iterator[httpx.Client]:
    """An ``httpx.Client`` on ``app`` in-process (no lifespan), at ``base_url``."""
    with (
        asgi_transport(app) as transport,
        httpx.Client(base_url=base_url, transport=transport, **kwargs) as client,
    ):
        yield client


def sign(
    http: httpx.Client, api: str, data: bytes, content_type: str = "image/png"
) -> httpx.Response:
    """``POST {api}/uploads``; the answer (201 with the form, or a refusal)."""
    return http.post(
        f"{api}/uploads",
        json={"filename": "cat.png", "content_type": content_type, "size": len(data)},
    )


def upload(http: httpx.Client, api: str, data: bytes) -> dict[str, Any]:
    """Sign, post the file to the form's URL (absolute), complete: the accepted image's JSON."""
    answer = sign(http, api, data)
    assert answer.status_code == 201, answer.text
    form = answer.json()["upload"]
    posted = http.post(
        form["url"], data=form["fields"], files={"file": ("cat.png", data, form["content_type"])}
    )
    assert posted.status_code in (200, 201, 204), posted.text
    done = http.post(f"{api}/uploads/{form['id']}/complete")
    assert done.status_code == 200, done.text
    image: dict[str, Any] = done.json()["image"]
    return image


def stored(drop: S3Drop) -> list[str]:
    """Every key the drop's storage holds (quarantine, images, thumbnails, index)."""
    return sorted(info.key for info in drop.storage.iter_all(""))


def files_in(root: Path) -> list[str]:
    return sorted(str(path.relative_to(root)) for path in root.rglob("*") if path.is_file())


class AppServer:
    """``create_app()`` in this process, answering through httpx's ASGI transport, with what the
    tests of a :class:`tests.conftest.LiveServer` read: ``url``, ``client()``, ``data_dir`` and
    ``output()`` (the lines s3drop logged: the audit trail and its warnings; not uvicorn's). For
    HTTP semantics that need no process: no port, no interpreter start, no uvicorn."""

    def __init__(self, app: ASGIApp, data_dir: Path, portal: BlockingPortal) -> None:
        self.app = app
        self.url = BASE
        self.data_dir = data_dir
        self.lines: list[str] = []
        self._portal = portal

    def transport(self) -> httpx.BaseTransport:
        """A sync transport on the app, for clients that take one (``s3drop._client``)."""
        return _PortalTransport(self.app, self._portal)

    def client(self, **kwargs: Any) -> httpx.Client:
        """An ``httpx.Client`` on the app; absolute URLs the app gives out (its storage's form
        and image URLs on the local backend) name ``BASE``, so they reach the app too."""
        return httpx.Client(base_url=self.url, transport=self.transport(), timeout=30, **kwargs)

    def output(self) -> str:
        return "\n".join(self.lines)


class _Lines(logging.Handler):
    def __init__(self, lines: list[str]) -> None:
        super().__init__(logging.INFO)
        self.lines = lines

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@contextlib.contextmanager
def app_servers(tmp: Path) -> Iterator[Callable[..., AppServer]]:
    """Factory of :class:`AppServer`: ``make(env={...})`` builds ``create_app()`` from the
    environment plus ``env`` (``S3DROP_*``, ``AWS_*``), the way ``s3drop serve`` reads it, with a
    data folder of its own under ``tmp``. Every app's ``output()`` holds every line s3drop logged
    since it was made: a test that reads it makes one app."""
    from s3drop._config import Settings
    from s3drop.web.app import create_app

    logger = logging.getLogger("s3drop")
    level = logger.level
    logger.setLevel(logging.INFO)  # the audit trail is INFO, as `s3drop serve` logs it
    handlers: list[logging.Handler] = []
    count = itertools.count()
    with start_blocking_portal() as portal:

        def make(*, env: dict[str, str] | None = None) -> AppServer:
            data_dir = tmp / f"app-data-{next(count)}"
            full = {"S3DROP_DATA_DIR": str(data_dir), **(env or {})}
            saved = dict(os.environ)
            os.environ.update(full)
            try:
                app = create_app(Settings())
            finally:
                os.environ.clear()
                os.environ.update(saved)
            server = AppServer(app, Path(full["S3DROP_DATA_DIR"]), portal)
            handler = _Lines(server.lines)
            logger.addHandler(handler)
            handlers.append(handler)
            return server

        try:
            yield make
        finally:
            for handler in handlers:
                logger.removeHandler(handler)
            logger.setLevel(level)
