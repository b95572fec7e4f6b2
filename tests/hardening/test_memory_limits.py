"""Inputs just inside the limits run to completion under a 1.5 GB address-space limit.

Each case is a real subprocess under ``RLIMIT_AS = 1.5 GB`` with the default memory budget:
the largest inputs the limits accept must finish (status 0), and the next size up must be
refused with one line — never a ``MemoryError``.
"""

from __future__ import annotations

import pytest
from keycam_hostile import AS_LIMIT, SMALL_TOML, png16_zeros, run_limited
from keycam_testing import assert_refused

from sim.config import CameraConfig
from sim.io import decode_bytes
from sim.memory import camera_memory


def _budget() -> int:
    from keycam.limits import DEFAULT_MEMORY_BUDGET_MB

    return DEFAULT_MEMORY_BUDGET_MB << 20


def test_the_largest_accepted_16bit_png_decodes_under_the_limit(tmp_path, small_toml):
    side = 5000  # 25 M RGBA16 pixels: just inside the default budget
    assert decode_bytes(side, side, "RGBA", png16_channels=4) <= _budget()
    assert decode_bytes(side + 100, side + 100, "RGBA", png16_channels=4) > _budget()
    (tmp_path / "big.png").write_bytes(png16_zeros(side, side))
    (tmp_path / "bigger.png").write_bytes(png16_zeros(side + 100, side + 100))
    res = run_limited("sim.capture", "big.png", "--config", small_toml, "--out", "o", "--quiet",
                      cwd=tmp_path, address_space=AS_LIMIT)  # fmt: skip
    assert res.returncode == 0, res.stderr
    res = run_limited("sim.capture", "bigger.png", "--config", small_toml, "--out", "o2",
                      cwd=tmp_path, address_space=AS_LIMIT)  # fmt: skip
    assert_refused(res, "bigger.png", "memory")


def _largest_sensor(side_lo: int, side_hi: int) -> tuple[int, str]:
    """The largest square sensor ROI (64 x 64 fibers) whose estimate fits the budget."""
    import tomllib

    base = SMALL_TOML.replace(
        "rows = 8\ncols = 8\nblock_size = 4", "rows = 64\ncols = 64\nblock_size = 8"
    ).replace("shape_px = [32, 32]", "shape_px = [256, 256]")

    def text(side: int) -> str:
        return base.replace(
            "width_px = 32\nheight_px = 32", f"width_px = {side}\nheight_px = {side}"
        )

    best = side_lo
    for side in range(side_lo, side_hi, 16):
        config = CameraConfig.model_validate(tomllib.loads(text(side)))
        if camera_memory(config)["total"] <= 0.97 * _budget():
            best = side
    return best, text(best)


def test_the_largest_accepted_camera_runs_under_the_limit(tmp_path, scene_png):
    side, text = _largest_sensor(512, 1200)
    (tmp_path / "cam.toml").write_text(text)
    res = run_limited("sim.capture", scene_png, "--config", "cam.toml", "--out", "o", "--quiet",
                      cwd=tmp_path, address_space=AS_LIMIT, timeout=600)  # fmt: skip
    assert res.returncode == 0, (side, res.stderr)
    (tmp_path / "cam2.toml").write_text(text.replace(f"= {side}\n", f"= {side + 200}\n"))
    res = run_limited("sim.capture", scene_png, "--config", "cam2.toml", "--out", "o2",
                      cwd=tmp_path, address_space=AS_LIMIT)  # fmt: skip
    assert_refused(res, "memory")


@pytest.mark.slow
def test_large_accepted_inputs_of_every_command_run_under_the_limit(tmp_path):
    # a full IMX174 frame through the EMVA series (2.35 M pixels, L = 16)
    res = run_limited("optics.emva", "--roi", "full", "--steps", 10, "--quiet", cwd=tmp_path,
                      address_space=AS_LIMIT, env={"MPLBACKEND": "Agg"}, timeout=1200)  # fmt: skip
    assert res.returncode == 0, res.stderr
    # many fibers (32 400: the direct per-site readout) on a 600 x 600 pixel ROI
    text = SMALL_TOML.replace("rows = 8\ncols = 8", "rows = 180\ncols = 180").replace(
        "width_px = 32\nheight_px = 32", "width_px = 600\nheight_px = 600"
    )
    assert (
        camera_memory(CameraConfig.model_validate(__import__("tomllib").loads(text)))["total"]
        <= _budget()
    )
    (tmp_path / "cam.toml").write_text(text)
    res = run_limited("sim.capture", "--config", "cam.toml", "--out", "o", "--quiet",
                      cwd=tmp_path, address_space=AS_LIMIT, timeout=1200)  # fmt: skip
    assert res.returncode == 0, res.stderr


@pytest.mark.slow
def test_the_largest_accepted_verification_camera_runs_under_the_limit(tmp_path):
    import tomllib

    from keynet.verify import default_camera_path, verify_memory

    text = default_camera_path().read_text()

    def with_sensor(side: int) -> str:
        return text.replace("width_px = 112", f"width_px = {side}").replace(
            "height_px = 112", f"height_px = {side}"
        )

    side = max(
        s
        for s in range(112, 400, 4)
        if verify_memory(CameraConfig.model_validate(tomllib.loads(with_sensor(s))), 1000)
        <= _budget()
    )
    (tmp_path / "cam.toml").write_text(with_sensor(side))
    (tmp_path / "cam2.toml").write_text(with_sensor(side + 40))
    env = {"KEYCAM_CACHE": str(tmp_path / "cache")}
    res = run_limited("keynet.verify", "--config", "cam.toml", "--epochs", 1, "--quiet",
                      cwd=tmp_path, address_space=AS_LIMIT, env=env, timeout=1200)  # fmt: skip
    assert res.returncode == 0, (side, res.stderr)
    res = run_limited("keynet.verify", "--config", "cam2.toml", "--epochs", 1, "--quiet",
                      cwd=tmp_path, address_space=AS_LIMIT, env=env)  # fmt: skip
    assert_refused(res, "memory")
