"""Signed webhooks: tell a host written in any language that an image was accepted, rejected or
deleted, and let a receiver check that s3drop sent it.

Set ``S3DROP_WEBHOOK_URL`` and ``S3DROP_WEBHOOK_SECRET`` (make one with
``s3drop webhook-secret``) and every event is POSTed there as JSON::

    {"type": "image.accepted", "timestamp": "2026-12-01T15:04:05.123Z",
     "data": {"id": "...", "url": "...", "width": 640, ..., "owner": "alice", "principal": "alice"}}

Signing follows the open Standard Webhooks scheme (https://www.standardwebhooks.com/), so
receivers in other languages can use its libraries unchanged: the headers ``webhook-id`` (one id
per event, the same on every retry), ``webhook-timestamp`` (Unix seconds of this attempt) and
``webhook-signature: v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">``, keyed with the
secret's bytes (``whsec_<base64>``). A Python receiver checks all of it in one call::

    event = s3drop.webhooks.verify(secret, request.headers, request.body, seen=recent_ids)

This module is what a sender and a receiver share (secrets, signatures, event bodies);
:mod:`s3drop._outbox` delivers them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from ._auth import Principal
from ._errors import ImageRejected, WebhookRefused
from ._gallery import Image

#: The events a webhook receives.
EVENTS = ("image.accepted", "image.rejected", "image.deleted")

_PREFIX = "whsec_"


# --- signing and verifying --------------------------------------------------------------------


def generate_secret() -> str:
    """A new signing secret: ``whsec_`` and 32 random bytes in base64."""
    return _PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key a secret stands for: the base64 after ``whsec_`` (or the whole string)."""
    raw = secret.removeprefix(_PREFIX)
    try:
        key = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) < 16:
        raise ValueError(
            "a webhook secret is whsec_ followed by at least 16 random bytes in base64; make one "
            "with `s3drop webhook-secret`"
        )
    return key


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value: ``v1,`` and the base64 HMAC-SHA256 of
    ``<msg_id>.<timestamp>.<body>``."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signed_headers(
    secret: str, msg_id: str, body: bytes, *, timestamp: int | None = None
) -> dict[str, str]:
    """Every header one delivery carries."""
    stamp = int(time.time()) if timestamp is None else timestamp
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": sign(secret, msg_id, stamp, body),
    }


class SeenIds(Protocol):
    """Where a receiver remembers the delivery ids it took: a ``set``, :class:`RecentIds`, or a
    wrapper over a store its workers share (Redis ``SET id 1 NX EX 300``, a table)."""

    def __contains__(self, msg_id: object) -> bool: ...

    def add(self, msg_id: str) -> None: ...


class RecentIds:
    """The delivery ids of the last ``ttl`` seconds, in memory (one receiver process): older ones
    are forgotten, since :func:`verify` refuses their timestamps anyway. Thread-safe."""

    def __init__(self, ttl: float = 300.0) -> None:
        self.ttl = ttl
        self._ids: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def __contains__(self, msg_id: object) -> bool:
        with self._lock:
            self._forget(time.monotonic())
            return msg_id in self._ids

    def add(self, msg_id: str) -> None:
        now = time.monotonic()
        with self._lock:
            self._forget(now)
            self._ids[msg_id] = now
            self._ids.move_to_end(msg_id)

    def __len__(self) -> int:
        with self._lock:
            self._forget(time.monotonic())
            return len(self._ids)

    def _forget(self, now: float) -> None:
        while self._ids:
            oldest, when = next(iter(self._ids.items()))
            if now - when <= self.ttl:
                break
            del self._ids[oldest]


@dataclass(frozen=True)
class WebhookEvent:
    """One verified delivery: its id (the same on every retry), type, send time and data."""

    id: str
    type: str
    timestamp: datetime
    data: dict[str, Any]


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes | str,
    *,
    tolerance: int = 300,
    seen: SeenIds | None = None,
    now: float | None = None,
) -> WebhookEvent:
    """Check one delivery and return its event, or raise :class:`~s3drop._errors.WebhookRefused`.

    ``headers`` are the request's (any case), ``body`` its raw bytes, before any JSON parsing.
    Refused: a missing header, a signature that is not s3drop's for this secret, a timestamp more
    than ``tolerance`` seconds from now (a replay of an old delivery) and, when ``seen`` is given
    (:class:`RecentIds`, or anything with ``in`` and ``add`` that the receiver's workers share),
    an id already in it (a replay within the tolerance; every verified id is added). ``seen``
    only needs to remember ids for ``tolerance`` seconds.
    """
    lower = {name.lower(): value for name, value in headers.items()}
    msg_id = lower.get("webhook-id", "")
    stamp = lower.get("webhook-timestamp", "")
    signatures = lower.get("webhook-signature", "")
    if not (msg_id and stamp and signatures):
        raise WebhookRefused(
            "missing webhook-id, webhook-timestamp or webhook-signature: not a signed delivery"
        )
    try:
        timestamp = int(stamp)
    except ValueError:
        raise WebhookRefused(f"webhook-timestamp is not Unix seconds: {stamp!r}") from None
    raw = body.encode() if isinstance(body, str) else body
    expected = sign(secret, msg_id, timestamp, raw).encode()
    # Several space-separated signatures may come (a secret being rotated); one must match.
    if not any(hmac.compare_digest(expected, given.encode()) for given in signatures.split()):
        raise WebhookRefused("the signature does not match: wrong secret, or the body was changed")
    age = (time.time() if now is None else now) - timestamp
    if abs(age) > tolerance:
        raise WebhookRefused(
            f"the delivery was signed {abs(age):.0f} s {'ago' if age > 0 else 'ahead'}; at most "
            f"{tolerance} s are accepted (a replayed or delayed delivery)"
        )
    if seen is not None:
        if msg_id in seen:
            raise WebhookRefused(f"delivery {msg_id} was already received (a replay)")
        seen.add(msg_id)
    try:
        event = json.loads(raw)
        return WebhookEvent(
            id=msg_id,
            type=str(event["type"]),
            timestamp=datetime.fromtimestamp(timestamp, UTC),
            data=dict(event["data"]),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise WebhookRefused("the body is not an s3drop event") from exc


# --- event bodies -----------------------------------------------------------------------------


def accepted_event(image: Image, principal: Principal | None) -> tuple[str, dict[str, Any]]:
    """``image.accepted``: the image's JSON with its owner and checksum."""
    data = {**image.to_dict(), "sha256": image.sha256, "owner": image.owner}
    return f"image.accepted.{image.id}", _event("image.accepted", data, principal)


def rejected_event(
    upload_id: str, error: ImageRejected, principal: Principal | None
) -> tuple[str, dict[str, Any]]:
    """``image.rejected``: the upload id and the reason, as the API answered it."""
    data = {"upload_id": upload_id, "error": {"code": error.code, "message": error.message}}
    return f"image.rejected.{upload_id}", _event("image.rejected", data, principal)


def deleted_event(image_id: str, principal: Principal | None) -> tuple[str, dict[str, Any]]:
    """``image.deleted``: the id that no longer resolves."""
    return f"image.deleted.{image_id}", _event("image.deleted", {"id": image_id}, principal)


def _event(kind: str, data: dict[str, Any], principal: Principal | None) -> dict[str, Any]:
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return {
        "type": kind,
        "timestamp": now,
        "data": {**data, "principal": principal.name if principal else None},
    }
