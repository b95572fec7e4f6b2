"""Full-precision, bounded decoding of 16-bit colour PNGs, which Pillow reduces to 8 bits.

Pillow has no 48/64-bit image mode, so it returns 16-bit RGB(A) PNGs as 8-bit RGB. This
module decodes such files itself (PNG specification, ISO/IEC 15948: zlib stream, per-row
filters None/Sub/Up/Average/Paeth).

Bounded: the header's size is checked against ``max_pixels`` before anything is inflated,
and the zlib stream is inflated chunk by chunk into a buffer of exactly the size the header
declares (``H * (1 + W * bytes_per_pixel)`` bytes). A stream that inflates to more than
that (a decompression bomb) is refused once the buffer is full, so memory never exceeds what
the declared size needs: about ``2 * H * W * bytes_per_pixel`` bytes while filters are
undone (:func:`decode_bytes_per_pixel`).

The filters are undone on anti-diagonals: pixel (r, c) depends only on (r, c-1), (r-1, c)
and (r-1, c-1), so every pixel of one anti-diagonal is reconstructed in one vectorised step
(H + W - 1 steps in all), in 8-bit arithmetic with small 16-bit temporaries. Files whose
rows use only the None and Up filters are undone row by row.

Interlaced (Adam7) files are not handled here; the caller falls back to Pillow for them.
"""

from __future__ import annotations

import struct
import zlib
from typing import BinaryIO

import numpy as np

__all__ = ["Png16Header", "decode_bytes_per_pixel", "read_png16_colour", "read_png16_header"]

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_MAX_CHUNK = 1 << 31  # the specification's limit on a chunk's length
_READ = 1 << 20  # bytes read from the file at a time


class Png16Header:
    """Size and layout of a PNG from its IHDR chunk."""

    __slots__ = ("bit_depth", "colour_type", "height", "interlace", "width")

    def __init__(self, width: int, height: int, bit_depth: int, colour_type: int, interlace: int):
        self.width, self.height = width, height
        self.bit_depth, self.colour_type, self.interlace = bit_depth, colour_type, interlace

    @property
    def is_16bit_colour(self) -> bool:
        """A non-interlaced 16-bit RGB or RGBA file (what this module decodes)."""
        return self.bit_depth == 16 and self.colour_type in (2, 6) and self.interlace == 0

    @property
    def channels(self) -> int:
        """Samples per pixel: 3 (RGB) or 4 (RGBA)."""
        return 3 if self.colour_type == 2 else 4


def decode_bytes_per_pixel(channels: int) -> int:
    """Peak bytes per pixel of :func:`read_png16_colour` (inflated rows, unfiltered copy)."""
    return 2 * 2 * channels + 1


def read_png16_header(fh: BinaryIO) -> Png16Header | None:
    """The IHDR of the PNG open at ``fh`` (from its start), or None if it is not a PNG."""
    fh.seek(0)
    head = fh.read(33)
    if len(head) < 33 or head[:8] != _SIGNATURE or head[12:16] != b"IHDR":
        return None
    (length,) = struct.unpack(">I", head[8:12])
    if length != 13:
        raise ValueError("PNG header chunk has the wrong length")
    w, h, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", head[16:29])
    return Png16Header(w, h, depth, colour, interlace)


def _inflate_idat(fh: BinaryIO, expected: int) -> np.ndarray:
    """Inflate the IDAT chunks into exactly ``expected`` bytes; refuse more or less."""
    out = np.empty(expected, dtype=np.uint8)
    view = memoryview(out)  # type: ignore[arg-type]
    filled = 0
    d = zlib.decompressobj()
    fh.seek(len(_SIGNATURE))
    seen_idat = ended = False
    while True:
        head = fh.read(8)
        if len(head) < 8:
            raise ValueError("PNG without IEND (file cut short)")
        length, kind = struct.unpack(">I", head[:4])[0], head[4:]
        if length >= _MAX_CHUNK:
            raise ValueError("PNG chunk length is invalid")
        if kind == b"IEND":
            break
        if kind != b"IDAT":
            if seen_idat:
                ended = True
            fh.seek(length + 4, 1)  # skip body and CRC
            continue
        if ended:
            raise ValueError("PNG image data is not contiguous")
        seen_idat = True
        left = length
        while left:
            body = fh.read(min(left, _READ))
            if not body:
                raise ValueError("PNG chunk cut short")
            left -= len(body)
            pending = body
            while pending and not d.eof:
                room = expected - filled
                try:  # max_length 0 would mean "no limit": ask for one byte when full
                    data = d.decompress(pending, room if room else 1)
                except zlib.error as exc:
                    raise ValueError(f"PNG data stream is damaged ({exc})") from None
                if len(data) > room:
                    raise ValueError(
                        "PNG data stream inflates to more than its declared image size "
                        "(damaged, or a decompression bomb)"
                    )
                view[filled : filled + len(data)] = data
                filled += len(data)
                pending = d.unconsumed_tail
        if len(fh.read(4)) < 4:
            raise ValueError("PNG chunk cut short")
    if filled < expected:
        raise ValueError("PNG data stream is truncated")
    return out


def _unfilter(filters: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Undo PNG filtering of ``x`` (H, W, bpp) uint8 given per-row ``filters`` (H,).

    Returns the unfiltered bytes as (H + 1, W + 1, bpp) uint8 with a zero first row and
    column (the padding the filters refer to).
    """
    h, w, bpp = x.shape
    if np.any(filters > 4):
        raise ValueError(f"PNG filter type {int(filters.max())} is invalid")
    out = np.zeros((h + 1, w + 1, bpp), dtype=np.uint8)
    if np.all((filters == 0) | (filters == 2)):  # None / Up only: row by row
        for row in range(h):
            up = out[row, 1:] if filters[row] == 2 else 0
            np.add(x[row], up, out=out[row + 1, 1:], casting="unsafe")
        return out
    for k in range(h + w - 1):
        r = np.arange(max(0, k - w + 1), min(k, h - 1) + 1)
        c = k - r
        a = out[r + 1, c].astype(np.int16)  # left
        b = out[r, c + 1].astype(np.int16)  # up
        d = out[r, c].astype(np.int16)  # up-left
        ft = filters[r][:, None]
        pa, pb, pc = np.abs(b - d), np.abs(a - d), np.abs(a + b - 2 * d)
        paeth = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, d))
        pred = np.select(
            [ft == 1, ft == 2, ft == 3, ft == 4], [a, b, (a + b) >> 1, paeth], default=0
        )
        out[r + 1, c + 1] = (x[r, c] + pred) & 0xFF
    return out


def read_png16_colour(fh: BinaryIO, *, max_pixels: int) -> np.ndarray | None:
    """Decode a non-interlaced 16-bit RGB or RGBA PNG at full precision, within bounds.

    Parameters
    ----------
    fh : binary file object
        The PNG, open for reading and seekable.
    max_pixels : int
        Largest accepted width x height, checked before anything is inflated.

    Returns
    -------
    (H, W, 3) or (H, W, 4) uint16, or None
        Samples as stored (alpha included); None if the file is not a non-interlaced
        16-bit colour PNG.

    Raises
    ------
    ValueError
        A damaged file (bad chunk layout, zlib stream or filter type), a zero-size image,
        more than ``max_pixels`` pixels, or a stream that inflates past the declared size.
    """
    header = read_png16_header(fh)
    if header is None or not header.is_16bit_colour:
        return None
    w, h = header.width, header.height
    if w == 0 or h == 0:
        raise ValueError(f"zero-size PNG ({w}x{h} pixels)")
    if w * h > max_pixels:
        raise ValueError(f"{w}x{h} = {w * h} pixels exceeds the limit of {max_pixels} pixels")
    channels = header.channels
    bpp = 2 * channels
    stride = 1 + w * bpp
    rows = _inflate_idat(fh, h * stride).reshape(h, stride)
    filters = rows[:, 0].copy()
    unfiltered = _unfilter(filters, rows[:, 1:].reshape(h, w, bpp))
    del rows
    body = unfiltered[1:, 1:]
    pixels = body[:, :, 0::2].astype(np.uint16)  # big-endian samples: high byte first
    pixels <<= 8
    pixels |= body[:, :, 1::2]
    del unfiltered, body
    return pixels
