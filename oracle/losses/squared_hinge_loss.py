"""mxnet.gluon.loss.SquaredHingeLoss -- "Calculates the soft-margin loss function used in SVMs".

Documented formula (MXNet 1.9.1 docstring)::

    L = sum_i max(0, margin - pred_i * label_i)^2

"where pred is the classifier prediction and label is the target tensor containing
values -1 or 1", with the shared Loss conventions (:mod:`oracle.conventions`): with
h_i = margin - pred_i * label_i, for batch element b

    out[b] = weight * mean_{i in b} sample_weight_i * max(0, h_i)^2

Gradient: d out[b] / d pred_i = -2 * label_i * max(0, h_i) * weight * sample_weight_i / M.
It is continuous (0 from both sides at h_i == 0), so the loss is differentiable at the
margin and the VJP is exact everywhere.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from .. import arrays as A
from .. import cases as C
from .. import conventions as G
from ..catalog import LossSpec, Reading
from ..result import Forward, Gradient
from .hinge_loss import (
    INPUTS,
    LABEL_VALUES,
    MARGIN,
    hinge_cases,
    hinge_terms,
    on_the_margin,
    signed_zero_pred,
)
from .hinge_loss import sample as hinge_sample

SPEC = LossSpec(
    id="mxnet.gluon.loss.SquaredHingeLoss",
    summary="Squared hinge (soft-margin) loss max(0, margin - pred * label)^2 for labels -1 or 1.",
    formula="out[b] = weight * mean_{i in b} sample_weight_i * max(0, margin - pred_i * label_i)^2",
    options=(MARGIN, G.weight_option(None), G.batch_axis_option()),
    inputs=INPUTS,
    output_shape="(batch_size,)",
    readings=(
        G.averaged_out_reading(
            "L = sum_i max(0, margin - pred_i label_i)^2 ... Dimenions other than batch_axis are averaged out."
        ),
        Reading(
            "what is squared",
            "max(0, margin - pred_i * label_i)^2",
            "The square applies to the clipped term, (max(0, h))^2, not max(0, h^2) (which "
            "would never clip); the code computes square(relu(h)).",
        ),
        LABEL_VALUES,
        Reading(
            "label shape",
            "label and pred can have arbitrary shape as long as they have the same number of "
            "elements ... Must have the same size as pred.",
            "Same number of elements: label is read in row-major order into pred's shape.",
        ),
        Reading(
            "domain of margin",
            "margin : float -- The margin in hinge loss. Defaults to 1.0",
            "Any finite real margin is accepted, 0 and negative ones included.",
        ),
    ),
)


def forward(x: dict, options: dict) -> Forward:
    label, h = hinge_terms(SPEC.id, x, options)
    hp = A.relu(h)

    def vjp(s: np.ndarray) -> Gradient:  # s: the cotangent pulled back to each element
        return Gradient.exact((-2 * label * hp * s).astype(object))

    return G.batch_mean_forward(SPEC.id, x, options, (hp * hp).astype(object), vjp)


# ------------------------------------------------------------------------- cases
# HingeLoss's (hinge_loss.hinge_cases), with this loss's own extreme and tiny values and
# pred * label on the margin, where it is differentiable.

#: why an option value has no case of a regime (fixtures/COVERAGE.md, oracle.coverage.gap_reason)
REGIME_GAPS = {("*", "long"): C.LONG_DEFAULTS_ONLY}


def cases() -> Iterator[C.Case]:
    yield from hinge_cases(
        SPEC, _own_cases, zero_pred_note="pred == 0: every term equals margin^2",
        invalid_label_at=(0, 1), invalid_label_shape=(3, 3), invalid_sample_weight_shape=(2, 2),
    )
    yield from C.subnormal_cases(SPEC.id, _subnormal)
    yield from C.limit_cases(
        SPEC,
        lambda dtype: {"pred": C.in_dtype([[np.inf, -np.inf], [-np.inf, 0.5]], dtype), "label": C.in_dtype([[1.0, -1.0], [1.0, 1.0]], dtype)},
        "max(0, margin - pred * label)**2 at pred * label = +inf is 0 and at -inf is +inf (the limits of the documented formula)",
    )
    yield from _long()


#: per dtype, q: pred * label = 1 - 2**-q between the ends, a term 2**-2q below half an ULP of 4
_LONG_Q = {"float16": 5, "float32": 12, "bfloat16": 4}


def _long() -> Iterator[C.Case]:
    """The long regime, 16384 elements: pred = -label at both ends (term 4) and pred * label
    = 1 - 2**-q between (term 2**-2q: float16 2**-10, float32 2**-24, bfloat16 2**-8, each
    at most a quarter ULP of 4), labels +1 in the first half and -1 in the second."""
    label = C.halves()
    for dtype in C.HALF_ULP_DTYPES:
        small = 1.0 - 2.0 ** -_LONG_Q[dtype]
        yield C.half_ulp_case({"pred": C.half_ulp_row(-1.0, small) * label, "label": label}, dtype=dtype)


def _subnormal(dtype: str):
    s, sub = C.SUBNORMAL_ROOT[dtype], C.subnormal(dtype, 8)
    yield ("margin-zero", {"pred": C.in_dtype([[-s, s], [-sub, 1.0]], dtype), "label": C.in_dtype([[1, -1], [1, 1]], dtype)},
           {"margin": 0.0}, "margin 0: squares of tiny hinge terms are subnormal; row 1 a subnormal gradient")


def _own_cases(dtype: str) -> Iterator[C.Case]:
    """Squares that overflow or underflow; pred * label on the margin: no kink."""
    fmax = float(np.finfo(dtype).max)
    root = 1.5 * float(np.sqrt(fmax))
    yield C.Case(
        f"extreme-{dtype}",
        {
            "pred": C.in_dtype([[-root, 0.5, 2.0, 3.0], [root, 0.5, 0.25, -3.0]], dtype),
            "label": C.in_dtype([[1, 1, 1, 1], [-1, 1, 1, -1]], dtype),
        },
        dtype,
        tags=("extreme",),
        note="hinge terms of 1.5 sqrt(max): their squares overflow the dtype, the means do not",
    )
    yield C.Case(
        f"extreme-overflow-{dtype}",
        {"pred": C.in_dtype([[-fmax, 0.0], [0.5, -0.5]], dtype), "label": C.in_dtype([[1, 1], [1, 1]], dtype)},
        dtype,
        tags=("extreme",),
        note="row 0: the exact mean (about max^2/2) is beyond the dtype, so its correctly "
        "rounded value is inf; its gradient is finite",
    )
    eps = float(np.finfo(dtype).eps)
    yield C.Case(
        f"tiny-{dtype}",
        {"pred": C.in_dtype([[1.0 - eps / 2, -(1.0 - eps / 2)], [1.0 - eps, 3.0]], dtype), "label": C.in_dtype([[1, -1], [1, 1]], dtype)},
        dtype,
        tags=("tiny",),
        note="pred * label an ulp or two below the margin: squared terms of eps^2, below "
        "float16's range",
    )
    for opts in ({}, {"margin": 0.5}):
        rng = C.rng_for(SPEC.id, f"margin-{C.variant_name(opts)}-{dtype}")
        yield C.Case(
            f"at-margin-{C.variant_name(opts)}-{dtype}",
            on_the_margin(rng, dtype, float(opts.get("margin", 1.0))),
            dtype,
            opts,
            tags=("boundary",),
            note="pred * label == margin in row 0 and at [2, 1]: differentiable there "
            "(gradient 0 from both sides), not a kink",
        )
    yield C.Case(
        f"margin-zero-pred-zero-{dtype}",
        signed_zero_pred(dtype),
        dtype,
        {"margin": 0.0},
        tags=("boundary",),
        note="margin 0 and pred exactly 0 (signed zeros)",
    )



#: valid random float64 inputs for self-verification: HingeLoss's, with pred * label away
#: from the margin, where the second derivative jumps
sample = hinge_sample
