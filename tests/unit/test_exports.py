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
    code = f"import sys, s3drop._cli; print(','.join(m for m in {heavy!r} if m in sys.modules))"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == ""


def test_the_clients_all_matches_its_public_names() -> None:
    """``s3drop._client`` is a package of small modules; its names are still all importable from it,
    as when it was one module."""
    import s3drop._client as client

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

    import s3drop._client as client

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

    import s3drop._errors as errors

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    named = {
        name
        for name in re.findall(r"`(?:s3drop\.)?([A-Z][A-Za-z0-9]+)`", readme)
        if isinstance(getattr(errors, name, None), type)
        and issubclass(getattr(errors, name), errors.S3DropError)
    }
    assert {"UploadRefused", "NotAuthenticated", "Forbidden", "AlreadyUploaded"} <= named
    assert named <= set(s3drop.__all__), named - set(s3drop.__all__)


# -- public and private modules (the rule: README.md, Development) --

#: The public modules: what the README or an ``__all__`` tells users to import or name, and what a
#: framework finds by name. Every other module starts with ``_``.
PUBLIC_MODULES = {
    "s3drop",
    "s3drop.html",
    "s3drop.integrations",
    "s3drop.integrations.api",
    "s3drop.integrations.django",
    "s3drop.integrations.django.apps",
    "s3drop.integrations.django.conf",
    "s3drop.integrations.django.fields",
    "s3drop.integrations.django.fixtures",
    "s3drop.integrations.django.signals",
    "s3drop.integrations.django.templatetags",
    "s3drop.integrations.django.templatetags.s3drop",
    "s3drop.integrations.django.urls",
    "s3drop.integrations.fastapi",
    "s3drop.integrations.flask",
    "s3drop.limits",
    "s3drop.limits.base",
    "s3drop.limits.memory",
    "s3drop.limits.redis",
    "s3drop.limits.sqlite",
    "s3drop.storage",
    "s3drop.storage.base",
    "s3drop.storage.local",
    "s3drop.storage.s3",
    "s3drop.web",
    "s3drop.web.app",
    "s3drop.web.connections",
    "s3drop.webhooks",
}
#: Packages whose every module is public (Django finds them by name).
PUBLIC_TREES = (
    "s3drop.integrations.django.migrations",
    "s3drop.integrations.django.templatetags",
)
# -- end of public and private modules --


def _modules() -> set[str]:
    from pathlib import Path

    top = Path(s3drop.__file__ or "").parent
    names = set()
    for path in top.rglob("*.py"):
        parts = path.relative_to(top.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if parts[-1] != "__main__":
            names.add(".".join(parts))
    return names


def _is_private(name: str) -> bool:
    return any(part.startswith("_") for part in name.split("."))


def _is_public(name: str) -> bool:
    return name in PUBLIC_MODULES or name.startswith(tuple(tree + "." for tree in PUBLIC_TREES))


def test_every_module_is_public_or_private() -> None:
    """A module is in the public list or has a ``_`` in its dotted name (``s3drop._cli.images``)."""
    modules = _modules()
    assert modules >= PUBLIC_MODULES, PUBLIC_MODULES - modules
    assert not {name for name in PUBLIC_MODULES if _is_private(name)}
    stray = {name for name in modules if not _is_private(name) and not _is_public(name)}
    assert not stray, f"make these private (a leading _) or name them in the README: {stray}"


def test_the_public_modules_are_what_the_readme_names() -> None:
    """Every ``s3drop.x`` the README names is a public module, an attribute of one, or a logger's
    name; and every public module is named there."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    readme = (root / "README.md").read_text()
    source = Path(s3drop.__file__ or "").parent
    loggers = set()
    for path in source.rglob("*.py"):
        loggers.update(re.findall(r"""getLogger\(\s*["']([\w.]+)["']""", path.read_text()))
    modules = _modules()
    named = {"s3drop"}
    for token in re.findall(r"(?<![\w./-])s3drop(?:\.[A-Za-z_]\w*)+", readme):
        parts = token.split(".")
        depth = max(n for n in range(1, len(parts) + 1) if ".".join(parts[:n]) in modules)
        module, rest = ".".join(parts[:depth]), parts[depth:]
        named.add(module)
        if not rest or token in loggers or re.fullmatch(r"s3drop\.[CEWI]\d{3}", token):
            continue  # a module, a logger's name or a Django check's id
        if module == "s3drop":
            assert rest[0] in s3drop.__all__, token
            continue
        path = source.parent.joinpath(*module.split("."))
        path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
        defined = rf"^(?:async def|def|class) {rest[0]}\b|^{rest[0]}\b\s*[:=]"
        assert re.search(defined, path.read_text(), re.M), f"{token}: no {rest[0]} in {module}"
    assert not {name for name in named if not _is_public(name)}, "the README names private modules"
    assert named == PUBLIC_MODULES, (PUBLIC_MODULES - named, named - PUBLIC_MODULES)


def test_logger_names_are_written_out() -> None:
    """A module's name may change (made private); its logger's name, which users configure, must
    not: every logger of the package is named explicitly."""
    from pathlib import Path

    for path in Path(s3drop.__file__ or "").parent.rglob("*.py"):
        assert "getLogger(__name__)" not in path.read_text(), path


def test_python_dash_m_s3drop_still_runs_the_command_line() -> None:
    import subprocess
    import sys

    run = subprocess.run(
        [sys.executable, "-m", "s3drop", "--help"], capture_output=True, text=True, check=True
    )
    assert "Usage:" in run.stdout
