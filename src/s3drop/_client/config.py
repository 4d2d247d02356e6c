"""What the server takes (``GET /api/config``) and a file's check against it before a byte is sent:
empty, too large, or not an image type the server takes, judged by its first bytes with the same
registry the server sniffs with (:mod:`s3drop._formats`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._errors import FileEmpty, FileTooLarge, TypeNotAllowed
from .._formats import by_type, declared_as, sniff
from .._units import format_size

#: How many first bytes of a file the client sniffs (an AVIF's or HEIF's brands may come late in
#: its ``ftyp`` box; the server sniffs the same way, with the same registry).
SNIFF_BYTES = 4096


def sniff_type(head: bytes) -> str | None:
    """The image type the first bytes of a file announce (:func:`s3drop._formats.sniff`, as the
    server judges them), or None."""
    return sniff(head).content_type


@dataclass(frozen=True)
class ServerConfig:
    """What the server allows (``GET /api/config``), with its labels for the types."""

    allowed_types: list[str]
    max_bytes: int
    backend: str
    #: The server's label for each allowed type (``{"image/jpeg": "JPEG"}``).
    labels: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ServerConfig:
        """The config from ``/api/config``'s JSON."""
        return cls(
            allowed_types=list(data["allowed_types"]),
            max_bytes=int(data["max_bytes"]),
            backend=str(data.get("backend", "")),
            labels={
                str(entry["type"]): str(entry["label"])
                for entry in data.get("types", [])
                if isinstance(entry, dict) and "type" in entry and "label" in entry
            },
        )

    def type_names(self, types: list[str]) -> str:
        """``["image/png", "image/jpeg"]`` -> ``"PNG or JPEG"``, in the server's words (a type the
        server did not label: its own name)."""
        names = [self.labels.get(item, item) for item in types]
        return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def check_file(path: str | Path, config: ServerConfig) -> tuple[str, int]:
    """``(content_type, size)`` of a file the server would sign, or the refusal it would give.

    The type is the one the file is declared as: its own, or another of its family the server
    takes (a HEIC as HEIF). Reads the file's first :data:`SNIFF_BYTES`, nothing more.
    """
    path = Path(path)
    size = path.stat().st_size
    if size == 0:
        raise FileEmpty(f"{path.name} is empty")
    if size > config.max_bytes:
        raise FileTooLarge(
            f"{path.name} is {format_size(size)}; the server takes at most "
            f"{format_size(config.max_bytes)}"
        )
    with path.open("rb") as file:
        content_type = sniff_type(file.read(SNIFF_BYTES))
    allowed = config.type_names(config.allowed_types)
    if content_type is None:
        raise TypeNotAllowed(f"{path.name} is not an image the server takes ({allowed})")
    # Declared as its own type, or as another of its family the server takes (a HEIC as HEIF).
    fmt = by_type(content_type)
    declared = next(
        (t for t in [content_type, *config.allowed_types] if t in config.allowed_types
         and declared_as(fmt, t)),
        None,
    )  # fmt: skip
    if declared is None:
        raise TypeNotAllowed(f"{path.name} is {fmt.label}; the server takes {allowed}")
    return declared, size
