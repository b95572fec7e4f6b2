"""Known plaintext: pairs of (scene, frame) reveal the routing by correlation and assignment.

The attacker holds ``N`` frames and the scenes they show (a photograph that was also taken
with an ordinary camera, a published picture, a test chart). The lens and the fiber lattice
are public, so the light entering every input fiber, ``x_f`` (``N`` values per fiber), is
known; each output site ``s`` reads ``r_s = t_s x_{f(s)} + b_s + noise``. Per site, the
Pearson correlation of its ``N`` readouts with every fiber's ``N`` input values is 1 for its
own fiber (up to noise and crosstalk); a minimum-cost assignment
(:func:`scipy.optimize.linear_sum_assignment`) on ``1 − corr`` gives the routing. An unknown
gain and offset per site cost two pairs; the rest must tell 4,096 fibers apart.

Those two pairs need not be lost: the sites of one camera share a nominal gain and offset
(one transmission recipe, one stray light, one relay), so after a first assignment the
attacker estimates their spread across sites and scores every (site, fiber) pair by the
maximum a-posteriori fit ``r_s ≈ g x_f + o`` with Gaussian priors on ``g`` and ``o``
(:func:`prior_assignment`); with the public key recipe the assignment runs inside matched
key blocks, where the block's 64 fibers are told apart with all ``N`` numbers.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import linear_sum_assignment

from sim.audit.common import (
    image_correlation,
    modelled_fiber_values,
    observe,
    reassemble,
    refine_by_blocks,
    routing_fraction,
    true_fiber_values,
)
from sim.camera import Camera

__all__ = ["correlation_assignment", "known_plaintext", "prior_assignment"]


def _standardise(a: NDArray[np.floating]) -> NDArray[np.float64]:
    """Columns of ``a`` (N, m) centred and scaled to unit norm (constant columns -> 0)."""
    z = np.asarray(a, dtype=np.float64) - np.mean(a, axis=0)
    norm = np.linalg.norm(z, axis=0)
    return z / np.where(norm > 0, norm, np.inf)


def correlation_assignment(
    readouts: NDArray[np.floating],
    fiber_values: NDArray[np.floating],
    *,
    lattice: tuple[int, int] | None = None,
    block_size: int = 1,
) -> NDArray[np.int64]:
    """Routing guess from pairs: ``(N, n_sites)`` readouts, ``(N, n_fibers)`` scene values.

    With ``lattice = (rows, cols)`` and the public ``block_size`` of the key recipe, the
    guess is refined block by block (:func:`sim.audit.common.refine_by_blocks`).
    Returns ``(n_sites,)``, the input fiber assigned to each site (one-to-one).
    """
    corr = _standardise(readouts).T @ _standardise(fiber_values)  # (n_sites, n_fibers)
    sites, fibers = linear_sum_assignment(-corr)
    guess = np.full(corr.shape[0], -1, dtype=np.int64)
    guess[sites] = fibers
    if lattice is not None:
        guess = refine_by_blocks(corr, guess, lattice[0], lattice[1], block_size)
    return guess


def _mad(v: NDArray[np.floating]) -> float:
    """Robust standard deviation (1.4826 × median absolute deviation)."""
    return float(1.4826 * np.median(np.abs(v - np.median(v))))


def prior_assignment(
    readouts: NDArray[np.floating],
    fiber_values: NDArray[np.floating],
    *,
    lattice: tuple[int, int] | None = None,
    block_size: int = 1,
    iterations: int = 2,
) -> NDArray[np.int64]:
    """Routing guess from pairs, fitting each site's gain and offset with priors.

    Starts from :func:`correlation_assignment`. Then, ``iterations`` times: every site's
    gain and offset against its assigned fiber (least squares) give the camera's typical
    values ``G, O`` (medians) and spreads ``σ_g, σ_o`` (robust), and the residuals the noise
    ``σ``; each pair (site ``s``, fiber ``f``) costs the minimum over ``g, o`` of
    ``|r_s − g x_f − o|² / σ² + (g − G)² / σ_g² + (o − O)² / σ_o²`` (a 2 × 2 linear
    system, solved for all pairs at once), and an assignment minimises the total cost --
    inside matched key blocks when ``lattice`` and ``block_size`` give them.

    Parameters
    ----------
    readouts : (N, n_sites) float
        Per-site readouts of the ``N`` known frames.
    fiber_values : (N, n_fibers) float
        Light entering each fiber for the ``N`` known scenes (the attacker's model).
    lattice : (rows, cols), optional
        Lattice shape, to use the key blocks.
    block_size : int
        Public block size of the key recipe.
    iterations : int
        Re-fits of the priors and assignments.

    Returns
    -------
    (n_sites,) int64
        The input fiber assigned to each site (one-to-one).
    """
    from sim.audit.common import block_ids

    r = np.asarray(readouts, dtype=np.float64)
    x = np.asarray(fiber_values, dtype=np.float64)
    n_pairs, n = r.shape
    guess = correlation_assignment(r, x, lattice=lattice, block_size=block_size)
    if n_pairs < 3:
        return guess
    ids = np.zeros(n, np.int64)
    if lattice is not None and 1 < block_size < max(lattice):
        ids = block_ids(lattice[0], lattice[1], block_size)
    nb = int(ids.max()) + 1
    sizes = np.bincount(ids, minlength=nb)
    for _ in range(iterations):
        gain, offset = _site_lines(r, x, guess)
        finite = np.isfinite(gain)
        if finite.sum() < 3:
            break
        g0, o0 = float(np.median(gain[finite])), float(np.median(offset[finite]))
        var_g = max(_mad(gain[finite]), 1e-6 * abs(g0)) ** 2
        var_o = max(_mad(offset[finite]), 1e-6 * abs(o0) + 1e-12) ** 2
        resid = r[:, finite] - (gain[finite] * x[:, guess[finite]] + offset[finite])
        # median of a chi-square with one degree of freedom is 0.4549 times its mean
        var_n = float(np.median(resid**2)) / 0.4549 * n_pairs / (n_pairs - 2)
        var_n = max(var_n, 1e-12 * float(np.mean(r**2)))
        votes = np.zeros((nb, nb))
        np.add.at(votes, (ids, ids[guess]), 1.0)
        votes[sizes[:, None] != sizes[None, :]] = -1e9
        new = guess.copy()
        for o, i in zip(*linear_sum_assignment(-votes), strict=True):
            sites, fibers = np.flatnonzero(ids == o), np.flatnonzero(ids == i)
            cost = _map_cost(r[:, sites], x[:, fibers], g0, o0, var_g, var_o, var_n)
            a, b = linear_sum_assignment(cost)
            new[sites[a]] = fibers[b]
        if np.array_equal(new, guess):
            break
        guess = new
    return guess


def _map_cost(
    rs: NDArray[np.float64],
    xf: NDArray[np.float64],
    g0: float,
    o0: float,
    var_g: float,
    var_o: float,
    var_n: float,
) -> NDArray[np.float64]:
    """Cost ``(n_sites, n_fibers)`` of the best gain/offset fit of each site to each fiber."""
    n_pairs = rs.shape[0]
    xx = (xf**2).sum(0)[None, :]
    sx = xf.sum(0)[None, :]
    xr = rs.T @ xf
    sr = rs.sum(0)[:, None]
    rr = (rs**2).sum(0)[:, None]
    a11 = xx / var_n + 1.0 / var_g
    a12 = sx / var_n
    a22 = n_pairs / var_n + 1.0 / var_o
    b1 = xr / var_n + g0 / var_g
    b2 = sr / var_n + o0 / var_o
    det = a11 * a22 - a12**2
    g = (a22 * b1 - a12 * b2) / det
    o = (a11 * b2 - a12 * b1) / det
    fit = rr - 2 * g * xr - 2 * o * sr + g**2 * xx + 2 * g * o * sx + n_pairs * o**2
    return fit / var_n + (g - g0) ** 2 / var_g + (o - o0) ** 2 / var_o


def known_plaintext(
    camera: Camera,
    pairs: list[int],
    *,
    rng: np.random.Generator,
    scenes: NDArray[np.floating] | None = None,
) -> list[dict[str, float | int]]:
    """Attack with the first ``n`` of a set of known (scene, frame) pairs, for each ``n``.

    Parameters
    ----------
    camera : Camera
        The device under attack.
    pairs : list of int
        Numbers of pairs to try (each >= 2).
    rng : numpy.random.Generator
        Scenes (natural images, :func:`sim.audit.common.natural_stream`) and frame noise.
    scenes : (M, rows_px, cols_px) float, optional
        The known scenes (default: natural images); ``M >= max(pairs)``.

    Returns
    -------
    list of dict
        Per ``n``: ``pairs``, ``routing_fraction``, ``image_correlation`` (a fresh natural
        scene reassembled with the recovered routing).
    """
    from sim.audit.common import natural_stream

    if not pairs or min(pairs) < 2:
        raise ValueError(f"pairs must be numbers >= 2, got {pairs}")
    n_max = max(pairs)
    if scenes is None:
        scenes = natural_stream(n_max, camera.scene_shape, rng=rng)
    fp = camera.config.faceplate
    lattice = (fp.rows, fp.cols)
    r = observe(camera, scenes[:n_max], rng=rng)
    x = modelled_fiber_values(camera, scenes[:n_max])
    test_scene = natural_stream(1, camera.scene_shape, rng=rng)
    test = observe(camera, test_scene, rng=rng)
    truth = true_fiber_values(camera, test_scene)
    out: list[dict[str, float | int]] = []
    for n in sorted(pairs):
        guess = prior_assignment(r[:n], x[:n], lattice=lattice, block_size=fp.block_size)
        # The pairs also give each site's gain and offset (a line through its n points).
        gain, offset = _site_lines(r[:n], x[:n], guess)
        picture = reassemble((test - offset) / gain, guess, camera.key.n_fibers)
        out.append(
            {
                "pairs": int(n),
                "routing_fraction": routing_fraction(camera, guess),
                "image_correlation": image_correlation(truth, picture),
            }
        )
    return out


def _site_lines(
    r: NDArray[np.float64], x: NDArray[np.float64], guess: NDArray[np.int64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Least-squares gain and offset of every site against its assigned fiber."""
    xs = x[:, guess]
    xm, rm = xs.mean(0), r.mean(0)
    var = ((xs - xm) ** 2).sum(0)
    gain = ((xs - xm) * (r - rm)).sum(0) / np.where(var > 0, var, np.inf)
    gain = np.where(np.abs(gain) > 1e-12 * np.abs(gain).max(), gain, np.inf)
    return gain, rm - gain * xm
