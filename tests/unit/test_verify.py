"""S3's check of a posted form (storage.verify.verify_post), against forms signed as the app signs
them: an untouched form passes, every change to it is refused with S3's code and status."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta

import pytest
from tests.unit.test_policy import CREDENTIALS, NOW, _policy, _signed

from s3drop._errors import S3Error
from s3drop._policy import Credentials
from s3drop.storage._verify import verify_post


def _verify(fields: dict[str, str], *, at: datetime = NOW) -> object:
    return verify_post(fields, bucket="photos", credentials=CREDENTIALS, region="eu-west-1", now=at)


# --- checking posted forms as S3 does -----------------------------------------------------------


def test_an_untouched_form_passes() -> None:
    checked = _verify(_signed())
    assert checked.content_type == "image/png"  # type: ignore[attr-defined]
    assert checked.min_bytes == checked.max_bytes == 1000  # type: ignore[attr-defined]
    assert checked.metadata == {"filename": "cat.png"}  # type: ignore[attr-defined]


def test_field_names_are_case_insensitive() -> None:
    fields = _signed()
    fields["content-type"] = fields.pop("Content-Type")
    _verify(fields)


def _tamper(name: str, value: str | None) -> dict[str, str]:
    fields = _signed()
    if value is None:
        del fields[name]
    else:
        fields[name] = value
    return fields


def _self_made_policy() -> dict[str, str]:
    fields = _signed()
    policy = _policy(fields)
    policy["conditions"] = [c for c in policy["conditions"] if "content-length-range" not in c]  # type: ignore[attr-defined]
    fields["policy"] = base64.b64encode(json.dumps(policy).encode()).decode()
    return fields


@pytest.mark.parametrize(
    ("fields", "code", "status"),
    [
        (_tamper("Content-Type", "text/html"), "AccessDenied", 403),
        (_tamper("key", "incoming/other.png"), "AccessDenied", 403),
        (_tamper("key", "../secret.key"), "AccessDenied", 403),
        (_tamper("x-amz-meta-filename", "x.html"), "AccessDenied", 403),
        (_tamper("x-amz-meta-owner", "mallory"), "AccessDenied", 403),
        (_tamper("acl", "public-read"), "AccessDenied", 403),
        (_tamper("x-amz-signature", "0" * 64), "SignatureDoesNotMatch", 403),
        (_tamper("x-amz-signature", None), "InvalidArgument", 400),
        (_tamper("policy", None), "InvalidArgument", 400),
        (
            _tamper("x-amz-credential", "OTHERKEY/20261128/eu-west-1/s3/aws4_request"),
            "InvalidAccessKeyId",
            403,
        ),
        (
            _tamper("x-amz-credential", "AKIDEXAMPLE/20261128/us-east-1/s3/aws4_request"),
            "AccessDenied",
            403,
        ),
        (_tamper("x-amz-algorithm", "AWS4-HMAC-SHA1"), "InvalidArgument", 400),
        (_self_made_policy(), "SignatureDoesNotMatch", 403),
    ],
)
def test_tampered_forms_are_refused(fields: dict[str, str], code: str, status: int) -> None:
    with pytest.raises(S3Error) as caught:
        _verify(fields)
    assert (caught.value.code, caught.value.status) == (code, status)


def test_expired_forms_are_refused() -> None:
    fields = _signed()
    _verify(fields, at=NOW + timedelta(seconds=599))
    with pytest.raises(S3Error, match="expired"):
        _verify(fields, at=NOW + timedelta(seconds=600))


def test_another_secret_does_not_verify() -> None:
    with pytest.raises(S3Error) as caught:
        verify_post(
            _signed(),
            bucket="photos",
            credentials=Credentials("AKIDEXAMPLE", "another-secret"),
            region="eu-west-1",
            now=NOW,
        )
    assert caught.value.code == "SignatureDoesNotMatch"


def test_another_bucket_does_not_verify() -> None:
    with pytest.raises(S3Error, match="bucket"):
        verify_post(_signed(), bucket="other", credentials=CREDENTIALS, region="eu-west-1", now=NOW)
