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

Phases come from one of several decompositions (:func:`phase_plans`): the whole
permutation (or every key block on its own, for a block-local key) split into column / row /
column shuffles; for a key that moves whole blocks, the shuffles inside the blocks followed
by the shuffles of the rigid blocks, or both interleaved and grouped by axis; for a key that
moves every fiber along its row and then along its column, those two shuffles.

The square grid serves both axes at once, so every move along a line costs ``P = L + s`` per
site, about twice the face pitch. :func:`axis_layouts` instead stretches the grid across the
running axis only (``s`` along the line, ``2L`` across) and *reshapes* it where the axis
changes: grouped phases then move at ``s`` per site and pay one reshape per change of axis.
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

__all__ = ["Phase", "axis_layouts", "block_structure", "layouts", "orient_reshapes", "phase_plans"]


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
    routing: np.ndarray,
    rows: int,
    cols: int,
    b: int,
    rng: np.random.Generator,
    memo: dict | None = None,
) -> np.ndarray:
    """Intermediate row of every fiber for a block-local routing (each block on its own).

    All blocks move in the same stages, so a phase needs as many passes as its worst block.
    Every block's candidate decompositions are collected, the pass pattern ``(p1, p2, p3)``
    with the fewest passes that every block can meet is chosen, and each block takes its
    candidate within that pattern with the smallest squared displacement.
    """
    tag = (np.asarray(routing, dtype=np.int64).tobytes(), rows, cols, b)
    if memo is not None and tag in memo:
        return memo[tag]
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
    if memo is not None:
        memo[tag] = k
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
    along_mm: float | None = None,
) -> dict[str, list[Phase]]:
    """Candidate decompositions of ``routing`` into phases, by name.

    ``move_length`` (z-length in mm of a stage whose largest lateral move is the argument, in
    mm), ``pitch_mm`` and ``lane_mm`` (routing pitch and lane spacing) rank the decompositions
    of the grid of blocks by estimated length; without it, by fewest passes.

    ``"block"`` (every key block on its own; block-local keys), ``"global"`` (the whole grid),
    and, for keys that move whole blocks, ``"two_level"`` (shuffles inside the blocks, then
    the rigid blocks shuffled on the block grid, rows first so the axes keep alternating)
    and ``"grouped_x"`` / ``"grouped_y"`` (the same shuffles interleaved so that phases on
    one axis follow each other, for :func:`axis_layouts`; ``along_mm`` is the pitch along a
    line there). A key that every fiber can travel as one move along its row and one along
    its column also gets ``"rows_columns"`` (or ``"columns_rows"``): two phases. The router
    keeps whichever routes shortest.
    """
    routing = np.asarray(routing, dtype=np.int64)
    n = rows * cols
    # the decompositions are searched with a generator seeded by the routing itself, so the
    # same key always routes the same way
    seed = int.from_bytes(hashlib.sha256(routing.astype("<i8").tobytes()).digest()[:8], "little")
    rng = np.random.default_rng(seed)
    plans: dict[str, list[Phase]] = {}
    bid = lat.block_ids(rows, cols, b)
    sr, sc = np.divmod(np.arange(n), cols)
    dr, dc = np.divmod(routing, cols)
    is_local = b < max(rows, cols) and np.array_equal(bid[routing], bid)
    # a key that every fiber can travel as one move along its row and one along its column
    # (or the other way round) needs two phases only (keys drawn with that shape:
    # ``FaceplateConfig.shuffle``); a block-local key's lines stay inside their blocks
    tag_r, tag_c = (bid * rows, bid * cols) if is_local else (0, 0)
    if _distinct_per_line(sr, dc):
        plans["rows_columns"] = [
            _phase("x", tag_r + sr, sc, dc),
            _phase("y", tag_c + dc, sr, dr),
        ]
    if _distinct_per_line(sc, dr):
        plans["columns_rows"] = [
            _phase("y", tag_c + sc, sr, dr),
            _phase("x", tag_r + dr, sc, dc),
        ]
    if is_local:
        k = _local_rows(routing, rows, cols, b, rng)
        plans["block"] = _three_phases(routing, rows, cols, k, bid)
        return plans
    plans["global"] = _three_phases(
        routing, rows, cols, _decompose(sr, sc, dr, dc, rows, cols, rng), None
    )
    split = block_structure(routing, rows, cols, b)
    if split is not None:
        local, block_dest = split
        memo: dict = {}  # the same block-local shuffle is decomposed for several plans
        local_k = _local_rows(local, rows, cols, b, rng, memo)
        phases = _three_phases(local, rows, cols, local_k, bid)
        # rigid blocks on the block grid, transposed (row / column / row) so that the first
        # block phase runs along x, after the last local phase along y
        nbr, nbc = rows // b, cols // b
        kb = np.arange(nbr * nbc)
        br, bc = np.divmod(kb, nbc)
        tbr, tbc = np.divmod(block_dest, nbc)
        # intermediate block column: the candidate with the shortest estimated block phases
        cands = grid_decompositions(bc, br, tbc, tbr, nbc, nbr, tries=BLOCK_TRIES, rng=rng)
        inter_c = _block_columns(cands, br, bc, tbr, tbc, move_length, b * pitch_mm, lane_mm)
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
        # the shuffles inside the blocks interleaved with the rigid-block moves and grouped
        # by axis, for layouts with a different pitch per axis (:func:`axis_layouts`); x
        # first, and y first (the same construction on the transposed lattice)
        step = b * (along_mm if along_mm is not None else pitch_mm)
        plans["grouped_x"] = _grouped_phases(
            routing, rows, cols, b, rng, move_length, step, lane_mm, memo
        )
        tsite, tdest = _transposed(routing, rows, cols)
        on_t = _grouped_phases(tdest, cols, rows, b, rng, move_length, step, lane_mm, memo)
        plans["grouped_y"] = [
            Phase("y" if ph.axis == "x" else "x", ph.positions[:, tsite], ph.lanes[:, tsite])
            for ph in on_t
        ]
    return plans


def _distinct_per_line(line: np.ndarray, dest: np.ndarray) -> bool:
    """True if no two items of one ``line`` share a ``dest``: the line shuffle that sends
    every item to its ``dest`` along the other axis first exists."""
    pairs = np.unique(np.column_stack([line, dest]), axis=0)
    return bool(pairs.shape[0] == np.asarray(line).size)


def _transposed(routing: np.ndarray, rows: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
    """``(tsite, trouting)``: site of every fiber on the transposed (``cols × rows``) lattice
    and the routing there (fiber ``tsite[i]`` goes to the transposed destination of ``i``)."""
    n = rows * cols
    sr, sc = np.divmod(np.arange(n), cols)
    tsite = sc * rows + sr
    dr, dc = np.divmod(np.asarray(routing), cols)
    trouting = np.empty(n, dtype=np.int64)
    trouting[tsite] = dc * rows + dr
    return tsite, trouting


def _block_columns(cands, br, bc, tbr, tbc, move_length, scale: float, lane_mm: float):
    """Intermediate block column of the candidate with the shortest estimated block phases.

    ``scale`` is the lateral distance (mm) of one block step; without ``move_length`` the
    candidate with the fewest passes wins.
    """
    if move_length is None:
        return min(cands, key=lambda c: (sum(c[0]), c[1]))[2]

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

    return min(cands, key=estimate)[2]


def _grouped_phases(
    routing: np.ndarray,
    rows: int,
    cols: int,
    b: int,
    rng: np.random.Generator,
    move_length: Callable[[float], float] | None,
    step_mm: float,
    lane_mm: float,
    memo: dict | None = None,
) -> list[Phase]:
    """Row / column / row shuffles inside the blocks interleaved with the rigid-block moves.

    A shuffle inside the blocks commutes with a move of whole blocks once it is carried along
    with its block, so the six phases can run in any interleaving that keeps each sequence's
    order. Here: local x, block x, local y, block y, local x, block x: three groups of two
    phases on one axis, so a layout changes its shape only twice. ``routing`` must move whole
    blocks (:func:`block_structure`); ``step_mm`` is the lateral distance of one block step,
    which ranks the block decompositions with ``move_length``.
    """
    split = block_structure(routing, rows, cols, b)
    if split is None:  # pragma: no cover - callers check the block structure first
        raise ValueError("the routing does not move whole blocks")
    local, block_dest = split
    nbr, nbc = rows // b, cols // b
    kb = np.arange(nbr * nbc)
    br, bc = np.divmod(kb, nbc)
    tbr, tbc = np.divmod(block_dest, nbc)
    n = rows * cols
    sr, sc = np.divmod(np.arange(n), cols)
    lr, lc = np.divmod(local, cols)
    fb = lat.block_ids(rows, cols, b)  # block of every fiber at the start
    if _distinct_per_line(br, tbc) and _distinct_per_line(fb * rows + sr, lc):
        # rows, then columns, at both levels: every fiber can reach its destination column
        # in the first x phases, and the last group is empty
        inter_c, kc = tbc, lc
    else:
        cands = grid_decompositions(bc, br, tbc, tbr, nbc, nbr, tries=BLOCK_TRIES, rng=rng)
        inter_c = _block_columns(cands, br, bc, tbr, tbc, move_length, step_mm, lane_mm)
        # the local shuffle as row / column / row: the column / row / column decomposition
        # of the transposed lattice
        tsite, trouting = _transposed(local, rows, cols)
        kt = _local_rows(trouting, cols, rows, b, rng, memo)  # intermediate rows, transposed
        kc = kt[tsite]  # intermediate column of every fiber (inside its own block)
    r0, c0 = br[fb] * b, bc[fb] * b  # origin of the fiber's block
    off_kc, off_lr, off_lc = kc - c0, lr - r0, lc - c0
    ic = inter_c[fb] * b
    er = tbr[fb] * b
    ec = tbc[fb] * b
    # a local phase's lines are the rows (columns) of one block, wherever it is: their own
    # radix passes, not those of a whole line of the lattice
    return [
        _phase("x", fb * rows + sr, sc, kc),  # local, inside the source block
        _phase("x", sr, kc, ic + off_kc),  # blocks along their block rows
        _phase("y", fb * cols + ic + off_kc, sr, r0 + off_lr),  # local, carried along
        _phase("y", ic + off_kc, r0 + off_lr, er + off_lr),  # blocks along block columns
        _phase("x", fb * rows + er + off_lr, ic + off_kc, ic + off_lc),  # local, carried
        _phase("x", er + off_lr, ic + off_lc, ec + off_lc),  # blocks along block rows
    ]


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


def axis_layouts(
    phases: list[Phase],
    rows: int,
    cols: int,
    along_mm: float,
    across_mm: float,
    lane_mm: float,
    *,
    direct: bool = True,
) -> list[tuple[str, np.ndarray]]:
    """Grid layouts of a braid on a grid stretched across the axis of the running phase.

    A slide along x needs room for two lanes across it (rows ``2L`` apart, lanes at ``±L/2``)
    but only the tilted spacing ``s`` along it; a slide along y the same, turned. So
    phases along x run on a grid of pitch ``along_mm`` in x and ``across_mm`` in y, phases
    along y on the transposed grid, and where the axis changes a *reshape* stage takes every
    fiber from one grid to the other (certified pair by pair, like the fans). Moves along a
    line then cost ``s`` per site instead of the ``L + s`` of the square grid of
    :func:`layouts`, at the price of one reshape per change of axis: worth it when phases on
    one axis follow each other (:func:`phase_plans`, ``"grouped"``).

    Parameters
    ----------
    phases : list of Phase
        In order.
    rows, cols : int
        Lattice size.
    along_mm, across_mm, lane_mm : float
        Pitch along the running line, pitch across it (``≥ 2 L``) and lane spacing ``L``.
    direct : bool
        ``True``: a reshape goes straight from the lanes of the last pass into those of the
        next; ``False``: it starts and ends on the plain grids, with lane stages around it.

    Returns
    -------
    list of (kind, (n, 2) float)
        As :func:`layouts`, with ``"reshape"`` stages where the axis changes.
    """
    n = rows * cols
    row, col = np.divmod(np.arange(n), cols)
    out: list[tuple[str, np.ndarray]] = []

    def coords(axis: str, lanes: np.ndarray | None) -> np.ndarray:
        return _axis_coords(axis, lanes, row, col, rows, cols, along_mm, across_mm, lane_mm)

    def push(kind: str, pos: np.ndarray) -> None:
        if out and np.array_equal(out[-1][1], pos):
            return
        out.append((kind, pos))

    active = [p for p in phases if p.n_passes > 0]
    if not active:
        return out
    axis = active[0].axis
    lanes: np.ndarray | None = None
    # the fans end on the plain grid: a lane pair only L apart must not travel with a fan
    push("grid", coords(axis, None))
    for ph in active:
        if ph.axis != axis:
            if not direct:
                push("lane", coords(axis, None))
            axis = ph.axis
            if not direct:
                push("reshape", coords(axis, None))
            push("reshape" if direct else "lane", coords(axis, ph.lanes[0]))
        else:
            push("lane", coords(axis, ph.lanes[0]))
        for j in range(ph.n_passes):
            lanes = ph.lanes[j]
            if j > 0:
                push("lane", coords(axis, lanes))
            if axis == "y":
                row = ph.positions[j + 1].copy()
            else:
                col = ph.positions[j + 1].copy()
            push("shift", coords(axis, lanes))
    push("lane", coords(axis, None))  # back onto the plain grid before the fan-in
    return out


def _axis_coords(
    axis: str,
    lanes: np.ndarray | None,
    row: np.ndarray,
    col: np.ndarray,
    rows: int,
    cols: int,
    along_mm: float,
    across_mm: float,
    lane_mm: float,
) -> np.ndarray:
    """``(n, 2)`` positions on the grid stretched across ``axis``, fibers at grid ``row``,
    ``col``, offset ``±L/2`` across their line by ``lanes`` (``None``: on the line)."""
    off = 0.0 if lanes is None else (lanes - 0.5) * lane_mm
    px, py = (along_mm, across_mm) if axis == "x" else (across_mm, along_mm)
    x = (col - (cols - 1) / 2.0) * px + (off if axis == "y" else 0.0)
    y = (row - (rows - 1) / 2.0) * py + (off if axis == "x" else 0.0)
    return np.column_stack([x, y])


def orient_reshapes(
    phases: list[Phase],
    rows: int,
    cols: int,
    along_mm: float,
    across_mm: float,
    lane_mm: float,
) -> list[Phase]:
    """The phases with each line's lanes turned so that every direct reshape is shortest.

    A pass only needs the fibers of a line that cross to run in different lanes; which of
    the two lanes lies on which side of the line is free, line by line (the lanes stay ``L``
    apart, and every lane keeps ``L`` from the next line's). Where the axis changes, a direct
    reshape (:func:`axis_layouts`) takes every fiber from its lane of the last pass to its
    lane of the next, and its length is set by the largest move, at the face's corners,
    where a lane offset ``±L/2`` outwards or inwards adds to or takes from the reshape. So
    the sides are chosen to minimise the largest move: for every threshold each fiber
    forbids the side pairs of its row and its column that would move it farther, which is a
    2-satisfiability problem, solved exactly by unit propagation (S. Even, A. Itai,
    A. Shamir, SIAM J. Comput. 5(4), 1976), with the threshold bisected. A pass already
    turned for an earlier reshape keeps its sides.
    """
    n = rows * cols
    out = [Phase(p.axis, p.positions, p.lanes.copy()) for p in phases if p.n_passes > 0]
    row, col = np.divmod(np.arange(n), cols)
    turned: set[tuple[int, int]] = set()

    def coords(axis: str, lanes: np.ndarray) -> np.ndarray:
        return _axis_coords(axis, lanes, row, col, rows, cols, along_mm, across_mm, lane_mm)

    for k, ph in enumerate(out):
        if k > 0 and ph.axis != out[k - 1].axis:
            prev = out[k - 1]
            a_line = row if prev.axis == "x" else col  # the lines of each pass
            b_line = row if ph.axis == "x" else col
            la, lb = prev.lanes[-1], ph.lanes[0]
            # move of every fiber for the four side choices (a: its line in the last pass
            # turned, b: in the next pass)
            d = np.empty((n, 2, 2))
            for a in (0, 1):
                for b in (0, 1):
                    move = coords(ph.axis, lb ^ b) - coords(prev.axis, la ^ a)
                    d[:, a, b] = np.hypot(move[:, 0], move[:, 1])
            fixed_a = (k - 1, prev.n_passes - 1) in turned
            flip_a, flip_b = _min_max_sides(d, a_line, b_line, fixed_a)
            prev.lanes[-1] = la ^ flip_a[a_line]
            ph.lanes[0] = lb ^ flip_b[b_line]
            turned.update({(k - 1, prev.n_passes - 1), (k, 0)})
        if ph.axis == "x":
            col = ph.positions[-1].copy()
        else:
            row = ph.positions[-1].copy()
    return out


def _min_max_sides(
    d: np.ndarray, a_line: np.ndarray, b_line: np.ndarray, fixed_a: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Side bits of the ``a`` lines and the ``b`` lines minimising ``max_i d[i, a, b]``.

    ``d[i, s, t]`` is fiber ``i``'s move when its ``a`` line has side ``s`` and its ``b``
    line side ``t``. With ``fixed_a`` the ``a`` sides stay 0. Exact: the smallest threshold
    for which the 2-SAT instance "no fiber moves farther" is satisfiable.
    """
    na, nb = int(a_line.max()) + 1, int(b_line.max()) + 1
    a_choices = (0,) if fixed_a else (0, 1)
    low = float(np.max(np.min(d[:, list(a_choices), :].reshape(len(d), -1), axis=1)))
    levels = np.unique(d[d >= low - 1e-12])
    best = None
    lo, hi = 0, len(levels) - 1
    while lo <= hi:
        mid = (lo + hi) // 2
        sol = _two_sat(d, a_line, b_line, na, nb, float(levels[mid]) + 1e-12, fixed_a)
        if sol is None:
            lo = mid + 1
        else:
            best, hi = sol, mid - 1
    if best is None:  # pragma: no cover - the largest level forbids nothing
        return np.zeros(na, dtype=np.int64), np.zeros(nb, dtype=np.int64)
    return best


def _two_sat(
    d: np.ndarray,
    a_line: np.ndarray,
    b_line: np.ndarray,
    na: int,
    nb: int,
    limit: float,
    fixed_a: bool,
) -> tuple[np.ndarray, np.ndarray] | None:
    """Side bits with every ``d[i, s, t] <= limit``, or None (2-SAT by unit propagation)."""
    nv = na + nb
    implies: list[list[tuple[int, int]]] = [[] for _ in range(2 * nv)]  # (var, value) -> forced
    forced: list[tuple[int, int]] = []
    bad_i, bad_s, bad_t = np.nonzero(d > limit)
    for i, s, t in zip(bad_i.tolist(), bad_s.tolist(), bad_t.tolist(), strict=True):
        u, v = int(a_line[i]), na + int(b_line[i])
        if fixed_a:
            if s == 0:
                forced.append((v, 1 - t))  # the a side is 0: the b side must not be t
            continue
        implies[2 * u + s].append((v, 1 - t))  # not (x_u = s and x_v = t)
        implies[2 * v + t].append((u, 1 - s))
    value = [-1] * nv

    def propagate(start: list[tuple[int, int]], trial: list[int]) -> bool:
        stack = list(start)
        while stack:
            var, val = stack.pop()
            if trial[var] == val:
                continue
            if trial[var] != -1:
                return False
            trial[var] = val
            stack.extend(implies[2 * var + val])
        return True

    if not propagate(forced, value):
        return None
    for var in range(nv):
        if value[var] != -1:
            continue
        for val in (0, 1):  # keep the construction's own side where either works
            trial = value.copy()
            if propagate([(var, val)], trial):
                value = trial
                break
        else:
            return None
    bits = np.array(value, dtype=np.int64)
    return bits[:na], bits[na:]
