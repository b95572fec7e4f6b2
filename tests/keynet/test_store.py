"""Key-nets on a dataset store made by ``sim.dataset``: readouts, accuracy, the CLI."""

from __future__ import annotations

import numpy as np
import pytest
from keycam_testing import assert_refused, run_module

pytest.importorskip("dask")
pytest.importorskip("zarr")

from keynet.dataset import held_out_mask, load_digits, load_split
from keynet.readout import PublicReadout
from keynet.store import store_camera, store_readouts
from keynet.verify import default_camera_path
from optics.faceplate import Key, keygen
from sim.camera import Camera
from sim.config import load_config
from sim.dataset import encrypt_dataset, open_dataset
from sim.dataset_inputs import open_source


@pytest.fixture(scope="module")
def digits_store(tmp_path_factory):
    """40 test digits through the verification camera, once with 'white', once auto exposure."""
    tmp = tmp_path_factory.mktemp("store")
    split = load_split()
    x = (split.x_test[::25] * 255).round().astype(np.uint8)
    np.savez(tmp / "d.npz", images=x, labels=split.y_test[::25])
    config = load_config(default_camera_path())
    key = keygen(config.faceplate)
    key.save(tmp / "k.key")
    camera = Camera(config, key)
    for name, exposure in (("white", "white"), ("auto", "auto")):
        encrypt_dataset(
            open_source(tmp / "d.npz"), tmp / f"{name}.zarr", camera, chunk_frames=16, seed=2,
            exposure=exposure,
        )  # fmt: skip
    return tmp, camera


def test_test_mask_is_the_fixed_split():
    _, labels = load_digits()
    m = held_out_mask(labels)
    assert m.sum() == 1000
    assert np.array_equal(load_split().y_test, labels[m])


def test_store_readouts_are_the_public_readout_at_one_exposure(digits_store):
    tmp, camera = digits_store
    g = open_dataset(tmp / "white.zarr")
    assert store_camera(g, camera.key).key.fingerprint == camera.key.fingerprint
    t = camera.exposure_for(None)
    assert np.all(g["exposure_s"][:] == t)
    readout = PublicReadout(camera, exposure_s=t)
    want = readout(g["frames"][:])
    np.testing.assert_allclose(store_readouts(g, camera, readout, exposure_s=t), want, rtol=1e-12)
    sel = np.array([3, 17, 18, 39])
    got = store_readouts(g, camera, readout, exposure_s=t, indices=sel)
    np.testing.assert_allclose(got, want[sel], rtol=1e-12)
    # auto exposure: every frame its own exposure, readouts rescaled to the reference one
    ga = open_dataset(tmp / "auto.zarr")
    ts = ga["exposure_s"][:]
    assert len(np.unique(ts)) > 10
    got = store_readouts(ga, camera, readout, exposure_s=t)
    for i in (0, 21):
        own = PublicReadout(camera, exposure_s=float(ts[i]))(ga["frames"][i : i + 1])[0]
        np.testing.assert_allclose(got[i], own * t / ts[i], rtol=1e-9)


def test_wrong_key_is_refused(digits_store):
    tmp, camera = digits_store
    other = keygen(camera.config.with_key_seed(99).faceplate)
    with pytest.raises(ValueError, match="not the store's key"):
        store_camera(open_dataset(tmp / "white.zarr"), other)


def test_cli_verifies_a_store_and_refuses_bad_input(digits_store, tmp_path):
    tmp, camera = digits_store
    env = {"KEYCAM_CACHE": str(tmp_path / "cache")}
    store, key = tmp / "white.zarr", tmp / "k.key"
    proc = run_module(
        "keynet.verify", "--store", store, "--key", key, "--epochs", "1", "--quiet", "--json",
        tmp_path / "r.json", cwd=tmp_path, env=env, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "key-net on 40 frames of the store" in proc.stdout
    import json

    r = json.loads((tmp_path / "r.json").read_text())
    assert r["eval_subset"] == "all" and r["n_eval_frames"] == 40
    assert r["accuracy_keynet_store"] >= 0.7  # one epoch of training, 40 digits
    Key.save(keygen(camera.config.with_key_seed(5).faceplate), tmp_path / "o.key")
    cases = [
        (["--store", store], "--key"),
        (["--store", store, "--key", tmp_path / "o.key"], "not the store's key"),
        (["--store", store, "--key", key, "--train-on-store"], "bundled digits"),
        (["--store", tmp_path, "--key", key], "not a keycam dataset store"),
        (["--store", store, "--key", key, "--digits", "5"], "--digits"),
    ]
    for args, needle in cases:
        proc = run_module("keynet.verify", *args, cwd=tmp_path, env=env, timeout=600)
        assert_refused(proc, needle)
