"""NumPy kernel for mxnet.gluon.loss.LogisticLoss.

Documented semantics (see oracle/losses/logistic_loss.py): with the signed label
s = label ('signed', -1/1) or s = 2 * label - 1 ('binary', 0/1),

    elem = log(1 + exp(-pred * s)) = softplus(-pred * s)

then * sample_weight * weight, mean over every axis but batch_axis. Computed in the input
dtype; softplus(m) = max(m, 0) + log1p(exp(-|m|)) never overflows.
"""

from __future__ import annotations

import numpy as np

LOSS_ID = "mxnet.gluon.loss.LogisticLoss"


def _broadcast(name: str, w: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    try:
        target = np.broadcast_shapes(w.shape, shape)
    except ValueError:
        target = None
    if target != tuple(shape):
        raise ValueError(
            f"{LOSS_ID}: input {name} has shape {w.shape}, which does not broadcast to the "
            f"shape of pred {tuple(shape)}"
        )
    return np.broadcast_to(w, shape)


def run(inputs, options, cotangent, wrt):
    with np.errstate(under="ignore"):
        return _run(inputs, options, cotangent, wrt)


def _run(inputs, options, cotangent, wrt):
    pred = np.asarray(inputs["pred"])
    dt = pred.dtype
    label = np.asarray(inputs["label"])
    if label.size != pred.size:
        raise ValueError(
            f"{LOSS_ID}: input label has shape {label.shape} ({label.size} elements); expected "
            f"the same number of elements as pred {pred.shape} ({pred.size})"
        )
    label = label.reshape(pred.shape).astype(dt, copy=False)
    fmt = options.get("label_format", "signed")
    if fmt not in ("signed", "binary"):
        raise ValueError(f"{LOSS_ID}: option label_format={fmt!r}; expected 'signed' or 'binary'")
    neg = -1 if fmt == "signed" else 0
    bad = ~((label == neg) | (label == 1))
    if bad.any():
        raise ValueError(
            f"{LOSS_ID}: input label holds {label[bad][0].item()!r}; expected values "
            f"{neg} or 1 (label_format={fmt!r})"
        )
    if not np.isfinite(pred).all():
        raise ValueError(
            f"{LOSS_ID}: input pred holds {pred[~np.isfinite(pred)][0].item()!r}; expected finite real numbers"
        )
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

    ndim = pred.ndim
    ba = int(options.get("batch_axis", 0))
    if not -ndim <= ba < ndim:
        raise ValueError(f"{LOSS_ID}: option batch_axis={ba} is out of range for pred of shape {pred.shape}")
    ba %= ndim
    sw = inputs.get("sample_weight")
    factor = np.ones(pred.shape, dt)
    if sw is not None:
        factor = factor * _broadcast("sample_weight", np.asarray(sw, dtype=dt), pred.shape)
    w = options.get("weight")
    if w is not None:
        factor = factor * dt.type(w)
    other = tuple(i for i in range(ndim) if i != ba)
    count = int(np.prod([pred.shape[i] for i in other])) if other else 1
    weighted = elem * factor
    out = (np.sum(weighted, axis=other, dtype=dt) if other else weighted) / dt.type(count)
    out = np.asarray(out, dtype=dt)

    grads = {}
    if "pred" in wrt:
        shape = [1] * ndim
        shape[ba] = -1
        ct = np.asarray(cotangent, dtype=dt).reshape(shape)
        grads["pred"] = np.asarray((ct * factor / dt.type(count)) * delem, dtype=dt)
    return out, grads
