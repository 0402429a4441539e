"""NumPy kernel for mxnet.gluon.loss.SigmoidBinaryCrossEntropyLoss (alias SigmoidBCELoss).

Documented semantics (see oracle/losses/sigmoid_binary_cross_entropy_loss.py), with
a = label * pos_weight and b = 1 - label:

    from_sigmoid=False:  elem = a * softplus(-pred) + b * softplus(pred)
    from_sigmoid=True:   elem = -(a * log(pred) + b * log1p(-pred)),  0 * log(0) = 0, no eps

then * sample_weight * weight, mean over every axis but batch_axis. Everything is computed
in the input dtype; softplus(x) = max(x, 0) + log1p(exp(-|x|)) never overflows.
"""

from __future__ import annotations

import numpy as np

LOSS_ID = "mxnet.gluon.loss.SigmoidBinaryCrossEntropyLoss"


def _fail(name: str, value, expected: str):
    raise ValueError(f"{LOSS_ID}: input {name} holds {value!r}; expected {expected}")


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
    bad = ~((label >= 0) & (label <= 1))
    if bad.any():
        _fail("label", label[bad][0].item(), "values in range [0, 1]")
    pw = inputs.get("pos_weight")
    if pw is not None:
        pw = _broadcast("pos_weight", np.asarray(pw, dtype=dt), pred.shape)
        if not np.isfinite(pw).all():
            _fail("pos_weight", pw[~np.isfinite(pw)][0].item(), "finite real numbers")
        a = label * pw
    else:
        a = label
    one = np.ones((), dt)
    b = one - label
    zero = np.zeros((), dt)

    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if options.get("from_sigmoid", False):
            bad = ~((pred >= 0) & (pred <= 1))
            if bad.any():
                _fail("pred", pred[bad][0].item(), "a probability in [0, 1] with from_sigmoid=True")
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
            if not np.isfinite(pred).all():
                _fail("pred", pred[~np.isfinite(pred)][0].item(), "finite real numbers (logits)")
            sp_pos, sp_neg = _softplus_pair(pred)
            elem = a * sp_neg + b * sp_pos
            sig_pos, sig_neg = _sigmoid_pair(pred)
            delem = b * sig_pos - a * sig_neg

    # weighting and the mean over the non-batch axes
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
    with np.errstate(invalid="ignore"):
        weighted = elem * factor
    out = (np.sum(weighted, axis=other, dtype=dt) if other else weighted) / dt.type(count)
    out = np.asarray(out, dtype=dt)

    grads = {}
    if "pred" in wrt:
        shape = [1] * ndim
        shape[ba] = -1
        ct = np.asarray(cotangent, dtype=dt).reshape(shape)
        with np.errstate(invalid="ignore", over="ignore"):
            grads["pred"] = np.asarray((ct * factor / dt.type(count)) * delem, dtype=dt)
    return out, grads
