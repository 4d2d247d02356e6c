"""The webhook outbox: events written to a SQLite file in the data folder, posted to
``S3DROP_WEBHOOK_URL`` by a background thread.

Why a file and not a queue in memory: the event is written in the request that promoted the image
(well under a millisecond), the answer goes back at once, and the event outlives a slow or absent
receiver, a restart and a crash of the process; several workers on one data folder share the file
and never post one row twice (a lease), and one event id is queued once (the table's key), so a
second worker that announces the same image adds nothing.

Delivery: 5xx answers, 408/429, timeouts and connection errors are retried with exponential
backoff (doubling from ``S3DROP_WEBHOOK_BACKOFF`` seconds, at most :data:`MAX_BACKOFF` apart,
``S3DROP_WEBHOOK_ATTEMPTS`` tries); any other 4xx is final. The outbox holds at most
``S3DROP_WEBHOOK_QUEUE`` undelivered events; beyond that new events are logged and dropped, the
image itself is unaffected. Every retry carries the same ``webhook-id`` and a fresh signature.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import random
import sqlite3
import threading
import time
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._auth import Principal
from ._config import Settings
from ._errors import ConfigurationError, ImageRejected
from ._gallery import Image
from .webhooks import accepted_event, deleted_event, rejected_event, secret_key, signed_headers

if TYPE_CHECKING:
    import httpx  # imported when the thread starts: `import s3drop` stays fast

logger = logging.getLogger("s3drop.webhooks")

#: The longest wait between two tries of one delivery.
MAX_BACKOFF = 3600.0

#: Delivered events are remembered this long, so the same event enqueued again is not re-sent.
KEEP_DELIVERED = 86400.0

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

    :meth:`send` only writes a row (0.04 ms median, no fsync) and wakes the thread; the thread
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
        self._path = path
        self._open()
        self._db.executescript(_SCHEMA)
        self._thread: threading.Thread | None = None
        # A server that forks its workers after building the library (gunicorn --preload): each
        # child gets its own connection and thread; the outbox file is what they share.
        # The thread's SQLite calls are all under the lock: holding it across the fork means the
        # child never inherits SQLite halfway through a call (its mutexes held by a thread that
        # does not exist there), which hung one fork in six before.
        me = weakref.ref(self)
        os.register_at_fork(
            before=functools.partial(_before_fork, me),
            after_in_parent=functools.partial(_after_fork_in_parent, me),
            after_in_child=functools.partial(_after_fork, me),
        )

    def _open(self) -> None:
        self._db = sqlite3.connect(
            self._path, timeout=10, check_same_thread=False, isolation_level=None
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        # An event survives a crash of the process (WAL); only an OS crash or power cut may lose
        # the last few, and queueing an event costs no fsync (median 0.04 ms, not 6 ms, measured).
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()

    def _forked(self) -> None:
        running = self._thread is not None and not self._stop.is_set()
        self._open()
        self._thread = None
        if running:
            self.start()

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
            # The client is made here, not in the thread: a fork while the thread was importing
            # httpx would leave the child half-imported modules.
            import httpx

            http = httpx.Client(timeout=self.timeout, transport=self._transport)
            self._thread = threading.Thread(
                target=self._run, args=(http,), name="s3drop-webhooks", daemon=True
            )
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
            # Not for a delivery in flight: its lease runs out and the next start sends it again
            # (under the same webhook-id, which receivers deduplicate on).
            self._thread.join(timeout=1.0)
            self._thread = None
        with self._lock:
            self._db.close()

    def _run(self, http: httpx.Client) -> None:
        with http:
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


def _before_fork(ref: weakref.ref[WebhookSender]) -> None:
    sender = ref()
    if sender is not None:
        sender._lock.acquire()


def _after_fork_in_parent(ref: weakref.ref[WebhookSender]) -> None:
    sender = ref()
    if sender is not None:
        sender._lock.release()


def _after_fork(ref: weakref.ref[WebhookSender]) -> None:
    sender = ref()
    if sender is not None:
        sender._forked()


def sender_from_settings(settings: Settings) -> WebhookSender | None:
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
