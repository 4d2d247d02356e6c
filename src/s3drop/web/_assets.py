"""The page's static files, compressed once and cacheable for good.

Read at start-up from ``web/static/``: each file gets a content hash, and the page refers to its
files by versioned URLs (``static/app.css?v=<hash>``, rewritten in ``index.html`` and in the
module imports of ``app.js``). A request that names the current version is answered with
``Cache-Control: public, max-age=31536000, immutable``; any other (the README's unversioned
``static/s3drop-uploader.js`` for other sites, or an old version) with ``no-cache`` and an
``ETag``, so a browser asks again and gets a 304. ``index.html`` itself is always ``no-cache``.
Text files are gzipped once, at start-up, and sent compressed to clients that accept gzip.

Only these files: image bytes from storage are never compressed here (they are compressed
already, and ranges must keep working).
"""

from __future__ import annotations

import gzip
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from starlette.datastructures import Headers
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from .._errors import json_error

#: A year: the longest max-age browsers honour, for URLs whose bytes can never change.
FOREVER = "public, max-age=31536000, immutable"
#: Ask every time (an If-None-Match that usually ends in a 304).
REVALIDATE = "no-cache"

_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
}
#: What the page refers to: ``static/<name>`` in index.html, ``./<name>`` in a module import.
_REFERENCE = re.compile(
    r"""(?P<quote>["'])(?P<prefix>static/|\./)(?P<name>[\w.-]+\.(?:css|js))(?P=quote)"""
)


@dataclass(frozen=True)
class Asset:
    """One file as served: its bytes, their gzip, its version (a content hash) and type."""

    body: bytes
    gzipped: bytes
    version: str
    media_type: str

    @classmethod
    def of(cls, body: bytes, media_type: str) -> Asset:
        version = hashlib.sha256(body).hexdigest()[:16]
        return cls(body, gzip.compress(body, compresslevel=9, mtime=0), version, media_type)

    def response(self, headers: Headers, *, versioned: bool, method: str = "GET") -> Response:
        """The answer to a GET or HEAD: 200 (gzipped when accepted) or 304."""
        compressed = "gzip" in headers.get("accept-encoding", "").lower()
        etag = f'"{self.version}{"-gz" if compressed else ""}"'
        common = {
            "ETag": etag,
            "Cache-Control": FOREVER if versioned else REVALIDATE,
            "Vary": "Accept-Encoding",
        }
        if etag in [tag.strip() for tag in headers.get("if-none-match", "").split(",")]:
            return Response(status_code=304, headers=common)
        body = self.gzipped if compressed else self.body
        if compressed:
            common["Content-Encoding"] = "gzip"
        response = Response(b"" if method == "HEAD" else body, media_type=self.media_type)
        response.headers.update(common)
        response.headers["Content-Length"] = str(len(body))
        return response


class StaticAssets:
    """The ASGI app behind ``/static``; :attr:`page` is ``index.html`` with versioned URLs."""

    def __init__(self, folder: Path) -> None:
        self.files: dict[str, Asset] = {}
        sources = {
            path.name: path.read_text(encoding="utf-8")
            for path in sorted(folder.iterdir())
            if path.suffix in _TYPES
        }

        # Files that refer to none first, so every reference can name its target's version.
        def order(name: str) -> tuple[bool, bool, str]:
            refers = _REFERENCE.search(sources[name]) is not None
            return name in ("app.js", "index.html"), refers, name

        for name in sorted(sources, key=order):
            if name == "index.html":
                continue
            self.files[name] = Asset.of(self._versioned(sources[name]), _TYPES[Path(name).suffix])
        self.page = Asset.of(self._versioned(sources["index.html"]), _TYPES[".html"])

    def _versioned(self, text: str) -> bytes:
        def version(match: re.Match[str]) -> str:
            asset = self.files.get(match["name"])
            if asset is None:
                return match[0]
            quote = match["quote"]
            return f"{quote}{match['prefix']}{match['name']}?v={asset.version}{quote}"

        return _REFERENCE.sub(version, text).encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http"
        name = scope["path"].rsplit("/", 1)[-1]
        asset = self.files.get(name)
        headers = Headers(scope=scope)
        if scope["method"] not in ("GET", "HEAD"):
            response: Response = _error(405, "method_not_allowed", "Use GET or HEAD.")
            response.headers["Allow"] = "GET, HEAD"
        elif asset is None:
            response = _error(404, "not_found", "No such file.")
        else:
            query = dict(
                part.split("=", 1)
                for part in scope["query_string"].decode().split("&")
                if "=" in part
            )
            versioned = query.get("v") == asset.version
            response = asset.response(headers, versioned=versioned, method=scope["method"])
        await response(scope, receive, send)


def _error(status: int, code: str, message: str) -> Response:
    return JSONResponse(json_error(code, message), status_code=status)
