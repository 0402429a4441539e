"""NumPy kernel for mxnet.gluon.loss.SigmoidBinaryCrossEntropyLoss (alias SigmoidBCELoss).

Documented semantics (see oracle/losses/sigmoid_binary_cross_entropy_loss.py), with
a = label * pos_weight and b = 1 - label:

    from_sigmoid=False:  elem = a * softplus(-pred) + b * softplus(pred)
    from_sigmoid=True:   elem = -(a * log(pred) + b * log1p(-pred)),  0 * log(0) = 0, no eps

then * sample_weight * weight, mean over every axis but batch_axis. Everything is computed
in the input dtype; softplus(x) = max(x, 0) + log1p(exp(-|x|)) never overflows. A logit of
+-inf gives the formula's limit (a term whose coefficient is 0 is 0, not 0 * inf).
"""

from __future__ import annotations

import numpy as np

from . import _conventions as C

LOSS_ID = "mxnet.gluon.loss.SigmoidBinaryCrossEntropyLoss"


def _softplus_pair(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(softplus(x), softplus(-x)), stable at any magnitude."""
    tail = np.log1p(np.exp(-np.abs(x)))
    zero = np.zeros((), x.dtype)
    return np.maximum(x, zero) + tail, np.maximum(-x, zero) + tail


def _sigmoid_pair(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sigmoid(x), sigmoid(-x)), stable at any magnitude."""
    e = np.exp(-np.abs(x))  # in (0, 1]
    one = np.ones((), x.dtype)
    big = one / (one + e)  # sigmoid(|x|)
    small = e / (one + e)  # sigmoid(-|x|)
    pos = x >= 0
    return np.where(pos, big, small), np.where(pos, small, big)


@np.errstate(under="ignore")
def run(inputs: dict, options: dict, cotangent, wrt: tuple) -> tuple:
    pred, label = C.pred_label(LOSS_ID, inputs)
    dt = pred.dtype
    C.require(LOSS_ID, "label", label, (label >= 0) & (label <= 1), "values in range [0, 1]")
    pw = inputs.get("pos_weight")
    if pw is not None:
        pw = C.broadcast(LOSS_ID, "pos_weight", pw, pred.shape, dt)
        C.require(LOSS_ID, "pos_weight", pw, np.isfinite(pw), "finite real numbers")
        a = label * pw
    else:
        a = label
    one = np.ones((), dt)
    b = one - label
    zero = np.zeros((), dt)

    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if options.get("from_sigmoid", False):
            ok = (pred >= 0) & (pred <= 1)
            C.require(LOSS_ID, "pred", pred, ok, "a probability in [0, 1] with from_sigmoid=True")
            t1 = np.where(a == 0, zero, a * np.log(pred))
            t2 = np.where(b == 0, zero, b * np.log1p(-pred))
            elem = -(t1 + t2)
            g1 = np.where(a == 0, zero, a / pred)
            g2 = np.where(b == 0, zero, b / (one - pred))
            delem = g2 - g1
            if pw is None:
                # inside (0, 1): b/(1-p) - a/p = (p - label) / (p*(1-p)), and p - label is
                # exact near the optimum (no cancellation)
                inner = (pred - label) / (pred * (one - pred))
                delem = np.where((pred > 0) & (pred < 1), inner, delem)
        else:
            C.require(LOSS_ID, "pred", pred, ~np.isnan(pred), "real numbers or +-inf (logits)")
            sp_pos, sp_neg = _softplus_pair(pred)
            zero = np.zeros((), dt)
            # a zero coefficient weighs nothing, even times softplus(+-inf) = inf (the limit)
            elem = np.where(a == 0, zero, a * sp_neg) + np.where(b == 0, zero, b * sp_pos)
            sig_pos, sig_neg = _sigmoid_pair(pred)
            delem = b * sig_pos - a * sig_neg

    # weighting and the mean over the non-batch axes
    axes = C.batch_axes(LOSS_ID, options["batch_axis"], pred.ndim)
    m = C.count(pred.shape, axes)
    factor = C.factor(LOSS_ID, inputs, pred.shape, dt, C.weight(options, dt))
    with np.errstate(invalid="ignore"):
        weighted = elem * factor
    out = C.batch_mean(weighted, axes, dt, m)

    grads = {}
    if "pred" in wrt:
        with np.errstate(invalid="ignore", over="ignore"):
            grads["pred"] = np.asarray(C.pull_back(cotangent, factor, axes, m) * delem, dtype=dt)
    return out, grads
