"""NumPy kernel for mxnet.gluon.loss.SoftmaxCrossEntropyLoss (alias SoftmaxCELoss).

Documented semantics (see oracle/losses/softmax_cross_entropy_loss.py): with
logp = pred (from_logits) or log_softmax(pred, axis), the per-position loss (class axis
kept at size 1) is -sw * logp[label] (sparse) or -sum_j sw_j label_j logp_j (dense),
multiplied by weight and averaged over every axis but batch_axis. sample_weight
broadcasts to label's shape: sparse, to pred's shape without the class axis (which is then
inserted at size 1) or, failing that, to the per-position shape (class axis of size 1,
MXNet's keepdims form); dense, to pred's shape, weighing each term label_j logp_j (so the
weighted label sw * label takes the label's place).

Computed in the input dtype. log_softmax is formed from d = pred - max (<= 0) and
log_s = log1p(sum of exp(d) over all classes but the argmax), so the loss
log_s - d_t adds two non-negative numbers: no overflow for extreme logits and full
relative accuracy for tiny losses. The target's gradient P_t - 1 is expm1(-loss).
"""

from __future__ import annotations

import numpy as np

from . import _conventions as C

LOSS_ID = "mxnet.gluon.loss.SoftmaxCrossEntropyLoss"


@np.errstate(under="ignore", over="ignore", divide="ignore", invalid="ignore")
def run(inputs: dict, options: dict, cotangent, wrt: tuple) -> tuple:
    pred = np.asarray(inputs["pred"])
    dt = pred.dtype
    label = np.asarray(inputs["label"]).astype(dt, copy=False)
    nd = pred.ndim
    if nd < 1:
        C.fail(LOSS_ID, f"input pred has shape {pred.shape}; expected at least one dimension")
    ax = C.axis(LOSS_ID, "axis", int(options["axis"]), nd)
    ba = C.axis(LOSS_ID, "batch_axis", int(options["batch_axis"]), nd)
    if ax == ba:
        C.fail(LOSS_ID, f"option axis={options['axis']} and batch_axis={options['batch_axis']} name the "
                        f"same dimension of pred {pred.shape}; expected different dimensions")
    n_class = pred.shape[ax]
    if n_class < 1:
        C.fail(LOSS_ID, f"input pred has shape {pred.shape}; the class axis {ax} is empty")
    from_logits = bool(options["from_logits"])
    sparse = bool(options["sparse_label"])
    zero = np.zeros((), dt)

    if np.isnan(pred).any():
        C.fail(LOSS_ID, "input pred holds nan; expected real numbers")
    if not from_logits:
        if (pred == np.inf).any():
            C.fail(LOSS_ID, "input pred holds inf; expected finite logits (or -inf) when from_logits=False")
        if np.all(pred == -np.inf, axis=ax).any():
            C.fail(LOSS_ID, "input pred has a class slice that is all -inf; softmax is undefined there")

    # ---- label checks
    if sparse:
        want = pred.shape[:ax] + pred.shape[ax + 1:]
        if label.shape != want:
            C.fail(LOSS_ID, f"input label has shape {label.shape}; expected pred's shape {pred.shape} "
                            f"with axis {ax} removed, {want} (sparse_label=True)")
        ok = np.isfinite(label) & (label == np.floor(label)) & (label >= 0) & (label < n_class)
        C.require(LOSS_ID, "label", label, ok, f"integer class indices in [0, {n_class}) (sparse_label=True)")
        idx = np.expand_dims(label.astype(np.int64), ax)
        onehot = np.zeros(pred.shape, dtype=bool)
        np.put_along_axis(onehot, idx, True, axis=ax)
        sw = _sparse_sample_weight(inputs.get("sample_weight"), want, ax, dt)
    else:
        if label.shape != pred.shape:
            C.fail(LOSS_ID, f"input label has shape {label.shape}; expected pred's shape {pred.shape} "
                            "(sparse_label=False)")
        ok = (label >= 0) & (label <= 1)
        C.require(LOSS_ID, "label", label, ok, "probabilities in [0, 1] (sparse_label=False)")
        sw_full = C.sample_weight(LOSS_ID, inputs, pred.shape, dt, f"the shape of label {pred.shape}")
        sw = None
        # the weighted label takes the label's place in the gradient; the terms are weighted
        # after label_j * logp_j, so that a zero weight times an infinite term stays nan
        wl = label if sw_full is None else np.where(label == 0, zero, label * sw_full)

    # ---- per-position loss (class axis of size 1) and its derivative along the class axis
    if from_logits:
        if sparse:
            elem = -np.take_along_axis(pred, idx, axis=ax)
            delem = -onehot.astype(dt)
        else:
            terms = _weighted(np.where(label == 0, zero, label * pred), sw_full)
            elem = -np.sum(terms, axis=ax, keepdims=True, dtype=dt)
            delem = -wl
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
            terms = _weighted(np.where(label == 0, zero, label * (log_s - d)), sw_full)
            elem = np.sum(terms, axis=ax, keepdims=True, dtype=dt)
            total = np.sum(wl, axis=ax, keepdims=True, dtype=dt)
            delem = total * prob - wl
            # at the argmax with P > 1/2: total*P - l = total*expm1(logp) + sum_{j != argmax} l_j
            is_arg = np.zeros(pred.shape, dtype=bool)
            np.put_along_axis(is_arg, arg, True, axis=ax)
            others = np.sum(np.where(is_arg, zero, wl), axis=ax, keepdims=True, dtype=dt)
            near_one = total * np.expm1(logp) + others
            delem = np.where(is_arg & (prob > dt.type(0.5)), near_one, delem)

    # ---- weighting and the mean over every axis but batch_axis
    factor = C.factor(LOSS_ID, {"sample_weight": sw}, elem.shape, dt, C.weight(options, dt))
    axes = C.batch_axes(LOSS_ID, ba, nd)
    m = C.count(elem.shape, axes)
    out = C.batch_mean(elem * factor, axes, dt, m)

    grads = {}
    if "pred" in wrt:
        grads["pred"] = np.asarray(C.pull_back(cotangent, factor, axes, m) * delem, dtype=dt)
    return out, grads


def _sparse_sample_weight(sw, label_shape: tuple, ax: int, dt: np.dtype):
    """A sparse label's sample_weight in the per-position shape (class axis of size 1): of
    label's shape with the class axis inserted, else as given if it broadcasts to the
    per-position shape; None if there is none."""
    if sw is None:
        return None
    sw = np.asarray(sw, dtype=dt)
    elem_shape = label_shape[:ax] + (1,) + label_shape[ax:]
    for shape in (label_shape, elem_shape):
        try:
            fits = np.broadcast_shapes(sw.shape, shape) == shape
        except ValueError:
            fits = False
        if fits:
            return np.expand_dims(np.broadcast_to(sw, shape), ax) if shape == label_shape else sw
    C.fail(LOSS_ID, f"input sample_weight has shape {sw.shape}, which broadcasts neither to the shape "
                    f"of label {label_shape} nor to the per-position loss shape {elem_shape}")


def _weighted(terms: np.ndarray, sw_full) -> np.ndarray:
    return terms if sw_full is None else terms * sw_full
