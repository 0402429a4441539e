"""NumPy kernel of mxnet.gluon.loss.CosineEmbeddingLoss (see
oracle/losses/cosine_embedding_loss.py).

Each sample's vectors u, v (all non-batch elements; input2 read into input1's shape) are
first scaled by a power of two where needed (:func:`_scaled`: up when their largest element
is below 0.5, down only where the squared norms could overflow), and cos_sim is
scale-free. With
v_perp = v - (<u,v>/|u|^2) u and u_perp = u - (<u,v>/|v|^2) v, formed with an exact
(Dekker) product so they stay accurate for nearly parallel vectors,

    c   = <u, v> / sqrt(|u|^2 |v|^2)
    out = w * sw * (1 - c)                    label 1, as (|v_perp|^2/|v|^2) / (1 + c) for c > 0
    out = w * sw * max(0, c - margin)         label -1
    dc/du = v_perp / (|u| |v|),  dc/dv = u_perp / (|u| |v|)   (the scale undone with ldexp)

times -1 (label 1), 1 (label -1 with c > margin) or 0 (c <= margin; at c == margin 0 lies
inside the oracle's interval). 1 - c for a tiny loss and the gradients of nearly parallel
vectors keep their relative accuracy.
"""

from __future__ import annotations

import math

import numpy as np

from . import _conventions as C

LOSS_ID = "mxnet.gluon.loss.CosineEmbeddingLoss"


def _check_options(options: dict) -> None:
    for name in ("margin", "weight"):
        v = options[name]
        if v is None and name == "weight":
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ValueError(f"{LOSS_ID}: option {name}={v!r} is invalid; expected a finite real number")


def _rows(x: np.ndarray, axis: int) -> np.ndarray:
    moved = np.moveaxis(x, axis, 0)
    return moved.reshape(moved.shape[0], -1)


def _unrows(rows: np.ndarray, shape: tuple, axis: int) -> np.ndarray:
    moved = (shape[axis],) + tuple(s for a, s in enumerate(shape) if a != axis)
    return np.moveaxis(rows.reshape(moved), 0, axis)


def _sample_weight(sw, shape: tuple, axis: int):
    if sw is None:
        return None
    sw = np.asarray(sw)
    try:
        ok = np.broadcast_shapes(sw.shape, shape) == tuple(shape)
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(
            f"{LOSS_ID}: input sample_weight has shape {sw.shape}, which does not broadcast "
            f"to the shape of input1 {tuple(shape)}"
        )
    padded = (1,) * (len(shape) - sw.ndim) + sw.shape
    if any(padded[a] != 1 for a in range(len(shape)) if a != axis):
        raise ValueError(
            f"{LOSS_ID}: input sample_weight has shape {sw.shape}; expected one weight per "
            f"sample (size 1 on every non-batch axis of input1 {tuple(shape)})"
        )
    return _rows(np.broadcast_to(sw.reshape(padded), shape), axis)[:, 0]


def _scaled(rows: np.ndarray, name: str):
    """rows * 2**-e per row, and e: a row whose max |element| is below 0.5 is scaled up
    into [0.5, 1) (exact), one whose squared norm could overflow is scaled down into
    [0.5, 1); any other row is left as it is (e = 0). Scaling down is not exact: it
    rounds elements that become subnormal -- halving the row [5e-324, 1] turns the
    smallest subnormal into 0 and cos_sim with [1, 0] from 5e-324 into 0 -- so it is done
    only where the squares would overflow (then such elements are below the result's
    rounding anyway)."""
    big = np.max(np.abs(rows), axis=1)
    zero = np.nonzero(big == 0)[0]
    if zero.size:
        raise ValueError(
            f"{LOSS_ID}: input {name} sample {int(zero[0])} is a zero vector; cos_sim is 0/0 "
            "(undefined), expected a nonzero vector"
        )
    _, e = np.frexp(big)
    # n squares below 2**(2 * top) sum below 2**(maxexp - 2): no overflow, nor in the
    # exact (Dekker) products, whose splitting factor is below 2**(nmant / 2 + 2)
    info = np.finfo(rows.dtype)
    top = (info.maxexp - 2 - int(np.ceil(np.log2(rows.shape[1] + 1))) - (info.nmant // 2 + 2)) // 2
    e = np.where((e < 0) | (e > top), e, 0)
    return np.ldexp(rows, -e[:, None]).astype(rows.dtype), e


def _split(a: np.ndarray):
    """Veltkamp: a = hi + lo exactly, each with half the significand."""
    bits = np.finfo(a.dtype).nmant + 1
    factor = a.dtype.type(2 ** ((bits + 1) // 2) + 1)
    t = factor * a
    hi = t - (t - a)
    return hi, a - hi


def _two_prod(a: np.ndarray, b: np.ndarray):
    """Dekker: a * b = p + e exactly (barring underflow)."""
    p = a * b
    ah, al = _split(a)
    bh, bl = _split(b)
    e = ((ah * bh - p) + ah * bl + al * bh) + al * bl
    return p, e


def _perp(x: np.ndarray, y: np.ndarray, alpha: np.ndarray, ny2: np.ndarray) -> np.ndarray:
    """x - (<x, y> / |y|^2) y per row, with alpha ~ <x, y> / |y|^2: x - alpha y is formed
    with an exact product (so its rounding is relative to the small residual), then the
    residual's own component along y is removed."""
    p, e = _two_prod(np.broadcast_to(alpha[:, None], y.shape).astype(y.dtype), y)
    r = (x - p) - e
    beta = np.sum(r * y, axis=1, dtype=x.dtype) / ny2
    return r - beta[:, None] * y


def run(inputs: dict, options: dict, cotangent, wrt: tuple) -> tuple:
    _check_options(options)
    in1 = np.asarray(inputs["input1"])
    dtype = in1.dtype
    one = dtype.type
    in2 = C.reshape_like(LOSS_ID, np.asarray(inputs["input2"]), in1, "input2", "input1")
    axis = C.axis(LOSS_ID, "batch_axis", options["batch_axis"], in1.ndim, of="input1", strict=True)
    u, v = _rows(in1, axis), _rows(in2, axis)
    n = u.shape[0]
    label = np.asarray(inputs["label"])
    if label.ndim != 1 or label.shape[0] != n:
        raise ValueError(
            f"{LOSS_ID}: input label has shape {label.shape}; expected a 1-D tensor of "
            f"batch_size={n} labels"
        )
    bad = ~((label == 1) | (label == -1))
    if bad.any():
        i = int(np.nonzero(bad)[0][0])
        raise ValueError(f"{LOSS_ID}: input label[{i}] is {label[i]!r}; expected 1 or -1")
    if u.shape[1] == 0:
        raise ValueError(f"{LOSS_ID}: the non-batch axes of input1 are empty: shape {in1.shape}")
    sw = _sample_weight(inputs.get("sample_weight"), in1.shape, axis)

    us, eu = _scaled(u, "input1")
    vs, ev = _scaled(v, "input2")
    nu2 = np.sum(us * us, axis=1, dtype=dtype)
    nv2 = np.sum(vs * vs, axis=1, dtype=dtype)
    dot = np.sum(us * vs, axis=1, dtype=dtype)
    nunv = np.sqrt(nu2 * nv2)
    c = (dot / nunv).astype(dtype)
    # the components of v orthogonal to u and of u orthogonal to v, accurately even for
    # nearly parallel vectors
    v_perp = _perp(vs, us, dot / nu2, nu2)
    u_perp = _perp(us, vs, dot / nv2, nv2)
    # 1 - c = (1 - c^2) / (1 + c) with 1 - c^2 = |v_perp|^2 / |v|^2 (no cancellation)
    sin2 = np.sum(v_perp * v_perp, axis=1, dtype=dtype) / nv2
    one_minus_c = np.where(c > 0, sin2 / np.where(c > 0, one(1) + c, one(1)), one(1) - c)
    pos = label == 1
    margin = one(options["margin"])
    per = np.where(pos, one_minus_c, np.maximum(c - margin, one(0)))
    w = one(1) if options["weight"] is None else one(options["weight"])
    factor = np.full(n, w, dtype=dtype) if sw is None else (w * sw.astype(dtype)).astype(dtype)
    out = (factor * per).astype(dtype)

    grads = {}
    if wrt:
        slope = np.where(pos, one(-1), np.where(c > margin, one(1), one(0))).astype(dtype)
        k = (np.asarray(cotangent, dtype=dtype).reshape(n) * factor * slope).astype(dtype)
        for name in wrt:
            if name == "input1":  # dc/du = v_perp / (|u| |v|)
                perp, e = v_perp, eu
            elif name == "input2":  # dc/dv = u_perp / (|u| |v|)
                perp, e = u_perp, ev
            else:
                raise ValueError(f"{LOSS_ID}: cannot differentiate with respect to {name!r}")
            g = np.ldexp(((k / nunv)[:, None] * perp).astype(dtype), -e[:, None]).astype(dtype)
            grads[name] = _unrows(g, in1.shape, axis).reshape(np.shape(inputs[name]))
    return out, grads
