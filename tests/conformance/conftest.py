"""What each backend answered per conformance case: ``record`` notes it in the test's report, and
:mod:`tests.conformance_report` prints them as one table (also in ``test-output/conformance.json``
and ``test-output/conformance.md``): the statuses Ceph RGW returned are what the S3 backend's proof
rests on. ``signed_ago`` dates s3drop's signatures in the past, so that a form is already expired
when it is sent: no waiting for one to expire.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import datetime, timedelta, tzinfo
from time import struct_time
from typing import Any

import pytest
from tests.conformance_report import PROPERTY

from s3drop.storage import base

#: The module that signs (its clock is what ``signed_ago`` moves): where the storage template's
#: POST signer lives, whatever that module is named.
sigv4 = sys.modules[base.sign_post.__module__]


@pytest.fixture
def record(request: pytest.FixtureRequest) -> Callable[[str, str, str], None]:
    """``record(case, backend, answer)``: note what storage answered to one case. It travels in
    the test's report, so the table is whole when pytest-xdist runs the cases in workers."""

    def note(case: str, backend: str, answer: str) -> None:
        request.node.user_properties.append((PROPERTY, (case, backend, answer)))

    return note


class _ClockAgo:
    """The ``time`` module as s3drop's signing reads it, ``seconds`` behind the real clock."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def time(self) -> float:
        return time.time() - self.seconds

    def gmtime(self, secs: float | None = None) -> struct_time:
        return time.gmtime(self.time() if secs is None else secs)

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


def _datetime_ago(seconds: float) -> type[datetime]:
    class _DatetimeAgo(datetime):
        @classmethod
        def now(cls, tz: tzinfo | None = None) -> datetime:  # type: ignore[override]
            return datetime.now(tz) - timedelta(seconds=seconds)

    return _DatetimeAgo


@pytest.fixture
def signed_ago() -> Callable[[float], AbstractContextManager[None]]:
    """``with signed_ago(seconds):`` s3drop signs (POST policies, PUT URLs, and the expiry the form
    carries) as if its clock said ``seconds`` ago. Storage checks what it receives against its
    own clock (RGW's, or the local backend's, which is not moved): a form signed for less than
    ``seconds`` is already expired when it is sent, with no waiting (the way botocore's tests
    freeze its clock)."""

    @contextlib.contextmanager
    def ago(seconds: float) -> Iterator[None]:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(sigv4, "time", _ClockAgo(seconds))
            patch.setattr(sigv4, "datetime", _datetime_ago(seconds))
            patch.setattr(base, "datetime", _datetime_ago(seconds))
            yield

    return ago
