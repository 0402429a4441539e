"""NumPy kernel of mxnet.gluon.loss.L2Loss (see oracle/losses/l2_loss.py for the formula).

out[b] = sum_{i in b} f_i * d_i * d_i with d = pred - label and
f_i = weight / 2 * sample_weight_i / M applied before the sum; gradient 2 f_i d_i.
"""

from __future__ import annotations

import numpy as np

from . import _conventions as C

LOSS_ID = "mxnet.gluon.loss.L2Loss"


def run(inputs: dict, options: dict, cotangent, wrt: tuple) -> tuple:
    pred, label, axes, factor = C.elementwise(LOSS_ID, inputs, options, divisor=2)
    dtype = pred.dtype
    diff = pred - label
    with np.errstate(over="ignore"):  # a square beyond the dtype's range is inf, as it rounds
        out = C.batch_mean(factor * diff * diff, axes, dtype)
    grads = {}
    if "pred" in wrt:
        grads["pred"] = (C.pull_back(cotangent, factor, axes) * dtype.type(2) * diff).astype(dtype)
    return out, grads
