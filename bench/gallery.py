"""4. The gallery: the first page of 50 among 10,000 promoted images vs a bare listing.

``S3Drop.list_images(limit=50)`` (the library call behind ``GET /api/images``) on the local backend
and on Ceph RGW, against a bare listing of the same prefix: ``os.scandir`` of the images folder,
sorted into key order, first 50 (local); ``list_objects_v2(Prefix="images/", MaxKeys=50)`` with
boto3 (RGW).

The 10,000 promoted images are made the way s3drop makes one: a small JPEG goes through
``S3Drop.complete``; its promoted object (bytes and metadata) is then stored again under 10,000 fresh
ids, a second apart, newest first, with ``storage.put`` (local) or boto3 ``put_object`` from a thread
pool (RGW). Thumbnails are not copied: listing never reads them.

Each round times ``CALLS`` calls of each, interleaved; the round's figure is their median.
"""

from __future__ import annotations

import io
import os
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from .common import Pending, Report, Row, Series, Target, paired_ratio

PAGE = 50
CALLS = {"local": 15, "rgw": 9}


def _drop(settings: Any, storage: Any = None) -> Any:
    from s3drop._uploads import S3Drop
    from s3drop.limits import MemoryLimitStore

    return S3Drop(settings, storage=storage, limit_store=MemoryLimitStore())


def _template(drop: Any) -> tuple[Callable[[str], str], bytes, str, dict[str, str]]:
    """Promote one small JPEG through complete(); a function from a fresh id to its promoted key
    (whatever the key scheme, the id is in it), and the promoted bytes, type and metadata."""
    import hashlib

    from s3drop._policy import encode_meta, new_upload_id, quarantine_key

    from .samples import camera_exif, photo

    out = io.BytesIO()
    photo((64, 48), seed=7).save(out, "JPEG", quality=90, exif=camera_exif())
    data = out.getvalue()
    upload_id = new_upload_id()
    drop.storage.put(
        quarantine_key(upload_id, "image/jpeg"),
        data,
        content_type="image/jpeg",
        metadata={
            "filename": encode_meta("holiday photo.jpg"),
            "sha256": hashlib.sha256(data).hexdigest(),
            "owner": "anonymous",
        },
    )
    drop.complete(upload_id)
    promoted = [info.key for info in drop.storage.list_objects("images/") if upload_id in info.key]
    if len(promoted) != 1:
        raise RuntimeError(f"complete() promoted {promoted}, not one image")
    key = promoted[0]
    info = drop.storage.head(key)
    stored = drop.storage.read(key)
    return (
        (lambda new_id: key.replace(upload_id, new_id, 1)),
        stored,
        info.content_type,
        dict(info.metadata),
    )


def _ids(count: int) -> list[str]:
    from s3drop._policy import new_upload_id

    now = time.time()
    return [new_upload_id(now - index) for index in range(count)]


def _measure(
    gallery: Callable[[], Any],
    bare: Callable[[], Any],
    *,
    rounds: int,
    calls: int,
    pick: Callable[[list[float]], float] = statistics.median,
) -> tuple[list[float], list[float]]:
    """``calls`` calls of each per round, interleaved; each round's figure is ``pick`` of its
    calls (the median; ``min`` for the fastest)."""
    gallery()
    bare()
    subject: list[float] = []
    baseline: list[float] = []
    for _ in range(rounds):
        g: list[float] = []
        b: list[float] = []
        for index in range(calls):
            pair = ((gallery, g), (bare, b)) if index % 2 == 0 else ((bare, b), (gallery, g))
            for function, into in pair:
                start = time.perf_counter()
                function()
                into.append((time.perf_counter() - start) * 1000)
        subject.append(pick(g))
        baseline.append(pick(b))
    return subject, baseline


def _check_page(page: Any) -> None:
    if len(page.images) != PAGE or page.next_cursor is None:
        raise RuntimeError(f"the gallery gave {len(page.images)} images, not a full page")


def fill_local(workdir: Path, name: str, count: int) -> tuple[Any, Callable[[], list[str]]]:
    """A local drop in ``workdir/name`` holding one promoted image (:func:`_template`) stored again
    under ``count`` fresh ids; the drop, and the bare listing of its first page (``os.scandir``
    of the images folder, sorted into key order)."""
    from s3drop._config import Settings

    drop = _drop(Settings(data_dir=workdir / name))
    key_for, data, content_type, metadata = _template(drop)
    for upload_id in _ids(count):
        drop.storage.put(key_for(upload_id), data, content_type=content_type, metadata=metadata)
    folder = drop.storage.objects / "images"
    found = sum(1 for _ in os.scandir(folder))
    if found < count:
        raise RuntimeError(f"only {found} images were stored")

    def bare() -> list[str]:
        return sorted(entry.name for entry in os.scandir(folder))[:PAGE]

    return drop, bare


def fill_rgw(
    workdir: Path, server: Any, name: str, count: int
) -> tuple[Any, Callable[[], Any], dict[str, Any]]:
    """The same on a fresh RGW bucket ``name``, stored with boto3 ``put_object`` from a thread
    pool; the drop, the bare listing (``list_objects_v2(MaxKeys=50)``) and the fill's details."""
    import boto3

    from s3drop._config import Settings
    from s3drop.storage.s3 import S3Storage

    bucket = server.new_bucket(name)
    settings = Settings(
        data_dir=workdir / f"{name}-rgw",
        bucket=bucket,
        endpoint_url=server.endpoint,
        region="us-east-1",
    )
    session = boto3.Session(
        aws_access_key_id=server.access_key, aws_secret_access_key=server.secret_key
    )
    drop = _drop(settings, S3Storage(settings, session=session))
    key_for, data, content_type, metadata = _template(drop)
    client = server.new_client(pool=32)
    start = time.monotonic()

    def put(upload_id: str) -> None:
        client.put_object(
            Bucket=bucket,
            Key=key_for(upload_id),
            Body=data,
            ContentType=content_type,
            Metadata=metadata,
        )

    with ThreadPoolExecutor(max_workers=24) as pool:
        list(pool.map(put, _ids(count)))
    filled = time.monotonic() - start

    def bare() -> Any:
        answer = client.list_objects_v2(Bucket=bucket, Prefix="images/", MaxKeys=PAGE)
        if len(answer.get("Contents", [])) != PAGE:
            raise RuntimeError("the bare listing did not give a full page")
        return answer

    return drop, bare, {"rgw_fill_seconds": round(filled, 1), "rgw_bucket": bucket}


#: Each backend's bare listing: its name in the table, and in the ratio's meaning.
_BARE = {"local": ("os.scandir + sort", "bare listing"), "rgw": ("list_objects_v2",) * 2}


def versus_bare(
    case: str,
    subject: list[float],
    baseline: list[float],
    *,
    backend: str,
    target: float,
    **extra: Any,
) -> Row:
    """The table's row for ``list_images`` against ``backend``'s bare listing, within ``target``
    times it."""
    name, means = _BARE[backend]
    return Row(
        case=case,
        subject=Series("list_images", "ms", subject),
        baseline=Series(name, "ms", baseline),
        ratio=paired_ratio(subject, baseline, label="gallery/bare"),
        ratio_means=f"list_images ms / {means} ms",
        target=Target("ratio", "<=", target, f"<= {target}x bare"),
        extra=extra,
    )


def local(workdir: Path, *, rounds: int, count: int) -> Row:
    drop, bare = fill_local(workdir, "gallery-local", count)

    def gallery() -> None:
        _check_page(drop.list_images(limit=PAGE))

    subject, baseline = _measure(gallery, bare, rounds=rounds, calls=CALLS["local"])
    case = f"local: first page of {PAGE} among {count + 1}"
    return versus_bare(case, subject, baseline, backend="local", target=1.5)


def rgw(workdir: Path, server: Any, *, rounds: int, count: int) -> tuple[Row, dict[str, Any]]:
    drop, bare, details = fill_rgw(workdir, server, "gallery", count)

    def gallery() -> None:
        _check_page(drop.list_images(limit=PAGE))

    subject, baseline = _measure(gallery, bare, rounds=rounds, calls=CALLS["rgw"])
    case = f"RGW: first page of {PAGE} among {count + 1}"
    return versus_bare(case, subject, baseline, backend="rgw", target=1.5), details


def run(workdir: Path, resources: Any, *, rounds: int, count: int) -> Report:
    from s3drop._uploads import S3Drop

    if not callable(getattr(S3Drop, "list_images", None)):
        raise Pending("S3Drop.list_images does not exist yet (issue 4)")
    report = Report("gallery", f"Gallery: first page of {PAGE} among {count} images")
    report.rows.append(local(workdir, rounds=rounds, count=count))
    try:
        server = resources.rgw()
    except Pending as exc:
        report.note = f"RGW part not run: {exc}"
        return report
    row, details = rgw(workdir, server, rounds=rounds, count=count)
    report.rows.append(row)
    report.details.update(details)
    return report
