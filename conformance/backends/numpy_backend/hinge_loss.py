"""NumPy kernel of mxnet.gluon.loss.HingeLoss (see oracle/losses/hinge_loss.py).

h = margin - pred * label (pred * label is exact for labels -1 or 1, so h has one
rounding); out[b] = sum_{i in b} f_i * max(0, h_i) with f_i = weight * sample_weight_i / M
applied before the sum. Gradient -label_i * f_i where h_i > 0, else 0 (also at the hinge,
h_i == 0, which is inside the subgradient interval).
"""

from __future__ import annotations

import numpy as np

from . import _conventions as C

LOSS_ID = "mxnet.gluon.loss.HingeLoss"


def hinge(loss: str, inputs: dict, options: dict) -> tuple[np.ndarray, np.ndarray, C.Axes, np.ndarray]:
    """label (-1 or 1, read like pred), h = margin - pred * label, the non-batch axes and
    the factor (see _conventions.elementwise); shared with SquaredHingeLoss."""
    C.real_option(loss, "margin", options["margin"])
    pred, label, axes, factor = C.elementwise(loss, inputs, options)
    C.require(loss, "label", label, (label == 1) | (label == -1), "only the values -1 or 1")
    return label, pred.dtype.type(options["margin"]) - pred * label, axes, factor


def run(inputs: dict, options: dict, cotangent, wrt: tuple) -> tuple:
    label, h, axes, factor = hinge(LOSS_ID, inputs, options)
    dtype = h.dtype
    active = h > 0
    term = factor * np.where(active, h, dtype.type(0))
    out = C.batch_mean(term, axes, dtype)
    grads = {}
    if "pred" in wrt:
        seed = C.pull_back(cotangent, factor, axes)
        grads["pred"] = np.where(active, -seed * label, dtype.type(0)).astype(dtype)
    return out, grads
