"""Browser-facing hardening, as ASGI middleware in front of the app.

- :class:`HostMiddleware` refuses, before routing, a request whose ``Host`` is not the app's
  (any loopback name or address, the bound address, ``S3DROP_PUBLIC_URL``'s host,
  ``S3DROP_ALLOWED_HOSTS``): 400 ``invalid_host``. Without it a page on an attacker's domain that
  rebinds its name to 127.0.0.1 (DNS rebinding) is same-origin with a loopback server. Ports are not
  compared (as starlette's ``TrustedHostMiddleware`` does not): rebinding changes the name, and a
  proxy may forward any port. ``/healthz``, ``/readyz`` and ``/metrics`` answer any Host, so that
  probes and scrapers that address the process by IP keep working; they hold no images.
- Every response carries ``X-Content-Type-Options: nosniff`` and a strict ``Referrer-Policy``; pages
  carry a Content-Security-Policy with no inline script, ``frame-ancestors 'none'`` and only the
  storage origins the page must reach.
- State-changing API calls (POST, PUT, PATCH, DELETE under ``/api``) from a browser must come from
  an allowed origin, one of the configured ones (:meth:`~s3drop._config.Settings.origins`), never
  one derived from the request's own ``Host``: a cross-site form post or fetch cannot sign,
  complete or delete. Requests
  without ``Origin`` (curl, the CLI) carry no ambient browser credentials and pass on to
  authentication as usual.
- JSON API bodies are capped (:data:`MAX_JSON_BYTES`): a larger body is refused with 413 before it
  is read.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .._config import host_name, is_loopback
from .._errors import InvalidHost, json_error
from ._mount import route_path

MAX_JSON_BYTES = 16 * 1024
#: Paths that answer whatever Host a request names: liveness, readiness, metrics.
HOST_EXEMPT = frozenset({"/healthz", "/readyz", "/metrics"})
_STATE_CHANGING = {"POST", "PUT", "PATCH", "DELETE"}


def origin_of(url: str) -> str | None:
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}".lower()


def content_security_policy(storage_origins: Iterable[str]) -> str:
    extra = " ".join(sorted(set(storage_origins)))
    sources = f"'self' {extra}".strip()
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            f"img-src {sources} blob: data:",
            f"connect-src {sources}",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


#: How many Host header values :class:`HostMiddleware` remembers its answer for.
_KNOWN_HOSTS = 256


class HostMiddleware:
    """Refuse a request whose Host is not one of ``hosts`` (nor loopback): 400, JSON."""

    def __init__(self, app: ASGIApp, *, hosts: Iterable[str]) -> None:
        self.app = app
        names = [host.lower() for host in hosts]
        self.any = "*" in names
        self.exact = {name for name in names if not name.startswith("*.")}
        self.suffixes = tuple(name[1:] for name in names if name.startswith("*."))
        self._known: dict[str, bool] = {}

    def allows(self, host: str) -> bool:
        """Whether a Host header value names this app: decided once per value (a loopback or IP
        address costs an ``ipaddress`` parse, ~5 us, on every request otherwise), remembering at
        most :data:`_KNOWN_HOSTS` values so that made-up ones cannot grow it."""
        known = self._known.get(host)
        if known is None:
            known = self._allows(host)
            if len(self._known) < _KNOWN_HOSTS:
                self._known[host] = known
        return known

    def _allows(self, host: str) -> bool:
        name = host_name(host)
        if self.any or name in self.exact or is_loopback(name):
            return bool(name)
        return bool(self.suffixes) and name.endswith(self.suffixes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or route_path(scope) in HOST_EXEMPT:
            await self.app(scope, receive, send)
            return
        host = next((value for name, value in scope["headers"] if name == b"host"), b"")
        shown = host.decode("latin-1")
        if self.allows(shown):
            await self.app(scope, receive, send)
            return
        message = (
            f"this server does not answer to the host {shown[:100]!r}; set S3DROP_PUBLIC_URL or "
            "S3DROP_ALLOWED_HOSTS to the name clients use"
            if shown
            else "the request names no Host"
        )
        await _error(send, InvalidHost.status, InvalidHost.code, message)


class SecurityMiddleware:
    """Headers on every response, Origin checks and body caps on the API."""

    def __init__(self, app: ASGIApp, *, origins: Iterable[str], storage_origins: Iterable[str]):
        self.app = app
        self.origins = {origin.lower() for origin in origins}
        self.csp = content_security_policy(storage_origins).encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = route_path(scope)  # under a mount prefix too: the checks go where /api/ is
        if path.startswith("/api/") and scope["method"] in _STATE_CHANGING:
            refusal = self._refuse(scope, dict(scope["headers"]))
            if refusal is not None:
                await _error(send, *refusal)
                return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra = [
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"),
                ]
                response_headers = message.setdefault("headers", [])
                content_type = next(
                    (value for name, value in response_headers if name == b"content-type"), b""
                )
                if content_type.startswith(b"text/html"):
                    extra += [
                        (b"content-security-policy", self.csp),
                        (b"x-frame-options", b"DENY"),
                        (b"cross-origin-opener-policy", b"same-origin"),
                    ]
                present = {name for name, _ in response_headers}
                response_headers.extend(item for item in extra if item[0] not in present)
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _refuse(self, scope: Scope, headers: dict[bytes, bytes]) -> tuple[int, str, str] | None:
        origin = headers.get(b"origin", b"").decode("latin-1").lower()
        if origin:
            if origin not in self.origins:  # configured origins only, never one made from Host
                return (403, "forbidden_origin", f"requests from {origin} are not allowed")
        elif headers.get(b"sec-fetch-site", b"") == b"cross-site":
            return (403, "forbidden_origin", "cross-site requests are not allowed")
        length = headers.get(b"content-length")
        if length is not None:
            try:
                too_big = int(length) > MAX_JSON_BYTES
            except ValueError:
                return (400, "invalid_request", "Content-Length is not a number")
            if too_big:
                return (413, "body_too_large", f"the request body is over {MAX_JSON_BYTES} bytes")
        elif headers.get(b"transfer-encoding"):
            return (411, "length_required", "send a Content-Length with API requests")
        return None


async def _error(send: Send, status: int, code: str, message: str) -> None:
    body = json.dumps(json_error(code, message)).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"x-content-type-options", b"nosniff"),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
