"""The authorised view: undo a faceplate's key, and the noise-free forward model for tests.

- :func:`scramble` — what the output face shows for a picture on the input lattice
  (``T x + bias``, noise-free), arranged on the output lattice.
- :func:`unscramble` — frame or per-site readout → picture on the input lattice, with the key.

Shapes: pictures on a lattice are ``(rows, cols)`` (row 0 on top, row-major sites); per-site
vectors are ``(rows * cols,)``; frames are ``(H, W)`` matching the coupling operator.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from optics.faceplate import lattice as _lat
from optics.faceplate.key import Key
from optics.faceplate.operators import transfer_operator
from optics.faceplate.readout import site_readout

__all__ = ["fill_from_neighbours", "scramble", "unscramble"]


def _lattice_vector(data: np.ndarray, key: Key, name: str) -> np.ndarray:
    cfg = key.config
    a = np.asarray(data, dtype=np.float64)
    if a.shape not in ((cfg.rows, cfg.cols), (cfg.n_fibers,)):
        raise ValueError(
            f"{name} must have shape ({cfg.rows}, {cfg.cols}) or ({cfg.n_fibers},) for this "
            f"key's lattice, got {a.shape}"
        )
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains non-finite values")
    return a.reshape(-1)


def scramble(image: np.ndarray, key: Key, *, bias_scale: float = 1.0) -> np.ndarray:
    """Noise-free output-face picture of ``image`` seen through ``key``.

    Parameters
    ----------
    image : (rows, cols) or (n,) float
        Flux entering each input fiber (e.g. photons/s), on the input lattice.
    key : Key
    bias_scale : float
        Multiplies ``Key.bias`` (photons/s) to match the unit of ``image`` (1 for photons/s).

    Returns
    -------
    (rows, cols) float64
        Flux leaving each output site, arranged on the output lattice.
    """
    x = _lattice_vector(image, key, "image")
    t, b = transfer_operator(key)
    return (t @ x + bias_scale * b).reshape(key.config.rows, key.config.cols)


def _solve_row_stochastic(m: sp.csr_matrix, b: np.ndarray) -> np.ndarray:
    """Solve ``M z = b`` for a diagonally dominant crosstalk matrix (Jacobi iteration)."""
    d = m.diagonal()
    if np.all(d == 1.0) and m.nnz == m.shape[0]:
        return b.copy()
    off = m - sp.diags(d)
    z = b / d
    scale = max(float(np.abs(b).max()), 1e-300)
    for _ in range(2000):
        z_new = (b - off @ z) / d
        if float(np.abs(z_new - z).max()) <= 1e-14 * scale:
            return z_new
        z = z_new
    # Not diagonally dominant enough for Jacobi: fall back to a direct solve.
    return spla.spsolve(m.tocsc(), b)


def fill_from_neighbours(values: np.ndarray, missing: np.ndarray, key: Key) -> np.ndarray:
    """Replace ``values[missing]`` by the mean of their valid nearest neighbours.

    Works outward from valid sites, so clusters of missing sites are filled too.

    Parameters
    ----------
    values : (n,) float
        Per-site values on the key's lattice.
    missing : (n,) bool
        Sites to fill.
    """
    cfg = key.config
    out = np.array(values, dtype=np.float64, copy=True)
    todo = np.array(missing, dtype=bool, copy=True)
    if not todo.any():
        return out
    adj = _lat.adjacency(cfg.lattice, cfg.rows, cfg.cols)
    while todo.any():
        valid = (~todo).astype(np.float64)
        cnt = adj @ valid
        tot = adj @ (np.where(todo, 0.0, out))
        ready = todo & (cnt > 0)
        if not ready.any():  # nothing valid anywhere (all fibers dead)
            out[todo] = 0.0
            break
        out[ready] = tot[ready] / cnt[ready]
        todo &= ~ready
    return out


def unscramble(
    data: np.ndarray,
    key: Key,
    *,
    coupling: sp.spmatrix | None = None,
    ridge: float = 1e-6,
    bias_scale: float = 1.0,
    fill_dead: bool = True,
) -> np.ndarray:
    """Turn a frame or per-site readout back into the picture on the input lattice.

    Steps: (frame only) per-site least-squares readout through ``coupling`` → subtract the
    routed bias → invert output crosstalk → un-route → divide by transmission → invert input
    crosstalk; dead fibers are filled from their neighbours (before and after the input
    crosstalk inversion).

    Parameters
    ----------
    data : (H, W) frame if ``coupling`` is given, else (rows, cols) or (n,) per-site readout
        on the output lattice, in the unit of the fiber flux (photons/s × ``bias_scale``).
    key : Key
    coupling : (H * W, n_sites) sparse, optional
        Coupling operator used to make the frame.
    ridge : float
        Relative regularisation of the frame readout (see :func:`site_readout`).
    bias_scale : float
        Multiplies ``Key.bias`` (photons/s) to the unit of ``data`` (e.g. the exposure in s).
    fill_dead : bool
        Fill dead fibers from neighbours (otherwise they are NaN).

    Returns
    -------
    (rows, cols) float64
        Flux that entered each input fiber, row 0 on top.
    """
    cfg = key.config
    if coupling is not None:
        if coupling.shape[1] != cfg.n_fibers:
            raise ValueError(
                f"coupling has {coupling.shape[1]} site columns, the key has {cfg.n_fibers} fibers"
            )
        s = site_readout(data, coupling, ridge=ridge)
    else:
        s = _lattice_vector(data, key, "data")
    if not math.isfinite(bias_scale):
        raise ValueError(f"bias_scale must be finite, got {bias_scale}")
    routing = np.asarray(key.routing)
    dead = np.asarray(key.dead) | (np.asarray(key.transmission) <= 0)
    bias_out = np.zeros(cfg.n_fibers)
    bias_out[routing] = np.where(dead, 0.0, key.bias)
    z = _solve_row_stochastic(key.crosstalk_out, s - bias_scale * (key.crosstalk_out @ bias_out))
    w = z[routing]
    v = np.divide(w, key.transmission, out=np.zeros_like(w), where=~dead)
    if dead.any():
        v = fill_from_neighbours(v, dead, key)
    x = _solve_row_stochastic(key.crosstalk_in, v)
    if dead.any():
        x = fill_from_neighbours(x, dead, key) if fill_dead else np.where(dead, np.nan, x)
    return x.reshape(cfg.rows, cfg.cols)
