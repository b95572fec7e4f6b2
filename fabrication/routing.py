"""Route a key into fiber centerlines that never touch.

Geometry (mm): z runs from the input face (z = 0) to the output face (z = L); x, y are the
key's lattice coordinates (x right, y down, from the face centre, seen from the input side).
Fiber ``i`` starts on input site ``i`` and ends on output site ``routing[i]``.

Construction (guaranteed collision-free for every permutation, block-local or not):

1. The grid permutation is split into column / row / column line shuffles
   (:func:`fabrication.decompose.decompose_grid`); for a block-local key each ``b × b``
   block is decomposed on its own, so lines are at most ``b`` long.
2. The bundle fans out from the face pitch to the routing pitch ``P = 2 (d + c + margin)``
   in x and y. Every line then has a free lane at ``P/2`` beside it.
3. Each line shuffle runs as two-lane passes (:func:`fabrication.decompose.line_passes`):
   fibers step into their lane, slide along the line (same-lane fibers keep their order and
   at least ``P`` spacing; the lanes are ``P/2`` apart), and step back.
4. The bundle fans back in to the output face.

Every move is a *stage* with one shared C² profile (:mod:`fabrication.profiles`), its
length the shortest that keeps tilt and curvature within the process limits. Consecutive
lane steps are merged (each fiber stays in its own ``P/2`` cell), stages where nothing
moves are skipped, and fans get the extra length that keeps co-moving neighbours apart in 3D (two
parallel fibers at horizontal distance h, both tilted by θ along h, are only h·cos θ apart).
:func:`fabrication.export.build` then verifies every rule with :mod:`fabrication.checks` and
lengthens any stage that fails, so what is written is always checked.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
from scipy.spatial import cKDTree

from fabrication.decompose import decompose_grid, line_passes, two_lane_split
from fabrication.process import FaceGeometry, ProcessConfig
from fabrication.profiles import A_GRID, min_stage_length, profile, profile_max

__all__ = ["Route", "Stage", "lower_bound_mm", "route_permutation"]


@dataclass(frozen=True)
class Stage:
    """One simultaneous lateral move of all fibers.

    Attributes
    ----------
    kind : str
        ``"fan_out"``, ``"fan_in"``, ``"lane"`` or ``"shift"``.
    z0_mm, length_mm : float
        Start and z-extent of the stage, mm.
    a : float
        Ramp fraction of the profile.
    start, end : (n, 2) float
        Lateral position of every fiber at the start and end, mm.
    """

    kind: str
    z0_mm: float
    length_mm: float
    a: float
    start: np.ndarray = field(repr=False)
    end: np.ndarray = field(repr=False)

    @property
    def max_move_mm(self) -> float:
        """Largest lateral displacement of any fiber in this stage, mm."""
        return float(np.max(np.linalg.norm(self.end - self.start, axis=1)))


@dataclass(frozen=True)
class Route:
    """Centerlines of all fibers of one key, as a sequence of stages.

    Attributes
    ----------
    face : FaceGeometry
        Printed face sites.
    routing : (n,) int64
        Output site of each input fiber.
    stages : tuple of Stage
        In z order, back to back from ``end_mm`` to ``length_mm - end_mm``.
    end_mm : float
        Straight, face-normal length at each face, mm.
    route_pitch_mm : float
        Pitch of the routing grid, mm.
    decomposition : str
        ``"block"`` (each key block routed on its own) or ``"global"``.
    """

    face: FaceGeometry
    routing: np.ndarray = field(repr=False)
    stages: tuple[Stage, ...] = field(repr=False)
    end_mm: float
    route_pitch_mm: float
    decomposition: str

    @property
    def n_fibers(self) -> int:
        """Number of fibers."""
        return int(self.routing.size)

    @property
    def length_mm(self) -> float:
        """Bundle length (face to face), mm."""
        body = sum(s.length_mm for s in self.stages)
        return 2.0 * self.end_mm + body

    @property
    def input_xy(self) -> np.ndarray:
        """``(n, 2)`` input face position of each fiber, mm."""
        return self.face.sites_mm

    @property
    def output_xy(self) -> np.ndarray:
        """``(n, 2)`` output face position of each fiber, mm."""
        return self.face.sites_mm[self.routing]

    def with_lengths(self, lengths: np.ndarray) -> Route:
        """Same moves with new stage lengths (stages re-laid back to back)."""
        z = self.end_mm
        stages = []
        for s, ln in zip(self.stages, lengths, strict=True):
            stages.append(replace(s, z0_mm=z, length_mm=float(ln)))
            z += float(ln)
        return replace(self, stages=tuple(stages))

    def stage_bounds(self) -> np.ndarray:
        """``(n_stages + 1,)`` z of stage boundaries, mm."""
        z = [self.end_mm]
        for s in self.stages:
            z.append(z[-1] + s.length_mm)
        return np.array(z)

    def evaluate(
        self, z: np.ndarray, fibers: np.ndarray | slice | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Lateral position and its first two z-derivatives at the given z.

        Parameters
        ----------
        z : (k,) float
            Heights, mm, within ``[0, length_mm]``.
        fibers : index array or slice, optional
            Subset of fibers (default all).

        Returns
        -------
        pos, d1, d2 : (k, m, 2) float
            Position (mm), slope ``dx/dz`` (unitless) and ``d²x/dz²`` (1/mm).
        """
        z = np.asarray(z, dtype=np.float64)
        sel = slice(None) if fibers is None else fibers
        a_in = self.input_xy[sel]
        m = a_in.shape[0]
        pos = np.empty((z.size, m, 2))
        d1 = np.zeros((z.size, m, 2))
        d2 = np.zeros((z.size, m, 2))
        bounds = self.stage_bounds()
        pos[z <= bounds[0]] = a_in
        pos[z >= bounds[-1]] = self.output_xy[sel]
        for k, st in enumerate(self.stages):
            lo, hi = bounds[k], bounds[k + 1]
            idx = np.flatnonzero((z > lo) & (z < hi))
            if idx.size == 0 or st.length_mm <= 0:
                continue
            u = (z[idx] - lo) / st.length_mm
            s, s1, s2 = profile(u, st.a)
            a0 = st.start[sel]
            dd = st.end[sel] - a0
            pos[idx] = a0[None] + dd[None] * s[:, None, None]
            d1[idx] = dd[None] * (s1 / st.length_mm)[:, None, None]
            d2[idx] = dd[None] * (s2 / st.length_mm**2)[:, None, None]
        # exact boundary values (a stage starts where the previous one ended)
        for k, st in enumerate(self.stages):
            at = np.flatnonzero(z == bounds[k])
            if at.size:
                pos[at] = st.start[sel][None]
        if self.stages:
            at = np.flatnonzero(z == bounds[-1])
            if at.size:
                pos[at] = self.stages[-1].end[sel][None]
        return pos, d1, d2


def lower_bound_mm(
    routing: np.ndarray, rows: int, cols: int, block_size: int, pitch_mm: float, tan_tilt: float
) -> tuple[float, int]:
    """Straight-line lower bound ``√2 (D − 1) · pitch / tan θ`` and ``D`` (sites).

    ``D`` is the block size for a key that stays inside its blocks, otherwise one more than
    the largest per-axis displacement of any fiber, in sites (models.md: Fabrication).
    """
    routing = np.asarray(routing)
    r0, c0 = np.divmod(np.arange(routing.size), cols)
    r1, c1 = np.divmod(routing, cols)
    if _is_block_local(routing, rows, cols, block_size):
        d = min(block_size, max(rows, cols))
    else:
        d = int(max(np.max(np.abs(r1 - r0)), np.max(np.abs(c1 - c0)))) + 1
    return math.sqrt(2.0) * (d - 1) * pitch_mm / tan_tilt, d


def _is_block_local(routing: np.ndarray, rows: int, cols: int, b: int) -> bool:
    from optics.faceplate.lattice import block_ids

    bid = block_ids(rows, cols, b)
    return bool(np.all(bid[routing] == bid))


# -- construction ----------------------------------------------------------------------------


def _intermediate_rows(routing: np.ndarray, rows: int, cols: int, b: int) -> tuple[np.ndarray, str]:
    from optics.faceplate.lattice import block_ids, block_origins

    n = rows * cols
    sr, sc = np.divmod(np.arange(n), cols)
    dr, dc = np.divmod(routing, cols)
    if b < max(rows, cols) and _is_block_local(routing, rows, cols, b):
        k = np.empty(n, dtype=np.int64)
        bid = block_ids(rows, cols, b)
        org = block_origins(rows, cols, b)
        order = np.argsort(bid, kind="stable")
        starts = np.searchsorted(bid[order], np.arange(len(org)))
        ends = np.append(starts[1:], n)
        for blk, (r0, c0, h, w) in enumerate(org):
            f = order[starts[blk] : ends[blk]]
            k[f] = r0 + decompose_grid(sr[f] - r0, sc[f] - c0, dr[f] - r0, dc[f] - c0, h, w)
        return k, "block"
    return decompose_grid(sr, sc, dr, dc, rows, cols), "global"


def _phase_passes(
    line: np.ndarray, lo: np.ndarray, cur: np.ndarray, tgt: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Two-lane passes of one phase for all lines at once.

    Returns ``positions (p + 1, n)`` (absolute position along the axis) and ``lanes (p, n)``.
    """
    n = cur.size
    order = np.lexsort((cur, line))
    ls = line[order]
    cut = np.flatnonzero(np.diff(ls)) + 1
    groups = np.split(order, cut)
    perms = []
    for g in groups:  # g is sorted by current position
        base = lo[g[0]]
        local_cur = cur[g] - base
        local_tgt = tgt[g] - base
        perm = np.empty(g.size, dtype=np.int64)
        perm[local_cur] = local_tgt
        perms.append(perm)
    single = all(two_lane_split(p) is not None for p in perms)
    if single:
        n_pass = 1 if any(not np.array_equal(p, np.arange(p.size)) for p in perms) else 0
    else:
        n_pass = max(int(np.ceil(np.log2(p.size))) for p in perms if p.size > 1)
    positions = np.empty((n_pass + 1, n), dtype=np.int64)
    lanes = np.zeros((n_pass, n), dtype=np.int64)
    for g, perm in zip(groups, perms, strict=True):
        base = lo[g[0]]
        lp = line_passes(perm, n_passes=n_pass, allow_single=single)
        # g[i] is the fiber at local position i at the start
        positions[:, g] = lp.positions + base
        lanes[:, g] = lp.lanes
    return positions, lanes


def _fan_length(
    start: np.ndarray,
    end: np.ndarray,
    clearance_mm: float,
    tan_tilt: float,
    bend_radius_mm: float,
) -> tuple[float, float]:
    """Shortest length and ramp fraction of a fan stage.

    Besides tilt and curvature, neighbours that move together must stay ``clearance_mm``
    apart in 3D: for two nearly parallel fibers with horizontal offset ``h`` and common slope
    ``v``, ``|h|² − (h·v)²/(1 + |v|²) ≥ clearance²``.
    """
    delta = end - start
    dmax = float(np.max(np.linalg.norm(delta, axis=1)))
    if dmax == 0.0:
        return 0.0, 0.5
    reach = 1.5 * clearance_mm
    pairs = set()
    for pts in (start, end):
        pairs |= cKDTree(pts).query_pairs(reach)
    if pairs:
        p = np.array(sorted(pairs), dtype=np.int64)
        i, j = p[:, 0], p[:, 1]
    else:
        i = j = np.zeros(0, dtype=np.int64)
    h0 = start[j] - start[i]
    dh = delta[j] - delta[i]
    mean = 0.5 * (delta[i] + delta[j])
    # scalar products so that h(u) = h0 + dh S(u) never needs a (pairs, u, 2) array
    hh0 = np.sum(h0 * h0, axis=1)[:, None]
    hdh = np.sum(h0 * dh, axis=1)[:, None]
    dd = np.sum(dh * dh, axis=1)[:, None]
    hm0 = np.sum(h0 * mean, axis=1)[:, None]
    dm = np.sum(dh * mean, axis=1)[:, None]
    m2 = np.sum(mean**2, axis=1)[:, None]
    u = np.linspace(0.0, 1.0, 161)[1:-1]
    best: tuple[float, float] = (math.inf, 0.5)
    for a in A_GRID[::5]:
        s, s1, _ = profile(u, a)
        c1, c2 = profile_max(a)
        need = max(float(dmax * c1 / tan_tilt), math.sqrt(float(dmax * c2 * bend_radius_mm)))
        if i.size:
            h2 = hh0 + 2 * hdh * s + dd * s**2
            # keep half of the spacing gained so far (at most 2 µm) in reserve for the
            # parallel-line approximation; the checks verify the result exactly
            target = clearance_mm + np.minimum(0.5 * (np.sqrt(h2) - clearance_mm), 0.002)
            g = h2 - target**2
            q = (hm0 + dm * s) ** 2 * s1**2
            if np.any((g <= 0) & (q > 0)):
                continue
            with np.errstate(divide="ignore", invalid="ignore"):
                req = np.where(q > 0, q / np.maximum(g, 1e-300), 0.0) - m2 * s1**2
            need = max(need, math.sqrt(max(0.0, float(np.max(req)))) * 1.02)
        if need < best[0]:
            best = (need, float(a))
    if not math.isfinite(best[0]):  # pragma: no cover - start/end spacing too small
        raise ValueError("fan stage cannot keep the clearance; face pitch below core + wall")
    return best[0] * 1.005, best[1]


def route_permutation(
    face: FaceGeometry,
    routing: np.ndarray,
    block_size: int,
    process: ProcessConfig,
) -> Route:
    """Route fiber ``i`` from input site ``i`` to output site ``routing[i]``.

    Parameters
    ----------
    face : FaceGeometry
        Face sites (see :func:`fabrication.process.face_geometry`).
    routing : (n,) int
        Output site (row-major) of each input fiber; a permutation.
    block_size : int
        Key block size ``b``; a routing that keeps every fiber in its ``b × b`` block is
        decomposed block by block.
    process : ProcessConfig
        Limits (clearance, bend radius, tilt, end length).

    Returns
    -------
    Route
        Deterministic: the same inputs give the same route.
    """
    rows, cols = face.rows, face.cols
    n = rows * cols
    routing = np.asarray(routing, dtype=np.int64)
    if routing.shape != (n,) or not np.array_equal(np.sort(routing), np.arange(n)):
        raise ValueError(f"routing must be a permutation of 0..{n - 1}")
    s_req = process.min_pitch_mm
    pitch = max(2.0 * (s_req + process.route_margin_mm), face.pitch_mm)
    half = pitch / 2.0
    t, rb = process.tan_tilt, process.min_bend_radius_mm
    end = process.end_length_mm

    if np.array_equal(routing, np.arange(n)):
        return Route(face, routing, (), end, pitch, "identity")

    k, how = _intermediate_rows(routing, rows, cols, block_size)
    sr, sc = np.divmod(np.arange(n), cols)
    dr, dc = np.divmod(routing, cols)
    if how == "block":
        from optics.faceplate.lattice import block_ids, block_origins

        bid = block_ids(rows, cols, block_size)
        org = block_origins(rows, cols, block_size)
        nb = int(bid.max()) + 1
        blk_out = bid[routing]
        phases = [
            # (axis moved along, line id, line origin, current, target)
            ("y", bid * cols + sc, org[bid, 0], sr, k),
            ("x", bid * rows + k, org[bid, 1], sc, dc),
            ("y", blk_out * cols + dc, org[blk_out, 0], k, dr),
        ]
        del nb
    else:
        zero = np.zeros(n, dtype=np.int64)
        phases = [("y", sc, zero, sr, k), ("x", k, zero, sc, dc), ("y", dc, zero, k, dr)]

    def grid(row: np.ndarray, col: np.ndarray) -> np.ndarray:
        return np.column_stack([(col - (cols - 1) / 2.0) * pitch, (row - (rows - 1) / 2.0) * pitch])

    row, col = sr.copy(), sc.copy()
    configs: list[tuple[str, np.ndarray]] = [("face", face.sites_mm.copy())]
    for axis, line, lo, cur, tgt in phases:
        positions, lanes = _phase_passes(line, lo, cur, tgt)
        moving = axis == "y"
        for j in range(lanes.shape[0]):
            off = np.zeros((n, 2))
            off[:, 0 if moving else 1] = lanes[j] * half
            configs.append(("lane", grid(row, col) + off))
            if moving:
                row = positions[j + 1].copy()
            else:
                col = positions[j + 1].copy()
            configs.append(("shift", grid(row, col) + off))
        configs.append(("lane", grid(row, col)))
    if not (np.array_equal(row, dr) and np.array_equal(col, dc)):  # pragma: no cover
        raise RuntimeError("routing phases did not reach the output sites")
    configs.append(("face", face.sites_mm[routing]))

    # merge consecutive lane steps (each fiber stays inside its own P/2 cell); fans are kept
    # apart from lane steps: a lane pair only P/2 apart must not travel with the fan
    merged: list[tuple[str, np.ndarray]] = []
    configs.insert(1, ("grid", grid(sr, sc)))
    configs.insert(len(configs) - 1, ("grid", grid(dr, dc)))
    for kind, pos in configs:
        if merged and merged[-1][0] == "lane" and kind in ("lane", "grid"):
            merged.pop()
        if merged and np.array_equal(merged[-1][1], pos):
            continue
        merged.append((kind, pos))
    stages = []
    z = end
    last = len(merged) - 1
    for idx in range(1, len(merged)):
        kind = merged[idx][0]
        a0, a1 = merged[idx - 1][1], merged[idx][1]
        if kind == "grid":
            kind = "lane"
        if idx == 1:
            kind = "fan_out"
        elif idx == last:
            kind = "fan_in"
        if kind.startswith("fan"):
            ln, a = _fan_length(a0, a1, s_req, t, rb)
        else:
            ln, a = min_stage_length(float(np.max(np.linalg.norm(a1 - a0, axis=1))), t, rb)
        stages.append(Stage(kind, z, ln, a, a0, a1))
        z += ln
    return Route(face, routing, tuple(stages), end, pitch, how)
