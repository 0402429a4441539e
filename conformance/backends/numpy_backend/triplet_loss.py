"""NumPy kernel of mxnet.gluon.loss.TripletLoss (see oracle/losses/triplet_loss.py).

out[b] = weight * sample_weight[b] * max(d_b + margin, 0) with d_b = sum_{i in b} (positive_i - pred_i)^2 -
(negative_i - pred_i)^2. Each term is computed factored,

    (p - x)^2 - (n - x)^2 = (p - n) * ((p - x) + (n - x)),

so it never squares a large difference (no overflow where the exact loss is finite) and
p - n is one rounding. Gradients where d_b + margin > 0 (0 elsewhere, also at the kink
d_b + margin == 0, which is inside the oracle's interval):
d/dpred = 2w(n - p), d/dpositive = 2w(p - x), d/dnegative = -2w(n - x), times the cotangent.
sample_weight (documented in forward's signature) holds one weight per sample: it
broadcasts to pred's shape with size 1 on every non-batch axis.
"""

from __future__ import annotations

import math

import numpy as np

from . import _conventions as C

LOSS_ID = "mxnet.gluon.loss.TripletLoss"


def _check_options(options: dict) -> None:
    margin = options["margin"]
    if (
        isinstance(margin, bool)
        or not isinstance(margin, (int, float))
        or not math.isfinite(margin)
        or not margin > 0
    ):
        raise ValueError(
            f"{LOSS_ID}: option margin={margin!r} is invalid; expected a positive real number"
        )
    w = options["weight"]
    if w is not None and (isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w)):
        raise ValueError(f"{LOSS_ID}: option weight={w!r} is invalid; expected None or a finite real number")


def _sample_weight(sw, shape: tuple, axis: int):
    """One weight per sample: broadcastable to pred's shape, size 1 off the batch axis."""
    if sw is None:
        return None
    sw = np.asarray(sw)
    try:
        ok = np.broadcast_shapes(sw.shape, shape) == tuple(shape)
    except ValueError:
        ok = False
    padded = (1,) * (len(shape) - sw.ndim) + sw.shape
    if not ok or any(padded[a] != 1 for a in range(len(shape)) if a != axis):
        raise ValueError(
            f"{LOSS_ID}: input sample_weight has shape {sw.shape}; expected one weight per sample "
            f"(broadcastable to pred {tuple(shape)} with size 1 on every non-batch axis)"
        )
    full = np.broadcast_to(sw.reshape(padded), shape)
    return np.moveaxis(full, axis, 0).reshape(shape[axis], -1)[:, 0]


def run(inputs: dict, options: dict, cotangent, wrt: tuple) -> tuple:
    _check_options(options)
    pred = np.asarray(inputs["pred"])
    dtype = pred.dtype
    shape_in = pred.shape
    if pred.ndim == 0:
        pred = pred.reshape(1)
    pos = C.reshape_like(LOSS_ID, np.asarray(inputs["positive"]), pred, "positive")
    neg = C.reshape_like(LOSS_ID, np.asarray(inputs["negative"]), pred, "negative")
    axis = C.axis(LOSS_ID, "batch_axis", options["batch_axis"], pred.ndim, strict=True)
    axes = tuple(a for a in range(pred.ndim) if a != axis)
    one = dtype.type
    w = one(1) if options["weight"] is None else one(options["weight"])
    sw = _sample_weight(inputs.get("sample_weight"), pred.shape, axis)
    if sw is not None:
        w = (w * sw.astype(dtype)).astype(dtype)

    dp = pos - pred
    dn = neg - pred
    term = (pos - neg) * (dp + dn)
    d = np.sum(term, axis=axes, dtype=dtype) if axes else term
    inner = (d + one(options["margin"])).astype(dtype)
    out = (w * np.maximum(inner, one(0))).astype(dtype)

    grads = {}
    if wrt:
        ct = np.asarray(cotangent, dtype=dtype).reshape(inner.shape)
        c = np.where(inner > 0, one(2) * (ct * w), one(0)).astype(dtype)
        c = np.expand_dims(c, axes) if axes else c
        full = {
            "pred": lambda: c * (neg - pos),
            "positive": lambda: c * dp,
            "negative": lambda: -(c * dn),
        }
        for name in wrt:
            if name not in full:
                raise ValueError(f"{LOSS_ID}: cannot differentiate with respect to {name!r}")
            g = full[name]().astype(dtype)
            grads[name] = g.reshape(np.shape(inputs[name]) if name != "pred" else shape_in)
    return out.astype(dtype), grads
