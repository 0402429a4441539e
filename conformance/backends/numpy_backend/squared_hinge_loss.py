"""NumPy kernel of mxnet.gluon.loss.SquaredHingeLoss (see oracle/losses/squared_hinge_loss.py).

h = margin - pred * label (pred * label is exact for labels -1 or 1, so h has one
rounding); out[b] = sum_{i in b} (f_i * h+_i) * h+_i with h+ = max(0, h) and
f_i = weight * sample_weight_i / M applied before squaring, so terms above sqrt(max) do not
overflow when their mean does not. Gradient -2 * label_i * h+_i * f_i (continuous at the
margin).
"""

from __future__ import annotations

import numpy as np

from . import _conventions as C
from .hinge_loss import hinge

LOSS_ID = "mxnet.gluon.loss.SquaredHingeLoss"


def run(inputs: dict, options: dict, cotangent, wrt: tuple) -> tuple:
    label, h, axes, factor = hinge(LOSS_ID, inputs, options)
    dtype = h.dtype
    active = h > 0
    hp = np.where(active, h, dtype.type(0))
    with np.errstate(over="ignore"):
        term = (factor * hp) * hp
    out = C.batch_mean(term, axes, dtype)
    grads = {}
    if "pred" in wrt:
        with np.errstate(over="ignore"):
            seed = C.pull_back(cotangent, factor, axes)
            grads["pred"] = ((seed * hp) * (dtype.type(-2) * label)).astype(dtype)
    return out, grads
