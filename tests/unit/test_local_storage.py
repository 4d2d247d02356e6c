from __future__ import annotations

from pathlib import Path

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


def test_signed_reads_refuse_tampering(storage: LocalStorage) -> None:
    from urllib.parse import parse_qsl, urlsplit

    from s3drop.errors import PostRejected

    url = storage.presign_get("images/a.png", expires_in=60, filename="cat.png")
    query = dict(parse_qsl(urlsplit(url).query))
    storage.check_get("images/a.png", query)
    for changed in (
        {**query, "expires": str(int(query["expires"]) + 3600)},
        {**query, "filename": "evil.html"},
        {**query, "signature": "0" * 64},
    ):
        with pytest.raises(PostRejected):
            storage.check_get("images/a.png", changed)
    with pytest.raises(PostRejected):
        storage.check_get("images/b.png", query)
    expired = storage.presign_get("images/a.png", expires_in=-10)
    with pytest.raises(PostRejected, match="expired"):
        storage.check_get("images/a.png", dict(parse_qsl(urlsplit(expired).query)))
