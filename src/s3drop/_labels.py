"""Bytes as key characters: lowercase base32 (RFC 4648, ``a-z2-7``), no padding.

An image's key carries its filename and its ThumbHash this way (:func:`s3drop._policy.image_key`).
A gallery page parses 50 keys, so decoding is done with ``int(text, 32)`` (C) rather than
:func:`base64.b32decode` (pure Python in 3.11), and it accepts only the one text :func:`encode`
writes for the bytes (no stray bits, no impossible length): a label s3drop did not write is refused,
not read as something else.
"""

from __future__ import annotations

import base64

_TO_DIGITS = str.maketrans("abcdefghijklmnopqrstuvwxyz234567", "0123456789abcdefghijklmnopqrstuv")
#: The lengths an unpadded base32 text can have, modulo 8 (1, 3 and 6 are impossible).
_LENGTHS = frozenset({0, 2, 4, 5, 7})
_ALPHABET = frozenset("abcdefghijklmnopqrstuvwxyz234567")


def encode(data: bytes) -> str:
    """``data`` as lowercase base32 without padding."""
    return base64.b32encode(data).decode().rstrip("=").lower()


def decode(text: str) -> bytes | None:
    """The bytes :func:`encode` made ``text`` from, or None if it did not make ``text``."""
    if not text or len(text) % 8 not in _LENGTHS or not _ALPHABET.issuperset(text):
        return None
    size = len(text) * 5 // 8
    spare = len(text) * 5 - size * 8  # the bits after the last byte: zero in a canonical text
    number = int(text.translate(_TO_DIGITS), 32)
    if number & ((1 << spare) - 1):
        return None
    return (number >> spare).to_bytes(size, "big")
