"""Correct variants of the reference backend -- evaluations of the documented formulas that
differ from it only where numerical analysis says any stable evaluation may -- and
uniformly perturbed copies of it, for the stability bound's two promises
(``conformance/harness/tolerance.py``): every variant passes every check
(``tests/test_error_measure.py``), and a perturbation of k ULPs is caught as often as
``benchmarks/detection_curve.py`` measures.

Each is usable from the command line, e.g.
``lossconf run tests.variant_backends:reversed_sums --loss SoftmaxCrossEntropyLoss``.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import ml_dtypes
import numpy as np

from conformance.protocol import Call, Outcome, new_call
from tests.defect_backends import SCE, Wrapped

CHAINER_SCE = "chainer.functions.softmax_cross_entropy"
_lock = threading.Lock()


BF16 = np.dtype(ml_dtypes.bfloat16)


class ReversedSums(Wrapped):
    """Every ``np.sum`` of the reference kernels done as a recursive (sequential) sum in
    reverse order, in the requested dtype: another summation order, and the one with the
    worst error bound (n - 1 roundings instead of ceil(log2 n))."""

    name = "numpy-reversed-sums"
    defect = "none: sequential sums in reverse order"

    def run(self, call: Call) -> Outcome:
        with _sequential_reversed_sums():
            return self.inner.run(call)


def _reversed_sum(a: Any, axis: Any = None, dtype: Any = None, out: Any = None, keepdims: bool = False, **kw: Any) -> Any:
    a = np.asarray(a)
    if kw or out is not None or a.ndim == 0 or a.size == 0:
        return _NP_SUM(a, axis=axis, dtype=dtype, out=out, keepdims=keepdims, **kw)
    axes = tuple(range(a.ndim)) if axis is None else tuple(int(x) % a.ndim for x in np.atleast_1d(axis))
    rest = tuple(i for i in range(a.ndim) if i not in axes)
    moved = np.transpose(a, rest + axes).reshape([a.shape[i] for i in rest] + [-1])
    total = np.cumsum(moved[..., ::-1], axis=-1, dtype=dtype)[..., -1]  # cumsum: strictly sequential
    if keepdims:
        total = np.reshape(total, [1 if i in axes else a.shape[i] for i in range(a.ndim)])
    return total


_NP_SUM = np.sum


@contextlib.contextmanager
def _sequential_reversed_sums() -> Iterator[None]:
    with _lock:
        np.sum = _reversed_sum
        try:
            yield
        finally:
            np.sum = _NP_SUM


class Float64ThenRounded(Wrapped):
    """Every call computed in float64 (inputs and cotangent widened, which is exact) and
    the results rounded to the requested dtype."""

    name = "numpy-float64-then-rounded"
    defect = "none: computed in float64, then rounded"

    def run(self, call: Call) -> Outcome:
        if call.dtype == "float64":
            return self.inner.run(call)
        wide = {k: (v.astype(np.float64) if np.asarray(v).dtype.kind == "f" or np.asarray(v).dtype == BF16 else v)
                for k, v in call.inputs.items()}
        ct = None if call.cotangent is None else np.asarray(call.cotangent).astype(np.float64)
        out = self.inner.run(new_call(call.loss, call.options, wide, "float64", call.wrt, ct, call.mode, call.direction))
        with np.errstate(over="ignore"):
            return Outcome(
                np.asarray(out.output).astype(call.dtype),
                {k: np.asarray(g).astype(call.dtype) for k, g in out.grads.items()},
            )


class LogAddExp(Wrapped):
    """Softmax cross-entropy values (mxnet SoftmaxCrossEntropyLoss with logits, chainer
    softmax_cross_entropy with integer labels) with log_softmax(x) = (x - m) -
    logaddexp.reduce(x - m): numpy's logaddexp (a sequential reduction) instead of the reference's
    log1p of the sum of the other exponentials. ``shifted=False`` drops the shift:
    x - logaddexp.reduce(x), whose rounding is at the scale of the largest logit (see the
    module docstring of tests/test_error_measure.py for what that does)."""

    name = "numpy-logaddexp"
    defect = "none: logaddexp for log-sum-exp"

    def __init__(self, shifted: bool = True) -> None:
        super().__init__()
        self.shifted = shifted
        if not shifted:
            self.name, self.defect = "numpy-logaddexp-unshifted", "none: logaddexp of the unshifted logits"

    def _log_softmax(self, x: np.ndarray, ax: int) -> np.ndarray:
        with np.errstate(all="ignore"):
            if not self.shifted:
                return x - np.logaddexp.reduce(x, axis=ax, keepdims=True)
            d = x - np.max(x, axis=ax, keepdims=True)
            return d - np.logaddexp.reduce(d, axis=ax, keepdims=True)

    def run(self, call: Call) -> Outcome:
        out = self.inner.run(call)
        o = call.options
        if call.loss == SCE and not o["from_logits"] and o["sparse_label"] and call.inputs.get("sample_weight") is None:
            return Outcome(self._mx_value(call), out.grads)
        if call.loss == CHAINER_SCE and np.asarray(call.inputs["t"]).dtype.kind in "iu" and _plain_chainer(o):
            return Outcome(self._chainer_value(call, np.asarray(out.output)), out.grads)
        return out

    def _mx_value(self, call: Call) -> np.ndarray:
        o = call.options
        x = np.asarray(call.inputs["pred"])
        dt = x.dtype
        ax, ba = int(o["axis"]) % x.ndim, int(o["batch_axis"]) % x.ndim
        label = np.asarray(call.inputs["label"]).astype(np.int64)
        with np.errstate(all="ignore"):
            elem = -np.take_along_axis(self._log_softmax(x, ax), np.expand_dims(label, ax), axis=ax)
            if o.get("weight") is not None:
                elem = elem * dt.type(o["weight"])
            other = tuple(i for i in range(x.ndim) if i != ba)
            return np.asarray(np.mean(elem, axis=other), dtype=dt)

    def _chainer_value(self, call: Call, reference: np.ndarray) -> np.ndarray:
        x = np.asarray(call.inputs["x"])
        t = np.asarray(call.inputs["t"]).astype(np.int64)
        if x.ndim != 2 or t.shape != x.shape[:1] or (t < 0).any() or (t >= x.shape[1]).any():
            return reference  # the plain 2-D case only; the rest is the reference's
        with np.errstate(all="ignore"):
            elem = -np.take_along_axis(self._log_softmax(x, 1), t[:, None], axis=1)[:, 0]
            if call.options.get("reduce", "mean") == "no":
                return elem.astype(x.dtype)
            return np.asarray(np.sum(elem, dtype=x.dtype) / x.dtype.type(x.shape[0]), dtype=x.dtype)


def _plain_chainer(o: dict) -> bool:
    return (
        o.get("class_weight") is None and o.get("ignore_label", -1) == -1 and o.get("normalize", True)
        and o.get("reduce", "mean") in ("mean", "no") and o.get("enable_double_backprop", False) is False
    )


class Perturbed(Wrapped):
    """The reference's results moved by ``k`` ULPs of their dtype (away from zero), every
    element of the value (``what="value"``) or of every gradient (``what="grad"``)."""

    defect = "perturbed"

    def __init__(self, k: int, what: str = "value") -> None:
        super().__init__()
        self.k, self.what = k, what
        self.name = f"numpy-plus-{k}-ulp-{what}"

    def run(self, call: Call) -> Outcome:
        out = self.inner.run(call)
        if self.what == "value":
            return Outcome(move(out.output, self.k), out.grads)
        return Outcome(out.output, {n: move(g, self.k) for n, g in out.grads.items()})


def move(a: Any, k: int) -> np.ndarray:
    """``a`` moved by ``k`` of its dtype's ULPs away from zero (infinities and nan kept);
    bfloat16 (``ml_dtypes``, dtype kind 'V') in bfloat16's own ULPs (``np.spacing`` of a
    bfloat16 array is its bfloat16 spacing, 2**-7 at 1)."""
    a = np.asarray(a)
    if a.dtype.kind != "f" and a.dtype != BF16:
        return a
    with np.errstate(all="ignore"):
        wide = a.astype(np.float64)
        step = np.spacing(np.abs(a)).astype(np.float64)
        moved = np.where(np.isfinite(wide), wide + np.copysign(k * step, np.where(wide == 0, 1.0, wide)), wide)
        return moved.astype(a.dtype)


reversed_sums = ReversedSums()
float64_then_rounded = Float64ThenRounded()
logaddexp = LogAddExp()
logaddexp_unshifted = LogAddExp(shifted=False)
VARIANTS = (reversed_sums, float64_then_rounded, logaddexp, logaddexp_unshifted)
