"""Calibration: Gray-code patterns -> simulated frames -> measured key, in Python and as a CLI."""

from __future__ import annotations

import json
import math
import shutil
import stat
from pathlib import Path

import numpy as np
import pytest
from keycam_testing import assert_refused, run_module, small_camera_toml
from PIL import Image

from optics.faceplate import Key, keygen
from sim.calibration import (
    code_bits,
    frames_needed,
    gray_decode,
    gray_encode,
    make_patterns,
    read_frames,
    simulate_frames,
    solve_key,
)
from sim.camera import Camera
from sim.config import CameraConfig

BASE = {
    "exposure": "auto",
    "scene": {"shape_px": [32, 32]},
    "lens": {"focal_length_mm": 80.0, "f_number": 2.8, "wavelength_nm": 525.0},
    "faceplate": {
        "rows": 8,
        "cols": 8,
        "block_size": 4,
        "permute_blocks": True,
        "transmission_mean": 0.05,
        "transmission_rms": 0.05,
        "bias_photons_per_s": 3e8,
        "crosstalk_in": 0.02,
        "crosstalk_out": 0.02,
        "dead_fraction": 0.0,
        "seed": 3,
    },
    # the device transmits what its key says (the tests set dim fibers on purpose); the
    # printed transmission has its own tests
    "transmission": {"source": "assumed"},
    "coupling": {
        "magnification": 0.021682,
        "blur_um": 2.0,
        "relay_f_number": 1.4,
        "relay_transmission": 0.9,
    },
    "sensor": {"preset": "imx174", "width_px": 32, "height_px": 32},
}

SMALL_TOML = small_camera_toml(
    faceplate="""
bias_photons_per_s = 3.0e8
crosstalk_in = 0.02
crosstalk_out = 0.02
dead_fraction = 0.05
""",
    coupling="relay_transmission = 0.9",
)


def config(*, sensor_px: int = 32, scene: tuple[int, int] = (32, 32), coupling=None, **fp):
    d = {**BASE, "faceplate": {**BASE["faceplate"], **fp}}
    d["sensor"] = {**BASE["sensor"], "width_px": sensor_px, "height_px": sensor_px}
    d["scene"] = {"shape_px": list(scene)}
    d["coupling"] = {**BASE["coupling"], **(coupling or {})}
    return CameraConfig.model_validate(d)


def capture_and_solve(cfg, key, *, complements=True, seed=0, device_cfg=None, exposure_scale=1):
    nominal = Camera(cfg)
    ps = make_patterns(nominal, complements=complements)
    device = Camera(device_cfg or cfg, key)
    t = device.exposure_for(ps.images[0]) * exposure_scale
    frames, t = simulate_frames(device, ps, rng=np.random.default_rng(seed), exposure_s=t)
    return ps, frames, solve_key(nominal, ps, frames, exposure_s=t)


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    a = np.ravel(a) - np.mean(a)
    b = np.ravel(b) - np.mean(b)
    return float(a @ b / math.sqrt((a @ a) * (b @ b)))


# ------------------------------------------------------------------ codes and patterns
def test_gray_code_is_the_binary_reflected_code():
    i = np.arange(256)
    g = gray_encode(i)
    np.testing.assert_array_equal(g[:8], [0, 1, 3, 2, 6, 7, 5, 4])  # Gray (1953)
    steps = g[1:] ^ g[:-1]
    assert np.all((steps & (steps - 1)) == 0) and np.all(steps > 0)  # one bit per step
    np.testing.assert_array_equal(gray_decode(g), i)
    assert [code_bits(n) for n in (1, 2, 3, 4, 5, 64, 65, 128)] == [0, 1, 2, 2, 3, 6, 7, 7]


def test_default_camera_needs_ten_frames():
    """2 ceil(log2 N) + 2 with N = 16 fibers per side; complements add one per Gray frame."""
    ps = make_patterns(Camera(CameraConfig.default()), complements=False)
    assert (ps.n_frames, ps.bits_x, ps.bits_y) == (10, 4, 4)
    assert ps.n_frames == 2 * math.ceil(math.log2(16)) + 2
    assert frames_needed(16, 16, complements=True) == 18
    assert frames_needed(64, 64, complements=False) == 14
    assert frames_needed(64, 64, complements=True) == 26
    assert frames_needed(12, 10, complements=False) == 4 + 4 + 2


def test_patterns_light_exactly_the_coded_fibers():
    cam = Camera(config(block_size=8))
    ps = make_patterns(cam, complements=True)
    roles = [f.role for f in ps.frames]
    assert roles[:2] == ["white", "black"] and roles.count("gray") == 12
    # 4 x 4 scene pixels per fiber, row-major fibers: each block shows its fiber's bit
    blocks = ps.images.reshape(ps.n_frames, 8, 4, 8, 4)
    assert np.all(blocks == blocks[:, :, :1, :, :1])
    row, col = np.divmod(np.arange(64), 8)
    for j, fr in enumerate(ps.frames):
        shown = blocks[j, :, 0, :, 0].ravel()
        if fr.role == "white":
            want = np.ones(64, bool)
        elif fr.role == "black":
            want = np.zeros(64, bool)
        else:
            idx = col if fr.axis == "x" else row
            want = (((idx ^ (idx >> 1)) >> fr.bit) & 1).astype(bool) ^ fr.inverted
        np.testing.assert_array_equal(shown > 0, want, err_msg=fr.name)
        np.testing.assert_allclose(shown[want], fr.level)
    levels = [f.level for f in ps.frames if f.role == "gray"]
    assert levels[0] == 1.0 and np.all(np.diff(levels) < 0) and levels[-1] > 0.55


# ------------------------------------------------------------------ round trips
KINDS = {
    "square block-local": {"block_size": 4, "permute_blocks": False},
    "square block-permuted": {"block_size": 4, "permute_blocks": True},
    "square global": {"block_size": 8, "permute_blocks": False},
    "hexagonal global": {"lattice": "hexagonal", "block_size": 8, "permute_blocks": False},
    "hexagonal block-permuted 12x10": {
        "lattice": "hexagonal",
        "rows": 12,
        "cols": 10,
        "block_size": 4,
        "permute_blocks": True,
    },
}


@pytest.mark.parametrize("complements", [False, True], ids=["minimal", "complements"])
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_round_trip_recovers_every_kind_of_key(kind, complements):
    fp = KINDS[kind]
    big = fp.get("rows", 8) > 8
    cfg = config(sensor_px=48 if big else 32, scene=(48, 40) if big else (32, 32), **fp)
    key = keygen(cfg.faceplate.model_copy(update={"seed": 7}))
    assert not np.array_equal(key.routing, np.arange(key.n_fibers))
    _, _, cal = capture_and_solve(cfg, key, complements=complements)
    np.testing.assert_array_equal(cal.key.routing, key.routing)
    assert not cal.key.dead.any()
    rel = cal.key.transmission / key.transmission - 1
    assert np.sqrt(np.mean(rel**2)) < 0.02
    np.testing.assert_allclose(cal.key.bias.mean(), key.bias.mean(), rtol=0.1)
    assert cal.key.config.block_size == key.config.block_size  # recipe kept: routing fits it
    fibers = cal.report["fibers"]
    assert fibers["decoded"] == key.n_fibers and fibers["ambiguous"] == 0
    assert cal.report["decode_margin_sigma"]["min"] > 20


def test_dead_and_dim_fibers_are_found():
    cfg = config(dead_fraction=0.05, block_size=8, permute_blocks=False)
    true = keygen(cfg.faceplate.model_copy(update={"seed": 11}))
    trans = true.transmission.copy()
    dim = int(np.flatnonzero(~true.dead)[5])
    trans[dim] *= 0.3
    key = true.with_transmission(trans)
    _, _, cal = capture_and_solve(cfg, key, complements=False)
    np.testing.assert_array_equal(cal.key.dead, key.dead)
    live = ~key.dead
    np.testing.assert_array_equal(cal.key.routing[live], key.routing[live])
    assert sorted(cal.key.routing) == list(range(64))  # still a permutation
    assert cal.report["fibers"]["dead"] == 3 and cal.report["fibers"]["dim"] == 1
    assert np.isnan(cal.margin_sigma[key.dead]).all()
    np.testing.assert_allclose(cal.key.transmission[dim], trans[dim], rtol=0.02)


def test_measured_key_unscrambles_like_the_true_key():
    cfg = config(dead_fraction=0.05)
    key = keygen(cfg.faceplate.model_copy(update={"seed": 5}))
    _, _, cal = capture_and_solve(cfg, key)
    y, x = np.mgrid[0:48, 0:48] / 47.0
    scene = 0.1 + 0.8 * (0.5 + 0.5 * np.sin(5.0 * x + 1.0) * np.cos(3.7 * y))
    device = Camera(cfg, key)
    measured = Camera(cfg, cal.key)
    truth = device.sampling_operator @ (device.lens_operator @ device.prepare_scene(scene).ravel())
    t = device.exposure_for(scene)
    frame = device.capture(scene, rng=np.random.default_rng(1), exposure_s=t)
    c_true = _corr(device.unscramble(frame, exposure_s=t), truth)
    c_meas = _corr(measured.unscramble(frame, exposure_s=t), truth)
    assert c_true > 0.9
    assert abs(c_true - c_meas) < 0.01


def test_misregistered_face_is_registered_before_decoding():
    """The relay puts the face 2 px right, 2 px up and turned by 1 degree."""
    cfg = config(sensor_px=40)
    p = cfg.sensor.pixel_pitch_um
    dev_cfg = config(sensor_px=40, coupling={"offset_um": (2 * p, -2 * p), "rotation_deg": 1.0})
    key = keygen(cfg.faceplate.model_copy(update={"seed": 2}))
    _, _, cal = capture_and_solve(cfg, key, device_cfg=dev_cfg, complements=False)
    np.testing.assert_array_equal(cal.key.routing, key.routing)
    reg = cal.registration
    np.testing.assert_allclose(reg.shift_px, (2.0, -2.0), atol=0.05)
    assert abs(reg.rotation_change_deg - 1.0) < 0.05
    assert abs(reg.scale_change_percent) < 0.3


def test_a_few_saturated_pixels_do_not_hurt():
    cfg = config(block_size=8)
    key = keygen(cfg.faceplate.model_copy(update={"seed": 4}))
    _, frames, cal = capture_and_solve(cfg, key, complements=False, exposure_scale=1.4)
    assert (frames[0] >= 4095).sum() >= 3  # the white frame clips some pixels
    np.testing.assert_array_equal(cal.key.routing, key.routing)
    assert cal.report["frames"]["clipped_pixels_white"] >= 3


@pytest.mark.parametrize(
    ("swap", "needle"),
    [((4, 5), "out of order"), ((2, 7), "out of order"), ((0, 1), "not brighter")],
)
def test_frames_out_of_order_are_refused(swap, needle):
    cfg = config(block_size=8)
    key = keygen(cfg.faceplate.model_copy(update={"seed": 9}))
    ps, frames, _ = capture_and_solve(cfg, key, complements=False)
    frames[list(swap)] = frames[list(swap[::-1])]
    with pytest.raises(ValueError, match=needle):
        solve_key(Camera(cfg), ps, frames, exposure_s=0.01)


def test_frames_are_read_from_png_tiff_and_npy_stacks(tmp_path):
    """One frame per pattern in any of the formats a camera writes; stacks are averaged."""
    cfg = config(block_size=8)
    key = keygen(cfg.faceplate.model_copy(update={"seed": 8}))
    nominal = Camera(cfg)
    ps = make_patterns(nominal, complements=False)
    device = Camera(cfg, key)
    t = device.exposure_for(ps.images[0])
    rng = np.random.default_rng(2)
    stacks = [device.capture(img, rng=rng, frames=2, exposure_s=t) for img in ps.images]
    for j, (fr, stack) in enumerate(zip(ps.frames, stacks, strict=True)):
        if j % 3 == 0:
            Image.fromarray(stack[0]).save(tmp_path / f"{fr.name}.png")
        elif j % 3 == 1:
            pages = [Image.fromarray(s) for s in stack]
            pages[0].save(tmp_path / f"{fr.name}.tif", save_all=True, append_images=pages[1:])
        else:
            np.save(tmp_path / f"{fr.name}.npy", stack)
    frames = read_frames(tmp_path, ps)
    assert frames.shape == (8, 32, 32)
    np.testing.assert_array_equal(frames[0], stacks[0][0])
    np.testing.assert_allclose(frames[1], stacks[1].mean(axis=0))  # TIFF pages averaged
    np.testing.assert_allclose(frames[2], stacks[2].mean(axis=0))  # .npy stack averaged
    cal = solve_key(nominal, ps, frames, exposure_s=t)
    np.testing.assert_array_equal(cal.key.routing, key.routing)


def _numbers(obj) -> list[float]:
    if isinstance(obj, dict):
        return [v for x in obj.values() for v in _numbers(x)]
    if isinstance(obj, list):
        return [v for x in obj for v in _numbers(x)]
    return [float(obj)] if isinstance(obj, int | float) and not isinstance(obj, bool) else []


def _assert_no_secret(report: dict, key: Key) -> None:
    text = json.dumps(report)
    nums = _numbers(report)
    assert len(nums) < 80, len(nums)  # counts and statistics, not per-fiber arrays
    secrets = np.concatenate([key.transmission, key.bias])
    secrets = secrets[secrets > 0]
    for v in nums:
        assert not np.any(np.isclose(secrets, v, rtol=1e-6, atol=0)), v
    for field in ("routing", "transmission", "bias", "seed"):
        assert f'"{field}"' not in text, field


def test_report_holds_counts_not_the_key():
    cfg = config(dead_fraction=0.05)
    key = keygen(cfg.faceplate.model_copy(update={"seed": 6}))
    _, _, cal = capture_and_solve(cfg, key)
    assert set(cal.report) == {
        "key_fingerprint",
        "lattice",
        "frames",
        "registration",
        "fibers",
        "decode_margin_sigma",
        "thresholds",
    }
    _assert_no_secret(cal.report, cal.key)
    assert cal.report["key_fingerprint"] == cal.key.fingerprint
    assert cal.key.config.seed == 0  # a measured key carries no seed


# ------------------------------------------------------------------ the command line
def cli(*args, cwd: Path):
    return run_module("sim.calibrate", *args, cwd=cwd, timeout=180)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """Patterns and simulated frames of the small camera, made once with the CLI."""
    d = tmp_path_factory.mktemp("calib")
    (d / "cam.toml").write_text(SMALL_TOML)
    cfg = CameraConfig.model_validate({**BASE, "faceplate": {**BASE["faceplate"]}})
    key = keygen(cfg.faceplate.model_copy(update={"dead_fraction": 0.05, "seed": 21}))
    key.save(d / "dev.key")
    res = cli("patterns", "--config", "cam.toml", "-o", "pat", "--no-complements", cwd=d)
    assert res.returncode == 0, res.stderr
    res = cli("simulate", "pat", "--config", "cam.toml", "--key", "dev.key", "-o", "frames",
              "--seed", "3", cwd=d)  # fmt: skip
    assert res.returncode == 0, res.stderr
    return d


def _fresh(recorded: Path, tmp_path: Path) -> Path:
    for name in ("cam.toml", "dev.key"):
        shutil.copy2(recorded / name, tmp_path / name)
    for name in ("pat", "frames"):
        shutil.copytree(recorded / name, tmp_path / name)
    return tmp_path


def test_cli_round_trip(recorded, tmp_path):
    d = _fresh(recorded, tmp_path)
    pats = sorted(p.name for p in (d / "pat").iterdir())
    assert pats == sorted(p.name for p in (d / "frames").iterdir())
    assert len(pats) == 8 + 1  # 3 + 3 Gray bits, white, black; manifest
    with Image.open(d / "pat" / "02_x2.png") as im:
        assert im.mode == "L" and im.size == (32, 32)
    with Image.open(d / "frames" / "02_x2.png") as im:
        assert im.mode.startswith("I;16") and im.size == (32, 32)
    res = cli("solve", "frames", "--config", "cam.toml", "-o", "m.key", "--report", "r.json",
              cwd=d)  # fmt: skip
    assert res.returncode == 0, res.stderr
    true, measured = Key.load(d / "dev.key"), Key.load(d / "m.key")
    assert stat.S_IMODE((d / "m.key").stat().st_mode) == 0o600
    np.testing.assert_array_equal(measured.dead, true.dead)
    np.testing.assert_array_equal(measured.routing[~true.dead], true.routing[~true.dead])
    report = json.loads((d / "r.json").read_text())
    assert report["fibers"]["dead"] == 3 and report["frames"]["count"] == 8
    _assert_no_secret(report, measured)
    assert measured.fingerprint in res.stdout and "8 frames" in res.stdout
    # never replaced without --force
    before = (d / "m.key").read_bytes()
    again = cli("solve", "frames", "--config", "cam.toml", "-o", "m.key", cwd=d)
    assert_refused(again, "m.key", "--force")
    assert (d / "m.key").read_bytes() == before


def _swap(d: Path, a: str, b: str) -> None:
    pa, pb = d / "frames" / f"{a}.png", d / "frames" / f"{b}.png"
    tmp = pa.with_suffix(".tmp")
    pa.rename(tmp)
    pb.rename(pa)
    tmp.rename(pb)


def _frame_png(path: Path, frame: np.ndarray) -> None:
    Image.fromarray(frame.astype(np.uint16)).save(path)


BAD_FRAMES = {
    "missing frame": (lambda d: (d / "frames" / "05_y2.png").unlink(), "05_y2"),
    "extra frame": (
        lambda d: shutil.copy2(d / "frames" / "03_x1.png", d / "frames" / "09_extra.png"),
        "not a frame of the pattern set",
    ),
    "two files for one frame": (
        lambda d: np.save(d / "frames" / "03_x1.npy", np.zeros((32, 32), np.uint16)),
        "2 frame files",
    ),
    "Gray frames reordered": (lambda d: _swap(d, "03_x1", "06_y1"), "out of order"),
    "white and black swapped": (lambda d: _swap(d, "00_white", "01_black"), "not brighter"),
    "frame of another size": (
        lambda d: _frame_png(d / "frames" / "04_x0.png", np.full((24, 32), 100)),
        "32x24 px",
    ),
    "8-bit frame": (
        lambda d: shutil.copy2(d / "pat" / "04_x0.png", d / "frames" / "04_x0.png"),
        "8-bit",
    ),
    "frame from a 16-bit camera": (
        lambda d: _frame_png(d / "frames" / "04_x0.png", np.full((32, 32), 60000)),
        "range 0..4095",
    ),
    "no manifest": (lambda d: (d / "frames" / "manifest.json").unlink(), "no such file"),
    "manifest not JSON": (
        lambda d: (d / "frames" / "manifest.json").write_text("{not json"),
        "not valid JSON",
    ),
    "manifest with a frame removed": (
        lambda d: _edit_manifest(d, lambda m: m["frames"].pop()),
        "lists 7 frames",
    ),
    "manifest from another camera": (
        lambda d: _edit_manifest(d, lambda m: m["camera"].update(digest="0123456789abcdef")),
        "another camera",
    ),
    "exposure unknown": (lambda d: _edit_manifest(d, lambda m: m.pop("capture")), "--exposure"),
}


def _edit_manifest(d: Path, change) -> None:
    p = d / "frames" / "manifest.json"
    m = json.loads(p.read_text())
    change(m)
    p.write_text(json.dumps(m))


@pytest.mark.parametrize("case", sorted(BAD_FRAMES))
def test_solve_refuses_bad_frames_and_writes_nothing(case, recorded, tmp_path):
    d = _fresh(recorded, tmp_path)
    change, needle = BAD_FRAMES[case]
    change(d)
    res = cli("solve", "frames", "--config", "cam.toml", "-o", "m.key", "--report", "r.json",
              cwd=d)  # fmt: skip
    assert_refused(res, needle)
    assert not (d / "m.key").exists() and not (d / "r.json").exists()
    assert res.stdout == ""


def test_solve_refuses_another_cameras_configuration(recorded, tmp_path):
    d = _fresh(recorded, tmp_path)
    (d / "other.toml").write_text(SMALL_TOML.replace("rows = 8\ncols = 8", "rows = 7\ncols = 8"))
    res = cli("solve", "frames", "--config", "other.toml", "-o", "m.key", cwd=d)
    assert_refused(res, "another camera")
    assert not (d / "m.key").exists()


def test_simulate_and_patterns_refuse_bad_input(recorded, tmp_path):
    d = _fresh(recorded, tmp_path)
    # a key for another lattice
    cfg = CameraConfig.model_validate(BASE)
    keygen(cfg.faceplate.model_copy(update={"rows": 6})).save(d / "other.key")
    res = cli("simulate", "pat", "--config", "cam.toml", "--key", "other.key", "-o", "out",
              cwd=d)  # fmt: skip
    assert_refused(res, "another lattice")
    # an edited pattern
    _frame_png(d / "pat" / "02_x2.png", np.zeros((32, 32)))
    res = cli("simulate", "pat", "--config", "cam.toml", "--key", "dev.key", "-o", "out", cwd=d)
    assert_refused(res, "02_x2")
    assert not (d / "out").exists()
    # existing outputs are never replaced without --force
    before = {p.name: p.read_bytes() for p in (d / "frames").iterdir()}
    res = cli("patterns", "--config", "cam.toml", "-o", "frames", "--no-complements", cwd=d)
    assert_refused(res, "already exists", "--force")
    assert {p.name: p.read_bytes() for p in (d / "frames").iterdir()} == before


def test_pattern_digest_is_kept_for_cameras_made_before_a_lens_field_existed(small):
    """The digest an older keycam gave a camera (lens table without ``exit_pupil_distance_mm``)
    is unchanged while the field is unset, and changes once it is set."""
    import hashlib
    import json

    from sim.calibration.graycode import camera_digest

    lens = small.lens.model_dump(mode="json")
    assert lens.pop("exit_pupil_distance_mm") is None
    fp, s = small.faceplate, small.sensor
    older = {
        "scene": small.scene.model_dump(mode="json"),
        "lens": lens,
        "samples_per_pitch": small.samples_per_pitch,
        "colour": small.colour,
        "faceplate": {
            f: getattr(fp, f) for f in ("lattice", "rows", "cols", "pitch_um", "core_diameter_um")
        },
        "sensor": {"width_px": s.width_px, "height_px": s.height_px, "bit_depth": s.bit_depth},
    }
    text = json.dumps(older, sort_keys=True, separators=(",", ":"))
    assert camera_digest(small) == hashlib.sha256(text.encode()).hexdigest()[:16]
    moved = small.model_copy(
        update={"lens": small.lens.model_copy(update={"exit_pupil_distance_mm": 80.0})}
    )
    assert camera_digest(moved) != camera_digest(small)
