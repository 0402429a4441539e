"""NumPy kernel of mxnet.gluon.loss.HingeLoss (see oracle/losses/hinge_loss.py).

h = margin - pred * label (pred * label is exact for labels -1 or 1, so h has one
rounding); out[b] = sum_{i in b} f_i * max(0, h_i) with f_i = weight * sample_weight_i / M
applied before the sum. Gradient -label_i * f_i where h_i > 0, else 0 (also at the hinge,
h_i == 0, which is inside the subgradient interval).
"""

from __future__ import annotations

import math

import numpy as np

LOSS_ID = "mxnet.gluon.loss.HingeLoss"


def _prepare(inputs: dict, options: dict):
    pred = inputs["pred"]
    label = inputs["label"]
    dtype = pred.dtype
    if label.size != pred.size:
        raise ValueError(
            f"{LOSS_ID}: input label has shape {label.shape} ({label.size} elements); "
            f"expected the same number of elements as pred {pred.shape} ({pred.size})"
        )
    label = label.reshape(pred.shape)
    ndim = pred.ndim
    batch_axis = options["batch_axis"]
    if not -ndim <= batch_axis < ndim:
        raise ValueError(
            f"{LOSS_ID}: option batch_axis={batch_axis} is out of range for pred with {ndim} "
            f"dimension(s); expected an int in [{-ndim}, {ndim - 1}]"
        )
    b = batch_axis % ndim
    axes = tuple(a for a in range(ndim) if a != b)
    n = int(np.prod([pred.shape[a] for a in axes], dtype=np.int64))
    w = 1.0 if options["weight"] is None else options["weight"]
    factor = np.full(pred.shape, dtype.type(w) / dtype.type(n), dtype=dtype)
    sw = inputs.get("sample_weight")
    if sw is not None:
        try:
            ok = np.broadcast_shapes(sw.shape, pred.shape) == pred.shape
        except ValueError:
            ok = False
        if not ok:
            raise ValueError(
                f"{LOSS_ID}: input sample_weight has shape {sw.shape}, which does not "
                f"broadcast to the shape of pred {pred.shape}"
            )
        factor = (factor * sw).astype(dtype)
    return pred, label, dtype, axes, factor


def _check_margin(margin) -> None:
    if isinstance(margin, bool) or not isinstance(margin, (int, float)) or not math.isfinite(margin):
        raise ValueError(f"{LOSS_ID}: option margin={margin!r} is invalid; expected a finite real number")


def _check_labels(label: np.ndarray) -> None:
    bad = ~((label == 1) | (label == -1))
    if bad.any():
        value = label[bad].ravel()[0]
        raise ValueError(f"{LOSS_ID}: input label holds {value!r}; expected only the values -1 or 1")


def run(inputs: dict, options: dict, cotangent, wrt: tuple) -> tuple:
    _check_margin(options["margin"])
    pred, label, dtype, axes, factor = _prepare(inputs, options)
    _check_labels(label)
    margin = dtype.type(options["margin"])
    h = margin - pred * label
    active = h > 0
    term = factor * np.where(active, h, dtype.type(0))
    out = np.sum(term, axis=axes, dtype=dtype) if axes else term
    grads = {}
    if "pred" in wrt:
        ct = np.asarray(cotangent, dtype=dtype)
        ct = np.expand_dims(ct, axes) if axes else ct
        grads["pred"] = np.where(active, -(ct * factor) * label, dtype.type(0)).astype(dtype)
    return np.asarray(out, dtype=dtype), grads
