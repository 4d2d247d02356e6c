"""``python -m bench [NAME...]``: run the benchmarks, print the table, write bench/results/latest.json.

Names: sign, limits, upload, verify, gallery, e2e, dedupe, sandbox, heic, and the hooks variants,
placeholders, client_body (default: all, in that order), and the groups ``issue13`` (sign,
limits, verify, e2e) and ``issue15`` (the web-image figures; not client_body, issue 11's). Hooks: a module ``bench/<name>.py`` for a name in :data:`HOOKS` that defines
``bench(resources, args) -> Report`` runs like the built-in ones. See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from .common import RESULTS, Pending, Report, Row, Series, machine

BUILT_IN = ("sign", "limits", "upload", "verify", "gallery", "e2e", "dedupe", "sandbox", "heic")
#: Benchmarks other work adds as ``bench/<name>.py`` with ``bench(resources, args) -> Report``.
HOOKS = ("variants", "placeholders", "client_body")
NAMES = BUILT_IN + tuple(name for name in HOOKS if (Path(__file__).parent / f"{name}.py").exists())
#: Names that stand for several: what ``./scripts/bench`` runs when given none is ``issue13``.
GROUPS = {
    "issue13": ("sign", "limits", "verify", "e2e"),
    "issue15": (
        "gallery",
        "dedupe",
        "heic",
        *(n for n in ("variants", "placeholders") if n in NAMES),
    ),
}


class Resources:
    """Things several benchmarks share, made on first use: a work folder, a Ceph RGW."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self._rgw: Any = None
        self._stack = contextlib.ExitStack()

    def rgw(self) -> Any:
        if self._rgw is None:
            from .rgw import start_rgw

            self._rgw = self._stack.enter_context(start_rgw())
        return self._rgw

    def close(self) -> None:
        self._stack.close()


def _runner(name: str) -> Callable[[Resources, argparse.Namespace], Report]:
    def sign(res: Resources, args: argparse.Namespace) -> Report:
        from . import sign as module

        return module.run(res.workdir, rounds=args.rounds or 5, diagnostics=not args.no_diagnostics)

    def limits(res: Resources, args: argparse.Namespace) -> Report:
        from . import limits as module

        return module.run(res.workdir, rounds=args.rounds or 5)

    def upload(res: Resources, args: argparse.Namespace) -> Report:
        from . import upload as module

        return module.run(res.workdir, rounds=args.rounds or 3)

    def verify(res: Resources, args: argparse.Namespace) -> Report:
        from . import verify as module

        return module.run(res.workdir, rounds=args.rounds or 5)

    def gallery(res: Resources, args: argparse.Namespace) -> Report:
        from . import gallery as module

        return module.run(res.workdir, res, rounds=args.rounds or 5, count=args.images)

    def e2e(res: Resources, args: argparse.Namespace) -> Report:
        from . import e2e as module

        return module.run(res.workdir, res, rounds=args.rounds or 3, count=args.e2e_images)

    def sandbox(res: Resources, args: argparse.Namespace) -> Report:
        from . import sandbox as module

        return module.run(res.workdir, rounds=args.rounds or 3)

    def dedupe(res: Resources, args: argparse.Namespace) -> Report:
        from . import dedupe as module

        return module.run(res.workdir, res, rounds=args.rounds or 5)

    def heic(res: Resources, args: argparse.Namespace) -> Report:
        from . import heic as module

        return module.run(res.workdir, rounds=args.rounds or 3)

    runners: dict[str, Callable[[Resources, argparse.Namespace], Report]] = {
        "heic": heic,
        "sandbox": sandbox,
        "sign": sign,
        "limits": limits,
        "upload": upload,
        "verify": verify,
        "gallery": gallery,
        "e2e": e2e,
        "dedupe": dedupe,
    }
    if name in runners:
        return runners[name]
    hooked: Callable[[Resources, argparse.Namespace], Report] = importlib.import_module(
        f"bench.{name}"
    ).bench
    return hooked


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="s3drop's benchmarks: each figure a ratio against a baseline of the same run.",
    )
    parser.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help=f"benchmarks to run ({', '.join(NAMES)}; or a group: {', '.join(GROUPS)}; "
        "default all)",
    )
    parser.add_argument(
        "--default-names",
        metavar="GROUP",
        choices=list(GROUPS),
        help="what to run when no NAME is given (default: all)",
    )
    parser.add_argument(
        "--rounds", type=int, help="rounds per figure (default per benchmark, >= 3)"
    )
    parser.add_argument(
        "--images",
        type=int,
        default=10_000,
        help="gallery: promoted images to list among (default 10000)",
    )
    parser.add_argument(
        "--e2e-images", type=int, default=200, help="end to end: images per round (default 200)"
    )
    parser.add_argument(
        "--no-diagnostics", action="store_true", help="sign: skip the diagnostic variants"
    )
    parser.add_argument(
        "--fix",
        action="append",
        default=[],
        metavar="NAME",
        help="apply a proposed fix from bench/fixes.py (repeatable; default none)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work folder in /tmp")
    parser.add_argument(
        "--out",
        type=Path,
        help="where to write the JSON (default bench/results/latest.json, or "
        "bench/results/with-fixes.json when --fix is given)",
    )
    args = parser.parse_args(argv)
    if args.out is None:
        args.out = RESULTS / ("with-fixes.json" if args.fix else "latest.json")
    if args.rounds is not None and args.rounds < 3:
        parser.error("--rounds must be at least 3")
    asked = args.names or ([args.default_names] if args.default_names else [])
    asked = [part for name in asked for part in GROUPS.get(name, (name,))]
    unknown = [name for name in asked if name not in NAMES]
    if unknown:
        parser.error(f"unknown benchmark {unknown[0]!r}; choose from {', '.join(NAMES)}")
    names = [name for name in NAMES if name in asked] if asked else list(NAMES)
    if args.fix:
        from . import fixes

        os.environ[fixes.ENV] = ",".join(fixes.apply(args.fix))  # here and in every subprocess
    console = Console() if sys.stdout.isatty() else Console(width=170)
    workdir = Path(tempfile.mkdtemp(prefix="s3drop-bench-", dir="/tmp"))
    resources = Resources(workdir)
    reports: list[Report] = []
    started = time.monotonic()
    try:
        for name in names:
            console.print(f"[bold]{name}[/bold] ...", highlight=False)
            t0 = time.monotonic()
            try:
                report = _runner(name)(resources, args)
            except Pending as exc:
                report = Report(name, name, status="pending", note=str(exc))
            except Exception as exc:
                traceback.print_exc()
                report = Report(name, name, status="failed", note=f"{type(exc).__name__}: {exc}")
            report.seconds = time.monotonic() - t0
            reports.append(report)
            console.print(
                f"  {report.status} in {report.seconds:.0f} s {report.note}", highlight=False
            )
    finally:
        resources.close()
        if args.keep:
            console.print(f"work folder kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    total = time.monotonic() - started
    console.print(render(reports))
    for report in reports:
        if report.note and report.status == "ran":
            console.print(f"[bold]{report.name}[/bold]: {report.note}", highlight=False)
    console.print(f"total {total:.0f} s; written to {args.out}")
    write(args.out, reports, total, fixes=args.fix)
    return 1 if any(r.status == "failed" for r in reports) else 0


def write(path: Path, reports: list[Report], total: float, *, fixes: list[str]) -> None:
    """Write the JSON; benchmarks not run this time keep their last entry (with its date)."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    previous: dict[str, Any] = {}
    with contextlib.suppress(OSError, ValueError):
        for entry in json.loads(path.read_text())["benchmarks"]:
            previous[entry["name"]] = entry
    for report in reports:
        entry = report.to_dict()
        entry["measured_at"] = now
        entry["fixes_applied"] = fixes
        previous[report.name] = entry
    ordered = [previous[n] for n in NAMES if n in previous]
    data = {
        "written_at": now,
        "seconds_this_run": round(total, 1),
        "machine": machine(),
        "benchmarks": ordered,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")


def render(reports: list[Report]) -> Table:
    table = Table(title="s3drop benchmarks: median \\[min-max] over rounds", show_lines=False)
    for column in ("benchmark / case", "s3drop", "baseline", "ratio", "target", "met"):
        table.add_column(column)
    for report in reports:
        table.add_row(
            f"[bold]{report.name}[/bold]: {report.title}", "", "", "", "", "", end_section=False
        )
        if report.status != "ran":
            table.add_row(
                f"  {report.status}: {report.note}", "", "", "", "", "-", end_section=True
            )
            continue
        for index, row in enumerate(report.rows):
            table.add_row(*_cells(row), end_section=index == len(report.rows) - 1)
    return table


def _cells(row: Row) -> list[str]:
    met = row.met()
    verdict = "-" if met is None else "[green]met[/green]" if met else "[red]missed[/red]"
    return [
        f"  {row.case}",
        _series(row.subject),
        _series(row.baseline) if row.baseline else "",
        _series(row.ratio) if row.ratio else "",
        row.target.text if row.target else "",
        verdict,
    ]


def _series(series: Series | None) -> str:
    if series is None:
        return ""
    values = series.values
    unit = "" if series.unit == "x" else f" {series.unit}"
    suffix = "x" if series.unit == "x" else ""
    if len(values) == 1:
        return f"{_num(values[0])}{suffix}{unit}"
    return f"{_num(series.median)}{suffix}{unit} [{_num(min(values))}-{_num(max(values))}]"


def _num(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


if __name__ == "__main__":
    sys.exit(main())
