"""The command line against live servers: ``upload`` (a folder of mixed files, on the local backend
and on RGW), ``ls``, ``rm``, ``--help``, ``--version`` and one-line errors.

What a command prints and answers runs in this process (:func:`tests.cli_inprocess.run_cli`, the
same ``main()``; ``ls``/``rm`` and the token against the app in this process too, see
:func:`cli_reaches`); the entry point, the ``--debug`` traceback, a terminal's progress bars,
``serve`` and the two end-to-end uploads (mixed folder, dropped connection) run
``python -m s3drop``."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click
import httpx
import pytest
from click.testing import CliRunner
from PIL import Image

from s3drop import __version__
from s3drop import _client as s3drop_client
from s3drop._cli import cli
from s3drop._client import Client

from . import samples
from .cli_inprocess import run_cli
from .conftest import RGW, LiveServer, free_port
from .flaky_proxy import flaky_proxy
from .inprocess import AppServer
from .shared_server import shared_server
from .test_client import noise_png

MAX_BYTES = 100_000
SMALL = {"S3DROP_MAX_BYTES": str(MAX_BYTES), "S3DROP_RATE_PER_MINUTE": "1000"}


@pytest.fixture(scope="module")
def small_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One server with ``SMALL`` for the tests that only read what they uploaded themselves
    (distinct bytes each; metrics counted as differences)."""
    with shared_server(tmp_path_factory, "cli", env=SMALL) as server:
        yield server


def s3drop(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the real command line, as a shell would."""
    return subprocess.run(
        [sys.executable, "-m", "s3drop", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        timeout=120,
    )


def noise_jpeg(path: Path, side: int) -> bytes:
    buffer = io.BytesIO()
    Image.frombytes("RGB", (side, side), os.urandom(side * side * 3)).save(buffer, "JPEG")
    path.write_bytes(buffer.getvalue())
    return buffer.getvalue()


def mixed_folder(root: Path) -> dict[str, bytes]:
    """Two good images (one in a subfolder), a JPEG, a text file, a PNG over the size limit, an
    empty file, and a hidden file (skipped when walking a folder)."""
    folder = root / "photos"
    (folder / "trip").mkdir(parents=True)
    files = {
        "photos/cat.png": noise_png(folder / "cat.png", 40),
        "photos/trip/beach.jpg": noise_jpeg(folder / "trip" / "beach.jpg", 64),
        "photos/notes.txt": b"not an image\n",
        "photos/huge.png": noise_png(folder / "huge.png", 200),  # ~120 kB > 100 kB
        "photos/empty.png": b"",
    }
    for name, data in files.items():
        (root / name).write_bytes(data)
    noise_png(folder / ".thumbs.png", 8)
    return files


def check_mixed_upload(
    server: LiveServer, tmp_path: Path, read: Callable[[dict[str, Any]], bytes]
) -> None:
    files = mixed_folder(tmp_path)
    before = _metrics(server)
    run = s3drop(
        "upload", "photos", "--server", server.url, "--no-progress", "--json", cwd=tmp_path
    )
    assert run.returncode == 1, run.stderr
    document = json.loads(run.stdout)
    results = {result["path"]: result for result in document["results"]}
    assert sorted(results) == sorted(files)  # the hidden file was skipped
    assert document["counts"] == {
        "accepted": 2,
        "duplicate": 0,
        "rejected": 0,
        "refused": 3,
        "failed": 0,
    }
    expected = {
        "photos/notes.txt": ("refused", "type_not_allowed"),
        "photos/huge.png": ("refused", "file_too_large"),
        "photos/empty.png": ("refused", "file_empty"),
    }
    for path, (status, code) in expected.items():
        assert (results[path]["status"], results[path]["error"]["code"]) == (status, code)
        assert results[path]["id"] is None
    for path in ("photos/cat.png", "photos/trip/beach.jpg"):
        result = results[path]
        assert result["status"] == "accepted"
        assert result["error"] is None
        assert result["id"]
        assert result["image"]["filename"] == Path(path).name
        assert read(result) == files[path], "the stored bytes are the original's"
    # Refused files were never sent: two signs, two posts to storage.
    metrics = _metrics(server)
    for name in ("s3drop_uploads_signed_total", "s3drop_uploads_accepted_total"):
        assert _sample(metrics, name) - _sample(before, name) == 2, name
    # The summary, on standard error, names each file not accepted and why.
    summary = run.stderr.strip().splitlines()
    assert summary[0] == "2 of 5 files accepted; not accepted:"
    assert sorted(line.split(":")[0].strip() for line in summary[1:]) == sorted(expected)
    assert "photos/huge.png: refused, file_too_large: huge.png is" in run.stderr


def _metrics(server: LiveServer) -> str:
    with server.client() as http:
        return http.get("/metrics").text


def _sample(metrics: str, name: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith(name + " ") or line.startswith(name + "{")
    )


def test_upload_a_folder_of_mixed_files(small_server: LiveServer, tmp_path: Path) -> None:
    server = small_server

    def read(result: dict[str, Any]) -> bytes:
        return httpx.get(result["url"]).content

    check_mixed_upload(server, tmp_path, read)


@pytest.mark.s3
def test_upload_a_folder_of_mixed_files_to_rgw(
    make_server: Callable[..., LiveServer], rgw: RGW, bucket: str, tmp_path: Path
) -> None:
    server = make_server(env={**rgw.env(bucket), **SMALL})
    s3 = rgw.client()

    def read(result: dict[str, Any]) -> bytes:
        assert result["url"].startswith(rgw.endpoint)  # straight from storage
        [stored] = s3.list_objects_v2(Bucket=bucket, Prefix=f"images/{result['id']}.")["Contents"]
        body: bytes = s3.get_object(Bucket=bucket, Key=stored["Key"])["Body"].read()
        assert httpx.get(result["url"]).content == body
        return body

    check_mixed_upload(server, tmp_path, read)
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket, Prefix="incoming/")


def test_plain_output_is_one_line_per_file_and_a_summary(
    small_server: LiveServer, tmp_path: Path
) -> None:
    server = small_server
    noise_png(tmp_path / "a.png", 10)
    (tmp_path / "b.txt").write_text("hello")
    run = run_cli("upload", "a.png", "b.txt", "missing.png", "--server", server.url, cwd=tmp_path)
    assert run.returncode == 1
    lines = sorted(run.stdout.splitlines())
    assert len(lines) == 3
    assert lines[0].startswith("accepted  a.png  ")
    assert "10x10  png" in lines[0]
    assert lines[1] == (
        "refused   b.txt  type_not_allowed: b.txt is not an image the server takes (PNG or JPEG)"
    )
    assert lines[2] == "refused   missing.png  not_found: no such file or folder: missing.png"
    assert run.stderr.splitlines()[0] == "1 of 3 files accepted; not accepted:"
    noise_png(tmp_path / "c.png", 12)  # a.png again would be a duplicate (its own test)
    everything_accepted = run_cli("upload", "c.png", "--server", server.url, cwd=tmp_path)
    assert everything_accepted.returncode == 0
    assert everything_accepted.stderr == "1 of 1 file accepted\n"


def test_an_avif_whose_brand_is_a_compatible_one_is_uploaded(
    make_server: Callable[..., LiveServer], tmp_path: Path
) -> None:
    """The CLI sniffs as the server does (one registry): an AVIF with ``avif`` among its compatible
    brands only was refused by ``s3drop upload`` as "not an image the server takes", though the
    server accepts it."""
    server = make_server(env={**SMALL, "S3DROP_ALLOWED_TYPES": "image/avif"})
    (tmp_path / "generic.avif").write_bytes(samples.avif_of_compatible_brand())
    run = run_cli("upload", "generic.avif", "--server", server.url, "--json", cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    [result] = json.loads(run.stdout)["results"]
    assert result["status"] == "accepted"
    assert (result["image"]["format"], result["image"]["width"]) == ("avif", 64)
    stored = list((server.data_dir / "objects" / "images").glob(f"{result['id']}.*"))
    assert [path.suffix for path in stored] == [".avif"]


def test_a_phone_heic_is_uploaded_as_the_heif_the_server_takes_and_stored_as_jpeg(
    make_server: Callable[..., LiveServer], tmp_path: Path
) -> None:
    """A HEVC-branded file, the server taking image/heif only: declared as HEIF (one family),
    decoded in the server's sandbox, stored as a JPEG."""
    server = make_server(env={**SMALL, "S3DROP_ALLOWED_TYPES": "image/heif"})
    (tmp_path / "IMG_0007.HEIC").write_bytes(samples.oriented_heic(6, size=(64, 48)))
    run = run_cli("upload", "IMG_0007.HEIC", "--server", server.url, "--json", cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    [result] = json.loads(run.stdout)["results"]
    assert (result["image"]["format"], result["image"]["width"]) == ("jpeg", 64)
    stored = sorted((server.data_dir / "objects").rglob(f"{result['id']}*"))
    assert [path.suffix for path in stored if path.parent.name == "images"] == [".jpg"]
    assert not [path for path in stored if path.suffix in (".heic", ".heif")]


def test_globs_are_expanded_when_the_shell_did_not(
    small_server: LiveServer, tmp_path: Path
) -> None:
    server = small_server
    for name in ("a.png", "b.png", "c.jpg"):
        noise_png(tmp_path / name, 10)  # c.jpg holds a PNG: judged by its bytes, accepted
    run = run_cli("upload", "*.png", "--server", server.url, "--json", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert [r["path"] for r in json.loads(run.stdout)["results"]] == ["a.png", "b.png"]


def test_upload_survives_a_connection_dropped_mid_upload(
    small_server: LiveServer, tmp_path: Path
) -> None:
    server = small_server
    original = noise_png(tmp_path / "a.png", 150)  # ~68 kB, cut after 64 kB
    faults = {("POST", "/storage"): ["reset", "reset"]}
    with flaky_proxy(server.url, faults) as proxy:
        run = s3drop("upload", "a.png", "--server", proxy.url, "--json", cwd=tmp_path)
        assert proxy.count("POST", "/storage") == 3
    assert run.returncode == 0, run.stderr
    [result] = json.loads(run.stdout)["results"]
    assert result["url"].startswith(proxy.url)  # absolute, on the server the client was given
    assert httpx.get(server.url + httpx.URL(result["url"]).raw_path.decode()).content == original


def cli_reaches(server: AppServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """The command line's clients (``--server server.url``) reach ``server``, the app in this
    process, over its ASGI transport: what a command asks and prints, without a server process."""
    real = Client

    def client(*args: Any, **kwargs: Any) -> Client:
        return real(*args, transport=server.transport(), **kwargs)

    monkeypatch.setattr(s3drop_client, "Client", client)


def test_ls_and_rm_through_the_server_and_directly(
    make_app: Callable[..., AppServer], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = make_app(env=SMALL)
    cli_reaches(server, monkeypatch)
    with Client(server.url, transport=server.transport()) as client:
        uploaded = []
        for index in range(3):
            noise_png(tmp_path / f"img-{index}.png", 10 + index)
            uploaded.append(client.upload(tmp_path / f"img-{index}.png")["id"])
    newest_first = uploaded[::-1]
    at = ["--server", server.url]
    direct = {"S3DROP_DATA_DIR": str(server.data_dir)}

    first = run_cli("ls", *at, "--limit", "2", "--json")
    page = json.loads(first.stdout)
    assert [image["id"] for image in page["images"]] == newest_first[:2]
    second = json.loads(
        run_cli("ls", *at, "--limit", "2", "--cursor", page["next_cursor"], "--json").stdout
    )
    assert [image["id"] for image in second["images"]] == newest_first[2:]
    assert second["next_cursor"] is None
    same = json.loads(run_cli("ls", "--direct", "--json", env=direct, cwd=tmp_path).stdout)
    assert [image["id"] for image in same["images"]] == newest_first

    table = run_cli("ls", *at, "--limit", "2")
    assert table.returncode == 0
    header, *rows = table.stdout.splitlines()
    assert header.split()[:5] == ["ID", "UPLOADED", "SIZE", "FORMAT", "BYTES"]
    assert [row.split()[0] for row in rows] == newest_first[:2]
    assert rows[0].split()[3:5] == ["12x12", "png"]
    # The hint repeats what shapes the page, so pasting it gives the next page of the same list.
    assert table.stderr.strip() == f"more: s3drop ls --limit 2 --cursor {page['next_cursor']}"
    direct_page = run_cli("ls", "--direct", "--limit", "2", env=direct, cwd=tmp_path)
    assert direct_page.stderr.strip().startswith("more: s3drop ls --direct --limit 2 --cursor ")

    removed = run_cli("rm", *at, newest_first[0])
    assert (removed.returncode, removed.stdout) == (0, f"deleted {newest_first[0]}\n")
    again = run_cli("rm", *at, newest_first[0], newest_first[1])
    assert again.returncode == 1
    assert again.stdout == f"deleted {newest_first[1]}\n"
    assert again.stderr == f"s3drop: error: not_found: no image {newest_first[0]!r}\n"
    as_json = run_cli("rm", *at, newest_first[0], "--json")
    assert as_json.returncode == 1
    assert json.loads(as_json.stdout) == {
        "deleted": [],
        "errors": [
            {"id": newest_first[0], "code": "not_found", "message": f"no image {newest_first[0]!r}"}
        ],
    }
    gone = run_cli("rm", "--direct", newest_first[2], env=direct, cwd=tmp_path)
    assert gone.returncode == 0, gone.stderr
    empty = run_cli("ls", *at)
    assert (empty.stdout, empty.stderr) == ("", "no images\n")


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = []
    for name, command in group.commands.items():
        found.append((*prefix, name))
        if isinstance(command, click.Group):
            found.extend(_commands(command, (*prefix, name)))
    return found


def test_every_command_has_help_with_an_example() -> None:
    commands = _commands(cli)
    assert {("serve",), ("upload",), ("ls",), ("rm",)} <= set(commands)
    runner = CliRunner()
    for command in [(), *commands]:
        result = runner.invoke(cli, [*command, "--help"])
        assert result.exit_code == 0, command
        assert "Example" in result.output, f"s3drop {' '.join(command)} --help has no example"


def test_version() -> None:
    run = s3drop("--version")
    assert (run.returncode, run.stdout) == (0, f"s3drop, version {__version__}\n")


def test_errors_are_one_line_without_a_traceback_unless_debug(tmp_path: Path) -> None:
    noise_png(tmp_path / "a.png", 10)
    nowhere = f"http://127.0.0.1:{free_port()}"
    # What main() prints runs in this process (an exception escaping it would fail the test here
    # too); the one traceback, which the interpreter prints, is a real process's.
    run = run_cli("upload", "a.png", "--server", nowhere, "--retries", "0", cwd=tmp_path)
    assert run.returncode != 0
    assert run.stdout == ""
    assert run.stderr.startswith(f"s3drop: error: cannot reach {nowhere}/api/config: ")
    assert "is the server running? --server or S3DROP_SERVER names it" in run.stderr
    assert len(run.stderr.splitlines()) == 1
    debug = s3drop(
        "--debug", "upload", "a.png", "--server", nowhere, "--retries", "0", cwd=tmp_path
    )
    assert debug.returncode != 0
    assert "Traceback" in debug.stderr

    listing = run_cli("ls", "--server", nowhere)
    assert listing.returncode != 0
    assert len(listing.stderr.splitlines()) == 1

    bad = run_cli("serve", env={"S3DROP_MAX_BYTES": "0"}, cwd=tmp_path)
    assert bad.returncode != 0
    assert bad.stderr.startswith("s3drop: error: S3DROP_MAX_BYTES: ")
    assert len(bad.stderr.splitlines()) == 1

    usage = run_cli("upload")
    assert usage.returncode == 2
    assert "Missing argument" in usage.stderr
    assert "Traceback" not in usage.stderr


def test_the_token_is_sent_as_a_bearer_token(
    make_app: Callable[..., AppServer], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = "alice-token-0123456789"
    server = make_app(env={**SMALL, "S3DROP_TOKENS": f"alice:{token}"})
    cli_reaches(server, monkeypatch)
    noise_png(tmp_path / "a.png", 10)
    noise_png(tmp_path / "b.png", 11)
    # No token: one error up front, not one refusal per file.
    refused = run_cli("upload", "a.png", "b.png", "--server", server.url, "--json", cwd=tmp_path)
    assert refused.returncode == 2
    assert refused.stdout == ""
    assert refused.stderr == (
        f"s3drop: error: the server at {server.url}/ needs a token: pass --token or set "
        "S3DROP_TOKEN\n"
    )
    wrong = run_cli("upload", "a.png", "--server", server.url, "--token", "x" * 20, cwd=tmp_path)
    assert (wrong.returncode, len(wrong.stderr.splitlines())) == (2, 1)
    assert wrong.stderr.startswith("s3drop: error: ")
    by_option = run_cli(
        "upload", "a.png", "--server", server.url, "--token", token, "--json", cwd=tmp_path
    )
    assert by_option.returncode == 0, by_option.stderr
    [uploaded] = json.loads(by_option.stdout)["results"]
    by_env = run_cli("ls", "--json", env={"S3DROP_SERVER": server.url, "S3DROP_TOKEN": token})
    assert by_env.returncode == 0, by_env.stderr
    [image] = json.loads(by_env.stdout)["images"]
    assert image["id"] == uploaded["id"]


def test_progress_bars_on_a_terminal(small_server: LiveServer, tmp_path: Path) -> None:
    """On a terminal (a pseudo-terminal here): bars, then every file's line and the summary."""
    import pty
    import select

    server = small_server
    pictures = tmp_path / "pictures"
    pictures.mkdir()
    for index in range(4):
        noise_png(pictures / f"img-{index}.png", 60)
    (pictures / "notes.txt").write_text("hi")
    main, secondary = pty.openpty()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "s3drop",
            "upload",
            "pictures",
            "--server",
            server.url,
            "--jobs",
            "2",
        ],
        stdin=secondary,
        stdout=secondary,
        stderr=secondary,
        cwd=tmp_path,
        env={**os.environ, "COLUMNS": "120", "TERM": "xterm"},
    )
    os.close(secondary)
    output = b""
    while True:
        ready, _, _ = select.select([main], [], [], 30)
        if not ready:
            break
        try:
            chunk = os.read(main, 65536)
        except OSError:  # the terminal closed: the process has exited
            break
        if not chunk:
            break
        output += chunk
    os.close(main)
    assert process.wait(30) == 1
    text = output.decode()
    assert "\x1b[" in text, "drawn with terminal escapes"
    assert "━" in text, "with progress bars"
    assert "5 files" in text
    for index in range(4):
        assert f"img-{index}.png  " in text
    assert "notes.txt  type_not_allowed" in text
    assert "4 of 5 files accepted; not accepted:" in text


# --- the first hour: what tripped a new user ----------------------------------------------------


def test_a_server_without_a_scheme_works_and_none_there_fails_at_once(
    live_server: LiveServer, tmp_path: Path
) -> None:
    bare = live_server.url.removeprefix("http://")
    listing = run_cli("ls", "--server", bare)
    assert (listing.returncode, listing.stderr) == (0, "no images\n")
    noise_png(tmp_path / "a.png", 10)
    nowhere = f"127.0.0.1:{free_port()}"
    run = run_cli("upload", "a.png", "--server", nowhere, cwd=tmp_path)  # default: 4 retries
    assert run.returncode != 0
    # Connection refused before the server ever answered: said once, not retried for seconds.
    assert run.stderr.startswith(f"s3drop: error: cannot reach http://{nowhere}/api/config: ")
    assert "attempts" not in run.stderr
    bad = run_cli("ls", "--server", "ftp://example.com")
    assert bad.returncode != 0
    assert bad.stderr == "s3drop: error: --server: not an http(s) URL: 'ftp://example.com'\n"


def test_reading_commands_never_create_a_store(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for command in (["ls", "--direct"], ["rm", "--direct", "8204117022960ysdmyc35mf"], ["sweep"]):
        run = run_cli(*command, cwd=elsewhere)
        assert run.returncode == 1, command
        assert run.stdout == ""
        assert run.stderr == (
            f"Error: no s3drop data in {elsewhere / 's3drop-data'} (the local backend's folder); "
            "run this where the server runs, or point at it with "
            "S3DROP_DATA_DIR=/path/to/s3drop-data\n"
        )
        assert list(elsewhere.iterdir()) == [], "nothing was created"


def test_a_port_in_use_is_one_line_and_no_banner(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run = s3drop("serve", "--port", str(port), cwd=tmp_path)
    assert run.returncode == 1
    assert run.stderr == (
        f"Error: port {port} on 127.0.0.1 is already in use (another s3drop?); choose another "
        "with --port or S3DROP_PORT\n"
    )
    assert not (tmp_path / "s3drop-data").exists()


def test_the_banner_says_where_images_go(small_server: LiveServer) -> None:
    port = small_server.url.rsplit(":", 1)[1]
    banner = small_server.output().splitlines()[0]
    assert banner == (
        f"s3drop {__version__}: local storage in {small_server.data_dir}, http://127.0.0.1:{port}/"
    )


def test_one_way_of_writing_sizes(make_server: Callable[..., LiveServer], tmp_path: Path) -> None:
    server = make_server(env={"S3DROP_MAX_BYTES": "10MiB"})
    poster = tmp_path / "poster.png"
    poster.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(13_215_657 - 8))
    run = run_cli("upload", "poster.png", "--server", server.url, "--no-progress", cwd=tmp_path)
    assert run.stdout == (
        "refused   poster.png  file_too_large: poster.png is 12.6 MiB; the server takes at "
        "most 10 MiB\n"
    )
    with server.client() as http:
        sign = http.post(
            "/api/uploads",
            json={"filename": "poster.png", "content_type": "image/png", "size": 13_215_657},
        )
        assert sign.status_code == 413
        assert sign.json()["error"]["message"] == "the file is 12.6 MiB; the limit is 10 MiB"
        assert http.get("/api/images").json()["images"] == []


def test_upload_json_gives_absolute_urls(small_server: LiveServer, tmp_path: Path) -> None:
    live_server = small_server
    noise_png(tmp_path / "a.png", 10)
    run = run_cli("upload", "a.png", "--server", live_server.url, "--json", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    [result] = json.loads(run.stdout)["results"]
    for url in (result["url"], result["image"]["url"], result["image"]["thumbnail_url"]):
        assert url.startswith(f"{live_server.url}/"), url
        assert httpx.get(url).status_code == 200


def test_upload_of_a_file_already_in_the_gallery_says_so_and_sends_nothing(
    small_server: LiveServer, tmp_path: Path
) -> None:
    server = small_server
    noise_png(tmp_path / "cat.png", 40)
    before = _metrics(server)
    first = run_cli("upload", "cat.png", "--server", server.url, "--no-progress", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    image_id = first.stdout.split()[2]

    again = run_cli("upload", "cat.png", "--server", server.url, "--no-progress", cwd=tmp_path)

    assert again.returncode == 0, again.stderr  # the file is in the gallery: nothing failed
    assert again.stdout.splitlines() == [
        f"duplicate  cat.png  {image_id}  already in your gallery, nothing sent"
    ]
    assert again.stderr.strip() == "0 of 1 file accepted, 1 already in your gallery"
    metrics = _metrics(server)

    def counted(name: str) -> float:
        return _sample(metrics, name) - _sample(before, name)

    assert counted("s3drop_uploads_signed_total") == 1  # the first upload's only
    assert counted("s3drop_uploads_duplicate_total") == 1
    assert counted("s3drop_uploads_received_total") == 1
    as_json = run_cli("upload", "cat.png", "--json", "--server", server.url, cwd=tmp_path)
    document = json.loads(as_json.stdout)
    assert document["counts"]["duplicate"] == 1
    (result,) = document["results"]
    assert (result["status"], result["id"], result["error"]) == ("duplicate", image_id, None)
    assert result["url"].startswith(server.url)
