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
# # Your first encrypted capture
#
# This tutorial photographs a scene with keycam's **default camera**, looks at what the
# camera records, and explains the one file you must never lose or leak: the **device key**.
#
# The default camera is a design you could print, simulated as printed: a 20 mm f/2.8 lens,
# nearly telecentric on its image side, forms the scene on the input face of a 16 × 16 fiber
# bundle (1 mm pitch, 0.6 mm resin cores); inside the bundle the fibers are permuted within
# 4 × 4 blocks and the blocks are permuted too; a relay lens images the 16 mm output face onto
# a 64 × 64 pixel region of an IMX174-class CMOS sensor. Every fiber transmits what its
# printed geometry allows — the bundle that routes a key of this camera is 16–19 cm of resin,
# so about 11 % of the light gets through ([tutorial 3](03_designing_the_faceplate.py) shows
# why so few fibers, and how the key is drawn so that it prints short).
# Its configuration, with a comment on every value, is `sim/data/default_camera.toml`.
#
# You need keycam installed (`pip install -e .` in a clone of the repository). Every command
# below can equally be typed in a terminal; here we run them from Python so that the page
# shows their output. `KEYCAM_TUTORIAL_OUT` sets the folder for the files (default
# `keycam_out/tutorials/`); `KEYCAM_TUTORIAL_QUICK=1` changes nothing here — the default camera
# is already small.

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
CAPTURE_DIR = OUT / "01_keycam_out"  # where the capture command writes


def keycam(*args: str) -> subprocess.CompletedProcess:
    """Run `python -m <args>` in OUT, as you would in a terminal; show what it prints."""
    proc = subprocess.run([sys.executable, "-m", *args], cwd=OUT, capture_output=True, text=True)
    print(f"$ python -m {' '.join(args)}\n{proc.stdout}{proc.stderr}exit status {proc.returncode}")
    return proc


# %% [markdown]
# ## 1. Capture
#
# `python -m sim.capture` photographs the bundled default scene (a public-domain portrait of
# Grace Hopper from matplotlib's sample data) through the default camera. On its first run
# in a folder it creates a new, random device key `device.key` there. Later runs must reuse
# that key with `--key`, or they would be a different camera. Existing files are never
# replaced without `--force` (which, together with `--key`, replaces frames but never the
# key).

# %%
key_file = CAPTURE_DIR / "device.key"
if key_file.exists():  # run before: reuse the device key; --force replaces the old frames
    done = keycam(
        "sim.capture", "--out", "01_keycam_out", "--key", "01_keycam_out/device.key", "--force"
    )
else:
    done = keycam("sim.capture", "--out", "01_keycam_out")
assert done.returncode == 0
print(sorted(p.name for p in CAPTURE_DIR.iterdir()))

# %% [markdown]
# The folder now holds
#
# | file | what it is |
# | --- | --- |
# | `grace_hopper_raw.png` | raw encrypted frame: 16-bit grey PNG in DN (12-bit ADC, 0–4095) |
# | `grace_hopper.json` | sidecar: configuration, transmission, exposure, noise seed, statistics |
# | `grace_hopper_preview.png` | private, for people: scene, encrypted, unscrambled, conventional |
# | `device.key` | the secret key of this device (mode 0600) |
#
# ## 2. The preview

# %%
preview = np.asarray(Image.open(CAPTURE_DIR / "grace_hopper_preview.png"))
fig, ax = plt.subplots(figsize=(13, 3.8), layout="constrained")
ax.imshow(preview, cmap="gray", vmin=0, vmax=255)
ax.set_axis_off()
fig.savefig(OUT / "01_preview.png", dpi=100)
plt.show()

# %% [markdown]
# From left to right:
#
# 1. **scene** — the input, centre-cropped and resampled onto the camera's 64 × 64 scene
#    grid;
# 2. **encrypted frame** — what the sensor records. Each bright spot is the output end of
#    one fiber, imaged by the relay onto about 3.7 × 3.7 pixels; which part of the scene a
#    spot shows is the secret. You may still see 4 × 4-fiber patches of different
#    brightness: each block travels as a sub-bundle, so its overall brightness survives, but
#    the blocks themselves are permuted (tutorial 3 measures this);
# 3. **unscrambled with the key** — the authorised view, 16 × 16, one value per fiber;
# 4. **conventional camera** — the same lens, fibers and sensor with a coherent bundle, for
#    comparison.
#
# ## 3. The raw frame and its sidecar
#
# The raw frame is plain data: a 16-bit PNG any tool can read. The sidecar says how it was
# made — but it holds only the key's **fingerprint**, never the key. It also says which
# transmission the frame was simulated with: here the printed part's, with the process, the
# bundle length and the mean over the fibers (aggregates only; nothing about the routing).

# %%
raw = np.asarray(Image.open(CAPTURE_DIR / "grace_hopper_raw.png")).astype(np.uint16)
sidecar = json.loads((CAPTURE_DIR / "grace_hopper.json").read_text())
exposure_s = sidecar["exposure"]["exposure_s"]
print("frame:", raw.shape, raw.dtype, f"{raw.min()}..{raw.max()} DN")
print("exposure:", f"{1e3 * exposure_s:.2f} ms ({sidecar['exposure']['mode']})")
print("key fingerprint:", sidecar["key_fingerprint"])
print("transmission:", sidecar["transmission"])
print("statistics:", sidecar["statistics"])

fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(13, 4), layout="constrained")
ax1.imshow(raw, cmap="gray", vmax=np.percentile(raw, 99.5))
ax1.set_title("raw frame [DN]")
ax2.imshow(raw[16:48, 16:48], cmap="gray", vmax=np.percentile(raw, 99.5), interpolation="nearest")
ax2.set_title("centre, 32 × 32 pixels: fiber spots")
ax3.hist(raw.ravel(), bins=200, log=True, color="0.3")
ax3.set(title="histogram", xlabel="DN", ylabel="pixels")
for ax in (ax1, ax2):
    ax.set_axis_off()
fig.savefig(OUT / "01_raw_frame.png", dpi=100)
plt.show()

# %% [markdown]
# The floor of the histogram near 64 DN is the sensor's black level: the dark gaps between
# fiber spots. Everything above it is light that came through the fibers.
#
# ## 4. The key file
#
# The key is everything secret about one faceplate: which output position each of the 256
# fibers is routed to, how much light each transmits, the stray light it adds, the crosstalk
# between neighbours and which fibers are dead. Load it with `optics.faceplate.Key`:

# %%
from optics.faceplate import Key, keygen

key = Key.load(key_file)
print(key)  # shows the lattice and the fingerprint, never the arrays
print("file mode:", oct(stat.S_IMODE(key_file.stat().st_mode)))
print("size:", key_file.stat().st_size, "bytes")
print("same device as the sidecar says:", key.fingerprint == sidecar["key_fingerprint"])
print("fiber 0 goes to output site", int(key.routing[0]), "- this is what you must protect")

# %% [markdown]
# The file is written with mode 0600 (readable by you only), atomically, and never
# overwritten: running the capture again without `--key` refuses to replace it.

# %%
refused = keycam("sim.capture", "--out", "01_keycam_out")
assert refused.returncode == 2

# %% [markdown]
# ## 5. The authorised view, in Python
#
# Everything the command does is available from Python. `Camera.default(key)` builds the
# default camera around your key. Unscrambling a frame takes two steps:
#
# 1. `camera.readout(frame, exposure_s=...)` removes the sensor's offset and gain and solves
#    for the light leaving each of the 256 output fibers. It uses only the **public**
#    geometry of the output face — anyone can do this step.
# 2. `optics.faceplate.unscramble(readout, key, ...)` undoes crosstalk, routing and
#    transmission. This is the step that needs the key.
#
# With a wrong key — here, another key of exactly the same design — the second step yields
# noise.

# %%
from optics.faceplate import unscramble
from sim.camera import Camera

camera = Camera.default(key)
sites = camera.readout(raw, exposure_s=exposure_s)  # public: photons per output fiber
view = unscramble(sites, key, bias_scale=exposure_s)  # secret: needs the key
other = keygen(key.config.model_copy(update={"seed": key.config.seed + 1}))
wrong = unscramble(sites, other, bias_scale=exposure_s)

fig, axes = plt.subplots(1, 3, figsize=(12, 4.2), layout="constrained")
panels = [
    (sites.reshape(key.shape), "public readout: light per output fiber"),
    (view, f"unscrambled with the key {key.fingerprint[:8]}…"),
    (wrong, "unscrambled with another key"),
]
for ax, (img, title) in zip(axes, panels, strict=True):
    ax.imshow(np.clip(img / np.percentile(img, 99.5), 0, 1) ** (1 / 2.2), cmap="gray")
    ax.set_title(title, fontsize=10)
    ax.set_axis_off()
fig.savefig(OUT / "01_right_and_wrong_key.png", dpi=100)
plt.show()

# %% [markdown]
# The same camera object can also take pictures directly: `camera.capture(scene, rng=...)`
# returns raw `uint16` frames with all sensor noise, and `camera.operator()` returns the
# whole camera as one sparse affine map `y = A x + b` in DN (the fused `A` has far more
# non-zeros than its factors — the capture applies the factors one after another instead).

# %%
rng = np.random.default_rng(7)
ramp = np.tile(np.linspace(0.0, 1.0, 64), (64, 1))  # linear ramp, dark on the left
flat = np.ones((64, 64))  # uniform white
t_flat = camera.exposure_for(flat)  # auto exposure: brightest fibers at 80 % of saturation
print(f"exposure for the white field: {1e3 * t_flat:.2f} ms")
seen = {}
for name, scene in (("ramp", ramp), ("flat", flat)):
    frame = camera.capture(scene, rng=rng, exposure_s=t_flat)
    seen[name] = camera.unscramble(frame, exposure_s=t_flat).mean(axis=0)  # per column
print("photons per fiber, every 2nd column of the authorised view:")
print("  ramp      ", " ".join(f"{v:8.2e}" for v in seen["ramp"][::2]))
print("  flat      ", " ".join(f"{v:8.2e}" for v in seen["flat"][::2]))
print("  ramp/flat ", " ".join(f"{v:8.3f}" for v in (seen["ramp"] / seen["flat"])[::2]))

# %% [markdown]
# The authorised view is linear in the scene. The ramp's raw column means bend towards the
# edges because the lens's natural vignetting (cos⁴ θ) darkens the borders of the 16 mm
# face; dividing by a flat-field capture removes that and leaves the straight ramp, column
# k of 16 reading about (k + ½)/16. (Both captures use the white field's exposure: at the
# portrait's exposure a white field would saturate the sensor, and saturated pixels are no
# longer linear.)
#
# ## 6. Guarding the key
#
# The key file **is** the secret: with it anyone can turn every frame this camera ever took
# back into a picture. keycam helps — it writes keys with mode 0600, never overwrites them
# without `--force`, never prints them, and logs only the fingerprint — but the rest is up
# to you:
#
# * **Keep it out of version control and shared folders.** keycam's own `.gitignore`
#   ignores `*.key`; do the same in your projects.
# * **Back it up like a private key**, encrypted, offline. Losing it means the frames can
#   only be read by someone who recovers the routing from the device (below).
# * **`--seed` seeds only the noise.** It is recorded in the sidecar so that a run can be
#   repeated byte for byte *with the same `--key`*; a new key always comes from the operating
#   system's randomness, never from a seed, so no seed in any file re-creates it.
# * **The printed part and its mesh files are the key too.** The routing is visible in the
#   geometry (tutorial 4).
# * **The sidecar, the raw frames and the fingerprint can be shared**: they carry no routing,
#   and nothing in them re-creates the key (the frames leak what the threat model lists).
# * **The preview cannot.** It shows the plain scene and the view unscrambled with the key —
#   exactly what the camera exists to hide. Treat it like the scene itself.
#
# And know the limit of the idea: anyone who can put chosen patterns in front of the camera
# can recover the routing fiber by fiber. The [threat model](../explanation/threat-model.md)
# says plainly what the faceplate hides and what it does not; the
# [key file page](../explanation/keyfile.md) describes the format.

# %%
print("files of this tutorial are in KEYCAM_TUTORIAL_OUT:")
print(sorted(p.name for p in OUT.glob("01_*.png")))
