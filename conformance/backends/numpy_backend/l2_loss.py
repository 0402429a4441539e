"""NumPy kernel of mxnet.gluon.loss.L2Loss (see oracle/losses/l2_loss.py for the formula)."""

from __future__ import annotations

import numpy as np

LOSS_ID = "mxnet.gluon.loss.L2Loss"


def _batch_axes(ndim: int, batch_axis: int) -> tuple[int, ...]:
    if not -ndim <= batch_axis < ndim:
        raise ValueError(f"{LOSS_ID}: batch_axis={batch_axis} is out of range for pred with {ndim} dimension(s)")
    b = batch_axis % ndim
    return tuple(a for a in range(ndim) if a != b)


def run(inputs: dict, options: dict, cotangent, wrt: tuple) -> tuple:
    pred = inputs["pred"]
    label = inputs["label"]
    dtype = pred.dtype
    if label.size != pred.size:
        raise ValueError(f"{LOSS_ID}: label has {label.size} elements, expected pred's {pred.size}")
    label = label.reshape(pred.shape)
    w = dtype.type(1.0 if options["weight"] is None else options["weight"])
    axes = _batch_axes(pred.ndim, options["batch_axis"])
    n = int(np.prod([pred.shape[a] for a in axes], dtype=np.int64))
    factor = np.full(pred.shape, w / dtype.type(2) / dtype.type(n), dtype=dtype)
    sw = inputs.get("sample_weight")
    if sw is not None:
        try:
            if np.broadcast_shapes(sw.shape, pred.shape) != pred.shape:
                raise ValueError
        except ValueError:
            raise ValueError(f"{LOSS_ID}: sample_weight of shape {sw.shape} does not broadcast to pred's {pred.shape}") from None
        factor = factor * sw
    diff = pred - label
    with np.errstate(over="ignore"):  # a square beyond the dtype's range is inf, as it rounds
        out = np.sum(factor * diff * diff, axis=axes, dtype=dtype) if axes else factor * diff * diff
    grads = {}
    if "pred" in wrt:
        ct = np.expand_dims(np.asarray(cotangent, dtype=dtype), axes) if axes else np.asarray(cotangent, dtype=dtype)
        grads["pred"] = (ct * factor * dtype.type(2) * diff).astype(dtype)
    return out.astype(dtype), grads
