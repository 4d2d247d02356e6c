"""The audit trail: one structured log line per sign, accept, reject and delete.

Lines go to the ``s3drop.audit`` logger as JSON objects (who, what key, size, reason), so any log
pipeline can index them; the JSON is made when the line is written (under ``s3drop serve``, in the
logging thread, not on the event loop: see :mod:`s3drop._logs`). Nothing secret is ever passed here: no tokens, no passwords, no policy or
signature, no presigned URL.
"""

from __future__ import annotations

import json
import logging
import time

logger = logging.getLogger("s3drop.audit")


def record(event: str, *, who: str, key: str | None = None, **facts: object) -> None:
    """Log one event: ``sign``, ``accept``, ``reject``, ``delete`` or ``refuse``."""
    if not logger.isEnabledFor(logging.INFO):
        return
    line = {"event": event, "who": who, "key": key, "time": round(time.time(), 3), **facts}
    logger.info("%s", _JSONLine(line))


class _JSONLine:
    """A message argument that becomes compact JSON when the line is formatted."""

    __slots__ = ("fields",)

    def __init__(self, fields: dict[str, object]) -> None:
        self.fields = fields

    def __str__(self) -> str:
        return json.dumps(self.fields, separators=(",", ":"), default=str)
