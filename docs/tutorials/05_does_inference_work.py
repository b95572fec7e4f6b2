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
# **key-net** (Byrne, DeCann & Bloom, BMVC 2020): a neural network whose first layer
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
from keynet.verify import default_camera_path, format_table, verify
from sim.camera import Camera
from sim.config import load_config

QUICK = os.environ.get("KEYCAM_TUTORIAL_QUICK") == "1"
OUT = Path(os.environ.get("KEYCAM_TUTORIAL_OUT", "keycam_out/tutorials"))
OUT.mkdir(parents=True, exist_ok=True)

EPOCHS = 1 if QUICK else None  # None: keycam's standard training run
DIGITS = 200 if QUICK else 1000  # test digits photographed through the camera

# %% [markdown]
# ## 1. The verification camera
#
# The test task is the classic one: handwritten digits (a bundled 5000-digit subset of
# MNIST, 28 × 28 pixels). The verification camera is built like keycam's printable design
# (1 mm fibers with 0.6 mm cores, a relay and an IMX174-class sensor) with its fiber lattice
# matched to the digits: 28 × 28 fibers, one digit pixel per fiber, 7 × 7 key blocks with the
# blocks permuted. It assumes a 5 % mean fiber transmission instead of the printed part's:
# this experiment is about keying, and a 28 × 28 block-permuted key would print as a bundle
# that passes well under 0.1 % of the light ([tutorial 3](../03_designing_the_faceplate/)).
# Its configuration is `keynet/data/verify_camera.toml`.
#
# Here is what one test digit of each class looks like on its way through the camera.

# %%
config = load_config(default_camera_path())
camera = Camera(config)
exposure_s = camera.exposure_for(None)  # the exposure for a white scene
split = load_split()
first = [int(np.flatnonzero(split.y_test == k)[0]) for k in range(10)]  # one per class
digits, labels_true = split.x_test[first], split.y_test[first]

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
# [command-line reference](../../reference/cli/)). It trains an ordinary LeNet on 4000
# digits (or loads cached weights), keys it with the camera, photographs the test digits
# with all sensor noise, and compares five ways of classifying them.

# %%
result = verify(epochs=EPOCHS, n_digits=DIGITS, quiet=True)
print(format_table(result))

# %% [markdown]
# ## 3. What each row means
#
# **(a) plain net, clean digits.** The ordinary LeNet on the digits themselves: the
# reference, how good the network is at all.
#
# **(b) plain net, conventional camera.** The same network on frames of a camera with the
# same lens, fibers, relay and sensor but a coherent bundle, after the same public readout
# and a flat-field correction. The gap to (a) is what the optics and the sensor noise cost,
# without any key.
#
# **(c) key-net, encrypted frames.** The claim of this whole project: the key-net on the
# encrypted frames, using only the public readout. It should match (b).
#
# **(d) plain net, encrypted frames.** What someone without the key gets when they feed the
# encrypted frames, corrected like (b), to an ordinary network: chance level (about 10 %).
#
# **(e) key-net of another key.** A key-net made for another device of the same design, on
# your frames: also chance. A key-net belongs to its device.
#
# Below the accuracies:
#
# * **noise-free check** — on noise-free frames the key-net's outputs equal the plain
#   network's to rounding error (about 1e-15 in float64). The keying is exact; every
#   difference between (b) and (c) is sensor noise.
# * **parameters / non-zeros** — the key-net's first layer is a sparse matrix; because each
#   digit pixel reaches one fiber, it keeps the non-zeros of the plain network's first stage
#   (convolution plus pooling written as a matrix). The Key-Nets paper reports 3.0× for its
#   LeNet with a permutation key; a camera with crosstalk between fibers would make the first
#   layer denser.
# * **memory and inference time** — what deployment costs. The sparse first layer can even be
#   faster than the plain convolution.
#
# Now the accuracies as a chart:

# %%
labels = [
    "(a) plain,\nclean digits",
    "(b) plain,\nconventional camera",
    "(c) key-net,\nencrypted frames",
    "(d) plain,\nencrypted frames",
    "(e) other key-net,\nencrypted frames",
]
keys = [
    "accuracy_clean",
    "accuracy_conventional",
    "accuracy_keynet",
    "accuracy_plain_on_encrypted",
    "accuracy_other_key",
]
values = [100 * result[k] for k in keys]
fig, ax = plt.subplots(figsize=(9, 4), layout="constrained")
bars = ax.bar(labels, values, color=["0.6", "0.6", "C2", "C3", "C3"])
ax.bar_label(bars, fmt="%.1f %%")
ax.axhline(10, color="0.3", ls=":", label="chance (10 %)")
ax.set(ylabel="accuracy [%]", ylim=(0, 105), title=f"{result['n_test_digits']} test digits")
ax.legend(loc="upper right")
fig.savefig(OUT / "05_accuracy.png", dpi=100)
plt.show()

# %% [markdown]
# ## 4. Using a key-net in your own code
#
# `verify` is built from four public pieces you can use directly:
#
# * `keynet.train.train_or_load` — the plain LeNet (cached);
# * `keynet.readout.PublicReadout` — frames → per-fiber readouts, from the public geometry;
# * `keynet.readout.input_operator` — the camera's secret map from digits to readouts
#   (`A_s`, `b_s`); treat it like the key itself;
# * `keynet.keying.key_network` — folds `A_s⁺` into the first layer and adds random
#   positive monomial keys to the hidden layers.

# %%
from keynet.keying import key_network
from keynet.readout import PublicReadout, input_operator
from keynet.train import TrainConfig, train_or_load

tcfg = TrainConfig() if EPOCHS is None else TrainConfig(epochs=EPOCHS)
net, _ = train_or_load(split, tcfg, quiet=True)  # the weights verify() just cached
readout = PublicReadout(camera, exposure_s=exposure_s)
secret_map = input_operator(camera, exposure_s=exposure_s, readout=readout)
keynet = key_network(net, secret_map, rng=np.random.default_rng(1)).astype(np.float32)
del secret_map  # the key-net is all you deploy

frames = np.stack(rows["encrypted frame"])
print("key-net says:", keynet.predict(readout(frames).astype(np.float32)))
print("truth:       ", labels_true)

# %% [markdown]
# ## 5. What a public key-net gives away
#
# A key-net file holds no key array, but it is not a safe. Compare the non-zero pattern of
# the plain network's first stage with the key-net's first layer: the key-net's columns are
# the plain columns **permuted by the routing** (and scaled by the fiber transmissions).
# Because a convolution's pattern tells which inputs are neighbours, and its weights are
# shared across the image, the routing can be recovered from the public key-net alone. Keep
# key-nets as confidential as the key file — see the
# [threat model](../../explanation/threat-model/).

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
print("figures written to", OUT.resolve())
print(sorted(p.name for p in OUT.glob("05_*.png")))
