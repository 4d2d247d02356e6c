"""The local backend's receiver for the browser's POST: the form checked as S3 checks it, the file
streamed to disk and stored whole, or nothing stored.

:func:`receive_post` parses the ``multipart/form-data`` body as it arrives (:class:`_PostReceiver`),
checks the fields with :func:`~s3drop.storage._verify.verify_post` before it takes the file's first
byte, counts the file against the policy's size range as it streams, and renames it into place only
when the whole body arrived and passed. Refusals carry S3's statuses and codes
(:class:`~s3drop._errors.S3Error`).
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import anyio.to_thread
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

from ..._errors import S3Error
from .._verify import CheckedPost, verify_post
from ._receive import BUCKET, FLUSH_BYTES, REGION, disk_errors, stream_into

if TYPE_CHECKING:
    from . import LocalStorage

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


async def receive_post(
    storage: LocalStorage, content_type: str | None, body: AsyncIterator[bytes]
) -> ReceivedPost:
    """Take one browser POST: check the form as S3 does, stream the file, store it whole.

    Raises :class:`S3Error` (S3's status and code) and stores nothing on any refusal,
    including a body that stops before its end, one that sends nothing for
    ``upload_idle_timeout`` seconds (``RequestTimeout``) and a full disk
    (``InsufficientStorage``, 507).
    """
    receiver = _PostReceiver(storage, content_type)
    try:
        with disk_errors():
            await stream_into(receiver, body, idle_timeout=storage.idle_timeout)
            # The last write, the renames and the metadata file: in a thread too.
            return await anyio.to_thread.run_sync(receiver.finish)
    finally:
        if receiver.file is not None or receiver.tmp is not None:
            with anyio.CancelScope(shield=True):  # a client that went away still gets it
                await anyio.to_thread.run_sync(receiver.cleanup)


@dataclass(frozen=True)
class ReceivedPost:
    """A browser POST that was stored: its key, the file's size, the status to answer, the ETag
    (the quoted MD5 of the file, as S3's)."""

    key: str
    size: int
    success_status: int
    etag: str = ""


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
            raise S3Error(
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
        self.error: S3Error | None = None
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

    @property
    def wants_flush(self) -> bool:
        return len(self.pending) >= FLUSH_BYTES or (
            self.tmp is not None and self.file is None  # the file began: open it
        )

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
                raise S3Error(
                    "Your POST request fields preceding the upload file were too large "
                    f"(at most {MAX_PRE_DATA} bytes).",
                    code="MaxPostPreDataLengthExceeded",
                    status=400,
                )
            self.parser.write(chunk[room:])
        except S3Error as exc:
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
            raise S3Error(
                "POST requires exactly one file upload per request.",
                code="InvalidArgument",
                status=400,
            )
        if not self.file_done:
            raise S3Error(
                "The body ended before the whole file arrived.", code="IncompleteBody", status=400
            )
        if self.size < self.checked.min_bytes:
            raise S3Error(
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
            raise S3Error(
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
                raise S3Error(
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
                raise S3Error(
                    f"The field {self._name!r} appears more than once.",
                    code="InvalidArgument",
                    status=400,
                )
            self._names.add(name)
            self.fields[self._name] = self._value.decode("utf-8", "replace")

    def _end(self) -> None:
        self.ended = True


def _malformed(message: str) -> S3Error:
    return S3Error(message, code="MalformedPOSTRequest", status=400)
