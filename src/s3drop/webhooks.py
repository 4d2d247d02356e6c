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

Delivery never holds up the request: :class:`WebhookSender` writes the event into an outbox (a
SQLite file in the data folder, so several workers share it and a restart resumes it) and a
background thread posts it, retrying 5xx answers, 408/429, timeouts and connection errors with
exponential backoff (doubling from ``S3DROP_WEBHOOK_BACKOFF`` seconds, at most an hour apart,
``S3DROP_WEBHOOK_ATTEMPTS`` tries); any other 4xx is final. The outbox holds at most
``S3DROP_WEBHOOK_QUEUE`` undelivered events; beyond that new events are logged and dropped.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import json
import logging
import random
import secrets
import sqlite3
import threading
import time
from collections.abc import Mapping, MutableSet
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .auth import Principal
from .errors import ConfigurationError, ImageRejected, WebhookRefused
from .gallery import Image

if TYPE_CHECKING:
    import httpx  # imported by the sender's thread: `import s3drop` stays fast

logger = logging.getLogger("s3drop.webhooks")

#: The events a webhook receives.
EVENTS = ("image.accepted", "image.rejected", "image.deleted")

#: The longest wait between two tries of one delivery.
MAX_BACKOFF = 3600.0

#: Delivered events are remembered this long, so the same event enqueued again is not re-sent.
KEEP_DELIVERED = 86400.0

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
    seen: MutableSet[str] | None = None,
    now: float | None = None,
) -> WebhookEvent:
    """Check one delivery and return its event, or raise :class:`~s3drop.errors.WebhookRefused`.

    ``headers`` are the request's (any case), ``body`` its raw bytes, before any JSON parsing.
    Refused: a missing header, a signature that is not s3drop's for this secret, a timestamp more
    than ``tolerance`` seconds from now (a replay of an old delivery) and, when ``seen`` is given
    (a set, or anything with ``in`` and ``add`` shared by the receiver's workers), an id already
    in it (a replay within the tolerance; every verified id is added). ``seen`` only needs to
    remember ids for ``tolerance`` seconds.
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


# --- delivery ---------------------------------------------------------------------------------

_SCHEMA = """
CREATE TABLE IF NOT EXISTS deliveries (
    id TEXT PRIMARY KEY,
    body BLOB NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at REAL NOT NULL,
    leased_until REAL NOT NULL DEFAULT 0,
    state TEXT NOT NULL DEFAULT 'pending',
    done_at REAL
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (state, next_at);
"""


class WebhookSender:
    """Posts events to one URL from a background thread, through an outbox on disk.

    :meth:`send` only writes a row (a few milliseconds at most) and wakes the thread; the thread
    claims due rows one at a time (a lease, so workers sharing the file never post the same row
    at once) and posts them. Start it with :meth:`start`, stop it with :meth:`close`.
    """

    def __init__(
        self,
        url: str,
        secret: str,
        *,
        path: Path,
        timeout: float = 10.0,
        attempts: int = 12,
        backoff: float = 1.0,
        max_queue: int = 10_000,
        poll: float = 1.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        secret_key(secret)  # fail now, not at the first event
        self.url = url
        self._secret = secret
        self.timeout = timeout
        self.attempts = attempts
        self.backoff = backoff
        self.max_queue = max_queue
        self.poll = poll
        self._transport = transport
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, timeout=10, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- the caller's side

    def send(self, msg_id: str, event: dict[str, Any]) -> bool:
        """Queue one event for delivery; False when it was dropped (the outbox is full) or was
        already queued under the same id."""
        body = json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode()
        with self._lock:
            (pending,) = self._db.execute(
                "SELECT count(*) FROM deliveries WHERE state = 'pending'"
            ).fetchone()
            if pending >= self.max_queue:
                logger.error(
                    "webhook outbox full (%d undelivered events): dropped %s", pending, msg_id
                )
                return False
            added = self._db.execute(
                "INSERT OR IGNORE INTO deliveries (id, body, next_at) VALUES (?, ?, ?)",
                (msg_id, body, time.time()),
            ).rowcount
        self._wake.set()
        return bool(added)

    def accept(self, image: Image, principal: Principal | None) -> None:
        self.send(*accepted_event(image, principal))

    def reject(self, upload_id: str, error: ImageRejected, principal: Principal | None) -> None:
        self.send(*rejected_event(upload_id, error, principal))

    def delete(self, image_id: str, principal: Principal | None) -> None:
        self.send(*deleted_event(image_id, principal))

    def pending(self) -> int:
        """How many events wait to be delivered."""
        with self._lock:
            (count,) = self._db.execute(
                "SELECT count(*) FROM deliveries WHERE state = 'pending'"
            ).fetchone()
        return int(count)

    # --- the thread

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="s3drop-webhooks", daemon=True)
            self._thread.start()

    def close(self, *, wait: float = 0.0) -> None:
        """Stop the thread, after up to ``wait`` seconds for the outbox to empty (what is left
        is sent by the next sender on the same data folder)."""
        deadline = time.monotonic() + wait
        while wait and self.pending() and time.monotonic() < deadline:
            self._wake.set()
            time.sleep(0.05)
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=self.timeout + 5)
            self._thread = None
        with self._lock:
            self._db.close()

    def _run(self) -> None:
        import httpx

        with httpx.Client(timeout=self.timeout, transport=self._transport) as http:
            while not self._stop.is_set():
                try:
                    row = self._claim()
                except sqlite3.Error:
                    logger.exception("webhook outbox unreadable")
                    row = None
                if row is None:
                    self._wake.wait(self._idle())
                    self._wake.clear()
                    continue
                self._deliver(http, *row)

    def _claim(self) -> tuple[str, bytes, int] | None:
        now = time.time()
        with self._lock:
            if self._stop.is_set():
                return None
            row = self._db.execute(
                "UPDATE deliveries SET leased_until = ?, attempts = attempts + 1 WHERE id = ("
                "  SELECT id FROM deliveries WHERE state = 'pending' AND next_at <= ?"
                "  AND leased_until <= ? ORDER BY next_at LIMIT 1"
                ") RETURNING id, body, attempts",
                (now + self.timeout + 5, now, now),
            ).fetchone()
        return None if row is None else (str(row[0]), bytes(row[1]), int(row[2]))

    def _idle(self) -> float:
        """Seconds until the next row is due (at most ``poll``: other workers add rows too)."""
        with self._lock:
            if self._stop.is_set():
                return 0.0
            (due,) = self._db.execute(
                "SELECT min(max(next_at, leased_until)) FROM deliveries WHERE state = 'pending'"
            ).fetchone()
        if due is None:
            return self.poll
        return max(0.0, min(self.poll, float(due) - time.time()))

    def _deliver(self, http: httpx.Client, msg_id: str, body: bytes, attempt: int) -> None:
        import httpx

        headers = signed_headers(self._secret, msg_id, body)
        try:
            answer = http.post(self.url, content=body, headers=headers)
            status: int | None = answer.status_code
            why = f"answered {status}"
        except httpx.HTTPError as exc:
            status, why = None, f"{type(exc).__name__}: {exc}"
        if status is not None and 200 <= status < 300:
            self._finish(msg_id, "delivered")
            return
        retry = status is None or status >= 500 or status in (408, 429)
        if not retry or attempt >= self.attempts:
            reason = "giving up" if retry else "not retried"
            logger.error(
                "webhook %s to %s %s after %d attempt(s): %s",
                msg_id,
                self.url,
                reason,
                attempt,
                why,
            )
            self._finish(msg_id, "failed")
            return
        delay = min(MAX_BACKOFF, self.backoff * 2 ** (attempt - 1)) * random.uniform(1.0, 1.1)
        logger.warning(
            "webhook %s to %s %s; try %d in %.1f s", msg_id, self.url, why, attempt + 1, delay
        )
        with self._lock, contextlib.suppress(sqlite3.ProgrammingError):
            self._db.execute(
                "UPDATE deliveries SET next_at = ?, leased_until = 0 WHERE id = ?",
                (time.time() + delay, msg_id),
            )

    def _finish(self, msg_id: str, state: str) -> None:
        now = time.time()
        with self._lock, contextlib.suppress(sqlite3.ProgrammingError):
            self._db.execute(
                "UPDATE deliveries SET state = ?, done_at = ?, leased_until = 0 WHERE id = ?",
                (state, now, msg_id),
            )
            self._db.execute(
                "DELETE FROM deliveries WHERE state != 'pending' AND done_at < ?",
                (now - KEEP_DELIVERED,),
            )


def sender_from_settings(settings: Any) -> WebhookSender | None:
    """The sender the settings describe, or None when no webhook URL is set."""
    url: str | None = settings.webhook_url
    if not url:
        return None
    if settings.webhook_secret is None:
        raise ConfigurationError(
            "S3DROP_WEBHOOK_SECRET: a webhook needs a signing secret; make one with "
            "`s3drop webhook-secret`"
        )
    return WebhookSender(
        url,
        settings.webhook_secret.get_secret_value(),
        path=Path(settings.data_dir) / "webhooks.sqlite3",
        timeout=settings.webhook_timeout,
        attempts=settings.webhook_attempts,
        backoff=settings.webhook_backoff,
        max_queue=settings.webhook_queue,
    )
