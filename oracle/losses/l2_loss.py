"""mxnet.gluon.loss.L2Loss -- "Calculates the mean squared error between label and pred."

Documented formula (MXNet 1.9.1 docstring)::

    L = 1/2 * sum_i |label_i - pred_i|^2

with the shared Loss conventions (:mod:`oracle.conventions`): the elementwise term is
multiplied by ``sample_weight`` and ``weight`` (default **1.0** for this loss, unlike the
others) and "Dimensions other than batch_axis are averaged out", so for batch element b

    out[b] = weight/2 * mean_{i in b} sample_weight_i * (label_i - pred_i)^2

Gradient: d out[b] / d pred_i = weight * sample_weight_i * (pred_i - label_i) / M.
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
    id="mxnet.gluon.loss.L2Loss",
    summary="Mean squared error between label and pred, halved.",
    formula="out[b] = weight/2 * mean_{i in b} sample_weight_i * (label_i - pred_i)^2",
    options=(weight_option(1.0), batch_axis_option()),
    inputs=(
        InputSpec("pred", "prediction tensor with arbitrary shape", differentiable=True),
        InputSpec("label", "target tensor with the same size as pred"),
        sample_weight_input(),
    ),
    output_shape="(batch_size,)",
    readings=(
        Reading(
            "sum or mean",
            "L = 1/2 sum_i |label_i - pred_i|^2 ... Dimensions other than batch_axis are averaged out.",
            "The sum in the formula is over the elements that the output description then "
            "averages: out[b] is the mean over the non-batch axes, as for every Loss.",
        ),
    ),
)


def forward(x: dict, options: dict) -> Forward:
    pred = x["pred"]
    label = reshape_like(SPEC.id, "label", x["label"], pred)
    diff = (pred - label).astype(object)
    elem = (diff * diff).astype(object)
    red = reduce_batch_mean(
        SPEC.id, elem, elem, options, x.get("sample_weight"), extra_factor=A.asmp(0.5)[()]
    )

    def vjp(ct: np.ndarray) -> dict[str, Gradient]:
        return {"pred": Gradient.exact((red.seed(ct) * 2 * diff).astype(object))}

    return Forward(red.value, red.scale, red.n_terms, vjp)


def cases() -> Iterator[C.Case]:
    for dtype in C.DTYPES:
        for opts in C.option_variants(SPEC):
            name = f"{C.variant_name(opts)}-{dtype}"
            rng = C.rng_for(SPEC.id, name)
            shape = (3, 4) if opts.get("batch_axis", 0) == 0 else (4, 3)
            yield C.Case(
                name,
                {"pred": C.normal(rng, shape, 1.0, dtype), "label": C.normal(rng, shape, 1.0, dtype)},
                dtype,
                opts,
            )
        rng = C.rng_for(SPEC.id, f"shapes-{dtype}")
        yield C.Case(f"minimum-{dtype}", {"pred": C.normal(rng, (1,), 1, dtype), "label": C.normal(rng, (1,), 1, dtype)}, dtype, tags=("shape",))
        yield C.Case(
            f"rank3-label-reshaped-{dtype}",
            {"pred": C.normal(rng, (2, 3, 4), 1, dtype), "label": C.normal(rng, (2, 12), 1, dtype)},
            dtype,
            tags=("shape",),
            note="label has another shape with the same number of elements",
        )
        for sw_shape, what in (((3, 1), "per-sample"), ((3, 4), "full")):
            yield C.Case(
                f"sample_weight-{what}-{dtype}",
                {
                    "pred": C.normal(rng, (3, 4), 1, dtype),
                    "label": C.normal(rng, (3, 4), 1, dtype),
                    "sample_weight": C.uniform(rng, sw_shape, 0, 2, dtype),
                },
                dtype,
                tags=("shape",),
            )
        big = float(np.finfo(dtype).max) / 2
        yield C.Case(
            f"extreme-{dtype}",
            {"pred": C.in_dtype([[big, -big], [big, 1.0]], dtype), "label": C.in_dtype([[-big, big], [0.0, 1.0]], dtype)},
            dtype,
            tags=("extreme",),
            note="the squared difference overflows the dtype; the exact value is finite",
        )
        tiny = float(np.finfo(dtype).eps) * 4
        yield C.Case(
            f"tiny-{dtype}",
            {"pred": C.in_dtype([[1.0 + tiny, 1.0], [0.5, 0.25]], dtype), "label": C.in_dtype([[1.0, 1.0], [0.5, 0.25 + tiny / 8]], dtype)},
            dtype,
            tags=("tiny",),
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
            {"pred": C.normal(rng, (2, 3), 1, dtype), "label": C.normal(rng, (2, 3), 1, dtype), "sample_weight": C.uniform(rng, (3, 1), 0, 1, dtype)},
            dtype,
            tags=("invalid",),
            invalid="sample_weight must be broadcastable to the shape of pred",
        )


def sample(rng, options: dict) -> dict:
    """Valid random float64 inputs for self-verification (see tests/)."""
    shape = (2, 3) if options.get("batch_axis", 0) == 0 else (3, 2)
    return {
        "pred": C.normal(rng, shape, 1.0, "float64"),
        "label": C.normal(rng, shape, 1.0, "float64"),
        "sample_weight": C.uniform(rng, (shape[0], 1) if options.get("batch_axis", 0) == 0 else (1, shape[1]), 0.1, 2.0, "float64"),
    }
