"""Presigned GET and PUT URLs (AWS Signature Version 4, query-string authentication), made without
boto3, and the check of a presigned PUT as S3 makes it (for the local backend).

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
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import lru_cache
from urllib.parse import quote, urlsplit

from ..errors import PostRejected
from ..policy import ALGORITHM, Credentials, UploadRequest, signing_key

_SAFE = "-_.~"  # what SigV4 leaves unescaped in a query (RFC 3986 unreserved)
_DEFAULT_PORTS = {"http": 80, "https": 443}


@lru_cache(maxsize=16)
def _for_day(credentials: Credentials, day: str, region: str) -> tuple[str, str, str, bytes]:
    """What changes only with the day, the region and the credentials: the scope, the quoted
    ``X-Amz-Credential`` (and session token) parameters, and the derived signing key."""
    scope = f"{day}/{region}/s3/aws4_request"
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


class GetSigner:
    """Signs GET URLs for the objects under ``base_url``: ``scheme://host[/path]`` that an object's
    quoted key is appended to after a ``/`` (the bucket's virtual host, or the endpoint and the
    bucket, path-style)."""

    def __init__(self, base_url: str, *, region: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.region = region
        self.host = canonical_host(self.base_url)
        self.base_path = urlsplit(self.base_url).path

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
        if now is None:
            amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        else:
            amz_date = now.strftime("%Y%m%dT%H%M%SZ")
        scope, credential, token, key_for_day = _for_day(credentials, amz_date[:8], self.region)
        path = quote(key, safe="/~")
        auth = [
            "X-Amz-Algorithm=" + ALGORITHM,
            credential,
            "X-Amz-Date=" + amz_date,
            f"X-Amz-Expires={expires_in}",
            "X-Amz-SignedHeaders=host",
        ]
        # Canonical order is byte order of the names: the token before SignedHeaders, the
        # lower-case response-* after every X-Amz-*. The URL puts the operation's parameter first.
        signed = [*auth[:4], token, auth[4]] if token else auth
        query = [*auth, token] if token else auth
        if disposition is not None:
            wanted = "response-content-disposition=" + quote(disposition, safe=_SAFE)
            signed = [*signed, wanted]
            query = [wanted, *query]
        canonical = (
            f"GET\n{self.base_path}/{path}\n{'&'.join(signed)}\nhost:{self.host}\n\nhost\n"
            "UNSIGNED-PAYLOAD"
        )
        digest = hashlib.sha256(canonical.encode()).hexdigest()
        to_sign = f"{ALGORITHM}\n{amz_date}\n{scope}\n{digest}"
        signature = hmac.digest(key_for_day, to_sign.encode(), "sha256").hex()
        return f"{self.base_url}/{path}?{'&'.join(query)}&X-Amz-Signature={signature}"


#: The longest a presigned URL may live (S3's limit: seven days).
MAX_EXPIRES = 7 * 24 * 3600


def _header_value(value: str) -> str:
    """A header's value as SigV4 signs it: trimmed, runs of spaces as one."""
    return " ".join(value.split())


def _canonical_headers(headers: Mapping[str, str]) -> tuple[str, str]:
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
    :meth:`~s3drop.uploads.S3Drop.complete` checks the digest anyway."""
    headers = {"Content-Length": str(request.max_bytes), "Content-Type": request.content_type}
    for name, value in request.metadata.items():
        headers[f"x-amz-meta-{name}"] = value
    digest = request.metadata.get("sha256")
    if digest is not None:
        headers["x-amz-checksum-sha256"] = base64.b64encode(bytes.fromhex(digest)).decode()
        headers["x-amz-content-sha256"] = digest
    return headers


class PutSigner:
    """Signs PUT URLs for the objects under ``base_url`` (as :class:`GetSigner`), each binding
    the key, the expiry and every header given (plus ``host``). An ``x-amz-content-sha256``
    header is the payload hash signed, as botocore signs it; otherwise ``UNSIGNED-PAYLOAD``."""

    def __init__(self, base_url: str, *, region: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.region = region
        self.host = canonical_host(self.base_url)
        self.base_path = urlsplit(self.base_url).path

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
        if now is None:
            amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        else:
            amz_date = now.strftime("%Y%m%dT%H%M%SZ")
        scope, credential, token, key_for_day = _for_day(credentials, amz_date[:8], self.region)
        signed_headers = {name.lower(): value for name, value in headers.items()}
        signed_headers["host"] = self.host
        block, names = _canonical_headers(signed_headers)
        path = quote(key, safe="/~")
        auth = [
            "X-Amz-Algorithm=" + ALGORITHM,
            credential,
            "X-Amz-Date=" + amz_date,
            f"X-Amz-Expires={expires_in}",
            "X-Amz-SignedHeaders=" + quote(names, safe=_SAFE),
        ]
        signed = [*auth[:4], token, auth[4]] if token else auth
        query = [*auth, token] if token else auth
        payload = signed_headers.get("x-amz-content-sha256", "UNSIGNED-PAYLOAD")
        canonical = f"PUT\n{self.base_path}/{path}\n{'&'.join(signed)}\n{block}\n{names}\n{payload}"
        digest = hashlib.sha256(canonical.encode()).hexdigest()
        to_sign = f"{ALGORITHM}\n{amz_date}\n{scope}\n{digest}"
        signature = hmac.digest(key_for_day, to_sign.encode(), "sha256").hex()
        return f"{self.base_url}/{path}?{'&'.join(query)}&X-Amz-Signature={signature}"


def verify_put(
    *,
    path: str,
    query: Mapping[str, str],
    headers: Mapping[str, str],
    credentials: Credentials,
    region: str,
    now: float | None = None,
) -> dict[str, str]:
    """Check a presigned PUT exactly as S3 does, or raise :class:`PostRejected` (S3's codes).

    ``path`` is the request's decoded path, ``query`` its decoded parameters, ``headers`` its
    headers with lower-case names. Checks the algorithm, the credential and its scope, the
    expiry, that ``host`` and every ``x-amz-*`` header sent is signed, and the signature over
    method, path, query and the signed headers' values (constant-time). Returns the signed
    headers (lower-case names): the caller stores ``content-type`` and ``x-amz-meta-*`` from them.
    """
    if query.get("X-Amz-Algorithm") != ALGORITHM:
        raise PostRejected(
            "Query-string authentication requires X-Amz-Algorithm AWS4-HMAC-SHA256.",
            code="AuthorizationQueryParametersError",
            status=400,
        )
    missing = [
        name
        for name in ("X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires", "X-Amz-SignedHeaders")
        if name not in query
    ]
    if missing or "X-Amz-Signature" not in query:
        raise PostRejected(
            f"Query-string authentication requires {', '.join(missing) or 'X-Amz-Signature'}.",
            code="AuthorizationQueryParametersError",
            status=400,
        )
    scope = query["X-Amz-Credential"].split("/")
    amz_date = query["X-Amz-Date"]
    if len(scope) != 5 or scope[3:] != ["s3", "aws4_request"] or scope[2] != region:
        raise PostRejected(
            "The credential scope is malformed or for another region.",
            code="AuthorizationQueryParametersError",
            status=400,
        )
    if not hmac.compare_digest(scope[0], credentials.access_key):
        raise PostRejected(
            "The AWS Access Key Id you provided does not exist in our records.",
            code="InvalidAccessKeyId",
        )
    try:
        signed_at = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        expires = int(query["X-Amz-Expires"])
    except ValueError:
        raise PostRejected(
            "X-Amz-Date or X-Amz-Expires is malformed.",
            code="AuthorizationQueryParametersError",
            status=400,
        ) from None
    if not 0 < expires <= MAX_EXPIRES or amz_date[:8] != scope[1]:
        raise PostRejected(
            "X-Amz-Expires must be between 1 and 604800 seconds, X-Amz-Date in the scope's day.",
            code="AuthorizationQueryParametersError",
            status=400,
        )
    clock = time.time() if now is None else now
    if clock > signed_at.timestamp() + expires:
        raise PostRejected("Request has expired")
    names = query["X-Amz-SignedHeaders"].split(";")
    if "host" not in names or names != sorted(set(names)):
        raise PostRejected(
            "X-Amz-SignedHeaders must list host, in order, once each.",
            code="AuthorizationQueryParametersError",
            status=400,
        )
    unsigned = sorted(n for n in headers if n.startswith("x-amz-") and n not in names)
    if unsigned:
        raise PostRejected(
            f"There were headers present in the request which were not signed: "
            f"{', '.join(unsigned)}"
        )
    absent = [name for name in names if name not in headers]
    if absent:
        raise PostRejected(
            f"A signed header is missing from the request: {', '.join(absent)}",
            code="SignatureDoesNotMatch",
        )
    signed = {name: headers[name] for name in names}
    block, _ = _canonical_headers(signed)
    payload = headers.get("x-amz-content-sha256", "UNSIGNED-PAYLOAD")
    canonical_query = "&".join(
        sorted(
            f"{quote(name, safe=_SAFE)}={quote(value, safe=_SAFE)}"
            for name, value in query.items()
            if name != "X-Amz-Signature"
        )
    )
    canonical = (
        f"PUT\n{quote(path, safe='/~')}\n{canonical_query}\n{block}\n{';'.join(names)}\n{payload}"
    )
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    to_sign = f"{ALGORITHM}\n{amz_date}\n{'/'.join(scope[1:])}\n{digest}"
    key = signing_key(credentials.secret_key, scope[1], region)
    expected = hmac.digest(key, to_sign.encode(), "sha256").hex()
    if not hmac.compare_digest(expected, query["X-Amz-Signature"].lower()):
        raise PostRejected(
            "The request signature we calculated does not match the signature you provided.",
            code="SignatureDoesNotMatch",
        )
    return signed
