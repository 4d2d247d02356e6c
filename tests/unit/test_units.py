from __future__ import annotations

import json
from pathlib import Path

import pytest

from s3drop._units import format_size, parse_size

#: The one way sizes are written, in the CLI, the API's messages and the page: one table, which the
#: uploader element's formatSize is held to as well (tests/e2e/test_element.py).
SIZES = [
    (size, written)
    for size, written in json.loads((Path(__file__).parents[1] / "sizes.json").read_text())["cases"]
]


@pytest.mark.parametrize(("size", "written"), SIZES)
def test_sizes_are_written_one_way(size: int, written: str) -> None:
    assert format_size(size) == written


def test_not_a_size() -> None:
    with pytest.raises(ValueError, match="not a size: '10 megs'"):
        parse_size("10 megs")
    assert parse_size(" 10MiB\n") == 10 * 1024 * 1024  # as a .env file may give it
