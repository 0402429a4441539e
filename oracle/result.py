"""What an evaluation returns: the exact value, the data the comparison needs, and the
exact vector-Jacobian products (as intervals where the loss has a kink). Loss modules
build these of enclosures (:mod:`oracle.real`); :func:`oracle.evaluate` returns them
holding the proven exact values (mpf)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import precision
from .arrays import Array


@dataclass
class Gradient:
    """The exact VJP for one input. Where the loss is differentiable ``lo`` and ``hi``
    are the same array; at a kink, element ``i`` may be any number in ``[lo[i], hi[i]]``
    (the interval spanned by the one-sided derivatives)."""

    lo: Array
    hi: Array
    #: the proven midpoint (set by the oracle once proven; else computed from lo and hi)
    mid: Array | None = None
    #: per element: the sum of the magnitudes of the terms that produce it (the term scale
    #: of a VJP element: for a softmax gradient s (p - y), |s| (|p| + |y|))
    scale: Array | None = None

    @classmethod
    def exact(cls, value: Array) -> Gradient:
        return cls(value, value)

    @classmethod
    def between(cls, a: Array, b: Array) -> Gradient:
        """The interval between two candidate VJPs, ordered elementwise."""
        lo = np.where(a <= b, a, b).astype(object)
        hi = np.where(a <= b, b, a).astype(object)
        return cls(lo, hi)

    @property
    def at_kink(self) -> np.ndarray:
        """Boolean mask of the elements whose derivative is an interval."""
        if self.lo is self.hi:
            return np.zeros(np.shape(self.lo), dtype=bool)
        same = np.frompyfunc(lambda a, b: a is b or a == b, 2, 1)(self.lo, self.hi)
        return ~np.asarray(same, dtype=bool)

    @property
    def value(self) -> Array:
        """The midpoint of the interval (the derivative itself where there is no kink)."""
        if self.mid is not None:
            return self.mid
        if not self.at_kink.any():
            return self.lo
        return ((self.lo + self.hi) / 2).astype(object)


@dataclass
class Evaluation:
    """The oracle's answer for one call of one loss.

    ``scale`` has the output's shape: the magnitude of the terms the documented formula
    adds up for each output element (the sum of their absolute values), so a stable
    algorithm's error is bounded by a small multiple of eps * scale * g(n_terms).
    ``n_terms`` is the number of terms reduced into each output element."""

    loss_id: str
    options: dict
    value: Array
    scale: Array
    n_terms: int
    grads: dict[str, Gradient] = field(default_factory=dict)
    cotangent: Array | None = None
    precision_bits: int = 0

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(np.shape(self.value))

    def value_as(self, dtype: str) -> np.ndarray:
        """The value correctly rounded to ``dtype`` (proven for the dtypes the evaluation
        was asked to prove: ``oracle.evaluate(..., dtypes=...)``, by default all three)."""
        return precision.round_array(self.value, dtype)

    def grad_as(self, name: str, dtype: str) -> np.ndarray:
        """The VJP for input ``name`` correctly rounded to ``dtype`` (midpoint at a kink)."""
        return precision.round_array(self.grads[name].value, dtype)

    def decimal(self) -> list:
        """The value as nested lists of exact decimal strings."""
        return to_decimal_lists(self.value)


def to_decimal_lists(values: Array) -> object:
    arr = np.asarray(values, dtype=object)
    flat = [precision.to_decimal(v) for v in arr.ravel()]
    return np.array(flat, dtype=object).reshape(arr.shape).tolist()


@dataclass
class Forward:
    """What a loss module's ``forward`` returns: the value with its term scale and
    reduction length, and a function from a cotangent to the exact VJPs."""

    value: Array
    scale: Array
    n_terms: int
    vjp: object  # Callable[[Array], dict[str, Gradient]]
