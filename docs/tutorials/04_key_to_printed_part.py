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
# # From key to printed part
#
# A keycam key is a recipe for a physical object: a bundle of light guides, each starting at
# one site of the input face and ending at its secret site on the output face. This tutorial
# turns a key into that object:
#
# 1. **route** the fibers so that they never touch, bend gently and stay printable;
# 2. **check** every manufacturing rule on the geometry that will be written;
# 3. **export** watertight STL and 3MF meshes;
# 4. get them **sliced and printed**;
# 5. feed the **printed geometry's transmission** back into the camera simulation.
#
# The default camera's key (16 × 16 fibers, 4 × 4 blocks, blocks permuted) works the same
# way; this page uses a 16 × 16-fiber faceplate with 8 × 8 key blocks kept in place, a key
# that prints shorter (the quick run: 8 × 8 fibers, 4 × 4 blocks). `KEYCAM_TUTORIAL_OUT` sets
# the output folder (default `keycam_out/tutorials/`), `KEYCAM_TUTORIAL_QUICK=1` selects the
# small lattice.

# %%
import json
import os
import subprocess
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from fabrication.export import build
from fabrication.process import ProcessConfig
from optics.faceplate import FaceplateConfig, Key, keygen
from sim.camera import Camera, CameraConfig
from sim.io import default_scene_path, read_image

QUICK = os.environ.get("KEYCAM_TUTORIAL_QUICK") == "1"
OUT = Path(os.environ.get("KEYCAM_TUTORIAL_OUT", "keycam_out/tutorials"))
OUT.mkdir(parents=True, exist_ok=True)
WORK = OUT / "04_print"  # key, meshes and report of this tutorial
WORK.mkdir(exist_ok=True)

N, B = (8, 4) if QUICK else (16, 8)  # fibers per side, key block size

# %% [markdown]
# ## 1. A key for a small faceplate
#
# We take the default camera's faceplate recipe — 1 mm pitch, 0.6 mm cores, 5 % mean
# transmission, stray light, crosstalk — at N × N fibers with a block-local key (blocks stay
# in place: tutorial 3 shows why a printed part prefers that), and save the key.

# %%
default = CameraConfig.default()
recipe = default.faceplate.model_dump()
recipe.update(rows=N, cols=N, block_size=B, permute_blocks=False, seed=2024)
key = keygen(FaceplateConfig(**recipe))
key_file = WORK / "device.key"
key.save(key_file, overwrite=True)  # a tutorial re-runs; a real device key is never replaced
print(key, "->", key_file.relative_to(OUT))

# %% [markdown]
# ## 2. Routing and checks
#
# `fabrication.export.build` routes the key with a process preset, samples the centerlines as
# they will be printed, and runs every check on that sampled geometry. The `resin` preset
# describes clear resin cores of 0.6 mm in a lower-index resin matrix with 0.4 mm walls,
# a minimum bend radius of 10 mm and at most 30° of tilt from the build axis.
#
# The router (explained in tutorial 3 and on the [models page](../explanation/models.md))
# fans the bundle out to a routing pitch of about 2(d + c), braids the fibers past each other
# in two lanes per line — within columns, within rows, within columns — and fans back in.
# Every move is a curvature-continuous S-curve. The report compares the length with two lower
# bounds that no route can beat: the straight-line bound (no fiber moves sideways faster than
# tan θ_max) and the bend-aware bound (a displaced fiber needs an S of two arcs of the minimum
# bend radius, plus the straight ends). A third figure, the **two-lane floor**, is what any
# route of this kind needs: on a packed face the lines must first spread to two lanes each,
# out and back, and every axis along which fibers move needs a pass of its own. Part of the
# gap between the bundle and the bend-aware bound is that floor; the rest is the router's
# further passes and lane steps.

# %%
resin = ProcessConfig.preset("resin")
device = build(key, resin)
report = device.report
print(
    f"bundle length {report.length_mm:.1f} mm = {report.bend_bound_ratio:.1f} × the bend-aware "
    f"bound {report.bend_bound_mm:.1f} mm ({report.length_ratio:.1f} × the straight-line bound "
    f"{report.lower_bound_mm:.1f} mm); {report.n_stages} stages, routing pitch "
    f"{report.route_pitch_mm:.2f} mm"
)
print(
    f"two-lane floor {report.two_lane_floor_mm:.1f} mm "
    f"({report.two_lane_floor_mm / report.bend_bound_mm:.1f} × the bend-aware bound); "
    f"the route is {report.two_lane_floor_ratio:.2f} × the floor"
)
print("all checks passed:", report.passed)
for check in report.checks:
    print(" ", check.message(N))

# %% [markdown]
# Each check reports its worst case and where it happens:
#
# * **clearance** — the smallest 3D distance between two centerlines must leave room for the
#   core and the wall (d + c); it is measured on the printed polylines, so facets cannot
#   sneak below it;
# * **bend_radius** — the tightest curvature of any centerline, against the process limit;
# * **tilt** — the steepest angle of a fiber to the build axis (so the slicer needs no
#   supports inside the bundle);
# * **endpoints** — every fiber starts on its input site and ends on its routed output site,
#   with straight, face-normal ends;
# * **min_feature** — the thinnest printed core or wall;
# * **length** — the bundle length against its two lower bounds (information only).
#
# A picture of the routed bundle: one row of fibers seen from the side, and the path of every
# fiber seen along the bundle.

# %%
pl = device.polylines
row0 = range(N)  # fibers of the first input row
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 5), layout="constrained")
for i in row0:
    v = pl.fiber_vertices(i)
    ax1.plot(v[:, 2], v[:, 0], lw=1)
ax1.set(
    xlabel="z along the bundle [mm] (input face at 0)",
    ylabel="x [mm]",
    title=f"side view: the {N} fibers of input row 0",
)
for i in range(pl.n_fibers):
    v = pl.fiber_vertices(i)
    ax2.plot(v[:, 0], v[:, 1], lw=0.4, color="0.6")
xy_in, xy_out = device.route.input_xy, device.route.output_xy
ax2.plot(xy_in[:, 0], xy_in[:, 1], "o", ms=3, color="C0", label="sites (input = output face)")
for i in row0:
    ax2.annotate("", xy_out[i], xy_in[i], arrowprops={"arrowstyle": "->", "color": "C3"})
ax2.set(
    aspect="equal",
    xlabel="x [mm]",
    ylabel="y [mm] (down)",
    title="seen along z: fan-out and lanes; arrows = row 0's routing",
)
ax2.invert_yaxis()
ax2.legend(loc="lower right", fontsize="small")
fig.savefig(OUT / "04_route.png", dpi=100)
plt.show()

# %% [markdown]
# ## 3. Export: STL and 3MF
#
# The command line does routing, checks and export in one go. It writes nothing at all if a
# check fails, and never overwrites without `--force`. With `--report` it saves the check
# report, with `--write-transmission` a copy of the key whose per-fiber transmission comes
# from the printed geometry (section 5).

# %%
for old in WORK.glob("device*"):  # a re-run of this tutorial starts from a clean folder
    if old != key_file:
        old.unlink()
args = [
    "device.key", "--report", "device_report.json", "--write-transmission", "device_printed.key",
]  # fmt: skip
# run in the tutorial's folder, as you would in a terminal: outputs go to the current folder
done = subprocess.run(
    [sys.executable, "-m", "fabrication.export", *args], cwd=WORK, capture_output=True, text=True
)
print("$ python -m fabrication.export", *args)
print(done.stdout, done.stderr, "exit status", done.returncode)
assert done.returncode == 0
for f in sorted(WORK.iterdir()):
    print(f"{f.name:<24}{f.stat().st_size / 1e6:8.2f} MB")

# %% [markdown]
# * `device_cores.stl` — one closed body per fiber core, in millimetres;
# * `device_matrix.stl` — the housing with the cores removed (the lower-index cladding);
# * `device.3mf` — both bodies in one file, for slicers that assign a material per body;
# * `device_report.json` — the checks above, the lengths and the process used;
# * `device_printed.key` — the key with the printed transmissions (mode 0600, like every key).
#
# The meshes are exact enough to read the routing back from them, so they are **as secret as
# the key** — see the [threat model](../explanation/threat-model.md). Let us confirm what
# we wrote: the STL is in millimetres and spans the bundle.

# %%
from stl import mesh as stl_mesh

cores = stl_mesh.Mesh.from_file(str(WORK / "device_cores.stl"))
lo, hi = cores.vectors.reshape(-1, 3).min(axis=0), cores.vectors.reshape(-1, 3).max(axis=0)
print(f"{len(cores.vectors)} triangles; extent x {hi[0] - lo[0]:.1f} mm, "
      f"y {hi[1] - lo[1]:.1f} mm, z {hi[2] - lo[2]:.1f} mm")  # fmt: skip
saved = json.loads((WORK / "device_report.json").read_text())
print("report:", {k: saved[k] for k in ("passed", "length_mm", "n_fibers", "n_stages")})

# %% [markdown]
# **How big the meshes get.** Each fiber is a polygon tube through *rings* on its centerline.
# The chord tolerance of the process (0.01 mm) sets both: the polygon has enough sides that
# its flats sit at most that far inside the circle, and rings are placed only where a chord
# would stray further from the curve (a chord of length h on a curve of curvature κ strays by
# κh²/8), so bends get many rings and straight runs none. A fiber with m rings and an n-gon
# is 2n(m − 1) + 2(n − 2) triangles, and a binary STL takes 50 bytes per triangle:

# %%
pl = device.polylines
n_sides = resin.polygon_sides()
rings = pl.rings.sum(axis=0)
triangles = int(np.sum(2 * n_sides * (rings - 1) + 2 * (n_sides - 2)))
print(f"{n_sides}-gon tubes, {rings.mean():.0f} rings per fiber (from {rings.min()} to "
      f"{rings.max()}) over {report.length_mm:.0f} mm: {triangles} triangles, "
      f"{(84 + 50 * triangles) / 1e6:.1f} MB of STL")  # fmt: skip
assert triangles == len(cores.vectors) == saved["triangles_cores"]

# %% [markdown]
# ## 4. Slicing and printing
#
# keycam checks the geometry; the print is up to you and your printer. What matters for light
# guides:
#
# * **Build axis = bundle axis.** Print with z (the fiber direction) vertical, input face on
#   the plate or at the top. The router keeps every fiber within 30° of z precisely so that
#   the channels need no supports; do not let the slicer add supports or hollow the part.
# * **Do not let the slicer "repair" or decimate the mesh.** The bodies are watertight as
#   written; simplification moves walls. Check that the units are millimetres. A slicer
#   should see them as they are: `prusa-slicer --info device_matrix.stl` reports
#   `manifold = yes`, and for `device_cores.stl` one part per fiber.
# * **Layer height.** Tilted cores show stair steps of about one layer; every step scatters
#   light out of the core. Use the finest layers your resin printer offers (≤ 50 µm).
# * **Two materials.** The cores must have a higher refractive index than the matrix. With a
#   single-material resin printer, print the matrix with open channels, flush them clean
#   (uncured resin is trapped easily in 0.6 mm channels) and fill them with a clear,
#   higher-index resin or optical adhesive; with the `fdm` process, thread plastic optical
#   fiber through the printed channels.
# * **Faces.** Cut and polish the input and output faces flat; the straight ends at both
#   faces (three core diameters) are there for this. Index-matching gel at the faces reduces
#   Fresnel loss.
# * **Measure the material.** Print a straight test guide, measure its loss in dB/cm and set
#   `attenuation_db_per_cm` in the process, so that section 5 predicts your part.
# * **Build volume.** The bundle length plus the housing margin must fit the printer's z
#   travel.
#
# ## 5. Transmission of the printed part, back into the simulation
#
# Each printed fiber transmits $T = T_{att}\,T_{bend}\,T_{Fresnel}$: attenuation over its own
# length, bend loss at its tightest bend, and Fresnel loss at both faces. Bend loss depends
# on the index contrast: a ray along a fiber of core radius $a$ stays guided in a bend of
# radius $R$ only if $R \ge a(1 + n_2/n_1)/(1 - n_2/n_1)$, and off-axis rays need even more.
# Let us look at the factors the export computed with the resin preset:

# %%
t = device.transmission
for name in ("attenuation", "bend", "fresnel", "total"):
    print(
        f"{name:<12} mean {t[name].mean():.4f}   min {t[name].min():.4f}   max {t[name].max():.4f}"
    )
q = resin.n_clad / resin.n_core
r_axial = resin.core_diameter_mm / 2 * (1 + q) / (1 - q)
print(
    f"n_core {resin.n_core}, n_clad {resin.n_clad} (Δn = {resin.n_core - resin.n_clad:.2f}): "
    f"the axial ray needs R >= {r_axial:.1f} mm; "
    f"the preset allows bends down to {resin.min_bend_radius_mm} mm"
)

# %% [markdown]
# Compare the bend factor with the two radii just printed: when the process lets the router
# bend fibers more tightly than the index contrast can guide, the bend factor collapses,
# whatever the attenuation. A weakly guiding printed core (a small Δn between core and matrix
# resin) loses light in tight bends, while a long bundle loses it to attenuation. The
# minimum bend radius is therefore a design parameter with an optimum: route the same key
# with several bend radii and compare.

# %%
radii = [5.0, 10.0, 20.0] if QUICK else [5.0, 7.5, 10.0, 12.5, 15.0, 20.0, 30.0, 40.0]
sweep = []
for r in radii:
    process = ProcessConfig.preset("resin", min_bend_radius_mm=r)
    d = build(key, process)
    tr = d.transmission
    sweep.append(
        (r, d.report.length_mm, tr["attenuation"].mean(), tr["bend"].mean(), tr["total"].mean())
    )
    print(
        f"R = {r:5.1f} mm: length {d.report.length_mm:6.1f} mm, checks passed {d.report.passed}, "
        f"attenuation {tr['attenuation'].mean():.3f}, bend {tr['bend'].mean():.3f}, "
        f"total {tr['total'].mean():.4f}"
    )
sweep = np.array(sweep)
best = float(sweep[np.argmax(sweep[:, 4]), 0])

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.2), layout="constrained")
ax1.plot(sweep[:, 0], sweep[:, 1], "o-")
ax1.set(xlabel="minimum bend radius R [mm]", ylabel="bundle length [mm]", title="length")
ax2.semilogy(sweep[:, 0], sweep[:, 2], "s--", label="attenuation (length)")
ax2.semilogy(sweep[:, 0], sweep[:, 3], "^--", label="bend loss (index contrast)")
ax2.semilogy(sweep[:, 0], sweep[:, 4], "o-", color="k", label="total, with Fresnel")
ax2.axvline(best, color="0.5", ls=":", label=f"best: R = {best:g} mm")
ax2.set(xlabel="minimum bend radius R [mm]", ylabel="mean transmission", title="transmission")
ax2.legend(fontsize="small")
fig.savefig(OUT / "04_transmission_vs_bend_radius.png", dpi=100)
plt.show()

# %% [markdown]
# Now put the printed part into the camera. The key's routing is unchanged; only the
# transmissions are replaced by those of the geometry (`Key.with_transmission`, which is what
# `--write-transmission` does for the preset process). We build a small camera around the
# N × N faceplate — the default camera's lens, relay and sensor, with a region of interest
# that fits the smaller face — and photograph the bundled portrait with the printed device.
#
# A camera does this by itself: its `[transmission]` table says where the faceplate
# transmission comes from. The default, `source = "printed"`, routes the device key for the
# configured process and uses the printed part's transmission — the very computation behind
# `--write-transmission` (`fabrication.printed.printed_transmission`), cached so that it runs
# once per key. Here we want to compare keys we made ourselves, so the cameras below take
# the transmission of the key they are given: `source = "assumed"`.

# %%
printed_process = ProcessConfig.preset("resin", min_bend_radius_mm=best)
printed = key.with_transmission(build(key, printed_process).transmission["total"])
from_cli = Key.load(WORK / "device_printed.key")  # the CLI's copy, for the resin preset
print("same routing as the design:", np.array_equal(printed.routing, key.routing))
print(f"designed transmission mean {key.transmission.mean():.4f}, printed (R = {best:g} mm) "
      f"{printed.transmission.mean():.4f}, CLI copy (R = {resin.min_bend_radius_mm:g} mm) "
      f"{from_cli.transmission.mean():.4f}")  # fmt: skip

roi = int(np.ceil(N * 1000 * default.coupling.magnification / default.sensor.pixel_pitch_um)) + 8
layout = {
    **default.model_dump(),
    "faceplate": FaceplateConfig(**recipe).model_dump(),
    "scene": {**default.scene.model_dump(), "shape_px": [4 * N, 4 * N]},
    "sensor": {**default.sensor.model_dump(), "width_px": roi, "height_px": roi},
}
small = CameraConfig.model_validate({**layout, "transmission": {"source": "assumed"}})
as_printed = CameraConfig.model_validate(layout)  # the default: source = "printed", resin
auto = Camera(as_printed, key)
print("camera with source = 'printed':", auto.transmission_info["bundle_length_mm"], "mm,",
      "same transmission as the CLI's printed key:",
      np.allclose(auto.key.transmission, from_cli.transmission))  # fmt: skip

# %%
camera = Camera(small, printed)  # the part as printed
designed = Camera(small, key)  # the part as designed
scene = camera.prepare_scene(read_image(default_scene_path()).data)
t_exp = camera.exposure_for(scene)
frame = camera.capture(scene, rng=np.random.default_rng(5), exposure_s=t_exp)
right = camera.unscramble(frame, exposure_s=t_exp)  # decoded with the printed key
wrong = designed.unscramble(frame, exposure_s=t_exp)  # decoded with the design's key
print(f"exposure for the printed part: {1e3 * t_exp:.1f} ms "
      f"(as designed: {1e3 * designed.exposure_for(scene):.1f} ms)")  # fmt: skip

ratio = wrong / right  # what the design's key gets wrong, fiber by fiber
print(f"designed-key decoding / printed-key decoding: mean {ratio.mean():.2f}, "
      f"fiber-to-fiber RMS {100 * ratio.std() / ratio.mean():.1f} %")  # fmt: skip

fig, axes = plt.subplots(1, 4, figsize=(14, 4.0), layout="constrained")
for ax, (img, title) in zip(
    axes[:3],
    [(scene, "scene"), (frame.astype(float), "frame from the printed part"),
     (right, "decoded with the printed key")],
    strict=True,
):  # fmt: skip
    ax.imshow(np.clip(img / np.percentile(img, 99.5), 0, 1) ** (1 / 2.2), cmap="gray")
    ax.set_title(title, fontsize=10)
    ax.set_axis_off()
im = axes[3].imshow(ratio, cmap="coolwarm")
axes[3].set_title(f"designed-key ÷ printed-key decoding\n(mean {ratio.mean():.2f}×)", fontsize=9)
axes[3].set_axis_off()
fig.colorbar(im, ax=axes[3], shrink=0.8, label="designed ÷ printed decoding (ratio)")
fig.savefig(OUT / "04_printed_vs_designed.png", dpi=100)
plt.show()

# %% [markdown]
# Decoded with the key of the part as printed, the view is right. Decoded with the design's
# key, it is wrong twice: **in scale**, because the design assumed a different mean
# transmission (every radiometric number — photons per fiber, the exposure the camera
# needs — is off by that factor), and **fiber by fiber**, because the printed fibers differ
# from the design's random fabrication spread in length and bends. The second error is a
# fixed pattern over the authorised view. In practice, start from the geometry's prediction
# as here, then measure the real part with a flat field, and keep the updated key as the
# device key.

# %%
print("files of this tutorial are in KEYCAM_TUTORIAL_OUT:")
print(sorted(p.name for p in OUT.glob("04_*.png")))
