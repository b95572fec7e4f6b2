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
# # Calibrating a built device
#
# A printed faceplate is never exactly its design: a fiber breaks, the part shrinks, the
# relay lens sits a few pixels off. And the cheapest real faceplate — a commercial
# *incoherent* fiber bundle — comes with a routing nobody knows. Either way the owner has to
# **measure** the key from the device: show the camera known patterns on a monitor, record a
# frame of each, and solve the frames for the routing, the transmission and stray light of
# every fiber, and which fibers are dead.
#
# `python -m sim.calibrate` does this in three steps:
#
# 1. `patterns` writes the pattern set — binary-reflected Gray codes of every fiber's column
#    and row, a white and a black frame — as images to show full-screen;
# 2. you record one frame of each pattern (here `simulate` does that with the simulated
#    camera, so the whole loop runs without hardware);
# 3. `solve` turns the frames into a key file.
#
# This page runs the loop on the default camera, with a device whose relay lens is placed
# 2 pixels off and turned by 1 degree, and checks the measured key against the true one.
# `KEYCAM_TUTORIAL_OUT` sets the folder for the files (default `keycam_out/tutorials/`);
# `KEYCAM_TUTORIAL_QUICK=1` skips the comparison with the longer pattern set in section 5.

# %%
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from PIL import Image

QUICK = os.environ.get("KEYCAM_TUTORIAL_QUICK") == "1"
OUT = Path(os.environ.get("KEYCAM_TUTORIAL_OUT", "keycam_out/tutorials"))
OUT.mkdir(parents=True, exist_ok=True)
WORK = OUT / "06_calibration"  # every file of this page goes here
WORK.mkdir(exist_ok=True)


def keycam(*args: str) -> subprocess.CompletedProcess:
    """Run `python -m <args>` in WORK, as you would in a terminal; show what it prints."""
    proc = subprocess.run([sys.executable, "-m", *args], cwd=WORK, capture_output=True, text=True)
    print(f"$ python -m {' '.join(args)}\n{proc.stdout}{proc.stderr}exit status {proc.returncode}")
    return proc


# %% [markdown]
# ## 1. The device
#
# The device is the default camera with a key of its own. Its relay lens was mounted a
# little off: the image of the output face lands 2 pixels right, 2 pixels up and turned by
# 1°. We write that into a copy of the default configuration (`device.toml`); the
# calibration itself only gets the nominal configuration and has to find the placement.
#
# A tutorial needs a reproducible page, so the key comes from a fixed seed here; a real
# device key is created without one (`python -m sim.capture` does that).

# %%
from optics.faceplate import Key, keygen
from sim.config import CameraConfig, default_config_path, load_config

nominal_toml = default_config_path().read_text()
pixel_um = 5.86
device_toml = nominal_toml.replace(
    "offset_um = [0.0, 0.0]", f"offset_um = [{2 * pixel_um}, {-2 * pixel_um}]"
).replace("rotation_deg = 0.0", "rotation_deg = 1.0")
assert device_toml != nominal_toml
(WORK / "device.toml").write_text(device_toml)
device_config = load_config(WORK / "device.toml")
relay = device_config.coupling
print(f"device relay: offset {relay.offset_um} um, rotation {relay.rotation_deg} deg")

true_key = keygen(CameraConfig.default().faceplate.model_copy(update={"seed": 2024}))
true_key.save(WORK / "device.key", overwrite=True)
print(true_key, "-", int(true_key.dead.sum()), "dead fibers")

# %% [markdown]
# ## 2. The patterns
#
# Every input fiber at lattice position (row, column) is named by the Gray code of its
# column (4 bits for 16 columns) and of its row (4 bits). Frame `x3` lights the fibers whose
# column code has bit 3 set — half the face, in two wide stripes; `x0` lights every other pair
# of columns. Successive Gray codes differ in one bit, so a fiber on a stripe edge can only
# be mistaken for its neighbour. With `--no-complements` the set is 4 + 4 Gray frames plus
# white and black: **10 frames** for 16 × 16 fibers (without the option every Gray frame is
# followed by its complement: 18 frames, more margin; a 64 × 64 face needs 14 and 26).
#
# Each Gray frame is lit at its own grey level, from white down to about 60 %: if two
# frames are recorded in the wrong order, `solve` notices and refuses them rather than
# decoding a wrong key.

# %%
done = keycam("sim.calibrate", "patterns", "-o", "patterns", "--no-complements", "--force")
assert done.returncode == 0
manifest = json.loads((WORK / "patterns" / "manifest.json").read_text())
print([f["name"] for f in manifest["frames"]])

show = ["00_white", "02_x3", "05_x0", "07_y2"]
fig, axes = plt.subplots(1, 4, figsize=(13, 3.6), layout="constrained")
for ax, name in zip(axes, show, strict=True):
    img = np.asarray(Image.open(WORK / "patterns" / f"{name}.png"))
    ax.imshow(img, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    ax.set_title(f"{name}.png (grey {img.max()})")
    ax.set_xticks([])
    ax.set_yticks([])
fig.suptitle("calibration patterns on the 64 x 64 scene grid (4 x 4 pixels per fiber)")
fig.savefig(OUT / "06_patterns.png", dpi=100)
plt.show()

# %% [markdown]
# ## 3. Recording the frames
#
# On a real camera you show each pattern full-screen, record one frame at one fixed exposure
# and save it under the pattern's name. `simulate` does the same with the simulated device —
# lens vignetting, crosstalk at both faces, shot and read noise, fixed-pattern noise, the
# misplaced relay — and writes 16-bit PNG frames next to a copy of the manifest that also
# records the exposure.

# %%
done = keycam(
    "sim.calibrate", "simulate", "patterns", "--config", "device.toml", "--key", "device.key",
    "-o", "frames", "--seed", "1", "--force",
)  # fmt: skip
assert done.returncode == 0
white = np.asarray(Image.open(WORK / "frames" / "00_white.png")).astype(float)
x0 = np.asarray(Image.open(WORK / "frames" / "05_x0.png")).astype(float)
fig, axes = plt.subplots(1, 3, figsize=(13, 4.2), layout="constrained")
axes[0].imshow(white, cmap="gray")
axes[0].set_title("frame of the white pattern [DN]")
axes[1].imshow(x0, cmap="gray")
axes[1].set_title("frame of 05_x0: scrambled stripes")
axes[2].imshow(x0[12:52, 12:52], cmap="gray", interpolation="nearest")
axes[2].set_title("05_x0, 40 x 40 px: lit and dark fibers")
for ax in axes:
    ax.set_axis_off()
fig.savefig(OUT / "06_frames.png", dpi=100)
plt.show()

# %% [markdown]
# The stripes are gone in the frame: the routing scrambled them. But every output site is
# either lit or dark in each frame, and its 8 on/off answers spell the Gray code of the
# input fiber that feeds it.
#
# ## 4. Solving
#
# `solve` first registers the output face on the sensor from the white frame (the geometry
# of the face is public; only its placement is measured), reads every output site, decodes
# every bit as a log-likelihood ratio, and gives every lit site a distinct fiber by a
# minimum-cost matching — two sites claiming one fiber are resolved by their margins, never
# silently. It writes the key (mode 0600) and, with `--report`, a report you can share:
# counts and margins, no routing, no transmission.

# %%
done = keycam(
    "sim.calibrate", "solve", "frames", "-o", "measured.key", "--report", "report.json", "--force"
)
assert done.returncode == 0
report = json.loads((WORK / "report.json").read_text())
print(json.dumps({k: report[k] for k in ("fibers", "decode_margin_sigma")}, indent=1))
reg = report["registration"]
print(
    f"registration: shift ({reg['shift_px'][0]:+.3f}, {reg['shift_px'][1]:+.3f}) px, "
    f"rotation {reg['rotation_change_deg']:+.3f} deg, scale {reg['scale_change_percent']:+.3f} %"
)
print("key file mode:", oct(stat.S_IMODE((WORK / "measured.key").stat().st_mode)))

# %% [markdown]
# The registration found the 2-pixel shift and the 1° turn. The decode margin is the
# distance of the weakest bit of each fiber from its decision threshold, in noise standard
# deviations: around a hundred for every fiber, so none was a close call.
#
# ## 5. How good is the measured key?
#
# Here we know the true key, so we can check: the routing of every live fiber, the dead
# fibers, and the transmission. The device transmits what its printed fibers transmit
# (the camera computes that from the key's routed geometry), so that is the truth the
# measured transmission is compared with.

# %%
from sim.camera import Camera

device_truth = Camera(device_config, true_key).key
measured = Key.load(WORK / "measured.key")
live = ~true_key.dead
right = measured.routing[live] == true_key.routing[live]
print(f"routing: {right.sum()} of {live.sum()} live fibers right ({100 * right.mean():.2f} %)")
print(f"dead fibers: found {int(measured.dead[true_key.dead].sum())} of {int(true_key.dead.sum())}")
both = live & ~measured.dead
rel = measured.transmission[both] / device_truth.transmission[both] - 1
print(f"transmission: {100 * np.sqrt(np.mean(rel**2)):.2f} % rms error")

from sim.calibration import make_patterns, simulate_frames, solve_key
from sim.camera import Camera

nominal = Camera(CameraConfig.default())
device = Camera(device_config, true_key)
margins = {}
for complements in (False,) if QUICK else (False, True):
    ps = make_patterns(nominal, complements=complements)
    frames, t = simulate_frames(device, ps, rng=np.random.default_rng(7))
    cal = solve_key(nominal, ps, frames, exposure_s=t)
    ok = np.mean(cal.key.routing[live] == true_key.routing[live])
    print(f"{ps.n_frames} frames: routing {100 * ok:.2f} % right")
    margins[ps.n_frames] = cal.margin_sigma[np.isfinite(cal.margin_sigma)]

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.4), layout="constrained")
ax1.plot(device_truth.transmission[both], measured.transmission[both], ".", ms=2)
lo, hi = device_truth.transmission[both].min(), device_truth.transmission[both].max()
ax1.plot([lo, hi], [lo, hi], "k-", lw=0.8)
ax1.set(xlabel="true transmission", ylabel="measured transmission", title="every live fiber")
for n, m in margins.items():
    ax2.hist(m, bins=60, histtype="step", label=f"{n} frames")
ax2.axvline(3, color="r", lw=0.8, label="ambiguous below 3 sigma")
ax2.set(xlabel="decode margin of the weakest bit [noise sigma]", ylabel="fibers")
ax2.legend()
fig.savefig(OUT / "06_measured_vs_true.png", dpi=100)
plt.show()

# %% [markdown]
# ## 6. Using the measured key
#
# The measured key goes wherever a key goes. To read the device's frames, build the camera
# with the placement the registration found (public geometry, from the report) and the
# measured key. The measured key carries the transmission the device actually has, so that
# camera says `[transmission] source = "assumed"`: it uses the key's values instead of
# computing a printed transmission from the routing. Its authorised view matches the one made
# with the true key.

# %%
from sim.io import default_scene_path, read_image

registered = CameraConfig.model_validate(
    {
        **CameraConfig.default().model_dump(),
        "coupling": {
            **CameraConfig.default().coupling.model_dump(),
            "offset_um": tuple(reg["offset_um"]),
            "rotation_deg": reg["rotation_deg"],
            "magnification": reg["magnification"],
        },
        "transmission": {"source": "assumed"},
    }
)
scene = read_image(default_scene_path()).data
t = device.exposure_for(device.prepare_scene(scene))
frame = device.capture(scene, rng=np.random.default_rng(3), exposure_s=t)
views = {
    "true key": device.unscramble(frame, exposure_s=t),
    "measured key": Camera(registered, measured).unscramble(frame, exposure_s=t),
    "measured key, relay assumed nominal": Camera(CameraConfig.default(), measured).unscramble(
        frame, exposure_s=t
    ),
}
truth = device.sampling_operator @ (device.lens_operator @ device.prepare_scene(scene).ravel())
fig, axes = plt.subplots(1, 3, figsize=(13, 5.2), layout="constrained")
for ax, (name, img) in zip(axes, views.items(), strict=True):
    c = np.corrcoef(img.ravel(), truth)[0, 1]
    print(f"{name}: correlation with the light entering the fibers {c:.4f}")
    ax.imshow(np.clip(img / np.percentile(img, 99.5), 0, 1) ** (1 / 2.2), cmap="gray")
    ax.set_title(f"{name}\ncorrelation {c:.3f}", fontsize=10)
    ax.set_axis_off()
fig.savefig(OUT / "06_unscrambled.png", dpi=100)
plt.show()

# %% [markdown]
# The third panel is the same measured key read with the relay where the configuration
# says it is. Two pixels is more than half the fiber pitch on the sensor (3.7 pixels), so
# most sites are read from their neighbours' light and the picture falls apart. Put the
# registered placement (`offset_um`, `rotation_deg`, `magnification` from the
# report) into your camera's `[coupling]` table.
#
# ## 7. On a real camera
#
# * Show each `patterns/NAME.png` full-screen, so that it fills the camera's field of view
#   exactly as the scene grid does, in a dark room; keep the monitor and camera still.
# * Record one raw frame per pattern at **one fixed exposure** (no auto exposure between
#   frames), short enough that the white frame does not saturate; save it as
#   `frames/NAME.png` (16-bit), `NAME.tif` or `NAME.npy` — a stack of several frames of one
#   pattern in one `.npy` is averaged. Copy `patterns/manifest.json` into `frames/`.
# * `python -m sim.calibrate solve frames/ --exposure 20ms -o measured.key --report
#   report.json`. Transmission is absolute if the white pattern has the configured scene
#   radiance; a dimmer monitor scales every fiber alike, which does not matter for
#   unscrambling.
# * Wrong, missing or extra frames, frames of another camera or out of order are refused
#   with one line naming the problem, and nothing is written. All options are listed in the
#   [command-line reference](../reference/cli.md).
#
# ## 8. What this means for privacy
#
# Nothing in this procedure needs the key: **anyone who can put 14 patterns in front of the
# camera recovers its key** in about a second of computing. The faceplate hides pictures from
# people who only see frames; it does not protect a camera that others can point at a
# screen. The [threat model](../explanation/threat-model.md) says what follows from that.

# %%
print("files of this tutorial are in the folder", WORK.name)
print(sorted(p.name for p in OUT.glob("06_*.png")))
