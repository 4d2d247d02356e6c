"""A small HTTP client for a running s3drop server: what the page does, from Python or a terminal.

It signs through the server's JSON API, posts the file straight to storage exactly as the browser
does (every signed field in order, then the file last as ``file``; a root-relative form URL is
resolved against the server URL), then asks the server to complete the upload::

    from s3drop.client import Client

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
idempotent. Failures raise the same :mod:`s3drop.errors` classes the library raises, rebuilt from
the server's ``{"error": {"code", "message"}}`` (or S3's XML), so ``except ImageRejected`` works
against a remote server too.
"""

from __future__ import annotations

import hashlib
import random
import re
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import httpx

from ._version import __version__
from .errors import (
    AlreadyUploaded,
    ConfigurationError,
    FileEmpty,
    FileTooLarge,
    NotAuthenticated,
    PostRejected,
    RateLimited,
    S3DropError,
    TypeNotAllowed,
    Unreachable,
)
from .formats import by_type, declared_as, sniff
from .policy import UploadForm
from .units import format_size

#: ``progress(bytes_sent, total_bytes)``, called from the uploading thread as the body streams;
#: starts again from 0 when a failed attempt is retried.
Progress = Callable[[int, int], None]

Status = Literal["accepted", "duplicate", "rejected", "failed", "refused"]

DEFAULT_SERVER = "http://127.0.0.1:8000"
_CHUNK = 256 * 1024
_NOT_RETRIED_5XX = {501, 505}
_XML_CODE = re.compile(r"<Code>([^<]*)</Code>")
_XML_MESSAGE = re.compile(r"<Message>([^<]*)</Message>")
#: What storage's error codes mean, for stores that answer them with no message (Ceph RGW does).
_S3_REASONS = {
    "AccessDenied": "access denied (the form was refused: expired, altered, or not allowed)",
    "SignatureDoesNotMatch": "the form's signature does not match",
    "EntityTooLarge": "the file is larger than the form allows",
    "EntityTooSmall": "the file is smaller than the form allows",
    "NoSuchBucket": "the bucket does not exist",
    "InvalidArgument": "the form is incomplete",
    "RequestTimeout": "the file was not sent fast enough",
    "InvalidAccessKeyId": "the storage credentials are not known to the store",
}

#: How many first bytes of a file the client sniffs (an AVIF's or HEIF's brands may come late in
#: its ``ftyp`` box; the server sniffs the same way, with the same registry).
SNIFF_BYTES = 4096


def sniff_type(head: bytes) -> str | None:
    """The image type the first bytes of a file announce (:func:`s3drop.formats.sniff`, as the
    server judges them), or None."""
    return sniff(head).content_type


@dataclass(frozen=True)
class ServerConfig:
    """What the server allows (``GET /api/config``), with its labels for the types."""

    allowed_types: list[str]
    max_bytes: int
    backend: str
    #: The server's label for each allowed type (``{"image/jpeg": "JPEG"}``).
    labels: dict[str, str] = field(default_factory=dict)

    def type_names(self, types: list[str]) -> str:
        """``["image/png", "image/jpeg"]`` -> ``"PNG or JPEG"``, in the server's words (a type the
        server did not label: its own name)."""
        names = [self.labels.get(item, item) for item in types]
        return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


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


class Client:
    """Talks to one s3drop server. Thread-safe: one client serves many concurrent uploads.

    ``retries`` is how many times a transient failure is retried (so ``retries + 1`` attempts);
    the wait before retry ``n`` is a random time between half and all of
    ``min(max_backoff, backoff * 2**n)``, or the server's ``Retry-After`` when longer (a 429 whose
    ``Retry-After`` exceeds ``max_retry_after`` is not waited for).
    """

    def __init__(
        self,
        server: str = DEFAULT_SERVER,
        *,
        token: str | None = None,
        retries: int = 4,
        backoff: float = 0.5,
        max_backoff: float = 8.0,
        max_retry_after: float = 30.0,
        timeout: float = 60.0,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.server = server_url(server)
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_retry_after = max_retry_after
        self._sleep = sleep
        headers = {"User-Agent": f"s3drop/{__version__}"}
        self._auth = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(
            headers=headers, timeout=httpx.Timeout(timeout), transport=transport
        )
        self._config: ServerConfig | None = None
        self._token = token
        self._reached = False  # once the server answered, a lost connection is worth retrying

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- the API ------------------------------------------------------------------------------

    def config(self) -> ServerConfig:
        """The server's limits, fetched once; also the one place a missing token is found.

        The server checks the token this client sends (401 for a wrong one) and says whether it
        needs one, so a missing token is one :class:`~s3drop.errors.NotAuthenticated` up front
        rather than one refusal per file.
        """
        if self._config is None:
            data = self._api("GET", "api/config").json()
            if data.get("auth", "none") != "none" and not self._token:
                raise NotAuthenticated(
                    f"the server at {self.server} needs a token: pass --token or set S3DROP_TOKEN"
                )
            self._config = ServerConfig(
                allowed_types=list(data["allowed_types"]),
                max_bytes=int(data["max_bytes"]),
                backend=str(data.get("backend", "")),
                labels={
                    str(entry["type"]): str(entry["label"])
                    for entry in data.get("types", [])
                    if isinstance(entry, dict) and "type" in entry and "label" in entry
                },
            )
        return self._config

    def sign(
        self, *, filename: str, content_type: str, size: int, sha256: str | None = None
    ) -> UploadForm:
        """Ask the server to sign one upload (``POST /api/uploads``).

        With ``sha256``, raises :class:`~s3drop.errors.AlreadyUploaded` (its ``image`` the Image
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
        """Post ``path`` to storage with a signed form, streamed from disk, as a browser does."""
        path = Path(path)
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
        response = self._send("POST", form.url, headers=headers, content=body)
        if not response.is_success:
            raise _error(response)

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
        path = Path(path)
        config = self.config()
        size = path.stat().st_size
        if size == 0:
            raise FileEmpty(f"{path.name} is empty")
        if size > config.max_bytes:
            raise FileTooLarge(
                f"{path.name} is {format_size(size)}; the server takes at most "
                f"{format_size(config.max_bytes)}"
            )
        with path.open("rb") as file:
            content_type = sniff_type(file.read(SNIFF_BYTES))
        allowed = config.type_names(config.allowed_types)
        if content_type is None:
            raise TypeNotAllowed(f"{path.name} is not an image the server takes ({allowed})")
        # Declared as its own type, or as another of its family the server takes (a HEIC as HEIF).
        fmt = by_type(content_type)
        declared = next(
            (t for t in [content_type, *config.allowed_types] if t in config.allowed_types
             and declared_as(fmt, t)),
            None,
        )  # fmt: skip
        if declared is None:
            raise TypeNotAllowed(f"{path.name} is {fmt.label}; the server takes {allowed}")
        return declared, size

    def upload(
        self, path: str | Path, *, filename: str | None = None, progress: Progress | None = None
    ) -> dict[str, Any]:
        """Check, sign, post and complete one file; the Image JSON of the accepted image.

        :class:`~s3drop.errors.AlreadyUploaded` when the server already has it (nothing sent)."""
        path = Path(path)
        content_type, size = self.check_file(path)
        name = filename or path.name
        form = self.sign(
            filename=name, content_type=content_type, size=size, sha256=file_sha256(path)
        )
        self.post_file(form, path, filename=name, progress=progress)
        return self.complete(form.id)

    def upload_result(self, path: str | Path, *, progress: Progress | None = None) -> UploadResult:
        """:meth:`upload`, never raising for one file's failure: what became of it."""
        shown = str(path)
        stage = "check"
        upload_id: str | None = None
        try:
            content_type, size = self.check_file(path)
            stage = "sign"
            name = Path(path).name
            form = self.sign(
                filename=name, content_type=content_type, size=size, sha256=file_sha256(path)
            )
            upload_id = form.id
            stage = "post"
            self.post_file(form, path, filename=name, progress=progress)
            stage = "complete"
            image = self.complete(form.id)
        except AlreadyUploaded as exc:
            image = exc.image if isinstance(exc.image, dict) else exc.image.to_dict()
            image = self._absolute(dict(image))
            return UploadResult(
                shown, "duplicate", id=image.get("id"), url=image.get("url"), image=image
            )
        except S3DropError as exc:
            return UploadResult(
                shown,
                _status(stage, exc),
                id=upload_id,
                error_code=exc.code,
                error_message=exc.message,
            )
        except OSError as exc:
            return UploadResult(
                shown,
                "failed",
                id=upload_id,
                error_code="unreadable",
                error_message=f"{exc.strerror or exc}",
            )
        return UploadResult(
            shown, "accepted", id=image.get("id"), url=image.get("url"), image=image
        )

    # --- transport ----------------------------------------------------------------------------

    def _api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = self._send(method, self.server + path, headers=self._auth, **kwargs)
        if not response.is_success:
            raise _error(response)
        return response

    def _send(
        self,
        method: str,
        url: str,
        *,
        content: Callable[[], Iterator[bytes]] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """One request, retried while the failure is transient; the last response otherwise."""
        attempt = 0
        while True:
            try:
                if content is not None:
                    kwargs["content"] = content()
                response = self._http.request(method, url, **kwargs)
                self._reached = True
            except (httpx.NetworkError, httpx.TimeoutException, httpx.RemoteProtocolError) as exc:
                if isinstance(exc, httpx.ConnectError) and not self._reached:
                    # Nothing ever answered there: a wrong address or a server not started.
                    # Retrying would only make the user wait for the same answer.
                    raise Unreachable(
                        f"cannot reach {_without_query(url)}: {_describe(exc)} (is the server "
                        "running? --server or S3DROP_SERVER names it)"
                    ) from exc
                if attempt >= self.retries:
                    tries = f"{attempt + 1} attempt{'s' if attempt else ''}"
                    raise Unreachable(
                        f"{method} {_without_query(url)}: no answer after {tries} "
                        f"({_describe(exc)})"
                    ) from exc
                self._sleep(self._delay(attempt))
                attempt += 1
                continue
            wait = self._retry_wait(response)
            if wait is None or attempt >= self.retries:
                return response
            response.close()
            self._sleep(max(wait, self._delay(attempt)))
            attempt += 1

    def _retry_wait(self, response: httpx.Response) -> float | None:
        """None unless ``response`` is worth retrying; then at least how long to wait."""
        status = response.status_code
        if status == 429:
            retry_after = _retry_after(response)
            if retry_after is None or retry_after > self.max_retry_after:
                return None
            return retry_after
        if status >= 500 and status not in _NOT_RETRIED_5XX:
            return 0.0
        if status == 400 and b"<Code>RequestTimeout</Code>" in response.content:
            return 0.0  # S3: the body was not sent fast enough; retrying is its own advice
        return None

    def _delay(self, attempt: int) -> float:
        cap = min(self.max_backoff, self.backoff * 2.0**attempt)
        return cap / 2 + random.uniform(0, cap / 2)


# --- helpers --------------------------------------------------------------------------------------


def server_url(server: str) -> str:
    """``127.0.0.1:8000`` -> ``http://127.0.0.1:8000/``: the base every API path joins to."""
    text = server.strip()
    if "://" not in text:
        text = f"http://{text}"
    url = httpx.URL(text)
    if url.scheme not in ("http", "https") or not url.host:
        raise ConfigurationError(f"--server: not an http(s) URL: {server!r}")
    return str(url).rstrip("/") + "/"


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


def _status(stage: str, error: S3DropError) -> Status:
    if stage == "check" and not isinstance(error, Unreachable):
        return "refused" if error.status < 500 else "failed"
    if stage == "sign" and 400 <= error.status < 500:
        return "refused"
    if stage == "complete" and error.status == 422:
        return "rejected"
    return "failed"


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return max(0.0, float(response.headers.get("retry-after", "")))
    except ValueError:
        return None


def _describe(exc: Exception) -> str:
    return str(exc) or type(exc).__name__


def _without_query(url: str) -> str:
    return url.split("?", 1)[0]


def _error_classes() -> dict[str, type[S3DropError]]:
    found: dict[str, type[S3DropError]] = {}
    todo: list[type[S3DropError]] = [S3DropError]
    while todo:
        cls = todo.pop()
        found.setdefault(cls.code, cls)
        todo.extend(cls.__subclasses__())
    return found


def _error(response: httpx.Response) -> S3DropError:
    """The :mod:`s3drop.errors` exception a failed response stands for."""
    status = response.status_code
    text = response.text
    code: str | None = None
    message = ""
    if "xml" in response.headers.get("content-type", "") or text.lstrip().startswith("<"):
        found = _XML_CODE.search(text)
        if found:
            said = _XML_MESSAGE.search(text)
            reason = said[1].strip() if said else ""
            return PostRejected(
                f"storage refused the upload: {reason or _S3_REASONS.get(found[1], found[1])}"
                f" (HTTP {status})",
                code=found[1],
                status=status,
            )
    try:
        data = response.json()
        error = data["error"]
        code, message = str(error["code"]), str(error["message"])
        if code == AlreadyUploaded.code and isinstance(data.get("image"), dict):
            return AlreadyUploaded(message, image=dict(data["image"]))
    except (ValueError, KeyError, TypeError):
        message = f"{response.request.method} {_without_query(str(response.url))} answered " + (
            f"{status} {response.reason_phrase}".strip()
        )
    if status == 429:
        retry_after = _retry_after(response)
        return RateLimited(message, retry_after=round(retry_after or 0))
    cls = _error_classes().get(code or "")
    exc: S3DropError
    if cls is not None and cls not in (PostRejected, RateLimited) and cls.status == status:
        exc = cls(message)
    else:
        exc = S3DropError(message)
        exc.status = status
        exc.code = code or f"http_{status}"
    return exc
