"""mxnet.gluon.loss.HingeLoss -- "Calculates the hinge loss function often used in SVMs".

Documented formula (MXNet 1.9.1 docstring)::

    L = sum_i max(0, margin - pred_i * label_i)

"where pred is the classifier prediction and label is the target tensor containing
values -1 or 1", with the shared Loss conventions (:mod:`oracle.conventions`): with
h_i = margin - pred_i * label_i, for batch element b

    out[b] = weight * mean_{i in b} sample_weight_i * max(0, h_i)

Gradient: d out[b] / d pred_i = -label_i * weight * sample_weight_i / M where h_i > 0 and
0 where h_i < 0. At h_i == 0 (pred_i * label_i == margin, the hinge) the one-sided
derivatives are those two values; the oracle returns the interval between them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

from .. import arrays as A
from .. import cases as C
from .. import conventions as G
from ..catalog import InputSpec, LossSpec, OptionSpec, Reading
from ..real import real as mpf
from ..result import Forward, Gradient

#: the option and the inputs of HingeLoss and SquaredHingeLoss, and the reading of the
#: label's domain they share
MARGIN = OptionSpec("margin", 1.0, "float", "The margin in hinge loss. Defaults to 1.0", fixture_values=(0.5, 2.0))
INPUTS = (
    G.pred_input(),
    InputSpec("label", "truth tensor with values -1 or 1, with the same size as pred"),
    G.sample_weight_input(),
)
LABEL_VALUES = Reading(
    "label values",
    "label is the target tensor containing values -1 or 1 ... truth tensor with values -1 or 1",
    "Any other label value (0, 0.5, 2, ...) is outside the documented domain and an "
    "InputError; the code accepts any number and applies the formula to it.",
)

SPEC = LossSpec(
    id="mxnet.gluon.loss.HingeLoss",
    summary="Hinge loss max(0, margin - pred * label) for labels -1 or 1.",
    formula="out[b] = weight * mean_{i in b} sample_weight_i * max(0, margin - pred_i * label_i)",
    options=(MARGIN, G.weight_option(None), G.batch_axis_option()),
    inputs=INPUTS,
    output_shape="(batch_size,)",
    readings=(
        G.averaged_out_reading(
            "L = sum_i max(0, margin - pred_i label_i) ... Dimenions other than batch_axis are averaged out."
        ),
        LABEL_VALUES,
        Reading(
            "label shape",
            "label and pred must have the same number of elements ... Must have the same size as pred.",
            "Same number of elements: label is read in row-major order into pred's shape "
            "(the code reshapes label like pred), as for the other Losses.",
        ),
        Reading(
            "domain of margin",
            "margin : float -- The margin in hinge loss. Defaults to 1.0",
            "Any finite real margin is accepted, 0 and negative ones included (the docs set "
            "no bound and the formula is defined for all of them).",
        ),
        Reading(
            "derivative at the hinge",
            "max(0, margin - pred_i * label_i)",
            "max(0, h) has no derivative at h == 0; there the VJP is the interval between the "
            "one-sided derivatives (-label_i times the chained factor, and 0).",
        ),
    ),
)


def hinge_terms(loss_id: str, x: dict, options: dict) -> tuple[np.ndarray, np.ndarray]:
    """label (read into pred's shape; -1 or 1 only) and h = margin - pred * label."""
    pred, label = G.pred_and_label(loss_id, x)
    G.require_values(loss_id, "label", label, {-1, 1}, "only the values -1 or 1")
    return label, (mpf(options["margin"]) - pred * label).astype(object)


def forward(x: dict, options: dict) -> Forward:
    label, h = hinge_terms(SPEC.id, x, options)

    def vjp(s: np.ndarray) -> Gradient:  # s: the cotangent pulled back to each element
        active = (-label * s).astype(object)
        zero = A.zeros(h.shape)
        pos = (h > 0).astype(bool)
        kink = (h == 0).astype(bool)
        exact = np.where(pos, active, zero).astype(object)
        if not kink.any():
            return Gradient.exact(exact)
        return Gradient.between(exact, np.where(kink, active, exact).astype(object))

    return G.batch_mean_forward(SPEC.id, x, options, A.relu(h), vjp)


# ------------------------------------------------------------------------- cases
# HingeLoss and SquaredHingeLoss share them (squared_hinge_loss imports what follows):
# the same inputs, each loss with its own extreme and tiny values and its own cases with
# pred * label on the margin (a kink here, differentiable there).

#: the spread of random pred values; labels are random signs
PRED_SIGMA = 1.5


def on_the_margin(rng, dtype: str, margin: float) -> dict:
    """Random (3, 4) inputs with pred * label == margin in row 0 and at [2, 1]."""
    pred, lab = C.normal(rng, (3, 4), PRED_SIGMA, dtype), C.signs(rng, (3, 4), dtype)
    pred[0, :] = margin * lab[0, :]
    pred[2, 1] = margin * lab[2, 1]
    return {"pred": pred, "label": lab}


def signed_zero_pred(dtype: str) -> dict:
    """pred exactly 0 with both signs (and one 1.5), for a margin of 0."""
    return {"pred": C.in_dtype([[0.0, 0.0], [-0.0, 1.5]], dtype), "label": C.in_dtype([[1, -1], [1, -1]], dtype)}


def hinge_cases(
    spec: LossSpec,
    own_cases: Callable[[str], Iterator[C.Case]],
    *,
    zero_pred_note: str,
    invalid_label_at: tuple[int, int],
    invalid_label_shape: tuple[int, int],
    invalid_sample_weight_shape: tuple[int, int],
) -> Iterator[C.Case]:
    """The cases of a loss of h = margin - pred * label (labels -1 or 1), with the loss's
    ``own_cases(dtype)`` (extreme and tiny values, pred * label on the margin) after those
    of shape and label."""
    gen = C.ElementwiseCases(spec, sigma=PRED_SIGMA, labels=C.signs)
    for dtype in C.DTYPES:
        yield from gen.variants(dtype)
        rng = C.rng_for(spec.id, f"shapes-{dtype}")
        yield C.Case(f"margin-negative-{dtype}", gen.inputs(rng, (3, 4), dtype), dtype, {"margin": -0.5})
        yield from gen.shapes(rng, dtype)
        yield from gen.sample_weights(rng, dtype, batch_axis_1={"weight": 0.5}, low=-1)
        yield C.Case(
            f"labels-all-minus-one-{dtype}",
            {"pred": C.normal(rng, (2, 4), PRED_SIGMA, dtype), "label": C.in_dtype(-np.ones((2, 4)), dtype)},
            dtype,
            tags=("label",),
        )
        yield C.Case(
            f"labels-all-one-{dtype}",
            {"pred": C.normal(rng, (2, 4), PRED_SIGMA, dtype), "label": C.in_dtype(np.ones((2, 4)), dtype)},
            dtype,
            {"margin": 0.5},
            tags=("label",),
        )
        yield from own_cases(dtype)
        rng = C.rng_for(spec.id, f"boundary-{dtype}")
        lab = C.signs(rng, (2, 3), dtype)
        yield C.Case(
            f"all-beyond-margin-{dtype}",
            {"pred": C.in_dtype(lab * C.uniform(rng, (2, 3), 1.25, 4.0, "float64"), dtype), "label": lab},
            dtype,
            tags=("boundary",),
            note="every pred * label > margin: zero loss and zero gradient",
        )
        yield C.Case(
            f"zero-pred-{dtype}",
            {"pred": C.in_dtype(np.zeros((2, 3)), dtype), "label": C.signs(rng, (2, 3), dtype)},
            dtype,
            tags=("boundary",),
            note=zero_pred_note,
        )
        for bad in (0.0, 0.5, 2.0):
            lab = C.signs(rng, (2, 3), dtype)
            lab[invalid_label_at] = bad
            yield C.Case(
                f"invalid-label={bad}-{dtype}",
                {"pred": C.normal(rng, (2, 3), 1, dtype), "label": lab},
                dtype,
                tags=("invalid",),
                invalid="label values must be -1 or 1",
            )
        yield from gen.invalid_shapes(
            rng, dtype, label_shape=invalid_label_shape, sample_weight_shape=invalid_sample_weight_shape
        )

#: why an option value has no case of a regime (fixtures/COVERAGE.md, oracle.coverage.gap_reason)
REGIME_GAPS = {("*", "long"): C.LONG_DEFAULTS_ONLY}


def cases() -> Iterator[C.Case]:
    yield from hinge_cases(
        SPEC, _own_cases, zero_pred_note="pred == 0: every hinge term equals the margin",
        invalid_label_at=(1, 2), invalid_label_shape=(2, 2), invalid_sample_weight_shape=(3, 1),
    )
    yield from C.subnormal_cases(SPEC.id, _subnormal)
    yield from C.limit_cases(
        SPEC,
        lambda dtype: {"pred": C.in_dtype([[np.inf, -np.inf], [-np.inf, 0.5]], dtype), "label": C.in_dtype([[1.0, -1.0], [1.0, 1.0]], dtype)},
        "max(0, margin - pred * label) at pred * label = +inf is 0 and at -inf is +inf (the limits of the documented formula)",
    )
    yield from _long()


#: per dtype, (pred * label at both ends, p): the terms are 1 - pred * label at the ends and
#: 2**-p between, below half an ULP of the ends' terms; float16's ends are 4 (not 2) so that a
#: term between divided by 16384 is still a float16 number (2**-24), as a mean computed as a
#: sum of terms / M needs
_LONG = {"float16": (-3.0, 10), "float32": (-1.0, 24), "bfloat16": (-1.0, 8)}


def _long() -> Iterator[C.Case]:
    """The long regime, 16384 elements: pred * label = m at both ends (term 1 - m: float16
    4, float32 and bfloat16 2) and pred * label = 1 - 2**-p between (term 2**-p: float16
    2**-10, float32 2**-24, bfloat16 2**-8, each a quarter ULP of the ends' term or less),
    labels +1 in the first half and -1 in the second."""
    label = C.halves()
    for dtype in C.HALF_ULP_DTYPES:
        big, p = _LONG[dtype]
        yield C.half_ulp_case({"pred": C.half_ulp_row(big, 1.0 - 2.0**-p) * label, "label": label}, dtype=dtype)


def _subnormal(dtype: str):
    sub = C.subnormal(dtype)
    yield ("margin-zero", {"pred": C.in_dtype([[-4 * sub, 2 * sub], [-sub, 1.0]], dtype), "label": C.in_dtype([[1, -1], [1, 1]], dtype)},
           {"margin": 0.0}, "margin 0 and subnormal pred: hinge terms and means that are subnormal")


def _own_cases(dtype: str) -> Iterator[C.Case]:
    """Hinge terms that overflow or are an ulp; pred * label on the margin: the kink."""
    fmax = float(np.finfo(dtype).max)
    yield C.Case(
        f"extreme-{dtype}",
        {"pred": C.in_dtype([[-fmax, fmax], [fmax, 0.5]], dtype), "label": C.in_dtype([[1, -1], [1, -1]], dtype)},
        dtype,
        tags=("extreme",),
        note="row 0: each hinge term is margin + max; their naive sum overflows",
    )
    eps = float(np.finfo(dtype).eps)
    sub = float(np.finfo(dtype).smallest_subnormal)
    yield C.Case(
        f"tiny-{dtype}",
        {"pred": C.in_dtype([[1.0 - eps / 2, -(1.0 - eps / 2)], [1.0 - eps, 3.0]], dtype), "label": C.in_dtype([[1, -1], [1, 1]], dtype)},
        dtype,
        tags=("tiny",),
        note="pred * label one or two ulps below the margin: hinge terms of an ulp",
    )
    yield C.Case(
        f"tiny-margin-zero-{dtype}",
        {"pred": C.in_dtype([[-sub, sub], [2 * sub, -4.0]], dtype), "label": C.in_dtype([[1, -1], [-1, -1]], dtype)},
        dtype,
        {"margin": 0.0},
        tags=("tiny",),
        note="hinge terms of subnormal size",
    )
    for opts in ({}, {"margin": 0.5}):
        name = f"kink-{C.variant_name(opts)}-{dtype}"
        inputs = on_the_margin(C.rng_for(SPEC.id, name), dtype, float(opts.get("margin", 1.0)))
        yield C.Case(name, inputs, dtype, opts, tags=("kink",), note="pred * label == margin in row 0 and at [2, 1]")
    yield C.Case(
        f"kink-margin-zero-{dtype}",
        signed_zero_pred(dtype),
        dtype,
        {"margin": 0.0},
        tags=("kink", "boundary"),
        note="margin 0 and pred exactly 0 (signed zeros): the hinge sits at pred == 0",
    )


def sample(rng, options: dict) -> dict:
    """Valid random float64 inputs for self-verification (see tests/); pred * label stays
    at least 0.05 away from the margin (the hinge, where SquaredHingeLoss's second
    derivative jumps)."""
    margin = float(options.get("margin", 1.0))
    shape = C.sample_shape(options)
    label = C.signs(rng, shape, "float64")
    side = np.asarray([rng.choice((-1.0, 1.0)) * rng.uniform(0.05, 2.0) for _ in range(label.size)]).reshape(shape)
    return {"pred": (margin + side) * label, "label": label, "sample_weight": C.per_sample_weight(rng, shape, options)}
