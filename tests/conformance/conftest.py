"""Collects what each backend answered per conformance case, and prints it as one table.

The table also lands in ``test-output/conformance.json`` and ``test-output/conformance.md``: the
statuses Ceph RGW returned are what the S3 backend's proof rests on.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

OUTPUT = Path(__file__).resolve().parents[2] / "test-output"

#: case -> backend -> "204", "403 AccessDenied", ...
RESULTS: dict[str, dict[str, str]] = {}


@pytest.fixture
def record() -> Callable[[str, str, str], None]:
    """``record(case, backend, answer)``: note what storage answered to one case."""

    def note(case: str, backend: str, answer: str) -> None:
        RESULTS.setdefault(case, {})[backend] = answer

    return note


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not RESULTS:
        return
    backends = sorted({backend for answers in RESULTS.values() for backend in answers})
    lines = [
        "| case | " + " | ".join(backends) + " |",
        "|---|" + "---|" * len(backends),
    ]
    for case, answers in RESULTS.items():
        cells = [answers.get(backend, "-") for backend in backends]
        lines.append(f"| {case} | " + " | ".join(cells) + " |")
    terminalreporter.write_sep("-", "POST policy and PUT conformance: what each backend answered")
    for line in lines:
        terminalreporter.write_line(line)
    OUTPUT.mkdir(exist_ok=True)
    (OUTPUT / "conformance.json").write_text(json.dumps(RESULTS, indent=2) + "\n")
    (OUTPUT / "conformance.md").write_text("\n".join(lines) + "\n")
