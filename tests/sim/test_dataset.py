"""``sim.dataset``: whole datasets through one key on Dask, into a Zarr store.

The reference for every frame is the plain single-process loop
``Camera.capture(scene_i, rng=default_rng(seeds[i]))``; the store must hold exactly those
frames whatever the scheduler, the number of workers or the chunking, and after a killed run
is resumed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from keycam_testing import REPO, assert_refused, run_module, small_camera_toml
from PIL import Image

pytest.importorskip("dask")
pytest.importorskip("distributed")
zarr = pytest.importorskip("zarr")

from optics.faceplate import keygen  # noqa: E402
from sim.camera import Camera  # noqa: E402
from sim.config import load_config  # noqa: E402
from sim.dataset import encrypt_dataset, open_dataset  # noqa: E402
from sim.dataset_inputs import open_source  # noqa: E402
from sim.dataset_worker import frame_seeds  # noqa: E402
from sim.io import read_image  # noqa: E402

SMALL_TOML = small_camera_toml(faceplate="crosstalk_in = 0.02")


@pytest.fixture
def setup(tmp_path):
    """A small camera config (TOML), its key file (seed 11), and a labelled image folder."""
    cfg_path = tmp_path / "cam.toml"
    cfg_path.write_text(SMALL_TOML)
    config = load_config(cfg_path)
    key = keygen(config.with_key_seed(11).faceplate)
    key_path = tmp_path / "dev.key"
    key.save(key_path)
    rng = np.random.default_rng(5)
    folder = tmp_path / "images"
    for cls, n in (("cat", 7), ("dog", 6)):
        (folder / cls).mkdir(parents=True)
        for i in range(n):
            a = (rng.random((20 + i, 24)) * 255).astype(np.uint8)
            mode = "L" if i % 2 else "RGB"
            img = Image.fromarray(a).convert(mode)
            img.save(folder / cls / f"{i:02d}.{'png' if i % 3 else 'jpg'}")
    camera = Camera(config, key)
    return {"cfg": cfg_path, "key": key_path, "camera": camera, "folder": folder, "config": config}


def reference(camera: Camera, scenes, root: int) -> np.ndarray:
    seeds = frame_seeds(root, 0, len(scenes))
    return np.stack(
        [
            camera.capture(s, rng=np.random.default_rng(int(q)))
            for s, q in zip(scenes, seeds, strict=True)
        ]
    )


def folder_scenes(source):
    return [read_image(Path(source.path) / f).data for f in source.files]


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
    }


def test_frame_seeds_are_the_children_of_the_root():
    kids = np.random.SeedSequence(1234).spawn(9)
    want = [k.generate_state(1, np.uint64)[0] for k in kids]
    assert frame_seeds(1234, 0, 9).tolist() == want
    assert frame_seeds(1234, 4, 9).tolist() == want[4:]


def test_local_cluster_writes_the_single_process_frames(setup, tmp_path):
    from distributed import LocalCluster

    camera = setup["camera"]
    source = open_source(setup["folder"])
    want = reference(camera, folder_scenes(source), root=99)
    out = tmp_path / "cluster.zarr"
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
        dashboard_address=None,
    ) as cluster:  # fmt: skip
        r = encrypt_dataset(
            source, out, camera, chunk_frames=4, seed=99, scheduler=cluster.scheduler_address
        )
    assert r["computed"] == 13 and r["chunks_computed"] == 4
    g = open_dataset(out)
    np.testing.assert_array_equal(g["frames"][:], want)
    assert g["frames"].chunks == (4, 32, 32)
    assert g["labels"][:].tolist() == [0] * 7 + [1] * 6
    assert g.attrs["labels"] == {"classes": ["cat", "dog"]}
    assert g["sources"][0] == "cat/00.jpg"
    assert g.attrs["key_fingerprint"] == camera.key.fingerprint
    assert "seed" not in g.attrs["camera"]["faceplate"]  # the key seed is never stored
    assert g.attrs["noise"]["root_seed"] == "99"
    exposures = g["exposure_s"][:]
    assert exposures.tolist() == [camera.exposure_for(s) for s in folder_scenes(source)]


@pytest.mark.parametrize(
    ("workers", "chunk", "processes"),
    [(1, 5, False), (2, 5, False), (3, 5, False), (3, 2, False), (2, 3, True)],
)
def test_same_frames_for_any_workers_and_chunking(setup, tmp_path, workers, chunk, processes):
    camera = setup["camera"]
    source = open_source(setup["folder"])
    out = tmp_path / "ds.zarr"
    encrypt_dataset(
        source, out, camera, chunk_frames=chunk, seed=3, workers=workers, processes=processes
    )
    np.testing.assert_array_equal(
        open_dataset(out)["frames"][:], reference(camera, folder_scenes(source), root=3)
    )


def test_array_inputs_are_linear_unless_srgb(setup, tmp_path):
    camera = setup["camera"]
    imgs = (np.random.default_rng(2).random((6, 16, 16)) * 255).astype(np.uint8)
    np.save(tmp_path / "x.npy", imgs)
    np.savez(tmp_path / "x.npz", images=imgs, labels=np.arange(6))
    lin = [imgs[i] / 255.0 for i in range(6)]
    for path, enc in (("x.npy", "linear"), ("x.npz", "linear"), ("x.npz", "srgb")):
        src = open_source(tmp_path / path, encoding=enc)
        out = tmp_path / f"{path}-{enc}.zarr"
        encrypt_dataset(src, out, camera, chunk_frames=4, seed=1, exposure=0.01)
        from sim.io import srgb_to_linear

        scenes = lin if enc == "linear" else [srgb_to_linear(s) for s in lin]
        want = np.stack(
            [
                camera.capture(s, rng=np.random.default_rng(int(q)), exposure_s=0.01)
                for s, q in zip(scenes, frame_seeds(1, 0, 6), strict=True)
            ]
        )
        g = open_dataset(out)
        np.testing.assert_array_equal(g["frames"][:], want)
        assert ("labels" in g) == (path == "x.npz")
        assert g.attrs["exposure"] == {"mode": "fixed", "exposure_s": 0.01}


def test_cli_encrypts_a_folder_and_refuses_to_replace_it(setup, tmp_path):
    args = [setup["folder"], "--key", setup["key"], "--config", setup["cfg"], "--chunk", "4"]
    res = run_module("sim.dataset", *args, "--seed", "21", "--out", "ds.zarr", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "13 frames of 32x32 px" in res.stdout and setup["camera"].key.fingerprint in res.stdout
    g = open_dataset(tmp_path / "ds.zarr")
    want = reference(setup["camera"], folder_scenes(open_source(setup["folder"])), root=21)
    np.testing.assert_array_equal(g["frames"][:], want)
    # nothing of the key: no key arrays, no key seed (the sensor's pattern seed is public)
    assert sorted(g.keys()) == ["chunk_done", "exposure_s", "frames", "labels", "seeds", "sources"]
    assert "seed" not in g.attrs["camera"]["faceplate"]
    text = (tmp_path / "ds.zarr" / "zarr.json").read_text()
    assert "routing" not in text and "transmission_rms" in text
    before = snapshot(tmp_path / "ds.zarr")
    res = run_module("sim.dataset", *args, "--out", "ds.zarr", cwd=tmp_path)
    assert_refused(res, "ds.zarr already exists", "--resume", "--force")
    assert snapshot(tmp_path / "ds.zarr") == before
    # --resume of a complete store computes nothing and changes nothing
    res = run_module("sim.dataset", *args, "--out", "ds.zarr", "--resume", "--quiet", cwd=tmp_path)
    assert res.returncode == 0 and res.stdout == "" and res.stderr == ""
    assert snapshot(tmp_path / "ds.zarr") == before


def _refused(tmp_path, *args, needles=()):
    res = run_module("sim.dataset", *args, cwd=tmp_path)
    line = assert_refused(res, *needles)
    assert res.stdout == ""
    return line


def test_bad_inputs_are_refused_with_one_line_and_nothing_written(setup, tmp_path):
    base = ["--key", setup["key"], "--config", setup["cfg"], "--out", "ds.zarr"]
    folder = setup["folder"]
    # an unreadable image (caught before anything is written)
    (folder / "dog" / "broken.png").write_bytes(b"not an image at all")
    _refused(tmp_path, folder, *base, needles=("broken.png", "not a readable image"))
    assert not (tmp_path / "ds.zarr").exists()
    # a truncated image whose header reads fine: caught while encrypting, the store removed
    good = (folder / "cat" / "01.png").read_bytes()
    (folder / "dog" / "broken.png").write_bytes(good[: len(good) // 2])
    _refused(tmp_path, folder, *base, needles=("broken.png",))
    assert not (tmp_path / "ds.zarr").exists()
    # labels that do not match the images
    np.save(tmp_path / "x.npy", np.zeros((5, 8, 8), np.uint8))
    np.save(tmp_path / "y.npy", np.arange(4))
    _refused(tmp_path, "x.npy", *base, "--labels", "y.npy", needles=("4 labels for 5 images",))
    np.savez(tmp_path / "z.npz", images=np.zeros((5, 8, 8)), labels=np.arange(6))
    _refused(tmp_path, "z.npz", *base, needles=("6 labels for 5 images",))
    # float samples outside [0, 1], found while encrypting: the scene is named
    np.save(tmp_path / "f.npy", np.full((3, 8, 8), 2.0))
    _refused(tmp_path, "f.npy", *base, needles=("scene 0", "[0, 1]"))
    # a --seed the key was drawn from would be stored in the clear
    _refused(tmp_path, "x.npy", *base, "--seed", "11", needles=("--seed",))
    # --force never deletes something that is not a dataset store
    (tmp_path / "ds.zarr").mkdir()
    (tmp_path / "ds.zarr" / "keep.txt").write_text("mine")
    _refused(tmp_path, "x.npy", *base, "--force", needles=("not a keycam dataset store",))
    assert (tmp_path / "ds.zarr" / "keep.txt").read_text() == "mine"
    assert not any(p.suffix == ".zarr" for p in tmp_path.iterdir() if p.name != "ds.zarr")


def test_resume_refuses_another_key(setup, tmp_path):
    source = open_source(setup["folder"])
    out = tmp_path / "ds.zarr"
    encrypt_dataset(source, out, setup["camera"], chunk_frames=5, seed=4)
    other = keygen(setup["config"].with_key_seed(12).faceplate)
    other.save(tmp_path / "other.key")
    before = snapshot(out)
    _refused(
        tmp_path, setup["folder"], "--key", "other.key", "--config", setup["cfg"], "--out",
        "ds.zarr", "--resume", needles=("--resume", "another key"),
    )  # fmt: skip
    assert snapshot(out) == before


def test_killed_run_resumes_to_the_same_store(tmp_path):
    """SIGKILL a real run part-way, then --resume: only missing chunks are computed."""
    key = keygen(Camera.default().config.with_key_seed(5).faceplate)
    key.save(tmp_path / "dev.key")
    scenes = np.random.default_rng(0).random((160, 16, 16))
    np.save(tmp_path / "x.npy", scenes)
    args = ["x.npy", "--key", "dev.key", "--out", "ds.zarr", "--chunk", "2", "--seed", "8"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "sim.dataset", *args, "--workers", "1"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    marks = tmp_path / "ds.zarr" / "chunk_done" / "c"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if marks.is_dir() and len(list(marks.iterdir())) >= 4:
            break
        time.sleep(0.005)
    assert proc.poll() is None, "the run ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    proc.stderr.close()
    g = zarr.open_group(str(tmp_path / "ds.zarr"), mode="r")
    done = g["chunk_done"][:]
    assert not g.attrs["complete"] and 4 <= done.sum() < 80
    with pytest.raises(ValueError, match="incomplete"):
        open_dataset(tmp_path / "ds.zarr")
    # every chunk marked done holds its frames already
    camera = Camera.default(key)
    want = reference(camera, list(scenes), root=8)
    kept = {}
    for c in np.flatnonzero(done):
        np.testing.assert_array_equal(g["frames"][2 * c : 2 * c + 2], want[2 * c : 2 * c + 2])
        f = tmp_path / "ds.zarr" / "frames" / "c" / str(c) / "0" / "0"
        kept[c] = f.stat().st_mtime_ns
    res = run_module("sim.dataset", *args, "--resume", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert f"{160 - 2 * int(done.sum())} computed now" in res.stdout
    g = open_dataset(tmp_path / "ds.zarr")
    np.testing.assert_array_equal(g["frames"][:], want)
    for c, mtime in kept.items():  # complete chunks were not recomputed
        f = tmp_path / "ds.zarr" / "frames" / "c" / str(c) / "0" / "0"
        assert f.stat().st_mtime_ns == mtime
    assert json.loads((tmp_path / "ds.zarr" / "zarr.json").read_text())["attributes"]["complete"]


def test_workers_take_the_transmission_the_camera_already_has(monkeypatch) -> None:
    """Workers never route the key again (nothing key-derived is cached on their disks):
    they build the camera from its key, whose transmission is already the printed part's,
    and get the same camera."""
    import sim.printed
    from sim import dataset_worker as dw
    from sim.camera import Camera
    from sim.dataset import worker_config

    camera = Camera.default()
    assert camera.transmission_info["source"] == "printed"
    config = worker_config(camera)
    assert config.transmission.source == "assumed"

    def no_routing(*args, **kwargs):
        raise AssertionError("a worker routed the key")

    monkeypatch.setattr(sim.printed, "printed_for_key", no_routing)
    dw.install_camera("t-workers", config, camera.key)
    try:
        built = dw.camera_for("t-workers")
        assert built.key == camera.key
        scene = np.linspace(0.0, 1.0, 64 * 64).reshape(64, 64)
        a = camera.capture(scene, rng=np.random.default_rng(5), exposure_s=0.01)
        b = built.capture(scene, rng=np.random.default_rng(5), exposure_s=0.01)
        np.testing.assert_array_equal(a, b)
    finally:
        dw.remove_camera("t-workers")


def test_resume_accepts_a_store_made_before_a_config_field_existed(setup, tmp_path):
    """A store whose camera record lacks fields added later (an older keycam wrote it) is the
    same camera when those fields hold the value it implicitly had; a field that really
    differs is still refused."""
    import zarr

    from sim.config import ADDED_LATER

    out = tmp_path / "ds.zarr"
    encrypt_dataset(open_source(setup["folder"]), out, setup["camera"], chunk_frames=5, seed=4)
    group = zarr.open_group(str(out), mode="r+")
    camera = json.loads(json.dumps(group.attrs["camera"]))
    for table, fields in ADDED_LATER.items():
        for name, implicit in fields.items():
            assert camera[table][name] == implicit  # the small camera holds the old value
            del camera[table][name]
    group.attrs["camera"] = camera
    args = [setup["folder"], "--key", setup["key"], "--config", setup["cfg"], "--out", "ds.zarr"]
    res = run_module("sim.dataset", *args, "--resume", "--quiet", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    camera["lens"]["f_number"] = 4.0
    group.attrs["camera"] = camera
    before = snapshot(out)
    _refused(tmp_path, *args, "--resume", needles=("--resume", "another camera"))
    assert snapshot(out) == before
