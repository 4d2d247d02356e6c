"""``s3drop serve``: its start-up checks (the port, the open-file limit, the S3 bucket in the
background), its banner, and uvicorn with s3drop's connection guard."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from .._errors import S3DropError
from .._logs import LogFormat, log_config
from .._version import __version__

if TYPE_CHECKING:  # settings (pydantic) load only for commands that need them: --help stays fast
    from .._config import Settings


@click.command()
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
    from .._config import Settings, is_loopback

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
        from ..limits.redis import where_redis

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
        from .._doctor import check_at_start
        from ..storage.s3 import S3Storage

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
