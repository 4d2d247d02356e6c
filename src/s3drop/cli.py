"""The command line: ``serve`` (the default), ``upload``, ``ls``, ``rm``, ``sweep``, ``bucket``.

Every command is a thin edge over the library; errors become one line on stderr and a non-zero
exit (a traceback only with ``--debug``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ._version import __version__
from .errors import S3DropError
from .logs import LogFormat, log_config

if TYPE_CHECKING:  # settings (pydantic) load only for commands that need them: --help stays fast
    from .config import Settings


class _DefaultGroup(click.Group):
    """A group that runs ``serve`` when no command is given."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or (
            args[0].startswith("-") and args[0] not in {"-h", "--help", "--version", "--debug"}
        ):
            args = ["serve", *args]
        return super().parse_args(ctx, args)


@click.group(cls=_DefaultGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="s3drop")
@click.option("--debug", is_flag=True, help="Show tracebacks.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Take images from your users straight into S3-compatible storage.

    \b
    Example:
        s3drop                      # serve the upload page on http://127.0.0.1:8000
        s3drop upload photos/       # from another terminal: upload a folder through it
    """
    ctx.obj = {"debug": debug}


@cli.command()
@click.option("--host", help="Address to bind (default 127.0.0.1).")
@click.option("--port", type=int, help="Port to bind (default 8000).")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder of the local backend (default ./s3drop-data).",
)
@click.option("--workers", type=int, help="Worker processes (default 1).")
@click.option(
    "--public",
    is_flag=True,
    default=None,
    help="Allow binding a non-loopback address with no authentication (logs a warning).",
)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    envvar="S3DROP_LOG_FORMAT",
    help="Logs as text, or as one JSON object per line (env S3DROP_LOG_FORMAT).",
)
def serve(
    host: str | None,
    port: int | None,
    data_dir: Path | None,
    workers: int | None,
    public: bool | None,
    log_format: LogFormat,
) -> None:
    """Serve the upload page, the JSON API and, on the local backend, storage itself.

    \b
    Example:
        s3drop serve --port 8080 --data-dir /var/lib/s3drop --workers 4
    """
    overrides: dict[str, Any] = {
        name: value
        for name, value in {
            "host": host,
            "port": port,
            "data_dir": data_dir,
            "workers": workers,
            "public": public,
        }.items()
        if value is not None
    }
    from .config import Settings, is_loopback

    settings = Settings(**overrides)
    # Worker processes build their own Settings from the environment: hand the options on.
    for name, value in overrides.items():
        os.environ[f"S3DROP_{name.upper()}"] = str(value)
    _check_port(settings.host, settings.port)
    if settings.storage_backend == "local":
        settings.local_secret()  # created once here, before workers race for it
    if settings.auth_mode == "none" and not is_loopback(settings.host):
        click.echo(
            f"warning: serving on {settings.host} with no authentication (--public): anyone "
            "who can reach it can upload",
            err=True,
        )
    click.echo(
        f"s3drop {__version__}: {_where(settings)}, {settings.public_url or _own_url(settings)}/",
        err=True,
    )
    if settings.storage_backend == "s3":
        _check_storage(settings)
    _raise_file_limit(settings.max_connections)
    metrics_dir = _metrics_dir()
    try:
        _run_uvicorn(settings, log_format)
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)


def _raise_file_limit(connections: int) -> None:
    """Lift this process's soft limit on open files to the hard one, so that
    ``S3DROP_MAX_CONNECTIONS`` connections, plus the files a worker has open, fit; warn if not."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
    if soft != resource.RLIM_INFINITY and connections + 64 > soft:
        click.echo(
            f"warning: S3DROP_MAX_CONNECTIONS={connections} is close to the open-file limit "
            f"({soft}); lower it or raise the limit (ulimit -n)",
            err=True,
        )


def _own_url(settings: Settings) -> str:
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    return f"http://{host}:{settings.port}"


def _where(settings: Settings) -> str:
    """Where images go, as the banner says it: the folder, or the bucket and its endpoint (and
    the Redis the limits count in, when one is set)."""
    if settings.storage_backend == "local":
        where = f"local storage in {settings.data_dir.resolve()}"
    else:
        endpoint = settings.endpoint_url or f"AWS S3 ({settings.region or 'default region'})"
        where = f"s3 bucket {settings.bucket} at {endpoint}"
    if settings.redis_url:
        from .limits.redis import where_redis

        where += f", limits in Redis at {where_redis(settings.redis_url)}"
    return where


def _check_port(host: str, port: int) -> None:
    """Refuse to start, before saying anything that looks like success, when the port is taken."""
    import errno
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise click.ClickException(
                    f"port {port} on {host} is already in use (another s3drop?); "
                    f"choose another with --port or S3DROP_PORT"
                ) from None
            raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror}") from None


def _check_storage(settings: Settings) -> None:
    """Say at start what would make every upload fail: credentials, the bucket, and the CORS the
    app's own page needs. In the background: a store that is down or slow delays nothing (the app
    starts, and /readyz says when storage is back); what it finds is logged as a warning."""
    import threading

    def check() -> None:
        from .doctor import check_at_start
        from .storage.s3 import S3Storage

        try:
            checks = check_at_start(S3Storage(settings), origins=settings.origins())
        except S3DropError as exc:
            click.echo(f"warning: storage: {exc.message}", err=True)
            return
        for item in checks:
            if not item.ok and not item.skipped:
                fix = f"; fix: {item.fix}" if item.fix else ""
                click.echo(f"warning: storage: {item.name}: {item.detail}{fix}", err=True)

    threading.Thread(target=check, name="s3drop-storage-check", daemon=True).start()


def _metrics_dir() -> str | None:
    """A fresh folder for the workers' metrics (prometheus_client's multiprocess mode), made
    before any worker imports prometheus_client; None when the operator chose one already."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return None
    folder = tempfile.mkdtemp(prefix="s3drop-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder
    return folder


def _run_uvicorn(settings: Settings, log_format: LogFormat) -> None:
    import uvicorn

    # uvicorn drains in-flight requests on SIGTERM, then raises the signal again; end with status
    # 0 then (as it does with several workers), through ``finally`` blocks that clean up.
    signal.signal(signal.SIGTERM, _stopped)
    uvicorn.run(
        "s3drop.web.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_level="info",
        log_config=log_config(log_format),
        timeout_graceful_shutdown=10,
        server_header=False,
        # Connections: uvicorn's keep-alive timeout, plus a request-head deadline and a
        # connection cap it lacks (see s3drop.web.connections).
        http="s3drop.web.connections:GuardedHttpToolsProtocol",
        timeout_keep_alive=settings.keep_alive_timeout,
        # X-Forwarded-For/-Proto only from the proxies the operator names (uvicorn would
        # believe 127.0.0.1 by default: any local process could pick its client address).
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=list(settings.trusted_proxies),
    )


def _stopped(signum: int, frame: object) -> None:
    raise SystemExit(0)


# --- talking to a running server ------------------------------------------------------------


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


@cli.command()
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

    from .client import Client
    from .terminal import expand_paths, result_line, summary, upload_files

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


@cli.command(name="ls")
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

    from .terminal import image_table

    if direct:
        images, next_cursor = _direct_page(cursor=cursor, limit=limit)
    else:
        from .client import Client

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


@cli.command(name="rm")
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
            from .limits import app_limit_store
            from .uploads import S3Drop

            settings = _existing_store()  # the server's limits: a deleted image counts off there
            drop = S3Drop(settings, limit_store=app_limit_store(settings))
            # Webhooks of these deletes: a few seconds to go now; the server sends what is left.
            stack.callback(drop.close, wait=10.0)
            delete = drop.delete_image
        else:
            from .client import Client

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
    from .config import Settings

    settings = Settings()
    folder = settings.data_dir.resolve()
    if settings.storage_backend == "local" and not (folder / "objects").is_dir():
        raise click.ClickException(
            f"no s3drop data in {folder} (the local backend's folder); run this where the "
            "server runs, or point at it with S3DROP_DATA_DIR=/path/to/s3drop-data"
        )
    return settings


def _direct_page(*, cursor: str | None, limit: int) -> tuple[list[dict[str, Any]], str | None]:
    from .uploads import S3Drop

    page = S3Drop(_existing_store()).list_images(cursor=cursor, limit=limit)
    return [image.to_dict() for image in page.images], page.next_cursor


_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _duration(value: str) -> int:
    """``90s``, ``30m``, ``24h``, ``7d`` or plain seconds -> seconds."""
    text = value.strip().lower()
    unit = _DURATION_UNITS.get(text[-1:], 0)
    number = text[:-1] if unit else text
    if not number.isdigit():
        raise click.BadParameter(f"not a duration: {value!r} (try 24h, 30m or 7d)")
    return int(number) * (unit or 1)


@cli.command()
@click.option(
    "--older-than", default="24h", show_default=True, help="Age past which an upload is stale."
)
@click.option("--json", "as_json", is_flag=True, help='Print {"removed": N}.')
def sweep(older_than: str, as_json: bool) -> None:
    """Remove uploads that were never completed from quarantine, on any backend.

    The local backend's server also does this hourly; on S3 the lifecycle rule of
    `s3drop bucket init` does it too.

    \b
    Example:
        s3drop sweep --older-than 24h
    """
    import json
    from datetime import timedelta

    from .uploads import S3Drop

    removed = S3Drop(_existing_store()).sweep(older_than=timedelta(seconds=_duration(older_than)))
    click.echo(json.dumps({"removed": removed}) if as_json else f"removed {removed} stale uploads")


@cli.command(name="webhook-secret")
def webhook_secret() -> None:
    """Print a new signing secret for S3DROP_WEBHOOK_SECRET (whsec_ and 32 random bytes).

    \b
    Example:
        echo "S3DROP_WEBHOOK_SECRET=$(s3drop webhook-secret)" >> .env
    """
    from .webhooks import generate_secret

    click.echo(generate_secret())


@cli.group()
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
    from .bucket import init_bucket, open_bucket

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
    from .bucket import open_bucket
    from .doctor import diagnose_bucket

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
    from .config import Settings

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


def main() -> None:
    """Entry point: one-line errors, no tracebacks unless --debug."""
    debug = "--debug" in sys.argv[1:]
    try:
        code = cli.main(standalone_mode=False)
    except (click.exceptions.Abort, KeyboardInterrupt):
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except S3DropError as exc:
        if debug:
            raise
        click.echo(f"s3drop: error: {exc.message}", err=True)
        sys.exit(2 if exc.status < 500 else 1)
    except Exception as exc:  # anything unforeseen: still one line, unless --debug
        if debug:
            raise
        click.echo(f"s3drop: error: {type(exc).__name__}: {exc}", err=True)
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)
