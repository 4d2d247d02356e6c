"""Settings: the only module that reads the environment.

Zero configuration works: the embedded local backend, a data folder in the working directory, bound
to 127.0.0.1:8000. Set a bucket (``S3DROP_BUCKET``, or ``AWS_BUCKET_NAME`` / ``BUCKET_NAME`` as the
original Next.js example did) and s3drop signs for S3 instead, with credentials, region and endpoint
from the standard AWS variables and boto3's own chain.

Bad settings fail at start with a message that names the setting::

    >>> Settings(max_bytes=0)
    Traceback (most recent call last):
    s3drop._errors.ConfigurationError: S3DROP_MAX_BYTES: ...
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, SecretStr, ValidationError
from pydantic_settings import NoDecode, SettingsConfigDict

from ._errors import ConfigurationError
from ._settings_values import SettingsChecks, _is_wildcard, _netloc, _origin, _pairs
from ._settings_values import host_name as host_name
from ._settings_values import is_loopback as is_loopback


class Settings(SettingsChecks):
    """Everything s3drop can be told. Environment names are ``S3DROP_<FIELD>`` unless noted.

    The checks of the values are in :class:`~s3drop._settings_values.SettingsChecks`."""

    model_config = SettingsConfigDict(
        env_prefix="S3DROP_",
        env_file=".env",
        extra="ignore",
        populate_by_name=True,
        validate_default=True,
    )

    # --- storage
    backend: Literal["local", "s3"] | None = Field(
        None, description="local (default) or s3 (default once a bucket is set)"
    )
    data_dir: Path = Field(Path("s3drop-data"), description="Folder of the local backend")
    secret_key: SecretStr | None = Field(
        None,
        description="Signing secret of the local backend; generated once into the data folder",
    )
    bucket: str | None = Field(
        None,
        validation_alias=AliasChoices("S3DROP_BUCKET", "AWS_BUCKET_NAME", "BUCKET_NAME", "bucket"),
    )
    region: str | None = Field(
        None, validation_alias=AliasChoices("AWS_REGION", "AWS_DEFAULT_REGION", "region")
    )
    endpoint_url: str | None = Field(
        None,
        validation_alias=AliasChoices("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "endpoint_url"),
    )
    public_base_url: str | None = Field(
        None, description="Serve promoted images from this base URL (a CDN) instead of signed GETs"
    )
    public_url: str | None = Field(
        None,
        description="The app's own external URL, for absolute links; relative links when unset",
    )

    # --- what may be uploaded
    allowed_types: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["image/png", "image/jpeg"]
    )
    max_bytes: int = 10 * 1024 * 1024
    expires_in: int = Field(600, description="Seconds a signed upload form stays valid")
    get_expires_in: int = Field(
        3600,
        description="Seconds a signed image URL stays valid, at least (dated at the hour: stable_signing)",
    )
    max_pixels: int = 50_000_000
    max_side: int = 20_000
    max_frames: int = 500
    thumbnail_size: int = 320
    variant_widths: Annotated[list[int], NoDecode] = Field(
        default_factory=lambda: [320, 640, 1024],
        description="Widths of the responsive variants made at promotion (none wider than the "
        "original); empty: no variants",
    )
    variant_formats: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["image/webp"],
        description="Types of the responsive variants: image/webp, image/avif (smaller files, but "
        "a promotion then needs ~1.4x the memory); empty: no variants",
    )
    client_max_side: int | None = Field(
        None,
        ge=1,
        description="The uploader element downscales images whose longer side is larger to this "
        "many pixels before sending them (orientation applied); unset: sent as they are",
    )
    client_quality: int = Field(
        85, ge=1, le=100, description="JPEG/WebP quality (1-100) of the element's downscaled copies"
    )
    keep_heic_original: bool = Field(
        False,
        description="Keep an uploaded HEIC/HEIF (stored as a JPEG) beside it, under originals/",
    )

    # --- the decode sandbox (s3drop._sandbox)
    decode_workers: int | None = Field(
        None, description="Decode worker processes; one per core when unset"
    )
    decode_cpu_seconds: float = Field(
        10.0, description="CPU seconds one image may cost to verify; over it: 422 too_expensive"
    )
    decode_memory: int = Field(
        1024**3, description="Address space of a decode worker; over it: 422 too_expensive"
    )
    decode_queue: int = Field(
        16, description="Completions that may wait for a decode worker; beyond: 503 busy"
    )

    # --- serving
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    header_timeout: float = Field(
        10.0, description="Seconds a client has to send a whole request head, from connecting"
    )
    keep_alive_timeout: int = Field(
        5, description="Seconds an idle keep-alive connection is kept open between requests"
    )
    max_connections: int = Field(
        1000, description="Open connections per worker; more are answered 503 and closed"
    )
    upload_idle_timeout: float = Field(
        30.0, description="Seconds an upload to the local backend may send nothing before it is cut"
    )
    min_free_bytes: int = Field(
        100 * 1024**2,
        description="The local backend is not ready (/readyz) with less free disk space than this",
    )
    allowed_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Origins whose pages may call the API and post to the bucket; the app's own "
        "origin is always allowed",
    )
    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Host names requests may name besides loopback, the bound address and the "
        "public URL's host: example.com, *.example.com, or * for any",
    )
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Addresses (IPs or networks) whose X-Forwarded-For and X-Forwarded-Proto are "
        "believed; none by default, * for any",
    )

    # --- who may upload, and how much
    auth: Literal["none", "token", "basic"] | None = Field(
        None, description="none, token or basic; chosen from tokens/users when unset"
    )
    tokens: SecretStr | None = Field(None, description="Bearer tokens: name:token,name:token")
    users: SecretStr | None = Field(None, description="Basic users: name:password,name:password")
    public: bool = Field(False, description="Allow a non-loopback bind with no authentication")
    shared: bool = Field(
        False, description="Everyone sees and deletes every image (else only their own)"
    )
    rate_per_minute: int = Field(60, description="Sign requests per minute per user or address")
    bytes_per_hour: int = Field(1024**3, description="Bytes signed per hour per user or address")
    max_images: int = Field(10_000, description="Images stored in total per user or address")
    redis_url: str | None = Field(
        None,
        description="Redis for the limits, shared by every instance (redis://host:6379/0); "
        "else a SQLite file in the data folder",
    )

    # --- telling the host app (see s3drop.webhooks)
    webhook_url: str | None = Field(
        None, description="Where to POST signed image.accepted/rejected/deleted events"
    )
    webhook_secret: SecretStr | None = Field(
        None, description="The webhooks' signing secret, whsec_<base64> (s3drop webhook-secret)"
    )
    webhook_timeout: float = Field(10.0, description="Seconds to wait for the receiver's answer")
    webhook_attempts: int = Field(12, description="Tries per event before giving up")
    webhook_backoff: float = Field(
        1.0, description="Seconds before the first retry; each next one waits twice as long"
    )
    webhook_queue: int = Field(10_000, description="Undelivered events kept; more are dropped")

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise ConfigurationError(_explain(exc)) from None
        if self.backend is None:
            self.backend = "s3" if self.bucket else "local"
        if self.auth is None:
            self.auth = "token" if self.tokens else "basic" if self.users else "none"
        if self.auth == "token" and not self.tokens:
            raise ConfigurationError("S3DROP_TOKENS: token authentication needs tokens")
        if self.auth == "basic" and not self.users:
            raise ConfigurationError("S3DROP_USERS: basic authentication needs users")
        if self.auth == "none" and not self.public and not is_loopback(self.host):
            raise ConfigurationError(
                f"S3DROP_HOST: binding {self.host} with no authentication would let anyone who "
                "can reach it upload; set S3DROP_TOKENS or S3DROP_USERS, or say --public "
                "(S3DROP_PUBLIC=true) if that is what you want"
            )
        if self.webhook_url and self.webhook_secret is None:
            raise ConfigurationError(
                "S3DROP_WEBHOOK_SECRET: webhooks are signed; set a secret (make one with "
                "`s3drop webhook-secret`) or unset S3DROP_WEBHOOK_URL"
            )
        if self.backend == "s3" and not self.bucket:
            raise ConfigurationError(
                "S3DROP_BUCKET: the s3 backend needs a bucket (S3DROP_BUCKET, AWS_BUCKET_NAME or "
                "BUCKET_NAME)"
            )

    @property
    def storage_backend(self) -> Literal["local", "s3"]:
        return self.backend or "local"

    @property
    def auth_mode(self) -> Literal["none", "token", "basic"]:
        return self.auth or "none"

    def token_map(self) -> dict[str, str]:
        """Bearer tokens by name (``S3DROP_TOKENS=alice:token,bob:token``)."""
        return _pairs(self.tokens.get_secret_value()) if self.tokens else {}

    def user_map(self) -> dict[str, str]:
        """Basic-auth passwords by user (``S3DROP_USERS=alice:password``)."""
        return _pairs(self.users.get_secret_value()) if self.users else {}

    def origins(self) -> list[str]:
        """The allowed origins, with the app's own (both loopback spellings on loopback)."""
        own = [] if _is_wildcard(self.host) else [f"http://{_netloc(self.host)}:{self.port}"]
        if is_loopback(self.host):
            own += [f"http://127.0.0.1:{self.port}", f"http://localhost:{self.port}"]
        if self.public_url:
            own.append(_origin(self.public_url))
        return list(dict.fromkeys([*own, *self.allowed_origins]))

    def hosts(self) -> list[str]:
        """Host names requests may name (the ``Host`` header without its port), besides any
        loopback name or address: the bound address, the public URL's host, ``allowed_hosts``.
        ``*.example.com`` matches subdomains, ``*`` anything."""
        own = [] if _is_wildcard(self.host) else [host_name(self.host)]
        if self.public_url:
            own.append(host_name(urlsplit(self.public_url).netloc))
        return list(dict.fromkeys([*own, *self.allowed_hosts]))

    def local_secret(self) -> bytes:
        """The local backend's signing secret: given, or generated once and kept in the data folder.

        Every worker and every restart reads the same file; creating it is atomic (``O_EXCL``), so
        workers racing at first start still agree.
        """
        if self.secret_key is not None:
            return self.secret_key.get_secret_value().encode()
        path = self.data_dir / "secret.key"
        try:
            return path.read_bytes().strip()
        except FileNotFoundError:
            pass
        self.data_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".secret.{secrets.token_hex(8)}")
        tmp.write_bytes(secrets.token_urlsafe(48).encode())
        tmp.chmod(0o600)
        try:
            os.link(tmp, path)  # atomic: fails if another worker won the race
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
        return path.read_bytes().strip()


def _explain(exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        where = str(error["loc"][0]) if error["loc"] else "settings"
        field = _ALIASES.get(where, where)  # an alias (AWS_REGION) stands for its field (region)
        env = where if where in _ALIASES else _ENV_NAMES.get(field, f"S3DROP_{field.upper()}")
        message = error["msg"].removeprefix("Value error, ")
        got = repr(error.get("input"))
        # The value once: not when it is secret, nor when the message already quotes it.
        shown = "" if field in _SECRET_FIELDS or got in message else f" (got {got})"
        lines.append(f"{env}: {message}{shown}")
    return "; ".join(lines)


_SECRET_FIELDS = {"tokens", "users", "secret_key", "redis_url"}
#: Environment names that stand for a field under another name (validation aliases).
_ALIASES = {
    alias: name
    for name, info in Settings.model_fields.items()
    if isinstance(info.validation_alias, AliasChoices)
    for alias in info.validation_alias.choices
    if isinstance(alias, str) and alias.isupper()
}
_ENV_NAMES = {
    "bucket": "S3DROP_BUCKET",
    "region": "AWS_REGION",
    "endpoint_url": "AWS_ENDPOINT_URL_S3",
}
