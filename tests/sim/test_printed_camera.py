"""A camera simulated as printed: its transmission, the cache, and what the frame shows."""

from __future__ import annotations

import math
import stat
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

import fabrication.printed as fprinted
import sim.printed as sprinted
from fabrication.process import ProcessConfig
from fabrication.transmission import Launch
from optics.faceplate import keygen
from optics.lens import LensConfig
from sim.camera import Camera
from sim.config import CameraConfig
from sim.printed import lens_launch

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    """A fresh cache folder for one test."""
    monkeypatch.setenv("KEYCAM_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "printed"


def _printed(make_small, **transmission) -> CameraConfig:
    return make_small(transmission={"source": "printed", **transmission})


def test_camera_uses_the_printed_transmission_of_its_key(make_small, cache) -> None:
    cfg = _printed(make_small)
    cam = Camera(cfg)
    key = keygen(cfg.faceplate)
    want = fprinted.printed_transmission(key, ProcessConfig.preset("resin"), lens_launch(cfg.lens))
    assert np.array_equal(cam.key.routing, key.routing)
    np.testing.assert_array_equal(cam.key.transmission, want.total)
    assert np.array_equal(cam.key.bias, key.bias) and np.array_equal(cam.key.dead, key.dead)
    info = cam.transmission_info
    assert info == {"source": "printed", **want.summary()}
    # the recipe records the printed mean; the conventional twin transmits that mean
    assert cam.config.faceplate.transmission_mean == pytest.approx(want.total.mean())
    conv = cam.conventional()
    np.testing.assert_allclose(conv.key.transmission, want.total.mean())
    assert conv.transmission_info["source"] == "assumed"
    # a key that already holds the printed transmission is the same device again
    assert Camera(cfg, cam.key).key == cam.key


def test_lens_launch_tilts_the_cone_by_the_exit_pupil(small) -> None:
    """The chief ray to a site at radius r comes from the exit pupil p: sin χ = r/√(r² + p²),
    p = s_i for a stop at the lens; the cone's NA is sin(atan(1/(2 N_w))) wherever p is."""
    sites = np.array([[0.0, 0.0], [3.0, 4.0], [-6.0, 8.0], [30.0, -40.0]])  # mm from the axis
    r = np.array([0.0, 5.0, 10.0, 50.0])
    cases = [  # (lens changes, pupil distance p in mm, working f-number)
        ({}, 80.0, 2.8),  # 80 mm f/2.8 at infinity: p = s_i = f
        ({"magnification": 0.5}, 120.0, 4.2),  # s_i = f (1 + |m|), N_w = N (1 + |m|)
        ({"exit_pupil_distance_mm": 35.0}, 35.0, 2.8),
        ({"exit_pupil_distance_mm": 35.0, "magnification": 0.5}, 35.0, 4.2),
        ({"exit_pupil_distance_mm": 1e6}, 1e6, 2.8),
    ]
    for changes, p, n_w in cases:
        lens = LensConfig.model_validate({**small.lens.model_dump(), **changes})
        launch = lens_launch(lens)
        assert launch.pupil_distance_mm == pytest.approx(p, rel=1e-15)
        np.testing.assert_allclose(launch.chief_sin(sites), r / np.sqrt(r**2 + p**2), rtol=1e-12)
        assert launch.na == pytest.approx(math.sin(math.atan(1 / (2 * n_w))), rel=1e-12)
    # image-side telecentric: the chief ray at 50 mm from the axis tilts by 5e-5 rad
    assert np.max(launch.chief_sin(sites)) < 1e-4


def test_an_image_side_telecentric_lens_spares_the_bends(make_small, cache) -> None:
    """Behind a 10 mm lens the chief rays to the corner fibers of the 8 mm face tilt by 26°
    and the bends strip part of the cone; with the exit pupil far away (image-side
    telecentric) every cone runs along its fiber, so the camera's printed transmission is that
    of a launch along the axis, and no fiber loses light to its bends (an f/2.8 cone, 6.6° in
    resin, stays inside the 13.5° a 10 mm bend keeps)."""
    lens = {"focal_length_mm": 10.0, "f_number": 2.8, "wavelength_nm": 525.0}
    printed = {"source": "printed"}
    stop = Camera(make_small(lens=lens, transmission=printed))
    tele = Camera(make_small(lens={**lens, "exit_pupil_distance_mm": 1e6}, transmission=printed))
    assert np.array_equal(tele.key.routing, stop.key.routing)
    axial = Launch.from_f_number(2.8)  # no pupil distance: every chief ray along the axis
    want = fprinted.printed_transmission(stop.key, ProcessConfig.preset("resin"), axial).total
    np.testing.assert_allclose(tele.key.transmission, want, rtol=1e-9)
    assert tele.transmission_info["launch"] == {"na": axial.na, "pupil_distance_mm": 1e6}
    assert stop.transmission_info["launch"]["pupil_distance_mm"] == 10.0
    assert tele.transmission_info["bend_mean"] == pytest.approx(1.0, abs=1e-12)
    assert stop.transmission_info["bend_mean"] < 0.9
    assert np.all(tele.key.transmission >= stop.key.transmission)


def test_assumed_source_keeps_the_keys_own_transmission(make_small, cache) -> None:
    cfg = make_small(transmission={"source": "assumed"})
    cam = Camera(cfg)
    assert cam.key == keygen(cfg.faceplate)
    assert cam.transmission_info["source"] == "assumed"
    assert cam.transmission_info["transmission_mean"] == pytest.approx(
        float(np.mean(cam.key.transmission))
    )
    assert not cache.exists()  # nothing routed, nothing cached


def test_frame_brightness_follows_the_printed_transmission(make_small, cache) -> None:
    """At one exposure the light on the sensor scales fiber by fiber with the transmission.

    Without stray light, crosstalk or dead fibers the photons per second on the sensor are
    Σ_i c_i T_i (c_i: light entering fiber i times the relay's collection of its output
    site, both public), so printed/assumed = Σ c_i T_printed,i / Σ c_i T_assumed,i.
    """
    fp = {"bias_photons_per_s": 0.0, "crosstalk_in": 0.0, "crosstalk_out": 0.0}
    # the same fiber in both, so that the relay collects the same cone
    fp["numerical_aperture"] = ProcessConfig.preset("resin").numerical_aperture
    base = make_small()
    face = {**base.faceplate.model_dump(), **fp}
    assumed = Camera(make_small(faceplate=face))
    printed = Camera(make_small(faceplate=face, transmission={"source": "printed"}))
    scene = np.full((32, 32), 0.5)
    into = assumed.sampling_operator @ (assumed.lens_operator @ scene.ravel())
    out_col = np.asarray(assumed.coupling_operator.sum(axis=0)).ravel()
    c = into * out_col[assumed.key.routing]
    want = (c @ printed.key.transmission) / (c @ assumed.key.transmission)
    got = printed.photon_rate(scene).sum() / assumed.photon_rate(scene).sum()
    assert got == pytest.approx(want, rel=1e-9)
    assert abs(want - 1) > 0.2  # the printed short bundle is clearly not the assumed 5 %
    # and the frames say so: same exposure, the signal above the sensor's offset (black
    # level and dark signal) in that ratio, up to shot and read noise
    t = 0.01  # nothing near saturation: clipping would bend the ratio
    assert assumed.expected_dn(scene, exposure_s=t).max() < 0.5 * assumed.sensor.max_dn
    _, offset = assumed.sensor.affine(t)
    rng = np.random.default_rng(1)
    fa = assumed.capture(scene, rng=rng, exposure_s=t, frames=16) - offset
    fb = printed.capture(scene, rng=rng, exposure_s=t, frames=16) - offset
    assert fb.sum() / fa.sum() == pytest.approx(want, rel=0.02)


def test_transmission_is_computed_once_and_cached_privately(make_small, cache, monkeypatch):
    calls = []
    real = fprinted.printed_transmission

    def counting(key, process, launch=None):
        calls.append(key.fingerprint)
        return real(key, process, launch)

    monkeypatch.setattr(fprinted, "printed_transmission", counting)
    cfg = _printed(make_small)
    first = Camera(cfg)
    second = Camera(cfg)
    assert len(calls) == 1
    np.testing.assert_array_equal(first.key.transmission, second.key.transmission)
    files = list(cache.iterdir())
    assert len(files) == 1
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600
    assert stat.S_IMODE(cache.stat().st_mode) == 0o700
    assert first.key.fingerprint not in files[0].name  # named by a one-way digest
    assert REPO not in files[0].resolve().parents
    # another process (attenuation) is another entry
    Camera(_printed(make_small, attenuation_db_per_cm=0.3))
    assert len(calls) == 2 and len(list(cache.iterdir())) == 2


@pytest.mark.parametrize(
    "damage",
    [
        lambda b: b"garbage",
        lambda b: b[: len(b) // 2],
        lambda b: b[:-9] + bytes([b[-9] ^ 0xFF]) + b[-8:],
        lambda b: b"",
    ],
)
def test_a_damaged_cache_entry_is_recomputed(make_small, cache, monkeypatch, damage) -> None:
    cfg = _printed(make_small)
    good = Camera(cfg).key.transmission.copy()
    (entry,) = cache.iterdir()
    entry.write_bytes(damage(entry.read_bytes()))
    calls = []
    real = fprinted.printed_transmission
    monkeypatch.setattr(
        fprinted,
        "printed_transmission",
        lambda k, p, launch=None: calls.append(1) or real(k, p, launch),
    )
    np.testing.assert_array_equal(Camera(cfg).key.transmission, good)
    assert calls == [1]
    # repaired: the next camera reads it again
    Camera(cfg)
    assert calls == [1]


def test_an_entry_for_another_key_is_not_trusted(make_small, cache) -> None:
    cfg = _printed(make_small)
    Camera(cfg)
    (entry,) = cache.iterdir()
    other = _printed(make_small).with_key_seed(11)
    key = keygen(other.faceplate)
    launch = lens_launch(other.lens)
    digest = fprinted.routing_digest(key, ProcessConfig.preset("resin"), launch)
    # put the first key's entry where the second key's belongs
    entry.rename(cache / f"{digest[:40]}.bin")
    cam = Camera(other)
    want = fprinted.printed_transmission(key, ProcessConfig.preset("resin"), launch).total
    np.testing.assert_array_equal(cam.key.transmission, want)


def test_cache_folder_is_a_user_cache_overridable_by_environment(monkeypatch, tmp_path) -> None:
    for var in ("KEYCAM_CACHE_DIR", "KEYCAM_CACHE", "XDG_CACHE_HOME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert sprinted.cache_dir() == tmp_path / "home" / ".cache" / "keycam" / "printed"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert sprinted.cache_dir() == tmp_path / "xdg" / "keycam" / "printed"
    monkeypatch.setenv("KEYCAM_CACHE", str(tmp_path / "k"))
    assert sprinted.cache_dir() == tmp_path / "k" / "printed"
    monkeypatch.setenv("KEYCAM_CACHE_DIR", str(tmp_path / "kd"))
    assert sprinted.cache_dir() == tmp_path / "kd" / "printed"


def test_an_unwritable_cache_only_costs_time(make_small, tmp_path, monkeypatch) -> None:
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a file where the cache folder would go")
    monkeypatch.setenv("KEYCAM_CACHE_DIR", str(blocker / "cache"))
    cam = Camera(_printed(make_small))
    assert cam.transmission_info["source"] == "printed"
    assert blocker.read_text().startswith("a file")


def test_bad_transmission_tables_fail_at_load_time(make_small) -> None:
    for bad in ({"source": "measured"}, {"process": "glass"}, {"attenuation_db_per_cm": -1},
                {"attenuation": 0.5}):  # fmt: skip
        with pytest.raises(ValidationError, match="transmission"):
            make_small(transmission=bad)


def test_a_lattice_the_process_cannot_print_is_refused_with_the_way_out(tmp_path, cache) -> None:
    """A glass-faceplate lattice, or a pitch too fine for the process, with the default printed
    source: one line, exit 2, nothing written, and the line names the setting that fixes it."""
    from keycam_testing import assert_refused, run_module

    from sim.config import default_config_path

    text = default_config_path().read_text()
    glass = text.replace("pitch_um = 1000.0", "pitch_um = 25.0").replace(
        "core_diameter_um = 600.0", "core_diameter_um = 20.0"
    )
    assert glass != text
    (tmp_path / "glass.toml").write_text(glass)
    res = run_module("sim.capture", "--config", "glass.toml", "--out", "o", cwd=tmp_path)
    assert_refused(res, 'source = "assumed"')
    assert "core_diameter_um = 20 µm disagrees with the core diameter" in res.stderr
    assert not (tmp_path / "o").exists()
    # the printed fiber's core, but closer than core + wall: the process cannot print it
    (tmp_path / "tight.toml").write_text(text.replace("pitch_um = 1000.0", "pitch_um = 900.0"))
    res = run_module("sim.capture", "--config", "tight.toml", "--out", "o", cwd=tmp_path)
    assert_refused(res, 'source = "assumed"')
    assert "cannot fit the key's lattice" in res.stderr
    assert not (tmp_path / "o").exists()
    # and with the transmission assumed, the same camera runs
    (tmp_path / "glass2.toml").write_text(glass.replace('source = "printed"', 'source = "assumed"'))
    res = run_module(
        "sim.capture", "--config", "glass2.toml", "--out", "o", "--quiet", cwd=tmp_path
    )
    assert res.returncode == 0, res.stderr


@pytest.mark.parametrize(
    ("process", "n_core", "n_clad", "core_um"),
    [("resin", 1.54, 1.41, 600.0), ("fdm", 1.49, 1.41, 500.0)],
)
def test_a_printed_faceplate_has_the_process_s_fiber(make_small, process, n_core, n_clad, core_um):
    """With the printed source the fiber's NA and core are the process's: its index step
    sqrt(n_core² − n_clad²) (0.619 for resin, 0.482 for FDM's PMMA in its matrix) and its core;
    left out, they are filled in; stated to rounding, made exact; stated otherwise, refused."""
    na = math.sqrt(n_core**2 - n_clad**2)
    face = {k: v for k, v in make_small().faceplate.model_dump().items()
            if k not in ("numerical_aperture", "core_diameter_um")}  # fmt: skip
    printed = {"source": "printed", "process": process}
    fp = make_small(faceplate=face, transmission=printed).faceplate
    assert fp.numerical_aperture == pytest.approx(na, rel=1e-12)
    assert fp.core_diameter_um == pytest.approx(core_um, rel=1e-12)
    rounded = {**face, "numerical_aperture": round(na, 2), "core_diameter_um": core_um}
    fp = make_small(faceplate=rounded, transmission=printed).faceplate
    assert fp.numerical_aperture == pytest.approx(na, rel=1e-12)
    for field, bad in (("numerical_aperture", round(na, 2) + 0.01), ("core_diameter_um", 700.0)):
        with pytest.raises(ValidationError, match=f"faceplate.{field} = .* disagrees"):
            make_small(faceplate={**rounded, field: bad}, transmission=printed)
        # a faceplate that is not printed states its own fiber
        own = make_small(faceplate={**rounded, field: bad}, transmission={"source": "assumed"})
        assert getattr(own.faceplate, field) == bad
    with pytest.raises(ValidationError, match=r"faceplate\.numerical_aperture"):  # not replaced
        make_small(faceplate={**rounded, "numerical_aperture": "wide"}, transmission=printed)
    assert make_small(faceplate=face).faceplate.numerical_aperture == 0.5  # the recipe default


def test_the_relay_collects_the_printed_cone_whatever_the_key_file_says(make_small, cache):
    """A key drawn for an NA 0.5 faceplate and used in a printed camera: the camera's fiber,
    and the cone its relay collects, are the printed fiber's."""
    cfg = _printed(make_small)
    old = keygen(cfg.faceplate.model_copy(update={"numerical_aperture": 0.5}))
    cam = Camera(cfg, old)
    na = ProcessConfig.preset("resin").numerical_aperture
    assert cam.config.faceplate.numerical_aperture == pytest.approx(na)
    assumed = Camera(
        make_small(faceplate={**cfg.faceplate.model_dump(), "numerical_aperture": 0.5})
    )
    ratio = cam.coupling_operator.sum() / assumed.coupling_operator.sum()
    assert ratio == pytest.approx((0.5 / na) ** 2, rel=1e-9)  # the relay cone is within both


def test_capture_refuses_a_faceplate_that_disagrees_with_the_printed_fiber(tmp_path, cache):
    from keycam_testing import assert_refused, run_module

    from sim.config import default_config_path

    text = default_config_path().read_text()
    bad = text.replace("# numerical_aperture = 0.619", "numerical_aperture = 0.5")
    assert bad != text
    (tmp_path / "bad.toml").write_text(bad)
    res = run_module("sim.capture", "--config", "bad.toml", "--out", "o", cwd=tmp_path)
    assert_refused(res, "numerical_aperture = 0.5 disagrees", "0.619", 'source = "assumed"')
    assert not (tmp_path / "o").exists()
