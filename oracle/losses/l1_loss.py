"""mxnet.gluon.loss.L1Loss -- "Calculates the mean absolute error between label and pred."

Documented formula (MXNet 1.9.1 docstring)::

    L = sum_i |label_i - pred_i|

with the shared Loss conventions (:mod:`oracle.conventions`): the elementwise term is
multiplied by ``sample_weight`` and ``weight`` (default None: no weighting) and
"Dimensions other than batch_axis are averaged out", so for batch element b

    out[b] = weight * mean_{i in b} sample_weight_i * |label_i - pred_i|

Gradient: d out[b] / d pred_i = weight * sample_weight_i * sign(pred_i - label_i) / M.
At pred_i == label_i (the kink of |.|) the one-sided derivatives are -1 and +1 times that
factor; the oracle returns the interval between them.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from .. import arrays as A
from .. import cases as C
from .. import conventions as G
from ..catalog import InputSpec, LossSpec, Reading
from ..result import Forward, Gradient

SPEC = LossSpec(
    id="mxnet.gluon.loss.L1Loss",
    summary="Mean absolute error between label and pred.",
    formula="out[b] = weight * mean_{i in b} sample_weight_i * |label_i - pred_i|",
    options=(G.weight_option(None), G.batch_axis_option()),
    inputs=(G.pred_input(), InputSpec("label", "target tensor with the same size as pred"), G.sample_weight_input()),
    output_shape="(batch_size,)",
    readings=(
        G.averaged_out_reading(
            "Calculates the mean absolute error ... L = sum_i |label_i - pred_i| ... "
            "Dimenions other than batch_axis are averaged out."
        ),
        Reading(
            "derivative at label == pred",
            "L = sum_i |label_i - pred_i|",
            "|x| has no derivative at 0; where pred_i == label_i the VJP is the interval "
            "between the one-sided derivatives (-1 and +1 times the chained factor); any "
            "value in it is accepted.",
        ),
    ),
)


def forward(x: dict, options: dict) -> Forward:
    pred, label = G.pred_and_label(SPEC.id, x)
    diff = (pred - label).astype(object)  # pred - label: the sign of d out / d pred

    def vjp(s: np.ndarray) -> Gradient:  # s: the cotangent pulled back to each element
        pos = (diff > 0).astype(bool)
        neg = (diff < 0).astype(bool)
        exact = np.where(pos, s, np.where(neg, -s, 0)).astype(object)
        kink = ~(pos | neg)
        if not kink.any():
            return Gradient.exact(exact)
        left = np.where(kink, -s, exact).astype(object)
        right = np.where(kink, s, exact).astype(object)
        return Gradient.between(left, right)

    return G.batch_mean_forward(SPEC.id, x, options, A.fabs(diff), vjp)


#: pred and label both normal (sigma 1)
GEN = C.ElementwiseCases(SPEC)


def cases() -> Iterator[C.Case]:
    for dtype in C.DTYPES:
        yield from GEN.variants(dtype)
        rng = C.rng_for(SPEC.id, f"shapes-{dtype}")
        yield C.Case(f"weight-negative-{dtype}", GEN.inputs(rng, (2, 3), dtype), dtype, {"weight": -1.5})
        yield from GEN.shapes(rng, dtype)
        yield C.Case(
            f"batch_axis=-1-{dtype}",
            GEN.inputs(rng, (3, 2), dtype),
            dtype,
            {"batch_axis": -1},
            tags=("shape",),
            note="a negative batch_axis counts from the last axis",
        )
        yield from GEN.sample_weights(rng, dtype, batch_axis_1={"weight": 0.5})
        fmax = float(np.finfo(dtype).max)
        big = fmax / 2
        yield C.Case(
            f"extreme-{dtype}",
            {"pred": C.in_dtype([[big, -big], [big, 1.0]], dtype), "label": C.in_dtype([[-big, big], [0.0, 0.5]], dtype)},
            dtype,
            tags=("extreme",),
            note="each |label - pred| of row 0 is the dtype's max; their naive sum overflows",
        )
        yield C.Case(
            f"extreme-difference-{dtype}",
            {"pred": C.in_dtype([[fmax * 0.75, 0.0]], dtype), "label": C.in_dtype([[-fmax * 0.75, 0.25]], dtype)},
            dtype,
            tags=("extreme",),
            note="label - pred overflows the dtype; the mean (0.75 * max) does not",
        )
        eps = float(np.finfo(dtype).eps)
        sub = float(np.finfo(dtype).smallest_subnormal)
        yield C.Case(
            f"tiny-{dtype}",
            {"pred": C.in_dtype([[1.0 + 4 * eps, 1.0], [0.5, sub]], dtype), "label": C.in_dtype([[1.0, 1.0 - eps / 2], [0.5 + eps / 2, 0.0]], dtype)},
            dtype,
            tags=("tiny",),
            note="differences of a few ulps and a subnormal; the mean of row 1 is below the dtype's range",
        )
        rng = C.rng_for(SPEC.id, f"kink-{dtype}")
        p = C.normal(rng, (3, 4), 1, dtype)
        lab = C.normal(rng, (3, 4), 1, dtype)
        lab[0, :] = p[0, :]
        lab[1, 1] = p[1, 1]
        lab[2, 3] = p[2, 3]
        yield C.Case(
            f"kink-{dtype}",
            {"pred": p, "label": lab},
            dtype,
            tags=("kink",),
            note="pred == label in row 0 and two more elements",
        )
        yield C.Case(
            f"kink-sample_weight-{dtype}",
            {"pred": p, "label": lab, "sample_weight": C.in_dtype([[2.0], [0.0], [-0.5]], dtype)},
            dtype,
            {"weight": 0.5},
            tags=("kink", "shape"),
            note="a zero sample weight collapses the interval; a negative one flips it",
        )
        yield C.Case(
            f"zeros-{dtype}",
            {"pred": C.in_dtype([[0.0, 0.0], [-0.0, 0.0]], dtype), "label": C.in_dtype([[0.0, -0.0], [0.0, 0.0]], dtype)},
            dtype,
            tags=("kink", "boundary"),
            note="pred == label == 0 (with signed zeros): zero loss, every element at the kink",
        )
        yield C.Case(
            f"zero-label-{dtype}",
            {"pred": C.normal(rng, (2, 3), 1, dtype), "label": C.in_dtype(np.zeros((2, 3)), dtype)},
            dtype,
            tags=("boundary",),
        )
        yield from GEN.invalid_shapes(rng, dtype)
        yield C.Case(
            f"invalid-batch_axis-{dtype}",
            GEN.inputs(rng, (2, 3), dtype),
            dtype,
            {"batch_axis": 2},
            tags=("invalid",),
            invalid="batch_axis must be an axis of pred",
        )
    yield from C.subnormal_cases(SPEC.id, _subnormal)
    yield from _long()
    yield from C.limit_cases(
        SPEC,
        lambda dtype: {"pred": C.in_dtype([[np.inf, -np.inf], [1.0, 0.5]], dtype), "label": C.in_dtype([[1.0, -1.0], [np.inf, 0.25]], dtype)},
        "|label - pred| with an infinite pred or label is +inf; its derivative is the sign, the limit from finite inputs",
    )


def _long() -> Iterator[C.Case]:
    """Long reductions: |pred - 0| averaged over 16384 elements, where a running sum in the
    dtype stagnates (:func:`oracle.cases.stagnating`); then each option value crossed with a
    4096-long float16 reduction."""
    for dtype in ("float16", "float32"):
        pred = C.stagnating(dtype, C.LONG)
        yield C.Case(f"long-{dtype}", {"pred": pred, "label": C.in_dtype(np.zeros(pred.shape), dtype)}, dtype,
                     tags=("long",), note="a sum accumulated one term at a time in the dtype stagnates")
    for opts in C.long_variants(SPEC):
        shape = C.long_shape(C.LONG_CROSSED, opts)
        yield C.Case(f"long-{C.variant_name(opts)}-float16",
                     {"pred": C.in_dtype(np.ones(shape), "float16"), "label": C.in_dtype(np.zeros(shape), "float16")},
                     "float16", opts, tags=("long",))


def _subnormal(dtype: str):
    sub = C.subnormal(dtype)
    yield ("differences", {"pred": C.in_dtype([[4 * sub, -2 * sub], [sub, 0.0]], dtype),
                           "label": C.in_dtype([[0.0, 0.0], [0.0, 0.0]], dtype)}, {},
           "means of subnormal |label - pred|: subnormal values")


def sample(rng, options: dict) -> dict:
    """Valid random float64 inputs for self-verification (see tests/); the differences
    are kept away from 0, the kink."""
    shape = C.sample_shape(options)
    pred = C.normal(rng, shape, 1.0, "float64")
    gap = np.asarray([rng.choice((-1.0, 1.0)) * rng.uniform(0.05, 2.0) for _ in range(pred.size)]).reshape(shape)
    return {"pred": pred, "label": pred + gap, "sample_weight": C.per_sample_weight(rng, shape, options)}
