"""Key labels (s3drop._labels): bytes as lowercase base32, and back only from what encode wrote."""

from __future__ import annotations

import base64

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from s3drop import _labels as labels


@given(st.binary(min_size=1, max_size=80))  # an empty label is never written
def test_any_bytes_come_back(data: bytes) -> None:
    text = labels.encode(data)
    assert text == base64.b32encode(data).decode().rstrip("=").lower()
    assert labels.decode(text) == data


@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz234567=A1", max_size=40))
@example("a")  # an impossible length
@example("ab")  # stray bits after the last byte
@example("ae")
def test_a_text_decodes_only_if_it_is_what_encode_writes(text: str) -> None:
    data = labels.decode(text)
    if data is None:
        assert not text or labels.encode(_lenient(text) or b"") != text
    else:
        assert labels.encode(data) == text


def _lenient(text: str) -> bytes | None:
    try:
        return base64.b32decode(text.upper() + "=" * (-len(text) % 8))
    except ValueError:
        return None


@pytest.mark.parametrize("text", ["", "a", "abc", "abcdef", "ab", "AE", "ae======", "a1"])
def test_texts_encode_never_writes_are_refused(text: str) -> None:
    assert labels.decode(text) is None
