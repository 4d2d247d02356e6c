"""boto3's errors, translated once, by :func:`translate`, into :mod:`s3drop._errors`::

    NoSuchBucket                         -> BucketMissing
    NoSuchKey, 404                       -> NotFound (head() answers None)
    AccessDenied, InvalidAccessKeyId,
      SignatureDoesNotMatch, 403, ...    -> StorageAccessDenied
    SlowDown, 503, InternalError, ...    -> StorageUnavailable
    EndpointConnectionError, timeouts    -> StorageUnavailable
    NoCredentialsError, wrong region,
      InvalidBucketName                  -> ConfigurationError
    anything else                        -> StorageError

The s3 backend (:mod:`s3drop.storage.s3`) and ``s3drop bucket`` wrap their boto3 calls in
:func:`boto_errors`.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from contextlib import contextmanager

import botocore.exceptions

from .._errors import (
    BucketMissing,
    ConfigurationError,
    NotFound,
    StorageAccessDenied,
    StorageError,
    StorageUnavailable,
)

#: Codes that mean "storage refused these credentials or this request".
ACCESS_DENIED_CODES = frozenset(
    {
        "AccessDenied",
        "AllAccessDisabled",
        "AccountProblem",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "InvalidToken",
        "ExpiredToken",
        "TokenRefreshRequired",
        "RequestTimeTooSkewed",
        "403",
    }
)
#: Codes that mean "no such object" (HEAD answers carry only the status).
NOT_FOUND_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
#: Codes that mean "storage cannot answer now; try again later".
UNAVAILABLE_CODES = frozenset(
    {
        "SlowDown",
        "ServiceUnavailable",
        "InternalError",
        "RequestTimeout",
        "Throttling",
        "ThrottlingException",
        "RequestLimitExceeded",
        "500",
        "502",
        "503",
        "504",
    }
)
#: Codes that mean "the bucket is in another region than AWS_REGION says".
WRONG_REGION_CODES = frozenset(
    {
        "PermanentRedirect",
        "AuthorizationHeaderMalformed",
        "IllegalLocationConstraintException",
        "301",
    }
)
_CONNECTION_ERRORS = (
    botocore.exceptions.EndpointConnectionError,
    botocore.exceptions.ConnectTimeoutError,
    botocore.exceptions.ReadTimeoutError,
    botocore.exceptions.ConnectionClosedError,
    botocore.exceptions.ResponseStreamingError,
)


def error_code(exc: botocore.exceptions.ClientError) -> str:
    """S3's error code of a boto3 ``ClientError`` (``"404"`` etc. for body-less HEAD answers)."""
    return str(exc.response.get("Error", {}).get("Code", ""))


def translate(exc: Exception, *, bucket: str, key: str | None = None) -> Exception:
    """The s3drop error for a boto3/botocore error (returned, for ``raise ... from exc``).

    Messages are for the operator: they say what is wrong and which setting fixes it.
    """
    if isinstance(exc, botocore.exceptions.ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        message = str(error.get("Message") or code)
        if code == "NoSuchBucket":
            return bucket_missing(bucket)
        if code in NOT_FOUND_CODES:
            return NotFound(f"no object {key!r}" if key else f"not found: {message}")
        if code == "InvalidAccessKeyId":
            return StorageAccessDenied(
                "storage does not know the access key (InvalidAccessKeyId): check AWS_ACCESS_KEY_ID"
            )
        if code == "SignatureDoesNotMatch":
            return StorageAccessDenied(
                "storage refused the request signature (SignatureDoesNotMatch): check "
                "AWS_SECRET_ACCESS_KEY"
            )
        if code in {"InvalidToken", "ExpiredToken", "TokenRefreshRequired"}:
            return StorageAccessDenied(
                f"storage refused the session token ({code}): refresh AWS_SESSION_TOKEN"
            )
        if code == "RequestTimeTooSkewed":
            return StorageAccessDenied(
                "storage refused the request time (RequestTimeTooSkewed): fix this machine's clock"
            )
        if code in ACCESS_DENIED_CODES:
            return StorageAccessDenied(
                f"storage refused access to bucket {bucket!r} ({code}): check the credentials "
                "and the bucket policy"
            )
        if code in WRONG_REGION_CODES:
            region = error.get("Region") or exc.response.get("ResponseMetadata", {}).get(
                "HTTPHeaders", {}
            ).get("x-amz-bucket-region")
            where = f"; the bucket is in {region}" if region else ""
            return ConfigurationError(
                f"AWS_REGION: bucket {bucket!r} is in another region ({code}{where})"
            )
        if code == "InvalidBucketName":
            return ConfigurationError(f"S3DROP_BUCKET: {bucket!r} is not a valid bucket name")
        if code in UNAVAILABLE_CODES:
            return StorageUnavailable(f"storage is unavailable ({code}): {message}; try again")
        return StorageError(f"storage error {code}: {message}")
    if isinstance(
        exc, botocore.exceptions.NoCredentialsError | botocore.exceptions.PartialCredentialsError
    ):
        return ConfigurationError(
            "AWS_ACCESS_KEY_ID: no S3 credentials found (set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or run with an instance role)"
        )
    if isinstance(exc, botocore.exceptions.CredentialRetrievalError):
        return ConfigurationError(
            f"AWS_PROFILE: boto3 could not get S3 credentials ({exc}): check the profile or role"
        )
    if isinstance(exc, _CONNECTION_ERRORS):
        return StorageUnavailable(
            f"storage is unreachable ({exc}): check AWS_ENDPOINT_URL_S3 and the network"
        )
    if isinstance(exc, botocore.exceptions.BotoCoreError):
        return StorageError(f"storage error: {exc}")
    return exc


@contextmanager
def boto_errors(
    *, bucket: str, key: str | None = None, keep: Collection[str] = ()
) -> Iterator[None]:
    """Within the block, boto3's errors become s3drop's (:func:`translate`), raised from the
    original; a ``ClientError`` whose code is in ``keep`` passes as it is, for the caller to
    handle (``bucket init``: a bucket that exists already)."""
    try:
        yield
    except botocore.exceptions.ClientError as exc:
        if keep and error_code(exc) in keep:
            raise
        raise translate(exc, bucket=bucket, key=key) from exc
    except botocore.exceptions.BotoCoreError as exc:
        raise translate(exc, bucket=bucket, key=key) from exc


def bucket_missing(bucket: str) -> BucketMissing:
    return BucketMissing(
        f"bucket {bucket!r} does not exist: create it with `s3drop bucket init`, or set "
        "S3DROP_BUCKET to an existing bucket"
    )
