"""A camera's digits-to-readouts map, composed (:class:`InputOperator`) or factored.

A camera maps a digit ``d`` (784 values in [0, 1], row-major 28×28) to per-site readouts
(after the public binning of sensor pixels into output sites). Composed, that is
``r = A_s d + b_s`` (:class:`InputOperator`). For a camera whose public readout resolves
every output site, the same map factors as (models.md: Key-nets)::

    r = g ⊙ (C_out · P · D · C_in · E d + β)

==========  ==============================================================  ==========
``E``       digit → flux entering each input fiber (embedding, lens,        public
            sampling), ``(n_fibers, 784)``
``C_in``    input-face crosstalk: local, the same for every key of a        public
            design
``P D``     routing times per-fiber transmission (0 for dead fibers)        **secret**
``C_out``   output-face crosstalk (the key's ``crosstalk_out``)             **secret**
``β``       stray light at each output site                                 **secret**
``g``       readout units per unit of flux leaving a site (the exposure)    public
==========  ==============================================================  ==========

The plain network's input is the **input-face image** ``u = E⁺ C_in E d``: the digit as the
input fibers receive it, input-face crosstalk included (a fixed, key-independent blur of a
few per cent). A key-net's first layer then has to undo only the secret part, and
:meth:`SecretMap.inverse_terms` gives that inverse as a sparse series::

    X = E⁺ F (P D)⁺ C_out⁻¹ diag(1/g),      C_out⁻¹ = Σ_k (−J E_o)^k J

with ``J`` the inverse diagonal of ``C_out`` and ``E_o`` its off-diagonal part (a Neumann
series: ``C_out = J⁻¹ (I + J E_o)``). Truncated after order ``K`` it reconstructs the
input-face image with a relative error of at most ``(f / (1 − f))^(K+1)`` times the spread of
the transmissions, ``f`` being the output crosstalk fraction (:meth:`SecretMap.truncation_bound`).
Dead fibers carry no signal: ``(P D)⁺`` gives them nothing and ``F`` fills each from the mean
of its live input-face neighbours (:func:`fill_operator`), so the plain network sees a
complete image. ``X A_s = F' u`` holds exactly for the untruncated series (``F'`` the fill).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import scipy.sparse as sp

from optics.faceplate import Key, transfer_factors
from optics.faceplate.lattice import adjacency

__all__ = ["InputOperator", "SecretMap", "fill_operator", "left_pinv"]

#: Eigenvalues of a Gram matrix below this fraction of the largest are treated as zero.
PINV_RTOL = 1e-10


def left_pinv(a: sp.spmatrix) -> np.ndarray:
    """Moore-Penrose pseudo-inverse ``a⁺ = (aᵀa)⁺ aᵀ`` of a tall sparse matrix, dense.

    ``aᵀa`` is ``(n_cols, n_cols)`` (784 × 784 for a digit), so its symmetric pseudo-inverse
    is cheap; a rank-deficient ``a`` (dead fibers, unseen pixels) gets the minimum-norm
    solution instead of a singular factorisation.

    Returns
    -------
    (n_cols, n_rows) float64
    """
    m = sp.csr_matrix(a, dtype=np.float64)
    gram = np.asarray((m.T @ m).toarray())
    top = float(np.abs(gram).max()) if gram.size else 0.0
    if top == 0.0:
        return np.zeros((m.shape[1], m.shape[0]))
    lam, vec = np.linalg.eigh(gram)
    keep = lam > PINV_RTOL * float(lam.max())
    ginv = (vec[:, keep] / lam[keep]) @ vec[:, keep].T  # (aᵀa)⁺, symmetric
    return np.asarray(m @ ginv).T  # ginv is symmetric: (m ginv)ᵀ = ginv mᵀ


@dataclass(frozen=True)
class InputOperator:
    """Affine map from the network input to per-site readouts: ``r = matrix @ d + offset``.

    Attributes
    ----------
    matrix : (n_sites, 784) scipy.sparse matrix
        Readout units per unit of digit grey level (digit in [0, 1], row-major 28×28).
    offset : (n_sites,) float64
        Readout of a blank (all-zero) digit, readout units.
    """

    matrix: sp.csr_matrix
    offset: np.ndarray

    def __post_init__(self) -> None:
        m = sp.csr_matrix(self.matrix, dtype=np.float64)
        off = np.asarray(self.offset, dtype=np.float64).reshape(-1)
        if m.shape[1] != 784:
            raise ValueError(f"input operator must have 784 columns (28×28 digit), got {m.shape}")
        if off.shape != (m.shape[0],):
            raise ValueError(f"offset must have shape ({m.shape[0]},), got {off.shape}")
        object.__setattr__(self, "matrix", m)
        object.__setattr__(self, "offset", off)

    @property
    def n_sites(self) -> int:
        """Number of per-site readouts (rows)."""
        return int(self.matrix.shape[0])

    def apply(self, digits: np.ndarray) -> np.ndarray:
        """Noise-free readouts ``(N, n_sites)`` float64 of digits ``(N, 28, 28)`` in [0, 1]."""
        d = np.asarray(digits, dtype=np.float64).reshape(len(digits), -1)
        return np.asarray((self.matrix @ d.T).T) + self.offset

    def pinv_apply(self, readouts: np.ndarray) -> np.ndarray:
        """Least-squares digits ``(N, 28, 28)`` from readouts: ``A_s⁺ (r − b_s)``.

        This *is* the camera's inverse: a key-net never stores it; verification uses it only
        to normalise a conventional (coherent) camera's frames for the plain network.
        """
        r = np.asarray(readouts, dtype=np.float64) - self.offset
        return (r @ left_pinv(self.matrix).T).reshape(len(r), 28, 28)


def fill_operator(missing: np.ndarray, adj: sp.spmatrix) -> sp.csr_matrix:
    """Linear map that replaces missing sites by the mean of their valid neighbours.

    The same rule as :func:`optics.faceplate.unscramble.fill_from_neighbours` (working
    outward, so clusters of missing sites are filled too; sites with no valid site anywhere
    become 0), written as a sparse matrix: ``fill_operator(m, adj) @ v`` equals
    ``fill_from_neighbours(v, m, key)`` on the key's lattice.

    Parameters
    ----------
    missing : (n,) bool
        Sites to fill.
    adj : (n, n) sparse
        Symmetric 0/1 nearest-neighbour adjacency of the lattice.

    Returns
    -------
    (n, n) float64 CSR
        Identity on valid sites; rows of missing sites average valid sites.
    """
    todo = np.array(missing, dtype=bool, copy=True)
    a = sp.csr_matrix(adj, dtype=np.float64)
    f = sp.diags((~todo).astype(np.float64), format="csr")
    while todo.any():
        valid = (~todo).astype(np.float64)
        cnt = a @ valid
        ready = todo & (cnt > 0)
        if not ready.any():  # nothing valid anywhere: those sites stay 0
            break
        w = sp.diags(np.where(ready, 1.0 / np.maximum(cnt, 1.0), 0.0)) @ a @ sp.diags(valid)
        f = sp.csr_matrix(f + w @ f)
        todo &= ~ready
    f.eliminate_zeros()
    f.sort_indices()
    return f


@dataclass(frozen=True, eq=False, repr=False)
class SecretMap:
    """The digits-to-readouts map of a camera in factored form (see the module docstring).

    Build one from a camera with :func:`keynet.readout.secret_map`. Holds the key: treat it
    like the key itself and pass it only to :func:`keynet.keying.key_network`.

    Attributes
    ----------
    entrance : (n_fibers, 784) CSR
        ``E``: flux entering each input fiber per unit digit value (public), photons/s.
    key : Key
        The faceplate key the map is built from (design or measured).
    site_gain : (n_sites,) float64
        ``g``: readout units per photon/s leaving each output site (public; the exposure in
        seconds for readouts in photons per exposure).
    """

    entrance: sp.csr_matrix
    key: Key
    site_gain: np.ndarray

    def __post_init__(self) -> None:
        if not isinstance(self.key, Key):
            raise TypeError(f"key must be an optics.faceplate.Key, got {type(self.key).__name__}")
        n = self.key.n_fibers
        e = sp.csr_matrix(self.entrance, dtype=np.float64)
        if e.shape != (n, 784):
            raise ValueError(f"entrance must be ({n}, 784) for this key's lattice, got {e.shape}")
        g = np.asarray(self.site_gain, dtype=np.float64).reshape(-1)
        if g.shape != (n,) or not np.all(np.isfinite(g)) or np.any(g <= 0):
            raise ValueError(f"site_gain must be ({n},) finite and > 0 (readout units per flux)")
        object.__setattr__(self, "entrance", e)
        object.__setattr__(self, "site_gain", g)

    def __repr__(self) -> str:
        return f"SecretMap({self.key!r}, {self.n_sites} sites)"

    @property
    def n_sites(self) -> int:
        """Number of per-site readouts."""
        return self.key.n_fibers

    @cached_property
    def _factors(self) -> tuple[sp.csr_matrix, sp.csr_matrix, sp.csr_matrix, np.ndarray]:
        return transfer_factors(self.key)

    @cached_property
    def _entrance_pinv(self) -> sp.csr_matrix:
        """``E⁺`` (784, n_fibers), entries below 1e-12 of the largest dropped."""
        e = self.entrance
        d = e.diagonal() if e.shape[0] == e.shape[1] else None
        if d is not None and e.nnz == np.count_nonzero(d) == e.shape[0]:  # matched lattice
            return sp.diags(1.0 / d, format="csr")
        p = left_pinv(e)
        p[np.abs(p) <= 1e-12 * float(np.abs(p).max(initial=0.0))] = 0.0
        return sp.csr_matrix(p)

    @property
    def offset(self) -> np.ndarray:
        """``b_s = g ⊙ β``: readout of a blank digit (the key's stray light), ``(n_sites,)``."""
        return self.site_gain * self._factors[3]

    @property
    def dead(self) -> np.ndarray:
        """``(n_fibers,) bool``: fibers that carry no signal (dead or zero transmission)."""
        return np.asarray(self.key.dead) | (np.asarray(self.key.transmission) <= 0)

    # -- forward -----------------------------------------------------------------------------
    def operator(self) -> InputOperator:
        """The composed map ``r = A_s d + b_s`` for this key."""
        c_out, pd, c_in, _ = self._factors
        a = sp.diags(self.site_gain) @ c_out @ pd @ c_in @ self.entrance
        return InputOperator(sp.csr_matrix(a), self.offset)

    def input_face(self, digits: np.ndarray) -> np.ndarray:
        """The plain network's input ``u = E⁺ C_in E d`` ``(N, 28, 28)`` of digits ``(N, 28, 28)``.

        The digit as this key's input face receives it (input-face crosstalk included),
        back in digit units; equal to the digit when the key has no input crosstalk.
        """
        d = np.asarray(digits, dtype=np.float64).reshape(len(digits), -1)
        c_in = self._factors[2]
        u = self._entrance_pinv @ (c_in @ (self.entrance @ d.T))
        return np.asarray(u).T.reshape(len(d), 28, 28)

    # -- inverse -----------------------------------------------------------------------------
    def truncation_bound(self, order: int) -> float:
        """Closed-form bound on the relative error of the order-``order`` reconstruction.

        With ``w = C_in E d`` the flux entering the fibers and
        ``ŵ_K = E (X_0 + ⋯ + X_K)(r − b_s)`` its reconstruction from noise-free readouts (a
        matched lattice, ``E E⁺ = I``; no dead-fiber fill), the error on live fibers obeys
        ``‖ŵ_K − w‖∞ ≤ q^(K+1) · t_max / t_min · ‖w‖∞``, because
        ``Σ_{k≤K} (−J E_o)^k J C_out = I − (−J E_o)^(K+1)``. Here ``q = ‖J E_o‖∞``
        (``f / (1 − f)`` for a uniform crosstalk fraction ``f``) and ``t`` are the live fibers'
        transmissions.

        Returns
        -------
        float
            ``q^(K+1) · t_max / t_min`` (0 without output crosstalk).
        """
        q = self._neumann_ratio
        t = np.asarray(self.key.transmission)[~self.dead]
        return q ** (int(order) + 1) * float(t.max() / t.min()) if t.size else 0.0

    @cached_property
    def _neumann_ratio(self) -> float:
        """``q = ‖J E_o‖∞``: largest light a site receives relative to the light it keeps."""
        c_out = self._factors[0]
        diag = c_out.diagonal()
        if np.any(diag <= 0):
            raise ValueError("output crosstalk: every site must keep part of its own light")
        off = abs(c_out - sp.diags(diag)).tocsr()
        return float((np.asarray(off.sum(axis=1)).ravel() / diag).max(initial=0.0))

    def inverse_terms(
        self, order: int | None = 1, *, fill_dead: bool = True
    ) -> list[sp.csr_matrix]:
        """The terms ``X_0, X_1, ..., X_K`` of the sparse left inverse, each ``(784, n_sites)``.

        ``X_k = E⁺ F (P D)⁺ (−J E_o)^k J diag(1/g)``; their sum maps noise-free readouts minus
        offset back to the input-face image. ``X_0`` holds the routing, transmission, stray
        light scale and dead-fiber fill; higher terms undo the output crosstalk.

        Parameters
        ----------
        order : int or None
            Highest Neumann order ``K`` (>= 0). ``None``: one term, the exact inverse of the
            output crosstalk (dense in general; for reference and tests).
        fill_dead : bool
            Fill dead fibers from their live input-face neighbours (else they read 0).
        """
        if order is not None and (isinstance(order, bool) or int(order) != order or order < 0):
            raise ValueError(f"order must be an integer >= 0 or None, got {order!r}")
        c_out = self._factors[0]
        n = self.n_sites
        dead = self.dead
        t = np.asarray(self.key.transmission)
        routing = np.asarray(self.key.routing)
        inv_t = np.divide(1.0, t, out=np.zeros(n), where=~dead)
        # (P D)⁺: input fiber i reads output site routing[i], divided by its transmission
        unroute = sp.csr_matrix((inv_t, (np.arange(n), routing)), shape=(n, n))
        if fill_dead and dead.any():
            cfg = self.key.config
            unroute = fill_operator(dead, adjacency(cfg.lattice, cfg.rows, cfg.cols)) @ unroute
        head = self._entrance_pinv @ unroute  # (784, n_sites)
        tail = sp.diags(1.0 / self.site_gain)
        if order is not None and self._neumann_ratio >= 1.0:
            raise ValueError(
                f"output crosstalk too strong for a truncated series (a site keeps less light "
                f"than it receives, q = {self._neumann_ratio:.3g} >= 1); use order=None"
            )
        if order is None:
            exact = np.linalg.inv(c_out.toarray())
            return [sp.csr_matrix(np.asarray(head @ exact) @ tail.toarray())]
        j = sp.diags(1.0 / c_out.diagonal(), format="csr")
        step = sp.csr_matrix(-(j @ (c_out - sp.diags(c_out.diagonal()))))  # −J E_o
        terms, power = [], sp.identity(n, format="csr")
        for _ in range(int(order) + 1):
            x = sp.csr_matrix(head @ power @ j @ tail)
            x.eliminate_zeros()
            terms.append(x)
            power = sp.csr_matrix(step @ power)
            if power.nnz == 0:
                break
        return terms
