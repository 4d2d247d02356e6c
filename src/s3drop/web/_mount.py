"""Where the app is mounted: every URL it gives out is derived from the request in hand.

``app.mount("/uploads", create_app())`` (or a reverse proxy passing ``--root-path``) puts the app
under a prefix; ASGI says so in ``root_path``. :class:`MountMiddleware` turns it, with the request's
scheme and a validated ``Host``, into the app's base URL (``https://example.com/uploads``), or
takes ``S3DROP_PUBLIC_URL`` when it is set, and makes the storage's own URLs (the local backend's
upload forms and signed reads) absolute under it for the length of the request
(:meth:`Storage.served_at <s3drop.storage.base.Storage.served_at>`).
So a client on another origin never has to guess where to post, and a mounted app's forms point at
its own receiver.
"""

from __future__ import annotations

import re

from starlette.types import ASGIApp, Receive, Scope, Send

from ..storage.base import Storage

#: A Host header that may become part of a URL: a DNS name, IPv4 or [IPv6], and a port.
_HOST = re.compile(
    r"^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252})|\[[0-9A-Fa-f:.]{2,45}\])(?::[0-9]{1,5})?$"
)
#: A root path made of plain path segments (what a mount or --root-path gives).
_ROOT_PATH = re.compile(r"^(?:/[A-Za-z0-9._~!$&'()*+,;=:@%-]+)*$")


def request_base(scope: Scope) -> str | None:
    """The app's base URL for this request (scheme, host, mount prefix; no trailing slash), or
    None when the Host header or the root path is not one to put into a URL."""
    scheme = scope.get("scheme", "http")
    if scheme not in ("http", "https"):
        return None
    host = ""
    for name, value in scope.get("headers", []):
        if name == b"host":
            host = value.decode("latin-1")
            break
    if not host and scope.get("server"):
        address, port = scope["server"]
        host = f"[{address}]:{port}" if ":" in str(address) else f"{address}:{port}"
    root_path = scope.get("root_path", "").rstrip("/")
    if not _HOST.match(host) or not _ROOT_PATH.match(root_path):
        return None
    return f"{scheme}://{host.lower()}{root_path}"


def route_path(scope: Scope) -> str:
    """The request's path within the app (without the mount prefix): what routes match."""
    path: str = scope["path"]
    root_path: str = scope.get("root_path", "")
    if root_path and path.startswith(root_path) and path[len(root_path) :][:1] in ("", "/"):
        return path[len(root_path) :] or "/"
    return path


class MountMiddleware:
    """Makes the storage's own URLs absolute under the app's base URL, request by request."""

    def __init__(self, app: ASGIApp, *, public_url: str | None, storage: Storage) -> None:
        self.app = app
        self.public_url = public_url.rstrip("/") if public_url else None
        self.storage = storage

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        base = self.public_url or request_base(scope)
        if base is None:  # a Host not fit for a URL: links relative to the mount
            base = scope.get("root_path", "").rstrip("/")
        with self.storage.served_at(base):
            await self.app(scope, receive, send)
