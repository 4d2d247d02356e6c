"""Every console session the README shows is produced here, by running it.

Each ```console block is run command by command in bash against a live server on the embedded
default (the README's ``http://127.0.0.1:8000`` stands for it), in a folder with the files the
session names, and what it printed must be what the README says, up to what changes from run to
run: ids, times, and the byte sizes of encoded images. ``WRITE_README=1`` rewrites the
README's blocks from a run instead.
"""

from __future__ import annotations

import io
import os
import random
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from .conftest import ROOT, LiveServer

README = ROOT / "README.md"
_BLOCK = re.compile(r"^```console\n(.*?)^```$", re.DOTALL | re.MULTILINE)
_ID = re.compile(r"\b[0-9]{13}[a-z2-7]{10}\b")
_TIME = re.compile(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d")
_SIZE = re.compile(r"\b\d+(\.\d)? (bytes|KiB|MiB)\b")
DEFAULT = "http://127.0.0.1:8000"


def photo(path: Path, width: int, height: int, kind: str) -> None:
    """A small, deterministic picture (noise compresses badly enough to look like a photo)."""
    rng = random.Random(f"{path.name}{width}{height}")
    small = Image.frombytes(
        "RGB", (width // 8, height // 8), rng.randbytes(width * height * 3 // 64)
    )
    image = small.resize((width, height), Image.Resampling.NEAREST if kind == "PNG" else None)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    image.save(buffer, kind)
    path.write_bytes(buffer.getvalue())


def photos_folder(root: Path) -> None:
    """The files the README's upload session names."""
    photo(root / "photos/2024/sunset.jpg", 1200, 800, "JPEG")
    photo(root / "photos/2024/beach.jpg", 1600, 1200, "JPEG")
    photo(root / "photos/cat.png", 640, 480, "PNG")
    (root / "photos/notes.txt").write_text("remember the milk\n")
    (root / "photos/poster.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(13_215_657 - 8))


def run_block(block: str, *, cwd: Path, env: dict[str, str], server: str) -> str:
    """Run a console block's commands in order; the session as a terminal would show it."""
    shown: list[str] = []
    ids: dict[str, str] = {}  # the README's ids -> this run's, by the file they were given to
    readme_ids = {
        match[2]: match[1] for match in re.finditer(r"^accepted\s+(\S+)\s+(\S+)", block, re.M)
    }
    status = 0
    for line in block.splitlines():
        if not line.startswith("$ "):
            continue
        command = line[2:]
        real = command.replace(DEFAULT, server)
        for readme_id, real_id in ids.items():
            real = real.replace(readme_id, real_id)
        real = real.replace("$?", str(status))
        done = subprocess.run(
            ["bash", "-c", f"exec 2>&1; {real}"],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
            timeout=120,
        )
        status = done.returncode
        output = done.stdout.replace(server, DEFAULT)
        if output and not output.endswith("\n"):
            output += "\n"  # (curl prints none): the next prompt starts a line of its own
        for match in re.finditer(r"^accepted\s+(\S+)\s+(\S+)", output, re.M):
            given = {path: readme_id for readme_id, path in readme_ids.items()}
            if match[1] in given:
                ids[given[match[1]]] = match[2]
        for readme_id, real_id in ids.items():
            command = command.replace(readme_id, real_id)
        shown.append(f"$ {command}\n{output}")
    return "".join(shown)


def normalise(session: str) -> list[str]:
    """What must not change between runs: every line, with ids, times and the sizes of encoded
    images (accepted lines and listings) made generic, spaces folded, and lines of the same
    kind that concurrent uploads print in any order sorted."""
    lines = []
    for raw in session.splitlines():
        line = _TIME.sub("<time>", _ID.sub("<id>", raw))
        if line.startswith(("accepted", "<id>")):
            line = _SIZE.sub("<size>", line)
        lines.append(" ".join(line.split()))
    ordered: list[str] = []
    run: list[str] = []
    for line in [*lines, ""]:
        if run and _kind(line) != _kind(run[0]):
            ordered.extend(sorted(run))
            run = []
        run.append(line)
    return ordered[:-1] if ordered and ordered[-1] == "" else ordered


@pytest.fixture
def session(make_server: Callable[..., LiveServer], tmp_path: Path) -> Callable[[str], str]:
    server = make_server()
    photos_folder(tmp_path)
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "S3DROP_SERVER": server.url,
        "PYTHONUNBUFFERED": "1",  # stdout and stderr reach the terminal in the order written
        "COLUMNS": "100",
    }
    return lambda block: run_block(block, cwd=tmp_path, env=env, server=server.url)


def test_every_console_session_in_the_readme_is_what_running_it_prints(
    session: Callable[[str], str],
) -> None:
    text = README.read_text()
    blocks = _BLOCK.findall(text)
    assert len(blocks) >= 3
    produced = [session(block) for block in blocks]  # in order: one server, one story
    if os.environ.get("WRITE_README") == "1":
        for block, output in zip(blocks, produced, strict=True):
            text = text.replace(f"```console\n{block}```", f"```console\n{output}```", 1)
        README.write_text(text)
    for block, output in zip(blocks, produced, strict=True):
        assert normalise(output) == normalise(block)


def _kind(line: str) -> str:
    """What a line is, for ordering: its first word, a metric's name without its labels (the
    order of a metric's labelled lines follows which upload came first)."""
    return line.split(" ", 1)[0].split("{", 1)[0]
