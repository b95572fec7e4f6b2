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
# # Encrypt a whole dataset
#
# To train or test a key-net you need many pictures taken through **one** camera: the same
# device key, with real sensor noise on every frame. `python -m sim.dataset` photographs
# every image of a folder (or of an `.npy`, `.npz` or Zarr array) through the camera and
# writes the raw frames into one chunked [Zarr](https://zarr.dev) store. The work runs on
# [Dask](https://www.dask.org): on the cores of your laptop by default, or on a
# `dask.distributed` cluster with `--scheduler`.
#
# It needs the `dataset` extra: `pip install -e ".[dataset]"` (Dask, distributed, Zarr).
#
# This page encrypts handwritten digits through the key-net verification camera, looks at
# the store, interrupts and resumes a run, uses a cluster, and measures a key-net's accuracy
# on the stored frames. `KEYCAM_TUTORIAL_OUT` sets the working folder (default
# `keycam_out/tutorials/`); `KEYCAM_TUTORIAL_QUICK=1` uses 200 digits and one training epoch
# instead of the 1000 test digits and the standard training run.

# %%
import json
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from PIL import Image

from keynet.dataset import load_split
from keynet.verify import default_camera_path
from optics.faceplate import keygen
from sim.config import load_config
from sim.io import linear_to_srgb

QUICK = os.environ.get("KEYCAM_TUTORIAL_QUICK") == "1"
OUT = Path(os.environ.get("KEYCAM_TUTORIAL_OUT", "keycam_out/tutorials"))
OUT.mkdir(parents=True, exist_ok=True)
WORK = OUT / "dataset_howto"  # everything this page writes, besides its figure
shutil.rmtree(WORK, ignore_errors=True)
WORK.mkdir()
N_DIGITS = 200 if QUICK else 1000
EPOCHS = ["--epochs", "1"] if QUICK else []


def keycam(*args: str) -> subprocess.CompletedProcess:
    """Run `python -m <args>` in WORK, as you would in a terminal; show what it prints."""
    proc = subprocess.run([sys.executable, "-m", *args], cwd=WORK, capture_output=True, text=True)
    print(f"$ python -m {' '.join(args)}\n{proc.stdout}{proc.stderr}exit status {proc.returncode}")
    return proc


# %% [markdown]
# ## 1. A folder of images and a device key
#
# A folder whose images sit in one sub-folder per class is a labelled dataset: the
# sub-folder names become the labels (sorted: `0` … `9` here). We write test digits of the
# bundled MNIST subset as PNG files. Any image `python -m sim.capture` reads will do (PNG,
# JPEG, TIFF, in any size: each is cropped and resampled onto the camera's scene grid).
#
# The dataset is captured through a device key. A real device has one already
# (`python -m sim.capture` creates `keycam_out/device.key` on its first run); here we draw a
# new secret key for the verification camera. Keep it like a password: the store never
# contains it, only its fingerprint.

# %%
split = load_split()
take = np.sort(np.argsort(np.arange(1000) % 100, kind="stable")[:N_DIGITS])  # 10 classes evenly
for i in take:
    folder = WORK / "digits" / str(split.y_test[i])
    folder.mkdir(parents=True, exist_ok=True)
    srgb = linear_to_srgb(split.x_test[i])  # digits are linear; PNG files hold sRGB values
    Image.fromarray(np.round(255 * srgb).astype(np.uint8)).save(folder / f"{i:04d}.png")

config = load_config(default_camera_path())
key = keygen(config.with_key_seed(secrets.randbits(63)).faceplate)
key.save(WORK / "device.key")
print(f"{len(take)} digits in digits/; key fingerprint {key.fingerprint}")

# %% [markdown]
# ## 2. Encrypt
#
# `--exposure white` gives every frame the same exposure (the camera's auto exposure for a
# white scene), which is what a key-net expects; the default, the configuration's `auto`,
# picks one per scene and records it. `--chunk` sets how many frames form one task and one
# stored chunk; `--workers` how many local threads do the work (`--processes` for processes).

# %%
shutil.copy(default_camera_path(), WORK / "camera.toml")  # the verification camera
cam_toml = "camera.toml"
done = keycam(
    "sim.dataset", "digits", "--key", "device.key", "--config", cam_toml,
    "--exposure", "white", "--chunk", "32", "--workers", "2", "--out", "digits.zarr",
)  # fmt: skip
assert done.returncode == 0

# %% [markdown]
# ## 3. What is in the store
#
# The store is a Zarr group: `frames` (N, H, W) uint16 in DN, `exposure_s`, the per-frame
# noise `seeds`, `labels`, the file each frame came from (`sources`) and one `chunk_done`
# flag per chunk. Its attributes hold the camera's public configuration (without the key's
# seed), the key fingerprint and the rule that ties frame *i* to its seed: frame *i* is
# `Camera.capture(scene_i, rng=numpy.random.default_rng(seeds[i]))`, so any frame can be
# re-made on its own, and the store is the same for any number of workers and any chunking.
# The workers capture a whole chunk with `Camera.capture_batch(scenes, rngs=[...])`, which
# gives exactly these frames (bit for bit) with less work per frame; the check below
# re-makes two stored frames on their own.

# %%
import zarr

store = zarr.open_group(str(WORK / "digits.zarr"), mode="r")
print({name: (a.shape, str(a.dtype)) for name, a in store.arrays()})
attrs = store.attrs.asdict()
print(json.dumps({k: attrs[k] for k in ("complete", "key_fingerprint", "exposure", "labels")}))
print("classes of the first frames:", store["labels"][:12], "from", store["sources"][0])

from sim.camera import Camera
from sim.dataset_inputs import open_source

camera = Camera(load_config(WORK / cam_toml), key)
digits = open_source(WORK / "digits")  # the scenes as the workers read them
for i in (0, 37):
    scene = digits.read(i, i + 1)[0]
    again = camera.capture(
        scene,
        rng=np.random.default_rng(int(store["seeds"][i])),
        exposure_s=float(store["exposure_s"][i]),
    )
    assert np.array_equal(again, store["frames"][i])

fig, axes = plt.subplots(2, 5, figsize=(10, 5.0))
for col, d in enumerate(range(0, 10, 2)):
    i = int(np.flatnonzero(store["labels"][:] == d)[0])
    scene = Image.open(WORK / "digits" / str(store["sources"][i]))
    axes[0, col].imshow(scene, cmap="gray")
    axes[0, col].set_title(f"scene: {store['sources'][i]}", fontsize=8)
    axes[1, col].imshow(store["frames"][i], cmap="gray")
    axes[1, col].set_title(f"frame {i} (DN)", fontsize=8)
for ax in axes.ravel():
    ax.set_axis_off()
fig.suptitle(f"digits and their encrypted frames (key {key.fingerprint})")
fig.tight_layout()
fig.savefig(OUT / "howto_dataset_frames.png", dpi=100)
plt.show()

# %% [markdown]
# ## 4. Existing stores, interruptions, `--resume`
#
# An existing store is never replaced without `--force`. A run that is interrupted (Ctrl-C,
# a killed job, a lost machine) leaves every chunk it finished marked done and the store
# marked incomplete; run the same command with `--resume` and only the missing chunks are
# computed. Here we clear the marks of two chunks to play an interrupted run.

# %%
again = keycam(
    "sim.dataset", "digits", "--key", "device.key", "--config", cam_toml,
    "--exposure", "white", "--out", "digits.zarr",
)  # fmt: skip
assert again.returncode == 2

rw = zarr.open_group(str(WORK / "digits.zarr"), mode="r+")
before = rw["frames"][:]
rw["chunk_done"][1:3] = 0
rw.attrs["complete"] = False
resumed = keycam(
    "sim.dataset", "digits", "--key", "device.key", "--config", cam_toml,
    "--exposure", "white", "--out", "digits.zarr", "--resume",
)  # fmt: skip
assert resumed.returncode == 0 and "64 computed now" in resumed.stdout
assert np.array_equal(zarr.open_group(str(WORK / "digits.zarr"), mode="r")["frames"][:], before)

# %% [markdown]
# ## 5. On a cluster
#
# With `--scheduler ADDRESS` the same command runs on a `dask.distributed` cluster. Each
# worker receives the camera configuration and the key in memory and builds the camera once;
# every worker must see the input folder and the store at the same paths (a shared file
# system). Here a two-worker cluster inside this Python process, listening on this machine
# only, stands in for a real one; on a real one you would start `dask scheduler` and
# `dask worker` processes yourself. While a run's camera is installed, a worker process
# lets glibc keep the capture's buffers for reuse (a nanny starts workers with thresholds
# that would hand them back at every frame); the end of the run restores its settings.

# %%
from distributed import LocalCluster

with LocalCluster(
    n_workers=2, threads_per_worker=1, processes=False, protocol="tcp://", host="127.0.0.1",
    dashboard_address=None,
) as cluster:  # fmt: skip
    on_cluster = keycam(
        "sim.dataset", "digits", "--key", "device.key", "--config", cam_toml,
        "--exposure", "white", "--out", "cluster.zarr", "--seed", "1234",
        "--scheduler", cluster.scheduler_address,
    )  # fmt: skip
assert on_cluster.returncode == 0

# %% [markdown]
# ## 6. A key-net on the stored frames
#
# `python -m keynet.verify --store` keys the LeNet with the store's camera (for which it
# needs the key), turns the frames into public per-site readouts and compares the key-net's
# answers with the labels. On the full set of 1000 test digits the key-net scores within a
# fraction of a percent of the in-memory check of
# [tutorial 5](../tutorials/05_does_inference_work.py): the frames are the same kind of
# frames, only stored.

# %%
verified = keycam(
    "keynet.verify", "--store", "digits.zarr", "--key", "device.key", "--quiet", *EPOCHS
)
assert verified.returncode == 0
