"""The fixtures the Django app ships for host projects, used by its own tests too."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from s3drop.integrations.django.fixtures import (  # noqa: F401  (re-exported fixtures)
    s3drop_data_dir,
    s3drop_image_factory,
)


@pytest.fixture(scope="package", autouse=True)
def _django_beside_playwright() -> Iterator[None]:
    """Playwright's sync API keeps an event loop running in the main thread for the rest of the
    session once a browser test ran, and Django then refuses ORM calls from that thread (its
    async-safety check). Django's own escape hatch for exactly this case: these tests call views
    synchronously through the test client, so nothing here is async."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        yield
