"""chainer.functions.softmax_cross_entropy -- "Computes cross entropy loss for pre-softmax
activations." (Chainer 7.8.1 docstring; seed 003.)

x has shape (N, C, d1, ...): "the first axis ... represents the number of samples, and the
second axis represents the number of classes"; for ndim > 2 it is "a cross entropy of the
replicated softmax", i.e. one softmax over axis 1 per *instance* (n, d1, ...). With
log p = log_softmax(x, axis=1) and w = class_weight (ones when None; "class_weight[i] is
actually multiplied to y[:, i] that is the corresponding log-softmax output of x ... before
calculating the actual loss value"), the loss of an instance i is

* hard label t_i (t has the shape of x without axis 1):
  ``l_i = -w[t_i] * log p_i[t_i]``, and ``l_i = 0`` when ``t_i == ignore_label``;
* soft target t_i (t has the shape of x), 'cross-entropy':
  ``l_i = -sum_c t_ic * w_c * log p_ic``; 'kl-divergence':
  ``l_i = sum_c t_ic * log t_ic - sum_c t_ic * w_c * log p_ic`` (0 log 0 = 0).

reduce='mean': ``sum_i l_i / D`` with D = the number of non-ignored instances if normalize
("normalizes the cross entropy loss across all instances"; 1 when there is none), else
D = N ("only normalizes along a batch size"); shape (). reduce='no': the l_i themselves,
shape of x without axis 1.

Gradient (c_i = cotangent / D for 'mean', cotangent_i for 'no'):
hard: ``d/dx_ic = c_i * w[t_i] * (p_ic - [c == t_i])`` (0 for ignored instances);
soft (both losses): ``d/dx_ic = c_i * (S_i * p_ic - t_ic * w_c)``, S_i = sum_c t_ic * w_c.

log p is evaluated as ``-log1p(sum_{c' != c} exp(x_c' - x_c))`` so a tiny loss keeps its
relative accuracy, and ``p_t - 1`` as ``expm1(log p_t)``.

Scale (tolerance model): class c of instance i contributes ``|x_ic| + |logsumexp(x_i)|``:
``|w[t_i]|`` times the target's (hard), the sum over c of ``|t_ic w_c|`` times each (soft,
plus ``|t_ic log t_ic|`` for kl-divergence); reduced as the loss is.
The term scale follows ``/work/shared/DESIGN.md`` ("for softmax cross-entropy, |x_t| +
|logsumexp(x)|"), the magnitudes of the terms the documented formula adds, which is what
backward stability under a relative input perturbation allows (a logit of 1000 perturbed by
eps moves the loss by 1000 eps); issue 11 item 3 requires that "logaddexp instead of max-
shift" is a correct variant that passes everything, which a shift-invariant scale denied
(ruling of issue 13; see oracle.arrays.log_softmax_terms).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from .. import arrays as A
from .. import cases as C
from .. import real as R
from ..catalog import InputSpec, LossSpec, OptionSpec, Reading
from ..conventions import require
from ..errors import InputError, describe
from ..real import real as mpf
from ..result import Forward, Gradient

LOSS_ID = "chainer.functions.softmax_cross_entropy"

#: how far the sum of a soft target may be from 1 (float16 distributions rarely sum to 1)
SOFT_TARGET_SUM_TOLERANCE = mpf(2) ** -8

#: a class_weight every fixture set covers (exact in float16, float32 and float64)
CLASS_WEIGHT = (0.5, 2.0, 1.0, 0.25)


def _check_class_weight(value: object) -> str | None:
    arr = np.asarray(value)
    if arr.dtype == object or arr.dtype.kind not in "fiu":
        return "None or a 1-D array of real numbers of shape (x.shape[1],)"
    if arr.ndim != 1:
        return f"a 1-D array of shape (x.shape[1],), not an array of shape {arr.shape}"
    if not np.all(np.isfinite(arr.astype(np.float64))):
        return "a 1-D array of finite real numbers"
    return None


SPEC = LossSpec(
    id=LOSS_ID,
    summary="Cross entropy of softmax(x) over axis 1 against integer labels or soft targets.",
    formula=(
        "hard: l_i = -w[t_i] log_softmax(x)_i[t_i] (0 if t_i == ignore_label); "
        "soft: l_i = -sum_c t_ic w_c log_softmax(x)_ic (+ sum_c t_ic log t_ic for kl-divergence); "
        "mean: sum_i l_i / (non-ignored instances if normalize else N); no: l_i"
    ),
    options=(
        OptionSpec(
            "normalize",
            True,
            "bool",
            "If True, normalizes the loss across all instances; if False, only along the batch size.",
        ),
        OptionSpec(
            "cache_score",
            True,
            "bool",
            "Store the forward result for the backward computation.",
            value_neutral=True,
            neutral_reason="caching the softmax changes memory use and speed, not values or gradients",
        ),
        OptionSpec(
            "class_weight",
            None,
            "array",
            "Constant weights of shape (x.shape[1],) multiplied to the log-softmax output y[:, i].",
            check=_check_class_weight,
            domain="None or a 1-D array of C finite real numbers",
            fixture_values=(CLASS_WEIGHT,),
        ),
        OptionSpec(
            "ignore_label",
            -1,
            "int",
            "Label value you want to ignore.",
            fixture_values=(2,),
        ),
        OptionSpec(
            "reduce",
            "mean",
            "enum",
            "'mean': sum of the instance losses normalized per normalize; 'no': one loss per instance.",
            choices=("mean", "no"),
        ),
        OptionSpec(
            "enable_double_backprop",
            False,
            "bool",
            "Use the implementation that supports higher-order differentiation.",
            value_neutral=True,
            neutral_reason="selects an implementation that supports higher-order derivatives; "
            "the function and its first derivative are the same",
        ),
        OptionSpec(
            "soft_target_loss",
            "cross-entropy",
            "enum",
            "Loss used for soft targets: cross-entropy or KL divergence.",
            choices=("cross-entropy", "kl-divergence"),
        ),
    ),
    inputs=(
        InputSpec(
            "x",
            "unnormalized log probabilities, shape (N, C, ...): samples on axis 0, classes on axis 1",
            differentiable=True,
        ),
        InputSpec(
            "t",
            "signed integer labels of shape (N, ...) (x.shape without axis 1), or soft targets "
            "(probability distributions along axis 1) with the shape of x",
        ),
    ),
    output_shape="() if reduce='mean'; x.shape without axis 1 (the shape of hard labels t) if reduce='no'",
    source="Chainer 7.8.1 chainer/functions/loss/softmax_cross_entropy.py (docstring); seed 003",
    readings=(
        Reading(
            "hard labels or soft targets",
            "When the dtype is float, this function treats t as an array holding probability "
            "distribution of labels, in other words, soft targets. In this case, the shape of t "
            "must be the same as the shape of x.",
            "Exact inputs carry no dtype, so the shape decides (the docs require it to match): t "
            "with the shape of x is a soft target; t with the shape of x without axis 1 holds hard "
            "labels, which must be integers. Any other shape is an error.",
        ),
        Reading(
            "label domain and ignore_label",
            "If t[i] == ignore_label, corresponding x[i] is ignored. ... ignore_label (int) - "
            "Label value you want to ignore. Its default value is -1.",
            "A hard label must be an integer in [0, C) or equal ignore_label; ignore_label may be "
            "any int, and a label equal to it is ignored even when it is a class index in [0, C). "
            "Soft targets are never ignored (ignore_label applies only to label values).",
        ),
        Reading(
            "normalize",
            "If True, this function normalizes the cross entropy loss across all instances. If "
            "False, it only normalizes along a batch size.",
            "normalize=True divides the sum by the number of non-ignored instances (an instance is "
            "one (n, d1, ...) position; ignored ones are not part of the loss); normalize=False "
            "divides by N = x.shape[0], counting ignored samples. With class_weight the divisor "
            "is still a count of instances, not a sum of weights.",
        ),
        Reading(
            "every label ignored",
            "If True, this function normalizes the cross entropy loss across all instances.",
            "With normalize=True and no non-ignored instance the normalization is 0/0; the "
            "oracle returns 0 with a zero gradient (an empty sum normalized by max(count, 1), "
            "what Chainer's code does), not NaN.",
        ),
        Reading(
            "class_weight with soft targets",
            "each class weight class_weight[i] is actually multiplied to y[:, i] that is the "
            "corresponding log-softmax output of x and has the same shape as x before "
            "calculating the actual loss value.",
            "For soft targets too, log p_c is replaced by w_c * log p_c before the loss: "
            "cross-entropy -sum_c t_c w_c log p_c, KL sum_c t_c (log t_c - w_c log p_c). "
            "(Chainer 7.8.1 ignores class_weight for soft targets: a finding.)",
        ),
        Reading(
            "normalization of soft targets",
            "normalize (bool) - If True, this function normalizes the cross entropy loss across "
            "all instances. If False, it only normalizes along a batch size.",
            "Same as for labels: normalize=True divides by the number of instances "
            "(N * d1 * ...), normalize=False by N. (Chainer 7.8.1 always divides soft-target "
            "losses by N * d1 * ..., ignoring normalize: a finding for ndim > 2.)",
        ),
        Reading(
            "kl-divergence",
            "If 'cross-entropy' and 'kl-divergence', cross-entropy and KL divergence are used for "
            "loss calculation.",
            "KL(t || softmax(x)) = sum_c t_c (log t_c - log p_c) with 0 log 0 = 0 and no epsilon "
            "(Chainer 7.8.1 computes log(t + 1e-7): a finding).",
        ),
        Reading(
            "reduce='no' with soft targets",
            "If reduce is 'no', the shape is same as that of t.",
            "That sentence is written for labels; with soft targets t has the shape of x but the "
            "loss is one number per instance ('computes cross entropy for each instance'), so the "
            "output has the shape of x without axis 1.",
        ),
        Reading(
            "soft target domain",
            "this function treats t as an array holding probability distribution of labels",
            "Each soft target along axis 1 must be nonnegative and sum to 1 within 2**-8 "
            "(a distribution rounded to float16 rarely sums to 1 exactly); the formula and its "
            "gradient use the given values as they are (the gradient is S p - t w with the "
            "exact S = sum_c t_c w_c, not p - t).",
        ),
        Reading(
            "class_weight values",
            "An array that contains constant weights ... The shape of this array should be "
            "(x.shape[1],).",
            "Any 1-D array of finite reals of length C (Chainer's code also demands a float "
            "dtype, which exact inputs do not have).",
        ),
        Reading(
            "logits",
            "Variable holding a multidimensional array whose element indicates unnormalized log "
            "probability: the first axis of the variable represents the number of samples, and "
            "the second axis represents the number of classes.",
            "x needs at least 2 dimensions and must be non-empty. A logit of -inf is a log "
            "probability (probability 0) and is allowed as long as each instance has a finite "
            "logit; +inf and NaN are not log probabilities and are rejected.",
        ),
        Reading(
            "infinite value",
            "Variable holding a multidimensional array whose element indicates unnormalized log "
            "probability",
            "A logit of -inf at an instance's hard label (or where a soft target > 0) is a "
            "probability 0: the documented cross entropy -log p is +inf and so is the "
            "expected value; the gradient p - t stays finite.",
        ),
    ),
)


# ----------------------------------------------------------------------- helpers


def _log_softmax_rows(rows: np.ndarray) -> np.ndarray:
    """log_softmax of each row of an (M, C) object array, as -log1p(sum_{c'!=c} exp(x_c'-x_c))
    (relative accuracy even when the probability is within a hair of 1)."""
    m, c = rows.shape
    out = np.empty((m, c), dtype=object)
    for i in range(m):
        r = list(rows[i])
        for k in range(c):
            if R.isinf(r[k]):  # -inf (checked by the caller): probability 0
                out[i, k] = -R.INF
                continue
            s = R.fsum(R.exp(r[j] - r[k]) for j in range(c) if j != k and not R.isinf(r[j]))
            out[i, k] = -R.log1p(s)
        # second order: the t-derivative is held to the documented x_k - logsumexp(x), whose
        # terms v_k and p_j v_j are O(|v|) (oracle.real.with_tangent_terms)
        moving = [R.exp(out[i, j]) * R.tangent(r[j]) for j in range(c) if not R.isinf(r[j])]
        for k in range(c):
            if not R.isinf(r[k]):
                out[i, k] = R.with_tangent_terms(out[i, k], R.tangent(r[k]), *moving)
    return out


def _labels(t: np.ndarray, n_classes: int, ignore_label: int) -> np.ndarray:
    flat = []
    for v in t.ravel():
        if not R.isint(v):
            raise InputError(f"{LOSS_ID}: input t holds the label {describe(v)}; expected integer labels")
        k = int(v)
        if k != ignore_label and not 0 <= k < n_classes:
            raise InputError(
                f"{LOSS_ID}: input t holds the label {k}; expected an integer in "
                f"[0, {n_classes}) (x.shape[1] = {n_classes}) or ignore_label={ignore_label}"
            )
        flat.append(k)
    return np.asarray(flat, dtype=np.int64).reshape(t.shape)


def _check_soft(t_rows: np.ndarray) -> None:
    for i, row in enumerate(t_rows):
        for v in row:
            if not R.isfinite(v) or v < 0:
                raise InputError(
                    f"{LOSS_ID}: input t (soft target) holds {describe(v)}; expected "
                    "probabilities >= 0 along axis 1"
                )
        s = R.fsum(row)
        if abs(s - 1) > SOFT_TARGET_SUM_TOLERANCE:
            raise InputError(
                f"{LOSS_ID}: input t (soft target) instance {i} sums to "
                f"{float(s):.8g} along axis 1; expected a probability distribution "
                "(sum 1 within 2**-8)"
            )


def _class_weight(options: dict, n_classes: int) -> np.ndarray:
    cw = options.get("class_weight")
    if cw is None:
        return A.full((n_classes,), 1)
    arr = np.asarray(cw)
    if arr.shape != (n_classes,):
        raise InputError(
            f"{LOSS_ID}: option class_weight has shape {arr.shape}; expected (x.shape[1],) = "
            f"({n_classes},)"
        )
    return A.asmp(arr.astype(np.float64) if arr.dtype.kind in "iu" else arr)


# ----------------------------------------------------------------------- forward


def forward(x: dict, options: dict) -> Forward:
    xs = x["x"]
    t = x["t"]
    require(LOSS_ID, xs.ndim >= 2, f"input x has shape {xs.shape}; expected (N, C, ...) with at least 2 dimensions")
    require(LOSS_ID, xs.size > 0, f"input x has shape {xs.shape}; expected a non-empty array")
    n, n_classes = xs.shape[0], xs.shape[1]
    inst_shape = (n, *xs.shape[2:])
    for v in xs.ravel():
        if R.isnan(v) or v == R.INF:
            raise InputError(f"{LOSS_ID}: input x holds {describe(v)}; expected finite logits (or -inf)")
    rows = np.moveaxis(xs, 1, -1).reshape(-1, n_classes)
    for i, row in enumerate(rows):
        if all(R.isinf(v) for v in row):
            raise InputError(
                f"{LOSS_ID}: input x instance {i} has every logit -inf; expected at least one "
                "finite logit per instance"
            )
    if tuple(t.shape) == tuple(xs.shape):
        soft = True
    elif tuple(t.shape) == inst_shape:
        soft = False
    else:
        raise InputError(
            f"{LOSS_ID}: input t has shape {t.shape}; expected labels of shape {inst_shape} "
            f"(x.shape without axis 1) or soft targets of shape {xs.shape} (the shape of x)"
        )
    w = _class_weight(options, n_classes)
    ignore = int(options["ignore_label"])
    m = rows.shape[0]
    logp = _log_softmax_rows(rows)
    # the term scale of class k: |x_k| + |logsumexp(x)| (DESIGN.md's definition, see
    # oracle.arrays.log_softmax_terms), logsumexp(x) = max + log sum exp(x - max), the
    # second term being -log p at the maximum
    # A scale is a magnitude, never differentiated: it is formed from the values without
    # their t-derivatives, so that neither the maximum taken (tied maxima give the same scale)
    # nor |x| at an exact 0 is decided on the germ (oracle.real.GERM: a decision there would
    # cost the HVP a second run along -direction for nothing)
    xv = np.frompyfunc(R.without_tangent, 1, 1)(rows)
    lv = np.frompyfunc(R.without_tangent, 1, 1)(logp)
    arg = [max(range(n_classes), key=lambda k: xv[i, k]) for i in range(m)]
    lse = [abs(xv[i, arg[i]] - lv[i, arg[i]])
           + R.fsum(R.exp(lv[i, k]) * abs(xv[i, k]) for k in range(n_classes) if not R.isinf(xv[i, k]))
           for i in range(m)]  # plus sum_k p_k |x_k| (oracle.arrays.lse_terms)

    loss = A.zeros((m,))
    scale = A.zeros((m,))
    active = np.ones(m, dtype=bool)
    if soft:
        t_rows = np.moveaxis(t, 1, -1).reshape(-1, n_classes)
        _check_soft(t_rows)
        kl = options["soft_target_loss"] == "kl-divergence"
        for i in range(m):
            terms, mags = [], []
            for k in range(n_classes):
                tk = t_rows[i, k]
                if tk == 0:
                    continue
                terms.append(-tk * w[k] * logp[i, k])
                mags.append(abs(tk * w[k]) * (abs(xv[i, k]) + lse[i]))
                if kl:
                    ent = tk * R.log(tk)
                    terms.append(ent)
                    mags.append(abs(ent))
            loss[i] = R.fsum(terms)
            scale[i] = R.fsum(mags)
        labels = None
    else:
        labels = _labels(t, n_classes, ignore).ravel()
        for i in range(m):
            k = int(labels[i])
            if k == ignore:
                active[i] = False
                continue
            loss[i] = -w[k] * logp[i, k]
            scale[i] = abs(w[k]) * (abs(xv[i, k]) + lse[i])

    if options["reduce"] == "mean":
        if options["normalize"]:
            denom = mpf(max(int(active.sum()), 1))
        else:
            denom = mpf(n)
        value = np.array(R.fsum(loss) / denom, dtype=object)
        value_scale = np.array(R.fsum(scale) / denom, dtype=object)
        n_terms = m * n_classes
    else:
        value = loss.reshape(inst_shape)
        value_scale = scale.reshape(inst_shape)
        n_terms = n_classes
        denom = None

    def vjp(ct: np.ndarray) -> dict[str, Gradient]:
        if denom is not None:
            coef = [mpf(ct.reshape(())[()]) / denom] * m
        else:
            coef = list(ct.reshape(-1))
        g = A.zeros((m, n_classes))
        for i in range(m):
            if not active[i]:
                continue
            p = [R.exp(v) for v in logp[i]]
            if soft:
                s = R.fsum(t_rows[i, k] * w[k] for k in range(n_classes))
                for k in range(n_classes):
                    g[i, k] = coef[i] * (s * p[k] - t_rows[i, k] * w[k])
            else:
                lab = int(labels[i])
                for k in range(n_classes):
                    d = R.expm1(logp[i, k]) if k == lab else p[k]
                    g[i, k] = coef[i] * w[lab] * d
        gx = np.moveaxis(g.reshape(*inst_shape, n_classes), -1, 1)
        return {"x": Gradient.exact(np.ascontiguousarray(gx))}

    return Forward(value, value_scale, n_terms, vjp)


# ------------------------------------------------------------------------- cases


def _hard(rng, shape: tuple[int, ...], dtype: str, sigma: float = 2.0, ignore: int | None = None):
    """Logits of ``shape`` and labels in [0, C) (the last instance set to ``ignore``)."""
    xs = C.normal(rng, shape, sigma, dtype)
    t = C.integers(rng, (shape[0], *shape[2:]), 0, shape[1])
    if ignore is not None:
        t.reshape(-1)[-1] = ignore
    return {"x": xs, "t": t}


def _soft(rng, shape: tuple[int, ...], dtype: str, sigma: float = 2.0):
    return {"x": C.normal(rng, shape, sigma, dtype), "t": C.probabilities(rng, shape, 1, dtype)}


def _label_cases(dtype: str) -> Iterator[C.Case]:
    rng = C.rng_for(LOSS_ID, f"label-cases-{dtype}")
    for normalize in (True, False):
        yield C.Case(
            f"all-ignored-normalize={normalize}-{dtype}",
            {"x": C.normal(rng, (2, 3), 2.0, dtype), "t": np.array([-1, -1], dtype=np.int64)},
            dtype,
            {"normalize": normalize},
            tags=("label",),
            note="every label ignored: 0 (the 0/0 of normalize=True read as 0)",
        )
    yield C.Case(
        f"all-ignored-no-{dtype}",
        {"x": C.normal(rng, (2, 3, 2), 2.0, dtype), "t": np.full((2, 2), 5, dtype=np.int64)},
        dtype,
        {"reduce": "no", "ignore_label": 5},
        tags=("label",),
    )
    yield C.Case(
        f"ignore_label-outside-{dtype}",
        {"x": C.normal(rng, (4, 3), 2.0, dtype), "t": np.array([0, -100, 2, -100], dtype=np.int64)},
        dtype,
        {"ignore_label": -100},
        tags=("label",),
    )
    yield C.Case(
        f"ignore_label-class-index-{dtype}",
        {"x": C.normal(rng, (4, 4), 2.0, dtype), "t": np.array([3, 0, 3, 1], dtype=np.int64)},
        dtype,
        {"ignore_label": 3, "reduce": "no"},
        tags=("label",),
        note="ignore_label = C-1 is a class index; those labels are ignored",
    )
    yield C.Case(
        f"labels-first-last-{dtype}",
        {"x": C.normal(rng, (4, 5), 2.0, dtype), "t": np.array([0, 4, 4, 0], dtype=np.int64)},
        dtype,
        {"class_weight": (1.0, 0.5, 0.5, 0.5, 4.0)},
        tags=("label",),
    )



#: why an option value has no case of a regime (fixtures/COVERAGE.md, oracle.coverage.gap_reason):
#: the long regime is the soft-target batch of 1024 instances and the hard-label reduction
#: over 16384 positions (:func:`_long_hard`), averaged with reduce='mean'
REGIME_GAPS = {
    ("reduce='no'", "long"): "ruled out: reduce='no' returns one loss per instance, so nothing is summed over "
    "the batch (each instance sums 4 classes)",
}

#: per dtype, the logit of the three other classes at the positions between the ends of a
#: hard-label long case: an instance loss log(1 + 3 exp(m)) below half an ULP of log 4
_LONG_OTHER = {"float16": -9.0, "float32": -18.5, "bfloat16": -7.5}


def _long_hard(dtype: str, opts: dict | None = None) -> C.Case:
    """A hard-label long case: x of shape (1, 4, 16384) (one sample, 4 classes, 16384
    positions; reduce='mean' averages the 16384 instance losses), every label 0; the
    positions at both ends have equal logits (loss log 4), those between logit 0 for the
    label and m for the other classes (loss log(1 + 3 exp(m)): float16 m = -9, 3.7e-4;
    float32 -18.5, 2.8e-8; bfloat16 -7.5, 1.7e-3; each below half an ULP of log 4), so a
    running sum of the instance losses in the dtype stagnates after the first. Crossed
    (float16) with ``normalize=False`` (divisor N = 1: the sum), ``ignore_label=2`` (the
    labels of positions 4096 to 8191 are 2: ignored, divisor 12288) and ``class_weight``."""
    opts = dict(opts or {})
    n = C.LONG
    x = np.full((1, 4, n), _LONG_OTHER[dtype])
    x[0, 0, :] = 0.0
    x[0, :, 0] = x[0, :, -1] = 0.0
    t = np.zeros((1, n))
    if "ignore_label" in opts:
        t[0, n // 4 : n // 2] = opts["ignore_label"]
    name = "long-hard-" + (f"{C.variant_name(opts)}-" if opts else "") + dtype
    return C.Case(name, {"x": C.in_dtype(x, dtype), "t": t.astype(np.int64)}, dtype, opts, tags=("long",),
                  note="hard labels at 16384 positions averaged (reduce='mean'): instance losses below half an "
                  f"ULP of the first, so a running {dtype} sum stagnates")


def _long_hard_cases() -> Iterator[C.Case]:
    """:func:`_long_hard` in float16, float32 and bfloat16, and in float16 crossed with the
    options that change the reduction."""
    for dtype in C.HALF_ULP_DTYPES:
        yield _long_hard(dtype)
    for opts in ({"normalize": False}, {"ignore_label": 2}, {"class_weight": CLASS_WEIGHT}):
        yield _long_hard("float16", opts)


def cases() -> Iterator[C.Case]:
    for dtype in C.DTYPES:
        fin = np.finfo(dtype)
        for opts in C.option_variants(SPEC):
            name = f"{C.variant_name(opts)}-{dtype}"
            rng = C.rng_for(LOSS_ID, name)
            if "soft_target_loss" in opts:
                yield C.Case(name, _soft(rng, (3, 4), dtype), dtype, opts, note="soft targets")
            else:
                ignore = opts.get("ignore_label", -1)
                yield C.Case(
                    name,
                    _hard(rng, (3, 4), dtype, ignore=ignore),
                    dtype,
                    opts,
                    note="the last instance carries ignore_label",
                )

        yield C.Case(
            f"worked-example-{dtype}",
            {"x": C.in_dtype([[-1, 0, 1, 2], [2, 0, 1, -1]], dtype), "t": np.array([3, 0], dtype=np.int64)},
            dtype,
            note="the docstring's example: variable(0.44018972) in float32",
        )

        # --- soft targets
        for name, opts, shape in (
            ("soft-cross-entropy-rank4-no", {"reduce": "no"}, (2, 3, 2, 1)),
            ("soft-kl-rank4-no", {"reduce": "no", "soft_target_loss": "kl-divergence"}, (2, 3, 1, 2)),
            ("soft-kl-rank4-unnormalized", {"normalize": False, "soft_target_loss": "kl-divergence"}, (2, 3, 2, 2)),
            ("soft-cross-entropy-class_weight", {"class_weight": CLASS_WEIGHT}, (3, 4)),
            ("soft-kl-class_weight-no", {"class_weight": CLASS_WEIGHT, "soft_target_loss": "kl-divergence", "reduce": "no"}, (2, 4, 2)),
        ):
            rng = C.rng_for(LOSS_ID, f"{name}-{dtype}")
            yield C.Case(f"{name}-{dtype}", _soft(rng, shape, dtype), dtype, opts, tags=("shape",))

        # --- soft targets at low precision with a large batch (bfloat16 derived from float16)
        if dtype == "float16":
            for stl in ("cross-entropy", "kl-divergence"):
                rng = C.rng_for(LOSS_ID, f"soft-large-batch-{stl}-{dtype}")
                yield C.Case(
                    f"soft-large-batch-{stl}-{dtype}", _soft(rng, C.SOFT_BATCH, dtype, sigma=0.05), dtype,
                    {"soft_target_loss": stl}, tags=("long",),
                    note="soft targets, 1024 instances averaged (reduce='mean'): a long reduction in float16 "
                    "of per-instance losses near log 4 (logits near 0), which a running float16 sum rounds "
                    "the same way at every step (to 1.5 past 512, to 1 past 1024)",
                )

        # --- shapes
        rng = C.rng_for(LOSS_ID, f"shapes-{dtype}")
        yield C.Case(
            f"minimum-{dtype}",
            {"x": C.normal(rng, (1, 1), 2.0, dtype), "t": np.array([0], dtype=np.int64)},
            dtype,
            tags=("shape", "boundary"),
            note="one sample, one class: log_softmax is exactly 0",
        )
        yield C.Case(
            f"rank4-normalized-{dtype}", _hard(rng, (2, 3, 2, 2), dtype, ignore=-1), dtype, tags=("shape",),
            note="replicated softmax over axis 1; one instance ignored",
        )
        yield C.Case(
            f"rank4-unnormalized-class_weight-{dtype}",
            _hard(rng, (2, 4, 1, 3), dtype, ignore=-1),
            dtype,
            {"normalize": False, "class_weight": CLASS_WEIGHT},
            tags=("shape",),
        )
        yield C.Case(
            f"rank3-no-{dtype}", _hard(rng, (2, 3, 4), dtype, ignore=-1), dtype, {"reduce": "no"}, tags=("shape",)
        )

        # --- labels
        rng = C.rng_for(LOSS_ID, f"labels-{dtype}")
        yield C.Case(
            f"all-ignored-{dtype}",
            {"x": C.normal(rng, (2, 3), 2.0, dtype), "t": np.array([-1, -1], dtype=np.int64)},
            dtype,
            tags=("label",),
            note="every label ignored: 0 (the 0/0 of normalize=True read as 0)",
        )
        if dtype == "float32":  # label bookkeeping does not depend on the dtype
            yield from _label_cases(dtype)

        # --- extreme: the logits overflow a naive exp in the dtype. Gaps stay below ~1e6
        # so the exact probabilities exp(-gap) keep a representable binary exponent.
        big = {"float16": 1e4, "float32": 3e4, "float64": 3e5}[dtype]
        ext = C.in_dtype([[big, -big, 0.0, big / 2], [-big, big, big, 1.0]], dtype)
        yield C.Case(
            f"extreme-{dtype}",
            {"x": ext, "t": np.array([0, 0], dtype=np.int64)},
            dtype,
            {"reduce": "no"},
            tags=("extreme",),
            note="loss 0 (up to exp(-big/2)) and loss about 2*big",
        )
        soft_t = C.in_dtype([[0.25, 0.25, 0.25, 0.25], [0.5, 0.0, 0.5, 0.0]], dtype)
        yield C.Case(
            f"extreme-soft-kl-{dtype}",
            {"x": ext, "t": soft_t},
            dtype,
            {"soft_target_loss": "kl-divergence", "reduce": "no"},
            tags=("extreme",),
        )
        top = float(fin.max)
        yield C.Case(
            f"extreme-near-max-tie-{dtype}",
            {"x": C.in_dtype([[top, top, top], [-top, -top, -top]], dtype), "t": np.array([0, 2], dtype=np.int64)},
            dtype,
            {"reduce": "no"},
            tags=("extreme", "tie"),
            note="exactly log 3 twice; exp overflows and underflows in the dtype",
        )
        # a moderate gap that already overflows exp in float16 (exp(12) > 65504)
        yield C.Case(
            f"extreme-moderate-{dtype}",
            {"x": C.in_dtype([[12.0, 20.0, -3.0], [100.0, 90.0, 99.0]], dtype), "t": np.array([1, 2], dtype=np.int64)},
            dtype,
            tags=("extreme",),
        )

        # --- tiny losses: the target dominates, the loss is about exp(-gap)
        gap = {"float16": 12.0, "float32": 40.0, "float64": 200.0}[dtype]
        yield C.Case(
            f"tiny-{dtype}",
            {"x": C.in_dtype([[0.0, -gap, -gap, -gap], [gap, 0.0, 1.0, -1.0]], dtype), "t": np.array([0, 0], dtype=np.int64)},
            dtype,
            {"reduce": "no"},
            tags=("tiny",),
        )
        delta = float(fin.eps) * 16
        yield C.Case(
            f"tiny-kl-{dtype}",
            {"x": C.in_dtype([[0.0, 0.0], [1.0, 1.0]], dtype), "t": C.in_dtype([[0.5 + delta, 0.5 - delta], [0.5, 0.5]], dtype)},
            dtype,
            {"soft_target_loss": "kl-divergence", "reduce": "no"},
            tags=("tiny",),
            note="KL about 2*delta**2 and exactly 0",
        )

        # --- ties and boundaries
        yield C.Case(
            f"tie-{dtype}",
            {"x": C.in_dtype([[1.5, 1.5, 1.5, 1.5], [3.0, 3.0, -1.0, 0.0]], dtype), "t": np.array([2, 1], dtype=np.int64)},
            dtype,
            {"reduce": "no"},
            tags=("tie",),
            note="log 4 and a target tied with another class at the maximum",
        )
        yield C.Case(
            f"tie-soft-{dtype}",
            {"x": C.in_dtype([[0.0, 0.0, 0.0], [2.0, 2.0, 2.0]], dtype), "t": C.in_dtype([[1.0, 0.0, 0.0], [0.25, 0.5, 0.25]], dtype)},
            dtype,
            tags=("tie", "boundary"),
        )
        yield C.Case(
            f"boundary-onehot-kl-{dtype}",
            {"x": C.in_dtype([[0.0, 0.0, 0.0], [-1.0, 0.0, 2.0]], dtype), "t": C.in_dtype([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]], dtype)},
            dtype,
            {"soft_target_loss": "kl-divergence", "reduce": "no"},
            tags=("boundary",),
            note="zero targets (0 log 0 = 0); equals the hard-label loss",
        )
        yield C.Case(
            f"boundary-masked-logits-{dtype}",
            {"x": C.in_dtype([[0.0, -np.inf, 1.0], [-np.inf, -np.inf, 2.0]], dtype), "t": np.array([0, 2], dtype=np.int64)},
            dtype,
            {"reduce": "no"},
            tags=("boundary",),
            note="-inf logits are probabilities exactly 0; the second loss is exactly 0",
        )

    # --- invalid inputs (one dtype; the rule does not depend on it)
    dtype = "float32"
    rng = C.rng_for(LOSS_ID, "invalid")
    x23 = C.normal(rng, (2, 3), 1.0, dtype)
    bad: list[tuple[str, dict, dict, str]] = [
        ("label-equal-C", {"x": x23, "t": np.array([0, 3])}, {}, "labels must be in [0, C) or equal ignore_label"),
        ("label-negative", {"x": x23, "t": np.array([-2, 1])}, {}, "labels must be in [0, C) or equal ignore_label"),
        (
            "label-minus-one-not-ignored",
            {"x": x23, "t": np.array([-1, 1])},
            {"ignore_label": 2},
            "-1 is only valid while it is the ignore_label",
        ),
        ("label-not-integer", {"x": x23, "t": C.in_dtype([1.5, 0.0], dtype)}, {}, "hard labels are signed integers"),
        ("t-shape", {"x": x23, "t": np.array([0, 1, 2])}, {}, "t must have the shape of x without axis 1 or the shape of x"),
        ("x-one-dimensional", {"x": C.normal(rng, (3,), 1.0, dtype), "t": np.array([0])}, {}, "x is (N, C, ...)"),
        (
            "class_weight-length",
            {"x": x23, "t": np.array([0, 1])},
            {"class_weight": (1.0, 2.0)},
            "class_weight must have shape (x.shape[1],)",
        ),
        (
            "class_weight-2d",
            {"x": x23, "t": np.array([0, 1])},
            {"class_weight": ((1.0, 2.0, 3.0),)},
            "class_weight must be 1-D",
        ),
        (
            "soft-negative",
            {"x": x23, "t": C.in_dtype([[1.25, -0.25, 0.0], [0.5, 0.25, 0.25]], dtype)},
            {},
            "soft targets are probability distributions (nonnegative)",
        ),
        (
            "soft-sum",
            {"x": x23, "t": C.in_dtype([[0.5, 0.25, 0.0], [0.5, 0.25, 0.25]], dtype)},
            {},
            "soft targets are probability distributions (sum 1)",
        ),
        ("x-nan", {"x": C.in_dtype([[0.0, np.nan, 1.0], [0.0, 0.0, 0.0]], dtype), "t": np.array([0, 1])}, {}, "x holds log probabilities"),
        ("reduce-sum", {"x": x23, "t": np.array([0, 1])}, {"reduce": "sum"}, "reduce is 'mean' or 'no'"),
        (
            "soft_target_loss-unknown",
            {"x": x23, "t": C.probabilities(rng, (2, 3), 1, dtype)},
            {"soft_target_loss": "mse"},
            "soft_target_loss is 'cross-entropy' or 'kl-divergence'",
        ),
    ]
    for name, inputs, opts, rule in bad:
        inputs = {k: (v.astype(np.int64) if k == "t" and v.dtype.kind in "iu" else v) for k, v in inputs.items()}
        yield C.Case(f"invalid-{name}-{dtype}", inputs, dtype, opts, tags=("invalid",), invalid=rule)
    yield from C.subnormal_cases(SPEC.id, _subnormal)
    yield from _long_hard_cases()


def _subnormal(dtype: str):
    g = C.SUBNORMAL_GAP[dtype]
    yield ("confident", {"x": C.in_dtype([[0.0, g], [g, 0.0]], dtype), "t": C.in_dtype([1, 0], dtype)}, {"reduce": "no"},
           f"log(1 + exp(-{g:g})) and p = exp(-{g:g})/(1 + exp(-{g:g})): subnormal values and gradients")


def sample(rng, options: dict) -> dict:
    """Valid random float64 inputs for self-verification: hard labels (some ignored) or
    soft targets, 2-D or 4-D x, at most 12 logits."""
    n_classes = 4 if options.get("class_weight") is not None else rng.choice((3, 4))
    shape = rng.choice(((3, n_classes), (1, n_classes, 3, 1), (2, n_classes, 1, 1)))
    xs = C.normal(rng, shape, 2.0, "float64")
    soft = options.get("soft_target_loss") == "kl-divergence" or rng.random() < 0.3
    if soft:
        return {"x": xs, "t": C.probabilities(rng, shape, 1, "float64")}
    ignore = int(options.get("ignore_label", -1))
    values = list(range(n_classes)) + [ignore]
    if ignore in range(n_classes):
        values = list(range(n_classes))  # ignore_label is a class: drawn as such
    return {"x": xs, "t": C.choice(rng, (shape[0], *shape[2:]), values).astype(np.int64)}
