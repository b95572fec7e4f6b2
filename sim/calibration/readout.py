"""From calibration frames to evidence: photons, per-site readout, frame levels, bit likelihoods.

- :func:`check_frames` / :func:`to_photons` -- frames in DN to photons per pixel with the
  sensor's *mean* gain and offset (datasheet figures; no per-pixel PRNU/DSNU maps), the
  per-pixel shot- and read-noise variance (EMVA 1288 terms) and which pixels the ADC clipped.
- :func:`read_sites` -- least squares through the registered coupling, per frame from that
  frame's unclipped pixels (a pixel saturated in the white frame still counts in the dark
  ones), with each site's variance.
- :func:`frame_levels` -- each Gray frame's lit and dark level as fractions of the site's
  own white-minus-black signal, checking that the frame is a two-level pattern lighting the
  expected share of sites and that the frames' tag levels fall in manifest order.
- :func:`bit_evidence` -- per site and code bit, the Gaussian log-likelihood ratio of
  "bit set" against "bit clear" and its Fisher information; complements add theirs with the
  opposite sign.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from sim.calibration.graycode import PatternSet

__all__ = ["bit_evidence", "check_frames", "frame_levels", "read_sites", "to_photons"]


def check_frames(frames: np.ndarray, camera: Any, patterns: PatternSet) -> np.ndarray:
    """Validate raw frames against the camera and the pattern set; return float64 DN.

    Raises
    ------
    ValueError
        Wrong number of frames, wrong size, or values outside the sensor's ADC range.
    """
    f = np.asarray(frames)
    if f.ndim != 3 or not np.issubdtype(f.dtype, np.number):
        raise ValueError(f"frames: expected a (F, H, W) array of DN, got shape {f.shape}")
    if f.shape[0] != patterns.n_frames:
        raise ValueError(f"frames: {f.shape[0]} frames, the pattern set has {patterns.n_frames}")
    if tuple(f.shape[1:]) != tuple(camera.frame_shape):
        h, w = camera.frame_shape
        raise ValueError(
            f"frames are {f.shape[2]}x{f.shape[1]} px, this camera's sensor is {w}x{h} px"
        )
    f = f.astype(np.float64)
    top = camera.sensor.max_dn
    if not np.all(np.isfinite(f)) or f.min() < 0 or f.max() > top:
        raise ValueError(
            f"frames hold values outside this sensor's range 0..{top} DN "
            f"({camera.sensor.config.bit_depth}-bit): frames from another camera?"
        )
    return f


def to_photons(
    frames: np.ndarray, camera: Any, exposure_s: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frames (F, H, W) DN -> photons per pixel, their variance, and unclipped pixels.

    Returns
    -------
    photons, variance : (F, H * W) float64
        Incident photons per exposure (mean gain and offset of the sensor at that exposure)
        and the shot- plus read-noise variance of that estimate.
    usable : (F, H * W) bool
        Pixels the ADC did not clip (neither 0 nor full scale).
    """
    s = camera.sensor
    c = s.config
    gain, offset = s.affine(exposure_s)
    dn = frames.reshape(frames.shape[0], -1)
    phot = (dn - float(np.mean(offset))) / float(np.mean(gain))
    qe = c.quantum_efficiency
    read_var = (c.read_noise_e**2 + 1.0 / (12.0 * c.system_gain_dn_per_e**2)) / qe**2
    return phot, np.maximum(phot, 0.0) / qe + read_var, (dn < s.max_dn) & (dn > 0)


def read_sites(
    phot: np.ndarray, k: sp.csr_matrix, usable: np.ndarray, var_pix: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Least-squares flux of every output site in every frame, from its usable pixels.

    Parameters
    ----------
    phot, var_pix : (F, P) float
        Photons per pixel and their variance.
    k : (P, n) sparse
        Coupling of the registered face (with the relay efficiency).
    usable : (F, P) bool
        Pixels not clipped in that frame.

    Returns
    -------
    flux, variance, seen : (F, n) float64
        Photons per exposure leaving each site, their variance (each site read from its
        own pixels), and the coupling column sums over the frame's usable pixels.

    Notes
    -----
    Solves ``(Kᵀ K + λ I) s = Kᵀ y`` (λ = 1e-6 × mean diagonal), as
    :func:`optics.faceplate.site_readout` does; frames with the same usable pixels share
    one factorisation (usually all of them).
    """
    n_frames = phot.shape[0]
    n = k.shape[1]
    flux, var, seen = np.zeros((n_frames, n)), np.zeros((n_frames, n)), np.zeros((n_frames, n))
    groups: dict[bytes, list[int]] = {}
    for j in range(n_frames):
        groups.setdefault(np.packbits(usable[j]).tobytes(), []).append(j)
    for members in groups.values():
        ok = usable[members[0]]
        kv = k[ok]
        normal = (kv.T @ kv).tocsc()
        lam = max(1e-6 * float(normal.diagonal().mean()), 1e-300)
        lu = spla.splu((normal + lam * sp.identity(n, format="csc")).tocsc())
        rhs = kv.T @ phot[np.ix_(members, ok)].T
        flux[members] = lu.solve(np.ascontiguousarray(rhs)).T
        k2 = kv.copy()
        k2.data **= 2
        ss = np.asarray(k2.sum(axis=0)).ravel() + lam
        var[members] = (k2.T @ var_pix[np.ix_(members, ok)].T).T / ss**2
        seen[members] = np.asarray(kv.sum(axis=0)).ravel()
    return flux, var, seen


def frame_levels(
    m: np.ndarray,
    patterns: PatternSet,
    gray: list[int],
    crosstalk_in: sp.spmatrix,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Measured lit and dark level of each Gray frame, as fractions of white, with checks.

    Parameters
    ----------
    m : (F, n_live) float
        ``(frame - black) / (white - black)`` per live site, output crosstalk undone.
    gray : list of int
        Indices of the Gray frames in the set.
    crosstalk_in : (n, n) sparse
        Input-face coupling of the design (row-normalised).

    Returns
    -------
    on, off : (n_gray,) float64
        Median lit and dark level of the sites, fractions of their white signal.
    shown : (n_gray,) float64
        Estimated displayed level of each frame's lit parts (relative to white): ``on``
        divided by the share ``(C_in lit)_i`` of its light a lit fiber keeps at the input
        face in that pattern (the median over lit fibers; fine stripes lose more at their
        edges). The tag order is checked on ``shown``.

    Raises
    ------
    ValueError
        A frame that is not a two-level pattern, lights a share of sites its pattern does
        not, or whose tag level is out of manifest order (frames swapped).
    """
    names = [patterns.frames[j].name for j in gray]
    on_lv, off_lv, shown = np.zeros(len(gray)), np.zeros(len(gray)), np.zeros(len(gray))
    want = patterns.lit.mean(axis=0)
    for i, j in enumerate(gray):
        x = m[j]
        cut = 0.5 * patterns.frames[j].level
        for _ in range(3):
            on = x > cut
            if on.all() or not on.any():
                raise ValueError(
                    f"frame {names[i]!r} is not a two-level Gray pattern (every fiber site "
                    f"{'lit' if on.all() else 'dark'}): frames out of order or missing?"
                )
            on_lv[i], off_lv[i] = float(np.median(x[on])), float(np.median(x[~on]))
            cut = 0.5 * (on_lv[i] + off_lv[i])
        frac = float(on.mean())
        if abs(frac - want[j]) > 0.1:
            raise ValueError(
                f"frame {names[i]!r} lights {100 * frac:.0f} % of the fiber sites, its pattern "
                f"{100 * want[j]:.0f} %: frames out of order or from another pattern set?"
            )
        lit = patterns.lit[:, j].astype(np.float64)
        shown[i] = on_lv[i] / float(np.median((crosstalk_in @ lit)[lit > 0]))
        gap = on_lv[i] - off_lv[i]
        unclear = float(np.mean(np.abs(x - cut) < 0.25 * gap))
        if gap < 0.2 or unclear > 0.1:
            raise ValueError(
                f"frame {names[i]!r} does not separate lit from dark fiber sites "
                f"(contrast {gap:.2f} of white, {100 * unclear:.0f} % of sites in between)"
            )
    levels = np.array([patterns.frames[j].level for j in gray])
    tol = 0.35 * float(np.min(-np.diff(levels))) if len(gray) > 1 else 0.0
    for i in range(len(gray) - 1):
        if shown[i + 1] - shown[i] > tol:
            raise ValueError(
                f"frames out of order: {names[i + 1]!r} is brighter than {names[i]!r} before "
                f"it (lit at {shown[i + 1]:.3f} vs {shown[i]:.3f} of white), but every Gray "
                "frame is shown dimmer than the one before"
            )
    return on_lv, off_lv, shown


def bit_evidence(
    y: np.ndarray,
    var: np.ndarray,
    sites: np.ndarray,
    patterns: PatternSet,
    levels: tuple[np.ndarray, ...],
) -> tuple[list[tuple[str, int]], np.ndarray, np.ndarray]:
    """Log-likelihood ratio and Fisher information of every code bit at every live site.

    With a site's black ``B``, white-minus-black ``Δ`` and a frame's measured lit and dark
    levels ``r``, ``o``, the frame's reading ``v`` is ``N(B + rΔ, σ²)`` if the fiber is lit
    and ``N(B + oΔ, σ²)`` if not, so ``LLR = (r − o)Δ (v − B − cΔ) / σ²`` with
    ``c = (r + o)/2``. ``σ²`` pools the reading's variance under both hypotheses (shot
    noise grows with the signal: the site's black and white variances, interpolated at the
    two levels) and adds the variance of the threshold ``B + cΔ``. Complements contribute
    ``−LLR``.

    Returns
    -------
    bits : list of (axis, bit)
        Column order of the outputs: x bits, then y bits, most significant first.
    llr, info : (n_live, n_bits) float64
        Summed log-likelihood ratio (> 0: bit set) and Fisher information; the decode margin
        in noise σ is ``|llr| / sqrt(info)``.
    """
    iw, ib = patterns.index("white"), patterns.index("black")
    gray = [j for j, fr in enumerate(patterns.frames) if fr.role == "gray"]
    bits: list[tuple[str, int]] = sorted(
        {(str(patterns.frames[j].axis), int(patterns.frames[j].bit or 0)) for j in gray},
        key=lambda ab: (ab[0], -ab[1]),
    )
    col = {ab: i for i, ab in enumerate(bits)}
    llr = np.zeros((sites.size, len(bits)))
    info = np.zeros_like(llr)
    black = y[ib, sites]
    d = y[iw, sites] - black
    vb, vw = var[ib, sites], var[iw, sites]
    on_lv, off_lv = levels[0], levels[1]
    for i, j in enumerate(gray):
        fr = patterns.frames[j]
        c = 0.5 * (on_lv[i] + off_lv[i])
        sep = (on_lv[i] - off_lv[i]) * d
        pooled = vb + c * (vw - vb)  # mean of the lit and dark readings' variances
        s2 = pooled + vb * (1 - c) ** 2 + vw * c**2
        lj = sep * (y[j, sites] - black - c * d) / s2
        b = col[(str(fr.axis), int(fr.bit or 0))]
        llr[:, b] += -lj if fr.inverted else lj
        info[:, b] += sep**2 / s2
    return bits, llr, info
