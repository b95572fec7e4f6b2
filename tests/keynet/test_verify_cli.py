"""``python -m keynet.verify`` as a subprocess: figures, JSON, cache, keys, bad input."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from keycam_testing import assert_refused, run_module

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "keynet" / "data"
SMALL = ["--epochs", "1", "--digits", "60", "--quiet"]


def _run(args: list[str], cache: Path, cwd: Path) -> subprocess.CompletedProcess:
    return run_module(
        "keynet.verify", *args, cwd=cwd, env={"KEYCAM_CACHE": str(cache)}, timeout=900
    )


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    """One weight cache for the small runs that do not test the caching itself."""
    return tmp_path_factory.mktemp("cache")


def _design_key(name: str = "verify_camera_realistic.toml"):
    from optics.faceplate import keygen
    from sim.config import load_config

    return keygen(load_config(DATA / name).faceplate)


def test_cli_small_run_both_cameras_writes_json_and_caches(tmp_path) -> None:
    cache = tmp_path / "cache"
    out = tmp_path / "v.json"
    proc = _run([*SMALL, "--camera", "both", "--json", str(out)], cache, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert "(e) key-net, encrypted frames" in proc.stdout and "3.0x" in proc.stdout
    assert "realistic camera (as built)" in proc.stdout
    assert "ideal camera (idealised)" in proc.stdout
    assert "chance (10 classes)" in proc.stdout and "10.0%" in proc.stdout
    cams = json.loads(out.read_text())["cameras"]
    assert set(cams) == {"realistic", "ideal"}
    for name, r in cams.items():
        assert r["camera"] == name
        for key in (
            "accuracy_clean",
            "accuracy_plain_images",
            "accuracy_keynet_noise_free",
            "agreement_noise_free",
            "accuracy_conventional",
            "accuracy_keynet",
            "accuracy_plain_on_encrypted",
            "accuracy_other_key",
        ):
            assert 0.0 <= r[key] <= 1.0
        assert r["chance_accuracy"] == 0.1
        assert r["n_test_digits"] == 60
        assert r["params_plain"] == 61706
        assert r["nnz_first_stage_plain_as_matrix"] == 38400
        assert r["key_fingerprint"] == r["device_key_fingerprint"]
        assert r["keying"] == {"crosstalk_order": 1, "first_layer_budget": 1.5, "fill_dead": True}
        assert r["nnz_ratio"] <= 2.0 and r["first_layer_nnz_ratio"] <= 1.5
    ideal, real = cams["ideal"], cams["realistic"]
    # matched lattice, no crosstalk: the keyed first layer has exactly the plain non-zeros,
    # and the keyed logits equal the plain ones
    assert ideal["nnz_first_layer_keyed"] == ideal["nnz_first_stage_plain_as_matrix"]
    assert ideal["noise_free_max_rel_err"] < 1e-5
    assert (ideal["crosstalk_in"], ideal["crosstalk_out"], ideal["dead_fibers"]) == (0, 0, 0)
    # as built: crosstalk corrections use the 1.5x budget; dead fibers cost a little accuracy
    assert (real["crosstalk_in"], real["crosstalk_out"], real["dead_fibers"]) == (0.02, 0.02, 2)
    assert real["first_layer_nnz_ratio"] == pytest.approx(1.5, abs=1e-3)
    assert real["noise_free_max_rel_err"] < 0.05
    assert real["agreement_noise_free"] >= 0.95
    assert real["train"]["weights_from_cache"] is False  # trained once, then cached
    assert ideal["train"]["weights_from_cache"] is True
    assert len(list(cache.glob("lenet-*.npz"))) == 1
    # a second run loads the cached weights and reproduces the figures; --force replaces
    proc2 = _run([*SMALL, "--camera", "ideal", "--json", str(out), "--force"], cache, tmp_path)
    assert proc2.returncode == 0, proc2.stderr
    r2 = json.loads(out.read_text())["cameras"]
    assert set(r2) == {"ideal"}
    assert r2["ideal"]["train"]["weights_from_cache"] is True
    assert r2["ideal"]["accuracy_keynet"] == ideal["accuracy_keynet"]


def test_cli_keys_with_a_measured_key_file(tmp_path, cache) -> None:
    """``--key``: the network is keyed with a key file (here the design key with every
    transmission measured 3 % high and a little scatter), the device photographs with its
    own key; ``--device-key`` gives that device key as a file too."""
    design = _design_key()
    t = np.asarray(design.transmission)
    scatter = 1.0 + 0.005 * np.random.default_rng(0).standard_normal(t.size)
    measured = design.with_transmission(1.03 * t * scatter)
    key_path = measured.save(tmp_path / "measured.key")
    device_path = design.save(tmp_path / "device.key")
    assert (os.stat(key_path).st_mode & 0o777) == 0o600
    out = tmp_path / "v.json"
    args = [*SMALL, "--key", str(key_path), "--device-key", str(device_path), "--json", str(out)]
    proc = _run(args, cache, tmp_path)
    assert proc.returncode == 0, proc.stderr
    r = json.loads(out.read_text())["cameras"]["realistic"]
    assert r["key_fingerprint"] == measured.fingerprint
    assert r["device_key_fingerprint"] == design.fingerprint
    assert f"key {measured.fingerprint} on device {design.fingerprint}" in proc.stdout
    assert r["agreement_noise_free"] >= 0.9  # a 3 % gain error barely moves the classes
    assert r["accuracy_other_key"] <= 0.4
    # nothing of the key reaches the output: no transmission values
    text = proc.stdout + proc.stderr + out.read_text()
    for v in measured.transmission[:20]:
        assert f"{v:.6g}" not in text


@pytest.mark.parametrize(
    "args, message",
    [
        (["--digits", "0"], "--digits"),
        (["--epochs", "0"], "--epochs"),
        (["--seed", "-1"], "--seed"),
        (["--config", "missing.toml"], "missing.toml"),
        (["--json", "no/such/dir/out.json"], "--json"),
        (["--camera", "bogus"], "--camera"),
        (["--camera", "ideal", "--config", "x.toml"], "not allowed with"),
        (["--key", "missing.key"], "--key: no such file"),
        (["--device-key", "missing.key"], "--device-key: no such file"),
        (["--bogus"], "unrecognized"),
    ],
)
def test_cli_bad_input(tmp_path, args, message) -> None:
    proc = _run(args, tmp_path / "cache", tmp_path)
    assert_refused(proc, message)
    assert proc.stdout == ""
    assert not (tmp_path / "cache").exists()
    assert list(tmp_path.iterdir()) == []


def test_cli_refuses_bad_key_files(tmp_path) -> None:
    """A file that is not a key, a damaged key and a key of another lattice: refused before
    any training, one line naming the option, no key material, nothing written."""
    from optics.faceplate import keygen
    from sim.config import CameraConfig

    junk = tmp_path / "junk.key"
    junk.write_text("not a key\n")
    other = keygen(CameraConfig.default().faceplate).save(tmp_path / "other.key")  # 64 x 64
    good = _design_key().save(tmp_path / "good.key")
    damaged = tmp_path / "damaged.key"
    damaged.write_bytes(good.read_bytes()[:-40])
    out = tmp_path / "v.json"
    before = sorted(tmp_path.iterdir())
    for option, path, needle in [
        ("--key", junk, "--key"),
        ("--key", damaged, "--key"),
        ("--key", other, "another lattice"),
        ("--device-key", other, "another lattice"),
    ]:
        proc = _run([option, str(path), "--json", str(out)], tmp_path / "cache", tmp_path)
        line = assert_refused(proc, needle)
        assert option in line
        assert proc.stdout == ""
        assert sorted(tmp_path.iterdir()) == before  # no cache, no JSON


def test_cli_never_replaces_json_without_force(tmp_path) -> None:
    out = tmp_path / "v.json"
    out.write_text("{}")
    proc = _run(["--json", str(out)], tmp_path / "cache", tmp_path)
    assert_refused(proc, "--force")
    assert out.read_text() == "{}"
    assert not (tmp_path / "cache").exists()


def test_cli_invalid_camera_config(tmp_path) -> None:
    bad = tmp_path / "cam.toml"
    text = (DATA / "verify_camera.toml").read_text()
    bad.write_text(text.replace("pitch_um = 1000.0", "pitch_um = -5.0"))
    out = tmp_path / "v.json"
    proc = _run(["--config", str(bad), "--json", str(out)], tmp_path / "cache", tmp_path)
    assert_refused(proc, "pitch_um")
    assert not out.exists()


def _assert_targets(r: dict) -> None:
    """The key-net targets for a camera as built (models.md: Key-nets)."""
    assert r["n_test_digits"] == 1000
    assert r["accuracy_clean"] >= 0.97
    # within 0.5 points of the plain net on the same digits' plain images, noise-free
    assert abs(r["accuracy_keynet_noise_free"] - r["accuracy_plain_images"]) <= 0.005
    # within 1 point of it under the camera's noise, and of the conventional camera
    assert abs(r["accuracy_keynet"] - r["accuracy_plain_images"]) <= 0.01
    assert abs(r["accuracy_keynet"] - r["accuracy_conventional"]) <= 0.01
    # without the key: near chance (10 % for ten classes)
    assert r["accuracy_plain_on_encrypted"] <= 0.20
    assert r["accuracy_other_key"] <= 0.20
    assert r["first_layer_nnz_ratio"] <= 1.5  # target 2x, moonshot 1.5x
    assert r["nnz_ratio"] <= 2.0  # the Key-Nets paper's LeNet: 3.0x
    assert r["memory_ratio"] <= 3.0
    assert r["time_ratio"] <= 1.0


@pytest.mark.slow
def test_acceptance_full_verification(tmp_path) -> None:
    """The acceptance figures on all 1000 test digits with the default training, on the
    realistic camera (2 % crosstalk at both faces, 2 dead fibers) and the idealised one."""
    out = tmp_path / "v.json"
    proc = _run(["--camera", "both", "--json", str(out), "--quiet"], tmp_path / "cache", tmp_path)
    assert proc.returncode == 0, proc.stderr
    cams = json.loads(out.read_text())["cameras"]
    _assert_targets(cams["realistic"])
    assert cams["realistic"]["dead_fibers"] == 2
    assert cams["realistic"]["agreement_noise_free"] >= 0.995
    _assert_targets(cams["ideal"])
    assert cams["ideal"]["noise_free_max_rel_err"] < 1e-5
    assert cams["ideal"]["agreement_noise_free"] == 1.0


@pytest.mark.slow
def test_acceptance_one_percent_dead_fibers(tmp_path) -> None:
    """The realistic camera with 1 % dead fibers (8 of 784) meets the same targets."""
    cfg = tmp_path / "dead.toml"
    text = (DATA / "verify_camera_realistic.toml").read_text()
    assert "dead_fraction = 0.002" in text
    cfg.write_text(text.replace("dead_fraction = 0.002", "dead_fraction = 0.01"))
    out = tmp_path / "v.json"
    args = ["--config", str(cfg), "--json", str(out), "--quiet"]
    proc = _run(args, tmp_path / "cache", tmp_path)
    assert proc.returncode == 0, proc.stderr
    r = json.loads(out.read_text())["cameras"]["custom"]
    assert r["dead_fibers"] == 8
    _assert_targets(r)
