"""The flow, as plain Python calls: presign -> (the browser posts) -> complete -> list / delete.

A FastAPI, Django or Flask project uses :class:`S3Drop` directly; the bundled web app and the CLI
are thin edges over it::

    from s3drop import S3Drop, Settings

    drop = S3Drop(Settings())
    form = drop.presign(content_type="image/png", size=5120, filename="cat.png")
    return JSONResponse(form.to_dict(), status_code=201)   # the browser posts the file to storage
"""

from __future__ import annotations

from .config import Settings
from .policy import UploadForm, check_upload
from .storage.base import Storage, open_storage


class S3Drop:
    """One configured s3drop: settings plus the storage backend they name. Thread-safe."""

    def __init__(self, settings: Settings | None = None, *, storage: Storage | None = None) -> None:
        self.settings = settings or Settings()
        self.storage = storage or open_storage(self.settings)

    def presign(
        self,
        *,
        content_type: str,
        size: int,
        filename: str,
        sha256: str | None = None,
        owner: str | None = None,
    ) -> UploadForm:
        """Sign one upload, or refuse it (:class:`~s3drop.errors.UploadRefused`; nothing signed).

        ``content_type``, ``size`` and ``filename`` are the client's claims: the type must be
        allowed and the size within the limit. The server picks the key; storage enforces the
        exact type and the size range; :meth:`complete` later checks the bytes themselves.
        """
        request = check_upload(
            self.settings,
            content_type=content_type,
            size=size,
            filename=filename,
            sha256=sha256,
            owner=owner,
        )
        return self.storage.presign_post(request, expires_in=self.settings.expires_in)
