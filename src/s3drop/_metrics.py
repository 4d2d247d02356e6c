"""Prometheus metrics: what was signed, received, accepted, rejected, and how long it all took.

The bundled app exposes them at ``/metrics``; the web layer records them (a library user with their
own metrics can ignore this module). Names, in Prometheus' exposition::

    s3drop_uploads_signed_total{content_type}        forms signed
    s3drop_uploads_duplicate_total                   signings answered "already in your gallery"
    s3drop_uploads_received_total                    uploads the local backend received and stored
    s3drop_received_bytes_total                      their bytes
    s3drop_posts_refused_total{code}                 POSTs the local backend refused (S3's codes)
    s3drop_uploads_accepted_total                    uploads verified and promoted
    s3drop_uploads_rejected_total{reason}            uploads refused by verification (the 422 code)
    s3drop_accepted_bytes_total                      bytes of the accepted images
    s3drop_verification_seconds                      histogram: one completion, accepted or rejected
    s3drop_http_request_duration_seconds{method,route,status}
                                                     histogram: HTTP latency by route template
    s3drop_log_lines_dropped_total                   log lines dropped: standard error was not
                                                     read fast enough (see s3drop._logs)

Several worker processes: ``s3drop serve`` points ``PROMETHEUS_MULTIPROC_DIR`` at a fresh temporary
folder before any worker starts (or keeps the operator's); each worker then writes its samples to
files there, and :func:`render` sums every worker's, so ``/metrics`` answers the same totals
whichever worker serves it. Only counters and histograms are used: they stay right when a worker
dies and is replaced (its files keep counting), which gauges would not.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

from ._errors import ImageRejected

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

SIGNED = Counter("s3drop_uploads_signed", "Upload forms signed", ["content_type"])
DUPLICATES = Counter(
    "s3drop_uploads_duplicate", "Signings answered with an image the caller already has"
)
RECEIVED = Counter("s3drop_uploads_received", "Uploads the local backend received and stored")
RECEIVED_BYTES = Counter("s3drop_received_bytes", "Bytes the local backend received and stored")
POSTS_REFUSED = Counter(
    "s3drop_posts_refused", "POSTs the local backend refused, by S3 error code", ["code"]
)
ACCEPTED = Counter("s3drop_uploads_accepted", "Uploads verified and promoted")
REJECTED = Counter("s3drop_uploads_rejected", "Uploads refused by verification", ["reason"])
ACCEPTED_BYTES = Counter("s3drop_accepted_bytes", "Bytes of accepted images, as stored")
VERIFICATION = Histogram(
    "s3drop_verification_seconds",
    "Time to verify one upload and promote or reject it",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
HTTP_LATENCY = Histogram(
    "s3drop_http_request_duration_seconds",
    "HTTP request latency, by route template",
    ["method", "route", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)

LOG_LINES_DROPPED = Counter(
    "s3drop_log_lines_dropped", "Log lines dropped because standard error was not read fast enough"
)


#: ``SIGNED``'s child per content type (an allowed type: a handful): ``labels()`` takes a lock
#: and builds a key on every call, on the sign route's hot path.
_SIGNED_BY_TYPE: dict[str, Counter] = {}


def signed(content_type: str) -> None:
    child = _SIGNED_BY_TYPE.get(content_type)
    if child is None:
        child = _SIGNED_BY_TYPE[content_type] = SIGNED.labels(content_type)
    child.inc()


def log_line_dropped() -> None:
    LOG_LINES_DROPPED.inc()


def duplicate() -> None:
    DUPLICATES.inc()


def received(size: int) -> None:
    RECEIVED.inc()
    RECEIVED_BYTES.inc(size)


def post_refused(code: str) -> None:
    POSTS_REFUSED.labels(code).inc()


@contextmanager
def completion() -> Iterator[Callable[[int], None]]:
    """Time one completion; the body calls the yielded ``accepted(size)``, a rejection is counted
    by its reason as it propagates. Other failures (not found, storage down) count as neither.

    >>> with completion() as accepted:
    ...     image = drop.complete(upload_id)
    ...     accepted(image.bytes)
    """
    start = time.perf_counter()

    def accepted(size: int) -> None:
        VERIFICATION.observe(time.perf_counter() - start)
        ACCEPTED.inc()
        ACCEPTED_BYTES.inc(size)

    try:
        yield accepted
    except ImageRejected as exc:
        VERIFICATION.observe(time.perf_counter() - start)
        REJECTED.labels(exc.code).inc()
        raise


#: ``HTTP_LATENCY``'s child per (method, route template, status): routes and statuses are few.
_LATENCY_BY_LABELS: dict[tuple[str, str, int], Histogram] = {}


def request_done(method: str, route: str, status: int, seconds: float) -> None:
    labels = (method, route, status)
    child = _LATENCY_BY_LABELS.get(labels)
    if child is None:
        child = _LATENCY_BY_LABELS[labels] = HTTP_LATENCY.labels(method, route, str(status))
    child.observe(seconds)


def render() -> tuple[bytes, str]:
    """The exposition text and its content type: every worker's samples when serving with
    several (multiprocess mode), this process's otherwise."""
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
