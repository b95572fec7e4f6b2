"""Export to STL/3MF, read back independently, and the command line."""

from __future__ import annotations

import json
import os
import subprocess
import zipfile
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
import pytest
import trimesh
from keycam_testing import assert_refused, run_module
from manifold3d import Manifold, Mesh
from scipy.spatial import cKDTree

from fabrication import export as fexport
from fabrication.meshio import read_key_from_stl
from fabrication.process import ProcessConfig
from keycam.cli import run
from optics.faceplate import FaceplateConfig, Key, keygen

ROOT = Path(__file__).resolve().parents[2]


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return run_module("fabrication.export", *args, cwd=cwd)


def _key_file(folder: Path, name: str = "dev.key", **cfg) -> Path:
    base = dict(rows=6, cols=6, block_size=3, permute_blocks=True, seed=7)
    base.update(cfg)
    path = folder / name
    keygen(FaceplateConfig(**base)).save(path)
    return path


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    folder = tmp_path_factory.mktemp("export")
    key_path = _key_file(folder)
    res = _cli(
        str(key_path), "-o", str(folder), "--report", str(folder / "report.json"),
        "--write-transmission", str(folder / "printed.key"), "--quiet", cwd=folder,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    return folder, Key.load(key_path)


def test_stl_has_one_watertight_body_per_fiber_at_least_a_wall_apart(exported) -> None:
    folder, key = exported
    mesh = trimesh.load(folder / "dev_cores.stl", force="mesh")
    bodies = mesh.split(only_watertight=False)
    assert len(bodies) == key.n_fibers
    assert all(b.is_watertight and b.volume > 0 for b in bodies)
    # candidate neighbours from vertices, then the exact gap by manifold3d (independent)
    verts = [np.asarray(b.vertices) for b in bodies]
    owner = np.concatenate([np.full(len(v), i) for i, v in enumerate(verts)])
    tree = cKDTree(np.concatenate(verts))
    pairs = tree.query_pairs(0.8, output_type="ndarray")  # wall 0.4 + ring spacing slack
    pairs = np.unique(np.sort(owner[pairs], axis=1), axis=0)
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    assert len(pairs) > key.n_fibers  # neighbours exist
    man = [
        Manifold(Mesh(vert_properties=np.asarray(b.vertices, np.float32),
                      tri_verts=np.asarray(b.faces, np.uint32)))
        for b in bodies
    ]  # fmt: skip
    gaps = [man[i].min_gap(man[j], 0.6) for i, j in pairs]
    assert min(gaps) >= 0.4 - 1e-3  # resin wall 0.4 mm (float32 STL)
    assert min(gaps) <= 0.4 + 1e-3  # faces are close-packed at 1 mm pitch


def test_routing_is_recovered_from_the_stl_alone(exported) -> None:
    folder, key = exported
    sites = key.config.site_centers_um() / 1000.0
    routing = read_key_from_stl(folder / "dev_cores.stl", sites, key.config.pitch_um / 1000)
    assert np.array_equal(routing, key.routing)


def test_matrix_is_the_block_minus_the_cores(exported) -> None:
    folder, _ = exported
    matrix = trimesh.load(folder / "dev_matrix.stl", force="mesh")
    cores = trimesh.load(folder / "dev_cores.stl", force="mesh")
    assert matrix.is_watertight
    lo, hi = matrix.bounds
    assert matrix.volume == pytest.approx(np.prod(hi - lo) - cores.volume, rel=1e-6)


def test_3mf_holds_both_bodies(exported) -> None:
    folder, _ = exported
    with zipfile.ZipFile(folder / "dev.3mf") as z:
        assert "[Content_Types].xml" in z.namelist()
        root = ElementTree.fromstring(z.read("3D/3dmodel.model"))
    ns = {"m": "http://schemas.microsoft.com/3dmanufacturing/core/2015/02"}
    assert root.get("unit") == "millimeter"
    objs = root.findall("m:resources/m:object", ns)
    assert [o.get("name") for o in objs] == ["cores", "matrix"]
    stl = {
        "cores": trimesh.load(folder / "dev_cores.stl", force="mesh"),
        "matrix": trimesh.load(folder / "dev_matrix.stl", force="mesh"),
    }
    for o in objs:
        v = np.array(
            [[float(e.get(a)) for a in "xyz"] for e in o.findall("m:mesh/m:vertices/m:vertex", ns)]
        )
        f = np.array(
            [[int(e.get(a)) for a in ("v1", "v2", "v3")]
             for e in o.findall("m:mesh/m:triangles/m:triangle", ns)]
        )  # fmt: skip
        m = trimesh.Trimesh(v, f, process=False)
        assert m.is_watertight
        assert len(f) == len(stl[o.get("name")].faces)
        assert m.volume == pytest.approx(stl[o.get("name")].volume, rel=1e-5)
    assert len(root.findall("m:build/m:item", ns)) == 2


def test_report_and_transmission_key(exported) -> None:
    folder, key = exported
    rep = json.loads((folder / "report.json").read_text())
    assert rep["passed"] is True and rep["key_fingerprint"] == key.fingerprint
    names = {c["name"]: c for c in rep["checks"]}
    assert names["clearance"]["worst"] >= 1.0 - 1e-4 and names["clearance"]["fiber"] is not None
    assert rep["length_ratio"] == pytest.approx(rep["length_mm"] / rep["lower_bound_mm"])
    printed = Key.load(folder / "printed.key")
    assert np.array_equal(printed.routing, key.routing)
    assert oct(os.stat(folder / "printed.key").st_mode & 0o777) == "0o600"
    t = printed.transmission
    resin = ProcessConfig.preset("resin")
    fres = (1 - ((resin.n_core - 1) / (resin.n_core + 1)) ** 2) ** 2
    # every fiber is at least one bundle length long: attenuation bounds the transmission
    att_max = 10 ** (-resin.attenuation_db_per_cm * rep["length_mm"] / 10 / 10)
    assert np.all(t <= fres * att_max + 1e-12) and np.all(t > 0)
    assert not np.array_equal(t, key.transmission)


def _listing(folder: Path) -> dict[str, float]:
    return {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}


def _assert_refused(res: subprocess.CompletedProcess, pattern: str) -> None:
    assert_refused(res, pattern)


def test_cli_refuses_bad_key_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.key"
    bad.write_bytes(b"not a key at all")
    before = _listing(tmp_path)
    _assert_refused(_cli(str(bad), "-o", str(tmp_path), cwd=tmp_path), "not a keycam key file")
    good = _key_file(tmp_path, "t.key", rows=4, cols=4, block_size=2)
    raw = bytearray(good.read_bytes())
    raw[-5] ^= 0xFF
    (tmp_path / "tampered.key").write_bytes(bytes(raw))
    before = _listing(tmp_path)
    res = _cli(str(tmp_path / "tampered.key"), "-o", str(tmp_path), cwd=tmp_path)
    _assert_refused(res, "tampered.key")
    _assert_refused(_cli("missing.key", cwd=tmp_path), "no such file")
    assert _listing(tmp_path) == before


def test_cli_refuses_unfit_process_and_existing_outputs(tmp_path: Path) -> None:
    key = _key_file(tmp_path, "k.key", rows=4, cols=4, block_size=2)
    before = _listing(tmp_path)
    res = _cli(str(key), "-o", str(tmp_path), "--process", "fdm", cwd=tmp_path)
    _assert_refused(res, "cannot fit the key's lattice")
    assert _listing(tmp_path) == before
    (tmp_path / "k_cores.stl").write_bytes(b"old")
    before = _listing(tmp_path)
    _assert_refused(_cli(str(key), "-o", str(tmp_path), cwd=tmp_path), "exists")
    assert _listing(tmp_path) == before
    res = _cli(str(key), "-o", str(tmp_path), "--force", "--no-3mf", "--quiet", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert res.stdout == "" and (tmp_path / "k_cores.stl").stat().st_size > 84
    assert not (tmp_path / "k.3mf").exists()
    _assert_refused(_cli(str(key), "--bogus", cwd=tmp_path), "unrecognized arguments")


def test_cli_refuses_when_a_check_fails(tmp_path: Path, monkeypatch, capsys) -> None:
    key = _key_file(tmp_path, "k.key", rows=4, cols=4, block_size=2)
    real_build = fexport.build

    def too_short(k, process, **kw):
        dev = real_build(k, process, **kw)
        lengths = np.array([s.length_mm for s in dev.route.stages]) * 0.4
        route = dev.route.with_lengths(lengths)
        from fabrication.checks import run_checks
        from fabrication.sampling import sample_route

        pl = sample_route(route, process)
        return fexport.Device(route, pl, run_checks(route, pl, process, 2), dev.transmission,
                              process)  # fmt: skip

    monkeypatch.setattr(fexport, "build", too_short)
    before = _listing(tmp_path)
    status = run(fexport.main, [str(key), "-o", str(tmp_path), "--report", "r.json"])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1
    assert err[0].startswith("error: check failed, nothing written:")
    assert "VIOLATED" in err[0] and "fiber" in err[0]
    assert _listing(tmp_path) == before


def test_cli_creates_the_output_folder_and_removes_it_on_refusal(tmp_path: Path) -> None:
    key = _key_file(tmp_path, "k.key", rows=4, cols=4, block_size=2)
    res = _cli(str(key), "-o", "new/parts", "--no-3mf", "--quiet", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert sorted(p.name for p in (tmp_path / "new" / "parts").iterdir()) == [
        "k_cores.stl",
        "k_matrix.stl",
    ]
    # a file where the folder should be is refused, and nothing is written
    (tmp_path / "taken").write_bytes(b"")
    before = _listing(tmp_path)
    _assert_refused(_cli(str(key), "-o", "taken", cwd=tmp_path), "not a folder")
    assert _listing(tmp_path) == before


def test_cli_summary_names_every_file_with_its_size(tmp_path: Path) -> None:
    key = _key_file(tmp_path, "k.key", rows=4, cols=4, block_size=2)
    res = _cli(str(key), "-o", "out", "--no-3mf", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    (line,) = res.stdout.strip().splitlines()
    assert "all checks passed" in line and "k_matrix.stl" in line
    size = (tmp_path / "out" / "k_cores.stl").stat().st_size
    assert f"k_cores.stl ({size / 1e6:.1f} MB)" in line


def test_cli_attenuation_sets_the_material_loss(tmp_path: Path) -> None:
    """--attenuation changes only the transmission, to what the library computes for it."""
    from fabrication.printed import printed_transmission

    key = _key_file(tmp_path, "a.key", rows=4, cols=4, block_size=2)
    for bad in ("abc", "-1", "nan", "inf"):
        before = _listing(tmp_path)
        res = _cli(str(key), "-o", str(tmp_path), "--attenuation", bad, cwd=tmp_path)
        _assert_refused(res, "--attenuation")
        assert _listing(tmp_path) == before
    out = tmp_path / "o"
    res = _cli(
        str(key), "-o", str(out), "--no-3mf", "--no-matrix", "--attenuation", "0.26",
        "--write-transmission", str(out / "p.key"), "--report", str(out / "r.json"), "--quiet",
        cwd=tmp_path,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    want = printed_transmission(
        Key.load(key), ProcessConfig.preset("resin", attenuation_db_per_cm=0.26)
    )
    np.testing.assert_array_equal(Key.load(out / "p.key").transmission, want.total)
    rep = json.loads((out / "r.json").read_text())
    assert rep["process"]["attenuation_db_per_cm"] == 0.26
    assert rep["bend_bound_mm"] <= rep["length_mm"]
    assert rep["bend_bound_ratio"] == pytest.approx(rep["length_mm"] / rep["bend_bound_mm"])
    assert rep["bend_bound_mm"] <= rep["two_lane_floor_mm"] <= rep["length_mm"]
    assert rep["two_lane_floor_ratio"] == pytest.approx(rep["length_mm"] / rep["two_lane_floor_mm"])


def test_cli_lens_launch_sets_the_bend_loss_the_camera_uses(tmp_path: Path) -> None:
    """--lens-f-number/--pupil-distance give the transmission the camera computes for its
    lens; bad values and a pupil without a lens are refused with nothing written."""
    from fabrication.printed import printed_transmission
    from fabrication.transmission import Launch

    key = _key_file(tmp_path, "l.key", rows=4, cols=4, block_size=2)
    cases = {
        "--lens-f-number: must be": ["--lens-f-number", "0"],
        "--lens-f-number: expected": ["--lens-f-number", "x"],
        "--pupil-distance: must be": ["--lens-f-number", "2.8", "--pupil-distance", "-3"],
        "--pupil-distance needs --lens-f-number": ["--pupil-distance", "20"],
    }
    for message, bad in cases.items():
        before = _listing(tmp_path)
        res = _cli(str(key), "-o", str(tmp_path / "bad"), *bad, cwd=tmp_path)
        assert_refused(res, message)
        assert _listing(tmp_path) == before
    out = tmp_path / "o"
    res = _cli(
        str(key), "-o", str(out), "--no-3mf", "--no-matrix", "--lens-f-number", "2.8",
        "--pupil-distance", "20", "--write-transmission", str(out / "p.key"),
        "--report", str(out / "r.json"), "--quiet", cwd=tmp_path,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    launch = Launch.from_f_number(2.8, 20.0)
    want = printed_transmission(Key.load(key), ProcessConfig.preset("resin"), launch)
    np.testing.assert_array_equal(Key.load(out / "p.key").transmission, want.total)
    rep = json.loads((out / "r.json").read_text())
    assert rep["launch"] == {"na": launch.na, "pupil_distance_mm": 20.0}
    assert rep["transmission"]["bend"]["mean"] == pytest.approx(float(want.bend.mean()))
    # the summary says which light its mean transmission is for
    res = _cli(
        str(key), "-o", str(out), "--no-3mf", "--no-matrix", "--lens-f-number", "2.8",
        "--pupil-distance", "20", "--force", cwd=tmp_path,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert f"mean transmission {want.total.mean():.3g} (f/2.8 lens, exit pupil 20 mm)" in res.stdout
    res = _cli(str(key), "-o", str(out), "--no-3mf", "--no-matrix", "--force", cwd=tmp_path)
    assert "(acceptance cone filled; --lens-f-number for a camera lens)" in res.stdout
