"""AWS Signature Version 4, made without boto3: POST policies (:func:`sign_post`), presigned GET and
PUT URLs (query-string authentication), and the check of a presigned PUT as S3 makes it (for the
local backend).

Every signature is the same steps, named as botocore names them: the :func:`signing_key` of a
day (derived once, cached), the :func:`credential_scope`, the :func:`canonical_request`, the
:func:`string_to_sign` and the :func:`signature`. A POST policy is the simplest case: its string
to sign is the base64 policy itself.

A gallery page needs two signed URLs per image; boto3's ``generate_presigned_url`` builds a request
object, runs its event hooks and endpoint rules and takes about 200 us for each. :class:`GetSigner`
computes the same URL for the one request s3drop signs (GET of one object; ``host`` the only
signed header; ``UNSIGNED-PAYLOAD``; optionally ``response-content-disposition``) in a few
microseconds, with the signing key derived once a day. For the same inputs and clock the URL is
byte for byte boto3's (``tests/unit/test_sign_get.py`` holds it to that), so every store that takes
boto3's takes these::

    signer = GetSigner("http://127.0.0.1:7480/photos", region="us-east-1")
    url = signer.url("images/x.png", credentials=credentials, expires_in=3600)

:class:`PutSigner` signs a PUT of one object with the headers the client must send as they are
(``content-length``, ``content-type``, ``x-amz-meta-*``, ``x-amz-checksum-sha256``), byte for byte
boto3's ``generate_presigned_url('put_object', ...)`` (``tests/unit/test_sign_put.py``): storage
refuses the PUT when any of them, the key or the size differs. :func:`verify_put` is that check.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any
from urllib.parse import quote, urlsplit

from .._policy import Credentials, UploadRequest

ALGORITHM = "AWS4-HMAC-SHA256"
_SAFE = "-_.~"  # what SigV4 leaves unescaped in a query (RFC 3986 unreserved)
_DEFAULT_PORTS = {"http": 80, "https": 443}
ISO8601 = "%Y-%m-%dT%H:%M:%SZ"
_AMZ_DATE = "%Y%m%dT%H%M%SZ"


# --- the steps --------------------------------------------------------------------------------


@lru_cache(maxsize=32)
def signing_key(secret_key: str, date: str, region: str, service: str = "s3") -> bytes:
    """The key of one day, region and service: four HMACs, derived once and cached."""
    key = hmac.new(f"AWS4{secret_key}".encode(), date.encode(), hashlib.sha256).digest()
    for part in (region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def credential_scope(date: str, region: str, service: str = "s3") -> str:
    """``<date>/<region>/<service>/aws4_request``: what a signature is valid for."""
    return f"{date}/{region}/{service}/aws4_request"


def canonical_request(
    method: str, path: str, query: str, headers: str, signed_headers: str, payload: str
) -> str:
    """The request as SigV4 signs it: ``headers`` is the canonical header block (one
    ``name:value\n`` per signed header), ``signed_headers`` their names joined by ``;``."""
    return f"{method}\n{path}\n{query}\n{headers}\n{signed_headers}\n{payload}"


def canonical_query(params: Mapping[str, str]) -> str:
    """Query parameters as SigV4 signs them: each name and value quoted, in byte order."""
    return "&".join(
        sorted(
            f"{quote(name, safe=_SAFE)}={quote(value, safe=_SAFE)}"
            for name, value in params.items()
        )
    )


def string_to_sign(amz_date: str, scope: str, canonical: str) -> str:
    """What the key signs for a request: the algorithm, the time, the scope and the canonical
    request's SHA-256."""
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    return f"{ALGORITHM}\n{amz_date}\n{scope}\n{digest}"


def signature(key: bytes, to_sign: str) -> str:
    """The hex HMAC-SHA256 of ``to_sign`` under a day's :func:`signing_key`."""
    return hmac.digest(key, to_sign.encode(), "sha256").hex()


# --- POST policies ----------------------------------------------------------------------------


def sign_post(
    request: UploadRequest,
    *,
    bucket: str,
    credentials: Credentials,
    region: str,
    expires_in: int,
    now: datetime | None = None,
) -> tuple[dict[str, str], datetime]:
    """Sign a POST policy for ``request``; returns the form fields and the expiry.

    Conditions, field order and JSON bytes follow boto3's ``generate_presigned_post`` exactly.
    """
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    expires_at = now + timedelta(seconds=expires_in)
    fields: dict[str, str] = {"Content-Type": request.content_type}
    for name, value in request.metadata.items():
        fields[f"x-amz-meta-{name}"] = value
    if request.success_status is not None:
        fields["success_action_status"] = str(request.success_status)
    conditions: list[Any] = [{name: value} for name, value in fields.items()]
    conditions.append(["content-length-range", request.min_bytes, request.max_bytes])
    conditions.append({"bucket": bucket})
    conditions.append({"key": request.key})
    fields["key"] = request.key
    amz_date = now.strftime(_AMZ_DATE)
    scope = f"{credentials.access_key}/{credential_scope(amz_date[:8], region)}"
    fields["x-amz-algorithm"] = ALGORITHM
    fields["x-amz-credential"] = scope
    fields["x-amz-date"] = amz_date
    conditions.append({"x-amz-algorithm": ALGORITHM})
    conditions.append({"x-amz-credential": scope})
    conditions.append({"x-amz-date": amz_date})
    if credentials.token is not None:
        fields["x-amz-security-token"] = credentials.token
        conditions.append({"x-amz-security-token": credentials.token})
    policy = {"expiration": expires_at.strftime(ISO8601), "conditions": conditions}
    encoded = base64.b64encode(json.dumps(policy).encode()).decode()
    fields["policy"] = encoded
    key = signing_key(credentials.secret_key, amz_date[:8], region)
    fields["x-amz-signature"] = signature(key, encoded)  # a policy is its own string to sign
    return fields, expires_at


# --- presigned URLs ---------------------------------------------------------------------------


@lru_cache(maxsize=16)
def _for_day(credentials: Credentials, day: str, region: str) -> tuple[str, str, str, bytes]:
    """What changes only with the day, the region and the credentials: the scope, the quoted
    ``X-Amz-Credential`` (and session token) parameters, and the derived signing key."""
    scope = credential_scope(day, region)
    credential = "X-Amz-Credential=" + quote(f"{credentials.access_key}/{scope}", safe=_SAFE)
    token = ""
    if credentials.token is not None:
        token = "X-Amz-Security-Token=" + quote(credentials.token, safe=_SAFE)
    return scope, credential, token, signing_key(credentials.secret_key, day, region)


def canonical_host(url: str) -> str:
    """The ``host`` header for ``url`` as SigV4 signs it: lower case, the port unless default."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 address
        host = f"[{host}]"
    if parts.port is not None and parts.port != _DEFAULT_PORTS.get(parts.scheme):
        host = f"{host}:{parts.port}"
    return host


class _QuerySigner:
    """What a GET and a PUT URL share: the objects' base URL (``scheme://host[/path]`` that an
    object's quoted key is appended to after a ``/``: the bucket's virtual host, or the endpoint
    and the bucket, path-style), its signed host, and the ``X-Amz-*`` parameters of a request."""

    def __init__(self, base_url: str, *, region: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.region = region
        self.host = canonical_host(self.base_url)
        self.base_path = urlsplit(self.base_url).path

    def _auth(
        self,
        credentials: Credentials,
        *,
        expires_in: int,
        signed_headers: str,
        now: datetime | None,
    ) -> tuple[str, str, bytes, list[str], list[str]]:
        """``(amz_date, scope, signing key, signed, query)``: the ``X-Amz-*`` parameters in
        canonical order (byte order of the names: the token before SignedHeaders) and in the
        URL's order (``signed_headers`` already quoted)."""
        if now is None:
            amz_date = time.strftime(_AMZ_DATE, time.gmtime())
        else:
            amz_date = now.strftime(_AMZ_DATE)
        scope, credential, token, key_for_day = _for_day(credentials, amz_date[:8], self.region)
        auth = [
            "X-Amz-Algorithm=" + ALGORITHM,
            credential,
            "X-Amz-Date=" + amz_date,
            f"X-Amz-Expires={expires_in}",
            "X-Amz-SignedHeaders=" + signed_headers,
        ]
        signed = [*auth[:4], token, auth[4]] if token else auth
        query = [*auth, token] if token else auth
        return amz_date, scope, key_for_day, signed, query


class GetSigner(_QuerySigner):
    """Signs GET URLs for the objects under ``base_url``."""

    def url(
        self,
        key: str,
        *,
        credentials: Credentials,
        expires_in: int,
        disposition: str | None = None,
        now: datetime | None = None,
    ) -> str:
        """A URL that reads ``key`` for ``expires_in`` seconds from ``now`` (default: the clock);
        ``disposition`` is the Content-Disposition storage answers with."""
        amz_date, scope, key_for_day, signed, query = self._auth(
            credentials, expires_in=expires_in, signed_headers="host", now=now
        )
        path = quote(key, safe="/~")
        # The lower-case response-* sorts after every X-Amz-*; the URL puts it first.
        if disposition is not None:
            wanted = "response-content-disposition=" + quote(disposition, safe=_SAFE)
            signed = [*signed, wanted]
            query = [wanted, *query]
        canonical = canonical_request(
            "GET",
            f"{self.base_path}/{path}",
            "&".join(signed),
            f"host:{self.host}\n",
            "host",
            "UNSIGNED-PAYLOAD",
        )
        signed_by = signature(key_for_day, string_to_sign(amz_date, scope, canonical))
        return f"{self.base_url}/{path}?{'&'.join(query)}&X-Amz-Signature={signed_by}"


def _header_value(value: str) -> str:
    """A header's value as SigV4 signs it: trimmed, runs of spaces as one."""
    return " ".join(value.split())


def canonical_headers(headers: Mapping[str, str]) -> tuple[str, str]:
    """``(canonical header block, signed header names)`` of lower-cased ``headers``."""
    names = sorted(headers)
    block = "".join(f"{name}:{_header_value(headers[name])}\n" for name in names)
    return block, ";".join(names)


#: Every header a browser sends with a PUT s3drop signed, besides Content-Length (which the
#: browser sets): what CORS must allow.
PUT_HEADERS = (
    "x-amz-meta-filename",
    "x-amz-meta-sha256",
    "x-amz-meta-owner",
    "x-amz-checksum-sha256",
    "x-amz-content-sha256",
)


def put_headers(request: UploadRequest) -> dict[str, str]:
    """The headers a presigned PUT of ``request`` binds, as the client sends them: the exact size
    and type, the metadata, and when the client gave the file's SHA-256, the body's digest twice:
    ``x-amz-content-sha256`` (hex; SigV4 signs it as the payload hash, so the store checks the
    body against it: Ceph RGW 16 answers 400 ``XAmzContentSHA256Mismatch``) and
    ``x-amz-checksum-sha256`` (base64; AWS S3 answers 400 ``BadDigest``, RGW 16 ignores it).
    :meth:`~s3drop._uploads.S3Drop.complete` checks the digest anyway."""
    headers = {"Content-Length": str(request.max_bytes), "Content-Type": request.content_type}
    for name, value in request.metadata.items():
        headers[f"x-amz-meta-{name}"] = value
    digest = request.metadata.get("sha256")
    if digest is not None:
        headers["x-amz-checksum-sha256"] = base64.b64encode(bytes.fromhex(digest)).decode()
        headers["x-amz-content-sha256"] = digest
    return headers


class PutSigner(_QuerySigner):
    """Signs PUT URLs for the objects under ``base_url`` (as :class:`GetSigner`), each binding
    the key, the expiry and every header given (plus ``host``). An ``x-amz-content-sha256``
    header is the payload hash signed, as botocore signs it; otherwise ``UNSIGNED-PAYLOAD``."""

    def url(
        self,
        key: str,
        *,
        headers: Mapping[str, str],
        credentials: Credentials,
        expires_in: int,
        now: datetime | None = None,
    ) -> str:
        """A URL that stores ``key`` for ``expires_in`` seconds from ``now`` (default: the
        clock), with exactly ``headers`` (names in any case)."""
        signed_headers = {name.lower(): value for name, value in headers.items()}
        signed_headers["host"] = self.host
        block, names = canonical_headers(signed_headers)
        amz_date, scope, key_for_day, signed, query = self._auth(
            credentials, expires_in=expires_in, signed_headers=quote(names, safe=_SAFE), now=now
        )
        path = quote(key, safe="/~")
        payload = signed_headers.get("x-amz-content-sha256", "UNSIGNED-PAYLOAD")
        canonical = canonical_request(
            "PUT", f"{self.base_path}/{path}", "&".join(signed), block, names, payload
        )
        signed_by = signature(key_for_day, string_to_sign(amz_date, scope, canonical))
        return f"{self.base_url}/{path}?{'&'.join(query)}&X-Amz-Signature={signed_by}"
