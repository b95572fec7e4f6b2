"""Measure a faceplate's key from frames of the Gray-code calibration patterns.

:func:`solve_key` runs the whole chain:

1. frames (DN) -> photons with the sensor's mean gain and offset
   (:func:`sim.calibration.readout.to_photons`);
2. registration of the output face from the white minus black frame
   (:func:`sim.calibration.registration.register_face`) and the coupling of the registered
   face;
3. per-site readout of every frame (:func:`~sim.calibration.readout.read_sites`); a site
   whose white-minus-black signal is below 10 % of the typical one carries no live fiber;
4. frame levels and checks, bit log-likelihoods (:mod:`sim.calibration.readout`);
5. routing by minimum-cost matching (:func:`sim.calibration.decode.decode_routing`);
6. transmission = light leaving the output site (output crosstalk undone) over the light
   the white pattern puts into the fiber (the public lens and sampling stages, input
   crosstalk of the configuration); bias = the black frame's site light, per second;
   crosstalk = the configuration's nearest-neighbour model.

The :attr:`Calibration.report` holds counts and statistics only and is safe to share; the
key is not. Transmission is absolute if the white pattern is shown at the configured scene
radiance (scene value 1.0); a brighter or dimmer display scales every fiber alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse.linalg as spla

from optics.faceplate import FaceplateConfig, Key
from optics.faceplate import lattice as _lattice
from sim.calibration.decode import decode_routing
from sim.calibration.graycode import PatternSet
from sim.calibration.readout import (
    bit_evidence,
    check_frames,
    frame_levels,
    read_sites,
    to_photons,
)
from sim.calibration.registration import Registration, register_face, registered_coupling

__all__ = ["AMBIGUOUS_SIGMA", "DEAD_BELOW", "DIM_BELOW", "Calibration", "solve_key"]

#: A site whose flat-field signal is below this fraction of the typical one carries no fiber.
DEAD_BELOW = 0.1
#: A live fiber transmitting less than this fraction of the median is reported dim.
DIM_BELOW = 0.5
#: A decoded fiber whose weakest bit is closer than this to the boundary is ambiguous (σ).
AMBIGUOUS_SIGMA = 3.0
_MIN_ON_SENSOR = 0.5  # fraction of a site's light that must land on the sensor
_MIN_SEEN = 0.2  # ... and on pixels the white frame does not clip


@dataclass(frozen=True)
class Calibration:
    """Result of :func:`solve_key`.

    Attributes
    ----------
    key : Key
        The measured key (secret).
    report : dict
        Counts and statistics, no key material; safe to share.
    registration : Registration
        Placement of the output face on the sensor.
    margin_sigma : (n_fibers,) float64
        Decode margin of each input fiber (weakest bit, noise σ; negative where the
        matching overrode a bit; NaN for dead fibers). Indexed by input fiber.
    """

    key: Key
    report: dict[str, Any]
    registration: Registration
    margin_sigma: np.ndarray


def solve_key(
    camera: Any, patterns: PatternSet, frames: np.ndarray, *, exposure_s: float
) -> Calibration:
    """Measure a device's key from frames of its calibration patterns.

    Parameters
    ----------
    camera : sim.camera.Camera
        The camera design: lens, lattice, relay and sensor from its configuration. Its key
        is never used. Monochrome cameras only.
    patterns : PatternSet
        The patterns the frames show (:func:`sim.calibration.make_patterns` of this camera).
    frames : (F, H, W) array
        Raw frames in DN, one per pattern in the set's order (averages of several frames
        of one pattern are fine).
    exposure_s : float
        Exposure of every frame, seconds.

    Returns
    -------
    Calibration

    Raises
    ------
    ValueError
        Frames of the wrong number, size or range; frames whose white, black or Gray
        content does not fit their place in the set (out of order, another camera); a face
        that cannot be registered.
    """
    t = float(exposure_s)
    if not (np.isfinite(t) and t > 0):
        raise ValueError(f"exposure_s must be > 0 s, got {exposure_s} s")
    f = check_frames(frames, camera, patterns)
    cfg = camera.config
    fp = cfg.faceplate
    iw, ib = patterns.index("white"), patterns.index("black")
    if float(np.mean(f[iw])) <= float(np.mean(f[ib])):
        raise ValueError(
            f"frame {patterns.frames[iw].name!r} (white) is not brighter than "
            f"{patterns.frames[ib].name!r} (black): frames out of order?"
        )
    phot, var_pix, usable = to_photons(f, camera, t)
    flat = phot[iw] - phot[ib]
    reg = register_face(camera, flat.reshape(camera.frame_shape))
    k = registered_coupling(camera, reg)
    eff = float(
        cfg.coupling.model_copy(update={"magnification": reg.magnification}).efficiency(
            fp.numerical_aperture
        )
    )
    y, var, seen = read_sites(phot, k, usable, var_pix)
    on_sensor = np.asarray(k.sum(axis=0)).ravel() / eff
    readable = (on_sensor >= _MIN_ON_SENSOR) & (seen[iw] >= _MIN_SEEN * eff)
    both = usable[iw] & usable[ib]
    resid = (flat - k @ (y[iw] - y[ib]))[both]
    fit_residual = float(np.linalg.norm(resid)) / max(float(np.linalg.norm(flat[both])), 1e-300)

    # the design's crosstalk model and key blocks (public lattice geometry)
    c_in = _lattice.crosstalk_matrix(fp.lattice, fp.rows, fp.cols, fp.crosstalk_in)
    c_out = _lattice.crosstalk_matrix(fp.lattice, fp.rows, fp.cols, fp.crosstalk_out)
    bid = _lattice.block_ids(fp.rows, fp.cols, fp.block_size)
    # undo output crosstalk: the light leaving each fiber's own output end (dead ones ~0)
    y = spla.splu(c_out.tocsc()).solve(np.ascontiguousarray(y.T)).T

    black = y[ib]
    delta = y[iw] - black
    ref = float(np.percentile(delta[readable], 90)) if readable.any() else 0.0
    live = readable & (delta > DEAD_BELOW * ref)
    if ref <= 0 or live.sum() < 0.5 * readable.sum():
        raise ValueError(
            f"frame {patterns.frames[iw].name!r} does not look like the white field: only "
            f"{int(live.sum())} of {int(readable.sum())} fiber sites are lit "
            "(frames out of order, or from another camera?)"
        )
    sites = np.flatnonzero(live)
    gray = [j for j, fr in enumerate(patterns.frames) if fr.role == "gray"]
    m = (y[:, sites] - black[sites]) / delta[sites]
    levels = frame_levels(m, patterns, gray, c_in) if gray else (np.zeros(0),) * 3
    bits, llr, info = bit_evidence(y, var, sites, patterns, levels)
    dec = decode_routing(bits, llr, info, sites, fp, bid)

    routing, dead = dec.routing, dec.dead
    white_scene = patterns.images[iw].ravel()
    f_in = c_in @ (camera.sampling_operator @ (camera.lens_operators[0] @ white_scene))
    trans = np.where(dead, 0.0, np.clip(delta[routing] / t / f_in, 0.0, 1.0))
    bias = np.where(dead, 0.0, np.clip(black[routing] / t, 0.0, None))
    recipe = _recipe(fp, bid, routing, trans, bias, dead)
    key = Key(recipe, routing, trans, bias, dead, c_in, c_out)

    live_t = trans[~dead]
    med_t = float(np.median(live_t)) if live_t.size else 0.0
    decoded = np.isfinite(dec.margin_sigma)
    mg = dec.margin_sigma[decoded]
    report = {
        "key_fingerprint": key.fingerprint,
        "lattice": {"kind": fp.lattice, "rows": fp.rows, "cols": fp.cols},
        "frames": {
            "count": patterns.n_frames,
            "gray": len(gray),
            "bits_x": patterns.bits_x,
            "bits_y": patterns.bits_y,
            "complements": patterns.complements,
            "exposure_s": t,
            "saturated_pixel_fraction": float(np.mean(f >= camera.sensor.max_dn)),
            "clipped_pixels_white": int(np.sum(~usable[iw])),
            "gray_shown_levels": [round(float(v), 4) for v in levels[2]],
        },
        "registration": {**reg.as_dict(), "fit_residual": fit_residual},
        "fibers": {
            "total": fp.n_fibers,
            "decoded": int(decoded.sum()),
            "ambiguous": int(np.sum(mg < AMBIGUOUS_SIGMA)),
            "dead": int(dead.sum()),
            "dim": int(np.sum(live_t < DIM_BELOW * med_t)),
            "unreadable_sites": int(np.sum(~readable)),
            "invalid_codes": dec.invalid_codes,
            "duplicate_claims": dec.duplicate_claims,
            "duplicates_resolved": dec.resolved,
        },
        "decode_margin_sigma": _stats(mg),
        "thresholds": {
            "dead_below_fraction_of_typical": DEAD_BELOW,
            "dim_below_fraction_of_median": DIM_BELOW,
            "ambiguous_below_sigma": AMBIGUOUS_SIGMA,
        },
    }
    return Calibration(key=key, report=report, registration=reg, margin_sigma=dec.margin_sigma)


def _recipe(
    fp: FaceplateConfig,
    bid: np.ndarray,
    routing: np.ndarray,
    trans: np.ndarray,
    bias: np.ndarray,
    dead: np.ndarray,
) -> FaceplateConfig:
    """The measured key's recipe: the design's lattice and crosstalk, measured statistics.

    A measured key has no seed (0). The block recipe is kept if the measured routing
    follows it, otherwise the key is recorded as global.
    """
    live = ~dead
    mean_t = float(trans[live].mean()) if live.any() else fp.transmission_mean
    rms_t = float(trans[live].std() / mean_t) if live.any() and mean_t > 0 else 0.0
    dst = bid[routing]
    local = bool(np.array_equal(bid, dst))
    whole_blocks = all(np.unique(dst[bid == b]).size == 1 for b in np.unique(bid))
    update: dict[str, Any] = {
        "seed": 0,
        "transmission_mean": min(max(mean_t, 1e-12), 1.0),
        "transmission_rms": min(rms_t, 0.5),
        "gain_key_rms": 0.0,
        "bias_photons_per_s": float(bias[live].mean()) if live.any() else 0.0,
        "dead_fraction": min(float(dead.mean()), 0.5),
    }
    if not (local or (fp.permute_blocks and whole_blocks)):
        update.update(block_size=max(fp.rows, fp.cols), permute_blocks=False)
    return FaceplateConfig.model_validate({**fp.model_dump(), **update})


def _stats(v: np.ndarray) -> dict[str, float | None]:
    fin = v[np.isfinite(v)]
    if fin.size == 0:
        return {"median": None, "p01": None, "min": None}
    return {
        "median": round(float(np.median(fin)), 2),
        "p01": round(float(np.percentile(fin, 1)), 2),
        "min": round(float(fin.min()), 2),
    }
