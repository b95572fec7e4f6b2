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
# # Choose the relay
#
# The output face of a printed bundle is much larger than a sensor, so a relay lens images it
# onto the sensor at magnification $m < 1$ (the `[coupling]` table). Three things follow from
# $m$ and the relay's f-number $N_r$:
#
# 1. **pixels per fiber**: the fiber pitch $s$ becomes $|m| s$ on the sensor, i.e.
#    $r = |m| s / p$ pixels per pitch for pixel pitch $p$; the face ($W$ wide) needs
#    $|m| W$ of sensor;
# 2. **moiré**: unless $r$ is an integer, the fiber and pixel lattices beat with a period of
#    $1/|r - \mathrm{round}(r)|$ fibers;
# 3. **collection efficiency**: a fiber radiates into its numerical aperture
#    $\mathrm{NA}_f$; the relay accepts $\mathrm{NA}_r = |m| / (2 N_r (1 + |m|))$ on the face
#    side, i.e. the fraction $\eta = T_r \min(1, (\mathrm{NA}_r / \mathrm{NA}_f)^2)$
#    (`CouplingConfig.efficiency`; [models page](../explanation/models.md), Coupling).
#
# `KEYCAM_TUTORIAL_QUICK=1` uses a smaller lattice for the readout check (the same code);
# `KEYCAM_TUTORIAL_OUT` is the folder for the figure (default `keycam_out/tutorials/`).

# %%
import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from optics.faceplate import FaceplateConfig, SiteReadout, coupling_operator
from sim.config import CameraConfig, CouplingConfig

QUICK = os.environ.get("KEYCAM_TUTORIAL_QUICK") == "1"
OUT = Path(os.environ.get("KEYCAM_TUTORIAL_OUT", "keycam_out/tutorials"))
OUT.mkdir(parents=True, exist_ok=True)

cfg = CameraConfig.default()
fp, sensor = cfg.faceplate, cfg.sensor
face_mm = fp.cols * fp.pitch_um / 1000
print(f"face {face_mm:g} mm wide, fiber pitch {fp.pitch_um:g} um, NA {fp.numerical_aperture}")
print(
    f"sensor ROI {sensor.width_px} px of {sensor.pixel_pitch_um} um = "
    f"{sensor.width_px * sensor.pixel_pitch_um / 1000:.2f} mm"
)

# %% [markdown]
# ## 1. Magnification: how many pixels per fiber?
#
# The largest magnification that fits the face onto the sensor region is
# $m_\mathrm{max} = (\text{sensor width}) / W$. The readout that recovers each fiber's light
# (`Camera.readout`, public) needs a few pixels per fiber to separate neighbours; about 3–4
# pixels per pitch with a relay blur of a third of a pixel work well (tutorial 3 shows the
# readout noise against this ratio). The default camera uses $r = 3.7$.

# %%
m_max = sensor.width_px * sensor.pixel_pitch_um / 1000 / face_mm
for r in (2.0, 3.0, 3.7, 4.0):
    m = r * sensor.pixel_pitch_um / fp.pitch_um
    fits = "fits" if m <= m_max else "does not fit"
    print(
        f"r = {r:3.1f} px per fiber: m = {m:.5f}, face image {m * face_mm:5.2f} mm ({fits}); "
        f"moiré period {'none' if r == round(r) else f'{1 / abs(r - round(r)):.1f} fibers'}"
    )

# %% [markdown]
# ## 2. Does the readout still separate the fibers?
#
# Build the coupling operator of a small lattice for a candidate ratio and blur, and solve
# the per-fiber readout from a noise-free frame: it must give back each fiber's light. Its
# conditioning says how much it amplifies noise.

# %%
n = 8 if QUICK else 16
small = FaceplateConfig(rows=n, cols=n, pitch_um=fp.pitch_um, core_diameter_um=fp.core_diameter_um)
rng = np.random.default_rng(3)
light = rng.uniform(0.2, 1.0, small.n_fibers)
for r, blur in ((3.7, 2.0), (2.0, 2.0), (1.2, 2.0)):
    m = r * sensor.pixel_pitch_um / fp.pitch_um
    side = int(np.ceil(n * r)) + 4
    k = coupling_operator(
        small,
        pixel_pitch_um=sensor.pixel_pitch_um,
        sensor_shape=(side, side),
        magnification=m,
        blur_um=blur,
    )
    back = SiteReadout(k)(k @ light)
    s = np.linalg.svd(k.toarray(), compute_uv=False)
    print(
        f"r = {r}: max readout error {np.abs(back - light).max():.1e}, "
        f"condition number {s[0] / s[-1]:.1f}"
    )

# %% [markdown]
# ## 3. f-number: how much light reaches the sensor?
#
# At small magnification the relay collects $\eta \approx T_r (m / (2 N_r \mathrm{NA}_f))^2$:
# it grows with the square of $m$ and falls with the square of $N_r$. The default camera's
# $m = 0.0217$ at f/1.4 collects about 2 × 10⁻⁴ of what a fiber emits; butt coupling
# ($m = 1$, no relay) collects everything but needs a sensor as large as the face.

# %%
ms = np.geomspace(0.005, 1.0, 200)
fig, ax = plt.subplots(figsize=(9, 5), layout="constrained")
for n_r in (0.95, 1.4, 2.8):
    eff = [
        CouplingConfig(magnification=m, relay_f_number=n_r, relay_transmission=0.9).efficiency(
            fp.numerical_aperture
        )
        for m in ms
    ]
    ax.loglog(ms, eff, label=f"relay f/{n_r}")
d = cfg.coupling
ax.plot(
    abs(d.magnification),
    d.efficiency(fp.numerical_aperture),
    "ko",
    label=f"default camera: m = {d.magnification:.4f}, f/{d.relay_f_number}",
)
ax.axvline(m_max, color="0.5", ls=":", label=f"largest m for a {sensor.width_px} px region")
ax.set_xlabel("relay magnification |m| (output face → sensor)")
ax.set_ylabel("fraction of a fiber's light on the sensor")
ax.set_title(f"relay collection efficiency for fibers of NA {fp.numerical_aperture}")
ax.legend()
fig.savefig(OUT / "howto_relay_efficiency.png", dpi=110)
plt.show()

# %% [markdown]
# ## 4. Write it down
#
# The `[coupling]` table of the camera's TOML file holds the choice (the
# [configuration reference](../reference/configuration.md) lists every key):
#
# ```toml
# [coupling]
# magnification = 0.021682   # 3.7 px of 5.86 um per 1 mm fiber pitch
# relay_f_number = 1.4
# relay_transmission = 0.9
# blur_um = 2.0              # relay PSF, Gaussian sigma on the sensor
# ```
#
# A larger sensor region (`[sensor] width_px`, `height_px`) allows a larger $m$ and collects
# $m^2$ more light; the [light budget](../explanation/light-budget.py) shows the effect on
# the electrons per pixel.
