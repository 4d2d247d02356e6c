"""What ``s3drop upload`` and ``s3drop ls`` show: progress bars on a terminal, plain lines otherwise.

The commands in :mod:`s3drop._cli` stay thin: they parse options and call these. Uploads run on a
thread pool (``jobs`` at once) through one :class:`~s3drop._client.Client`; results come back in the
order the paths were given, whatever order they finished in.
"""

from __future__ import annotations

import glob
import os
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import click

from ._client import Client, UploadResult
from ._units import format_size


def expand_paths(patterns: Iterable[str]) -> tuple[list[Path], list[UploadResult]]:
    """Files named by ``patterns`` (files, folders walked recursively, globs), in order, each once;
    and a ``refused`` result for each pattern that names nothing.

    Inside a folder, hidden files and folders (``.name``) are skipped; a file named outright never
    is.
    """
    files: list[Path] = []
    missing: list[UploadResult] = []
    seen: set[Path] = set()

    def add(path: Path) -> None:
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            files.append(path)

    for pattern in patterns:
        path = Path(pattern)
        if path.is_dir():
            for found in _walk(path):
                add(found)
        elif path.is_file():
            add(path)
        elif glob.has_magic(pattern) and (matches := sorted(glob.glob(pattern, recursive=True))):
            for match in matches:
                matched = Path(match)
                if matched.is_dir():
                    for found in _walk(matched):
                        add(found)
                elif matched.is_file():
                    add(matched)
        else:
            missing.append(
                UploadResult(
                    pattern,
                    "refused",
                    error_code="not_found",
                    error_message=f"no such file or folder: {pattern}",
                )
            )
    return files, missing


def _walk(folder: Path) -> list[Path]:
    found: list[Path] = []
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(name for name in dirs if not name.startswith("."))
        found.extend(Path(root) / name for name in sorted(names) if not name.startswith("."))
    return found


def upload_files(
    client: Client,
    files: list[Path],
    *,
    jobs: int,
    progress: bool,
    echo_results: bool,
) -> list[UploadResult]:
    """Upload ``files``, ``jobs`` at a time; with ``progress``, rich bars per file and in total;
    else, with ``echo_results``, one plain line per file as it finishes."""
    if progress:
        return _with_progress(client, files, jobs=jobs)
    done = threading.Lock()

    def one(path: Path) -> UploadResult:
        result = client.upload_result(path)
        if echo_results:
            with done:
                click.echo(result_line(result))
        return result

    return _run(files, one, jobs)


def _run(files: list[Path], one: Callable[[Path], UploadResult], jobs: int) -> list[UploadResult]:
    if jobs <= 1 or len(files) <= 1:
        return [one(path) for path in files]
    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="s3drop-upload") as pool:
        return list(pool.map(one, files))


def _with_progress(client: Client, files: list[Path], *, jobs: int) -> list[UploadResult]:
    """Rich bars, one per file in flight and one in total; each result printed above them.

    Every change to the display goes through one lock, and the display is redrawn only under it
    (no auto-refresh thread): rich computes where to put the cursor from the last drawing, so two
    threads drawing at once would overwrite each other's lines.
    """
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TaskID,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    sizes = {path: _size(path) for path in files}
    sent: dict[Path, int] = dict.fromkeys(files, 0)
    ui = threading.Lock()
    drawn = [0.0]
    columns = (
        TextColumn("{task.description}", justify="left"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )

    def draw(*, now: bool = False) -> None:  # under ``ui``
        if now or time.monotonic() - drawn[0] > 0.1:
            bars.refresh()
            drawn[0] = time.monotonic()

    with Progress(*columns, auto_refresh=False) as bars:
        total = bars.add_task(f"[bold]{len(files)} files", total=sum(sizes.values()) or 1)

        def one(path: Path) -> UploadResult:
            with ui:
                task: TaskID = bars.add_task(_short(str(path)), total=sizes[path] or 1)
                draw(now=True)

            def moved(bytes_sent: int, size: int) -> None:
                with ui:
                    sent[path] = bytes_sent
                    bars.update(task, completed=bytes_sent, total=size or 1)
                    bars.update(total, completed=sum(sent.values()))
                    draw()

            result = client.upload_result(path, progress=moved)
            with ui:
                sent[path] = sizes[path]  # refused or failed files count as done, too
                bars.update(total, completed=sum(sent.values()))
                bars.remove_task(task)
                bars.console.print(result_line(result, styled=True), highlight=False)
                draw(now=True)
            return result

        return _run(files, one, jobs)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _short(text: str, width: int = 40) -> str:
    return text if len(text) <= width else "…" + text[-(width - 1) :]


_STYLE = {
    "accepted": "green",
    "duplicate": "cyan",
    "rejected": "red",
    "refused": "yellow",
    "failed": "red",
}


def result_line(result: UploadResult, *, styled: bool = False) -> str:
    """``accepted  cat.png  1737…  640x480 png 12.3 kB`` or ``refused  a.txt  code: reason``."""
    status = f"{result.status:<8}"
    if styled:
        status = f"[{_STYLE[result.status]}]{status}[/]"
    if result.status == "duplicate":
        return f"{status}  {result.path}  {result.id}  already in your gallery, nothing sent"
    if result.status == "accepted":
        image = result.image or {}
        facts = [
            result.id or "",
            _dimensions(image),
            str(image.get("format") or ""),
            _bytes(image.get("bytes")),
        ]
        return "  ".join([status, result.path, *[fact for fact in facts if fact]])
    return f"{status}  {result.path}  {result.error_code}: {result.error_message}"


def summary(results: list[UploadResult]) -> None:
    """``3 of 5 files accepted`` (``, 1 already in your gallery``) and, for each other file, its
    status and reason (on stderr)."""
    accepted = sum(result.status == "accepted" for result in results)
    duplicates = sum(result.status == "duplicate" for result in results)
    failures = [result for result in results if result.status not in ("accepted", "duplicate")]
    files = "file" if len(results) == 1 else "files"
    head = f"{accepted} of {len(results)} {files} accepted"
    if duplicates:
        head += f", {duplicates} already in your gallery"
    lines = [head + ("; not accepted:" if failures else "")]
    lines.extend(
        f"  {result.path}: {result.status}, {result.error_code}: {result.error_message}"
        for result in failures
    )
    click.echo("\n".join(lines), err=True)


def _bytes(value: object) -> str:
    return format_size(value) if isinstance(value, int) else ""


def _dimensions(image: dict[str, Any]) -> str:
    width, height = image.get("width"), image.get("height")
    return f"{width}x{height}" if width and height else ""


def image_table(images: list[dict[str, Any]]) -> str:
    """Images as aligned columns: id, upload time (UTC), dimensions, format, bytes, and the original
    name where the server gave it."""
    named = any(image.get("filename") for image in images)
    rows = [["ID", "UPLOADED", "SIZE", "FORMAT", "BYTES", *(["NAME"] if named else [])]]
    for image in images:
        uploaded = str(image.get("uploaded_at") or "").replace("T", " ").removesuffix("Z")
        row = [
            str(image.get("id", "")),
            uploaded[:19],
            _dimensions(image),
            str(image.get("format") or ""),
            _bytes(image.get("bytes")),
        ]
        if named:
            row.append(str(image.get("filename") or ""))
        rows.append(row)
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]) - 1)]
    return "\n".join(
        "  ".join(
            [*(cell.ljust(width) for cell, width in zip(row, widths, strict=False)), row[-1]]
        ).rstrip()
        for row in rows
    )
