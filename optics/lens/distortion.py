"""Brown–Conrady lens distortion in normalised image coordinates (the OpenCV model).

Coordinates are normalised by the image distance: ``x = X / s_i``, ``y = Y / s_i`` (for an object
at infinity ``s_i = f``), i.e. ``x = tan`` of the field angle along x for an ideal lens. As in
OpenCV's camera frame, ``x`` points right and ``y`` points **down** in the presented (upright)
image, so row index grows with ``y``. The forward model (models.md: Lens)::

    r² = x² + y²,  R = 1 + k1 r² + k2 r⁴ + k3 r⁶
    x_d = x R + 2 p1 x y + p2 (r² + 2 x²)
    y_d = y R + p1 (r² + 2 y²) + 2 p2 x y

maps ideal (undistorted) positions to distorted ones; :func:`undistort_normalized` inverts it
by Newton's method.
"""

from __future__ import annotations

import numpy as np

__all__ = ["distort_normalized", "distortion_jacobian", "undistort_normalized"]


def distort_normalized(
    x: np.ndarray, y: np.ndarray, coeffs: tuple[float, float, float, float, float]
) -> tuple[np.ndarray, np.ndarray]:
    """Apply Brown–Conrady distortion to normalised coordinates.

    Parameters
    ----------
    x, y : array_like of float
        Ideal normalised coordinates (dimensionless, broadcastable).
    coeffs : tuple of 5 floats
        ``(k1, k2, k3, p1, p2)``.

    Returns
    -------
    x_d, y_d : ndarray of float
        Distorted normalised coordinates.
    """
    k1, k2, k3, p1, p2 = coeffs
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    r2 = x * x + y * y
    radial = 1.0 + r2 * (k1 + r2 * (k2 + r2 * k3))
    xd = x * radial + 2.0 * p1 * x * y + p2 * (r2 + 2.0 * x * x)
    yd = y * radial + p1 * (r2 + 2.0 * y * y) + 2.0 * p2 * x * y
    return xd, yd


def distortion_jacobian(
    x: np.ndarray, y: np.ndarray, coeffs: tuple[float, float, float, float, float]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Partial derivatives ``(∂x_d/∂x, ∂x_d/∂y, ∂y_d/∂x, ∂y_d/∂y)`` of the forward model."""
    k1, k2, k3, p1, p2 = coeffs
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    r2 = x * x + y * y
    radial = 1.0 + r2 * (k1 + r2 * (k2 + r2 * k3))
    g = 2.0 * k1 + r2 * (4.0 * k2 + 6.0 * k3 * r2)  # (dR/dx) / x
    jxx = radial + g * x * x + 2.0 * p1 * y + 6.0 * p2 * x
    jxy = g * x * y + 2.0 * p1 * x + 2.0 * p2 * y
    jyx = g * x * y + 2.0 * p1 * x + 2.0 * p2 * y
    jyy = radial + g * y * y + 6.0 * p1 * y + 2.0 * p2 * x
    return jxx, jxy, jyx, jyy


def undistort_normalized(
    xd: np.ndarray,
    yd: np.ndarray,
    coeffs: tuple[float, float, float, float, float],
    *,
    tol: float = 1e-12,
    max_iter: int = 50,
) -> tuple[np.ndarray, np.ndarray]:
    """Invert :func:`distort_normalized` (Newton's method from ``x = x_d``).

    Parameters
    ----------
    xd, yd : array_like of float
        Distorted normalised coordinates.
    coeffs : tuple of 5 floats
        ``(k1, k2, k3, p1, p2)``.
    tol : float
        Convergence threshold on the residual, in normalised units.
    max_iter : int
        Newton iterations before giving up.

    Returns
    -------
    x, y : ndarray of float
        Ideal coordinates with ``distort(x, y) == (xd, yd)`` to ``tol``.

    Raises
    ------
    ValueError
        If some point has no preimage on the unfolded branch of the mapping (the distortion
        folds over inside the requested field: ``det J ≤ 0`` or no convergence).
    """
    xd, yd = np.broadcast_arrays(np.asarray(xd, dtype=float), np.asarray(yd, dtype=float))
    if not any(coeffs):
        return xd.copy(), yd.copy()
    x = xd.copy()
    y = yd.copy()
    for _ in range(max_iter):
        fx, fy = distort_normalized(x, y, coeffs)
        ex = fx - xd
        ey = fy - yd
        if np.all(np.abs(ex) + np.abs(ey) <= tol):
            break
        jxx, jxy, jyx, jyy = distortion_jacobian(x, y, coeffs)
        det = jxx * jyy - jxy * jyx
        det = np.where(np.abs(det) < 1e-12, 1e-12, det)
        step_x = (jyy * ex - jxy * ey) / det
        step_y = (jxx * ey - jyx * ex) / det
        # Damp very large steps so Newton cannot jump to a far branch of the polynomial.
        step = np.hypot(step_x, step_y)
        scale = np.minimum(1.0, 0.5 * (1.0 + np.hypot(x, y)) / np.maximum(step, 1e-300))
        x = x - scale * step_x
        y = y - scale * step_y
    fx, fy = distort_normalized(x, y, coeffs)
    resid = np.abs(fx - xd) + np.abs(fy - yd)
    jxx, jxy, jyx, jyy = distortion_jacobian(x, y, coeffs)
    det = jxx * jyy - jxy * jyx
    bad = ~((resid <= 1e3 * tol) & (det > 0))
    if np.any(bad):
        i = int(np.flatnonzero(bad.ravel())[0])
        r = float(np.hypot(xd.ravel()[i], yd.ravel()[i]))
        raise ValueError(
            "distortion (k1, k2, k3, p1, p2) = "
            f"{tuple(float(c) for c in coeffs)} is not invertible over the image field: "
            f"it folds over at normalised radius {r:.4g} (dimensionless, r = image radius / "
            "image distance); reduce the coefficients or the image plane size"
        )
    return x, y
