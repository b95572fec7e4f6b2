"""``python -m keynet.verify`` as a subprocess: figures, JSON, cache, bad input."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from keycam_testing import assert_refused, run_module

REPO = Path(__file__).resolve().parents[2]


def _run(args: list[str], cache: Path, cwd: Path) -> subprocess.CompletedProcess:
    return run_module(
        "keynet.verify", *args, cwd=cwd, env={"KEYCAM_CACHE": str(cache)}, timeout=600
    )


def test_cli_small_run_writes_json_and_caches(tmp_path) -> None:
    cache = tmp_path / "cache"
    out = tmp_path / "v.json"
    args = ["--epochs", "1", "--digits", "60", "--json", str(out), "--quiet"]
    proc = _run(args, cache, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert "(c) key-net, encrypted frames" in proc.stdout and "3.0x" in proc.stdout
    r = json.loads(out.read_text())
    for key in (
        "accuracy_clean",
        "accuracy_conventional",
        "accuracy_keynet",
        "accuracy_plain_on_encrypted",
        "accuracy_other_key",
    ):
        assert 0.0 <= r[key] <= 1.0
    assert r["n_test_digits"] == 60
    assert r["noise_free_max_rel_err"] < 1e-5
    assert r["params_plain"] == 61706
    # matched lattice: the keyed first layer has exactly the plain first stage's non-zeros
    assert r["nnz_first_layer_keyed"] == r["nnz_first_stage_plain_as_matrix"]
    assert r["memory_ratio"] <= 3.0
    assert r["train"]["weights_from_cache"] is False
    assert len(list(cache.glob("lenet-*.npz"))) == 1
    # an existing --json is not replaced without --force
    again = _run(args, cache, tmp_path)
    assert_refused(again, "v.json", "--force")
    # second run loads the cached weights and reproduces the figures
    proc2 = _run([*args, "--force"], cache, tmp_path)
    assert proc2.returncode == 0, proc2.stderr
    r2 = json.loads(out.read_text())
    assert r2["train"]["weights_from_cache"] is True
    assert r2["accuracy_keynet"] == r["accuracy_keynet"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--digits", "0"], "--digits"),
        (["--epochs", "0"], "--epochs"),
        (["--seed", "-1"], "--seed"),
        (["--config", "missing.toml"], "missing.toml"),
        (["--json", "no/such/dir/out.json"], "--json"),
        (["--bogus"], "unrecognized"),
    ],
)
def test_cli_bad_input(tmp_path, args, message) -> None:
    proc = _run(args, tmp_path / "cache", tmp_path)
    assert_refused(proc, message)
    assert proc.stdout == ""
    assert not (tmp_path / "cache").exists()
    assert list(tmp_path.iterdir()) == []


def test_cli_invalid_camera_config(tmp_path) -> None:
    bad = tmp_path / "cam.toml"
    text = (REPO / "keynet" / "data" / "verify_camera.toml").read_text()
    bad.write_text(text.replace("pitch_um = 1000.0", "pitch_um = -5.0"))
    out = tmp_path / "v.json"
    proc = _run(["--config", str(bad), "--json", str(out)], tmp_path / "cache", tmp_path)
    assert_refused(proc, "pitch_um")
    assert not out.exists()


@pytest.mark.slow
def test_acceptance_full_verification(tmp_path) -> None:
    """The acceptance figures on all 1000 test digits with the default training (~1 min)."""
    out = tmp_path / "v.json"
    proc = _run(["--json", str(out), "--quiet"], tmp_path / "cache", tmp_path)
    assert proc.returncode == 0, proc.stderr
    r = json.loads(out.read_text())
    assert r["n_test_digits"] == 1000
    assert r["accuracy_clean"] >= 0.97
    assert abs(r["accuracy_keynet"] - r["accuracy_conventional"]) <= 0.01
    assert r["accuracy_plain_on_encrypted"] <= 0.20
    assert r["accuracy_other_key"] <= 0.20
    assert r["noise_free_max_rel_err"] < 1e-5
    assert r["memory_ratio"] <= 3.0
    assert r["time_ratio"] <= 2.0
