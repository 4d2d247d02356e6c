"""The frame size an AVIF's AV1 data really has, from its sequence headers.

An AVIF states its size twice: the ``ispe`` property (what :mod:`s3drop._headers` reads, what
Pillow reports, what the pixel cap judges) and the AV1 sequence header inside the coded data (what
the decoder allocates for). libavif decodes the coded size and crops to ``ispe`` without a word, so
a file that says 100 x 100 over a 16384 x 16384 frame passes every check on the stated size and
costs a gigabyte to decode. :func:`coded_sizes` reads the coded sizes, so
:mod:`s3drop._images` can refuse a file whose two sizes disagree before decoding it.

A sequence header is found in each ``av1C`` box's configOBUs (where libavif and every common
encoder put it), else at the start of the ``mdat`` data.
"""

from __future__ import annotations

import struct

_OBU_SEQUENCE_HEADER = 1


class _Bits:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def read(self, count: int) -> int:
        value = 0
        for _ in range(count):
            byte = self.data[self.pos >> 3]
            value = (value << 1) | ((byte >> (7 - (self.pos & 7))) & 1)
            self.pos += 1
        return value

    def uvlc(self) -> int:
        zeros = 0
        while not self.read(1):
            zeros += 1
            if zeros >= 32:
                raise ValueError("uvlc too long")
        return self.read(zeros) + (1 << zeros) - 1 if zeros else 0


def _sequence_header_size(payload: bytes) -> tuple[int, int]:
    """(max_frame_width, max_frame_height) of a sequence header OBU's payload (AV1 spec 5.5)."""
    bits = _Bits(payload)
    bits.read(3)  # seq_profile
    bits.read(1)  # still_picture
    reduced = bits.read(1)
    if reduced:
        bits.read(5)  # seq_level_idx[0]
    else:
        timing_info = bits.read(1)
        decoder_model_info = 0
        buffer_delay_length = 0
        if timing_info:
            bits.read(32)  # num_units_in_display_tick
            bits.read(32)  # time_scale
            if bits.read(1):  # equal_picture_interval
                bits.uvlc()
            decoder_model_info = bits.read(1)
            if decoder_model_info:
                buffer_delay_length = bits.read(5) + 1
                bits.read(32)  # num_units_in_decoding_tick
                bits.read(5)  # buffer_removal_time_length_minus_1
                bits.read(5)  # frame_presentation_time_length_minus_1
        initial_display_delay = bits.read(1)
        for _ in range(bits.read(5) + 1):  # operating points
            bits.read(12)  # operating_point_idc
            if bits.read(5) > 7:  # seq_level_idx
                bits.read(1)  # seq_tier
            if decoder_model_info and bits.read(1):  # decoder_model_present_for_this_op
                bits.read(buffer_delay_length)  # decoder_buffer_delay
                bits.read(buffer_delay_length)  # encoder_buffer_delay
                bits.read(1)  # low_delay_mode_flag
            if initial_display_delay and bits.read(1):
                bits.read(4)
    width_bits = bits.read(4) + 1
    height_bits = bits.read(4) + 1
    return bits.read(width_bits) + 1, bits.read(height_bits) + 1


def _leb128(data: bytes, pos: int) -> tuple[int, int]:
    value = 0
    for index in range(8):
        byte = data[pos + index]
        value |= (byte & 0x7F) << (7 * index)
        if not byte & 0x80:
            return value, pos + index + 1
    raise ValueError("leb128 too long")


def _obu_sizes(data: bytes, limit: int = 16) -> list[tuple[int, int]]:
    """The sizes of the sequence headers among the first ``limit`` OBUs of ``data``."""
    found: list[tuple[int, int]] = []
    pos = 0
    for _ in range(limit):
        if pos >= len(data):
            break
        header = data[pos]
        kind = (header >> 3) & 0x0F
        pos += 2 if header & 0x04 else 1  # the extension byte
        if header & 0x02:  # obu_has_size_field
            size, pos = _leb128(data, pos)
        else:
            size = len(data) - pos
        if kind == _OBU_SEQUENCE_HEADER:
            found.append(_sequence_header_size(data[pos : pos + size]))
        pos += size
    return found


def _boxes(data: bytes, start: int, end: int) -> list[tuple[bytes, int, int]]:
    """(type, payload start, payload end) of the boxes in ``data[start:end]``."""
    boxes: list[tuple[bytes, int, int]] = []
    pos = start
    while pos + 8 <= end and len(boxes) < 4096:
        size, kind = struct.unpack(">I4s", data[pos : pos + 8])
        header = 8
        if size == 1:
            size = struct.unpack(">Q", data[pos + 8 : pos + 16])[0]
            header = 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            break
        boxes.append((kind, pos + header, pos + size))
        pos += size
    return boxes


#: Boxes whose payload is boxes, and how many bytes come before them (full boxes, iinf's count).
_CONTAINERS = {b"meta": 4, b"iprp": 0, b"ipco": 0}


def coded_sizes(data: bytes) -> list[tuple[int, int]]:
    """The (width, height) of every AV1 sequence header of an AVIF file; [] when none is found.

    Raises ValueError (or IndexError, struct.error) when a sequence header is malformed.
    """
    found: list[tuple[int, int]] = []
    mdat: tuple[int, int] | None = None
    stack = [(0, len(data))]
    while stack:
        start, end = stack.pop()
        for kind, payload, box_end in _boxes(data, start, end):
            if kind in _CONTAINERS:
                stack.append((payload + _CONTAINERS[kind], box_end))
            elif kind == b"av1C" and box_end - payload > 4:
                found += _obu_sizes(data[payload + 4 : box_end])
            elif kind == b"mdat" and mdat is None:
                mdat = (payload, box_end)
    if not found and mdat is not None:
        found = _obu_sizes(data[mdat[0] : mdat[1]], limit=4)
    return found
