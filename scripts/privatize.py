#!/usr/bin/env python3
"""Mark s3drop's internals private, the way httpx does: ``_``-prefixed modules and packages.

    python scripts/privatize.py .    (from a clean, committed checkout)

The rule (written into the README's Development section and ``s3drop/__init__.py``'s docstring by
this script): a module is public when the README or an ``__all__`` tells users to import it or name
it, or when a framework finds it by its name (Django's ``apps``, ``urls``, ``templatetags``,
``migrations``...). :data:`PUBLIC` is that list. Every other module gets a leading underscore: a
top-level module (``policy.py`` -> ``_policy.py``), an internal package (``cli/`` -> ``_cli/``, whose
own modules then keep their names, as in httpx's ``_transports/``), or an internal module of a
public package (``web/routes.py`` -> ``web/_routes.py``). The rule is applied to whatever modules
the tree holds, so a module added since this script was written is handled like the others.

What it does, in order:

1. plans the renames from the tree (the rule above; refuses if a new name is taken);
2. writes an explicit name into any ``logging.getLogger(__name__)`` of a module it renames, the
   name the module had (a logger name is user-visible: a renamed module keeps its logger);
3. ``git mv`` each module or package to its new name;
4. rewrites every reference in the tracked text files of src/, tests/, bench/, examples/,
   scripts/, docs/, README.md and pyproject.toml (CHANGELOG.md is history, left alone):
   - dotted names ``s3drop.x.y`` anywhere (imports, ``python -m``, ``monkeypatch.setattr`` and
     ``mock.patch`` strings, ``"s3drop.logs.JSONFormatter"`` in a logging config, the sandbox's
     ``-c`` program, entry points, mypy overrides, Sphinx roles in docstrings), except a logger's
     name standing alone (``"s3drop.hooks"``, ```s3drop.hooks```): those do not change;
   - ``from s3drop import policy`` / ``from . import audit`` -> ``from . import _audit as audit``;
   - relative imports inside src (``from .policy import``, ``from ..storage.base import``),
     relative Sphinx roles (``:mod:`.sigv4```) and the relative module strings of a lazy
     ``import_module`` table (``s3drop.__init__._EXPORTS``);
   - paths ``s3drop/limits/batch.py``, pyproject's package-data globs, and a bare ``errors.py``
     in src/ and tests/ when exactly one file of that name exists;
   - the README's layout bullet (``- `src/s3drop/`: ...``), whose file names are nested in
     parentheses by package;
5. writes the public list where it is checked: a README bullet, a paragraph of ``s3drop``'s
   docstring and the list tests/unit/test_exports.py checks (between marker comments);
6. sorts the imports and formats the Python files it changed (ruff from the tree's .venv, else PATH).

Running it again changes nothing: the tree it leaves has no module the rule would rename and no
reference to an old name. References to old names merged in later (``from s3drop.policy import``)
are rewritten by running it again.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

PUBLIC: dict[str, str] = {
    "s3drop": "the package: `__all__` (S3Drop, Settings, Principal, Image, the errors...)",
    "s3drop.html": "`s3drop.html.picture(image, ...)`, the `<picture>` helper",
    "s3drop.webhooks": "`from s3drop.webhooks import RecentIds, verify`, for a webhook receiver",
    "s3drop.limits": "the limit stores: `SQLiteLimitStore(path)`, `MemoryLimitStore()`",
    "s3drop.limits.base": "the contract a custom `S3Drop(limit_store=...)` implements",
    "s3drop.limits.memory": "a limit store",
    "s3drop.limits.sqlite": "a limit store",
    "s3drop.limits.redis": "a limit store",
    "s3drop.storage": "`S3Drop(storage=...)`: `open_storage(settings)`",
    "s3drop.storage.base": "the contract a custom `S3Drop(storage=...)` implements",
    "s3drop.storage.local": "a backend, `LocalStorage(settings)`",
    "s3drop.storage.s3": "a backend, `S3Storage(settings)`",
    "s3drop.web": "the bundled app's package",
    "s3drop.web.app": "`from s3drop.web.app import create_app`",
    "s3drop.web.connections": "`--http s3drop.web.connections:GuardedHttpToolsProtocol` for your own uvicorn",
    "s3drop.integrations": "the adapters' package",
    "s3drop.integrations.api": "the JSON API as plain blocking calls",
    "s3drop.integrations.fastapi": "`from s3drop.integrations.fastapi import uploads_app`",
    "s3drop.integrations.flask": "`from s3drop.integrations.flask import s3drop_blueprint`",
    "s3drop.integrations.django": "`INSTALLED_APPS`",
    "s3drop.integrations.django.apps": "Django finds it by name",
    "s3drop.integrations.django.urls": '`include("s3drop.integrations.django.urls")`',
    "s3drop.integrations.django.fields": "`ImageIdField`, named by your migrations",
    "s3drop.integrations.django.signals": "the signals your receivers connect to",
    "s3drop.integrations.django.conf": "`get_drop()`",
    "s3drop.integrations.django.fixtures": "the test fixtures",
    "s3drop.integrations.django.templatetags": "Django finds it by name",
    "s3drop.integrations.django.templatetags.s3drop": "`{% load s3drop %}`",
}
#: Packages whose every module is public: a framework finds them by name.
PUBLIC_TREES = (
    "s3drop.integrations.django.migrations",
    "s3drop.integrations.django.templatetags",
)
SCOPE = ("src", "tests", "bench", "examples", "scripts", "docs", "README.md", "pyproject.toml")
ROOT = ("s3drop",)
Mod = tuple[str, ...]


def is_public(name: str) -> bool:
    return name in PUBLIC or any(name.startswith(tree + ".") for tree in PUBLIC_TREES)


def is_dunder(part: str) -> bool:
    return part.startswith("__") and part.endswith("__")


# -- the tree ---------------------------------------------------------------------------------


def modules_of(src: Path) -> dict[Mod, Path]:
    """Every module and package under ``src/s3drop``, by dotted parts, with its path (a package's
    is its folder)."""
    found: dict[Mod, Path] = {}
    top = src / "s3drop"

    def walk(folder: Path, parts: Mod) -> None:
        found[parts] = folder
        for entry in sorted(folder.iterdir()):
            if entry.is_dir() and (entry / "__init__.py").is_file():
                walk(entry, (*parts, entry.name))
            elif entry.suffix == ".py" and entry.is_file():
                stem = entry.stem
                if not is_dunder(stem) and stem.isidentifier():
                    found[(*parts, stem)] = entry

    walk(top, ROOT)
    return found


def plan(modules: dict[Mod, Path]) -> list[tuple[Mod, Mod]]:
    """(old, new) for each module the rule makes private: not public, not yet ``_``-prefixed, in a
    public package (inside a private package a module keeps its name)."""
    renames = []
    for parts, _path in sorted(modules.items()):
        if parts == ROOT:
            continue
        parent, last = parts[:-1], parts[-1]
        if last.startswith("_") or is_public(".".join(parts)):
            continue
        if parent != ROOT and not is_public(".".join(parent)):
            continue
        renames.append((parts, (*parent, "_" + last)))
    return renames


class Tree:
    """The modules after the renames, and how a name written for the old layout resolves in it."""

    def __init__(self, modules: Iterable[Mod]) -> None:
        self.modules = set(modules)

    def step(self, node: Mod, part: str) -> Mod | None:
        if (*node, part) in self.modules:
            return (*node, part)
        private = (*node, "_" + part)
        if (
            not part.startswith("_")
            and private in self.modules
            and not is_public(".".join((*node, part)))
        ):
            return private
        return None

    def resolve(self, start: Mod, parts: list[str]) -> tuple[Mod, list[str], int]:
        """The module reached from ``start`` through ``parts`` (old or new names), the parts as they
        are now spelled, and how many of them are modules (the rest are attributes)."""
        node: Mod = start
        out: list[str] = []
        for index, part in enumerate(parts):
            nxt = self.step(node, part)
            if nxt is None:
                return node, out + parts[index:], index
            node = nxt
            out.append(nxt[-1])
        return node, out, len(parts)


def old_name(parts: Mod) -> str:
    """The name a module had before the rule renamed it (a privatized part loses its ``_``)."""
    out: list[str] = []
    for part in parts:
        candidate = part[1:] if part.startswith("_") and not is_dunder(part) else part
        if candidate != part and not is_public(".".join((*out, candidate))):
            part = candidate
        out.append(part)
    return ".".join(out)


# -- rewrites -----------------------------------------------------------------------------------

_DOTTED = re.compile(r"(?<![\w.$/\\-])s3drop((?:\.[A-Za-z_]\w*)+)")
_BEFORE_MODULE = re.compile(r"(?:\bimport\s+|\bfrom\s+|:[a-z]+:`~?)$")
_FROM_IMPORT = re.compile(
    r"^(?P<indent>[ \t]*)from[ \t]+(?P<module>\.+[\w.]*|s3drop(?:\.\w+)*)[ \t]+import[ \t]+"
    r"(?P<names>\([^)]*\)|[^\n]*)",
    re.MULTILINE,
)
_NAME = re.compile(r"(?<![\w.])([A-Za-z_]\w*)(?:(\s+as\s+)([A-Za-z_]\w*))?")
_ROLE = re.compile(r"(:[a-z]+:`~?)(\.+)([A-Za-z_][\w.]*)`")
_REL_STRING = re.compile(r"""(["'])(\.+)([A-Za-z_][\w.]*)\1""")
_PATH = re.compile(r"(?<![\w.-])s3drop/((?:[A-Za-z_]\w*/)*[A-Za-z_]\w*(?:\.py\b|/)?)")
_LOGGER = re.compile(r"""getLogger\(\s*["']([\w.]+)["']\s*\)""")


def rewrite_dotted(text: str, tree: Tree, loggers: set[str]) -> str:
    def sub(match: re.Match[str]) -> str:
        whole = match.group(0)
        parts = match.group(1)[1:].split(".")
        _node, out, _modules = tree.resolve(ROOT, parts)
        if out == parts:
            return whole
        before = text[max(0, match.start() - 24) : match.start()]
        if whole in loggers and not _BEFORE_MODULE.search(before):
            return whole  # a logger's name: users configure it, it does not change
        return "s3drop." + ".".join(out)

    return _DOTTED.sub(sub, text)


def _rewrite_names(names: str, tree: Tree, module: Mod) -> str:
    """``policy, audit as log`` imported from ``module`` -> ``_policy as policy, _audit as log``."""

    def sub(match: re.Match[str]) -> str:
        name, alias = match.group(1), match.group(3)
        if name in ("as", "import"):
            return match.group(0)
        nxt = tree.step(module, name)
        if nxt is None or nxt[-1] == name:
            return match.group(0)
        return f"{nxt[-1]} as {alias or name}"

    out = []
    for line in names.split("\n"):
        code, hash_, comment = line.partition("#")
        out.append(_NAME.sub(sub, code) + hash_ + comment)
    return "\n".join(out)


def rewrite_imports(text: str, tree: Tree, package: Mod | None) -> str:
    """``from X import names``: X itself (relative ones only inside src/s3drop: ``package`` is the
    file's package there) and names that are submodules."""

    def sub(match: re.Match[str]) -> str:
        module = match.group("module")
        if module.startswith("."):
            if package is None:
                return match.group(0)
            level = len(module) - len(module.lstrip("."))
            if level - 1 > len(package) - 1:
                return match.group(0)
            start = package[: len(package) - (level - 1)]
            rest = [p for p in module[level:].split(".") if p]
            node, out, resolved = tree.resolve(start, rest)
            if resolved != len(rest):
                return match.group(0)
            new_module = "." * level + ".".join(out)
        else:
            rest = module.split(".")[1:]
            node, out, resolved = tree.resolve(ROOT, rest)
            if resolved != len(rest):
                return match.group(0)
            new_module = ".".join(["s3drop", *out])
        names = _rewrite_names(match.group("names"), tree, node)
        return f"{match.group('indent')}from {new_module} import {names}"

    return _FROM_IMPORT.sub(sub, text)


def rewrite_relative_refs(text: str, tree: Tree, package: Mod, *, strings: bool) -> str:
    """``:mod:`.sigv4``` in a docstring; with ``strings``, ``".errors"`` (a lazy import table)."""

    def resolve(dots: str, dotted: str) -> str | None:
        level = len(dots)
        if level - 1 > len(package) - 1:
            return None
        parts = dotted.split(".")
        _node, out, resolved = tree.resolve(package[: len(package) - (level - 1)], parts)
        return ".".join(out) if resolved and out != parts else None

    def role(match: re.Match[str]) -> str:
        new = resolve(match.group(2), match.group(3))
        return match.group(0) if new is None else f"{match.group(1)}{match.group(2)}{new}`"

    def string(match: re.Match[str]) -> str:
        new = resolve(match.group(2), match.group(3))
        quote = match.group(1)
        return match.group(0) if new is None else f"{quote}{match.group(2)}{new}{quote}"

    text = _ROLE.sub(role, text)
    if strings:
        text = _REL_STRING.sub(string, text)
    return text


def resolve_path(tree: Tree, start: Mod, path: str) -> str:
    """``limits/batch.py`` -> ``limits/_batch.py``: folders and a final ``.py`` are modules; the
    first part that is not one ends the rewrite."""
    segments = path.split("/")
    node: Mod = start
    out: list[str] = []
    for index, segment in enumerate(segments):
        stem, dot, ext = segment.partition(".")
        if dot and ext != "py":
            return "/".join(out + segments[index:])
        if not segment or (not dot and index == len(segments) - 1 and not stem.isidentifier()):
            return "/".join(out + segments[index:])
        nxt = tree.step(node, stem)
        if nxt is None:
            return "/".join(out + segments[index:])
        node = nxt
        out.append(nxt[-1] + (dot + ext))
    return "/".join(out)


_SEGMENTS = re.compile(r"""(["'])s3drop\1\)?((?:\s*/\s*(["'])[\w.]+\3)+)""")
_SEGMENT = re.compile(r"""(["'])([\w.]+)\1""")


def rewrite_paths(text: str, tree: Tree) -> str:
    """``s3drop/limits/batch.py``, and pathlib's ``"s3drop" / "limits" / "batch.py"``."""
    text = _PATH.sub(lambda m: "s3drop/" + resolve_path(tree, ROOT, m.group(1)), text)

    def segments(match: re.Match[str]) -> str:
        quoted = _SEGMENT.findall(match.group(2))
        new = resolve_path(tree, ROOT, "/".join(name for _quote, name in quoted)).split("/")
        tail = match.group(2)
        for (quote, old), name in zip(quoted, new, strict=True):
            tail = tail.replace(f"{quote}{old}{quote}", f"{quote}\0{name}{quote}", 1)
        return match.group(0)[: match.start(2) - match.start(0)] + tail.replace("\0", "")

    return _SEGMENTS.sub(segments, text)


def rewrite_package_data(text: str, tree: Tree) -> str:
    section = re.search(r"^\[tool\.setuptools\.package-data\]\n(?:(?!^\[).*\n?)*", text, re.M)
    if section is None:
        return text
    block = section.group(0)

    def sub(match: re.Match[str]) -> str:
        path = match.group(1)
        head, _, glob = path.rpartition("/")
        if not head:
            return match.group(0)
        return f'"{resolve_path(tree, ROOT, head)}/{glob}"'

    new = re.sub(r'"([\w/]+/[^"/]*)"', sub, block)
    return text[: section.start()] + new + text[section.end() :]


def rewrite_bare_files(text: str, bare: dict[str, str]) -> str:
    if not bare:
        return text
    pattern = re.compile(r"(?<![\w/.-])(" + "|".join(map(re.escape, bare)) + r")\.py\b")
    return pattern.sub(lambda m: bare[m.group(1)] + ".py", text)


_SPAN_OR_PAREN = re.compile(r"`([^`\n]*)`|[()]")


def rewrite_layout(readme: str, tree: Tree) -> str:
    """The README's ``- `src/s3drop/`: ...`` bullet names files by their bare names, nested in
    parentheses by package: ``storage/` (`base.py`, `local/` (`serving.py`))``."""
    start = readme.find("- `src/s3drop/`:")
    if start < 0:
        return readme
    end_match = re.compile(r"^- ", re.M).search(readme, start + 2)
    end = end_match.start() if end_match else len(readme)
    bullet = readme[start:end]
    stack: list[Mod | None] = []
    pending: tuple[Mod, int] | None = None
    pieces: list[str] = []
    last = 0

    def context() -> Mod:
        for entry in reversed(stack):
            if entry is not None:
                return entry
        return ROOT

    for match in _SPAN_OR_PAREN.finditer(bullet):
        token = match.group(0)
        if token == "(":  # noqa: S105 (a parenthesis, not a password)
            if pending is not None and not bullet[pending[1] : match.start()].strip():
                stack.append(pending[0])
            else:
                stack.append(None)
            pending = None
            continue
        if token == ")":  # noqa: S105
            if stack:
                stack.pop()
            continue
        content = match.group(1)
        pending = None
        if not re.fullmatch(r"[A-Za-z_][\w/]*(\.py|/)", content):
            continue
        is_dir = content.endswith("/")
        path = content[:-1] if is_dir else content
        parts = [p.removesuffix(".py") for p in path.split("/")]
        node, out, resolved = tree.resolve(context(), parts)
        if resolved != len(parts):
            continue
        new = "/".join(out) + ("/" if is_dir else ".py")
        if is_dir:
            pending = (node, match.end())
        if new != content:
            pieces.append(bullet[last : match.start()] + f"`{new}`")
            last = match.end()
    pieces.append(bullet[last:])
    return readme[:start] + "".join(pieces) + readme[end:]


# -- the public list, written down ---------------------------------------------------------------

README_BULLET_START = "- Public and private modules"


def public_names() -> list[str]:
    return sorted(PUBLIC)


def readme_bullet() -> str:
    listed = ", ".join(f"`{name}`" for name in public_names())
    text = (
        f"{README_BULLET_START} (as httpx marks them): a module is public when this README or an "
        "`__all__` tells you to import it or name it, or when a framework finds it by its name "
        "(Django's `apps`, `urls`, `templatetags`, `migrations`); every other module or package "
        "starts with `_` (`_policy.py`, `_cli/`, `web/_routes.py`, `storage/_sigv4.py`) and may "
        "change in any release. `scripts/privatize.py .` applies the rule to a committed checkout "
        "(renames, references, this list), and `tests/unit/test_exports.py` fails while a module "
        "breaks it. Logger names (`s3drop.hooks`, `s3drop.audit`, `s3drop.webhooks`) "
        f"are not module names and do not change. The public modules: {listed}. "
        "`tests/unit/test_exports.py` checks that every module is one of these or private, and "
        "that this list is what the README names."
    )
    return wrap(text, indent="  ", first="") + "\n"


def wrap(text: str, *, indent: str, first: str, width: int = 100) -> str:
    import textwrap

    return "\n".join(
        textwrap.wrap(
            text,
            width=width,
            initial_indent=first,
            subsequent_indent=indent,
            break_long_words=False,
            break_on_hyphens=False,
        )
    )


def add_readme_bullet(readme: str) -> str:
    at = readme.find(README_BULLET_START)
    if at >= 0:
        end_match = re.compile(r"^(- |#)", re.M).search(readme, at + 2)
        end = end_match.start() if end_match else len(readme)
        return readme[:at] + readme_bullet() + readme[end:]
    start = readme.find("- `src/s3drop/`:")
    if start < 0:
        raise SystemExit("README.md: no `- `src/s3drop/`:` bullet to put the public list after")
    end_match = re.compile(r"^(- |#)", re.M).search(readme, start + 2)
    end = end_match.start() if end_match else len(readme)
    return readme[:end] + readme_bullet() + readme[end:]


DOCSTRING_START = "Public and private, as httpx marks them"


def docstring_paragraph() -> str:
    modules = ", ".join(f":mod:`{name}`" for name in public_names() if name != "s3drop")
    text = (
        f"{DOCSTRING_START}: a module is public when the README or an ``__all__`` tells users to "
        "import it or name it, or when a framework finds it by its name (Django's ``apps``, "
        "``urls``, ``templatetags``, ``migrations``). The public modules besides this one: "
        f"{modules}. Every other module or package starts with ``_`` (``_policy``, ``_cli``, "
        "``web._routes``) and may change in any release; logger names (``s3drop.hooks``, "
        "``s3drop.audit``, ``s3drop.webhooks``) are not module names and do not change."
    )
    return wrap(text, indent="", first="") + "\n"


def add_docstring_paragraph(source: str) -> str:
    at = source.find(DOCSTRING_START)
    if at >= 0:
        end = source.find("\n\n", at)
        closing = source.find('"""', at)
        end = closing if end < 0 or (0 <= closing < end) else end + 1
        return source[:at] + docstring_paragraph() + source[end:]
    closing = source.find('"""', 3)
    if not source.startswith('"""') or closing < 0:
        raise SystemExit("s3drop/__init__.py: no module docstring to put the rule in")
    body = source[3:closing].rstrip("\n")
    return '"""' + body + "\n\n" + docstring_paragraph() + source[closing:]


TESTS_BEGIN = "# -- public and private modules (the rule: README.md, Development) --\n"
TESTS_END = "# -- end of public and private modules --\n"


def exports_tests() -> str:
    public = "\n".join(f'    "{name}",' for name in public_names())
    trees = "\n".join(f'    "{name}",' for name in PUBLIC_TREES)
    return (
        TESTS_BEGIN
        + """
#: The public modules: what the README or an ``__all__`` tells users to import or name, and what a
#: framework finds by name. Every other module starts with ``_``.
PUBLIC_MODULES = {
"""
        + public
        + """
}
#: Packages whose every module is public (Django finds them by name).
PUBLIC_TREES = (
"""
        + trees
        + """
)
"""
        + TESTS_END
    )


def add_exports_tests(source: str) -> str:
    block = exports_tests()
    at = source.find(TESTS_BEGIN)
    if at >= 0:
        end = source.find(TESTS_END, at)
        if end < 0:
            raise SystemExit("tests/unit/test_exports.py: begin marker without end marker")
        return source[:at] + block + source[end + len(TESTS_END) :]
    return source.rstrip("\n") + "\n\n\n" + block


# -- the run ----------------------------------------------------------------------------------


def git(tree: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=tree, check=True, capture_output=True, text=True
    ).stdout


def tracked(tree: Path) -> list[Path]:
    listed = git(tree, "ls-files", "-z", "--", *SCOPE).split("\0")
    return [
        tree / name
        for name in listed
        if name and name != "scripts/privatize.py" and (tree / name).is_file()  # not itself
    ]


def package_of(path: Path, src: Path) -> Mod | None:
    """The package a file under src/s3drop belongs to (relative imports resolve from it)."""
    try:
        relative = path.relative_to(src)
    except ValueError:
        return None
    if relative.parts[0] != "s3drop" or path.suffix != ".py":
        return None
    return tuple(relative.parts[:-1])


def name_loggers(modules: dict[Mod, Path], renames: list[tuple[Mod, Mod]]) -> None:
    """``getLogger(__name__)`` in a module about to be renamed names the logger as it was."""
    moving = {old for old, _new in renames}
    for parts, path in modules.items():
        if not any(parts[: len(old)] == old for old in moving):
            continue
        files = [path / "__init__.py"] if path.is_dir() else [path]
        for file in files:
            text = file.read_text()
            if "getLogger(__name__)" in text:
                file.write_text(
                    text.replace("getLogger(__name__)", f'getLogger("{old_name(parts)}")')
                )


def find_ruff(tree: Path) -> str | None:
    local = tree / ".venv" / "bin" / "ruff"
    return str(local) if local.exists() else shutil.which("ruff")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("tree", type=Path, help="a worktree of s3drop")
    args = parser.parse_args(argv)
    tree: Path = args.tree.resolve()
    src = tree / "src"
    if not (src / "s3drop" / "__init__.py").is_file():
        raise SystemExit(f"{tree}: not an s3drop tree (no src/s3drop/__init__.py)")

    modules = modules_of(src)
    renames = plan(modules)
    for old, new in renames:
        target = modules[old].with_name(new[-1] + modules[old].suffix)
        if target.exists():
            raise SystemExit(f"{'.'.join(old)} -> {'.'.join(new)}: {target} exists already")

    name_loggers(modules, renames)
    for old, new in renames:
        source = modules[old]
        target = source.with_name(new[-1] + source.suffix)
        try:
            git(tree, "mv", str(source.relative_to(tree)), str(target.relative_to(tree)))
        except subprocess.CalledProcessError:  # not tracked yet (a new file): a plain rename
            source.rename(target)
        print(f"renamed {'.'.join(old)} -> {'.'.join(new)}")

    after = modules_of(src)
    resolver = Tree(after)
    loggers = {"s3drop"}
    for file in src.rglob("*.py"):
        loggers.update(_LOGGER.findall(file.read_text()))

    # A bare file name in src/ or tests/ is rewritten when it names one private module only.
    counts: dict[str, int] = {}
    for listed in git(tree, "ls-files").splitlines():
        base = listed.rsplit("/", 1)[-1]
        counts[base] = counts.get(base, 0) + 1
    bare: dict[str, str] = {}
    for parts, where in after.items():
        if where.is_file() and parts[-1].startswith("_") and not is_dunder(parts[-1]):
            was = old_name(parts).rsplit(".", 1)[-1]
            if was != parts[-1] and counts.get(was + ".py", 0) == 0 and counts.get(where.name) == 1:
                bare[was] = parts[-1]

    changed: list[Path] = []
    for path in tracked(tree):
        try:
            text = path.read_text()
        except (UnicodeDecodeError, OSError):
            continue
        result = text
        package = package_of(path, src)
        relative = path.relative_to(tree)
        result = rewrite_imports(result, resolver, package)
        if package is not None:
            result = rewrite_relative_refs(
                result, resolver, package, strings="import_module(" in result
            )
        result = rewrite_dotted(result, resolver, loggers)
        result = rewrite_paths(result, resolver)
        if relative.parts[0] in ("src", "tests") and path.suffix == ".py":
            result = rewrite_bare_files(result, bare)
        if relative == Path("pyproject.toml"):
            result = rewrite_package_data(result, resolver)
        if relative == Path("README.md"):
            result = add_readme_bullet(rewrite_layout(result, resolver))
        if relative == Path("src/s3drop/__init__.py"):
            result = add_docstring_paragraph(result)
        if relative == Path("tests/unit/test_exports.py"):
            result = add_exports_tests(result)
        if result != text:
            path.write_text(result)
            changed.append(path)
            print(f"rewrote {relative}")

    python = [str(p) for p in changed if p.suffix == ".py"]
    ruff = find_ruff(tree)
    if python and ruff:
        run: Callable[..., subprocess.CompletedProcess[str]] = subprocess.run
        run([ruff, "check", "--select", "I", "--fix", "--quiet", *python], cwd=tree, text=True)
        run([ruff, "format", "--quiet", *python], cwd=tree, text=True)
    elif python:
        print("ruff not found: sort the imports of the files above (ruff check --select I --fix)")
    if renames or changed:
        print(f"{len(renames)} renamed, {len(changed)} files rewritten.")
    else:
        print("nothing to do: the tree already follows the rule")
    if tree / "pyproject.toml" in changed:
        print(
            "pyproject.toml changed (its entry point): re-source scripts/bootstrap.sh, it reinstalls"
        )
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    sys.exit(main())
