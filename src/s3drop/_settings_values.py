"""What a setting's value may be: the parsing and checks behind :class:`~s3drop._config.Settings`.

:class:`SettingsChecks` holds the field validators (comma lists, types, widths, sizes, origins,
hosts, proxies, URLs, ranges); ``Settings`` declares the fields and inherits them. Beside them the
helpers the settings and the web app share: :func:`host_name` and :func:`is_loopback`.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

from pydantic import SecretStr, field_validator
from pydantic_settings import BaseSettings

from ._formats import FORMATS, VARIANT_TYPES
from ._units import parse_size


def _comma_list(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


_NAME = re.compile(r"[A-Za-z0-9_.@-]{1,64}")


def _pairs(raw: str) -> dict[str, str]:
    """``name:secret,name:secret`` -> {name: secret}; names are owners, so kept simple."""
    pairs: dict[str, str] = {}
    for item in raw.split(","):
        name, sep, secret = item.strip().partition(":")
        if not sep or not _NAME.fullmatch(name):
            raise ValueError(
                "expected name:secret pairs separated by commas (names: letters, digits, _ . @ -)"
            )
        if len(secret) < 12:
            raise ValueError(f"the secret for {name!r} is shorter than 12 characters")
        if name in pairs:
            raise ValueError(f"{name!r} appears twice")
        pairs[name] = secret
    return pairs


#: A host name or address as ``S3DROP_ALLOWED_HOSTS`` takes it: no scheme, no port.
_HOST_PATTERN = re.compile(r"\*|(\*\.)?[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*|\[?[0-9A-Fa-f:.]+\]?")


def _is_wildcard(host: str) -> bool:
    """True for a bind address that means every interface (no name a client would use)."""
    return host.strip("[]") in {"", "0.0.0.0", "::"}  # noqa: S104


def _netloc(host: str) -> str:
    """``host`` as it appears in a URL (IPv6 in brackets)."""
    bare = host.strip("[]")
    return f"[{bare}]" if ":" in bare else bare


def _origin(url: str) -> str:
    """``scheme://host[:port]`` of an URL, lower case."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def host_name(host: str) -> str:
    """The name in a Host header value or a bind address: no port, no IPv6 brackets, lower case
    (``"[::1]:8000"`` -> ``"::1"``, ``"Example.COM:443"`` -> ``"example.com"``)."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    if host.count(":") > 1:  # a bare IPv6 address
        return host
    return host.split(":", 1)[0]


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost."""
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host == "localhost"


class SettingsChecks(BaseSettings):
    """The field validators of :class:`~s3drop._config.Settings`, which declares the fields."""

    @field_validator("allowed_types", mode="before", check_fields=False)
    @classmethod
    def _split_types(cls, value: object) -> object:
        return _comma_list(value)

    @field_validator("allowed_types", check_fields=False)
    @classmethod
    def _known_types(cls, value: list[str]) -> list[str]:
        value = [item.lower() for item in value]
        unknown = [item for item in value if item not in FORMATS]
        if unknown:
            raise ValueError(f"unknown type {unknown[0]!r}; choose from {', '.join(FORMATS)}")
        if not value:
            raise ValueError("allow at least one type")
        return list(dict.fromkeys(value))

    @field_validator("variant_widths", "variant_formats", mode="before", check_fields=False)
    @classmethod
    def _split_variants(cls, value: object) -> object:
        return _comma_list(value)

    @field_validator("variant_widths", check_fields=False)
    @classmethod
    def _variant_widths(cls, value: list[int]) -> list[int]:
        if any(not 16 <= width <= 8192 for width in value):
            raise ValueError("each width must be 16 to 8192 pixels")
        return sorted(set(value))

    @field_validator("variant_formats", check_fields=False)
    @classmethod
    def _variant_formats(cls, value: list[str]) -> list[str]:
        value = [item.lower() for item in value]
        unknown = [item for item in value if item not in VARIANT_TYPES]
        if unknown:
            choose = ", ".join(VARIANT_TYPES)
            raise ValueError(f"{unknown[0]!r} cannot be a variant type; choose from {choose}")
        return [item for item in VARIANT_TYPES if item in value]

    @field_validator("allowed_origins", mode="before", check_fields=False)
    @classmethod
    def _split_origins(cls, value: object) -> object:
        return _comma_list(value)

    @field_validator("allowed_origins", check_fields=False)
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            if not re.fullmatch(r"https?://[^/\s]+", origin):
                raise ValueError(f"not an origin (scheme://host[:port]): {origin!r}")
        return [origin.lower() for origin in value]

    @field_validator("allowed_hosts", "trusted_proxies", mode="before", check_fields=False)
    @classmethod
    def _split_lists(cls, value: object) -> object:
        return _comma_list(value)

    @field_validator("allowed_hosts", check_fields=False)
    @classmethod
    def _hosts(cls, value: list[str]) -> list[str]:
        for host in value:
            if not _HOST_PATTERN.fullmatch(host):
                raise ValueError(
                    f"not a host name (example.com, *.example.com, 192.0.2.7, [2001:db8::1] or *; "
                    f"no scheme, no port): {host!r}"
                )
        return [host_name(host) if host != "*" else host for host in value]

    @field_validator("trusted_proxies", check_fields=False)
    @classmethod
    def _proxies(cls, value: list[str]) -> list[str]:
        for proxy in value:
            if proxy == "*":
                continue
            try:
                ipaddress.ip_network(proxy, strict=False)
            except ValueError:
                raise ValueError(
                    f"not an IP address or network (192.0.2.7, 10.0.0.0/8, ::1 or *): {proxy!r}"
                ) from None
        return value

    @field_validator("tokens", "users", check_fields=False)
    @classmethod
    def _credential_pairs(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            _pairs(value.get_secret_value())
        return value

    @field_validator(
        "max_bytes", "bytes_per_hour", "decode_memory", mode="before", check_fields=False
    )
    @classmethod
    def _size(cls, value: object) -> int:
        return parse_size(value)

    @field_validator("max_bytes", check_fields=False)
    @classmethod
    def _size_range(cls, value: int) -> int:
        if not 1 <= value <= 5 * 1024**3:
            raise ValueError("must be between 1 byte and 5 GiB (the S3 limit for one POST)")
        return value

    @field_validator("decode_memory", check_fields=False)
    @classmethod
    def _decode_memory(cls, value: int) -> int:
        if value < 128 * 1024**2:
            raise ValueError(
                "must be at least 128MiB (Python and the image libraries need ~100 MiB)"
            )
        return value

    @field_validator("decode_cpu_seconds", check_fields=False)
    @classmethod
    def _decode_cpu(cls, value: float) -> float:
        if not 0 < value <= 3600:
            raise ValueError("must be more than 0 and at most 3600 seconds")
        return value

    @field_validator("decode_workers", check_fields=False)
    @classmethod
    def _decode_workers(cls, value: int | None) -> int | None:
        if value is not None and not 1 <= value <= 256:
            raise ValueError("must be between 1 and 256")
        return value

    @field_validator("expires_in", "get_expires_in", check_fields=False)
    @classmethod
    def _expiry(cls, value: int) -> int:
        if not 1 <= value <= 7 * 24 * 3600:
            raise ValueError("must be between 1 second and 7 days (the SigV4 limit)")
        return value

    @field_validator("min_free_bytes", mode="before", check_fields=False)
    @classmethod
    def _free_size(cls, value: object) -> int:
        return parse_size(value)

    @field_validator(
        "header_timeout", "keep_alive_timeout", "upload_idle_timeout", check_fields=False
    )
    @classmethod
    def _timeout(cls, value: float) -> float:
        if not 0 < value <= 3600:
            raise ValueError("must be more than 0 and at most 3600 seconds")
        return value

    @field_validator("port", check_fields=False)
    @classmethod
    def _port(cls, value: int) -> int:
        if not 0 <= value <= 65535:
            raise ValueError("must be a TCP port, 0 to 65535")
        return value

    @field_validator(
        "max_pixels",
        "max_side",
        "max_frames",
        "thumbnail_size",
        "workers",
        "max_connections",
        "rate_per_minute",
        "max_images",
        "decode_queue",
        "webhook_attempts",
        "webhook_queue",
        check_fields=False,
    )
    @classmethod
    def _positive(cls, value: int) -> int:
        if value < 1:
            raise ValueError("must be at least 1")
        return value

    @field_validator("redis_url", check_fields=False)
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        if not re.fullmatch(r"(rediss?|unix)://\S+", value):  # not quoted: it may hold a password
            raise ValueError(
                "not a Redis URL (try redis://127.0.0.1:6379/0, rediss:// for TLS, or "
                "unix:///run/redis/redis.sock)"
            )
        return value

    @field_validator("webhook_timeout", "webhook_backoff", check_fields=False)
    @classmethod
    def _seconds(cls, value: float) -> float:
        if not value > 0:
            raise ValueError("must be a positive number of seconds")
        return value

    @field_validator("webhook_secret", check_fields=False)
    @classmethod
    def _webhook_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            from .webhooks import secret_key

            secret_key(value.get_secret_value())
        return value

    @field_validator(
        "public_base_url", "public_url", "endpoint_url", "webhook_url", check_fields=False
    )
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not re.fullmatch(r"https?://[^/\s]+(/\S*)?", value):
            hint = f" (try http://{value})" if "://" not in value else ""
            raise ValueError(f"not an http(s) URL: {value!r}{hint}")
        return value.rstrip("/")
