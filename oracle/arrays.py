"""Arrays of proven reals: numpy object arrays whose elements are :class:`oracle.real.Real`
enclosures.

numpy supplies shapes, broadcasting, axes and indexing; :mod:`oracle.real` supplies the
arithmetic (arb balls at the working precision of :mod:`oracle.precision`), so a loss
module's formula runs unchanged and every number it computes is an enclosure of the exact
value. The functions here are the elementwise mathematics the loss modules share.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

from . import real as R
from .real import Real, real

Array = np.ndarray  # an object array of Real
mpf = real  # an exact Real of a number: what the loss modules call mpf(...)


def asmp(values: object) -> Array:
    """An object array of Reals holding exactly the given numbers (floats convert exactly)."""
    arr = np.asarray(values)
    if arr.dtype == object:
        flat = [real(v) for v in arr.ravel()]
    else:
        flat = [real(float(v)) if arr.dtype.kind == "f" else real(int(v)) for v in arr.ravel()]
    out = np.empty(len(flat), dtype=object)
    out[:] = flat
    return out.reshape(arr.shape)


def full(shape: tuple[int, ...], value: object) -> Array:
    out = np.empty(shape, dtype=object)
    out[...] = real(value)
    return out


def zeros(shape: tuple[int, ...]) -> Array:
    return full(shape, 0)


def _ufunc(fn: Callable[[Real], Real]) -> Callable[[Array], Array]:
    uf = np.frompyfunc(fn, 1, 1)

    def apply(x: Array) -> Array:
        out = uf(x)
        return out if isinstance(out, np.ndarray) else np.array(out, dtype=object)

    apply.__name__ = getattr(fn, "__name__", "elementwise")
    return apply


# ------------------------------------------------------------ elementary functions
exp = _ufunc(R.exp)
term = _ufunc(R.term)
log = _ufunc(R.log)
log1p = _ufunc(R.log1p)
sqrt = _ufunc(R.sqrt)
fabs = _ufunc(R.fabs)


def _xlogy(x: Real, y: Real) -> Real:
    """x * log(y) with the convention 0 * log(0) = 0 (the limit, as in entropy)."""
    if x == 0 and not R.isnan(y):
        return real(0)
    return x * R.log(y)


xlogy = np.frompyfunc(_xlogy, 2, 1)


def _xlog1py(x: Real, y: Real) -> Real:
    """x * log1p(y) with 0 * log1p(-1) = 0 (the limit convention)."""
    if x == 0 and not R.isnan(y):
        return real(0)
    return x * R.log1p(y)


xlog1py = np.frompyfunc(_xlog1py, 2, 1)


def _xmul(x: Real, y: Real) -> Real:
    """x * y with 0 * (+-inf) = 0: a zero weight (a label of 0) weighs nothing, even where
    y (log p) is infinite -- the convention of xlogy."""
    return real(0) if x == 0 else x * y


xmul = np.frompyfunc(_xmul, 2, 1)


def _softplus(x: Real) -> Real:
    """log(1 + exp(x)), exact at any magnitude."""
    if R.isinf(x):
        return x if x > 0 else real(0)
    if x > 0:
        return x + R.log1p(R.exp(-x))
    return R.log1p(R.exp(x))


softplus = _ufunc(_softplus)


def _sigmoid(x: Real) -> Real:
    if R.isinf(x):
        return real(1) if x > 0 else real(0)
    return 1 / (1 + R.exp(-x))


sigmoid = _ufunc(_sigmoid)


def relu(x: Array) -> Array:
    return np.where(x > 0, x, real(0)).astype(object)


# ------------------------------------------------------------------- reductions


def asum(x: Array, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Array:
    """Sum of exact numbers (each addition rounded at the working precision)."""
    out = np.sum(x, axis=axis, keepdims=keepdims, initial=real(0))
    return out if isinstance(out, np.ndarray) else np.array(out, dtype=object)


def amax(x: Array, axis: int, keepdims: bool = False) -> Array:
    out = np.max(x, axis=axis, keepdims=keepdims)
    return out if isinstance(out, np.ndarray) else np.array(out, dtype=object)


def _log_sum_exp_shifted(d: Array, axis: int) -> Array:
    """log(sum(exp(d))) along ``axis`` (keepdims) for d = x - max(x) (so one element of each
    slice is exactly 0): log1p of the sum of the other terms, which keeps the relative
    accuracy of a result as tiny as log(1 + exp(-10000)) (log of a sum that was rounded to
    1 would only bound it absolutely)."""
    moved = np.moveaxis(d, axis, -1)
    out = np.empty(moved.shape[:-1], dtype=object)
    for idx in np.ndindex(out.shape):
        row = moved[idx]
        top = next((j for j, v in enumerate(row) if R.real(v).is_zero), None)
        if top is None:  # no exact zero (an all -inf slice): the plain form
            out[idx] = R.log(R.fsum(R.exp(v) for v in row))
        else:
            out[idx] = R.log1p(R.fsum(R.exp(v) for j, v in enumerate(row) if j != top))
    return np.expand_dims(out, axis)


def logsumexp(x: Array, axis: int, keepdims: bool = False) -> Array:
    """log(sum(exp(x))) along ``axis``, shifted by the maximum so it never overflows."""
    m = amax(x, axis=axis, keepdims=True)
    finite_m = np.where(np.frompyfunc(R.isinf, 1, 1)(m).astype(bool), real(0), m)
    out = _log_sum_exp_shifted(term((x - finite_m).astype(object)), axis) + finite_m
    return out if keepdims else np.squeeze(out, axis=axis)


def log_softmax(x: Array, axis: int) -> Array:
    """(x - max) - log(sum(exp(x - max))): shifting first keeps O(1) results exact even
    when the logits are huge (x - logsumexp(x) would cancel at +-1e300)."""
    m = amax(x, axis=axis, keepdims=True)
    finite_m = np.where(isfinite(m), m, real(0))
    shifted = term((x - finite_m).astype(object))  # one term: the shift (oracle.real.term)
    return (shifted - _log_sum_exp_shifted(shifted, axis)).astype(object)


def log_softmax_terms(x: Array, axis: int) -> tuple[Array, Array]:
    """(log_softmax(x), term scale) along ``axis``, keepdims, for x with a finite maximum m
    on every slice. log_softmax is formed as (x - m) - log(sum exp(x - m)), never as
    x - logsumexp(x): with |x| ~ 1e300 the latter cancels away an O(1) result at any fixed
    working precision.

    The term scale of class j is ``|x_j| + |logsumexp(x)|`` (plus the error the terms of
    ``logsumexp(x)`` carry, :func:`lse_terms`), the definition of
    ``/work/shared/DESIGN.md`` ("for softmax cross-entropy, |x_t| + |logsumexp(x)|"): the
    magnitudes of the two terms the documented formula ``x_j - logsumexp(x)`` adds. It is
    what backward stability under a relative perturbation of the inputs allows (a logit of
    1000 perturbed by eps moves the loss by 1000 eps), and so it admits every correct
    evaluation, the unshifted ``np.logaddexp.reduce(x) `` then ``x_j - lse`` included
    (issue 11, item 3: "logaddexp instead of max-shift" is a correct variant that passes
    everything). It replaces the shift-invariant ``|x_j - m| + |log sum exp(x - m)|``, which
    only the max-shifted evaluation meets. Likewise the exponent ``x_j - m`` of each
    probability carries the term magnitude ``|x_j| + |m|`` (:func:`oracle.real.with_terms`),
    so the VJP scales admit the unshifted evaluation's argument error too."""
    m = amax(x, axis=axis, keepdims=True)
    d = term((x - m).astype(object))  # the value: one exact difference (oracle.real.term)
    mb = np.broadcast_to(m, x.shape)
    d = np.frompyfunc(R.with_terms, 3, 1)(d, x, mb).astype(object)  # its error: |x_j| + |m|
    log_s = _log_sum_exp_shifted(d, axis)
    lse = (m + log_s).astype(object)
    logp = (d - log_s).astype(object)
    return logp, (fabs(x) + lse_terms(x, logp, lse, axis)).astype(object)


def lse_terms(x: Array, logp: Array, lse: Array, axis: int) -> Array:
    """The term magnitude of ``logsumexp(x)`` along ``axis`` (keepdims): ``|logsumexp(x)| +
    sum_k p_k |x_k|``, the rounding of the result plus the error its terms ``exp(x_k)``
    carry from a relative error of their arguments (a running error bound, as
    :mod:`oracle.real` does for the VJPs). The second part is what makes a tiny
    ``logsumexp(x) - x_t`` (logits [0, -30, -30], target 0: 30 eps relative per term) a
    backward-stable result; for O(1) losses it is at most max |x_k|."""
    carried = asum(xmul(exp(logp), fabs(x)).astype(object), axis=axis, keepdims=True)
    return (fabs(lse) + carried).astype(object)


def softmax(x: Array, axis: int) -> Array:
    return exp(log_softmax(x, axis))


def isfinite(x: Array) -> np.ndarray:
    return np.frompyfunc(R.isfinite, 1, 1)(x).astype(bool)


def isinf(x: Array) -> np.ndarray:
    return np.frompyfunc(R.isinf, 1, 1)(x).astype(bool)


def isnan(x: Array) -> np.ndarray:
    return np.frompyfunc(R.isnan, 1, 1)(x).astype(bool)


def is_integral(values: Iterable[object]) -> bool:
    return all(R.isint(v) for v in values)
