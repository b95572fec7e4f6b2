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
# # Read frames from a real camera
#
# A real keycam device writes raw frames: the sensor's DN, without any processing. keycam
# reads them with `sim.frames.read_frames` — 16-bit greyscale PNG or TIFF, or NumPy `.npy`
# stacks — and gives them to the same two steps as simulated frames:
# `Camera.readout` (public: each output fiber's light, no key needed) and
# `Camera.unscramble` (authorised: the picture, with the key).
#
# To stand in for a real camera, this page writes frames of the default camera the way
# camera software does (12-bit data MSB-aligned in a 16-bit PNG, a TIFF, an `.npy` stack), then
# reads them back. `KEYCAM_TUTORIAL_OUT` is the folder for the files (default
# `keycam_out/tutorials/`).

# %%
import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from PIL import Image

from sim.camera import Camera
from sim.frames import FrameReadError, read_frames
from sim.io import default_scene_path, read_image

OUT = Path(os.environ.get("KEYCAM_TUTORIAL_OUT", "keycam_out/tutorials"))
WORK = OUT / "howto_frames"
WORK.mkdir(parents=True, exist_ok=True)

camera = Camera.default()  # your device: Camera(load_config("my_camera.toml"), key)
bits = camera.config.sensor.bit_depth
scene = camera.prepare_scene(read_image(default_scene_path()).data)
exposure_s = camera.exposure_for(scene)
frames = camera.capture(scene, rng=np.random.default_rng(5), frames=4, exposure_s=exposure_s)

# What camera software typically writes:
Image.fromarray(frames[0] << (16 - bits)).save(WORK / "frame_msb.png")  # 12 bit in the top bits
Image.fromarray(frames[0]).save(WORK / "frame.tif")  # 16-bit TIFF, values as the ADC gave them
np.save(WORK / "stack.npy", frames)  # (F, H, W) uint16
print(sorted(p.name for p in WORK.iterdir()))

# %% [markdown]
# ## 1. Read them
#
# `read_frames` returns `(F, H, W)` uint16 DN and refuses anything that is not raw data
# (8-bit or colour images, floats, values beyond the ADC's range). Give it the ADC's bit
# depth; `msb_aligned=True` undoes the shift of cameras that put the ADC value in the top bits
# (12-bit data as multiples of 16).

# %%
png = read_frames(WORK / "frame_msb.png", bit_depth=bits, msb_aligned=True)
tif = read_frames(WORK / "frame.tif", bit_depth=bits)
stack = read_frames(WORK / "stack.npy", bit_depth=bits)
print(png.shape, tif.shape, stack.shape, png.dtype)
assert np.array_equal(png[0], frames[0]) and np.array_equal(tif[0], frames[0])
assert np.array_equal(stack, frames)
try:
    read_frames(WORK / "frame_msb.png", bit_depth=bits)  # forgot msb_aligned
except FrameReadError as exc:
    print("refused:", str(exc).replace(str(WORK), "howto_frames"))

# %% [markdown]
# ## 2. Readout and unscramble
#
# Both steps need the exposure time of the frame (from the camera software's metadata) and a
# camera whose configuration describes the device: its sensor's gain and black level
# ([use your own sensor](own_sensor.py)), its coupling geometry
# ([choose the relay](choose_the_relay.py)) and, for `unscramble`, its key. Averaging
# frames of a still scene lowers the noise.

# %%
mean_frame = stack.astype(np.float64).mean(axis=0)
sites = camera.readout(mean_frame, exposure_s=exposure_s)  # photons per exposure, per site
view = camera.unscramble(mean_frame, exposure_s=exposure_s)  # needs the key
print(f"{sites.size} output sites, {view.shape} picture")

fig, axes = plt.subplots(1, 3, figsize=(12, 4.4), layout="constrained")
axes[0].imshow(png[0], cmap="gray", interpolation="nearest")
axes[0].set_title("frame read from the PNG (DN)")
axes[1].imshow(
    sites.reshape(camera.config.faceplate.rows, -1), cmap="gray", interpolation="nearest"
)
axes[1].set_title("readout: light per output site")
axes[2].imshow(view, cmap="gray", interpolation="nearest")
axes[2].set_title("unscrambled with the key")
for ax in axes:
    ax.set_axis_off()
fig.savefig(OUT / "howto_real_frames.png", dpi=110)
plt.show()

# %% [markdown]
# On a real device the readout is only as good as the camera's description: the relay's
# magnification, offset and rotation must place the fibers on the pixels where they are
# (`[coupling] offset_um`, `rotation_deg`), and the key must be the device's — the one its
# bundle was printed from, with the transmissions measured or computed for the print
# (`python -m fabrication.export KEY --write-transmission printed.key`).
