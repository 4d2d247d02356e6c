"""sign_post against boto3's generate_presigned_post: the same bytes for the same inputs and clock."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.config import Config

from s3drop._policy import Credentials, UploadRequest, encode_meta
from s3drop.storage._sigv4 import sign_post

NOW = datetime(2024, 2, 29, 23, 59, 58, 765432, tzinfo=UTC)


def _request(**overrides: Any) -> UploadRequest:
    values: dict[str, Any] = {
        "id": "8291234567890abcdefghij",
        "key": "incoming/8291234567890abcdefghij.png",
        "content_type": "image/png",
        "max_bytes": 10 * 1024 * 1024,
        "metadata": {"filename": encode_meta("Ünïcødé cat 🐈.png"), "sha256": "ab" * 32},
    }
    values.update(overrides)
    return UploadRequest(**values)


def _boto3_post(
    request: UploadRequest,
    *,
    bucket: str,
    credentials: Credentials,
    region: str,
    expires_in: int,
    endpoint_url: str | None = "http://127.0.0.1:9",
) -> dict[str, Any]:
    """boto3's own presigned POST for ``request`` (with botocore's clock as the test froze it)."""
    client = boto3.client(
        "s3",
        region_name=region,
        endpoint_url=endpoint_url,
        aws_access_key_id=credentials.access_key,
        aws_secret_access_key=credentials.secret_key,
        aws_session_token=credentials.token,
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )
    fields = {"Content-Type": request.content_type}
    fields.update({f"x-amz-meta-{name}": value for name, value in request.metadata.items()})
    if request.success_status is not None:
        fields["success_action_status"] = str(request.success_status)
    conditions: list[Any] = [{name: value} for name, value in fields.items()]
    conditions.append(["content-length-range", request.min_bytes, request.max_bytes])
    answer: dict[str, Any] = client.generate_presigned_post(
        bucket, request.key, Fields=dict(fields), Conditions=conditions, ExpiresIn=expires_in
    )
    return answer


@pytest.mark.parametrize(
    ("credentials", "region", "request_overrides"),
    [
        (Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"), "us-east-1", {}),
        (Credentials("AKIDEXAMPLE", "secret", "FwoGZXIvYXdzEBYaDH+/=token"), "eu-west-3", {}),
        (
            Credentials("s3drop-test", "0123456789abcdef"),
            "ap-southeast-2",
            {"content_type": "image/webp", "key": "incoming/x.webp", "metadata": {}},
        ),
        (
            Credentials("AK", "SK", "short-lived"),
            "us-west-2",
            {
                "min_bytes": 5120,
                "max_bytes": 5120,
                "metadata": {"filename": encode_meta('"quotes" & <tags>.png')},
            },
        ),
        (
            Credentials("AK", "SK"),
            "us-east-1",
            {"success_status": 201},
        ),
    ],
    ids=["plain", "session-token", "no-metadata", "escaping", "success-action-status"],
)
def test_byte_identical_to_boto3(
    freeze_botocore: Callable[[datetime], None],
    credentials: Credentials,
    region: str,
    request_overrides: dict[str, Any],
) -> None:
    freeze_botocore(NOW)
    request = _request(**request_overrides)
    ours, expires_at = sign_post(
        request,
        bucket="my-bucket",
        credentials=credentials,
        region=region,
        expires_in=600,
        now=NOW,
    )
    theirs = _boto3_post(
        request,
        bucket="my-bucket",
        credentials=credentials,
        region=region,
        expires_in=600,
    )
    assert list(ours.items()) == list(theirs["fields"].items())  # same fields, same order
    assert ours["policy"] == theirs["fields"]["policy"]
    assert ours["x-amz-signature"] == theirs["fields"]["x-amz-signature"]
    assert expires_at == datetime(2024, 3, 1, 0, 9, 58, tzinfo=UTC)
    assert ("x-amz-security-token" in ours) == (credentials.token is not None)


def test_a_different_clock_gives_a_different_signature(
    freeze_botocore: Callable[[datetime], None],
) -> None:
    """The comparison above is not vacuous: boto3's answer depends on the frozen clock."""
    freeze_botocore(NOW)
    request = _request()
    credentials = Credentials("AK", "SK")
    ours, _ = sign_post(
        request,
        bucket="b",
        credentials=credentials,
        region="us-east-1",
        expires_in=600,
        now=NOW.replace(second=1),
    )
    theirs = _boto3_post(
        request,
        bucket="b",
        credentials=credentials,
        region="us-east-1",
        expires_in=600,
    )
    assert ours["x-amz-signature"] != theirs["fields"]["x-amz-signature"]


def test_every_field_is_a_condition_of_the_policy() -> None:
    fields, _ = sign_post(
        _request(),
        bucket="b",
        credentials=Credentials("AK", "SK", "TOKEN"),
        region="eu-central-1",
        expires_in=60,
        now=NOW,
    )
    policy = json.loads(base64.b64decode(fields["policy"]))
    exact = {
        name: value
        for condition in policy["conditions"]
        if isinstance(condition, dict)
        for name, value in condition.items()
    }
    signed = {
        name: value for name, value in fields.items() if name not in {"policy", "x-amz-signature"}
    }
    assert exact == {**signed, "bucket": "b"}
    assert ["content-length-range", 1, 10 * 1024 * 1024] in policy["conditions"]
    assert not any(c[0] == "starts-with" for c in policy["conditions"] if isinstance(c, list))
    assert policy["expiration"] == "2024-03-01T00:00:58Z"


@pytest.mark.parametrize("region", ["us-east-1", "eu-west-3", "ap-northeast-1", "auto"])
def test_the_credential_scope_carries_the_configured_region(region: str) -> None:
    """RGW ignores the region; AWS refuses a form signed for another one. Held here, at unit level."""
    fields, _ = sign_post(
        _request(),
        bucket="b",
        credentials=Credentials("AK", "SK"),
        region=region,
        expires_in=60,
        now=NOW,
    )
    assert fields["x-amz-credential"] == f"AK/20240229/{region}/s3/aws4_request"
    policy = json.loads(base64.b64decode(fields["policy"]))
    assert {"x-amz-credential": f"AK/20240229/{region}/s3/aws4_request"} in policy["conditions"]
    other, _ = sign_post(
        _request(),
        bucket="b",
        credentials=Credentials("AK", "SK"),
        region="us-west-1" if region != "us-west-1" else "us-east-1",
        expires_in=60,
        now=NOW,
    )
    assert other["x-amz-signature"] != fields["x-amz-signature"]
