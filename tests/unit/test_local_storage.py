from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.test_storage_contract import s3_order

from s3drop._config import Settings
from s3drop._errors import InvalidRequest
from s3drop.storage.local import LocalStorage


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(Settings(data_dir=tmp_path / "data"))


@pytest.mark.parametrize(
    "key", ["", "/etc/passwd", "../secret.key", "a/../../b", "a//b", "a\\b", "a\0b", "a/./b"]
)
def test_keys_cannot_leave_the_root(storage: LocalStorage, key: str) -> None:
    with pytest.raises(InvalidRequest):
        storage.head(key)
    with pytest.raises(InvalidRequest):
        storage.put(key, b"x", content_type="image/png", metadata={})
    with pytest.raises(InvalidRequest):
        storage.presign_get(key, expires_in=60)
    assert not list((storage.root / "objects").rglob("*"))


def test_a_few_keys_of_a_large_folder_in_order(storage: LocalStorage) -> None:
    """A page of a big folder orders only its first names; empty folders among them (no keys)
    make the walk read on into the rest."""
    keys = [f"p/{index:03d}.png" for index in range(0, 120, 3)]
    keys += [f"p/{index:03d}/x" for index in range(1, 120, 30)]
    for key in keys:
        storage.put(key, b"x", content_type="image/png", metadata={})
    for index in range(2, 120, 3):  # empty folders: no keys, but names in the way
        (storage.objects / "p" / f"{index:03d}").mkdir()
    for after in [None, "p/", "p/004", "p/031/", "p/050.png", "p/118"]:
        for limit in (1, 2, 5, 50, 1000):
            listed = storage.list_objects("p/", start_after=after, limit=limit)
            assert [info.key for info in listed] == s3_order(keys, "p/", after, limit)


def test_listing_reads_no_metadata_and_stops_at_the_limit(
    storage: LocalStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    for index in range(20):
        storage.put(f"images/{index:02d}.png", b"x" * index, content_type="image/png", metadata={})
    stats: list[str] = []
    real_stat = os.stat

    def counting_stat(path: Any, *args: Any, **kwargs: Any) -> os.stat_result:
        stats.append(str(path))
        return real_stat(path, *args, **kwargs)

    monkeypatch.setattr(os, "stat", counting_stat)
    listed = storage.list_objects("images/", start_after="images/04.png", limit=3)
    monkeypatch.undo()
    assert [(info.key, info.size) for info in listed] == [
        ("images/05.png", 5),
        ("images/06.png", 6),
        ("images/07.png", 7),
    ]
    assert all((info.content_type, info.metadata) == ("", {}) for info in listed)
    assert len(stats) == 3  # one stat per listed object; no sidecar read
    assert not any(path.endswith(".json") for path in stats)


def test_signed_reads_of_keys_that_need_quoting(storage: LocalStorage) -> None:
    from urllib.parse import parse_qsl, unquote, urlsplit

    key = "owners/alice%40example.org/x y.png"
    url = storage.presign_get(key, expires_in=60, filename="café & co.png")
    parts = urlsplit(url)
    assert parts.path == "/storage/owners/alice%2540example.org/x%20y.png"
    assert unquote(parts.path) == f"/storage/{key}"
    query = dict(parse_qsl(parts.query))
    assert query["filename"] == "café & co.png"
    storage.check_get(key, query)


def test_signed_reads_refuse_tampering(storage: LocalStorage) -> None:
    from urllib.parse import parse_qsl, urlsplit

    from s3drop._errors import S3Error

    url = storage.presign_get("images/a.png", expires_in=60, filename="cat.png")
    query = dict(parse_qsl(urlsplit(url).query))
    storage.check_get("images/a.png", query)
    for changed in (
        {**query, "expires": str(int(query["expires"]) + 3600)},
        {**query, "filename": "evil.html"},
        {**query, "signature": "0" * 64},
    ):
        with pytest.raises(S3Error):
            storage.check_get("images/a.png", changed)
    with pytest.raises(S3Error):
        storage.check_get("images/b.png", query)
    expired = storage.presign_get("images/a.png", expires_in=-10)
    with pytest.raises(S3Error, match="expired"):
        storage.check_get("images/a.png", dict(parse_qsl(urlsplit(expired).query)))
