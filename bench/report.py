"""``python -m bench.report [FILE]``: a results JSON as the Markdown table bench/README.md carries."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from .common import RESULTS


def _series(data: dict[str, Any] | None) -> str:
    if not data:
        return ""
    unit = "x" if data["unit"] == "x" else f" {data['unit']}"
    if len(data["rounds"]) == 1:
        return f"{_num(data['median'])}{unit}"
    return f"{_num(data['median'])}{unit} [{_num(data['min'])}-{_num(data['max'])}]"


def _num(value: float) -> str:
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def markdown(data: dict[str, Any]) -> str:
    machine = data["machine"]
    lines = [
        f"Measured {data['written_at']} on {machine['cpu']}, {machine['cores']} cores, "
        f"{machine['memory_gib']} GiB, {machine['os']}, Linux {machine['kernel']}, "
        f"Python {machine['python']} ({', '.join(f'{k} {v}' for k, v in machine['packages'].items())}).",
        "",
        "| benchmark / case | s3drop | baseline | ratio | target | met |",
        "|---|---|---|---|---|---|",
    ]
    for bench in data["benchmarks"]:
        fixes = bench.get("fixes_applied") or []
        extra = f" (fixes: {', '.join(fixes)})" if fixes else ""
        lines.append(f"| **{bench['name']}**: {bench['title']}{extra} | | | | | |")
        if bench["status"] != "ran":
            lines.append(f"| {bench['status']}: {bench['note']} | | | | | |")
            continue
        for row in bench["rows"]:
            met = {None: "", True: "met", False: "**missed**"}[row["met"]]
            lines.append(
                f"| {row['case']} | {_series(row['subject'])} | {_series(row['baseline'])} "
                f"| {_series(row['ratio'])} | {row['target'] or ''} | {met} |"
            )
    return "\n".join(lines)


def main() -> None:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else RESULTS / "latest.json"
    print(markdown(json.loads(path.read_text())))


if __name__ == "__main__":
    main()
