"""The conventions every ``mxnet.gluon.loss.Loss`` shares, as documented:

* ``weight`` (float or None): "Global scalar weight for loss" -- multiplies the loss;
  None means no weighting (a factor of 1).
* ``sample_weight``: "element-wise weighting tensor. Must be broadcastable to the same
  shape as pred" -- multiplies the elementwise loss before the reduction.
* ``batch_axis`` (int, default 0): "The axis that represents mini-batch"; the output has
  shape ``(batch_size,)`` and "Dimensions other than batch_axis are averaged out".

:func:`reduce_batch_mean` applies all three to an elementwise loss and returns, besides
the value, the per-element factor that the VJP chains through (so each loss module only
differentiates its own elementwise formula).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from mpmath import mpf

from . import arrays as A
from .arrays import Array
from .catalog import InputSpec, OptionSpec
from .errors import InputError, describe


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


def weight_factor(options: Mapping[str, object]) -> mpf:
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


def broadcast_sample_weight(
    loss_id: str, sample_weight: Array | None, shape: tuple[int, ...], like: str = "pred"
) -> Array | None:
    if sample_weight is None:
        return None
    try:
        target = np.broadcast_shapes(sample_weight.shape, shape)
    except ValueError:
        target = None
    if target != tuple(shape):
        raise InputError(
            f"{loss_id}: input sample_weight has shape {sample_weight.shape}, which does not "
            f"broadcast to the shape of {like} {tuple(shape)}"
        )
    return np.broadcast_to(sample_weight, shape)


@dataclass
class Reduction:
    """An output reduced from an elementwise loss, with what its VJP needs."""

    value: Array
    scale: Array
    n_terms: int
    #: d value[b] / d elem[i] for the b that element i belongs to, elem-shaped
    factor: Array
    batch_axis: int | None

    def seed(self, cotangent: Array) -> Array:
        """The cotangent pulled back to the elementwise loss: ct[b(i)] * factor[i]."""
        if self.batch_axis is None:
            return (cotangent.reshape(()) * self.factor).astype(object)
        shape = [1] * self.factor.ndim
        shape[self.batch_axis] = -1
        return (cotangent.reshape(shape) * self.factor).astype(object)


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
    per_elem = A.full(elem.shape, factor_scalar / count)
    if sw is not None:
        per_elem = (per_elem * sw).astype(object)
    value = A.asum((per_elem * elem).astype(object), axis=other) if other else (per_elem * elem)
    scale = A.asum(A.fabs(per_elem) * elem_scale, axis=other) if other else A.fabs(per_elem) * elem_scale
    return Reduction(
        np.asarray(value, dtype=object),
        np.asarray(scale, dtype=object),
        count * terms_per_element,
        per_elem,
        batch_axis,
    )


def require_values(loss_id: str, name: str, x: np.ndarray, allowed: set, expected: str) -> None:
    """Raise if ``x`` holds a value outside a documented finite set (labels -1/1, ...)."""
    for v in np.asarray(x).ravel():
        if v not in allowed:
            raise InputError(f"{loss_id}: input {name} holds {describe(v)}; expected {expected}")


def require(loss_id: str, ok: bool, message: str) -> None:
    if not ok:
        raise InputError(f"{loss_id}: {message}")
