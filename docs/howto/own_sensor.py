# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Use your own sensor
#
# keycam's sensor is the linear camera model of EMVA 1288
# ([references](../explanation/references.md)): a `SensorConfig` holds the figures an
# EMVA 1288 report states (system gain $K$, quantum efficiency $\eta$, temporal dark noise
# $\sigma_d$, dark current, DSNU, PRNU, saturation) plus the geometry and ADC from the data
# sheet. This page turns a report — or a data sheet that gives other quantities — into a
# `SensorConfig`, checks it by running the standard's measurement series on the simulated
# sensor (`optics.emva`, the same functions as `python -m optics.emva`), and puts it into a
# camera. `KEYCAM_TUTORIAL_QUICK=1` measures on a smaller region (the same code);
# `KEYCAM_TUTORIAL_OUT` is the folder for the figure (default `keycam_out/tutorials/`).

# %%
import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from optics.emva import characterise, configured_values, measured_values
from optics.sensor import Sensor, SensorConfig

QUICK = os.environ.get("KEYCAM_TUTORIAL_QUICK") == "1"
OUT = Path(os.environ.get("KEYCAM_TUTORIAL_OUT", "keycam_out/tutorials"))
OUT.mkdir(parents=True, exist_ok=True)

# %% [markdown]
# ## 1. From an EMVA 1288 report
#
# A report's summary sheet gives, at one wavelength, the values below (these are the numbers
# of an example 3.45 µm global-shutter sensor; use your own). The fields carry their units in
# their names; the [configuration reference](../reference/configuration.md) lists them all.
#
# | report | value | `SensorConfig` field |
# | --- | --- | --- |
# | system gain $K$ | 0.30 DN/e⁻ | `system_gain_dn_per_e` |
# | quantum efficiency $\eta$ at 525 nm | 68 % | `quantum_efficiency`, `wavelength_nm` |
# | temporal dark noise $\sigma_d$ | 2.4 e⁻ | `read_noise_e` |
# | dark current | 1.5 e⁻/s | `dark_current_e_per_s` |
# | DSNU$_{1288}$ | 1.1 e⁻ | `dsnu_e` |
# | PRNU$_{1288}$ | 0.7 % | `prnu_fraction` |
# | saturation capacity $\mu_{e,\mathrm{sat}}$ | 10 400 e⁻ | `full_well_e` (see below) |
# | data sheet: pixels | 2448 × 2048 | `width_px`, `height_px` |
# | data sheet: pixel pitch | 3.45 µm | `pixel_pitch_um` |
# | data sheet: ADC, black level | 12 bit, 64 DN | `bit_depth`, `black_level_dn` |
#
# The model's saturation is the smaller of the full well and the ADC's range
# $(2^\mathrm{bits} - 1 - \mathrm{black})/K$; with $K = 0.30$ DN/e⁻ the ADC ends at
# 13 437 e⁻, so the full well (10 400 e⁻) sets the saturation, as in the report.

# %%
report = SensorConfig(
    width_px=2448,
    height_px=2048,
    pixel_pitch_um=3.45,
    quantum_efficiency=0.68,
    wavelength_nm=525.0,
    system_gain_dn_per_e=0.30,
    read_noise_e=2.4,
    dark_current_e_per_s=1.5,
    dsnu_e=1.1,
    prnu_fraction=0.007,
    full_well_e=10_400.0,
    bit_depth=12,
    black_level_dn=64.0,
    seed=1,  # the fixed PRNU/DSNU pattern of this one device
)
sensor = Sensor(report)
print(sensor)
print(f"saturation {sensor.saturation_e:.0f} e-, ADC limit {sensor.adc_limit_e:.0f} e-")

# %% [markdown]
# ## 2. From a data sheet that gives other quantities
#
# Data sheets often state a **conversion gain** in e⁻/DN (the inverse of $K$), the
# **dynamic range** in dB and the **full well**, instead of $\sigma_d$. The EMVA definitions
# convert them: $K = 1/\text{(e⁻/DN)}$ and, with $\mathrm{DR} = \mu_{e,\mathrm{sat}} /
# \sigma_d$, $\sigma_d = \mu_{e,\mathrm{sat}} / 10^{\mathrm{DR_{dB}}/20}$. Values the sheet
# does not give (DSNU, PRNU, dark current) are assumptions — say so where you use them.

# %%
conversion_e_per_dn = 3.33  # data sheet, e-/DN
dynamic_range_db = 72.7  # data sheet
full_well_e = 10_400.0  # data sheet
read_noise_e = full_well_e / 10 ** (dynamic_range_db / 20)
sheet = report.model_copy(
    update={"system_gain_dn_per_e": 1 / conversion_e_per_dn, "read_noise_e": read_noise_e}
)
sheet = SensorConfig.model_validate(sheet.model_dump())  # re-validate every field
print(f"K = {sheet.system_gain_dn_per_e:.4f} DN/e-, sigma_d = {sheet.read_noise_e:.2f} e-")

# %% [markdown]
# ## 3. Check it: run the EMVA 1288 series on the simulated sensor
#
# `optics.emva.characterise` takes the standard's measurement series (dark and bright frame
# pairs over an exposure ramp, dark and 50 % stacks) on the simulated sensor and analyses it
# with the standard's estimators. If the configuration means what you think, the measured
# figures match the configured ones within the estimators' statistical error. A region of
# interest keeps it fast; the figures are per pixel, so the region's size does not change
# them.

# %%
roi = 32 if QUICK else 128
steps, stack = (12, 4) if QUICK else (50, 16)
device = Sensor(report.model_copy(update={"width_px": roi, "height_px": roi}))
result, series = characterise(device, rng=np.random.default_rng(7), steps=steps, stack_frames=stack)
want, got = configured_values(device), measured_values(result)
print(f"{'figure':<24}{'configured':>12}{'measured':>12}")
for name in (
    "system_gain_dn_per_e",
    "quantum_efficiency",
    "read_noise_e",
    "saturation_e",
    "dynamic_range_db",
    "snr_max_db",
):
    print(f"{name:<24}{want[name]:>12.4g}{got[name]:>12.4g}")
assert abs(got["system_gain_dn_per_e"] / want["system_gain_dn_per_e"] - 1) < 0.05
assert abs(got["quantum_efficiency"] / want["quantum_efficiency"] - 1) < 0.05

# %% [markdown]
# Gain, QE and dark noise agree to a few per cent. The saturation capacity is read off the
# exposure ramp, so it is only as fine as the ramp's steps (coarse in the quick run): compare
# it with the configured value to within a step.
#
# The same check from a terminal, on a sensor written as a TOML table:
# `python -m optics.emva --config my_sensor.toml` (the
# [command-line reference](../reference/cli.md) lists the options). The photon-transfer
# plot — variance against mean of the bright-minus-dark signal — has slope $K$:

# %%
signal = series.mu_y - series.mu_dark  # DN above the dark level
noise = series.var_y - series.var_dark  # DN^2, the photon shot noise
fit = result.fit_indices
k = result.system_gain_dn_per_e
fig, ax = plt.subplots(figsize=(9, 4.8), layout="constrained")
ax.plot(signal, noise, "o", ms=4, label="measured (frame pairs)")
ax.plot(signal[fit], k * signal[fit], "-", lw=2, label=f"fit: K = {k:.3f} DN/e⁻")
ax.plot(
    signal,
    want["system_gain_dn_per_e"] * signal,
    "k--",
    lw=1,
    label=f"configured: K = {want['system_gain_dn_per_e']:.3f} DN/e⁻",
)
ax.set_xlabel("mean signal above dark, μ_y − μ_y.dark (DN)")
ax.set_ylabel("temporal variance σ²_y − σ²_y.dark (DN²)")
ax.set_title("photon-transfer curve of the simulated sensor (EMVA 1288)")
ax.legend()
fig.savefig(OUT / "howto_sensor_ptc.png", dpi=110)
plt.show()

# %% [markdown]
# ## 4. Put it into a camera
#
# In a camera TOML file the sensor is the `[sensor]` table (every field above), or a preset
# with overrides. The sensor region must hold the image of the output face (the default
# relay images the 64 mm face to about 1.4 mm, some 400 pixels of 3.45 µm); here a 448 × 448
# region of the new sensor replaces the default camera's. (keycam estimates a camera's memory
# before building it and refuses one over its budget, 768 MiB by default; a full 2448 × 2048
# frame needs `KEYCAM_MAX_MEMORY_MB` raised.)

# %%
from sim.camera import Camera
from sim.config import CameraConfig

cfg = CameraConfig.default()
cfg = CameraConfig.model_validate(
    {**cfg.model_dump(), "sensor": {**report.model_dump(), "width_px": 448, "height_px": 448}}
)
camera = Camera(cfg)
print(camera)
