"""``s3drop bucket doctor``: what the s3 backend's bucket allows, checked and proven.

A plain call that returns structured results; the CLI only prints them::

    checks = diagnose_bucket(open_bucket(Settings()), origins=["https://app.example.com"])
    healthy = all(check.ok for check in checks)

:func:`diagnose_bucket` reads back what :func:`~s3drop._bucket.init_bucket` sets (CORS, public
access, lifecycle) and then proves enforcement for real: it signs tiny forms, posts an accepted
body, an oversized one and one with the wrong Content-Type, and deletes whatever got stored.
:func:`check_at_start` is its quick part, which ``serve`` runs before it starts.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass

import botocore.exceptions
import httpx

from ._bucket import (
    BLOCK_PUBLIC_ACCESS,
    Unsupported,
    call_s3,
    can_put,
    lifecycle_rules,
    public_access_block,
    quarantine_expiry,
)
from ._errors import S3DropError, StorageError
from ._policy import QUARANTINE_PREFIX, UploadRequest, new_upload_id, quarantine_key
from .storage._s3_xml import parse_error
from .storage.s3 import S3Storage, error_code, translate

_PUBLIC_GRANTEES = (
    "http://acs.amazonaws.com/groups/global/AllUsers",
    "http://acs.amazonaws.com/groups/global/AuthenticatedUsers",
)
_PROBE_BYTES = 16


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
        config = public_access_block(storage)
        off = [name for name in BLOCK_PUBLIC_ACCESS if config.get(name) is not True]
        if off == ["BlockPublicAcls"]:  # what init leaves on a store like RGW: see above
            notes.append("public access blocked (public ACLs ignored)")
        elif off:
            return Check("public access", False, f"not blocked: {', '.join(off)}", _INIT)
        else:
            notes.append("public access blocked")
    except Unsupported:
        notes.append("public access block not supported by this store")
    except S3DropError as exc:
        return Check("public access", False, exc.message, _INIT)
    try:
        grants = (call_s3(storage, storage.client.get_bucket_acl) or {}).get("Grants", [])
    except (Unsupported, S3DropError):
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
        if can_put(storage):
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
        days = quarantine_expiry(lifecycle_rules(storage))
    except Unsupported:
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
