"""A storage backend that records the requests s3drop makes of it, for tests that count them (a
gallery page is one listing; an image URL one HEAD)."""

from __future__ import annotations

from s3drop.config import Settings
from s3drop.storage.base import ObjectInfo
from s3drop.storage.local import LocalStorage


class CountingStorage(LocalStorage):
    """The local backend, recording every storage call but writes in ``calls``."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.calls: list[str] = []

    def list_objects(
        self, prefix: str, *, start_after: str | None = None, limit: int = 1000
    ) -> list[ObjectInfo]:
        self.calls.append(f"list {prefix}")
        return super().list_objects(prefix, start_after=start_after, limit=limit)

    def head(self, key: str) -> ObjectInfo | None:
        self.calls.append(f"head {key}")
        return super().head(key)

    def read(self, key: str, *, start: int = 0, end: int | None = None) -> bytes:
        self.calls.append(f"read {key}")
        return super().read(key, start=start, end=end)
