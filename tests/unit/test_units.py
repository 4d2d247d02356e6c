from __future__ import annotations

import pytest

from s3drop.units import format_size, parse_size

#: The one way sizes are written, in the CLI, the API's messages and the page (whose formatSize
#: is held to this same table by the browser tests).
SIZES = [
    (0, "0 bytes"),
    (1, "1 byte"),
    (512, "512 bytes"),
    (1023, "1023 bytes"),
    (1024, "1 KiB"),
    (1536, "1.5 KiB"),
    (199_999, "195.3 KiB"),
    (1_048_474, "1023.9 KiB"),
    (1_048_525, "1 MiB"),  # 1023.95 KiB rounds up to the next unit
    (10 * 1024 * 1024, "10 MiB"),
    (13_215_657, "12.6 MiB"),
    (5 * 1024**3, "5 GiB"),
    (3 * 1024**4, "3 TiB"),
]


@pytest.mark.parametrize(("size", "written"), SIZES)
def test_sizes_are_written_one_way(size: int, written: str) -> None:
    assert format_size(size) == written


def test_not_a_size() -> None:
    with pytest.raises(ValueError, match="not a size: '10 megs'"):
        parse_size("10 megs")
    assert parse_size(" 10MiB\n") == 10 * 1024 * 1024  # as a .env file may give it
