"""From bit evidence to a routing: candidates, conflict resolution by margins, dead fibers.

Every live output site proposes its hard-decoded input fiber and the fibers reached by
flipping up to four of its least reliable bits, each at the cost of the flipped bits'
``|LLR|`` (the log-likelihood lost against the hard decision). A minimum-cost bipartite
matching of sites to distinct fibers (scipy's ``min_weight_full_bipartite_matching``, with a
costly "no fiber" option per site so a matching always exists) resolves sites that
claim the same fiber by their margins. Sites left without a candidate are matched to the
remaining fibers on the full likelihood (:func:`scipy.optimize.linear_sum_assignment`).
Fibers no lit site claims are dead; their output sites cannot be measured, so they are put
where the rest of their key block went (the block structure of the key survives).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linear_sum_assignment
from scipy.sparse.csgraph import min_weight_full_bipartite_matching

from optics.faceplate import FaceplateConfig
from sim.calibration.graycode import gray_decode, gray_encode

__all__ = ["Decoded", "decode_routing"]

_FLIP = 4  # least reliable bits tried per site
#: More hard-decode conflicts than this fraction of live sites: the frames are wrong.
MAX_CONFLICTS = 0.1


@dataclass(frozen=True)
class Decoded:
    """A decoded routing.

    Attributes
    ----------
    routing : (n,) int64
        Output site of every input fiber (a permutation).
    dead : (n,) bool
        Input fibers no lit site claims.
    margin_sigma : (n,) float64
        Weakest bit's distance from the decision boundary in noise σ, signed (negative where
        the matching overrode the evidence); NaN for dead fibers, inf without code bits.
    invalid_codes : int
        Sites whose hard decode names no fiber of the lattice.
    duplicate_claims : int
        Fibers claimed by two or more sites' hard decodes.
    resolved : int
        Sites given another fiber than their hard decode (conflicts resolved).
    """

    routing: np.ndarray
    dead: np.ndarray
    margin_sigma: np.ndarray
    invalid_codes: int
    duplicate_claims: int
    resolved: int


def _fiber_bits(fib: np.ndarray, axis_x: np.ndarray, bit_no: np.ndarray, cols: int) -> np.ndarray:
    """Gray-code bits (len(fib), n_bits) of fibers ``fib`` in the evidence's bit order."""
    row, col = np.divmod(np.asarray(fib, dtype=np.int64), cols)
    out = np.zeros((row.size, bit_no.size), dtype=bool)
    for i, (ax, bn) in enumerate(zip(axis_x, bit_no, strict=True)):
        out[:, i] = (gray_encode(col if ax else row) >> bn) & 1
    return out


def _candidates(
    llr: np.ndarray, axis_x: np.ndarray, bit_no: np.ndarray, rows: int, cols: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hard decode (n,) and candidates (n, 2**k) with costs, -1 where no lattice fiber."""
    nb = llr.shape[1]
    hard = (llr > 0).astype(np.int64)
    gx = (np.where(axis_x, hard, 0) << bit_no).sum(axis=1)
    gy = (np.where(axis_x, 0, hard) << bit_no).sum(axis=1)

    def fiber(cx: np.ndarray, cy: np.ndarray) -> np.ndarray:
        col, row = gray_decode(cx), gray_decode(cy)
        return np.where((col < cols) & (row < rows), row * cols + col, -1)

    k = min(_FLIP, nb)
    order = np.argsort(np.abs(llr), axis=1)[:, :k]  # least reliable bits first
    subsets = (np.arange(2**k)[:, None] >> np.arange(k)[None, :]) & 1  # (2**k, k)
    cost = np.take_along_axis(np.abs(llr), order, axis=1) @ subsets.T  # (n, 2**k)
    fx = np.where(axis_x[order], 1 << bit_no[order], 0)  # (n, k) flip masks per axis
    fy = np.where(axis_x[order], 0, 1 << bit_no[order])
    mx = (fx[:, None, :] * subsets[None]).sum(axis=2)  # distinct bits: sum == xor
    my = (fy[:, None, :] * subsets[None]).sum(axis=2)
    return fiber(gx, gy), fiber(gx[:, None] ^ mx, gy[:, None] ^ my), cost


def _match(cand: np.ndarray, cost: np.ndarray, n_fibers: int) -> np.ndarray:
    """Minimum-cost matching of sites to distinct fibers; -1 where a site gets none."""
    n = cand.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    ok = cand >= 0
    rows = np.repeat(np.arange(n), cand.shape[1])[ok.ravel()]
    cols = cand[ok]
    w = cost[ok]
    none = 2.0 * float(w.max() if w.size else 0.0) + 2.0  # dearer than any candidate
    rows = np.concatenate([rows, np.arange(n)])
    cols = np.concatenate([cols, n_fibers + np.arange(n)])
    w = np.concatenate([w + 1.0, np.full(n, none)])  # > 0: zero weights are not edges
    g = sp.csr_matrix((w, (rows, cols)), shape=(n, n_fibers + n))
    match = min_weight_full_bipartite_matching(g)[1]
    return np.where(match < n_fibers, match, -1).astype(np.int64)


def _pair_dead(
    fibers: np.ndarray, sites: np.ndarray, routing: np.ndarray, bid: np.ndarray
) -> np.ndarray:
    """Output sites for unclaimed fibers, in the block where the rest of their block went."""
    if fibers.size == 0:
        return np.zeros(0, dtype=np.int64)
    known = routing >= 0
    cost = np.ones((fibers.size, sites.size))
    for i, fb in enumerate(fibers):
        mates = known & (bid == bid[fb])
        if mates.any():
            dest = np.bincount(bid[routing[mates]]).argmax()
            cost[i, bid[sites] == dest] = 0.0
    r_i, c_i = linear_sum_assignment(cost)
    out = np.empty(fibers.size, dtype=np.int64)
    out[r_i] = sites[c_i]
    return out


def decode_routing(
    bits: list[tuple[str, int]],
    llr: np.ndarray,
    info: np.ndarray,
    sites: np.ndarray,
    fp: FaceplateConfig,
    block_ids: np.ndarray,
) -> Decoded:
    """Assign every live output site a distinct input fiber; the rest are dead.

    Parameters
    ----------
    bits, llr, info
        From :func:`sim.calibration.readout.bit_evidence` (rows: live sites).
    sites : (n_live,) int
        Output site index of each row.
    fp : FaceplateConfig
        The lattice.
    block_ids : (n,) int
        Key block of every lattice site (:func:`optics.faceplate.lattice.block_ids` of the design),
        used only to place dead fibers.

    Raises
    ------
    ValueError
        More than 10 % of the live sites decode to a fiber another site claims or to no
        fiber: the frames do not belong to this pattern set and camera.
    """
    n = fp.n_fibers
    axis_x = np.array([a == "x" for a, _ in bits], dtype=bool)
    bit_no = np.array([b for _, b in bits], dtype=np.int64)
    hard, cand, cost = _candidates(llr, axis_x, bit_no, fp.rows, fp.cols)
    ok_hard = hard[hard >= 0]
    claims = np.bincount(ok_hard, minlength=n)
    n_invalid = int(np.sum(hard < 0))
    conflicted = int(np.sum(claims[ok_hard] > 1)) + n_invalid
    if conflicted > MAX_CONFLICTS * max(sites.size, 1):
        raise ValueError(
            f"the frames do not decode to a consistent routing ({conflicted} of {sites.size} "
            "fiber sites claim a fiber another site claims, or no fiber at all): frames out "
            "of order, from another camera, or made with another pattern set"
        )
    got = _match(cand, cost, n)
    routing = np.full(n, -1, dtype=np.int64)
    routing[got[got >= 0]] = sites[got >= 0]
    left = np.flatnonzero(got < 0)
    if left.size:  # no free candidate: match on the full likelihood
        free = np.flatnonzero(routing < 0)
        fbits = _fiber_bits(free, axis_x, bit_no, fp.cols)
        hard_bits = llr[left] > 0
        c_mat = (np.abs(llr[left])[:, None, :] * (hard_bits[:, None, :] ^ fbits[None])).sum(2)
        r_i, c_i = linear_sum_assignment(c_mat)
        got[left[r_i]] = free[c_i]
        routing[free[c_i]] = sites[left[r_i]]
    unclaimed = np.flatnonzero(routing < 0)
    dead_sites = np.setdiff1d(np.arange(n), sites[got >= 0])
    routing[unclaimed] = _pair_dead(unclaimed, dead_sites, routing, block_ids)
    dead = np.zeros(n, dtype=bool)
    dead[unclaimed] = True

    margin = np.full(n, np.nan)
    has = got >= 0
    fib = got[has]
    if bits:
        per_bit = llr[has] / np.sqrt(np.maximum(info[has], 1e-300))
        sign = np.where(_fiber_bits(fib, axis_x, bit_no, fp.cols), 1.0, -1.0)
        margin[fib] = (sign * per_bit).min(axis=1)
    else:
        margin[fib] = np.inf
    return Decoded(
        routing=routing,
        dead=dead,
        margin_sigma=margin,
        invalid_codes=n_invalid,
        duplicate_claims=int(np.sum(claims > 1)),
        resolved=int(np.sum(got[has] != hard[has])),
    )
