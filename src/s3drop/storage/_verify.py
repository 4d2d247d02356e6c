"""S3's checks of what a browser sends with what s3drop signed, for the local backend: a POST
form (:func:`verify_post`) and a presigned PUT (:func:`verify_put`).

:func:`verify_post` takes the form's fields (all but the file) and checks, as S3 does: the
SigV4 signature over the policy (constant-time), the credential scope, the expiry, every condition
(exact key, exact Content-Type, the bucket) and that every field is covered by a condition. It
answers a :class:`CheckedPost` (what to store, and the size range to hold the streaming body to)
or raises S3's refusal with S3's status and code. :func:`verify_put` checks a presigned PUT's
query-string signature the same way. The signing half of both is :mod:`s3drop.storage._sigv4`.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote

from .._errors import S3Error
from .._policy import Credentials
from ._sigv4 import (
    ALGORITHM,
    ISO8601,
    canonical_headers,
    canonical_query,
    canonical_request,
    signature,
    signing_key,
    string_to_sign,
)

#: The longest a presigned URL may live (S3's limit: seven days).
MAX_EXPIRES = 7 * 24 * 3600


@dataclass(frozen=True)
class CheckedPost:
    """A form whose signature and conditions hold; the body's size is checked while it streams."""

    key: str
    content_type: str
    metadata: dict[str, str]
    min_bytes: int
    max_bytes: int
    success_status: int


_UNSIGNED = {"policy", "x-amz-signature", "file"}


def verify_post(
    form: Mapping[str, str],
    *,
    bucket: str,
    credentials: Credentials,
    region: str,
    now: datetime | None = None,
) -> CheckedPost:
    """Check a POST form's fields (all but the file) exactly as S3 does, or raise S3Error.

    Signature (HMAC over the policy, constant-time compare), credential scope, expiry, every
    condition, and that every field is covered by a condition. ``form`` keys are compared without
    regard to case, as S3 does.
    """
    fields = {name.lower(): value for name, value in form.items()}
    for required in ("key", "policy", "x-amz-algorithm", "x-amz-credential", "x-amz-date"):
        if required not in fields:
            raise S3Error(
                f"Bucket POST must contain a field named '{required}'.",
                code="InvalidArgument",
                status=400,
            )
    if "x-amz-signature" not in fields:
        raise S3Error(
            "Bucket POST must contain a field named 'x-amz-signature'.",
            code="InvalidArgument",
            status=400,
        )
    if fields["x-amz-algorithm"] != ALGORITHM:
        raise S3Error("Only AWS4-HMAC-SHA256 is supported.", code="InvalidArgument", status=400)
    scope = fields["x-amz-credential"].split("/")
    if len(scope) != 5 or scope[3:] != ["s3", "aws4_request"] or scope[2] != region:
        raise S3Error("The credential scope is malformed or for another region.")
    if not hmac.compare_digest(scope[0].encode(), credentials.access_key.encode()):
        raise S3Error(
            "The AWS Access Key Id you provided does not exist in our records.",
            code="InvalidAccessKeyId",
        )
    key = signing_key(credentials.secret_key, scope[1], region)
    expected = signature(key, fields["policy"])
    if not hmac.compare_digest(expected.encode(), fields["x-amz-signature"].lower().encode()):
        raise S3Error(
            "The request signature we calculated does not match the signature you provided.",
            code="SignatureDoesNotMatch",
        )
    try:
        policy = json.loads(base64.b64decode(fields["policy"], validate=True))
        expiration = datetime.strptime(policy["expiration"][:19], ISO8601[:-1]).replace(tzinfo=UTC)
        conditions = policy["conditions"]
        if not isinstance(conditions, list):
            raise TypeError
    except (binascii.Error, ValueError, KeyError, TypeError) as exc:
        raise S3Error(
            "Invalid Policy: the policy document is malformed.",
            code="InvalidPolicyDocument",
            status=400,
        ) from exc
    if (now or datetime.now(UTC)) >= expiration:
        raise S3Error("Invalid according to Policy: Policy expired.")
    if fields["x-amz-date"][:8] != scope[1]:
        raise S3Error("Invalid according to Policy: x-amz-date does not match the scope.")
    values = {**fields, "bucket": bucket}
    covered: set[str] = set()
    size_range = (0, 5 * 1024**3)
    for condition in conditions:
        name, ok = _check_condition(condition, values)
        if name == "content-length-range":
            size_range = (int(condition[1]), int(condition[2]))
        elif not ok:
            raise S3Error(
                f"Invalid according to Policy: Policy Condition failed: {json.dumps(condition)}"
            )
        covered.add(name)
    extra = sorted(
        name
        for name in fields
        if name not in covered and name not in _UNSIGNED and not name.startswith("x-ignore-")
    )
    if extra:
        raise S3Error(f"Invalid according to Policy: Extra input fields: {', '.join(extra)}")
    success = fields.get("success_action_status", "204")
    return CheckedPost(
        key=fields["key"],
        content_type=fields.get("content-type", "binary/octet-stream"),
        metadata={
            n[len("x-amz-meta-") :]: v for n, v in fields.items() if n.startswith("x-amz-meta-")
        },
        min_bytes=size_range[0],
        max_bytes=size_range[1],
        success_status=int(success) if success in {"200", "201", "204"} else 204,
    )


def _check_condition(condition: object, values: Mapping[str, str]) -> tuple[str, bool]:
    """One policy condition against the form: ``(field name, holds)``."""
    if isinstance(condition, dict) and len(condition) == 1:
        ((name, expected),) = condition.items()
        name = str(name).lower()
        return name, values.get(name) == expected
    if isinstance(condition, list) and len(condition) == 3:
        op = str(condition[0]).lower()
        if op == "content-length-range":
            ok = all(isinstance(bound, int) and bound >= 0 for bound in condition[1:])
            if not ok:
                raise S3Error(
                    "Invalid Policy: content-length-range needs two integers.",
                    code="InvalidPolicyDocument",
                    status=400,
                )
            return "content-length-range", True
        target = str(condition[1])
        if op in {"eq", "starts-with"} and target.startswith("$"):
            name = target[1:].lower()
            value = values.get(name)
            if value is None:
                return name, False
            if op == "eq":
                return name, value == condition[2]
            return name, value.startswith(str(condition[2]))
    raise S3Error(
        f"Invalid Policy: unknown condition {json.dumps(condition)}",
        code="InvalidPolicyDocument",
        status=400,
    )


def verify_put(
    *,
    path: str,
    query: Mapping[str, str],
    headers: Mapping[str, str],
    credentials: Credentials,
    region: str,
    now: float | None = None,
) -> dict[str, str]:
    """Check a presigned PUT exactly as S3 does, or raise :class:`S3Error` (S3's codes).

    ``path`` is the request's decoded path, ``query`` its decoded parameters, ``headers`` its
    headers with lower-case names. Checks the algorithm, the credential and its scope, the
    expiry, that ``host`` and every ``x-amz-*`` header sent is signed, and the signature over
    method, path, query and the signed headers' values (constant-time). Returns the signed
    headers (lower-case names): the caller stores ``content-type`` and ``x-amz-meta-*`` from them.
    """
    if query.get("X-Amz-Algorithm") != ALGORITHM:
        raise S3Error(
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
        raise S3Error(
            f"Query-string authentication requires {', '.join(missing) or 'X-Amz-Signature'}.",
            code="AuthorizationQueryParametersError",
            status=400,
        )
    scope = query["X-Amz-Credential"].split("/")
    amz_date = query["X-Amz-Date"]
    if len(scope) != 5 or scope[3:] != ["s3", "aws4_request"] or scope[2] != region:
        raise S3Error(
            "The credential scope is malformed or for another region.",
            code="AuthorizationQueryParametersError",
            status=400,
        )
    if not hmac.compare_digest(scope[0], credentials.access_key):
        raise S3Error(
            "The AWS Access Key Id you provided does not exist in our records.",
            code="InvalidAccessKeyId",
        )
    try:
        signed_at = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        expires = int(query["X-Amz-Expires"])
    except ValueError:
        raise S3Error(
            "X-Amz-Date or X-Amz-Expires is malformed.",
            code="AuthorizationQueryParametersError",
            status=400,
        ) from None
    if not 0 < expires <= MAX_EXPIRES or amz_date[:8] != scope[1]:
        raise S3Error(
            "X-Amz-Expires must be between 1 and 604800 seconds, X-Amz-Date in the scope's day.",
            code="AuthorizationQueryParametersError",
            status=400,
        )
    clock = time.time() if now is None else now
    if clock > signed_at.timestamp() + expires:
        raise S3Error("Request has expired")
    names = query["X-Amz-SignedHeaders"].split(";")
    if "host" not in names or names != sorted(set(names)):
        raise S3Error(
            "X-Amz-SignedHeaders must list host, in order, once each.",
            code="AuthorizationQueryParametersError",
            status=400,
        )
    unsigned = sorted(n for n in headers if n.startswith("x-amz-") and n not in names)
    if unsigned:
        raise S3Error(
            f"There were headers present in the request which were not signed: "
            f"{', '.join(unsigned)}"
        )
    absent = [name for name in names if name not in headers]
    if absent:
        raise S3Error(
            f"A signed header is missing from the request: {', '.join(absent)}",
            code="SignatureDoesNotMatch",
        )
    signed = {name: headers[name] for name in names}
    block, _ = canonical_headers(signed)
    payload = headers.get("x-amz-content-sha256", "UNSIGNED-PAYLOAD")
    unsigned_query = {name: value for name, value in query.items() if name != "X-Amz-Signature"}
    canonical = canonical_request(
        "PUT",
        quote(path, safe="/~"),
        canonical_query(unsigned_query),
        block,
        ";".join(names),
        payload,
    )
    to_sign = string_to_sign(amz_date, "/".join(scope[1:]), canonical)
    expected = signature(signing_key(credentials.secret_key, scope[1], region), to_sign)
    if not hmac.compare_digest(expected, query["X-Amz-Signature"].lower()):
        raise S3Error(
            "The request signature we calculated does not match the signature you provided.",
            code="SignatureDoesNotMatch",
        )
    return signed
