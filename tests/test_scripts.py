"""The scripts a new user runs first, and s3drop installed as a package like any other."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx

from .conftest import free_port

ROOT = Path(__file__).resolve().parent.parent


def _checkout_with_ready_venv(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """The scripts and pyproject.toml in a new folder, with a virtualenv bootstrap.sh takes as
    set up (its stamp matches), whose ``s3drop`` is this one: what ./scripts/serve does with its
    arguments is the point, not pip."""
    checkout = tmp_path / "checkout"
    shutil.copytree(ROOT / "scripts", checkout / "scripts")
    shutil.copy(ROOT / "pyproject.toml", checkout / "pyproject.toml")
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(sys.executable)
    s3drop = shutil.which("s3drop", path=str(Path(sys.executable).parent))
    assert s3drop is not None
    (venv / "bin" / "s3drop").symlink_to(s3drop)
    stamp = hashlib.sha256((checkout / "pyproject.toml").read_bytes()).hexdigest()
    (venv / ".s3drop-installed").write_text(stamp + "\n")
    return checkout, {**os.environ, "S3DROP_VENV": str(venv)}


def test_serve_script_passes_its_arguments_to_serve(tmp_path: Path) -> None:
    checkout, env = _checkout_with_ready_venv(tmp_path)
    helped = subprocess.run(
        ["./scripts/serve", "--help"], cwd=checkout, env=env, capture_output=True, text=True
    )
    assert helped.returncode == 0, helped.stderr
    assert helped.stdout.startswith("Usage: s3drop serve [OPTIONS]")
    assert "pip" not in helped.stderr

    port = free_port()
    server = subprocess.Popen(
        ["./scripts/serve", "--port", str(port)],
        cwd=checkout,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            raise AssertionError("./scripts/serve --port did not start a server")
    finally:
        server.terminate()
        _, err = server.communicate(timeout=20)
    assert f"http://127.0.0.1:{port}/" in err.decode()
    assert (checkout / "s3drop-data").is_dir()


def test_a_wheel_installs_into_a_fresh_virtualenv_and_works(tmp_path: Path) -> None:
    """Plain pip, a new virtualenv, then the CLI and the page (static files included)."""
    dist = tmp_path / "dist"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(ROOT)],
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, build.stderr
    [wheel] = dist.glob("s3drop-*.whl")
    venv = tmp_path / "fresh"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    # Nothing of this checkout may leak in: pip would take s3drop as installed already.
    clean = {name: value for name, value in os.environ.items() if name != "PYTHONPATH"}
    # --no-compile: byte-compiling botocore's thousands of files is most of an install's time,
    # and Python compiles what it imports anyway.
    install = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-compile", str(wheel)],
        capture_output=True,
        text=True,
        env=clean,
    )
    assert install.returncode == 0, install.stderr
    version = subprocess.run(
        [str(venv / "bin" / "s3drop"), "--version"], capture_output=True, text=True, env=clean
    )
    assert version.returncode == 0
    assert version.stdout.startswith("s3drop, version ")

    # The README's other way: pipx, for just the command, in a virtualenv of its own.
    pipx = {**clean, "PIPX_HOME": str(tmp_path / "pipx"), "PIPX_BIN_DIR": str(tmp_path / "bin")}
    for command in (
        ["-m", "pip", "install", "-q", "--no-compile", "pipx"],
        ["-m", "pipx", "install", "--pip-args=--no-compile", str(wheel)],
    ):
        done = subprocess.run(
            [str(venv / "bin" / "python"), *command], capture_output=True, text=True, env=pipx
        )
        assert done.returncode == 0, done.stderr
    by_pipx = subprocess.run(
        [str(tmp_path / "bin" / "s3drop"), "--version"], capture_output=True, text=True, env=clean
    )
    assert (by_pipx.returncode, by_pipx.stdout) == (0, version.stdout)

    port = free_port()
    server = subprocess.Popen(
        [str(venv / "bin" / "s3drop"), "serve", "--port", str(port)],
        cwd=tmp_path,
        env=clean,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        page = None
        deadline = time.monotonic() + 30
        while page is None and time.monotonic() < deadline:
            try:
                page = httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
            except httpx.HTTPError:
                time.sleep(0.1)
        assert page is not None, "the installed s3drop did not serve"
        assert page.status_code == 200
        links = [
            part.split('"')[1] for part in page.text.split() if part.startswith(("href=", "src="))
        ]
        assets = [link for link in links if link.split("?")[0].endswith((".css", ".js"))]
        assert assets, page.text
        for asset in assets:
            url = httpx.URL(f"http://127.0.0.1:{port}/").join(asset)
            assert httpx.get(url).status_code == 200, asset
    finally:
        server.terminate()
        server.wait(timeout=20)
