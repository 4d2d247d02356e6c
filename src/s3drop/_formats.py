"""The registry of image formats: one :class:`Format` per type, everything s3drop knows about it.

As Pillow registers its plugins (``register_open``, ``register_extensions``, ``register_mime`` at
the end of each ``*ImagePlugin.py``), each format is one entry here, built from its module in
:mod:`s3drop._plugins` (magic test, header reader, structure walk); everything else asks this
registry: the settings (which types may be allowed), the key scheme (a key's extension), the
verification (sniff, header size, walk, re-encode options), ``/api/config`` (each allowed type's
label and extensions, which the page, the uploader element and the CLI use instead of their own
lists), the CLI's own check of a file before it asks to sign it, and the responsive variants (which
types they may be made in, their encoder options, their letter in a key's ``.v`` segment, the order
a ``<picture>`` lists them in). Adding a format is one entry below and its plugin module.

    >>> by_type("image/jpeg").key_extension, by_type("image/jpeg").label
    ('jpg', 'JPEG')
    >>> sniff(b"\\x89PNG\\r\\n\\x1a\\n" + bytes(24)).description
    'a PNG image'

Importing this module imports neither Pillow nor pydantic (the CLI's ``upload`` sniffs with it).
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from ._containers import Layout
from ._errors import CorruptImage
from ._headers import NeedMore, describe
from ._plugins import avif, gif, heif, jpeg, png, webp


@dataclass(frozen=True)
class AsVariant:
    """How a format is made as a responsive variant (:mod:`s3drop._variants`)."""

    #: Its letter in an image key's ``.v`` segment (:mod:`s3drop._responsive`): stored keys carry
    #: it, so it never changes; unique among the variant types.
    letter: str
    #: A ``<picture>`` lists the variant types in ascending rank: the smaller files first.
    rank: int
    #: Pillow's save options for a variant, chosen by measurement (``python -m bench variants``).
    options: Mapping[str, object]


@dataclass(frozen=True)
class Format:
    """One image format and everything s3drop knows about it."""

    #: The MIME type uploads are signed for, e.g. ``image/jpeg``.
    content_type: str
    #: File extensions (no dot) that pick this type; the first is the one s3drop's keys use.
    extensions: tuple[str, ...]
    #: The short name the API reports (``format`` of an image), e.g. ``jpeg``.
    name: str
    #: What people call it, e.g. ``JPEG``.
    label: str
    #: The character that ends the ids of uploads signed for this type (``a``-``z``, ``2``-``7``,
    #: one per format, see :func:`s3drop._policy.upload_type`). Fixed forever once given: ids
    #: already signed keep naming their type whatever formats are added or reordered here, so a
    #: new format takes a mark no format has had (:data:`RETIRED_MARKS` lists removed ones).
    mark: str
    #: Whether the first bytes of a file (at least 32) are this format's.
    magic: Callable[[bytes], bool] = field(repr=False)
    #: Width and height from the first bytes; raises NeedMore or CorruptImage.
    dimensions: Callable[[bytes], tuple[int, int]] = field(repr=False)
    #: The whole structure, walked without decoding: ``walk(data, max_frames) -> Layout``.
    walk: Callable[[bytes, int], Layout] = field(repr=False)
    #: Pillow's name for it, to open and save it.
    pillow: str
    #: Pillow's save options when s3drop has to re-encode it (orientation applied, metadata items).
    save: Mapping[str, object] = field(default_factory=lambda: MappingProxyType({}))
    #: The type s3drop stores it as, when not itself (HEIC, which no browser shows, as JPEG).
    stored_as: str | None = None
    #: A check of the coded data against the header's size, before any decode (AVIF's AV1 frames
    #: must not be larger than its ``ispe``); raises CorruptImage.
    check_coded: Callable[[Layout], None] | None = field(default=None, repr=False)
    #: Formats of one family may be declared for each other: a phone's ``.heif`` is often HEVC
    #: (brand ``heic``) and browsers name it ``image/heif``; libheif reads both alike.
    family: str | None = None
    #: Whether the decoder applies or reports the orientation (AVIF's ``irot``/``imir``, which
    #: Pillow reports as an EXIF orientation) rather than the structure walk.
    decoder_orients: bool = False
    #: Set when responsive variants may be made in this format (``S3DROP_VARIANT_FORMATS``).
    variant: AsVariant | None = None

    @property
    def key_extension(self) -> str:
        return self.extensions[0]

    @property
    def description(self) -> str:
        """``a PNG image``, ``an AVIF image``."""
        return f"{'an' if self.label[0] in 'AEIOU' else 'a'} {self.label} image"

    def describe(self) -> dict[str, object]:
        """How ``/api/config`` tells a page, the uploader element or the CLI about this type:
        ``family`` lists the other types (and their extensions) a file declared as this one may
        be, so that a client can declare a HEIC as the HEIF a server takes, as the CLI does."""
        return {
            "type": self.content_type,
            "label": self.label,
            "extensions": [f".{ext}" for ext in self.extensions],
            "family": [
                {"type": other.content_type, "extensions": [f".{ext}" for ext in other.extensions]}
                for other in kin(self)
            ],
        }


#: How a HEIC or HEIF is stored: as a JPEG every browser shows, at the quality measured in
#: bench/heic.py (a 12 MP phone photo: PSNR against the decoded HEIC and bytes per quality).
_AS_JPEG = MappingProxyType({"quality": 88, "optimize": True})

#: Every format s3drop knows, by content type, in the order the magic tests are tried (AVIF
#: before HEIF: an AVIF may list the HEIF brand ``mif1`` too).
FORMATS: Mapping[str, Format] = MappingProxyType(
    {
        fmt.content_type: fmt
        for fmt in [
            Format(
                content_type="image/png",
                extensions=("png",),
                name="png",
                label="PNG",
                mark="a",
                magic=png.magic,
                dimensions=png.dimensions,
                walk=png.walk,
                pillow="PNG",
            ),
            Format(
                content_type="image/jpeg",
                extensions=("jpg", "jpeg"),
                name="jpeg",
                label="JPEG",
                mark="b",
                magic=jpeg.magic,
                dimensions=jpeg.dimensions,
                walk=jpeg.walk,
                pillow="JPEG",
            ),
            Format(
                content_type="image/gif",
                extensions=("gif",),
                name="gif",
                label="GIF",
                mark="d",
                magic=gif.magic,
                dimensions=gif.dimensions,
                walk=gif.walk,
                pillow="GIF",
            ),
            Format(
                content_type="image/webp",
                extensions=("webp",),
                name="webp",
                label="WebP",
                mark="c",
                magic=webp.magic,
                dimensions=webp.dimensions,
                walk=webp.walk,
                pillow="WEBP",
                save=MappingProxyType({"quality": 95}),
                # method 2: the encoder's fastest setting that keeps a promotion with variants
                # within 1.6x the time of one without (slower ones save ~10 % at 2-4x the time)
                variant=AsVariant(
                    "w", rank=2, options=MappingProxyType({"quality": 75, "method": 2})
                ),
            ),
            Format(
                content_type="image/avif",
                extensions=("avif",),
                name="avif",
                label="AVIF",
                mark="e",
                magic=avif.magic,
                dimensions=avif.dimensions,
                walk=avif.walk,
                pillow="AVIF",
                save=MappingProxyType({"quality": 90}),
                check_coded=avif.check_coded,
                decoder_orients=True,
                # speed 10, as WebP's method 2; not a default variant type: its encoder needs
                # ~28 MB more at 1024 pixels (bench variants)
                variant=AsVariant(
                    "a", rank=1, options=MappingProxyType({"quality": 55, "speed": 10})
                ),
            ),
            *(
                Format(
                    content_type=f"image/{name}",
                    extensions=(name,),
                    name=name,
                    label=name.upper(),
                    mark=mark,
                    magic=magic,
                    dimensions=functools.partial(heif.dimensions, name=name.upper()),
                    walk=functools.partial(heif.walk, name=name.upper()),
                    pillow="HEIF",
                    save=_AS_JPEG,
                    stored_as="image/jpeg",
                    family="heif",
                    decoder_orients=True,
                )
                for name, mark, magic in (
                    ("heic", "f", heif.magic_heic),
                    ("heif", "g", heif.magic_heif),
                )
            ),
        ]
    }
)


#: The types responsive variants may be made in, in the order a ``<picture>`` lists them.
VARIANT_TYPES: tuple[str, ...] = tuple(
    fmt.content_type
    for fmt in sorted(FORMATS.values(), key=lambda fmt: fmt.variant.rank if fmt.variant else 0)
    if fmt.variant is not None
)
_BY_LETTER = {fmt.variant.letter: fmt for fmt in FORMATS.values() if fmt.variant is not None}
if len(_BY_LETTER) != len(VARIANT_TYPES):  # pragma: no cover - a registry mistake
    raise RuntimeError("two variant types share a letter in the registry")


def by_variant_letter(letter: str) -> Format | None:
    """The variant type whose letter in a key's ``.v`` segment is ``letter``, or None."""
    return _BY_LETTER.get(letter)


#: The characters an id may end in (base32, as :func:`s3drop._policy.new_upload_id` writes ids).
MARK_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"

#: Marks of formats that were removed: never given again (none yet).
RETIRED_MARKS: frozenset[str] = frozenset()


def _check_marks(formats: Mapping[str, Format]) -> None:
    """Refuse, at import, a registry whose marks are not one distinct id character per format."""
    seen: dict[str, str] = {}
    for fmt in formats.values():
        if len(fmt.mark) != 1 or fmt.mark not in MARK_ALPHABET or fmt.mark in RETIRED_MARKS:
            raise ValueError(f"{fmt.content_type}: mark {fmt.mark!r} is not a free id character")
        if fmt.mark in seen:
            raise ValueError(f"{fmt.content_type} and {seen[fmt.mark]} share mark {fmt.mark!r}")
        seen[fmt.mark] = fmt.content_type


_check_marks(FORMATS)


def by_mark(mark: str) -> Format | None:
    """The format whose :attr:`~Format.mark` is ``mark``, or None."""
    return next((fmt for fmt in FORMATS.values() if fmt.mark == mark), None)


def by_type(content_type: str) -> Format:
    """The format of ``content_type``; KeyError for a type s3drop does not know."""
    return FORMATS[content_type]


def by_key_extension(extension: str) -> Format | None:
    """The format whose keys end in ``.extension`` (``jpg``, never ``jpeg``), or None."""
    return next((fmt for fmt in FORMATS.values() if fmt.key_extension == extension), None)


def by_name(name: str) -> Format:
    """The format whose short name is ``name`` (``jpeg``); KeyError when none is."""
    return next(fmt for fmt in FORMATS.values() if fmt.name == name)


def declared_as(fmt: Format, content_type: str) -> bool:
    """Whether a file of format ``fmt`` may have been uploaded as ``content_type``: its own type,
    or another of its family."""
    other = FORMATS.get(content_type)
    return other is fmt or (
        other is not None and fmt.family is not None and other.family == fmt.family
    )


def kin(fmt: Format) -> list[Format]:
    """The other formats of ``fmt``'s family: a file of any of them may be declared as ``fmt``."""
    return [
        other
        for other in FORMATS.values()
        if other is not fmt and fmt.family is not None and other.family == fmt.family
    ]


def type_names(types: list[str]) -> str:
    """``["image/png", "image/jpeg"]`` -> ``"PNG or JPEG"`` (an unknown type as itself)."""
    names = [FORMATS[item].label if item in FORMATS else item for item in types]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


@dataclass(frozen=True)
class Sniffed:
    """What a file's first bytes say it is: a registered format, or a description."""

    format: Format | None
    description: str

    @property
    def content_type(self) -> str | None:
        return self.format.content_type if self.format is not None else None


def sniff(head: bytes) -> Sniffed:
    """The real type of a file from its first bytes (at least 32 make a sure answer), never from
    its name or the type it was declared as."""
    for fmt in FORMATS.values():
        if fmt.magic(head):
            return Sniffed(fmt, fmt.description)
    return Sniffed(None, describe(head))


def header_size(head: bytes, content_type: str) -> tuple[int, int]:
    """Width and height from the first bytes of a file of ``content_type`` (already sniffed).

    For AVIF and HEIF, the largest ``ispe`` of any item (conservative: a grid's tiles never exceed
    it). Raises :class:`NeedMore` when ``head`` ends before the header does, :class:`CorruptImage`
    when the header is malformed.
    """
    try:
        return FORMATS[content_type].dimensions(head)
    except (struct.error, IndexError):
        raise NeedMore from None


def walk(data: bytes, content_type: str, *, max_frames: int) -> Layout:
    """Check the whole structure of ``data`` and copy it without metadata.

    Raises :class:`CorruptImage` (truncated, malformed, data after the end of the image) or
    :class:`~s3drop._errors.TooManyFrames`; the frame count is bounded, so a file of a million
    frames costs no more than one of ``max_frames + 1``.
    """
    fmt = FORMATS[content_type]
    try:
        return fmt.walk(data, max_frames)
    except (struct.error, IndexError, NeedMore) as exc:
        raise CorruptImage(f"the {fmt.label} image is truncated or malformed") from exc
