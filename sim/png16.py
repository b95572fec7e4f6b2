"""Full-precision decoding of 16-bit colour PNGs, which Pillow reduces to 8 bits.

Pillow has no 48/64-bit image mode, so it returns 16-bit RGB(A) PNGs as 8-bit RGB. This
module decodes such files itself (PNG specification, ISO/IEC 15948: zlib stream, per-row
filters None/Sub/Up/Average/Paeth). The filters are undone on anti-diagonals: pixel (r, c)
depends only on (r, c-1), (r-1, c) and (r-1, c-1), so every pixel of one anti-diagonal is
reconstructed in one vectorised step (H + W - 1 steps in all).

Interlaced (Adam7) files are not handled here; the caller falls back to Pillow for them.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

__all__ = ["read_png16_colour"]

_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunks(data: bytes):
    pos = len(_SIGNATURE)
    while pos + 8 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        if len(body) != length:
            raise ValueError("PNG chunk cut short")
        yield kind, body
        if kind == b"IEND":
            return
        pos += 12 + length
    raise ValueError("PNG without IEND")


def _unfilter(filters: np.ndarray, raw: np.ndarray) -> np.ndarray:
    """Undo PNG filtering of ``raw`` (H, W, bpp) uint8 given per-row ``filters`` (H,)."""
    h, w, bpp = raw.shape
    if np.any(filters > 4):
        raise ValueError(f"PNG filter type {int(filters.max())} is invalid")
    out = np.zeros((h + 1, w + 1, bpp), dtype=np.int32)  # row 0 and column 0: zero padding
    x = raw.astype(np.int32)
    for k in range(h + w - 1):
        r = np.arange(max(0, k - w + 1), min(k, h - 1) + 1)
        c = k - r
        a = out[r + 1, c]  # left
        b = out[r, c + 1]  # up
        d = out[r, c]  # up-left
        ft = filters[r][:, None]
        p = a + b - d
        pa, pb, pc = np.abs(p - a), np.abs(p - b), np.abs(p - d)
        paeth = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, d))
        pred = np.select(
            [ft == 1, ft == 2, ft == 3, ft == 4], [a, b, (a + b) >> 1, paeth], default=0
        )
        out[r + 1, c + 1] = (x[r, c] + pred) & 0xFF
    return out[1:, 1:].astype(np.uint8)


def read_png16_colour(path: str | Path) -> np.ndarray | None:
    """Decode a non-interlaced 16-bit RGB or RGBA PNG at full precision.

    Returns
    -------
    (H, W, 3) or (H, W, 4) uint16, or None
        Samples as stored (alpha included); None if the file is not a non-interlaced
        16-bit colour PNG.

    Raises
    ------
    ValueError
        A damaged file (bad chunk layout, zlib stream or filter type).
    """
    data = Path(path).read_bytes()
    if not data.startswith(_SIGNATURE):
        return None
    header, idat = None, []
    for kind, body in _chunks(data):
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
    if header is None:
        raise ValueError("PNG without IHDR")
    w, h, depth, colour, _, _, interlace = header
    if depth != 16 or colour not in (2, 6) or interlace != 0:
        return None
    channels = 3 if colour == 2 else 4
    bpp = 2 * channels
    try:
        raw = zlib.decompress(b"".join(idat))
    except zlib.error as exc:
        raise ValueError(f"PNG data stream is damaged ({exc})") from None
    stride = 1 + w * bpp
    if len(raw) < h * stride:
        raise ValueError("PNG data stream is truncated")
    rows = np.frombuffer(raw, dtype=np.uint8, count=h * stride).reshape(h, stride)
    pixels = _unfilter(rows[:, 0].copy(), rows[:, 1:].reshape(h, w, bpp))
    return pixels.view(">u2").reshape(h, w, channels).astype(np.uint16)
