"""What a run leaves behind, each case a real subprocess: all of its files, or none.

Classes: the sidecar and the key (3), name collisions (4), overwrites (5), outputs that are
inputs (6), the weight cache (9), partial output (10), Ctrl-C (11).
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
from keycam_hostile import run_limited, scene, small_key, snapshot
from keycam_testing import REPO, assert_refused, run_module
from PIL import Image

from optics.faceplate import Key, keygen


def refused(proc, *needles: str) -> str:
    line = assert_refused(proc, *needles)
    assert proc.stdout == ""
    return line


def capture(*args, cwd, **kw):
    return run_module("sim.capture", *args, cwd=cwd, **kw)


# -- 3. a sidecar is safe to share --------------------------------------------------------------


def test_sidecar_and_recorded_seed_do_not_rebuild_the_key(tmp_path, small_toml, scene_png):
    for d in ("a", "b"):
        res = capture(scene_png, "--config", small_toml, "--seed", 5, "--out", d, cwd=tmp_path)
        assert res.returncode == 0, res.stderr
    key = Key.load(tmp_path / "a" / "device.key")
    assert key.fingerprint != Key.load(tmp_path / "b" / "device.key").fingerprint
    text = (tmp_path / "a" / "scene.json").read_text()
    side = json.loads(text)
    assert "seed" not in side["camera"]["faceplate"] and side["seeds"]["seed"] == 5
    from sim.config import CameraConfig

    fp = CameraConfig.model_validate(side["camera"]).faceplate
    old_derivation = int(
        np.random.SeedSequence([5, 0x6B6579]).generate_state(1, np.uint64)[0] >> 1
    )  # how keys used to come from --seed
    for s in (5, int(side["seeds"]["entropy"]), old_derivation):
        assert keygen(fp.model_copy(update={"seed": s})).fingerprint != key.fingerprint
    assert str(key.routing[:8].tolist())[1:-1] not in text


# -- 4. output names never collide ------------------------------------------------------------


def test_scenes_with_colliding_stems_get_distinct_outputs(tmp_path, small_toml):
    (tmp_path / "a").mkdir()
    for name, shape in (("ok.png", (30, 40)), ("ok.jpg", (50, 40)), ("ok-2.png", (40, 70))):
        scene(tmp_path / "a" / name, shape)
    args = ["a/ok.png", "a/ok.jpg", "a/ok-2.png", "--config", small_toml, "--out", "o"]
    key = small_key(tmp_path / "dev.key")
    for extra in ([], ["--force"]):
        res = capture(*args, "--key", key, "--quiet", *extra, cwd=tmp_path)
        assert res.returncode == 0, res.stderr
        sources = {
            p.stem: (json.loads(p.read_text())["scene"]["source"])
            for p in (tmp_path / "o").glob("*.json")
        }
        assert sources == {"ok": "a/ok.png", "ok-3": "a/ok.jpg", "ok-2": "a/ok-2.png"}
    assert len(list((tmp_path / "o").iterdir())) == 9


# -- 5. nothing is replaced without --force ------------------------------------------------------


def test_emva_plot_and_verify_json_are_not_replaced_without_force(tmp_path):
    for name in ("plot.png", "v.json"):
        (tmp_path / name).write_bytes(b"precious")
    before = snapshot(tmp_path)
    env = {"MPLBACKEND": "Agg", "KEYCAM_CACHE": str(tmp_path / "cache")}
    refused(run_module("optics.emva", "--plot", "plot.png", cwd=tmp_path, env=env), "plot.png",
            "--force")  # fmt: skip
    refused(run_module("keynet.verify", "--json", "v.json", cwd=tmp_path, env=env), "v.json",
            "--force")  # fmt: skip
    assert snapshot(tmp_path) == before
    res = run_module("optics.emva", "--plot", "plot.png", "--force", "--steps", 10, "--roi", 16,
                     cwd=tmp_path, env=env)  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert Image.open(tmp_path / "plot.png").format == "PNG"


# -- 6. an output is never an input --------------------------------------------------------------


def test_outputs_that_are_inputs_are_refused_even_with_force(tmp_path, small_toml, scene_png):
    key = small_key(tmp_path / "k.key")
    (tmp_path / "out").mkdir()
    os.link(key, tmp_path / "out" / "k_cores.stl")  # the same file under an output's name
    (tmp_path / "o").mkdir()
    os.symlink(tmp_path / "k.key", tmp_path / "o" / "scene.json")
    cases = [
        ("fabrication.export", ["k.key", "--report", "k.key", "--force"], "k.key"),
        ("fabrication.export", ["k.key", "--write-transmission", "./k.key", "--force"], "k.key"),
        ("fabrication.export", ["k.key", "-o", "out", "--force"], "k_cores.stl"),
        (
            "sim.capture",
            [scene_png, "--config", small_toml, "--key", "o/scene.json", "--out", "o", "--force"],
            "scene.json",
        ),
        (
            "sim.capture",
            [scene_png, "--config", small_toml, "--key", "k.key", "--out", "o", "--force"],
            "scene.json",
        ),
        # a scene that another scene's output would replace (scene.png -> o/scene_raw.png)
        (
            "sim.capture",
            [
                scene_png,
                "o/scene_raw.png",
                "--config",
                small_toml,
                "--key",
                "k.key",
                "--out",
                "o",
                "--force",
            ],
            "scene_raw.png",
        ),
    ]
    (tmp_path / "o" / "scene_raw.png").write_bytes(scene_png.read_bytes())
    before = snapshot(tmp_path)
    for module, args, needle in cases:
        line = refused(run_module(module, *args, cwd=tmp_path), needle)
        assert "input" in line, line
    assert snapshot(tmp_path) == before
    Key.load(key)


# -- 9. a damaged weight cache is replaced, not fatal ----------------------------------------------


def test_truncated_weight_cache_is_retrained_and_replaced(tmp_path):
    from keynet.train import TrainConfig, cache_key

    cache = tmp_path / "cache"
    cache.mkdir()
    stale = cache / f"lenet-{cache_key(TrainConfig(epochs=1, seed=0))}.npz"
    stale.write_bytes(b"PK\x03\x04" + bytes(100))  # a zip cut short
    env = {"KEYCAM_CACHE": str(cache)}
    args = ["--epochs", 1, "--digits", 10, "--quiet"]
    for _ in range(2):
        res = run_module("keynet.verify", *args, cwd=tmp_path, env=env, timeout=600)
        assert res.returncode == 0, res.stderr
    with np.load(stale, allow_pickle=False) as f:
        assert "format" in f.files


# -- 10. partial output ----------------------------------------------------------------------------


def test_a_full_disk_leaves_nothing_and_names_the_real_file(tmp_path, small_toml, scene_png):
    scene(tmp_path / "second.png")
    before = snapshot(tmp_path)
    res = run_limited(
        "sim.capture", scene_png, "second.png", "--config", small_toml, "--npy", "--frames", 100,
        "--out", "o", cwd=tmp_path, file_size=150_000,
    )  # fmt: skip
    line = refused(res, "o/scene_raw.npy")
    assert ".part" not in line
    assert snapshot(tmp_path) == before  # no key, no first scene, no folder


def test_ctrl_c_in_the_second_scene_leaves_nothing(tmp_path, small_toml, scene_png):
    key = small_key(tmp_path / "k.key")
    scene(tmp_path / "second.png")
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "old.txt").write_text("kept")
    before = snapshot(tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "sim.capture", str(scene_png), "second.png", "--config",
         str(small_toml), "--key", str(key), "--frames", "600", "--out", "o"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    deadline = time.time() + 120
    while not list((tmp_path / "o").glob(".second_raw_000.png.*")) and time.time() < deadline:
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert err.strip().splitlines() == ["error: interrupted; no partial output was left"]
    assert out == ""
    assert snapshot(tmp_path) == before  # the first scene's files are gone too


def test_two_runs_into_one_folder_leave_one_complete_set(tmp_path, small_toml, scene_png):
    scene(tmp_path / "second.png")
    cmd = [sys.executable, "-m", "sim.capture", str(scene_png), "second.png", "--config",
           str(small_toml), "--frames", "40", "--out", "o", "--quiet"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [
        subprocess.Popen(
            cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )
        for _ in range(2)
    ]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2], results
    err = next(e for code, e in results if code == 2)
    assert len(err.strip().splitlines()) == 1 and "already exists" in err, err
    key = Key.load(tmp_path / "o" / "device.key")
    sides = [json.loads((tmp_path / "o" / f"{s}.json").read_text()) for s in ("scene", "second")]
    assert {s["key_fingerprint"] for s in sides} == {key.fingerprint}
    assert len({s["seeds"]["entropy"] for s in sides}) == 1  # both scenes from the same run
    assert not [p for p in (tmp_path / "o").iterdir() if p.name.startswith(".")]


def test_export_removes_the_folders_it_created_when_it_fails(tmp_path):
    key = small_key(tmp_path / "k.key")
    before = snapshot(tmp_path)
    res = run_limited(
        "fabrication.export", key, "-o", "new/deep/out", "--report", "new/r/report.json",
        cwd=tmp_path, file_size=20_000,
    )  # fmt: skip
    line = refused(res, "new/deep/out/k_")
    assert ".part" not in line
    assert snapshot(tmp_path) == before


# -- 11. Ctrl-C, also during start-up --------------------------------------------------------------


def _started(pid: int) -> bool:
    """Whether keycam's runner has installed its handlers (it catches SIGTERM; Python doesn't)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return True
    caught = int(next(ln.split()[1] for ln in status.splitlines() if ln.startswith("SigCgt")), 16)
    return bool(caught & (1 << (signal.SIGTERM - 1)))


@pytest.mark.parametrize(
    "module, args",
    [
        ("fabrication.export", ["k.key", "-o", "out"]),
        ("keynet.verify", ["--digits", "5"]),
        ("optics.emva", ["--roi", "16", "--steps", "10"]),
        ("sim.capture", ["--out", "o", "--config", "small.toml"]),
    ],
)
def test_ctrl_c_during_start_up_imports_is_one_line(tmp_path, small_toml, module, args):
    small_key(tmp_path / "k.key")
    before = snapshot(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(REPO), "KEYCAM_CACHE": str(tmp_path / "cache")}
    proc = subprocess.Popen([sys.executable, "-m", module, *args], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    deadline = time.time() + 30
    while not _started(proc.pid) and time.time() < deadline:
        time.sleep(0.001)
    proc.send_signal(signal.SIGINT)  # while the command imports numpy, scipy, pydantic, ...
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert err.strip().splitlines() == ["error: interrupted; no partial output was left"]
    assert snapshot(tmp_path) == before


def test_sigterm_is_handled_like_ctrl_c(tmp_path, small_toml, scene_png):
    proc = subprocess.Popen(
        [sys.executable, "-m", "sim.capture", str(scene_png), "--config", str(small_toml),
         "--frames", "3000", "--out", "o"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    # Signal once the run is writing its (staged) outputs.
    deadline = time.time() + 60
    while (
        not list((tmp_path / "o").glob(".scene_raw_000.png.*"))
        and proc.poll() is None
        and time.time() < deadline
    ):
        time.sleep(0.01)
    assert proc.poll() is None, "the run ended before it could be interrupted"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert err.strip().splitlines() == ["error: interrupted; no partial output was left"]
    assert not (tmp_path / "o").exists()


def test_a_swallowed_interrupt_still_fails_the_run(tmp_path, capsys):
    from keycam.cli import run
    from keycam.outputs import OutputSet

    def main(argv):
        with OutputSet(overwrite=False) as out:
            out.plan(tmp_path / "x.txt")
            try:
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.5)
            except KeyboardInterrupt:
                pass  # a library swallowed it (say, inside a __del__)
            out.write_bytes(tmp_path / "x.txt", b"data")
            out.commit()
        return 0

    assert run(main, []) == 130
    assert capsys.readouterr().err == "error: interrupted; no partial output was left\n"
    assert list(tmp_path.iterdir()) == []
