"""Ciphertext only: the fiber lattice's topology from a stream of frames of natural scenes.

Neighbouring points of natural images are strongly correlated, so over many frames the
readouts of two output sites fed by neighbouring input fibers rise and fall together. This is
the attack of N. Le Roux, Y. Bengio, P. Lamblin, M. Joliveau and B. Kégl, "Learning the 2-D
topology of images", NIPS 2007, applied to the per-site readouts (public) of frames the
attacker merely collects (e.g. a video):

1. correlation of every pair of sites over the stream, after removing each frame's mean
   (global brightness is shared by all sites and hides locality) and each site's own gain and
   offset (standardisation);
2. a neighbour graph: every site linked to its ``k`` most correlated sites;
3. a 2-D embedding of that graph that keeps its geodesic distances (landmark Isomap:
   J. B. Tenenbaum, V. de Silva, J. C. Langford, Science 290:2319, 2000; V. de Silva and
   J. B. Tenenbaum, NIPS 2002), refined by stress majorisation (SMACOF: J. de Leeuw, 1977)
   on the local distances only (the 4 most correlated sites of each are 1 apart, the next 4
   are diagonal, sqrt(2) apart; pairs up to 3 apart along the graph);
4. reassembly: the embedding is rotated to the lattice axes, scaled to the lattice and every
   site placed on one lattice position by a minimum-cost assignment;
5. local refinement of that layout, a quadratic assignment solved by repeated linear ones:
   every site's affinity to a lattice position is the summed similarity (``−log(1 − corr)``,
   which separates the nearest from the next-nearest) to the sites now at the position's
   4 neighbours, and the sites of one window are re-assigned to the window's positions by
   :func:`scipy.optimize.linear_sum_assignment`, window after window (Gauss–Seidel) until
   nothing moves. With the public key recipe (``block_size``: whole ``b × b`` blocks travel
   as sub-bundles) the window of an output block is the one input block its sites landed in,
   and whole blocks are also moved and turned (8 symmetries) to where their edges fit the
   surrounding sites best (a jigsaw step, one assignment of blocks to places);
6. a flat field from the stream itself: each placed site's mean readout over the median of
   its 3 × 3 neighbourhood's means gives its gain (transmission and relay coupling), which
   the reassembled picture is divided by.

Scores: the fraction of sites whose ``k`` most correlated sites are all true neighbours
(Chebyshev distance 1 on the input lattice); the fraction placed exactly, up to the 8
symmetries of the square (a mirrored or rotated picture is as readable); the correlation of a
reassembled natural scene with the truth (same symmetry).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from scipy.optimize import linear_sum_assignment
from scipy.sparse.csgraph import shortest_path

from sim.audit.common import (
    image_correlation,
    natural_stream,
    observe,
    reassemble,
    site_to_fiber,
    true_fiber_values,
)
from sim.camera import Camera

__all__ = [
    "ciphertext_only",
    "correlation_matrix",
    "embed",
    "layout_score",
    "lit_sites",
    "move_blocks_to_fit",
    "neighbour_fraction",
    "neighbours",
    "place_on_grid",
    "refine_layout",
    "similarity",
    "stream_flat",
    "topology_attack",
]


def correlation_matrix(readouts: NDArray[np.floating]) -> NDArray[np.float64]:
    """Site-by-site correlation ``(n, n)`` over frames ``(N, n)``, frame means removed."""
    r = np.asarray(readouts, dtype=np.float64)
    r = r - r.mean(axis=1, keepdims=True)
    r = r - r.mean(axis=0)
    norm = np.linalg.norm(r, axis=0)
    z = r / np.where(norm > 0, norm, np.inf)
    return z.T @ z


def neighbours(readouts: NDArray[np.floating], k: int = 4) -> NDArray[np.int64]:
    """Each site's ``k`` most correlated sites over a stream ``(N, n)``: ``(n, k)``."""
    return _knn(correlation_matrix(readouts), k)


def _knn(corr: NDArray[np.float64], k: int) -> NDArray[np.int64]:
    c = corr.copy()
    np.fill_diagonal(c, -np.inf)
    return np.argpartition(-c, k, axis=1)[:, :k]


def embed(neighbours: NDArray[np.int64], *, n_landmarks: int, rng: np.random.Generator):
    """2-D landmark-Isomap coordinates ``(n, 2)`` of the symmetrised neighbour graph."""
    n, k = neighbours.shape
    rows = np.repeat(np.arange(n), k)
    g = sp.csr_matrix((np.ones(n * k), (rows, neighbours.ravel())), shape=(n, n))
    g = ((g + g.T) > 0).astype(np.float64)
    m = min(n_landmarks, n)
    land = rng.choice(n, size=m, replace=False)
    d = shortest_path(g, unweighted=True, directed=False, indices=land)  # (m, n)
    finite = np.isfinite(d)
    if not finite.all():  # a disconnected piece: put it as far as the farthest point
        d[~finite] = np.nanmax(np.where(finite, d, np.nan)) * 1.5
    d2 = d**2
    dl = d2[:, land]  # (m, m)
    j = np.eye(m) - 1.0 / m
    b = -0.5 * j @ dl @ j
    w, v = np.linalg.eigh(b)
    w, v = w[::-1][:2], v[:, ::-1][:, :2]
    w = np.maximum(w, 1e-12)
    # Triangulation of every point from its distances to the landmarks.
    pinv = v / np.sqrt(w)
    return -0.5 * (d2 - dl.mean(axis=1, keepdims=True)).T @ pinv


def local_stress(
    corr: NDArray[np.float64], xy: NDArray[np.float64], *, radius: float = 3.0, iterations: int = 40
) -> NDArray[np.float64]:
    """Refine 2-D coordinates ``(n, 2)`` by stress majorisation on local graph distances."""
    import scipy.sparse.linalg as spla
    from scipy.sparse.csgraph import dijkstra

    n = corr.shape[0]
    c = corr.copy()
    np.fill_diagonal(c, -np.inf)
    order = np.argpartition(-c, 8, axis=1)[:, :8]
    order = np.take_along_axis(order, np.argsort(-np.take_along_axis(c, order, 1), 1), 1)
    lengths = np.tile(np.r_[np.ones(4), np.full(4, np.sqrt(2.0))], n)
    g = sp.csr_matrix((lengths, (np.repeat(np.arange(n), 8), order.ravel())), shape=(n, n))
    g = g.maximum(g.T)
    dist = dijkstra(g, directed=False, limit=radius)
    i, j = np.nonzero(np.isfinite(dist) & (dist > 0))
    keep = i < j
    i, j = i[keep], j[keep]
    d = dist[i, j]
    w = 1.0 / d**2

    def laplacian(vals: NDArray[np.float64]) -> sp.csr_matrix:
        m = sp.csr_matrix((np.r_[vals, vals], (np.r_[i, j], np.r_[j, i])), shape=(n, n))
        return sp.csr_matrix(sp.diags(-np.asarray(m.sum(1)).ravel()) + m)

    lu = spla.splu(sp.csc_matrix(laplacian(-w) + 1e-6 * sp.identity(n)))
    x = np.asarray(xy, dtype=np.float64)
    for _ in range(iterations):
        now = np.maximum(np.hypot(*(x[i] - x[j]).T), 1e-9)
        x = lu.solve(np.asarray(laplacian(-w * d / now) @ x))
    return x


def _grid(rows: int, cols: int) -> NDArray[np.float64]:
    r, c = np.divmod(np.arange(rows * cols), cols)
    return np.stack([r, c], axis=1).astype(np.float64)


def _square_up(xy: NDArray[np.float64], rows: int, cols: int) -> NDArray[np.float64]:
    """Rotate points to the lattice axes (least bounding-box area) and fit them to its size."""
    xy = xy - xy.mean(0)
    best, best_area = xy, np.inf
    for a in np.linspace(0, np.pi / 2, 91)[:-1]:
        rot = xy @ np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
        lo, hi = np.percentile(rot, [1, 99], axis=0)
        area = float(np.prod(hi - lo))
        if area < best_area:
            best, best_area = rot, area
    lo, hi = np.percentile(best, [1, 99], axis=0)
    if (hi - lo)[0] > (hi - lo)[1] and rows != cols:
        best = best[:, ::-1]
        lo, hi = lo[::-1], hi[::-1]
    scale = np.array([rows - 1, cols - 1]) / np.maximum(hi - lo, 1e-12)
    return (best - lo) * scale


def place_on_grid(
    xy: NDArray[np.float64],
    neighbours: NDArray[np.int64],
    rows: int,
    cols: int,
    *,
    iterations: int = 3,
) -> NDArray[np.int64]:
    """Lattice position (row-major index) of every site from 2-D coordinates ``(n, 2)``."""
    grid = _grid(rows, cols)
    pos = _square_up(xy, rows, cols)
    place = _assign(pos, grid)
    for _ in range(iterations):
        at = grid[place]
        target = 0.5 * at + 0.5 * at[neighbours].mean(axis=1)
        new = _assign(target, grid)
        if np.array_equal(new, place):
            break
        place = new
    return place


def _assign(pos: NDArray[np.float64], grid: NDArray[np.float64]) -> NDArray[np.int64]:
    cost = ((pos[:, None, :] - grid[None, :, :]) ** 2).sum(-1)
    sites, cells = linear_sum_assignment(cost)
    out = np.empty(len(pos), dtype=np.int64)
    out[sites] = cells
    return out


def _symmetries(rows: int, cols: int) -> list[NDArray[np.int64]]:
    """Index maps of the lattice's symmetries (8 for a square, 4 otherwise)."""
    idx = np.arange(rows * cols).reshape(rows, cols)
    maps = [idx, idx[::-1], idx[:, ::-1], idx[::-1, ::-1]]
    if rows == cols:
        maps += [m.T for m in maps]
    return [m.ravel() for m in maps]


def neighbour_fraction(
    neighbours: NDArray[np.int64], truth: NDArray[np.int64], rows: int, cols: int
) -> float:
    """Fraction of sites whose listed neighbours all feed from true (8-)neighbour fibers."""
    r, c = np.divmod(truth, cols)
    rn, cn = r[neighbours], c[neighbours]
    ok = (np.abs(rn - r[:, None]) <= 1) & (np.abs(cn - c[:, None]) <= 1)
    return float(np.mean(ok.all(axis=1)))


def topology_attack(
    readouts: NDArray[np.floating],
    rows: int,
    cols: int,
    *,
    rng: np.random.Generator,
    k: int = 4,
    n_landmarks: int = 256,
    restarts: int = 2,
    block_size: int = 1,
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Reassemble the lattice from a stream of readouts ``(N, rows * cols)``.

    The embedding is run ``restarts`` times (other landmarks), each layout is refined
    (:func:`refine_layout`) and the layout whose side-by-side sites are the most similar
    (:func:`layout_score`) is kept.

    Parameters
    ----------
    readouts : (N, rows * cols) float
        The stream (per-site readouts of ``N`` frames).
    rows, cols : int
        Lattice shape.
    rng : numpy.random.Generator
        Landmark choice and the order of refinement windows.
    k : int
        Most correlated sites taken as graph neighbours.
    n_landmarks : int
        Landmarks of the Isomap embedding.
    restarts : int
        Embeddings tried.
    block_size : int
        Public key recipe: sites of one output block come from one ``b × b`` input block
        (1, or at least the lattice: no such structure).

    Returns
    -------
    place : (n_sites,) int64
        Lattice position the attacker gives each site (row-major), up to a symmetry.
    neighbours : (n_sites, k) int64
        Each site's ``k`` most correlated sites.
    """
    corr = correlation_matrix(readouts)
    nb = _knn(corr, k)
    live = lit_sites(readouts)
    if live.sum() < max(k + 2, 9):
        live = np.ones_like(live)
    sim = similarity(corr, live=live)
    # The layout is built from the lit sites only: a dead fiber's site would link unrelated
    # places of the graph. Dead sites start anywhere and are placed by the refinement.
    lit = np.flatnonzero(live)
    corr_lit = corr[np.ix_(lit, lit)]
    nb_lit = _knn(corr_lit, k)
    masked = corr.copy()
    masked[:, ~live] = -np.inf
    nb_place = _knn(masked, k)
    best: tuple[float, NDArray[np.int64]] | None = None
    for _ in range(max(1, restarts)):
        xy_lit = embed(nb_lit, n_landmarks=n_landmarks, rng=rng)
        xy_lit = local_stress(corr_lit, _square_up(xy_lit, rows, cols))
        xy = np.empty((live.size, 2))
        xy[lit] = xy_lit
        lo, hi = xy_lit.min(axis=0), xy_lit.max(axis=0)
        xy[~live] = rng.uniform(lo, hi, size=(int((~live).sum()), 2))
        place = place_on_grid(xy, nb_place, rows, cols)
        place = refine_layout(sim, place, rows, cols, block_size=block_size, dead=~live, rng=rng)
        score = layout_score(sim, place, rows, cols)
        if best is None or score > best[0]:
            best = (score, place)
    assert best is not None
    return best[1], nb


def lit_sites(readouts: NDArray[np.floating], fraction: float = 0.25) -> NDArray[np.bool_]:
    """Sites whose readout varies over the stream, ``(n,)`` bool.

    A dead fiber's site reads only stray light and noise: its temporal spread is a small
    fraction of the typical site's (below ``fraction`` of the median).
    """
    spread = np.asarray(readouts, dtype=np.float64).std(axis=0)
    return spread > fraction * np.median(spread)


def similarity(
    corr: NDArray[np.float64], live: NDArray[np.bool_] | None = None
) -> NDArray[np.float64]:
    """``−log(1 − corr)`` ``(n, n)``: how much closer than chance two sites' fibers are.

    For natural images ``1 − corr`` grows with the distance between two points, so its log
    separates nearest neighbours (``corr`` close to 1) from the next ones far better than
    ``corr`` itself. A site's similarity to itself (never used as an edge of a layout, but
    met when a site is tried next to its own old place) is set to the mean of its 4 best.
    Sites not in ``live`` (dead fibers: their frame-mean-removed readouts all look alike)
    carry no information about their place: they get, to everything, the similarity of a
    typical pair of neighbours (the median over live sites of their 4 best), so that a
    layout gains nothing by moving them to the edge, where they have fewer neighbours.
    """
    c = np.clip(np.asarray(corr, dtype=np.float64), -1.0, 1.0 - 1e-6)
    sim = -np.log1p(-c)
    np.fill_diagonal(sim, -np.inf)
    top = -np.partition(-sim, 4, axis=1)[:, :4]
    np.fill_diagonal(sim, top.mean(axis=1))
    if live is not None and live.any():
        typical = float(np.median(top.mean(axis=1)[live]))
        sim[~live, :] = typical
        sim[:, ~live] = typical
    return sim


def _grid_adjacency(rows: int, cols: int) -> sp.csr_matrix:
    """4-neighbour adjacency of lattice positions, ``(n, n)`` CSR."""
    idx = np.arange(rows * cols).reshape(rows, cols)
    i = np.r_[idx[:, :-1].ravel(), idx[:-1, :].ravel()]
    j = np.r_[idx[:, 1:].ravel(), idx[1:, :].ravel()]
    a = sp.csr_matrix((np.ones(i.size), (i, j)), shape=(rows * cols, rows * cols))
    return sp.csr_matrix(a + a.T)


def _windows(
    place: NDArray[np.int64], rows: int, cols: int, block_size: int, sweep: int
) -> list[tuple[NDArray[np.int64], NDArray[np.int64]]]:
    """(sites, positions) of every refinement window; one-to-one inside each window.

    With key blocks: each output block and the input block it is matched to (by majority of
    its sites' current positions; blocks trade places only with blocks of their shape). Without:
    square tiles of 8 positions a side, shifted by half a tile on odd sweeps, holding the sites
    now placed in them.
    """
    from sim.audit.common import block_ids

    n = rows * cols
    if 1 < block_size < max(rows, cols):
        ids = block_ids(rows, cols, block_size)
        nb = int(ids.max()) + 1
        sizes = np.bincount(ids, minlength=nb)
        votes = np.zeros((nb, nb))
        np.add.at(votes, (ids, ids[place]), 1.0)
        votes[sizes[:, None] != sizes[None, :]] = -1e9
        ob, ib = linear_sum_assignment(-votes)
        pairs = zip(ob, ib, strict=True)
        return [(np.flatnonzero(ids == o), np.flatnonzero(ids == i)) for o, i in pairs]
    tile = 8
    shift = (tile // 2) * (sweep % 2)
    r, c = np.divmod(np.arange(n), cols)
    tid = ((r + shift) // tile) * (cols // tile + 2) + (c + shift) // tile
    at = np.empty_like(place)
    at[place] = np.arange(n)
    out = []
    for t in np.unique(tid):
        positions = np.flatnonzero(tid == t)
        out.append((at[positions], positions))
    return out


def refine_layout(
    sim: NDArray[np.float64],
    place: NDArray[np.int64],
    rows: int,
    cols: int,
    *,
    block_size: int = 1,
    dead: NDArray[np.bool_] | None = None,
    sweeps: int = 20,
    rounds: int = 4,
    rng: np.random.Generator,
) -> NDArray[np.int64]:
    """Local refinement of a layout (site -> position, ``(n,)``) by windowed assignments.

    Each sweep visits every window (:func:`_windows`) in random order and re-assigns its
    sites to its positions, maximising each site's summed similarity to the sites at the
    position's 4 neighbours (the current layout, updated after every window). With key
    blocks, sweeps alternate with :func:`move_blocks_to_fit` for up to ``rounds`` rounds.
    After the sweeps, pairs of sites are exchanged where that helps (:func:`_swap_descent`)
    and the sites of ``dead`` fibers (``(n,)`` bool) are slid
    along lines (:func:`_slide_dead`). The layout with the best :func:`layout_score` met is
    returned.
    """
    from sim.audit.common import block_ids

    adj = _grid_adjacency(rows, cols)
    place = np.asarray(place, dtype=np.int64).copy()
    blocks = 1 < block_size < max(rows, cols)
    region = block_ids(rows, cols, block_size) if blocks else np.zeros(rows * cols, np.int64)
    best = (-np.inf, place.copy())
    for _ in range(rounds if blocks else 1):
        windows = _windows(place, rows, cols, block_size, 0)
        if blocks:  # force every output block into the input block it was matched to
            for sites, positions in windows:
                pr, pc = np.divmod(place[sites], cols)
                qr, qc = np.divmod(positions, cols)
                cost = (pr[:, None] - qr[None]) ** 2 + (pc[:, None] - qc[None]) ** 2
                a, b = linear_sum_assignment(cost)
                place[sites[a]] = positions[b]
        at = np.empty_like(place)
        at[place] = np.arange(place.size)
        for sweep in range(sweeps):
            moved = 0
            if sweep and not blocks:
                windows = _windows(place, rows, cols, block_size, sweep)
            for w in rng.permutation(len(windows)):
                sites, positions = windows[w]
                affinity = np.asarray((adj[:, positions].T @ sim[np.ix_(sites, at)].T).T)
                a, b = linear_sum_assignment(-affinity)
                new = positions[b]
                moved += int(np.count_nonzero(place[sites[a]] != new))
                place[sites[a]] = new
                at[new] = sites[a]
            score = layout_score(sim, place, rows, cols)
            if score > best[0]:
                best = (score, place.copy())
            if moved == 0:
                break
        for sites, positions in windows:
            _swap_descent(sim, place, at, sites, positions, adj)
        if dead is not None and dead.any():
            _slide_dead(sim, place, at, rows, cols, np.flatnonzero(dead), region)
        score = layout_score(sim, place, rows, cols)
        if score > best[0]:
            best = (score, place.copy())
        if not blocks:
            break
        place, changed = move_blocks_to_fit(sim, place, rows, cols, block_size)
        score = layout_score(sim, place, rows, cols)
        if score > best[0]:
            best = (score, place.copy())
        if changed == 0:
            break
    return best[1]


def _swap_descent(
    sim: NDArray[np.float64],
    place: NDArray[np.int64],
    at: NDArray[np.int64],
    sites: NDArray[np.int64],
    positions: NDArray[np.int64],
    adj: sp.csr_matrix,
    max_swaps: int = 200,
) -> int:
    """Exchange pairs of sites of one window while that raises the layout's edge sum.

    The windowed assignment is linearised (a site's affinity counts the neighbours *now*
    around a position) and so misses moves whose gain needs two sites to move together,
    such as a run of sites shifted by one along a line (left behind by a dead fiber, whose
    site fits anywhere). An exchange's exact gain is evaluated for every
    pair at once. ``place`` and ``at`` are updated in place; returns the number of swaps.
    """
    window = adj[positions][:, positions].toarray() > 0  # positions side by side
    done = 0
    for _ in range(max_swaps):
        now = place[sites]  # current position of each window site
        aff = np.asarray((adj[:, now].T @ sim[np.ix_(sites, at)].T).T)  # (m, m): site x pos
        own = np.diag(aff)
        # gain of a <-> b: b to a's place, a to b's place.
        gain = aff.T + aff - own[:, None] - own[None, :]
        ss = sim[np.ix_(sites, sites)]
        selfs = np.diag(ss)
        pos_idx = np.searchsorted(positions, now, sorter=np.argsort(positions))
        order = np.argsort(positions)
        side = window[np.ix_(order[pos_idx], order[pos_idx])]
        # side by side: the swapped pair still touch; F counted each one next to itself
        gain += np.where(side, ss + ss.T - selfs[:, None] - selfs[None, :], 0.0)
        np.fill_diagonal(gain, 0.0)
        a, b = np.unravel_index(int(np.argmax(gain)), gain.shape)
        if gain[a, b] <= 1e-9:
            break
        pa, pb = place[sites[a]], place[sites[b]]
        place[sites[a]], place[sites[b]] = pb, pa
        at[pa], at[pb] = sites[b], sites[a]
        done += 1
    return done


def _slide_dead(
    sim: NDArray[np.float64],
    place: NDArray[np.int64],
    at: NDArray[np.int64],
    rows: int,
    cols: int,
    dead_sites: NDArray[np.int64],
    region: NDArray[np.int64],
    *,
    beam: int = 24,
    max_length: int = 32,
    passes: int = 10,
) -> int:
    """Move each dead fiber's site along a path, every site on the path stepping back one.

    A dead site fits anywhere, so a run of live sites next to it can sit shifted by one
    place along a line (or a bent line) at little cost in the layout's edge sum -- a
    minimum that single exchanges do not leave, since the run must move as a whole. Paths
    from each dead site inside its region (key block, or the lattice) are searched by a
    beam search on their exact gain (``beam`` best paths kept per length, up to
    ``max_length`` steps); the best gain is applied, repeatedly. ``place`` and ``at`` are
    updated in place; returns the number of moves.
    """
    steps = ((0, 1), (1, 0), (0, -1), (-1, 0))

    def around(p: int, state: dict[int, int]) -> float:
        r, c = divmod(p, cols)
        me = state.get(p, int(at[p]))
        total = 0.0
        for dr, dc in steps:
            if 0 <= r + dr < rows and 0 <= c + dc < cols:
                q = (r + dr) * cols + c + dc
                total += sim[me, state.get(q, int(at[q]))]
        return total

    moves = 0
    for _ in range(passes):
        best: tuple[float, list[int]] = (1e-9, [])
        for s in dead_sites:
            start = int(place[s])
            frontier: list[tuple[float, list[int], dict[int, int]]] = [(0.0, [start], {})]
            for _depth in range(max_length):
                grown = []
                for gain, path, state in frontier:
                    hole = path[-1]
                    r, c = divmod(hole, cols)
                    for dr, dc in steps:
                        if not (0 <= r + dr < rows and 0 <= c + dc < cols):
                            continue
                        q = (r + dr) * cols + c + dc
                        if region[q] != region[start] or q in path:
                            continue
                        before = around(hole, state) + around(q, state)
                        if abs(hole - q) in (1, cols):  # the shared edge is counted twice
                            before -= sim[state.get(hole, int(at[hole])), state.get(q, int(at[q]))]
                        new_state = dict(state)
                        new_state[hole] = state.get(q, int(at[q]))
                        new_state[q] = int(s)
                        after = around(hole, new_state) + around(q, new_state)
                        after -= sim[new_state[hole], new_state[q]]
                        grown.append((gain + after - before, [*path, q], new_state))
                if not grown:
                    break
                grown.sort(key=lambda g: -g[0])
                frontier = grown[:beam]
                if frontier[0][0] > best[0]:
                    best = (frontier[0][0], frontier[0][1])
        if not best[1]:
            break
        path = best[1]
        s = int(at[path[0]])
        at[path[:-1]] = at[path[1:]].copy()
        at[path[-1]] = s
        place[at[path]] = path
        moves += 1
    return moves


def move_blocks_to_fit(
    sim: NDArray[np.float64], place: NDArray[np.int64], rows: int, cols: int, block_size: int
) -> tuple[NDArray[np.int64], int]:
    """Jigsaw step: move and turn whole blocks to where their edges fit best.

    ``place`` must put every output block's sites in one input block. Each output block
    keeps its inner arrangement; for every input block and each of the 8 symmetries of the
    square, its edge sites are scored against the sites now just outside that input block,
    and one assignment of blocks to places (best symmetry each) is made. Lattices that the
    block size does not divide are returned unchanged. Returns the new layout and the number
    of blocks moved or turned.
    """
    from sim.audit.common import block_ids

    b = int(block_size)
    if rows % b or cols % b:
        return place, 0
    ids = block_ids(rows, cols, b)
    nbc = cols // b
    nb = (rows // b) * nbc
    at = np.empty_like(place)
    at[place] = np.arange(place.size)
    grid = at.reshape(rows, cols)
    home = np.empty(nb, dtype=np.int64)
    inner = np.empty((nb, b, b), dtype=np.int64)
    for o in range(nb):
        held = np.unique(ids[place[ids == o]])
        if held.size != 1:
            return place, 0
        home[o] = held[0]
        r0, c0 = (held[0] // nbc) * b, (held[0] % nbc) * b
        inner[o] = grid[r0 : r0 + b, c0 : c0 + b]
    turned = np.stack(
        [
            inner,
            inner[:, ::-1],
            inner[:, :, ::-1],
            inner[:, ::-1, ::-1],
            inner.transpose(0, 2, 1),
            inner.transpose(0, 2, 1)[:, ::-1],
            inner.transpose(0, 2, 1)[:, :, ::-1],
            inner.transpose(0, 2, 1)[:, ::-1, ::-1],
        ],
        axis=1,
    )  # (nb, 8, b, b)
    edges = np.stack(
        [turned[:, :, 0, :], turned[:, :, -1, :], turned[:, :, :, 0], turned[:, :, :, -1]], 2
    )  # (nb, 8, 4 sides, b)
    outside = np.full((nb, 4, b), -1, dtype=np.int64)
    for i in range(nb):
        r0, c0 = (i // nbc) * b, (i % nbc) * b
        if r0 > 0:
            outside[i, 0] = grid[r0 - 1, c0 : c0 + b]
        if r0 + b < rows:
            outside[i, 1] = grid[r0 + b, c0 : c0 + b]
        if c0 > 0:
            outside[i, 2] = grid[r0 : r0 + b, c0 - 1]
        if c0 + b < cols:
            outside[i, 3] = grid[r0 : r0 + b, c0 + b]
    valid = outside >= 0
    fit = sim[edges[:, :, None], np.where(valid, outside, 0)[None, None]]  # (nb, 8, nb, 4, b)
    fit = np.where(valid[None, None], fit, 0.0).sum(axis=(-1, -2))  # (nb, 8, nb)
    turn = fit.argmax(axis=1)
    ob, ib = linear_sum_assignment(-fit.max(axis=1))
    new = np.empty_like(place)
    changed = 0
    qr, qc = np.mgrid[0:b, 0:b]
    for o, i in zip(ob, ib, strict=True):
        r0, c0 = (i // nbc) * b, (i % nbc) * b
        new[turned[o, turn[o, i]].ravel()] = ((qr + r0) * cols + qc + c0).ravel()
        changed += int(i != home[o] or turn[o, i] != 0)
    return new, changed


def layout_score(
    corr: NDArray[np.float64], place: NDArray[np.int64], rows: int, cols: int
) -> float:
    """Mean correlation of the sites a layout puts side by side (the attacker's own check)."""
    at = np.empty_like(place)
    at[place] = np.arange(len(place))  # site at each lattice position
    grid = at.reshape(rows, cols)
    pairs = [(grid[:, :-1], grid[:, 1:]), (grid[:-1, :], grid[1:, :])]
    return float(np.mean(np.concatenate([corr[a.ravel(), b.ravel()] for a, b in pairs])))


def stream_flat(
    readouts: NDArray[np.floating], place: NDArray[np.int64], rows: int, cols: int
) -> NDArray[np.float64]:
    """Each site's relative gain from the stream alone, ``(n_sites,)``.

    A long stream of varied scenes lights neighbouring fibers alike on average, so a site's
    mean readout over the median of the means around its place in the attacker's layout
    (3 × 3) is its gain (transmission and coupling), up to one common factor.
    """
    from scipy.ndimage import median_filter

    at = np.empty_like(place)
    at[place] = np.arange(place.size)
    mean = np.asarray(readouts, dtype=np.float64).mean(axis=0)[at].reshape(rows, cols)
    local = median_filter(mean, size=3, mode="nearest")
    ratio = mean / np.where(local > 0, local, np.inf)
    gain = np.empty(place.size)
    gain[at] = ratio.ravel()
    return np.where(gain > 0, gain, 1.0)


def score_placement(
    camera: Camera,
    place: NDArray[np.int64],
    test_readouts: NDArray[np.floating],
    test_truth: NDArray[np.floating],
    flat: NDArray[np.floating],
) -> tuple[float, float]:
    """(fraction placed exactly, image correlation), best over the lattice's symmetries."""
    fp = camera.config.faceplate
    truth = site_to_fiber(camera)
    live = ~camera.key.dead[truth]
    best = (-1.0, -1.0)
    for sym in _symmetries(fp.rows, fp.cols):
        guess = sym[place]
        frac = float(np.mean((guess == truth)[live]))
        pic = reassemble(np.asarray(test_readouts) / flat, guess, fp.n_fibers)
        corr = image_correlation(test_truth, pic)
        if (corr, frac) > (best[1], best[0]):
            best = (frac, corr)
    return best


def ciphertext_only(
    camera: Camera,
    frames: list[int],
    *,
    rng: np.random.Generator,
    readouts: NDArray[np.floating] | None = None,
    progress_fn=None,
) -> list[dict[str, float | int]]:
    """Run the topology attack on the first ``n`` frames of one stream, for each ``n``.

    Parameters
    ----------
    camera : Camera
        The device under attack.
    frames : list of int
        Stream lengths to try (each >= 2).
    rng : numpy.random.Generator
        The scenes of the stream, frame noise and landmark choice.
    readouts : (M, n_sites) float, optional
        A stream already observed (``M >= max(frames)``); default: capture one.

    Returns
    -------
    list of dict
        Per length: ``frames``, ``neighbour_fraction``, ``routing_fraction`` (placed exactly,
        up to symmetry), ``image_correlation``.
    """
    if not frames or min(frames) < 2:
        raise ValueError(f"frames must be numbers >= 2, got {frames}")
    fp = camera.config.faceplate
    n_max = max(frames)
    if readouts is None:
        chunks = []
        for start in range(0, n_max, 100):
            m = min(100, n_max - start)
            chunks.append(observe(camera, natural_stream(m, camera.scene_shape, rng=rng), rng=rng))
            if progress_fn is not None:
                progress_fn(m)
        readouts = np.concatenate(chunks)
    test_scene = natural_stream(3, camera.scene_shape, rng=rng)
    test = observe(camera, test_scene, rng=rng)
    test_truth = true_fiber_values(camera, test_scene)
    truth = site_to_fiber(camera)
    out: list[dict[str, float | int]] = []
    for n in sorted(frames):
        r = readouts[:n]
        place, nb = topology_attack(r, fp.rows, fp.cols, rng=rng, block_size=fp.block_size)
        flat = stream_flat(r, place, fp.rows, fp.cols)
        frac, corr = score_placement(camera, place, test, test_truth, flat)
        out.append(
            {
                "frames": int(n),
                "neighbour_fraction": neighbour_fraction(nb, truth, fp.rows, fp.cols),
                "routing_fraction": frac,
                "image_correlation": corr,
            }
        )
    return out
