"""GetSigner against boto3's generate_presigned_url: the same URL for the same inputs and clock.

boto3's side is the very client S3Storage builds (its addressing style, endpoint and region), so
what is compared is what the gallery would have served before, and what it serves now.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

import boto3
import botocore.auth
import pytest

from s3drop._config import Settings
from s3drop._policy import Credentials
from s3drop.storage import base
from s3drop.storage._sigv4 import GetSigner, canonical_host
from s3drop.storage.base import MAX_URL_LIFETIME, URL_WINDOW, stable_signing
from s3drop.storage.s3 import S3Storage

NOW = datetime(2024, 2, 29, 23, 59, 58, 765432, tzinfo=UTC)
KEYS = [
    "images/8204119722354gcvd3nvk3j.300x200.48213.png",
    "thumbs/8204119722354gcvd3nvk3j.webp",
    "images/odd name ~ +%&=?#;,ü🐈.png",
]


def _storage(tmp_path: Path, credentials: Credentials, **settings: Any) -> S3Storage:
    session = boto3.Session(
        aws_access_key_id=credentials.access_key,
        aws_secret_access_key=credentials.secret_key,
        aws_session_token=credentials.token,
    )
    return S3Storage(Settings(data_dir=tmp_path, **settings), session=session)


def _boto3_url(
    storage: S3Storage, key: str, *, expires_in: int, filename: str | None = None
) -> str:
    params: dict[str, Any] = {"Bucket": storage.bucket, "Key": key}
    if filename is not None:
        params["ResponseContentDisposition"] = f"inline; filename*=UTF-8''{quote(filename)}"
    url: str = storage.client.generate_presigned_url(
        "get_object", Params=params, ExpiresIn=expires_in
    )
    return url


STORES: list[tuple[str, dict[str, Any]]] = [
    (
        "rgw-path-style",
        {"bucket": "photos", "endpoint_url": "http://127.0.0.1:7480", "region": "us-east-1"},
    ),
    ("aws-virtual-host", {"bucket": "photos", "region": "eu-west-3"}),
    ("aws-us-east-1", {"bucket": "photos", "region": "us-east-1"}),
    ("aws-dotted-bucket", {"bucket": "my.photos", "region": "ap-southeast-2"}),
    (
        "custom-path-default-port",
        {"bucket": "b", "endpoint_url": "https://Store.Example.COM:443/base", "region": "auto"},
    ),
]
CREDENTIALS = [
    Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
    Credentials("ASIAEXAMPLE", "secret", "FwoGZXIvYXdzEBYaDH+/=token with spaces"),
]


@pytest.mark.parametrize(("store", "settings"), STORES, ids=[name for name, _ in STORES])
@pytest.mark.parametrize("credentials", CREDENTIALS, ids=["plain", "session-token"])
@pytest.mark.parametrize("filename", [None, 'photo from the café 🐈 "x" 100%.jpg'])
def test_byte_identical_to_boto3(
    freeze_botocore: Callable[[datetime], None],
    tmp_path: Path,
    store: str,
    settings: dict[str, Any],
    credentials: Credentials,
    filename: str | None,
) -> None:
    freeze_botocore(NOW)
    storage = _storage(tmp_path, credentials, **settings)
    disposition = f"inline; filename*=UTF-8''{quote(filename)}" if filename else None
    for key in KEYS:
        for expires_in in (1, 3600, 7 * 24 * 3600):
            ours = storage.get_signer.url(
                key,
                credentials=credentials,
                expires_in=expires_in,
                disposition=disposition,
                now=NOW,
            )
            theirs = _boto3_url(storage, key, expires_in=expires_in, filename=filename)
            assert ours == theirs


def test_presign_get_signs_with_the_storage_credentials_and_the_clock(tmp_path: Path) -> None:
    credentials = Credentials("AK", "SK", "TOKEN")
    storage = _storage(
        tmp_path, credentials, bucket="photos", endpoint_url="http://127.0.0.1:9", region="r"
    )
    before = time.time()
    url = storage.presign_get(KEYS[0], expires_in=600, filename="cat.png")
    after = time.time()
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"http://127.0.0.1:9/photos/{KEYS[0]}"
    # Dated at the start of the clock's 600 s window, living one window longer (issue 16).
    signed = datetime.strptime(query["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    assert signed.timestamp() % 600 == 0
    assert before - 600 < signed.timestamp() <= after
    assert query["X-Amz-Credential"] == f"AK/{query['X-Amz-Date'][:8]}/r/s3/aws4_request"
    assert query["X-Amz-Security-Token"] == "TOKEN"
    assert query["X-Amz-Expires"] == "1200"
    assert query["response-content-disposition"] == "inline; filename*=UTF-8''cat.png"


def test_a_different_clock_gives_a_different_url(
    freeze_botocore: Callable[[datetime], None], tmp_path: Path
) -> None:
    """The comparison above is not vacuous: boto3's answer depends on the frozen clock."""
    freeze_botocore(NOW)
    credentials = CREDENTIALS[0]
    storage = _storage(tmp_path, credentials, bucket="photos", region="eu-west-3")
    ours = storage.get_signer.url(
        KEYS[0], credentials=credentials, expires_in=60, now=NOW.replace(second=1)
    )
    assert ours != _boto3_url(storage, KEYS[0], expires_in=60)


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("http://127.0.0.1:7480/photos", "127.0.0.1:7480"),
        ("https://Example.COM:443/base/b", "example.com"),
        ("http://example.com:80", "example.com"),
        ("http://example.com:443", "example.com:443"),
        ("http://[::1]:7480/b", "[::1]:7480"),
        ("https://photos.s3.eu-west-3.amazonaws.com", "photos.s3.eu-west-3.amazonaws.com"),
    ],
)
def test_the_signed_host_is_botocores(url: str, host: str) -> None:
    assert canonical_host(url) == host
    assert GetSigner(url, region="r").host == host
    assert host == botocore.auth._host_from_url(url)


def test_read_urls_are_stable_within_a_window_and_live_at_least_their_lifetime() -> None:
    """Issue 16: a URL signed a second later is the same URL (browsers and CDNs reuse it), and
    from any moment in the window it still works for the configured lifetime."""
    start = 1_800_000_000 - 1_800_000_000 % URL_WINDOW
    for expires_in in (1, 60, 600, 3600, 86400, MAX_URL_LIFETIME):
        window = min(expires_in, URL_WINDOW)
        for now in (start, start + window // 2, start + window - 1):
            signed_at, lifetime = stable_signing(expires_in, now=now)
            assert signed_at == start
            assert stable_signing(expires_in, now=now + 0.9) == (signed_at, lifetime)
            assert lifetime <= MAX_URL_LIFETIME
            if expires_in + window <= MAX_URL_LIFETIME:
                assert signed_at + lifetime - now >= expires_in
        assert stable_signing(expires_in, now=start + window)[0] == start + window
    assert stable_signing(3600, now=start + 1) == (start, 7200)


def test_presign_get_gives_the_same_url_a_second_later(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    storage = _storage(tmp_path, CREDENTIALS[0], bucket="photos", region="eu-west-3")
    clock = [1_800_000_100.0]
    monkeypatch.setattr(base.time, "time", lambda: clock[0])
    first = storage.presign_get(KEYS[0], expires_in=3600)
    clock[0] += 1
    assert storage.presign_get(KEYS[0], expires_in=3600) == first
    clock[0] += URL_WINDOW
    assert storage.presign_get(KEYS[0], expires_in=3600) != first
