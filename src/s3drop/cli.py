"""The command line: ``serve`` (the default), and more as they land.

Every command is a thin edge over the library; errors become one line on stderr and a non-zero
exit (a traceback only with ``--debug``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

from . import __version__
from .config import Settings, is_loopback
from .errors import S3DropError


class _DefaultGroup(click.Group):
    """A group that runs ``serve`` when no command is given."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or (
            args[0].startswith("-") and args[0] not in {"--help", "--version", "--debug"}
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
def serve(
    host: str | None,
    port: int | None,
    data_dir: Path | None,
    workers: int | None,
    public: bool | None,
) -> None:
    """Serve the upload page, the JSON API and, on the local backend, storage itself.

    \b
    Example:
        s3drop serve --port 8080 --data-dir /var/lib/s3drop --workers 4
    """
    import uvicorn

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
    settings = Settings(**overrides)
    # Worker processes build their own Settings from the environment: hand the options on.
    for name, value in overrides.items():
        os.environ[f"S3DROP_{name.upper()}"] = str(value)
    if settings.storage_backend == "local":
        settings.local_secret()  # created once here, before workers race for it
    if settings.auth_mode == "none" and not is_loopback(settings.host):
        click.echo(
            f"warning: serving on {settings.host} with no authentication (--public): anyone "
            "who can reach it can upload",
            err=True,
        )
    click.echo(
        f"s3drop {__version__}: {settings.storage_backend} storage, "
        f"http://{settings.host}:{settings.port}/",
        err=True,
    )
    uvicorn.run(
        "s3drop.web.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_level="info",
        log_config=_log_config(),
        timeout_graceful_shutdown=10,
        server_header=False,
    )


def _log_config() -> dict[str, Any]:
    """uvicorn's logging, plus s3drop's own loggers (the audit trail among them) at INFO."""
    import copy

    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["s3drop"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    return config


def main() -> None:
    """Entry point: one-line errors, no tracebacks unless --debug."""
    debug = "--debug" in sys.argv[1:]
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except S3DropError as exc:
        if debug:
            raise
        click.echo(f"s3drop: error: {exc.message}", err=True)
        sys.exit(2 if exc.status < 500 else 1)
