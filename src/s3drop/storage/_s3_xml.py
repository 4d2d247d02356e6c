"""S3's XML answers, built and read in one place with the standard library.

S3 answers a refusal with an ``<Error>`` document (``Code``, ``Message``) and a POST whose
``success_action_status`` is 201 with a ``<PostResponse>``. The local backend's endpoints write
both (:func:`error_document`, :func:`post_response`); the client and ``s3drop bucket doctor`` read
what S3 and the local backend answer (:func:`parse_error`)::

    >>> error_document("AccessDenied", "Policy expired & <gone>")
    b'<?xml version="1.0" encoding="UTF-8"?>\\n<Error><Code>AccessDenied</Code><Message>Policy expired &amp; &lt;gone&gt;</Message></Error>'
    >>> parse_error(error_document("NoSuchKey", "gone"))
    ('NoSuchKey', 'gone')
"""

from __future__ import annotations

from xml.etree import ElementTree

from .._errors import S3Error

_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'
MEDIA_TYPE = "application/xml"


def _document(root: str, children: dict[str, str]) -> bytes:
    element = ElementTree.Element(root)
    for name, text in children.items():
        ElementTree.SubElement(element, name).text = text
    return _DECLARATION + ElementTree.tostring(element)


def error_document(code: str, message: str) -> bytes:
    """S3's ``<Error>`` document."""
    return _document("Error", {"Code": code, "Message": message})


def error_body(exc: S3Error) -> bytes:
    """``exc`` as S3 answers it (the status is ``exc.status``)."""
    return error_document(exc.code, exc.message)


def post_response(*, location: str, bucket: str, key: str, etag: str) -> bytes:
    """What S3 answers a stored POST whose ``success_action_status`` is 201."""
    return _document(
        "PostResponse", {"Location": location, "Bucket": bucket, "Key": key, "ETag": etag}
    )


def parse_error(body: bytes | str) -> tuple[str, str] | None:
    """``(code, message)`` of an S3 ``<Error>`` document; None for anything else (not XML, or
    XML without a ``Code``)."""
    try:
        # Answers of a store s3drop was pointed at; expat expands no external entities.
        root = ElementTree.fromstring(body)  # noqa: S314
    except ElementTree.ParseError:
        return None
    code = root.findtext("Code") if root.tag == "Error" else None
    if not code:
        return None
    return code, (root.findtext("Message") or "").strip()
