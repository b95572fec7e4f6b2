"""Benchmark of key calibration (Gray-code patterns -> frames -> measured key); prints JSON.

Each case draws device keys from fresh seeds, captures the pattern set through the simulated
device (all noise on: shot, read, dark, PRNU/DSNU, ADC; crosstalk at both faces; lens
vignetting), solves with the *nominal* camera configuration and compares with the true key:

- ``routing_accuracy``: fraction of live fibers routed to their true output site
  (target >= 0.999), with ``frames`` the number of frames used (target <= 2 ceil(log2 N) + 2,
  N fibers along the longer side: 14 for 64 x 64, 16 for 128 x 128);
- ``dead_recall`` / ``dead_precision``: true dead fibers found / found fibers truly dead
  (target recall >= 0.95), pooled over the seeds;
- ``transmission_rms``: RMS relative error of the measured transmission of live fibers
  (target <= 0.02); ``bias_rms_of_mean``: RMS error of the bias over the mean bias;
- ``solve_s``: :func:`sim.calibration.solve_key` wall and CPU time (medians), frames already
  in memory; ``cli_solve_wall_s``: ``python -m sim.calibrate solve`` as a user types it
  (start-up, reading 16-bit PNGs, solving, writing key and report), median (target <= 5 s
  on 2 cores); ``cli_solve_cpu_s`` its CPU time, a steadier figure on a shared machine.

Cases: ``default`` (the bundled camera, 2 % crosstalk, 0.2 % dead), ``default_complements``
(the same with every Gray frame's complement), ``global_128`` (128 x 128 lattice, one global
random permutation: an incoherent bundle), ``misregistered`` (the device's face image 2 px
off in x and y and turned by 1 degree), ``misregistered_scaled`` (3 px, 2 degrees, 3 %
larger), ``saturating`` (exposure 1.3 x auto: a few saturated pixels).

Usage: ``python bench/bench_calibrate.py [--seeds N] [--cli-repeats N] [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def _config(kind: str):
    from sim.config import CameraConfig

    base = CameraConfig.default().model_dump()
    if kind == "global_128":
        base["faceplate"] = {
            **base["faceplate"],
            "rows": 128,
            "cols": 128,
            "pitch_um": 500.0,
            "core_diameter_um": 300.0,
            "block_size": 128,
            "permute_blocks": False,
        }
        base["scene"] = {**base["scene"], "shape_px": (512, 512)}
        base["sensor"] = {**base["sensor"], "width_px": 512, "height_px": 512}
        base["coupling"] = {**base["coupling"], "magnification": 2 * 0.021682}
    return CameraConfig.model_validate(base)


def _device(config, *, shift_px=(0.0, 0.0), rotation_deg=0.0, scale=1.0):
    from sim.config import CameraConfig

    d = config.model_dump()
    p = config.sensor.pixel_pitch_um
    c = d["coupling"]
    d["coupling"] = {
        **c,
        "offset_um": (c["offset_um"][0] + shift_px[0] * p, c["offset_um"][1] + shift_px[1] * p),
        "rotation_deg": c["rotation_deg"] + rotation_deg,
        "magnification": c["magnification"] * scale,
    }
    return CameraConfig.model_validate(d)


def run_case(name: str, seeds: list[int], *, complements=False, exposure_scale=1.0, **misreg):
    from optics.faceplate import keygen
    from sim.calibration import make_patterns, simulate_frames, solve_key
    from sim.camera import Camera

    cfg = _config("global_128" if name == "global_128" else "default")
    nominal = Camera(cfg)
    ps = make_patterns(nominal, complements=complements)
    dev_cfg = _device(cfg, **misreg)
    acc, wrong, trans, bias, times, cpus, sat, margins = [], 0, [], [], [], [], [], []
    n_dead = found = true_found = n_found = 0
    for seed in seeds:
        key = keygen(cfg.faceplate.model_copy(update={"seed": seed}))
        dev = Camera(dev_cfg, key)
        rng = np.random.default_rng(seed)
        t = dev.exposure_for(ps.images[ps.index("white")]) * exposure_scale
        frames, t = simulate_frames(dev, ps, rng=rng, exposure_s=t)
        sat.append(float(np.mean(frames >= dev.sensor.max_dn)))
        t0, c0 = time.perf_counter(), time.process_time()
        cal = solve_key(nominal, ps, frames, exposure_s=t)
        times.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
        k = cal.key
        live = ~key.dead
        ok = k.routing[live] == key.routing[live]
        acc.append(float(ok.mean()))
        wrong += int((~ok).sum())
        n_dead += int(key.dead.sum())
        found += int(k.dead[key.dead].sum())
        n_found += int(k.dead.sum())
        true_found += int(key.dead[k.dead].sum())
        good = live & ~k.dead
        trans.append(k.transmission[good] / key.transmission[good] - 1.0)
        bias.append((k.bias[good] - key.bias[good]) / key.bias[good].mean())
        margins.append(cal.report["decode_margin_sigma"]["min"])
    tr = np.concatenate(trans)
    bs = np.concatenate(bias)
    return {
        "lattice": f"{cfg.faceplate.rows}x{cfg.faceplate.cols} {cfg.faceplate.lattice}",
        "key": f"block {cfg.faceplate.block_size}, permute_blocks {cfg.faceplate.permute_blocks}",
        "frames": ps.n_frames,
        "frames_bound": 2 * int(np.ceil(np.log2(max(cfg.faceplate.rows, cfg.faceplate.cols)))) + 2,
        "seeds": len(seeds),
        "routing_accuracy_min": min(acc),
        "routing_accuracy_mean": float(np.mean(acc)),
        "wrong_live_fibers_total": wrong,
        "dead_true_total": n_dead,
        "dead_recall": found / n_dead if n_dead else None,
        "dead_precision": true_found / n_found if n_found else None,
        "transmission_rms": float(np.sqrt(np.mean(tr**2))),
        "transmission_bias": float(np.mean(tr)),
        "bias_rms_of_mean": float(np.sqrt(np.mean(bs**2))),
        "decode_margin_min_sigma": min(m for m in margins if m is not None),
        "saturated_pixel_fraction_max": max(sat),
        "solve_s_median": statistics.median(times),
        "solve_cpu_s_median": statistics.median(cpus),
        "misregistration": {k: v for k, v in misreg.items()} or None,
    }


def cli_solve(repeats: int) -> dict[str, object]:
    from optics.faceplate import keygen
    from sim.config import CameraConfig

    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    env = {**os.environ, "PYTHONPATH": path}
    walls, cpus = [], []
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        keygen(CameraConfig.default().faceplate.model_copy(update={"seed": 99})).save(d / "dev.key")

        def cli(*args: str) -> None:
            subprocess.run(
                [sys.executable, "-m", "sim.calibrate", *args, "--quiet"],
                cwd=d, env=env, check=True, capture_output=True,
            )  # fmt: skip

        cli("patterns", "-o", "pat", "--no-complements")
        cli("simulate", "pat", "--key", "dev.key", "-o", "frames", "--seed", "1")
        for _ in range(repeats):
            t0, r0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
            cli("solve", "frames", "-o", "m.key", "--report", "r.json", "--force")
            r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            walls.append(time.perf_counter() - t0)
            cpus.append(r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime)
        report = json.loads((d / "r.json").read_text())
    return {
        "cli_solve_wall_s_median": statistics.median(walls),
        "cli_solve_wall_s_runs": [round(w, 2) for w in walls],
        "cli_solve_cpu_s_median": statistics.median(cpus),
        "cli_report_fibers": report["fibers"],
        "target_s": 5.0,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3, help="device keys per case")
    ap.add_argument("--cli-repeats", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="one seed, default cases only")
    args = ap.parse_args()
    n = 1 if args.quick else args.seeds
    seeds = list(range(100, 100 + n))
    out: dict[str, object] = {"cpu_count": os.cpu_count(), "load_avg_1min": os.getloadavg()[0]}
    out["default"] = run_case("default", seeds)
    out["default_complements"] = run_case("default", seeds, complements=True)
    out["misregistered"] = run_case("default", seeds, shift_px=(2.0, 2.0), rotation_deg=1.0)
    if not args.quick:
        out["misregistered_scaled"] = run_case(
            "default", seeds, shift_px=(3.0, -3.0), rotation_deg=2.0, scale=1.03
        )
        out["saturating"] = run_case("default", seeds, exposure_scale=1.3)
        out["global_128"] = run_case("global_128", seeds)
    out["cli"] = cli_solve(args.cli_repeats)
    out["load_avg_1min_end"] = os.getloadavg()[0]
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
