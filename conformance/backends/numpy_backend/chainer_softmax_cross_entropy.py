"""NumPy kernel of chainer.functions.softmax_cross_entropy (formula and readings:
oracle/losses/chainer_softmax_cross_entropy.py).

t with the shape of x is a soft target, t with the shape of x without axis 1 holds integer
labels. Everything is computed in the input dtype. log_softmax is max-shifted and uses
log1p of the sum of the non-maximal exponentials, so a loss near 0 keeps its relative
accuracy; p_t - 1 is expm1(log p_t).
"""

from __future__ import annotations

import math

import numpy as np

LOSS_ID = "chainer.functions.softmax_cross_entropy"
SOFT_TARGET_SUM_TOLERANCE = 2.0**-8


def _fail(message: str) -> None:
    raise ValueError(f"{LOSS_ID}: {message}")


def _log_softmax_rows(rows: np.ndarray) -> np.ndarray:
    """log_softmax along the last axis of an (M, C) array, in its dtype."""
    m = rows.max(axis=1, keepdims=True)
    y = rows - m  # <= 0; -inf stays -inf
    e = np.exp(y)
    top = np.argmax(rows, axis=1)
    e[np.arange(rows.shape[0]), top] = 0  # the maximum's exp(0) = 1 is the "1" of log1p
    r = np.sum(e, axis=1, keepdims=True, dtype=rows.dtype)
    return (y - np.log1p(r)).astype(rows.dtype)


def _class_weight(options: dict, n_classes: int, dtype: np.dtype) -> np.ndarray:
    cw = options.get("class_weight")
    if cw is None:
        return np.ones(n_classes, dtype=dtype)
    arr = np.asarray(cw)
    if arr.dtype == object or arr.dtype.kind not in "fiu" or arr.shape != (n_classes,):
        _fail(
            f"option class_weight={cw!r} (shape {arr.shape}) is invalid; expected a 1-D array of "
            f"reals of shape (x.shape[1],) = ({n_classes},)"
        )
    if not np.all(np.isfinite(arr.astype(np.float64))):
        _fail(f"option class_weight={cw!r} holds a non-finite value; expected finite reals")
    return arr.astype(dtype)


def _labels(t: np.ndarray, n_classes: int, ignore: int) -> np.ndarray:
    flat = t.ravel()
    if t.dtype.kind == "f":
        bad = ~np.isfinite(flat) | (flat != np.floor(flat))
        if bad.any():
            _fail(f"input t holds the label {flat[bad][0]!r}; expected integer labels")
    elif t.dtype.kind not in "iu":
        _fail(f"input t has dtype {t.dtype}; expected integer labels or float soft targets")
    labels = flat.astype(np.int64)
    ok = ((labels >= 0) & (labels < n_classes)) | (labels == ignore)
    if not ok.all():
        _fail(
            f"input t holds the label {int(labels[~ok][0])}; expected an integer in [0, {n_classes}) "
            f"(x.shape[1] = {n_classes}) or ignore_label={ignore}"
        )
    return labels


def _check_soft(t_rows: np.ndarray) -> None:
    if not np.all(np.isfinite(t_rows)) or (t_rows < 0).any():
        bad = t_rows[~np.isfinite(t_rows) | (t_rows < 0)][0]
        _fail(f"input t (soft target) holds {bad!r}; expected probabilities >= 0 along axis 1")
    for i, row in enumerate(t_rows):
        s = math.fsum(float(v) for v in row)  # validation only, exact for every dtype
        if abs(s - 1.0) > SOFT_TARGET_SUM_TOLERANCE:
            _fail(
                f"input t (soft target) instance {i} sums to {s!r} along axis 1; expected a "
                "probability distribution (sum 1 within 2**-8)"
            )


def run(inputs: dict, options: dict, cotangent, wrt: tuple) -> tuple:
    x = np.asarray(inputs["x"])
    t = np.asarray(inputs["t"])
    if x.dtype.kind != "f":
        _fail(f"input x has dtype {x.dtype}; expected floats")
    dtype = x.dtype
    if x.ndim < 2:
        _fail(f"input x has shape {x.shape}; expected (N, C, ...) with at least 2 dimensions")
    if x.size == 0:
        _fail(f"input x has shape {x.shape}; expected a non-empty array")
    if np.isnan(x).any() or np.isposinf(x).any():
        bad = x[np.isnan(x) | np.isposinf(x)][0]
        _fail(f"input x holds {bad!r}; expected finite logits (or -inf)")
    n, n_classes = x.shape[0], x.shape[1]
    inst_shape = (n, *x.shape[2:])
    rows = np.moveaxis(x, 1, -1).reshape(-1, n_classes)
    dead = np.isneginf(rows).all(axis=1)
    if dead.any():
        _fail(f"input x instance {int(np.argmax(dead))} has every logit -inf; expected a finite logit")
    if t.shape == x.shape:
        soft = True
    elif t.shape == inst_shape:
        soft = False
    else:
        _fail(
            f"input t has shape {t.shape}; expected labels of shape {inst_shape} (x.shape without "
            f"axis 1) or soft targets of shape {x.shape} (the shape of x)"
        )
    reduce = options["reduce"]
    if reduce not in ("mean", "no"):
        _fail(f"option reduce={reduce!r} is invalid; expected 'mean' or 'no'")
    stl = options["soft_target_loss"]
    if stl not in ("cross-entropy", "kl-divergence"):
        _fail(f"option soft_target_loss={stl!r} is invalid; expected 'cross-entropy' or 'kl-divergence'")
    w = _class_weight(options, n_classes, dtype)
    ignore = int(options["ignore_label"])
    m = rows.shape[0]
    zero = dtype.type(0)

    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        logp = _log_softmax_rows(rows)
        if soft:
            t_rows = np.moveaxis(t, 1, -1).reshape(-1, n_classes).astype(dtype)
            _check_soft(t_rows)
            tw = t_rows * w
            terms = np.where(t_rows == 0, zero, -(tw * logp))
            if stl == "kl-divergence":
                terms = np.concatenate([terms, np.where(t_rows > 0, t_rows * np.log(t_rows), zero)], axis=1)
            loss = np.sum(terms, axis=1, dtype=dtype)
            active = np.ones(m, dtype=bool)
        else:
            labels = _labels(t, n_classes, ignore)
            active = labels != ignore
            safe = np.where(active, labels, 0)
            picked = logp[np.arange(m), safe]
            loss = np.where(active, -(w[safe] * picked), zero).astype(dtype)

        if reduce == "mean":
            denom = dtype.type(max(int(active.sum()), 1) if options["normalize"] else n)
            total = np.sum(loss, dtype=dtype)
            out = total / denom
            if np.isinf(out) and np.isfinite(loss).all():  # the sum overflowed, the mean need not
                out = np.sum(loss / denom, dtype=dtype)
            out = np.asarray(out, dtype=dtype).reshape(())
        else:
            out = loss.reshape(inst_shape).astype(dtype)

        grads = {}
        if "x" in wrt:
            ct = np.asarray(cotangent, dtype=dtype)
            if reduce == "mean":
                coef = np.full(m, ct.reshape(()) / denom, dtype=dtype)
            else:
                coef = ct.reshape(-1)
            p = np.exp(logp)
            if soft:
                s = np.sum(tw, axis=1, dtype=dtype)
                g = s[:, None] * p - tw
            else:
                g = p.copy()
                idx = np.arange(m)
                g[idx, safe] = np.expm1(logp[idx, safe])
                g = g * w[safe][:, None]
                g[~active] = 0
            g = (coef[:, None] * g).astype(dtype)
            grads["x"] = np.ascontiguousarray(np.moveaxis(g.reshape(*inst_shape, n_classes), -1, 1))
    return out, grads
