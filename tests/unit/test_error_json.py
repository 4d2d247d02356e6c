"""The one JSON shape of a refusal, built in _errors.py for every edge: the app, its middleware,
the operations endpoints and the framework adapters (integrations.api)."""

from __future__ import annotations

import json

import pytest

from s3drop._errors import (
    AlreadyUploaded,
    FileTooLarge,
    LimitsUnavailable,
    NotFound,
    RateLimited,
    S3DropError,
    ServerBusy,
    StorageUnavailable,
    error_headers,
    error_json,
    json_error,
)
from s3drop.integrations.api import error_answer


def test_the_envelope() -> None:
    assert json_error("not_found", "no image x") == {
        "error": {"code": "not_found", "message": "no image x"}
    }
    assert json_error("internal", "oops", reference="ab12cd34") == {
        "error": {"code": "internal", "message": "oops", "reference": "ab12cd34"}
    }


def test_a_duplicate_carries_its_image_beside_the_error() -> None:
    image = {"id": "x", "url": "/i/x"}
    assert error_json(AlreadyUploaded("you have it", image=image)) == {
        "error": {"code": "already_uploaded", "message": "you have it"},
        "image": image,
    }


@pytest.mark.parametrize(
    ("exc", "headers"),
    [
        (RateLimited("slow down", retry_after=7), {"Retry-After": "7"}),
        (ServerBusy("busy", retry_after=2), {"Retry-After": "2"}),
        (LimitsUnavailable("locked"), {"Retry-After": "1"}),
        (StorageUnavailable("storage is down"), {"Retry-After": "30"}),
        (NotFound("no image"), {}),
        (FileTooLarge("too big"), {}),
    ],
)
def test_the_adapters_answer_as_the_app(exc: S3DropError, headers: dict[str, str]) -> None:
    """Django and Flask (integrations.api) answer every error with the app's body and headers:
    a 503 without its own retry time says 30 s there too (it said nothing)."""
    assert error_headers(exc) == headers
    answer = error_answer(exc)
    assert answer.status == exc.status
    assert json.loads(answer.body) == error_json(exc)
    assert answer.headers == headers
