"""The flow, as plain Python calls: presign -> (the browser posts) -> complete -> list / delete.

A FastAPI, Django or Flask project uses :class:`S3Drop` directly; the bundled web app and the CLI
are thin edges over it::

    from s3drop import S3Drop, Settings

    drop = S3Drop(Settings())
    form = drop.presign(content_type="image/png", size=5120, filename="cat.png")
    return JSONResponse(form.to_dict(), status_code=201)   # the browser posts the file to storage
"""

from __future__ import annotations

from . import audit
from .auth import Authenticator, Principal, from_settings
from .config import Settings
from .errors import S3DropError
from .limits import Limits, LimitStore, SQLiteLimitStore
from .policy import UploadForm, check_upload
from .storage.base import Storage, open_storage

#: Who calls the library when the caller names nobody.
ANONYMOUS = Principal("anonymous", anonymous=True)


class S3Drop:
    """One configured s3drop: settings, the storage backend they name, who may sign, and how much.

    Thread-safe; build one per process. ``authenticate`` replaces the built-in authenticator the
    settings choose; ``limit_store`` replaces the per-machine SQLite counters (see
    :mod:`s3drop.limits` for running several machines).
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        storage: Storage | None = None,
        authenticate: Authenticator | None = None,
        limit_store: LimitStore | None = None,
    ) -> None:
        self.settings = settings or Settings()
        self.storage = storage or open_storage(self.settings)
        self.authenticate: Authenticator = authenticate or from_settings(self.settings)
        store = limit_store or SQLiteLimitStore(self.settings.data_dir / "limits.sqlite3")
        self.limits = Limits(self.settings, store)

    def presign(
        self,
        *,
        content_type: str,
        size: int,
        filename: str,
        sha256: str | None = None,
        principal: Principal = ANONYMOUS,
    ) -> UploadForm:
        """Sign one upload, or refuse it; a refusal signs nothing.

        ``content_type``, ``size`` and ``filename`` are the client's claims: the type must be
        allowed and the size within the limit (:class:`~s3drop.errors.UploadRefused`), and the
        principal within its limits (:class:`~s3drop.errors.RateLimited`). The server picks the
        key and records the principal as the owner; storage enforces the exact type and the size
        range; :meth:`complete` later checks the bytes themselves.
        """
        try:
            request = check_upload(
                self.settings,
                content_type=content_type,
                size=size,
                filename=filename,
                sha256=sha256,
                owner=principal.name,
            )
            self.limits.check_stored(principal.limit_key)
            self.limits.before_sign(principal.limit_key, size)
        except S3DropError as exc:
            audit.record("refuse", who=principal.name, size=size, reason=exc.code)
            raise
        form = self.storage.presign_post(request, expires_in=self.settings.expires_in)
        audit.record("sign", who=principal.name, key=form.key, size=size, type=content_type)
        return form
