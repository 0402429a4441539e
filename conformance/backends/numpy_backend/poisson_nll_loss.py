"""NumPy kernel of mxnet.gluon.loss.PoissonNLLLoss (see oracle/losses/poisson_nll_loss.py
for the formula and the readings): the mean over every element of
weight * sample_weight * elem, shape (1, 1), computed in the input dtype (float16
through float32, rounded once).

Numerics: exp(pred) is formed as (f * exp(pred/2)) * exp(pred/2) for large pred, so an
exp that overflows the dtype does not overflow a mean that does not; log(pred + epsilon)
is evaluated with both terms scaled by 2**k when epsilon is below the dtype's normal
range (epsilon = 1e-8 is 0 in float16), so a zero or tiny rate still sees epsilon.
"""

from __future__ import annotations

import math

import numpy as np

from . import _conventions as C

LOSS_ID = "mxnet.gluon.loss.PoissonNLLLoss"


def _err(message: str) -> ValueError:
    return ValueError(f"{LOSS_ID}: {message}")


def _exp_times(f: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """f * exp(pred) without overflowing where exp(pred) alone would."""
    T = pred.dtype.type
    big = pred > T(math.log(float(np.finfo(pred.dtype).max)) / 2)
    with np.errstate(over="ignore"):
        direct = f * np.exp(pred)
        h = np.exp(np.where(big, pred, T(0)) / T(2))
        halves = (f * h) * h
    return np.where(big, halves, direct)


def _log_shift(pred: np.ndarray, eps: float):
    """log(pred + eps), and a function (seed, t) -> seed * (1 - t / (pred + eps)), both
    accurate in the dtype of pred even when eps is subnormal in it or underflows to 0."""
    dtype = pred.dtype
    T = dtype.type
    fi = np.finfo(dtype)
    eps_d = T(eps)
    z = pred + eps_d

    def direct(seed: np.ndarray, t: np.ndarray) -> np.ndarray:
        # (pred - t) is exact where pred and t are close: no cancellation in 1 - t/z
        with np.errstate(divide="ignore", invalid="ignore"):
            return seed * (((pred - t) + eps_d) / z)

    if eps == 0 or abs(eps) >= float(fi.tiny):
        with np.errstate(divide="ignore"):
            return np.log(z), direct
    # scale pred and eps by 2**k so that eps is a normal number of the dtype; where pred
    # dominates, eps (below the dtype's normal range) is negligible
    k = math.ceil(math.log2(float(fi.tiny) / abs(eps))) + 1
    near = np.abs(pred) < T(abs(eps) * 2.0 ** (fi.nmant + 2))
    zs = np.ldexp(np.where(near, pred, T(0)), k) + T(math.ldexp(eps, k))
    zs = np.where(near, zs, T(1))
    with np.errstate(divide="ignore"):
        logz = np.where(near, np.log(zs) - T(k * math.log(2.0)), np.log(z))

    def factor(seed: np.ndarray, t: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            scaled = seed - np.where(t == 0, T(0), np.ldexp((seed * t) / zs, k))
        return np.where(near, scaled, direct(seed, t))

    return logz, factor


def run(inputs: dict, options: dict, cotangent, wrt: tuple) -> tuple:
    pred = inputs["pred"]
    if pred.dtype == np.float16:
        # float16 through float32, rounded once at the end: each term is pre-scaled by
        # weight / N (the overflow guard), and in float16 a term below 2**-14 * N falls
        # among the subnormals, losing most of its digits before the sum (the long case)
        wide = {k: (v.astype(np.float32) if isinstance(v, np.ndarray) and v.dtype == np.float16 else v) for k, v in inputs.items()}
        ct = None if cotangent is None else np.asarray(cotangent, dtype=np.float32)
        out, grads = run(wide, options, ct, wrt)
        with np.errstate(over="ignore"):  # beyond float16's range: inf, as the exact value rounds
            return out.astype(np.float16), {k: np.asarray(g).astype(np.float16) for k, g in grads.items()}
    target = inputs["target"]
    dtype = pred.dtype
    T = dtype.type
    target = C.reshape_like(LOSS_ID, target, pred, "target")
    ndim = max(pred.ndim, 1)
    if not -ndim <= options["batch_axis"] < ndim:
        raise _err(f"batch_axis={options['batch_axis']} is out of range for pred with {pred.ndim} dimension(s)")
    if pred.size == 0:
        raise _err("pred is empty; expected at least one element")
    bad = ~(target >= 0)
    if bad.any():
        raise _err(f"target holds {target[bad].ravel()[0]!r}; expected a non-negative count or number")
    eps = float(options["epsilon"])
    from_logits = options["from_logits"]
    if not from_logits:
        z64 = pred.astype(np.float64) + eps  # sign of a rounded sum is exact: a domain check
        if (~(z64 > 0)).any():
            p = pred[~(z64 > 0)].ravel()[0]
            raise _err(f"pred holds {p!r}, so pred + epsilon <= 0; expected pred + epsilon > 0 (from_logits=False)")
    w = 1.0 if options["weight"] is None else float(options["weight"])
    f = C.factor(LOSS_ID, inputs, pred.shape, dtype, T(w / pred.size))
    with np.errstate(over="ignore"):  # an exact value beyond the dtype's range rounds to inf
        return _compute(pred, target, f, options, eps, cotangent, wrt)


def _compute(pred, target, f, options, eps, cotangent, wrt) -> tuple:
    dtype = pred.dtype
    T = dtype.type
    from_logits = options["from_logits"]
    ft = f * target
    big = pred > T(math.log(float(np.finfo(dtype).max)) / 2)
    if from_logits:
        with np.errstate(invalid="ignore"):
            contrib = np.where(big, _exp_times(f, pred) - ft * pred, f * (np.exp(pred) - target * pred))
    else:
        logz, grad_factor = _log_shift(pred, eps)
        with np.errstate(invalid="ignore"):
            contrib = f * pred - np.where(target == 0, T(0), ft * logz)
    if options["compute_full"]:
        gt1 = target > 1
        t = np.where(gt1, target, T(2))
        lt = np.log(t)
        stir = t * lt - t + (T(0.5 * math.log(2 * math.pi)) + T(0.5) * lt)
        contrib = contrib + np.where(gt1, f * stir, T(0))
    out = np.sum(contrib, dtype=dtype).reshape(1, 1).astype(dtype)
    grads = {}
    if "pred" in wrt:
        seed = np.asarray(cotangent, dtype=dtype).reshape(()) * f
        st = seed * target
        if from_logits:
            with np.errstate(invalid="ignore"):
                g = np.where(big, _exp_times(seed, pred) - st, seed * (np.exp(pred) - target))
        else:
            g = grad_factor(seed, target)
        grads["pred"] = np.asarray(g, dtype=dtype)
    return out, grads
