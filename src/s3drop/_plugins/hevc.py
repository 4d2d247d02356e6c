"""The picture size a HEIC's HEVC data really has, from the sequence parameter set (SPS) in each
item's ``hvcC`` box (ITU-T H.265 7.3.2.2).

A HEIF states an item's size in its ``ispe`` property (what the pixel cap judges); the decoder
allocates what the SPS says. libheif refuses a picture whose decoded size is not its ``ispe``,
but only after decoding it: a file that says 64 x 64 over a 16384 x 16384 picture would cost the
decode of 268 megapixels first. :func:`coded_size` reads the SPS, so :mod:`s3drop._plugins.heif`
refuses the mismatch before any decoder runs.
"""

from __future__ import annotations

from .._av1 import _Bits

_SPS = 33


def _unescape(nal: bytes) -> bytes:
    """A NAL unit's payload without its emulation prevention bytes (``00 00 03`` -> ``00 00``)."""
    return nal.replace(b"\x00\x00\x03", b"\x00\x00")


def sps_size(nal: bytes) -> tuple[int, int]:
    """(width, height) an SPS NAL unit (with its 2-byte header) decodes to: the picture size less
    the conformance window, as libde265 hands it to libheif."""
    bits = _Bits(_unescape(nal[2:]))
    bits.read(4)  # sps_video_parameter_set_id
    sub_layers = bits.read(3)  # sps_max_sub_layers_minus1
    bits.read(1)  # sps_temporal_id_nesting_flag
    bits.read(96)  # general profile, tier and level
    present = [(bits.read(1), bits.read(1)) for _ in range(sub_layers)]
    if sub_layers:
        bits.read(2 * (8 - sub_layers))  # reserved_zero_2bits
    for profile, level in present:
        bits.read(88 * profile + 8 * level)
    bits.uvlc()  # sps_seq_parameter_set_id
    chroma = bits.uvlc()
    separate = bits.read(1) if chroma == 3 else 0
    width, height = bits.uvlc(), bits.uvlc()
    if bits.read(1):  # conformance_window_flag
        left, right, top, bottom = (bits.uvlc() for _ in range(4))
        sub_width = 2 if chroma in (1, 2) and not separate else 1
        sub_height = 2 if chroma == 1 and not separate else 1
        width -= sub_width * (left + right)
        height -= sub_height * (top + bottom)
    return width, height


def coded_size(hvcc: bytes) -> tuple[int, int] | None:
    """The size of the first SPS in an ``hvcC`` box's payload, or None when it holds none.

    Raises ValueError, IndexError when the box or the SPS is malformed.
    """
    if len(hvcc) < 23:
        raise ValueError("hvcC too short")
    pos = 23
    for _ in range(hvcc[22]):  # numOfArrays
        kind = hvcc[pos] & 0x3F
        count = int.from_bytes(hvcc[pos + 1 : pos + 3], "big")
        pos += 3
        for _ in range(count):
            length = int.from_bytes(hvcc[pos : pos + 2], "big")
            nal = hvcc[pos + 2 : pos + 2 + length]
            if len(nal) != length:
                raise ValueError("hvcC NAL unit cut off")
            if kind == _SPS:
                return sps_size(nal)
            pos += 2 + length
    return None
