"""NumPy kernel for mxnet.gluon.loss.SoftmaxCrossEntropyLoss (alias SoftmaxCELoss).

Documented semantics (see oracle/losses/softmax_cross_entropy_loss.py): with
logp = pred (from_logits) or log_softmax(pred, axis), the per-position loss (class axis
kept at size 1) is -logp[label] (sparse) or -sum_j label_j logp_j (dense); it is
multiplied by sample_weight (broadcast to that shape) and weight, and averaged over every
axis but batch_axis.

Computed in the input dtype. log_softmax is formed from d = pred - max (<= 0) and
log_s = log1p(sum of exp(d) over all classes but the argmax), so the loss
log_s - d_t adds two non-negative numbers: no overflow for extreme logits and full
relative accuracy for tiny losses. The target's gradient P_t - 1 is expm1(-loss).
"""

from __future__ import annotations

import numpy as np

LOSS_ID = "mxnet.gluon.loss.SoftmaxCrossEntropyLoss"


def _fail(message: str):
    raise ValueError(f"{LOSS_ID}: {message}")


def _axis(name: str, value: int, ndim: int) -> int:
    if not -ndim <= value < ndim:
        _fail(f"option {name}={value} is out of range for pred with {ndim} dimension(s); "
              f"expected an int in [{-ndim}, {ndim - 1}]")
    return value % ndim


def run(inputs, options, cotangent, wrt):
    with np.errstate(under="ignore", over="ignore", divide="ignore", invalid="ignore"):
        return _run(inputs, options, cotangent, wrt)


def _run(inputs, options, cotangent, wrt):
    pred = np.asarray(inputs["pred"])
    dt = pred.dtype
    label = np.asarray(inputs["label"]).astype(dt, copy=False)
    nd = pred.ndim
    if nd < 1:
        _fail(f"input pred has shape {pred.shape}; expected at least one dimension")
    ax = _axis("axis", int(options["axis"]), nd)
    ba = _axis("batch_axis", int(options["batch_axis"]), nd)
    if ax == ba:
        _fail(f"option axis={options['axis']} and batch_axis={options['batch_axis']} name the "
              f"same dimension of pred {pred.shape}; expected different dimensions")
    n_class = pred.shape[ax]
    if n_class < 1:
        _fail(f"input pred has shape {pred.shape}; the class axis {ax} is empty")
    from_logits = bool(options["from_logits"])
    sparse = bool(options["sparse_label"])
    zero = np.zeros((), dt)

    if np.isnan(pred).any():
        _fail("input pred holds nan; expected real numbers")
    if not from_logits:
        if (pred == np.inf).any():
            _fail("input pred holds inf; expected finite logits (or -inf) when from_logits=False")
        if np.all(pred == -np.inf, axis=ax).any():
            _fail("input pred has a class slice that is all -inf; softmax is undefined there")

    # ---- label checks
    if sparse:
        want = pred.shape[:ax] + pred.shape[ax + 1:]
        if label.shape != want:
            _fail(f"input label has shape {label.shape}; expected pred's shape {pred.shape} "
                  f"with axis {ax} removed, {want} (sparse_label=True)")
        ok = np.isfinite(label) & (label == np.floor(label)) & (label >= 0) & (label < n_class)
        if not ok.all():
            _fail(f"input label holds {label[~ok][0].item()!r}; expected integer class indices "
                  f"in [0, {n_class}) (sparse_label=True)")
        idx = np.expand_dims(label.astype(np.int64), ax)
        onehot = np.zeros(pred.shape, dtype=bool)
        np.put_along_axis(onehot, idx, True, axis=ax)
    else:
        if label.shape != pred.shape:
            _fail(f"input label has shape {label.shape}; expected pred's shape {pred.shape} "
                  "(sparse_label=False)")
        ok = (label >= 0) & (label <= 1)
        if not ok.all():
            _fail(f"input label holds {label[~ok][0].item()!r}; expected probabilities in [0, 1] "
                  "(sparse_label=False)")

    # ---- per-position loss (class axis of size 1) and its derivative along the class axis
    if from_logits:
        if sparse:
            elem = -np.take_along_axis(pred, idx, axis=ax)
            delem = -onehot.astype(dt)
        else:
            elem = -np.sum(np.where(label == 0, zero, label * pred), axis=ax, keepdims=True, dtype=dt)
            delem = -label
    else:
        m = np.max(pred, axis=ax, keepdims=True)
        d = pred - m  # <= 0, exact where it matters
        arg = np.expand_dims(np.argmax(pred, axis=ax), ax)
        e = np.exp(d)
        np.put_along_axis(e, arg, zero, axis=ax)
        log_s = np.log1p(np.sum(e, axis=ax, keepdims=True, dtype=dt))
        logp = d - log_s
        prob = np.exp(logp)
        if sparse:
            elem = log_s - np.take_along_axis(d, idx, axis=ax)
            # P_t - 1 = expm1(logp_t) = expm1(-elem), accurate when P_t is near 1
            delem = np.where(onehot, np.expm1(-elem), prob)
        else:
            terms = np.where(label == 0, zero, label * (log_s - d))
            elem = np.sum(terms, axis=ax, keepdims=True, dtype=dt)
            total = np.sum(label, axis=ax, keepdims=True, dtype=dt)
            delem = total * prob - label
            # at the argmax with P > 1/2: total*P - l = total*expm1(logp) + sum_{j != argmax} l_j
            is_arg = np.zeros(pred.shape, dtype=bool)
            np.put_along_axis(is_arg, arg, True, axis=ax)
            others = np.sum(np.where(is_arg, zero, label), axis=ax, keepdims=True, dtype=dt)
            near_one = total * np.expm1(logp) + others
            delem = np.where(is_arg & (prob > dt.type(0.5)), near_one, delem)

    # ---- weighting and the mean over every axis but batch_axis
    factor = np.ones(elem.shape, dt)
    sw = inputs.get("sample_weight")
    if sw is not None:
        sw = np.asarray(sw, dtype=dt)
        try:
            target = np.broadcast_shapes(sw.shape, elem.shape)
        except ValueError:
            target = None
        if target != elem.shape:
            _fail(f"input sample_weight has shape {sw.shape}, which does not broadcast to the "
                  f"per-position loss shape {elem.shape} (pred's shape with axis {ax} of size 1)")
        factor = factor * sw
    if options.get("weight") is not None:
        factor = factor * dt.type(options["weight"])
    other = tuple(i for i in range(nd) if i != ba)
    count = int(np.prod([elem.shape[i] for i in other]))
    out = np.asarray(np.sum(elem * factor, axis=other, dtype=dt) / dt.type(count), dtype=dt)

    grads = {}
    if "pred" in wrt:
        shape = [1] * nd
        shape[ba] = -1
        ct = np.asarray(cotangent, dtype=dt).reshape(shape)
        seed = ct * factor / dt.type(count)
        grads["pred"] = np.asarray(seed * delem, dtype=dt)
    return out, grads
