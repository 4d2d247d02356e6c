from __future__ import annotations

import inspect

import s3drop


def test_all_matches_the_public_names() -> None:
    public = {
        name
        for name in dir(s3drop)  # the lazily imported names too
        if not name.startswith("_")
        and not inspect.ismodule(getattr(s3drop, name))
        and name != "annotations"
    }
    assert set(s3drop.__all__) == public | {"__version__"}


def test_every_exported_name_is_defined_in_the_package() -> None:
    for name in s3drop.__all__:
        if name != "__version__":
            assert getattr(s3drop, name).__module__.startswith("s3drop."), name


def test_the_command_line_starts_without_the_heavy_libraries() -> None:
    """`s3drop --help` imports neither pydantic, Pillow, boto3, httpx nor sqlite3."""
    import subprocess
    import sys

    heavy = ("pydantic", "PIL", "boto3", "httpx", "sqlite3", "fastapi")
    code = f"import sys, s3drop.cli; print(','.join(m for m in {heavy!r} if m in sys.modules))"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == ""
