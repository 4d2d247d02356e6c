"""The upkeep commands: ``sweep``, ``variants``, ``webhook-secret`` and ``bucket init|doctor``."""

from __future__ import annotations

import shutil
import sys
from typing import TYPE_CHECKING, Any

import click

from .images import _existing_store

if TYPE_CHECKING:  # settings (pydantic) load only for commands that need them: --help stays fast
    from .._config import Settings


_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _duration(value: str) -> int:
    """``90s``, ``30m``, ``24h``, ``7d`` or plain seconds -> seconds."""
    text = value.strip().lower()
    unit = _DURATION_UNITS.get(text[-1:], 0)
    number = text[:-1] if unit else text
    if not number.isdigit():
        raise click.BadParameter(f"not a duration: {value!r} (try 24h, 30m or 7d)")
    return int(number) * (unit or 1)


@click.command()
@click.option(
    "--older-than", default="24h", show_default=True, help="Age past which an upload is stale."
)
@click.option("--json", "as_json", is_flag=True, help='Print {"removed": N}.')
def sweep(older_than: str, as_json: bool) -> None:
    """Remove uploads that were never completed from quarantine, on any backend, and the
    thumbnails and responsive variants a crash left without their image (after an hour).

    The local backend's server also does this hourly; on S3 the lifecycle rule of
    `s3drop bucket init` does it too.

    \b
    Example:
        s3drop sweep --older-than 24h
    """
    import json
    from datetime import timedelta

    from .._uploads import S3Drop

    removed = S3Drop(_existing_store()).sweep(older_than=timedelta(seconds=_duration(older_than)))
    click.echo(json.dumps({"removed": removed}) if as_json else f"removed {removed} stale uploads")


@click.command()
@click.option("--missing", is_flag=True, help="Make them for every image that lacks them.")
@click.option("--json", "as_json", is_flag=True, help="Print what was done as JSON.")
@click.option(
    "--progress/--no-progress",
    default=None,
    help="A progress bar (default: when standard output is a terminal, without --json).",
)
def variants(missing: bool, as_json: bool, progress: bool | None) -> None:
    """Responsive variants (S3DROP_VARIANT_WIDTHS x S3DROP_VARIANT_FORMATS) of stored images.

    Without --missing, says how many images lack them. With it, makes them, decoding in the
    sandbox, and renames each image's key to say so; an interrupted run is finished by the next,
    and a second run has nothing to do.

    \b
    Example:
        s3drop variants --missing
    """
    import json

    from .._backfill import fill_missing, pending
    from .._uploads import S3Drop

    drop = S3Drop(_existing_store())
    try:
        if not missing:
            count = len(pending(drop))
            click.echo(
                json.dumps({"missing": count})
                if as_json
                else f"{count} images lack variants; make them with: s3drop variants --missing"
            )
            return
        show = (sys.stdout.isatty() and not as_json) if progress is None else progress
        report = _fill_with_bar(drop, fill_missing, pending) if show else fill_missing(drop)
    finally:
        drop.close()
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        click.echo(
            f"made variants for {len(report.made) + len(report.finished)} images "
            f"({report.variant_puts} objects); {len(report.none_needed)} needed none; "
            f"{len(report.failed)} failed"
        )
        for image_id, reason in report.failed.items():
            click.echo(f"s3drop: error: {image_id}: {reason}", err=True)
    if report.failed:
        sys.exit(1)


def _fill_with_bar(drop: Any, fill: Any, pending: Any) -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    total = len(pending(drop))
    columns = (BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress("{task.description}", *columns) as bars:
        task = bars.add_task("variants", total=total)
        return fill(drop, progress=lambda image_id, outcome: bars.advance(task))


@click.command(name="webhook-secret")
def webhook_secret() -> None:
    """Print a new signing secret for S3DROP_WEBHOOK_SECRET (whsec_ and 32 random bytes).

    \b
    Example:
        echo "S3DROP_WEBHOOK_SECRET=$(s3drop webhook-secret)" >> .env
    """
    from ..webhooks import generate_secret

    click.echo(generate_secret())


@click.group()
def bucket() -> None:
    """Set up and check the S3 bucket (S3DROP_BUCKET, AWS_* settings).

    \b
    Example:
        S3DROP_BUCKET=photos s3drop bucket init && s3drop bucket doctor
    """


_origin_option = click.option(
    "--origin",
    "origins",
    multiple=True,
    help="Another origin of the upload page, besides the app's and S3DROP_ALLOWED_ORIGINS "
    "(repeatable).",
)


@bucket.command(name="init")
@_origin_option
@click.option("--json", "as_json", is_flag=True, help="Print the steps as JSON.")
def bucket_init(origins: tuple[str, ...], as_json: bool) -> None:
    """Create the bucket if missing, block public access, set CORS and the quarantine lifecycle.

    Idempotent: a second run changes nothing and says "unchanged".

    \b
    Example:
        S3DROP_BUCKET=photos AWS_ENDPOINT_URL_S3=http://127.0.0.1:7480 s3drop bucket init
        s3drop bucket init --origin https://drop.example.com
    """
    from .._bucket import init_bucket, open_bucket

    settings, allowed = _bucket_settings(origins)
    steps = init_bucket(open_bucket(settings), origins=allowed)
    _print_rows(as_json, ["step", "outcome", "detail"], [s.__dict__ for s in steps])


@bucket.command(name="doctor")
@_origin_option
@click.option("--json", "as_json", is_flag=True, help="Print the checks as JSON.")
def bucket_doctor(origins: tuple[str, ...], as_json: bool) -> None:
    """Check credentials, access, CORS, privacy and lifecycle; prove the bucket enforces policies.

    Posts a tiny signed form, an oversized body and a wrong Content-Type to the bucket, expects
    the last two refused, and deletes whatever got stored. Exits 1 when any check fails.

    \b
    Example:
        S3DROP_BUCKET=photos AWS_REGION=eu-west-3 s3drop bucket doctor
    """
    from .._bucket import open_bucket
    from .._doctor import diagnose_bucket

    settings, allowed = _bucket_settings(origins)
    checks = diagnose_bucket(open_bucket(settings), origins=allowed)
    rows = [{**c.__dict__, "result": c.result} for c in checks]
    _print_rows(as_json, ["check", "result", "detail", "fix"], rows)
    failed = [check.name for check in checks if not check.ok and not check.skipped]
    if failed:
        click.echo(f"s3drop: {len(failed)} check(s) failed: {', '.join(failed)}", err=True)
        sys.exit(1)


def _bucket_settings(origins: tuple[str, ...]) -> tuple[Settings, list[str]]:
    """Settings, and the page origins: the app's own and the configured ones, plus --origin."""
    from .._config import Settings

    settings = Settings()
    if origins:
        extra = Settings(allowed_origins=list(origins)).allowed_origins  # validated, normalised
        return settings, list(dict.fromkeys([*settings.origins(), *extra]))
    return settings, settings.origins()


def _print_rows(as_json: bool, columns: list[str], rows: list[dict[str, Any]]) -> None:
    """Rows as JSON, or as a table (the first column comes from each row's ``name``)."""
    if as_json:
        import json

        click.echo(json.dumps(rows, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(*columns)
    for row in rows:
        table.add_row(*(str(row.get(c if i else "name", "")) for i, c in enumerate(columns)))
    Console(width=max(shutil.get_terminal_size().columns, 120)).print(table)
