"""Lens model checks against the closed forms of models.md (Lens).

Tolerances are the ones written in models.md (Lens) unless stated next to a test.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from pydantic import ValidationError
from scipy.special import j1

from optics.lens import (
    LensConfig,
    cutoff_frequency_cyc_per_mm,
    distort,
    form_image,
    image_irradiance,
    image_operator,
    mtf,
    photon_flux_per_sample,
    psf,
    psf_is_negligible,
    psf_kernel,
    relative_illumination,
    undistort,
)

H = 6.62607015e-34  # J s (SI exact)
C = 299_792_458.0  # m/s (SI exact)


def mtf_formula(s):
    """Diffraction MTF of a circular pupil (models.md: Lens)."""
    s = np.asarray(s, float)
    out = (2 / np.pi) * (np.arccos(np.minimum(s, 1)) - s * np.sqrt(np.clip(1 - s * s, 0, None)))
    return np.where(s < 1, out, 0.0)


def lens_(**kw):
    base = dict(focal_length_mm=20.0, f_number=4.0, wavelength_nm=550.0)
    base.update(kw)
    return LensConfig(**base)


def radial(n):
    c = n // 2
    yy, xx = np.mgrid[:n, :n] - c
    return np.hypot(xx, yy)


def encircled(p, r_samples, radius_samples):
    return p[r_samples <= radius_samples].sum()


# ---------------------------------------------------------------- PSF -------------------------


@pytest.mark.parametrize(
    ("kw", "dx_um", "n"),
    [
        ({}, 0.275, 256),
        ({"defocus_waves": 5.0}, 1.0, 128),
        ({"f_number": 1.4, "wavelength_nm": 450.0}, 2.0, 33),  # coarse: strongly aliased
        ({"magnification": 1.0}, 0.5, 64),
        ({}, 50.0, 5),  # sample much larger than the Airy disc
    ],
)
def test_psf_sums_to_one_and_is_centred(kw, dx_um, n):
    p = psf(lens_(**kw), dx_um=dx_um, n=n)
    assert p.shape == (n, n)
    assert abs(p.sum() - 1.0) < 1e-6
    assert np.all(p >= 0)
    c = n // 2
    if not kw.get("defocus_waves"):  # a defocused PSF is a ring; its centroid still sits at c
        assert np.unravel_index(np.argmax(p), p.shape) == (c, c)
    idx = np.arange(n)
    near = np.abs(idx - c) < n // 4  # centroid of the core (the periodic tails wrap round)
    core_p = p[np.ix_(near, near)]
    cy = (core_p.sum(1) * idx[near]).sum() / core_p.sum()
    cx = (core_p.sum(0) * idx[near]).sum() / core_p.sum()
    assert abs(cy - c) < 1e-9 and abs(cx - c) < 1e-9
    # centrosymmetric about n//2 (circular pupil): compare with the 180° rotation about it
    half = min(c, n - 1 - c)
    core = p[c - half : c + half + 1, c - half : c + half + 1]
    np.testing.assert_allclose(core, core[::-1, ::-1], atol=1e-12)


@pytest.mark.parametrize(("f_number", "wl", "mag"), [(4.0, 550.0, None), (2.8, 650.0, 1.0)])
def test_first_zero_and_encircled_energy(f_number, wl, mag):
    lens = lens_(f_number=f_number, wavelength_nm=wl, magnification=mag)
    lam_n = wl * 1e-3 * f_number * (1 + (mag or 0.0))  # λ N_w in µm
    dx = lam_n / 8
    n = 256
    p = psf(lens, dx_um=dx, n=n)
    prof = p[n // 2, n // 2 :]
    k = int(np.flatnonzero((prof[1:-1] < prof[:-2]) & (prof[1:-1] <= prof[2:]))[0]) + 1
    assert abs(k * dx - 1.2197 * lam_n) <= dx / 2
    ee = encircled(p, radial(n) * dx, 1.2197 * lam_n)
    assert abs(ee - 0.838) <= 0.005


def test_psf_matches_airy_profile():
    """Pixel-integrated PSF vs the Airy formula [2 J1(v)/v]², v = π r/(λN) (fine sampling)."""
    lam_n = 0.55 * 4
    dx = lam_n / 16
    n = 512
    p = psf(lens_(), dx_um=dx, n=n)
    r = np.arange(1, 60) * dx
    v = np.pi * r / lam_n
    airy = (2 * j1(v) / v) ** 2
    got = p[n // 2, n // 2 + 1 : n // 2 + 60] / p[n // 2, n // 2]
    # pixel integration at λN/16 changes the profile by < 0.1 % of the peak
    np.testing.assert_allclose(got, airy, atol=1e-3)


def test_mtf_of_sampled_psf_matches_formula():
    lam_n = 0.55 * 4
    dx = lam_n / 8
    n = 256  # ν_c sits at DFT index n dx / (λN) = 32
    p = psf(lens_(), dx_um=dx, n=n)
    spec = np.abs(np.fft.fft2(np.fft.ifftshift(p)))
    for s in (0.25, 0.5, 0.75):
        k = round(s * n * dx / lam_n)
        assert abs(spec[0, k] - mtf_formula(s)) <= 0.01
        assert abs(spec[k, 0] - mtf_formula(s)) <= 0.01
    beyond = spec[0, 33 : n // 2]
    assert beyond.max() < 1e-3
    diag = np.hypot(*np.meshgrid(np.fft.fftfreq(n), np.fft.fftfreq(n))) * n
    assert spec[diag > 32.5].max() < 1e-3


def test_analytic_mtf_reference_numbers():
    lens = lens_()
    nu_c = cutoff_frequency_cyc_per_mm(lens)
    assert abs(nu_c - 454.5) < 0.1
    got = mtf(lens, np.array([0.25, 0.5, 0.75, 1.0, 1.3]) * nu_c)
    np.testing.assert_allclose(got[:3], [0.6850, 0.3910, 0.1443], atol=1e-4)
    assert np.all(got[3:] == 0)


def test_defocused_psf_against_pupil_fft():
    """Independent check of the defocus OTF: |FFT of the defocused pupil|² (models.md: Lens)."""
    w020, m, dp = 3.0, 1024, 128
    y, x = (np.mgrid[:m, :m] - m / 2 + 0.5) / (dp / 2)
    rho2 = x * x + y * y
    pupil = np.where(rho2 <= 1, np.exp(2j * np.pi * w020 * rho2), 0)
    ref = np.abs(np.fft.fftshift(np.fft.fft2(pupil))) ** 2
    ref /= ref.sum()
    lam_n = 0.55 * 4
    p = psf(lens_(defocus_waves=w020), dx_um=lam_n * dp / m, n=m)
    r = np.minimum(radial(m), 199).astype(int).ravel()
    ee_ref = np.cumsum(np.bincount(r, ref.ravel()))
    ee = np.cumsum(np.bincount(r, p.ravel()))
    # pupil pixelation (128 samples across) limits the reference to a few 1e-3
    assert np.abs(ee - ee_ref)[:150].max() < 0.005
    # the analytic (Hopkins) MTF against the MTF of the reference PSF, along the x axis
    ref_mtf = np.abs(np.fft.fft(ref.sum(axis=0)))
    k = np.arange(1, dp)  # DFT index k ↔ s = k / dp
    nu_c = cutoff_frequency_cyc_per_mm(lens_())
    got = mtf(lens_(defocus_waves=w020), k / dp * nu_c)
    assert np.abs(got - ref_mtf[k]).max() < 0.01
    assert ref_mtf[k].min() < 0.02 < ref_mtf[k].max() - 0.3  # defocus puts zeros in the MTF


@pytest.mark.parametrize("w020", [5.0, 10.0, -20.0])
def test_defocus_blur_diameter(w020):
    """Geometric blur ≈ Δz/N, Δz = 8 N² λ W020; for a uniform disc EE(r50) = ½ ⇒ D = 2√2 r50."""
    n_f, wl_um = 4.0, 0.55
    d_geo = 8 * n_f**2 * wl_um * abs(w020) / n_f
    dx = d_geo / 60
    n = 256
    p = psf(lens_(defocus_waves=w020), dx_um=dx, n=n)
    r = (radial(n) * dx).ravel()
    order = np.argsort(r)
    r50 = r[order][np.searchsorted(np.cumsum(p.ravel()[order]), 0.5)]
    assert abs(2 * np.sqrt(2) * r50 / d_geo - 1) < 0.10


def test_multi_wavelength_psf_needs_a_wavelength_and_scales():
    lens = lens_(wavelength_nm=(650.0, 550.0, 450.0))
    with pytest.raises(ValueError, match="wavelength_nm"):
        psf(lens, dx_um=0.2, n=64)
    ee = []
    for wl in lens.wavelengths_nm:
        p = psf(lens, dx_um=0.2, n=256, wavelength_nm=wl)
        ee.append(encircled(p, radial(256) * 0.2, 1.2197 * wl * 1e-3 * 4))
    np.testing.assert_allclose(ee, 0.838, atol=0.006)


def test_working_f_number_and_conjugates():
    lens = lens_(object_distance_mm=40.0)  # s_o = 2f ⇒ |m| = 1
    assert lens.abs_magnification == pytest.approx(1.0)
    assert lens.image_distance_mm == pytest.approx(40.0)
    assert lens.working_f_number == pytest.approx(8.0)
    assert cutoff_frequency_cyc_per_mm(lens) == pytest.approx(1 / (550e-6 * 8))


# ---------------------------------------------------------------- vignetting, distortion -----


def test_cos4_relative_illumination():
    lens = lens_()
    r = np.linspace(0, 25, 51)
    np.testing.assert_allclose(
        relative_illumination(lens, r), np.cos(np.arctan(r / 20.0)) ** 4, atol=1e-3
    )
    finite = lens_(magnification=0.5)
    np.testing.assert_allclose(
        relative_illumination(finite, r), np.cos(np.arctan(r / 30.0)) ** 4, atol=1e-3
    )
    assert np.all(relative_illumination(lens_(vignetting=False), r) == 1)


@pytest.mark.parametrize("pupil_mm", [4.0, 35.0, 300.0])
def test_exit_pupil_sets_the_cos4_angle(pupil_mm):
    """cos⁴ law of the exit pupil: E = π L T sin²u' cos⁴θ', θ' = atan(r / p) (models.md: Lens).

    With the exit pupil placed, the conjugates no longer set the angle, and the cone (working
    f-number: PSF, irradiance on the axis) stays what it was.
    """
    r = np.linspace(0, 25, 51)
    want = np.cos(np.arctan(r / pupil_mm)) ** 4
    for kw in ({}, {"magnification": 0.5}):
        lens = lens_(exit_pupil_distance_mm=pupil_mm, **kw)
        assert lens.pupil_distance_mm == pupil_mm
        np.testing.assert_allclose(relative_illumination(lens, r), want, rtol=1e-12, atol=0)
        n_w = 4.0 * (1 + kw.get("magnification", 0.0))
        assert lens.working_f_number == pytest.approx(n_w)
        e_axis = np.pi * 2.0 / (1 + 4 * n_w**2)
        np.testing.assert_allclose(image_irradiance(lens, 2.0, r), e_axis * want, rtol=1e-12)
        same_cone = lens_(**kw)
        assert np.array_equal(psf(lens, dx_um=1.0, n=33), psf(same_cone, dx_um=1.0, n=33))


def test_a_distant_exit_pupil_is_image_side_telecentric():
    """Chief rays parallel to the axis: no natural vignetting (cos⁴θ' = 1 within 1e-6)."""
    lens = lens_(exit_pupil_distance_mm=1e6)
    r = np.linspace(0, 25, 51)
    assert np.max(np.abs(relative_illumination(lens, r) - 1.0)) < 1e-6
    assert relative_illumination(lens_(), 25.0) < 0.3  # the same lens with its stop at the lens


@pytest.mark.parametrize(
    ("kw", "s_i"),
    [({}, 20.0), ({"magnification": 0.5}, 30.0), ({"object_distance_mm": 60.0}, 30.0)],
)
def test_no_exit_pupil_is_a_stop_at_the_lens(kw, s_i):
    """``exit_pupil_distance_mm = None`` keeps the thin lens with its stop at the lens: the
    exit pupil at ``s_i``, the values bit for bit ``cos⁴(atan(r/s_i)) = 1/(1 + (r/s_i)²)²``."""
    r = np.linspace(0, 25, 51)
    lens = lens_(**kw)
    assert lens.exit_pupil_distance_mm is None
    assert lens.image_distance_mm == pytest.approx(s_i) and lens.pupil_distance_mm == s_i
    got = relative_illumination(lens, r)
    assert np.array_equal(got, 1.0 / (1.0 + (r / lens.image_distance_mm) ** 2) ** 2)
    at_lens = lens_(exit_pupil_distance_mm=lens.image_distance_mm, **kw)
    assert np.array_equal(relative_illumination(at_lens, r), got)


def opencv_distort(x, y, k1, k2, k3, p1, p2):
    r2 = x * x + y * y
    rad = 1 + k1 * r2 + k2 * r2**2 + k3 * r2**3
    return (
        x * rad + 2 * p1 * x * y + p2 * (r2 + 2 * x * x),
        y * rad + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y,
    )


def test_zero_distortion_is_identity():
    lens = lens_()
    rng = np.random.default_rng(3)
    x, y = rng.uniform(-5, 5, (2, 100))
    for fn in (distort, undistort):
        xd, yd = fn(lens, x, y)
        assert np.array_equal(xd, x) and np.array_equal(yd, y)


def test_known_distortion_moves_points_as_formula():
    coeffs = dict(k1=-0.12, k2=0.03, k3=-0.004, p1=0.002, p2=-0.0015)
    lens = lens_(**coeffs)
    dx_mm = 0.005  # 5 µm samples: tolerance 1e-3 px = 5 nm
    rng = np.random.default_rng(4)
    x, y = rng.uniform(-6, 6, (2, 500))
    xd, yd = distort(lens, x, y)
    ex, ey = opencv_distort(x / 20, y / 20, *coeffs.values())
    assert np.max(np.hypot(xd - 20 * ex, yd - 20 * ey)) / dx_mm < 1e-3
    xu, yu = undistort(lens, xd, yd)
    assert np.max(np.hypot(xu - x, yu - y)) / dx_mm < 1e-3


def test_folding_distortion_is_rejected():
    lens = lens_(k1=-0.5)  # r(1 + k1 r²) peaks at r = 0.816 (normalised) then folds back
    with pytest.raises(ValueError, match="folds"):
        undistort(lens, np.array([15.0]), np.array([0.0]))  # r_d = 0.75 > max 0.544


# ---------------------------------------------------------------- image formation ------------

FOV = 40.0  # full horizontal field of the test scenes, degrees


def plane_half_width_mm(lens, fov=FOV):
    return lens.image_distance_mm * np.tan(np.radians(fov / 2))


def test_uniform_radiance_gives_predicted_photon_flux():
    lens = lens_(transmission=0.8, magnification=0.25, f_number=2.8)
    n_w = 2.8 * 1.25
    dx_um, shape = 20.0, (64, 96)
    img = form_image(
        np.full((200, 300), 0.5),
        lens,
        scene_fov_deg=FOV,
        dx_um=dx_um,
        shape=shape,
        radiance_w_m2_sr=3.0,
    )
    ny, nx = shape
    xs = (np.arange(nx) - (nx - 1) / 2) * dx_um * 1e-3
    ys = (np.arange(ny) - (ny - 1) / 2) * dx_um * 1e-3
    r = np.hypot(xs[None, :], ys[:, None])
    theta = np.arctan(r / (20.0 * 1.25))
    e = np.pi * 1.5 * 0.8 / (1 + 4 * n_w**2) * np.cos(theta) ** 4
    expected = e * (dx_um * 1e-6) ** 2 * 550e-9 / (H * C)
    np.testing.assert_allclose(img, expected, rtol=0.01)
    np.testing.assert_allclose(
        photon_flux_per_sample(lens, 1.5, dx_um=dx_um, r_mm=r), expected, rtol=1e-9
    )
    np.testing.assert_allclose(image_irradiance(lens, 1.5, r), e, rtol=1e-9)


def test_vignetting_in_form_image_follows_cos4():
    """Wide field (θ up to 41°): flux relative to the axis equals cos⁴θ within 1e-3."""
    lens = lens_()
    shape, dx_um = (48, 64), 500.0
    img = form_image(np.ones((300, 400)), lens, scene_fov_deg=90.0, dx_um=dx_um, shape=shape)
    flat = form_image(
        np.ones((300, 400)), lens_(vignetting=False), scene_fov_deg=90.0, dx_um=dx_um, shape=shape
    )
    ny, nx = shape
    xs = (np.arange(nx) - (nx - 1) / 2) * dx_um * 1e-3
    ys = (np.arange(ny) - (ny - 1) / 2) * dx_um * 1e-3
    theta = np.arctan(np.hypot(xs[None, :], ys[:, None]) / 20.0)
    assert np.degrees(theta.max()) > 40
    np.testing.assert_allclose(img / flat, np.cos(theta) ** 4, atol=1e-3)
    np.testing.assert_allclose(flat, flat[0, 0], rtol=1e-9)  # no vignetting: uniform


def test_form_image_vignetting_follows_the_exit_pupil():
    """Flux relative to an unvignetted lens is cos⁴(atan(r/p)) at each sample (θ' up to 68°)
    in the image and in the operator; an exit pupil at s_i is the lens without one, bit for bit.
    """
    shape, dx_um = (48, 64), 500.0
    kw = dict(scene_fov_deg=90.0, dx_um=dx_um, shape=shape)
    scene = np.ones((300, 400))
    flat = form_image(scene, lens_(vignetting=False), **kw)
    ny, nx = shape
    xs = (np.arange(nx) - (nx - 1) / 2) * dx_um * 1e-3
    ys = (np.arange(ny) - (ny - 1) / 2) * dx_um * 1e-3
    r = np.hypot(xs[None, :], ys[:, None])
    for p in (8.0, 60.0):
        lens = lens_(exit_pupil_distance_mm=p)
        img = form_image(scene, lens, **kw)
        np.testing.assert_allclose(img / flat, np.cos(np.arctan(r / p)) ** 4, atol=1e-3)
        op = image_operator(lens, scene_shape=scene.shape, **kw)
        np.testing.assert_allclose(op @ scene.ravel(), img.ravel(), rtol=1e-12)
    far = form_image(scene, lens_(exit_pupil_distance_mm=1e6), **kw)
    np.testing.assert_allclose(far / flat, 1.0, rtol=0, atol=1e-6)
    at_lens = form_image(scene, lens_(exit_pupil_distance_mm=20.0), **kw)
    assert np.array_equal(at_lens, form_image(scene, lens_(), **kw))


def test_orientation_is_upright():
    lens = lens_()
    scene = np.zeros((90, 120))
    scene[10:30, 15:40] = 1.0  # top-left
    scene[60:80, 90:110] = 0.25  # bottom-right, dimmer
    img = form_image(scene, lens, scene_fov_deg=FOV, dx_um=250.0, shape=(60, 80), psf="off")
    ny, nx = img.shape
    tl = img[: ny // 2, : nx // 2].sum()
    br = img[ny // 2 :, nx // 2 :].sum()
    assert tl > 3 * br > 0
    assert img[: ny // 2, nx // 2 :].sum() == 0 and img[ny // 2 :, : nx // 2].sum() == 0


def test_blur_conserves_flux():
    lens = lens_(defocus_waves=4.0)
    rng = np.random.default_rng(5)
    scene = np.zeros((128, 128))
    scene[40:90, 30:100] = rng.random((50, 70))
    # the scene spans ±0.26 mm, the plane ±0.32 mm: no light falls off the plane
    kw = dict(scene_fov_deg=1.5, dx_um=4.0, shape=(160, 160))
    sharp = form_image(scene, lens, psf="off", **kw)
    blurred = form_image(scene, lens, psf="on", **kw)
    assert sharp[0].sum() == 0 and sharp[:, 0].sum() == 0  # scene lies inside the plane
    assert abs(blurred.sum() / sharp.sum() - 1) < 1e-9
    assert not np.allclose(blurred, sharp, rtol=0.05)


@pytest.mark.parametrize(
    "coeffs",
    [dict(k1=-0.2, k2=0.05, p1=0.003, p2=-0.002), dict(k1=0.3, k2=-0.1, k3=0.05)],
)
def test_distortion_moves_light_as_formula_and_keeps_flux(coeffs):
    """The image of a smooth blob lands where the formula maps its light, flux unchanged.

    Distortion only moves light, so the image centroid must equal the flux-weighted mean of
    the distorted scene-pixel positions (computed here from the OpenCV formula).
    """
    full = dict(k1=0.0, k2=0.0, k3=0.0, p1=0.0, p2=0.0) | coeffs
    lens = lens_(vignetting=False, **coeffs)
    yy, xx = np.mgrid[:300, :300]
    scene = np.exp(-((yy - 205.3) ** 2 + (xx - 241.7) ** 2) / (2 * 4.0**2))  # off-axis blob
    n, dx_mm = 400, 0.04
    kw = dict(scene_fov_deg=FOV, dx_um=dx_mm * 1e3, shape=(n, n), psf="off")
    img = form_image(scene, lens, **kw)
    ideal = form_image(scene, lens_(vignetting=False), **kw)
    assert abs(img.sum() / ideal.sum() - 1) < 1e-3
    a = 2 * np.tan(np.radians(FOV / 2)) / 300  # scene pixel pitch in tan θ
    tx, ty = (xx + 0.5 - 150) * a, (yy + 0.5 - 150) * a
    xd, yd = opencv_distort(tx, ty, *full.values())
    ex = (scene * xd).sum() / scene.sum() * 20.0 / dx_mm  # expected centroid, samples
    ey = (scene * yd).sum() / scene.sum() * 20.0 / dx_mm
    rows, cols = np.mgrid[:n, :n]
    cx = (img * cols).sum() / img.sum() - (n - 1) / 2
    cy = (img * rows).sum() / img.sum() - (n - 1) / 2
    ix = (scene * tx).sum() / scene.sum() * 20.0 / dx_mm  # undistorted centroid, samples
    iy = (scene * ty).sum() / scene.sum() * 20.0 / dx_mm
    assert np.hypot(ex - ix, ey - iy) > 1.0  # the distortion moves it by whole samples
    assert abs(cx - ex) < 1e-3 and abs(cy - ey) < 1e-3


def test_area_weighting_does_not_alias():
    """A one-pixel checkerboard onto samples of exactly 2×2 scene pixels averages to grey."""
    lens = lens_(vignetting=False)
    n = 512
    scene = ((np.add.outer(np.arange(n), np.arange(n)) % 2) == 0).astype(float)
    half_mm = plane_half_width_mm(lens)
    dx_um = 2 * half_mm / 256 * 1e3  # 256 samples span the scene exactly
    img = form_image(scene, lens, scene_fov_deg=FOV, dx_um=dx_um, shape=(256, 256), psf="off")
    assert img.std() / img.mean() < 1e-9
    flat = form_image(np.full((n, n), 0.5), lens, scene_fov_deg=FOV, dx_um=dx_um, shape=(256, 256))
    np.testing.assert_allclose(img, flat, rtol=1e-9)
    # non-integer ratio: flux of a random scene is kept (scene fully inside the plane)
    rng = np.random.default_rng(6)
    scene = rng.random((n, n))
    big = form_image(scene, lens, scene_fov_deg=FOV, dx_um=dx_um * 1.37, shape=(200, 200))
    fine = form_image(scene, lens, scene_fov_deg=FOV, dx_um=dx_um / 2, shape=(520, 520))
    assert abs(big.sum() / fine.sum() - 1) < 1e-9


def test_operator_equals_form_image_with_psf():
    lens = lens_(k1=-0.05, p1=0.001, defocus_waves=1.0)
    rng = np.random.default_rng(7)
    scene = rng.random((96, 128))
    kw = dict(scene_fov_deg=2.0, dx_um=3.0, shape=(48, 64), radiance_w_m2_sr=2.0)
    op = image_operator(lens, scene_shape=scene.shape, **kw)
    assert isinstance(op, sp.csr_matrix) and op.shape == (48 * 64, 96 * 128)
    k = psf_kernel(lens, dx_um=3.0)
    assert k.shape[0] > 1  # this regime includes the blur
    img = form_image(scene, lens, **kw)
    np.testing.assert_allclose(op @ scene.ravel(), img.ravel(), rtol=1e-10, atol=1e-9 * img.max())


def test_operator_without_psf_when_negligible():
    lens = lens_()
    rng = np.random.default_rng(8)
    scene = rng.random((120, 160))
    kw = dict(scene_fov_deg=FOV, dx_um=40.0, shape=(100, 120))  # dx = 18 λN: Airy ≪ sample
    op = image_operator(lens, scene_shape=scene.shape, **kw)
    img = form_image(scene, lens, **kw)
    np.testing.assert_allclose(op @ scene.ravel(), img.ravel(), rtol=1e-12)
    # "exact enough": adding the blur changes the image by well under 1 % here
    blurred = form_image(scene, lens, psf="on", **kw)
    assert np.max(np.abs(blurred - img)) < 0.01 * img.max()


def test_operator_channels_match_colour_form_image():
    lens = lens_(wavelength_nm=(650.0, 550.0, 450.0))
    rng = np.random.default_rng(9)
    scene = rng.random((40, 50, 3))
    kw = dict(scene_fov_deg=1.0, dx_um=2.0, shape=(30, 36))
    img = form_image(scene, lens, **kw)
    assert img.shape == (30, 36, 3)
    for c in range(3):
        op = image_operator(lens, scene_shape=(40, 50), channel=c, **kw)
        np.testing.assert_allclose(op @ scene[..., c].ravel(), img[..., c].ravel(), rtol=1e-9)


def test_psf_auto_criterion_matches_mtf_threshold():
    """Blur is skipped iff the in-focus MTF at the sampling Nyquist 1/(2 dx) is >= 0.9."""
    from scipy.optimize import brentq

    lam_n = 0.55 * 4
    s90 = brentq(lambda s: mtf_formula(s) - 0.9, 1e-6, 0.5)
    dx_star = lam_n / (2 * s90)
    assert 6.0 * lam_n < dx_star < 6.6 * lam_n  # "dx ≥ 6.3 λN" in the docs
    assert psf_is_negligible(lens_(), dx_um=1.02 * dx_star, wavelength_nm=550.0)
    assert not psf_is_negligible(lens_(), dx_um=0.98 * dx_star, wavelength_nm=550.0)
    # defocus makes the blur matter at the same sampling
    assert not psf_is_negligible(
        lens_(defocus_waves=2.0), dx_um=1.02 * dx_star, wavelength_nm=550.0
    )


def test_psf_kernel_holds_requested_energy():
    lens = lens_()
    for energy in (0.9, 0.98):
        k = psf_kernel(lens, dx_um=1.0, psf_energy=energy)
        r = k.shape[0] // 2
        assert k.shape == (2 * r + 1, 2 * r + 1) and abs(k.sum() - 1) < 1e-12
        big = psf(lens, dx_um=1.0, n=4 * r + 41)
        c = big.shape[0] // 2
        inside = big[c - r : c + r + 1, c - r : c + r + 1].sum()
        smaller = big[c - r + 1 : c + r, c - r + 1 : c + r].sum()
        assert smaller < energy + 0.002 and inside >= energy - 0.002


def test_operator_for_512_scene_on_256_plane():
    lens = lens_(k1=-0.05)
    dx_um = 2 * 20.0 * np.tan(np.radians(10.0)) / 256 * 1e3  # 256 samples span the scene
    op = image_operator(
        lens, scene_shape=(512, 512), scene_fov_deg=20.0, dx_um=dx_um, shape=(256, 256)
    )
    assert op.shape == (256 * 256, 512 * 512) and op.format == "csr"
    # dx = 12.5 λN: no blur; each sample integrates about 2x2 (at most 3x3) scene pixels
    assert 4 * 256 * 256 * 0.9 < op.nnz <= 9 * 256 * 256
    assert np.all(op.data > 0)
    # a uniform scene gives flux ∝ the sample's (distorted) area; total is the ideal total
    flat = op @ np.ones(512 * 512)
    ideal = image_operator(
        lens_(), scene_shape=(512, 512), scene_fov_deg=20.0, dx_um=dx_um, shape=(256, 256)
    )
    inside = (ideal @ np.ones(512 * 512)).reshape(256, 256)[100:156, 100:156]
    center = flat.reshape(256, 256)[100:156, 100:156]
    np.testing.assert_allclose(center, inside, rtol=0.01)  # near the axis distortion is mild


def test_config_from_toml_and_schema():
    import json
    import tomllib

    doc = tomllib.loads(
        "focal_length_mm = 50.0\nf_number = 2.0\nwavelength_nm = [650.0, 550.0, 450.0]\n"
        "object_distance_mm = 550.0\nk1 = -0.02\n"
    )
    lens = LensConfig(**doc)
    assert lens.wavelengths_nm == (650.0, 550.0, 450.0) and lens.n_channels == 3
    assert lens.abs_magnification == pytest.approx(0.1)
    assert lens.working_f_number == pytest.approx(2.2)
    assert hash(lens) == hash(LensConfig(**doc))
    schema = json.loads(json.dumps(LensConfig.model_json_schema()))
    assert schema["additionalProperties"] is False
    assert "mm" in schema["properties"]["focal_length_mm"]["description"]
    assert "mm" in schema["properties"]["exit_pupil_distance_mm"]["description"]
    far = LensConfig(**tomllib.loads("focal_length_mm = 50.0\nf_number = 2.0\n"
                                     "exit_pupil_distance_mm = 400.0\n"))  # fmt: skip
    assert far.exit_pupil_distance_mm == 400.0 and far.pupil_distance_mm == 400.0


# ---------------------------------------------------------------- bad input ------------------


@pytest.mark.parametrize(
    ("kw", "name"),
    [
        ({"f_number": -1}, "f_number"),
        ({"focal_length_mm": 0}, "focal_length_mm"),
        ({"wavelength_nm": 100.0}, "wavelength_nm"),
        ({"wavelength_nm": (550.0, 3000.0)}, "wavelength_nm"),
        ({"transmission": 1.5}, "transmission"),
        ({"defocus_waves": 60.0}, "defocus_waves"),
        ({"defocus_waves": float("nan")}, "defocus_waves"),
        ({"object_distance_mm": 10.0}, "object_distance_mm"),
        ({"object_distance_mm": 100.0, "magnification": 0.1}, "magnification"),
        ({"aperture": 3}, "aperture"),
        ({"exit_pupil_distance_mm": 0}, "exit_pupil_distance_mm"),
        ({"exit_pupil_distance_mm": -20.0}, "exit_pupil_distance_mm"),
        ({"exit_pupil_distance_mm": 2e6}, "exit_pupil_distance_mm"),
        ({"exit_pupil_distance_mm": float("inf")}, "exit_pupil_distance_mm"),
        ({"exit_pupil_distance_mm": True}, "exit_pupil_distance_mm"),
    ],
)
def test_bad_config_names_the_field(kw, name):
    with pytest.raises(ValidationError, match=name):
        lens_(**kw)


def test_config_is_frozen():
    lens = lens_()
    with pytest.raises(ValidationError):
        lens.f_number = 2.0


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda L: psf(L, dx_um=0, n=16), "dx_um"),
        (lambda L: psf(L, dx_um=1.0, n=0), "n"),
        (lambda L: mtf(L, -1.0), "freq_cyc_per_mm"),
        (
            lambda L: form_image(np.ones((4, 4)), L, scene_fov_deg=190, dx_um=1, shape=(4, 4)),
            "scene_fov_deg",
        ),
        (
            lambda L: form_image(np.ones((4, 4)), L, scene_fov_deg=10, dx_um=-1, shape=(4, 4)),
            "dx_um",
        ),
        (
            lambda L: form_image(np.ones((4, 4)), L, scene_fov_deg=10, dx_um=1, shape=(0, 4)),
            "shape",
        ),
        (
            lambda L: form_image(np.ones((4, 4)), L, scene_fov_deg=10, dx_um=1, shape=(4.5, 4)),
            "shape",
        ),
        (
            lambda L: form_image(-np.ones((4, 4)), L, scene_fov_deg=10, dx_um=1, shape=(4, 4)),
            "scene",
        ),
        (
            lambda L: form_image(np.ones((4, 4, 3)), L, scene_fov_deg=10, dx_um=1, shape=(4, 4)),
            "channel",
        ),
        (
            lambda L: form_image(
                np.ones((4, 4)), L, scene_fov_deg=10, dx_um=1, shape=(4, 4), psf="maybe"
            ),
            "psf",
        ),
        (
            lambda L: form_image(
                np.ones((4, 4)), L, scene_fov_deg=10, dx_um=1, shape=(4, 4), radiance_w_m2_sr=-2
            ),
            "radiance_w_m2_sr",
        ),
        (
            lambda L: image_operator(
                L, scene_shape=(4, 4), scene_fov_deg=10, dx_um=1, shape=(4, 4), channel=1
            ),
            "channel",
        ),
    ],
)
def test_bad_arguments_name_the_parameter(call, name):
    with pytest.raises(ValueError, match=name):
        call(lens_())
