"""NumPy kernel for mxnet.gluon.loss.LogisticLoss.

Documented semantics (see oracle/losses/logistic_loss.py): with the signed label
s = label ('signed', -1/1) or s = 2 * label - 1 ('binary', 0/1),

    elem = log(1 + exp(-pred * s)) = softplus(-pred * s)

then * sample_weight * weight, mean over every axis but batch_axis. Computed in the input
dtype; softplus(m) = max(m, 0) + log1p(exp(-|m|)) never overflows, and at m = +-inf it is
the formula's limit (0 or +inf; the derivative 0 or -s).
"""

from __future__ import annotations

import numpy as np

from . import _conventions as C

LOSS_ID = "mxnet.gluon.loss.LogisticLoss"


@np.errstate(under="ignore")
def run(inputs: dict, options: dict, cotangent, wrt: tuple) -> tuple:
    pred, label = C.pred_label(LOSS_ID, inputs)
    dt = pred.dtype
    fmt = options.get("label_format", "signed")
    if fmt not in ("signed", "binary"):
        raise ValueError(f"{LOSS_ID}: option label_format={fmt!r}; expected 'signed' or 'binary'")
    neg = -1 if fmt == "signed" else 0
    ok = (label == neg) | (label == 1)
    C.require(LOSS_ID, "label", label, ok, f"values {neg} or 1 (label_format={fmt!r})")
    C.require(LOSS_ID, "pred", pred, ~np.isnan(pred), "real numbers or +-inf")
    positive = label == 1
    # margin m = pred * s is exact (s = +-1): -m is -pred or pred
    m = np.where(positive, pred, -pred)
    zero = np.zeros((), dt)
    one = np.ones((), dt)
    e = np.exp(-np.abs(m))
    elem = np.maximum(-m, zero) + np.log1p(e)  # softplus(-m)
    # d elem / d m = -sigmoid(-m); d m / d pred = s
    sig_neg = np.where(m >= 0, e / (one + e), one / (one + e))
    delem = np.where(positive, -sig_neg, sig_neg)

    axes = C.batch_axes(LOSS_ID, options["batch_axis"], pred.ndim)
    m = C.count(pred.shape, axes)
    factor = C.factor(LOSS_ID, inputs, pred.shape, dt, C.weight(options, dt))
    out = C.batch_mean(elem * factor, axes, dt, m)

    grads = {}
    if "pred" in wrt:
        grads["pred"] = np.asarray(C.pull_back(cotangent, factor, axes, m) * delem, dtype=dt)
    return out, grads
