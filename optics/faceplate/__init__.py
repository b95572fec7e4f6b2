"""Fiber-bundle faceplate and its optical key.

A faceplate is a lattice of fibers (:mod:`optics.faceplate.lattice` states the geometry conventions:
row-major sites, row 0 at the top, x right / y down in µm from the face centre). Each input
fiber ``i`` is routed to output site ``routing[i]`` and carries its light with transmission
``transmission[i]`` plus a stray-light offset ``bias[i]``; neighbouring cores leak light into
each other at the input and output faces (crosstalk); a few fibers may be dead. Together
these are the device's **key**.

The routing permutes fibers only inside ``b × b`` blocks of the lattice (``block_size``);
``b = 1`` is a coherent faceplate, ``b ≥ max(rows, cols)`` a global permutation. With
``permute_blocks`` whole blocks are moved too, each block travelling as a sub-bundle, so that
the coarse thumbnail of block means is scrambled as well (blocks only trade places with
blocks of the same shape; ``b = 1`` stays coherent). A local key alone leaks that thumbnail:
on a natural 64 × 64 image the scrambled/plain correlation is still ≈ 0.3 at ``b = 8``.

Against anyone who can show the camera patterns of their choosing, the faceplate is
obfuscation, not cryptography: the routing of an incoherent bundle is routinely recovered
with Gray codes or line scans.

The affine light model of one faceplate, with ``x`` the flux entering each input fiber::

    y_out = C_out · P · (D · C_in · x + bias)       (D = diag(transmission), 0 for dead fibers)

is built by :func:`~optics.faceplate.operators.transfer_operator`.

Modules: :mod:`~optics.faceplate.config` (:class:`FaceplateConfig`), :mod:`~optics.faceplate.key`
(:class:`Key`, :func:`keygen`), :mod:`~optics.faceplate.lattice` (site geometry, block
permutations, crosstalk), :mod:`~optics.faceplate.keyfile` (the secret key file format),
:mod:`~optics.faceplate.operators` (image-plane sampling, the faceplate's transfer, coupling to
the sensor) and :mod:`~optics.faceplate.readout` (the public per-site readout of a frame) and
:mod:`~optics.faceplate.unscramble` (the authorised inverse).
"""

from optics.faceplate.config import FaceplateConfig
from optics.faceplate.key import Key, KeyFileError, keygen
from optics.faceplate.operators import (
    coupling_operator,
    sampling_operator,
    transfer_factors,
    transfer_operator,
)
from optics.faceplate.readout import SiteReadout, site_readout
from optics.faceplate.unscramble import scramble, unscramble

__all__ = [
    "FaceplateConfig",
    "Key",
    "KeyFileError",
    "SiteReadout",
    "coupling_operator",
    "keygen",
    "sampling_operator",
    "scramble",
    "site_readout",
    "transfer_factors",
    "transfer_operator",
    "unscramble",
]
