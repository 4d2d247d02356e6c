from __future__ import annotations

import base64

import pytest

from s3drop._auth import BasicAuth, BearerTokens, Principal, anonymous, from_settings
from s3drop._config import Settings
from s3drop._errors import ConfigurationError, NotAuthenticated

TOKENS = {"alice": "alice-token-0123456789", "bob": "bob-token-9876543210ab"}


def test_anonymous_counts_per_address() -> None:
    principal = anonymous({}, "10.0.0.7")
    assert principal == Principal("anonymous", anonymous=True, address="10.0.0.7")
    assert principal.limit_key == "addr:10.0.0.7"
    assert Principal("alice").limit_key == "user:alice"


def test_bearer_tokens_name_the_principal() -> None:
    auth = BearerTokens(TOKENS)
    assert auth({"authorization": "Bearer bob-token-9876543210ab"}, None).name == "bob"
    assert auth({"authorization": "bearer  alice-token-0123456789 "}, None).name == "alice"


@pytest.mark.parametrize(
    "header",
    [
        "",
        "Bearer",
        "Bearer ",
        "Basic alice-token-0123456789",
        "Bearer alice-token-012345678",
        "Bearer alice-token-0123456789x",
        "Token alice-token-0123456789",
    ],
)
def test_bearer_refusals(header: str) -> None:
    with pytest.raises(NotAuthenticated):
        BearerTokens(TOKENS)({"authorization": header} if header else {}, None)


def _basic(user: str, password: str) -> dict[str, str]:
    return {"authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_basic_auth() -> None:
    auth = BasicAuth({"carol": "correct-horse-battery"})
    assert auth(_basic("carol", "correct-horse-battery"), "1.2.3.4").name == "carol"
    for headers in (
        _basic("carol", "wrong"),
        _basic("dave", "correct-horse-battery"),
        {"authorization": "Basic !!!"},
        {},
    ):
        with pytest.raises(NotAuthenticated):
            auth(headers, None)


def test_settings_choose_the_authenticator() -> None:
    assert from_settings(Settings()) is anonymous
    token_auth = from_settings(Settings(tokens="alice:alice-token-0123456789"))
    assert isinstance(token_auth, BearerTokens)
    assert isinstance(from_settings(Settings(users="carol:correct-horse-battery")), BasicAuth)


@pytest.mark.parametrize(
    ("tokens", "problem"),
    [
        ("alice", "name:secret"),
        ("alice:short", "shorter than 12"),
        ("al ice:alice-token-0123456789", "name:secret"),
        ("alice:alice-token-0123456789,alice:other-token-0123456", "twice"),
    ],
)
def test_bad_tokens_fail_without_echoing_them(tokens: str, problem: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Settings(tokens=tokens)
    assert caught.value.message.startswith("S3DROP_TOKENS")
    assert problem in caught.value.message
    assert "alice-token" not in caught.value.message


@pytest.mark.parametrize("name", ["", " ", "\t\n", "\u3000"])
def test_a_blank_principal_is_refused(name: str) -> None:
    # Django's anonymous user has username "": one shared owner for every anonymous visitor.
    with pytest.raises(NotAuthenticated, match="names nobody"):
        Principal(name)
    with pytest.raises(NotAuthenticated):
        Principal(name, anonymous=True)
