"""The local backend's receiver for presigned PUTs: checked as S3 checks them, stored whole or not.

:meth:`LocalStorage.presign_put <s3drop.storage.local.LocalStorage.presign_put>` signs a PUT URL
with :class:`~s3drop.storage.sigv4.PutSigner`; :func:`receive_put` takes the request: the SigV4
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
import contextlib
import errno
import functools
import hashlib
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from typing import IO

import anyio.to_thread

from ...errors import S3Error
from ..verify import verify_put
from . import LocalStorage
from .receive import REGION

#: Bytes held in memory before they are written out (in a thread).
_FLUSH_BYTES = 1024 * 1024
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
    tmp = storage._tmp_path()
    md5 = hashlib.md5(usedforsecurity=False)
    sha256 = hashlib.sha256()
    received = 0
    pending = bytearray()

    def flush(file: IO[bytes], data: bytes) -> None:
        md5.update(data)
        sha256.update(data)
        file.write(data)

    chunks = aiter(body)
    try:
        with _disk_errors():  # the disk in threads, never on the event loop
            file = await anyio.to_thread.run_sync(tmp.open, "wb")
        try:
            while received <= size:
                try:
                    with anyio.fail_after(storage.idle_timeout):
                        chunk = await anext(chunks)
                except StopAsyncIteration:
                    break
                except TimeoutError:
                    raise S3Error(
                        "Your socket connection to the server was not read from or written to "
                        f"within the timeout period ({storage.idle_timeout:g} s).",
                        code="RequestTimeout",
                        status=400,
                    ) from None
                received += len(chunk)
                pending += chunk
                if len(pending) >= _FLUSH_BYTES:
                    data, pending = bytes(pending), bytearray()
                    with _disk_errors():
                        await anyio.to_thread.run_sync(flush, file, data)
            if received == size:
                with _disk_errors():
                    await anyio.to_thread.run_sync(flush, file, bytes(pending))
        finally:
            with _disk_errors():
                await anyio.to_thread.run_sync(file.close)
        if received != size:
            raise S3Error(
                "You did not provide the number of bytes specified by the Content-Length "
                "HTTP header.",
                code="IncompleteBody",
                status=400,
            )
        content_sha256 = signed.get("x-amz-content-sha256", "UNSIGNED-PAYLOAD")
        if content_sha256 not in {"UNSIGNED-PAYLOAD", sha256.hexdigest()}:
            raise S3Error(
                "The provided 'x-amz-content-sha256' header does not match what was computed.",
                code="XAmzContentSHA256Mismatch",
                status=400,
            )
        checksum = signed.get("x-amz-checksum-sha256")
        if checksum is not None and checksum != base64.b64encode(sha256.digest()).decode():
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
        with _disk_errors():
            await anyio.to_thread.run_sync(
                storage._commit, tmp, key, target, content_type, metadata
            )
    finally:
        await anyio.to_thread.run_sync(functools.partial(tmp.unlink, missing_ok=True))
    return ReceivedPut(key=key, size=size, etag=f'"{md5.hexdigest()}"')


@contextlib.contextmanager
def _disk_errors() -> Iterator[None]:
    """The disk's failures in S3's words, as the POST receiver answers them: a full disk or a
    spent quota 507 ``InsufficientStorage``, any other 500 ``InternalError``."""
    try:
        yield
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise S3Error(
                f"no space left to store the upload: {exc.strerror}",
                code="InsufficientStorage",
                status=507,
            ) from exc
        raise S3Error(
            f"We encountered an internal error storing the upload ({exc.strerror}). "
            "Please try again.",
            code="InternalError",
            status=500,
        ) from exc
