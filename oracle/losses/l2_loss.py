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
from .. import conventions as G
from ..catalog import InputSpec, LossSpec
from ..result import Forward, Gradient

SPEC = LossSpec(
    id="mxnet.gluon.loss.L2Loss",
    summary="Mean squared error between label and pred, halved.",
    formula="out[b] = weight/2 * mean_{i in b} sample_weight_i * (label_i - pred_i)^2",
    options=(G.weight_option(1.0), G.batch_axis_option()),
    inputs=(G.pred_input(), InputSpec("label", "target tensor with the same size as pred"), G.sample_weight_input()),
    output_shape="(batch_size,)",
    readings=(
        G.averaged_out_reading(
            "L = 1/2 sum_i |label_i - pred_i|^2 ... Dimensions other than batch_axis are averaged out."
        ),
    ),
)


def forward(x: dict, options: dict) -> Forward:
    pred, label = G.pred_and_label(SPEC.id, x)
    diff = (pred - label).astype(object)

    def vjp(s: np.ndarray) -> Gradient:  # s: the cotangent pulled back to each element
        return Gradient.exact((s * 2 * diff).astype(object))

    return G.batch_mean_forward(SPEC.id, x, options, (diff * diff).astype(object), vjp, extra_factor=A.asmp(0.5)[()])


#: pred and label both normal (sigma 1)
GEN = C.ElementwiseCases(SPEC)


def cases() -> Iterator[C.Case]:
    for dtype in C.DTYPES:
        yield from GEN.variants(dtype)
        rng = C.rng_for(SPEC.id, f"shapes-{dtype}")
        yield from GEN.shapes(rng, dtype, rank3_batch_axis=False)
        yield from GEN.sample_weights(rng, dtype)
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
        yield from GEN.invalid_shapes(rng, dtype)
    yield from C.subnormal_cases(SPEC.id, _subnormal)
    yield from _long()


def _long():
    """Long reductions of (pred - 0)**2 / 2 over 4096 elements where a running sum in the
    dtype stagnates (float32: a 1 then terms of 2**-24 relative, pred = 2**-12), each option
    value crossed with it in float16."""
    for dtype in ("float16", "float32"):
        row = [[1.0] * C.LONG_CROSSED] if dtype == "float16" else [[1.0] + [2.0**-12] * (C.LONG_CROSSED - 1)]
        pred = C.in_dtype(row, dtype)
        yield C.Case(f"long-{dtype}", {"pred": pred, "label": C.in_dtype(np.zeros(pred.shape), dtype)}, dtype,
                     tags=("long",), note="a sum accumulated one term at a time in the dtype stagnates")
    for opts in C.long_variants(SPEC):
        shape = C.long_shape(C.LONG_CROSSED, opts)
        yield C.Case(f"long-{C.variant_name(opts)}-float16",
                     {"pred": C.in_dtype(np.ones(shape), "float16"), "label": C.in_dtype(np.zeros(shape), "float16")},
                     "float16", opts, tags=("long",))


def _subnormal(dtype: str):
    s, sub = C.SUBNORMAL_ROOT[dtype], C.subnormal(dtype, 4)
    yield ("squares", {"pred": C.in_dtype([[s, -s], [sub, 0.0]], dtype), "label": C.in_dtype([[0.0, 0.0], [0.0, 0.0]], dtype)}, {},
           "row 0: the mean of s^2/2 is subnormal; row 1: a subnormal pred, a subnormal gradient")


def sample(rng, options: dict) -> dict:
    """Valid random float64 inputs for self-verification (see tests/)."""
    shape = C.sample_shape(options)
    return {
        "pred": C.normal(rng, shape, 1.0, "float64"),
        "label": C.normal(rng, shape, 1.0, "float64"),
        "sample_weight": C.per_sample_weight(rng, shape, options),
    }
