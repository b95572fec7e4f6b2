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
# # The light budget
#
# Where does the light go between the scene and the sensor? This page follows a uniform white
# scene through the default camera, factor by factor, down to photo-electrons per pixel. Every
# number below is computed when the page is built, from the camera's configuration and key,
# and checked against the same quantity measured on the camera's own pipeline
# (`Camera.pipeline`), so the page cannot drift from the code that makes frames.
#
# For a Lambertian scene of radiance $L$ (W m⁻² sr⁻¹) on the optical axis:
#
# - **lens**: image irradiance $E = \pi L T / (1 + 4 N_w^2)$ in W m⁻² (thin-lens
#   radiometry, [models page](models.md), Lens);
# - **photons**: $E \lambda / (h c)$ photons per second and m², times the area of one
#   lattice cell $A_\mathrm{cell}$ ($s^2$ on a square lattice);
# - **fill factor**: $F = A_\mathrm{core} / A_\mathrm{cell} = \pi d^2 / (4 s^2)$ (square
#   lattice) enters the core;
# - **fiber**: its transmission $\tau$ leaves it — for a printed part this varies across the
#   face, so the budget takes the mean over the fibers at the axis (dead fibers count as 0);
# - **relay**: $\eta = T_r \min(1, (\mathrm{NA}_r/\mathrm{NA}_f)^2)$ with
#   $\mathrm{NA}_r = \lvert m\rvert / (2 N_r (1 + \lvert m\rvert))$ reaches the sensor
#   (`CouplingConfig.efficiency`);
# - **QE**: the quantum efficiency turns photons into electrons (EMVA 1288);
# - **pixel**: times the exposure $t$, divided by the pixels one fiber covers,
#   $A_\mathrm{cell} m^2 / p^2$.
#
# $T$ is the lens transmission, $N_w$ its working f-number, $d$ the core diameter, $s$ the
# fiber pitch, $T_r$, $N_r$ and $m$ the relay's transmission, f-number and magnification,
# $\mathrm{NA}_f$ the fibers' numerical aperture and $p$ the pixel pitch. The
# [models page](models.md) derives each factor; the works cited are on the
# [references page](references.md). The computation is `sim.budget.light_budget`.
# `KEYCAM_TUTORIAL_OUT` sets the folder the figure is saved to (default
# `keycam_out/tutorials/`).

# %%
import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from sim.budget import light_budget
from sim.camera import Camera

OUT = Path(os.environ.get("KEYCAM_TUTORIAL_OUT", "keycam_out/tutorials"))
OUT.mkdir(parents=True, exist_ok=True)

camera = Camera.default()
budget = light_budget(camera)
print(f"scene radiance           {budget.radiance_w_m2_sr:.3g} W m^-2 sr^-1")
print(f"image irradiance E       {budget.irradiance_w_m2:.4g} W m^-2 (on axis)")
print(f"wavelength               {budget.wavelength_nm:.0f} nm")
print(f"exposure (auto)          {budget.exposure_s * 1e3:.2f} ms")
print(f"pixels per fiber         {budget.pixels_per_fiber:.2f}")
print()
print(budget.table())

# %% [markdown]
# The two columns agree: "closed form" evaluates the formulas above, "pipeline" measures the
# same quantity on the operators that make the camera's frames (the lens stage at the central
# image-plane sample, the light into the cores on the fibers nearest the axis, the fiber and
# relay factors as ratios of totals over the whole face).
#
# ## Where the light goes
#
# Photons per second for **one fiber** of the default camera, stage by stage, on a
# logarithmic scale; the label on each step is the fraction that stage passes.

# %%
names = ["lens", "fill factor", "fiber", "relay", "QE"]
values = [budget[n].pipeline for n in names]
labels = [
    "on one lattice cell\n(after the lens)",
    "into the core",
    "out of the fiber",
    "onto the sensor",
    "photo-electrons",
]
fig, ax = plt.subplots(figsize=(10, 5.2), layout="constrained")
x = np.arange(len(values))
prev = np.r_[values[0], values[:-1]]
ax.bar(x, prev, color="0.85", width=0.6, log=True, label="light lost at this stage")
ax.bar(x, values, color="tab:blue", width=0.6, log=True, label="light passed on")
for i, name in enumerate(names):
    f = budget[name].factor
    text = f"× {f:.3g}" if i else f"E = {budget.irradiance_w_m2:.3g} W/m²"
    ax.text(i, values[i] * 1.4, text, ha="center", va="bottom", fontsize=11)
ax.set_xticks(x, labels, fontsize=11)
ax.set_ylabel("photons/s (electrons/s for the last bar) per fiber", fontsize=11)
ax.set_ylim(min(values) / 5, max(values) * 20)
ax.set_title(
    f"default camera: {budget.overall_fraction:.2g} of the photons on a fiber's cell become "
    f"electrons; {budget['pixel'].pipeline:,.0f} e⁻ per pixel in {budget.exposure_s * 1e3:.1f} ms"
)
ax.legend(loc="upper right")
fig.savefig(OUT / "light_budget.png", dpi=110)
plt.show()

# %% [markdown]
# The relay is the bottleneck: a printed resin fiber of numerical aperture 0.619 (its index
# step, taken from the process) radiates into a cone of half-angle 38°, and a relay that
# shrinks the 16 mm face onto 0.35 mm of sensor accepts only
# $\mathrm{NA}_r \approx m / (2 N_r) \approx 0.008$ of it, about 1.5 × 10⁻⁴ of the light. Next
# comes the printed fiber: its transmission is the part's own, computed from the routed
# geometry of the camera's key (`[transmission] source = "printed"`), and the fill factor of
# 0.6 mm cores at 1 mm pitch costs a factor of 3.5:

# %%
info = camera.transmission_info
print(
    f"printed bundle {info['bundle_length_mm']:.0f} mm of resin: mean fiber transmission "
    f"{100 * info['transmission_mean']:.2f} %, at the axis {100 * budget['fiber'].factor:.2f} %; "
    f"relay a factor of {1 / budget['relay'].factor:,.0f}; auto exposure "
    f"{budget.exposure_s * 1e3:.0f} ms for a white surface in overcast daylight"
)

# %% [markdown]
# Butt coupling (`magnification = 1`, no relay) collects everything but needs a sensor as
# large as the face; see the [relay how-to](../howto/choose_the_relay.py).
#
# ## Your own camera
#
# Build the camera from your configuration and call `light_budget`. `scene` is the linear
# scene value (1.0 = `scene.radiance_w_m2_sr`), `exposure_s` fixes the exposure:

# %%
from sim.config import CameraConfig

cfg = CameraConfig.default()
mine = cfg.model_copy(
    update={
        "coupling": cfg.coupling.model_copy(update={"relay_f_number": 0.95}),
        "lens": cfg.lens.model_copy(update={"f_number": 2.0}),
    }
)
faster = light_budget(Camera(mine), scene=0.18, exposure_s=0.02)
print(faster.table())
print(
    f"{faster['pixel'].pipeline:.0f} e- per pixel for an 18 % grey scene in 20 ms; "
    f"saturation {faster.saturation_e:.0f} e-"
)

# %% [markdown]
# With `model_copy(update=...)` the copies are not re-validated: for your own files, load the
# TOML with `sim.config.load_config`, which checks every value. The
# [configuration reference](../reference/configuration.md) lists each field and its unit.
