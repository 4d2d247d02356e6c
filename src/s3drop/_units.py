"""Sizes, one way everywhere: parsed from settings, and written for people.

Written sizes use IEC binary units with at most one decimal and a trailing ``.0`` dropped, the
same in the CLI, the API's messages and the page (``app.js`` implements the same rule, and a test
holds both to one table)::

    >>> format_size(10 * 1024 * 1024)
    '10 MiB'
    >>> format_size(13_215_657)
    '12.6 MiB'
    >>> parse_size("10MiB")
    10485760
"""

from __future__ import annotations

import re

_SIZE = re.compile(r"\s*(\d+)\s*([kmg]i?b?|b)?\s*", re.IGNORECASE)
_DECIMAL = {"": 1, "b": 1, "k": 1000, "m": 1000**2, "g": 1000**3}
_IEC = ("KiB", "MiB", "GiB", "TiB")


def parse_size(value: object) -> int:
    """``10485760``, ``"10MiB"``, ``"500 kB"`` -> bytes (``Ki``/``Mi``/``Gi`` are powers of 1024)."""
    if isinstance(value, int):
        return value
    match = _SIZE.fullmatch(str(value))
    if not match:
        raise ValueError(f"not a size: {value!r} (try 10MiB or 10485760)")
    number, unit = int(match[1]), (match[2] or "").lower()
    if "i" in unit:
        return number << (10 * ("kmg".index(unit[0]) + 1))
    return number * _DECIMAL[unit[:1]]


def format_size(size: int) -> str:
    """``512`` -> ``"512 bytes"``, ``199_999`` -> ``"195.3 KiB"``, ``10485760`` -> ``"10 MiB"``."""
    if size < 1024:
        return "1 byte" if size == 1 else f"{size} bytes"
    value = float(size)
    for unit in _IEC:
        value /= 1024
        if round(value, 1) < 1024 or unit == _IEC[-1]:
            break
    text = f"{value:.1f}".removesuffix(".0")
    return f"{text} {unit}"
