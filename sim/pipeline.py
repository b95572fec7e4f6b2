"""The camera as a typed affine chain: named stages, each ``y = M x + c``.

Everything optical in keycam is an affine map on light. A :class:`Pipeline` is an ordered
tuple of :class:`AffineStage` objects (a name, a sparse matrix ``M`` and an optional offset
``c``) whose shapes chain. It can

- :meth:`~Pipeline.apply` the stages one after the other to a vector or to many columns
  (cheap: one sparse product per stage);
- compose them into one map :meth:`~Pipeline.operator` ``(A, b)`` with ``A = M_k ⋯ M_1`` and
  ``b = M_k(⋯(M_2 c_1 + c_2)⋯) + c_k``;
- stop part-way (:meth:`~Pipeline.upto`), start part-way (:meth:`~Pipeline.after`), extend
  (:meth:`~Pipeline.then`), and fuse a run of stages into one (:meth:`~Pipeline.fuse`) where
  the fused matrix is smaller than its factors (the lens and the fiber sampling are).

The camera (:class:`sim.camera.Camera`), its colour variant, the key-net's input operator and
the documentation's pipeline figure are all built on it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import overload

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

__all__ = ["AffineStage", "Pipeline"]


@dataclass(frozen=True, eq=False)
class AffineStage:
    """One stage ``y = matrix @ x + offset``.

    Attributes
    ----------
    name : str
        Unique within a pipeline (``"lens"``, ``"sampling"``, ``"transfer"``, ...).
    matrix : (n_out, n_in) CSR
        The linear part (converted to CSR on construction).
    offset : (n_out,) float64 or None
        The constant part; ``None`` for a linear stage.
    description : str
        What the stage does and in which units, for figures and ``repr``.
    """

    name: str
    matrix: sp.csr_matrix
    offset: NDArray[np.float64] | None = None
    description: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"stage name must be a non-empty string, got {self.name!r}")
        m = self.matrix if sp.issparse(self.matrix) else sp.csr_matrix(self.matrix)
        object.__setattr__(self, "matrix", sp.csr_matrix(m))
        if self.offset is not None:
            c = np.asarray(self.offset, dtype=np.float64).reshape(-1)
            if c.shape != (self.n_out,):
                raise ValueError(
                    f"stage {self.name!r}: offset has {c.size} values, matrix has {self.n_out} rows"
                )
            object.__setattr__(self, "offset", c)

    @property
    def n_in(self) -> int:
        """Length of the stage's input."""
        return int(self.matrix.shape[1])

    @property
    def n_out(self) -> int:
        """Length of the stage's output."""
        return int(self.matrix.shape[0])

    def apply(self, x: NDArray[np.floating]) -> NDArray[np.float64]:
        """``matrix @ x + offset`` for ``x`` of shape ``(n_in,)`` or ``(n_in, k)`` (k columns)."""
        y = np.asarray(self.matrix @ x)
        if self.offset is not None:
            y += self.offset if y.ndim == 1 else self.offset[:, None]
        return y

    def __repr__(self) -> str:
        kind = "affine" if self.offset is not None else "linear"
        return f"AffineStage({self.name!r}, {self.n_out}x{self.n_in} {kind}, nnz={self.matrix.nnz})"


def _compose(first: AffineStage, second: AffineStage, name: str) -> AffineStage:
    """The stage ``second ∘ first``."""
    m = (second.matrix @ first.matrix).tocsr()
    if first.offset is None:
        c = second.offset
    else:
        c = np.asarray(second.matrix @ first.offset, dtype=np.float64)
        if second.offset is not None:
            c = c + second.offset
    return AffineStage(name, m, c, f"{first.name} then {second.name}")


class Pipeline(Sequence[AffineStage]):
    """An ordered chain of affine stages whose shapes match.

    Parameters
    ----------
    stages : iterable of AffineStage
        First stage first. Names must be unique; stage ``i + 1`` takes the output of stage
        ``i`` (``n_in`` equals the previous ``n_out``).

    Indexing takes a position or a stage name: ``pipeline["transfer"]``.
    """

    def __init__(self, stages: Iterable[AffineStage]) -> None:
        st = tuple(stages)
        if not st:
            raise ValueError("a pipeline needs at least one stage")
        names = [s.name for s in st]
        if len(set(names)) != len(names):
            raise ValueError(f"stage names must be unique, got {names}")
        for s in st:
            if not isinstance(s, AffineStage):
                raise TypeError(f"stages must be AffineStage objects, got {type(s).__name__}")
        for a, b in pairwise(st):
            if a.n_out != b.n_in:
                raise ValueError(
                    f"stage {b.name!r} takes {b.n_in} values but {a.name!r} gives {a.n_out}"
                )
        self._stages = st

    # -- sequence protocol ------------------------------------------------------------------
    @overload
    def __getitem__(self, item: int | str) -> AffineStage: ...

    @overload
    def __getitem__(self, item: slice) -> Pipeline: ...

    def __getitem__(self, item: int | str | slice) -> AffineStage | Pipeline:
        if isinstance(item, str):
            return self._stages[self.index_of(item)]
        if isinstance(item, slice):
            return Pipeline(self._stages[item])
        return self._stages[item]

    def __len__(self) -> int:
        return len(self._stages)

    def __iter__(self) -> Iterator[AffineStage]:
        return iter(self._stages)

    @property
    def names(self) -> tuple[str, ...]:
        """Stage names, first first."""
        return tuple(s.name for s in self._stages)

    @property
    def n_in(self) -> int:
        """Length of the pipeline's input."""
        return self._stages[0].n_in

    @property
    def n_out(self) -> int:
        """Length of the pipeline's output."""
        return self._stages[-1].n_out

    def index_of(self, name: str) -> int:
        """Position of the stage called ``name``; ``KeyError`` naming the stages otherwise."""
        for i, s in enumerate(self._stages):
            if s.name == name:
                return i
        raise KeyError(f"no stage {name!r}; stages are {list(self.names)}")

    # -- sub-chains -------------------------------------------------------------------------
    def upto(self, name: str) -> Pipeline:
        """The stages up to and including ``name``."""
        return Pipeline(self._stages[: self.index_of(name) + 1])

    def after(self, name: str) -> Pipeline:
        """The stages after ``name`` (``ValueError`` if ``name`` is the last)."""
        rest = self._stages[self.index_of(name) + 1 :]
        if not rest:
            raise ValueError(f"no stage follows {name!r}")
        return Pipeline(rest)

    def then(self, *stages: AffineStage) -> Pipeline:
        """This pipeline followed by ``stages``."""
        return Pipeline((*self._stages, *stages))

    def fuse(self, first: str, last: str, *, name: str | None = None) -> Pipeline:
        """The same map with the stages ``first`` … ``last`` composed into one stage.

        Worth it where the product has fewer non-zeros than its factors (it is then also
        cheaper to apply); the result of :meth:`apply` is the same map up to rounding.
        """
        i, j = self.index_of(first), self.index_of(last)
        if j < i:
            raise ValueError(f"stage {last!r} comes before {first!r}")
        fused = self._stages[i]
        for s in self._stages[i + 1 : j + 1]:
            fused = _compose(fused, s, "fused")
        label = name or f"{first}..{last}"
        fused = AffineStage(label, fused.matrix, fused.offset, f"{first} to {last}, fused")
        return Pipeline((*self._stages[:i], fused, *self._stages[j + 1 :]))

    # -- evaluation -------------------------------------------------------------------------
    def apply(self, x: NDArray[np.floating]) -> NDArray[np.float64]:
        """Apply every stage in turn to ``x`` of shape ``(n_in,)`` or ``(n_in, k)``."""
        y = np.asarray(x)
        if y.shape[0] != self.n_in:
            raise ValueError(f"input has {y.shape[0]} values, the pipeline takes {self.n_in}")
        for s in self._stages:
            y = s.apply(y)
        return np.asarray(y, dtype=np.float64)

    def operator(self) -> tuple[sp.csr_matrix, NDArray[np.float64]]:
        """The composed map ``(A, b)``: ``A`` is ``(n_out, n_in)`` CSR, ``b`` is ``(n_out,)``."""
        total = self._stages[0]
        for s in self._stages[1:]:
            total = _compose(total, s, "composed")
        b = total.offset if total.offset is not None else np.zeros(total.n_out)
        return total.matrix, b

    def __repr__(self) -> str:
        chain = " -> ".join(f"{s.name}({s.n_out}x{s.n_in})" for s in self._stages)
        return f"Pipeline({chain})"
