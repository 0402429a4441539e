"""NumPy kernel of mxnet.gluon.loss.L1Loss (see oracle/losses/l1_loss.py for the formula).

out[b] = sum_{i in b} f_i * |pred_i - label_i| with f_i = weight * sample_weight_i / M,
the factor applied before the sum so that a mean of huge terms does not overflow. Where
pred - label itself overflows (finite inputs), |pred/2 - label/2| * 2 f_i is used instead.
At pred == label the gradient is 0 (inside the subgradient interval).
"""

from __future__ import annotations

import numpy as np

LOSS_ID = "mxnet.gluon.loss.L1Loss"


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


def run(inputs: dict, options: dict, cotangent, wrt: tuple) -> tuple:
    pred, label, dtype, axes, factor = _prepare(inputs, options)
    two = dtype.type(2)
    half = dtype.type(0.5)
    with np.errstate(over="ignore", invalid="ignore"):
        diff = pred - label
        absd = np.abs(diff)
        term = factor * absd
        over = np.isinf(diff) & np.isfinite(pred) & np.isfinite(label)
        if over.any():
            scaled = (two * factor) * np.abs(pred * half - label * half)
            term = np.where(over, scaled, term)
    out = np.sum(term, axis=axes, dtype=dtype) if axes else term
    grads = {}
    if "pred" in wrt:
        ct = np.asarray(cotangent, dtype=dtype)
        ct = np.expand_dims(ct, axes) if axes else ct
        grads["pred"] = (ct * factor * np.sign(diff)).astype(dtype)
    return np.asarray(out, dtype=dtype), grads
