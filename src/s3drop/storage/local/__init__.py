"""The embedded default: objects as files on disk, S3's POST policy semantics enforced by s3drop.

The app itself receives the browser's ``multipart/form-data`` POST (:meth:`LocalStorage.receive_post`)
and checks it as S3 would: SigV4 signature over the policy (constant-time), expiry, every condition
(exact key, exact Content-Type), no field the policy does not cover, and the size range, counted
while the body streams, so a body is cut off the moment it passes the limit. Refusals carry S3's
statuses and codes (:class:`~s3drop._errors.S3Error`).

Bytes stream into ``<data>/tmp`` and are renamed into ``<data>/objects`` only when the whole body
arrived and passed; a refused, aborted or half-sent upload leaves nothing behind. Each object's type
and metadata sit beside it in ``<data>/meta/<key>.json``, written before the object appears, removed
after it is gone: an object exists exactly when its file does.

The app that serves the receiver says where it is for the request in hand
(:func:`receiver_at`): under any mount prefix, on any host, its forms and reads point back at it.

Reads go through signed, expiring URLs (:meth:`presign_get`, checked by :meth:`check_get`): an
HMAC over key, expiry and disposition; any change is refused.

The package: this module is the store (the contract over files); :mod:`._files` turns keys into
paths and lists folders in S3's key order; :mod:`._post` receives the browser's POST and
:mod:`._put` a presigned PUT, over what :mod:`._receive` gives both.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import hmac
import json
import os
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING
from urllib.parse import quote, quote_plus

from ..._config import Settings
from ..._errors import (
    InsufficientStorage,
    InvalidRequest,
    NotFound,
    S3Error,
    StorageUnavailable,
)
from ..._policy import Credentials, inline_disposition
from ..._units import format_size
from .._sigv4 import PutSigner
from ..base import PLAIN_KEY, Download, ObjectInfo, Storage, check_key, stable_signing
from ._files import _disk_full, _walk
from ._post import MAX_PARTS, MAX_PRE_DATA, ReceivedPost, receive_post
from ._receive import BUCKET, REGION, drain

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

__all__ = [
    "ACCESS_KEY",
    "BUCKET",
    "MAX_PARTS",
    "MAX_PRE_DATA",
    "MOUNT",
    "REGION",
    "LocalStorage",
    "ReceivedPost",
    "ServedObject",
    "drain",
    "receiver_at",
]

#: Where the app mounts the local backend's endpoints.
MOUNT = "/storage"
ACCESS_KEY = "s3drop-local"


_RECEIVER: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "s3drop_local_receiver", default=None
)


@contextlib.contextmanager
def receiver_at(url: str) -> Iterator[None]:
    """Within this block, the local backend's URLs (upload forms, signed reads) point at ``url``:
    where the app that serves the receiver is reachable for the request in hand, for example
    ``https://example.com/uploads/storage``. The web layer (and a framework adapter) sets it per
    request; threads started from the block inherit it."""
    token = _RECEIVER.set(url.rstrip("/"))
    try:
        yield
    finally:
        _RECEIVER.reset(token)


class LocalStorage(Storage):
    name = "local"
    bucket = BUCKET
    region = REGION
    #: Keys become paths: shorter than S3's, so that every one fits the file system's limits.
    max_key_bytes = 512

    def __init__(self, settings: Settings) -> None:
        self.root = settings.data_dir.resolve()
        self.objects = self.root / "objects"
        self.meta = self.root / "meta"
        self.tmp = self.root / "tmp"
        self.idle_timeout = settings.upload_idle_timeout
        self.min_free_bytes = settings.min_free_bytes
        for folder in (self.objects, self.meta, self.tmp):
            folder.mkdir(parents=True, exist_ok=True)
        self.credentials = Credentials(ACCESS_KEY, settings.local_secret().decode())
        get_key = hmac.new(
            self.credentials.secret_key.encode(), b"s3drop-local-get", hashlib.sha256
        ).digest()
        self._get_mac = hmac.new(get_key, digestmod=hashlib.sha256)  # copied for each URL
        self._base_url = (settings.public_url or "") + MOUNT

    @property
    def base_url(self) -> str:
        """Where the receiver is: the request's (:func:`receiver_at`), else ``S3DROP_PUBLIC_URL``'s
        ``/storage``, else the root-relative ``/storage``."""
        return _RECEIVER.get() or self._base_url

    # --- paths ---------------------------------------------------------------------------------

    def _path(self, key: str, folder: Path | None = None) -> Path:
        check_key(key, max_bytes=self.max_key_bytes)
        return (folder or self.objects).joinpath(*key.split("/"))

    def _meta_path(self, key: str) -> Path:
        return self._path(key, self.meta).with_name(self._path(key).name + ".json")

    # --- the contract --------------------------------------------------------------------------

    def _signing_credentials(self) -> Credentials:
        return self.credentials

    def _form_url(self) -> str:
        return self.base_url

    def _put_signer(self) -> PutSigner:
        """Signs the URLs :func:`~s3drop.storage.local._put.receive_put` checks."""
        if "://" not in self.base_url:
            raise InvalidRequest(
                "PUT uploads to the local backend need its absolute URL (S3DROP_PUBLIC_URL)"
            )
        return PutSigner(self.base_url, region=REGION)

    def _presign_get(self, key: str, *, expires_in: int, filename: str | None) -> str:
        path = key if PLAIN_KEY.fullmatch(key) else quote(key)  # nothing to quote, or quoted
        signed_at, lifetime = stable_signing(expires_in)
        expires = str(signed_at + lifetime)
        signature = self._get_signature(key, expires, filename or "")
        named = f"&filename={quote_plus(filename)}" if filename else ""
        return f"{self.base_url}/{path}?expires={expires}{named}&signature={signature}"

    def _get_signature(self, key: str, expires: str, filename: str) -> str:
        mac = self._get_mac.copy()
        mac.update(f"GET\n{key}\n{expires}\n{filename}".encode())
        return mac.hexdigest()

    def check_get(self, key: str, query: dict[str, str]) -> None:
        """Refuse a read whose URL was changed or has expired (403, as S3 does)."""
        given = query.get("signature", "")
        expected = self._get_signature(key, query.get("expires", ""), query.get("filename", ""))
        if not hmac.compare_digest(given.encode(), expected.encode()):
            raise S3Error(
                "The request signature we calculated does not match the signature you provided.",
                code="SignatureDoesNotMatch",
            )
        try:
            expires = int(query.get("expires", ""))
        except ValueError:
            raise S3Error("Expires is not a number.") from None
        if time.time() > expires:
            raise S3Error("Request has expired")

    def head(self, key: str) -> ObjectInfo | None:
        path = self._path(key)
        try:
            stat = path.stat()
            meta = json.loads(self._meta_path(key).read_text())
        except FileNotFoundError:
            return None
        return ObjectInfo(
            key=key,
            size=stat.st_size,
            content_type=meta.get("content_type", "binary/octet-stream"),
            last_modified=datetime.fromtimestamp(stat.st_mtime, tz=UTC),
            metadata=meta.get("metadata", {}),
        )

    def open(self, key: str) -> IO[bytes]:
        try:
            return self._path(key).open("rb")
        except FileNotFoundError:
            raise NotFound(f"no object {key!r}") from None

    def get(self, key: str) -> Download | None:
        info = self.head(key)
        try:
            file = self._path(key).open("rb") if info is not None else None
        except FileNotFoundError:
            return None
        return Download(info, file.read, file.close) if info and file else None

    def read(self, key: str, *, start: int = 0, end: int | None = None) -> bytes:
        with self.open(key) as file:
            file.seek(start)
            return file.read(-1 if end is None else max(0, end - start))

    def put(self, key: str, data: bytes, *, content_type: str, metadata: dict[str, str]) -> None:
        path = self._path(key)
        tmp = self._tmp_path()
        try:
            with _disk_full():
                tmp.write_bytes(data)
            self._commit(tmp, key, path, content_type, metadata)
        finally:
            tmp.unlink(missing_ok=True)

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)
        self._meta_path(key).unlink(missing_ok=True)

    def list_objects(
        self, prefix: str, *, start_after: str | None = None, limit: int = 1000
    ) -> list[ObjectInfo]:
        """As S3 lists: keys in byte order, sizes and times, no type or metadata (:meth:`head`
        has those). One pass over the folders the prefix reaches, stopping at ``limit``."""
        folder, _, rest = prefix.rpartition("/")
        key_prefix = folder + "/" if folder else ""
        after: str | None = None
        if start_after is not None:
            if start_after.startswith(key_prefix):
                after = start_after[len(key_prefix) :]
            elif start_after > key_prefix:
                return []  # every key under the prefix sorts before start_after
        base = str(self._path(folder)) if folder else str(self.objects)
        found: list[ObjectInfo] = []
        for key, path in _walk(base, key_prefix, rest, after, limit):
            try:
                stat = os.stat(path)
            except FileNotFoundError:  # deleted since it was listed
                continue
            modified = datetime.fromtimestamp(stat.st_mtime, tz=UTC)
            found.append(ObjectInfo(key, stat.st_size, "", modified))
            if len(found) >= limit:
                break
        return found

    def check(self) -> None:
        """Raise unless the data folder is writable and has ``min_free_bytes`` free
        (:class:`~s3drop._errors.StorageUnavailable` or
        :class:`~s3drop._errors.InsufficientStorage`)."""
        try:
            probe = self.tmp / f".probe-{secrets.token_hex(4)}"
            probe.write_bytes(b"")
            probe.unlink()
            stat = os.statvfs(self.root)
        except OSError as exc:
            raise StorageUnavailable(f"the data folder {self.root} is not writable: {exc}") from exc
        free = stat.f_bavail * stat.f_frsize
        if free < self.min_free_bytes:
            raise InsufficientStorage(
                f"the data folder {self.root} has {format_size(free)} free, less than "
                f"S3DROP_MIN_FREE_BYTES ({format_size(self.min_free_bytes)})"
            )

    def sweep_partial(self, older_than: float) -> int:
        """Remove what a crash left half-written: upload and write temp files (``tmp/``) and
        metadata temp files (``meta/**/.*``) not touched for ``older_than`` seconds; how many.

        A live upload writes its temp file at least every MiB and is cut after
        ``upload_idle_timeout`` s of silence, so a file this old belongs to no one.
        """
        cutoff = time.time() - older_than
        removed = 0
        for folder, only_hidden in ((self.tmp, False), (self.meta, True)):
            for dirpath, _, names in os.walk(folder):
                for name in names:
                    if only_hidden and not name.startswith("."):
                        continue
                    path = os.path.join(dirpath, name)
                    with contextlib.suppress(FileNotFoundError):
                        if os.stat(path).st_mtime < cutoff:
                            os.unlink(path)
                            removed += 1
        return removed

    # --- writing --------------------------------------------------------------------------------

    def _tmp_path(self) -> Path:
        return self.tmp / f"{secrets.token_hex(12)}.part"

    def _commit(
        self, tmp: Path, key: str, path: Path, content_type: str, metadata: dict[str, str]
    ) -> None:
        meta_path = self._meta_path(key)
        meta_tmp = meta_path.with_name(f".{meta_path.name}.{secrets.token_hex(4)}")
        try:
            with _disk_full():
                meta_path.parent.mkdir(parents=True, exist_ok=True)
                path.parent.mkdir(parents=True, exist_ok=True)
                meta_tmp.write_text(
                    json.dumps({"content_type": content_type, "metadata": metadata})
                )
                os.replace(meta_tmp, meta_path)
                os.replace(tmp, path)
        finally:
            meta_tmp.unlink(missing_ok=True)

    def serve(self, key: str, query: dict[str, str]) -> ServedObject:
        """What a signed GET URL reads: refuses a changed or expired URL (S3Error, 403)
        and a missing object (404), as S3 does; the file, its verified type and safe headers."""
        self.check_get(key, query)
        info = self.head(key)
        if info is None:
            raise S3Error("The specified key does not exist.", code="NoSuchKey", status=404)
        return ServedObject(
            path=self._path(key),
            content_type=info.content_type,
            headers={
                "X-Content-Type-Options": "nosniff",
                "Content-Disposition": inline_disposition(query.get("filename")),
                # The URL never changes what it reads and works until it expires: the browser may
                # keep the bytes that long without asking again (FileResponse adds the ETag).
                "Cache-Control": f"private, max-age={_remaining(query)}, immutable",
                "Content-Security-Policy": "default-src 'none'; sandbox",
            },
        )

    # --- the HTTP half ---------------------------------------------------------------------------

    #: Nothing but :meth:`~s3drop._uploads.S3Drop.sweep` removes abandoned uploads from a folder.
    needs_sweeping = True

    def http_routes(self) -> list[BaseRoute]:
        """The receiver and signed reads (:mod:`._serving`), at :data:`MOUNT`."""
        from ._serving import http_routes

        return http_routes(self)

    def served_at(self, base_url: str) -> AbstractContextManager[None]:
        """Forms and read URLs point at :data:`MOUNT` under ``base_url`` (:func:`receiver_at`)."""
        return receiver_at(base_url.rstrip("/") + MOUNT)

    async def receive_post(
        self, content_type: str | None, body: AsyncIterator[bytes]
    ) -> ReceivedPost:
        """Take one browser POST (:func:`~s3drop.storage.local._post.receive_post`): check the
        form as S3 does, stream the file, store it whole; raise :class:`S3Error` and store
        nothing on any refusal."""
        return await receive_post(self, content_type, body)


@dataclass(frozen=True)
class ServedObject:
    """A file to send for a signed GET, with its type and headers."""

    path: Path
    content_type: str
    headers: dict[str, str]


def _remaining(query: dict[str, str]) -> int:
    """Seconds until a checked signed read URL expires."""
    return max(0, int(query["expires"]) - int(time.time()))
