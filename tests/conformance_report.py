"""The conformance table: what each backend (local, Ceph RGW) answered per case of
``tests/conformance``, printed at the end of the run and written to ``test-output/conformance.json``
and ``test-output/conformance.md``.

The cases note their answers in their test reports (the ``record`` fixture); ``tests/conftest.py``
hands each report to :func:`collect` and calls :func:`summary` at the end. That conftest, unlike
``tests/conformance/conftest.py``, is loaded where reports arrive, in pytest-xdist's controller too.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

OUTPUT = Path(__file__).resolve().parents[1] / "test-output"

#: The name of the test report property that carries one ``(case, backend, answer)``.
PROPERTY = "conformance"

#: case -> backend -> "204", "403 AccessDenied", ...
RESULTS: dict[str, dict[str, str]] = {}


def collect(report: pytest.TestReport) -> None:
    """Keep what a finished test recorded."""
    for name, value in report.user_properties:
        if name == PROPERTY:
            case, backend, answer = value
            RESULTS.setdefault(case, {})[backend] = answer


def summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the table and write it to ``test-output``."""
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
