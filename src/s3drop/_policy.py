"""What may be uploaded, and the keys it is stored under.

The server decides everything a form carries: the key (never from the filename), the exact
Content-Type, ``content-length-range`` [size, size] (exactly the size the client claimed when it
asked to sign: the rate and byte limits count that size, so storage takes no other), the expiry and
the metadata. Every field the form
carries is also a condition of the policy, so storage refuses a form whose fields were changed, and
refuses any field that was added.

:func:`check_upload` decides; the signing (AWS Signature Version 4, ``AWS4-HMAC-SHA256`` POST
policies) lives with storage, in :mod:`s3drop.storage._sigv4`, and the check of a posted form as S3
makes it in :mod:`s3drop.storage.post_policy`.
"""

from __future__ import annotations

import base64
import re
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from . import _labels as labels
from ._config import Settings
from ._errors import FileEmpty, FileTooLarge, InvalidRequest, TypeNotAllowed
from ._filenames import decode_meta as decode_meta
from ._filenames import encode_meta as encode_meta
from ._filenames import inline_disposition as inline_disposition
from ._filenames import sanitize_filename as sanitize_filename
from ._formats import by_key_extension, by_mark, by_type
from ._placeholders import Placeholder
from ._units import format_size

QUARANTINE_PREFIX = "incoming/"
IMAGES_PREFIX = "images/"
THUMBS_PREFIX = "thumbs/"
OWNERS_PREFIX = "owners/"
DIGESTS_PREFIX = "digests/"

_ISO8601 = "%Y-%m-%dT%H:%M:%SZ"
_ID = re.compile(r"[0-9]{13}[a-z2-7]{10}")  # fullmatch: "$" would take a trailing newline
#: ``<id>.<width>x<height>.<bytes>[.<letter><value>...].<ext>``, the name of a promoted image
#: (see image_key); the optional segments are parsed by :data:`_SEGMENTS`.
_IMAGE_NAME = re.compile(
    r"([0-9]{13}[a-z2-7]{10})\.([1-9][0-9]{0,7})x([1-9][0-9]{0,7})\.([0-9]{1,12})"
    r"((?:\.[a-z][a-z0-9-]+)*)\.([a-z]+)"
)
#: The optional segments of an image's name, ``.<letter><value>``, in the one order they come
#: in, each at most once: what each letter's value may be.
_SEGMENTS: dict[str, re.Pattern[str]] = {
    "n": re.compile(r"[a-z2-7]{1,104}"),  # the filename label (filename_label)
    "p": re.compile(r"[a-z2-7]{8,64}"),  # the ThumbHash (Placeholder.thumbhash_label)
    "c": re.compile(r"[0-9a-f]{6}"),  # the dominant colour (Placeholder.color)
    # the responsive variants (s3drop._responsive.VariantSet.code)
    "v": re.compile(r"[a-z]{1,4}[1-9][0-9]{0,3}(?:-[1-9][0-9]{0,3}){0,15}"),
}
#: The most bytes of the original filename a key carries (as base32, so at most 104 characters).
LABEL_BYTES = 64
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Credentials:
    """An access key pair; ``token`` for temporary (STS) credentials."""

    access_key: str
    secret_key: str
    token: str | None = None


@dataclass(frozen=True)
class UploadForm:
    """Where and how the browser sends one file: the same shape for every backend.

    ``method`` POST: post ``fields`` in this order as ``multipart/form-data`` to ``url``, then the
    file last, in a field named ``file``. ``method`` PUT: send the file as the body to ``url``
    with exactly ``headers`` (the browser sets ``Content-Length`` itself); ``fields`` is empty.
    """

    id: str
    key: str
    url: str
    fields: dict[str, str]
    content_type: str
    max_bytes: int
    expires_at: datetime
    method: str = "POST"
    headers: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "key": self.key,
            "method": self.method,
            "url": self.url,
            "fields": self.fields,
            "headers": self.headers,
            "content_type": self.content_type,
            "max_bytes": self.max_bytes,
            "expires_at": self.expires_at.strftime(_ISO8601),
        }


@dataclass(frozen=True)
class UploadRequest:
    """What the server will sign for, after :func:`check_upload` accepted the client's claims."""

    id: str
    key: str
    content_type: str
    max_bytes: int
    metadata: dict[str, str] = field(default_factory=dict)
    #: The fewest bytes storage takes (``content-length-range`` is ``[min_bytes, max_bytes]``).
    min_bytes: int = 1
    #: A POST form's ``success_action_status`` (200, 201 or 204; None: storage's default, 204).
    #: 201 makes S3 answer with XML that names the ETag (Ceph RGW sends no ETag header to a POST).
    success_status: int | None = None


# --- keys -------------------------------------------------------------------------------------


def new_upload_id(now: float | None = None, *, content_type: str | None = None) -> str:
    """A fresh id that sorts newest first: 13 digits of inverted milliseconds, then 10 base32
    characters, 50 random bits; with a ``content_type``, 45 random bits and the type (its format's
    fixed :attr:`~s3drop._formats.Format.mark`, :func:`upload_type`), so completion finds the
    upload with one GET.

    Listing a prefix in key order (what S3 does) then yields the newest uploads first, so a gallery
    page costs one listing call however many images there are.
    """
    millis = int((time.time() if now is None else now) * 1000)
    inverted = 10**13 - 1 - millis
    rand = base64.b32encode(secrets.token_bytes(10)).decode().lower()[:10]
    if content_type is not None:
        rand = rand[:9] + by_type(content_type).mark
    return f"{inverted:013d}{rand}"


def upload_type(upload_id: str) -> str | None:
    """The type ``upload_id`` was signed for, as its last character says; a guess for ids made
    before ids named it (their last character is random), None when it names no type."""
    fmt = by_mark(upload_id[-1:]) if upload_id else None
    return fmt.content_type if fmt is not None else None


def is_upload_id(value: str) -> bool:
    return _ID.fullmatch(value) is not None


def id_time(upload_id: str) -> datetime:
    """When an id was made (to the millisecond)."""
    millis = 10**13 - 1 - int(upload_id[:13])
    return datetime.fromtimestamp(millis / 1000, tz=UTC)


def quarantine_key(upload_id: str, content_type: str) -> str:
    return f"{QUARANTINE_PREFIX}{upload_id}.{by_type(content_type).key_extension}"


def image_key(
    upload_id: str,
    content_type: str,
    *,
    width: int,
    height: int,
    size: int,
    filename: str | None = None,
    placeholder: Placeholder | None = None,
    variants: str | None = None,
) -> str:
    """``images/<id>.<width>x<height>.<bytes>[.n<name>][.p<thumbhash>.c<rrggbb>][.v<variants>].<ext>``:
    a promoted image's key carries the facts the gallery shows, its original filename, its
    placeholder and which responsive variants exist included, so a page of the gallery is one
    listing and no read per image.

    The name is the sanitised filename's first :data:`LABEL_BYTES` bytes in lowercase base32, the
    ThumbHash its bytes in lowercase base32, the colour six hex digits: the key holds only
    characters s3drop chose, never the user's. The id has a fixed length, so key order is still
    newest first; find an image by its id with ``list_objects(image_prefix(id), limit=1)``.
    """
    segments = ""
    if filename:
        segments += f".n{filename_label(filename)}"
    if placeholder is not None:
        segments += f".p{placeholder.thumbhash_label}.c{placeholder.color}"
    if variants:
        segments += f".v{variants}"
    extension = by_type(content_type).key_extension
    return f"{IMAGES_PREFIX}{upload_id}.{width}x{height}.{size}{segments}.{extension}"


def filename_label(filename: str) -> str:
    """A filename as key characters (``a-z2-7``): its first UTF-8 bytes, base32, no padding."""
    data = filename.encode()[:LABEL_BYTES].decode(errors="ignore").encode()  # whole characters
    return labels.encode(data)


def label_filename(label: str) -> str | None:
    """The filename a key's label stands for (None if it is not one s3drop wrote)."""
    data = labels.decode(label)
    if data is None or len(data) > LABEL_BYTES:
        return None
    try:
        return data.decode()
    except UnicodeDecodeError:
        return None


def image_prefix(upload_id: str) -> str:
    """What every key of image ``upload_id`` starts with (``images/<id>.``)."""
    return f"{IMAGES_PREFIX}{upload_id}."


@dataclass(frozen=True)
class ImageKey:
    """What a promoted image's key says (see :func:`image_key`)."""

    id: str
    width: int
    height: int
    size: int
    content_type: str
    filename: str | None = None
    placeholder: Placeholder | None = None
    #: Which responsive variants exist, as the key says it (:mod:`s3drop._responsive`); None: none.
    variants: str | None = None
    #: The name these facts were parsed from (:func:`parse_image_key`), so that :attr:`key` need
    #: not encode them again; "" for facts built by hand, and for a ``dataclasses.replace`` copy
    #: (not an init field, so a changed copy never keeps a stale name).
    name: str = field(default="", init=False, compare=False, repr=False)

    @property
    def key(self) -> str:
        if self.name:
            return IMAGES_PREFIX + self.name
        return image_key(
            self.id,
            self.content_type,
            width=self.width,
            height=self.height,
            size=self.size,
            filename=self.filename,
            placeholder=self.placeholder,
            variants=self.variants,
        )


def parse_image_key(key: str) -> ImageKey | None:
    """The facts in an image key, or in an owner's index entry for it; None for any other key."""
    name = key.rpartition("/")[2]
    match = _IMAGE_NAME.fullmatch(name)
    fmt = by_key_extension(match[6]) if match is not None else None
    if match is None or fmt is None:
        return None
    segments = _parse_segments(match[5])
    if segments is None:
        return None
    label = segments.get("n")
    filename = label_filename(label) if label else None
    if label and filename is None:
        return None  # not a label s3drop wrote
    placeholder = Placeholder.from_labels(segments.get("p"), segments.get("c"))
    if placeholder is None and ("p" in segments or "c" in segments):
        return None  # not a placeholder s3drop wrote
    facts = ImageKey(
        id=match[1],
        width=int(match[2]),
        height=int(match[3]),
        size=int(match[4]),
        content_type=fmt.content_type,
        filename=filename,
        placeholder=placeholder,
        variants=segments.get("v"),
    )
    object.__setattr__(facts, "name", name)  # frozen: set once, here
    return facts


def _parse_segments(text: str) -> dict[str, str] | None:
    """``.<letter><value>...`` as {letter: value}; None unless every letter is known, comes in
    :data:`_SEGMENTS`' order, at most once, with a value its pattern takes."""
    found: dict[str, str] = {}
    letters = list(_SEGMENTS)
    for part in text.split(".")[1:]:
        letter, value = part[0], part[1:]
        if letter not in _SEGMENTS or not _SEGMENTS[letter].fullmatch(value):
            return None
        if found and letters.index(letter) <= letters.index(next(reversed(found))):
            return None  # out of order, or twice
        found[letter] = value
    return found


def owner_prefix(owner: str) -> str:
    """``owners/<owner>/``: the index of one owner's images (the name percent-encoded into one
    path segment, so any name is safe in a key)."""
    segment = quote(owner, safe="")
    if segment.strip(".") == "":  # "", "." and ".." are not names a path may carry
        segment = "".join(f"%{byte:02X}" for byte in owner.encode()) or "%00"
    return f"{OWNERS_PREFIX}{segment}/"


def owner_key(owner: str, key: str) -> str:
    """The zero-byte entry in ``owner``'s index for the image at ``key``: the same name, under
    :func:`owner_prefix`; listing that prefix lists one owner's images, as fast as all of them."""
    return owner_prefix(owner) + key.rpartition("/")[2]


def digest_key(owner: str, sha256: str) -> str:
    """``digests/<owner>/<sha256>``: the zero-byte marker saying ``owner`` has an accepted image
    whose uploaded bytes had this SHA-256 (its ``image`` metadata names the image's key).

    Written only by the promotion, from the hash the server computed of the bytes it verified;
    one HEAD of it is how signing finds a duplicate. Outside ``owners/`` so that an owner's
    listing (the gallery) never sees it.
    """
    segment = owner_prefix(owner)[len(OWNERS_PREFIX) :]
    return f"{DIGESTS_PREFIX}{segment}{sha256.lower()}"


def thumbnail_key(upload_id: str) -> str:
    return f"{THUMBS_PREFIX}{upload_id}.webp"


# --- what the server agrees to sign -----------------------------------------------------------


def check_upload(
    settings: Settings,
    *,
    content_type: str,
    size: int,
    filename: str,
    sha256: str | None = None,
    owner: str | None = None,
    now: float | None = None,
) -> UploadRequest:
    """Refuse what the settings do not allow; otherwise decide the key, type, limit and metadata.

    Raises :class:`TypeNotAllowed`, :class:`FileTooLarge`, :class:`FileEmpty` or
    :class:`InvalidRequest`; nothing is signed then.

    The form takes exactly ``size`` bytes, no tolerance: the page (``File.size``) and the CLI
    (``stat``) know the exact size before they ask, multipart carries the file unchanged, and the
    limits count the claimed size, so any slack would be bytes nobody counted.
    """
    content_type = content_type.strip().lower()
    if content_type not in settings.allowed_types:
        allowed = ", ".join(settings.allowed_types)
        raise TypeNotAllowed(f"{content_type or 'no type'} is not allowed; allowed: {allowed}")
    if size < 1:
        raise FileEmpty("the file is empty")
    if size > settings.max_bytes:
        raise FileTooLarge(
            f"the file is {format_size(size)}; the limit is {format_size(settings.max_bytes)}"
        )
    metadata = {"filename": encode_meta(sanitize_filename(filename))}
    if sha256 is not None:
        sha256 = sha256.strip().lower()
        if not _SHA256.fullmatch(sha256):
            raise InvalidRequest("sha256 must be 64 hexadecimal characters")
        metadata["sha256"] = sha256
    if owner is not None:
        metadata["owner"] = encode_meta(owner)
    upload_id = new_upload_id(now, content_type=content_type)
    return UploadRequest(
        id=upload_id,
        key=quarantine_key(upload_id, content_type),
        content_type=content_type,
        max_bytes=size,
        metadata=metadata,
        min_bytes=size,
    )
