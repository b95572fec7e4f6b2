"""Helpers shared by every test package: run keycam's commands as a user would.

Importable from any test as ``from keycam_testing import ...`` (``tests/`` is on pytest's
``pythonpath``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_module(
    module: str,
    *args: object,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    timeout: float = 300,
    preexec_fn: Callable[[], None] | None = None,
) -> subprocess.CompletedProcess:
    """Run ``python -m module args...`` in ``cwd`` and capture its text output.

    The repository comes first on ``PYTHONPATH`` so the code under test is what runs, with or
    without an installed copy; ``env`` adds to (or overrides) the current environment;
    ``preexec_fn`` runs in the child before it starts (e.g. resource limits).
    """
    full_env = {**os.environ, **(env or {})}
    full_env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO), full_env.get("PYTHONPATH", "")) if p
    )
    return subprocess.run(
        [sys.executable, "-m", module, *map(str, args)],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=preexec_fn,
    )


def assert_refused(proc: subprocess.CompletedProcess, *needles: str) -> str:
    """Assert the house rule for bad input: exit 2 and one ``error: ...`` line naming ``needles``.

    Returns the error line.
    """
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def small_camera_toml(*, faceplate: str = "", coupling: str = "") -> str:
    """A small, fast camera TOML (8 x 8 fibers, 32 x 32 pixels, 4 x 4 key blocks).

    ``faceplate`` and ``coupling`` are extra lines for those tables (e.g.
    ``"crosstalk_in = 0.02"``). Tests rely on the lines ``rows = 8`` / ``cols = 8`` and
    ``width_px = 32`` / ``height_px = 32`` standing next to each other.
    """
    fp = f"\n{faceplate.strip()}" if faceplate.strip() else ""
    cp = f"\n{coupling.strip()}" if coupling.strip() else ""
    return f"""
exposure = "auto"
[scene]
shape_px = [32, 32]
[lens]
focal_length_mm = 80.0
f_number = 2.8
wavelength_nm = 525.0
[faceplate]
rows = 8
cols = 8
block_size = 4
transmission_mean = 0.05{fp}
[coupling]
magnification = 0.021682
blur_um = 2.0
relay_f_number = 1.4{cp}
[sensor]
preset = "imx174"
width_px = 32
height_px = 32
"""
