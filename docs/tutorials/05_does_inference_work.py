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
# # Does inference still work?
#
# A keycam camera is not built to be looked at: it is built so that a machine can recognise
# what is in front of it while people cannot. This tutorial checks that promise with a
# **key-net** (Byrne, DeCann & Bloom, BMVC 2020, on the
# [references page](../explanation/references.md)): a neural network whose first layer
# absorbs the camera's key, so that it classifies encrypted frames as well as an ordinary
# network classifies ordinary pictures.
#
# You do not need to know much about neural networks. The idea in optical terms: the camera
# is an affine map from the scene to the sensor, `y = A x + b` (tutorial 1). An ordinary
# network begins with a linear filter bank, `W₁ x`. If you know `A`, you can fold its
# inverse into that first layer, `W₁ A⁺ (y − b)`, and the rest of the network never notices
# the difference. The folded layer is the only place where the key lives — and it is fused
# with `W₁`, so it is never stored on its own.
#
# A real camera makes this harder than it sounds: light leaks between neighbouring fibers
# (crosstalk) and a few fibers are dead. The exact inverse of such a camera is nearly dense,
# so the folded layer would be many times bigger than `W₁`. This tutorial runs the check on
# two cameras and says which is which: the **realistic** one, as built, and an **idealised**
# twin without crosstalk and dead fibers.
#
# `KEYCAM_TUTORIAL_OUT` sets the folder for the figures (default `keycam_out/tutorials/`).
# `KEYCAM_TUTORIAL_QUICK=1` trains for one epoch and tests on 200 digits instead of the
# standard training run and 1000 digits. Trained weights are cached in `~/.cache/keycam` (or
# `$KEYCAM_CACHE`), so a second run skips the training.

# %%
import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from keynet.dataset import load_split
from keynet.verify import camera_path, format_table, verify
from sim.camera import Camera
from sim.config import load_config

QUICK = os.environ.get("KEYCAM_TUTORIAL_QUICK") == "1"
OUT = Path(os.environ.get("KEYCAM_TUTORIAL_OUT", "keycam_out/tutorials"))
OUT.mkdir(parents=True, exist_ok=True)

EPOCHS = 1 if QUICK else None  # None: keycam's standard training run
DIGITS = 200 if QUICK else 1000  # test digits photographed through the camera

# %% [markdown]
# ## 1. The verification cameras
#
# The test task is the classic one: handwritten digits (a bundled 5000-digit subset of
# MNIST, [LeCun 1998](../explanation/references.md), 28 × 28 pixels). Both verification
# cameras are keycam's default printable design with its fiber lattice matched to the digits:
# 28 × 28 fibers, one digit pixel per fiber, 7 × 7 key blocks with the blocks permuted, an
# 80 mm f/2.8 lens for the 28 mm face, the same relay and IMX174-class sensor.
# Both assume a 5 % mean fiber transmission instead of the printed part's: this experiment
# is about keying, and a 28 × 28 block-permuted key would print as a bundle that passes well
# under 1 % of the light ([tutorial 3](03_designing_the_faceplate.py)).
#
# * **realistic** (the default of `python -m keynet.verify`): the camera as built, with the
#   default camera's 2 % crosstalk at the input and at the output face and its dead fibers
#   (2 of 784); `keynet/data/verify_camera_realistic.toml`.
# * **ideal**: the same camera without crosstalk and without dead fibers, an idealisation
#   that no printed bundle reaches; `keynet/data/verify_camera.toml`.
#
# Here is what one test digit of each class looks like on its way through the **realistic**
# camera.

# %%
config = load_config(camera_path("realistic"))
camera = Camera(config)
exposure_s = camera.exposure_for(None)  # the exposure for a white scene
split = load_split()
first = [int(np.flatnonzero(split.y_test == k)[0]) for k in range(10)]  # one per class
digits, labels_true = split.x_test[first], split.y_test[first]
print(camera, "-", int(camera.key.dead.sum()), "dead fibers")

rng = np.random.default_rng(0)
rows = {"digit (scene)": [], "encrypted frame": [], "public readout": [], "authorised view": []}
for d in digits:
    frame = camera.capture(d, rng=rng, exposure_s=exposure_s)
    rows["digit (scene)"].append(d)
    rows["encrypted frame"].append(frame)
    rows["public readout"].append(camera.readout(frame, exposure_s=exposure_s).reshape(28, 28))
    rows["authorised view"].append(camera.unscramble(frame, exposure_s=exposure_s))

fig, axes = plt.subplots(4, 10, figsize=(14, 6.4), layout="constrained")
for r, (title, images) in enumerate(rows.items()):
    for c, img in enumerate(images):
        axes[r, c].imshow(img, cmap="gray", interpolation="nearest")
        axes[r, c].set_axis_off()
    axes[r, 0].set_title(title, loc="left", fontsize=10)
fig.suptitle("realistic camera (as built: crosstalk, dead fibers)")
fig.savefig(OUT / "05_digits.png", dpi=100)
plt.show()

# %% [markdown]
# The **public readout** is what anyone can compute from a frame: the light leaving each of
# the 784 output fibers, found with the public geometry of the output face. It is a
# permuted, unevenly attenuated version of the digit, and the key-net works on exactly
# this. The authorised view needs the key.
#
# ## 2. The verification
#
# `keynet.verify.verify` does the whole experiment and `python -m keynet.verify` prints
# the same table from the command line (see the
# [command-line reference](../reference/cli.md)). It trains an ordinary LeNet on 4000
# digits (or loads cached weights), keys it with the camera, photographs the test digits
# with all sensor noise, and compares seven ways of classifying them. First the realistic
# camera, then the idealised one.

# %%
results = {
    name: verify(camera=name, epochs=EPOCHS, n_digits=DIGITS, quiet=True)
    for name in ("realistic", "ideal")
}
print(format_table(results["realistic"]))

# %%
print(format_table(results["ideal"]))

# %% [markdown]
# ## 3. What each row means
#
# **(a) plain net, clean digits.** The ordinary LeNet on the digits themselves: how good the
# network is at all.
#
# **(b) plain net, the camera's plain images.** The same network on the digits as the input
# fibers receive them, noise-free. On the realistic camera that includes the input-face
# crosstalk: a fixed, 2 % blur that is the same for every key, so it belongs to the plain
# network's input, not to the secret. It costs the network nothing measurable. This is the
# reference for the key-net.
#
# **(c) key-net, noise-free encrypted readouts.** The key-net on the same digits seen
# through the camera, without sensor noise. It should give the answers of (b).
#
# **(d) plain net, conventional camera.** The network on frames of a camera with the same
# lens, fibers, crosstalk, relay and sensor but a coherent bundle, after the same public
# readout and a flat-field correction: what the optics and the sensor noise cost, without any
# key.
#
# **(e) key-net, encrypted frames.** The claim of this whole project: the key-net on the
# encrypted frames with all sensor noise, using only the public readout. It should match (b)
# and (d).
#
# **(f) plain net, encrypted frames.** What someone without the key gets when they feed the
# encrypted frames, corrected like (d), to an ordinary network. Chance for ten classes is
# 10 %. This network does not even reach it: on scrambled input it gives one and the same
# answer for most digits (with the standard training: "2"), so it is right about as often as
# the digit happens to be that one — near or below chance, with no information about the
# digit.
#
# **(g) key-net of another key.** A key-net made for another device of the same design, on
# your frames: also near chance. A key-net belongs to its device.
#
# Below the accuracies:
#
# * **noise-free check** — on the idealised camera the key-net's outputs equal the plain
#   network's to rounding error (about 1e-15 in float64): the keying is exact. On the
#   realistic camera they agree on every digit's class but differ by a percent or two: the
#   two dead fibers' pixels are filled from their neighbours (their light is lost for good),
#   and the output crosstalk is undone only approximately, to keep the first layer sparse.
# * **first layer** — the key-net's first layer is a sparse matrix. On the idealised camera,
#   where each digit pixel reaches one fiber, it keeps exactly the non-zeros of the plain
#   network's first stage (convolution plus pooling written as a matrix). The exact inverse
#   of the realistic camera's crosstalk would make it about 8× denser; keycam undoes the
#   output crosstalk with the largest first-order corrections that fit in 1.5× the plain
#   non-zeros, and fills dead fibers from their neighbours (see Key-nets on
#   [the models page](../explanation/models.md)).
# * **parameters / non-zeros** — the whole network: below 2× on both cameras. The Key-Nets
#   paper ([Byrne 2020](../explanation/references.md)) reports 3.0× for its LeNet with a
#   permutation key.
# * **memory and inference time** — what deployment costs. The sparse first layer is faster
#   than the plain convolution.
#
# Now the accuracies as a chart:

# %%
labels = [
    "(a) plain,\nclean digits",
    "(b) plain,\nplain images",
    "(c) key-net,\nnoise-free",
    "(d) plain,\nconventional",
    "(e) key-net,\nencrypted",
    "(f) plain,\nencrypted",
    "(g) other key-net,\nencrypted",
]
keys = [
    "accuracy_clean",
    "accuracy_plain_images",
    "accuracy_keynet_noise_free",
    "accuracy_conventional",
    "accuracy_keynet",
    "accuracy_plain_on_encrypted",
    "accuracy_other_key",
]
pos = np.arange(len(keys))
fig, ax = plt.subplots(figsize=(11, 4.2), layout="constrained")
for i, (name, colour) in enumerate([("realistic", "C2"), ("ideal", "0.6")]):
    values = [100 * results[name][k] for k in keys]
    bars = ax.bar(pos + (i - 0.5) * 0.4, values, 0.4, color=colour, label=f"{name} camera")
    ax.bar_label(bars, fmt="%.1f", fontsize=7)
ax.axhline(10, color="0.3", ls=":", label="chance (10 %)")
ax.set_xticks(pos, labels)
ax.set(ylabel="accuracy [%]", ylim=(0, 108), title=f"{DIGITS} test digits")
ax.legend(loc="center right")
fig.savefig(OUT / "05_accuracy.png", dpi=100)
plt.show()

# %% [markdown]
# ## 4. Using a key-net in your own code
#
# `verify` is built from public pieces you can use directly:
#
# * `keynet.train.train_or_load` — the plain LeNet (cached);
# * `keynet.readout.PublicReadout` — frames → per-fiber readouts, from the public geometry;
# * `keynet.readout.secret_map` — the camera's map from digits to readouts in factored form,
#   for the camera's key or any other key of its lattice (`Key.load("measured.key")`, e.g.
#   one measured by a calibration); treat it like the key itself;
# * `keynet.keying.key_network` — folds the sparse inverse of the secret into the first layer
#   and adds random positive monomial keys to the hidden layers.

# %%
from keynet.keying import key_network
from keynet.readout import PublicReadout, secret_map
from keynet.train import TrainConfig, train_or_load

tcfg = TrainConfig() if EPOCHS is None else TrainConfig(epochs=EPOCHS)
net, _ = train_or_load(split, tcfg, quiet=True)  # the weights verify() just cached
readout = PublicReadout(camera, exposure_s=exposure_s)
smap = secret_map(camera, exposure_s=exposure_s, readout=readout)  # key=... for another key
keynet = key_network(net, smap, rng=np.random.default_rng(1)).astype(np.float32)
del smap  # the key-net is all you deploy

frames = np.stack(rows["encrypted frame"])
print("key-net says:", keynet.predict(readout(frames).astype(np.float32)))
print("truth:       ", labels_true)

# %% [markdown]
# ## 5. What a public key-net gives away
#
# A key-net file holds no key array, but it is not a safe. Compare the non-zero pattern of
# the plain network's first stage with the key-net's first layer (realistic camera): the
# key-net's columns are the plain columns **permuted by the routing** (and scaled by the
# fiber transmissions), plus a sprinkle of small crosstalk corrections. Because a
# convolution's pattern tells which inputs are neighbours, and its weights are shared across
# the image, the routing can be recovered from the public key-net alone. Keep key-nets as
# confidential as the key file — see the
# [threat model](../explanation/threat-model.md).

# %%
m, _ = net.first_stage_matrix()  # (1176, 784): digit pixels -> pooled feature map
w1 = keynet.w1  # (1176, 784): readout sites -> keyed pooled feature map
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 5), layout="constrained")
ax1.spy(m[:196], markersize=0.4, aspect="auto")
ax1.set(title="plain first stage, channel 1\n(rows: pooled outputs, columns: digit pixels)")
ax2.spy(w1[:196], markersize=0.4, aspect="auto")
ax2.set(title="key-net first layer, one keyed channel\n(columns: fiber readouts)")
fig.savefig(OUT / "05_first_layer.png", dpi=100)
plt.show()
print(f"non-zeros: plain first stage {np.count_nonzero(m)}, key-net first layer {w1.nnz}")

# %%
print("figures written to KEYCAM_TUTORIAL_OUT:")
print(sorted(p.name for p in OUT.glob("05_*.png")))
