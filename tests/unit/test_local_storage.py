from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from s3drop.config import Settings
from s3drop.errors import InvalidRequest, NotFound
from s3drop.storage.local import LocalStorage


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(Settings(data_dir=tmp_path / "data"))


def test_put_head_read_delete(storage: LocalStorage) -> None:
    storage.put("images/a.png", b"0123456789", content_type="image/png", metadata={"k": "v"})
    info = storage.head("images/a.png")
    assert info is not None
    assert (info.size, info.content_type, info.metadata) == (10, "image/png", {"k": "v"})
    assert storage.read("images/a.png") == b"0123456789"
    assert storage.read("images/a.png", start=2, end=5) == b"234"
    storage.delete("images/a.png")
    assert storage.head("images/a.png") is None
    assert not list((storage.root / "meta").rglob("*.json"))
    storage.delete("images/a.png")  # deleting what is not there is not an error


def test_missing_objects(storage: LocalStorage) -> None:
    assert storage.head("images/none.png") is None
    with pytest.raises(NotFound):
        storage.read("images/none.png")


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


def test_listing_is_in_key_order_with_start_after(storage: LocalStorage) -> None:
    for name in ["b", "a", "c", "d"]:
        storage.put(f"images/{name}.png", b"x", content_type="image/png", metadata={})
    storage.put("thumbs/a.webp", b"x", content_type="image/webp", metadata={})
    keys = [info.key for info in storage.list_objects("images/")]
    assert keys == ["images/a.png", "images/b.png", "images/c.png", "images/d.png"]
    page = storage.list_objects("images/", start_after="images/b.png", limit=1)
    assert [info.key for info in page] == ["images/c.png"]
    assert [info.key for info in storage.iter_all("thumbs/")] == ["thumbs/a.webp"]


# Names around '/': '-', '.' and '%' sort before it, so "a-b/x" < "a.png" < "a/x" < "a0" as whole
# keys, whatever order the folder names "a", "a-b" and the file "a.png" have among themselves.
TRICKY_KEYS = [
    "a!",
    "a-b/x",
    "a.png",
    "a/x",
    "a/y-z",
    "a/y/z",
    "a/y.z",
    "a/.hidden",
    "a%40b/c",
    "a0",
    "b",
    "owners/alice-b/2.png",
    "owners/alice/1.png",
    "owners/alice.c/3.png",
    "z/é",
    "z/e/f",
    "z/f",
]


def _s3_order(keys: list[str], prefix: str, start_after: str | None, limit: int) -> list[str]:
    listed = sorted((k for k in keys if k.startswith(prefix)), key=lambda k: k.encode())
    return [k for k in listed if start_after is None or k > start_after][:limit]


def test_listing_is_in_the_byte_order_of_whole_keys(storage: LocalStorage) -> None:
    for key in TRICKY_KEYS:
        storage.put(key, key.encode(), content_type="text/plain", metadata={"k": "v"})
    prefixes = ["", "a", "a/", "a-", "a/y", "owners/", "owners/alice", "owners/alice/", "z/", "q"]
    afters = [None, "", "a/", "a/y", "a/y/", "owners/alice/", "zz", *TRICKY_KEYS]
    for prefix in prefixes:
        for after in afters:
            for limit in (1, 3, 1000):
                listed = storage.list_objects(prefix, start_after=after, limit=limit)
                expected = _s3_order(TRICKY_KEYS, prefix, after, limit)
                assert [info.key for info in listed] == expected, (prefix, after, limit)
    assert [info.key for info in storage.iter_all("")] == _s3_order(TRICKY_KEYS, "", None, 99)


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
            assert [info.key for info in listed] == _s3_order(keys, "p/", after, limit)


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

    from s3drop.errors import S3Error

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
