"""mxnet.gluon.loss.TripletLoss -- "Calculates triplet loss given three input tensors and a
positive margin."

Documented formula (MXNet 1.9.1 docstring)::

    L = sum_i max(||pos_i - pred||_2^2 - ||neg_i - pred||_2^2 + margin, 0)

"`positive`, `negative`, and 'pred' can have arbitrary shape as long as they have the same
number of elements" (positive and negative are read in row-major order into pred's shape),
and the output is a "loss tensor with shape (batch_size,)". The squared norms are sums
over the non-batch elements of each sample -- nothing is "averaged out" -- so for batch
element b, with d_b = sum_{i in b} (positive_i - pred_i)^2 - (negative_i - pred_i)^2,

    out[b] = weight * sample_weight[b] * max(d_b + margin, 0)

The documented forward signature is ``forward(pred, positive, negative, sample_weight=None)``
(MXNet 1.9.1's ``hybrid_forward`` lacks ``sample_weight``; the documentation is the truth,
so the input is here and a framework without it fails its cases). The loss is per sample,
so, as for CosineEmbeddingLoss, sample_weight holds one weight per sample: it broadcasts to
pred's shape with size 1 on every non-batch axis (the documented per-sample example
"(64, 1)" for pred (64, 10)).

Gradient (where d_b + margin > 0; zero where it is < 0), with k_b = weight * sample_weight[b]:

    d out[b] / d pred_i     = 2 * k_b * (negative_i - positive_i)
    d out[b] / d positive_i = 2 * k_b * (positive_i - pred_i)
    d out[b] / d negative_i = 2 * k_b * (pred_i - negative_i)

At the kink d_b + margin == 0 each element's derivative is any value between 0 and the
expression above.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from .. import arrays as A
from .. import cases as C
from ..catalog import InputSpec, LossSpec, OptionSpec, Reading
from ..conventions import (
    batch_axis_option,
    normalize_axis,
    per_sample_weight,
    reshape_like,
    weight_factor,
    weight_option,
)
from ..real import real as mpf
from ..result import Forward, Gradient


def _check_margin(value: object) -> str | None:
    return None if value > 0 else "a positive real number (the docs: 'a positive margin')"  # type: ignore[operator]


SPEC = LossSpec(
    id="mxnet.gluon.loss.TripletLoss",
    summary="Triplet loss: squared distance to the positive minus squared distance to the "
    "negative plus a margin, clamped at zero, per batch element.",
    formula="out[b] = weight * sample_weight[b] * max(sum_{i in b} (positive_i - pred_i)^2 - (negative_i - pred_i)^2 + margin, 0)",
    options=(
        OptionSpec(
            "margin",
            1,
            "float",
            "Margin of separation between correct and incorrect pair.",
            check=_check_margin,
            domain="a finite real number > 0",
            fixture_values=(0.5,),
        ),
        weight_option(None),
        batch_axis_option(),
    ),
    inputs=(
        InputSpec("pred", "prediction tensor with arbitrary shape", differentiable=True),
        InputSpec(
            "positive",
            "positive example tensor with arbitrary shape. Must have the same size as pred.",
            differentiable=True,
        ),
        InputSpec(
            "negative",
            "negative example tensor with arbitrary shape. Must have the same size as pred.",
            differentiable=True,
        ),
        InputSpec(
            "sample_weight",
            "per-sample weighting tensor, broadcastable to the shape of pred with size 1 on "
            "every non-batch axis (e.g. (64, 1) for pred of shape (64, 10))",
            optional=True,
        ),
    ),
    output_shape="(batch_size,)",
    readings=(
        Reading(
            "sum or mean over the non-batch axes",
            "L = \\sum_i \\max(\\Vert {pos_i}_i - {pred} \\Vert_2^2 - \\Vert {neg_i}_i - {pred} "
            "\\Vert_2^2 + {margin}, 0) ... Outputs: loss: loss tensor with shape (batch_size,).",
            "The squared L2 norms are SUMS over the non-batch elements of each sample (the text "
            "never says 'averaged out' for this loss); the max is taken per sample, so "
            "out[b] = weight * max(sum_{i in b} (pos_i - pred_i)^2 - (neg_i - pred_i)^2 + margin, 0). "
            "The outer sum_i of the formula indexes the samples, each of which is one output element.",
        ),
        Reading(
            "margin domain",
            "Calculates triplet loss given three input tensors and a positive margin. ... "
            "margin : float -- Margin of separation between correct and incorrect pair.",
            "margin must be a finite real number > 0; zero or a negative margin is rejected "
            "(OptionError). The default is 1.",
        ),
        Reading(
            "sample_weight",
            "forward(pred, positive, negative, sample_weight=None) (the rendered API page); "
            "the Inputs list names only pred, positive and negative, and MXNet 1.9.1's "
            "hybrid_forward(self, F, pred, positive, negative) takes no sample_weight.",
            "sample_weight IS an input: the documented forward signature lists it, and the "
            "documentation is the truth even where a framework's code lacks it (an earlier "
            "reading dropped it because MXNet 1.9.1's code has none: that was the code, not "
            "the documentation). Its meaning is the shared Loss convention ('Per sample "
            "weighting', the per-sample example '(64, 1)' for pred (64, 10)) applied to a "
            "loss that is per sample, as for CosineEmbeddingLoss: it broadcasts to pred's "
            "shape with size 1 on every non-batch axis and multiplies each sample's loss, "
            "out[b] = weight * sample_weight[b] * max(d_b + margin, 0). A full pred-shaped "
            "tensor is an InputError (the max is per sample: there is no element to weigh). "
            "A framework whose forward takes no sample_weight fails these cases (a finding).",
        ),
        Reading(
            "reshaping",
            "`positive`, `negative`, and 'pred' can have arbitrary shape as long as they have "
            "the same number of elements.",
            "positive and negative are read in row-major order into pred's shape; pred's shape "
            "defines batch_axis and the samples. A size mismatch is an InputError.",
        ),
    ),
)


def forward(x: dict, options: dict) -> Forward:
    pred = x["pred"]
    pos = reshape_like(SPEC.id, "positive", x["positive"], pred)
    neg = reshape_like(SPEC.id, "negative", x["negative"], pred)
    axis = normalize_axis(SPEC.id, "batch_axis", int(options["batch_axis"]), max(pred.ndim, 1))
    if pred.ndim == 0:  # a scalar is a batch of one element
        pred, pos, neg = pred.reshape(1), pos.reshape(1), neg.reshape(1)
    other = tuple(a for a in range(pred.ndim) if a != axis)
    count = int(np.prod([pred.shape[a] for a in other], dtype=np.int64)) if other else 1
    per_sample = per_sample_weight(SPEC.id, x.get("sample_weight"), pred.shape, axis)
    w = weight_factor(options)
    if per_sample is not None:
        w = (w * per_sample).astype(object)
    margin = mpf(options["margin"])
    dp = (pos - pred).astype(object)
    dn = (neg - pred).astype(object)
    sp = (dp * dp).astype(object)
    sn = (dn * dn).astype(object)
    inner = (A.asum((sp - sn).astype(object), axis=other) if other else (sp - sn)) + margin
    inner = np.asarray(inner, dtype=object)
    value = (w * A.relu(inner)).astype(object)
    terms = A.asum((sp + sn).astype(object), axis=other) if other else (sp + sn)
    scale = (A.fabs(np.asarray(w, dtype=object)) * (np.asarray(terms, dtype=object) + abs(margin))).astype(object)

    def expand(v: np.ndarray) -> np.ndarray:
        shape = [1] * pred.ndim
        shape[axis] = -1
        return v.reshape(shape)

    def vjp(ct: np.ndarray) -> dict[str, Gradient]:
        c = expand((ct.reshape(inner.shape) * w).astype(object))
        full = {
            "pred": (2 * c * (dn - dp)).astype(object),
            "positive": (2 * c * dp).astype(object),
            "negative": (-2 * c * dn).astype(object),
        }
        active = expand(np.asarray(inner > 0, dtype=bool))
        kink = expand(np.asarray(inner == 0, dtype=bool))
        zero = A.zeros(pred.shape)
        out = {}
        for name, g in full.items():
            g_active = np.where(active, g, zero).astype(object)
            g_kink = np.where(active | kink, g, zero).astype(object)
            shape = x[name].shape
            if kink.any():
                out[name] = Gradient.between(g_active.reshape(shape), g_kink.reshape(shape))
            else:
                out[name] = Gradient.exact(g_active.reshape(shape))
        return out

    return Forward(value, scale, 2 * count + 1, vjp)


def _triple(rng, shape, dtype, sigma=1.0):
    return {
        "pred": C.normal(rng, shape, sigma, dtype),
        "positive": C.normal(rng, shape, sigma, dtype),
        "negative": C.normal(rng, shape, sigma, dtype),
    }

#: why an option value has no case of a regime (fixtures/COVERAGE.md, oracle.coverage.gap_reason)
REGIME_GAPS = {("*", "long"): C.LONG_DEFAULTS_ONLY}


def cases() -> Iterator[C.Case]:
    for dtype in C.DTYPES:
        info = np.finfo(dtype)
        for opts in C.option_variants(SPEC):
            name = f"{C.variant_name(opts)}-{dtype}"
            rng = C.rng_for(SPEC.id, name)
            shape = (4, 3) if opts.get("batch_axis", 0) == 0 else (3, 4)
            # sigma 0.7: the inner sums straddle -margin, so some samples are clamped
            yield C.Case(name, _triple(rng, shape, dtype, 0.7), dtype, opts)
        rng = C.rng_for(SPEC.id, f"shapes-{dtype}")
        yield C.Case(
            f"weight=-2-{dtype}", _triple(rng, (3, 2), dtype), dtype, {"weight": -2.0}, tags=("regular",),
            note="a negative scalar weight",
        )
        yield C.Case(
            f"minimum-{dtype}", _triple(rng, (1,), dtype), dtype, tags=("shape",),
            note="a batch of one sample with one element",
        )
        yield C.Case(
            f"vector-{dtype}", _triple(rng, (5,), dtype), dtype, tags=("shape",),
            note="1-D pred: every element is its own sample (no non-batch axes to sum)",
        )
        yield C.Case(
            f"rank3-reshaped-{dtype}",
            {
                "pred": C.normal(rng, (2, 3, 2), 1, dtype),
                "positive": C.normal(rng, (2, 6), 1, dtype),
                "negative": C.normal(rng, (12,), 1, dtype),
            },
            dtype,
            {"margin": 2.0},
            tags=("shape",),
            note="positive and negative have other shapes with the same number of elements",
        )
        yield C.Case(
            f"rank3-batch_axis=2-{dtype}", _triple(rng, (2, 2, 3), dtype), dtype, {"batch_axis": 2},
            tags=("shape",),
        )
        yield C.Case(
            f"batch_axis=-1-{dtype}", _triple(rng, (3, 2), dtype), dtype, {"batch_axis": -1},
            tags=("shape",), note="a negative batch_axis counts from the end",
        )
        # ---- sample_weight (documented in forward's signature; one weight per sample); its own
        # random stream, so the other cases keep their inputs
        srng = C.rng_for(SPEC.id, f"sample_weight-{dtype}")
        yield C.Case(
            f"sample_weight-per-sample-{dtype}",
            {**_triple(srng, (4, 3), dtype, 0.7), "sample_weight": C.uniform(srng, (4, 1), 0, 2, dtype)},
            dtype,
            tags=("shape",),
            note="sample_weight of shape (batch_size, 1): the documented per-sample weighting",
        )
        yield C.Case(
            f"sample_weight-batch_axis=1-{dtype}",
            {**_triple(srng, (3, 4), dtype, 0.7), "sample_weight": C.uniform(srng, (1, 4), 0, 2, dtype)},
            dtype,
            {"batch_axis": 1, "weight": 0.5},
            tags=("shape",),
        )
        yield C.Case(
            f"sample_weight-scalar-like-{dtype}",
            {**_triple(srng, (3, 2), dtype), "sample_weight": C.in_dtype([[1.75]], dtype)},
            dtype,
            tags=("shape",),
            note="a (1, 1) sample_weight broadcasts to every sample",
        )
        yield C.Case(
            f"sample_weight-vector-{dtype}",
            {**_triple(srng, (5,), dtype), "sample_weight": C.in_dtype([0.5, 2, 0, 1, -1], dtype)},
            dtype,
            tags=("shape",),
            note="1-D pred, one weight per element (each its own sample), a zero and a negative weight",
        )
        # ---- kinks: sum + margin == 0 exactly (small integers and halves are exact)
        yield C.Case(
            f"kink-{dtype}",
            {
                "pred": C.in_dtype([[0, 0], [1, -1], [0.5, 2]], dtype),
                "positive": C.in_dtype([[1, 0], [1, -1], [0.5, 2]], dtype),
                "negative": C.in_dtype([[1, 1], [2, -1], [0.5, 1]], dtype),
            },
            dtype,
            tags=("kink",),
            note="every sample has sum = -1 = -margin exactly: the relu edge",
        )
        yield C.Case(
            f"kink-mixed-margin=0.5-{dtype}",
            {
                "pred": C.in_dtype([[0, 0, 0], [0, 0, 0], [0, 0, 0]], dtype),
                "positive": C.in_dtype([[0.5, 0.5, 0], [0.25, 0, 0], [1, 0, 0]], dtype),
                "negative": C.in_dtype([[1, 0, 0], [0.5, 0.5, 0.5], [0, 0.5, 0]], dtype),
            },
            dtype,
            {"margin": 0.5, "weight": 1.5},
            tags=("kink",),
            note="sample 0 on the kink (0.5 - 1 + 0.5 = 0), sample 1 clamped, sample 2 active",
        )
        # ---- extreme: the squares overflow the dtype, their difference does not
        e = (info.maxexp // 2) + 4
        p = np.asarray(2.0**e, dtype=dtype)
        p_up = np.nextafter(p, np.asarray(np.inf, dtype=dtype))
        yield C.Case(
            f"extreme-{dtype}",
            {
                "pred": C.in_dtype([[0.0, 1.0], [-float(p), 0.5]], dtype),
                "positive": C.in_dtype([[float(p_up), 2.0], [0.0, 0.5]], dtype),
                "negative": C.in_dtype([[float(p), 1.5], [float(p - p_up), 0.5]], dtype),
            },
            dtype,
            tags=("extreme",),
            note="(positive - pred)^2 overflows the dtype; the exact loss is finite",
        )
        # ---- tiny: the loss is a tiny fraction of the margin (cancellation)
        k = info.nmant
        yield C.Case(
            f"tiny-loss-{dtype}",
            {
                "pred": C.in_dtype([[0, 0], [0, 0]], dtype),
                "positive": C.in_dtype([[1, 0], [1 - 2.0**-k, 0]], dtype),
                "negative": C.in_dtype([[1, 1 - 2.0**-k], [1, 1]], dtype),
            },
            dtype,
            tags=("tiny",),
            note="sum + margin = +-(2^(1-k) -+ 2^(-2k)): sample 0 a tiny loss, sample 1 clamped "
            "just below the kink; every digit cancels in a naive sum",
        )
        t = float(info.tiny) * 8
        yield C.Case(
            f"tiny-values-{dtype}",
            {
                "pred": C.in_dtype([[t, 0], [-t, 2 * t]], dtype),
                "positive": C.in_dtype([[0, 3 * t], [t, t]], dtype),
                "negative": C.in_dtype([[2 * t, -t], [0, 0]], dtype),
            },
            dtype,
            {"margin": 0.5},
            tags=("tiny",),
            note="the squared differences underflow the dtype",
        )
        # ---- boundary: all three equal (loss = margin, gradient exactly zero)
        same = C.normal(rng, (2, 3), 1, dtype)
        yield C.Case(
            f"boundary-equal-{dtype}",
            {"pred": same, "positive": same.copy(), "negative": same.copy()},
            dtype,
            tags=("boundary",),
            note="positive == negative == pred: the loss is the margin, every derivative is 0",
        )
        yield C.Case(
            f"boundary-zeros-{dtype}",
            {"pred": C.in_dtype(np.zeros((2, 2)), dtype), "positive": C.in_dtype(np.zeros((2, 2)), dtype),
             "negative": C.in_dtype([[3, 0], [0, 0]], dtype)},
            dtype,
            tags=("boundary",),
            note="exact zeros; sample 0 clamped far below the kink, sample 1 equals the margin",
        )
        # ---- invalid
        yield C.Case(
            f"invalid-positive-size-{dtype}",
            {"pred": C.normal(rng, (2, 3), 1, dtype), "positive": C.normal(rng, (2, 2), 1, dtype),
             "negative": C.normal(rng, (2, 3), 1, dtype)},
            dtype,
            tags=("invalid",),
            invalid="positive must have the same size as pred",
        )
        yield C.Case(
            f"invalid-negative-size-{dtype}",
            {"pred": C.normal(rng, (2, 3), 1, dtype), "positive": C.normal(rng, (3, 2), 1, dtype),
             "negative": C.normal(rng, (7,), 1, dtype)},
            dtype,
            tags=("invalid",),
            invalid="negative must have the same size as pred",
        )
        yield C.Case(
            f"invalid-sample_weight-full-{dtype}",
            {**_triple(srng, (3, 2), dtype), "sample_weight": C.uniform(srng, (3, 2), 0, 1, dtype)},
            dtype,
            tags=("invalid",),
            invalid="sample_weight must hold one weight per sample (size 1 on every non-batch "
            "axis): the loss is per sample",
        )
        yield C.Case(
            f"invalid-margin-{dtype}",
            _triple(rng, (2, 2), dtype),
            dtype,
            {"margin": -1.0},
            tags=("invalid",),
            invalid="the margin must be positive",
        )
        yield C.Case(
            f"invalid-batch_axis-{dtype}",
            _triple(rng, (2, 2), dtype),
            dtype,
            {"batch_axis": 2},
            tags=("invalid",),
            invalid="batch_axis must be an axis of pred",
        )
    yield from C.subnormal_cases(SPEC.id, _subnormal)
    yield from _long()


#: per dtype, s: positive is 2**-s between its ends, squares 2**-2s below half an ULP of 1
_LONG_S = {"float16": 6, "float32": 13, "bfloat16": 5}


def _long() -> Iterator[C.Case]:
    """The long regime, one sample of 16384 features: pred = negative = 0 and positive =
    (1, 2**-s, ..., 2**-s, 1), so the sum over the features of (pred - positive)**2 -
    (pred - negative)**2 adds the terms 1 at both ends and 2**-2s between (float16 2**-12,
    float32 2**-26, bfloat16 2**-10: a quarter ULP of 1 and 2 or less); a running sum in the
    dtype gives 2 + margin, the exact loss is 2 + 16382 * 2**-2s + margin (margin 1: no kink)."""
    for dtype in C.HALF_ULP_DTYPES:
        pos = C.half_ulp_row(1.0, 2.0 ** -_LONG_S[dtype])
        yield C.half_ulp_case({"pred": np.zeros(pos.shape), "positive": pos, "negative": np.zeros(pos.shape)}, dtype=dtype,
                              note=f"a sum over 16384 features whose {dtype} running sum stagnates")


def _subnormal(dtype: str):
    """A tiny positive margin s^2/4 (exact, and a normal float64 number) and the positive a
    tiny s away: s^2 + s^2/4 and 2 s^2 + s^2/4, subnormal and exact in float arithmetic too
    (so the relu is decided away from its kink). Not in float64: there the margin would
    itself be a float64 subnormal, and any cancellation of normal terms that leaves a
    subnormal puts a float evaluation exactly on the relu's kink (0), where the gradient
    check could not be passed by any float backend."""
    if dtype == "float64":
        return
    s = C.SUBNORMAL_ROOT[dtype]
    zero = C.in_dtype([[0.0, 0.0], [0.0, 0.0]], dtype)
    yield ("tiny-margin", {"pred": zero, "positive": C.in_dtype([[s, 0.0], [s, -s]], dtype), "negative": zero},
           {"margin": s * s / 4}, "a tiny positive margin s^2/4 and the positive a tiny s away: "
           "s^2 + s^2/4 and 2 s^2 + s^2/4, subnormal values")


def sample(rng, options: dict) -> dict:
    """Valid random float64 inputs for self-verification (away from the kink)."""
    shape = (2, 3) if options.get("batch_axis", 0) == 0 else (3, 2)
    margin = float(options.get("margin", 1))
    while True:
        x = {k: C.normal(rng, shape, 1.0, "float64") for k in ("pred", "positive", "negative")}
        axis = options.get("batch_axis", 0)
        d = ((x["positive"] - x["pred"]) ** 2 - (x["negative"] - x["pred"]) ** 2).sum(axis=1 - axis)
        if np.all(np.abs(d + margin) > 1e-3):
            x["sample_weight"] = C.uniform(rng, (2, 1) if axis == 0 else (1, 2), 0.1, 2.0, "float64")
            return x
