from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime

import pytest

from s3drop._config import Settings
from s3drop._errors import (
    ConfigurationError,
    FileEmpty,
    FileTooLarge,
    InvalidRequest,
    TypeNotAllowed,
)
from s3drop._formats import FORMATS
from s3drop._policy import (
    Credentials,
    ImageKey,
    check_upload,
    decode_meta,
    encode_meta,
    id_time,
    image_key,
    image_prefix,
    is_upload_id,
    new_upload_id,
    owner_key,
    owner_prefix,
    parse_image_key,
    sanitize_filename,
)
from s3drop.storage._sigv4 import sign_post

CREDENTIALS = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
NOW = datetime(2026, 11, 28, 12, 0, 0, tzinfo=UTC)


def _signed(**claims: object) -> dict[str, str]:
    request = check_upload(
        Settings(),
        content_type=str(claims.get("content_type", "image/png")),
        size=int(str(claims.get("size", 1000))),
        filename=str(claims.get("filename", "cat.png")),
    )
    fields, _ = sign_post(
        request,
        bucket="photos",
        credentials=CREDENTIALS,
        region="eu-west-1",
        expires_in=600,
        now=NOW,
    )
    return fields


def _policy(fields: dict[str, str]) -> dict[str, object]:
    decoded: dict[str, object] = json.loads(base64.b64decode(fields["policy"]))
    return decoded


# --- keys ---------------------------------------------------------------------------------------


def test_ids_sort_newest_first_and_carry_their_time() -> None:
    older = new_upload_id(now=1_700_000_000.0)
    newer = new_upload_id(now=1_700_000_000.5)
    assert is_upload_id(older)
    assert is_upload_id(newer)
    assert newer < older
    assert id_time(older) == datetime.fromtimestamp(1_700_000_000, tz=UTC)


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "../../etc/passwd",
        "8204119722354gcvd3nvk3",
        "8204119722354GCVD3NVK3J",
        "8204119722354gcvd3nvk3j\n",  # "$" matches before a final newline; fullmatch does not
        "\n8204119722354gcvd3nvk3j",
    ],
)
def test_not_ids(bad: str) -> None:
    assert not is_upload_id(bad)


def test_checks_of_whole_strings_refuse_a_trailing_newline() -> None:
    """Every pattern that judges a whole string (ids, image keys, checksums, settings) uses
    fullmatch: ``$`` would let a final newline through."""
    name = "images/8204119722354gcvd3nvk3j.300x200.3000.png"
    assert parse_image_key(name) is not None
    assert parse_image_key(name + "\n") is None
    with pytest.raises(ConfigurationError, match="S3DROP_ALLOWED_ORIGINS"):
        Settings(allowed_origins=["https://app.example\n"])
    with pytest.raises(ConfigurationError, match="S3DROP_PUBLIC_URL"):
        Settings(public_url="https://app.example\n<script>")
    with pytest.raises(ConfigurationError, match="S3DROP_TOKENS"):
        Settings(tokens="alice\n:alice-token-0123456789")


def test_the_server_chooses_the_key_never_from_the_filename() -> None:
    request = check_upload(
        Settings(), content_type="image/jpeg", size=10, filename="../../evil.html"
    )
    assert request.key == f"incoming/{request.id}.jpg"
    assert "evil" not in request.key
    assert request.metadata["filename"] == "evil.html"


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("cat.png", "cat.png"),
        ("C:\\Users\\me\\cat.png", "cat.png"),
        ("/etc/passwd", "passwd"),
        ("a\x00b\nc.png", "abc.png"),
        ("..", "image"),
        ("", "image"),
        ("chat-été.png", "chat-été.png"),
        ("x" * 300 + ".jpeg", "x" * 115 + ".jpeg"),
        ("y" * 300, "y" * 120),
    ],
)
def test_filenames_are_sanitised(given: str, kept: str) -> None:
    assert sanitize_filename(given) == kept


def test_metadata_round_trips_as_ascii() -> None:
    encoded = encode_meta("chat été 😺.png")
    assert encoded.isascii()
    assert decode_meta(encoded) == "chat été 😺.png"


# --- what the server agrees to sign ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("claims", "error"),
    [
        ({"content_type": "text/html"}, TypeNotAllowed),
        ({"content_type": "image/svg+xml"}, TypeNotAllowed),
        ({"content_type": "image/webp"}, TypeNotAllowed),
        ({"content_type": ""}, TypeNotAllowed),
        ({"size": 0}, FileEmpty),
        ({"size": -1}, FileEmpty),
        ({"size": 10 * 1024 * 1024 + 1}, FileTooLarge),
    ],
)
def test_refusals_sign_nothing(claims: dict[str, object], error: type[Exception]) -> None:
    with pytest.raises(error):
        _signed(**claims)


def test_checksum_must_be_hex_sha256() -> None:
    with pytest.raises(InvalidRequest):
        check_upload(Settings(), content_type="image/png", size=1, filename="a", sha256="abc")
    request = check_upload(
        Settings(), content_type="image/png", size=1, filename="a", sha256="AB" * 32
    )
    assert request.metadata["sha256"] == "ab" * 32


def test_selectable_types() -> None:
    settings = Settings(allowed_types="image/webp,image/avif")
    request = check_upload(settings, content_type="image/avif", size=5, filename="a")
    assert request.key.endswith(".avif")
    with pytest.raises(TypeNotAllowed):
        check_upload(settings, content_type="image/png", size=5, filename="a")


def test_every_field_is_a_condition_and_the_type_is_exact() -> None:
    fields = _signed()
    policy = _policy(fields)
    conditions = policy["conditions"]
    assert isinstance(conditions, list)
    assert policy["expiration"] == "2026-11-28T12:10:00Z"
    assert {"Content-Type": "image/png"} in conditions
    assert ["content-length-range", 1000, 1000] in conditions  # exactly the claimed size
    assert {"bucket": "photos"} in conditions
    assert not any(isinstance(c, list) and c[0] == "starts-with" for c in conditions)
    signed = {next(iter(c)).lower() for c in conditions if isinstance(c, dict)}
    assert {name.lower() for name in fields} - {"policy", "x-amz-signature"} <= signed
    assert fields["x-amz-credential"] == "AKIDEXAMPLE/20261128/eu-west-1/s3/aws4_request"


# --- promoted images' keys and owners' indexes ------------------------------------------------


@pytest.mark.parametrize("content_type", list(FORMATS))
def test_an_image_key_carries_the_gallery_facts(content_type: str) -> None:
    upload_id = new_upload_id(now=1_700_000_000.0)
    key = image_key(upload_id, content_type, width=300, height=200, size=48213)
    ext = FORMATS[content_type].key_extension
    assert key == f"images/{upload_id}.300x200.48213.{ext}"
    assert key.startswith(image_prefix(upload_id))
    facts = parse_image_key(key)
    assert facts == ImageKey(upload_id, 300, 200, 48213, content_type)
    assert facts.key == key
    assert parse_image_key(owner_key("alice", key)) == facts  # an index entry says the same


@pytest.mark.parametrize(
    "key",
    [
        "thumbs/8204119722354gcvd3nvk3j.webp",
        "images/8204119722354gcvd3nvk3j.png",  # no facts in it
        "images/8204119722354gcvd3nvk3j.0x200.10.png",
        "images/8204119722354gcvd3nvk3j.300x200.10.exe",
        "images/8204119722354gcvd3nvk3j.300x200.png",
        "images/820411972235.300x200.10.png",
        "images/8204119722354gcvd3nvk3j.300x200.10.png.html",
        "",
    ],
)
def test_other_keys_are_not_images(key: str) -> None:
    assert parse_image_key(key) is None


def test_image_keys_sort_newest_first_whatever_their_facts() -> None:
    older, newer = new_upload_id(now=1_700_000_000.0), new_upload_id(now=1_700_000_000.001)
    keys = [
        image_key(older, "image/png", width=1, height=1, size=1),
        image_key(newer, "image/jpeg", width=99999, height=99999, size=10**10),
    ]
    assert sorted(keys) == keys[::-1]
    # A page's cursor: after every key of an image ('/' > '.'), before every older image.
    assert keys[1] < f"images/{newer}/" < keys[0]


@pytest.mark.parametrize(
    ("owner", "prefix"),
    [
        ("alice", "owners/alice/"),
        ("alice@example.org", "owners/alice%40example.org/"),
        ("a/../b", "owners/a%2F..%2Fb/"),
        ("zoë", "owners/zo%C3%AB/"),
        (".", "owners/%2E/"),
        ("..", "owners/%2E%2E/"),
        ("", "owners/%00/"),
    ],
)
def test_an_owner_is_one_path_segment(owner: str, prefix: str) -> None:
    assert owner_prefix(owner) == prefix
    key = image_key(new_upload_id(), "image/png", width=3, height=2, size=1)
    assert owner_key(owner, key) == prefix + key.removeprefix("images/")


@pytest.mark.parametrize(
    "filename",
    ["cat.png", "Ünïcödé 写真.jpeg", "a" * 200 + ".png", "../../etc/passwd", "x.y.z", "n.png"],
)
def test_an_image_key_carries_the_filename_in_characters_s3drop_chose(filename: str) -> None:
    key = image_key(
        "8204117022958cs3xx22qm2", "image/png", width=3, height=2, size=10, filename=filename
    )
    assert re.fullmatch(r"images/[0-9a-z.]+", key), key
    assert len(key) < 200
    facts = parse_image_key(key)
    assert facts is not None
    assert (facts.id, facts.width, facts.height, facts.size) == (
        "8204117022958cs3xx22qm2",
        3,
        2,
        10,
    )
    assert facts.filename is not None
    assert filename.startswith(facts.filename)
    assert len(facts.filename.encode()) <= 64
    assert facts.key == key


def test_keys_without_a_filename_still_parse_and_foreign_labels_do_not() -> None:
    old = "images/8204117022958cs3xx22qm2.3x2.10.png"
    facts = parse_image_key(old)
    assert facts is not None
    assert facts.filename is None
    assert facts.key == old
    assert parse_image_key("images/8204117022958cs3xx22qm2.3x2.10.n1.png") is None
    assert parse_image_key("images/8204117022958cs3xx22qm2.3x2.10.naaa.png") is None
