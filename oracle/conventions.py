"""The conventions every ``mxnet.gluon.loss.Loss`` shares, as documented:

* ``weight`` (float or None): "Global scalar weight for loss" -- multiplies the loss;
  None means no weighting (a factor of 1).
* ``sample_weight``: "element-wise weighting tensor. Must be broadcastable to the same
  shape as pred" -- multiplies the elementwise loss before the reduction.
* ``batch_axis`` (int, default 0): "The axis that represents mini-batch"; the output has
  shape ``(batch_size,)`` and "Dimensions other than batch_axis are averaged out".

:func:`reduce_batch_mean` applies all three to an elementwise loss and returns, besides
the value, the per-element factor that the VJP chains through (so each loss module only
differentiates its own elementwise formula); :func:`batch_mean_forward` makes that the
:class:`~oracle.result.Forward` of a loss of pred. The inputs, options, readings and input
checks several losses share are here too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from . import arrays as A
from . import real as R
from .arrays import Array
from .catalog import InputSpec, OptionSpec, Reading
from .errors import InputError, describe
from .real import real as mpf
from .result import Forward, Gradient


def weight_option(default: float | None = None) -> OptionSpec:
    return OptionSpec(
        "weight",
        default,
        "weight",
        "Global scalar weight for loss (None: no weighting).",
        fixture_values=(None, 0.5) if default is None else (0.5, None),
    )


def batch_axis_option() -> OptionSpec:
    return OptionSpec(
        "batch_axis", 0, "int", "The axis that represents mini-batch.", fixture_values=(1,)
    )


def sample_weight_input(like: str = "pred") -> InputSpec:
    return InputSpec(
        "sample_weight",
        f"element-wise weighting tensor, broadcastable to the same shape as {like}",
        optional=True,
    )


def pred_input() -> InputSpec:
    return InputSpec("pred", "prediction tensor with arbitrary shape", differentiable=True)


def averaged_out_reading(quote: str) -> Reading:
    """The reading every elementwise Loss shares: the documented sum over i is the mean
    that the output description speaks of."""
    return Reading(
        "sum or mean",
        quote,
        "The sum in the formula is over the elements that the output description then "
        "averages: out[b] is the mean over the non-batch axes, as for every Loss.",
    )


def weight_factor(options: Mapping[str, object]) -> R.Real:
    w = options.get("weight")
    return mpf(1) if w is None else mpf(w)  # type: ignore[arg-type]


def normalize_axis(loss_id: str, name: str, axis: int, ndim: int) -> int:
    """A documented axis option as a non-negative axis of an ``ndim``-array."""
    if not -ndim <= axis < ndim:
        raise InputError(
            f"{loss_id}: option {name}={axis} is out of range for an input with {ndim} "
            f"dimension(s); expected an int in [{-ndim}, {ndim - 1}]"
        )
    return axis % ndim


def reshape_like(loss_id: str, name: str, x: Array, like: Array, like_name: str = "pred") -> Array:
    """Documented: "can have arbitrary shape as long as they have the same number of
    elements" -- ``x`` is read in row-major order into ``like``'s shape."""
    if x.size != like.size:
        raise InputError(
            f"{loss_id}: input {name} has shape {x.shape} ({x.size} elements); expected "
            f"the same number of elements as {like_name} {like.shape} ({like.size})"
        )
    return x.reshape(like.shape)


def broadcast_input(
    loss_id: str, name: str, x: Array, shape: tuple[int, ...], like: str = "pred", expected: str = ""
) -> Array:
    """Input ``name`` broadcast to the shape of ``like`` (documented: "broadcastable to")."""
    try:
        target = np.broadcast_shapes(x.shape, shape)
    except ValueError:
        target = None
    if target != tuple(shape):
        raise InputError(
            f"{loss_id}: input {name} has shape {x.shape}, which does not broadcast to the shape "
            f"of {like} {tuple(shape)}" + (f"; {expected}" if expected else "")
        )
    return np.broadcast_to(x, shape)


def broadcast_sample_weight(
    loss_id: str, sample_weight: Array | None, shape: tuple[int, ...], like: str = "pred"
) -> Array | None:
    if sample_weight is None:
        return None
    return broadcast_input(loss_id, "sample_weight", sample_weight, shape, like)


def per_sample_weight(
    loss_id: str, sample_weight: Array | None, shape: tuple[int, ...], axis: int, like: str = "pred"
) -> Array | None:
    """A ``sample_weight`` for a loss that is per sample (one value per batch element, no
    element to weigh): it must broadcast to ``like``'s shape AND have size 1 on every
    non-batch axis (the documented per-sample example "(64, 1)" for (64, 10)). Returns the
    weights as a 1-D array of batch_size entries, in batch order."""
    if sample_weight is None:
        return None
    full = broadcast_input(loss_id, "sample_weight", sample_weight, shape, like)
    padded = (1,) * (len(shape) - sample_weight.ndim) + sample_weight.shape
    if not all(padded[a] == 1 for a in range(len(shape)) if a != axis):
        raise InputError(
            f"{loss_id}: input sample_weight has shape {sample_weight.shape}; expected one weight "
            f"per sample (size 1 on every non-batch axis of {like} {tuple(shape)}, e.g. "
            f"{tuple(s if a == axis else 1 for a, s in enumerate(shape))}): the loss is per sample"
        )
    index = tuple(slice(None) if a == axis else 0 for a in range(len(shape)))
    return np.asarray(full[index]).reshape(-1)


@dataclass
class Reduction:
    """An output reduced from an elementwise loss, with what its VJP needs."""

    value: Array
    scale: Array
    n_terms: int
    #: d value[b] / d elem[i] for the b that element i belongs to, elem-shaped, times count
    numerator: Array
    batch_axis: int | None
    #: the number of elements averaged into one output (the mean's divisor)
    count: int = 1

    @property
    def factor(self) -> Array:
        """d value[b] / d elem[i] for the b that element i belongs to, elem-shaped."""
        return (self.numerator / self.count).astype(object)

    def seed(self, cotangent: Array) -> Array:
        """The cotangent pulled back to the elementwise loss: ct[b(i)] * factor[i], formed as
        (ct * numerator) / count so that an exact quotient stays an exact point."""
        if self.batch_axis is None:
            return (cotangent.reshape(()) * self.numerator / self.count).astype(object)
        shape = [1] * self.numerator.ndim
        shape[self.batch_axis] = -1
        return (cotangent.reshape(shape) * self.numerator / self.count).astype(object)


def reduce_batch_mean(
    loss_id: str,
    elem: Array,
    elem_scale: Array,
    options: Mapping[str, object],
    sample_weight: Array | None,
    *,
    extra_factor: object = 1,
    terms_per_element: int = 1,
    sample_weight_like: str = "pred",
) -> Reduction:
    """weight * extra_factor * mean over every axis but ``batch_axis`` of
    (sample_weight * elem); the output has shape ``(batch_size,)``."""
    batch_axis = normalize_axis(loss_id, "batch_axis", int(options["batch_axis"]), elem.ndim)  # type: ignore[call-overload]
    sw = broadcast_sample_weight(loss_id, sample_weight, elem.shape, sample_weight_like)
    factor_scalar = weight_factor(options) * mpf(extra_factor)  # type: ignore[arg-type]
    other = tuple(a for a in range(elem.ndim) if a != batch_axis)
    count = int(np.prod([elem.shape[a] for a in other], dtype=np.int64)) if other else 1
    if count == 0:
        raise InputError(f"{loss_id}: the non-batch axes of the input are empty: shape {elem.shape}")
    # the mean is formed as sum(...) / count, the division last: a mean that is exactly a
    # dyadic number (a rounding boundary, often) stays an exact point
    numer = A.full(elem.shape, factor_scalar)
    if sw is not None:
        numer = (numer * sw).astype(object)
    value = A.asum((numer * elem).astype(object), axis=other) if other else (numer * elem)
    scale = A.asum(A.fabs(numer) * elem_scale, axis=other) if other else A.fabs(numer) * elem_scale
    return Reduction(
        (np.asarray(value, dtype=object) / count).astype(object),
        (np.asarray(scale, dtype=object) / count).astype(object),
        count * terms_per_element,
        numer,
        batch_axis,
        count,
    )


def pred_and_label(loss_id: str, x: Mapping[str, Array]) -> tuple[Array, Array]:
    """pred, and label read into pred's shape (:func:`reshape_like`)."""
    pred = x["pred"]
    return pred, reshape_like(loss_id, "label", x["label"], pred)


def batch_mean_forward(
    loss_id: str,
    x: Mapping[str, Array],
    options: Mapping[str, object],
    elem: Array,
    pred_vjp: Callable[[Array], Gradient],
    *,
    elem_scale: Array | None = None,
    **reduction: object,
) -> Forward:
    """The :class:`Forward` of a loss that is :func:`reduce_batch_mean` of the elementwise
    term ``elem`` (``elem_scale``: the magnitudes summed to form it, default ``elem``), with
    x's sample_weight. Its VJP pulls the cotangent back to each element
    (:meth:`Reduction.seed`) and hands that to ``pred_vjp``, which chains it through
    d elem / d pred."""
    red = reduce_batch_mean(
        loss_id, elem, elem if elem_scale is None else elem_scale, options, x.get("sample_weight"), **reduction  # type: ignore[arg-type]
    )

    def vjp(ct: np.ndarray) -> dict[str, Gradient]:
        return {"pred": pred_vjp(red.seed(ct))}

    return Forward(red.value, red.scale, red.n_terms, vjp)


def require_values(loss_id: str, name: str, x: np.ndarray, allowed: set, expected: str) -> None:
    """Raise if ``x`` holds a value outside a documented finite set (labels -1/1, ...)."""
    for v in np.asarray(x).ravel():
        if v not in allowed:
            raise InputError(f"{loss_id}: input {name} holds {describe(v)}; expected {expected}")


def require_finite(loss_id: str, name: str, x: np.ndarray) -> None:
    """Raise if ``x`` holds an infinity or nan."""
    for v in np.asarray(x).ravel():
        if not R.isfinite(v):
            raise InputError(f"{loss_id}: input {name} holds {describe(v)}; expected finite real numbers")


def require_softmax_logits(loss_id: str, pred: np.ndarray, axis: int, slice_name: str) -> None:
    """Raise unless softmax(pred, axis) of real logits is defined: no +inf, and no slice
    along ``axis`` (a "softmax slice", a "class slice") that is all -inf."""
    if any(v == R.INF for v in pred.ravel()):
        raise InputError(
            f"{loss_id}: input pred holds inf; expected finite logits (or -inf) when "
            "from_logits=False, since softmax of +inf is undefined"
        )
    if np.any(np.all(A.isinf(pred), axis=axis)):
        raise InputError(f"{loss_id}: input pred has a {slice_name} slice that is all -inf; softmax is undefined there")


def require_not_nan(loss_id: str, name: str, x: np.ndarray) -> None:
    if A.isnan(x).any():
        raise InputError(f"{loss_id}: input {name} holds nan; expected real numbers")


def require(loss_id: str, ok: bool, message: str) -> None:
    if not ok:
        raise InputError(f"{loss_id}: {message}")
