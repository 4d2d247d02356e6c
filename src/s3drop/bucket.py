"""Setting up and diagnosing the bucket of the s3 backend (``s3drop bucket init`` / ``doctor``).

Both are plain calls that return structured results; the CLI only prints them::

    storage = open_bucket(Settings())
    for step in init_bucket(storage, origins=["https://app.example.com"]):
        print(step.name, step.outcome, step.detail)        # "CORS", "updated", ...
    checks = diagnose_bucket(storage, origins=["https://app.example.com"])
    healthy = all(check.ok for check in checks)

:func:`init_bucket` is idempotent: it creates the bucket if missing, blocks public access, sets
CORS for the given origins only, and expires the quarantine prefix after a day; a second run
changes nothing and says ``unchanged``. Rules it does not own (other CORS or lifecycle rules) are
kept. :func:`diagnose_bucket` reads the same settings back and then proves enforcement for real: it
signs tiny forms, posts an accepted body, an oversized one and one with the wrong Content-Type,
and deletes whatever got stored.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import botocore.exceptions
import httpx

from .config import Settings
from .errors import ConfigurationError, S3DropError, StorageError
from .policy import QUARANTINE_PREFIX, UploadRequest, new_upload_id, quarantine_key
from .storage.s3 import S3Storage, error_code, translate
from .storage.s3_xml import parse_error

CORS_RULE_ID = "s3drop"
LIFECYCLE_RULE_ID = "s3drop-expire-quarantine"
QUARANTINE_DAYS = 1
#: What the page needs from the store: POST the form (XMLHttpRequest, so a preflight), then GET
#: or HEAD what it stored; ETag readable by the page.
CORS_METHODS = ["GET", "HEAD", "POST", "PUT"]
#: A presigned PUT sends its signed headers (storage.sigv4.PUT_HEADERS): metadata and checksum.
CORS_HEADERS = ["Content-Type", "x-amz-meta-*", "x-amz-checksum-sha256", "x-amz-content-sha256"]
CORS_EXPOSE = ["ETag", "Location"]
_UNSUPPORTED = {"NotImplemented", "MethodNotAllowed", "501", "UnsupportedOperation"}
_PUBLIC_GRANTEES = (
    "http://acs.amazonaws.com/groups/global/AllUsers",
    "http://acs.amazonaws.com/groups/global/AuthenticatedUsers",
)
_PROBE_BYTES = 16


@dataclass(frozen=True)
class Step:
    """One thing ``bucket init`` looked at: ``outcome`` is created, updated, unchanged, or
    not supported by this store."""

    name: str
    outcome: str
    detail: str

    @property
    def changed(self) -> bool:
        return self.outcome in {"created", "updated"}


@dataclass(frozen=True)
class Check:
    """One finding of ``bucket doctor``; ``fix`` says what to do when it failed."""

    name: str
    ok: bool
    detail: str
    fix: str = ""
    skipped: bool = False  # not run, because an earlier check failed

    @property
    def result(self) -> str:
        return "pass" if self.ok else "skipped" if self.skipped else "FAIL"


def open_bucket(settings: Settings) -> S3Storage:
    """The s3 backend the settings name, or a ConfigurationError saying how to name one."""
    if settings.storage_backend != "s3" or not settings.bucket:
        raise ConfigurationError(
            "S3DROP_BUCKET: bucket commands need a bucket (set S3DROP_BUCKET, and "
            "AWS_ENDPOINT_URL_S3 for a store other than AWS)"
        )
    return S3Storage(settings)


# --- init -------------------------------------------------------------------------------------


def init_bucket(storage: S3Storage, *, origins: Sequence[str]) -> list[Step]:
    """Create the bucket if missing, block public access, set CORS and the quarantine lifecycle."""
    if not origins:
        raise ConfigurationError("S3DROP_ALLOWED_ORIGINS: CORS needs at least one origin")
    return [
        _ensure_bucket(storage),
        _ensure_private(storage),
        _ensure_cors(storage, origins),
        _ensure_lifecycle(storage),
    ]


class _Unsupported(Exception):
    """The store does not implement this bucket setting."""


def _call(
    storage: S3Storage, method: Callable[..., Any], *, absent: Sequence[str] = (), **params: Any
) -> dict[str, Any] | None:
    """A boto3 call on the bucket: None when the answer is one of the ``absent`` codes (nothing
    configured), :class:`_Unsupported` when the store lacks the feature, else errors translated."""
    try:
        answer: dict[str, Any] = method(Bucket=storage.bucket, **params)
    except botocore.exceptions.ClientError as exc:
        code = error_code(exc)
        if code in absent:
            return None
        if code in _UNSUPPORTED:
            raise _Unsupported(code) from exc
        raise translate(exc, bucket=storage.bucket) from exc
    except botocore.exceptions.BotoCoreError as exc:
        raise translate(exc, bucket=storage.bucket) from exc
    return answer


def _ensure_bucket(storage: S3Storage) -> Step:
    if _call(storage, storage.client.head_bucket, absent=("404", "NoSuchBucket")) is not None:
        return Step("bucket", "unchanged", f"{storage.bucket} exists")
    params: dict[str, Any] = {}
    if storage.endpoint_url is None and storage.region != "us-east-1":
        params["CreateBucketConfiguration"] = {"LocationConstraint": storage.region}
    try:
        storage.client.create_bucket(Bucket=storage.bucket, **params)
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) == "BucketAlreadyOwnedByYou":
            return Step("bucket", "unchanged", f"{storage.bucket} exists")
        if error_code(exc) == "BucketAlreadyExists":
            raise ConfigurationError(
                f"S3DROP_BUCKET: the name {storage.bucket!r} is taken by another account"
            ) from exc
        raise translate(exc, bucket=storage.bucket) from exc
    except botocore.exceptions.BotoCoreError as exc:
        raise translate(exc, bucket=storage.bucket) from exc
    where = storage.endpoint_url or storage.region
    return Step("bucket", "created", f"{storage.bucket} ({where})")


BLOCK_PUBLIC_ACCESS = {
    "BlockPublicAcls": True,
    "IgnorePublicAcls": True,
    "BlockPublicPolicy": True,
    "RestrictPublicBuckets": True,
}
_NO_BLOCK = ("NoSuchPublicAccessBlockConfiguration",)
#: Ceph RGW (15.2 to at least 16.2) refuses every PutObject, even the bucket owner's, while
#: BlockPublicAcls is on; s3drop must put (promoted images, thumbnails). IgnorePublicAcls alone
#: makes any public ACL inert (and s3drop sets none), so on such a store that one flag stays off.
IGNORE_PUBLIC_ACLS = {**BLOCK_PUBLIC_ACCESS, "BlockPublicAcls": False}
_IGNORE_DETAIL = (
    "blocked; BlockPublicAcls off: this store refuses every upload with it on, "
    "IgnorePublicAcls keeps any public ACL inert"
)


def _public_access_block(storage: S3Storage) -> dict[str, Any]:
    """The bucket's public access block ({} when none is set); _Unsupported without the feature."""
    answer = _call(storage, storage.client.get_public_access_block, absent=_NO_BLOCK) or {}
    config: dict[str, Any] = answer.get("PublicAccessBlockConfiguration", {})
    return config


def _can_put(storage: S3Storage) -> bool:
    """Whether s3drop's credentials may write an object now (a tiny quarantine probe, deleted)."""
    key = quarantine_key(new_upload_id(), "image/png")
    try:
        storage.client.put_object(Bucket=storage.bucket, Key=key, Body=b"")
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) == "AccessDenied":
            return False
        raise translate(exc, bucket=storage.bucket, key=key) from exc
    except botocore.exceptions.BotoCoreError as exc:
        raise translate(exc, bucket=storage.bucket, key=key) from exc
    storage.delete(key)
    return True


def _ensure_private(storage: S3Storage) -> Step:
    detail = "blocked (all four settings)"
    try:
        config = _public_access_block(storage)
        if config == IGNORE_PUBLIC_ACLS:
            return Step("public access", "unchanged", _IGNORE_DETAIL)
        block = storage.client.put_public_access_block
        if all(config.get(name) is True for name in BLOCK_PUBLIC_ACCESS):
            if _can_put(storage):
                return Step("public access", "unchanged", detail)
        else:
            _call(storage, block, PublicAccessBlockConfiguration=BLOCK_PUBLIC_ACCESS)
        if not _can_put(storage):  # RGW's bug, or credentials that may not write at all?
            _call(storage, block, PublicAccessBlockConfiguration=IGNORE_PUBLIC_ACLS)
            if _can_put(storage):
                return Step("public access", "updated", _IGNORE_DETAIL)
            _call(storage, block, PublicAccessBlockConfiguration=BLOCK_PUBLIC_ACCESS)
    except _Unsupported:
        return Step(
            "public access",
            "not supported by this store",
            "no public access block here; the bucket stays private (s3drop sets no ACLs)",
        )
    return Step("public access", "updated", detail)


def cors_rule(origins: Sequence[str]) -> dict[str, Any]:
    """The CORS rule s3drop owns: the app's origins may POST forms or PUT files with the headers
    s3drop signs, read the ETag and Location storage answers, and read what they stored."""
    return {
        "ID": CORS_RULE_ID,
        "AllowedOrigins": sorted({origin.rstrip("/") for origin in origins}),
        "AllowedMethods": CORS_METHODS,
        "AllowedHeaders": CORS_HEADERS,
        "ExposeHeaders": CORS_EXPOSE,
        "MaxAgeSeconds": 3600,
    }


def _same_cors(rule: dict[str, Any], wanted: dict[str, Any]) -> bool:
    def norm(r: dict[str, Any]) -> tuple[Any, ...]:
        return (
            sorted(r.get("AllowedOrigins", [])),
            sorted(m.upper() for m in r.get("AllowedMethods", [])),
            sorted(h.lower() for h in r.get("AllowedHeaders", [])),
            sorted(h.lower() for h in r.get("ExposeHeaders", [])),
            r.get("MaxAgeSeconds"),
        )

    return norm(rule) == norm(wanted)


def _ensure_cors(storage: S3Storage, origins: Sequence[str]) -> Step:
    try:
        answer = _call(storage, storage.client.get_bucket_cors, absent=("NoSuchCORSConfiguration",))
        rules: list[dict[str, Any]] = (answer or {}).get("CORSRules", [])
        # Origins are added, never taken away: a second app (or port) keeps the first one's.
        ours = [r for r in rules if r.get("ID") == CORS_RULE_ID]
        kept = [origin for rule in ours for origin in rule.get("AllowedOrigins", [])]
        wanted = cors_rule([*kept, *origins])
        detail = f"{', '.join(wanted['AllowedOrigins'])} may {', '.join(CORS_METHODS)}"
        if any(_same_cors(rule, wanted) for rule in rules):
            return Step("CORS", "unchanged", detail)
        others = [r for r in rules if r.get("ID") != CORS_RULE_ID]
        _call(
            storage,
            storage.client.put_bucket_cors,
            CORSConfiguration={"CORSRules": [*others, wanted]},
        )
    except _Unsupported:
        return Step("CORS", "not supported by this store", "browsers cannot post to it")
    return Step("CORS", "updated", detail)


def lifecycle_rule() -> dict[str, Any]:
    """The lifecycle rule s3drop owns: unpromoted uploads vanish after a day."""
    return {
        "ID": LIFECYCLE_RULE_ID,
        "Filter": {"Prefix": QUARANTINE_PREFIX},
        "Status": "Enabled",
        "Expiration": {"Days": QUARANTINE_DAYS},
    }


def _rule_prefix(rule: dict[str, Any]) -> str | None:
    """The prefix a lifecycle rule applies to ("" for all), or None for tag-filtered rules."""
    rule_filter = rule.get("Filter", {})
    if "Tag" in rule_filter or "Tags" in rule_filter.get("And", {}):
        return None
    prefix = rule_filter.get("Prefix", rule_filter.get("And", {}).get("Prefix"))
    return str(prefix if prefix is not None else rule.get("Prefix", ""))


def quarantine_expiry(rules: list[dict[str, Any]]) -> int | None:
    """Days after which some enabled rule expires everything under the quarantine prefix."""
    days = [
        int(rule["Expiration"]["Days"])
        for rule in rules
        if rule.get("Status") == "Enabled"
        and "Days" in rule.get("Expiration", {})
        and (prefix := _rule_prefix(rule)) is not None
        and QUARANTINE_PREFIX.startswith(prefix)
    ]
    return min(days) if days else None


def _lifecycle_rules(storage: S3Storage) -> list[dict[str, Any]]:
    answer = _call(
        storage,
        storage.client.get_bucket_lifecycle_configuration,
        absent=("NoSuchLifecycleConfiguration",),
    )
    rules: list[dict[str, Any]] = (answer or {}).get("Rules", [])
    return rules


def _ensure_lifecycle(storage: S3Storage) -> Step:
    detail = f"{QUARANTINE_PREFIX} expires after {QUARANTINE_DAYS} day"
    try:
        rules = _lifecycle_rules(storage)
        ours = [rule for rule in rules if rule.get("ID") == LIFECYCLE_RULE_ID]
        if ours and quarantine_expiry(ours) == QUARANTINE_DAYS:
            return Step("lifecycle", "unchanged", detail)
        others = [rule for rule in rules if rule.get("ID") != LIFECYCLE_RULE_ID]
        _call(
            storage,
            storage.client.put_bucket_lifecycle_configuration,
            LifecycleConfiguration={"Rules": [*others, lifecycle_rule()]},
        )
    except _Unsupported:
        return Step(
            "lifecycle",
            "not supported by this store",
            f"delete stale {QUARANTINE_PREFIX} objects yourself",
        )
    return Step("lifecycle", "updated", detail)


# --- doctor -----------------------------------------------------------------------------------

_INIT = "run `s3drop bucket init`"


def check_at_start(storage: S3Storage, *, origins: Sequence[str]) -> list[Check]:
    """The quick part of :func:`diagnose_bucket` that ``serve`` runs before it starts: the
    credentials, the bucket, and whether the store lets the app's own page post to it. Changes
    nothing and stores nothing."""
    checks = _access(storage)
    if all(check.ok for check in checks):
        with httpx.Client(timeout=3) as http:
            checks.append(_check_cors(storage, http, origins))
    return checks


def diagnose_bucket(
    storage: S3Storage, *, origins: Sequence[str], timeout: float = 10
) -> list[Check]:
    """Check credentials, access, CORS, privacy and lifecycle, then prove the policy is enforced."""
    checks = _access(storage)
    if not all(check.ok for check in checks):
        why = "not checked: the bucket cannot be reached"
        return checks + [
            Check(name, False, why, skipped=True)
            for name in ("CORS", "public access", "server writes", "lifecycle", "enforcement")
        ]
    with httpx.Client(timeout=timeout) as http:
        checks.append(_check_cors(storage, http, origins))
        checks.append(_check_private(storage))
        checks.append(_check_writes(storage))
        checks.append(_check_lifecycle(storage))
        checks.extend(_check_enforcement(storage, http))
    return checks


_BAD_KEYS = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken"}


def _access(storage: S3Storage) -> list[Check]:
    """Credentials resolve and storage accepts them; the bucket exists and may be listed."""
    try:
        access_key = storage.credentials().access_key
    except S3DropError as exc:  # none found
        fix = "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE"
        return [
            Check("credentials", False, exc.message, fix),
            Check("bucket access", False, "not checked: no credentials", skipped=True),
        ]
    try:
        storage.client.list_objects_v2(Bucket=storage.bucket, MaxKeys=1)
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
        code = error_code(exc) if isinstance(exc, botocore.exceptions.ClientError) else ""
        message = str(translate(exc, bucket=storage.bucket))
        if code in _BAD_KEYS or code == "RequestTimeTooSkewed":
            return [
                Check("credentials", False, message, "check the access key, secret and clock"),
                Check("bucket access", False, "not checked: credentials refused", skipped=True),
            ]
        if not code:
            credentials = Check(
                "credentials", False, "not checked: storage unreachable", skipped=True
            )
            fix = "check AWS_ENDPOINT_URL_S3 (or AWS_REGION) and the network"
        else:
            credentials = Check("credentials", True, f"accepted ({access_key[:4]}…)")
            fix = (
                _INIT
                if code == "NoSuchBucket"
                else (
                    f"allow s3:ListBucket on {storage.bucket} and s3:GetObject, s3:PutObject, "
                    f"s3:DeleteObject on {storage.bucket}/*"
                )
            )
        return [credentials, Check("bucket access", False, message, fix)]
    return [
        Check("credentials", True, f"accepted ({access_key[:4]}…)"),
        Check("bucket access", True, f"listed {storage.bucket}"),
    ]


def _check_cors(storage: S3Storage, http: httpx.Client, origins: Sequence[str]) -> Check:
    """A real preflight, as the browser sends it before posting a form from each origin."""
    refused: list[str] = []
    fix_origins: list[str] = []
    for origin in origins:
        try:
            answer = http.options(
                storage.post_url,
                headers={"Origin": origin, "Access-Control-Request-Method": "POST"},
            )
        except httpx.HTTPError as exc:
            return Check("CORS", False, f"preflight failed: {exc}", _INIT)
        allowed = answer.headers.get("access-control-allow-origin", "")
        if answer.status_code >= 300 or allowed not in {origin, "*"}:
            refused.append(f"{origin} ({answer.status_code})")
            fix_origins.append(origin)
    if refused:
        flags = " ".join(f"--origin {origin}" for origin in fix_origins)
        return Check(
            "CORS",
            False,
            f"the store refuses a browser POST from {', '.join(refused)}",
            f"run `s3drop bucket init {flags}` (it adds origins; it never removes one)",
        )
    return Check("CORS", True, f"POST allowed from {', '.join(origins)}")


def _check_private(storage: S3Storage) -> Check:
    notes = []
    try:
        config = _public_access_block(storage)
        off = [name for name in BLOCK_PUBLIC_ACCESS if config.get(name) is not True]
        if off == ["BlockPublicAcls"]:  # what init leaves on a store like RGW: see above
            notes.append("public access blocked (public ACLs ignored)")
        elif off:
            return Check("public access", False, f"not blocked: {', '.join(off)}", _INIT)
        else:
            notes.append("public access blocked")
    except _Unsupported:
        notes.append("public access block not supported by this store")
    except S3DropError as exc:
        return Check("public access", False, exc.message, _INIT)
    try:
        grants = (_call(storage, storage.client.get_bucket_acl) or {}).get("Grants", [])
    except (_Unsupported, S3DropError):
        grants = []
    if any(g.get("Grantee", {}).get("URI") in _PUBLIC_GRANTEES for g in grants):
        return Check(
            "public access",
            False,
            "the bucket ACL grants access to everyone",
            "remove the public grants (aws s3api put-bucket-acl --acl private)",
        )
    notes.append("no public ACL grants")
    return Check("public access", True, "; ".join(notes))


def _check_writes(storage: S3Storage) -> Check:
    """The app itself must write promoted images and thumbnails (PutObject, then DeleteObject)."""
    try:
        if _can_put(storage):
            return Check("server writes", True, "PutObject and DeleteObject allowed")
    except StorageError as exc:
        return Check("server writes", False, exc.message, "check the credentials' permissions")
    return Check(
        "server writes",
        False,
        "PutObject refused (on Ceph RGW, BlockPublicAcls refuses every PutObject)",
        "allow s3:PutObject and s3:DeleteObject; on Ceph RGW run `s3drop bucket init`",
    )


def _check_lifecycle(storage: S3Storage) -> Check:
    try:
        days = quarantine_expiry(_lifecycle_rules(storage))
    except _Unsupported:
        return Check(
            "lifecycle",
            False,
            "lifecycle rules not supported by this store",
            f"delete stale {QUARANTINE_PREFIX} objects yourself",
        )
    except S3DropError as exc:
        return Check("lifecycle", False, exc.message, _INIT)
    if days is None:
        return Check("lifecycle", False, f"nothing expires {QUARANTINE_PREFIX}", _INIT)
    return Check("lifecycle", True, f"{QUARANTINE_PREFIX} expires after {days} day(s)")


def _check_enforcement(storage: S3Storage, http: httpx.Client) -> list[Check]:
    """Post a good form, a body a byte over and one a byte under the signed size, and a wrong
    type, for real; delete whatever got stored."""
    body = b"\x89PNG\r\n\x1a\n" + bytes(_PROBE_BYTES - 8)
    probes = [  # name, body, changed fields, should it be stored
        ("enforcement: accepts a signed upload", body, {}, True),
        ("enforcement: refuses a body over the limit", body + b"\0", {}, False),
        ("enforcement: refuses a body under the signed size", body[:-1], {}, False),
        ("enforcement: refuses a wrong Content-Type", body, {"Content-Type": "text/html"}, False),
    ]
    checks = []
    for name, data, changes, accept in probes:
        upload_id = new_upload_id()
        key = quarantine_key(upload_id, "image/png")
        request = UploadRequest(  # signed for exactly _PROBE_BYTES, as the app signs
            upload_id,
            key,
            "image/png",
            _PROBE_BYTES,
            {"filename": "doctor.png"},
            min_bytes=_PROBE_BYTES,
        )
        try:
            form = storage.presign_post(request, expires_in=120)
            answer = http.post(
                form.url,
                data={**form.fields, **changes},
                files={"file": ("doctor.png", data, "image/png")},
            )
            stored = storage.head(key) is not None
            public = stored and http.get(f"{storage.post_url.rstrip('/')}/{key}").status_code < 400
        except (S3DropError, httpx.HTTPError) as exc:
            checks.append(Check(name, False, str(exc), "check AWS_ENDPOINT_URL_S3 and the network"))
            continue
        finally:
            with contextlib.suppress(S3DropError):
                storage.delete(key)
        status = f"{answer.status_code} {_s3_code(answer.text)}".strip()
        ok = stored == accept and answer.is_success == accept and not public
        detail = f"{status}, {'stored (deleted again)' if stored else 'nothing stored'}"
        fix = ""
        if public:
            detail += "; an unsigned GET could read it"
            fix = f"make the bucket private: {_INIT}"
        elif not ok:
            fix = (
                "check AWS_REGION (the form's region), the clock and the credentials"
                if accept
                else "this store does not enforce POST policies: use another S3 engine"
            )
        checks.append(Check(name, ok, detail, fix))
    return checks


def _s3_code(body: str) -> str:
    found = parse_error(body)
    return found[0] if found else ""
