"""Privacy audit benchmark and countermeasure study; prints JSON.

Two parts:

``--full``: the complete audit of the default camera (:func:`sim.audit.run_audit`, all
noise on, frames simulated through the camera): chosen plaintext (base 2/8/64 Gray codes),
known plaintext (3-8 pairs), ciphertext only (25-2,000 frames of natural scenes).

``--reference``: the same audit of the reference camera of the published attack figures
(``bench/data/audit_reference_camera.toml``, keycam's earlier default: 64 × 64 fibers at
1 mm, 8 × 8 blocks permuted, 2 % crosstalk, 5 % transmission), to check that the audit's
attacks are at least as strong as the known ones (ciphertext only: 99.9 % of fibers and a
picture correlation of 0.98 from 2,000 frames; known plaintext: 99 % from 5-6 pairs).

Default: a countermeasure study in the audit's terms, on a 32 × 32 proxy lattice so that
streams of tens of thousands of frames fit in minutes. Readouts are simulated at the
faceplate: ``r = M (t ⊙ x) + bias + noise`` with ``x`` the light entering each fiber for
windows of natural images (:func:`sim.audit.common.natural_stream`), ``t`` the per-fiber
transmission (5 % rms, times the gain key), ``M`` the key's transfer (a permutation, or a
sparse non-negative mix) and shot plus read noise at the reference camera's photon level
(white ≈ ``WHITE_PHOTONS`` per readout). For every lever it reports:

- attacker cost: the ciphertext-only (topology) attack's neighbour fraction after ``N``
  frames and ``frames_to_90``, the first stream length in the list reaching 90 % of
  neighbours found (``null``: not reached);
- the key holder's price: SNR of the unscrambled image (``M⁻¹`` then ``/ t``) in dB and its
  loss against the plain permutation; the density of ``M⁻¹`` (a key-net's first layer
  absorbs it: its non-zeros grow with that density, its accuracy does not change because
  the fusion is exact).

Levers: block size up to a global permutation; gain spread (``gain_key_rms``); mixing (each
output site fed by ``k = 2`` fibers with weights ``1 − a`` and ``a``, the second fiber
anywhere on the face).

Usage: ``python bench/bench_audit.py [--full | --reference] [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sim.audit.common import natural_stream
from sim.audit.topology import neighbour_fraction, neighbours

SIDE = 32
N = SIDE * SIDE
#: Reference camera of the published attack figures (keycam's earlier 64 x 64 default).
REFERENCE_CAMERA = Path(__file__).resolve().parent / "data" / "audit_reference_camera.toml"
#: Effective photon count of a white readout: the reference camera at auto exposure reads a
#: white scene with a temporal noise of 0.37 % per site (two white frames, all sensor noise
#: through the public readout), i.e. 1 / 0.0037² ≈ 7.4e4 shot-noise-equivalent photons; a
#: black frame's noise, 0.043 % of white, is the stray light's shot noise plus ~20 of read noise.
WHITE_PHOTONS = 7.4e4
READ_NOISE_PHOTONS = 20.0


def _perm(block: int, rng: np.random.Generator) -> np.ndarray:
    from optics.faceplate.lattice import local_block_permutation, move_blocks

    p = local_block_permutation(SIDE, SIDE, block, rng=rng)
    if 1 < block < SIDE:
        p = move_blocks(p, SIDE, SIDE, block, rng=rng)
    return p


def transfer(lever: dict, rng: np.random.Generator) -> tuple[sp.csr_matrix, np.ndarray]:
    """``(M, t)``: output sites × input fibers, and per-fiber transmission."""
    routing = _perm(lever.get("block", 8), rng)
    t = np.clip(1 + 0.05 * rng.standard_normal(N), 0.05, None)
    t *= np.clip(1 + lever.get("gain_rms", 0.0) * rng.standard_normal(N), 0.05, None)
    a = lever.get("mix", 0.0)
    m = sp.csr_matrix((np.ones(N), (routing, np.arange(N))), shape=(N, N))
    if a > 0:
        second = rng.permutation(N)
        m = (1 - a) * m + a * sp.csr_matrix((np.ones(N), (routing, second)), shape=(N, N))
    return sp.csr_matrix(m), t


def readouts(m, t, x, rng):
    s = np.asarray(m @ (x * t).T).T * WHITE_PHOTONS
    bias = 0.01 * WHITE_PHOTONS
    return s + bias + rng.standard_normal(s.shape) * np.sqrt(s + bias + READ_NOISE_PHOTONS**2)


def study(frames: list[int], levers: dict[str, dict], seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    x = natural_stream(max(frames), (SIDE, SIDE), rng=rng).reshape(-1, N)
    x_test = natural_stream(8, (SIDE, SIDE), rng=rng).reshape(-1, N)
    out: dict = {"scenes_s": time.perf_counter() - t0, "levers": {}}
    base_snr = None
    for name, lever in levers.items():
        krng = np.random.default_rng(seed + 1)
        m, t = transfer(lever, krng)
        r = readouts(m, t, x, rng)
        # The site that reads fiber j most strongly is its "own" site: score neighbours there.
        own = np.asarray(m.argmax(axis=0)).ravel()
        truth = np.empty(N, dtype=np.int64)
        truth[own] = np.arange(N)
        rows = []
        for n in frames:
            nb = neighbours(r[:n])
            frac = neighbour_fraction(nb, truth, SIDE, SIDE)
            rows.append({"frames": n, "neighbour_fraction": frac})
        to90 = next((row["frames"] for row in rows if row["neighbour_fraction"] >= 0.9), None)
        # Key holder: invert the transfer, undo transmission.
        rt = readouts(m, t, x_test, rng) - 0.01 * WHITE_PHOTONS
        dense = np.linalg.inv(m.toarray())
        xh = (rt @ dense.T) / t / WHITE_PHOTONS
        snr = 10 * np.log10(np.var(x_test) / np.mean((xh - x_test) ** 2))
        base_snr = snr if base_snr is None else base_snr
        density = float(np.mean(np.abs(dense) > 1e-6 * np.abs(dense).max()))
        out["levers"][name] = {
            **lever,
            "attack": rows,
            "frames_to_90": to90,
            "snr_db": float(snr),
            "snr_loss_db": float(base_snr - snr),
            "inverse_density": density,
        }
    return out


LEVERS: dict[str, dict] = {
    "reference (b=8, blocks permuted)": {"block": 8},
    "global permutation (b=32)": {"block": 32},
    "gain spread 0.3": {"block": 8, "gain_rms": 0.3},
    "mix k=2, a=0.2": {"block": 8, "mix": 0.2},
    "mix k=2, a=0.25": {"block": 8, "mix": 0.25},
    "mix k=2, a=0.3": {"block": 8, "mix": 0.3},
    "mix k=2, a=0.25 + gain spread 0.3": {"block": 8, "mix": 0.25, "gain_rms": 0.3},
    "mix k=2, a=0.35": {"block": 8, "mix": 0.35},
    "mix k=2, a=0.45": {"block": 8, "mix": 0.45},
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--full", action="store_true", help="full audit of the default camera")
    p.add_argument(
        "--reference", action="store_true", help="full audit of the reference 64 x 64 camera"
    )
    p.add_argument("--quick", action="store_true", help="shorter streams")
    args = p.parse_args()
    if args.full or args.reference:
        from sim.audit import run_audit
        from sim.camera import Camera
        from sim.config import load_config

        t0 = time.perf_counter()
        c0 = time.process_time()
        if args.reference:
            camera = Camera(load_config(REFERENCE_CAMERA))
            lengths: tuple[int, ...] = (100, 250, 500, 1000, 2000)
        else:
            camera = Camera.default()
            lengths = (25, 50, 100, 250, 500, 1000, 2000)
        res = run_audit(camera, frames=lengths, rng=np.random.default_rng(0))
        res["camera"] = "reference (64 x 64)" if args.reference else "default"
        res["wall_s"] = time.perf_counter() - t0
        res["cpu_s"] = time.process_time() - c0
        print(json.dumps(res, indent=2))
        return
    frames = [250, 1000, 4000] if args.quick else [250, 1000, 4000, 16000]
    print(json.dumps(study(frames, LEVERS), indent=2))


if __name__ == "__main__":
    main()
