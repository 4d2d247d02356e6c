"""A storage that counts the requests it passes on, by kind and by area: what an operation costs.

Wrap any backend; everything else it has (signing, the local backend's receiver) passes through
uncounted, since it makes no request::

    counting = CountingStorage(open_storage(settings))
    drop = S3Drop(settings, storage=counting)
    with counting.counting() as requests:
        drop.complete(upload_id)
    requests.by_kind()   # {"GET": 1, "PUT": 4, "DELETE": 1}
    requests.by_area()   # {("GET", "incoming"): 1, ("PUT", "thumbs"): 1, ...}

A request is what one call costs on S3: ``head`` a HEAD, ``read`` and ``get`` a GET, ``put`` a
PUT, ``delete`` a DELETE, ``list_objects`` a LIST (``iter_all`` one per page), ``check`` a HEAD of
the bucket. The area is the key's first folder (``incoming``, ``images``, ``thumbs``, ``owners``,
``digests``, and any other a promotion writes), so writes of one kind can be counted apart.
"""

from __future__ import annotations

import contextlib
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .._policy import UploadForm, UploadRequest
from .base import Download, ObjectInfo, Storage

if TYPE_CHECKING:
    from starlette.routing import BaseRoute


@dataclass
class Requests:
    """The requests made while counting, in order: ``(kind, key or prefix)``."""

    made: list[tuple[str, str]] = field(default_factory=list)

    def by_kind(self) -> dict[str, int]:
        """How many of each kind: ``{"GET": 1, "PUT": 4, ...}``."""
        return dict(Counter(kind for kind, _ in self.made))

    def by_area(self) -> dict[tuple[str, str], int]:
        """How many of each kind in each area: ``{("PUT", "thumbs"): 1, ...}``."""
        return dict(Counter((kind, area(key)) for kind, key in self.made))

    def __len__(self) -> int:
        return len(self.made)


def area(key: str) -> str:
    """The first folder of a key or prefix (``thumbs/x.webp`` -> ``thumbs``; ``""`` for none)."""
    return key.partition("/")[0] if "/" in key else ""


class CountingStorage(Storage):
    """``inner``, with every request it makes counted (see the module docstring). Thread-safe."""

    def __init__(self, inner: Storage) -> None:
        self.inner = inner
        self.name = inner.name
        # What the base class declares as attributes (the wrapper's own would be the defaults).
        self.bucket, self.region = inner.bucket, inner.region
        self.max_key_bytes = inner.max_key_bytes
        self.needs_sweeping = inner.needs_sweeping
        self.read_urls_expire = inner.read_urls_expire
        self._lock = threading.Lock()
        self._open: list[Requests] = []
        self.total = Requests()  # every request since the wrapper was made

    @contextlib.contextmanager
    def counting(self) -> Iterator[Requests]:
        """The requests made inside the ``with`` block (by any thread)."""
        requests = Requests()
        with self._lock:
            self._open.append(requests)
        try:
            yield requests
        finally:
            with self._lock:
                self._open.remove(requests)

    def _count(self, kind: str, key: str) -> None:
        with self._lock:
            self.total.made.append((kind, key))
            for requests in self._open:
                requests.made.append((kind, key))

    def __getattr__(self, name: str) -> Any:  # what only the inner backend has
        return getattr(self.inner, name)

    @property
    def signing_blocks(self) -> bool:
        return self.inner.signing_blocks

    def check_key(self, key: str) -> None:
        self.inner.check_key(key)

    def presign_post(self, request: UploadRequest, *, expires_in: int) -> UploadForm:
        return self.inner.presign_post(request, expires_in=expires_in)

    def presign_put(self, request: UploadRequest, *, expires_in: int) -> UploadForm:
        return self.inner.presign_put(request, expires_in=expires_in)

    def presign_get(self, key: str, *, expires_in: int, filename: str | None = None) -> str:
        return self.inner.presign_get(key, expires_in=expires_in, filename=filename)

    def head(self, key: str) -> ObjectInfo | None:
        self._count("HEAD", key)
        return self.inner.head(key)

    def get(self, key: str) -> Download | None:
        self._count("GET", key)
        return self.inner.get(key)

    def read(self, key: str, *, start: int = 0, end: int | None = None) -> bytes:
        self._count("GET", key)
        return self.inner.read(key, start=start, end=end)

    def put(self, key: str, data: bytes, *, content_type: str, metadata: dict[str, str]) -> None:
        self._count("PUT", key)
        self.inner.put(key, data, content_type=content_type, metadata=metadata)

    def delete(self, key: str) -> None:
        self._count("DELETE", key)
        self.inner.delete(key)

    def list_objects(
        self, prefix: str, *, start_after: str | None = None, limit: int = 1000
    ) -> list[ObjectInfo]:
        self._count("LIST", prefix)
        return self.inner.list_objects(prefix, start_after=start_after, limit=limit)

    def check(self) -> None:
        self._count("HEAD", "")
        self.inner.check()

    def sweep_partial(self, older_than: float) -> int:
        return self.inner.sweep_partial(older_than)

    def browser_origins(self) -> list[str]:
        return self.inner.browser_origins()

    def http_routes(self) -> list[BaseRoute]:
        return self.inner.http_routes()

    def served_at(self, base_url: str) -> AbstractContextManager[None]:
        return self.inner.served_at(base_url)
