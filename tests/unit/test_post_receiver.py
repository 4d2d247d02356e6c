"""The local backend's form parser and its guards, in process: caps, bad bytes, a full disk, the
sweep of a crash's leftovers, and the settings that bound connections.

The same attacks over real HTTP, with timings, are in ``tests/test_endpoint_hardening.py``.
"""

from __future__ import annotations

import asyncio
import errno
import os
import random
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tests import samples
from tests.conftest import run_async

from s3drop import S3Drop
from s3drop._config import Settings
from s3drop._errors import ConfigurationError, InsufficientStorage, S3Error
from s3drop.storage import local
from s3drop.storage.local import MAX_PARTS, MAX_PRE_DATA, LocalStorage, ReceivedPost
from s3drop.storage.local import _post as post


@pytest.fixture
def drop(tmp_path: Path) -> S3Drop:
    return S3Drop(Settings(data_dir=tmp_path / "data", upload_idle_timeout=0.2))


def _storage(drop: S3Drop) -> LocalStorage:
    assert isinstance(drop.storage, LocalStorage)
    return drop.storage


def _form(
    drop: S3Drop, data: bytes, boundary: str = "b0undary", *, filename: str = "a.png"
) -> bytes:
    form = drop.presign(content_type="image/png", size=len(data), filename=filename)
    out = bytearray()
    for name, value in form.fields.items():
        out += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
        out += value.encode() + b"\r\n"
    out += (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: image/png\r\n\r\n"
    ).encode()
    return bytes(out + data + f"\r\n--{boundary}--\r\n".encode())


async def _chunks(
    body: bytes, size: int = 4096, *, then_stall: bool = False
) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]
    if then_stall:
        await asyncio.sleep(3600)


def _receive(
    storage: LocalStorage, body: bytes, *, boundary: str = "b0undary", **options: bool
) -> ReceivedPost:
    content_type = f"multipart/form-data; boundary={boundary}"
    return run_async(storage.receive_post(content_type, _chunks(body, **options)))


def _leftovers(storage: LocalStorage) -> list[Path]:
    folders = (storage.objects, storage.meta, storage.tmp)
    return [p for folder in folders for p in folder.rglob("*") if p.is_file()]


def test_a_valid_form_is_stored(drop: S3Drop) -> None:
    data = samples.png(1, (40, 30))
    received = _receive(_storage(drop), _form(drop, data))
    assert received.size == len(data)
    assert _storage(drop).read(received.key) == data


def test_the_largest_form_s3drop_signs_fits_the_caps(drop: S3Drop) -> None:
    """The longest filename the API signs (1,024 characters), in 4-byte characters, sent again
    as the file part's name: its metadata field, its policy and the part's header fit."""
    data = samples.png(1, (40, 30))
    name = "\U0001f600" * 1020 + ".png"
    body = _form(drop, data, filename=name)
    assert len(body) - len(data) > 8000
    assert _receive(_storage(drop), body).size == len(data)


def test_parts_are_capped(drop: S3Drop) -> None:
    storage = _storage(drop)
    body = b"".join(
        f'--b0undary\r\nContent-Disposition: form-data; name="x-ignore-{n}"\r\n\r\n\r\n'.encode()
        for n in range(MAX_PARTS + 1)
    )
    with pytest.raises(S3Error, match=f"more than {MAX_PARTS} parts") as refused:
        _receive(storage, body + b"--b0undary--\r\n")
    assert (refused.value.status, refused.value.code) == (400, "MalformedPOSTRequest")
    assert _leftovers(storage) == []


def test_everything_before_the_file_is_capped_at_20_kib(drop: S3Drop) -> None:
    storage = _storage(drop)
    data = samples.png(1, (40, 30))
    body = _form(drop, data)
    pad = b'--b0undary\r\nContent-Disposition: form-data; name="x-ignore-p"\r\n\r\n'
    head = len(body) - len(data) - len(b"\r\n--b0undary--\r\n")  # the bytes before the file
    fits = pad + b"p" * (MAX_PRE_DATA - head - len(pad) - 2) + b"\r\n"
    assert _receive(storage, fits + body).size == len(data)
    too_much = pad + b"p" * (MAX_PRE_DATA - head - len(pad) - 1) + b"\r\n"
    with pytest.raises(S3Error) as refused:
        _receive(storage, too_much + _form(drop, data))
    assert refused.value.code == "MaxPostPreDataLengthExceeded"


def test_mutated_forms_are_stored_or_refused_never_anything_else(drop: S3Drop) -> None:
    """Random byte flips, cuts and insertions into a valid form: a ReceivedPost or a
    S3Error, and a refusal leaves no file behind."""
    storage = _storage(drop)
    data = samples.png(2, (24, 16))
    rng = random.Random(10)
    form = _form(drop, data)
    for _ in range(300):
        body = bytearray(form)
        for _ in range(rng.randint(1, 4)):
            at = rng.randrange(len(body))
            match rng.randrange(3):
                case 0:
                    body[at] = rng.randrange(256)
                case 1:
                    del body[at : at + rng.randint(1, 64)]
                case _:
                    body[at:at] = rng.randbytes(rng.randint(1, 64))
        stored = {p for p in (storage.root / "objects").rglob("*") if p.is_file()}
        refusal: S3Error | None = None
        try:
            _receive(storage, bytes(body))
        except S3Error as exc:
            refusal = exc
        if refusal is not None:
            assert 400 <= refusal.status < 500
            assert {p for p in (storage.root / "objects").rglob("*") if p.is_file()} == stored
        assert list(storage.tmp.iterdir()) == []


def test_a_stalled_body_is_cut_and_leaves_nothing(drop: S3Drop) -> None:
    storage = _storage(drop)
    body = _form(drop, samples.png(3, (200, 100)))
    with pytest.raises(S3Error) as refused:
        _receive(storage, body[: len(body) - 500], then_stall=True)
    assert (refused.value.status, refused.value.code) == (400, "RequestTimeout")
    assert _leftovers(storage) == []


def test_a_full_disk_is_507_and_leaves_nothing(
    drop: S3Drop, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = _storage(drop)
    body = _form(drop, samples.png(3, (40, 30)))

    def full(self: object, *args: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(post._PostReceiver, "flush", full)
    with pytest.raises(S3Error) as refused:
        _receive(storage, body)
    assert (refused.value.status, refused.value.code) == (507, "InsufficientStorage")
    assert _leftovers(storage) == []


def test_a_failed_metadata_write_leaves_no_temp_file(
    drop: S3Drop, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = _storage(drop)
    real_replace = os.replace

    def replace(src: str | Path, dst: str | Path) -> None:
        if Path(dst).suffix != ".json":
            raise OSError(errno.ENOSPC, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(local.os, "replace", replace)
    with pytest.raises(InsufficientStorage):
        storage.put("images/a.png", b"x", content_type="image/png", metadata={})
    hidden = [p for p in storage.meta.rglob(".*") if p.is_file()]
    assert hidden == []
    assert list(storage.tmp.iterdir()) == []


def test_readiness_needs_free_space(tmp_path: Path) -> None:
    storage = LocalStorage(Settings(data_dir=tmp_path, min_free_bytes="1000000GiB"))
    with pytest.raises(InsufficientStorage, match="less than S3DROP_MIN_FREE_BYTES"):
        storage.check()
    LocalStorage(Settings(data_dir=tmp_path, min_free_bytes=0)).check()


def test_the_sweep_removes_old_leftovers_only(drop: S3Drop) -> None:
    storage = _storage(drop)
    old = time.time() - 7200
    stale = storage.tmp / "dead.part"
    fresh = storage.tmp / "live.part"
    stale.write_bytes(b"x")
    fresh.write_bytes(b"x")
    os.utime(stale, (old, old))
    storage.put("thumbs/0000000000000aaaaaaaaaa.webp", b"t", content_type="image/webp", metadata={})
    thumb = storage.objects / "thumbs" / "0000000000000aaaaaaaaaa.webp"
    os.utime(thumb, (old, old))
    assert drop.sweep() == 2
    assert not stale.exists()
    assert fresh.exists()
    assert not thumb.exists()


@pytest.mark.parametrize(
    ("values", "setting"),
    [
        ({"header_timeout": 0}, "S3DROP_HEADER_TIMEOUT"),
        ({"keep_alive_timeout": -1}, "S3DROP_KEEP_ALIVE_TIMEOUT"),
        ({"upload_idle_timeout": 7200}, "S3DROP_UPLOAD_IDLE_TIMEOUT"),
        ({"max_connections": 0}, "S3DROP_MAX_CONNECTIONS"),
        ({"min_free_bytes": "lots"}, "S3DROP_MIN_FREE_BYTES"),
    ],
)
def test_connection_and_disk_settings_are_checked(values: dict[str, object], setting: str) -> None:
    with pytest.raises(ConfigurationError, match=setting):
        Settings(**values)


def test_min_free_bytes_takes_sizes() -> None:
    assert Settings(min_free_bytes="64MiB").min_free_bytes == 64 * 1024**2
