"""NumPy kernel of mxnet.gluon.loss.SDMLLoss (see oracle/losses/sdml_loss.py for the
formula and the readings): out[i] = weight * KL(labels_i || softmax_j(-||x1_i - x2_j||^2)),
computed in the input dtype.

Numerics: the log-softmax is shifted by each row's smallest distance and its log-sum-exp
taken as log1p of the other terms, so distances whose exp(-d) underflows stay finite and a
tiny loss (the paired item far nearer than the rest) keeps its digits; gradients are
sums over the exact-ish differences x1_i - x2_j, not over expanded dot products.
"""

from __future__ import annotations

import numpy as np

LOSS_ID = "mxnet.gluon.loss.SDMLLoss"


def _err(message: str) -> ValueError:
    return ValueError(f"{LOSS_ID}: {message}")


def run(inputs: dict, options: dict, cotangent, wrt: tuple) -> tuple:
    x1, x2 = inputs["x1"], inputs["x2"]
    dtype = x1.dtype
    T = dtype.type
    s = float(options["smoothing_parameter"])
    if not 0 <= s < 1:
        raise _err(f"smoothing_parameter={s!r}; expected a probability mass in [0, 1)")
    for name, x in (("x1", x1), ("x2", x2)):
        if x.ndim != 2:
            raise _err(f"{name} has shape {x.shape}; expected a 2-D minibatch (batch_size, vector_dim)")
    if x1.shape != x2.shape:
        raise _err(f"x2 has shape {x2.shape}; expected the shape of x1 {x1.shape}")
    axis = options["batch_axis"]
    if not -2 <= axis < 2:
        raise _err(f"batch_axis={axis} is out of range for 2-D inputs")
    axis %= 2
    if x1.shape[axis] < 2:
        raise _err(f"x1 and x2 hold a batch of {x1.shape[axis]} (shape {x1.shape}); expected batch_size >= 2")
    if axis == 1:
        x1, x2 = x1.T, x2.T
    b = x1.shape[0]
    w = T(1.0 if options["weight"] is None else options["weight"])

    eye = np.eye(b, dtype=bool)
    labels = np.where(eye, T(1 - s), T(s / (b - 1)))
    diff = x1[:, None, :] - x2[None, :, :]  # (b, b, dim)
    d = np.sum(diff * diff, axis=2, dtype=dtype)
    nearest = np.argmin(d, axis=1)
    shifted = d[np.arange(b), nearest][:, None] - d  # -d_ij - max_j(-d_ij) <= 0
    rest = np.exp(shifted)
    rest[np.arange(b), nearest] = 0
    log1p_rest = np.log1p(np.sum(rest, axis=1, dtype=dtype, keepdims=True))
    logp = shifted - log1p_rest
    pos = labels > 0
    safe = np.where(pos, labels, T(1))
    terms = np.where(pos, labels * (np.log(safe) - logp), T(0))
    kl = np.maximum(np.sum(terms, axis=1, dtype=dtype), T(0))  # a KL divergence is >= 0
    out = (w * kl).astype(dtype)

    grads = {}
    if wrt:
        ct = np.asarray(cotangent, dtype=dtype).reshape(b, 1)
        g = (ct * w) * (labels - np.exp(logp))  # d out_i / d d_ij times the cotangent
        gd = g[:, :, None] * diff
        if "x1" in wrt:
            g1 = T(2) * np.sum(gd, axis=1, dtype=dtype)
            grads["x1"] = np.ascontiguousarray(g1.T if axis == 1 else g1).astype(dtype)
        if "x2" in wrt:
            g2 = T(-2) * np.sum(gd, axis=0, dtype=dtype)
            grads["x2"] = np.ascontiguousarray(g2.T if axis == 1 else g2).astype(dtype)
    return out, grads
