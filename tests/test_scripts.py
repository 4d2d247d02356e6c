"""The scripts a new user runs first, and s3drop installed as a package like any other."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import time
import zipfile
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
                time.sleep(0.02)
        else:
            raise AssertionError("./scripts/serve --port did not start a server")
    finally:
        server.terminate()
        _, err = server.communicate(timeout=20)
    assert f"http://127.0.0.1:{port}/" in err.decode()
    assert (checkout / "s3drop-data").is_dir()


def _package_files() -> set[str]:
    """Every file of the package in this checkout (``s3drop/...``), byte-code aside."""
    source = ROOT / "src"
    return {
        path.relative_to(source).as_posix()
        for path in (source / "s3drop").rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and not path.name.startswith(".")
    }


#: Run in the fresh virtualenv: where s3drop comes from, and every requirement its metadata
#: declares (markers evaluated, extras included) installed at a version it accepts.
_CHECK_INSTALLED = """
import importlib.metadata as metadata, json, sys
from packaging.requirements import Requirement

import s3drop

unmet = []
wanted = [Requirement(text) for text in metadata.requires("s3drop") or []]
while wanted:
    requirement = wanted.pop()
    if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
        continue
    try:
        found = metadata.distribution(requirement.name)
    except metadata.PackageNotFoundError:
        unmet.append(f"{requirement}: not installed")
        continue
    if not requirement.specifier.contains(found.version, prereleases=True):
        unmet.append(f"{requirement}: {found.version} installed")
    for extra in requirement.extras:  # uvicorn[standard], redis[hiredis]
        for text in found.requires or []:
            more = Requirement(text)
            if more.marker is not None and more.marker.evaluate({"extra": extra}):
                more.marker = None
                wanted.append(more)
print(json.dumps({"file": s3drop.__file__, "unmet": unmet}))
"""


def test_a_wheel_installs_into_a_fresh_virtualenv_and_works(tmp_path: Path) -> None:
    """The README's ``pip wheel``, then the wheel in a new virtualenv: its files, its declared
    dependencies, the CLI and the page (static files included).

    The virtualenv gets the wheel alone (``--no-deps``) and finds the dependencies in the test's
    own virtualenv through a ``.pth`` file: installing boto3, FastAPI, Pillow... afresh (and again
    with pipx) cost 40 CPU-seconds a run and proved only that pip works. What the wheel owes is
    proved here: it carries every file of ``src/s3drop`` (static assets, templates, ``py.typed``,
    the format plugins), s3drop runs from the virtualenv's copy and not this checkout, every
    ``Requires-Dist`` is met (checked against the metadata in the wheel, and by ``pip check``),
    and its ``s3drop`` console script (what pipx exposes) starts and serves the page."""
    dist = tmp_path / "dist"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(ROOT)],
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, build.stderr
    [wheel] = dist.glob("s3drop-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        [entry_points] = [name for name in names if name.endswith(".dist-info/entry_points.txt")]
        scripts = archive.read(entry_points).decode()
    missing = sorted(_package_files() - names)
    assert not missing, f"files of the package that the wheel lacks: {missing}"
    assert "[console_scripts]\ns3drop = s3drop._cli:main" in scripts  # what pipx installs

    venv = tmp_path / "fresh"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    # Nothing of this checkout may leak in: pip would take s3drop as installed already.
    clean = {name: value for name, value in os.environ.items() if name != "PYTHONPATH"}
    pip = [sys.executable, "-m", "pip", "--python", python]  # the test's pip, for the venv
    install = subprocess.run(
        [*pip, "install", "-q", "--no-deps", "--no-compile", str(wheel)],
        capture_output=True,
        text=True,
        env=clean,
    )
    assert install.returncode == 0, install.stderr
    # The dependencies: the test's own site-packages, after the virtualenv's (a .pth appends).
    # Its editable s3drop is not on that path (its own .pth files are not read from there).
    fresh_site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    (Path(fresh_site) / "_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    checked = subprocess.run(
        [python, "-c", _CHECK_INSTALLED], capture_output=True, text=True, env=clean, cwd=tmp_path
    )
    assert checked.returncode == 0, checked.stderr
    found = json.loads(checked.stdout)
    assert Path(found["file"]).is_relative_to(venv), found["file"]
    assert found["unmet"] == []
    pip_check = subprocess.run(
        [*pip, "check"],
        capture_output=True,
        text=True,
        env=clean,
    )
    assert pip_check.returncode == 0, pip_check.stdout + pip_check.stderr

    version = subprocess.run(
        [str(venv / "bin" / "s3drop"), "--version"], capture_output=True, text=True, env=clean
    )
    assert version.returncode == 0
    assert version.stdout.startswith("s3drop, version ")

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
                time.sleep(0.02)
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
