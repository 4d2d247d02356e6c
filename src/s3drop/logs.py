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
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime
from typing import Any, Literal

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


def log_config(log_format: LogFormat = "text", *, level: str = "INFO") -> dict[str, Any]:
    """The dictConfig for uvicorn and s3drop in ``log_format``."""
    if log_format == "json":
        formatters: dict[str, Any] = {
            "default": {"()": "s3drop.logs.JSONFormatter"},
            "access": {"()": "s3drop.logs.JSONFormatter"},
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
        "filters": {"redact": {"()": "s3drop.logs.RedactSecrets"}},
        "formatters": formatters,
        "handlers": {
            "default": {
                "formatter": "default",
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
            },
            "access": {
                "formatter": "access",
                "class": "logging.StreamHandler",
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
