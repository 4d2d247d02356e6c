"""Setting up the s3 backend's bucket: ``s3drop bucket init`` (``doctor`` is :mod:`s3drop._doctor`).

A plain call that returns structured results; the CLI only prints them::

    storage = open_bucket(Settings())
    for step in init_bucket(storage, origins=["https://app.example.com"]):
        print(step.name, step.outcome, step.detail)        # "CORS", "updated", ...

:func:`init_bucket` is idempotent: it creates the bucket if missing, blocks public access, sets
CORS for the given origins only, and expires the quarantine prefix after a day; a second run
changes nothing and says ``unchanged``. Rules it does not own (other CORS or lifecycle rules) are
kept. :func:`s3drop._doctor.diagnose_bucket` reads the same settings back and proves enforcement.
Both translate boto3's errors with the s3 backend's :func:`~s3drop.storage._s3_errors.boto_errors`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import botocore.exceptions

from ._config import Settings
from ._errors import ConfigurationError
from ._policy import QUARANTINE_PREFIX, new_upload_id, quarantine_key
from .storage.s3 import S3Storage, boto_errors, error_code

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
_EXISTS = {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}


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


class Unsupported(Exception):
    """The store does not implement this bucket setting."""


def call_s3(
    storage: S3Storage, method: Callable[..., Any], *, absent: Sequence[str] = (), **params: Any
) -> dict[str, Any] | None:
    """A boto3 call on the bucket: None when the answer is one of the ``absent`` codes (nothing
    configured), :class:`Unsupported` when the store lacks the feature, else errors translated."""
    try:
        with boto_errors(bucket=storage.bucket, keep={*absent, *_UNSUPPORTED}):
            answer: dict[str, Any] = method(Bucket=storage.bucket, **params)
    except botocore.exceptions.ClientError as exc:  # one of those kept
        if error_code(exc) in absent:
            return None
        raise Unsupported(error_code(exc)) from exc
    return answer


def _ensure_bucket(storage: S3Storage) -> Step:
    if call_s3(storage, storage.client.head_bucket, absent=("404", "NoSuchBucket")) is not None:
        return Step("bucket", "unchanged", f"{storage.bucket} exists")
    params: dict[str, Any] = {}
    if storage.endpoint_url is None and storage.region != "us-east-1":
        params["CreateBucketConfiguration"] = {"LocationConstraint": storage.region}
    try:
        with boto_errors(bucket=storage.bucket, keep=_EXISTS):
            storage.client.create_bucket(Bucket=storage.bucket, **params)
    except botocore.exceptions.ClientError as exc:  # one of those kept
        if error_code(exc) == "BucketAlreadyOwnedByYou":
            return Step("bucket", "unchanged", f"{storage.bucket} exists")
        raise ConfigurationError(
            f"S3DROP_BUCKET: the name {storage.bucket!r} is taken by another account"
        ) from exc
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


def public_access_block(storage: S3Storage) -> dict[str, Any]:
    """The bucket's public access block ({} when none is set); Unsupported without the feature."""
    answer = call_s3(storage, storage.client.get_public_access_block, absent=_NO_BLOCK) or {}
    config: dict[str, Any] = answer.get("PublicAccessBlockConfiguration", {})
    return config


def can_put(storage: S3Storage) -> bool:
    """Whether s3drop's credentials may write an object now (a tiny quarantine probe, deleted)."""
    key = quarantine_key(new_upload_id(), "image/png")
    try:
        with boto_errors(bucket=storage.bucket, key=key, keep={"AccessDenied"}):
            storage.client.put_object(Bucket=storage.bucket, Key=key, Body=b"")
    except botocore.exceptions.ClientError:  # AccessDenied, kept
        return False
    storage.delete(key)
    return True


def _ensure_private(storage: S3Storage) -> Step:
    detail = "blocked (all four settings)"
    try:
        config = public_access_block(storage)
        if config == IGNORE_PUBLIC_ACLS:
            return Step("public access", "unchanged", _IGNORE_DETAIL)
        block = storage.client.put_public_access_block
        if all(config.get(name) is True for name in BLOCK_PUBLIC_ACCESS):
            if can_put(storage):
                return Step("public access", "unchanged", detail)
        else:
            call_s3(storage, block, PublicAccessBlockConfiguration=BLOCK_PUBLIC_ACCESS)
        if not can_put(storage):  # RGW's bug, or credentials that may not write at all?
            call_s3(storage, block, PublicAccessBlockConfiguration=IGNORE_PUBLIC_ACLS)
            if can_put(storage):
                return Step("public access", "updated", _IGNORE_DETAIL)
            call_s3(storage, block, PublicAccessBlockConfiguration=BLOCK_PUBLIC_ACCESS)
    except Unsupported:
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
        answer = call_s3(
            storage, storage.client.get_bucket_cors, absent=("NoSuchCORSConfiguration",)
        )
        rules: list[dict[str, Any]] = (answer or {}).get("CORSRules", [])
        # Origins are added, never taken away: a second app (or port) keeps the first one's.
        ours = [r for r in rules if r.get("ID") == CORS_RULE_ID]
        kept = [origin for rule in ours for origin in rule.get("AllowedOrigins", [])]
        wanted = cors_rule([*kept, *origins])
        detail = f"{', '.join(wanted['AllowedOrigins'])} may {', '.join(CORS_METHODS)}"
        if any(_same_cors(rule, wanted) for rule in rules):
            return Step("CORS", "unchanged", detail)
        others = [r for r in rules if r.get("ID") != CORS_RULE_ID]
        call_s3(
            storage,
            storage.client.put_bucket_cors,
            CORSConfiguration={"CORSRules": [*others, wanted]},
        )
    except Unsupported:
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


def lifecycle_rules(storage: S3Storage) -> list[dict[str, Any]]:
    """The bucket's lifecycle rules ([] when none are set); Unsupported without the feature."""
    answer = call_s3(
        storage,
        storage.client.get_bucket_lifecycle_configuration,
        absent=("NoSuchLifecycleConfiguration",),
    )
    rules: list[dict[str, Any]] = (answer or {}).get("Rules", [])
    return rules


def _ensure_lifecycle(storage: S3Storage) -> Step:
    detail = f"{QUARANTINE_PREFIX} expires after {QUARANTINE_DAYS} day"
    try:
        rules = lifecycle_rules(storage)
        ours = [rule for rule in rules if rule.get("ID") == LIFECYCLE_RULE_ID]
        if ours and quarantine_expiry(ours) == QUARANTINE_DAYS:
            return Step("lifecycle", "unchanged", detail)
        others = [rule for rule in rules if rule.get("ID") != LIFECYCLE_RULE_ID]
        call_s3(
            storage,
            storage.client.put_bucket_lifecycle_configuration,
            LifecycleConfiguration={"Rules": [*others, lifecycle_rule()]},
        )
    except Unsupported:
        return Step(
            "lifecycle",
            "not supported by this store",
            f"delete stale {QUARANTINE_PREFIX} objects yourself",
        )
    return Step("lifecycle", "updated", detail)
