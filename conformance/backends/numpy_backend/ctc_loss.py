"""NumPy kernel for mxnet.gluon.loss.CTCLoss.

Documented semantics (see oracle/losses/ctc_loss.py): blank = alphabet_size - 1, labels
padded with -1 (the sequence ends at the first -1 unless label_lengths is given), sample n
uses its first pred_lengths[n] frames, and

    out[n] = weight * sample_weight[n] * -log p(label_n | softmax(pred_n))

Computed in the input dtype, in log space: log y = (x - max) - log1p(sum of the other exp(x - max))
(accurate when one class dominates), the forward (alpha) and
backward (beta, excluding the frame's own emission) recursions over the extended label
with np.logaddexp, log p = logaddexp of the two final states. The gradient through the
softmax is y[t, k] - gamma_t(k) (gamma = posterior of emitting k at frame t); where y or
gamma exceeds 1/2 it is formed as (sum_{j != k} gamma_t(j)) - (sum_{j != k} y[t, j]),
which keeps its digits when both are close to 1 (a tiny loss).
"""

from __future__ import annotations

import numpy as np

LOSS_ID = "mxnet.gluon.loss.CTCLoss"


def _fail(message: str):
    raise ValueError(f"{LOSS_ID}: {message}")


def run(inputs, options, cotangent, wrt):
    with np.errstate(under="ignore", divide="ignore"):
        return _run(inputs, options, cotangent, wrt)


def _lengths(inputs, name, n_batch, upper):
    v = inputs.get(name)
    if v is None:
        return None
    v = np.asarray(v)
    if v.shape != (n_batch,):
        _fail(f"input {name} has shape {v.shape}; expected (batch_size,) = ({n_batch},)")
    for i, n in enumerate(v.tolist()):
        if n != int(n) or not 0 <= n <= upper:
            _fail(f"input {name}[{i}] = {n}; expected an int in [0, {upper}]")
    return [int(n) for n in v.tolist()]


def _parse(inputs, options):
    layout = options.get("layout", "NTC")
    label_layout = options.get("label_layout", "NT")
    if layout not in ("NTC", "TNC"):
        _fail(f"option layout={layout!r}; expected 'NTC' or 'TNC'")
    if label_layout not in ("NT", "TN"):
        _fail(f"option label_layout={label_layout!r}; expected 'NT' or 'TN'")
    pred = np.asarray(inputs["pred"])
    if pred.ndim != 3:
        _fail(f"input pred has shape {pred.shape}; expected 3 dimensions for layout {layout!r}")
    ntc = pred if layout == "NTC" else np.swapaxes(pred, 0, 1)
    n_batch, n_time, n_class = ntc.shape
    if n_class < 1:
        _fail(f"input pred has shape {pred.shape}; expected alphabet_size >= 1 (the blank)")
    if not np.isfinite(pred).all():
        _fail(f"input pred holds {pred[~np.isfinite(pred)][0].item()!r}; expected finite real numbers")
    label = np.asarray(inputs["label"])
    if label.ndim != 2:
        _fail(f"input label has shape {label.shape}; expected 2 dimensions for label_layout {label_layout!r}")
    label_nt = label if label_layout == "NT" else label.T
    if label_nt.shape[0] != n_batch:
        _fail(
            f"input label has shape {label.shape} (batch size {label_nt.shape[0]}); expected "
            f"batch size {n_batch} as in pred {pred.shape}"
        )
    pred_lengths = _lengths(inputs, "pred_lengths", n_batch, n_time)
    label_lengths = _lengths(inputs, "label_lengths", n_batch, label_nt.shape[1])
    seqs, frames = [], []
    for n in range(n_batch):
        row = [int(v) for v in label_nt[n].tolist()]
        if label_lengths is None:
            cut = row.index(-1) if -1 in row else len(row)
        else:
            cut = label_lengths[n]
        seq = row[:cut]
        for j, v in enumerate(seq):
            if not 0 <= v <= n_class - 2:
                what = "the padding value -1" if v == -1 else (
                    "the blank label" if v == n_class - 1 else repr(v))
                _fail(
                    f"input label for sample {n} holds {what} at position {j}; expected labels "
                    f"in [0, {n_class - 2}] (alphabet_size {n_class}, blank {n_class - 1})"
                )
        t_n = n_time if pred_lengths is None else pred_lengths[n]
        seqs.append(seq)
        frames.append(t_n)
    return layout, ntc, seqs, frames


def _log_softmax(x):
    """log softmax along the last axis as (x - max) - log1p(sum of the other exp(x - max)):
    the argmax gets -log1p(...) to full relative accuracy (a tiny loss keeps its digits)."""
    dt = x.dtype
    k = np.argmax(x, axis=-1)
    m = np.take_along_axis(x, k[..., None], axis=-1)
    d = x - m
    e = np.exp(d)
    np.put_along_axis(e, k[..., None], dt.type(0), axis=-1)
    return d - np.log1p(np.sum(e, axis=-1, keepdims=True, dtype=dt))


def _sample(x, seq, blank):
    """-log p and d(-log p)/dx for one sample's frames x (T, C), in x's dtype."""
    dt = x.dtype
    n_time, n_class = x.shape
    if n_time == 0:
        return dt.type(0), np.zeros_like(x)
    logy = _log_softmax(x)
    ext = np.full(2 * len(seq) + 1, blank, dtype=np.int64)
    ext[1::2] = seq
    n_s = ext.size
    skip = np.zeros(n_s, dtype=bool)
    skip[2:] = (ext[2:] != blank) & (ext[2:] != ext[:-2])
    ninf = dt.type(-np.inf)
    ly = logy[:, ext]  # (T, S): log y of each state's symbol

    la = np.full((n_time, n_s), ninf, dtype=dt)
    la[0, : min(2, n_s)] = ly[0, : min(2, n_s)]
    for t in range(1, n_time):
        prev = la[t - 1]
        a = prev.copy()
        a[1:] = np.logaddexp(a[1:], prev[:-1])
        a[2:] = np.where(skip[2:], np.logaddexp(a[2:], prev[:-2]), a[2:])
        la[t] = ly[t] + a

    lb = np.full((n_time, n_s), ninf, dtype=dt)
    lb[n_time - 1, max(0, n_s - 2):] = dt.type(0)
    for t in range(n_time - 2, -1, -1):
        e = ly[t + 1] + lb[t + 1]
        b = e.copy()
        b[:-1] = np.logaddexp(b[:-1], e[1:])
        b[:-2] = np.where(skip[2:], np.logaddexp(b[:-2], e[2:]), b[:-2])
        lb[t] = b

    logp = la[-1, -1] if n_s == 1 else np.logaddexp(la[-1, -1], la[-1, -2])
    # posterior of each state per frame: alpha * beta / p, normalized per frame (the sum
    # over states of alpha_t * beta_t is p at every t), which cancels the rounding common
    # to a frame's log alpha + log beta instead of comparing it with log p
    lab = la + lb
    mt = np.max(lab, axis=1, keepdims=True)
    post = np.exp(lab - mt)
    post = post / np.sum(post, axis=1, keepdims=True, dtype=dt)
    gamma = np.zeros((n_time, n_class), dtype=dt)
    for s in range(n_s):
        gamma[:, ext[s]] += post[:, s]
    y = np.exp(logy)
    direct = y - gamma
    # complements: sum over the other classes (y and gamma each sum to 1 over classes)
    y_rest = np.sum(y, axis=1, keepdims=True, dtype=dt) - y
    g_rest = np.sum(gamma, axis=1, keepdims=True, dtype=dt) - gamma
    big = (y > dt.type(0.5)) | (gamma > dt.type(0.5))
    if big.any():
        # recompute the complements without the large element, so they keep their digits
        for t, k in zip(*np.nonzero(big)):
            others = np.arange(n_class) != k
            y_rest[t, k] = np.sum(y[t, others], dtype=dt)
            g_rest[t, k] = np.sum(gamma[t, others], dtype=dt)
    grad = np.where(big, g_rest - y_rest, direct).astype(dt)
    return dt.type(0) - logp, grad  # +0.0 (not -0.0) for a loss that rounds to zero


def _run(inputs, options, cotangent, wrt):
    layout, ntc, seqs, frames = _parse(inputs, options)
    dt = ntc.dtype
    n_batch, n_time, n_class = ntc.shape
    factor = np.ones(n_batch, dtype=dt)
    sw = inputs.get("sample_weight")
    if sw is not None:
        sw = np.asarray(sw, dtype=dt)
        try:
            target = np.broadcast_shapes(sw.shape, (n_batch,))
        except ValueError:
            target = None
        if target != (n_batch,):
            _fail(
                f"input sample_weight has shape {sw.shape}, which does not broadcast to the "
                f"shape of loss ({n_batch},)"
            )
        factor = factor * np.broadcast_to(sw, (n_batch,))
    w = options.get("weight")
    if w is not None:
        factor = factor * dt.type(w)

    out = np.zeros(n_batch, dtype=dt)
    dpred = np.zeros(ntc.shape, dtype=dt)
    for n in range(n_batch):
        t_n, seq = frames[n], seqs[n]
        if len(seq) + sum(1 for a, b in zip(seq, seq[1:]) if a == b) > t_n:
            out[n] = factor[n] * dt.type(np.inf)  # no alignment: p = 0, -log p = +inf
            dpred[n] = dt.type(np.nan)  # the derivative of -log 0 does not exist
            continue
        nll, g = _sample(np.ascontiguousarray(ntc[n, :t_n]), seq, n_class - 1)
        out[n] = factor[n] * nll
        dpred[n, :t_n] = g
    grads = {}
    if "pred" in wrt:
        ct = np.asarray(cotangent, dtype=dt).reshape(n_batch)
        gp = (ct * factor)[:, None, None] * dpred
        if layout == "TNC":
            gp = np.swapaxes(gp, 0, 1)
        grads["pred"] = np.ascontiguousarray(gp, dtype=dt)
    return out, grads
