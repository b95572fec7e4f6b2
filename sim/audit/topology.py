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
   site placed on one lattice position by a minimum-cost assignment, then refined by moving
   each site towards the mean position of its graph neighbours and assigning again.

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
    "neighbour_fraction",
    "neighbours",
    "place_on_grid",
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
    restarts: int = 3,
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Reassemble the lattice from a stream of readouts ``(N, rows * cols)``.

    The embedding is run ``restarts`` times (other landmarks) and the layout whose side-by-side
    sites are the most correlated (:func:`layout_score`) is kept.

    Returns
    -------
    place : (n_sites,) int64
        Lattice position the attacker gives each site (row-major), up to a symmetry.
    neighbours : (n_sites, k) int64
        Each site's ``k`` most correlated sites.
    """
    corr = correlation_matrix(readouts)
    nb = _knn(corr, k)
    best: tuple[float, NDArray[np.int64]] | None = None
    for _ in range(restarts):
        xy = embed(nb, n_landmarks=n_landmarks, rng=rng)
        xy = local_stress(corr, _square_up(xy, rows, cols))
        place = place_on_grid(xy, nb, rows, cols)
        score = layout_score(corr, place, rows, cols)
        if best is None or score > best[0]:
            best = (score, place)
    assert best is not None
    return best[1], nb


def layout_score(
    corr: NDArray[np.float64], place: NDArray[np.int64], rows: int, cols: int
) -> float:
    """Mean correlation of the sites a layout puts side by side (the attacker's own check)."""
    at = np.empty_like(place)
    at[place] = np.arange(len(place))  # site at each lattice position
    grid = at.reshape(rows, cols)
    pairs = [(grid[:, :-1], grid[:, 1:]), (grid[:-1, :], grid[1:, :])]
    return float(np.mean(np.concatenate([corr[a.ravel(), b.ravel()] for a, b in pairs])))


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
        place, nb = topology_attack(r, fp.rows, fp.cols, rng=rng)
        # Raw readouts: fibers share one nominal transmission, and a stream of varied scenes
        # is no flat field (its mean keeps the lens vignetting and the scenes' own layout).
        frac, corr = score_placement(camera, place, test, test_truth, np.ones(fp.n_fibers))
        out.append(
            {
                "frames": int(n),
                "neighbour_fraction": neighbour_fraction(nb, truth, fp.rows, fp.cols),
                "routing_fraction": frac,
                "image_correlation": corr,
            }
        )
    return out
