"""pytest fixtures a host project can use in its own tests (``pytest_plugins = [...]``)::

    # conftest.py
    pytest_plugins = ["s3drop.integrations.django.fixtures"]

    def test_profile_keeps_its_avatar(s3drop_image_factory, django_user):
        image = s3drop_image_factory(owner=django_user)
        Profile(user=django_user, avatar=image.id).full_clean()

- ``s3drop_data_dir``: every test gets its own local-backend data folder (``settings.S3DROP``
  overridden for the test, the S3Drop rebuilt), so tests never share or leave images;
- ``s3drop_image_factory(owner=user, ...)``: stores a real image through the whole flow (sign,
  the signed POST, verification), owned by that Django user, and returns the :class:`Image`.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ..._auth import Principal
from ..._gallery import Image
from ..._uploads import S3Drop
from .conf import get_drop, principal_for_user


def png_bytes(
    width: int = 64, height: int = 48, color: tuple[int, int, int] = (200, 40, 40)
) -> bytes:
    """A small real PNG, made with Pillow."""
    from PIL import Image as PillowImage

    out = io.BytesIO()
    PillowImage.new("RGB", (width, height), color).save(out, "PNG")
    return out.getvalue()


def store_image(
    drop: S3Drop,
    principal: Principal,
    data: bytes,
    *,
    content_type: str = "image/png",
    filename: str = "test.png",
) -> Image:
    """Upload ``data`` as ``principal`` the way a browser does, and complete it.

    The body is httpx's multipart encoding of the signed fields in order, then the file (a
    boundary of its own, the file's name escaped), as :mod:`s3drop._client` posts it."""
    import httpx

    from ...storage.local import LocalStorage
    from ..api import receive_post

    form = drop.presign(
        content_type=content_type, size=len(data), filename=filename, principal=principal
    )
    request = httpx.Request(
        "POST", form.url, data=form.fields, files={"file": (filename, data, content_type)}
    )
    storage = drop.storage
    if isinstance(storage, LocalStorage):
        body = io.BytesIO(request.read())
        status = receive_post(storage, request.headers["Content-Type"], body.read).status
    else:
        with httpx.Client() as http:
            status = http.send(request).status_code
    if status not in (200, 201, 204):
        raise AssertionError(f"storage refused the fixture's upload: {status}")
    return drop.complete(form.id, principal=principal)


@pytest.fixture
def s3drop_data_dir(tmp_path: Path) -> Iterator[Path]:
    """A fresh local-backend data folder for this test (``S3DROP["data_dir"]``)."""
    from django.conf import settings
    from django.test import override_settings  # here: importing the plugin stays cheap

    data_dir = tmp_path / "s3drop-data"
    values = {**(getattr(settings, "S3DROP", None) or {}), "data_dir": data_dir}
    with override_settings(S3DROP=values):
        yield data_dir


@pytest.fixture
def s3drop_image_factory(s3drop_data_dir: Path) -> Callable[..., Image]:
    """``factory(owner=user, data=png_bytes(), content_type=..., filename=...)`` -> a stored Image."""

    def factory(*, owner: Any, data: bytes | None = None, **kwargs: Any) -> Image:
        principal = owner if isinstance(owner, Principal) else principal_for_user(owner)
        return store_image(get_drop(), principal, data or png_bytes(), **kwargs)

    return factory
