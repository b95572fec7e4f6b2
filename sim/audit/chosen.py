"""Chosen plaintext: show the camera coded patterns and read every fiber's address.

The attacker puts patterns of their choice in front of the lens -- exactly what the owner
does to calibrate a device (``python -m sim.calibrate`` shows binary Gray codes). Each input
fiber's row and column are written as ``d`` digits in base ``L`` (a reflected ``L``-ary Gray
code, so that neighbouring fibers differ by one level of one digit); frame ``j`` shows digit
``j`` of every fiber as a grey level ``digit / (L − 1)``. A white and a black frame give each
output site's gain and offset, so every site reads back its fiber's digits; a minimum-cost
assignment (:func:`scipy.optimize.linear_sum_assignment`) of sites to codes gives the routing.

Frames needed: ``2 + d_rows + d_cols`` with ``d = ceil(log_L(n))``: 14 for binary codes on a
64 × 64 lattice, 6 for base 8, 4 for base 64 (one frame per axis, at the cost of noise).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import linear_sum_assignment

from sim.audit.common import observe, true_fiber_values
from sim.camera import Camera

__all__ = ["chosen_plaintext", "decode", "digits_needed", "gray_digits", "patterns"]


def digits_needed(n: int, base: int) -> int:
    """Digits of base ``base`` (>= 2) that number ``n`` positions (at least 1)."""
    if base < 2:
        raise ValueError(f"base must be >= 2, got {base}")
    return max(1, math.ceil(math.log(n) / math.log(base) - 1e-12))


def gray_digits(values: NDArray[np.integer], base: int, n_digits: int) -> NDArray[np.int64]:
    """Reflected ``base``-ary Gray code of ``values``: ``(len(values), n_digits)``, MSD first.

    Successive values differ in exactly one digit, by one level.
    """
    v = np.asarray(values, dtype=np.int64)
    plain = np.stack([(v // base**k) % base for k in range(n_digits - 1, -1, -1)], axis=1)
    out = plain.copy()
    # A digit runs backwards whenever the number formed by the digits above it is odd.
    for k in range(1, n_digits):
        above = v // base ** (n_digits - k)
        out[:, k] = np.where(above % 2 == 1, base - 1 - plain[:, k], plain[:, k])
    return out


def _codes(rows: int, cols: int, base: int) -> NDArray[np.int64]:
    """``(rows * cols, d_r + d_c)`` digits of every fiber (row-major)."""
    r, c = np.divmod(np.arange(rows * cols), cols)
    return np.hstack(
        [
            gray_digits(r, base, digits_needed(rows, base)),
            gray_digits(c, base, digits_needed(cols, base)),
        ]
    )


def patterns(camera: Camera, base: int) -> NDArray[np.float64]:
    """The pattern frames on the camera's scene grid: white, black, then one per digit.

    Returns ``(2 + n_digits, rows_px, cols_px)`` in [0, 1].
    """
    fp = camera.config.faceplate
    h, w = camera.scene_shape
    codes = _codes(fp.rows, fp.cols, base).reshape(fp.rows, fp.cols, -1)
    yi = (np.arange(h) * fp.rows) // h
    xi = (np.arange(w) * fp.cols) // w
    levels = codes[yi][:, xi] / (base - 1)  # (h, w, d)
    return np.concatenate([np.ones((1, h, w)), np.zeros((1, h, w)), np.moveaxis(levels, 2, 0)])


def decode(readouts: NDArray[np.floating], rows: int, cols: int, base: int) -> NDArray[np.int64]:
    """Routing guess from the readouts ``(2 + n_digits, n_sites)`` of :func:`patterns`.

    Returns ``(n_sites,)``: the input fiber assigned to each site, ``-1`` for sites that do
    not respond to white (dead fibers).
    """
    r = np.asarray(readouts, dtype=np.float64)
    white, black, digits = r[0], r[1], r[2:]
    span = white - black
    # Sites that barely respond to white are fed by dead fibers: they carry no address.
    lit = span > 0.25 * np.median(span)
    span = np.where(lit, span, np.inf)
    measured = np.clip((digits - black) / span * (base - 1), -0.5, base - 0.5)  # (d, n_sites)
    codes = _codes(rows, cols, base).astype(np.float64)  # (n, d)
    if measured.shape[0] != codes.shape[1]:
        raise ValueError(f"readouts: expected {2 + codes.shape[1]} pattern frames, got {len(r)}")
    # Squared distance of every lit site's measured digits to every fiber's code.
    m = measured.T[lit]
    cost = (m**2).sum(1)[:, None] - 2.0 * m @ codes.T + (codes**2).sum(1)[None, :]
    sites, fibers = linear_sum_assignment(cost)
    guess = np.full(r.shape[1], -1, dtype=np.int64)
    guess[np.flatnonzero(lit)[sites]] = fibers
    return guess


def chosen_plaintext(
    camera: Camera, *, base: int, rng: np.random.Generator
) -> dict[str, float | int]:
    """Attack ``camera`` with ``base``-ary Gray-code patterns; score it against the key.

    Returns
    -------
    dict
        ``frames`` shown, ``routing_fraction`` recovered exactly, ``image_correlation`` of a
        natural scene reassembled with the recovered routing (the bundled photograph).
    """
    from sim.audit.common import natural_stream, reassemble, routing_fraction

    fp = camera.config.faceplate
    pats = patterns(camera, base)
    r = observe(camera, pats, rng=rng)
    guess = decode(r, fp.rows, fp.cols, base)
    white, black = r[0], r[1]
    span = np.where(white - black > 0, white - black, np.inf)
    scene = natural_stream(1, camera.scene_shape, rng=rng)
    test = observe(camera, scene, rng=rng)
    # The white frame is the attacker's flat field: divide each site by its gain.
    flat = (test - black) / span
    corr = _corr(camera, scene, reassemble(flat, guess, fp.n_fibers))
    return {
        "base": base,
        "frames": len(pats),
        "routing_fraction": routing_fraction(camera, guess),
        "image_correlation": corr,
    }


def _corr(camera: Camera, scenes: NDArray[np.floating], picture: NDArray[np.floating]) -> float:
    from sim.audit.common import image_correlation

    return image_correlation(true_fiber_values(camera, scenes), picture)
