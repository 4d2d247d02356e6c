"""A small HTTP client for a running s3drop server: what the page does, from Python or a terminal.

It signs through the server's JSON API, posts the file straight to storage exactly as the browser
does (every signed field in order, then the file last as ``file``; a root-relative form URL is
resolved against the server URL), then asks the server to complete the upload::

    from s3drop._client import Client

    with Client("http://127.0.0.1:8000", token="...") as client:
        image = client.upload("cat.png")        # the Image JSON: id, url, width, ...
        page = client.list_images(limit=20)
        client.delete_image(image["id"])

Files are checked against the server's ``/api/config`` before a byte is sent (empty, too large, not
an allowed image type judged by its first bytes), streamed from disk (never read whole), hashed so
the server can check the stored bytes (SHA-256), and their progress reported through a callback.

Transient failures (connection errors, timeouts, 5xx, 429 with a short ``Retry-After``) are retried
with exponential backoff and jitter; refusals (any other 4xx) never are. Every call is safe to
repeat: a retried POST to storage writes the same key with the same bytes, and completion is
idempotent. Failures raise the same :mod:`s3drop._errors` classes the library raises, rebuilt from
the server's ``{"error": {"code", "message"}}`` (or S3's XML), so ``except ImageRejected`` works
against a remote server too.

The modules: :mod:`~s3drop._client.remote` (:class:`Client`: the API calls and the whole flow),
:mod:`~s3drop._client.config` (what the server takes, and a file's check against it: size, sniffed
type), :mod:`~s3drop._client.multipart` (the file's progress as httpx's multipart encoder reads it
from disk, and its hash), :mod:`~s3drop._client.transport` (requests retried while a failure is transient) and
:mod:`~s3drop._client.answers` (a failed answer as the :mod:`s3drop._errors` exception it stands for).
"""

from __future__ import annotations

from .._formats import type_names
from .config import SNIFF_BYTES, ServerConfig, check_file, sniff_type
from .multipart import Progress, file_sha256
from .remote import Client, ImagePage, Status, UploadResult
from .transport import DEFAULT_SERVER, server_url

__all__ = [
    "DEFAULT_SERVER",
    "SNIFF_BYTES",
    "Client",
    "ImagePage",
    "Progress",
    "ServerConfig",
    "Status",
    "UploadResult",
    "check_file",
    "file_sha256",
    "server_url",
    "sniff_type",
    "type_names",
]
