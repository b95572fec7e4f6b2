"""Key-nets: a trained :class:`~keynet.network.LeNet` rewritten to run on encrypted readouts.

Following Byrne, DeCann & Bloom (BMVC 2020) and models.md (Key-nets). The camera maps a digit ``d``
(784 values in [0, 1], row-major) to per-site readouts (after the *public* binning of sensor
pixels into output sites)::

    r = A_s d + b_s                    A_s : (n_sites, 784) sparse, b_s : (n_sites,)

where ``A_s`` carries the secret routing, transmission, stray light and crosstalk. The plain
network's first stage (convolution + average pooling, no ReLU in between) is affine,
``h1 = M u + c`` on its input ``u``. The key-net's first layer is::

    Ŵ1 = A_1 M X,    b̂1 = A_1 (c − M X b_s)

with ``X`` a left inverse of the camera's secret, so ``Ŵ1 r + b̂1 = A_1 h1``: the secret is
fused with ``M`` and never stored as a layer of its own. Two inverses are offered:

- a :class:`~keynet.operators.SecretMap` (the map in factored form) is inverted sparsely:
  the plain network's input is the input-face image (input crosstalk is public, the same for
  every key), ``X`` undoes routing, transmission and stray light exactly, fills dead fibers
  from their neighbours and undoes the output crosstalk by a truncated Neumann series whose
  corrections are kept within a non-zero budget. On a camera whose fiber lattice matches the
  28×28 input, ``Ŵ1`` keeps close to the non-zeros of the stride-2 6×6 map ``M``;
- an :class:`~keynet.operators.InputOperator` (the composed map) is inverted exactly,
  ``X = A_s⁺``, which is dense wherever the camera mixes fibers.

Every later layer is ``Ŵ_k = A_k W_k A_{k−1}⁻¹``, ``b̂_k = A_k b_k`` with random positive
monomial keys ``A_k`` (a permutation times a positive diagonal), which commute with ReLU and
average pooling; the logits are left unkeyed, so the key-net's logits equal the plain
network's (up to the truncation of ``X``).

Hidden keys act on whole channels for the convolutional stages (permutation of the channels
and one positive scale per channel) so the second convolution keeps its 5×5 weight sharing,
and on single units for the fully connected layers. The first layer is stored sparse (CSR).

A key-net file holds no key array, but it is not a safe: the sparsity pattern of ``Ŵ1`` is
the convolution's, permuted by the routing, so it tells which readout sites are neighbours,
and with the shared weights of ``M`` (equal up to the per-site transmission) the routing and
gains can be recovered from the public key-net alone (models.md: Key-nets). Hidden-layer keys only
hide the network's own weights.
"""

from __future__ import annotations

import io
import os
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from keycam.fileio import write_bytes_atomic

from .layers import AvgPool2, Conv2D, ReLU
from .network import LeNet
from .operators import InputOperator, SecretMap, left_pinv

__all__ = [
    "InputOperator",
    "KeyNet",
    "MonomialKey",
    "SecretMap",
    "key_network",
    "load_keynet",
    "plain_nbytes",
]

_FORMAT = "keycam-keynet-1"
_FILE_ARRAYS = (
    "format",
    "w1_data",
    "w1_indices",
    "w1_indptr",
    "w1_shape",
    "b1",
    "w2",
    "b2",
    "w3",
    "b3",
    "w4",
    "b4",
    "w5",
    "b5",
)


@dataclass(frozen=True)
class MonomialKey:
    """Positive monomial matrix ``A``: ``(A x)[j] = scale[j] · x[source[j]]``.

    Attributes
    ----------
    source : (n,) int
        Permutation: keyed unit ``j`` holds plain unit ``source[j]``.
    scale : (n,) float64
        Positive gains.
    """

    source: np.ndarray
    scale: np.ndarray

    @classmethod
    def random(cls, n: int, *, rng: np.random.Generator, max_gain: float = 4.0) -> MonomialKey:
        """Uniform random permutation with log-uniform gains in ``[1/max_gain, max_gain]``."""
        lg = np.log(max_gain)
        return cls(rng.permutation(n), np.exp(rng.uniform(-lg, lg, n)))

    def expand(self, per_channel: int) -> MonomialKey:
        """Channel key → unit key on channel-major flattened maps of ``per_channel`` units."""
        p = np.arange(per_channel)
        src = (self.source[:, None] * per_channel + p[None, :]).reshape(-1)
        return MonomialKey(src, np.repeat(self.scale, per_channel))

    def apply_rows(self, w: np.ndarray) -> np.ndarray:
        """``A w`` for ``w`` with the keyed axis first."""
        s = self.scale.reshape((-1,) + (1,) * (w.ndim - 1))
        return s * w[self.source]

    def inverse_cols(self, w: np.ndarray, axis: int = 1) -> np.ndarray:
        """``w A⁻¹`` along ``axis``: result column ``j`` is ``w[:, source[j]] / scale[j]``."""
        # (w A⁻¹)[:, j] = w[:, source[j]] / scale[j]
        taken = np.take(w, self.source, axis=axis)
        shape = [1] * w.ndim
        shape[axis] = -1
        return taken / self.scale.reshape(shape)


class KeyNet:
    """A keyed LeNet: logits ``(N, 10)`` from per-site readouts ``(N, n_sites)``.

    Build one with :func:`key_network`; load one with :func:`load_keynet`. Holds only network
    arrays: the first layer ``w1`` (CSR, ``(1176, n_sites)``), the keyed second convolution
    and the three keyed fully connected layers.
    """

    def __init__(self, arrays: dict[str, np.ndarray | sp.csr_matrix]) -> None:
        self.w1: sp.csr_matrix = sp.csr_matrix(arrays["w1"])
        self.b1 = np.asarray(arrays["b1"])
        self.conv2 = Conv2D(6, 16, 5, rng=np.random.default_rng(0))
        self.conv2.params["W"] = np.asarray(arrays["w2"])
        self.conv2.params["b"] = np.asarray(arrays["b2"])
        self.fc = [(np.asarray(arrays[f"w{k}"]), np.asarray(arrays[f"b{k}"])) for k in (3, 4, 5)]
        self._pool, self._relu = AvgPool2(), ReLU()

    @property
    def n_sites(self) -> int:
        """Length of the readout vector the key-net expects."""
        return int(self.w1.shape[1])

    @property
    def dtype(self) -> np.dtype:
        """Floating-point type of the stored weights."""
        return self.w1.dtype

    def astype(self, dtype: np.dtype | type) -> KeyNet:
        """Copy with every weight array converted to ``dtype`` (float32 for deployment)."""
        return KeyNet({k: v.astype(dtype) for k, v in self._arrays().items()})

    def _arrays(self) -> dict[str, np.ndarray | sp.csr_matrix]:
        out: dict[str, np.ndarray | sp.csr_matrix] = {
            "w1": self.w1,
            "b1": self.b1,
            "w2": self.conv2.params["W"],
            "b2": self.conv2.params["b"],
        }
        for k, (w, b) in zip((3, 4, 5), self.fc, strict=True):
            out[f"w{k}"], out[f"b{k}"] = w, b
        return out

    def forward(self, readouts: np.ndarray) -> np.ndarray:
        """Logits ``(N, 10)`` for readouts ``(N, n_sites)``, computed in the weights' dtype."""
        r = np.asarray(readouts, dtype=self.dtype)
        if r.ndim != 2 or r.shape[1] != self.n_sites:
            raise ValueError(
                f"readouts must have shape (N, {self.n_sites}), got {np.shape(readouts)}"
            )
        h = np.asarray(self.w1 @ r.T).T + self.b1
        h = np.maximum(h, 0).reshape(len(r), 6, 14, 14)
        h = np.maximum(self._pool.forward(self.conv2.forward(h)), 0).reshape(len(r), -1)
        (w3, b3), (w4, b4), (w5, b5) = self.fc
        h = np.maximum(h @ w3.T + b3, 0)
        h = np.maximum(h @ w4.T + b4, 0)
        return h @ w5.T + b5

    def predict(self, readouts: np.ndarray, *, batch: int = 500) -> np.ndarray:
        """Predicted digits ``(N,)`` for readouts ``(N, n_sites)``."""
        r = np.asarray(readouts)
        out = [self.forward(r[i : i + batch]).argmax(axis=1) for i in range(0, len(r), batch)]
        return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)

    # -- size ----------------------------------------------------------------------------
    @property
    def n_nonzero(self) -> int:
        """Stored non-zero weights and biases (CSR non-zeros + all dense entries)."""
        n = self.w1.nnz
        for k, v in self._arrays().items():
            if k != "w1":
                n += int(np.count_nonzero(v))
        return int(n)

    @property
    def nbytes(self) -> int:
        """Bytes of all weight arrays as held in memory (CSR data, indices and indptr)."""
        n = self.w1.data.nbytes + self.w1.indices.nbytes + self.w1.indptr.nbytes
        for k, v in self._arrays().items():
            if k != "w1":
                n += v.nbytes
        return int(n)

    # -- files ---------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str], *, overwrite: bool = True) -> Path:
        """Write the key-net's arrays (and nothing else) to ``.npz`` atomically."""
        a = self._arrays()
        w1 = self.w1
        payload = {
            "format": np.array(_FORMAT),
            "w1_data": w1.data,
            "w1_indices": w1.indices,
            "w1_indptr": w1.indptr,
            "w1_shape": np.array(w1.shape, dtype=np.int64),
            **{k: v for k, v in a.items() if k != "w1"},
        }
        buf = io.BytesIO()
        np.savez_compressed(buf, **payload)
        return write_bytes_atomic(path, buf.getvalue(), overwrite=overwrite)


def load_keynet(path: str | os.PathLike[str]) -> KeyNet:
    """Load a key-net written by :meth:`KeyNet.save`; ValueError if the file is not one."""
    try:
        with np.load(path, allow_pickle=False) as f:
            if "format" not in f.files or str(f["format"]) != _FORMAT:
                raise ValueError(f"key-net: {path} is not a keycam key-net file")
            missing = set(_FILE_ARRAYS) - set(f.files)
            if missing:
                raise ValueError(f"key-net: {path} lacks arrays {sorted(missing)}")
            a = {k: f[k] for k in f.files}
    except (zipfile.BadZipFile, EOFError, zlib.error) as exc:
        raise ValueError(f"key-net: {path} is damaged ({type(exc).__name__})") from None
    w1 = sp.csr_matrix(
        (a["w1_data"], a["w1_indices"], a["w1_indptr"]), shape=tuple(int(v) for v in a["w1_shape"])
    )
    return KeyNet(
        {"w1": w1, **{k: a[k] for k in ("b1", "w2", "b2", "w3", "b3", "w4", "b4", "w5", "b5")}}
    )


def plain_nbytes(net: LeNet, dtype: np.dtype | type = np.float32) -> int:
    """Bytes of the plain network's parameters stored as ``dtype``."""
    return int(net.n_params * np.dtype(dtype).itemsize)


def _first_layer_exact(net: LeNet, op: InputOperator) -> tuple[np.ndarray, np.ndarray]:
    """``(M A_s⁺, c − M A_s⁺ b_s)`` with the exact (dense) pseudo-inverse."""
    m, c = net.first_stage_matrix()  # (1176, 784), (1176,)
    if op.matrix.nnz == 0:
        raise ValueError("camera operator: no digit pixel reaches any readout site")
    w = m @ left_pinv(op.matrix)  # (1176, n_sites)
    return w, c - w @ op.offset


def _first_layer_sparse(
    net: LeNet, op: SecretMap, order: int | None, budget: float | None, fill_dead: bool, tol: float
) -> tuple[np.ndarray, np.ndarray]:
    """``(M X, c − M X b_s)`` with the truncated inverse ``X`` of :meth:`SecretMap.inverse_terms`.

    The zeroth-order terms (routing, transmission, dead-fiber fill) are always kept; the
    output-crosstalk corrections are added where they fall on those entries, and elsewhere
    largest first (relative to the largest zeroth-order weight of their row) until the layer
    holds ``budget × nnz(M)`` non-zeros.
    """
    m, c = net.first_stage_matrix()  # (1176, 784), (1176,)
    terms = op.inverse_terms(order, fill_dead=fill_dead)
    w = np.asarray((terms[0].T @ m.T).T)  # M X_0, (1176, n_sites)
    w[np.abs(w) <= tol * float(np.abs(w).max(initial=0.0))] = 0.0
    if len(terms) > 1:
        corr = sum(np.asarray((x.T @ m.T).T) for x in terms[1:])
        base = w != 0
        cand = ~base & (np.abs(corr) > tol * float(np.abs(w).max(initial=0.0)))
        if budget is not None:
            room = max(int(budget * np.count_nonzero(m)) - int(base.sum()), 0)
            if room < int(cand.sum()):
                row_max = np.abs(w).max(axis=1, keepdims=True)
                score = np.where(cand, np.abs(corr) / np.maximum(row_max, 1e-300), -1.0).ravel()
                keep = np.zeros(score.size, dtype=bool)
                if room:
                    keep[np.argpartition(score, -room)[-room:]] = True
                cand = keep.reshape(cand.shape)
        w = w + np.where(base | cand, corr, 0.0)
    if not np.any(w):
        raise ValueError("camera operator: no digit pixel reaches any readout site")
    return w, c - w @ op.offset


def key_network(
    net: LeNet,
    op: InputOperator | SecretMap,
    *,
    rng: np.random.Generator,
    prune_rel: float = 1e-10,
    crosstalk_order: int | None = 1,
    first_layer_budget: float | None = 1.5,
    fill_dead: bool = True,
) -> KeyNet:
    """Key ``net`` for a camera whose digits-to-readouts map is ``op``.

    Parameters
    ----------
    net : LeNet
        Trained plain network.
    op : SecretMap or InputOperator
        The camera's map. A :class:`~keynet.operators.SecretMap` (from
        :func:`keynet.readout.secret_map`) is inverted sparsely: the key-net reproduces the
        plain network on the input-face image (:meth:`SecretMap.input_face`). An
        :class:`~keynet.operators.InputOperator` ``A_s, b_s`` is inverted exactly with the
        dense pseudo-inverse ``A_s⁺`` (the first layer is then dense wherever the camera
        mixes fibers); the next three parameters apply only to a ``SecretMap``.
    rng : numpy.random.Generator
        Source of the hidden-layer keys (discarded after keying).
    prune_rel : float
        First-layer entries with ``|w| <= prune_rel · max|w|`` are dropped (numerical
        dust from near-zero operator entries); 0 keeps every computed entry.
    crosstalk_order : int or None
        Highest order of the Neumann series that undoes the output crosstalk (0: only its
        diagonal; ``None``: exact, dense).
    first_layer_budget : float or None
        Largest first-layer non-zeros as a multiple of the plain first stage's (the
        convolution and pooling written as a matrix); crosstalk corrections beyond it are
        dropped, smallest first. ``None``: keep them all.
    fill_dead : bool
        Fill dead fibers from their live input-face neighbours (else they read 0).

    Returns
    -------
    KeyNet
        float64 weights; use ``.astype(np.float32)`` for deployment.
    """
    if not (0 <= prune_rel < 1e-3):
        raise ValueError(f"prune_rel must be in [0, 1e-3), got {prune_rel}")
    if first_layer_budget is not None and not (
        np.isfinite(first_layer_budget) and first_layer_budget > 0
    ):
        raise ValueError(f"first_layer_budget must be > 0 or None, got {first_layer_budget}")
    if isinstance(op, SecretMap):
        w, b = _first_layer_sparse(
            net, op, crosstalk_order, first_layer_budget, bool(fill_dead), prune_rel
        )
    elif isinstance(op, InputOperator):
        w, b = _first_layer_exact(net, op)
    else:
        raise TypeError(f"op must be a SecretMap or an InputOperator, got {type(op).__name__}")
    k1 = MonomialKey.random(6, rng=rng)  # channels of the first pooled map
    k2 = MonomialKey.random(16, rng=rng)  # channels of the second pooled map
    k3 = MonomialKey.random(120, rng=rng)
    k4 = MonomialKey.random(84, rng=rng)
    unit_key = k1.expand(14 * 14)
    w = unit_key.apply_rows(w)
    b1 = unit_key.apply_rows(b)
    w[np.abs(w) <= prune_rel * float(np.abs(w).max())] = 0.0
    w1 = sp.csr_matrix(w)
    w1.eliminate_zeros()
    conv2, fc3, fc4, fc5 = net.layers[3], net.layers[7], net.layers[9], net.layers[11]
    w2 = k1.inverse_cols(k2.apply_rows(conv2.params["W"]), axis=1)
    b2 = k2.apply_rows(conv2.params["b"])
    k2u = k2.expand(25)
    w3 = k2u.inverse_cols(k3.apply_rows(fc3.params["W"]))
    b3 = k3.apply_rows(fc3.params["b"])
    w4 = k3.inverse_cols(k4.apply_rows(fc4.params["W"]))
    b4 = k4.apply_rows(fc4.params["b"])
    w5 = k4.inverse_cols(fc5.params["W"])
    b5 = fc5.params["b"].copy()
    return KeyNet(
        {
            "w1": w1,
            "b1": b1,
            "w2": w2,
            "b2": b2,
            "w3": w3,
            "b3": b3,
            "w4": w4,
            "b4": b4,
            "w5": w5,
            "b5": b5,
        }
    )
