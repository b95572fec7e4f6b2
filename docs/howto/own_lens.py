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
# # Use your own lens
#
# keycam's camera lens is a thin lens with a circular stop (`optics.lens.LensConfig`):
# focal length, f-number, wavelength(s), transmission, object distance or magnification,
# defocus and Brown–Conrady distortion, with diffraction, natural vignetting ($\cos^4\theta$)
# and image radiometry computed from them ([models page](../explanation/models.md), Lens).
# This page describes a lens, checks its MTF against the fiber lattice it must resolve, checks
# that its image covers the input face, and puts it into a camera. `KEYCAM_TUTORIAL_OUT` is the
# folder for the figure (default `keycam_out/tutorials/`).

# %%
import math
import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from optics.lens import LensConfig, cutoff_frequency_cyc_per_mm, mtf, relative_illumination
from sim.camera import Camera
from sim.config import CameraConfig

OUT = Path(os.environ.get("KEYCAM_TUTORIAL_OUT", "keycam_out/tutorials"))
OUT.mkdir(parents=True, exist_ok=True)

# %% [markdown]
# ## 1. Describe the lens
#
# From the lens's data sheet: focal length, f-number, transmission (typically 0.85–0.95
# for a multi-coated lens), and the wavelength the sensor sees. An object at a finite
# distance sets `object_distance_mm` (or `magnification`); the working f-number
# $N_w = N(1 + |m|)$ then enters the diffraction and the irradiance.

# %%
lens = LensConfig(
    focal_length_mm=50.0,
    f_number=2.0,
    wavelength_nm=525.0,
    transmission=0.9,
    object_distance_mm=2000.0,  # a scene 2 m away
)
print(
    f"|m| = {lens.abs_magnification:.4f}, image distance {lens.image_distance_mm:.2f} mm, "
    f"working f-number {lens.working_f_number:.3f}"
)

# %% [markdown]
# ## 2. Does it resolve the fibers?
#
# Each fiber averages the image over its core, so the lens need only resolve the fiber
# lattice: its Nyquist frequency is $1/(2s)$ for pitch $s$ (0.5 cycles/mm at the default
# 1 mm pitch). The diffraction MTF of an aberration-free lens is
# $\frac{2}{\pi}\left[\arccos\nu - \nu\sqrt{1-\nu^2}\right]$ with $\nu = f/f_c$ and cutoff
# $f_c = 1/(\lambda N_w)$ ([Goodman 2005](../explanation/references.md)) — far above the
# fiber Nyquist frequency for any camera lens. Defocus (`defocus_waves`) lowers it; the
# check below uses the closed form for the in-focus lens and keycam's `mtf` for both.

# %%
pitch_mm = CameraConfig.default().faceplate.pitch_um / 1000
nyquist = 1 / (2 * pitch_mm)
fc = cutoff_frequency_cyc_per_mm(lens)
nu = nyquist / fc
closed = 2 / math.pi * (math.acos(nu) - nu * math.sqrt(1 - nu**2))
print(f"cutoff {fc:.0f} cycles/mm; fiber Nyquist {nyquist:.2f} cycles/mm")
print(f"MTF at the fiber Nyquist: keycam {float(mtf(lens, nyquist)):.5f}, closed form {closed:.5f}")
assert abs(float(mtf(lens, nyquist)) - closed) < 1e-6

blurred = lens.model_copy(update={"defocus_waves": 2.0})
f = np.linspace(0, 60, 400)
fig, ax = plt.subplots(figsize=(9, 4.8), layout="constrained")
ax.plot(f, mtf(lens, f), label=f"in focus (cutoff {fc:.0f} cycles/mm)")
ax.plot(f, mtf(blurred, f), label="2 waves of defocus")
ax.axvline(nyquist, color="k", ls="--", lw=1, label=f"fiber Nyquist, {pitch_mm:g} mm pitch")
ax.axvline(1 / (2 * 0.1), color="0.5", ls=":", lw=1, label="fiber Nyquist, 0.1 mm pitch")
ax.set_xlabel("spatial frequency on the input face (cycles/mm)")
ax.set_ylabel("MTF")
ax.set_title(
    f"{lens.focal_length_mm:g} mm f/{lens.f_number:g} lens at {lens.wavelengths_nm[0]:g} nm"
)
ax.legend()
fig.savefig(OUT / "howto_lens_mtf.png", dpi=110)
plt.show()

# %% [markdown]
# ## 3. Does its image cover the face?
#
# The image of the scene grid spans the face's width unless `scene.fov_deg` says otherwise;
# the field angle at the face's corner sets the natural vignetting $\cos^4\theta$, which the
# simulation applies (`vignetting = true`). A lens whose image circle is smaller than the face
# diagonal would cut the corners off — compare the diagonal with the lens's specified image
# circle.

# %%
cfg = CameraConfig.default()
cfg = CameraConfig.model_validate({**cfg.model_dump(), "lens": lens.model_dump()})
xy = cfg.faceplate.site_centers_um()
half_diag_mm = float(np.hypot(xy[:, 0], xy[:, 1]).max() + cfg.faceplate.pitch_um / 2) / 1000
print(f"face diagonal {2 * half_diag_mm:.1f} mm: the lens's image circle must be at least this")
print(f"horizontal field of view {cfg.scene_fov_deg:.1f} deg")
print(
    f"relative illumination in the corner: {float(relative_illumination(lens, half_diag_mm)):.2f}"
)

# %% [markdown]
# The fall-off is set by the lens's exit pupil: the $\cos^4$ law holds for the angle
# $\theta' = \arctan(r/p)$ at which the chief ray from an exit pupil $p$ in front of the image
# arrives ([models](../explanation/models.md), Lens). Without `exit_pupil_distance_mm` keycam
# takes a thin lens with its stop at the lens, $p = s_i$. If the data sheet gives the exit
# pupil's distance from the image, or calls the lens image-side telecentric (a very distant
# exit pupil), set it: the corners then get more light, and behind a printed faceplate each
# cone enters its fiber closer to the fiber's axis, so the bends strip less of it.

# %%
far_pupil = LensConfig.model_validate({**lens.model_dump(), "exit_pupil_distance_mm": 400.0})
ri_far = float(relative_illumination(far_pupil, half_diag_mm))
assert abs(ri_far - math.cos(math.atan(half_diag_mm / 400.0)) ** 4) < 1e-12
print(f"exit pupil 400 mm from the image: relative illumination in the corner {ri_far:.3f}")

# %% [markdown]
# Here the check passes: a 50 mm lens for 35 mm film has a 43 mm image circle, twice the
# 22.2 mm diagonal of the default 16 mm face, but it sees a narrower field than the default
# camera's 20 mm lens. A face larger than the lens's image circle would need a longer,
# larger-format lens or a smaller face (finer pitch or fewer fibers).
#
# ## 4. Put it into a camera
#
# In a camera TOML file the lens is the `[lens]` table with the same keys. The validated
# configuration above builds a camera directly:

# %%
camera = Camera(cfg)
print(camera, f"auto exposure {camera.exposure_for(None) * 1e3:.2f} ms for a white scene")

# %% [markdown]
# The [light budget](../explanation/light-budget.py) shows what the f-number does to the
# signal: the image irradiance goes as $1/(1 + 4N_w^2)$.
