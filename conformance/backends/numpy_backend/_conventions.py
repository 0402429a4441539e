"""The conventions every ``mxnet.gluon.loss.Loss`` shares, once for the NumPy kernels (the
oracle states them in oracle/conventions.py). This module has no ``LOSS_ID``, so the
package does not take it for a kernel.

* :func:`reshape_like`: label (and the like) "can have arbitrary shape as long as they have
  the same number of elements" as pred; it is read in row-major order into pred's shape.
* :func:`batch_axes`: ``batch_axis`` is "the axis that represents mini-batch" and
  "dimensions other than batch_axis are averaged out"; the output has shape (batch_size,).
* :func:`sample_weight`: "element-wise weighting tensor. Must be broadcastable to the same
  shape as pred".
* :func:`weight`: "global scalar weight for loss"; None is a factor of 1.
* :func:`factor`: the per-element factor ``scale * sample_weight``; the kernels either fold
  1/M (M terms averaged per batch entry) into ``scale``, so that a mean of huge terms does
  not overflow, or divide by M after the sum.
* :func:`batch_mean`: the output, the sum of ``factor * elem`` over the non-batch axes
  (divided by M unless the factor holds 1/M).
* :func:`pull_back`: the output's cotangent pulled back through that mean to the elementwise
  loss, ``ct[b(i)] * factor[i]`` (/ M); a kernel multiplies it by d elem / d input.

:func:`elementwise` does the first five for a loss of pred and label with 1/M folded into
the factor; :func:`axis`, :func:`real_option`, :func:`require` and :func:`fail` are the
checks of other options and inputs, with the same messages in every kernel.

Everything computes in the input dtype. Invalid input raises ValueError naming the loss,
the input or option, its value and what was expected.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, NoReturn

import numpy as np

Axes = tuple[int, ...]


def reshape_like(
    loss: str, x: np.ndarray, like: np.ndarray, name: str = "label", like_name: str = "pred"
) -> np.ndarray:
    """Input ``name`` read in row-major order into the shape of ``like_name``."""
    if x.size != like.size:
        raise ValueError(
            f"{loss}: input {name} has shape {x.shape} ({x.size} elements); expected the same "
            f"number of elements as {like_name} {like.shape} ({like.size})"
        )
    return x.reshape(like.shape)


def pred_label(loss: str, inputs: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """pred, and label read into pred's shape and dtype."""
    pred = np.asarray(inputs["pred"])
    return pred, reshape_like(loss, np.asarray(inputs["label"]), pred).astype(pred.dtype, copy=False)


def axis(loss: str, name: str, value: int, ndim: int, of: str = "pred", strict: bool = False) -> int:
    """Axis option ``name`` of input ``of`` as a non-negative axis (``strict``: also
    rejecting a value that is not an int, such as a bool)."""
    if (strict and (isinstance(value, bool) or not isinstance(value, int))) or not -ndim <= value < ndim:
        raise ValueError(
            f"{loss}: option {name}={value!r} is out of range for {of} with {ndim} dimension(s); "
            f"expected an int in [{-ndim}, {ndim - 1}]"
        )
    return value % ndim


def batch_axes(loss: str, batch_axis: int, ndim: int) -> Axes:
    """The axes averaged out: every axis of pred but ``batch_axis``."""
    b = axis(loss, "batch_axis", int(batch_axis), ndim)
    return tuple(a for a in range(ndim) if a != b)


def count(shape: tuple[int, ...], axes: Axes) -> int:
    """M, the number of terms averaged into each batch entry."""
    return int(np.prod([shape[a] for a in axes], dtype=np.int64))


def broadcast(
    loss: str, name: str, x: Any, shape: tuple[int, ...], dtype: np.dtype, like: str | None = None
) -> np.ndarray:
    """Input ``name`` in ``dtype``, broadcast to ``shape`` (described by ``like``, by default
    as the shape of pred)."""
    x = np.asarray(x, dtype=dtype)
    try:
        return np.broadcast_to(x, shape)
    except ValueError:
        like = f"the shape of pred {tuple(shape)}" if like is None else like
        raise ValueError(
            f"{loss}: input {name} has shape {x.shape}, which does not broadcast to {like}"
        ) from None


def sample_weight(
    loss: str, inputs: Mapping[str, Any], shape: tuple[int, ...], dtype: np.dtype, like: str | None = None
) -> np.ndarray | None:
    """The optional ``sample_weight`` input broadcast to the elementwise loss's shape."""
    sw = inputs.get("sample_weight")
    return None if sw is None else broadcast(loss, "sample_weight", sw, shape, dtype, like)


def weight(options: Mapping[str, Any], dtype: np.dtype) -> np.floating:
    """The ``weight`` option in ``dtype``; None is 1."""
    w = options.get("weight")
    return dtype.type(1.0 if w is None else w)


def factor(
    loss: str,
    inputs: Mapping[str, Any],
    shape: tuple[int, ...],
    dtype: np.dtype,
    scale: np.floating,
    like: str | None = None,
) -> np.ndarray:
    """``scale * sample_weight`` per element of an elementwise loss of ``shape``."""
    f = np.full(shape, scale, dtype=dtype)
    sw = sample_weight(loss, inputs, shape, dtype, like)
    return f if sw is None else (f * sw).astype(dtype)


def elementwise(
    loss: str, inputs: Mapping[str, Any], options: Mapping[str, Any], divisor: int = 1
) -> tuple[np.ndarray, np.ndarray, Axes, np.ndarray]:
    """pred, label read like pred, the non-batch axes and the factor
    ``weight / divisor / M * sample_weight``, for a loss that is the mean of an elementwise
    function of pred and label (``divisor``: a constant of the formula, e.g. L2Loss's 2)."""
    pred, label = pred_label(loss, inputs)
    dtype = pred.dtype
    axes = batch_axes(loss, options["batch_axis"], pred.ndim)
    scale = weight(options, dtype)
    if divisor != 1:
        scale = scale / dtype.type(divisor)
    scale = scale / dtype.type(count(pred.shape, axes))
    return pred, label, axes, factor(loss, inputs, pred.shape, dtype, scale)


def batch_mean(weighted: np.ndarray, axes: Axes, dtype: np.dtype, m: int = 1) -> np.ndarray:
    """The output, shape (batch_size,): ``weighted`` summed over ``axes``, divided by ``m``
    (1 where the factor already holds 1/M)."""
    out = np.sum(weighted, axis=axes, dtype=dtype) if axes else weighted
    if m != 1:
        out = out / dtype.type(m)
    return np.asarray(out, dtype=dtype)


def pull_back(cotangent: Any, factor: np.ndarray, axes: Axes, m: int = 1) -> np.ndarray:
    """The cotangent of the (batch_size,) output times d out[b(i)] / d elem[i], i.e.
    ``ct[b(i)] * factor[i]``, divided by ``m`` as in :func:`batch_mean`."""
    ct = np.asarray(cotangent, dtype=factor.dtype)
    ct = np.expand_dims(ct, axes) if axes else ct
    seed = ct * factor
    return seed / factor.dtype.type(m) if m != 1 else seed


def real_option(loss: str, name: str, value: Any, positive: bool = False) -> None:
    """Raise unless option ``name`` is a finite real number (> 0 if ``positive``)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or (positive and not value > 0)
    ):
        expected = "a finite real number > 0" if positive else "a finite real number"
        raise ValueError(f"{loss}: option {name}={value!r} is invalid; expected {expected}")


def fail(loss: str, message: str) -> NoReturn:
    """Raise ValueError with ``message`` about ``loss``."""
    raise ValueError(f"{loss}: {message}")


def require(loss: str, name: str, x: np.ndarray, ok: np.ndarray, expected: str) -> None:
    """Raise, naming the first value of input ``name`` where ``ok`` is False."""
    if not ok.all():
        raise ValueError(f"{loss}: input {name} holds {x[~ok][0].item()!r}; expected {expected}")
