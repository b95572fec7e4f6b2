"""The optical key of a fiber faceplate: :class:`Key` and :func:`keygen`.

What the key is (routing inside blocks, transmission, bias, crosstalk, dead fibers), what a
block key leaks and why the faceplate is obfuscation rather than cryptography is described in
the package overview, :mod:`optics.faceplate`.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from pydantic import ValidationError

from keycam.config import describe_validation_error
from optics.faceplate import lattice as _lat
from optics.faceplate.config import FaceplateConfig
from optics.faceplate.keyfile import KeyFileError, canonical_json, read_key_file, write_key_file

__all__ = ["Key", "KeyFileError", "keygen"]


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.array(a, copy=True)
    a.setflags(write=False)
    return a


def _csr_arrays(prefix: str, m: sp.csr_matrix) -> dict[str, np.ndarray]:
    return {
        f"{prefix}_indptr": m.indptr.astype(np.int64),
        f"{prefix}_indices": m.indices.astype(np.int64),
        f"{prefix}_data": m.data.astype(np.float64),
    }


@dataclass(frozen=True, eq=False, repr=False)
class Key:
    """The secret of one faceplate: routing, transmission, bias, crosstalk and dead fibers.

    The arrays are read-only, ``n = rows × cols``, indexed by **input** fiber unless stated.

    Attributes
    ----------
    config : FaceplateConfig
        The recipe the key came from (lattice kind, size, pitch, block size, ...).
    routing : (n,) int64
        Output site (row-major) of each input fiber; a permutation.
    transmission : (n,) float64
        Fraction of light each fiber transmits (dead fibers keep their value here; the
        transfer operator zeroes them).
    bias : (n,) float64
        Stray-light offset each fiber adds at its output end, photons/s.
    dead : (n,) bool
        Fibers that carry no light.
    crosstalk_in, crosstalk_out : (n, n) CSR
        Row-normalised non-negative coupling on the input face (indexed by input site) and
        on the output face (indexed by output site).

    Built from any array-likes, validated and frozen: the fields cannot be reassigned and the
    arrays are read-only. ``repr`` shows only the lattice and the fingerprint; never log the
    arrays.
    """

    config: FaceplateConfig
    routing: NDArray[np.int64]
    transmission: NDArray[np.float64]
    bias: NDArray[np.float64]
    dead: NDArray[np.bool_]
    crosstalk_in: sp.csr_matrix
    crosstalk_out: sp.csr_matrix

    def __post_init__(self) -> None:
        config = self.config
        if not isinstance(config, FaceplateConfig):
            raise TypeError(f"config must be a FaceplateConfig, got {type(config).__name__}")
        n = config.n_fibers
        routing = np.asarray(self.routing)
        if routing.shape != (n,) or not np.issubdtype(routing.dtype, np.integer):
            raise ValueError(
                f"routing must be an integer array of shape ({n},), got {routing.shape}"
            )
        if not np.array_equal(np.sort(routing), np.arange(n)):
            raise ValueError("routing must be a permutation of the output sites 0..n-1")
        set_ = object.__setattr__
        set_(self, "routing", _readonly(routing.astype(np.int64)))
        for name in ("transmission", "bias"):
            a = np.asarray(getattr(self, name), dtype=np.float64)
            if a.shape != (n,) or not np.all(np.isfinite(a)) or np.any(a < 0):
                raise ValueError(f"{name} must be ({n},) finite and non-negative")
            set_(self, name, _readonly(a))
        dead = np.asarray(self.dead)
        if dead.shape != (n,) or dead.dtype != np.bool_:
            raise ValueError(f"dead must be a boolean array of shape ({n},)")
        set_(self, "dead", _readonly(dead))
        for name in ("crosstalk_in", "crosstalk_out"):
            m = sp.csr_matrix(getattr(self, name), dtype=np.float64)
            if m.shape != (n, n) or np.any(m.data < 0) or not np.all(np.isfinite(m.data)):
                raise ValueError(f"{name} must be a non-negative ({n}, {n}) matrix")
            if not np.allclose(np.asarray(m.sum(axis=1)).ravel(), 1.0, atol=1e-9):
                raise ValueError(f"{name} rows must sum to 1")
            m.sort_indices()
            m.data.setflags(write=False)
            set_(self, name, m)

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuild through the constructor, so an unpickled key is validated like a new one.
        return (
            Key,
            (
                self.config,
                self.routing,
                self.transmission,
                self.bias,
                self.dead,
                self.crosstalk_in,
                self.crosstalk_out,
            ),
        )

    # -- identity -----------------------------------------------------------------------------
    def _arrays(self) -> dict[str, np.ndarray]:
        out = {
            "routing": self.routing,
            "transmission": self.transmission,
            "bias": self.bias,
            "dead": self.dead,
        }
        out.update(_csr_arrays("crosstalk_in", self.crosstalk_in))
        out.update(_csr_arrays("crosstalk_out", self.crosstalk_out))
        return out

    @cached_property
    def fingerprint(self) -> str:
        """First 16 hex digits of the SHA-256 of the key's canonical content; safe for logs."""
        h = hashlib.sha256()
        # a field added later counts only where it differs from what older keys implicitly
        # had, so that their files keep their fingerprints
        config = FaceplateConfig.without_added_later(self.config.model_dump(mode="json"))
        h.update(canonical_json({"config": config}))
        for name, a in self._arrays().items():
            a = np.ascontiguousarray(a)
            h.update(canonical_json([name, a.dtype.str, list(a.shape)]))
            h.update(a.tobytes())
        return h.hexdigest()[:16]

    @property
    def n_fibers(self) -> int:
        """Number of fibers ``rows × cols`` (= number of output sites)."""
        return self.config.n_fibers

    @property
    def shape(self) -> tuple[int, int]:
        """Lattice shape ``(rows, cols)``."""
        return (self.config.rows, self.config.cols)

    def __repr__(self) -> str:
        c = self.config
        return f"Key({c.lattice} {c.rows}x{c.cols}, fingerprint={self.fingerprint})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Key):
            return NotImplemented
        return self.fingerprint == other.fingerprint

    def __hash__(self) -> int:
        return hash(self.fingerprint)

    # -- derived keys ---------------------------------------------------------------------------
    def with_transmission(self, new_transmission: np.ndarray) -> Key:
        """A copy of this key with per-fiber transmission replaced (e.g. measured values).

        Parameters
        ----------
        new_transmission : (n,) float
            Fraction transmitted by each input fiber, >= 0.
        """
        return Key(
            self.config,
            self.routing,
            new_transmission,
            self.bias,
            self.dead,
            self.crosstalk_in,
            self.crosstalk_out,
        )

    # -- files ----------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
        """Write the key to one file (conventionally ``*.key``), atomically, mode 0600.

        Raises ``FileExistsError`` if ``path`` exists and ``overwrite`` is False.
        """
        meta = {"config": self.config.model_dump(mode="json"), "fingerprint": self.fingerprint}
        return write_key_file(path, meta, self._arrays(), overwrite=overwrite)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Key:
        """Read a key written by :meth:`save` (bounded: see :func:`read_key_file`).

        Raises
        ------
        KeyFileError
            (a ``ValueError``) for a truncated, damaged, tampered or foreign file.
        keycam.loading.InputError
            ``path`` is a folder, FIFO or device.

        Warns
        -----
        keycam.loading.SharedSecretWarning
            The file is readable by other users (``chmod 600`` it).
        """
        meta, arrays = read_key_file(path)
        try:
            config = FaceplateConfig.model_validate(meta["config"])
        except (KeyError, TypeError):
            raise KeyFileError(f"{path}: key file lacks its faceplate configuration") from None
        except ValidationError as exc:
            # the stored configuration holds the key seed: never echo its values
            raise KeyFileError(
                f"{path}: invalid faceplate configuration in key file "
                f"({describe_validation_error(exc)})"
            ) from None
        n = config.n_fibers
        try:
            mats = [
                sp.csr_matrix(
                    (arrays[f"{p}_data"], arrays[f"{p}_indices"], arrays[f"{p}_indptr"]),
                    shape=(n, n),
                )
                for p in ("crosstalk_in", "crosstalk_out")
            ]
            key = cls(
                config,
                arrays["routing"],
                arrays["transmission"],
                arrays["bias"],
                arrays["dead"],
                mats[0],
                mats[1],
            )
        except KeyError as exc:
            raise KeyFileError(f"{path}: key file lacks array {exc.args[0]!r}") from None
        except (ValueError, TypeError) as exc:
            raise KeyFileError(f"{path}: inconsistent key contents ({exc})") from None
        if meta.get("fingerprint") != key.fingerprint:
            raise KeyFileError(f"{path}: fingerprint does not match the key contents")
        return key


def keygen(config: FaceplateConfig) -> Key:
    """Draw the key described by ``config``; deterministic in ``config.seed``.

    Each ingredient has its own random stream spawned from the seed, so e.g. changing the
    bias level does not change the routing.
    """
    if not isinstance(config, FaceplateConfig):
        raise TypeError(f"config must be a FaceplateConfig, got {type(config).__name__}")
    rows, cols, b = config.rows, config.cols, config.block_size
    n = config.n_fibers
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(config.seed).spawn(6)]
    r_route, r_blocks, r_trans, r_gain, r_bias, r_dead = streams

    rtc = config.shuffle == "rows_then_columns"
    if rtc:
        routing = _lat.local_rows_then_columns(rows, cols, b, rng=r_route)
    else:
        routing = _lat.local_block_permutation(rows, cols, b, rng=r_route)
    if config.permute_blocks and 1 < b < max(rows, cols):
        routing = _lat.move_blocks(
            routing, rows, cols, b, rng=r_blocks, rows_then_columns_blocks=rtc
        )
    elif config.permute_blocks and b > 1:
        routing = _lat.move_blocks(routing, rows, cols, b, rng=r_blocks)

    fab = 1.0 + config.transmission_rms * r_trans.standard_normal(n)
    gain = 1.0 + config.gain_key_rms * r_gain.standard_normal(n)
    transmission = config.transmission_mean * np.clip(fab, 0.05, None) * np.clip(gain, 0.05, None)
    transmission = np.clip(transmission, 0.0, 1.0)
    bias = 2.0 * config.bias_photons_per_s * r_bias.random(n)
    dead = np.zeros(n, dtype=bool)
    n_dead = round(config.dead_fraction * n)
    if n_dead:
        dead[r_dead.choice(n, size=n_dead, replace=False)] = True
    bias[dead] = 0.0
    c_in = _lat.crosstalk_matrix(config.lattice, rows, cols, config.crosstalk_in)
    c_out = _lat.crosstalk_matrix(config.lattice, rows, cols, config.crosstalk_out)
    return Key(config, routing, transmission, bias, dead, c_in, c_out)
