"""./scripts/bench's help and its table writer (bench/report.py) on a tiny results file. The
benchmarks themselves are not run here: they are measurements, not tests."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.report import END, START, write_readme

ROOT = Path(__file__).resolve().parent.parent


def _results() -> dict[str, Any]:
    series = {"label": "sign", "unit": "req/s", "rounds": [900.0, 1000.0, 1100.0]}
    return {
        "written_at": "2026-12-01T19:00:00Z",
        "machine": {
            "cpu": "Intel(R) Xeon(R) Processor",
            "cores": 2,
            "memory_gib": 7.8,
            "os": "Debian GNU/Linux 12 (bookworm)",
            "kernel": "6.1.0-test",
            "python": "3.11.2",
            "packages": {"fastapi": "0.1"},
        },
        "benchmarks": [
            {
                "name": "sign",
                "title": "Signing under load",
                "status": "ran",
                "note": "",
                "measured_at": "2026-12-01T18:59:00Z",
                "rows": [
                    {
                        "case": "c=16 req/s, sign / bare",
                        "subject": {**series, "min": 900.0, "median": 1000.0, "max": 1100.0},
                        "baseline": {
                            **series,
                            "label": "bare",
                            "min": 950.0,
                            "median": 960.0,
                            "max": 990.0,
                        },
                        "ratio": {
                            "label": "ratio",
                            "unit": "x",
                            "rounds": [1.04],
                            "min": 1.04,
                            "median": 1.04,
                            "max": 1.04,
                        },
                        "target": "sign/bare >= 1.0",
                        "met": True,
                    }
                ],
            },
            {
                "name": "limits",
                "title": "Redis vs SQLite",
                "status": "failed",
                "note": "RuntimeError: redis-server missing",
                "rows": [],
            },
        ],
    }


def test_bench_script_help_says_what_it_runs_and_installs_nothing(tmp_path: Path) -> None:
    # dpkg, apt-get, sudo and python stand-ins that leave a mark: --help must answer without them.
    spies = tmp_path / "bin"
    spies.mkdir()
    for name in ("dpkg", "apt-get", "sudo", "python", "python3", "pip"):
        spy = spies / name
        spy.write_text(f"#!/bin/sh\necho {name} >> {tmp_path / 'ran'}\n")
        spy.chmod(0o755)
    done = subprocess.run(
        [str(ROOT / "scripts" / "bench"), "--help"],
        capture_output=True,
        text=True,
        env={"PATH": f"{spies}:/usr/bin:/bin"},
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "ran").exists(), (tmp_path / "ran").read_text()
    assert done.stdout.startswith("Usage: ./scripts/bench [NAME...] [OPTIONS]")
    assert "issue13 (sign, limits, verify, e2e" in done.stdout
    assert "bench/README.md" in done.stdout
    assert done.stderr == ""


def test_the_table_goes_between_the_markers_with_date_and_machine(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    before, after = "# Benchmarks\n\nIntro.\n\n", "\n\n## Packages\n\nwrk.\n"
    readme.write_text(f"{before}{START}\nan old table\n{END}{after}")
    results = tmp_path / "latest.json"
    results.write_text(json.dumps(_results()))

    done = subprocess.run(
        [sys.executable, "-m", "bench.report", "--readme", str(readme), str(results)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    text = readme.read_text()
    assert text.startswith(before + START)
    assert text.endswith(END + after)
    assert "an old table" not in text
    table = text[text.index(START) + len(START) : text.index(END)]
    assert table.splitlines()[2] == (
        "Written 2026-12-01T19:00:00Z on Intel(R) Xeon(R) Processor, 2 cores, 7.8 GiB, Debian "
        "GNU/Linux 12 (bookworm), Linux 6.1.0-test, Python 3.11.2 (fastapi 0.1). Median "
        "[min-max] over the rounds; each benchmark's own date is in its heading."
    )
    assert (
        "| c=16 req/s, sign / bare | 1000 req/s [900-1100] | 960 req/s [950-990] | 1.04x "
        "| sign/bare >= 1.0 | met |"
    ) in table
    assert "| **sign** (2026-12-01T18:59:00Z): Signing under load | | | | | |" in table
    assert "| failed: RuntimeError: redis-server missing | | | | | |" in table

    write_readme(_results(), readme)  # again: the same README, not a second table
    assert readme.read_text() == text


def test_a_readme_without_markers_is_refused_and_left_alone(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("# Benchmarks\n")
    results = tmp_path / "latest.json"
    results.write_text(json.dumps(_results()))
    done = subprocess.run(
        [sys.executable, "-m", "bench.report", "--readme", str(readme), str(results)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert done.returncode == 1
    assert "no '<!-- bench-table:start" in done.stderr
    assert readme.read_text() == "# Benchmarks\n"
