"""The s3 backend without a store: which setting wins, regions, SigV4, URLs, error translation."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import botocore.exceptions
import pytest
from botocore.config import Config
from botocore.stub import Stubber

from s3drop import Settings
from s3drop._bucket import (
    BLOCK_PUBLIC_ACCESS,
    cors_rule,
    init_bucket,
    lifecycle_rule,
    quarantine_expiry,
)
from s3drop._errors import (
    BucketMissing,
    ConfigurationError,
    NotFound,
    S3DropError,
    StorageAccessDenied,
    StorageError,
    StorageUnavailable,
)
from s3drop._policy import check_upload
from s3drop.storage import open_storage
from s3drop.storage.s3 import S3Storage, post_url, translate

# --- which variable wins ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "bucket"),
    [
        ({"BUCKET_NAME": "c"}, "c"),
        ({"AWS_BUCKET_NAME": "b", "BUCKET_NAME": "c"}, "b"),
        ({"S3DROP_BUCKET": "a", "AWS_BUCKET_NAME": "b", "BUCKET_NAME": "c"}, "a"),
        ({"S3DROP_BUCKET": "a", "BUCKET_NAME": "c"}, "a"),
    ],
)
def test_bucket_variable_precedence(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], bucket: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert settings.bucket == bucket
    assert settings.storage_backend == "s3"


@pytest.mark.parametrize(
    ("env", "region"),
    [
        ({"AWS_DEFAULT_REGION": "eu-west-1"}, "eu-west-1"),
        ({"AWS_REGION": "eu-west-3", "AWS_DEFAULT_REGION": "eu-west-1"}, "eu-west-3"),
        ({}, None),
    ],
)
def test_region_variable_precedence(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], region: str | None
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert Settings().region == region


@pytest.mark.parametrize(
    ("env", "endpoint"),
    [
        ({"AWS_ENDPOINT_URL": "http://127.0.0.1:9000/"}, "http://127.0.0.1:9000"),
        (
            {"AWS_ENDPOINT_URL_S3": "http://127.0.0.1:7480", "AWS_ENDPOINT_URL": "http://x:1"},
            "http://127.0.0.1:7480",
        ),
        ({}, None),
    ],
)
def test_endpoint_variable_precedence(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], endpoint: str | None
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert Settings().endpoint_url == endpoint


def test_backend_is_local_until_a_bucket_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().storage_backend == "local"
    monkeypatch.setenv("AWS_BUCKET_NAME", "photos")
    assert Settings().storage_backend == "s3"
    monkeypatch.setenv("S3DROP_BACKEND", "local")
    assert Settings().storage_backend == "local"


def test_s3_backend_without_a_bucket_names_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("S3DROP_BACKEND", "s3")
    with pytest.raises(ConfigurationError, match="S3DROP_BUCKET"):
        Settings()


def test_bad_endpoint_names_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "127.0.0.1:7480")
    with pytest.raises(ConfigurationError, match="AWS_ENDPOINT_URL_S3"):
        Settings()


# --- credentials through boto3's chain --------------------------------------------------------


def _storage(**settings: Any) -> S3Storage:
    storage = open_storage(Settings(bucket="photos", **settings))
    assert isinstance(storage, S3Storage)
    return storage


def test_credentials_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKENV")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret-env")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "token-env")
    credentials = _storage().credentials()
    assert (credentials.access_key, credentials.secret_key, credentials.token) == (
        "AKENV",
        "secret-env",
        "token-env",
    )


def test_credentials_and_region_from_a_profile(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "credentials").write_text(
        "[uploads]\naws_access_key_id = AKPROFILE\naws_secret_access_key = secret-profile\n"
    )
    (tmp_path / "config").write_text("[profile uploads]\nregion = ap-south-1\n")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_PROFILE", "uploads")
    storage = _storage()
    assert storage.credentials().access_key == "AKPROFILE"
    assert storage.region == "ap-south-1"
    form = storage.presign_post(_upload(), expires_in=60)
    assert "/ap-south-1/s3/aws4_request" in form.fields["x-amz-credential"]


def test_no_credentials_is_a_configuration_error_and_nothing_is_signed() -> None:
    storage = _storage()
    with pytest.raises(ConfigurationError, match="AWS_ACCESS_KEY_ID"):
        storage.presign_post(_upload(), expires_in=60)


# --- region handling --------------------------------------------------------------------------


def _upload() -> Any:
    return check_upload(Settings(), content_type="image/png", size=100, filename="a.png")


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKTEST")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")


@pytest.mark.usefixtures("keys")
@pytest.mark.parametrize(
    ("settings", "region"),
    [
        ({}, "us-east-1"),
        ({"region": "eu-west-3"}, "eu-west-3"),
        ({"region": "eu-central-1", "endpoint_url": "http://127.0.0.1:7480"}, "eu-central-1"),
    ],
)
def test_forms_and_reads_are_signed_for_the_configured_region(
    settings: dict[str, Any], region: str
) -> None:
    storage = _storage(**settings)
    assert storage.region == region
    form = storage.presign_post(_upload(), expires_in=60)
    scope = form.fields["x-amz-credential"].split("/")
    assert scope[2:] == [region, "s3", "aws4_request"]
    policy = json.loads(base64.b64decode(form.fields["policy"]))
    assert {"x-amz-credential": form.fields["x-amz-credential"]} in policy["conditions"]
    query = parse_qs(urlsplit(storage.presign_get("images/a.png", expires_in=60)).query)
    assert query["X-Amz-Credential"][0].split("/")[2] == region


@pytest.mark.usefixtures("keys")
def test_sigv4_even_in_us_east_1() -> None:
    """boto3 alone would sign presigned GETs in us-east-1 with SigV2 (AWSAccessKeyId=...)."""
    url = _storage(region="us-east-1").presign_get("images/a.png", expires_in=60)
    query = parse_qs(urlsplit(url).query)
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert "AWSAccessKeyId" not in query
    assert "Signature" not in query


@pytest.mark.usefixtures("keys")
def test_path_style_on_a_custom_endpoint() -> None:
    storage = _storage(endpoint_url="http://127.0.0.1:7480")
    form = storage.presign_post(_upload(), expires_in=60)
    assert form.url == "http://127.0.0.1:7480/photos"
    url = storage.presign_get("images/a b.png", expires_in=60, filename="ä.png")
    assert url.startswith("http://127.0.0.1:7480/photos/images/a%20b.png?")
    assert storage.browser_origins() == ["http://127.0.0.1:7480"]


@pytest.mark.usefixtures("keys")
def test_public_base_url_serves_reads_and_is_an_origin() -> None:
    assert _storage().read_urls_expire
    storage = _storage(public_base_url="https://cdn.example.com/img/")
    assert storage.presign_get("images/a.png", expires_in=60) == (
        "https://cdn.example.com/img/images/a.png"
    )
    assert not storage.read_urls_expire  # the CDN's URL is unsigned: it never expires
    assert storage.browser_origins() == [
        "https://photos.s3.us-east-1.amazonaws.com",
        "https://cdn.example.com",
    ]


@pytest.mark.parametrize(
    ("bucket", "region", "endpoint"),
    [
        ("photos", "us-east-1", None),
        ("photos", "eu-west-3", None),
        ("my.dotted.bucket", "eu-west-3", None),
        ("photos", "cn-north-1", None),
        ("photos", "us-east-1", "http://127.0.0.1:7480"),
        ("photos", "auto", "https://acct.r2.cloudflarestorage.com"),
    ],
)
def test_form_url_is_the_one_boto3_would_give(
    bucket: str, region: str, endpoint: str | None
) -> None:
    client = boto3.client(
        "s3",
        region_name=region,
        endpoint_url=endpoint
        or f"https://s3.{region}.amazonaws.com{'.cn' * region.startswith('cn-')}",
        aws_access_key_id="AK",
        aws_secret_access_key="SK",
        config=Config(
            signature_version="s3v4",
            s3={"addressing_style": "path" if endpoint else "virtual"},
        ),
    )
    expected = client.generate_presigned_post(bucket, "incoming/x.png")["url"]
    assert post_url(bucket, region=region, endpoint_url=endpoint) == expected


@pytest.mark.usefixtures("keys")
def test_one_client_for_every_call(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[str] = []
    original = boto3.Session.client

    def counting(self: boto3.Session, *args: Any, **kwargs: Any) -> Any:
        made.append(args[0] if args else kwargs["service_name"])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(boto3.Session, "client", counting)
    storage = _storage(endpoint_url="http://127.0.0.1:7480")
    for _ in range(5):
        storage.presign_post(_upload(), expires_in=60)
        storage.presign_get("images/a.png", expires_in=60)
    assert made == ["s3"]
    config = storage.client.meta.config
    assert config.signature_version == "s3v4"
    assert config.s3 is not None
    assert config.s3["addressing_style"] == "path"


# --- error translation ------------------------------------------------------------------------


def _client_error(code: str, status: int = 400, **error: str) -> botocore.exceptions.ClientError:
    return botocore.exceptions.ClientError(
        {
            "Error": {"Code": code, "Message": f"message for {code}", **error},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        "GetObject",
    )


CLIENT_ERRORS: list[tuple[str, int, type[S3DropError], str]] = [
    ("NoSuchBucket", 404, BucketMissing, "bucket init"),
    ("NoSuchKey", 404, NotFound, "images/a.png"),
    ("404", 404, NotFound, "images/a.png"),
    ("NotFound", 404, NotFound, "images/a.png"),
    ("AccessDenied", 403, StorageAccessDenied, "credentials"),
    ("403", 403, StorageAccessDenied, "credentials"),
    ("AllAccessDisabled", 403, StorageAccessDenied, "credentials"),
    ("InvalidAccessKeyId", 403, StorageAccessDenied, "AWS_ACCESS_KEY_ID"),
    ("SignatureDoesNotMatch", 403, StorageAccessDenied, "AWS_SECRET_ACCESS_KEY"),
    ("InvalidToken", 400, StorageAccessDenied, "AWS_SESSION_TOKEN"),
    ("ExpiredToken", 400, StorageAccessDenied, "AWS_SESSION_TOKEN"),
    ("RequestTimeTooSkewed", 403, StorageAccessDenied, "clock"),
    ("SlowDown", 503, StorageUnavailable, "SlowDown"),
    ("503", 503, StorageUnavailable, "503"),
    ("ServiceUnavailable", 503, StorageUnavailable, "ServiceUnavailable"),
    ("InternalError", 500, StorageUnavailable, "InternalError"),
    ("RequestTimeout", 400, StorageUnavailable, "RequestTimeout"),
    ("PermanentRedirect", 301, ConfigurationError, "AWS_REGION"),
    ("AuthorizationHeaderMalformed", 400, ConfigurationError, "AWS_REGION"),
    ("InvalidBucketName", 400, ConfigurationError, "S3DROP_BUCKET"),
    ("SomethingNew", 400, StorageError, "SomethingNew"),
]


@pytest.mark.parametrize(
    ("code", "status", "expected", "says"), CLIENT_ERRORS, ids=[c[0] for c in CLIENT_ERRORS]
)
def test_client_errors_are_translated(
    code: str, status: int, expected: type[S3DropError], says: str
) -> None:
    error = translate(_client_error(code, status), bucket="photos", key="images/a.png")
    assert type(error) is expected
    assert says in str(error)


def test_wrong_region_names_the_bucket_region() -> None:
    error = translate(
        _client_error("AuthorizationHeaderMalformed", Region="eu-west-3"), bucket="photos"
    )
    assert "eu-west-3" in str(error)


OTHER_ERRORS: list[tuple[Exception, type[S3DropError], str]] = [
    (botocore.exceptions.NoCredentialsError(), ConfigurationError, "AWS_ACCESS_KEY_ID"),
    (
        botocore.exceptions.PartialCredentialsError(provider="env", cred_var="x"),
        ConfigurationError,
        "AWS_SECRET_ACCESS_KEY",
    ),
    (
        botocore.exceptions.EndpointConnectionError(endpoint_url="http://127.0.0.1:9"),
        StorageUnavailable,
        "AWS_ENDPOINT_URL_S3",
    ),
    (
        botocore.exceptions.ConnectTimeoutError(endpoint_url="http://10.0.0.1"),
        StorageUnavailable,
        "unreachable",
    ),
    (
        botocore.exceptions.ReadTimeoutError(endpoint_url="http://10.0.0.1"),
        StorageUnavailable,
        "unreachable",
    ),
    (
        botocore.exceptions.ConnectionClosedError(endpoint_url="http://10.0.0.1"),
        StorageUnavailable,
        "unreachable",
    ),
    (
        botocore.exceptions.CredentialRetrievalError(provider="sso", error_msg="expired"),
        ConfigurationError,
        "AWS_PROFILE",
    ),
    (botocore.exceptions.ParamValidationError(report="bad"), StorageError, "bad"),
]


@pytest.mark.parametrize(
    ("exc", "expected", "says"), OTHER_ERRORS, ids=[type(e[0]).__name__ for e in OTHER_ERRORS]
)
def test_botocore_errors_are_translated(
    exc: Exception, expected: type[S3DropError], says: str
) -> None:
    error = translate(exc, bucket="photos")
    assert type(error) is expected
    assert says in str(error)


def test_unrelated_errors_pass_through() -> None:
    original = ValueError("not ours")
    assert translate(original, bucket="photos") is original


# --- bucket init on a store that lacks some features (call shapes only: botocore's Stubber) -----


@pytest.mark.usefixtures("keys")
def test_init_says_what_the_store_does_not_support() -> None:
    storage = _storage(endpoint_url="http://127.0.0.1:9")
    origins = ["http://127.0.0.1:8000"]
    bucket = {"Bucket": "photos"}
    with Stubber(storage.client) as stub:
        stub.add_response("head_bucket", {}, bucket)
        stub.add_client_error("get_public_access_block", "NotImplemented", http_status_code=501)
        stub.add_client_error("get_bucket_cors", "NoSuchCORSConfiguration", http_status_code=404)
        stub.add_response(
            "put_bucket_cors",
            {},
            {**bucket, "CORSConfiguration": {"CORSRules": [cors_rule(origins)]}},
        )
        stub.add_client_error(
            "get_bucket_lifecycle_configuration", "NotImplemented", http_status_code=501
        )
        steps = init_bucket(storage, origins=origins)
        stub.assert_no_pending_responses()
    assert [(step.name, step.outcome) for step in steps] == [
        ("bucket", "unchanged"),
        ("public access", "not supported by this store"),
        ("CORS", "updated"),
        ("lifecycle", "not supported by this store"),
    ]


@pytest.mark.usefixtures("keys")
def test_init_refuses_a_bucket_it_may_not_touch() -> None:
    storage = _storage(endpoint_url="http://127.0.0.1:9")
    with Stubber(storage.client) as stub:
        stub.add_client_error("head_bucket", "403", http_status_code=403)
        with pytest.raises(StorageAccessDenied):
            init_bucket(storage, origins=["http://127.0.0.1:8000"])


@pytest.mark.usefixtures("keys")
def test_init_creates_the_bucket_in_the_configured_aws_region() -> None:
    storage = _storage(region="eu-west-3")
    with Stubber(storage.client) as stub:
        stub.add_client_error("head_bucket", "404", http_status_code=404)
        stub.add_response(
            "create_bucket",
            {},
            {"Bucket": "photos", "CreateBucketConfiguration": {"LocationConstraint": "eu-west-3"}},
        )
        stub.add_response(
            "get_public_access_block",
            {"PublicAccessBlockConfiguration": dict.fromkeys(BLOCK_PUBLIC_ACCESS, True)},
            {"Bucket": "photos"},
        )
        # all four flags set: init proves the app can still write (Ceph RGW cannot, with them)
        stub.add_response("put_object", {})
        stub.add_response("delete_object", {})
        stub.add_response("get_bucket_cors", {"CORSRules": [cors_rule(["https://a.example"])]})
        stub.add_response(
            "get_bucket_lifecycle_configuration",
            {"Rules": [lifecycle_rule()]},
            {"Bucket": "photos"},
        )
        steps = init_bucket(storage, origins=["https://a.example"])
    assert [step.outcome for step in steps] == ["created", "unchanged", "unchanged", "unchanged"]


def _rule(status: str = "Enabled", days: int | None = 1, **shape: Any) -> dict[str, Any]:
    rule: dict[str, Any] = {"ID": "r", "Status": status, **shape}
    if days is not None:
        rule["Expiration"] = {"Days": days}
    return rule


@pytest.mark.parametrize(
    ("rules", "days"),
    [
        ([], None),
        ([lifecycle_rule()], 1),
        ([_rule(Filter={"Prefix": "incoming/"})], 1),
        ([_rule(Filter={"Prefix": ""}, days=30)], 30),  # the whole bucket
        ([_rule(Filter={})], 1),
        ([_rule(Prefix="inc")], 1),  # the old, filter-less shape
        ([_rule(Filter={"Prefix": "images/"})], None),
        ([_rule(Filter={"Prefix": "incoming/x"})], None),  # only part of the quarantine
        ([_rule(status="Disabled", Filter={"Prefix": "incoming/"})], None),
        ([_rule(days=None, Filter={"Prefix": "incoming/"})], None),
        ([_rule(Filter={"Tag": {"Key": "k", "Value": "v"}})], None),
        (
            [_rule(Filter={"And": {"Prefix": "incoming/", "Tags": [{"Key": "k", "Value": "v"}]}})],
            None,
        ),
        ([_rule(Filter={"And": {"Prefix": "incoming/", "ObjectSizeGreaterThan": 0}})], 1),
        ([_rule(days=7, Filter={}), _rule(days=2, Filter={"Prefix": "incoming/"})], 2),
    ],
)
def test_which_lifecycle_rules_expire_the_quarantine(
    rules: list[dict[str, Any]], days: int | None
) -> None:
    assert quarantine_expiry(rules) == days


def test_signing_blocks_until_fixed_credentials_are_known() -> None:
    """Fixed keys: signing is CPU only once they are read, so the event loop signs inline;
    refreshing ones (a role, SSO) may go to the network inside any call: a thread."""
    from botocore.credentials import RefreshableCredentials

    settings = Settings(bucket="photos", region="us-east-1")
    fixed = boto3.Session(aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="x" * 40)
    storage = S3Storage(settings, session=fixed)
    assert storage.signing_blocks  # not read yet: reading may be a network call
    storage.credentials()
    assert not storage.signing_blocks

    refreshing = boto3.Session()
    refreshing._session._credentials = RefreshableCredentials.create_from_metadata(
        metadata={
            "access_key": "AKIDEXAMPLE",
            "secret_key": "x" * 40,
            "token": "t",
            "expiry_time": "2999-01-01T00:00:00Z",
        },
        refresh_using=lambda: {},
        method="sts-assume-role",
    )
    storage = S3Storage(settings, session=refreshing)
    storage.credentials()
    assert storage.signing_blocks
