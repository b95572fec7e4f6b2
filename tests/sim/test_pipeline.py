"""The typed affine chain: stages compose, stop part-way and fuse to the same map."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest
import scipy.sparse as sp

from sim.camera import Camera
from sim.pipeline import AffineStage, Pipeline


def _random_chain(rng: np.random.Generator) -> Pipeline:
    sizes = [7, 5, 9, 4]
    stages = []
    for i, (n_in, n_out) in enumerate(pairwise(sizes)):
        m = sp.random(n_out, n_in, density=0.5, random_state=int(rng.integers(1 << 30)))
        offset = rng.normal(size=n_out) if i != 1 else None
        stages.append(AffineStage(f"s{i}", m, offset))
    return Pipeline(stages)


def test_operator_equals_stage_by_stage_and_hand_composition():
    rng = np.random.default_rng(0)
    p = _random_chain(rng)
    x = rng.normal(size=7)
    a, b = p.operator()
    # by hand: y = M2 (M1 (M0 x + c0)) + c2
    m0, m1, m2 = (s.matrix.toarray() for s in p)
    want = m2 @ (m1 @ (m0 @ x + p[0].offset)) + p[2].offset
    np.testing.assert_allclose(a @ x + b, want, rtol=1e-12)
    np.testing.assert_allclose(p.apply(x), want, rtol=1e-12)
    cols = rng.normal(size=(7, 3))
    np.testing.assert_allclose(p.apply(cols), (a @ cols) + b[:, None], rtol=1e-12)


def test_upto_after_then_and_fuse():
    rng = np.random.default_rng(1)
    p = _random_chain(rng)
    x = rng.normal(size=7)
    assert p.names == ("s0", "s1", "s2") and p["s1"] is p[1]
    mid = p.upto("s1")
    assert mid.names == ("s0", "s1") and mid.n_out == 9
    np.testing.assert_allclose(p.after("s1").apply(mid.apply(x)), p.apply(x), rtol=1e-12)
    fused = p.fuse("s0", "s1", name="front")
    assert fused.names == ("front", "s2")
    np.testing.assert_allclose(fused.apply(x), p.apply(x), rtol=1e-12)
    assert p.upto("s0").then(p["s1"], p["s2"]).names == p.names


def test_refusals_name_the_problem():
    m = sp.identity(3, format="csr")
    with pytest.raises(ValueError, match="takes 4 values"):
        Pipeline([AffineStage("a", m), AffineStage("b", sp.identity(4))])
    with pytest.raises(ValueError, match="unique"):
        Pipeline([AffineStage("a", m), AffineStage("a", m)])
    with pytest.raises(ValueError, match="offset has 2 values"):
        AffineStage("a", m, np.zeros(2))
    with pytest.raises(KeyError, match="no stage 'lens'"):
        Pipeline([AffineStage("a", m)]).upto("lens")
    with pytest.raises(ValueError, match="no stage follows"):
        Pipeline([AffineStage("a", m)]).after("a")
    with pytest.raises(ValueError, match="comes before"):
        Pipeline([AffineStage("a", m), AffineStage("b", m)]).fuse("b", "a")


def test_camera_pipeline_is_the_camera(small, smooth_scene):
    cam = Camera(small)
    assert cam.pipeline.names == ("lens", "sampling", "transfer", "coupling")
    x = cam.prepare_scene(smooth_scene).ravel()
    np.testing.assert_allclose(
        cam.pipeline.apply(x), cam.photon_rate(smooth_scene).ravel(), rtol=1e-12
    )
    a, b = cam.operator(exposure_s=0.02)
    np.testing.assert_allclose(cam.signal_pipeline(0.02).apply(x), a @ x + b, rtol=1e-12)
    # Stopping after the transfer gives the light leaving each output site.
    out = cam.pipeline.upto("transfer").apply(x)
    np.testing.assert_allclose(out, cam.fiber_operator @ x, rtol=1e-12)


def test_colour_camera_pipeline_ends_with_the_filter_mosaic(make_small, small, smooth_scene):
    lens = {**small.lens.model_dump(), "wavelength_nm": (610.0, 540.0, 465.0)}
    cam = Camera(make_small(colour="bayer_rggb", lens=lens))
    assert cam.pipeline.names[-1] == "colour_filter"
    rgb = np.repeat(smooth_scene[..., None], 3, axis=2) * np.array([1.0, 0.6, 0.3])
    x = np.moveaxis(cam.prepare_scene(rgb), 2, 0).reshape(-1)
    np.testing.assert_allclose(cam.pipeline.apply(x), cam.photon_rate(rgb).ravel(), rtol=1e-12)
