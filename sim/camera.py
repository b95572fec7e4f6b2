"""The keycam camera: lens -> keyed fiber faceplate -> relay/butt coupling -> CMOS sensor.

Everything optical is one affine map on light. For a scene ``x`` on the camera's
scene grid (``config.scene.shape_px``, row-major, linear values, 1.0 = the configured
radiance) the mean photons reaching the sensor pixels during an exposure ``t`` are ::

    photons = t · ( K_c · T · S · L · x  +  K_c · bias )

with the stages, each a ``scipy.sparse`` CSR matrix built once in the constructor::

    L : (n_samples, n_scene)  lens: scene -> photons/s per image-plane sample on the input face
    S : (n_fibers, n_samples) sampling: samples -> flux entering each fiber core
    T : (n_sites, n_fibers)   transfer (the secret): crosstalk, transmission, routing;
            bias (n_sites,) stray light in photons/s
    K_c : (n_pixels, n_sites) coupling: output sites -> pixels, times the relay efficiency
            (the public output-face geometry)

and the sensor turns photons into DN as ``gain ⊙ photons + offset`` (EMVA 1288, before
rounding and clipping; :meth:`optics.sensor.Sensor.affine`). The chain is a
:class:`sim.pipeline.Pipeline` of named stages (:attr:`Camera.pipeline`: ``lens``,
``sampling``, ``transfer``, ``coupling`` and, for a colour sensor, ``colour_filter``);
:meth:`Camera.signal_pipeline` appends the sensor's affine map for an exposure, and
:meth:`Camera.operator` returns its composition as ``(A, b)`` in DN. The mean of many
:meth:`Camera.capture` frames equals ``A x + b`` wherever nothing clips.

Scenes of any size are first centre-cropped to the grid's aspect ratio and area-resampled
onto the grid (:func:`sim.scene.prepare_scene`). A monochrome sensor (``colour = "mono"``)
sees luminance (Rec. 709 weights on linear RGB); with ``colour = "bayer_rggb"`` each
channel has its own lens operator and reaches only the pixels of its colour filter
(:mod:`sim.colour`), so ``photons = t · (Σ_ch M_ch K_c T S L_ch x_ch + K_c · bias)`` with
``M_ch`` the filter masks. The key-independent stages are built by :mod:`sim.stages`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import cached_property
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from keycam.validation import positive
from optics.faceplate import Key, SiteReadout, keygen, transfer_operator
from optics.faceplate import unscramble as _unscramble
from optics.sensor import Sensor
from sim.colour import prepare_colour_scene
from sim.config import CameraConfig, load_config
from sim.memory import check_camera_memory
from sim.pipeline import AffineStage, Pipeline
from sim.printed import TransmissionConfig, apply_transmission, lens_launch
from sim.quantile import upper_percentile
from sim.scene import prepare_scene
from sim.stages import PublicStages, build_public_stages, check_key

__all__ = ["Camera", "CameraConfig", "load_config"]

#: Frames that :meth:`Camera.capture_batch` hands to the sensor at a time.
_BATCH_FRAMES = 8


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

    Attributes
    ----------
    config : CameraConfig
        The configuration, with the key's own faceplate recipe.
    key : Key
        The device key (secret). Log ``key.fingerprint``, never the key. With the default
        ``config.transmission.source = "printed"`` its transmission is the printed part's.
    transmission_info : dict
        Where the transmission comes from and its aggregates (:mod:`sim.printed`).
    sensor : optics.sensor.Sensor
        The sensor device (fixed PRNU/DSNU patterns from ``config.sensor.seed``).
    lens_operators : tuple of (n_samples, rows * cols) CSR
        ``L`` per colour channel: scene values -> photons/s per image-plane sample.
    sampling_operator : (n_fibers, n_samples) CSR
        ``S``: image-plane samples -> flux entering each fiber core.
    transfer_operator : (n_sites, n_fibers) CSR, and transfer_bias : (n_sites,)
        ``T`` and stray light in photons/s: the secret part (from the key).
    coupling_operator : (H * W, n_sites) CSR
        ``K_c``: output sites -> pixels, including the relay's collection efficiency; public.

    Raises
    ------
    ValueError
        A key for another lattice (the message names both lattices).
    keycam.limits.MemoryLimitError
        (a ``ValueError``) The camera's estimated memory (:func:`sim.memory.camera_memory`)
        exceeds the budget (``KEYCAM_MAX_MEMORY_MB``); checked before anything is built.
    """

    def __init__(
        self, config: CameraConfig, key: Key | None = None, *, _parts: PublicStages | None = None
    ) -> None:
        if not isinstance(config, CameraConfig):
            raise TypeError(f"config must be a CameraConfig, got {type(config).__name__}")
        if _parts is None:
            # before anything proportional to the camera is allocated (key included)
            check_camera_memory(config)
        if key is None:
            key = keygen(config.faceplate)
        check_key(config, key)
        # the printed part's transmission (or the key's own, if assumed): sim.printed
        key, self.transmission_info = apply_transmission(
            config.transmission, key, lens_launch(config.lens)
        )
        self.config: CameraConfig = config.model_copy(update={"faceplate": key.config})
        self.key: Key = key
        parts = _parts if _parts is not None else build_public_stages(self.config)
        self._parts = parts
        self.sensor: Sensor = parts.sensor
        self.lens_operators: tuple[sp.csr_matrix, ...] = parts.lens
        self.sampling_operator: sp.csr_matrix = parts.sampling
        self.coupling_operator: sp.csr_matrix = parts.coupling
        t, bias = transfer_operator(key)
        self.transfer_operator: sp.csr_matrix = t
        self.transfer_bias: np.ndarray = bias
        self._bias_rate = np.asarray(self.coupling_operator @ bias)  # photons/s per pixel
        # The form frames are computed with: lens and sampling fused (far fewer operations).
        self._fast = parts.pipeline(t, self._bias_rate, fused=True)
        self._gain_e = (
            self.sensor.affine(1.0)[0] / self.sensor.config.system_gain_dn_per_e
        ).ravel()
        self._conventional: Camera | None = None

    # ------------------------------------------------------------------ construction
    @classmethod
    def default(cls, key: Key | None = None) -> Camera:
        """The bundled default camera (``sim/data/default_camera.toml``).

        Without ``key`` the key is drawn from the default seed in that file.
        """
        return cls(CameraConfig.default(), key)

    def conventional(self) -> Camera:
        """The same camera with a coherent, identity-routed faceplate (for comparison).

        Same lens, lattice, crosstalk, coupling and sensor; every fiber keeps its position,
        transmits the device's mean transmission and adds the mean bias; no dead fibers.
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
            assumed = self.config.model_copy(
                update={"transmission": TransmissionConfig(source="assumed")}
            )
            self._conventional = Camera(assumed, ident, _parts=self._parts)
        return self._conventional

    # ------------------------------------------------------------------ geometry
    @property
    def scene_shape(self) -> tuple[int, int]:
        """(rows, cols) of the scene grid that :meth:`operator` acts on."""
        rows, cols = self.config.scene.shape_px
        return (rows, cols)

    @property
    def frame_shape(self) -> tuple[int, int]:
        """(H, W) of a frame in pixels."""
        return self.sensor.shape

    @property
    def sample_shape(self) -> tuple[int, int]:
        """(ny, nx) of the image-plane sample grid on the input face."""
        return self._parts.sample_shape

    @property
    def sample_pitch_um(self) -> float:
        """Image-plane sample pitch on the input face, µm."""
        return self._parts.dx_um

    @property
    def n_channels(self) -> int:
        """Scene channels the sensor records: 1 (mono) or 3 (RGGB Bayer)."""
        return self._parts.n_channels

    @cached_property
    def pipeline(self) -> Pipeline:
        """The camera's light path as named affine stages: scene grid -> photons/s per pixel.

        Stages ``lens``, ``sampling``, ``transfer`` (the key), ``coupling`` (plus the routed
        stray light) and, on a colour sensor, ``colour_filter``. The input is the scene grid
        row-major, channels side by side (R, G, B); the output is photons/s per pixel,
        row-major. ``camera.pipeline.upto("transfer").apply(x)`` is the light leaving each
        output site.
        """
        return self._parts.pipeline(self.transfer_operator, self._bias_rate, fused=False)

    def _sensor_stage(self, exposure_s: float) -> AffineStage:
        gain, offset = self.sensor.affine(exposure_s)
        return AffineStage(
            "sensor",
            sp.diags(gain.ravel() * exposure_s, format="csr"),
            offset.ravel(),
            "photons/s per pixel -> mean DN over the exposure (EMVA 1288 gain and offset)",
        )

    def signal_pipeline(self, exposure_s: float | None = None) -> Pipeline:
        """:attr:`pipeline` followed by the sensor: scene grid -> mean DN for an exposure.

        ``exposure_s`` defaults as in :meth:`operator`.
        """
        t = self.exposure_for(None) if exposure_s is None else float(exposure_s)
        return self.pipeline.then(self._sensor_stage(t))

    @property
    def lens_operator(self) -> sp.csr_matrix:
        """``L`` (n_samples, n_scene): scene -> photons/s per sample (mono cameras).

        Colour cameras have one per channel in :attr:`lens_operators`.
        """
        if self.n_channels != 1:
            raise ValueError("lens_operator: a colour camera has one per channel (lens_operators)")
        return self.lens_operators[0]

    def prepare_scene(self, scene: np.ndarray) -> np.ndarray:
        """Any (H, W) or (H, W, 3) linear scene in [0, 1] -> the scene grid.

        Mono: (rows, cols) luminance. Bayer: (rows, cols, 3) linear RGB.
        """
        if self.n_channels == 1:
            return prepare_scene(scene, self.scene_shape)
        return prepare_colour_scene(scene, self.scene_shape)

    @property
    def fiber_operator(self) -> sp.csr_matrix:
        """``T · S · L``: scene grid -> photons/s leaving each output site, (n_sites, n_in).

        ``n_in`` is ``rows * cols`` per channel, channels side by side (R, G, B). Built on
        first use (it has many more non-zeros than its factors).
        """
        return self._fiber_operator_cached

    @cached_property
    def _fiber_operator_cached(self) -> sp.csr_matrix:
        a, _ = self._fast.upto("transfer").operator()
        n = self.transfer_operator.shape[0]
        # Colour: the channels' light adds up at the output sites.
        return sp.csr_matrix(sum(a[c * n : (c + 1) * n] for c in range(self.n_channels)))

    def _channels(self, scene: np.ndarray) -> np.ndarray:
        """Scene -> (n_channels, rows * cols) values on the grid."""
        x = self.prepare_scene(scene)
        return x.reshape(1, -1) if x.ndim == 2 else np.moveaxis(x, 2, 0).reshape(3, -1)

    # ------------------------------------------------------------------ mean signal
    def photon_rate(self, scene: np.ndarray) -> np.ndarray:
        """Mean photons per second on each pixel, (H, W) float64 (scene of any size)."""
        # Applied stage by stage: far fewer operations than the composed operator.
        return self._fast.apply(self._channels(scene).reshape(-1)).reshape(self.frame_shape)

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
        return self._auto_exposure(self.photon_rate(scene))

    def _auto_exposure(self, rate: np.ndarray) -> float:
        """The ``"auto"`` exposure for a frame's photon rate (photons/s per pixel, any shape)."""
        rate_e = self._gain_e * rate.ravel()
        rate_e += self.sensor.config.dark_current_e_per_s
        bright = upper_percentile(rate_e, self.config.auto_percentile)
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
        A : (H * W, n_channels * rows * cols) float64 CSR
            DN per unit scene value; pixels row-major (row 0 on top), scene grid row-major,
            channels side by side (colour cameras: R, G, B).
        b : (H * W,) float64
            Offset in DN: black level, dark signal, DSNU and the routed stray light.

        Notes
        -----
        ``A @ x + b`` is the mean of :meth:`capture` for a scene ``x`` already on the grid,
        before rounding and clipping to the ADC range. The fused product is much larger than
        its factors (about 40 million non-zeros for the default camera); :meth:`capture`
        applies the stages one after another instead.
        """
        t = self.exposure_for(None) if exposure_s is None else float(exposure_s)
        return self._fast.then(self._sensor_stage(t)).operator()

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
        if exposure_s is not None:
            t = float(exposure_s)
        elif self.config.exposure == "auto":
            t = self._auto_exposure(rate)  # exposure_for(scene), without a second light path
        else:
            t = float(self.config.exposure)
        photons = rate * t
        if frames > 1:
            photons = np.broadcast_to(photons, (int(frames), *photons.shape))
        return self.sensor.expose(photons, exposure_s=t, rng=rng)

    def capture_batch(
        self,
        scenes: Iterable[np.ndarray],
        *,
        rngs: Sequence[np.random.Generator],
        exposure_s: float | None = None,
    ) -> tuple[NDArray[np.uint16], NDArray[np.float64]]:
        """Photograph many scenes, one frame each, each frame with its own noise generator.

        Frame ``i`` is bit for bit ``capture(scenes[i], rng=rngs[i], exposure_s=exposure_s)``
        (its exposure ``exposure_for(scenes[i])`` when none is given), for the same work
        per frame as :meth:`capture` minus the sensor's checks, which run once per block of
        frames (:meth:`optics.sensor.Sensor.expose_batch`). :mod:`sim.dataset` captures
        with it.

        Parameters
        ----------
        scenes : iterable of (H, W) or (H, W, 3) float
            As in :meth:`capture`; sizes may differ from scene to scene.
        rngs : sequence of numpy.random.Generator
            One per scene: the source of that frame's temporal noise.
        exposure_s : float, optional
            One exposure (seconds) for every frame; default the camera's rule per scene.

        Returns
        -------
        frames : (F, H, W) uint16
            Raw frames in DN.
        exposure_s : (F,) float64
            The exposure of each frame, seconds.

        Raises
        ------
        ValueError
            A bad scene (as :meth:`capture`), a bad exposure, or not one generator per scene.
        """
        todo, gens = list(scenes), list(rngs)
        if len(gens) != len(todo):
            raise ValueError(
                f"rngs must hold one generator per scene: {len(gens)} for {len(todo)} scenes"
            )
        fixed = None if exposure_s is None else positive("exposure_s", exposure_s, "s")
        if fixed is None and self.config.exposure != "auto":
            fixed = float(self.config.exposure)
        h, w = self.frame_shape
        frames = np.empty((len(todo), h, w), dtype=np.uint16)
        times = np.empty(len(todo))
        photons = np.empty((min(_BATCH_FRAMES, len(todo)), h, w))
        for a in range(0, len(todo), _BATCH_FRAMES):
            b = min(a + _BATCH_FRAMES, len(todo))
            for i in range(a, b):
                # the light path of capture(), frame by frame (cache-sized vectors)
                rate = self.photon_rate(todo[i])
                times[i] = self._auto_exposure(rate) if fixed is None else fixed
                np.multiply(rate, times[i], out=photons[i - a])
            frames[a:b] = self.sensor.expose_batch(
                photons[: b - a], exposure_s=times[a:b], rngs=gens[a:b]
            )
        return frames, times

    # ------------------------------------------------------------------ readout
    def readout(self, frame: np.ndarray, *, exposure_s: float) -> np.ndarray:
        """Public step: photons that left each output site during the exposure.

        Removes the sensor offset and gain per pixel, then solves the least-squares
        per-site flux through the (public) coupling operator -- per colour channel, from
        that channel's pixels, on a Bayer sensor. Needs no key.

        Returns
        -------
        (n_sites,) float64 (mono) or (n_sites, 3) float64 (Bayer: R, G, B)
            Photons per exposure, output sites row-major (stray light included).
        """
        gain, offset = self.sensor.affine(exposure_s)
        photons = ((np.asarray(frame, dtype=np.float64) - offset) / gain).ravel()
        if self.n_channels == 1:
            return self._site_readouts[0](photons)
        return np.stack(
            [r(photons * m) for r, m in zip(self._site_readouts, self._parts.masks, strict=True)],
            axis=1,
        )

    @cached_property
    def _site_readouts(self) -> tuple[SiteReadout, ...]:
        """One public per-site readout per colour channel (factorised once)."""
        k = self.coupling_operator
        if self.n_channels == 1:
            return (SiteReadout(k),)
        return tuple(SiteReadout(sp.diags(m) @ k) for m in self._parts.masks)

    def unscramble(self, frame: np.ndarray, *, exposure_s: float) -> np.ndarray:
        """Authorised view: the picture on the input lattice, recovered with the key.

        Returns
        -------
        (rows, cols) float64, or (rows, cols, 3) for a Bayer sensor
            Photons that entered each input fiber during the exposure, row 0 on top.
        """
        r = self.readout(frame, exposure_s=exposure_s)
        t = float(exposure_s)
        if r.ndim == 1:
            return _unscramble(r, self.key, bias_scale=t)
        return np.stack([_unscramble(r[:, c], self.key, bias_scale=t) for c in range(3)], 2)

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
