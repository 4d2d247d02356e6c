"""The embedded default: objects as files on disk, S3's POST policy semantics enforced by s3drop.

The app itself receives the browser's ``multipart/form-data`` POST (:meth:`LocalStorage.receive_post`)
and checks it as S3 would: SigV4 signature over the policy (constant-time), expiry, every condition
(exact key, exact Content-Type), no field the policy does not cover, and the size range, counted
while the body streams, so a body is cut off the moment it passes the limit. Refusals carry S3's
statuses and codes (:class:`~s3drop.errors.PostRejected`).

Bytes stream into ``<data>/tmp`` and are renamed into ``<data>/objects`` only when the whole body
arrived and passed; a refused, aborted or half-sent upload leaves nothing behind. Each object's type
and metadata sit beside it in ``<data>/meta/<key>.json``, written before the object appears, removed
after it is gone: an object exists exactly when its file does.

The app that serves the receiver says where it is for the request in hand
(:func:`receiver_at`): under any mount prefix, on any host, its forms and reads point back at it.

Reads go through signed, expiring URLs (:meth:`presign_get`, checked by :meth:`check_get`): an
HMAC over key, expiry and disposition; any change is refused.
"""

from __future__ import annotations

import contextlib
import contextvars
import errno
import hashlib
import heapq
import hmac
import json
import os
import re
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote, quote_plus

import anyio.to_thread
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

from ..config import Settings
from ..errors import (
    InsufficientStorage,
    InvalidRequest,
    NotFound,
    PostRejected,
    StorageUnavailable,
)
from ..policy import (
    CheckedPost,
    Credentials,
    UploadForm,
    UploadRequest,
    inline_disposition,
    sign_post,
    verify_post,
)
from ..units import format_size
from .base import Download, ObjectInfo, Storage, put_form, stable_signing
from .sigv4 import PutSigner, put_headers

#: Where the app mounts the local backend's endpoints.
MOUNT = "/storage"
BUCKET = "local"
REGION = "local"
ACCESS_KEY = "s3drop-local"
#: Everything before the file's first byte (boundaries, part headers, field values) is at most
#: this long, as on S3 (``MaxPostPreDataLengthExceeded``, ``MaxPostPreDataLengthBytes`` 20480): a
#: form S3 takes, s3drop takes; the work before the file is bounded by it.
MAX_PRE_DATA = 20 * 1024
#: Parts of one form, the file's included. A signed form has about ten; S3 states no number, its
#: 20 KiB bounds it to a few hundred empty ones, and a few dozen is all a real form could use.
MAX_PARTS = 64
#: Header lines of one part, and their bytes (names and values): ``Content-Disposition`` with a
#: long file name and ``Content-Type`` are what a browser sends.
MAX_PART_HEADERS = 4
MAX_PART_HEADER_BYTES = 8 * 1024
#: RFC 2046 5.1.1: a boundary is 1 to 70 characters of this set, not ending with a space.
_BOUNDARY = re.compile(rb"[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]")
#: Bytes of the file held in memory before they are written out (in a thread).
_FLUSH_BYTES = 1024 * 1024
#: After a refusal, read and discard at most this much more of the body, so the client gets to see
#: the answer rather than a reset connection; past it the connection is dropped.
_DRAIN_LIMIT = 16 * 1024 * 1024
#: Keys any path may carry as they are (no segment starting with a dot, nothing to quote in a URL):
#: every key s3drop makes but an owner's index entry; anything else gets the full check.
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*(?:/[A-Za-z0-9_-][A-Za-z0-9_.-]*)*")
_MAX_KEY = 512


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
        _check_key(key)
        return (folder or self.objects).joinpath(*key.split("/"))

    def _meta_path(self, key: str) -> Path:
        return self._path(key, self.meta).with_name(self._path(key).name + ".json")

    # --- the contract --------------------------------------------------------------------------

    def presign_post(self, request: UploadRequest, *, expires_in: int) -> UploadForm:
        fields, expires_at = sign_post(
            request,
            bucket=BUCKET,
            credentials=self.credentials,
            region=REGION,
            expires_in=expires_in,
        )
        return UploadForm(
            id=request.id,
            key=request.key,
            url=self.base_url,
            fields=fields,
            content_type=request.content_type,
            max_bytes=request.max_bytes,
            expires_at=expires_at,
        )

    def presign_put(self, request: UploadRequest, *, expires_in: int) -> UploadForm:
        """A presigned PUT URL that :func:`~s3drop.storage.local_put.receive_put` checks."""
        if "://" not in self.base_url:
            raise InvalidRequest(
                "PUT uploads to the local backend need its absolute URL (S3DROP_PUBLIC_URL)"
            )
        headers = put_headers(request)
        url = PutSigner(self.base_url, region=REGION).url(
            request.key, headers=headers, credentials=self.credentials, expires_in=expires_in
        )
        return put_form(request, url=url, headers=headers, expires_in=expires_in)

    def presign_get(self, key: str, *, expires_in: int, filename: str | None = None) -> str:
        if len(key) <= _MAX_KEY and _PLAIN_KEY.fullmatch(key):
            path = key  # nothing in it to check further, or to quote
        else:
            _check_key(key)
            path = quote(key)
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
            raise PostRejected(
                "The request signature we calculated does not match the signature you provided.",
                code="SignatureDoesNotMatch",
            )
        try:
            expires = int(query.get("expires", ""))
        except ValueError:
            raise PostRejected("Expires is not a number.") from None
        if time.time() > expires:
            raise PostRejected("Request has expired")

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
        (:class:`~s3drop.errors.StorageUnavailable` or
        :class:`~s3drop.errors.InsufficientStorage`)."""
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

    # --- receiving the browser's POST ----------------------------------------------------------

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
        """What a signed GET URL reads: refuses a changed or expired URL (PostRejected, 403)
        and a missing object (404), as S3 does; the file, its verified type and safe headers."""
        self.check_get(key, query)
        info = self.head(key)
        if info is None:
            raise PostRejected("The specified key does not exist.", code="NoSuchKey", status=404)
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

    async def receive_post(
        self, content_type: str | None, body: AsyncIterator[bytes]
    ) -> ReceivedPost:
        """Take one browser POST: check the form as S3 does, stream the file, store it whole.

        Raises :class:`PostRejected` (S3's status and code) and stores nothing on any refusal,
        including a body that stops before its end, one that sends nothing for
        ``upload_idle_timeout`` seconds (``RequestTimeout``) and a full disk
        (``InsufficientStorage``, 507).
        """
        receiver = _PostReceiver(self, content_type)
        try:
            with _disk_full():
                await self._receive(receiver, aiter(body))
                # The last write, the renames and the metadata file: in a thread too.
                return await anyio.to_thread.run_sync(receiver.finish)
        except InsufficientStorage as exc:
            raise PostRejected(exc.message, code="InsufficientStorage", status=507) from exc
        except OSError as exc:
            raise PostRejected(
                f"We encountered an internal error storing the upload ({exc.strerror}). "
                "Please try again.",
                code="InternalError",
                status=500,
            ) from exc
        finally:
            if receiver.file is not None or receiver.tmp is not None:
                with anyio.CancelScope(shield=True):  # a client that went away still gets it
                    await anyio.to_thread.run_sync(receiver.cleanup)

    async def _receive(self, receiver: _PostReceiver, chunks: AsyncIterator[bytes]) -> None:
        """Feed the body to ``receiver`` until it is done or the body ends, writing the file as
        it comes; cut it when nothing arrives for ``idle_timeout`` seconds."""
        while True:
            try:
                with anyio.fail_after(self.idle_timeout):
                    chunk = await anext(chunks)
            except StopAsyncIteration:
                return
            except TimeoutError:
                raise PostRejected(
                    "Your socket connection to the server was not read from or written to "
                    f"within the timeout period ({self.idle_timeout:g} s).",
                    code="RequestTimeout",
                    status=400,
                ) from None
            receiver.feed(chunk)
            if receiver.done:
                return
            if len(receiver.pending) >= _FLUSH_BYTES or (
                receiver.tmp is not None and receiver.file is None  # the file began: open it
            ):
                # Write in a thread: the event loop goes on receiving the body meanwhile, so
                # network and disk overlap instead of taking turns.
                await anyio.to_thread.run_sync(receiver.flush)


@dataclass(frozen=True)
class ReceivedPost:
    """A browser POST that was stored: its key, the file's size, the status to answer, the ETag
    (the quoted MD5 of the file, as S3's)."""

    key: str
    size: int
    success_status: int
    etag: str = ""


@dataclass(frozen=True)
class ServedObject:
    """A file to send for a signed GET, with its type and headers."""

    path: Path
    content_type: str
    headers: dict[str, str]


class _PostReceiver:
    """The state of one streaming multipart POST.

    Linear in the body: each byte is looked at once, each part costs a fixed amount of work, and
    the work before the file is bounded by :data:`MAX_PRE_DATA`, :data:`MAX_PARTS`,
    :data:`MAX_PART_HEADERS` and :data:`MAX_PART_HEADER_BYTES`; past any of them the form is
    refused (400) without reading on.
    """

    def __init__(self, storage: LocalStorage, content_type: str | None) -> None:
        mime, options = parse_options_header(content_type or "")
        boundary = options.get(b"boundary")
        if mime != b"multipart/form-data" or not boundary:
            raise PostRejected(
                "POST requires multipart/form-data with a boundary.",
                code="InvalidArgument",
                status=400,
            )
        if not _BOUNDARY.fullmatch(boundary):
            raise _malformed("The multipart boundary is not 1 to 70 characters of RFC 2046's set.")
        self.storage = storage
        self.fields: dict[str, str] = {}
        self.checked: CheckedPost | None = None
        self.file: IO[bytes] | None = None
        self.tmp: Path | None = None
        self.size = 0
        self.pending = bytearray()
        self.md5 = hashlib.md5(usedforsecurity=False)  # the ETag, as S3's for a single part
        self.pre_bytes = 0
        self.ended = False
        self.file_done = False
        self.error: PostRejected | None = None
        self._names: set[str] = set()  # lower-cased, for the duplicate check
        self._parts = 0
        self._header_name = b""
        self._header_value = b""
        self._header_bytes = 0
        self._headers: dict[bytes, bytes] = {}
        self._name: str | None = None
        self._value = bytearray()
        self._in_file = False
        callbacks: Any = {
            "on_part_begin": self._part_begin,
            "on_header_field": self._header_field,
            "on_header_value": self._header_val,
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
            "on_end": self._end,
        }
        self.parser = MultipartParser(boundary, callbacks)

    @property
    def done(self) -> bool:
        return self.error is not None or self.ended or self.file_done

    def feed(self, chunk: bytes) -> None:
        try:
            if self.tmp is not None:  # in the file (opened by the first flush, in a thread)
                self.parser.write(chunk)
                return
            # Before the file: at most MAX_PRE_DATA bytes go to the parser; the file's headers
            # must have ended within them.
            room = MAX_PRE_DATA - self.pre_bytes
            self.pre_bytes += min(room, len(chunk))
            if len(chunk) <= room:
                self.parser.write(chunk)
                return
            self.parser.write(chunk[:room])
            if self.tmp is None and not self.ended:
                raise PostRejected(
                    "Your POST request fields preceding the upload file were too large "
                    f"(at most {MAX_PRE_DATA} bytes).",
                    code="MaxPostPreDataLengthExceeded",
                    status=400,
                )
            self.parser.write(chunk[room:])
        except PostRejected as exc:
            self.error = exc
        except FormParserError:
            self.error = _malformed(
                "The body of your POST request is not well-formed multipart/form-data."
            )

    def flush(self) -> None:
        """Write what the parser has taken of the file so far (opening the file first: this runs
        in a thread, never on the event loop)."""
        if self.tmp is None:
            return
        if self.file is None:
            self.file = self.tmp.open("wb")
        if self.pending:
            buffer, self.pending = self.pending, bytearray()
            self.md5.update(buffer)
            self.file.write(buffer)

    def finish(self) -> ReceivedPost:
        if self.error is not None:
            raise self.error
        if self.checked is None or self.tmp is None:
            raise PostRejected(
                "POST requires exactly one file upload per request.",
                code="InvalidArgument",
                status=400,
            )
        if not self.file_done:
            raise PostRejected(
                "The body ended before the whole file arrived.", code="IncompleteBody", status=400
            )
        if self.size < self.checked.min_bytes:
            raise PostRejected(
                "Your proposed upload is smaller than the minimum allowed size",
                code="EntityTooSmall",
                status=400,
            )
        self.flush()
        assert self.file is not None
        self.file.close()
        self.file = None
        path = self.storage._path(self.checked.key)
        self.storage._commit(
            self.tmp, self.checked.key, path, self.checked.content_type, self.checked.metadata
        )
        self.tmp = None
        return ReceivedPost(
            self.checked.key, self.size, self.checked.success_status, f'"{self.md5.hexdigest()}"'
        )

    def cleanup(self) -> None:
        if self.file is not None:
            with contextlib.suppress(OSError):  # a full disk fails the close's flush too
                self.file.close()
        if self.tmp is not None:
            self.tmp.unlink(missing_ok=True)

    # parser callbacks

    def _part_begin(self) -> None:
        self._parts += 1
        if self._parts > MAX_PARTS:
            raise _malformed(f"The form has more than {MAX_PARTS} parts.")
        self._headers = {}
        self._header_bytes = 0
        self._name = None
        self._value = bytearray()

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]
        self._count_header_bytes(end - start)

    def _header_val(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]
        self._count_header_bytes(end - start)

    def _count_header_bytes(self, count: int) -> None:
        self._header_bytes += count
        if self._header_bytes > MAX_PART_HEADER_BYTES:
            raise _malformed(f"A part's headers are longer than {MAX_PART_HEADER_BYTES} bytes.")

    def _header_end(self) -> None:
        self._headers[self._header_name.lower()] = self._header_value
        self._header_name = self._header_value = b""
        if len(self._headers) > MAX_PART_HEADERS:
            raise _malformed(f"A part has more than {MAX_PART_HEADERS} headers.")

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        name = options.get(b"name")
        if name is None:
            raise _malformed("A form part has no name.")
        self._name = name.decode("utf-8", "replace")
        if self._name.lower() != "file":
            return
        if self.checked is not None:
            raise PostRejected(
                "POST requires exactly one file upload per request.",
                code="InvalidArgument",
                status=400,
            )
        # The file comes last: every field has arrived; check the form before taking a byte.
        self.checked = verify_post(
            self.fields,
            bucket=BUCKET,
            credentials=self.storage.credentials,
            region=REGION,
        )
        self.storage._path(self.checked.key)
        self.tmp = self.storage._tmp_path()  # opened by the first flush, in a thread
        self._in_file = True

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._in_file:
            assert self.checked is not None
            self.size += end - start
            if self.size > self.checked.max_bytes:
                raise PostRejected(
                    "Your proposed upload exceeds the maximum allowed size",
                    code="EntityTooLarge",
                    status=400,
                )
            self.pending += data[start:end]
            return
        self._value += data[start:end]  # bounded by MAX_PRE_DATA (see feed)

    def _part_end(self) -> None:
        if self._in_file:
            self._in_file = False
            self.file_done = True
            return
        if self._name is not None:
            name = self._name.lower()
            if name in self._names:
                raise PostRejected(
                    f"The field {self._name!r} appears more than once.",
                    code="InvalidArgument",
                    status=400,
                )
            self._names.add(name)
            self.fields[self._name] = self._value.decode("utf-8", "replace")

    def _end(self) -> None:
        self.ended = True


def _remaining(query: dict[str, str]) -> int:
    """Seconds until a checked signed read URL expires."""
    return max(0, int(query["expires"]) - int(time.time()))


def _malformed(message: str) -> PostRejected:
    return PostRejected(message, code="MalformedPOSTRequest", status=400)


def _check_key(key: str) -> None:
    """Refuse a key that could leave the root, or that no S3 store would take."""
    if len(key) <= _MAX_KEY and _PLAIN_KEY.fullmatch(key):
        return
    if (
        not key
        or key.startswith("/")
        or any(part in {"", ".", ".."} for part in key.split("/"))
        or "\\" in key
        or "\0" in key
        or len(key) > _MAX_KEY
    ):
        raise InvalidRequest(f"invalid object key: {key!r}")


def _walk(
    base: str, key_prefix: str, rest: str, after: str | None, want: int
) -> Iterator[tuple[str, str]]:
    """``(key, path)`` of each file under the folder ``base`` (whose keys start with
    ``key_prefix``) whose name starts with ``rest`` and whose key, less ``key_prefix``, sorts
    after ``after``: lazily, in byte order of the whole key.

    A folder sorts among the files by its name plus ``/``, which is where its keys fall: ``a/x``
    comes after ``a-b`` and ``a.png`` ('-' and '.' sort before '/'), whatever the folder name's
    own place. Folders that hold only keys at or before ``after`` are never opened. When the
    caller wants a few keys (``want``) of a large folder, only the first few names are put in
    order; the rest only if it reads on.
    """
    names: list[str] = []
    try:
        with os.scandir(base) as entries:
            for entry in entries:
                name = entry.name
                if rest and not name.startswith(rest):
                    continue
                if entry.is_dir(follow_symlinks=False):
                    name += "/"
                    if after is not None and name <= after and not after.startswith(name):
                        continue
                elif after is not None and name <= after:
                    continue
                names.append(name)
    except (FileNotFoundError, NotADirectoryError):
        return
    if want * 4 < len(names):
        first = heapq.nsmallest(want, names)
        yield from _entries(base, key_prefix, after, want, first)
        names = sorted(name for name in names if name > first[-1])
    else:
        names.sort()
    yield from _entries(base, key_prefix, after, want, names)


def _entries(
    base: str, key_prefix: str, after: str | None, want: int, names: list[str]
) -> Iterator[tuple[str, str]]:
    """The files ``names`` (in order) of the folder ``base`` stand for, folders walked."""
    for name in names:
        if name[-1] == "/":
            inner = after[len(name) :] if after is not None and after.startswith(name) else None
            yield from _walk(os.path.join(base, name[:-1]), key_prefix + name, "", inner, want)
        else:
            yield key_prefix + name, os.path.join(base, name)


@contextlib.contextmanager
def _disk_full() -> Iterator[None]:
    """Translate a full disk or a spent quota into :class:`InsufficientStorage`."""
    try:
        yield
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise InsufficientStorage(f"no space left to store the upload: {exc}") from exc
        raise


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
