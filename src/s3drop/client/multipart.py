"""The body a browser posts to storage with a signed form, built for a file on disk: every signed
field in order, then the file last as ``file``, streamed in chunks (never read whole) with its
progress reported; and the file's SHA-256, which the server checks the stored bytes against."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

from ..policy import UploadForm

#: ``progress(bytes_sent, total_bytes)``, called from the uploading thread as the body streams;
#: starts again from 0 when a failed attempt is retried.
Progress = Callable[[int, int], None]

_CHUNK = 256 * 1024


def form_body(
    form: UploadForm,
    path: Path,
    *,
    filename: str | None = None,
    progress: Progress | None = None,
) -> tuple[dict[str, str], Callable[[], Iterator[bytes]]]:
    """The headers and a fresh body (each call of the second starts the file again, for a retry)
    of ``form`` posted with ``path``, named ``filename`` (its own name by default)."""
    size = path.stat().st_size
    boundary = f"s3drop-{secrets.token_hex(16)}"
    head = b"".join(
        _part_header(boundary, name, None, None) + value.encode() + b"\r\n"
        for name, value in form.fields.items()
    ) + _part_header(boundary, "file", filename or path.name, form.content_type)
    tail = f"\r\n--{boundary}--\r\n".encode()
    total = len(head) + size + len(tail)

    def body() -> Iterator[bytes]:
        sent = 0
        if progress:
            progress(0, size)
        yield head
        with path.open("rb") as file:
            while chunk := file.read(_CHUNK):
                yield chunk
                sent += len(chunk)
                if progress:
                    progress(sent, size)
        yield tail

    headers = {
        "Content-Type": f"multipart/form-data; boundary={boundary}",
        "Content-Length": str(total),
    }
    return headers, body


def file_sha256(path: str | Path) -> str:
    """The SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as file:
        while chunk := file.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def _part_header(boundary: str, name: str, filename: str | None, content_type: str | None) -> bytes:
    """A multipart part's header, escaped as browsers do (WHATWG: " CR LF -> %22 %0D %0A)."""
    header = f'--{boundary}\r\nContent-Disposition: form-data; name="{_escape(name)}"'
    if filename is not None:
        header += f'; filename="{_escape(filename)}"'
    if content_type is not None:
        header += f"\r\nContent-Type: {content_type}"
    return (header + "\r\n\r\n").encode()


def _escape(value: str) -> str:
    return value.replace("\r", "%0D").replace("\n", "%0A").replace('"', "%22")
