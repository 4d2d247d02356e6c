"""Who is asking: a pluggable hook that turns a request into a :class:`Principal`, or refuses.

An authenticator is any callable ``(headers, client_address) -> Principal`` that raises
:class:`~s3drop._errors.NotAuthenticated` to refuse. The bundled app runs it in a thread pool, so it
may block (a database lookup), unless it has ``blocking = False``, as the built-ins do. Framework users pass their own (a Django
session, a Flask-Login user) to the library calls as ``owner=principal.name``; the bundled app picks
one of the built-ins from settings:

- :func:`anonymous`: everyone is ``anonymous`` (only while bound to a loopback address, unless the
  operator says ``--public``);
- :class:`BearerTokens`: ``Authorization: Bearer <token>``, several named tokens;
- :class:`BasicAuth`: HTTP basic with named users.

Secrets are compared in constant time, every one of them on every request (no early exit that a
timing attack could read), and never logged.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ._config import Settings
from ._errors import NotAuthenticated


@dataclass(frozen=True)
class Principal:
    """Who made a request. ``name`` is the owner recorded on their uploads.

    An empty or blank ``name`` is refused (:class:`~s3drop._errors.NotAuthenticated`, 401).
    """

    name: str
    anonymous: bool = False
    address: str | None = None

    def __post_init__(self) -> None:
        # An empty name would make every nameless caller (a framework's anonymous user) one owner
        # who sees and deletes everyone's images.
        if not isinstance(self.name, str) or not self.name.strip():
            raise NotAuthenticated(
                f"a principal needs a name; {self.name!r} names nobody (an anonymous user?): "
                "refuse the request, or use Principal('anonymous', anonymous=True, address=...)"
            )

    @property
    def limit_key(self) -> str:
        """Whom abuse limits count against: the user, or the client address when anonymous."""
        if self.anonymous:
            return f"addr:{self.address or 'unknown'}"
        return f"user:{self.name}"


Authenticator = Callable[[Mapping[str, str], str | None], Principal]


class _Anonymous:
    """No authentication: everyone is ``anonymous``; limits count per client address."""

    blocking = False

    def __call__(self, headers: Mapping[str, str], client: str | None) -> Principal:
        return Principal("anonymous", anonymous=True, address=client)


anonymous = _Anonymous()


def _matches(secrets: Mapping[str, str], given: str) -> str | None:
    """The name whose secret equals ``given``, comparing against every secret."""
    found: str | None = None
    for name, secret in secrets.items():
        if hmac.compare_digest(secret.encode(), given.encode()):
            found = name
    return found


class BearerTokens:
    """``Authorization: Bearer <token>`` against named tokens (name -> token)."""

    scheme = "Bearer"
    blocking = False  # only compares in memory: safe on the event loop

    def __init__(self, tokens: Mapping[str, str]) -> None:
        if not tokens:
            raise ValueError("BearerTokens needs at least one token")
        self.tokens = dict(tokens)

    def __call__(self, headers: Mapping[str, str], client: str | None) -> Principal:
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise NotAuthenticated("a bearer token is required (Authorization: Bearer <token>)")
        name = _matches(self.tokens, token.strip())
        if name is None:
            raise NotAuthenticated("the bearer token is not valid")
        return Principal(name, address=client)


class BasicAuth:
    """HTTP basic authentication against named users (name -> password)."""

    scheme = "Basic"
    blocking = False

    def __init__(self, users: Mapping[str, str]) -> None:
        if not users:
            raise ValueError("BasicAuth needs at least one user")
        self.users = dict(users)

    def __call__(self, headers: Mapping[str, str], client: str | None) -> Principal:
        scheme, _, encoded = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic":
            raise NotAuthenticated("a user name and password are required")
        try:
            user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise NotAuthenticated("the basic credentials are malformed") from None
        expected = self.users.get(user, "")
        # Compare even for unknown users, so timing does not reveal which names exist.
        ok = hmac.compare_digest(expected.encode(), password.encode()) and user in self.users
        if not ok:
            raise NotAuthenticated("the user name or password is not valid")
        return Principal(user, address=client)


def from_settings(settings: Settings) -> Authenticator:
    """The built-in authenticator the settings choose."""
    if settings.auth_mode == "token":
        return BearerTokens(settings.token_map())
    if settings.auth_mode == "basic":
        return BasicAuth(settings.user_map())
    return anonymous
