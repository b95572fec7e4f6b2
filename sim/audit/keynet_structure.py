"""The published key-net alone: its keyed first layer gives the routing away.

A key-net's first layer is ``Ŵ1 = A_1 M A_s⁺`` (Byrne, DeCann & Bloom, BMVC 2020): ``M`` is
the plain network's convolution (5 × 5, 6 channels, padding 2) followed by 2 × 2 average
pooling, a stride-2 6 × 6 stencil on the 28 × 28 input; ``A_s⁺`` undoes the camera's
routing and transmission (a permutation times a diagonal when the lattice matches the input);
``A_1`` permutes and scales whole channels. So column ``s`` of ``Ŵ1`` (one readout site) is
non-zero exactly on the pooled positions whose stencil covers the input pixel the site's fiber
sees, with the shared stencil weights of that pixel's offset, scaled by ``1 / t_s``:

1. the support of a column gives the pixel's 2-pixel cell (pooled positions ``k−1..k+1``
   in both axes → pixel ``2k`` or ``2k + 1``);
2. the normalised weights (the "signature") are the same for every pixel of one parity class
   ``(row mod 2, col mod 2)``: weight sharing; the signatures fall into four groups;
3. which group is which parity is read from the attacker's prior that pictures are smooth:
   each of the 24 labellings reassembles a frame, the smoothest wins (the weights alone cannot
   tell a pixel pair ``2k, 2k + 1`` from its mirror: that swap with a mirrored kernel gives the
   same layer);
4. the column norms give each site's transmission relative to its group (``r_s ‖Ŵ1[:, s]‖``
   is proportional to the scene).

The file format (``keycam-keynet-1``) is public; this module reads it with NumPy only.
"""

from __future__ import annotations

import itertools
import os

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

__all__ = ["load_first_layer", "structure_attack"]

_CHANNELS = 6  # the first stage of the public LeNet architecture


def load_first_layer(path: str | os.PathLike[str]) -> sp.csc_matrix:
    """The keyed first layer ``Ŵ1`` (``(6 · 14 · 14, n_sites)``) of a key-net file.

    Raises
    ------
    ValueError
        Not a keycam key-net file (names the file).
    """
    bad = f"{path}: not a keycam key-net file"
    try:
        with np.load(path, allow_pickle=False) as f:
            ok = "format" in f.files and str(f["format"]) == "keycam-keynet-1"
            a = {k: f[k] for k in ("w1_data", "w1_indices", "w1_indptr", "w1_shape")} if ok else {}
    except FileNotFoundError:
        raise
    except Exception:  # not a zip, pickled data, missing arrays, ...
        raise ValueError(bad) from None
    if not ok:
        raise ValueError(bad)
    shape = tuple(int(v) for v in a["w1_shape"])
    w = sp.csr_matrix((a["w1_data"], a["w1_indices"], a["w1_indptr"]), shape=shape)
    return sp.csc_matrix(w)


def _columns(w1: sp.csc_matrix) -> tuple[int, NDArray[np.int64], NDArray[np.float64]]:
    """Pooled side ``p``, each column's 2-pixel cell ``(n, 2)`` and 3 × 3 signatures."""
    n_rows, n = w1.shape
    p = int(np.rint(np.sqrt(n_rows / _CHANNELS)))
    if _CHANNELS * p * p != n_rows:
        raise ValueError(f"key-net first layer has {n_rows} rows, not 6 x p x p")
    cell = np.zeros((n, 2), dtype=np.int64)
    sig = np.zeros((n, _CHANNELS, 3, 3))
    for s in range(n):
        lo, hi = w1.indptr[s], w1.indptr[s + 1]
        rows, vals = w1.indices[lo:hi], w1.data[lo:hi]
        if rows.size == 0:
            cell[s] = -1
            continue
        ch, pos = np.divmod(rows, p * p)
        pi, pj = np.divmod(pos, p)
        k = pi.min() + 1 if pi.min() > 0 else pi.max() - 1
        m = pj.min() + 1 if pj.min() > 0 else pj.max() - 1
        cell[s] = (k, m)
        dy, dx = pi - k + 1, pj - m + 1
        ok = (dy >= 0) & (dy < 3) & (dx >= 0) & (dx < 3)
        sig[s, ch[ok], dy[ok], dx[ok]] = vals[ok]
    return p, cell, sig.reshape(n, -1)


def _groups(cell: NDArray[np.int64], sig: NDArray[np.float64], p: int) -> NDArray[np.int64]:
    """Four weight-sharing groups of the columns (-1 for empty columns)."""
    n = len(sig)
    norm = np.linalg.norm(sig, axis=1)
    u = sig / np.where(norm > 0, norm, np.inf)[:, None]
    interior = np.all((cell >= 1) & (cell <= p - 2), axis=1)
    idx = np.flatnonzero(interior)
    exemplars: list[int] = []
    for s in idx.tolist():  # greedy: a new group whenever no exemplar matches
        if not exemplars or max(float(u[s] @ u[e]) for e in exemplars) < 0.98:
            exemplars.append(int(s))
        if len(exemplars) == 4:
            break
    if len(exemplars) < 4:
        raise ValueError("key-net first layer: fewer than four weight-sharing groups")
    ex = sig[exemplars]  # (4, 54)
    out = np.full(n, -1, dtype=np.int64)
    for s in range(n):
        if norm[s] == 0:
            continue
        mask = sig[s] != 0  # boundary columns see part of the stencil
        e = ex * mask
        en = np.linalg.norm(e, axis=1)
        out[s] = int(np.argmax((e @ sig[s]) / (np.where(en > 0, en, np.inf) * norm[s])))
    return out


def _smoothness(img: NDArray[np.float64]) -> float:
    d = np.concatenate([np.diff(img, axis=0).ravel(), np.diff(img, axis=1).ravel()])
    return float(np.mean(d**2) / max(np.var(img), 1e-300))


def structure_attack(
    w1: sp.spmatrix, readouts: NDArray[np.floating], side: int = 28
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Recover the routing (and gains) from a key-net's first layer.

    Parameters
    ----------
    w1 : (6 · 14 · 14, n_sites) sparse
        The keyed first layer (:func:`load_first_layer`).
    readouts : (N, n_sites) float
        A few readouts of any scenes, used only to pick the smoothest of the 24 labellings of
        the four parity groups (N = 1 is enough).
    side : int
        Side of the square input in pixels (28).

    Returns
    -------
    guess : (n_sites,) int64
        Input pixel (row-major) the attacker assigns to each site (-1: no guess).
    weight : (n_sites,) float64
        Multiply a site's readout by this to undo its transmission (up to a common factor).
    """
    w = sp.csc_matrix(w1)
    w.sort_indices()
    p, cell, sig = _columns(w)
    group = _groups(cell, sig, p)
    r = np.atleast_2d(np.asarray(readouts, dtype=np.float64))
    norm = np.sqrt(np.asarray(w.multiply(w).sum(axis=0)).ravel())
    weight = norm.copy()
    for g in range(4):  # put the groups on one scale: equal median flux
        sel = group == g
        if sel.any():
            med = np.median(r[:, sel] * norm[sel])
            weight[sel] = norm[sel] / (med if med > 0 else 1.0)
    parity = np.array(list(itertools.product((0, 1), repeat=2)))
    best: tuple[float, NDArray[np.int64]] | None = None
    for perm in itertools.permutations(range(4)):
        par = parity[list(perm)]
        guess = np.full(w.shape[1], -1, dtype=np.int64)
        ok = group >= 0
        pix = 2 * cell[ok] + par[group[ok]]
        inside = np.all((pix >= 0) & (pix < side), axis=1)
        guess[np.flatnonzero(ok)[inside]] = pix[inside, 0] * side + pix[inside, 1]
        # duplicates (ambiguous boundary columns) keep the first claim only
        _, first = np.unique(guess, return_index=True)
        keep = np.zeros_like(guess, dtype=bool)
        keep[first] = True
        guess[~keep] = -1
        score = 0.0
        for frame in r:
            img = np.zeros(side * side)
            g_ok = guess >= 0
            img[guess[g_ok]] = frame[g_ok] * weight[g_ok]
            score += _smoothness(img.reshape(side, side))
        if best is None or score < best[0]:
            best = (score, guess)
    assert best is not None
    return best[1], weight
