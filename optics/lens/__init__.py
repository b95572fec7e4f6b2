"""Thin-lens camera optics: diffraction PSF/MTF, defocus, vignetting, distortion, radiometry.

The lens forms the scene on the faceplate's input face. Conventions:

* **Conjugates.** Thin lens ``1/f = 1/s_o + 1/s_i``; ``|m| = s_i/s_o = f/(s_o − f)``; image
  distance ``s_i = f (1 + |m|)``; working f-number ``N_w = N (1 + |m|)``. Everything image-side
  (PSF, MTF, irradiance) uses ``N_w``; for an object at infinity ``N_w = N`` and ``s_i = f``.
* **Field angle.** A point at ideal (undistorted) image radius ``r`` sees the scene at
  ``θ = atan(r / s_i)`` (``atan(r/f)`` at infinity).
* **Exit pupil.** The chief ray reaches that point at ``θ' = atan(r / p)``, ``p`` the distance
  from the image to the exit pupil (``exit_pupil_distance_mm``; ``s_i`` when unset, a stop at
  the lens, so ``θ' = θ``). Natural vignetting is ``cos⁴θ'`` and the light cone entering the
  faceplate is tilted by ``θ'``; a large ``p`` approaches an image-side telecentric lens.
* **Orientation.** A thin lens inverts the image. keycam presents the image plane *upright*,
  as seen looking at the scene: row 0 is the top of the scene, column 0 its left edge, ``x``
  to the right and ``y`` **down** (OpenCV's camera frame). The physical image on the faceplate
  is this array rotated by 180° when viewed from behind the lens looking at the scene.
* **Distortion.** Brown–Conrady in normalised coordinates ``x/s_i`` (``x/f`` at infinity),
  exactly OpenCV's model (see :mod:`optics.lens.distortion`).
* **Defocus.** ``defocus_waves`` is ``W020`` in waves at the first listed wavelength; the
  physical path error is fixed, so at wavelength ``λ`` it is ``W020 λ_0 / λ``. Image shift
  ``Δz = 8 N_w² λ W020``, geometric blur diameter ``Δz / N_w``.

Modules: :mod:`~optics.lens.config` (:class:`LensConfig`), :mod:`~optics.lens.model` (PSF, MTF,
vignetting, distortion, irradiance), :mod:`~optics.lens.imaging` (image formation:
``form_image`` and its exact sparse form ``image_operator``), and the closed forms in
:mod:`~optics.lens.diffraction`, :mod:`~optics.lens.distortion`, :mod:`~optics.lens.radiometry`.
"""

from optics.lens.config import LensConfig, resolve_wavelength
from optics.lens.imaging import form_image, image_operator, psf_is_negligible, psf_kernel
from optics.lens.model import (
    cutoff_frequency_cyc_per_mm,
    distort,
    image_irradiance,
    mtf,
    photon_flux_per_sample,
    psf,
    relative_illumination,
    undistort,
)

__all__ = [
    "LensConfig",
    "cutoff_frequency_cyc_per_mm",
    "distort",
    "form_image",
    "image_irradiance",
    "image_operator",
    "mtf",
    "photon_flux_per_sample",
    "psf",
    "psf_is_negligible",
    "psf_kernel",
    "relative_illumination",
    "resolve_wavelength",
    "undistort",
]
