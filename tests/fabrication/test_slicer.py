"""A slicer takes the exported bodies: PrusaSlicer reads them as manifold and slices the matrix.

Slow; skipped when ``prusa-slicer`` is not installed (``.ci/run`` installs it where apt is
available). PrusaSlicer's ``--cut`` does not write the cut parts from the command line (2.5),
so the slab is sliced by placing the matrix below the bed in a 3MF build item and slicing
with ``--no-ensure-on-bed``: only the part above z = 0, the top of the matrix, is printed.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest
import trimesh
from keycam_testing import run_module

from optics.faceplate import FaceplateConfig, keygen

SLICER = shutil.which("prusa-slicer")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(SLICER is None, reason="prusa-slicer is not installed"),
]
NS = "http://schemas.microsoft.com/3dmanufacturing/core/2015/02"


def _slicer(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [SLICER, "--loglevel", "1", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _info(path: Path) -> list[dict[str, str]]:
    """``prusa-slicer --info`` as one dict per object."""
    res = _slicer("--info", path.name, cwd=path.parent)
    assert res.returncode == 0, res.stderr
    objects: list[dict[str, str]] = []
    for line in res.stdout.splitlines():
        if re.fullmatch(r"\[[^\s\]]+\]", line):  # "[file name]" opens an object
            objects.append({})
        elif "=" in line and objects:
            k, v = line.split("=", 1)
            objects[-1][k.strip()] = v.strip()
    return objects


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    folder = tmp_path_factory.mktemp("slicer")
    cfg = FaceplateConfig(rows=4, cols=4, block_size=2, permute_blocks=True, seed=3)
    keygen(cfg).save(folder / "k.key")
    res = run_module(
        "fabrication.export", "k.key", "--report", "report.json", "--quiet", cwd=folder
    )
    assert res.returncode == 0, res.stderr
    return folder, json.loads((folder / "report.json").read_text())


def test_slicer_reads_cores_and_matrix_as_manifold(exported) -> None:
    folder, rep = exported
    (cores,) = _info(folder / "k_cores.stl")
    (matrix,) = _info(folder / "k_matrix.stl")
    assert cores["manifold"] == "yes" and matrix["manifold"] == "yes"
    assert int(cores["number_of_parts"]) == rep["n_fibers"]  # one body per fiber
    assert int(matrix["number_of_parts"]) == 1
    assert int(cores["number_of_facets"]) == rep["triangles_cores"]
    assert int(matrix["number_of_facets"]) == rep["triangles_matrix"]
    box = np.prod([float(matrix[f"size_{a}"]) for a in "xyz"])
    assert float(matrix["volume"]) == pytest.approx(box - float(cores["volume"]), rel=1e-4)
    assert float(cores["size_z"]) == pytest.approx(rep["length_mm"], abs=1e-3)
    both = _info(folder / "k.3mf")
    assert [o["manifold"] for o in both] == ["yes", "yes"]
    assert sorted(int(o["number_of_facets"]) for o in both) == sorted(
        [rep["triangles_cores"], rep["triangles_matrix"]]
    )


def _slab_3mf(stl: Path, out: Path, drop_mm: float) -> None:
    """A 3MF holding the mesh of ``stl`` placed ``drop_mm`` lower (build item transform)."""
    m = trimesh.load(stl, force="mesh")
    v = "".join(f'<vertex x="{x:.6f}" y="{y:.6f}" z="{z:.6f}"/>' for x, y, z in m.vertices)
    t = "".join(f'<triangle v1="{a}" v2="{b}" v3="{c}"/>' for a, b, c in m.faces)
    model = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<model unit="millimeter" xmlns="{NS}">'
        f'<resources><object id="1" name="matrix" type="model"><mesh><vertices>{v}</vertices>'
        f"<triangles>{t}</triangles></mesh></object></resources><build>"
        f'<item objectid="1" transform="1 0 0 0 1 0 0 0 1 0 0 {-drop_mm:.6f}"/></build></model>'
    )
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(
            "[Content_Types].xml",
            '<?xml version="1.0" encoding="UTF-8"?>\n<Types xmlns="http://schemas.openxmlformats'
            '.org/package/2006/content-types"><Default Extension="rels" ContentType="application/'
            'vnd.openxmlformats-package.relationships+xml"/><Default Extension="model" '
            'ContentType="application/vnd.ms-package.3dmanufacturing-3dmodel+xml"/></Types>',
        )
        z.writestr(
            "_rels/.rels",
            '<?xml version="1.0" encoding="UTF-8"?>\n<Relationships xmlns="http://schemas.'
            'openxmlformats.org/package/2006/relationships"><Relationship Target="/3D/3dmodel.'
            'model" Id="rel0" Type="http://schemas.microsoft.com/3dmanufacturing/2013/01/'
            '3dmodel"/></Relationships>',
        )
        z.writestr("3D/3dmodel.model", model)


def test_slicer_slices_a_slab_of_the_matrix(exported) -> None:
    folder, rep = exported
    slab_mm, layer_mm = 3.0, 0.2
    _slab_3mf(folder / "k_matrix.stl", folder / "slab.3mf", rep["length_mm"] - slab_mm)
    res = _slicer(
        "--no-ensure-on-bed", "--export-gcode", "--layer-height", str(layer_mm),
        "--first-layer-height", str(layer_mm), "slab.3mf", "-o", "slab.gcode", cwd=folder,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    gcode = (folder / "slab.gcode").read_text()
    heights = [float(line[3:]) for line in gcode.splitlines() if line.startswith(";Z:")]
    # only the slab above the bed is sliced, every layer of it
    assert len(heights) == round(slab_mm / layer_mm)
    assert heights[-1] == pytest.approx(slab_mm, abs=1e-6)
    extruded = [line for line in gcode.splitlines() if line.startswith("G1 ") and " E" in line]
    assert len(extruded) > 100 * len(heights)
    used = [line for line in gcode.splitlines() if line.startswith("; filament used [cm3]")]
    assert used and float(used[0].split("=")[1]) > 0
