"""The flow, as plain Python calls: presign -> (the browser posts) -> complete -> list / delete.

A FastAPI, Django or Flask project uses :class:`S3Drop` directly; the bundled web app and the CLI
are thin edges over it::

    from s3drop import S3Drop, Settings

    drop = S3Drop(Settings())
    form = drop.presign(content_type="image/png", size=5120, filename="cat.png")
    return JSONResponse(form.to_dict(), status_code=201)   # the browser posts the file to storage
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from . import _audit as audit
from . import _cleanup as cleanup
from . import _duplicates as duplicates
from . import _images as images
from . import _lookup as lookup
from . import _promote as promote
from ._auth import Authenticator, Principal, from_settings
from ._config import Settings
from ._errors import (
    NotFound,
    S3DropError,
)
from ._formats import by_type
from ._gallery import (
    Image,
    ImagePage,
    ImageURL,
    Variant,
    describe_stored,
    list_page,
)
from ._hooks import AcceptedHook, DeletedHook, Hooks, RejectedHook
from ._outbox import WebhookSender, sender_from_settings
from ._policy import (
    IMAGES_PREFIX,
    UploadForm,
    UploadRequest,
    check_upload,
    is_upload_id,
    owner_prefix,
)
from ._promote import ANONYMOUS, check_owner
from ._sandbox import DecodePool, SandboxLimits
from .limits import Limits, LimitStore, open_limit_store
from .storage import open_storage
from .storage.base import Storage


@dataclass
class _Claim:
    """The lock of one upload id's completion in this process, and how many calls hold it."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    users: int = 0


class S3Drop:
    """One configured s3drop: settings, the storage backend they name, who may sign, and how much.

    Thread-safe; build one per process. ``authenticate`` replaces the built-in authenticator the
    settings choose. ``limit_store`` is where the limits count (:mod:`s3drop.limits`); without
    one, the Redis of ``S3DROP_REDIS_URL`` when set, else counters in this process only (pass
    ``SQLiteLimitStore(path)`` to share them between the processes of one machine).
    ``on_accepted``, ``on_rejected`` and ``on_deleted`` are the host's callbacks
    (:mod:`s3drop._hooks`; more can be added with the methods of the same names); with
    ``S3DROP_WEBHOOK_URL`` set, the same events are also sent as signed webhooks
    (:mod:`s3drop.webhooks`) from a background thread, until :meth:`close`.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        storage: Storage | None = None,
        authenticate: Authenticator | None = None,
        limit_store: LimitStore | None = None,
        on_accepted: AcceptedHook | None = None,
        on_rejected: RejectedHook | None = None,
        on_deleted: DeletedHook | None = None,
    ) -> None:
        self.settings = settings or Settings()
        self.storage = storage or open_storage(self.settings)
        self.authenticate: Authenticator = authenticate or from_settings(self.settings)
        self.limits = Limits(self.settings, limit_store or open_limit_store(self.settings))
        self.image_limits = images.ImageLimits.from_settings(self.settings)
        # Decoding runs in worker processes under CPU and memory limits (s3drop._sandbox).
        self.decoders = DecodePool.shared(SandboxLimits.from_settings(self.settings))
        # Completions in progress, by upload id: one verifies and promotes, the others wait.
        self._completing: dict[str, _Claim] = {}
        self._completing_lock = threading.Lock()
        self.hooks = Hooks()
        if on_accepted is not None:
            self.hooks.accepted.append(on_accepted)
        if on_rejected is not None:
            self.hooks.rejected.append(on_rejected)
        if on_deleted is not None:
            self.hooks.deleted.append(on_deleted)
        self.webhooks: WebhookSender | None = sender_from_settings(self.settings)
        if self.webhooks is not None:
            self.hooks.accepted.append(self.webhooks.accept)
            self.hooks.rejected.append(self.webhooks.reject)
            self.hooks.deleted.append(self.webhooks.delete)
            self.webhooks.start()

    # --- hooks --------------------------------------------------------------------------------

    def on_accepted(self, hook: AcceptedHook) -> AcceptedHook:
        """Call ``hook(image, principal)`` once per accepted image; returns it (a decorator)."""
        self.hooks.accepted.append(hook)
        return hook

    def on_rejected(self, hook: RejectedHook) -> RejectedHook:
        """Call ``hook(upload_id, error, principal)`` once per refused upload (a decorator)."""
        self.hooks.rejected.append(hook)
        return hook

    def on_deleted(self, hook: DeletedHook) -> DeletedHook:
        """Call ``hook(image_id, principal)`` after each deleted image (a decorator)."""
        self.hooks.deleted.append(hook)
        return hook

    def close(self, *, wait: float = 0.0) -> None:
        """Stop sending webhooks, after up to ``wait`` seconds for the queued ones to go (the
        rest stay in the outbox for the next start), and stop the decode workers (shared by
        every S3Drop of this process with the same limits: a completion still running or
        waiting gets ServerBusy)."""
        self.decoders.close()
        if self.webhooks is not None:
            self.webhooks.close(wait=wait)

    def presign(
        self,
        *,
        content_type: str,
        size: int,
        filename: str,
        sha256: str | None = None,
        principal: Principal = ANONYMOUS,
        method: str = "POST",
        success_status: int | None = None,
    ) -> UploadForm:
        """Sign one upload, or refuse it; a refusal signs nothing.

        ``method`` POST (the default) signs a form (a POST policy); PUT a presigned URL and the
        headers to send with it (what Uppy's ``@uppy/aws-s3`` and a plain ``fetch`` send).
        ``success_status`` (POST only: 200, 201 or 204) is the form's ``success_action_status``.

        ``content_type``, ``size`` and ``filename`` are the client's claims: the type must be
        allowed and the size within the limit (:class:`~s3drop._errors.UploadRefused`), and the
        principal within its limits (:class:`~s3drop._errors.RateLimited`). The server picks the
        key and records the principal as the owner; storage enforces the exact type and the size
        range; :meth:`complete` later checks the bytes themselves.

        With a ``sha256``, signing first asks whether the principal already has an accepted
        image of exactly those bytes (one HEAD of its marker, :func:`~s3drop._policy.digest_key`):
        if so it signs nothing and raises :class:`~s3drop._errors.AlreadyUploaded` with that image,
        before any limit is counted, so the client sends no bytes. Duplicates are per owner, in a
        shared gallery too.
        """
        request = self._sign_request(content_type, size, filename, sha256, principal)
        if "sha256" in request.metadata:  # before any limit is counted: nothing will be sent
            duplicates.refuse_duplicate(self, principal, request.metadata["sha256"])
        try:
            self.limits.before_sign(principal.limit_key, size)
        except S3DropError as exc:
            audit.record("refuse", who=principal.name, size=size, reason=exc.code)
            raise
        form = self._signing(request, method, success_status)()
        audit.record("sign", who=principal.name, key=form.key, size=size, type=content_type)
        return form

    def _signing(
        self, request: UploadRequest, method: str, success_status: int | None
    ) -> Callable[[], UploadForm]:
        """The storage call that signs ``request`` as ``method`` asks (not made yet)."""
        if success_status is not None and method == "POST":
            request = dataclasses.replace(request, success_status=success_status)
        sign = self.storage.presign_put if method == "PUT" else self.storage.presign_post
        return functools.partial(sign, request, expires_in=self.settings.expires_in)

    async def presign_async(
        self,
        *,
        content_type: str,
        size: int,
        filename: str,
        sha256: str | None = None,
        principal: Principal = ANONYMOUS,
        method: str = "POST",
        success_status: int | None = None,
    ) -> UploadForm:
        """:meth:`presign` for an event loop: never blocks it. The limit store is awaited (Redis),
        run in a thread (SQLite) or called inline (memory), as it declares; so is the signing
        (in a thread only while the storage's credentials may need fetching over the network)."""
        request = self._sign_request(content_type, size, filename, sha256, principal)
        if "sha256" in request.metadata:  # one HEAD: storage may block, so in a thread
            await asyncio.to_thread(
                duplicates.refuse_duplicate, self, principal, request.metadata["sha256"]
            )
        try:
            await self.limits.before_sign_async(principal.limit_key, size)
        except S3DropError as exc:
            audit.record("refuse", who=principal.name, size=size, reason=exc.code)
            raise
        signing = self._signing(request, method, success_status)
        form = await asyncio.to_thread(signing) if self.storage.signing_blocks else signing()
        audit.record("sign", who=principal.name, key=form.key, size=size, type=content_type)
        return form

    def _sign_request(
        self,
        content_type: str,
        size: int,
        filename: str,
        sha256: str | None,
        principal: Principal,
    ) -> UploadRequest:
        try:
            return check_upload(
                self.settings,
                content_type=content_type,
                size=size,
                filename=filename,
                sha256=sha256,
                owner=principal.name,
            )
        except S3DropError as exc:
            audit.record("refuse", who=principal.name, size=size, reason=exc.code)
            raise

    def client_config(self) -> dict[str, object]:
        """What a page, the uploader element or the CLI needs to check files before it asks to
        sign them (``GET /api/config`` in every adapter): the types with their labels and
        extensions, the size limit, the backend, whether a token or password is needed, and the
        browser's optional downscale (off unless set)."""
        settings = self.settings
        return {
            "allowed_types": settings.allowed_types,
            "types": [by_type(content_type).describe() for content_type in settings.allowed_types],
            "max_bytes": settings.max_bytes,
            "backend": settings.storage_backend,
            "auth": settings.auth_mode,
            "client_max_side": settings.client_max_side,
            "client_quality": settings.client_quality,
        }

    def find_duplicate(self, owner: str, sha256: str) -> Image | None:
        """``owner``'s accepted image whose uploaded bytes had this SHA-256, or None: one HEAD.

        The marker is written by the promotion from the hash the server computed itself and
        removed by :meth:`delete_image` before the image, so a deleted image no longer counts.
        """
        return duplicates.find_duplicate(self.storage, self.settings, owner, sha256)

    # --- verify and promote -------------------------------------------------------------------

    def complete(self, upload_id: str, *, principal: Principal | None = None) -> Image:
        """Verify an upload and promote it into the gallery; the promoted :class:`Image`.

        Reads the quarantined object with one request (its facts, then its first bytes, then the
        rest; :mod:`s3drop._promote` lists every request a completion makes) and accepts it only when its real format is the signed type, its dimensions and frames are within the
        limits, it decodes fully and it matches the SHA-256 it was signed with. A refused upload is
        deleted and :class:`~s3drop._errors.ImageRejected` says why. Safe to retry and to call
        twice: an upload already promoted is returned as it is. ``principal``, when given, must be
        the upload's owner (:class:`~s3drop._errors.Forbidden`); None is a trusted caller.

        One form makes at most one image, counted once: concurrent calls for one id wait for
        each other in this process, and across processes the limits store lets exactly one of
        them promote (:meth:`~s3drop.limits.Limits.claim`). A file posted again with the same
        form after its image was promoted is deleted and refused
        (:class:`~s3drop._errors.AlreadyCompleted`, 409).

        Raises :class:`~s3drop._errors.NotFound` when there is no such upload.
        """
        if not is_upload_id(upload_id):
            raise NotFound(f"no upload {upload_id!r}")
        with self._one_completion(upload_id):
            return promote.complete(self, upload_id, principal)

    @contextlib.contextmanager
    def _one_completion(self, upload_id: str) -> Iterator[None]:
        """Hold the completion of ``upload_id`` in this process: a concurrent ``complete`` of the
        same id waits, then finds the image promoted (and neither counts nor announces it)."""
        with self._completing_lock:
            claim = self._completing.setdefault(upload_id, _Claim())
            claim.users += 1
        try:
            with claim.lock:
                yield
        finally:
            with self._completing_lock:
                claim.users -= 1
                if not claim.users:
                    del self._completing[upload_id]

    # --- the gallery --------------------------------------------------------------------------

    def list_images(
        self, *, cursor: str | None = None, limit: int = 50, principal: Principal | None = None
    ) -> ImagePage:
        """One page of promoted images, newest first; pass ``next_cursor`` on for the next.

        One listing call per page, however many images there are, and no read per image (the
        keys carry the facts; ``filename`` is None, see :meth:`get_image`). ``principal``, unless
        the settings say the gallery is ``shared``, sees only their own images; None (a trusted
        caller) sees all. ``limit`` is 1 to 100.
        """
        prefix = IMAGES_PREFIX
        if principal is not None and not self.settings.shared:
            prefix = owner_prefix(principal.name)
        return list_page(self.storage, self.settings, prefix=prefix, cursor=cursor, limit=limit)

    def get_image(self, image_id: str, *, principal: Principal | None = None) -> Image:
        """One image with everything known of it, its original filename included (two HEADs,
        the thumbnail's and the image's; no listing). :class:`~s3drop._errors.NotFound` when there
        is no such image; :class:`~s3drop._errors.Forbidden` when it is someone else's and the
        gallery is not shared.
        """
        info = self.storage.head(lookup.locate(self.storage, image_id).key)
        if info is None:  # a delete stopped halfway: the thumbnail outlived its image
            raise NotFound(f"no image {image_id}")
        check_owner(info, principal, shared=self.settings.shared)
        return describe_stored(self.storage, self.settings, info)

    def image_url(
        self,
        image_id: str,
        *,
        variant: Variant = "original",
        principal: Principal | None = None,
    ) -> ImageURL:
        """A URL that reads image ``image_id`` (its ``"original"`` or its ``"thumbnail"``) now,
        from the id alone: the one thing a host app needs to keep.

        One HEAD (of the thumbnail, which names its image and owner) and no listing, however many
        images there are; the URL is freshly signed (``expires_at``), or the CDN's when
        ``S3DROP_PUBLIC_BASE_URL`` is set (``expires_at`` None). ``principal``, when given, must
        own the image unless the gallery is shared (:class:`~s3drop._errors.Forbidden`); None is a
        trusted caller (the host decided who may see it). :class:`~s3drop._errors.NotFound` when
        there is no such image.
        """
        return lookup.image_url(self.storage, self.settings, image_id, variant, principal)

    def delete_image(self, image_id: str, *, principal: Principal | None = None) -> None:
        """Delete an image, its thumbnail and its owner's index entry;
        :class:`~s3drop._errors.NotFound` if none of them exists.

        ``principal``, when given, must be the image's owner unless the gallery is ``shared``
        (:class:`~s3drop._errors.Forbidden`, and nothing changes); None is a trusted caller.
        """
        cleanup.delete_image(self, image_id, principal)

    def sweep(
        self,
        *,
        older_than: timedelta = timedelta(days=1),
        partial_older_than: timedelta = timedelta(hours=1),
        now: datetime | None = None,
    ) -> int:
        """Delete what nobody will finish; how many objects and files.

        - quarantined uploads older than ``older_than`` that nobody completed (S3's lifecycle
          rule, ``s3drop bucket init``, does the same on S3);
        - thumbnails and responsive variants older than ``partial_older_than`` whose image is
          gone (a crash or a full disk between writing them and the image), and kept originals
          (``S3DROP_KEEP_HEIC_ORIGINAL``) whose image is gone;
        - the backend's own half-written files that old (the local backend's ``tmp/*.part`` of
          an upload cut by ``kill -9``, :meth:`Storage.sweep_partial`).

        Works on any backend; the bundled app runs it at start and hourly on the local one.
        """
        return cleanup.sweep(
            self, older_than=older_than, partial_older_than=partial_older_than, now=now
        )
