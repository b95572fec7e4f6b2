"""Key-nets on an encrypted dataset: a Zarr store written by ``python -m sim.dataset``.

A store holds raw frames (DN), the exposure of each frame and, for labelled inputs, labels.
:func:`store_readouts` turns frames into per-site readouts with the camera's public parts
only (sensor calibration, coupling geometry; :class:`~keynet.readout.PublicReadout`), all at
one reference exposure: the photons of a frame are proportional to its exposure time (the
dark signal is removed with the offset), so a frame taken at ``t`` is scaled by ``t_ref / t``.

:func:`verify_store` keys the plain LeNet with the store's camera -- which needs the device
key -- and measures the key-net's accuracy on the store's frames against its labels. For a
store of the bundled 5000 digits (``keynet/data/mnist5000.npz``, in file order) it uses the
fixed split of :func:`keynet.dataset.load_split`: the 1000 test digits are evaluated, and
with ``train_on_store`` the LeNet is trained on the owner's least-squares decoding
``A_s⁺ (r − b_s)`` of the 4000 encrypted training frames instead of the clean digits (a
key-net of that LeNet computes exactly that network on the encrypted readouts).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from .dataset import Split, held_out_mask, load_digits, load_split

__all__ = ["reference_exposure", "store_camera", "store_readouts", "verify_store"]


def _open(store: str | os.PathLike[str]):
    try:
        import zarr  # noqa: F401
    except ImportError:  # pragma: no cover - the dataset extra is missing
        raise ValueError(
            'reading a dataset store needs Zarr: pip install "keycam[dataset]"'
        ) from None
    from sim.dataset import open_dataset

    return open_dataset(store)


def store_camera(group, key):
    """The camera a store was encrypted with, rebuilt from its public configuration and ``key``.

    Raises
    ------
    ValueError
        ``key`` is not the store's key (the message gives both fingerprints).
    """
    from sim.camera import Camera
    from sim.config import CameraConfig

    want = group.attrs["key_fingerprint"]
    if key.fingerprint != want:
        raise ValueError(f"--key: key {key.fingerprint} is not the store's key (key {want})")
    return Camera(CameraConfig.model_validate(group.attrs["camera"]), key)


def reference_exposure(group, camera) -> float:
    """The store's fixed exposure, or the camera's auto exposure of a white scene, seconds."""
    fixed = group.attrs["exposure"]["exposure_s"]
    return float(fixed) if fixed is not None else camera.exposure_for(None)


def store_readouts(
    group, camera, readout, *, exposure_s: float, indices: np.ndarray | None = None
) -> np.ndarray:
    """Per-site readouts ``(N, n_sites)`` of the store's frames, at exposure ``exposure_s``.

    Parameters
    ----------
    group : zarr.Group
        An open store (:func:`sim.dataset.open_dataset`).
    camera : sim.camera.Camera
        The store's camera; only its sensor calibration is used here.
    readout : PublicReadout
        The public per-site readout of that camera.
    exposure_s : float
        Reference exposure, seconds: readouts are photons per ``exposure_s``.
    indices : (M,) int, optional
        Frames to read (sorted); default all. Read chunk by chunk.
    """
    frames_arr, t_all = group["frames"], np.asarray(group["exposure_s"][:])
    n = frames_arr.shape[0]
    idx = np.arange(n) if indices is None else np.asarray(indices)
    chunk = frames_arr.chunks[0]
    out = np.empty((len(idx), readout.n_sites))
    pos = 0
    for start in range(0, n, chunk):
        sel = idx[(idx >= start) & (idx < start + chunk)]
        if sel.size == 0:
            continue
        block = np.asarray(frames_arr[start : start + chunk])[sel - start].astype(np.float64)
        block = block.reshape(len(sel), -1)
        ts = t_all[sel]
        for t in np.unique(ts):
            rows = np.flatnonzero(ts == t)
            gain, offset = camera.sensor.affine(float(t))
            photons = (block[rows] - offset.ravel()) / gain.ravel()
            out[pos + rows] = readout.solve(photons) * (exposure_s / float(t))
        pos += sel.size
    return out


def _bundled_digits(labels: np.ndarray) -> bool:
    return len(labels) == 5000 and np.array_equal(labels, load_digits()[1])


def verify_store(
    store: str | os.PathLike[str],
    key_path: str | os.PathLike[str],
    *,
    seed: int = 0,
    epochs: int | None = None,
    train_on_store: bool = False,
    quiet: bool = False,
) -> dict[str, Any]:
    """Accuracy of a key-net on the frames of an encrypted store (see the module docstring).

    Returns
    -------
    dict
        ``accuracy_keynet_store``, ``n_eval_frames``, ``eval_subset`` ("test" or "all"),
        ``trained_on`` ("clean digits" or "store"), ``key_fingerprint``, ``exposure_s``,
        ``store``, ``train`` (epochs, seed, cache use).
    """
    from threadpoolctl import threadpool_limits

    from optics.faceplate import Key

    from .keying import key_network
    from .readout import PublicReadout, input_operator
    from .train import TrainConfig, train, train_or_load

    group = _open(store)
    if "labels" not in group:
        raise ValueError(f"{store}: the store has no labels to verify against")
    labels = np.asarray(group["labels"][:])
    camera = store_camera(group, Key.load(key_path))
    bundled = _bundled_digits(labels)
    if train_on_store and not bundled:
        raise ValueError(
            f"{store}: training on the store needs the bundled digits (keynet/data/"
            "mnist5000.npz, in file order), whose fixed split keeps test digits apart"
        )
    test = held_out_mask(labels) if bundled else np.ones(len(labels), dtype=bool)
    tcfg = TrainConfig(seed=seed) if epochs is None else TrainConfig(epochs=epochs, seed=seed)
    t_ref = reference_exposure(group, camera)
    with threadpool_limits(limits=1, user_api="blas"):
        readout = PublicReadout(camera, exposure_s=t_ref)
        op = input_operator(camera, exposure_s=t_ref, readout=readout)
        if train_on_store:
            r_train = store_readouts(
                group, camera, readout, exposure_s=t_ref, indices=np.flatnonzero(~test)
            )
            x_train = op.pinv_apply(r_train).astype(np.float32)
            clean = load_split()
            split = Split(x_train, labels[~test], clean.x_test, clean.y_test)
            net, _ = train(split, tcfg, quiet=quiet)
            cached = False
        else:
            net, cached = train_or_load(load_split(), tcfg, quiet=quiet)
        keynet = key_network(net, op, rng=np.random.default_rng(seed)).astype(np.float32)
        r = store_readouts(group, camera, readout, exposure_s=t_ref, indices=np.flatnonzero(test))
        acc = float(np.mean(keynet.predict(r.astype(np.float32)) == labels[test]))
    return {
        "accuracy_keynet_store": acc,
        "n_eval_frames": int(test.sum()),
        "n_store_frames": len(labels),
        "eval_subset": "test" if bundled else "all",
        "trained_on": "store" if train_on_store else "clean digits",
        "key_fingerprint": camera.key.fingerprint,
        "exposure_s": t_ref,
        "store": str(Path(store)),
        "train": {"epochs": tcfg.epochs, "seed": tcfg.seed, "weights_from_cache": cached},
    }
