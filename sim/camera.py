"""The keycam camera: lens -> keyed fiber faceplate -> relay/butt coupling -> CMOS sensor.

Everything optical is one affine map on light (DESIGN.md). For a scene ``x`` on the camera's
scene grid (``config.scene.shape_px``, row-major, linear values, 1.0 = the configured
radiance) the mean photons reaching the sensor pixels during an exposure ``t`` are ::

    photons = t · ( K_c · T · S · L · x  +  K_c · bias )

with the stages, each a ``scipy.sparse`` CSR matrix built once in the constructor:

``L`` : (n_samples, n_scene)  lens: scene -> photons/s per image-plane sample on the input face
``S`` : (n_fibers, n_samples) sampling: samples -> flux entering each fiber core
``T`` : (n_sites, n_fibers)   transfer (the secret): crosstalk, transmission, routing;
        ``bias`` (n_sites,) stray light in photons/s
``K_c`` : (n_pixels, n_sites) coupling: output sites -> pixels, times the relay efficiency
        (the public output-face geometry)

and the sensor turns photons into DN as ``gain ⊙ photons + offset`` (EMVA 1288, before
rounding and clipping; :meth:`optics.sensor.Sensor.affine`). :meth:`Camera.operator` returns
that composition as ``(A, b)`` in DN, and the mean of many :meth:`Camera.capture` frames equals
``A x + b`` wherever nothing clips.

Scenes of any size are first centre-cropped to the grid's aspect ratio and area-resampled
onto the grid (:func:`sim.scene.prepare_scene`); colour scenes are reduced to luminance
(Rec. 709 weights on linear RGB) because the sensor is monochrome.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import scipy.sparse as sp

from optics.faceplate import Key, coupling_operator, keygen, sampling_operator, transfer_operator
from optics.lens import image_operator
from optics.sensor import Sensor
from optics.unscramble import site_readout
from optics.unscramble import unscramble as _unscramble
from sim.config import CameraConfig, load_config
from sim.scene import prepare_scene

__all__ = ["Camera", "CameraConfig", "load_config"]

_LATTICE_FIELDS = ("lattice", "rows", "cols", "pitch_um", "core_diameter_um")


def _check_key(config: CameraConfig, key: Key) -> None:
    if not isinstance(key, Key):
        raise TypeError(f"key must be an optics.faceplate.Key, got {type(key).__name__}")
    want, have = config.faceplate, key.config
    if any(getattr(want, f) != getattr(have, f) for f in _LATTICE_FIELDS):

        def desc(c: Any) -> str:
            return (
                f"{c.rows}x{c.cols} {c.lattice} lattice at {c.pitch_um:g} µm pitch, "
                f"{c.core_diameter_um:g} µm cores"
            )

        raise ValueError(
            f"key {key.fingerprint} is for another lattice: {desc(have)}; "
            f"this camera's faceplate is a {desc(want)}"
        )


class Camera:
    """A privacy camera built from a :class:`CameraConfig` and a faceplate key.

    Parameters
    ----------
    config : CameraConfig
        The camera. Its ``faceplate`` fixes the lattice; the key must match it.
    key : Key, optional
        The device key. Default: ``keygen(config.faceplate)`` (deterministic in
        ``config.faceplate.seed``). A given key's own recipe (block size, transmission, ...)
        replaces the config's; only its lattice must agree.

    Raises
    ------
    ValueError
        A key for another lattice (the message names both lattices).
    """

    def __init__(self, config: CameraConfig, key: Key | None = None, *, _parts: dict | None = None):
        if not isinstance(config, CameraConfig):
            raise TypeError(f"config must be a CameraConfig, got {type(config).__name__}")
        if key is None:
            key = keygen(config.faceplate)
        _check_key(config, key)
        self.config: CameraConfig = config.model_copy(update={"faceplate": key.config})
        self.key: Key = key
        parts = _parts if _parts is not None else self._build_public_parts(self.config)
        self._parts = parts
        self.sensor: Sensor = parts["sensor"]
        self.lens_operator: sp.csr_matrix = parts["L"]
        self.sampling_operator: sp.csr_matrix = parts["S"]
        self.coupling_operator: sp.csr_matrix = parts["K"]
        t, bias = transfer_operator(key)
        self.transfer_operator: sp.csr_matrix = t
        self.transfer_bias: np.ndarray = bias
        self._sl: sp.csr_matrix = parts["SL"]  # scene -> fiber inputs, photons/s
        self._fiber_operator: sp.csr_matrix | None = None
        self._bias_rate = np.asarray(self.coupling_operator @ bias)  # photons/s per pixel
        self._gain_e = (
            self.sensor.affine(1.0)[0] / self.sensor.config.system_gain_dn_per_e
        ).ravel()
        self._conventional: Camera | None = None
        self._readout_cache: Any = None

    # ------------------------------------------------------------------ construction
    @staticmethod
    def _build_public_parts(config: CameraConfig) -> dict:
        fp, sc = config.faceplate, config.scene
        dx = fp.pitch_um / config.samples_per_pitch
        xy = fp.site_centers_um()
        ext_x = float(xy[:, 0].max() - xy[:, 0].min()) + fp.core_diameter_um
        ext_y = float(xy[:, 1].max() - xy[:, 1].min()) + fp.core_diameter_um
        sample_shape = (math.ceil(ext_y / dx - 1e-9), math.ceil(ext_x / dx - 1e-9))
        lens_op = image_operator(
            config.lens,
            scene_shape=sc.shape_px,
            scene_fov_deg=config.scene_fov_deg,
            dx_um=dx,
            shape=sample_shape,
            radiance_w_m2_sr=sc.radiance_w_m2_sr,
        )
        s = sampling_operator(fp, dx_um=dx, shape=sample_shape)
        cp = config.coupling
        geom = coupling_operator(
            fp,
            pixel_pitch_um=config.sensor.pixel_pitch_um,
            sensor_shape=(config.sensor.height_px, config.sensor.width_px),
            magnification=cp.magnification,
            offset_um=cp.offset_um,
            rotation_deg=cp.rotation_deg,
            blur_um=cp.blur_um,
        )
        k = (geom * cp.efficiency(fp.numerical_aperture)).tocsr()
        return {
            "sensor": Sensor(config.sensor),
            "L": lens_op,
            "S": s,
            "SL": (s @ lens_op).tocsr(),
            "K": k,
            "dx_um": dx,
            "sample_shape": sample_shape,
        }

    @classmethod
    def default(cls, key: Key | None = None) -> Camera:
        """The bundled default camera (``sim/data/default_camera.toml``).

        Without ``key`` the key is drawn from the default seed in that file.
        """
        return cls(CameraConfig.default(), key)

    def conventional(self) -> Camera:
        """The same camera with a coherent, identity-routed faceplate (for comparison).

        Same lens, lattice, crosstalk, coupling and sensor; every fiber keeps its position,
        transmits the mean transmission and adds the mean bias; no dead fibers.
        """
        if self._conventional is None:
            k = self.key
            cfg = k.config.model_copy(
                update={
                    "block_size": 1,
                    "permute_blocks": False,
                    "transmission_rms": 0.0,
                    "gain_key_rms": 0.0,
                    "dead_fraction": 0.0,
                }
            )
            n = cfg.n_fibers
            ident = Key(
                cfg,
                np.arange(n),
                np.full(n, cfg.transmission_mean),
                np.full(n, cfg.bias_photons_per_s),
                np.zeros(n, dtype=bool),
                k.crosstalk_in,
                k.crosstalk_out,
            )
            self._conventional = Camera(self.config, ident, _parts=self._parts)
        return self._conventional

    # ------------------------------------------------------------------ geometry
    @property
    def scene_shape(self) -> tuple[int, int]:
        """(rows, cols) of the scene grid that :meth:`operator` acts on."""
        return tuple(self.config.scene.shape_px)

    @property
    def frame_shape(self) -> tuple[int, int]:
        """(H, W) of a frame in pixels."""
        return self.sensor.shape

    @property
    def sample_shape(self) -> tuple[int, int]:
        """(ny, nx) of the image-plane sample grid on the input face."""
        return self._parts["sample_shape"]

    @property
    def sample_pitch_um(self) -> float:
        """Image-plane sample pitch on the input face, µm."""
        return self._parts["dx_um"]

    def prepare_scene(self, scene: np.ndarray) -> np.ndarray:
        """Any (H, W) or (H, W, 3) linear scene in [0, 1] -> luminance on the scene grid."""
        return prepare_scene(scene, self.scene_shape)

    @property
    def fiber_operator(self) -> sp.csr_matrix:
        """``T · S · L``: scene grid -> photons/s leaving each output site, (n_sites, n_scene).

        Built on first use (it has many more non-zeros than its factors).
        """
        if self._fiber_operator is None:
            self._fiber_operator = (self.transfer_operator @ self._sl).tocsr()
        return self._fiber_operator

    # ------------------------------------------------------------------ mean signal
    def photon_rate(self, scene: np.ndarray) -> np.ndarray:
        """Mean photons per second on each pixel, (H, W) float64 (scene of any size)."""
        x = self.prepare_scene(scene).ravel()
        # Applied stage by stage: far fewer operations than the fused product.
        rate = self.coupling_operator @ (self.transfer_operator @ (self._sl @ x))
        rate += self._bias_rate
        return rate.reshape(self.frame_shape)

    def exposure_for(self, scene: np.ndarray | None = None) -> float:
        """Exposure in seconds the camera uses for ``scene``.

        A fixed ``config.exposure`` is returned as is. ``"auto"`` puts the
        ``auto_percentile``-th percentile of the expected electrons (photo-electrons with
        PRNU plus dark current) at ``auto_target`` × saturation capacity, clipped to
        ``exposure_limits_s``. ``scene=None`` means a uniform scene of value 1.0.
        """
        if self.config.exposure != "auto":
            return float(self.config.exposure)
        if scene is None:
            scene = np.ones(self.scene_shape)
        rate_e = self._gain_e * self.photon_rate(scene).ravel()
        rate_e += self.sensor.config.dark_current_e_per_s
        bright = float(np.percentile(rate_e, self.config.auto_percentile))
        lo, hi = self.config.exposure_limits_s
        if not bright > 0:
            return hi
        return float(np.clip(self.config.auto_target * self.sensor.saturation_e / bright, lo, hi))

    def expected_dn(self, scene: np.ndarray, *, exposure_s: float | None = None) -> np.ndarray:
        """Noise-free mean frame in DN before rounding and clipping, (H, W) float64."""
        t = self.exposure_for(scene) if exposure_s is None else exposure_s
        return self.sensor.mean_dn(self.photon_rate(scene) * t, exposure_s=t)

    def operator(self, exposure_s: float | None = None) -> tuple[sp.csr_matrix, np.ndarray]:
        """Expected-signal affine map from scene-grid values to sensor DN.

        Parameters
        ----------
        exposure_s : float, optional
            Exposure in seconds; default the fixed ``config.exposure``, or for ``"auto"`` the
            exposure chosen for a uniform scene of value 1.0 (``exposure_for(None)``).

        Returns
        -------
        A : (H * W, rows * cols) float64 CSR
            DN per unit scene value; pixels row-major (row 0 on top), scene grid row-major.
        b : (H * W,) float64
            Offset in DN: black level, dark signal, DSNU and the routed stray light.

        Notes
        -----
        ``A @ x + b`` is the mean of :meth:`capture` for a scene ``x`` already on the grid,
        before rounding and clipping to the ADC range.
        """
        t = self.exposure_for(None) if exposure_s is None else float(exposure_s)
        gain, offset = self.sensor.affine(t)
        g = gain.ravel() * t
        a = (sp.diags(g) @ (self.coupling_operator @ self.fiber_operator)).tocsr()
        b = offset.ravel() + g * self._bias_rate
        return a, b

    # ------------------------------------------------------------------ frames
    def capture(
        self,
        scene: np.ndarray,
        *,
        rng: np.random.Generator,
        frames: int = 1,
        exposure_s: float | None = None,
    ) -> np.ndarray:
        """Photograph a scene: raw encrypted frame(s) with all sensor noise.

        Parameters
        ----------
        scene : (H, W) or (H, W, 3) float
            Linear values in [0, 1] (1.0 = ``config.scene.radiance_w_m2_sr``), row 0 on top;
            any size (cropped to the grid's aspect and area-resampled first).
        rng : numpy.random.Generator
            Source of all temporal noise.
        frames : int
            Number of frames (>= 1).
        exposure_s : float, optional
            Overrides the configured exposure (seconds).

        Returns
        -------
        (H, W) uint16 if ``frames == 1`` else (frames, H, W) uint16
            Raw frames in DN.
        """
        if isinstance(frames, bool) or not isinstance(frames, int | np.integer) or frames < 1:
            raise ValueError(f"frames must be an integer >= 1, got {frames!r}")
        rate = self.photon_rate(scene)
        t = self.exposure_for(scene) if exposure_s is None else float(exposure_s)
        photons = rate * t
        if frames > 1:
            photons = np.broadcast_to(photons, (int(frames), *photons.shape))
        return self.sensor.expose(photons, exposure_s=t, rng=rng)

    # ------------------------------------------------------------------ readout
    def readout(self, frame: np.ndarray, *, exposure_s: float) -> np.ndarray:
        """Public step: photons that left each output site during the exposure.

        Removes the sensor offset and gain per pixel, then solves the least-squares
        per-site flux through the (public) coupling operator. Needs no key.

        Returns
        -------
        (n_sites,) float64, photons per exposure, output sites row-major.
        """
        gain, offset = self.sensor.affine(exposure_s)
        photons = (np.asarray(frame, dtype=np.float64) - offset) / gain
        return site_readout(photons, self.coupling_operator)

    def unscramble(self, frame: np.ndarray, *, exposure_s: float) -> np.ndarray:
        """Authorised view: the picture on the input lattice, recovered with the key.

        Returns
        -------
        (rows, cols) float64
            Photons that entered each input fiber during the exposure, row 0 on top.
        """
        return _unscramble(
            self.readout(frame, exposure_s=exposure_s), self.key, bias_scale=float(exposure_s)
        )

    def frame_statistics(self, frames: np.ndarray) -> dict[str, Any]:
        """Summary numbers of raw frames (DN) for sidecars and logs."""
        f = np.asarray(frames)
        top = self.sensor.max_dn
        return {
            "min_dn": int(f.min()),
            "max_dn": int(f.max()),
            "mean_dn": float(f.mean()),
            "std_dn": float(f.std()),
            "saturated_fraction": float(np.mean(f >= top)),
            "zero_fraction": float(np.mean(f == 0)),
            "adc_max_dn": top,
        }

    def public_config(self) -> dict[str, Any]:
        """The camera's configuration as JSON-ready data, without the key seed."""
        return self.config.public_dump()

    def __repr__(self) -> str:
        fp, s = self.config.faceplate, self.sensor.config
        return (
            f"Camera({fp.rows}x{fp.cols} fibers, {s.height_px}x{s.width_px} px sensor, "
            f"key {self.key.fingerprint})"
        )
