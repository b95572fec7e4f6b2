"""Per-site readout: the flux of every output site, from a sensor frame.

The output-face geometry (which pixels sit behind which output site, through the relay) is
public, so turning a frame into one value per output site is a public step that needs no
key. With ``K`` the coupling operator (pixels × sites) and ``y`` the signal per pixel (sensor
offset and gain already removed), the readout is the least-squares site flux ::

    r = (Kᵀ K)⁻¹ Kᵀ y

:class:`SiteReadout` factorises ``Kᵀ K`` once and then reads any number of frames. Where
``Kᵀ K`` is singular (a site that no pixel sees) it adds the Tikhonov term
``λ = ridge × mean(diag(Kᵀ K))``, which keeps such sites finite (near zero) and changes the
others by a relative ``ridge``; otherwise ``R K = I`` holds to rounding. Lattices of more than
:data:`DIRECT_MAX_SITES` sites are solved by preconditioned conjugate gradients (with the
ridge, which keeps the iteration well conditioned).
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from numpy.typing import NDArray

__all__ = ["DIRECT_MAX_SITES", "SiteReadout", "site_readout"]

#: Direct (LU) factorisation up to this many sites, conjugate gradients beyond.
DIRECT_MAX_SITES = 40_000


class SiteReadout:
    """Least-squares flux of every output site from pixel signals, one factorisation.

    Parameters
    ----------
    coupling : (n_pixels, n_sites) sparse
        From :func:`optics.faceplate.operators.coupling_operator` (times any efficiency).
    ridge : float
        Relative Tikhonov term, >= 0; used only where ``Kᵀ K`` is singular (and always by the
        iterative solver of very large lattices).
    """

    def __init__(self, coupling: sp.spmatrix, *, ridge: float = 1e-6) -> None:
        if not (isinstance(ridge, int | float) and math.isfinite(ridge) and ridge >= 0):
            raise ValueError(f"ridge must be a finite number >= 0, got {ridge!r}")
        k = sp.csr_matrix(coupling, dtype=np.float64)
        self._kt = k.T.tocsr()
        normal = (self._kt @ k).tocsc()
        diag = normal.diagonal()
        self._lam = max(ridge * float(diag.mean()) if diag.size else 0.0, 1e-300)
        self._lu: spla.SuperLU | None = None
        self._normal = normal
        self._pre: sp.dia_matrix | None = None
        n = normal.shape[0]
        if n <= DIRECT_MAX_SITES:
            try:
                lu = spla.splu(normal)
                if not np.all(np.isfinite(lu.solve(np.ones(n)))):
                    raise RuntimeError("singular")
                self._lu = lu
            except RuntimeError:
                self._lu = spla.splu((normal + self._lam * sp.identity(n, format="csc")).tocsc())
        else:
            self._normal = (normal + self._lam * sp.identity(n, format="csc")).tocsr()
            self._pre = sp.diags(1.0 / (diag + self._lam))

    @property
    def n_pixels(self) -> int:
        """Length of a frame's pixel vector."""
        return int(self._kt.shape[1])

    @property
    def n_sites(self) -> int:
        """Number of output sites."""
        return int(self._kt.shape[0])

    def _solve_rhs(self, rhs: NDArray[np.float64]) -> NDArray[np.float64]:
        """``(Kᵀ K)⁻¹ rhs`` for ``rhs`` of shape ``(n_sites,)`` or ``(n_sites, m)``."""
        if self._lu is not None:
            return self._lu.solve(rhs)
        cols = rhs.reshape(self.n_sites, -1)
        out = np.empty_like(cols)
        for j in range(cols.shape[1]):
            sol, info = spla.cg(
                self._normal, cols[:, j], rtol=1e-10, atol=0.0, maxiter=2000, M=self._pre
            )
            if info != 0:
                raise ValueError("site readout did not converge; increase ridge")
            out[:, j] = sol
        return out.reshape(rhs.shape)

    def __call__(self, frame: NDArray[np.floating]) -> NDArray[np.float64]:
        """Site flux ``(n_sites,)`` of one frame ``(H, W)`` or ``(n_pixels,)``."""
        y = np.asarray(frame, dtype=np.float64).reshape(-1)
        if y.size != self.n_pixels:
            raise ValueError(
                f"frame has {y.size} pixels but the coupling operator expects {self.n_pixels}"
            )
        return self._solve_rhs(np.asarray(self._kt @ y))

    def many(self, frames: NDArray[np.floating]) -> NDArray[np.float64]:
        """Site flux ``(N, n_sites)`` of frames ``(N, H, W)`` or ``(N, n_pixels)``."""
        y = np.asarray(frames, dtype=np.float64)
        if y.ndim < 2 or y[0].size != self.n_pixels:
            raise ValueError(
                f"frames must be (N, ...) with {self.n_pixels} pixels each, got shape {y.shape}"
            )
        return self._solve_rhs(np.asarray(self._kt @ y.reshape(len(y), self.n_pixels).T)).T

    def solve_columns(self, signal: sp.spmatrix) -> NDArray[np.float64]:
        """Site flux for each column of a sparse ``(n_pixels, m)`` matrix → ``(n_sites, m)``."""
        return self._solve_rhs(np.asarray((self._kt @ sp.csc_matrix(signal)).toarray()))


def site_readout(frame: np.ndarray, coupling: sp.spmatrix, *, ridge: float = 1e-6) -> np.ndarray:
    """Least-squares flux of every output site from one frame (see :class:`SiteReadout`).

    Parameters
    ----------
    frame : (H, W) or (H * W,) float
        Signal per pixel, in the unit of the site flux (offsets such as black level removed).
    coupling : (H * W, n_sites) sparse
        From :func:`optics.faceplate.operators.coupling_operator`.
    ridge : float
        Relative Tikhonov term used where ``Kᵀ K`` is singular (>= 0).

    Returns
    -------
    (n_sites,) float64
    """
    return SiteReadout(coupling, ridge=ridge)(frame)
