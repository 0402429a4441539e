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

LOSS_ID = "mxnet.gluon.loss.KLDivLoss"


def _fail(message: str):
    raise ValueError(f"{LOSS_ID}: {message}")


def run(inputs, options, cotangent, wrt):
    with np.errstate(under="ignore", over="ignore", divide="ignore", invalid="ignore"):
        return _run(inputs, options, cotangent, wrt)


def _run(inputs, options, cotangent, wrt):
    pred = np.asarray(inputs["pred"])
    dt = pred.dtype
    label = np.asarray(inputs["label"])
    if label.size != pred.size:
        _fail(f"input label has shape {label.shape} ({label.size} elements); expected the same "
              f"number of elements as pred {pred.shape} ({pred.size})")
    label = label.reshape(pred.shape).astype(dt, copy=False)
    ok = (label >= 0) & (label <= 1)
    if not ok.all():
        _fail(f"input label holds {label[~ok][0].item()!r}; expected values in [0, 1] "
              "(documented range (0, 1))")
    if np.isnan(pred).any():
        _fail("input pred holds nan; expected real numbers")
    zero = np.zeros((), dt)
    nd = pred.ndim
    from_logits = bool(options["from_logits"])

    if from_logits:
        ax = None
        logp = pred
    else:
        if nd < 1:
            _fail("input pred is a scalar; softmax needs an axis")
        a = int(options["axis"])
        if not -nd <= a < nd:
            _fail(f"option axis={a} is out of range for pred with {nd} dimension(s); "
                  f"expected an int in [{-nd}, {nd - 1}]")
        ax = a % nd
        if (pred == np.inf).any():
            _fail("input pred holds inf; expected finite logits (or -inf) when from_logits=False")
        if np.all(pred == -np.inf, axis=ax).any():
            _fail("input pred has a softmax slice that is all -inf; softmax is undefined there")
        m = np.max(pred, axis=ax, keepdims=True)
        d = pred - m
        arg = np.expand_dims(np.argmax(pred, axis=ax), ax)
        e = np.exp(d)
        np.put_along_axis(e, arg, zero, axis=ax)
        log_s = np.log1p(np.sum(e, axis=ax, keepdims=True, dtype=dt))
        logp = d - log_s
    safe = np.where(label == 0, dt.type(1), label)
    elem = np.where(label == 0, zero, label * (np.log(safe) - logp))

    ba = int(options["batch_axis"])
    if not -nd <= ba < nd:
        _fail(f"option batch_axis={ba} is out of range for pred with {nd} dimension(s)")
    ba %= nd
    factor = np.ones(pred.shape, dt)
    sw = inputs.get("sample_weight")
    if sw is not None:
        sw = np.asarray(sw, dtype=dt)
        try:
            target = np.broadcast_shapes(sw.shape, pred.shape)
        except ValueError:
            target = None
        if target != pred.shape:
            _fail(f"input sample_weight has shape {sw.shape}, which does not broadcast to the "
                  f"shape of pred {pred.shape}")
        factor = factor * sw
    if options.get("weight") is not None:
        factor = factor * dt.type(options["weight"])
    other = tuple(i for i in range(nd) if i != ba)
    count = int(np.prod([pred.shape[i] for i in other])) if other else 1
    weighted = elem * factor
    out = np.asarray((np.sum(weighted, axis=other, dtype=dt) if other else weighted) / dt.type(count), dtype=dt)

    grads = {}
    if "pred" in wrt:
        shape = [1] * nd
        shape[ba] = -1
        ct = np.asarray(cotangent, dtype=dt).reshape(shape)
        sl = (ct * factor / dt.type(count)) * label
        if from_logits:
            g = -sl
        else:
            g = np.sum(sl, axis=ax, keepdims=True, dtype=dt) * np.exp(logp) - sl
        grads["pred"] = np.asarray(g, dtype=dt)
    return out, grads
