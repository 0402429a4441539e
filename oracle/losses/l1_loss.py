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
from ..catalog import InputSpec, LossSpec, Reading
from ..conventions import (
    batch_axis_option,
    reduce_batch_mean,
    reshape_like,
    sample_weight_input,
    weight_option,
)
from ..result import Forward, Gradient

SPEC = LossSpec(
    id="mxnet.gluon.loss.L1Loss",
    summary="Mean absolute error between label and pred.",
    formula="out[b] = weight * mean_{i in b} sample_weight_i * |label_i - pred_i|",
    options=(weight_option(None), batch_axis_option()),
    inputs=(
        InputSpec("pred", "prediction tensor with arbitrary shape", differentiable=True),
        InputSpec("label", "target tensor with the same size as pred"),
        sample_weight_input(),
    ),
    output_shape="(batch_size,)",
    readings=(
        Reading(
            "sum or mean",
            "Calculates the mean absolute error ... L = sum_i |label_i - pred_i| ... "
            "Dimenions other than batch_axis are averaged out.",
            "The sum in the formula is over the elements that the output description then "
            "averages: out[b] is the mean over the non-batch axes, as for every Loss.",
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
    pred = x["pred"]
    label = reshape_like(SPEC.id, "label", x["label"], pred)
    diff = (pred - label).astype(object)  # pred - label: the sign of d out / d pred
    elem = A.fabs(diff)
    red = reduce_batch_mean(SPEC.id, elem, elem, options, x.get("sample_weight"))

    def vjp(ct: np.ndarray) -> dict[str, Gradient]:
        s = red.seed(ct)
        pos = (diff > 0).astype(bool)
        neg = (diff < 0).astype(bool)
        exact = np.where(pos, s, np.where(neg, -s, 0)).astype(object)
        kink = ~(pos | neg)
        if not kink.any():
            return {"pred": Gradient.exact(exact)}
        left = np.where(kink, -s, exact).astype(object)
        right = np.where(kink, s, exact).astype(object)
        return {"pred": Gradient.between(left, right)}

    return Forward(red.value, red.scale, red.n_terms, vjp)


def _pair(rng, shape, dtype, sigma=1.0):
    return {"pred": C.normal(rng, shape, sigma, dtype), "label": C.normal(rng, shape, sigma, dtype)}


def cases() -> Iterator[C.Case]:
    for dtype in C.DTYPES:
        for opts in C.option_variants(SPEC):
            name = f"{C.variant_name(opts)}-{dtype}"
            rng = C.rng_for(SPEC.id, name)
            shape = (3, 4) if opts.get("batch_axis", 0) == 0 else (4, 3)
            yield C.Case(name, _pair(rng, shape, dtype), dtype, opts)
        rng = C.rng_for(SPEC.id, f"shapes-{dtype}")
        yield C.Case(f"weight-negative-{dtype}", _pair(rng, (2, 3), dtype), dtype, {"weight": -1.5})
        yield C.Case(f"minimum-{dtype}", _pair(rng, (1,), dtype), dtype, tags=("shape",))
        yield C.Case(
            f"rank3-label-reshaped-{dtype}",
            {"pred": C.normal(rng, (2, 3, 4), 1, dtype), "label": C.normal(rng, (2, 12), 1, dtype)},
            dtype,
            tags=("shape",),
            note="label has another shape with the same number of elements",
        )
        yield C.Case(
            f"rank3-batch_axis=2-{dtype}",
            _pair(rng, (2, 3, 4), dtype),
            dtype,
            {"batch_axis": 2},
            tags=("shape",),
        )
        yield C.Case(
            f"batch_axis=-1-{dtype}",
            _pair(rng, (3, 2), dtype),
            dtype,
            {"batch_axis": -1},
            tags=("shape",),
            note="a negative batch_axis counts from the last axis",
        )
        for sw_shape, what in (((3, 1), "per-sample"), ((3, 4), "full")):
            yield C.Case(
                f"sample_weight-{what}-{dtype}",
                {**_pair(rng, (3, 4), dtype), "sample_weight": C.uniform(rng, sw_shape, 0, 2, dtype)},
                dtype,
                tags=("shape",),
            )
        yield C.Case(
            f"sample_weight-batch_axis=1-{dtype}",
            {**_pair(rng, (4, 3), dtype), "sample_weight": C.uniform(rng, (1, 3), 0, 2, dtype)},
            dtype,
            {"batch_axis": 1, "weight": 0.5},
            tags=("shape",),
        )
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
        yield C.Case(
            f"invalid-size-{dtype}",
            {"pred": C.normal(rng, (2, 3), 1, dtype), "label": C.normal(rng, (2, 2), 1, dtype)},
            dtype,
            tags=("invalid",),
            invalid="label must have the same number of elements as pred",
        )
        yield C.Case(
            f"invalid-sample_weight-{dtype}",
            {**_pair(rng, (2, 3), dtype), "sample_weight": C.uniform(rng, (3, 1), 0, 1, dtype)},
            dtype,
            tags=("invalid",),
            invalid="sample_weight must be broadcastable to the shape of pred",
        )
        yield C.Case(
            f"invalid-batch_axis-{dtype}",
            _pair(rng, (2, 3), dtype),
            dtype,
            {"batch_axis": 2},
            tags=("invalid",),
            invalid="batch_axis must be an axis of pred",
        )


def sample(rng, options: dict) -> dict:
    """Valid random float64 inputs for self-verification (see tests/); the differences
    are kept away from 0, the kink."""
    shape = (2, 3) if options.get("batch_axis", 0) == 0 else (3, 2)
    pred = C.normal(rng, shape, 1.0, "float64")
    gap = np.asarray([rng.choice((-1.0, 1.0)) * rng.uniform(0.05, 2.0) for _ in range(pred.size)]).reshape(shape)
    return {
        "pred": pred,
        "label": pred + gap,
        "sample_weight": C.uniform(rng, (shape[0], 1) if options.get("batch_axis", 0) == 0 else (1, shape[1]), 0.1, 2.0, "float64"),
    }
