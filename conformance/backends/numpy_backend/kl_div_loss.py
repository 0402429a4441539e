"""NumPy kernel for mxnet.gluon.loss.KLDivLoss.

Documented semantics (see oracle/losses/kl_div_loss.py): label is read into pred's shape;
logp = pred (from_logits, the default) or log_softmax(pred, axis); the elementwise term
label * (log(label) - logp) is 0 where label = 0 (no eps); it is multiplied by
sample_weight and weight and averaged (not summed) over every axis but batch_axis.

Computed in the input dtype; log_softmax is formed from d = pred - max and
log_s = log1p(sum of exp(d) over all but the argmax), so extreme logits neither overflow
nor lose O(1) results.
"""

from __future__ import annotations

import numpy as np

from . import _conventions as C

LOSS_ID = "mxnet.gluon.loss.KLDivLoss"


@np.errstate(under="ignore", over="ignore", divide="ignore", invalid="ignore")
def run(inputs: dict, options: dict, cotangent, wrt: tuple) -> tuple:
    pred, label = C.pred_label(LOSS_ID, inputs)
    dt = pred.dtype
    ok = (label >= 0) & (label <= 1)
    C.require(LOSS_ID, "label", label, ok, "values in [0, 1] (documented range (0, 1))")
    if np.isnan(pred).any():
        C.fail(LOSS_ID, "input pred holds nan; expected real numbers")
    zero = np.zeros((), dt)
    nd = pred.ndim
    from_logits = bool(options["from_logits"])

    if from_logits:
        ax = None
        logp = pred
    else:
        if nd < 1:
            C.fail(LOSS_ID, "input pred is a scalar; softmax needs an axis")
        ax = C.axis(LOSS_ID, "axis", int(options["axis"]), nd)
        if (pred == np.inf).any():
            C.fail(LOSS_ID, "input pred holds inf; expected finite logits (or -inf) when from_logits=False")
        if np.all(pred == -np.inf, axis=ax).any():
            C.fail(LOSS_ID, "input pred has a softmax slice that is all -inf; softmax is undefined there")
        m = np.max(pred, axis=ax, keepdims=True)
        d = pred - m
        arg = np.expand_dims(np.argmax(pred, axis=ax), ax)
        e = np.exp(d)
        np.put_along_axis(e, arg, zero, axis=ax)
        log_s = np.log1p(np.sum(e, axis=ax, keepdims=True, dtype=dt))
        logp = d - log_s
    safe = np.where(label == 0, dt.type(1), label)
    elem = np.where(label == 0, zero, label * (np.log(safe) - logp))

    axes = C.batch_axes(LOSS_ID, options["batch_axis"], nd)
    m = C.count(pred.shape, axes)
    factor = C.factor(LOSS_ID, inputs, pred.shape, dt, C.weight(options, dt))
    out = C.batch_mean(elem * factor, axes, dt, m)

    grads = {}
    if "pred" in wrt:
        sl = C.pull_back(cotangent, factor, axes, m) * label
        if from_logits:
            g = -sl
        else:
            g = np.sum(sl, axis=ax, keepdims=True, dtype=dt) * np.exp(logp) - sl
        grads["pred"] = np.asarray(g, dtype=dt)
    return out, grads
