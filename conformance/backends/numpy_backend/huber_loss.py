"""NumPy kernel of mxnet.gluon.loss.HuberLoss (see oracle/losses/huber_loss.py).

With d = pred - label: h(d) = d^2/(2 rho) for |d| < rho, |d| - rho/2 otherwise;
out[b] = sum_{i in b} f_i * h(d_i) with f_i = weight * sample_weight_i / M applied before
the sum. The gradient f_i * h'(d_i) is analytic (d/rho or sign(d)), so an overflowing d^2
in the unused branch never reaches it. Where pred - label itself overflows (finite
inputs), the linear branch is evaluated at half scale.
"""

from __future__ import annotations

import math

import numpy as np

LOSS_ID = "mxnet.gluon.loss.HuberLoss"


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
    rho_opt = options["rho"]
    if isinstance(rho_opt, bool) or not isinstance(rho_opt, (int, float)) or not math.isfinite(rho_opt) or rho_opt <= 0:
        raise ValueError(f"{LOSS_ID}: option rho={rho_opt!r} is invalid; expected a finite real number > 0")
    pred, label, dtype, axes, factor = _prepare(inputs, options)
    rho = dtype.type(rho_opt)
    if not rho > 0:
        raise ValueError(f"{LOSS_ID}: option rho={rho_opt!r} rounds to {rho} in {dtype}; expected > 0")
    half = dtype.type(0.5)
    two = dtype.type(2)
    inv2rho = half / rho
    with np.errstate(over="ignore", invalid="ignore"):
        diff = pred - label
        absd = np.abs(diff)
        quad = absd < rho
        term = np.where(quad, (factor * diff) * (diff * inv2rho), factor * (absd - half * rho))
        over = np.isinf(diff) & np.isfinite(pred) & np.isfinite(label)
        if over.any():
            # |d| - rho/2 = 2 * (|d|/2 - rho/4)
            scaled = (two * factor) * (np.abs(pred * half - label * half) - half * half * rho)
            term = np.where(over, scaled, term)
        term = term.astype(dtype)
    out = np.sum(term, axis=axes, dtype=dtype) if axes else term
    grads = {}
    if "pred" in wrt:
        ct = np.asarray(cotangent, dtype=dtype)
        ct = np.expand_dims(ct, axes) if axes else ct
        with np.errstate(over="ignore", invalid="ignore"):
            slope = np.where(quad, diff / rho, np.sign(diff))
        grads["pred"] = (ct * factor * slope).astype(dtype)
    return np.asarray(out, dtype=dtype), grads
