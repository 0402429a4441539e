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
from mpmath import mpf

from .. import arrays as A
from .. import cases as C
from ..catalog import InputSpec, LossSpec, OptionSpec, Reading
from ..conventions import (
    batch_axis_option,
    reduce_batch_mean,
    require_values,
    reshape_like,
    sample_weight_input,
    weight_option,
)
from ..result import Forward, Gradient

SPEC = LossSpec(
    id="mxnet.gluon.loss.SquaredHingeLoss",
    summary="Squared hinge (soft-margin) loss max(0, margin - pred * label)^2 for labels -1 or 1.",
    formula="out[b] = weight * mean_{i in b} sample_weight_i * max(0, margin - pred_i * label_i)^2",
    options=(
        OptionSpec(
            "margin",
            1.0,
            "float",
            "The margin in hinge loss. Defaults to 1.0",
            fixture_values=(0.5, 2.0),
        ),
        weight_option(None),
        batch_axis_option(),
    ),
    inputs=(
        InputSpec("pred", "prediction tensor with arbitrary shape", differentiable=True),
        InputSpec("label", "truth tensor with values -1 or 1, with the same size as pred"),
        sample_weight_input(),
    ),
    output_shape="(batch_size,)",
    readings=(
        Reading(
            "sum or mean",
            "L = sum_i max(0, margin - pred_i label_i)^2 ... Dimenions other than batch_axis are averaged out.",
            "The sum in the formula is over the elements that the output description then "
            "averages: out[b] is the mean over the non-batch axes, as for every Loss.",
        ),
        Reading(
            "what is squared",
            "max(0, margin - pred_i * label_i)^2",
            "The square applies to the clipped term, (max(0, h))^2, not max(0, h^2) (which "
            "would never clip); the code computes square(relu(h)).",
        ),
        Reading(
            "label values",
            "label is the target tensor containing values -1 or 1 ... truth tensor with values -1 or 1",
            "Any other label value (0, 0.5, 2, ...) is outside the documented domain and an "
            "InputError; the code accepts any number and applies the formula to it.",
        ),
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
    pred = x["pred"]
    label = reshape_like(SPEC.id, "label", x["label"], pred)
    require_values(SPEC.id, "label", label, {-1, 1}, "only the values -1 or 1")
    margin = mpf(options["margin"])
    hp = A.relu((margin - pred * label).astype(object))
    elem = (hp * hp).astype(object)
    red = reduce_batch_mean(SPEC.id, elem, elem, options, x.get("sample_weight"))

    def vjp(ct: np.ndarray) -> dict[str, Gradient]:
        s = red.seed(ct)
        return {"pred": Gradient.exact((-2 * label * hp * s).astype(object))}

    return Forward(red.value, red.scale, red.n_terms, vjp)


def _labels(rng, shape, dtype):
    return C.in_dtype(C.choice(rng, shape, (-1.0, 1.0)), dtype)


def _pair(rng, shape, dtype, sigma=1.5):
    return {"pred": C.normal(rng, shape, sigma, dtype), "label": _labels(rng, shape, dtype)}


def cases() -> Iterator[C.Case]:
    for dtype in C.DTYPES:
        for opts in C.option_variants(SPEC):
            name = f"{C.variant_name(opts)}-{dtype}"
            rng = C.rng_for(SPEC.id, name)
            shape = (3, 4) if opts.get("batch_axis", 0) == 0 else (4, 3)
            yield C.Case(name, _pair(rng, shape, dtype), dtype, opts)
        rng = C.rng_for(SPEC.id, f"shapes-{dtype}")
        yield C.Case(f"margin-negative-{dtype}", _pair(rng, (3, 4), dtype), dtype, {"margin": -0.5})
        yield C.Case(f"minimum-{dtype}", _pair(rng, (1,), dtype), dtype, tags=("shape",))
        yield C.Case(
            f"rank3-label-reshaped-{dtype}",
            {"pred": C.normal(rng, (2, 3, 4), 1.5, dtype), "label": _labels(rng, (2, 12), dtype)},
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
        for sw_shape, what in (((3, 1), "per-sample"), ((3, 4), "full")):
            yield C.Case(
                f"sample_weight-{what}-{dtype}",
                {**_pair(rng, (3, 4), dtype), "sample_weight": C.uniform(rng, sw_shape, 0, 2, dtype)},
                dtype,
                tags=("shape",),
            )
        yield C.Case(
            f"sample_weight-batch_axis=1-{dtype}",
            {**_pair(rng, (4, 3), dtype), "sample_weight": C.uniform(rng, (1, 3), -1, 2, dtype)},
            dtype,
            {"batch_axis": 1, "weight": 0.5},
            tags=("shape",),
        )
        yield C.Case(
            f"labels-all-minus-one-{dtype}",
            {"pred": C.normal(rng, (2, 4), 1.5, dtype), "label": C.in_dtype(-np.ones((2, 4)), dtype)},
            dtype,
            tags=("label",),
        )
        yield C.Case(
            f"labels-all-one-{dtype}",
            {"pred": C.normal(rng, (2, 4), 1.5, dtype), "label": C.in_dtype(np.ones((2, 4)), dtype)},
            dtype,
            {"margin": 0.5},
            tags=("label",),
        )
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
            m = float(opts.get("margin", 1.0))
            pred, lab = _pair(rng, (3, 4), dtype).values()
            pred[0, :] = m * lab[0, :]
            pred[2, 1] = m * lab[2, 1]
            yield C.Case(
                f"at-margin-{C.variant_name(opts)}-{dtype}",
                {"pred": pred, "label": lab},
                dtype,
                opts,
                tags=("boundary",),
                note="pred * label == margin in row 0 and at [2, 1]: differentiable there "
                "(gradient 0 from both sides), not a kink",
            )
        yield C.Case(
            f"margin-zero-pred-zero-{dtype}",
            {"pred": C.in_dtype([[0.0, 0.0], [-0.0, 1.5]], dtype), "label": C.in_dtype([[1, -1], [1, -1]], dtype)},
            dtype,
            {"margin": 0.0},
            tags=("boundary",),
            note="margin 0 and pred exactly 0 (signed zeros)",
        )
        rng = C.rng_for(SPEC.id, f"boundary-{dtype}")
        lab = _labels(rng, (2, 3), dtype)
        yield C.Case(
            f"all-beyond-margin-{dtype}",
            {"pred": C.in_dtype(lab * C.uniform(rng, (2, 3), 1.25, 4.0, "float64"), dtype), "label": lab},
            dtype,
            tags=("boundary",),
            note="every pred * label > margin: zero loss and zero gradient",
        )
        yield C.Case(
            f"zero-pred-{dtype}",
            {"pred": C.in_dtype(np.zeros((2, 3)), dtype), "label": _labels(rng, (2, 3), dtype)},
            dtype,
            tags=("boundary",),
            note="pred == 0: every term equals margin^2",
        )
        for bad in (0.0, 0.5, 2.0):
            lab = _labels(rng, (2, 3), dtype)
            lab[0, 1] = bad
            yield C.Case(
                f"invalid-label={bad}-{dtype}",
                {"pred": C.normal(rng, (2, 3), 1, dtype), "label": lab},
                dtype,
                tags=("invalid",),
                invalid="label values must be -1 or 1",
            )
        yield C.Case(
            f"invalid-size-{dtype}",
            {"pred": C.normal(rng, (2, 3), 1, dtype), "label": _labels(rng, (3, 3), dtype)},
            dtype,
            tags=("invalid",),
            invalid="label must have the same number of elements as pred",
        )
        yield C.Case(
            f"invalid-sample_weight-{dtype}",
            {**_pair(rng, (2, 3), dtype), "sample_weight": C.uniform(rng, (2, 2), 0, 1, dtype)},
            dtype,
            tags=("invalid",),
            invalid="sample_weight must be broadcastable to the shape of pred",
        )


def sample(rng, options: dict) -> dict:
    """Valid random float64 inputs for self-verification (see tests/); pred * label stays
    away from the margin, where the second derivative jumps."""
    margin = float(options.get("margin", 1.0))
    shape = (2, 3) if options.get("batch_axis", 0) == 0 else (3, 2)
    label = C.choice(rng, shape, (-1.0, 1.0)).astype(np.float64)
    side = np.asarray([rng.choice((-1.0, 1.0)) * rng.uniform(0.05, 2.0) for _ in range(label.size)]).reshape(shape)
    return {
        "pred": (margin + side) * label,
        "label": label,
        "sample_weight": C.uniform(rng, (shape[0], 1) if options.get("batch_axis", 0) == 0 else (1, shape[1]), 0.1, 2.0, "float64"),
    }
