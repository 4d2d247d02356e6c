"""The command line against live servers: ``upload`` (a folder of mixed files, on the local backend
and on RGW), ``ls``, ``rm``, ``--help``, ``--version`` and one-line errors."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import httpx
import pytest
from click.testing import CliRunner
from PIL import Image

from s3drop import __version__
from s3drop.cli import cli
from s3drop.client import Client

from .conftest import RGW, LiveServer, free_port
from .flaky_proxy import flaky_proxy
from .test_client import noise_png

MAX_BYTES = 100_000
SMALL = {"S3DROP_MAX_BYTES": str(MAX_BYTES), "S3DROP_RATE_PER_MINUTE": "1000"}


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
    run = s3drop(
        "upload", "photos", "--server", server.url, "--no-progress", "--json", cwd=tmp_path
    )
    assert run.returncode == 1, run.stderr
    document = json.loads(run.stdout)
    results = {result["path"]: result for result in document["results"]}
    assert sorted(results) == sorted(files)  # the hidden file was skipped
    assert document["counts"] == {"accepted": 2, "rejected": 0, "refused": 3, "failed": 0}
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
    with server.client() as http:
        metrics = http.get("/metrics").text
    assert _sample(metrics, "s3drop_uploads_signed_total") == 2
    assert _sample(metrics, "s3drop_uploads_accepted_total") == 2
    # The summary, on standard error, names each file not accepted and why.
    summary = run.stderr.strip().splitlines()
    assert summary[0] == "2 of 5 files accepted; not accepted:"
    assert sorted(line.split(":")[0].strip() for line in summary[1:]) == sorted(expected)
    assert "photos/huge.png: refused, file_too_large: huge.png is" in run.stderr


def _sample(metrics: str, name: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith(name + " ") or line.startswith(name + "{")
    )


def test_upload_a_folder_of_mixed_files(
    make_server: Callable[..., LiveServer], tmp_path: Path
) -> None:
    server = make_server(env=SMALL)

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
    make_server: Callable[..., LiveServer], tmp_path: Path
) -> None:
    server = make_server(env=SMALL)
    noise_png(tmp_path / "a.png", 10)
    (tmp_path / "b.txt").write_text("hello")
    run = s3drop("upload", "a.png", "b.txt", "missing.png", "--server", server.url, cwd=tmp_path)
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
    everything_accepted = s3drop("upload", "a.png", "--server", server.url, cwd=tmp_path)
    assert everything_accepted.returncode == 0
    assert everything_accepted.stderr == "1 of 1 file accepted\n"


def test_globs_are_expanded_when_the_shell_did_not(
    make_server: Callable[..., LiveServer], tmp_path: Path
) -> None:
    server = make_server(env=SMALL)
    for name in ("a.png", "b.png", "c.jpg"):
        noise_png(tmp_path / name, 10)  # c.jpg holds a PNG: judged by its bytes, accepted
    run = s3drop("upload", "*.png", "--server", server.url, "--json", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert [r["path"] for r in json.loads(run.stdout)["results"]] == ["a.png", "b.png"]


def test_upload_survives_a_connection_dropped_mid_upload(
    make_server: Callable[..., LiveServer], tmp_path: Path
) -> None:
    server = make_server(env=SMALL)
    original = noise_png(tmp_path / "a.png", 150)  # ~68 kB, cut after 64 kB
    faults = {("POST", "/storage"): ["reset", "reset"]}
    with flaky_proxy(server.url, faults) as proxy:
        run = s3drop("upload", "a.png", "--server", proxy.url, "--json", cwd=tmp_path)
        assert proxy.count("POST", "/storage") == 3
        assert run.returncode == 0, run.stderr
        [result] = json.loads(run.stdout)["results"]
        # The URL is absolute, on the host the client called (the proxy).
        assert result["url"].startswith(f"{proxy.url}/storage/images/")
        assert httpx.get(result["url"]).content == original


def test_ls_and_rm_through_the_server_and_directly(
    make_server: Callable[..., LiveServer], tmp_path: Path
) -> None:
    server = make_server(env=SMALL)
    with Client(server.url) as client:
        uploaded = []
        for index in range(3):
            noise_png(tmp_path / f"img-{index}.png", 10 + index)
            uploaded.append(client.upload(tmp_path / f"img-{index}.png")["id"])
    newest_first = uploaded[::-1]
    at = ["--server", server.url]
    direct = {"S3DROP_DATA_DIR": str(server.data_dir)}

    first = s3drop("ls", *at, "--limit", "2", "--json")
    page = json.loads(first.stdout)
    assert [image["id"] for image in page["images"]] == newest_first[:2]
    second = json.loads(
        s3drop("ls", *at, "--limit", "2", "--cursor", page["next_cursor"], "--json").stdout
    )
    assert [image["id"] for image in second["images"]] == newest_first[2:]
    assert second["next_cursor"] is None
    same = json.loads(s3drop("ls", "--direct", "--json", env=direct, cwd=tmp_path).stdout)
    assert [image["id"] for image in same["images"]] == newest_first

    table = s3drop("ls", *at, "--limit", "2")
    assert table.returncode == 0
    header, *rows = table.stdout.splitlines()
    assert header.split()[:5] == ["ID", "UPLOADED", "SIZE", "FORMAT", "BYTES"]
    assert [row.split()[0] for row in rows] == newest_first[:2]
    assert rows[0].split()[3:5] == ["12x12", "png"]
    assert table.stderr.strip() == f"more: s3drop ls --cursor {page['next_cursor']}"

    removed = s3drop("rm", *at, newest_first[0])
    assert (removed.returncode, removed.stdout) == (0, f"deleted {newest_first[0]}\n")
    again = s3drop("rm", *at, newest_first[0], newest_first[1])
    assert again.returncode == 1
    assert again.stdout == f"deleted {newest_first[1]}\n"
    assert again.stderr.startswith(f"s3drop: error: {newest_first[0]}: not_found: ")
    assert len(again.stderr.splitlines()) == 1
    gone = s3drop("rm", "--direct", newest_first[2], env=direct, cwd=tmp_path)
    assert gone.returncode == 0, gone.stderr
    empty = s3drop("ls", *at)
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
    run = s3drop("upload", "a.png", "--server", nowhere, "--retries", "0", cwd=tmp_path)
    assert run.returncode != 0
    assert run.stdout == ""
    assert run.stderr.startswith(f"s3drop: error: GET {nowhere}/api/config: no answer after 1 ")
    assert len(run.stderr.splitlines()) == 1
    debug = s3drop(
        "--debug", "upload", "a.png", "--server", nowhere, "--retries", "0", cwd=tmp_path
    )
    assert debug.returncode != 0
    assert "Traceback" in debug.stderr

    listing = s3drop("ls", "--server", nowhere)
    assert listing.returncode != 0
    assert len(listing.stderr.splitlines()) == 1

    bad = s3drop("serve", env={"S3DROP_MAX_BYTES": "0"}, cwd=tmp_path)
    assert bad.returncode != 0
    assert bad.stderr.startswith("s3drop: error: S3DROP_MAX_BYTES: ")
    assert len(bad.stderr.splitlines()) == 1

    usage = s3drop("upload")
    assert usage.returncode == 2
    assert "Missing argument" in usage.stderr
    assert "Traceback" not in usage.stderr


def test_the_token_is_sent_as_a_bearer_token(
    make_server: Callable[..., LiveServer], tmp_path: Path
) -> None:
    token = "alice-token-0123456789"
    server = make_server(env={**SMALL, "S3DROP_TOKENS": f"alice:{token}"})
    noise_png(tmp_path / "a.png", 10)
    refused = s3drop("upload", "a.png", "--server", server.url, "--json", cwd=tmp_path)
    assert refused.returncode == 1
    [result] = json.loads(refused.stdout)["results"]
    assert (result["status"], result["error"]["code"]) == ("refused", "not_authenticated")
    by_option = s3drop(
        "upload", "a.png", "--server", server.url, "--token", token, "--json", cwd=tmp_path
    )
    assert by_option.returncode == 0, by_option.stderr
    [uploaded] = json.loads(by_option.stdout)["results"]
    by_env = s3drop("ls", "--json", env={"S3DROP_SERVER": server.url, "S3DROP_TOKEN": token})
    assert by_env.returncode == 0, by_env.stderr
    [image] = json.loads(by_env.stdout)["images"]
    assert image["id"] == uploaded["id"]


def test_progress_bars_on_a_terminal(
    make_server: Callable[..., LiveServer], tmp_path: Path
) -> None:
    """On a terminal (a pseudo-terminal here): bars, then every file's line and the summary."""
    import pty
    import select

    server = make_server(env=SMALL)
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
