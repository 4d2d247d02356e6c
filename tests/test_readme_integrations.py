"""The README's Django and Flask sections are excerpts of examples/django and examples/flask
(which tests/e2e/test_example_django.py and test_example_flask.py drive in a browser), line for
line and in order: what the README shows is what runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import ROOT
from .test_readme_fastapi import assert_excerpt, blocks, section

DJANGO = ROOT / "examples" / "django" / "journal"
FLASK = ROOT / "examples" / "flask"


def joined(tmp_path: Path, *sources: Path) -> Path:
    """The sources one after another, as one file to excerpt from (a snippet may span them)."""
    path = tmp_path / "joined.txt"
    path.write_text("\n".join(source.read_text() for source in sources))
    return path


@pytest.mark.parametrize(
    ("title", "until", "language", "sources"),
    [
        (
            "### Django",
            "### Flask",
            "python",
            [DJANGO / "settings.py", DJANGO / "urls.py", DJANGO / "models.py"],
        ),
        ("### Django", "### Flask", "html", [DJANGO / "templates" / "journal" / "posts.html"]),
        ("### Flask", "### The library", "python", [FLASK / "profiles.py"]),
        (
            "### Flask",
            "### The library",
            "html",
            [FLASK / "templates" / "base.html", FLASK / "templates" / "profile.html"],
        ),
    ],
)
def test_the_section_is_the_example_excerpted(
    tmp_path: Path, title: str, until: str, language: str, sources: list[Path]
) -> None:
    found = blocks(section(title, until), language)
    assert found
    source = joined(tmp_path, *sources)
    for snippet in found:
        assert_excerpt(snippet, source)


@pytest.mark.parametrize(
    ("name", "port"), [("django", "8002"), ("flask", "8003"), ("fastapi", "8001")]
)
def test_the_examples_default_ports_are_the_readmes_and_differ(name: str, port: str) -> None:
    assert f"PORT={port}\n" in (ROOT / "examples" / name / "run").read_text() or name == "fastapi"
    assert f"examples/{name}/run --port {port}" in (ROOT / "README.md").read_text()
