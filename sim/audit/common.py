"""What every attack shares: the attacker's observations, natural-scene streams and scores.

The attacker sees what anyone holding frames sees: the public per-site readout of each frame
(the output-face geometry and the sensor calibration are public, :meth:`sim.camera.Camera.readout`).
The truth -- the routing of the key -- is used only to *score* an attack, never by it.

Conventions: input fibers and output sites are numbered row-major on the ``rows × cols``
lattice. An attack returns ``guess``, an ``(n_sites,)`` int array naming, for each output
site, the input fiber the attacker believes feeds it (``-1``: no guess).
"""

from __future__ import annotations

import gzip
from functools import lru_cache
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from sim.camera import Camera

__all__ = [
    "image_correlation",
    "natural_images",
    "natural_stream",
    "observe",
    "reassemble",
    "routing_fraction",
    "site_to_fiber",
    "true_fiber_values",
]


def site_to_fiber(camera: Camera) -> NDArray[np.int64]:
    """Truth used for scoring only: the input fiber feeding each output site, ``(n_sites,)``."""
    routing = camera.key.routing
    inv = np.empty_like(routing)
    inv[routing] = np.arange(routing.size)
    return inv


def _live_sites(camera: Camera) -> NDArray[np.bool_]:
    """Output sites fed by a live fiber (a dead fiber has no routing to recover)."""
    return ~camera.key.dead[site_to_fiber(camera)]


def routing_fraction(camera: Camera, guess: NDArray[np.integer]) -> float:
    """Fraction of live output sites whose input fiber the attacker named exactly."""
    live = _live_sites(camera)
    return float(np.mean((np.asarray(guess) == site_to_fiber(camera))[live]))


def true_fiber_values(camera: Camera, scenes: NDArray[np.floating]) -> NDArray[np.float64]:
    """Light entering each input fiber for scenes on the camera's grid, ``(N, n_fibers)``.

    Public optics only (lens and sampling, photons/s): what a coherent faceplate would show.
    """
    a = camera.pipeline.upto("sampling").operator()[0]  # public stages: lens, sampling
    x = np.asarray(scenes, dtype=np.float64).reshape(len(scenes), -1)
    return np.asarray(a @ x.T).T


def modelled_fiber_values(camera: Camera, scenes: NDArray[np.floating]) -> NDArray[np.float64]:
    """:func:`true_fiber_values` through the public input-face crosstalk: the attacker's model."""
    c_in = public_crosstalk(camera)[0]
    return np.asarray(c_in @ true_fiber_values(camera, scenes).T).T


def public_crosstalk(camera: Camera) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Input- and output-face crosstalk the camera's public description states, ``(n, n)``.

    The crosstalk fractions are design figures of the lattice (in the camera configuration),
    so an attacker models them like the owner does.
    """
    from optics.faceplate.lattice import crosstalk_matrix

    fp = camera.config.faceplate
    return (
        crosstalk_matrix(fp.lattice, fp.rows, fp.cols, fp.crosstalk_in),
        crosstalk_matrix(fp.lattice, fp.rows, fp.cols, fp.crosstalk_out),
    )


def reassemble(
    readouts: NDArray[np.floating], guess: NDArray[np.integer], n_fibers: int
) -> NDArray[np.float64]:
    """The attacker's picture: each site's readout put where the attacker believes it belongs.

    ``readouts`` is ``(N, n_sites)``; returns ``(N, n_fibers)`` with NaN where no site was
    placed.
    """
    r = np.atleast_2d(np.asarray(readouts, dtype=np.float64))
    g = np.asarray(guess)
    ok = g >= 0
    out = np.full((r.shape[0], n_fibers), np.nan)
    out[:, g[ok]] = r[:, ok]
    return out


def image_correlation(truth: NDArray[np.floating], picture: NDArray[np.floating]) -> float:
    """Median over images of the Pearson correlation of ``picture`` with ``truth``.

    Both ``(N, n_fibers)``; fibers the attacker left empty (NaN) are skipped.
    """
    t = np.atleast_2d(truth)
    p = np.atleast_2d(picture)
    out = []
    for a, b in zip(t, p, strict=True):
        ok = np.isfinite(b)
        if ok.sum() < 3 or np.std(a[ok]) == 0 or np.std(b[ok]) == 0:
            out.append(0.0)
            continue
        out.append(float(np.corrcoef(a[ok], b[ok])[0, 1]))
    return float(np.median(out))


def observe(
    camera: Camera,
    scenes: NDArray[np.floating],
    *,
    rng: np.random.Generator,
    exposure_s: float | None = None,
) -> NDArray[np.float64]:
    """Capture scenes (all sensor noise) and return their public per-site readouts.

    Parameters
    ----------
    camera : Camera
        The device under attack (its key shapes the frames; the readout is public).
    scenes : (N, rows, cols) float
        Linear scene values on the camera's scene grid, in [0, 1].
    rng : numpy.random.Generator
        Temporal noise of the frames.
    exposure_s : float, optional
        One fixed exposure for every frame (default: the camera's exposure for a white scene),
        as a video camera or an attacker with a fixed setting would use.

    Returns
    -------
    (N, n_sites) float64
        Photons per exposure leaving each output site, as read from the frames.
    """
    t = camera.exposure_for(None) if exposure_s is None else float(exposure_s)
    gain, offset = camera.sensor.affine(t)
    rates = np.stack([camera.photon_rate(s) for s in scenes])
    frames = camera.sensor.expose(rates * t, exposure_s=t, rng=rng)
    photons = (frames.astype(np.float64) - offset) / gain
    return camera._site_readouts[0].many(photons)


@lru_cache(maxsize=1)
def natural_images() -> tuple[NDArray[np.float64], ...]:
    """Grey natural images in [0, 1] from matplotlib's sample data (public, always installed).

    The bundled default scene (a photograph), an MRI slice, and two elevation maps (terrain
    has the spatial statistics of natural images).
    """
    import matplotlib.cbook as cbook

    from sim import io as sio

    out = []
    photo = sio.read_image(sio.default_scene_path()).data
    out.append(sio.luminance(photo) if photo.ndim == 3 else np.asarray(photo, dtype=np.float64))
    raw = Path(str(cbook.get_sample_data("s1045.ima.gz", asfileobj=False))).read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    out.append(np.frombuffer(raw, np.uint16).astype(np.float64).reshape(256, 256))
    for name, field in (("jacksboro_fault_dem.npz", "elevation"), ("topobathy.npz", "topo")):
        with np.load(cbook.get_sample_data(name, asfileobj=False), allow_pickle=False) as z:
            out.append(np.asarray(z[field], dtype=np.float64))
    norm = []
    for im in out:
        lo, hi = np.percentile(im, [0.5, 99.5])
        norm.append(np.clip((im - lo) / max(hi - lo, 1e-12), 0.0, 1.0))
    return tuple(norm)


def natural_stream(
    n: int, shape: tuple[int, int], *, rng: np.random.Generator
) -> NDArray[np.float64]:
    """``n`` frames of a "video" of natural scenes on a ``shape`` grid, ``(n, *shape)``.

    Each frame is a window of one of :func:`natural_images`, at a random position and a random
    size between 40 % and 90 % of the image, area-resampled to ``shape``; successive frames
    are independent views (a camera panning over many scenes).
    """
    from sim.scene import resample_area

    imgs = natural_images()
    out = np.empty((n, *shape))
    h, w = shape
    for k in range(n):
        im = imgs[int(rng.integers(len(imgs)))]
        side = rng.uniform(0.4, 0.9) * min(im.shape)
        sh, sw = (side, side * w / h) if w <= h else (side * h / w, side)
        sh, sw = int(min(sh, im.shape[0])), int(min(sw, im.shape[1]))
        y = int(rng.integers(0, im.shape[0] - sh + 1))
        x = int(rng.integers(0, im.shape[1] - sw + 1))
        out[k] = resample_area(im[y : y + sh, x : x + sw], shape)
    return out


def block_ids(rows: int, cols: int, b: int) -> NDArray[np.int64]:
    """Key block of every lattice site (row-major), ``b × b`` blocks from the top left."""
    r, c = np.divmod(np.arange(rows * cols), cols)
    return (r // b) * (-(-cols // b)) + c // b


def refine_by_blocks(
    score: NDArray[np.floating], guess: NDArray[np.integer], rows: int, cols: int, b: int
) -> NDArray[np.int64]:
    """Use the public key recipe: sites of one output block come from one input block.

    A block key moves whole ``b × b`` blocks as sub-bundles (``block_size`` is part of the
    public camera description). Each output block votes for the input block most of its sites
    were assigned to; blocks are matched one-to-one by the votes, then every site is
    re-assigned inside its block by :func:`scipy.optimize.linear_sum_assignment` on
    ``score`` (``(n_sites, n_fibers)``, larger is better). Returns the refined guess.
    """
    from scipy.optimize import linear_sum_assignment

    if b <= 1 or b >= max(rows, cols):
        return np.asarray(guess, dtype=np.int64)
    ids = block_ids(rows, cols, b)
    nb = int(ids.max()) + 1
    sizes = np.bincount(ids, minlength=nb)
    g = np.asarray(guess)
    ok = g >= 0
    votes = np.zeros((nb, nb))
    np.add.at(votes, (ids[ok], ids[g[ok]]), 1.0)
    votes[sizes[:, None] != sizes[None, :]] = -1e9  # blocks only trade with equal shapes
    ob, ib = linear_sum_assignment(-votes)
    s = np.asarray(score)
    out = np.full(rows * cols, -1, dtype=np.int64)
    for o, i in zip(ob, ib, strict=True):
        sites, fibers = np.flatnonzero(ids == o), np.flatnonzero(ids == i)
        rr, cc = linear_sum_assignment(-s[np.ix_(sites, fibers)])
        out[sites[rr]] = fibers[cc]
    return out
