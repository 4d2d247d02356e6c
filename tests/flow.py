"""The upload flow over real HTTP, for tests: a live server on a backend, sign, post, complete.

``live_backend`` starts ``s3drop serve`` on the local backend or on a fresh bucket of the session's
Ceph RGW, with a clean environment (nothing from the machine's AWS_* or S3DROP_* leaks in), and
shows what its storage holds, so a test can prove what was or was not stored.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from typing import Any
from urllib.parse import urljoin

import httpx
import pytest

from .conftest import RGW, LiveServer, isolate, start_server


class Backend:
    """A live server and a view of what its storage holds."""

    def __init__(
        self, name: str, server: LiveServer, rgw: RGW | None = None, bucket: str | None = None
    ) -> None:
        self.name = name
        self.server = server
        self.s3 = rgw.client() if rgw is not None else None
        self.bucket = bucket

    def keys(self, prefix: str) -> list[str]:
        """Every key that starts with ``prefix``, in key order."""
        if self.s3 is not None:
            found: list[str] = []
            paginator = self.s3.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                found += [item["Key"] for item in page.get("Contents", [])]
            return found
        root = self.server.data_dir / "objects"
        names = (str(path.relative_to(root)) for path in root.rglob("*") if path.is_file())
        return sorted(name for name in names if name.startswith(prefix))

    def url(self, relative: str) -> str:
        """An URL the API gave, resolved against the server (local URLs are root-relative)."""
        return urljoin(self.server.url + "/", relative)


@contextlib.contextmanager
def live_backend(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    *,
    env: dict[str, str] | None = None,
) -> Iterator[Backend]:
    """A live server on ``request.param`` ("local" or "rgw"), stopped (and its bucket emptied
    and removed) afterwards."""
    full_env = {"S3DROP_RATE_PER_MINUTE": "10000", **(env or {})}
    rgw: RGW | None = None
    bucket: str | None = None
    if request.param == "rgw":
        rgw = request.getfixturevalue("rgw")
        bucket = f"t-{secrets.token_hex(6)}"
        maker = rgw.client()
        maker.create_bucket(Bucket=bucket)
        maker.close()
        full_env.update(rgw.env(bucket))
    with pytest.MonkeyPatch.context() as patch:
        isolate(patch)
        server = start_server(tmp_path_factory.mktemp(request.param), env=full_env)
    backend = Backend(request.param, server, rgw, bucket)
    try:
        yield backend
    finally:
        server.stop()
        if backend.s3 is not None:
            for key in backend.keys(""):
                backend.s3.delete_object(Bucket=bucket, Key=key)
            backend.s3.delete_bucket(Bucket=bucket)
            backend.s3.close()


def sign(http: httpx.Client, data: bytes, content_type: str, **extra: Any) -> dict[str, Any]:
    """``POST /api/uploads`` for ``data``; the signed form."""
    answer = http.post(
        "/api/uploads",
        json={"filename": "upload.bin", "content_type": content_type, "size": len(data), **extra},
    )
    assert answer.status_code == 201, answer.text
    form: dict[str, Any] = answer.json()["upload"]
    return form


def post(backend: Backend, form: dict[str, Any], data: bytes, filename: str = "upload.bin") -> None:
    """Post the form straight to storage, as the browser does: the fields in order, the file
    last. Through the server's own client, so an in-process app (:mod:`tests.appflow`) is reached
    the same way as a live one (and RGW over the network from both)."""
    with backend.server.client() as http:
        answer = http.post(
            backend.url(form["url"]),
            data=form["fields"],
            files={"file": (filename, data, form["content_type"])},
        )
    assert answer.status_code in (200, 201, 204), answer.text


def fetch(backend: Backend, url: str) -> httpx.Response:
    """GET an URL the API gave (the app's own, or RGW's signed one)."""
    with backend.server.client() as http:
        return http.get(backend.url(url))


def upload(backend: Backend, http: httpx.Client, data: bytes, content_type: str) -> str:
    """Sign and post ``data``; its upload id, once storage holds it in quarantine."""
    form = sign(http, data, content_type)
    post(backend, form, data)
    assert backend.keys(form["key"]) == [form["key"]]
    upload_id: str = form["id"]
    return upload_id


def complete(http: httpx.Client, upload_id: str) -> dict[str, Any]:
    """Complete an upload that must be accepted; its Image JSON."""
    answer = http.post(f"/api/uploads/{upload_id}/complete")
    assert answer.status_code == 200, answer.text
    image: dict[str, Any] = answer.json()["image"]
    return image
