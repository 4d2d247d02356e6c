"""What the local backend's receivers share: the bucket and region its uploads are signed for,
and reading what is left of a refused body."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import anyio

#: The bucket and region the local backend's forms and URLs are signed for.
BUCKET = "local"
REGION = "local"
#: After a refusal, read and discard at most this much more of the body, so the client gets to see
#: the answer rather than a reset connection; past it the connection is dropped.
_DRAIN_LIMIT = 16 * 1024 * 1024


async def drain(
    body: AsyncIterator[bytes], limit: int = _DRAIN_LIMIT, *, idle_timeout: float = 5.0
) -> None:
    """Read and drop what is left of a refused body, up to ``limit`` bytes, giving up when
    nothing arrives for ``idle_timeout`` seconds."""
    seen = 0
    chunks = aiter(body)
    with contextlib.suppress(Exception):
        while seen <= limit:
            with anyio.fail_after(idle_timeout):
                seen += len(await anext(chunks))
