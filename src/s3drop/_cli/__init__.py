"""The command line: ``serve`` (the default), ``upload``, ``ls``, ``rm``, ``sweep``, ``bucket``.

Every command is a thin edge over the library; errors become one line on stderr and a non-zero
exit (a traceback only with ``--debug``).

The modules: :mod:`~s3drop._cli.server` (``serve`` and its start-up checks),
:mod:`~s3drop._cli.images` (``upload``, ``ls``, ``rm``) and :mod:`~s3drop._cli.maintenance`
(``sweep``, ``variants``, ``webhook-secret``, ``bucket``); this one has the group and :func:`main`.
"""

from __future__ import annotations

import sys

import click

from .._errors import S3DropError
from .._version import __version__
from .images import list_command, remove_command, upload
from .maintenance import bucket, sweep, variants, webhook_secret
from .server import serve


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


for _command in (serve, upload, list_command, remove_command, sweep, variants, webhook_secret):
    cli.add_command(_command)
cli.add_command(bucket)


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
