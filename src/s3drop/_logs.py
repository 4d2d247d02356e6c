"""Logging for ``s3drop serve``: text for a person at a terminal, JSON lines for a log pipeline.

:func:`log_config` builds the ``logging.config.dictConfig`` that uvicorn applies in every worker
process: uvicorn's own loggers (errors and the access log) and s3drop's (``s3drop``, including the
``s3drop.audit`` trail) go to standard error, as text (uvicorn's format, coloured on a terminal) or
as one JSON object per line::

    {"time": "2025-01-31T12:00:00.123Z", "level": "info", "logger": "uvicorn.access", "pid": 4242,
     "message": "127.0.0.1:50000 - \\"POST /api/uploads HTTP/1.1\\" 201", "client": "127.0.0.1:50000",
     "method": "POST", "path": "/api/uploads", "status": 201}

Signed URLs in the access log have their signatures and tokens replaced by ``REDACTED`` in both
formats (a GET of a local object carries its signature in the query string).

Nothing is formatted or written on the event loop: every handler is a :class:`BackgroundHandler`,
which puts the record, as it is, on one bounded queue per process; one thread
(:class:`logging.handlers.QueueListener`) filters, formats and writes it, in the order logged. So a
slow standard error (a pipe its reader drains slowly, or not at all) slows that thread, never a
request. When the queue is full (:data:`QUEUE_SIZE` lines waiting) a line is dropped rather than
waited for: counted in ``s3drop_log_lines_dropped_total`` and, at stop, in one last warning line.
At a clean stop (the app's shutdown, or the interpreter's exit) :func:`stop_background` writes every
line still queued, waiting up to :data:`STOP_WAIT` seconds for standard error; lines logged after
that are written at once, in the logging thread (or dropped, when standard error is still not
being read: the process can exit).
"""

from __future__ import annotations

import copy
import json
import logging
import queue
import re
import threading
import time
import weakref
from datetime import UTC, datetime
from logging.handlers import QueueHandler, QueueListener
from typing import Any, Literal, TextIO

LogFormat = Literal["text", "json"]

_SECRET_QUERY = re.compile(
    r"(?i)([?&](?:signature|x-amz-signature|x-amz-security-token|x-amz-credential|token"
    r"|access_token)=)[^&\s\"]*"
)
#: Attributes every LogRecord has; anything else was passed as ``extra=`` and is kept in JSON.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "color_message",  # uvicorn's coloured copy of the message
}


def redact(text: str) -> str:
    """``/storage/k?expires=1&signature=abc`` -> ``/storage/k?expires=1&signature=REDACTED``."""
    return _SECRET_QUERY.sub(r"\1REDACTED", text)


class RedactSecrets(logging.Filter):
    """Removes signatures and tokens from the access log's request path."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact(arg) if isinstance(arg, str) else arg for arg in record.args)
        return True


class JSONFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, pid, message, and the record's extras."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, tz=UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "pid": record.process,
        }
        message = record.getMessage()
        structured = _json_object(message)
        if structured is not None:  # s3drop.audit logs JSON objects: keep them as fields
            entry.update({key: value for key, value in structured.items() if key not in entry})
        else:
            entry["message"] = message
        args = record.args
        if record.name == "uvicorn.access" and isinstance(args, tuple) and len(args) == 5:
            client, method, path, version, status = args
            entry.update(
                client=client, method=method, path=path, http_version=version, status=status
            )
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in entry and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, separators=(",", ":"))


def _json_object(message: str) -> dict[str, Any] | None:
    if not message.startswith("{"):
        return None
    try:
        value = json.loads(message)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


#: Lines a process may have waiting to be written before new ones are dropped (about 3 MiB).
QUEUE_SIZE = 10_000
#: How long stopping waits for the queued lines to be written (standard error may be stuck).
STOP_WAIT = 10.0


class _Writer:
    """The process's queue of records and the thread that writes them, each to its handler's stream."""

    def __init__(self, size: int) -> None:
        self.queue: queue.Queue[logging.LogRecord | None] = queue.Queue(size)
        self.listener = _Listener(self.queue, _Route())
        self.dropped = 0
        self.running = True
        self.stuck = False  # stopped while standard error was not being read
        self.lock = threading.Lock()
        self.listener.start()

    def drop(self) -> None:
        with self.lock:
            self.dropped += 1
        from ._metrics import log_line_dropped

        log_line_dropped()

    def stop(self, timeout: float) -> None:
        if not self.running:
            return
        self.running = False  # from here on, handlers write in the caller's thread
        self.stuck = not self.listener.finish(timeout)
        if self.dropped and not self.stuck:
            logging.getLogger("s3drop").warning(
                "%d log lines were dropped: standard error was not read fast enough "
                "(%d lines may wait)",
                self.dropped,
                self.queue.maxsize,
            )


class _Route(logging.Handler):
    """The listener's one handler: hands each record to the stream handler it was logged for."""

    def handle(self, record: logging.LogRecord) -> bool:
        target: logging.Handler | None = record.__dict__.pop("_s3drop_target", None)
        return target is not None and bool(target.handle(record))

    def emit(self, record: logging.LogRecord) -> None:  # pragma: no cover (handle routes)
        raise NotImplementedError


class _Listener(QueueListener):
    """``QueueListener`` that can stop waiting at most ``timeout`` (a reader that never reads)."""

    def finish(self, timeout: float) -> bool:
        """Write what is queued and end the thread; False if that took longer than ``timeout``."""
        thread: threading.Thread | None = self._thread
        if thread is None:
            return True
        deadline = time.monotonic() + timeout
        try:
            self.queue.put(self._sentinel, timeout=timeout)  # type: ignore[attr-defined]
        except queue.Full:
            return False
        thread.join(max(0.0, deadline - time.monotonic()))
        if thread.is_alive():
            return False
        self._thread = None
        return True


_writer: _Writer | None = None
_writer_lock = threading.Lock()
_stop_lock = threading.Lock()
_handlers: weakref.WeakSet[BackgroundHandler] = weakref.WeakSet()


def _running_writer() -> _Writer:
    global _writer
    with _writer_lock:
        if _writer is None or not _writer.running:
            _writer = _Writer(QUEUE_SIZE)
        return _writer


def stop_background(timeout: float = STOP_WAIT) -> None:
    """Write every queued line (waiting up to ``timeout`` s); later lines are written at once
    (dropped if the writer thread is still stuck on a standard error nobody reads).

    Called by the app's shutdown: a worker process of ``s3drop serve --workers N`` ends with the
    SIGTERM it was stopped by, which runs no exit handlers. A no-op when nothing logs in the
    background."""
    writer = _writer
    if writer is None or not writer.running:
        return
    # Handlers wait (their lock) while the queue drains: a line logged meanwhile comes after it.
    with _stop_lock:
        handlers = list(_handlers)
        for handler in handlers:
            handler.acquire()
        try:
            writer.stop(timeout)
        finally:
            for handler in handlers:
                handler.release()


class BackgroundHandler(QueueHandler):
    """A ``StreamHandler`` whose filtering, formatting and writing happen in the writer thread.

    For ``logging.config.dictConfig`` (``"()": "s3drop._logs.BackgroundHandler"``): its formatter
    and filters are the stream handler's. The record is queued unformatted (the arguments of a
    message are formatted when written: log values, not objects changed afterwards).
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        self.writer = _running_writer()
        super().__init__(self.writer.queue)
        self.target = logging.StreamHandler(stream)
        _handlers.add(self)

    def setFormatter(self, fmt: logging.Formatter | None) -> None:
        self.target.setFormatter(fmt)

    def addFilter(self, filter: Any) -> None:
        self.target.addFilter(filter)

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        if "_s3drop_target" in record.__dict__:  # queued for another handler too (propagation)
            record = copy.copy(record)
        record._s3drop_target = self.target
        return record

    def emit(self, record: logging.LogRecord) -> None:
        writer = self.writer
        if not writer.running:  # stopped: write here (shutdown; nothing waits on this thread)
            if writer.stuck:  # unless the writer thread is still stuck writing: never wait
                writer.drop()
            else:
                self.target.handle(record)
            return
        try:
            writer.queue.put_nowait(self.prepare(record))
        except queue.Full:  # never wait: the caller may be the event loop
            writer.drop()

    def close(self) -> None:
        stop_background()
        self.target.close()
        super().close()


def log_config(log_format: LogFormat = "text", *, level: str = "INFO") -> dict[str, Any]:
    """The dictConfig for uvicorn and s3drop in ``log_format``."""
    if log_format == "json":
        formatters: dict[str, Any] = {
            "default": {"()": "s3drop._logs.JSONFormatter"},
            "access": {"()": "s3drop._logs.JSONFormatter"},
        }
    else:
        formatters = {
            "default": {
                "()": "uvicorn.logging.DefaultFormatter",
                "fmt": "%(levelprefix)s %(message)s",
                "use_colors": None,
            },
            "access": {
                "()": "uvicorn.logging.AccessFormatter",
                "fmt": '%(levelprefix)s %(client_addr)s - "%(request_line)s" %(status_code)s',
                "use_colors": None,
            },
        }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"redact": {"()": "s3drop._logs.RedactSecrets"}},
        "formatters": formatters,
        "handlers": {
            "default": {
                "formatter": "default",
                "()": "s3drop._logs.BackgroundHandler",
                "stream": "ext://sys.stderr",
            },
            "access": {
                "formatter": "access",
                "()": "s3drop._logs.BackgroundHandler",
                "stream": "ext://sys.stderr",
                "filters": ["redact"],
            },
        },
        "loggers": {
            "uvicorn": {"handlers": ["default"], "level": level, "propagate": False},
            "uvicorn.error": {"level": level},
            "uvicorn.access": {"handlers": ["access"], "level": level, "propagate": False},
            "s3drop": {"handlers": ["default"], "level": level, "propagate": False},
        },
    }
