"""Every error s3drop raises, in one tree.

Each class carries the HTTP status and a stable machine-readable ``code``; the web layer turns any of
them into ``{"error": {"code": ..., "message": ...}}`` with that status (built here, once, by
:func:`json_error` and :func:`error_json`, with :func:`error_headers`), the CLI into one line and a
non-zero exit. Third-party errors (boto3, Pillow) are translated into this tree once, where they
happen, with ``raise ... from exc``.

    S3DropError                      500 internal
    ├── ConfigurationError           500 bad_configuration   (raised at start-up, names the setting)
    ├── StorageError                 502 storage_error
    │   ├── StorageUnavailable       503 storage_unavailable
    │   ├── InsufficientStorage      507 insufficient_storage (the disk is full; nothing was kept)
    │   ├── StorageAccessDenied      502 storage_access_denied
    │   └── BucketMissing            502 bucket_missing
    ├── NotFound                     404 not_found
    ├── UploadRefused                400 upload_refused      (nothing was signed)
    │   ├── TypeNotAllowed           415 type_not_allowed
    │   ├── FileTooLarge             413 file_too_large
    │   ├── FileEmpty                400 file_empty
    │   └── InvalidRequest           400 invalid_request
    ├── ImageRejected                422 image_rejected      (the upload was deleted)
    │   ├── NotAnImage               422 not_an_image
    │   ├── TypeMismatch             422 type_mismatch
    │   ├── TooManyPixels            422 too_many_pixels
    │   ├── TooManyFrames            422 too_many_frames
    │   ├── TooComplex               422 too_complex         (a structural cap, before decoding)
    │   ├── CorruptImage             422 corrupt_image
    │   ├── ChecksumMismatch         422 checksum_mismatch
    │   ├── SizeMismatch             422 size_mismatch
    │   └── TooExpensive             422 too_expensive       (the decode hit its CPU or memory limit)
    ├── AlreadyCompleted             409 already_completed   (a form posted again after its upload
    │                                                         was promoted; the new copy is deleted)
    ├── AlreadyUploaded              409 already_uploaded    (signing: the owner already has an
    │                                                         image of these bytes; carries it)
    ├── S3Error                      403 AccessDenied        (a refusal in S3's words: its code and
    │                                                         status, e.g. 400 EntityTooLarge)
    ├── NotAuthenticated             401 not_authenticated
    ├── Forbidden                    403 forbidden
    ├── InvalidHost                  400 invalid_host        (a Host that is not the app's)
    ├── RateLimited                  429 rate_limited        (carries retry_after seconds)
    ├── ServerBusy                   503 busy                (every decoder busy, or shutting down;
    │                                                         carries retry_after seconds)
    ├── WebhookRefused               400 webhook_refused     (a receiver's verify: bad signature,
    │                                                         stale timestamp, replayed id)
    ├── LimitsUnavailable            503 limits_unavailable  (the limits store is busy; retry_after)
    └── Unreachable                  503 unreachable         (client: no answer after retries)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._gallery import Image


class S3DropError(Exception):
    """The root of every error s3drop raises on purpose."""

    status: int = 500
    code: str = "internal"
    #: The server's setup is at fault (credentials, bucket, a setting), not the moment: the same
    #: answer comes until someone fixes it, so a client says it at once instead of retrying.
    setup: bool = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigurationError(S3DropError):
    code = "bad_configuration"
    setup = True


class StorageError(S3DropError):
    status = 502
    code = "storage_error"


class StorageUnavailable(StorageError):
    status = 503
    code = "storage_unavailable"


class InsufficientStorage(StorageError):
    """The local backend's disk is full (or the quota is spent); whatever was half-written is gone."""

    status = 507
    code = "insufficient_storage"


class StorageAccessDenied(StorageError):
    code = "storage_access_denied"
    setup = True


class BucketMissing(StorageError):
    code = "bucket_missing"
    setup = True


class NotFound(S3DropError):
    status = 404
    code = "not_found"


class UploadRefused(S3DropError):
    status = 400
    code = "upload_refused"


class TypeNotAllowed(UploadRefused):
    status = 415
    code = "type_not_allowed"


class FileTooLarge(UploadRefused):
    status = 413
    code = "file_too_large"


class FileEmpty(UploadRefused):
    code = "file_empty"


class InvalidRequest(UploadRefused):
    code = "invalid_request"


class ImageRejected(S3DropError):
    status = 422
    code = "image_rejected"


class NotAnImage(ImageRejected):
    code = "not_an_image"


class TypeMismatch(ImageRejected):
    code = "type_mismatch"


class TooManyPixels(ImageRejected):
    code = "too_many_pixels"


class TooManyFrames(ImageRejected):
    code = "too_many_frames"


class TooComplex(ImageRejected):
    """More scans, segments, chunks, boxes or nesting than any real image has: refused before a
    decoder runs, because each of them costs time (:mod:`s3drop._headers` names the caps)."""

    code = "too_complex"


class CorruptImage(ImageRejected):
    code = "corrupt_image"


class ChecksumMismatch(ImageRejected):
    code = "checksum_mismatch"


class SizeMismatch(ImageRejected):
    code = "size_mismatch"


class TooExpensive(ImageRejected):
    """Decoding the image went over the sandbox's CPU-time or memory limit
    (:mod:`s3drop._sandbox`)."""

    code = "too_expensive"


class AlreadyCompleted(S3DropError):
    """The upload's form was posted again after its image was promoted: one form makes at most
    one image, so the new copy was deleted and nothing else changed."""

    status = 409
    code = "already_completed"


class AlreadyUploaded(S3DropError):
    """Signing found that the caller already has an accepted image whose uploaded bytes have the
    SHA-256 they sent: nothing was signed and no bytes need to be sent; ``image`` is that image
    (a :class:`~s3drop._gallery.Image` from the library, its JSON from :mod:`s3drop._client`; the
    web app answers it beside the error)."""

    status = 409
    code = "already_uploaded"

    def __init__(self, message: str, *, image: Image | dict[str, Any]) -> None:
        super().__init__(message)
        self.image = image


class S3Error(S3DropError):
    """A refusal in S3's own words: S3's ``code`` and status.

    What the local backend answers the browser's POST, PUT and signed reads with
    (``AccessDenied`` 403, ``EntityTooLarge`` 400, ``NoSuchKey`` 404, ...), and what the client
    reads from S3's (or the local backend's) XML, so a client that talks to S3 needs no second code
    path for the embedded default. :mod:`s3drop.storage._s3_xml` writes and reads its XML.
    """

    status = 403
    code = "AccessDenied"

    def __init__(self, message: str, *, code: str = "AccessDenied", status: int = 403) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


class NotAuthenticated(S3DropError):
    status = 401
    code = "not_authenticated"


class Forbidden(S3DropError):
    status = 403
    code = "forbidden"


class InvalidHost(S3DropError):
    """A request named a Host that is not the app's (DNS rebinding, a stray proxy)."""

    status = 400
    code = "invalid_host"


class RateLimited(S3DropError):
    status = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ServerBusy(S3DropError):
    """Nothing is wrong with the request, but no decoder can take it now: try again later.

    Every decode worker is busy and the queue is full, or the server is shutting down. The
    upload stays in quarantine, so a retry completes it.
    """

    status = 503
    code = "busy"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class WebhookRefused(S3DropError):
    """A webhook delivery that :func:`s3drop.webhooks.verify` does not trust: unsigned, signed
    with another secret, changed, stale or replayed."""

    status = 400
    code = "webhook_refused"


class LimitsUnavailable(S3DropError):
    """The limits store did not answer in time (a locked database): nothing was signed or
    counted; try again after ``retry_after`` seconds."""

    status = 503
    code = "limits_unavailable"

    def __init__(self, message: str, *, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Unreachable(S3DropError):
    """A server or storage gave no usable answer, even after retries (:mod:`s3drop._client`)."""

    status = 503
    code = "unreachable"


# --- the one JSON shape of a refusal ------------------------------------------------------------


def json_error(code: str, message: str, **extra: str) -> dict[str, Any]:
    """``{"error": {"code", "message"}}``: every JSON refusal, from the app, its middleware, the
    operations endpoints and the framework adapters; ``extra`` joins the error (a 5xx's
    ``reference``)."""
    return {"error": {"code": code, "message": message, **extra}}


def error_json(exc: S3DropError) -> dict[str, Any]:
    """``exc`` as the API answers it (with ``exc.status``): :func:`json_error`, and beside it the
    ``image`` an :class:`AlreadyUploaded` carries (the client needs to send nothing)."""
    data = json_error(exc.code, exc.message)
    if isinstance(exc, AlreadyUploaded):
        data["image"] = exc.image if isinstance(exc.image, dict) else exc.image.to_dict()
    return data


def error_headers(exc: S3DropError) -> dict[str, str]:
    """The headers of ``exc``'s answer: ``Retry-After`` when it says when to try again (429,
    a busy or locked 503), 30 seconds for any other 503."""
    if isinstance(exc, RateLimited | LimitsUnavailable | ServerBusy):
        return {"Retry-After": str(exc.retry_after)}
    if exc.status == 503:
        return {"Retry-After": "30"}
    return {}
