"""6. Duplicates caught at signing: ``POST /api/uploads`` of bytes already in the caller's gallery
(409 ``already_uploaded`` with the image) against a normal sign (201 with a form) of the same size.

Both go through the whole app in-process (``httpx`` over the ASGI transport: routing, middleware,
the body model, the exception handler), with a ``sha256``: so both pay the one HEAD of the
duplicate marker, and what differs is the answer (the image's description, two signed GET URLs,
against a signed POST policy). Local backend and Ceph RGW; calls alternate duplicate and normal,
the round's figure is each side's median. Zero bytes uploaded: the duplicate answers carry no form,
and the app's signed and received counters and storage's ``incoming/`` do not move across them.
"""

from __future__ import annotations

import asyncio
import hashlib
import statistics
import time
from pathlib import Path
from typing import Any

from .common import Pending, Report, Row, Series, Target, paired_ratio

CALLS = {"local": 200, "rgw": 60}


def _png(seed: int) -> bytes:
    import io

    from PIL import Image

    image = Image.effect_noise((64, 48), 30 + seed).convert("RGB")
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


async def _measure(
    settings: Any, storage: Any, *, rounds: int, calls: int
) -> tuple[list[float], list[float], int]:
    import httpx

    from s3drop import _metrics as metrics
    from s3drop.limits import MemoryLimitStore
    from s3drop.web.app import create_app

    app = create_app(settings, storage=storage, limit_store=MemoryLimitStore())
    data = _png(1)
    digest = hashlib.sha256(data).hexdigest()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
        drop = app.state.drop
        form = drop.presign(content_type="image/png", size=len(data), filename="a.png")
        metadata = {
            name.removeprefix("x-amz-meta-"): value
            for name, value in form.fields.items()
            if name.startswith("x-amz-meta-")
        }
        drop.storage.put(form.key, data, content_type="image/png", metadata=metadata)
        drop.complete(form.id)
        body = {"filename": "a.png", "content_type": "image/png", "size": len(data)}
        duplicate_body = {**body, "sha256": digest}
        signed_before = metrics.SIGNED.labels("image/png")._value.get()
        incoming_before = len(drop.storage.list_objects("incoming/", limit=1000))
        duplicates = 0
        subject: list[float] = []
        baseline: list[float] = []
        for round_ in range(rounds):
            d: list[float] = []
            n: list[float] = []
            for index in range(calls):
                # A fresh checksum for each normal sign: a HEAD that finds nothing, as for a new file.
                normal_body = {
                    **body,
                    "sha256": hashlib.sha256(b"%d-%d" % (round_, index)).hexdigest(),
                }
                pair = ((duplicate_body, d, 409), (normal_body, n, 201))
                for sent, into, status in pair if index % 2 == 0 else pair[::-1]:
                    start = time.perf_counter()
                    answer = await http.post("/api/uploads", json=sent)
                    into.append((time.perf_counter() - start) * 1000)
                    if answer.status_code != status:
                        raise RuntimeError(f"sign answered {answer.status_code}: {answer.text}")
                    if status == 409:
                        if "upload" in answer.json():
                            raise RuntimeError("a duplicate answer carried a form")
                        duplicates += 1
            subject.append(statistics.median(d))
            baseline.append(statistics.median(n))
        signed = metrics.SIGNED.labels("image/png")._value.get() - signed_before
        if signed != rounds * calls:  # the normal signs only
            raise RuntimeError(f"{signed} forms signed, not {rounds * calls}: a duplicate signed")
        if len(drop.storage.list_objects("incoming/", limit=1000)) != incoming_before:
            raise RuntimeError("something arrived in quarantine")
    return subject, baseline, duplicates


def _row(case: str, subject: list[float], baseline: list[float], duplicates: int) -> Row:
    return Row(
        case=case,
        subject=Series("duplicate sign (409)", "ms", subject),
        baseline=Series("normal sign (201)", "ms", baseline),
        ratio=paired_ratio(subject, baseline, label="duplicate/normal"),
        ratio_means="duplicate sign ms / normal sign ms (both with sha256: one HEAD each)",
        target=Target("ratio", "<=", 1.5, "<= 1.5x, zero bytes uploaded"),
        extra={"duplicate_answers": duplicates, "bytes_uploaded_by_duplicates": 0},
    )


def run(workdir: Path, resources: Any, *, rounds: int) -> Report:
    from s3drop._config import Settings
    from s3drop._uploads import S3Drop

    if not callable(getattr(S3Drop, "find_duplicate", None)):
        raise Pending("S3Drop.find_duplicate does not exist yet (issue 15)")
    report = Report("dedupe", "Sign of a duplicate vs a normal sign")
    unlimited = {"rate_per_minute": 10**9, "bytes_per_hour": 10**15, "max_images": 10**9}
    local = Settings(data_dir=workdir / "dedupe-local", **unlimited)
    subject, baseline, duplicates = asyncio.run(
        _measure(local, None, rounds=rounds, calls=CALLS["local"])
    )
    report.rows.append(_row("local backend", subject, baseline, duplicates))
    try:
        server = resources.rgw()
    except Pending as exc:
        report.note = f"RGW part not run: {exc}"
        return report
    import boto3

    from s3drop.storage.s3 import S3Storage

    bucket = server.new_bucket("dedupe")
    settings = Settings(
        data_dir=workdir / "dedupe-rgw",
        bucket=bucket,
        endpoint_url=server.endpoint,
        region="us-east-1",
        **unlimited,
    )
    session = boto3.Session(
        aws_access_key_id=server.access_key, aws_secret_access_key=server.secret_key
    )
    storage = S3Storage(settings, session=session)
    subject, baseline, duplicates = asyncio.run(
        _measure(settings, storage, rounds=rounds, calls=CALLS["rgw"])
    )
    report.rows.append(_row("Ceph RGW", subject, baseline, duplicates))
    return report
