"""Route a key into fiber centerlines that never touch.

Geometry (mm): z runs from the input face (z = 0) to the output face (z = L); x, y are the
key's lattice coordinates (x right, y down, from the face centre, seen from the input side).
Fiber ``i`` starts on input site ``i`` and ends on output site ``routing[i]``.

Construction (guaranteed collision-free for every permutation, block-local or not; see
:mod:`fabrication.braid` for the layouts):

1. The grid permutation is split into column / row / column line shuffles
   (:func:`fabrication.decompose.decompose_grid`); a block-local key block by block, a key
   that moves whole blocks also as shuffles inside the blocks and of the rigid blocks
   (in sequence, or interleaved and grouped by axis), a key that moves every fiber once
   along its row and once along its column as those two shuffles.
2. The bundle fans out from the face onto a routing grid: square, of pitch ``2L`` or
   ``P = L + s`` (:func:`routing_pitches`), or stretched across the axis of the first
   phase (``s`` along, ``2L`` across, :func:`axis_pitches`).
3. Each line shuffle runs as two-lane passes. On the square grid of pitch ``L + s`` every
   slide along one axis also moves its fibers into the lanes of the next slide; on the
   stretched grid a *reshape* stage turns the grid where the axis changes, with each line's
   lanes put on the side that makes it shortest (:func:`fabrication.braid.orient_reshapes`).
4. The bundle fans back in to the output face. Of all decompositions and grids the
   shortest route is kept.

Every move is a *stage* with one shared C² profile (:mod:`fabrication.profiles`), its
length the shortest that keeps tilt and curvature within the process limits and every pair
of fibers clear of each other in 3D (:func:`fabrication.clearance.stage_length`).
:func:`fabrication.export.build` then verifies every rule with :mod:`fabrication.checks` and
lengthens any stage that fails, so what is written is always checked.

Two lower bounds tell how good a route is: the straight-line bound (no fiber moves sideways
faster than ``tan θ``, :func:`lower_bound_mm`) and the bend-aware bound (every displaced fiber
needs an S-curve of radius ``R``, :func:`bend_bound_mm`). A third figure tells how far this
construction can go: :func:`two_lane_floor_mm`, the least length of any route that spreads the
face to two lanes per line, passes along one axis at a time and gathers it again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np

from fabrication.braid import axis_layouts, layouts, orient_reshapes, phase_plans
from fabrication.clearance import StageInfeasible, stage_length
from fabrication.process import FaceGeometry, ProcessConfig
from fabrication.profiles import min_stage_length, profile
from optics.faceplate import lattice as lat

#: Version of the construction; changes whenever the same key may route differently (cached
#: printed transmissions are keyed by it).
ROUTE_VERSION = 6

__all__ = [
    "ROUTE_VERSION",
    "Route",
    "Stage",
    "axis_pitches",
    "bend_bound_mm",
    "bend_length_mm",
    "fiber_displacements_mm",
    "lower_bound_mm",
    "route_permutation",
    "routing_pitches",
    "two_lane_floor_mm",
]


#: Stage kinds whose clearance is certified pair by pair (the others keep it by construction).
PAIRWISE_KINDS = frozenset({"fan_out", "fan_in", "reshape"})


@dataclass(frozen=True)
class Stage:
    """One simultaneous lateral move of all fibers.

    Attributes
    ----------
    kind : str
        ``"fan_out"``, ``"fan_in"``, ``"reshape"`` (from a grid stretched along one axis to
        one stretched along the other), ``"lane"`` or ``"shift"``.
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
    def pairwise(self) -> bool:
        """Whether the stage's clearance is certified pair by pair (fans and reshapes).

        Lane and shift stages keep every pair apart by construction; the others bring
        neighbours closer than the lanes do and are checked pair by pair.
        """
        return self.kind in PAIRWISE_KINDS

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
        ``"block"`` (each key block routed on its own), ``"global"``, ``"two_level"``
        (inside the blocks, then the rigid blocks), ``"grouped_x"`` / ``"grouped_y"`` (both
        interleaved, grouped by axis), ``"rows_columns"`` / ``"columns_rows"`` (one move
        along each axis) or ``"identity"``; see :func:`fabrication.braid.phase_plans`.
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


def fiber_displacements_mm(face: FaceGeometry, routing: np.ndarray) -> np.ndarray:
    """``(n,)`` lateral distance of every fiber from its input site to its output site, mm."""
    sites = face.sites_mm
    return np.linalg.norm(sites[np.asarray(routing)] - sites, axis=1)


def lower_bound_mm(
    routing: np.ndarray,
    rows: int,
    cols: int,
    block_size: int,
    pitch_mm: float,
    tan_tilt: float,
    *,
    lattice: Literal["square", "hexagonal"] = "square",
) -> tuple[float, int]:
    """Straight-line lower bound ``max_i s_i / tan θ`` and ``D`` (sites).

    ``s_i`` is the lateral displacement of fiber ``i`` (mm, from the lattice of the given kind
    and pitch): no fiber can move sideways faster than ``tan θ`` per mm of bundle length.
    ``D`` is one more than the largest per-axis displacement of any fiber, in sites (for a
    block-local key at most the block size; ``block_size`` is kept for compatibility).
    """
    del block_size
    routing = np.asarray(routing)
    sites = lat.site_centers_um(lattice, rows, cols, pitch_mm * 1000.0) / 1000.0
    s = np.linalg.norm(sites[routing] - sites, axis=1)
    r0, c0 = np.divmod(np.arange(routing.size), cols)
    r1, c1 = np.divmod(routing, cols)
    d = int(max(np.max(np.abs(r1 - r0)), np.max(np.abs(c1 - c0)))) + 1
    return float(s.max()) / tan_tilt, d


def bend_length_mm(
    displacement_mm: np.ndarray | float, bend_radius_mm: float, max_tilt_deg: float
) -> np.ndarray:
    """Shortest z-length that displaces a fiber laterally by ``s`` (closed form).

    The fiber starts and ends parallel to z, tilts at most ``θ`` and bends with radius at
    least ``R``. Its tilt ``ψ`` changes by at most ``dσ/R`` per arc length ``dσ`` and the
    lateral progress per mm of z is ``tan ψ``, so the shortest curve is an S of two arcs of
    radius ``R`` turning to ``φ = min(θ, arccos(1 − s/(2R)))`` and back, with a straight run
    at ``θ`` between them when ``s > 2R(1 − cos θ)``::

        L(s) = 2 R sin φ + max(0, s − 2R(1 − cos θ)) / tan θ

    A curve in 3D needs at least as much: its tilt and lateral progress obey the same bounds.

    Parameters
    ----------
    displacement_mm : array or float
        Lateral displacements ``s >= 0``, mm.
    bend_radius_mm : float
        Minimum bend radius ``R``, mm.
    max_tilt_deg : float
        Maximum tilt ``θ`` from the z axis, degrees.

    Returns
    -------
    array
        ``L(s)`` in mm, same shape as ``displacement_mm``.
    """
    s = np.asarray(displacement_mm, dtype=np.float64)
    if np.any(s < 0):
        raise ValueError("displacement_mm must be >= 0 (mm)")
    r = float(bend_radius_mm)
    th = math.radians(max_tilt_deg)
    knee = 2.0 * r * (1.0 - math.cos(th))
    phi = np.minimum(th, np.arccos(np.clip(1.0 - s / (2.0 * r), -1.0, 1.0)))
    return 2.0 * r * np.sin(phi) + np.maximum(0.0, s - knee) / math.tan(th)


def bend_bound_mm(face: FaceGeometry, routing: np.ndarray, process: ProcessConfig) -> float:
    """Bend-aware lower bound on the bundle length of a key, mm.

    ``2 e + max_i L(s_i)`` with ``L`` from :func:`bend_length_mm` for the process's bend radius
    and tilt, ``s_i`` the lateral displacement of fiber ``i`` and ``e`` the straight,
    face-normal end the process requires at each face. No printable route is shorter.
    """
    s = fiber_displacements_mm(face, routing)
    worst = float(np.max(s)) if s.size else 0.0
    if worst == 0.0:
        return 2.0 * process.end_length_mm
    body = float(bend_length_mm(worst, process.min_bend_radius_mm, process.max_tilt_deg))
    return 2.0 * process.end_length_mm + body


def two_lane_floor_mm(face: FaceGeometry, routing: np.ndarray, process: ProcessConfig) -> float:
    """Least bundle length of any route built as keycam builds them, mm.

    Not a bound on every conceivable route (that is :func:`bend_bound_mm`), but on routes
    made of stages in sequence that spread the face until every line has two lanes, reorder
    lines in passes along one axis at a time and gather the face again
    (:func:`route_permutation`). Such a route needs

    - a **spread** before the first pass and a gather after the last: two lanes ``c``
      (core + wall) apart on every line, and ``c`` to the next line's lanes, need lines
      ``2c`` apart, so the outer one of ``m`` lines ``δ`` apart on the face moves at least
      ``(m − 1)(2c − δ)/2`` (rows for passes along ``x``, columns along ``y``; whichever
      axis the route starts or ends with, at least the cheaper of the two);
    - a **pass along each axis** on which some fiber changes line position: a fiber that
      moves ``k`` columns travels at least ``k`` face pitches along ``x`` in passes (the
      routing grid is no finer than the face), and by the same token along ``y``.

    Each of these moves costs at least its S-curve :func:`bend_length_mm`, which is
    subadditive (concave, ``L(0) = 0``), so however a fiber's move is split over passes::

        2 e + 2 L(spread) + L(Δx_max) + L(Δy_max)

    with ``e`` the straight end at each face. A packed face (pitch = core + wall) pays the
    spread in full; an open face (pitch ≥ ``2c``) pays none.
    """
    routing = np.asarray(routing)
    end = 2.0 * process.end_length_mm
    n = routing.size
    if n == 0 or np.array_equal(routing, np.arange(n)):
        return end
    rows, cols = face.rows, face.cols
    sites = face.sites_mm
    c = process.min_pitch_mm
    r0, c0 = np.divmod(np.arange(n), cols)
    r1, c1 = np.divmod(routing, cols)
    row_step = float(abs(sites[cols, 1] - sites[0, 1])) if rows > 1 else face.pitch_mm
    # (lines that must spread, their spacing on the face, largest move along the axis)
    axes = [
        (rows, row_step, int(np.max(np.abs(c1 - c0))) * face.pitch_mm),  # passes along x
        (cols, face.pitch_mm, int(np.max(np.abs(r1 - r0))) * row_step),  # passes along y
    ]
    needed = [(m, step, move) for m, step, move in axes if move > 0]
    spread = min(0.5 * (m - 1) * max(0.0, 2.0 * c - step) for m, step, _ in axes)

    def curve(s: float) -> float:
        return float(bend_length_mm(s, process.min_bend_radius_mm, process.max_tilt_deg))

    return end + 2.0 * curve(spread) + sum(curve(move) for _, _, move in needed)


def _lane_and_along(process: ProcessConfig) -> tuple[float, float]:
    """Lane spacing ``L`` (core + wall + margin) and the spacing ``s`` along a line that two
    fibers tilting together need (``(core + wall)/cos θ_max`` + margin), mm."""
    c = process.min_pitch_mm
    lane = c + process.route_margin_mm
    return lane, c * math.sqrt(1.0 + process.tan_tilt**2) + process.route_margin_mm


def routing_pitches(
    face: FaceGeometry, process: ProcessConfig, *, merged: bool = False
) -> tuple[float, float]:
    """Routing pitch ``P`` and lane spacing ``L`` for a face and process, mm.

    ``L`` = core + wall + route margin: fibers in neighbouring lanes pass at ``L``. With
    separate lane stages (``merged=False``) ``P = 2 L``; with lanes merged into the slides
    ``P = L + s``, ``s = (core + wall)/cos θ_max`` + margin, the spacing two fibers need when
    they tilt together along their offset (see :mod:`fabrication.braid`). A square face
    printed at ``P`` or coarser (an *open face*) is routed at its own pitch: no fan.
    """
    lane, along = _lane_and_along(process)
    pitch = lane + along if merged else 2.0 * lane
    if face.lattice == "square" and face.pitch_mm >= pitch - 1e-9:
        pitch = max(pitch, face.pitch_mm)
    return pitch, lane


def axis_pitches(face: FaceGeometry, process: ProcessConfig) -> tuple[float, float, float]:
    """Pitches along and across the running line, and lane spacing, for axis layouts, mm.

    Along the line fibers that tilt together need ``s = (core + wall)/cos θ_max`` + margin;
    across it two lanes ``L`` = core + wall + margin apart, so ``2 L``
    (:func:`fabrication.braid.axis_layouts`). A square face printed coarser keeps its pitch.
    """
    lane, along = _lane_and_along(process)
    across = 2.0 * lane
    if face.lattice == "square":
        along, across = max(along, face.pitch_mm), max(across, face.pitch_mm)
    return along, across, lane


# -- construction ----------------------------------------------------------------------------


def _stages(
    seq: list[tuple[str, np.ndarray]],
    clearance: float,
    tan_tilt: float,
    radius: float,
    z0: float,
    fan_cache: dict | None = None,
) -> list[Stage]:
    """Stages between consecutive layouts; fans certified pair by pair.

    Lane and shift stages keep every pair apart by construction (lanes ``L`` apart, fibers
    of one lane at least ``clearance / cos θ_max`` apart along their line), so only tilt and
    bend radius set their length; the fans (packed face to grid) and reshapes (one grid to
    another) are checked pair by pair (:func:`fabrication.clearance.stage_length`).
    """
    stages = []
    z = z0
    for idx in range(1, len(seq)):
        kind = seq[idx][0]
        a0, a1 = seq[idx - 1][1], seq[idx][1]
        if kind in PAIRWISE_KINDS:
            # the fan-in is the fan-out run backwards for other fibers (same sites, same grid
            # points, and the profile is symmetric), so a fan's length is computed once per
            # grid; a reshape depends on the lanes of the key's passes
            cache = fan_cache if kind != "reshape" else None
            key = b""
            if cache is not None:
                key = _layout_key(a0, a1) if kind == "fan_out" else _layout_key(a1, a0)
            if cache is not None and key in cache:
                ln, a = cache[key]
            else:
                ln, a = stage_length(a0, a1, clearance, tan_tilt, radius)
                if cache is not None:
                    cache[key] = (ln, a)
        else:
            ln, a = min_stage_length(
                float(np.max(np.linalg.norm(a1 - a0, axis=1))), tan_tilt, radius
            )
        stages.append(Stage(kind, z, ln, a, a0, a1))
        z += ln
    return stages


def _layout_key(a0: np.ndarray, a1: np.ndarray) -> bytes:
    """Order-free fingerprint of a stage's moves (the multiset of (start, end) pairs)."""
    both = np.column_stack([a0, a1]) if a0.shape[0] else np.zeros((0, 4))
    both = both[np.lexsort(both.T[::-1])]
    return np.round(both, 9).tobytes()


def _face_sequence(
    face: FaceGeometry, routing: np.ndarray, grid: list[tuple[str, np.ndarray]]
) -> list[tuple[str, np.ndarray]]:
    """Face, grid layouts, face again; kinds of the first and last stage set to the fans."""
    seq = [("face", face.sites_mm), *grid, ("face", face.sites_mm[routing])]
    keep = [seq[0]]
    for kind, pos in seq[1:]:
        if not np.array_equal(pos, keep[-1][1]):
            keep.append((kind, pos))
    out = []
    for i, (kind, pos) in enumerate(keep):
        if i == 1:
            kind = "fan_out"
        elif i == len(keep) - 1:
            kind = "fan_in"
        elif i > 0 and kind == "grid":
            kind = "lane"
        out.append((kind, pos))
    return out


def route_permutation(
    face: FaceGeometry,
    routing: np.ndarray,
    block_size: int,
    process: ProcessConfig,
    *,
    lanes: str = "auto",
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
        decomposed block by block, one that moves whole blocks is also tried as shuffles
        inside the blocks followed by shuffles of the rigid blocks.
    process : ProcessConfig
        Limits (clearance, bend radius, tilt, end length). A gentler design bend radius (less
        bend loss, more length) is a process override:
        ``ProcessConfig.preset("resin", min_bend_radius_mm=20)``.
    lanes : {"auto", "separate", "merged", "axis"}
        How fibers enter their lanes and on which grid they move: in separate lane stages on
        a square grid of pitch ``2L``; set by the slide of the perpendicular phase on a square
        grid of pitch ``L + s`` (:func:`fabrication.braid.layouts`); or on a grid stretched
        across the running axis, reshaped where the axis changes
        (:func:`fabrication.braid.axis_layouts`). ``"auto"`` routes all and keeps the
        shortest.

    Returns
    -------
    Route
        Deterministic: the same inputs give the same route. Of the candidate decompositions
        the shortest is kept.
    """
    styles = {
        "auto": ("separate", "merged", "axis"),
        "separate": ("separate",),
        "merged": ("merged",),
        "axis": ("axis",),
    }
    if lanes not in styles:
        raise ValueError(f"lanes must be one of {sorted(styles)}, got {lanes!r}")
    rows, cols = face.rows, face.cols
    n = rows * cols
    routing = np.asarray(routing, dtype=np.int64)
    if routing.shape != (n,) or not np.array_equal(np.sort(routing), np.arange(n)):
        raise ValueError(f"routing must be a permutation of 0..{n - 1}")
    radius = process.min_bend_radius_mm
    end = process.end_length_mm
    if np.array_equal(routing, np.arange(n)):
        return Route(face, routing, (), end, routing_pitches(face, process)[0], "identity")
    clearance, t = process.min_pitch_mm, process.tan_tilt
    best: Route | None = None
    fans: dict = {}
    est_pitch, est_lane = routing_pitches(face, process, merged=True)
    along, across, axis_lane = axis_pitches(face, process)
    plans = phase_plans(
        routing,
        rows,
        cols,
        block_size,
        move_length=lambda d: min_stage_length(d, t, radius)[0],
        pitch_mm=est_pitch,
        lane_mm=est_lane,
        along_mm=along,
    )
    for name, phases in plans.items():
        for style in styles[lanes]:
            if style == "axis":
                pitch = along
                # direct reshapes with each line's lanes turned to shorten them; plain
                # reshapes with lane stages around them where a direct one is infeasible
                turned = orient_reshapes(phases, rows, cols, along, across, axis_lane)
                grids = [
                    axis_layouts(turned, rows, cols, along, across, axis_lane, direct=True),
                    axis_layouts(phases, rows, cols, along, across, axis_lane, direct=False),
                ]
            else:
                merged = style == "merged"
                pitch, lane = routing_pitches(face, process, merged=merged)
                grids = [layouts(phases, rows, cols, pitch, lane, merged=merged)]
            for grid in grids:
                try:
                    stages = _stages(
                        _face_sequence(face, routing, grid), clearance, t, radius, end, fans
                    )
                except StageInfeasible:
                    continue  # a direct reshape that brings two fibers too close
                route = Route(face, routing, tuple(stages), end, pitch, name)
                if best is None or route.length_mm < best.length_mm - 1e-9:
                    best = route
                break
    if best is None:  # pragma: no cover
        raise RuntimeError("no decomposition of the routing could be laid out")
    return best
