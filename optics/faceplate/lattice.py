"""Geometry of a fiber lattice: site centres, fill factor, neighbours and key blocks.

Conventions (shared by every keycam module that talks about fiber sites)
-----------------------------------------------------------------------
- A lattice has ``rows × cols`` sites, indexed **row-major**: site ``r * cols + c``.
- Row 0 is at the **top** of the face, column 0 at the left, as in an image.
- Coordinates are in µm relative to the centre of the face: **x to the right, y down**
  (image convention, so that increasing row index means increasing y).
- ``"square"``: site ``(r, c)`` sits at ``(c · s, r · s)`` before centring.
- ``"hexagonal"``: odd rows are shifted right by ``s/2`` and rows are ``√3/2 · s`` apart, so
  every site has six neighbours at distance ``s``.
- The face centre is the midpoint of the bounding box of the site centres.
"""

from __future__ import annotations

import functools
import itertools
import math
from typing import Literal

import numpy as np
import scipy.sparse as sp

__all__ = [
    "LatticeKind",
    "adjacency",
    "block_ids",
    "block_origins",
    "crosstalk_matrix",
    "fill_factor",
    "local_block_permutation",
    "local_rows_then_columns",
    "move_blocks",
    "neighbour_pairs",
    "no_three_decreasing",
    "rows_then_columns",
    "site_centers_um",
]

LatticeKind = Literal["square", "hexagonal"]

_HEX_ROW = math.sqrt(3.0) / 2.0


def _check_kind(lattice: str) -> None:
    if lattice not in ("square", "hexagonal"):
        raise ValueError(f"lattice must be 'square' or 'hexagonal', got {lattice!r}")


def _check_shape(rows: int, cols: int) -> None:
    if int(rows) != rows or int(cols) != cols or rows < 1 or cols < 1:
        raise ValueError(f"rows and cols must be positive integers, got rows={rows}, cols={cols}")


def site_centers_um(lattice: LatticeKind, rows: int, cols: int, pitch_um: float) -> np.ndarray:
    """Centres of all fiber sites, in µm relative to the face centre.

    Parameters
    ----------
    lattice : {"square", "hexagonal"}
        Lattice kind.
    rows, cols : int
        Lattice size (sites).
    pitch_um : float
        Centre-to-centre distance of nearest neighbours, µm.

    Returns
    -------
    (rows * cols, 2) float64
        ``[:, 0]`` is x (µm, to the right), ``[:, 1]`` is y (µm, **down**); row-major order.
    """
    _check_kind(lattice)
    _check_shape(rows, cols)
    if not pitch_um > 0:
        raise ValueError(f"pitch_um must be > 0 µm, got {pitch_um} µm")
    r, c = np.divmod(np.arange(rows * cols), cols)
    if lattice == "square":
        x = c * float(pitch_um)
        y = r * float(pitch_um)
    else:
        x = (c + 0.5 * (r % 2)) * float(pitch_um)
        y = r * (_HEX_ROW * float(pitch_um))
    x = x - 0.5 * (x.min() + x.max())
    y = y - 0.5 * (y.min() + y.max())
    return np.column_stack([x, y]).astype(np.float64)


def fill_factor(lattice: LatticeKind, pitch_um: float, core_diameter_um: float) -> float:
    """Fraction of the face area covered by fiber cores (infinite-lattice value).

    ``π/4 · (d/s)²`` for a square lattice and ``π/(2√3) · (d/s)² ≈ 0.907 (d/s)²`` for a
    hexagonal one (models.md: Faceplate).
    """
    _check_kind(lattice)
    if not pitch_um > 0 or not core_diameter_um > 0:
        raise ValueError(
            f"pitch_um and core_diameter_um must be > 0 µm, got {pitch_um} µm, "
            f"{core_diameter_um} µm"
        )
    ratio2 = (float(core_diameter_um) / float(pitch_um)) ** 2
    if lattice == "square":
        return math.pi / 4.0 * ratio2
    return math.pi / (2.0 * math.sqrt(3.0)) * ratio2


def neighbour_pairs(lattice: LatticeKind, rows: int, cols: int) -> np.ndarray:
    """All nearest-neighbour pairs of sites (each unordered pair once).

    Square lattices have 4 neighbours per interior site, hexagonal lattices 6; all at
    distance ``pitch``.

    Returns
    -------
    (n_pairs, 2) int64
        Row-major site indices ``(i, j)`` with ``i < j``.
    """
    _check_kind(lattice)
    _check_shape(rows, cols)
    idx = np.arange(rows * cols).reshape(rows, cols)
    pairs = [
        np.column_stack([idx[:, :-1].ravel(), idx[:, 1:].ravel()]),  # right neighbour
    ]
    if lattice == "square":
        pairs.append(np.column_stack([idx[:-1, :].ravel(), idx[1:, :].ravel()]))
    else:
        # Neighbours in the next row: even rows touch columns (c-1, c); odd rows (c, c+1).
        for r in range(rows - 1):
            a = idx[r]
            b = idx[r + 1]
            if r % 2 == 0:
                pairs.append(np.column_stack([a, b]))
                pairs.append(np.column_stack([a[1:], b[:-1]]))
            else:
                pairs.append(np.column_stack([a, b]))
                pairs.append(np.column_stack([a[:-1], b[1:]]))
    out = np.concatenate(pairs, axis=0).astype(np.int64)
    out.sort(axis=1)
    return out


def adjacency(lattice: LatticeKind, rows: int, cols: int) -> sp.csr_matrix:
    """Symmetric 0/1 nearest-neighbour adjacency matrix, ``(n, n)`` CSR."""
    n = rows * cols
    p = neighbour_pairs(lattice, rows, cols)
    i = np.concatenate([p[:, 0], p[:, 1]])
    j = np.concatenate([p[:, 1], p[:, 0]])
    a = sp.csr_matrix((np.ones(i.size), (i, j)), shape=(n, n))
    a.sum_duplicates()
    return a


def block_ids(rows: int, cols: int, block_size: int) -> np.ndarray:
    """Index of the ``b × b`` key block holding each site (row-major over blocks).

    Blocks tile the lattice from the top-left corner; when ``b`` does not divide the lattice
    the last block row/column is smaller. ``b ≥ max(rows, cols)`` gives one block.

    Returns
    -------
    (rows * cols,) int64
    """
    _check_shape(rows, cols)
    if int(block_size) != block_size or block_size < 1:
        raise ValueError(f"block_size must be a positive integer (fibers), got {block_size}")
    b = int(block_size)
    r, c = np.divmod(np.arange(rows * cols), cols)
    n_bcols = -(-cols // b)
    return ((r // b) * n_bcols + (c // b)).astype(np.int64)


def block_origins(rows: int, cols: int, block_size: int) -> np.ndarray:
    """Top-left ``(row, col)`` and shape ``(h, w)`` of every key block.

    Returns
    -------
    (n_blocks, 4) int64
        Columns ``row0, col0, height, width``, blocks in row-major order (as :func:`block_ids`).
    """
    b = int(block_size)
    r0 = np.arange(0, rows, b)
    c0 = np.arange(0, cols, b)
    grid_r, grid_c = np.meshgrid(r0, c0, indexing="ij")
    rr = grid_r.ravel()
    cc = grid_c.ravel()
    h = np.minimum(b, rows - rr)
    w = np.minimum(b, cols - cc)
    return np.column_stack([rr, cc, h, w]).astype(np.int64)


def crosstalk_matrix(lattice: LatticeKind, rows: int, cols: int, fraction: float) -> sp.csr_matrix:
    """Nearest-neighbour coupling matrix ``C`` with ``out = C @ in`` on one face.

    Each site keeps ``1 - fraction`` of its own light and receives ``fraction`` from its
    nearest neighbours, shared equally among them (models.md, Faceplate: sparse, non-negative,
    row-normalised). A site without neighbours (1×1 lattice) keeps everything.

    Returns
    -------
    (n, n) float64 CSR, non-negative, every row summing to 1.
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"crosstalk fraction must be in [0, 1), got {fraction}")
    n = rows * cols
    if fraction == 0.0 or n == 1:
        return sp.identity(n, format="csr", dtype=np.float64)
    a = adjacency(lattice, rows, cols)
    deg = np.asarray(a.sum(axis=1)).ravel()
    scale = np.divide(fraction, deg, out=np.zeros(n), where=deg > 0)
    keep = np.where(deg > 0, 1.0 - fraction, 1.0)
    c = sp.diags(scale) @ a + sp.diags(keep)
    c = sp.csr_matrix(c)
    c.sort_indices()
    return c


def local_block_permutation(
    rows: int, cols: int, block_size: int, *, rng: np.random.Generator
) -> np.ndarray:
    """Uniformly random routing that keeps every site inside its ``b × b`` block.

    Returns
    -------
    (rows * cols,) int64
        ``routing[i]`` is the destination site of site ``i``; a permutation.
    """
    n = rows * cols
    bid = block_ids(rows, cols, block_size)
    sites_by_block = np.argsort(bid, kind="stable")  # ascending site within each block
    fibers_shuffled = np.lexsort((rng.random(n), bid))  # random order within each block
    routing = np.empty(n, dtype=np.int64)
    routing[fibers_shuffled] = sites_by_block
    return routing


#: Longest line a rows-then-columns key shuffles (its shuffles are drawn from a list).
MAX_TWO_LANE_LINE = 8


def no_three_decreasing(values) -> bool:
    """True if the distinct ``values`` have no decreasing subsequence of length 3.

    Such a sequence is a union of two increasing ones (two lanes): each value joins the
    sequence with the larger last value below it (greedy patience sorting).
    """
    top = [-math.inf, -math.inf]  # last value of each increasing sequence, the larger first
    for v in values:
        if v > top[0]:
            top[0] = v
        elif v > top[1]:
            top[1] = v
        else:
            return False  # v is below both: a decreasing subsequence of length 3
    return True


@functools.cache
def _two_lane_perms(m: int) -> np.ndarray:
    """``(C_m, m)`` every permutation of ``m`` with no decreasing subsequence of length 3.

    These are the unions of two increasing sequences; there are Catalan(m) of them (14 for
    ``m = 4``, 1430 for ``m = 8``).
    """
    out = [p for p in itertools.permutations(range(m)) if no_three_decreasing(p)]
    return np.array(out, dtype=np.int64).reshape(len(out), m)


def _two_lane_shuffle(m: int, rng: np.random.Generator) -> np.ndarray:
    """Uniformly random permutation of ``m`` positions that is a union of two increasing
    sequences (no three positions reverse their order)."""
    if m > MAX_TWO_LANE_LINE:
        raise ValueError(f"two-lane shuffles are drawn for lines of at most {MAX_TWO_LANE_LINE}")
    perms = _two_lane_perms(m)
    return perms[rng.integers(perms.shape[0])].copy()


def rows_then_columns(rows: int, cols: int, *, rng: np.random.Generator) -> np.ndarray:
    """Random routing of a ``rows × cols`` grid: a shuffle of every row, then of every column.

    Each line shuffle is a union of two increasing sequences (no three sites of a line
    reverse their order). Every site can reach every other, and the routing is exactly one
    move along the row and one along the column for every site.

    Returns
    -------
    (rows * cols,) int64
        ``routing[i]`` is the destination site of site ``i``; a permutation.
    """
    _check_shape(rows, cols)
    r, c = np.divmod(np.arange(rows * cols), cols)
    mid_c = np.empty(rows * cols, dtype=np.int64)
    for i in range(rows):
        line = np.flatnonzero(r == i)
        mid_c[line] = _two_lane_shuffle(cols, rng)[c[line]]
    dest_r = np.empty(rows * cols, dtype=np.int64)
    for j in range(cols):
        line = np.flatnonzero(mid_c == j)  # one site of every row, in row order
        dest_r[line] = _two_lane_shuffle(rows, rng)[r[line]]
    return dest_r * cols + mid_c


def local_rows_then_columns(
    rows: int, cols: int, block_size: int, *, rng: np.random.Generator
) -> np.ndarray:
    """Block-local routing with every block shuffled by :func:`rows_then_columns`."""
    n = rows * cols
    routing = np.empty(n, dtype=np.int64)
    bid = block_ids(rows, cols, block_size)
    for k, (r0, c0, h, w) in enumerate(block_origins(rows, cols, block_size)):
        sites = np.flatnonzero(bid == k)  # ascending: row-major inside the block
        local = rows_then_columns(int(h), int(w), rng=rng)
        lr, lc = np.divmod(local, int(w))
        routing[sites] = (r0 + lr) * cols + c0 + lc
    return routing


def move_blocks(
    routing: np.ndarray,
    rows: int,
    cols: int,
    block_size: int,
    *,
    rng: np.random.Generator,
    rows_then_columns_blocks: bool = False,
) -> np.ndarray:
    """Compose a block-local ``routing`` with a random permutation of whole blocks.

    Every block travels as a unit (a sub-bundle): a site that ``routing`` sends to local
    position ``(i, j)`` of its own block goes to local position ``(i, j)`` of the block's
    destination. Blocks only trade places with blocks of the same shape (edge blocks of a
    lattice that ``b`` does not divide stay among themselves). With
    ``rows_then_columns_blocks`` the blocks are shuffled by :func:`rows_then_columns` on the
    grid of blocks (``b`` must divide ``rows`` and ``cols``).
    """
    org = block_origins(rows, cols, block_size)
    dest = np.arange(len(org))
    if rows_then_columns_blocks:
        if rows % block_size or cols % block_size:
            raise ValueError("a rows-then-columns block shuffle needs b to divide rows and cols")
        dest = rows_then_columns(rows // block_size, cols // block_size, rng=rng)
    else:
        shapes = org[:, 2] * (int(block_size) + 1) + org[:, 3]
        for s in np.unique(shapes):
            members = np.flatnonzero(shapes == s)
            dest[members] = members[rng.permutation(members.size)]
    bid = block_ids(rows, cols, block_size)
    tr, tc = np.divmod(np.asarray(routing, dtype=np.int64), cols)
    src = bid[routing]
    if not np.array_equal(src, bid):
        raise ValueError("move_blocks needs a block-local routing")
    new = dest[src]
    tr = tr - org[src, 0] + org[new, 0]
    tc = tc - org[src, 1] + org[new, 1]
    return tr * cols + tc
