"""Start an example app the way its README says (``examples/<name>/run --port N``) and drive it.

The example's own data (its SQLite database and s3drop's data folder) goes into a temporary
folder named by the variable the example reads, so every test starts empty and can look into the
host's table afterwards.
"""

from __future__ import annotations

import io
import os
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from PIL import Image

from tests.ceph.cluster import free_port
from tests.conftest import MACHINE_SETTINGS, OUTPUT, ROOT

#: The solid colours of the test photo's halves (left, right): any mix-up shows in the pixels.
LEFT, RIGHT = (214, 48, 49), (36, 110, 222)


@dataclass
class Example:
    url: str
    data: Path
    process: subprocess.Popen[bytes]
    log: Path

    def rows(self, database: str, query: str) -> list[tuple[object, ...]]:
        """What the host's own table holds (read straight from its SQLite file)."""
        with sqlite3.connect(self.data / database) as db:
            return list(db.execute(query))

    def stored(self) -> list[str]:
        """Every object in s3drop's data folder for this example."""
        found: list[str] = []
        for folder in self.data.rglob("objects"):
            found += [str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()]
        return sorted(found)


@contextmanager
def running_example(name: str, tmp: Path, data_variable: str) -> Iterator[Example]:
    """``examples/<name>/run --port N`` with its data in ``tmp``, until the block ends."""
    port = free_port()
    data = tmp / f"{name}-data"
    log = tmp / f"{name}.log"
    env = {  # the machine's storage settings stay out: the example runs on its own defaults
        name: value
        for name, value in os.environ.items()
        if not name.startswith((*MACHINE_SETTINGS, "DJANGO_SETTINGS_MODULE"))
    }
    env[data_variable] = str(data)
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(ROOT / "examples" / name / "run"), "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=tmp,
            start_new_session=True,
        )
    example = Example(f"http://127.0.0.1:{port}", data, process, log)
    try:
        deadline = time.monotonic() + 90
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode}:\n{log.read_text()}")
            try:
                if httpx.get(f"{example.url}/login", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not answer within 90 s:\n{log.read_text()}")
            time.sleep(0.2)
        yield example
    finally:
        if process.poll() is None:
            os.killpg(process.pid, 15)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, 9)
                process.wait()


def two_colour_png(size: tuple[int, int] = (240, 160)) -> bytes:
    """Left half one colour, right half another (a swap or a blank image shows)."""
    width, height = size
    image = Image.new("RGB", size, LEFT)
    image.paste(RIGHT, (width // 2, 0, width, height))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def assert_two_colours(png: bytes) -> None:
    """The screenshot of a rendered photo shows its two halves, in place."""
    shot = Image.open(io.BytesIO(png)).convert("RGB")
    width, height = shot.size
    for x, expected in ((width // 4, LEFT), (3 * width // 4, RIGHT)):
        pixel = shot.getpixel((x, height // 2))
        assert isinstance(pixel, tuple)
        assert all(abs(a - b) <= 12 for a, b in zip(pixel, expected, strict=True)), (x, pixel)


def screenshot_path(name: str) -> Path:
    OUTPUT.mkdir(exist_ok=True)
    return OUTPUT / name
