"""The braid: a key's permutation as a short sequence of collision-free fiber layouts.

Fibers leave the packed face, move on a *routing grid* of pitch ``P`` in x and y, and come
back to the face. On the grid every move is a **slide** along one axis: a line shuffle
(:mod:`fabrication.decompose`) runs as passes on two *lanes* beside its line, offset by
``±L/2`` across it, ``L`` = core + wall + margin. Fibers in one lane keep their order along
the line, so they never meet; the lanes are ``L`` apart, so fibers in different lanes pass
at ``L``. A fiber's lane offset across a line is a coordinate the slide does not change,
while its offset *along* the line is free during the slide: so every slide also puts its
fibers into the lanes of the next, perpendicular slide, and no separate lane step is needed
between phases. With offsets of at most ``L/2`` either way, neighbours along a line stay at
least ``P − L`` apart, the spacing that keeps two fibers tilted together clear of each other
(``clearance / cos θ_max`` plus the margin). Hence ``P = L + s``.

Only the passes of one phase need a separate *lane* stage between them (a move of at most
``L`` across the line, inside each fiber's own grid cell), and so does a phase that follows a
phase on the same axis. The first stage fans the packed face out onto the grid, straight into
the first slide's lanes; the last fans in from the last slide's lanes.

Phases come from one of two decompositions (:func:`phase_plans`): the whole permutation
(or every key block on its own, for a block-local key) split into column / row / column
shuffles, or, for a key that moves whole blocks, the shuffles inside the blocks followed by
the shuffles of the rigid blocks.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from fabrication.decompose import (
    decompose_grid_few_passes,
    grid_decompositions,
    lds_at_most_two,
    line_passes,
)
from optics.faceplate import lattice as lat

__all__ = ["Phase", "block_structure", "layouts", "phase_plans"]


@dataclass(frozen=True)
class Phase:
    """One line shuffle of every line along ``axis`` at once, as two-lane passes.

    Attributes
    ----------
    axis : str
        ``"y"`` (fibers move along columns) or ``"x"`` (along rows).
    positions : (p + 1, n) int64
        Grid index along the axis of every fiber before pass 0, after pass 0, ...
    lanes : (p, n) int64
        Lane (0 or 1) of every fiber during each pass.
    """

    axis: str
    positions: np.ndarray
    lanes: np.ndarray

    @property
    def n_passes(self) -> int:
        """Number of passes."""
        return int(self.lanes.shape[0])


def _phase(axis: str, line: np.ndarray, cur: np.ndarray, tgt: np.ndarray) -> Phase:
    """Two-lane passes of all lines (fibers grouped by ``line``) from ``cur`` to ``tgt``.

    Each line holds the same set of positions before and after. If every line is a union of
    two increasing sequences, one pass; otherwise radix passes for all lines (identity passes
    prepended to shorter lines), so that moves of similar length share a pass.
    """
    n = cur.size
    order = np.lexsort((cur, line))
    cut = np.flatnonzero(np.diff(line[order])) + 1
    groups = np.split(order, cut)
    perms = []
    for g in groups:  # g sorted by current position
        rank_t = np.argsort(np.argsort(tgt[g], kind="stable"), kind="stable")
        perms.append(rank_t)  # local position i -> local target rank
    single = all(lds_at_most_two(p) for p in perms)
    if single:
        n_pass = 0 if all(np.array_equal(p, np.arange(p.size)) for p in perms) else 1
    else:
        # radix passes for every line: pass j moves no fiber more than 2^(bits-1-j) places,
        # so the longest moves share the first pass and later passes stay short
        n_pass = max(int(np.ceil(np.log2(p.size))) for p in perms if p.size > 1)
    positions = np.empty((n_pass + 1, n), dtype=np.int64)
    lanes = np.zeros((n_pass, n), dtype=np.int64)
    for g, perm in zip(groups, perms, strict=True):
        slots = np.sort(cur[g])  # the positions this line occupies, before and after
        if not np.array_equal(slots, np.sort(tgt[g])):  # pragma: no cover - decomposition bug
            raise RuntimeError("a line shuffle must keep the line's set of positions")
        lp = line_passes(perm, n_passes=n_pass, allow_single=single)
        positions[:, g] = slots[lp.positions]
        lanes[:, g] = lp.lanes
    # passes in which no fiber moves (low radix bits of a line that moves whole blocks)
    moves = np.flatnonzero(np.any(positions[1:] != positions[:-1], axis=1))
    positions = positions[np.concatenate([[0], moves + 1])]
    lanes = lanes[moves]
    return Phase(axis, positions, lanes)


def block_structure(
    routing: np.ndarray, rows: int, cols: int, b: int
) -> tuple[np.ndarray, np.ndarray] | None:
    """Split a block-moving routing into a block-local routing and a block permutation.

    Returns ``(local, block_dest)``: ``local`` keeps every fiber in its block (at the local
    position it reaches in its destination block) and ``block_dest[k]`` is the destination
    block of block ``k``; ``None`` if the routing does not move whole, equally shaped blocks.
    """
    if b >= max(rows, cols) or rows % b or cols % b:
        return None
    bid = lat.block_ids(rows, cols, b)
    org = lat.block_origins(rows, cols, b)
    dest_block = bid[routing]
    nb = org.shape[0]
    block_dest = np.full(nb, -1, dtype=np.int64)
    for k in range(nb):
        d = np.unique(dest_block[bid == k])
        if d.size != 1:
            return None
        block_dest[k] = d[0]
    if not np.array_equal(np.sort(block_dest), np.arange(nb)):
        return None
    tr, tc = np.divmod(routing, cols)
    lr = tr - org[dest_block, 0] + org[bid, 0]
    lc = tc - org[dest_block, 1] + org[bid, 1]
    return lr * cols + lc, block_dest


def _decompose(
    sr, sc, dr, dc, rows: int, cols: int, rng: np.random.Generator, tries: int = 8
) -> np.ndarray:
    return decompose_grid_few_passes(sr, sc, dr, dc, rows, cols, tries=tries, rng=rng)


#: Edge colourings tried per block of a block-local routing, and for the grid of blocks.
LOCAL_TRIES = 48
BLOCK_TRIES = 64


def _local_rows(
    routing: np.ndarray, rows: int, cols: int, b: int, rng: np.random.Generator
) -> np.ndarray:
    """Intermediate row of every fiber for a block-local routing (each block on its own).

    All blocks move in the same stages, so a phase needs as many passes as its worst block.
    Every block's candidate decompositions are collected, the pass pattern ``(p1, p2, p3)``
    with the fewest passes that every block can meet is chosen, and each block takes its
    candidate within that pattern with the smallest squared displacement.
    """
    n = rows * cols
    sr, sc = np.divmod(np.arange(n), cols)
    dr, dc = np.divmod(routing, cols)
    k = np.empty(n, dtype=np.int64)
    bid = lat.block_ids(rows, cols, b)
    org = lat.block_origins(rows, cols, b)
    cands = []
    for blk, (r0, c0, h, w) in enumerate(org):
        f = np.flatnonzero(bid == blk)
        cands.append(
            grid_decompositions(
                sr[f] - r0, sc[f] - c0, dr[f] - r0, dc[f] - c0, h, w, tries=LOCAL_TRIES, rng=rng
            )
        )
    top = [max(c[0][i] for cb in cands for c in cb) for i in range(3)]
    patterns = sorted(itertools.product(*(range(t + 1) for t in top)), key=lambda p: (sum(p), p))
    for pattern in patterns:
        picks = []
        for cb in cands:
            fit = [c for c in cb if all(x <= y for x, y in zip(c[0], pattern, strict=True))]
            if not fit:
                break
            picks.append(min(fit, key=lambda c: c[1])[2])
        else:
            break
    for blk, (r0, _c0, _h, _w) in enumerate(org):
        k[bid == blk] = r0 + picks[blk]
    return k


def _three_phases(
    routing: np.ndarray, rows: int, cols: int, k: np.ndarray, blocks: np.ndarray | None
) -> list[Phase]:
    """Column / row / column phases through intermediate rows ``k``.

    ``blocks`` (block id of every site) keeps the lines of a block-local routing inside their
    blocks; ``None`` uses whole columns and rows.
    """
    n = rows * cols
    sr, sc = np.divmod(np.arange(n), cols)
    dr, dc = np.divmod(routing, cols)
    if blocks is None:
        lines = (sc, k, dc)
    else:
        bo = blocks[routing]
        lines = (blocks * cols + sc, blocks * rows + k, bo * cols + dc)
    return [
        _phase("y", lines[0], sr, k),
        _phase("x", lines[1], sc, dc),
        _phase("y", lines[2], k, dr),
    ]


def phase_plans(
    routing: np.ndarray,
    rows: int,
    cols: int,
    b: int,
    *,
    move_length: Callable[[float], float] | None = None,
    pitch_mm: float = 1.0,
    lane_mm: float = 0.5,
) -> dict[str, list[Phase]]:
    """Candidate decompositions of ``routing`` into phases, by name.

    ``move_length`` (z-length in mm of a stage whose largest lateral move is the argument, in
    mm), ``pitch_mm`` and ``lane_mm`` (routing pitch and lane spacing) rank the decompositions
    of the grid of blocks by estimated length; without it, by fewest passes.

    ``"block"`` (every key block on its own; block-local keys), ``"global"`` (the whole grid),
    and ``"two_level"`` (shuffles inside the blocks, then the rigid blocks shuffled on the
    block grid, rows first so the axes keep alternating) for keys that move whole blocks.
    The router keeps whichever routes shortest.
    """
    routing = np.asarray(routing, dtype=np.int64)
    n = rows * cols
    # the decompositions are searched with a generator seeded by the routing itself, so the
    # same key always routes the same way
    seed = int.from_bytes(hashlib.sha256(routing.astype("<i8").tobytes()).digest()[:8], "little")
    rng = np.random.default_rng(seed)
    plans: dict[str, list[Phase]] = {}
    bid = lat.block_ids(rows, cols, b)
    if b < max(rows, cols) and np.array_equal(bid[routing], bid):
        k = _local_rows(routing, rows, cols, b, rng)
        plans["block"] = _three_phases(routing, rows, cols, k, bid)
        return plans
    sr, sc = np.divmod(np.arange(n), cols)
    dr, dc = np.divmod(routing, cols)
    plans["global"] = _three_phases(
        routing, rows, cols, _decompose(sr, sc, dr, dc, rows, cols, rng), None
    )
    split = block_structure(routing, rows, cols, b)
    if split is not None:
        local, block_dest = split
        phases = _three_phases(local, rows, cols, _local_rows(local, rows, cols, b, rng), bid)
        # rigid blocks on the block grid, transposed (row / column / row) so that the first
        # block phase runs along x, after the last local phase along y
        nbr, nbc = rows // b, cols // b
        kb = np.arange(nbr * nbc)
        br, bc = np.divmod(kb, nbc)
        tbr, tbc = np.divmod(block_dest, nbc)
        # intermediate block column: the candidate with the shortest estimated block phases
        cands = grid_decompositions(bc, br, tbc, tbr, nbc, nbr, tries=BLOCK_TRIES, rng=rng)
        if move_length is None:
            inter_c = min(cands, key=lambda c: (sum(c[0]), c[1]))[2]
        else:
            scale = b * pitch_mm

            def estimate(c) -> tuple[float, float]:
                k = c[2]
                moves = (np.abs(k - bc).max(), np.abs(tbr - br).max(), np.abs(tbc - k).max())
                total = 0.0
                for p, m in zip(c[0], moves, strict=True):
                    if p == 1:
                        total += move_length(m * scale + 0.5 * lane_mm)
                    elif p > 1:  # radix passes: halving moves, a lane step between passes
                        for j in range(p):
                            step = min(float(m), 2.0 ** (p - 1 - j))
                            total += move_length(step * scale + 0.5 * lane_mm)
                        total += (p - 1) * move_length(lane_mm)
                return total, c[1]

            inter_c = min(cands, key=estimate)[2]
        lr, lc = np.divmod(local, cols)
        blk = bid[local]  # block of every fiber (its own)
        off_r, off_c = lr - br[blk] * b, lc - bc[blk] * b
        mid_c = inter_c[blk] * b + off_c
        end_r = tbr[blk] * b + off_r
        end_c = tbc[blk] * b + off_c
        phases += [
            _phase("x", lr, lc, mid_c),
            _phase("y", mid_c, lr, end_r),
            _phase("x", end_r, mid_c, end_c),
        ]
        plans["two_level"] = phases
    return plans


def layouts(
    phases: list[Phase],
    rows: int,
    cols: int,
    pitch_mm: float,
    lane_mm: float,
    *,
    merged: bool,
) -> list[tuple[str, np.ndarray]]:
    """Grid layouts of a braid, from the end of the fan-out to the start of the fan-in.

    Parameters
    ----------
    phases : list of Phase
        In order; every phase starts where the previous one left the fibers.
    rows, cols : int
        Lattice size.
    pitch_mm, lane_mm : float
        Routing pitch ``P`` and lane spacing ``L``.
    merged : bool
        ``True``: lanes at ``±L/2`` and every slide also sets the lanes of the next,
        perpendicular slide (needs ``P ≥ L + s``, ``s`` the spacing along a line).
        ``False``: lanes at ``0`` and ``+L`` (needs ``P ≥ 2L``); a lane stage between two
        phases leaves the old lanes and enters the new ones.

    Returns
    -------
    list of (kind, (n, 2) float)
        ``"grid"`` (the plain grid where the fan-out ends), then ``"lane"`` or ``"shift"``
        for each stage, ending on the plain grid where the fan-in starts. A layout equal to
        the previous one is dropped.
    """
    n = rows * cols
    row, col = np.divmod(np.arange(n), cols)
    ex = np.zeros(n)
    ey = np.zeros(n)
    base = -0.5 if merged else 0.0

    def off(lanes: np.ndarray) -> np.ndarray:
        return (lanes + base) * lane_mm

    def coords() -> np.ndarray:
        x = (col - (cols - 1) / 2.0) * pitch_mm + ex
        y = (row - (rows - 1) / 2.0) * pitch_mm + ey
        return np.column_stack([x, y])

    out: list[tuple[str, np.ndarray]] = []

    def push(kind: str) -> None:
        pos = coords()
        if out and np.array_equal(out[-1][1], pos):
            return
        out.append((kind, pos))

    active = [p for p in phases if p.n_passes > 0]
    # the fan ends on the plain grid: a lane pair only L apart must not travel with the fan
    # (fibers moving together along their offset come closer in 3D)
    push("grid")
    for k, ph in enumerate(active):
        nxt = active[k + 1] if k + 1 < len(active) else None
        if k == 0 or not merged or active[k - 1].axis == ph.axis:
            # enter this phase's lanes (leaving the previous phase's, if any)
            if ph.axis == "y":
                ex, ey = off(ph.lanes[0]), (0.0 * ey if not merged or k == 0 else ey)
            else:
                ey, ex = off(ph.lanes[0]), (0.0 * ex if not merged or k == 0 else ex)
            if not merged:
                ex = ex if ph.axis == "y" else 0.0 * ex
                ey = ey if ph.axis == "x" else 0.0 * ey
            push("lane")
        for j in range(ph.n_passes):
            if j > 0:
                if ph.axis == "y":
                    ex = off(ph.lanes[j])
                else:
                    ey = off(ph.lanes[j])
                push("lane")
            along = ph.positions[j + 1]
            set_next = merged and j == ph.n_passes - 1
            if ph.axis == "y":
                row = along.copy()
                if set_next:
                    ey = off(nxt.lanes[0]) if nxt is not None and nxt.axis == "x" else 0.0 * ey
            else:
                col = along.copy()
                if set_next:
                    ex = off(nxt.lanes[0]) if nxt is not None and nxt.axis == "y" else 0.0 * ex
            push("shift")
    ex, ey = 0.0 * ex, 0.0 * ey  # back onto the plain grid before the fan-in
    push("lane")
    return out
