"""The results JSON as the Markdown table bench/README.md carries, and the writer that puts it there.

``python -m bench.report [FILE]`` prints the table of FILE (default bench/results/latest.json);
``python -m bench.report --readme [README] [FILE]`` writes it into README (default bench/README.md)
between the lines :data:`START` and :data:`END`, leaving everything else as it is (what
``./scripts/bench`` does after a run). Standard library only, so it runs without the bench extras.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"
README = BENCH / "README.md"
START = "<!-- bench-table:start (written by ./scripts/bench; edits here are overwritten) -->"
END = "<!-- bench-table:end -->"


def _series(data: dict[str, Any] | None) -> str:
    if not data:
        return ""
    unit = "x" if data["unit"] == "x" else f" {data['unit']}"
    if len(data["rounds"]) == 1:
        return f"{_num(data['median'])}{unit}"
    return f"{_num(data['median'])}{unit} [{_num(data['min'])}-{_num(data['max'])}]"


def _num(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def machine_line(machine: dict[str, Any]) -> str:
    """CPU model, cores, memory, OS, kernel, Python and the packages that matter."""
    packages = ", ".join(f"{k} {v}" for k, v in machine.get("packages", {}).items())
    return (
        f"{machine['cpu']}, {machine['cores']} cores, {machine.get('memory_gib', '?')} GiB, "
        f"{machine.get('os', '?')}, Linux {machine['kernel']}, Python {machine['python']}"
        + (f" ({packages})" if packages else "")
    )


def markdown(data: dict[str, Any]) -> str:
    lines = [
        f"Written {data['written_at']} on {machine_line(data['machine'])}. Median [min-max] over "
        "the rounds; each benchmark's own date is in its heading.",
        "",
        "| benchmark / case | s3drop | baseline | ratio | target | met |",
        "|---|---|---|---|---|---|",
    ]
    for bench in data["benchmarks"]:
        fixes = bench.get("fixes_applied") or []
        extra = f" (fixes: {', '.join(fixes)})" if fixes else ""
        when = f" ({bench['measured_at']})" if bench.get("measured_at") else ""
        lines.append(f"| **{bench['name']}**{when}: {bench['title']}{extra} | | | | | |")
        if bench["status"] != "ran":
            lines.append(f"| {bench['status']}: {bench['note']} | | | | | |")
            continue
        for row in bench["rows"]:
            met = {None: "", True: "met", False: "**missed**"}[row["met"]]
            lines.append(
                f"| {row['case']} | {_series(row['subject'])} | {_series(row['baseline'])} "
                f"| {_series(row['ratio'])} | {row['target'] or ''} | {met} |"
            )
        if bench.get("note"):
            lines.append(f"| note: {bench['note']} | | | | | |")
    return "\n".join(lines)


def write_readme(data: dict[str, Any], readme: Path) -> None:
    """Replace what lies between :data:`START` and :data:`END` in ``readme`` with the table."""
    text = readme.read_text()
    start, end = text.find(START), text.find(END)
    if start < 0 or end < start:
        raise ValueError(f"{readme}: no {START!r} ... {END!r} markers to write the table between")
    table = markdown(data)
    readme.write_text(f"{text[: start + len(START)]}\n\n{table}\n\n{text[end:]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.report", description="The benchmark table, printed or written."
    )
    parser.add_argument("results", nargs="?", type=Path, default=RESULTS / "latest.json")
    parser.add_argument(
        "--readme",
        nargs="?",
        type=Path,
        const=README,
        help=f"write the table into this README between its markers (default {README.name})",
    )
    args = parser.parse_args(argv)
    data = json.loads(args.results.read_text())
    if args.readme is None:
        print(markdown(data))
        return 0
    try:
        write_readme(data, args.readme)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"table written to {args.readme}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
