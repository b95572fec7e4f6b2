"""Known plaintext: pairs of (scene, frame) reveal the routing by correlation and assignment.

The attacker holds ``N`` frames and the scenes they show (a photograph that was also taken
with an ordinary camera, a published picture, a test chart). The lens and the fiber lattice
are public, so the light entering every input fiber, ``x_f`` (``N`` values per fiber), is
known; each output site ``s`` reads ``r_s = t_s x_{f(s)} + b_s + noise``. Per site, the
Pearson correlation of its ``N`` readouts with every fiber's ``N`` input values is 1 for its
own fiber (up to noise and crosstalk); a minimum-cost assignment
(:func:`scipy.optimize.linear_sum_assignment`) on ``1 − corr`` gives the routing. An unknown
gain and offset per site cost two pairs; the rest must tell 4,096 fibers apart.
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

__all__ = ["correlation_assignment", "known_plaintext"]


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
        guess = correlation_assignment(r[:n], x[:n], lattice=lattice, block_size=fp.block_size)
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
