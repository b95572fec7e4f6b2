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
# # Choosing a sensor
#
# Behind the faceplate sits an ordinary CMOS sensor. keycam models it with the linear camera
# model of the **EMVA 1288** standard (Release 4.0, 2021;
# [references](../explanation/references.md)), the same model camera makers use
# on their data sheets: photons → electrons (quantum efficiency η) → shot, dark and read
# noise → full well → system gain K → black level → ADC rounding and clipping.
#
# In this tutorial you will
#
# 1. compare the bundled sensor presets by the figures that matter for a privacy camera;
# 2. run a complete EMVA 1288 characterisation on a simulated sensor and check that the
#    standard's estimators give back the data-sheet values;
# 3. plot the photon-transfer curve and the SNR curve, per pixel and per unit of sensor area.
#
# Everything runs in a few seconds. Two environment variables control the run:
# `KEYCAM_TUTORIAL_OUT` is the folder the figures are saved to (default
# `keycam_out/tutorials/` in the current folder) and `KEYCAM_TUTORIAL_QUICK=1` runs the same code
# on a smaller region of interest.

# %%
import math
import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from optics.emva import characterise, configured_values, measured_values
from optics.sensor import PRESETS, Sensor, SensorConfig

QUICK = os.environ.get("KEYCAM_TUTORIAL_QUICK") == "1"
OUT = Path(os.environ.get("KEYCAM_TUTORIAL_OUT", "keycam_out/tutorials"))
OUT.mkdir(parents=True, exist_ok=True)

ROI_PX = 32 if QUICK else 128  # square region of interest used for the measurements
STEPS = 20 if QUICK else 50  # exposure steps (the standard asks for >= 50)
STACK = 4 if QUICK else 16  # frames L of the dark and 50 % stacks (the standard: 16)

# %% [markdown]
# ## 1. The presets
#
# `optics.sensor.PRESETS` holds two data-sheet-like devices: a large-pixel Sony IMX174-class
# sensor (5.86 µm, 12 bit) and a small-pixel IMX264-class sensor (3.45 µm, 12 bit). Every
# field carries its unit in its name. Two derived figures decide most designs:
#
# * the **saturation capacity** `min(full well, (2^bits − 1 − black level)/K)` — usually set
#   by the ADC, not by the full well;
# * the **maximum SNR** `sqrt(saturation capacity)`, reached just below saturation, where
#   photon shot noise dominates.

# %%
header = (
    f"{'preset':<8}{'pitch µm':>9}{'QE':>6}{'K DN/e-':>9}{'σd e-':>7}"
    f"{'full well e-':>13}{'ADC limit e-':>13}{'sat. e-':>9}{'SNRmax':>8}"
)
print(header)
for name, cfg in PRESETS.items():
    s = Sensor(cfg.model_copy(update={"width_px": 8, "height_px": 8}))
    print(
        f"{name:<8}{cfg.pixel_pitch_um:>9.2f}{cfg.quantum_efficiency:>6.2f}"
        f"{cfg.system_gain_dn_per_e:>9.3f}{cfg.read_noise_e:>7.1f}{cfg.full_well_e:>13.0f}"
        f"{s.adc_limit_e:>13.0f}{s.saturation_e:>9.0f}{math.sqrt(s.saturation_e):>8.0f}"
    )

# %% [markdown]
# The IMX174 preset is **ADC-limited**: its ADC runs out at 32 248 e⁻, just below the
# 32 700 e⁻ full well. The IMX264 preset is **full-well-limited**. For keycam the pixel
# pitch matters twice: it sets how many photons one pixel collects, and how many pixels sit
# behind one fiber (tutorial 3).
#
# A sensor is a frozen, validated configuration. Crop a preset to a region of interest with
# `model_copy`, or build your own from a table — a bad value fails immediately with the
# field's name:

# %%
roi = PRESETS["imx174"].model_copy(update={"width_px": ROI_PX, "height_px": ROI_PX})
own = SensorConfig.from_dict({"preset": "imx264", "width_px": 64, "height_px": 64, "seed": 1})
print(roi.width_px, roi.height_px, own.pixel_pitch_um)
try:
    SensorConfig.from_dict({"preset": "imx174", "quantum_efficiency": 1.4})
except ValueError as err:  # pydantic's ValidationError is a ValueError
    print("rejected:", " / ".join(str(err).splitlines()[:3]))

# %% [markdown]
# ## 2. One frame
#
# `Sensor.expose` turns the **mean number of photons per pixel** during the exposure into a
# raw `uint16` frame in DN. Temporal noise comes only from the generator you pass; the
# fixed patterns (PRNU gain map, DSNU offset map) are drawn once from the configuration's
# own seed, so the same device gives the same fixed pattern in every run. `Sensor.affine`
# gives the noise-free mean, `gain × photons + offset`, which the whole camera model builds
# on.

# %%
sensor = Sensor(roi)
rng = np.random.default_rng(1)
half_full = 0.5 * sensor.saturation_photons  # photons per pixel at 50 % of saturation
frame = sensor.expose(np.full(sensor.shape, half_full), exposure_s=0.01, rng=rng)
gain, offset = sensor.affine(0.01)
print(f"frame {frame.shape} {frame.dtype}, mean {frame.mean():.1f} DN, std {frame.std():.1f} DN")
print(f"expected mean {np.mean(gain * half_full + offset):.1f} DN")

# The spread over the frame adds temporal noise (shot, read, quantisation) and the fixed
# patterns (PRNU, DSNU), all converted to DN:
k, eta = roi.system_gain_dn_per_e, roi.quantum_efficiency
electrons = eta * half_full
parts_dn = {
    "shot": k * math.sqrt(electrons),
    "read": k * roi.read_noise_e,
    "quantisation": math.sqrt(1 / 12),
    "PRNU": k * roi.prnu_fraction * electrons,
    "DSNU": k * roi.dsnu_e,
}
for what, dn in parts_dn.items():
    print(f"  {what:<13}{dn:6.2f} DN")
total = math.sqrt(sum(v**2 for v in parts_dn.values()))
print(f"  {'total':<13}{total:6.2f} DN (measured {frame.std():.2f} DN)")

# %% [markdown]
# ## 3. An EMVA 1288 characterisation
#
# The standard measures a camera with a series of exposures of a uniform light source, from
# dark to just past saturation, taking **two frames per step** (their difference removes the
# fixed pattern) and two dark frames per exposure time. From the mean and temporal variance
# of each pair it fits
#
# * the **system gain K** as the slope of variance against mean signal (photon transfer):
#   $\sigma_y^2 - \sigma_{y.dark}^2 = K\,(\mu_y - \mu_{y.dark})$;
# * the **responsivity** $R = K\eta$ as the slope of the mean signal against photons, hence
#   the **quantum efficiency** $\eta = R/K$;
# * the **temporal dark noise** $\sigma_d = \sqrt{\sigma_{y.dark}^2 - 1/12}\,/K$;
# * **DSNU** and **PRNU** from stacks of L frames in the dark and at 50 % of saturation.
#
# `optics.emva.characterise` simulates that series on a `Sensor` and analyses it with the
# standard's estimators (which work just as well on frames from a real camera —
# see `optics.emva.estimators`). The command line does the same: `python -m optics.emva
# --preset imx264 --plot ptc.png`.

# %%
results = {}
for name, cfg in PRESETS.items():
    dev = Sensor(cfg.model_copy(update={"width_px": ROI_PX, "height_px": ROI_PX}))
    result, series = characterise(
        dev, rng=np.random.default_rng(0), steps=STEPS, stack_frames=STACK
    )
    results[name] = (dev, result, series)
    want, got = configured_values(dev), measured_values(result)
    print(f"\n{name}: {ROI_PX}x{ROI_PX} px, {STEPS} steps, L = {STACK}")
    print(f"  {'quantity':<22}{'configured':>12}{'measured':>12}")
    for k in (
        "system_gain_dn_per_e",
        "quantum_efficiency",
        "read_noise_e",
        "dsnu_e",
        "prnu_fraction",
        "saturation_e",
        "snr_max",
        "dynamic_range_db",
    ):
        print(f"  {k:<22}{want[k]:>12.4g}{got[k]:>12.4g}")

# %% [markdown]
# With the full 128 × 128 region and 50 steps K, η and σd come back within about 1 %, DSNU
# and PRNU within a few per cent — the tolerance to which keycam's test suite holds them.
# A smaller region (the quick run) is noisier but uses exactly the same estimators.
#
# ## 4. Photon transfer
#
# The photon-transfer curve is the single most useful picture of a sensor. Below about
# 70 % of saturation the temporal variance grows linearly with the signal, with slope K
# (each electron is worth K DN and shot noise has variance equal to its mean). At
# saturation the variance collapses, because clipped pixels stop fluctuating.

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), layout="constrained")
for ax, (name, (_, r, s)) in zip(axes, results.items(), strict=True):
    signal = s.mu_y - s.mu_dark
    noise = s.var_y - s.var_dark
    used = np.zeros(signal.size, bool)
    used[r.fit_indices] = True
    ax.plot(signal[~used], noise[~used], "o", mfc="none", color="C0", label="measured")
    ax.plot(signal[used], noise[used], "o", color="C0", label="used for the fit (≤ 70 %)")
    x = np.linspace(0, signal[r.sat_index], 50)
    ax.plot(
        x,
        r.system_gain_dn_per_e * x,
        color="C1",
        label=f"slope K = {r.system_gain_dn_per_e:.4f} DN/e⁻",
    )
    ax.axvline(signal[r.sat_index], color="0.5", ls=":", label="saturation")
    ax.set(
        title=f"{name}: photon transfer",
        xlabel="mean signal μy − μy.dark [DN]",
        ylabel="temporal variance σy² − σy.dark² [DN²]",
    )
    ax.legend(fontsize="small")
fig.savefig(OUT / "02_photon_transfer.png", dpi=110)
plt.show()

# %% [markdown]
# ## 5. Signal-to-noise ratio
#
# The EMVA 1288 SNR of a pixel receiving μp photons is
#
# $$\mathrm{SNR}(\mu_p) = \frac{\eta\,\mu_p}{\sqrt{\sigma_d^2 + 1/(12K^2) + \eta\,\mu_p}},$$
#
# limited by read noise in the dark and by shot noise in the light, where it approaches
# $\sqrt{\eta\mu_p}$ and ends at $\mathrm{SNR_{max}} = \sqrt{\mu_{e.sat}}$.
#
# Per pixel and at equal photon counts (left) the small-pixel IMX264 is better in the dark,
# thanks to its 2.3 e⁻ read noise, while the IMX174 climbs to a higher SNR_max because it
# holds three times more electrons. But an optics designer compares sensors at the **same
# irradiance on the same area**: the faceplate's output face is imaged to a fixed size, a
# large pixel collects more photons, and a small-pixel sensor simply puts more pixels on the
# same area. The right panel therefore plots SNR against photons per µm² for a
# 10 µm × 10 µm patch (about half a fiber image in the default camera, whose fibers are
# imaged at a 21.7 µm pitch), summing its pixels. Per unit area the two sensors are almost
# equal in bright light; in the dark the small pixels' low read noise still wins.

# %%
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2), layout="constrained")
for i, (name, (dev, r, s)) in enumerate(results.items()):
    c = dev.config
    color = f"C{i}"
    signal = s.mu_y - s.mu_dark
    ok = (signal > 0) & (np.arange(signal.size) <= r.sat_index)
    snr_meas = signal[ok] / np.sqrt(s.var_y[ok])
    mp = np.geomspace(0.3, dev.saturation_photons, 200)
    eta, k, sd = c.quantum_efficiency, c.system_gain_dn_per_e, c.read_noise_e
    snr_model = eta * mp / np.sqrt(sd**2 + 1 / (12 * k**2) + eta * mp)
    ax1.loglog(s.photons[ok], snr_meas, "o", ms=4, color=color, label=f"{name} measured")
    ax1.loglog(mp, snr_model, "-", color=color, label=f"{name} EMVA model")
    # per area: a patch of 10 x 10 µm holds (10/pitch)^2 pixels; signal adds, variances add
    area = c.pixel_pitch_um**2
    n_pix = (10.0 / c.pixel_pitch_um) ** 2
    per_um2 = mp / area
    snr_patch = math.sqrt(n_pix) * snr_model
    ax2.loglog(
        per_um2,
        snr_patch,
        "-",
        color=color,
        label=f"{name}: {n_pix:.1f} px of {c.pixel_pitch_um} µm",
    )
ax1.loglog(mp, np.sqrt(mp), "--", color="0.5", label="ideal detector √μp")
ax1.set(title="SNR per pixel", xlabel="photons per pixel μp", ylabel="SNR")
ax2.set(title="SNR of a 10 µm × 10 µm patch", xlabel="photons per µm²", ylabel="SNR")
for ax in (ax1, ax2):
    ax.legend(fontsize="small")
    ax.grid(True, which="both", alpha=0.3)
fig.savefig(OUT / "02_snr.png", dpi=110)
plt.show()

# %% [markdown]
# ## What to take away
#
# * Choose the sensor by **saturation capacity, read noise and pixel pitch together**, at
#   the irradiance your faceplate and relay deliver: printed fiber bundles lose most of the
#   light (tutorial 4), so the dark end of the SNR curve is where keycam cameras live.
# * Check a real camera the same way: take the EMVA 1288 series and feed the pair
#   statistics to `optics.emva.estimators.analyse`; put the recovered numbers into a
#   `[sensor]` table of your camera configuration.
# * From the command line: `python -m optics.emva --preset imx174 --roi 128 --plot ptc.png`
#   prints the configured and recovered figures side by side (see the
#   [command-line reference](../reference/cli.md)).

# %%
print("figures written to KEYCAM_TUTORIAL_OUT:")
print(sorted(p.name for p in OUT.glob("02_*.png")))
