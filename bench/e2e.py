"""5. End to end on Ceph RGW: 200 images of 1-5 MB through sign, upload and complete vs put_object.

s3drop: the benchmark app (one uvicorn worker, S3 backend on a fresh RGW bucket) and 8 client
threads, each taking the next image and doing what the page does: ``POST /api/uploads`` (with the
SHA-256), the multipart POST of the signed form straight to RGW, ``POST /api/uploads/{id}/complete``.
The floor: the same bytes, written with boto3 ``put_object`` from 8 threads: what storage alone
costs. Both run in each round (order alternating); everything they stored is deleted after each.

The images are photo-like JPEGs with EXIF from 1 to 5 MB (:func:`bench.samples.sized_jpeg`, 20
distinct files cached in /tmp/s3drop-bench-cache, used in turn), each upload made distinct by a
comment segment naming its index (:func:`distinct`; the same bytes twice would be refused as a
duplicate, 409 ``already_uploaded``); both sides send the same bytes.
"""

from __future__ import annotations

import hashlib
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from .common import Pending, Report, Row, Series, Target, paired_ratio, serve
from .verify import CACHE

CLIENTS = 8
DISTINCT = 20
UNLIMITED = {
    "S3DROP_RATE_PER_MINUTE": str(10**9),
    "S3DROP_BYTES_PER_HOUR": str(10**15),
    "S3DROP_MAX_IMAGES": str(10**9),
    "S3DROP_MAX_BYTES": "8MB",
}


def images() -> list[bytes]:
    """20 photo-like JPEGs from 1 to 5 MB (cached)."""
    from .samples import sized_jpeg

    found = []
    for index in range(DISTINCT):
        target = 1_000_000 + index * 4_000_000 // (DISTINCT - 1)
        path = CACHE / f"e2e-{index:02d}-{target}-v2.jpg"
        if not path.exists():
            CACHE.mkdir(parents=True, exist_ok=True)
            data = sized_jpeg(target, seed=100 + index)
            path.with_suffix(".part").write_bytes(data)
            path.with_suffix(".part").replace(path)
        found.append(path.read_bytes())
    return found


def distinct(body: bytes, index: int) -> bytes:
    """``body`` (a JPEG) with a comment segment after its SOI naming ``index``: other bytes, the
    same picture (the promotion strips comments)."""
    comment = f"e2e upload {index}".encode()
    return body[:2] + b"\xff\xfe" + (len(comment) + 2).to_bytes(2, "big") + comment + body[2:]


def _empty(client: Any, bucket: str) -> None:
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket):
        keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
        if keys:
            client.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})


def _s3drop_pass(url: str, bodies: list[bytes], digests: list[str], count: int) -> float:
    local = threading.local()

    def one(index: int) -> None:
        http: httpx.Client | None = getattr(local, "http", None)
        if http is None:
            http = local.http = httpx.Client(timeout=120)
        data = distinct(bodies[index % len(bodies)], index)
        signed = http.post(
            f"{url}/api/uploads",
            json={
                "filename": f"photo-{index}.jpg",
                "content_type": "image/jpeg",
                "size": len(data),
                "sha256": digests[index],
            },
        )
        if signed.status_code != 201:
            raise RuntimeError(f"sign answered {signed.status_code}: {signed.text}")
        form = signed.json()["upload"]
        posted = http.post(
            form["url"],
            data=form["fields"],
            files={"file": (f"photo-{index}.jpg", data, "image/jpeg")},
        )
        if posted.status_code not in (200, 201, 204):
            raise RuntimeError(f"storage answered {posted.status_code}: {posted.text[:300]}")
        done = http.post(f"{url}/api/uploads/{form['id']}/complete")
        if done.status_code != 200:
            raise RuntimeError(f"complete answered {done.status_code}: {done.text}")

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
        list(pool.map(one, range(count)))
    return time.perf_counter() - start


def _floor_pass(client: Any, bucket: str, bodies: list[bytes], count: int) -> float:
    def one(index: int) -> None:
        client.put_object(
            Bucket=bucket,
            Key=f"floor/{index:04d}.jpg",
            Body=distinct(bodies[index % len(bodies)], index),
            ContentType="image/jpeg",
        )

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
        list(pool.map(one, range(count)))
    return time.perf_counter() - start


def _post_pass(storage: Any, settings: Any, bodies: list[bytes], count: int) -> float:
    """The browser's part alone: a form signed in-process, posted straight to RGW."""
    from s3drop._policy import check_upload

    local = threading.local()

    def one(index: int) -> None:
        http: httpx.Client | None = getattr(local, "http", None)
        if http is None:
            http = local.http = httpx.Client(timeout=120)
        data = distinct(bodies[index % len(bodies)], index)
        request = check_upload(
            settings, content_type="image/jpeg", size=len(data), filename=f"photo-{index}.jpg"
        )
        form = storage.presign_post(request, expires_in=600)
        posted = http.post(
            form.url, data=form.fields, files={"file": (f"photo-{index}.jpg", data, "image/jpeg")}
        )
        if posted.status_code not in (200, 201, 204):
            raise RuntimeError(f"storage answered {posted.status_code}: {posted.text[:300]}")

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
        list(pool.map(one, range(count)))
    return time.perf_counter() - start


def _rounds(
    url: str,
    client: Any,
    bucket: str,
    storage: Any,
    settings: Any,
    bodies: list[bytes],
    digests: list[str],
    count: int,
    rounds: int,
    ours: list[float],
    floor: list[float],
    posts: list[float],
) -> None:
    # warm up every path (connections, imports, the first decode)
    _s3drop_pass(url, bodies, digests, CLIENTS)
    _floor_pass(client, bucket, bodies, CLIENTS)
    _post_pass(storage, settings, bodies, CLIENTS)
    _empty(client, bucket)
    for index in range(rounds):
        steps = ("floor", "s3drop", "post") if index % 2 == 0 else ("post", "s3drop", "floor")
        for step in steps:
            if step == "floor":
                floor.append(_floor_pass(client, bucket, bodies, count))
            elif step == "post":
                posts.append(_post_pass(storage, settings, bodies, count))
            else:
                ours.append(_s3drop_pass(url, bodies, digests, count))
                promoted = client.list_objects_v2(Bucket=bucket, Prefix="images/", MaxKeys=1000)
                if promoted.get("KeyCount", 0) != count:
                    raise RuntimeError(f"{promoted.get('KeyCount')} images promoted, not {count}")
            _empty(client, bucket)


def run(workdir: Path, resources: Any, *, rounds: int, count: int) -> Report:
    from s3drop._uploads import S3Drop

    if not callable(getattr(S3Drop, "complete", None)):
        raise Pending("S3Drop.complete does not exist yet (issue 4)")
    server = resources.rgw()
    bodies = images()
    digests = [
        hashlib.sha256(distinct(bodies[index % len(bodies)], index)).hexdigest()
        for index in range(count)
    ]
    total = sum(len(bodies[i % len(bodies)]) for i in range(count))
    report = Report("e2e", f"End to end on RGW: {count} images of 1-5 MB, {CLIENTS} clients")
    report.details["bytes_per_round"] = total
    bucket = server.new_bucket("e2e")
    client = server.new_client(pool=CLIENTS * 2)
    storage, settings = _storage(server, bucket, workdir)
    ours: list[float] = []
    floor: list[float] = []
    posts: list[float] = []
    with serve(workdir, env={**UNLIMITED, **server.env(bucket)}, name="e2e", pin=False) as app:
        try:
            _rounds(
                app.url,
                client,
                bucket,
                storage,
                settings,
                bodies,
                digests,
                count,
                rounds,
                ours,
                floor,
                posts,
            )
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}\n--- server log:\n{app.output()}") from exc
    ours_rate = [count / seconds for seconds in ours]
    floor_rate = [count / seconds for seconds in floor]
    post_rate = [count / seconds for seconds in posts]
    report.rows.append(
        Row(
            case=f"{count} images, {CLIENTS} concurrent clients",
            subject=Series("sign+upload+complete", "img/s", ours_rate),
            baseline=Series("put_object", "img/s", floor_rate),
            ratio=paired_ratio(ours_rate, floor_rate, label="s3drop/floor"),
            ratio_means="s3drop images/s / put_object images/s",
            target=Target("ratio", ">=", 0.3, ">= 0.3 of put_object"),
            extra={
                "s3drop_MB_per_s": round(total / 1e6 / min(ours), 1),
                "floor_MB_per_s": round(total / 1e6 / min(floor), 1),
            },
        )
    )
    report.rows.append(
        Row(
            case="diag: vs the browser's POST alone (signed in-process, no server, no complete)",
            subject=Series("sign+upload+complete", "img/s", ours_rate),
            baseline=Series("presigned POST", "img/s", post_rate),
            ratio=paired_ratio(ours_rate, post_rate, label="s3drop/POST"),
            ratio_means="s3drop images/s / POST-only images/s",
        )
    )
    return report


def _storage(server: Any, bucket: str, workdir: Path) -> tuple[Any, Any]:
    import boto3

    from s3drop._config import Settings
    from s3drop.storage.s3 import S3Storage

    settings = Settings(
        data_dir=workdir / "e2e-client",
        bucket=bucket,
        endpoint_url=server.endpoint,
        region="us-east-1",
        max_bytes=8_000_000,
    )
    session = boto3.Session(
        aws_access_key_id=server.access_key, aws_secret_access_key=server.secret_key
    )
    return S3Storage(settings, session=session), settings
