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


def test_the_clients_all_matches_its_public_names() -> None:
    """``s3drop.client`` is a package of small modules; its names are still all importable from it,
    as when it was one module."""
    import s3drop.client as client

    public = {
        name
        for name in dir(client)
        if not name.startswith("_")
        and not inspect.ismodule(getattr(client, name))
        and name != "annotations"
    }
    assert set(client.__all__) == public
    assert {
        "Client",
        "DEFAULT_SERVER",
        "ImagePage",
        "ServerConfig",
        "UploadResult",
        "file_sha256",
        "server_url",
        "sniff_type",
        "type_names",
    } <= public  # what the one module defined


def test_no_module_of_the_client_is_over_400_lines() -> None:
    from pathlib import Path

    import s3drop.client as client

    assert Path(client.__file__ or "").name == "__init__.py"
    sizes = {
        path.name: len(path.read_text().splitlines())
        for path in Path(client.__file__ or "").parent.glob("*.py")
    }
    assert len(sizes) > 1
    assert max(sizes.values()) <= 400, sizes


def test_every_error_the_readme_names_is_importable_from_s3drop() -> None:
    """The README tells users what to catch (``UploadRefused``, ``NotAuthenticated``, ...): each
    error class it names is exported by the package, not only by the module that defines it."""
    import re
    from pathlib import Path

    import s3drop.errors as errors

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    named = {
        name
        for name in re.findall(r"`(?:s3drop\.)?([A-Z][A-Za-z0-9]+)`", readme)
        if isinstance(getattr(errors, name, None), type)
        and issubclass(getattr(errors, name), errors.S3DropError)
    }
    assert {"UploadRefused", "NotAuthenticated", "Forbidden", "AlreadyUploaded"} <= named
    assert named <= set(s3drop.__all__), named - set(s3drop.__all__)
