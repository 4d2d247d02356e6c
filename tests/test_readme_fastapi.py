"""The README's "Use it from your own web app" snippets are true: the mount snippet runs as shown
and serves under its prefix; the FastAPI section is an excerpt of examples/fastapi (which the
browser test in tests/e2e/test_example_fastapi.py drives), line for line and in order."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from . import samples
from .conftest import ROOT
from .inprocess import BASE, asgi_client, sign

EXAMPLE = ROOT / "examples" / "fastapi"


def section(title: str, until: str) -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index(title)
    return text[start : text.index(until, start)]


def blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, re.S)


def assert_excerpt(snippet: str, source: Path) -> None:
    """Every line of ``snippet`` is a line of ``source`` (indentation aside), in the same order;
    ``...`` stands for lines left out."""
    lines = [line.strip() for line in source.read_text().splitlines()]
    at = 0
    for line in (line.strip() for line in snippet.splitlines()):
        if not line or line == "...":
            continue
        assert line in lines[at:], f"{line!r} is not in {source.name} (after line {at})"
        at = lines.index(line, at) + 1


def test_the_mount_snippet_serves_everything_under_its_prefix() -> None:
    (code,) = blocks(section("### Mount the bundled app", "### FastAPI"), "python")
    namespace: dict[str, object] = {}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 - the README's own code
    with asgi_client(namespace["app"]) as http:  # type: ignore[arg-type]
        assert http.get("/uploads/").headers["content-type"].startswith("text/html")
        answer = sign(http, "/uploads/api", samples.png(0, (8, 8)))
        assert answer.status_code == 201, answer.text
        assert answer.json()["upload"]["url"] == f"{BASE}/uploads/storage"


@pytest.mark.parametrize(
    ("language", "source"),
    [("python", EXAMPLE / "app.py"), ("html", EXAMPLE / "templates" / "journal.html")],
)
def test_the_fastapi_section_is_the_example_excerpted(language: str, source: Path) -> None:
    found = blocks(section("### FastAPI", "### Stable image URLs"), language)
    assert found
    for snippet in found:
        assert_excerpt(snippet, source)
