"""The :class:`Client` of one s3drop server: its API calls (config, sign, post, complete, list,
delete) and the whole upload flow over them (check, sign, post, complete), with what became of
each file (:class:`UploadResult`). See :mod:`s3drop._client`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import httpx

from .._errors import AlreadyUploaded, NotAuthenticated, S3DropError, Unreachable
from .._policy import UploadForm
from . import answers
from .config import ServerConfig, check_file
from .multipart import Progress, ProgressReader, file_sha256
from .transport import Transport

Status = Literal["accepted", "duplicate", "rejected", "failed", "refused"]
Stage = Literal["check", "sign", "post", "complete"]


@dataclass(frozen=True)
class ImagePage:
    """One page of the gallery, newest first; ``next_cursor`` is None on the last page."""

    images: list[dict[str, Any]]
    next_cursor: str | None


@dataclass
class UploadResult:
    """What became of one file; ``status`` is accepted, duplicate (already in the gallery: the
    server found an image of the same bytes when asked to sign, so nothing was sent; ``image`` is
    that one), rejected (by verification), refused (never sent, or the server would not sign) or
    failed (the server or storage did not get it)."""

    path: str
    status: Status
    id: str | None = None
    url: str | None = None
    image: dict[str, Any] | None = None
    error_code: str | None = None
    error_message: str | None = None

    def to_dict(self) -> dict[str, Any]:
        error = None
        if self.error_code is not None:
            error = {"code": self.error_code, "message": self.error_message}
        return {
            "path": self.path,
            "status": self.status,
            "id": self.id,
            "url": self.url,
            "image": self.image,
            "error": error,
        }


class Client(Transport):
    """Talks to one s3drop server. Thread-safe: one client serves many concurrent uploads.

    ``Client(server, *, token=None, retries=4, backoff=0.5, max_backoff=8.0,
    max_retry_after=30.0, timeout=60.0, transport=None, sleep=time.sleep)``: the retries and
    their waits are :class:`~s3drop._client.transport.Transport`'s.
    """

    _config: ServerConfig | None = None  # fetched once, by config()

    # --- the API ------------------------------------------------------------------------------

    def config(self) -> ServerConfig:
        """The server's limits, fetched once; also the one place a missing token is found.

        The server checks the token this client sends (401 for a wrong one) and says whether it
        needs one, so a missing token is one :class:`~s3drop._errors.NotAuthenticated` up front
        rather than one refusal per file.
        """
        if self._config is None:
            data = self._api("GET", "api/config").json()
            if data.get("auth", "none") != "none" and not self._token:
                raise NotAuthenticated(
                    f"the server at {self.server} needs a token: pass --token or set S3DROP_TOKEN"
                )
            self._config = ServerConfig.from_json(data)
        return self._config

    def sign(
        self, *, filename: str, content_type: str, size: int, sha256: str | None = None
    ) -> UploadForm:
        """Ask the server to sign one upload (``POST /api/uploads``).

        With ``sha256``, raises :class:`~s3drop._errors.AlreadyUploaded` (its ``image`` the Image
        JSON) when the caller already has an image of those bytes: nothing to post then.
        """
        body: dict[str, Any] = {"filename": filename, "content_type": content_type, "size": size}
        if sha256 is not None:
            body["sha256"] = sha256
        data = self._api("POST", "api/uploads", json=body).json()["upload"]
        return UploadForm(
            id=data["id"],
            key=data["key"],
            url=str(httpx.URL(self.server).join(data["url"])),
            fields=dict(data["fields"]),
            content_type=data["content_type"],
            max_bytes=int(data["max_bytes"]),
            expires_at=datetime.fromisoformat(data["expires_at"]),
        )

    def post_file(
        self,
        form: UploadForm,
        path: str | Path,
        *,
        filename: str | None = None,
        progress: Progress | None = None,
    ) -> None:
        """Post ``path`` to storage with a signed form, streamed from disk, as a browser does:
        the signed fields in order, then the file as ``file`` (named ``filename``, its own name by
        default), by httpx's multipart encoder with a ``Content-Length``."""
        path = Path(path)
        with path.open("rb") as file:
            reader = ProgressReader(file, progress)
            response = self._send(
                "POST",
                form.url,
                data=form.fields,
                files={"file": (filename or path.name, reader, form.content_type)},
            )
        if not response.is_success:
            raise answers.exception_for(response)

    def complete(self, upload_id: str) -> dict[str, Any]:
        """Ask the server to verify and promote an upload; the Image JSON, or ImageRejected."""
        data: dict[str, Any] = self._api("POST", f"api/uploads/{upload_id}/complete").json()
        return self._absolute(dict(data["image"]))

    def list_images(self, *, cursor: str | None = None, limit: int | None = None) -> ImagePage:
        """One page of images, newest first (``GET /api/images``)."""
        params: dict[str, str | int] = {}
        if cursor:
            params["cursor"] = cursor
        if limit is not None:
            params["limit"] = limit
        data = self._api("GET", "api/images", params=params).json()
        images = [self._absolute(dict(image)) for image in data["images"]]
        return ImagePage(images, data.get("next_cursor"))

    def delete_image(self, image_id: str) -> None:
        """Delete an image and its thumbnail (``DELETE /api/images/{id}``)."""
        self._api("DELETE", f"api/images/{image_id}")

    def _absolute(self, image: dict[str, Any]) -> dict[str, Any]:
        """An image's links as absolute URLs: the local backend serves them relative to itself."""
        for name in ("url", "thumbnail_url"):
            if isinstance(image.get(name), str):
                image[name] = str(httpx.URL(self.server).join(image[name]))
        return image

    # --- the whole flow -----------------------------------------------------------------------

    def check_file(self, path: str | Path) -> tuple[str, int]:
        """``(content_type, size)`` of a file the server would sign, or the refusal it would give.

        Nothing is sent but ``GET /api/config`` (once per client).
        """
        return check_file(path, self.config())

    def upload(
        self, path: str | Path, *, filename: str | None = None, progress: Progress | None = None
    ) -> dict[str, Any]:
        """Check, sign, post and complete one file; the Image JSON of the accepted image.

        :class:`~s3drop._errors.AlreadyUploaded` when the server already has it (nothing sent)."""
        return self._upload(Path(path), filename=filename, progress=progress, reached=_Reached())

    def upload_result(
        self, path: str | Path, *, filename: str | None = None, progress: Progress | None = None
    ) -> UploadResult:
        """:meth:`upload`, never raising for one file's failure: what became of it."""
        shown = str(path)
        reached = _Reached()
        try:
            image = self._upload(Path(path), filename=filename, progress=progress, reached=reached)
        except AlreadyUploaded as exc:
            image = exc.image if isinstance(exc.image, dict) else exc.image.to_dict()
            image = self._absolute(dict(image))
            return UploadResult(
                shown, "duplicate", id=image.get("id"), url=image.get("url"), image=image
            )
        except S3DropError as exc:
            return UploadResult(
                shown,
                _status(reached.stage, exc),
                id=reached.upload_id,
                error_code=exc.code,
                error_message=exc.message,
            )
        except OSError as exc:
            return UploadResult(
                shown,
                "failed",
                id=reached.upload_id,
                error_code="unreadable",
                error_message=f"{exc.strerror or exc}",
            )
        return UploadResult(
            shown, "accepted", id=image.get("id"), url=image.get("url"), image=image
        )

    def _upload(
        self, path: Path, *, filename: str | None, progress: Progress | None, reached: _Reached
    ) -> dict[str, Any]:
        """The one upload flow; ``reached`` records how far it got, for :meth:`upload_result`."""
        content_type, size = self.check_file(path)
        reached.stage = "sign"
        name = filename or path.name
        form = self.sign(
            filename=name, content_type=content_type, size=size, sha256=file_sha256(path)
        )
        reached.upload_id = form.id
        reached.stage = "post"
        self.post_file(form, path, filename=name, progress=progress)
        reached.stage = "complete"
        return self.complete(form.id)


@dataclass
class _Reached:
    """How far one upload got: the stage it was in (check, sign, post, complete), its id once
    signed. A failure's status depends on it (see :func:`_status`)."""

    stage: Stage = "check"
    upload_id: str | None = None


def _status(stage: Stage, error: S3DropError) -> Status:
    if stage == "check" and not isinstance(error, Unreachable):
        return "refused" if error.status < 500 else "failed"
    if stage == "sign" and 400 <= error.status < 500:
        return "refused"
    if stage == "complete" and error.status == 422:
        return "rejected"
    return "failed"
