"""From a :class:`sim.camera.Camera` to what a key-net needs: public readouts and ``A_s, b_s``.

The output-face geometry (which pixels sit behind which output site) and the sensor's
calibration are public, so binning a frame into per-site readouts is a public step: remove
the sensor's per-pixel offset and gain, then take the least-squares flux of every site
through the coupling operator ``K``::

    r = (Kᵀ K)⁻¹ Kᵀ (y − offset) / gain            (photons per exposure and site)

:class:`PublicReadout` does this for many frames with the camera's own per-site readout
(:class:`optics.faceplate.SiteReadout`, factorised once; ``R K = I`` holds to rounding).
:func:`input_operator` composes the digit-to-scene embedding with the camera's signal
pipeline and the readout into ``r = A_s d + b_s``: the secret part (routing, transmission,
stray light, crosstalk) together with the public lens and sampling. :func:`secret_map` gives
the same map in factored form (:class:`keynet.operators.SecretMap`), for any key of the
camera's lattice (the design key or a measured one), which a key-net inverts sparsely.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from keycam.cli import progress
from optics.faceplate import Key, SiteReadout
from sim.camera import Camera
from sim.pipeline import AffineStage, Pipeline
from sim.scene import area_matrix, fit_to_aspect
from sim.stages import check_key

from .operators import InputOperator, SecretMap

__all__ = [
    "PublicReadout",
    "capture_readouts",
    "digit_embedding",
    "input_operator",
    "secret_map",
]

#: Largest off-diagonal of the public site-to-readout map, relative to its diagonal, that
#: :func:`secret_map` accepts as "every output site is read on its own".
SITE_MIXING_TOL = 1e-9


class PublicReadout:
    """Frames ``(N, H, W)`` in DN → per-site readouts ``(N, n_sites)``, photons per exposure.

    Parameters
    ----------
    camera : Camera
        Only its public parts are used: the sensor calibration and the coupling operator.
    exposure_s : float
        Exposure of the frames, seconds.
    ridge : float
        Relative Tikhonov term used only if ``Kᵀ K`` is singular (sites off the sensor).
    """

    def __init__(self, camera: Camera, *, exposure_s: float, ridge: float = 1e-6) -> None:
        gain, offset = camera.sensor.affine(float(exposure_s))
        self.gain = np.asarray(gain, dtype=np.float64).ravel()
        self.offset = np.asarray(offset, dtype=np.float64).ravel()
        self.frame_shape = tuple(camera.frame_shape)
        self._sites = SiteReadout(camera.coupling_operator, ridge=ridge)

    @property
    def n_sites(self) -> int:
        """Number of output sites."""
        return self._sites.n_sites

    def photons(self, frames: np.ndarray) -> np.ndarray:
        """``(N, n_pixels)`` photons per pixel: ``(y − offset) / gain`` of ``(N, H, W)`` frames."""
        y = np.asarray(frames, dtype=np.float64)
        if y.shape[-2:] != self.frame_shape:
            raise ValueError(
                f"frames must be (N, {self.frame_shape[0]}, {self.frame_shape[1]}) "
                f"pixels, got {y.shape}"
            )
        y = y.reshape(-1, self.gain.size)
        return (y - self.offset) / self.gain

    def solve(self, photons: np.ndarray) -> np.ndarray:
        """Least-squares site flux for photons per pixel ``(N, n_pixels)`` → ``(N, n_sites)``."""
        return self._sites.many(photons)

    def solve_columns(self, photons: sp.spmatrix) -> np.ndarray:
        """Least-squares site flux for each column of a sparse ``(n_pixels, m)`` matrix."""
        return self._sites.solve_columns(photons)

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        """Readouts ``(N, n_sites)`` of frames ``(N, H, W)`` (DN, any numeric dtype)."""
        return self.solve(self.photons(frames))


def digit_embedding(scene_shape: tuple[int, int]) -> sp.csr_matrix:
    """``(rows·cols, 784)`` map from a 28×28 digit to a scene grid of ``scene_shape``.

    The same steps as :func:`sim.scene.prepare_scene` (centre crop to the grid's aspect
    ratio, then area resampling), written as a matrix; the identity for a 28×28 grid.
    """
    rows, cols = (int(v) for v in scene_shape)
    if (rows, cols) == (28, 28):
        return sp.identity(784, format="csr")
    kept = fit_to_aspect(np.arange(784).reshape(28, 28), (rows, cols))
    h, w = kept.shape
    resample = sp.kron(area_matrix(h, rows), area_matrix(w, cols), format="csr")
    select = sp.csr_matrix((np.ones(h * w), (np.arange(h * w), kept.ravel())), shape=(h * w, 784))
    return sp.csr_matrix(resample @ select)


def input_operator(camera: Camera, *, exposure_s: float, readout: PublicReadout) -> InputOperator:
    """``A_s, b_s`` with ``readout(E[frame of digit d]) = A_s d + b_s`` (photons per exposure).

    The digit embedding followed by the camera's signal pipeline at ``exposure_s`` (DN per
    digit value), composed, then the public readout. Its secret is the camera's key; treat the
    result like the key itself (it is only ever fused into a key-net's first layer).
    """
    embed = AffineStage("digit", digit_embedding(camera.scene_shape), None, "28x28 digit -> scene")
    chain = Pipeline([embed, *camera.signal_pipeline(float(exposure_s))])
    a_digit, b = chain.operator()
    scaled = sp.diags(1.0 / readout.gain) @ a_digit  # photons per pixel per unit digit value
    a_s = readout.solve_columns(scaled)  # (n_sites, 784)
    b_s = readout.solve(((b - readout.offset) / readout.gain)[None, :])[0]
    return InputOperator(sp.csr_matrix(_prune(a_s)), b_s)


def secret_map(
    camera: Camera, *, exposure_s: float, readout: PublicReadout, key: Key | None = None
) -> SecretMap:
    """The camera's digits-to-readouts map in factored form, for ``key``.

    The public parts come from the camera's pipeline: the digit embedding, lens and sampling
    give ``E`` (photons/s entering each input fiber per unit digit value); the coupling, the
    sensor at ``exposure_s`` and the public readout give ``g`` (readout units per photon/s
    leaving each output site). The secret part is ``key``.

    Parameters
    ----------
    camera : Camera
        A monochrome camera; only its public stages are used.
    exposure_s : float
        Exposure of the frames, seconds.
    readout : PublicReadout
        The public per-site readout of the frames.
    key : Key, optional
        The key to invert: the device's design key (default ``camera.key``) or a measured
        key of the same lattice.

    Raises
    ------
    ValueError
        A colour camera, a key for another lattice, or a readout that does not resolve
        every output site on its own (then only :func:`input_operator` applies).
    """
    if camera.n_channels != 1:
        raise ValueError("key-nets take monochrome cameras (colour = 'mono')")
    key = camera.key if key is None else key
    check_key(camera.config, key)
    embed = AffineStage("digit", digit_embedding(camera.scene_shape), None, "28x28 digit -> scene")
    entrance, _ = Pipeline([embed, *camera.pipeline.upto("sampling")]).operator()
    post, _ = camera.signal_pipeline(float(exposure_s)).after("transfer").operator()
    sites = readout.solve_columns(sp.diags(1.0 / readout.gain) @ post)  # (n_sites, n_sites)
    gain = np.diag(sites).copy()
    mixing = np.abs(sites - np.diag(gain)).max(initial=0.0)
    if not (np.all(gain > 0) and mixing <= SITE_MIXING_TOL * float(gain.max())):
        raise ValueError(
            "the public readout does not resolve every output site on its own "
            "(sites off the sensor?); key with the exact input operator instead"
        )
    return SecretMap(sp.csr_matrix(entrance), key, gain)


def _prune(m: np.ndarray, rel: float = 1e-12) -> np.ndarray:
    """Zero the rounding dust ``|m| <= rel · max|m|`` left by ``R K = I``."""
    m = m.copy()
    m[np.abs(m) <= rel * float(np.abs(m).max())] = 0.0
    return m


def capture_readouts(
    camera: Camera,
    digits: np.ndarray,
    readout: PublicReadout,
    *,
    exposure_s: float,
    rng: np.random.Generator,
    quiet: bool = False,
    desc: str = "capture",
) -> np.ndarray:
    """Photograph each digit once (all sensor noise) and return public readouts ``(N, n_sites)``.

    Digits are ``(N, 28, 28)`` scene values in [0, 1] (1 = the configured scene radiance).
    """
    digits = np.asarray(digits)
    frames = np.empty((len(digits), *camera.frame_shape), dtype=np.uint16)
    for i in progress(range(len(digits)), total=len(digits), desc=desc, quiet=quiet):
        frames[i] = camera.capture(digits[i], rng=rng, exposure_s=exposure_s)
    return readout(frames)
