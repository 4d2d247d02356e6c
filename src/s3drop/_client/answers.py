"""A failed answer, from the server's API or from storage, as the :mod:`s3drop._errors` exception it
stands for: rebuilt from the server's ``{"error": {"code", "message"}}`` or from S3's XML, so
``except ImageRejected`` works against a remote server too."""

from __future__ import annotations

import httpx

from .._errors import AlreadyUploaded, RateLimited, S3DropError, S3Error

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


def retry_after(response: httpx.Response) -> float | None:
    """The answer's ``Retry-After`` in seconds, or None."""
    try:
        return max(0.0, float(response.headers.get("retry-after", "")))
    except ValueError:
        return None


def without_query(url: str) -> str:
    return url.split("?", 1)[0]


def s3_error(response: httpx.Response) -> tuple[str, str] | None:
    """``(code, message)`` of storage's XML ``<Error>`` answer; None for anything else."""
    # Imported here: the XML parser costs start-up time the CLI's other commands need not pay.
    from ..storage._s3_xml import parse_error

    return parse_error(response.content)


def is_setup_failure(response: httpx.Response) -> bool:
    """Whether the server's JSON error names a fault of its setup (:attr:`S3DropError.setup`)."""
    try:
        code = str(response.json()["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return False
    cls = _error_classes().get(code)
    return cls is not None and cls.setup


def _error_classes() -> dict[str, type[S3DropError]]:
    found: dict[str, type[S3DropError]] = {}
    todo: list[type[S3DropError]] = [S3DropError]
    while todo:
        cls = todo.pop()
        found.setdefault(cls.code, cls)
        todo.extend(cls.__subclasses__())
    return found


def exception_for(response: httpx.Response) -> S3DropError:
    """The :mod:`s3drop._errors` exception a failed response stands for."""
    status = response.status_code
    text = response.text
    code: str | None = None
    message = ""
    if "xml" in response.headers.get("content-type", "") or text.lstrip().startswith("<"):
        found = s3_error(response)
        if found:
            code, reason = found
            return S3Error(
                f"storage refused the upload: {reason or _S3_REASONS.get(code, code)}"
                f" (HTTP {status})",
                code=code,
                status=status,
            )
    try:
        data = response.json()
        error = data["error"]
        code, message = str(error["code"]), str(error["message"])
        if code == AlreadyUploaded.code and isinstance(data.get("image"), dict):
            return AlreadyUploaded(message, image=dict(data["image"]))
    except (ValueError, KeyError, TypeError):
        message = f"{response.request.method} {without_query(str(response.url))} answered " + (
            f"{status} {response.reason_phrase}".strip()
        )
    if status == 429:
        wait = retry_after(response)
        return RateLimited(message, retry_after=round(wait or 0))
    cls = _error_classes().get(code or "")
    exc: S3DropError
    if cls is not None and cls not in (S3Error, RateLimited) and cls.status == status:
        exc = cls(message)
    else:
        exc = S3DropError(message)
        exc.status = status
        exc.code = code or f"http_{status}"
    return exc
