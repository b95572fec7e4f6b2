"""``python -m optics.emva``: EMVA 1288 characterisation of a simulated sensor.

``python -m optics.emva [--preset NAME | --config sensor.toml] [--plot out.png]`` simulates the
standard's measurement series on a sensor (by default a 128 x 128 region of the ``imx174``
preset) with :mod:`optics.emva.series`, recovers K, QE, sigma_d, DSNU, PRNU, saturation
capacity, SNR_max and dynamic range with the estimators of :mod:`optics.emva.estimators`, and
prints them next to the configured values. ``--plot`` writes the photon-transfer and SNR curves
(never over an existing file without ``--force``).

Limits (checked before any frame is simulated): ``--steps`` 10..1000, ``--stack`` 2..1000,
and the series' memory (``ROI pixels x (4 L + 120)`` bytes) within the memory budget
(:func:`keycam.limits.check_memory`).
"""

from __future__ import annotations

import io
import json
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from keycam.cli import ArgumentParser, CLIError, progress
from optics.emva.estimators import QUANTISATION_VARIANCE_DN2, EMVAResult, MeasurementSeries
from optics.emva.series import ROWS, characterise, configured_values, measured_values
from optics.sensor import PRESETS, Sensor, SensorConfig

__all__ = ["main"]

DEFAULT_ROI_PX = 128
MAX_STEPS = 1000
MAX_STACK = 1000


def _table(title: str, configured: dict[str, float], measured: dict[str, float]) -> str:
    lines = [title, f"{'quantity':<38}{'configured':>13}{'measured':>13}{'deviation':>11}"]
    for key, label, unit, fmt in ROWS:
        name = f"{label} [{unit}]" if unit else label
        c, m = configured[key], measured[key]
        if key == "dark_mean_dn":
            dev = f"{m - c:+.3f} DN"
        elif c != 0 and math.isfinite(m):
            dev = f"{100 * (m - c) / c:+.2f} %"
        else:
            dev = "-"
        lines.append(f"{name:<38}{format(c, fmt):>13}{format(m, fmt):>13}{dev:>11}")
    return "\n".join(lines)


def _check_plot_path(path: Path) -> str:
    """Validate ``--plot``'s format before any work; return the matplotlib format name."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    if path.is_dir():
        raise CLIError(f"--plot {path}: is a directory")
    fmt = path.suffix.lower().lstrip(".")
    formats = FigureCanvasAgg.get_supported_filetypes()
    if fmt not in formats:
        raise CLIError(
            f"--plot {path}: unsupported image type {path.suffix[:20] or '(none)'!r}; "
            f"use one of {', '.join('.' + f for f in sorted(formats))}"
        )
    parent = path.parent
    if not parent.is_dir():
        raise CLIError(f"--plot {path}: {parent} is not an existing folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise CLIError(f"--plot {path}: folder {parent} is not writable")
    return fmt


def series_memory(n_pixels: int, stack_frames: int) -> int:
    """Estimated peak memory of the EMVA series on ``n_pixels`` pixels, bytes.

    The two stacks of ``L`` uint16 frames, the sensor's fixed-pattern maps and the float
    temporaries of exposing two frames at a time.
    """
    return int(n_pixels) * (4 * int(stack_frames) + 120) + (1 << 20)


def plot_bytes(fmt: str, result: EMVAResult, series: MeasurementSeries, title: str) -> bytes:
    """Photon-transfer and SNR curves of a series as an image file's bytes (``fmt``)."""
    from matplotlib.figure import Figure

    s, r = series, result
    signal = s.mu_y - s.mu_dark
    noise = s.var_y - s.var_dark
    fig = Figure(figsize=(11, 4.5), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    fit = np.zeros(s.photons.size, bool)
    fit[r.fit_indices] = True
    ax1.plot(signal[~fit], noise[~fit], "o", mfc="none", color="C0", label="measured")
    ax1.plot(signal[fit], noise[fit], "o", color="C0", label="used for the fit")
    x = np.linspace(0, signal[r.sat_index], 50)
    ax1.plot(
        x,
        r.system_gain_dn_per_e * x,
        "-",
        color="C1",
        label=f"K = {r.system_gain_dn_per_e:.4f} DN/e-",
    )
    ax1.axvline(signal[r.sat_index], color="0.5", ls=":", label="saturation")
    ax1.set(
        xlabel="mu_y - mu_y.dark [DN]",
        ylabel="sigma_y^2 - sigma_y.dark^2 [DN^2]",
        title="photon transfer",
    )
    ax1.legend(fontsize="small")
    snr = signal / np.sqrt(np.maximum(s.var_y, 1e-12))
    ok = (signal > 0) & (np.arange(signal.size) <= r.sat_index)
    ax2.loglog(s.photons[ok], snr[ok], "o", color="C0", label="measured")
    mp = np.geomspace(max(r.sensitivity_threshold_photons / 3, 1e-3), s.photons[-1], 200)
    eta, k = r.quantum_efficiency, r.system_gain_dn_per_e
    model = eta * mp / np.sqrt(r.read_noise_e**2 + QUANTISATION_VARIANCE_DN2 / k**2 + eta * mp)
    model[mp > r.saturation_photons] = np.nan
    ax2.loglog(mp, model, "-", color="C1", label="EMVA model (fitted)")
    ax2.loglog(mp, np.sqrt(mp), "--", color="0.5", label="ideal sensor sqrt(mu_p)")
    ax2.axvline(r.saturation_photons, color="0.5", ls=":")
    ax2.set(xlabel="mu_p [photons/pixel]", ylabel="SNR", title="signal-to-noise ratio")
    ax2.legend(fontsize="small")
    fig.suptitle(title)
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=120)
    return buf.getvalue()


def write_plot(
    path: Path, fmt: str, result: EMVAResult, series: MeasurementSeries, title: str
) -> None:
    """Photon-transfer and SNR curves of a series, written atomically to ``path``."""
    from keycam.fileio import write_bytes_atomic

    write_bytes_atomic(path, plot_bytes(fmt, result, series, title))


def _parse_roi(text: str) -> tuple[int, int] | None:
    if text.lower() == "full":
        return None
    parts = text.lower().split("x")
    try:
        vals = [int(p) for p in parts]
    except ValueError:
        vals = []
    if len(vals) == 1:
        vals *= 2
    if len(vals) != 2 or min(vals) < 4:
        raise CLIError(f"--roi must be WIDTHxHEIGHT (each >= 4 px), N or 'full', got {text!r}")
    return vals[0], vals[1]


def _parser() -> ArgumentParser:
    p = ArgumentParser(
        prog="python -m optics.emva",
        description="Simulate the EMVA 1288 measurement series on a sensor and print the "
        "recovered figures next to the configured ones.",
    )
    src = p.add_mutually_exclusive_group()
    src.add_argument("--preset", choices=sorted(PRESETS), help="sensor preset (default imx174)")
    src.add_argument(
        "--config", type=Path, help="TOML file with a sensor table ([sensor] or top level)"
    )
    p.add_argument(
        "--roi",
        default=str(DEFAULT_ROI_PX),
        help="region of interest WIDTHxHEIGHT, N (square) or 'full' (default 128; "
        "never larger than the sensor)",
    )
    p.add_argument(
        "--steps", type=int, default=50, help=f"exposure steps, 10..{MAX_STEPS} (default 50)"
    )
    p.add_argument(
        "--stack",
        type=int,
        default=16,
        help=f"frames L in the spatial stacks, 2..{MAX_STACK} (default 16)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the temporal noise (default 0)")
    p.add_argument(
        "--plot", type=Path, help="write photon-transfer and SNR curves here (.png, .pdf, .svg)"
    )
    p.add_argument("--force", action="store_true", help="replace an existing --plot file")
    p.add_argument(
        "--json", action="store_true", help="print the figures as JSON instead of a table"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    from keycam.limits import check_memory
    from keycam.outputs import OutputSet

    args = _parser().parse_args(argv)
    if not 10 <= args.steps <= MAX_STEPS:
        raise CLIError(f"--steps must be in 10..{MAX_STEPS}, got {args.steps}")
    if not 2 <= args.stack <= MAX_STACK:
        raise CLIError(f"--stack must be in 2..{MAX_STACK}, got {args.stack}")
    if args.seed < 0:
        raise CLIError(f"--seed must be >= 0, got {args.seed}")
    roi = _parse_roi(args.roi)
    inputs = [args.config] if args.config is not None else []
    with OutputSet(overwrite=args.force, inputs=inputs) as outputs:
        fmt = None
        if args.plot is not None:
            fmt = _check_plot_path(args.plot)
            outputs.plan(args.plot)
        if args.config is not None:
            config = SensorConfig.from_toml(args.config)
            name = str(args.config)
        else:
            name = args.preset or "imx174"
            config = PRESETS[name]
        if roi is not None:
            w, h = min(roi[0], config.width_px), min(roi[1], config.height_px)
            config = config.model_copy(update={"width_px": w, "height_px": h})
        check_memory(
            f"the EMVA series on {config.width_px}x{config.height_px} pixels",
            series_memory(config.width_px * config.height_px, args.stack),
            reduce="--roi or --stack",
        )

        sensor = Sensor(config)
        rng = np.random.default_rng(args.seed)
        result, series = characterise(
            sensor,
            rng=rng,
            steps=args.steps,
            stack_frames=args.stack,
            wrap=lambda it: progress(it, total=args.steps, desc="EMVA series", quiet=args.quiet),
        )
        configured, measured = configured_values(sensor), measured_values(result)
        title = (
            f"EMVA 1288 characterisation of {name} ({config.width_px}x{config.height_px} px, "
            f"{args.steps} steps, L = {args.stack}, seed {args.seed})"
        )
        if fmt is not None:
            outputs.write_bytes(args.plot, plot_bytes(fmt, result, series, title))
        outputs.commit()
    if args.json:
        out = {
            "sensor": name,
            "width_px": config.width_px,
            "height_px": config.height_px,
            "configured": configured,
            "measured": measured,
            "read_noise_is_upper_bound": result.read_noise_is_upper_bound,
        }
        sys.stdout.write(json.dumps(out, indent=2) + "\n")
    else:
        text = _table(title, configured, measured)
        if result.read_noise_is_upper_bound:
            text += "\nnote: dark variance below 0.24 DN^2, sigma_d is an upper bound"
        sys.stdout.write(text + "\n")
    return 0
