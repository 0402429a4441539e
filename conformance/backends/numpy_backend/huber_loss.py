"""NumPy kernel of mxnet.gluon.loss.HuberLoss (see oracle/losses/huber_loss.py).

With d = pred - label: h(d) = d^2/(2 rho) for |d| < rho, |d| - rho/2 otherwise;
out[b] = sum_{i in b} f_i * h(d_i) with f_i = weight * sample_weight_i / M applied before
the sum. The gradient f_i * h'(d_i) is analytic (d/rho or sign(d)), so an overflowing d^2
in the unused branch never reaches it. Where pred - label itself overflows (finite
inputs), the linear branch is evaluated at half scale.
"""

from __future__ import annotations

import numpy as np

from . import _conventions as C

LOSS_ID = "mxnet.gluon.loss.HuberLoss"


def run(inputs: dict, options: dict, cotangent, wrt: tuple) -> tuple:
    rho_opt = options["rho"]
    C.real_option(LOSS_ID, "rho", rho_opt, positive=True)
    pred, label, axes, factor = C.elementwise(LOSS_ID, inputs, options)
    dtype = pred.dtype
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
    out = C.batch_mean(term, axes, dtype)
    grads = {}
    if "pred" in wrt:
        with np.errstate(over="ignore", invalid="ignore"):
            slope = np.where(quad, diff / rho, np.sign(diff))
        grads["pred"] = (C.pull_back(cotangent, factor, axes) * slope).astype(dtype)
    return out, grads
