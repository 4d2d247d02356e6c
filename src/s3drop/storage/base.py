"""The storage contract: what s3drop needs from a place that keeps bytes.

Two backends fulfil it: :class:`~s3drop.storage.local.LocalStorage` (the embedded default, files on
disk, S3's POST policy semantics enforced by s3drop itself) and :class:`~s3drop.storage.s3.S3Storage`
(boto3, for S3 and every S3-compatible store). Both return the same :class:`UploadForm` from
:meth:`Storage.presign_post`, so the page and the CLI never branch on the backend::

    storage = open_storage(Settings())
    form = storage.presign_post(request, expires_in=600)
    # the browser posts form.fields + the file to form.url
    info = storage.head(form.key)          # ObjectInfo or None
    head = storage.read(form.key, end=64)  # the first 64 bytes

The base class is a template, as Django's ``Storage`` is: the public signing methods do the shared
work once for every backend (the key checked by :func:`check_key`, the policy or URL signed with
:mod:`~s3drop.storage._sigv4`, the :class:`UploadForm` built) over small hooks a backend fills in
(``_signing_credentials``, ``_form_url``, ``_put_signer``, ``_presign_get``).

Keys are always made by s3drop (see :mod:`s3drop._policy`); backends still refuse anything that could
leave their root, or that no S3 store would take.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from .._errors import InvalidRequest
from .._policy import Credentials, UploadForm, UploadRequest
from ._sigv4 import PutSigner, put_headers, sign_post

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

#: Signed read URLs stay byte for byte the same within a window of this many seconds (or of the
#: URL's lifetime, when shorter), so browsers and CDNs can reuse what they fetched.
URL_WINDOW = 3600
#: The longest a SigV4 presigned URL may live.
MAX_URL_LIFETIME = 7 * 24 * 3600


#: The longest key S3 takes, in UTF-8 bytes.
MAX_KEY_BYTES = 1024
#: Keys any path may carry as they are (no segment starting with a dot, nothing to quote in a URL):
#: every key s3drop makes but an owner's index entry; anything else gets the full check.
PLAIN_KEY = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*(?:/[A-Za-z0-9_-][A-Za-z0-9_.-]*)*")


def check_key(key: str, *, max_bytes: int = MAX_KEY_BYTES) -> None:
    """Refuse (:class:`~s3drop._errors.InvalidRequest`) a key that could leave a backend's root or
    that no S3 store would take: empty, over ``max_bytes``, starting with ``/``, with an empty,
    ``.`` or ``..`` segment, a backslash or a NUL."""
    if len(key) <= max_bytes and PLAIN_KEY.fullmatch(key):  # ASCII: characters are bytes
        return
    if (
        not key
        or key.startswith("/")
        or any(part in {"", ".", ".."} for part in key.split("/"))
        or "\\" in key
        or "\0" in key
        or len(key.encode(errors="replace")) > max_bytes
    ):
        raise InvalidRequest(f"invalid object key: {key!r}")


def stable_signing(expires_in: int, *, now: float | None = None) -> tuple[int, int]:
    """When to date a read URL and how long it lives: ``(signed_at, lifetime)``, in seconds.

    ``signed_at`` is the clock rounded down to a window (:data:`URL_WINDOW`, or ``expires_in``
    when shorter), so every URL for a key signed in the same window is identical; ``lifetime`` is
    ``expires_in`` plus one window, so the URL still works for at least ``expires_in`` seconds
    from now (at most twice that; capped at SigV4's 7 days)::

        >>> stable_signing(3600, now=7_200_000_123)
        (7200000000, 7200)
    """
    clock = int(time.time() if now is None else now)
    window = max(1, min(expires_in, URL_WINDOW))
    return clock - clock % window, min(expires_in + window, MAX_URL_LIFETIME)


@dataclass(frozen=True)
class ObjectInfo:
    """What storage knows of one object without reading it."""

    key: str
    size: int
    content_type: str
    last_modified: datetime
    metadata: dict[str, str] = field(default_factory=dict)


class Download:
    """An object being read: what a HEAD would say of it (``info``) and its bytes, as one request
    (S3's GET answers both). Read it in steps with :meth:`read`; close it when done (a context
    manager), read to the end or not: a download closed early reads no more of it."""

    def __init__(
        self, info: ObjectInfo, read: Callable[[int], bytes], close: Callable[[], None]
    ) -> None:
        self.info = info
        self._read = read
        self._close = close

    def read(self, size: int = -1) -> bytes:
        """The next ``size`` bytes (fewer only at the end), or all the rest when ``size`` is -1."""
        if size < 0:
            return self._read(-1)
        parts: list[bytes] = []
        while size > 0:
            part = self._read(size)
            if not part:
                break
            parts.append(part)
            size -= len(part)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def close(self) -> None:
        self._close()

    def __enter__(self) -> Download:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Storage:
    """One backend: the signing methods here, over the hooks below; a subclass implements the
    hooks and the object methods (head, read, put, delete, list, check). All are thread-safe."""

    name: str = "base"

    @property
    def signing_blocks(self) -> bool:
        """True while :meth:`presign_post` may wait on I/O (credentials to fetch or refresh over
        the network): an event loop then runs it in a thread. Every other method blocks (disk,
        network) and always runs in one."""
        return False

    #: The bucket and region the backend's forms and URLs are signed for.
    bucket: str = ""
    region: str = ""
    #: The longest key the backend takes, in UTF-8 bytes (S3's limit).
    max_key_bytes: int = MAX_KEY_BYTES
    #: Whether :meth:`presign_get`'s URLs stop working ``expires_in`` seconds on (signed URLs);
    #: False where they are permanent (a public CDN's).
    read_urls_expire: bool = True

    def check_key(self, key: str) -> None:
        """Refuse (:class:`~s3drop._errors.InvalidRequest`) a key that could leave the backend's
        root or that no S3 store would take (:func:`check_key`)."""
        check_key(key, max_bytes=self.max_key_bytes)

    def presign_post(self, request: UploadRequest, *, expires_in: int) -> UploadForm:
        """Sign a browser POST of exactly ``request`` (key, type, size range, metadata)."""
        self.check_key(request.key)
        fields, expires_at = sign_post(
            request,
            bucket=self.bucket,
            credentials=self._signing_credentials(),
            region=self.region,
            expires_in=expires_in,
        )
        return UploadForm(
            id=request.id,
            key=request.key,
            url=self._form_url(),
            fields=fields,
            content_type=request.content_type,
            max_bytes=request.max_bytes,
            expires_at=expires_at,
        )

    def presign_put(self, request: UploadRequest, *, expires_in: int) -> UploadForm:
        """Sign a browser PUT of exactly ``request``: a URL (``method`` PUT) and the ``headers``
        the body must be sent with (:func:`~s3drop.storage._sigv4.put_headers`); storage refuses
        any other key, size, type or metadata."""
        self.check_key(request.key)
        headers = put_headers(request)
        url = self._put_signer().url(
            request.key,
            headers=headers,
            credentials=self._signing_credentials(),
            expires_in=expires_in,
        )
        return put_form(request, url=url, headers=headers, expires_in=expires_in)

    def presign_get(self, key: str, *, expires_in: int, filename: str | None = None) -> str:
        """A URL that reads ``key`` for at least ``expires_in`` seconds, refusing any change to
        it; the same URL for the same arguments within a window (:func:`stable_signing`)."""
        self.check_key(key)
        return self._presign_get(key, expires_in=expires_in, filename=filename)

    # --- the hooks a backend fills in ---------------------------------------------------------

    def _signing_credentials(self) -> Credentials:
        """The credentials forms and URLs are signed with."""
        raise NotImplementedError

    def _form_url(self) -> str:
        """Where the browser posts a form."""
        raise NotImplementedError

    def _put_signer(self) -> PutSigner:
        """The signer of presigned PUT URLs for the objects of this backend."""
        raise NotImplementedError

    def _presign_get(self, key: str, *, expires_in: int, filename: str | None) -> str:
        """:meth:`presign_get` for a checked key."""
        raise NotImplementedError

    # --- objects ------------------------------------------------------------------------------

    def head(self, key: str) -> ObjectInfo | None:
        """Size, type and metadata of ``key``, or None when it does not exist."""
        raise NotImplementedError

    def read(self, key: str, *, start: int = 0, end: int | None = None) -> bytes:
        """Bytes ``start`` to ``end`` (exclusive; None for the end) of ``key``.

        Raises :class:`~s3drop._errors.NotFound` when the object does not exist.
        """
        raise NotImplementedError

    def get(self, key: str) -> Download | None:
        """``key``'s facts and bytes (:class:`Download`), or None when it does not exist.

        One request on a backend that answers both at once (S3's GET, a file); this default costs
        a :meth:`head` and a :meth:`read` per step read.
        """
        info = self.head(key)
        if info is None:
            return None
        offset = 0

        def read(size: int) -> bytes:
            nonlocal offset
            data = self.read(key, start=offset, end=None if size < 0 else offset + size)
            offset += len(data)
            return data

        return Download(info, read, lambda: None)

    def put(self, key: str, data: bytes, *, content_type: str, metadata: dict[str, str]) -> None:
        """Store ``data`` at ``key`` whole, or not at all."""
        raise NotImplementedError

    def delete(self, key: str) -> None:
        """Remove ``key``; removing what is not there is not an error."""
        raise NotImplementedError

    def list_objects(
        self, prefix: str, *, start_after: str | None = None, limit: int = 1000
    ) -> list[ObjectInfo]:
        """Up to ``limit`` objects under ``prefix`` in key order (byte order of the whole key),
        after ``start_after``.

        Listed objects carry key, size and time only, no type or metadata (S3 lists none, and no
        backend reads more to list): use :meth:`head`.
        """
        raise NotImplementedError

    def iter_all(self, prefix: str) -> Iterator[ObjectInfo]:
        """Every object under ``prefix``, page by page."""
        after: str | None = None
        while True:
            page = self.list_objects(prefix, start_after=after, limit=1000)
            yield from page
            if len(page) < 1000:
                return
            after = page[-1].key

    def check(self) -> None:
        """Raise a :class:`~s3drop._errors.StorageError` unless storage answers now."""
        raise NotImplementedError

    def sweep_partial(self, older_than: float) -> int:
        """Remove the backend's own half-written files (a crash's leftovers) not touched for
        ``older_than`` seconds; how many. Nothing to do on S3, which never shows a partial
        object."""
        return 0

    #: True when nothing but :meth:`~s3drop._uploads.S3Drop.sweep` removes abandoned uploads, so
    #: the app runs it now and then (on S3 a lifecycle rule does).
    needs_sweeping: bool = False

    def http_routes(self) -> list[BaseRoute]:
        """The routes a backend that is its own storage server adds to the app that serves it
        (the local backend's receiver and signed reads); none for a store of its own (S3)."""
        return []

    def served_at(self, base_url: str) -> AbstractContextManager[None]:
        """A block within which the URLs the backend gives out for its :meth:`http_routes` point
        under ``base_url``, the app's base URL for the request in hand (the web layer enters it
        for each request). Nothing to do for a backend without routes."""
        return contextlib.nullcontext()

    def browser_origins(self) -> list[str]:
        """Origins other than the app's that the page posts to or loads images from."""
        return []


def _expiry(expires_in: int) -> datetime:
    """When a URL signed now for ``expires_in`` seconds expires (whole seconds, UTC)."""
    return datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=expires_in)


def put_form(
    request: UploadRequest, *, url: str, headers: dict[str, str], expires_in: int
) -> UploadForm:
    """A presigned PUT as the client sees it: the URL and the headers it must send (all the
    signed ones but Content-Length, which the client's HTTP library sets from the body)."""
    return UploadForm(
        id=request.id,
        key=request.key,
        url=url,
        fields={},
        content_type=request.content_type,
        max_bytes=request.max_bytes,
        expires_at=_expiry(expires_in),
        method="PUT",
        headers={name: value for name, value in headers.items() if name != "Content-Length"},
    )
