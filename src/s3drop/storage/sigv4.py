"""Presigned GET URLs (AWS Signature Version 4, query-string authentication), made without boto3.

A gallery page needs two signed URLs per image; boto3's ``generate_presigned_url`` builds a request
object, runs its event hooks and endpoint rules and takes about 200 us for each. :class:`GetSigner`
computes the same URL for the one request s3drop signs (GET of one object; ``host`` the only
signed header; ``UNSIGNED-PAYLOAD``; optionally ``response-content-disposition``) in a few
microseconds, with the signing key derived once a day. For the same inputs and clock the URL is
byte for byte boto3's (``tests/unit/test_sign_get.py`` holds it to that), so every store that takes
boto3's takes these::

    signer = GetSigner("http://127.0.0.1:7480/photos", region="us-east-1")
    url = signer.url("images/x.png", credentials=credentials, expires_in=3600)
"""

from __future__ import annotations

import hashlib
import hmac
import time
from datetime import datetime
from functools import lru_cache
from urllib.parse import quote, urlsplit

from ..policy import ALGORITHM, Credentials, signing_key

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
