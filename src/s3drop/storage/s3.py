"""S3 and every S3-compatible store (Ceph RGW, MinIO, Cloudflare R2), through boto3.

One client per process, SigV4 always, path-style addressing for custom endpoints. Upload forms are
signed by :func:`s3drop.policy.sign_post` with the credentials boto3's own chain resolves
(environment, profile, instance role; refreshed when they expire). No ACLs: the bucket stays
private and images are read through presigned GETs, or a configured public base URL (a CDN).

boto3's errors are translated here, once, into :mod:`s3drop.errors`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import boto3
import botocore.exceptions
from botocore.config import Config

from ..config import Settings
from ..errors import (
    BucketMissing,
    ConfigurationError,
    NotFound,
    StorageAccessDenied,
    StorageError,
    StorageUnavailable,
)
from ..policy import Credentials, UploadForm, UploadRequest, sign_post
from .base import ObjectInfo, Storage

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

_ACCESS_DENIED = {
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "InvalidToken",
    "ExpiredToken",
    "AllAccessDisabled",
    "AuthorizationHeaderMalformed",
}
_NOT_FOUND = {"NoSuchKey", "404", "NotFound"}
_UNAVAILABLE = {"SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout", "503", "500"}


def translate(exc: Exception, *, bucket: str, key: str | None = None) -> Exception:
    """The s3drop error for a boto3/botocore error (returned, for ``raise ... from exc``)."""
    if isinstance(exc, botocore.exceptions.ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        message = str(error.get("Message", "") or code)
        if code == "NoSuchBucket":
            return BucketMissing(
                f"bucket {bucket!r} does not exist; create it with `s3drop bucket init`"
            )
        if code in _NOT_FOUND:
            return NotFound(f"no object {key!r}" if key else message)
        if code in _ACCESS_DENIED or code == "403":
            return StorageAccessDenied(
                f"storage refused access to bucket {bucket!r} ({code}): check the credentials "
                "and the bucket policy"
            )
        if code in _UNAVAILABLE:
            return StorageUnavailable(f"storage is unavailable ({code}): {message}")
        return StorageError(f"storage error {code}: {message}")
    if isinstance(
        exc, botocore.exceptions.NoCredentialsError | botocore.exceptions.PartialCredentialsError
    ):
        return ConfigurationError(
            "AWS_ACCESS_KEY_ID: no S3 credentials found (set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or run with an instance role)"
        )
    if isinstance(
        exc,
        botocore.exceptions.EndpointConnectionError
        | botocore.exceptions.ConnectTimeoutError
        | botocore.exceptions.ReadTimeoutError
        | botocore.exceptions.ConnectionClosedError,
    ):
        return StorageUnavailable(f"storage is unreachable: {exc}")
    if isinstance(exc, botocore.exceptions.BotoCoreError):
        return StorageError(f"storage error: {exc}")
    return exc


class S3Storage(Storage):
    name = "s3"

    def __init__(self, settings: Settings, *, session: boto3.Session | None = None) -> None:
        assert settings.bucket is not None
        self.bucket = settings.bucket
        self.endpoint_url = settings.endpoint_url
        self.public_base_url = settings.public_base_url
        self.session = session or boto3.Session()
        self.region = settings.region or self.session.region_name or "us-east-1"
        config = Config(
            signature_version="s3v4",
            s3={"addressing_style": "path" if self.endpoint_url else "auto"},
            retries={"max_attempts": 3, "mode": "standard"},
            connect_timeout=5,
            read_timeout=30,
        )
        self.client: S3Client = self.session.client(
            "s3", region_name=self.region, endpoint_url=self.endpoint_url, config=config
        )
        if self.endpoint_url:
            self.post_url = f"{self.endpoint_url}/{quote(self.bucket)}"
        elif self.region == "us-east-1":
            self.post_url = f"https://{self.bucket}.s3.amazonaws.com"
        else:
            self.post_url = f"https://{self.bucket}.s3.{self.region}.amazonaws.com"

    @contextmanager
    def _errors(self, key: str | None = None) -> Iterator[None]:
        try:
            yield
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            raise translate(exc, bucket=self.bucket, key=key) from exc

    def credentials(self) -> Credentials:
        with self._errors():
            found = self.session.get_credentials()
            if found is None:
                raise botocore.exceptions.NoCredentialsError()
            frozen = found.get_frozen_credentials()
            if not frozen.access_key or not frozen.secret_key:
                raise botocore.exceptions.PartialCredentialsError(
                    provider="boto3", cred_var="AWS_SECRET_ACCESS_KEY"
                )
        return Credentials(frozen.access_key, frozen.secret_key, frozen.token)

    def presign_post(self, request: UploadRequest, *, expires_in: int) -> UploadForm:
        fields, expires_at = sign_post(
            request,
            bucket=self.bucket,
            credentials=self.credentials(),
            region=self.region,
            expires_in=expires_in,
        )
        return UploadForm(
            id=request.id,
            key=request.key,
            url=self.post_url,
            fields=fields,
            content_type=request.content_type,
            max_bytes=request.max_bytes,
            expires_at=expires_at,
        )

    def presign_get(self, key: str, *, expires_in: int, filename: str | None = None) -> str:
        if self.public_base_url:
            return f"{self.public_base_url}/{quote(key)}"
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if filename:
            params["ResponseContentDisposition"] = f"inline; filename*=UTF-8''{quote(filename)}"
        with self._errors(key):
            return self.client.generate_presigned_url(
                "get_object", Params=params, ExpiresIn=expires_in
            )

    def head(self, key: str) -> ObjectInfo | None:
        try:
            with self._errors(key):
                answer = self.client.head_object(Bucket=self.bucket, Key=key)
        except NotFound:
            return None
        return ObjectInfo(
            key=key,
            size=answer["ContentLength"],
            content_type=answer.get("ContentType", "binary/octet-stream"),
            last_modified=answer["LastModified"],
            metadata=dict(answer.get("Metadata", {})),
        )

    def read(self, key: str, *, start: int = 0, end: int | None = None) -> bytes:
        extra: dict[str, Any] = {}
        if start or end is not None:
            if end is not None and end <= start:
                return b""
            extra["Range"] = f"bytes={start}-{'' if end is None else end - 1}"
        with self._errors(key):
            answer = self.client.get_object(Bucket=self.bucket, Key=key, **extra)
            return answer["Body"].read()

    def put(self, key: str, data: bytes, *, content_type: str, metadata: dict[str, str]) -> None:
        with self._errors(key):
            self.client.put_object(
                Bucket=self.bucket, Key=key, Body=data, ContentType=content_type, Metadata=metadata
            )

    def delete(self, key: str) -> None:
        with self._errors(key):
            self.client.delete_object(Bucket=self.bucket, Key=key)

    def list_objects(
        self, prefix: str, *, start_after: str | None = None, limit: int = 1000
    ) -> list[ObjectInfo]:
        params: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix, "MaxKeys": limit}
        if start_after:
            params["StartAfter"] = start_after
        with self._errors():
            answer = self.client.list_objects_v2(**params)
        return [
            ObjectInfo(
                key=item["Key"],
                size=item["Size"],
                content_type="",
                last_modified=item["LastModified"],
            )
            for item in answer.get("Contents", [])
        ]

    def check(self) -> None:
        with self._errors():
            self.client.head_bucket(Bucket=self.bucket)
