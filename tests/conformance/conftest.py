"""What each backend answered per conformance case: ``record`` notes it in the test's report, and
:mod:`tests.conformance_report` prints them as one table (also in ``test-output/conformance.json``
and ``test-output/conformance.md``): the statuses Ceph RGW returned are what the S3 backend's proof
rests on.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from tests.conformance_report import PROPERTY


@pytest.fixture
def record(request: pytest.FixtureRequest) -> Callable[[str, str, str], None]:
    """``record(case, backend, answer)``: note what storage answered to one case. It travels in
    the test's report, so the table is whole when pytest-xdist runs the cases in workers."""

    def note(case: str, backend: str, answer: str) -> None:
        request.node.user_properties.append((PROPERTY, (case, backend, answer)))

    return note
