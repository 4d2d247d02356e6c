"""A user's filename as s3drop keeps it: sanitised, carried as percent-encoded metadata, and
given back in ``Content-Disposition``; never part of a key (:func:`s3drop._policy.image_key` carries
it only as a base32 label).

:mod:`s3drop._policy` re-exports these names.
"""

from __future__ import annotations

import unicodedata
from urllib.parse import quote, unquote

_MAX_NAME = 120


def sanitize_filename(name: str) -> str:
    """The user's filename as a label: no path, no control characters, bounded, NFC.

    It is only ever metadata (percent-encoded in ``x-amz-meta-filename``), never part of a key.
    """
    if name.isascii() and name.isprintable():  # the usual name: already NFC, no controls
        name = name.replace("\\", "/").rsplit("/", 1)[-1].strip(" .")
    else:
        name = unicodedata.normalize("NFC", name)
        name = name.replace("\\", "/").rsplit("/", 1)[-1]
        name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip(" .")
    if len(name) > _MAX_NAME:
        stem, dot, ext = name.rpartition(".")
        if dot and len(ext) <= 10:
            name = f"{stem[: _MAX_NAME - len(ext) - 1]}.{ext}"
        else:
            name = name[:_MAX_NAME]
    return name or "image"


def encode_meta(value: str) -> str:
    """Metadata values travel as ASCII HTTP headers in S3: percent-encode UTF-8."""
    return quote(value, safe=" !#$&'()*+,-./:;=?@[]^_`{|}~")


def decode_meta(value: str) -> str:
    return unquote(value)


def inline_disposition(filename: str | None) -> str:
    """``Content-Disposition`` for showing an image in the browser, under its original name."""
    return f"inline; filename*=UTF-8''{quote(filename)}" if filename else "inline"
