"""The local backend's receiver for presigned PUTs: checked as S3 checks them, stored whole or not.

:meth:`LocalStorage.presign_put <s3drop.storage.local.LocalStorage.presign_put>` signs a PUT URL
with :class:`~s3drop.storage._sigv4.PutSigner`; :func:`receive_put` takes the request: the SigV4
query-string signature over method, path (the key), query and the signed headers (``host``,
``content-length``, ``content-type``, ``x-amz-meta-*``, ``x-amz-content-sha256``,
``x-amz-checksum-sha256``), the expiry, no unsigned ``x-amz-*`` header, then the body streams into
``<data>/tmp`` and is renamed into place only when exactly ``Content-Length`` bytes arrived (and
their SHA-256 is the signed one), none cut off by ``upload_idle_timeout`` seconds of silence
(``RequestTimeout``); a full disk answers 507 ``InsufficientStorage``. Any other size, type or key breaks the signature, so storage takes what was signed and nothing
else, as with a POST policy. Refusals carry S3's statuses and codes; nothing is stored for any.
"""

from __future__ import annotations

import base64
import functools
import hashlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import anyio.to_thread

from ..._errors import S3Error
from .._verify import verify_put
from . import LocalStorage
from ._receive import FLUSH_BYTES, REGION, disk_errors, stream_into

#: The largest single PUT S3 takes.
_MAX_PUT = 5 * 1024**3


@dataclass(frozen=True)
class ReceivedPut:
    """A PUT that was stored: its key, size and ETag (the quoted MD5 of the body, as S3's)."""

    key: str
    size: int
    etag: str


async def receive_put(
    storage: LocalStorage,
    *,
    key: str,
    path: str,
    query: Mapping[str, str],
    headers: Mapping[str, str],
    body: AsyncIterator[bytes],
) -> ReceivedPut:
    """Check one presigned PUT of ``key`` (the request's decoded ``path``, ``query`` and
    lower-case ``headers``) and store its body, or raise :class:`S3Error`."""
    signed = verify_put(
        path=path, query=query, headers=headers, credentials=storage.credentials, region=REGION
    )
    target = storage._path(key)
    length = headers.get("content-length")
    if length is None or not length.isdigit():
        raise S3Error(
            "You must provide the Content-Length HTTP header.",
            code="MissingContentLength",
            status=411,
        )
    size = int(length)
    if size > _MAX_PUT:
        raise S3Error(
            "Your proposed upload exceeds the maximum allowed size",
            code="EntityTooLarge",
            status=400,
        )
    sink = _PutBody(storage._tmp_path(), size)
    try:
        with disk_errors():  # the disk in threads, never on the event loop
            try:
                await stream_into(sink, body, idle_timeout=storage.idle_timeout)
                if sink.received == size:
                    await anyio.to_thread.run_sync(sink.flush)
            finally:
                await anyio.to_thread.run_sync(sink.close)
        if sink.received != size:
            raise S3Error(
                "You did not provide the number of bytes specified by the Content-Length "
                "HTTP header.",
                code="IncompleteBody",
                status=400,
            )
        content_sha256 = signed.get("x-amz-content-sha256", "UNSIGNED-PAYLOAD")
        if content_sha256 not in {"UNSIGNED-PAYLOAD", sink.sha256.hexdigest()}:
            raise S3Error(
                "The provided 'x-amz-content-sha256' header does not match what was computed.",
                code="XAmzContentSHA256Mismatch",
                status=400,
            )
        checksum = signed.get("x-amz-checksum-sha256")
        if checksum is not None and checksum != base64.b64encode(sink.sha256.digest()).decode():
            raise S3Error(
                "The SHA256 you specified did not match the calculated checksum.",
                code="BadDigest",
                status=400,
            )
        metadata = {
            name[len("x-amz-meta-") :]: value
            for name, value in signed.items()
            if name.startswith("x-amz-meta-")
        }
        content_type = signed.get("content-type", "binary/octet-stream")
        with disk_errors():
            await anyio.to_thread.run_sync(
                storage._commit, sink.tmp, key, target, content_type, metadata
            )
    finally:
        await anyio.to_thread.run_sync(functools.partial(sink.tmp.unlink, missing_ok=True))
    return ReceivedPut(key=key, size=size, etag=f'"{sink.md5.hexdigest()}"')


class _PutBody:
    """The body of one PUT, on its way to ``tmp``: counted, hashed (MD5 for the ETag, SHA-256 for
    the signed digests) and written a MiB at a time (the file opened by the first write)."""

    def __init__(self, tmp: Path, size: int) -> None:
        self.tmp = tmp
        self.size = size
        self.received = 0
        self.pending = bytearray()
        self.file: IO[bytes] | None = None
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.sha256 = hashlib.sha256()

    @property
    def done(self) -> bool:
        return self.received > self.size  # more than Content-Length: refused below

    @property
    def wants_flush(self) -> bool:
        return len(self.pending) >= FLUSH_BYTES

    def feed(self, chunk: bytes) -> None:
        self.received += len(chunk)
        self.pending += chunk

    def flush(self) -> None:
        if self.file is None:
            self.file = self.tmp.open("wb")
        data, self.pending = bytes(self.pending), bytearray()
        self.md5.update(data)
        self.sha256.update(data)
        self.file.write(data)

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
