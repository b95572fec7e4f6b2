"""Permutation algorithms behind the router: three-phase grid decomposition and lane passes.

Every permutation of an ``R × C`` grid is the product of three line shuffles: one inside
every column, one inside every row, one inside every column again (models.md: Fabrication). The
intermediate row of each fiber is a colour of a proper edge colouring of the bipartite
multigraph *source column → target column*, which is ``R``-regular and therefore splits into
``R`` perfect matchings (König). Each matching is found with Hopcroft–Karp
(:func:`scipy.sparse.csgraph.maximum_bipartite_matching`).

A line shuffle is then realised in *passes* on two lanes: during a pass each fiber sits in
lane 0 or lane 1 and moves along the line; fibers in the same lane keep their order, so a
pass can realise any permutation that is the union of two increasing sequences. Radix
passes (most significant bit first) realise every permutation of ``n`` positions in
``ceil(log2 n)`` passes, each moving fibers by at most ``2^j`` positions in pass ``j``.

Everything here is integer arithmetic on index arrays; geometry lives in
:mod:`fabrication.routing`.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linear_sum_assignment
from scipy.sparse.csgraph import maximum_bipartite_matching

from optics.faceplate.lattice import no_three_decreasing

__all__ = [
    "LinePasses",
    "decompose_grid",
    "decompose_grid_few_passes",
    "grid_decompositions",
    "is_two_lane",
    "lds_at_most_two",
    "line_passes",
    "phase_passes",
    "two_lane_split",
]


def decompose_grid(
    src_row: np.ndarray,
    src_col: np.ndarray,
    dst_row: np.ndarray,
    dst_col: np.ndarray,
    rows: int,
    cols: int,
) -> np.ndarray:
    """Intermediate row of every fiber for the column / row / column decomposition.

    Parameters
    ----------
    src_row, src_col, dst_row, dst_col : (n,) int
        Start and target grid position of each fiber, ``0 <= row < rows``,
        ``0 <= col < cols``; ``n = rows * cols`` and both position sets are the whole grid.
    rows, cols : int
        Grid size.

    Returns
    -------
    (n,) int64
        Row ``k`` of each fiber after phase 1. Phase 1 moves fiber ``f`` inside column
        ``src_col[f]`` from ``src_row[f]`` to ``k[f]``; phase 2 inside row ``k[f]`` to
        ``dst_col[f]``; phase 3 inside column ``dst_col[f]`` to ``dst_row[f]``. In every phase
        each line receives each position exactly once.

    Notes
    -----
    Colour classes are assigned to rows by a linear assignment that minimises the squared
    phase-1 and phase-3 displacements, which shortens the routed bundle.
    """
    src_row = np.asarray(src_row, dtype=np.int64)
    src_col = np.asarray(src_col, dtype=np.int64)
    dst_row = np.asarray(dst_row, dtype=np.int64)
    dst_col = np.asarray(dst_col, dtype=np.int64)
    n = rows * cols
    if src_row.shape != (n,):
        raise ValueError(f"expected {n} fibers for a {rows}x{cols} grid, got {src_row.shape}")
    if rows == 1:
        return np.zeros(n, dtype=np.int64)
    colour = _edge_colouring(src_col, dst_col, rows, cols)
    # Assign colour classes to rows: minimise displacement in phases 1 and 3.
    cost = np.zeros((rows, rows))
    rr = np.arange(rows)
    np.add.at(cost, colour, (src_row[:, None] - rr[None, :]) ** 2 + (dst_row[:, None] - rr) ** 2)
    ci, ri = linear_sum_assignment(cost)
    row_of_colour = np.empty(rows, dtype=np.int64)
    row_of_colour[ci] = ri
    return row_of_colour[colour]


def _edge_colouring(
    src_col: np.ndarray,
    dst_col: np.ndarray,
    rows: int,
    cols: int,
    relabel: np.ndarray | None = None,
    tiebreak: np.ndarray | None = None,
) -> np.ndarray:
    """Colour ``0..rows-1`` of every fiber: each colour is a perfect matching of columns.

    ``relabel`` (a permutation of the source columns) and ``tiebreak`` (an order of the
    fibers) pick other, equally valid colourings.
    """
    n = src_col.size
    lab = np.arange(cols) if relabel is None else np.asarray(relabel)
    sc = lab[src_col]
    # Remaining fibers per (source col, target col), as lists sorted for determinism.
    edge = sc * cols + dst_col
    tb = np.arange(n) if tiebreak is None else np.asarray(tiebreak)
    order = np.lexsort((tb, edge))
    edge_sorted = edge[order]
    starts = np.searchsorted(edge_sorted, np.arange(cols * cols), side="left")
    ends = np.searchsorted(edge_sorted, np.arange(cols * cols), side="right")
    ptr = starts.copy()
    colour = np.full(n, -1, dtype=np.int64)
    for k in range(rows):
        remaining = ends - ptr
        nz = np.flatnonzero(remaining > 0)
        a = nz // cols
        b = nz % cols
        graph = sp.csr_matrix((np.ones(nz.size, dtype=np.int8), (a, b)), shape=(cols, cols))
        match = maximum_bipartite_matching(graph, perm_type="column")
        if np.any(match < 0):  # impossible for a regular multigraph (König)
            raise RuntimeError("edge colouring failed: the grid mapping is not a permutation")
        cells = np.arange(cols) * cols + match
        colour[order[ptr[cells]]] = k
        ptr[cells] += 1
    return colour


def phase_passes(line: np.ndarray, cur: np.ndarray, tgt: np.ndarray) -> int:
    """Two-lane passes a phase needs: 0 (nothing moves), 1 (every line a union of two
    increasing sequences) or the radix count of the longest line."""
    if np.array_equal(cur, tgt):
        return 0
    order = np.lexsort((cur, line))
    # plain Python over the sorted lines: the lines are short, and this runs for every
    # candidate decomposition (a line's targets are distinct, so their order is the rank)
    lines, targets = line[order].tolist(), tgt[order].tolist()
    single, longest, start = True, 1, 0
    for i in range(1, len(lines) + 1):
        if i == len(lines) or lines[i] != lines[start]:
            longest = max(longest, i - start)
            if single and not no_three_decreasing(targets[start:i]):
                single = False
            start = i
    return 1 if single else int(np.ceil(np.log2(longest)))


def grid_decompositions(
    src_row: np.ndarray,
    src_col: np.ndarray,
    dst_row: np.ndarray,
    dst_col: np.ndarray,
    rows: int,
    cols: int,
    *,
    tries: int = 8,
    rng: np.random.Generator,
) -> list[tuple[tuple[int, int, int], float, np.ndarray]]:
    """Candidate column / row / column decompositions with their two-lane pass counts.

    Tries the default edge colouring and ``tries - 1`` random ones (``rng``); each colour
    class is assigned to a row by the displacement-minimising assignment and, for grids of
    at most 6 rows, by every assignment.

    Returns
    -------
    list of ((p1, p2, p3), sq, k)
        Passes of each phase (:func:`phase_passes`), squared phase-1 and phase-3
        displacement (sites²) and the intermediate rows ``k`` (as in :func:`decompose_grid`).
    """
    src_row = np.asarray(src_row, dtype=np.int64)
    src_col = np.asarray(src_col, dtype=np.int64)
    dst_row = np.asarray(dst_row, dtype=np.int64)
    dst_col = np.asarray(dst_col, dtype=np.int64)
    n = rows * cols
    if rows == 1 or n <= 1:
        k = decompose_grid(src_row, src_col, dst_row, dst_col, rows, cols)
        return [((phase_passes(src_col, src_row, k), phase_passes(k, src_col, dst_col),
                  phase_passes(dst_col, k, dst_row)), 0.0, k)]  # fmt: skip
    out = []
    seen: set[bytes] = set()
    rr = np.arange(rows)
    for t in range(max(1, tries)):
        if t == 0:
            colour = _edge_colouring(src_col, dst_col, rows, cols)
        else:
            colour = _edge_colouring(
                src_col, dst_col, rows, cols, rng.permutation(cols), rng.permutation(n)
            )
        p2 = phase_passes(colour, src_col, dst_col)  # phase 2 does not depend on the rows
        cost = np.zeros((rows, rows))
        np.add.at(cost, colour, (src_row[:, None] - rr) ** 2 + (dst_row[:, None] - rr) ** 2)
        ci, ri = linear_sum_assignment(cost)
        assignments = [ri[np.argsort(ci)]]
        if rows <= 6:
            assignments += [np.array(a) for a in itertools.permutations(range(rows))]
        for row_of_colour in assignments:
            k = row_of_colour[colour]
            tag = k.tobytes()
            if tag in seen:
                continue
            seen.add(tag)
            passes = (phase_passes(src_col, src_row, k), p2, phase_passes(dst_col, k, dst_row))
            out.append((passes, float(cost[np.arange(rows), row_of_colour].sum()), k))
    return out


def decompose_grid_few_passes(
    src_row: np.ndarray,
    src_col: np.ndarray,
    dst_row: np.ndarray,
    dst_col: np.ndarray,
    rows: int,
    cols: int,
    *,
    tries: int = 8,
    rng: np.random.Generator,
) -> np.ndarray:
    """Like :func:`decompose_grid`, choosing among colourings and row assignments.

    Of the candidates of :func:`grid_decompositions` returns the intermediate rows with the
    fewest two-lane passes over the three phases (ties: smallest squared displacement) —
    fewer passes mean fewer stages, and each stage costs an S-curve.
    """
    cands = grid_decompositions(
        src_row, src_col, dst_row, dst_col, rows, cols, tries=tries, rng=rng
    )
    return min(cands, key=lambda c: (sum(c[0]), c[1]))[2]


def is_two_lane(perm: np.ndarray) -> bool:
    """True if ``perm`` (position → target) is a union of two increasing sequences."""
    return two_lane_split(perm) is not None


def lds_at_most_two(perm: np.ndarray) -> bool:
    """True if ``perm`` has no decreasing subsequence of length 3 (one two-lane pass)."""
    return two_lane_split(perm) is not None


def two_lane_split(perm: np.ndarray) -> np.ndarray | None:
    """Lane (0/1) of each position so that each lane's targets increase, or None.

    Greedy patience cover: a position goes to the first lane whose last target is smaller.
    """
    last = [-1, -1]
    lanes = np.empty(len(perm), dtype=np.int64)
    for i, t in enumerate(np.asarray(perm)):
        if t > last[0]:
            lanes[i] = 0
            last[0] = t
        elif t > last[1]:
            lanes[i] = 1
            last[1] = t
        else:
            return None
    return lanes


@dataclass(frozen=True)
class LinePasses:
    """Two-lane passes that realise one line shuffle.

    Attributes
    ----------
    positions : (n_pass + 1, n) int64
        Position along the line of each fiber (indexed by its starting position) before
        pass 0, after pass 0, ...; the last row equals the target permutation.
    lanes : (n_pass, n) int64
        Lane (0 or 1) of each fiber during each pass.
    """

    positions: np.ndarray
    lanes: np.ndarray

    @property
    def n_passes(self) -> int:
        """Number of passes."""
        return self.lanes.shape[0]


def line_passes(
    perm: np.ndarray, n_passes: int | None = None, *, allow_single: bool = True
) -> LinePasses:
    """Two-lane passes for the line shuffle ``perm`` (position ``i`` goes to ``perm[i]``).

    A single pass is used when ``perm`` is already a union of two increasing sequences and
    ``n_passes`` allows it; otherwise most-significant-bit-first radix passes: pass ``j``
    stably partitions every group of equal ``target >> (j + 1)`` by bit ``j``. Lanes are
    chosen per group so that as few fibers as possible change lane between passes.

    Radix passes are aligned by bit: pass ``j`` of every line of the same length moves fibers
    by at most ``2^(nbits-1-j)`` positions; a pass in which nothing moves is kept (as an
    identity) so lines stay aligned.

    Parameters
    ----------
    perm : (n,) int
        Permutation of ``0..n-1``.
    n_passes : int, optional
        Force exactly this many passes (identity passes are prepended); must be at least the
        number needed.
    allow_single : bool
        Use one pass when ``perm`` is a union of two increasing sequences.
    """
    perm = np.asarray(perm, dtype=np.int64)
    n = perm.size
    if n == 0 or not np.array_equal(np.sort(perm), np.arange(n)):
        raise ValueError("perm must be a permutation of 0..n-1")
    ident = np.arange(n)
    if np.array_equal(perm, ident):
        k = n_passes or 0
        return LinePasses(np.tile(ident, (k + 1, 1)), np.zeros((k, n), dtype=np.int64))
    split = two_lane_split(perm)
    if allow_single and split is not None and (n_passes is None or n_passes >= 1):
        k = n_passes or 1
        pos = np.vstack([np.tile(ident, (k, 1)), perm[None, :]])
        lanes = np.zeros((k, n), dtype=np.int64)
        lanes[-1] = split
        return LinePasses(pos, lanes)
    nbits = max(1, int(np.ceil(np.log2(n))))
    positions = [ident.copy()]
    lane_rows: list[np.ndarray] = []
    cur = ident.copy()  # current position of each fiber (fiber = starting position)
    prev_lane = np.zeros(n, dtype=np.int64)
    for j in range(nbits - 1, -1, -1):
        key = perm >> j
        # new arrangement: stable sort by key of the current arrangement
        order_now = np.argsort(cur, kind="stable")  # fibers in current order
        new_order = order_now[np.argsort(key[order_now], kind="stable")]
        new = np.empty(n, dtype=np.int64)
        new[new_order] = ident
        bit = (perm >> j) & 1
        group = perm >> (j + 1)
        lane = bit.copy()
        # flip a group's lanes if that keeps more fibers where they were
        for g in np.unique(group):
            m = group == g
            if np.count_nonzero(lane[m] != prev_lane[m]) > np.count_nonzero(
                (1 - lane[m]) != prev_lane[m]
            ):
                lane[m] = 1 - lane[m]
        if np.array_equal(new, cur):
            # nothing moves on this line in this pass: nobody needs to change lane
            lane = prev_lane.copy()
        positions.append(new)
        lane_rows.append(lane)
        prev_lane = lane
        cur = new
    if not np.array_equal(cur, perm):  # pragma: no cover - radix sort is exact
        raise RuntimeError("radix passes did not reach the target")
    pos = np.array(positions)
    ln = np.array(lane_rows, dtype=np.int64)
    if n_passes is not None:
        if n_passes < ln.shape[0]:
            raise ValueError(f"n_passes={n_passes} is fewer than the {ln.shape[0]} needed")
        extra = n_passes - ln.shape[0]
        pos = np.vstack([np.tile(ident, (extra, 1)), pos])
        ln = np.vstack([np.zeros((extra, n), dtype=np.int64), ln])
    return LinePasses(pos, ln)
