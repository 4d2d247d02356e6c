"""The byte structure of each image format, walked whole without decoding a pixel.

:func:`walk` finds where the image ends, how many frames it has and its EXIF orientation, and makes
a copy without metadata by dropping chunks, never by re-encoding (the first bytes alone are judged
earlier, by :mod:`s3drop.headers`):

====== ==========================================================================================
PNG    chunks kept from an allow-list (critical, colour, transparency, APNG), each only at its
       standard size (``gAMA`` 4 bytes, ``pHYs`` 9, ...); ``tEXt``, ``zTXt``, ``iTXt``, ``eXIf``,
       ``tIME`` and private chunks dropped; every CRC checked
JPEG   ``APP1`` (EXIF, XMP), ``APP13`` (IPTC), ``COM``, ``MPF`` and every other ``APPn`` dropped;
       ``APP0`` JFIF (its 14 standard bytes, no thumbnail), ``APP2`` ICC profile and ``APP14``
       Adobe (its 12 standard bytes) kept
GIF    comments, plain text and application extensions other than looping and ICC dropped; the
       kept ones rewritten at their standard sizes
WebP   ``EXIF`` and ``XMP`` chunks dropped and their flags cleared in ``VP8X``
AVIF   no lossless strip: an AVIF with EXIF or XMP items is re-encoded by :mod:`s3drop.images`
====== ==========================================================================================

What is kept is rewritten at its standard length, so nothing rides along in a kept segment's tail;
an ICC profile is kept only when it is sound (:func:`icc_profile`: its declared size is its size, it
has the ``acsp`` signature and a tag table that fits), with its reserved bytes and the bytes no tag
points at zeroed, and is otherwise dropped. Every walk is bounded by the caps of
:mod:`s3drop.headers` (:class:`~s3drop.errors.TooComplex`).

Data after the end of the image (a file hidden behind a picture, or an HTML page appended to make a
polyglot) is refused, except after a JPEG: there it is how phones store gain maps (Ultra HDR), motion
photos and previews (MPF), so the copy simply ends at the image's ``EOI`` and nothing behind it is
ever stored.
"""

from __future__ import annotations

import re
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass

from .errors import CorruptImage, TooComplex, TooManyFrames
from .headers import (
    FORMAT_NAMES,
    FORMATS,
    MAX_SCANS,
    SOF_MARKERS,
    NeedMore,
    avif_size,
    iso_boxes,
    iso_tree,
    jpeg_segment,
    max_parts,
    too_complex,
    webp_size,
)


@dataclass(frozen=True)
class Layout:
    """One image file, walked: its size, frames, orientation, and a copy without metadata."""

    width: int
    height: int
    frames: int
    orientation: int
    stripped: bytes
    #: True when no lossless strip exists for what the file carries (AVIF with EXIF/XMP items).
    needs_reencode: bool = False


# --- walking the whole file -------------------------------------------------------------------


def walk(data: bytes, content_type: str, *, max_frames: int) -> Layout:
    """Check the whole structure of ``data`` and copy it without metadata.

    Raises :class:`CorruptImage` (truncated, malformed, data after the end of the image) or
    :class:`TooManyFrames`; the frame count is bounded, so a file of a million frames costs no more
    than one of ``max_frames + 1``.
    """
    walker: Callable[[bytes, int], Layout] = _WALKERS[FORMATS[content_type]]
    try:
        return walker(data, max_frames)
    except (struct.error, IndexError, NeedMore) as exc:
        name = FORMAT_NAMES[FORMATS[content_type]]
        raise CorruptImage(f"the {name} image is truncated or malformed") from exc


def _check_frames(frames: int, max_frames: int) -> None:
    if frames > max_frames:
        raise TooManyFrames(
            f"the animation has more than {max_frames} frames; the limit is {max_frames}"
        )


def _trailing(name: str, extra: int) -> CorruptImage:
    return CorruptImage(
        f"{extra} bytes of other data follow the end of the {name} image; a file hidden behind a "
        "picture is not accepted"
    )


# PNG

_PNG_KEEP = {
    b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"cHRM", b"gAMA", b"iCCP", b"sBIT", b"sRGB",
    b"cICP", b"mDCV", b"mDCv", b"cLLI", b"cLLi", b"bKGD", b"pHYs", b"acTL", b"fcTL", b"fdAT",
}  # fmt: skip
#: The one size the PNG specification (3rd edition) allows for each fixed-size chunk.
_PNG_SIZE = {
    b"IEND": 0, b"acTL": 8, b"fcTL": 26, b"gAMA": 4, b"pHYs": 9, b"sRGB": 1, b"cHRM": 32,
    b"cICP": 4, b"mDCV": 24, b"mDCv": 24, b"cLLI": 8, b"cLLi": 8,
}  # fmt: skip
#: Chunks whose size depends on the colour type (IHDR's byte 9): {chunk: {colour type: size}}.
_PNG_SIZE_BY_COLOUR = {
    b"sBIT": {0: 1, 2: 3, 3: 3, 4: 2, 6: 4},
    b"bKGD": {0: 2, 2: 6, 3: 1, 4: 2, 6: 6},
    b"tRNS": {0: 2, 2: 6},  # colour type 3: one byte per palette entry, at most 256
}
#: Chunks whose wrong size makes the image (or its animation) another one: refused, not dropped.
_PNG_STRUCTURAL = {b"IEND", b"acTL", b"fcTL"}
#: The largest ICC profile s3drop keeps (libpng's default limit on a decompressed chunk is 8 MB).
MAX_ICC_BYTES = 4 * 1024 * 1024


def _png_chunk_fits(kind: bytes, length: int, colour: int, palette: int) -> bool:
    """Whether a kept chunk has the size the specification gives it."""
    if kind in _PNG_SIZE:
        return length == _PNG_SIZE[kind]
    if kind == b"tRNS" and colour == 3:
        return 1 <= length <= palette
    if kind in _PNG_SIZE_BY_COLOUR:
        return _PNG_SIZE_BY_COLOUR[kind].get(colour) == length
    return True


def _png_iccp(payload: bytes) -> bytes | None:
    """An ``iCCP`` chunk's payload when its profile is sound (:func:`icc_profile`), else None."""
    name_end = payload.find(b"\0", 0, 80)
    if name_end < 1 or payload[name_end + 1 : name_end + 2] != b"\0":  # compression method 0
        return None
    name = payload[:name_end]
    if any(byte < 32 or 126 < byte < 161 for byte in name):
        return None
    inflate = zlib.decompressobj()
    try:
        profile = inflate.decompress(payload[name_end + 2 :], MAX_ICC_BYTES + 1)
    except zlib.error:
        return None
    if not inflate.eof or inflate.unused_data or inflate.unconsumed_tail:
        return None
    clean = icc_profile(profile)
    if clean is None:
        return None
    if clean == profile:
        return payload
    return name + b"\0\0" + zlib.compress(clean)


def _walk_png(data: bytes, max_frames: int) -> Layout:
    view = memoryview(data)
    keep: list[bytes | memoryview] = [view[:8]]
    pos = 8
    width = height = 0
    frames = 1
    fctl = 0
    orientation = 1
    chunks = 0
    colour = palette = 0
    changed = False
    cap = max_parts(len(data))
    while True:
        chunks += 1
        if chunks > cap:
            raise too_complex("PNG", "chunks", cap)
        if pos + 12 > len(data):
            raise CorruptImage("the PNG image is truncated: it ends before its end chunk (IEND)")
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        end = pos + 12 + length
        if end > len(data):
            raise CorruptImage(
                f"the PNG image is truncated: its {kind.decode('latin-1')!r} chunk is cut off"
            )
        crc = int.from_bytes(data[end - 4 : end], "big")
        if zlib.crc32(view[pos + 4 : end - 4]) != crc:
            raise CorruptImage(
                f"the PNG image is corrupt: the checksum of its {kind.decode('latin-1')!r} chunk "
                "is wrong"
            )
        if pos == 8:
            if kind != b"IHDR" or length != 13:
                raise CorruptImage("the PNG image is corrupt: it does not start with IHDR")
            width, height = struct.unpack(">II", data[16:24])
            colour = data[25]
        if kind == b"PLTE":
            if length % 3 or not 3 <= length <= 768:
                raise CorruptImage(f"the PNG image is corrupt: its palette is {length} bytes")
            palette = length // 3
        part: bytes | memoryview | None = view[pos:end]
        if kind not in _PNG_KEEP:
            if not kind[0] & 0x20:  # an unknown critical chunk: no decoder may ignore it
                raise CorruptImage(f"the PNG image has an unknown critical chunk {kind!r}")
            part = None
        elif not _png_chunk_fits(kind, length, colour, palette):
            if kind in _PNG_STRUCTURAL:
                raise CorruptImage(
                    f"the PNG image is corrupt: its {kind.decode('latin-1')!r} chunk is "
                    f"{length} bytes, not {_PNG_SIZE[kind]}"
                )
            part = None  # an ancillary chunk of another size than its own: dropped
        elif kind == b"acTL":
            frames = int.from_bytes(data[pos + 8 : pos + 12], "big")
            _check_frames(frames, max_frames)
        elif kind == b"fcTL":
            fctl += 1
            _check_frames(fctl, max_frames)
        elif kind == b"iCCP":
            payload = data[pos + 8 : end - 4]
            clean = _png_iccp(payload)
            if clean != payload:
                part = None if clean is None else _png_chunk(b"iCCP", clean)
        if kind == b"eXIf":
            orientation = exif_orientation(data[pos + 8 : end - 4])
        if part is not None:
            keep.append(part)
        changed = changed or part is None or isinstance(part, bytes)
        pos = end
        if kind == b"IEND":
            break
    if pos != len(data):
        raise _trailing("PNG", len(data) - pos)
    # Nothing dropped or rewritten (the usual case): the bytes themselves, not a copy of them.
    stripped = b"".join(keep) if changed else data
    return Layout(width, height, frames, orientation, stripped)


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload)
    return len(payload).to_bytes(4, "big") + kind + payload + crc.to_bytes(4, "big")


# JPEG

#: A marker after entropy-coded data: 0xFF followed by neither a stuffed zero, a restart marker nor
#: a fill byte (``end() - 2`` is then the marker's 0xFF). A pattern that starts with one literal byte
#: lets the regex engine skip ahead by memchr; ``\xff+`` would backtrack at every 0xFF (30x slower).
_SCAN_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")


def _jfif(body: bytes) -> bytes | None:
    """A JFIF ``APP0`` at its standard 16 bytes: version, units, densities, and no thumbnail."""
    if len(body) < 14:
        return None
    return b"\xff\xe0\x00\x10" + body[:12] + b"\x00\x00"


def _adobe(body: bytes) -> bytes | None:
    """An Adobe ``APP14`` at its standard 14 bytes. libjpeg reads only its colour transform (and
    ignores a shorter one); version and flags are written as libjpeg writes them."""
    if len(body) < 12:
        return None
    return b"\xff\xee\x00\x0eAdobe\x00\x64\x00\x00\x00\x00" + body[11:12]


#: An ``APP2`` holds at most this many bytes of an ICC profile (65,535 minus the length field and
#: the 14-byte ``ICC_PROFILE\0`` header with its sequence number and count).
_ICC_CHUNK = 65519


def _jpeg_icc(chunks: list[bytes]) -> bytes:
    """The ``APP2`` segments of the ICC profile split over ``chunks`` (each an ``APP2`` payload
    after ``ICC_PROFILE\0``), rewritten; nothing when they do not make one sound profile."""
    count = chunks[0][1] if chunks[0][1:2] else 0
    order = sorted(chunks, key=lambda chunk: chunk[:1])
    if not 1 <= count == len(chunks) or [c[:2] for c in order] != [
        bytes([seq, count]) for seq in range(1, count + 1)
    ]:
        return b""
    profile = icc_profile(b"".join(chunk[2:] for chunk in order))
    if profile is None:
        return b""
    parts = [profile[at : at + _ICC_CHUNK] for at in range(0, len(profile), _ICC_CHUNK)]
    if len(parts) > 255:
        return b""
    return b"".join(
        b"\xff\xe2"
        + (16 + len(part)).to_bytes(2, "big")
        + b"ICC_PROFILE\0"
        + bytes([seq, len(parts)])
        + part
        for seq, part in enumerate(parts, 1)
    )


def _walk_jpeg(data: bytes, max_frames: int) -> Layout:
    view = memoryview(data)
    keep: list[bytes | memoryview] = [view[:2]]
    pos = 2
    width = height = 0
    orientation = 1
    scans = segments = 0
    cap = max_parts(len(data))
    icc: list[bytes] = []
    icc_at = -1
    while True:
        segments += 1
        if segments > cap:
            raise too_complex("JPEG", "segments", cap)
        marker, pos, end = jpeg_segment(data, pos)
        if marker == 0xD9:
            keep.append(view[pos:end])
            break
        if 0xE0 <= marker <= 0xEF or marker == 0xFE:
            body = data[pos + 4 : end]
            if marker == 0xE1 and body.startswith(b"Exif\x00\x00"):
                orientation = exif_orientation(body[6:])
            elif marker == 0xE0 and body.startswith(b"JFIF\x00") and (jfif := _jfif(body)):
                keep.append(jfif)
            elif marker == 0xEE and body.startswith(b"Adobe") and (adobe := _adobe(body)):
                keep.append(adobe)
            elif marker == 0xE2 and body.startswith(b"ICC_PROFILE\x00"):
                if icc_at < 0:
                    icc_at = len(keep)
                icc.append(body[12:])
        else:
            keep.append(view[pos:end])
        if marker in SOF_MARKERS:
            height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
            if height == 0:
                raise CorruptImage("the JPEG image declares its height later (DNL): not supported")
        if marker == 0xDA:
            scans += 1
            if scans > MAX_SCANS:
                raise TooComplex(
                    f"the JPEG image has more than {MAX_SCANS} progressive scans; encoders write "
                    "at most a few dozen, and each one costs a pass over the whole image, so it "
                    "is refused before decoding"
                )
            found = _SCAN_MARKER.search(data, end)
            if found is None:
                raise CorruptImage("the JPEG image is truncated: its last scan is cut off")
            next_marker = found.end() - 2
            keep.append(view[end:next_marker])
            end = next_marker
        pos = end
    if not width:
        raise CorruptImage("the JPEG image is corrupt: it has no frame header (SOF)")
    if icc:
        keep.insert(icc_at, _jpeg_icc(icc))
    return Layout(width, height, 1, orientation, b"".join(keep))


# GIF

_LOOPING = {b"NETSCAPE2.0", b"ANIMEXTS1.0"}


class _GifWalk:
    """A GIF's data sub-blocks, counted against :func:`max_parts` (each costs a Python step; a real
    encoder fills them to 255 bytes, a flood of 1-byte ones would take seconds)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.steps = 0
        self.cap = max_parts(len(data)) + len(data) // 128

    def sub_blocks(self, pos: int) -> int:
        """The end of the data sub-blocks starting at ``pos``."""
        data = self.data
        while True:
            self.steps += 1
            if self.steps > self.cap:
                raise too_complex("GIF", "blocks", self.cap)
            size = data[pos]
            pos += 1 + size
            if size == 0:
                if pos > len(data):
                    raise IndexError
                return pos

    def payload(self, pos: int, end: int) -> bytes:
        """The data of the sub-blocks from ``pos`` to ``end`` (their terminator), joined."""
        parts = []
        while pos < end - 1:
            size = self.data[pos]
            parts.append(self.data[pos + 1 : pos + 1 + size])
            pos += 1 + size
        return b"".join(parts)


def _gif_extension(walk: _GifWalk, pos: int, end: int) -> bytes | None:
    """A kept extension at its standard size, or None: graphic control (delay, disposal,
    transparency), looping, ICC profile (sound ones only)."""
    data = walk.data
    label = data[pos + 1]
    if label == 0xF9:
        return bytes(data[pos : pos + 7]) + b"\x00" if data[pos + 2] == 4 else None
    if label != 0xFF or data[pos + 2] != 11:
        return None
    app = bytes(data[pos + 3 : pos + 14])
    payload = walk.payload(pos + 14, end)
    if app in _LOOPING and len(payload) >= 3 and payload[0] == 1:
        return b"\x21\xff\x0b" + app + b"\x03" + payload[:3] + b"\x00"
    if app == b"ICCRGBG1012" and (profile := icc_profile(payload)) is not None:
        blocks = [profile[at : at + 255] for at in range(0, len(profile), 255)]
        return b"\x21\xff\x0b" + app + b"".join(bytes([len(b)]) + b for b in blocks) + b"\x00"
    return None


def _walk_gif(data: bytes, max_frames: int) -> Layout:
    view = memoryview(data)
    width, height, flags = struct.unpack("<HHB", data[6:11])
    pos = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
    keep: list[bytes | memoryview] = [view[:pos]]
    frames = 0
    walk = _GifWalk(data)
    while True:
        if pos >= len(data):
            raise CorruptImage("the GIF image is truncated: it ends before its trailer")
        block = data[pos]
        if block == 0x3B:
            keep.append(view[pos : pos + 1])
            pos += 1
            break
        if block == 0x2C:
            frames += 1
            _check_frames(frames, max_frames)
            left, top, w, h, local = struct.unpack("<HHHHB", data[pos + 1 : pos + 10])
            width, height = max(width, left + w), max(height, top + h)
            end = pos + 10 + (3 << ((local & 7) + 1) if local & 0x80 else 0)
            end = walk.sub_blocks(end + 1)  # after the LZW minimum code size
            keep.append(view[pos:end])
        elif block == 0x21:
            end = walk.sub_blocks(pos + 2)
            extension = _gif_extension(walk, pos, end)
            if extension is not None:
                keep.append(extension)
        else:
            raise CorruptImage(f"the GIF image is corrupt: unknown block 0x{block:02x}")
        pos = end
    if frames == 0:
        raise CorruptImage("the GIF image has no frames")
    if pos != len(data):
        raise _trailing("GIF", len(data) - pos)
    return Layout(width, height, frames, 1, b"".join(keep))


# WebP


#: The WebP chunks a decoder reads (besides EXIF and XMP, which go); any other chunk is dropped.
_WEBP_KEEP = {b"VP8X", b"ICCP", b"ANIM", b"ANMF", b"ALPH", b"VP8 ", b"VP8L"}
#: The payload size of the fixed-size ones.
_WEBP_SIZE = {b"VP8X": 10, b"ANIM": 6}


def _walk_webp(data: bytes, max_frames: int) -> Layout:
    riff_end = 8 + int.from_bytes(data[4:8], "little")
    if riff_end > len(data):
        raise CorruptImage("the WebP image is truncated: it is shorter than its RIFF header says")
    if riff_end < len(data):
        raise _trailing("WebP", len(data) - riff_end)
    width, height = webp_size(data[:30])
    chunks: list[bytes | memoryview] = []
    view = memoryview(data)
    pos = 12
    frames = count = 0
    vp8x = -1
    icc = False
    cap = max_parts(len(data))
    while pos < riff_end:
        count += 1
        if count > cap:
            raise too_complex("WebP", "chunks", cap)
        kind = data[pos : pos + 4]
        size = int.from_bytes(data[pos + 4 : pos + 8], "little")
        end = pos + 8 + size + (size & 1)
        if end > riff_end:
            raise CorruptImage(f"the WebP image is truncated: its {kind!r} chunk is cut off")
        if kind == b"ANMF":
            frames += 1
            _check_frames(frames, max_frames)
            if size < 16:
                raise CorruptImage("the WebP image is corrupt: an animation frame is too short")
            frame, count = _webp_frame(data, pos + 8, pos + 8 + size, count, cap)
            chunks.append(_riff_chunk(kind, frame))
        elif kind in _WEBP_SIZE:
            if size < _WEBP_SIZE[kind]:
                raise CorruptImage(f"the WebP image is corrupt: its {kind!r} chunk is too short")
            if kind == b"VP8X":
                vp8x = len(chunks)
            payload = data[pos + 8 : pos + 8 + _WEBP_SIZE[kind]]
            chunks.append(kind + len(payload).to_bytes(4, "little") + payload)
        elif kind == b"ICCP":
            profile = data[pos + 8 : pos + 8 + size]
            clean = icc_profile(profile)
            if clean is not None:
                icc = True
                chunks.append(
                    _riff_kept(data, view, pos, size)
                    if clean is profile
                    else _riff_chunk(kind, clean)
                )
        elif kind in _WEBP_KEEP:
            chunks.append(_riff_kept(data, view, pos, size))
        pos = end
    if vp8x >= 0:
        header = bytes(chunks[vp8x])
        flags = header[8] & ~0x2C | (0x20 if icc else 0)  # EXIF, XMP gone; ICC as kept
        chunks[vp8x] = header[:8] + bytes([flags]) + header[9:]
    body = b"".join(chunks)
    header = b"RIFF" + (len(body) + 4).to_bytes(4, "little") + b"WEBP"
    # WebP's EXIF orientation is not applied by browsers: the image stays as they showed it.
    return Layout(width, height, max(frames, 1), 1, header + body)


def _webp_frame(data: bytes, start: int, end: int, count: int, cap: int) -> tuple[bytes, int]:
    """An ``ANMF`` payload with only the image chunks it may hold (``ALPH``, ``VP8 ``, ``VP8L``),
    and the count of chunks walked so far."""
    view = memoryview(data)
    kept: list[bytes | memoryview] = [view[start : start + 16]]
    pos = start + 16
    while pos < end:
        count += 1
        if count > cap:
            raise too_complex("WebP", "chunks", cap)
        kind = data[pos : pos + 4]
        size = int.from_bytes(data[pos + 4 : pos + 8], "little")
        chunk_end = pos + 8 + size + (size & 1)
        if chunk_end > end:
            raise CorruptImage(f"the WebP image is corrupt: its {kind!r} chunk overflows its frame")
        if kind in (b"ALPH", b"VP8 ", b"VP8L"):
            kept.append(_riff_kept(data, view, pos, size))
        pos = chunk_end
    return b"".join(kept), count


def _riff_kept(data: bytes, view: memoryview, pos: int, size: int) -> bytes | memoryview:
    """A chunk kept as it is, but for a padding byte that is not zero."""
    end = pos + 8 + size
    if size & 1 and data[end]:
        return _riff_chunk(data[pos : pos + 4], data[pos + 8 : end])
    return view[pos : end + (size & 1)]


def _riff_chunk(kind: bytes, payload: bytes) -> bytes:
    return kind + len(payload).to_bytes(4, "little") + payload + b"\x00" * (len(payload) & 1)


# AVIF

#: Boxes an AVIF's structure walk looks inside: how many bytes of their payload come first.
_AVIF_CONTAINERS = {
    b"meta": 4, b"iprp": 0, b"ipco": 0, b"dinf": 0, b"grpl": 0,
    b"moov": 0, b"trak": 0, b"edts": 0, b"mdia": 0, b"minf": 0, b"stbl": 0,
}  # fmt: skip


#: The top-level boxes an AVIF decoder reads; any other one is blanked.
_AVIF_TOP = {b"ftyp", b"meta", b"mdat", b"moov"}


def _walk_avif(data: bytes, max_frames: int) -> Layout:
    boxes = iso_boxes(data, 0, len(data), need_more=False)
    if not boxes or boxes[0][0] != b"ftyp":
        raise CorruptImage("the AVIF image is corrupt: it does not start with ftyp")
    if boxes[-1][2] > len(data):
        raise CorruptImage("the AVIF image is truncated: its last box is cut off")
    metadata = False
    blanked: bytearray | None = None
    box_start = 0
    for kind, start, end in boxes:
        if kind in _AVIF_CONTAINERS:  # every box inside is whole, nested at most so deep
            iso_tree(data, start + _AVIF_CONTAINERS[kind], end, descend=_AVIF_CONTAINERS)
        if kind == b"meta":
            metadata = _avif_has_metadata(data, start + 4, end)
        elif kind not in _AVIF_TOP and data.count(0, start, end) != end - start:
            # A box no decoder reads (free, skip, anything unknown): blanked into an empty 'free'
            # box of the same size, so every offset into the file stays right.
            if blanked is None:
                blanked = bytearray(data)
            blanked[box_start + 4 : box_start + 8] = b"free"
            blanked[start:end] = bytes(end - start)
        box_start = end
    width, height = avif_size(data)
    stripped = data if blanked is None else bytes(blanked)
    return Layout(width, height, 1, 1, stripped, needs_reencode=metadata)


def _avif_has_metadata(data: bytes, start: int, end: int) -> bool:
    """Whether the meta box lists an EXIF or XMP item."""
    for kind, inner, box_end in iso_boxes(data, start, end, need_more=False):
        if kind != b"iinf":
            continue
        version = data[inner]
        pos = inner + 4 + (2 if version == 0 else 4)
        for entry, entry_start, _ in iso_boxes(data, pos, box_end, need_more=False):
            if entry == b"infe" and data[entry_start] >= 2:
                id_size = 2 if data[entry_start] == 2 else 4
                item_type = data[entry_start + 4 + id_size + 2 : entry_start + 8 + id_size + 2]
                if item_type in (b"Exif", b"mime"):
                    return True
    return False


_WALKERS: dict[str, Callable[[bytes, int], Layout]] = {
    "png": _walk_png,
    "jpeg": _walk_jpeg,
    "gif": _walk_gif,
    "webp": _walk_webp,
    "avif": _walk_avif,
}


# --- ICC profiles ------------------------------------------------------------------------------

#: The most tags an ICC profile may list (a v4 display profile has about 10, a printer's 40).
MAX_ICC_TAGS = 200


def icc_profile(profile: bytes) -> bytes | None:
    """``profile`` if it is a sound ICC profile, else None.

    Sound: at most :data:`MAX_ICC_BYTES`, its declared size is its size, ``acsp`` at byte 36, 1 to
    :data:`MAX_ICC_TAGS` tags whose table and data lie inside it. What is returned has the header's
    reserved bytes (100 to 127) and every byte no tag points at zeroed, so nothing can hide there
    (and then no profile ID, which would no longer match).
    """
    size = len(profile)
    if not 132 <= size <= MAX_ICC_BYTES or int.from_bytes(profile[:4], "big") != size:
        return None
    count = int.from_bytes(profile[128:132], "big")
    table_end = 132 + 12 * count
    if profile[36:40] != b"acsp" or not 1 <= count <= MAX_ICC_TAGS or table_end > size:
        return None
    clean = bytearray(size)
    clean[:100] = profile[:100]
    clean[128:table_end] = profile[128:table_end]
    for entry in range(132, table_end, 12):
        offset = int.from_bytes(profile[entry + 4 : entry + 8], "big")
        length = int.from_bytes(profile[entry + 8 : entry + 12], "big")
        if offset < table_end or offset + length > size:
            return None
        clean[offset : offset + length] = profile[offset : offset + length]
    if clean == profile:
        return profile
    clean[84:100] = bytes(16)
    return bytes(clean)


# --- EXIF -------------------------------------------------------------------------------------


def exif_orientation(tiff: bytes) -> int:
    """The Orientation tag (1 to 8) of a TIFF-structured EXIF block; 1 when absent or malformed."""
    try:
        order = {b"II": "<", b"MM": ">"}[tiff[:2]]
        (ifd,) = struct.unpack(order + "I", tiff[4:8])
        (count,) = struct.unpack(order + "H", tiff[ifd : ifd + 2])
        for index in range(count):
            entry = ifd + 2 + 12 * index
            tag, kind = struct.unpack(order + "HH", tiff[entry : entry + 4])
            if tag == 0x0112 and kind == 3:
                (value,) = struct.unpack(order + "H", tiff[entry + 8 : entry + 10])
                return value if 1 <= value <= 8 else 1
    except (KeyError, struct.error):
        pass
    return 1
