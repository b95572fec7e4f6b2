"""Mutation test: do the tests notice a wrong manufacturability limit or a wrong physics formula?

Each mutant changes one expression in the source: a limit halved or doubled, the wall dropped
from the clearance, a comparison flipped, an index off by one in :mod:`fabrication.checks`,
the watertightness test and the export gate, and a handful of plausible slips in the optics
models (rounding, PRNU, MTF, PSF cutoff, fill factor, vignetting, radiometry, dark signal,
Fresnel loss, bend loss, the EMVA temporal variance). Every mutant is applied to a temporary
copy of the repository (the working tree is never edited), and only the test files relevant to
it are run (``python -m pytest -x -q -p no:cacheprovider -n 0 FILES``). A mutant is *killed*
when a test fails, *survived* when all pass. Before the mutants, every test selection is run
unmutated; a selection that fails there invalidates its mutants.

A mutant names the file it expects; if a restructuring moved the code, the mutant is applied
to the one file of the same package that holds its exact text (``not_applied`` if there is
none or more than one).

    python bench/mutation_checks.py [--jobs 2] [--only ID ...] [--list] [--timeout 300]

Prints JSON: every mutant's status and time, the counts and the kill rate.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHECK_TESTS = ("tests/fabrication/test_check_limits.py",)
SENSOR_TESTS = ("tests/optics/test_sensor.py",)
LENS_TESTS = ("tests/optics/test_lens.py",)
FACEPLATE_TESTS = ("tests/optics/test_faceplate.py",)
EMVA_TESTS = ("tests/optics/test_emva.py",)
TRANSMISSION_TESTS = ("tests/fabrication/test_process_transmission.py",)
EXPORT_GATE_TESTS = ("tests/fabrication/test_export.py::test_cli_refuses_when_a_check_fails",)


@dataclass(frozen=True)
class Mutant:
    """Replace ``old`` (exactly one occurrence) by ``new`` in ``path``; run ``tests``."""

    id: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...]
    what: str


def _m(id_: str, path: str, old: str, new: str, tests: tuple[str, ...], what: str) -> Mutant:
    return Mutant(id_, path, old, new, tests, what)


CHECKS = "fabrication/checks.py"
MUTANTS: list[Mutant] = [
    # -- clearance
    _m("clearance_x0.5", CHECKS, "passed=dist >= s_req - _TOL_MM",
       "passed=dist >= 0.5 * s_req - _TOL_MM", CHECK_TESTS, "clearance limit halved"),
    _m("clearance_x2", CHECKS, "passed=dist >= s_req - _TOL_MM",
       "passed=dist >= 2.0 * s_req - _TOL_MM", CHECK_TESTS, "clearance limit doubled"),
    _m("clearance_no_wall", CHECKS, "s_req = process.min_pitch_mm",
       "s_req = process.channel_diameter_mm", CHECK_TESTS,
       "clearance against the channel diameter alone (wall forgotten)"),
    _m("clearance_flipped", CHECKS, "passed=dist >= s_req - _TOL_MM",
       "passed=dist <= s_req - _TOL_MM", CHECK_TESTS, "clearance comparison flipped"),
    _m("clearance_start_level", CHECKS, "mid = 0.5 * (xy[k] + xy[k + 1])", "mid = xy[k]",
       CHECK_TESTS, "candidate pairs at the chord's first level instead of its midpoint"),
    _m("clearance_no_tilt_reach", CHECKS,
       "sec = math.sqrt(1.0 + float(np.max(chord / dz[:, None])) ** 2)", "sec = 1.0",
       CHECK_TESTS, "candidate reach ignores the tilt (horizontal distance only)"),
    _m("clearance_skip_last_chord", CHECKS, "    for k in range(k_lv - 1):\n        # fibers",
       "    for k in range(k_lv - 2):\n        # fibers", CHECK_TESTS,
       "off by one: the last chord is never examined"),
    # -- bend radius
    _m("bend_x0.5", CHECKS, "passed=rmin >= process.min_bend_radius_mm * (1 - 1e-9)",
       "passed=rmin >= 0.5 * process.min_bend_radius_mm * (1 - 1e-9)", CHECK_TESTS,
       "bend radius limit halved"),
    _m("bend_x2", CHECKS, "passed=rmin >= process.min_bend_radius_mm * (1 - 1e-9)",
       "passed=rmin >= 2.0 * process.min_bend_radius_mm * (1 - 1e-9)", CHECK_TESTS,
       "bend radius limit doubled"),
    _m("bend_flipped", CHECKS, "passed=rmin >= process.min_bend_radius_mm * (1 - 1e-9)",
       "passed=rmin <= process.min_bend_radius_mm * (1 - 1e-9)", CHECK_TESTS,
       "bend radius comparison flipped"),
    _m("bend_diameter", CHECKS, "rmin = 1.0 / kmax if kmax > 0", "rmin = 2.0 / kmax if kmax > 0",
       CHECK_TESTS, "bend diameter taken for the radius"),
    # -- tilt
    _m("tilt_x0.5", CHECKS, "passed=tilt <= process.max_tilt_deg + 1e-9",
       "passed=tilt <= 0.5 * process.max_tilt_deg + 1e-9", CHECK_TESTS, "tilt limit halved"),
    _m("tilt_x2", CHECKS, "passed=tilt <= process.max_tilt_deg + 1e-9",
       "passed=tilt <= 2.0 * process.max_tilt_deg + 1e-9", CHECK_TESTS, "tilt limit doubled"),
    _m("tilt_flipped", CHECKS, "passed=tilt <= process.max_tilt_deg + 1e-9",
       "passed=tilt >= process.max_tilt_deg + 1e-9", CHECK_TESTS, "tilt comparison flipped"),
    _m("tilt_no_chords", CHECKS,
       "slopes = np.maximum(pl.slope, np.vstack([chord, chord[-1:]]))", "slopes = pl.slope",
       CHECK_TESTS, "tilt of the smooth curve only, printed chords ignored"),
    _m("tilt_no_smooth", CHECKS,
       "slopes = np.maximum(pl.slope, np.vstack([chord, chord[-1:]]))",
       "slopes = np.vstack([chord, chord[-1:]])", CHECK_TESTS,
       "tilt of the printed chords only, smooth slope between vertices ignored"),
    # -- end points
    _m("endpoints_x0.5", CHECKS, "passed=float(err[ff]) <= 1e-6",
       "passed=float(err[ff]) <= 0.5e-6", CHECK_TESTS, "end point tolerance halved"),
    _m("endpoints_x2", CHECKS, "passed=float(err[ff]) <= 1e-6", "passed=float(err[ff]) <= 2e-6",
       CHECK_TESTS, "end point tolerance doubled"),
    _m("endpoints_flipped", CHECKS, "passed=float(err[ff]) <= 1e-6",
       "passed=float(err[ff]) >= 1e-6", CHECK_TESTS, "end point comparison flipped"),
    _m("end_length_x0.5", CHECKS, "e = process.end_length_mm", "e = 0.5 * process.end_length_mm",
       CHECK_TESTS, "straight end length halved"),
    _m("end_length_x2", CHECKS, "e = process.end_length_mm", "e = 2.0 * process.end_length_mm",
       CHECK_TESTS, "straight end length doubled"),
    _m("endpoints_inverse_routing", CHECKS, "face.sites_mm[route.routing], axis=1)",
       "face.sites_mm[np.argsort(route.routing)], axis=1)", CHECK_TESTS,
       "output sites of the inverse permutation"),
    _m("endpoints_no_output", CHECKS, "[err_in, err_out, dev_in, dev_out, straight_drift]",
       "[err_in, dev_in, dev_out, straight_drift]", CHECK_TESTS, "output end point not checked"),
    _m("endpoints_short_end", CHECKS, "pl.xy[: k_in + 1] - pl.xy[0][None]",
       "pl.xy[:k_in] - pl.xy[0][None]", CHECK_TESTS,
       "off by one: the chord crossing the end length is not part of the end"),
    # -- minimum feature
    _m("feature_x0.5", CHECKS, "passed=feat >= process.min_feature_mm - _TOL_MM",
       "passed=feat >= 0.5 * process.min_feature_mm - _TOL_MM", CHECK_TESTS,
       "minimum feature halved"),
    _m("feature_x2", CHECKS, "passed=feat >= process.min_feature_mm - _TOL_MM",
       "passed=feat >= 2.0 * process.min_feature_mm - _TOL_MM", CHECK_TESTS,
       "minimum feature doubled"),
    _m("feature_flipped", CHECKS, "passed=feat >= process.min_feature_mm - _TOL_MM",
       "passed=feat <= process.min_feature_mm - _TOL_MM", CHECK_TESTS,
       "minimum feature comparison flipped"),
    _m("feature_no_wall", CHECKS, "feat = min(core_w, wall, process.housing_margin_mm)",
       "feat = min(core_w, process.housing_margin_mm)", CHECK_TESTS, "wall dropped"),
    _m("feature_no_housing", CHECKS, "feat = min(core_w, wall, process.housing_margin_mm)",
       "feat = min(core_w, wall)", CHECK_TESTS, "housing margin dropped"),
    _m("feature_round_core", CHECKS, "core_w = 2.0 * r_ch * c_half if",
       "core_w = 2.0 * r_ch if", CHECK_TESTS, "core width of the circle, facets ignored"),
    _m("feature_odd_as_even", CHECKS, "if nsides % 2 == 0 else", "if nsides % 2 == 1 else",
       CHECK_TESTS, "core width formula of the wrong polygon parity"),
    # -- length
    _m("length_x0.5", CHECKS, "passed=height >= shortest - _TOL_MM",
       "passed=height >= 0.5 * shortest - _TOL_MM", CHECK_TESTS, "length bound halved"),
    _m("length_x2", CHECKS, "passed=height >= bb - _TOL_MM",
       "passed=height >= 2.0 * bb - _TOL_MM", CHECK_TESTS, "length bound doubled"),
    _m("length_flipped", CHECKS, "passed=height >= bb - _TOL_MM",
       "passed=height <= bb - _TOL_MM", CHECK_TESTS, "length comparison flipped"),
    _m("length_no_ends", "fabrication/routing.py",
       "return 2.0 * process.end_length_mm + body", "return body", CHECK_TESTS,
       "straight ends left out of the bound"),
    _m("length_no_run", "fabrication/routing.py",
       "return 2.0 * r * np.sin(phi) + np.maximum(0.0, s - knee) / math.tan(th)",
       "return 2.0 * r * np.sin(phi)", CHECK_TESTS, "straight run left out of the bound"),
    # -- watertightness and the export gate
    _m("watertight_no_reverse", "fabrication/mesh.py",
       "return bool(np.array_equal(fs, np.sort(rev)))", "return True", CHECK_TESTS,
       "edges not matched with their reverse"),
    _m("watertight_duplicates", "fabrication/mesh.py", "if np.any(fs[1:] == fs[:-1]):",
       "if False:", CHECK_TESTS, "duplicated directed edges allowed"),
    _m("watertight_empty", "fabrication/mesh.py", "if f.size == 0:\n        return False",
       "if f.size == 0:\n        return True", CHECK_TESTS, "an empty mesh counts as closed"),
    _m("export_ignores_checks", "fabrication/export.py", "if not report.passed:", "if False:",
       EXPORT_GATE_TESTS, "export writes a part whose checks failed"),
    # -- optics and transmission physics
    _m("sensor_floor", "optics/sensor/model.py", "np.rint(e, out=e)", "np.floor(e, out=e)",
       SENSOR_TESTS, "ADC floors instead of rounding to nearest"),
    _m("sensor_prnu_half", "optics/sensor/model.py",
       "prnu = 1.0 + config.prnu_fraction * _standardised",
       "prnu = 1.0 + 0.5 * config.prnu_fraction * _standardised", SENSOR_TESTS + EMVA_TESTS,
       "PRNU map with half the configured RMS"),
    _m("sensor_no_dark_signal", "optics/sensor/model.py",
       "offset = c.black_level_dn + k * (c.dark_current_e_per_s * t + self.dsnu_map_e)",
       "offset = c.black_level_dn + k * self.dsnu_map_e", SENSOR_TESTS,
       "dark signal left out of the affine mean"),
    _m("lens_mtf", "optics/lens/diffraction.py",
       "(np.arccos(s) - s * np.sqrt(1.0 - s * s))", "(np.arccos(s) - s * np.sqrt(1.0 - s))",
       LENS_TESTS, "MTF of a circular pupil with sqrt(1 - s) for sqrt(1 - s^2)"),
    _m("lens_psf_cutoff", "optics/lens/diffraction.py", "nu_c = 1.0 / lambda_n_um",
       "nu_c = 0.5 / lambda_n_um", LENS_TESTS, "PSF from half the cutoff frequency"),
    _m("lens_cos2", "optics/lens/model.py", "return 1.0 / (1.0 + t2) ** 2",
       "return 1.0 / (1.0 + t2)", LENS_TESTS, "vignetting cos^2 instead of cos^4"),
    _m("lens_irradiance", "optics/lens/radiometry.py", "/ (1.0 + 4.0 * working_f_number**2)",
       "/ (1.0 + 2.0 * working_f_number**2)", LENS_TESTS,
       "image irradiance with 2 N^2 for 4 N^2"),
    _m("faceplate_hex_fill", "optics/faceplate/lattice.py",
       "return math.pi / (2.0 * math.sqrt(3.0)) * ratio2", "return math.pi / 4.0 * ratio2",
       FACEPLATE_TESTS, "hexagonal fill factor with the square lattice's constant"),
    _m("emva_pair_variance", "optics/emva/estimators.py",
       "return 0.5 * np.mean(d * d, axis=(-2, -1)) - 0.5 * dmu * dmu",
       "return np.mean(d * d, axis=(-2, -1)) - 0.5 * dmu * dmu", EMVA_TESTS,
       "temporal variance of a frame pair without the factor 1/2"),
    _m("fresnel_amplitude", "fabrication/transmission.py",
       "refl = ((n_core - n_outside) / (n_core + n_outside)) ** 2",
       "refl = (n_core - n_outside) / (n_core + n_outside)", TRANSMISSION_TESTS,
       "Fresnel reflectance not squared"),
    _m("bend_loss_radius", "fabrication/transmission.py", "q * (r + a) / (r - a)",
       "q * r / (r - a)", TRANSMISSION_TESTS, "bend-loss criterion with R for R + a"),
]  # fmt: skip


def _ignore(folder: str, names: list[str]) -> set[str]:
    skip = {".git", "__pycache__", ".pytest_cache", ".ruff_cache", ".mypy_cache", "site"}
    skip |= {"build", "dist", "out"}
    return {n for n in names if n in skip or n.endswith((".egg-info", ".stl", ".3mf", ".npy"))}


def _locate(copy: Path, m: Mutant) -> Path | None:
    """The file of ``copy`` holding ``m.old`` exactly once (its named file first)."""
    named = copy / m.path
    if named.is_file() and named.read_text().count(m.old) == 1:
        return named
    package = copy / Path(m.path).parts[0]
    hits = [p for p in package.rglob("*.py") if p.read_text().count(m.old) == 1]
    return hits[0] if len(hits) == 1 else None


def _pytest(copy: Path, tests: tuple[str, ...], timeout_s: float) -> tuple[str, float, str]:
    """Run the tests in ``copy``: ``("passed" | "failed" | "timeout", seconds, first failure)``."""
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-n", "0"]
    env = {**os.environ, "PYTHONPATH": str(copy), "PYTHONDONTWRITEBYTECODE": "1"}
    t0 = time.perf_counter()
    try:
        res = subprocess.run(
            [*cmd, *tests], cwd=copy, env=env, capture_output=True, text=True, timeout=timeout_s
        )
    except subprocess.TimeoutExpired:
        return "timeout", time.perf_counter() - t0, ""
    dt = time.perf_counter() - t0
    failed = [ln for ln in res.stdout.splitlines() if ln.startswith(("FAILED", "ERROR"))]
    return ("passed" if res.returncode == 0 else "failed"), dt, (failed[0] if failed else "")


def _run_mutant(copy: Path, m: Mutant, timeout_s: float) -> dict:
    target = _locate(copy, m)
    row = {"id": m.id, "what": m.what, "tests": list(m.tests)}
    if target is None:
        return {**row, "status": "not_applied", "file": m.path, "seconds": 0.0}
    original = target.read_text()
    try:
        target.write_text(original.replace(m.old, m.new, 1))
        status, dt, first = _pytest(copy, m.tests, timeout_s)
    finally:
        target.write_text(original)
    verdict = {"failed": "killed", "timeout": "killed", "passed": "survived"}[status]
    out = {**row, "status": verdict, "file": str(target.relative_to(copy)), "seconds": round(dt, 2)}
    if status == "timeout":
        out["note"] = "timeout"
    if first:
        out["killed_by"] = first
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--jobs", type=int, default=2, help="mutants run in parallel (default 2)")
    p.add_argument("--only", nargs="+", metavar="ID", help="run only these mutants")
    p.add_argument("--list", action="store_true", help="list the mutants and exit")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds per test run")
    args = p.parse_args()
    mutants = [m for m in MUTANTS if not args.only or m.id in args.only]
    if args.list:
        for m in mutants:
            print(f"{m.id:28s} {m.path:30s} {m.what}")
        return
    if not mutants:
        p.error(f"no mutant among {args.only}")
    t_start = time.perf_counter()
    jobs = max(1, min(args.jobs, len(mutants)))
    with tempfile.TemporaryDirectory(prefix="mutation-") as tmp:
        copies = []
        for w in range(jobs):
            dst = Path(tmp) / f"copy{w}"
            shutil.copytree(ROOT, dst, ignore=_ignore)
            copies.append(dst)
        # every test selection must pass unmutated
        selections = sorted({m.tests for m in mutants})
        with ThreadPoolExecutor(jobs) as pool:
            base = list(
                pool.map(
                    lambda ik: _pytest(copies[ik[0] % jobs], ik[1], args.timeout),
                    enumerate(selections),
                )
            )
        baseline = {" ".join(s): b[0] for s, b in zip(selections, base, strict=True)}
        broken = {s for s, b in zip(selections, base, strict=True) if b[0] != "passed"}
        todo = [m for m in mutants if m.tests not in broken]
        free = list(copies)

        def work(m: Mutant) -> dict:
            copy = free.pop()
            try:
                return _run_mutant(copy, m, args.timeout)
            finally:
                free.append(copy)

        with ThreadPoolExecutor(jobs) as pool:
            rows = list(pool.map(work, todo))
    rows += [
        {"id": m.id, "what": m.what, "status": "invalid", "note": "tests fail unmutated"}
        for m in mutants
        if m.tests in broken
    ]
    counted = [r for r in rows if r["status"] in ("killed", "survived")]
    killed = sum(r["status"] == "killed" for r in counted)
    secs = [r["seconds"] for r in counted]
    print(
        json.dumps(
            {
                "command": "python bench/mutation_checks.py " + " ".join(sys.argv[1:]),
                "baseline": baseline,
                "mutants": rows,
                "n_mutants": len(mutants),
                "killed": killed,
                "survived": [r["id"] for r in counted if r["status"] == "survived"],
                "not_applied": [r["id"] for r in rows if r["status"] == "not_applied"],
                "invalid": [r["id"] for r in rows if r["status"] == "invalid"],
                "kill_rate": round(killed / len(counted), 4) if counted else None,
                "median_seconds_per_mutant": round(statistics.median(secs), 2) if secs else None,
                "wall_seconds": round(time.perf_counter() - t_start, 1),
                "jobs": jobs,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
