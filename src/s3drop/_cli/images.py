"""The image commands: ``upload`` (through a running server), ``ls`` and ``rm`` (through a server,
or ``--direct`` on the configured storage)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from .._errors import S3DropError

if TYPE_CHECKING:  # settings (pydantic) load only for commands that need them: --help stays fast
    from .._config import Settings


def _server_options(command: Any) -> Any:
    command = click.option(
        "--token",
        envvar="S3DROP_TOKEN",
        help="Bearer token for the server (env S3DROP_TOKEN; the environment keeps it out of ps).",
    )(command)
    return click.option(
        "--server",
        envvar="S3DROP_SERVER",
        default="http://127.0.0.1:8000",
        show_default=True,
        help="URL of the s3drop server (env S3DROP_SERVER).",
    )(command)


@click.command()
@click.argument("paths", nargs=-1, required=True)
@_server_options
@click.option(
    "--jobs",
    "-j",
    type=click.IntRange(1, 64),
    default=4,
    show_default=True,
    help="Files uploaded at once.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document with every result.")
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Progress bars (default: when standard output is a terminal, without --json).",
)
@click.option(
    "--retries",
    type=click.IntRange(0, 20),
    default=4,
    show_default=True,
    help="Retries of a transient failure (connection lost, 5xx, 429), with backoff.",
)
def upload(
    paths: tuple[str, ...],
    server: str,
    token: str | None,
    jobs: int,
    as_json: bool,
    progress: bool | None,
    retries: int,
) -> None:
    """Upload image files, folders and globs through a running s3drop server.

    Each file is checked against what the server takes before a byte is sent, signed by the
    server, posted straight to storage as the upload page does, then verified. A file already in
    your gallery (the same bytes) is found when signing and not sent again. Exits 0 only when
    every file was accepted or already there; a summary on standard error names each other file
    and why.

    \b
    Example:
        s3drop upload --server https://drop.example.com --token "$TOKEN" photos/ 'scans/*.png'
        s3drop upload --json cat.png | jq -r '.results[].url'
    """
    import json

    from .._client import Client
    from .._terminal import expand_paths, result_line, summary, upload_files

    files, missing = expand_paths(paths)
    show_progress = progress if progress is not None else sys.stdout.isatty() and not as_json
    if not as_json and not show_progress:
        for result in missing:
            click.echo(result_line(result))
    with Client(server, token=token, retries=retries) as client:
        if files:
            client.config()  # an unreachable server or a refused token: one error, not one per file
        results = missing + upload_files(
            client, files, jobs=jobs, progress=show_progress, echo_results=not as_json
        )
    if as_json:
        counts = dict.fromkeys(("accepted", "duplicate", "rejected", "refused", "failed"), 0)
        for result in results:
            counts[result.status] += 1
        document = {"results": [result.to_dict() for result in results], "counts": counts}
        click.echo(json.dumps(document, indent=2))
    summary(results)
    if not results or any(result.status not in ("accepted", "duplicate") for result in results):
        sys.exit(1)


@click.command(name="ls")
@_server_options
@click.option(
    "--limit", type=click.IntRange(1, 100), default=50, show_default=True, help="Images per page."
)
@click.option("--cursor", help="Where the previous page ended (printed after each page).")
@click.option("--json", "as_json", is_flag=True, help="Print the page as JSON.")
@click.option(
    "--direct",
    is_flag=True,
    help="Read the configured storage (S3DROP_* settings) instead of a server.",
)
def list_command(
    server: str,
    token: str | None,
    limit: int,
    cursor: str | None,
    as_json: bool,
    direct: bool,
) -> None:
    """List stored images, newest first, one page at a time.

    \b
    Example:
        s3drop ls --limit 20
        s3drop ls --cursor 1737000000000abcdefghij --json
        S3DROP_BUCKET=photos s3drop ls --direct
    """
    import json

    from .._terminal import image_table

    if direct:
        images, next_cursor = _direct_page(cursor=cursor, limit=limit)
    else:
        from .._client import Client

        with Client(server, token=token) as client:
            page = client.list_images(cursor=cursor, limit=limit)
        images, next_cursor = page.images, page.next_cursor
    if as_json:
        click.echo(json.dumps({"images": images, "next_cursor": next_cursor}, indent=2))
        return
    if images:
        click.echo(image_table(images))
    else:
        click.echo("no images", err=True)
    if next_cursor:
        again = ["s3drop", "ls", *(["--direct"] if direct else [])]
        again += [*(["--limit", str(limit)] if limit != 50 else []), "--cursor", next_cursor]
        click.echo(f"more: {' '.join(again)}", err=True)


@click.command(name="rm")
@click.argument("ids", nargs=-1, required=True)
@_server_options
@click.option(
    "--direct",
    is_flag=True,
    help="Delete from the configured storage (S3DROP_* settings) instead of a server.",
)
@click.option(
    "--json", "as_json", is_flag=True, help='Print {"deleted": [...], "errors": [...]} as JSON.'
)
def remove_command(
    ids: tuple[str, ...], server: str, token: str | None, direct: bool, as_json: bool
) -> None:
    """Delete images (and their thumbnails) by id.

    \b
    Example:
        s3drop rm 1737000000000abcdefghij 1736999999999zyxwvutsrqp
        s3drop ls --json | jq -r '.images[].id' | xargs s3drop rm
    """
    import contextlib
    import json

    deleted: list[str] = []
    errors: list[dict[str, str]] = []
    with contextlib.ExitStack() as stack:
        delete: Callable[[str], None]
        if direct:
            from .._uploads import S3Drop
            from ..limits import app_limit_store

            settings = _existing_store()  # the server's limits: a deleted image counts off there
            drop = S3Drop(settings, limit_store=app_limit_store(settings))
            # Webhooks of these deletes: a few seconds to go now; the server sends what is left.
            stack.callback(drop.close, wait=10.0)
            delete = drop.delete_image
        else:
            from .._client import Client

            delete = stack.enter_context(Client(server, token=token)).delete_image
        for image_id in ids:
            try:
                delete(image_id)
            except S3DropError as exc:
                errors.append({"id": image_id, "code": exc.code, "message": exc.message})
                if not as_json:
                    click.echo(f"s3drop: error: {exc.code}: {exc.message}", err=True)
            else:
                deleted.append(image_id)
                if not as_json:
                    click.echo(f"deleted {image_id}")
    if as_json:
        click.echo(json.dumps({"deleted": deleted, "errors": errors}, indent=2))
    if errors:
        sys.exit(1)


def _existing_store() -> Settings:
    """Settings for a command that reads or changes what is stored, never creating a store: on
    the local backend the data folder must already hold one (else a typo'd folder would quietly
    become a new, empty store and the command would say "no images")."""
    from .._config import Settings

    settings = Settings()
    folder = settings.data_dir.resolve()
    if settings.storage_backend == "local" and not (folder / "objects").is_dir():
        raise click.ClickException(
            f"no s3drop data in {folder} (the local backend's folder); run this where the "
            "server runs, or point at it with S3DROP_DATA_DIR=/path/to/s3drop-data"
        )
    return settings


def _direct_page(*, cursor: str | None, limit: int) -> tuple[list[dict[str, Any]], str | None]:
    from .._uploads import S3Drop

    page = S3Drop(_existing_store()).list_images(cursor=cursor, limit=limit)
    return [image.to_dict() for image in page.images], page.next_cursor
