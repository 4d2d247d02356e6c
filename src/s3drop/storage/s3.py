"""S3 and every S3-compatible store (Ceph RGW, MinIO, Cloudflare R2), through boto3.

One client per process, SigV4 always (boto3 would otherwise sign presigned requests with SigV2 in
us-east-1), path-style addressing for custom endpoints (``127.0.0.1`` has no bucket subdomains).
Upload forms are signed locally (:meth:`Storage.presign_post <s3drop.storage.base.Storage.presign_post>`) with the credentials boto3's own
chain resolves (environment, profile, instance role; refreshed when they expire): signing touches
no network. No ACLs: the bucket stays private and images are read through presigned GETs, or a
configured public base URL (a CDN).

boto3's errors are translated once, by :func:`~s3drop.storage._s3_errors.translate`
(:mod:`s3drop.storage._s3_errors`).
"""

from __future__ import annotations

import threading
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

import boto3
import botocore.exceptions
from botocore.config import Config
from botocore.credentials import RefreshableCredentials

from .._config import Settings
from .._errors import ConfigurationError, NotFound
from .._policy import Credentials, inline_disposition
from ._s3_errors import boto_errors, bucket_missing, error_code, translate
from ._sigv4 import GetSigner, PutSigner
from .base import Download, ObjectInfo, Storage, stable_signing

if TYPE_CHECKING:
    from botocore.credentials import Credentials as BotoCredentials
    from mypy_boto3_s3 import S3Client

# Re-exported from s3_errors: _bucket.py, _doctor.py and tests import the translation from here.
__all__ = [
    "S3Storage",
    "aws_endpoint",
    "boto_errors",
    "bucket_missing",
    "error_code",
    "post_url",
    "translate",
]


def aws_endpoint(region: str) -> str:
    """S3's regional endpoint (``https://s3.eu-west-3.amazonaws.com``)."""
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"https://s3.{region}.{suffix}"


def post_url(bucket: str, *, region: str, endpoint_url: str | None) -> str:
    """Where browsers post forms for ``bucket``: the URL boto3's ``generate_presigned_post`` gives.

    Path-style on a custom endpoint; on AWS the regional virtual host (path-style for a bucket
    name with dots, which would not match the TLS certificate as a host name).
    """
    if endpoint_url:
        return f"{endpoint_url}/{quote(bucket)}"
    endpoint = aws_endpoint(region)
    if "." in bucket:
        return f"{endpoint}/{quote(bucket)}"
    return endpoint.replace("https://", f"https://{bucket}.", 1) + "/"


def _origin(url: str) -> str:
    """``scheme://host[:port]`` of ``url``."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


class S3Storage(Storage):
    """A bucket on S3 or an S3-compatible store. One boto3 client, shared by every thread.

    ``session`` is a ``boto3.Session`` to take credentials from (default: boto3's own chain).
    """

    name = "s3"

    def __init__(self, settings: Settings, *, session: boto3.Session | None = None) -> None:
        if not settings.bucket:
            raise ConfigurationError("S3DROP_BUCKET: the s3 backend needs a bucket")
        self.bucket = settings.bucket
        self.endpoint_url = settings.endpoint_url
        self.public_base_url = settings.public_base_url
        self.read_urls_expire = not self.public_base_url  # the CDN's URLs are unsigned, for good
        self.session = session or boto3.Session()
        self.region = settings.region or self.session.region_name or "us-east-1"
        # On AWS: the regional endpoint, bucket as a virtual host (boto3 falls back to path-style
        # for names with dots), so forms and reads go to one host in the bucket's region.
        config = Config(
            signature_version="s3v4",
            s3={"addressing_style": "path" if self.endpoint_url else "virtual"},
            retries={"max_attempts": 3, "mode": "standard"},
            connect_timeout=5,
            read_timeout=30,
            max_pool_connections=32,
        )
        self.client: S3Client = self.session.client(
            "s3",
            region_name=self.region,
            endpoint_url=self.endpoint_url or aws_endpoint(self.region),
            config=config,
        )
        self.post_url = post_url(self.bucket, region=self.region, endpoint_url=self.endpoint_url)
        # Objects are read where forms are posted: the same host and, path-style, the same path.
        self.get_signer = GetSigner(self.post_url, region=self.region)
        self.put_signer = PutSigner(self.post_url, region=self.region)
        self._lock = threading.Lock()
        self._credentials: BotoCredentials | None = None
        self._fixed: Credentials | None = None  # the keys, once known never to change

    def _errors(self, key: str | None = None) -> AbstractContextManager[None]:
        return boto_errors(bucket=self.bucket, key=key)

    def credentials(self) -> Credentials:
        """The current credentials from boto3's chain (refreshed by boto3 when they expire)."""
        if self._fixed is not None:  # the hot path: keys from the environment or a file
            return self._fixed
        with self._lock:
            if self._credentials is None:
                with self._errors():
                    self._credentials = self.session.get_credentials()
            found = self._credentials
        with self._errors():
            if found is None:
                raise botocore.exceptions.NoCredentialsError()
            frozen = found.get_frozen_credentials()
            if not frozen.access_key or not frozen.secret_key:
                raise botocore.exceptions.PartialCredentialsError(
                    provider="boto3", cred_var="AWS_SECRET_ACCESS_KEY"
                )
        credentials = Credentials(frozen.access_key, frozen.secret_key, frozen.token)
        if not isinstance(found, RefreshableCredentials):
            self._fixed = credentials
        return credentials

    @property
    def signing_blocks(self) -> bool:
        """False once the credentials are known to be fixed (keys from the environment or a
        file); True before they are first read, and for refreshing ones (a role, SSO, IMDS), which
        botocore may fetch over the network inside any signing call."""
        return self._credentials is None or isinstance(self._credentials, RefreshableCredentials)

    def _signing_credentials(self) -> Credentials:
        return self.credentials()

    def _form_url(self) -> str:
        return self.post_url

    def _put_signer(self) -> PutSigner:
        """The URL boto3's ``generate_presigned_url('put_object', ...)`` would give for the
        exact size, type, metadata and checksum (:func:`~s3drop.storage._sigv4.put_headers`)."""
        return self.put_signer

    def _presign_get(self, key: str, *, expires_in: int, filename: str | None) -> str:
        """The URL boto3's ``generate_presigned_url`` would give, signed here in microseconds
        (:mod:`s3drop.storage._sigv4`), or the CDN's."""
        if self.public_base_url:
            return f"{self.public_base_url}/{quote(key)}"
        disposition = inline_disposition(filename) if filename else None
        signed_at, lifetime = stable_signing(expires_in)
        return self.get_signer.url(
            key,
            credentials=self.credentials(),
            expires_in=lifetime,
            disposition=disposition,
            now=datetime.fromtimestamp(signed_at, UTC),
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

    def get(self, key: str) -> Download | None:
        """One GET: the object's facts from the answer's headers, its bytes as they arrive."""
        try:
            with self._errors(key):
                answer = self.client.get_object(Bucket=self.bucket, Key=key)
        except NotFound:
            return None
        info = ObjectInfo(
            key=key,
            size=answer["ContentLength"],
            content_type=answer.get("ContentType", "binary/octet-stream"),
            last_modified=answer["LastModified"],
            metadata=dict(answer.get("Metadata", {})),
        )
        body = answer["Body"]

        def read(size: int) -> bytes:
            with self._errors(key):
                data: bytes = body.read(None if size < 0 else size)
                return data

        return Download(info, read, body.close)

    def read(self, key: str, *, start: int = 0, end: int | None = None) -> bytes:
        extra: dict[str, Any] = {}
        if start or end is not None:
            if end is not None and end <= start:
                return b""
            extra["Range"] = f"bytes={start}-{'' if end is None else end - 1}"
        with self._errors(key):
            try:
                answer = self.client.get_object(Bucket=self.bucket, Key=key, **extra)
            except botocore.exceptions.ClientError as exc:
                if error_code(exc) == "InvalidRange":  # start at or past the end
                    return b""
                raise
            body: bytes = answer["Body"].read()
            return body

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

    def browser_origins(self) -> list[str]:
        """The store's origin (forms are posted there, images read from there), and the CDN's."""
        origins = [_origin(self.post_url)]
        if self.public_base_url:
            origins.append(_origin(self.public_base_url))
        return list(dict.fromkeys(origins))

    def check(self) -> None:
        try:
            with self._errors():
                self.client.head_bucket(Bucket=self.bucket)
        except NotFound as exc:  # HEAD has no body: a bare 404 is the bucket
            raise bucket_missing(self.bucket) from exc
