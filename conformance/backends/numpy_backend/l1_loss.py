"""NumPy kernel of mxnet.gluon.loss.L1Loss (see oracle/losses/l1_loss.py for the formula).

out[b] = sum_{i in b} f_i * |pred_i - label_i| with f_i = weight * sample_weight_i / M,
the factor applied before the sum so that a mean of huge terms does not overflow. Where
pred - label itself overflows (finite inputs), |pred/2 - label/2| * 2 f_i is used instead.
At pred == label the gradient is 0 (inside the subgradient interval).
"""

from __future__ import annotations

import numpy as np

from . import _conventions as C

LOSS_ID = "mxnet.gluon.loss.L1Loss"


def run(inputs: dict, options: dict, cotangent, wrt: tuple) -> tuple:
    pred, label, axes, factor = C.elementwise(LOSS_ID, inputs, options)
    dtype = pred.dtype
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
    out = C.batch_mean(term, axes, dtype)
    grads = {}
    if "pred" in wrt:
        grads["pred"] = (C.pull_back(cotangent, factor, axes) * np.sign(diff)).astype(dtype)
    return out, grads
