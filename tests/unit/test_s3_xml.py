"""S3's XML answers: what the local backend writes is what S3 writes, and what the client reads."""

from __future__ import annotations

from xml.etree import ElementTree

from hypothesis import given
from hypothesis import strategies as st

from s3drop._errors import S3Error
from s3drop.storage._s3_xml import error_body, error_document, parse_error, post_response


def test_an_error_document_is_s3s() -> None:
    body = error_document("EntityTooLarge", "Your proposed upload exceeds the maximum allowed size")
    assert body == (
        b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>EntityTooLarge</Code>'
        b"<Message>Your proposed upload exceeds the maximum allowed size</Message></Error>"
    )


@given(code=st.text(st.characters(categories=["L", "N"]), min_size=1), message=st.text())
def test_what_is_written_is_read_back(code: str, message: str) -> None:
    message = "".join(ch for ch in message if ch.isprintable())  # what XML 1.0 can carry
    assert parse_error(error_body(S3Error(message, code=code, status=400))) == (
        code,
        message.strip(),
    )


def test_markup_in_a_message_stays_text() -> None:
    body = error_document("AccessDenied", "</Message><Code>Forged</Code> & more")
    assert parse_error(body) == ("AccessDenied", "</Message><Code>Forged</Code> & more")


def test_a_post_response_names_the_object() -> None:
    body = post_response(location="http://h/storage/a%20b", bucket="local", key="a b", etag='"e"')
    root = ElementTree.fromstring(body)  # noqa: S314 (our own answer)
    assert root.tag == "PostResponse"
    assert [(child.tag, child.text) for child in root] == [
        ("Location", "http://h/storage/a%20b"),
        ("Bucket", "local"),
        ("Key", "a b"),
        ("ETag", '"e"'),
    ]


def test_anything_else_is_no_error_document() -> None:
    assert parse_error(b"") is None
    assert parse_error("<html><body>502 Bad Gateway</body></html>") is None
    assert parse_error(b"<Error><Message>no code</Message></Error>") is None
    assert parse_error(b"<Error><Code>Truncated") is None


@given(st.binary())
def test_any_bytes_parse_or_are_none(body: bytes) -> None:
    found = parse_error(body)
    assert found is None or (isinstance(found[0], str) and found[0])
