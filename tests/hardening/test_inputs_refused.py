"""Hostile inputs, each run as a real subprocess: refused with one line, nothing written.

Classes: decompression bombs (1), secrets in config errors (2), deep nesting (7), unbounded
sizes (8), validation and messages (12), secrets at rest (13).
"""

from __future__ import annotations

import json
import os
import struct
import time
from pathlib import Path

import pytest
from keycam_hostile import (
    AS_LIMIT,
    SECRET_SEED,
    SMALL_TOML,
    deep_toml,
    deep_toml_tables,
    key_with_header,
    png16,
    png16_zeros,
    run_limited,
    small_key,
    snapshot,
    zero_stream,
)
from keycam_testing import assert_refused, run_module


def refused(proc, *needles: str) -> str:
    line = assert_refused(proc, *needles)
    assert proc.stdout == ""
    return line


# -- 1. decompression bombs ------------------------------------------------------------------


def test_16bit_png_bomb_is_refused_within_the_memory_limit(tmp_path, small_toml):
    # 1 x 1 pixel declared, 2 GB of zeros in a 2 MB stream
    (tmp_path / "bomb.png").write_bytes(png16(1, 1, zero_stream(2 << 30)))
    assert (tmp_path / "bomb.png").stat().st_size < 3_000_000
    before = snapshot(tmp_path)
    t0 = time.perf_counter()
    res = run_limited(
        "sim.capture", "bomb.png", "--config", small_toml, "--max-pixels", 1, "--out", "o",
        cwd=tmp_path, address_space=AS_LIMIT,
    )  # fmt: skip
    refused(res, "bomb.png", "decompression bomb")
    assert time.perf_counter() - t0 < 60
    assert snapshot(tmp_path) == before


def test_large_declared_16bit_png_is_refused_before_decoding(tmp_path, small_toml):
    # 6000 x 6000 RGBA16 = 36 M pixels (within the pixel limit), ~300 kB on disk
    (tmp_path / "big.png").write_bytes(png16_zeros(6000, 6000))
    assert (tmp_path / "big.png").stat().st_size < 400_000
    res = run_limited(
        "sim.capture", "big.png", "--config", small_toml, "--out", "o",
        cwd=tmp_path, address_space=AS_LIMIT,
    )  # fmt: skip
    refused(res, "big.png", "memory", "KEYCAM_MAX_MEMORY_MB")
    assert not (tmp_path / "o").exists()


# -- 2. config errors never print the secret ----------------------------------------------------

BAD_FACEPLATES = {
    "bad value": ("rows = 8", "rows = -8"),
    "unknown field": ("rows = 8", "rows = 8\nrowz = 3"),
    "model check": ("block_size = 4", "block_size = 4\ncore_diameter_um = 5000.0"),
    "bad seed": (f"seed = {SECRET_SEED}", f'seed = "{SECRET_SEED}x"'),
}


@pytest.mark.parametrize("case", sorted(BAD_FACEPLATES))
def test_config_errors_never_echo_the_key_seed(tmp_path, case):
    old, new = BAD_FACEPLATES[case]
    (tmp_path / "cam.toml").write_text(SMALL_TOML.replace(old, new))
    for module, extra in (("sim.capture", ["--out", "o"]), ("keynet.verify", ["--digits", 5])):
        res = run_module(module, "--config", "cam.toml", *extra, cwd=tmp_path,
                         env={"KEYCAM_CACHE": str(tmp_path / "cache")})  # fmt: skip
        line = refused(res, "faceplate")
        assert str(SECRET_SEED) not in res.stderr, line
        assert "{" not in line  # no table is echoed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cam.toml"]


def test_key_file_with_invalid_config_does_not_echo_its_seed(tmp_path):
    from optics.faceplate.keyfile import read_key_file, write_key_file

    meta, arrays = read_key_file(small_key(tmp_path / "k.key"))
    meta["config"]["rows"] = -1
    meta["config"]["seed"] = SECRET_SEED
    write_key_file(tmp_path / "bad.key", meta, arrays)
    res = run_module("fabrication.export", "bad.key", "-o", "out", cwd=tmp_path)
    refused(res, "bad.key", "rows")
    assert str(SECRET_SEED) not in res.stderr


# -- 7. deep nesting ------------------------------------------------------------------------------


@pytest.mark.parametrize("builder", [deep_toml, deep_toml_tables])
def test_deeply_nested_config_is_refused_by_every_command(tmp_path, builder):
    (tmp_path / "deep.toml").write_text(builder(500))
    assert (tmp_path / "deep.toml").stat().st_size < 5000
    for module, args in (
        ("sim.capture", ["--config", "deep.toml", "--out", "o"]),
        ("keynet.verify", ["--config", "deep.toml"]),
        ("optics.emva", ["--config", "deep.toml"]),
    ):
        res = run_module(module, *args, cwd=tmp_path, env={"KEYCAM_CACHE": str(tmp_path / "c")})
        refused(res, "deep.toml", "nested")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["deep.toml"]


def test_deeply_nested_key_header_is_refused_by_every_command(tmp_path, small_toml, scene_png):
    key_with_header(tmp_path / "deep.key", b"[" * 5000 + b"]" * 5000)
    key_with_header(tmp_path / "deep2.key", b'{"a":' * 3000 + b"1" + b"}" * 3000)
    before = snapshot(tmp_path)
    for name in ("deep.key", "deep2.key"):
        refused(run_module("fabrication.export", name, "-o", "out", cwd=tmp_path), name, "nested")
        res = run_module(
            "sim.capture", scene_png, "--config", small_toml, "--key", name, "--out", "o",
            cwd=tmp_path,
        )  # fmt: skip
        refused(res, name, "nested")
    assert snapshot(tmp_path) == before


# -- 8. unbounded sizes ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [
        [("rows = 8\ncols = 8", "rows = 8192\ncols = 8192")],
        [("width_px = 32\nheight_px = 32", "width_px = 65536\nheight_px = 65536")],
        [
            ("blur_um = 2.0", "blur_um = 1000.0"),
            ("width_px = 32\nheight_px = 32", "width_px = 256\nheight_px = 256"),
        ],
        [
            ("[scene]\nshape_px = [32, 32]", "samples_per_pitch = 64.0\n[scene]"),
            ("rows = 8\ncols = 8\nblock_size = 4", "rows = 64\ncols = 64\nblock_size = 8"),
        ],
    ],
    ids=["fibers", "sensor", "blur", "samples"],
)
def test_configs_that_cannot_run_are_refused_before_allocating(tmp_path, scene_png, changes):
    text = SMALL_TOML
    for old, new in changes:
        assert old in text
        text = text.replace(old, new)
    (tmp_path / "huge.toml").write_text(text)
    t0 = time.perf_counter()
    res = run_limited(
        "sim.capture", scene_png, "--config", "huge.toml", "--out", "o",
        cwd=tmp_path, address_space=AS_LIMIT, timeout=120,
    )  # fmt: skip
    refused(res, "memory", "KEYCAM_MAX_MEMORY_MB")
    assert time.perf_counter() - t0 < 60
    assert not (tmp_path / "o").exists()


def test_export_sizes_are_checked_before_routing_and_before_meshing(tmp_path):
    from optics.faceplate import FaceplateConfig, keygen

    keygen(FaceplateConfig(rows=128, cols=128, block_size=8)).save(tmp_path / "big.key")
    small_key(tmp_path / "k.key")
    before = snapshot(tmp_path)
    t0 = time.perf_counter()
    res = run_limited("fabrication.export", "big.key", "-o", "out", cwd=tmp_path,
                      address_space=AS_LIMIT)  # fmt: skip
    refused(res, "routing the 16384 fibers", "KEYCAM_MAX_MEMORY_MB")
    assert time.perf_counter() - t0 < 30
    # a small budget: the key routes, its meshes would not fit
    res = run_module("fabrication.export", "k.key", "-o", "out", cwd=tmp_path,
                     env={"KEYCAM_MAX_MEMORY_MB": "16"})  # fmt: skip
    refused(res, "meshing", "--no-matrix")
    assert snapshot(tmp_path) == before


def test_emva_sizes_are_bounded(tmp_path):
    for args, needle in (
        (["--steps", "100000000"], "--steps"),
        (["--stack", "100000000"], "--stack"),
        (["--roi", "full", "--preset", "imx264", "--stack", "1000"], "memory"),
    ):
        res = run_limited("optics.emva", *args, cwd=tmp_path, address_space=AS_LIMIT,
                          env={"MPLBACKEND": "Agg"}, timeout=120)  # fmt: skip
        refused(res, needle)


def test_devices_fifos_and_folders_are_refused_at_once(tmp_path, small_toml, scene_png):
    os.mkfifo(tmp_path / "fifo.toml")
    os.mkfifo(tmp_path / "fifo.key")
    os.mkfifo(tmp_path / "fifo.png")
    (tmp_path / "folder.toml").mkdir()
    cap = ["--out", "o"]
    cases = [
        ("sim.capture", [scene_png, "--key", "/dev/zero", "--config", small_toml, *cap], "device"),
        ("sim.capture", [scene_png, "--config", "fifo.toml", *cap], "FIFO"),
        ("sim.capture", [scene_png, "--config", small_toml, "--key", "fifo.key", *cap], "FIFO"),
        ("sim.capture", ["fifo.png", "--config", small_toml, *cap], "FIFO"),
        ("sim.capture", [scene_png, "--config", "folder.toml", *cap], "is a folder"),
        ("fabrication.export", ["/dev/zero"], "device"),
        ("fabrication.export", ["fifo.key"], "FIFO"),
        ("keynet.verify", ["--config", "fifo.toml"], "FIFO"),
        ("keynet.verify", ["--config", "folder.toml"], "is a folder"),
        ("optics.emva", ["--config", "fifo.toml"], "FIFO"),
        ("optics.emva", ["--config", "folder.toml"], "is a folder"),
    ]
    for module, args, needle in cases:
        res = run_module(
            module, *args, cwd=tmp_path, timeout=60, env={"KEYCAM_CACHE": str(tmp_path / "c")}
        )
        refused(res, needle)
    assert not (tmp_path / "o").exists() and not (tmp_path / "c").exists()


def test_oversized_config_is_refused(tmp_path, scene_png):
    (tmp_path / "big.toml").write_text(SMALL_TOML + "# padding\n" * 200_000)
    res = run_module("sim.capture", scene_png, "--config", "big.toml", "--out", "o", cwd=tmp_path)
    refused(res, "big.toml", "too large")


# -- 12. validation and messages -----------------------------------------------------------------


@pytest.mark.parametrize(
    "change, field",
    [
        (("block_size = 4", "block_size = 4\npitch_um = inf"), "pitch_um"),
        (("f_number = 2.8", "f_number = nan"), "f_number"),
        (("rows = 8", "rows = true"), "rows"),
        (("blur_um = 2.0", "blur_um = -inf"), "blur_um"),
    ],
)
def test_inf_nan_and_booleans_are_refused_naming_the_field(tmp_path, scene_png, change, field):
    (tmp_path / "v.toml").write_text(SMALL_TOML.replace(*change))
    res = run_module("sim.capture", scene_png, "--config", "v.toml", "--out", "o", cwd=tmp_path)
    refused(res, field)
    assert not (tmp_path / "o").exists()


def test_a_one_pixel_sensor_works(tmp_path, scene_png):
    (tmp_path / "one.toml").write_text(
        SMALL_TOML.replace("width_px = 32\nheight_px = 32", "width_px = 1\nheight_px = 1")
    )
    res = run_module("sim.capture", scene_png, "--config", "one.toml", "--out", "o", "--quiet",
                     cwd=tmp_path)  # fmt: skip
    assert res.returncode == 0, res.stderr
    side = json.loads((tmp_path / "o" / "scene.json").read_text())
    assert side["frames"]["shape"] == [1, 1]


def test_print_schema_into_a_closed_pipe_is_silent(tmp_path):
    import subprocess
    import sys

    cmd = f"{sys.executable} -m sim.capture --print-schema | head -c 10"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    res = subprocess.run(cmd, shell=True, cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=60)  # fmt: skip
    assert res.stderr == ""
    assert res.stdout.startswith("{")


# -- 13. secrets at rest --------------------------------------------------------------------------


def test_a_key_readable_by_others_loads_with_one_warning(tmp_path, small_toml, scene_png):
    key = small_key(tmp_path / "open.key")
    os.chmod(key, 0o644)
    res = run_module("sim.capture", scene_png, "--config", small_toml, "--key", "open.key",
                     "--out", "o", "--quiet", cwd=tmp_path)  # fmt: skip
    assert res.returncode == 0, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("warning: ") and "chmod 600" in lines[0]
    os.chmod(key, 0o600)
    res = run_module("sim.capture", scene_png, "--config", small_toml, "--key", "open.key",
                     "--out", "o2", "--quiet", cwd=tmp_path)  # fmt: skip
    assert res.returncode == 0 and res.stderr == ""


def test_a_forged_key_with_a_recomputed_checksum_loads(tmp_path):
    """The SHA-256 detects damage, not forgery (documented): a consistent edit loads."""
    import hashlib

    from optics.faceplate import Key
    from optics.faceplate.keyfile import canonical_json

    path = small_key(tmp_path / "k.key")
    raw = path.read_bytes()
    (hlen,) = struct.unpack("<Q", raw[8:16])
    header = json.loads(raw[16 : 16 + hlen])
    payload = bytearray(raw[16 + hlen :])
    spec = next(s for s in header["arrays"] if s["name"] == "bias")
    payload[spec["offset"] : spec["offset"] + 8] = struct.pack("<d", 1.0)  # one bias value
    header.pop("checksum")
    key = Key.load(path)
    forged = Key(key.config, key.routing, key.transmission,
                 [1.0, *key.bias[1:]], key.dead, key.crosstalk_in, key.crosstalk_out)  # fmt: skip
    header["meta"]["fingerprint"] = forged.fingerprint
    header["checksum"] = "sha256:" + hashlib.sha256(canonical_json(header) + payload).hexdigest()
    h = canonical_json(header)
    path.write_bytes(raw[:8] + struct.pack("<Q", len(h)) + h + bytes(payload))
    assert Key.load(path).bias[0] == 1.0
    docs = (Path(__file__).resolve().parents[2] / "docs" / "explanation" / "keyfile.md").read_text()
    assert "detects damage, not forgery" in docs
