"""``python -m sim.capture`` as a user runs it: a subprocess, files on disk, exit codes."""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from keycam_testing import assert_refused, run_module, small_camera_toml
from PIL import Image

from optics.faceplate import FaceplateConfig, Key, keygen

SMALL_TOML = small_camera_toml(faceplate="crosstalk_in = 0.02")


def run(args, cwd, timeout=120):
    return run_module("sim.capture", *args, cwd=cwd, env={"PYTHONHASHSEED": "0"}, timeout=timeout)


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
    }


def assert_one_error_line(res, *needles):
    assert_refused(res, *needles)
    assert res.stdout == ""


@pytest.fixture
def small_toml(tmp_path) -> Path:
    p = tmp_path / "small.toml"
    p.write_text(SMALL_TOML)
    return p


@pytest.fixture
def scene_png(tmp_path) -> Path:
    y, x = np.mgrid[0:40, 0:50]
    img = (127 + 120 * np.sin(x / 7.0) * np.cos(y / 5.0)).astype(np.uint8)
    p = tmp_path / "scene.png"
    Image.fromarray(img).save(p)
    return p


def test_default_run_in_an_empty_folder(tmp_path):
    t0 = time.perf_counter()
    res = run([], cwd=tmp_path)
    elapsed = time.perf_counter() - t0
    assert res.returncode == 0, res.stderr
    out = tmp_path / "keycam_out"
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "device.key",
        "grace_hopper.json",
        "grace_hopper_preview.png",
        "grace_hopper_raw.png",
    ]
    assert (out / "device.key").stat().st_mode & 0o777 == 0o600
    key = Key.load(out / "device.key")
    assert key.config.rows == 16 and key.config.block_size == 4
    frame = np.asarray(Image.open(out / "grace_hopper_raw.png"))
    assert frame.dtype == np.uint16 and frame.shape == (64, 64) and frame.max() <= 4095
    side = json.loads((out / "grace_hopper.json").read_text())
    assert side["key_fingerprint"] == key.fingerprint
    assert "seed" not in side["camera"]["faceplate"]  # the key seed is the key: never logged
    assert (
        "grace_hopper.jpg" in side["scene"]["source"] and "public domain" in side["scene"]["source"]
    )
    assert side["exposure"]["mode"] == "auto" and side["exposure"]["exposure_s"] > 0
    # the frame comes from the part as printed, and the sidecar says so (aggregates only)
    tr = side["transmission"]
    assert tr["source"] == "printed" and tr["process"] == "resin"
    assert tr["attenuation_db_per_cm"] == 0.5 and tr["bundle_length_mm"] > 0
    assert tr["transmission_mean"] == pytest.approx(float(np.mean(key.transmission)))
    launch = tr.pop("launch")  # the public lens: f-number and pupil distance as numbers
    assert launch["na"] == pytest.approx(math.sin(math.atan(1 / (2 * 2.8))))
    assert launch["pupil_distance_mm"] == pytest.approx(80.0)  # the lens's exit pupil
    assert all(isinstance(v, str | int | float) for v in tr.values())
    assert side["statistics"]["max_dn"] == int(frame.max())
    assert side["statistics"]["mean_dn"] == pytest.approx(frame.mean())
    lines = res.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("grace_hopper:")
    assert "device.key" in res.stderr and key.fingerprint in res.stderr
    assert elapsed < 30  # generous here; bench/bench_capture.py measures it properly

    # A second run without --key must not replace the key, and writes nothing.
    before = snapshot(tmp_path)
    again = run([], cwd=tmp_path)
    assert_one_error_line(again, "device.key", "--key")
    assert snapshot(tmp_path) == before

    # Reusing the key: same device, same fingerprint.
    reuse = run(["--key", out / "device.key", "--out", "second", "--quiet"], cwd=tmp_path)
    assert reuse.returncode == 0, reuse.stderr
    assert reuse.stdout == "" and reuse.stderr == ""
    side2 = json.loads((tmp_path / "second" / "grace_hopper.json").read_text())
    assert side2["key_fingerprint"] == key.fingerprint
    assert not (tmp_path / "second" / "device.key").exists()

    # Existing outputs are not replaced without --force (and nothing is written) ...
    before = snapshot(tmp_path)
    clash = run(["--key", out / "device.key", "--out", "second"], cwd=tmp_path)
    assert_one_error_line(clash, "grace_hopper_raw.png", "--force")
    assert snapshot(tmp_path) == before
    # ... and are with it; the key is untouched.
    forced = run(["--key", out / "device.key", "--out", "second", "--force"], cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr
    assert Key.load(out / "device.key").fingerprint == key.fingerprint


def test_same_seed_gives_byte_identical_files(tmp_path, small_toml, scene_png):
    # --seed seeds only the noise: with the same key, the same seed gives the same files
    keygen(FaceplateConfig(rows=8, cols=8, block_size=4, seed=5)).save(tmp_path / "dev.key")
    common = [scene_png, "--config", small_toml, "--seed", 7, "--npy", "--frames", 2, "--quiet"]
    for d in ("a", "b", "c"):
        extra = ["--seed", 8] if d == "c" else []
        res = run([*common, "--key", "dev.key", "--out", d, *extra], cwd=tmp_path)
        assert res.returncode == 0, res.stderr
    a, b, c = (tmp_path / d for d in "abc")
    names = sorted(p.name for p in a.iterdir())
    assert names == sorted(p.name for p in b.iterdir())
    assert "scene_raw_000.png" in names and "scene_raw_001.png" in names
    for n in names:
        assert (a / n).read_bytes() == (b / n).read_bytes(), n
    assert (a / "scene_raw_000.png").read_bytes() != (c / "scene_raw_000.png").read_bytes()
    stack = np.load(a / "scene_raw.npy")
    assert stack.shape == (2, 32, 32) and stack.dtype == np.uint16
    assert np.array_equal(stack[1], np.asarray(Image.open(a / "scene_raw_001.png")))
    assert not np.array_equal(stack[0], stack[1])  # temporal noise differs between frames


def test_a_new_key_never_comes_from_the_seed(tmp_path, small_toml, scene_png):
    """The sidecar records --seed; a key made in the same run must not be derivable from it."""
    for d in ("a", "b"):
        res = run([scene_png, "--config", small_toml, "--seed", 7, "--out", d, "--quiet"], tmp_path)
        assert res.returncode == 0, res.stderr
    ka, kb = (Key.load(tmp_path / d / "device.key") for d in "ab")
    assert ka.fingerprint != kb.fingerprint
    side = json.loads((tmp_path / "a" / "scene.json").read_text())
    assert side["seeds"]["seed"] == 7
    # what a sidecar holds (public config + any seed it records) does not rebuild the key
    from sim.config import CameraConfig

    cfg = CameraConfig.model_validate(side["camera"])
    for s in {side["seeds"]["seed"], int(side["seeds"]["entropy"])}:
        assert keygen(cfg.faceplate.model_copy(update={"seed": s})).fingerprint != ka.fingerprint


def test_fixed_exposure_rgba_note_and_duplicate_names(tmp_path, small_toml):
    rgba = np.zeros((20, 30, 4), dtype=np.uint8)
    rgba[..., 1] = 200
    rgba[..., 3] = 255
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "pic.png")
    (tmp_path / "sub").mkdir()
    Image.fromarray(rgba[..., :3]).save(tmp_path / "sub" / "pic.png")
    res = run(
        ["pic.png", "sub/pic.png", "--config", small_toml, "--exposure", "5ms", "--out", "o"],
        cwd=tmp_path,
    )
    assert res.returncode == 0, res.stderr
    assert "alpha channel dropped" in res.stderr
    lines = res.stdout.strip().splitlines()
    assert [ln.split(":")[0] for ln in lines] == ["pic", "pic-2"]
    side = json.loads((tmp_path / "o" / "pic-2.json").read_text())
    assert side["exposure"] == {"exposure_s": 0.005, "mode": "fixed"}


def test_print_schema(tmp_path):
    res = run(["--print-schema"], cwd=tmp_path)
    assert res.returncode == 0
    schema = json.loads(res.stdout)
    assert {"scene", "lens", "faceplate", "coupling", "sensor", "exposure"} <= set(
        schema["properties"]
    )
    assert not list(tmp_path.iterdir())


def _bad_cases(tmp: Path, small_toml: Path, scene_png: Path):
    (tmp / "empty.png").write_bytes(b"")
    (tmp / "notes.png").write_text("not an image at all\n" * 20)
    data = scene_png.read_bytes()
    (tmp / "cut.png").write_bytes(data[: len(data) // 2])
    other = keygen(FaceplateConfig(rows=16, cols=16, block_size=4))
    other.save(tmp / "other.key")
    keygen(FaceplateConfig(rows=8, cols=8, block_size=4)).save(tmp / "good.key")
    raw = (tmp / "good.key").read_bytes()
    (tmp / "damaged.key").write_bytes(raw[:-10] + bytes(10))
    (tmp / "badvalue.toml").write_text(SMALL_TOML.replace("rows = 8", "rows = -8"))
    (tmp / "unknown.toml").write_text(SMALL_TOML + "\n[extra]\nfoo = 1\n")
    (tmp / "syntax.toml").write_text("this is = = not toml")
    c = ["--config", small_toml]
    return {
        "missing file": (["nope.png", *c], "nope.png"),
        "not an image": (["notes.png", *c], "not a readable image"),
        "truncated": (["cut.png", *c], "truncated"),
        "zero-size": (["empty.png", *c], "empty"),
        "too large": ([scene_png, *c, "--max-pixels", 100], "exceeds the limit of 100"),
        "other lattice": ([scene_png, *c, "--key", "other.key"], "another lattice"),
        "damaged key": ([scene_png, *c, "--key", "damaged.key"], "damaged.key"),
        "missing key": ([scene_png, *c, "--key", "nokey.key"], "nokey.key"),
        "bad value": ([scene_png, "--config", "badvalue.toml"], "faceplate.rows"),
        "unknown key": ([scene_png, "--config", "unknown.toml"], "extra"),
        "bad toml": ([scene_png, "--config", "syntax.toml"], "not valid TOML"),
        "bad frames": ([scene_png, *c, "--frames", "0"], "--frames"),
        "bad exposure": ([scene_png, *c, "--exposure", "-3"], "--exposure"),
        "bad seed": ([scene_png, *c, "--seed", "x"], "--seed"),
        "one bad of two": ([scene_png, "cut.png", *c], "cut.png"),
    }


# The cases the capture command promises to handle, each run as a real subprocess.
CASES = [
    "missing file",
    "not an image",
    "truncated",
    "zero-size",
    "too large",
    "one bad of two",
    "other lattice",
    "damaged key",
    "bad value",
]
# Argument and config-file mistakes: the same code path, checked in-process (cheaper).
IN_PROCESS = ["missing key", "unknown key", "bad toml", "bad frames", "bad exposure", "bad seed"]


@pytest.mark.parametrize("case", CASES)
def test_bad_input_one_error_line_exit_2_nothing_written(tmp_path, small_toml, scene_png, case):
    args, needle = _bad_cases(tmp_path, small_toml, scene_png)[case]
    before = snapshot(tmp_path)
    res = run([*args, "--out", "out"], cwd=tmp_path)
    assert_one_error_line(res, needle)
    assert not (tmp_path / "out").exists()
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("case", IN_PROCESS)
def test_bad_arguments_in_process(tmp_path, small_toml, scene_png, case, monkeypatch, capsys):
    from keycam.cli import run as cli_run
    from sim.capture import main

    args, needle = _bad_cases(tmp_path, small_toml, scene_png)[case]
    monkeypatch.chdir(tmp_path)
    before = snapshot(tmp_path)
    try:
        status = cli_run(main, [str(a) for a in [*args, "--out", "out"]])
    except SystemExit as exc:  # argparse-level errors exit directly
        status = exc.code
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2
    assert len(err) == 1 and err[0].startswith("error: ") and needle in err[0], err
    assert snapshot(tmp_path) == before


def test_ctrl_c_leaves_no_partial_files(tmp_path, small_toml, scene_png):
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "sim.capture", str(scene_png), "--config", str(small_toml)),
            *("--frames", "3000", "--npy", "--out", "o", "--seed", "1"),
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 60
    # the run stages its files under hidden temporary names until all of them are written
    while not list((tmp_path / "o").glob(".scene_raw_000.png.*")) and time.time() < deadline:
        if proc.poll() is not None:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    # 3000 frames take seconds to write, so the signal lands mid-run.
    assert proc.returncode == 130, err
    assert err.strip().splitlines() == ["error: interrupted; no partial output was left"]
    # nothing at all: no frames, no new key, no temporary files, not even the folder it made
    assert not (tmp_path / "o").exists()


def test_bayer_colour_camera_from_the_command_line(tmp_path, small_toml):
    cfg = small_toml.read_text().replace(
        "wavelength_nm = 525.0", "wavelength_nm = [610.0, 540.0, 465.0]"
    )
    (tmp_path / "rgb.toml").write_text('colour = "bayer_rggb"\n' + cfg)
    rgb = np.zeros((30, 40, 3), dtype=np.uint8)
    rgb[:, :20, 0] = 255  # red left half, blue right half
    rgb[:, 20:, 2] = 255
    Image.fromarray(rgb).save(tmp_path / "rb.png")
    res = run(["rb.png", "--config", "rgb.toml", "--out", "o", "--quiet"], cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    frame = np.asarray(Image.open(tmp_path / "o" / "rb_raw.png"))
    assert frame.shape == (32, 32) and frame.dtype == np.uint16  # raw mosaic
    assert Image.open(tmp_path / "o" / "rb_preview.png").mode == "RGB"
    side = json.loads((tmp_path / "o" / "rb.json").read_text())
    assert side["camera"]["colour"] == "bayer_rggb"
