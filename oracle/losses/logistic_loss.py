"""mxnet.gluon.loss.LogisticLoss -- "Calculates the logistic loss (for binary losses only)".

Documented formula (MXNet 1.9.1 docstring)::

    L = sum_i log(1 + exp(- pred_i * label_i))

"where pred is the classifier prediction and label is the target tensor containing values
-1 or 1 (0 or 1 if label_format is binary)".

Reading implemented: the label is first brought to its signed form s (label_format
'signed': s = label in {-1, 1}; 'binary': s = 2 * label - 1, so 0 -> -1 and 1 -> 1), then

    elem = log(1 + exp(-pred * s)) = softplus(-pred * s)    (exact at any magnitude)

with the shared Loss conventions (:mod:`oracle.conventions`): times sample_weight and
weight, mean over every axis but batch_axis; out has shape (batch_size,).

Gradient: d elem / d pred = -s * sigmoid(-pred * s).

Infinite pred (the ``limit`` cases). The seed documentation
(``shared/seeds/002_b33df37e53c3c88b.txt``, with the formula from the installed docstring
"L = \\sum_i \\log(1 + \\exp(- {pred}_i \\cdot {label}_i))") sets no bound on pred ("pred:
prediction tensor with arbitrary shape"), and with s = +-1 the margin pred * s is +-inf,
never 0 * inf. Decision: pred = +-inf is accepted, and the value is the formula's limit:
log(1 + exp(-inf)) = 0 for a margin of +inf, +inf for a margin of -inf; the derivative is
the limit of -s * sigmoid(-pred * s): 0 and -s. nan is rejected.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from .. import arrays as A
from .. import cases as C
from .. import conventions as G
from ..catalog import InputSpec, LossSpec, OptionSpec, Reading
from ..real import real as mpf
from ..result import Forward, Gradient

SPEC = LossSpec(
    id="mxnet.gluon.loss.LogisticLoss",
    summary="Logistic loss log(1 + exp(-pred * label)) for labels -1/1 (or 0/1 read as -1/1).",
    formula="out[b] = weight * mean_{i in b} sample_weight_i * log(1 + exp(-pred_i * s_i)), "
    "s = label ('signed') or 2 * label - 1 ('binary')",
    options=(
        G.weight_option(None),
        G.batch_axis_option(),
        OptionSpec(
            "label_format",
            "signed",
            "enum",
            "Can be either 'signed' (labels -1 or 1) or 'binary' (labels 0 or 1).",
            choices=("signed", "binary"),
        ),
    ),
    inputs=(
        G.pred_input(),
        InputSpec(
            "label",
            "truth tensor with values -1/1 (label_format 'signed') or 0/1 ('binary'), "
            "same size as pred",
        ),
        G.sample_weight_input(),
    ),
    output_shape="(batch_size,)",
    readings=(
        Reading(
            "binary labels in the formula",
            "L = \\sum_i \\log(1 + \\exp(- {pred}_i \\cdot {label}_i)) where ... label is the "
            "target tensor containing values -1 or 1 (0 or 1 if label_format is binary).",
            "With label_format='binary' the labels 0/1 are another encoding of the signed "
            "labels -1/1 (0 -> -1, 1 -> 1) and the formula is applied to the signed label: "
            "L = log(1 + exp(-pred * (2 * label - 1))). Substituting a 0 label literally "
            "would give the constant log 2 for every pred (a loss that ignores the "
            "prediction), which cannot be the meaning of 'for binary losses'; the code agrees "
            "(it maps signed labels to 0/1 and computes BCE-with-logits, i.e. label 0 scores "
            "log(1 + exp(pred))).",
        ),
        Reading(
            "sum or mean",
            "L = sum_i log(1 + exp(-pred_i * label_i)) ... Dimensions other than batch_axis "
            "are averaged out.",
            "The sum is over the elements that the output description then averages: out[b] "
            "is the mean over the non-batch axes, as for every Loss.",
        ),
        Reading(
            "label domain",
            "If the label_format is 'signed', all label values should be either -1 or 1. If "
            "the label_format is 'binary', all label values should be either 0 or 1.",
            "Any other label value (including 0 for 'signed', -1 for 'binary', soft labels "
            "and nan) is rejected. pred is a real number or +-inf (the value is then the "
            "formula's limit: 0 for pred * s = +inf, +inf for -inf); nan is rejected.",
        ),
    ),
)

_ALLOWED = {"signed": ({mpf(-1), mpf(1)}, "values -1 or 1 (label_format='signed')"),
            "binary": ({mpf(0), mpf(1)}, "values 0 or 1 (label_format='binary')")}


def _obj(x) -> np.ndarray:
    return np.asarray(x, dtype=object)


def forward(x: dict, options: dict) -> Forward:
    pred, label = G.pred_and_label(SPEC.id, x)
    fmt = options["label_format"]
    allowed, expected = _ALLOWED[fmt]
    G.require_values(SPEC.id, "label", label, allowed, expected)
    G.require_not_nan(SPEC.id, "pred", pred)
    s = label if fmt == "signed" else _obj(2 * label - 1)
    margin = _obj(pred * s)
    dpred = _obj(-s * A.sigmoid(-margin))

    def vjp(seed: np.ndarray) -> Gradient:  # seed: the cotangent pulled back to each element
        return Gradient.exact(_obj(seed * dpred))

    return G.batch_mean_forward(SPEC.id, x, options, _obj(A.softplus(-margin)), vjp)


# ------------------------------------------------------------------------- cases


def _labels(rng, shape, fmt: str) -> np.ndarray:
    vals = (-1.0, 1.0) if fmt == "signed" else (0.0, 1.0)
    return C.choice(rng, shape, vals).astype(np.float64)


def _variant_inputs(rng, shape, dtype: str, opts: dict) -> dict:
    fmt = opts.get("label_format", "signed")
    return {"pred": C.normal(rng, shape, 2.0, dtype), "label": C.in_dtype(_labels(rng, shape, fmt), dtype)}


#: pred normal (sigma 2), label -1 or 1
GEN = C.ElementwiseCases(SPEC, sigma=2.0, labels=C.signs)

#: why an option value has no case of a regime (fixtures/COVERAGE.md, oracle.coverage.gap_reason)
REGIME_GAPS = {("*", "long"): C.LONG_DEFAULTS_ONLY}


def cases() -> Iterator[C.Case]:
    for dtype in C.DTYPES:
        yield from C.option_variant_cases(SPEC, dtype, _variant_inputs)

        rng = C.rng_for(SPEC.id, f"shapes-{dtype}")
        yield from GEN.sample_weights(rng, dtype)
        yield C.Case(
            f"minimum-{dtype}",
            {"pred": C.normal(rng, (1,), 2.0, dtype), "label": C.in_dtype([-1.0], dtype)},
            dtype,
            tags=("shape",),
        )
        yield C.Case(
            f"rank3-label-reshaped-binary-{dtype}",
            {"pred": C.normal(rng, (2, 3, 4), 2.0, dtype), "label": C.in_dtype(_labels(rng, (2, 12), "binary"), dtype)},
            dtype,
            {"label_format": "binary"},
            tags=("shape",),
            note="label has another shape with the same number of elements",
        )

        # ---- regimes
        for fmt, lab in (("signed", [[-1.0, 1.0, 1.0], [-1.0, -1.0, 1.0]]), ("binary", [[0.0, 1.0, 1.0], [0.0, 0.0, 1.0]])):
            yield C.Case(
                f"zero-logits-{fmt}-{dtype}",
                {"pred": C.in_dtype([[0.0, 0.0, 0.5], [0.0, -0.0, 0.0]], dtype), "label": C.in_dtype(lab, dtype)},
                dtype,
                {"label_format": fmt},
                tags=("boundary",),
                note="pred exactly 0 (and -0): the loss is log 2 whatever the label",
            )
        big = 60000.0 if dtype == "float16" else 1e4
        for fmt, neg in (("signed", -1.0), ("binary", 0.0)):
            yield C.Case(
                f"extreme-{fmt}-{dtype}",
                {
                    "pred": C.in_dtype([[big, -big, big], [-big, big / 2, -big / 2]], dtype),
                    "label": C.in_dtype([[1.0, 1.0, 1.0], [neg, neg, 1.0]], dtype),
                },
                dtype,
                {"label_format": fmt},
                tags=("extreme",),
                note="exp(-pred * label) overflows the dtype for wrong confident predictions "
                "(each row's sum of terms stays below the float16 maximum)",
            )
        yield C.Case(
            f"extreme-confident-{dtype}",
            {"pred": C.in_dtype([big, -big, big / 4, -big / 4], dtype), "label": C.in_dtype([1.0, -1.0, 1.0, -1.0], dtype)},
            dtype,
            tags=("extreme", "tiny"),
            note="correct confident predictions: the loss exp(-|pred|) underflows to 0",
        )
        tiny_logit = {"float16": 10.0, "float32": 20.0, "float64": 40.0}[dtype]
        for fmt, neg in (("signed", -1.0), ("binary", 0.0)):
            yield C.Case(
                f"tiny-{fmt}-{dtype}",
                {
                    "pred": C.in_dtype([[tiny_logit, -tiny_logit], [tiny_logit * 0.75, -tiny_logit / 2]], dtype),
                    "label": C.in_dtype([[1.0, neg], [1.0, neg]], dtype),
                },
                dtype,
                {"label_format": fmt},
                tags=("tiny",),
                note="1 + exp(-pred * label) rounds to 1 in the dtype: a naive log(1 + exp(.)) gives 0",
            )
        rng = C.rng_for(SPEC.id, f"label-{dtype}")
        for fmt, only in (("signed", -1.0), ("binary", 0.0)):
            yield C.Case(
                f"label-all-negative-{fmt}-{dtype}",
                {"pred": C.normal(rng, (2, 3), 2.0, dtype), "label": C.in_dtype(np.full((2, 3), only), dtype)},
                dtype,
                {"label_format": fmt},
                tags=("label",),
                note="every label is the negative class",
            )

        # ---- invalid
        rng = C.rng_for(SPEC.id, f"invalid-{dtype}")
        p = C.normal(rng, (2, 3), 2.0, dtype)
        for fmt, bad, what in (
            ("signed", [[1.0, 0.0, -1.0], [1.0, 1.0, 1.0]], "zero"),
            ("signed", [[1.0, 0.5, -1.0], [1.0, 1.0, 1.0]], "soft"),
            ("binary", [[1.0, 0.0, -1.0], [1.0, 0.0, 1.0]], "minus-one"),
            ("binary", [[1.0, 0.0, 2.0], [1.0, 0.0, 1.0]], "two"),
        ):
            yield C.Case(
                f"invalid-label-{fmt}-{what}-{dtype}",
                {"pred": p, "label": C.in_dtype(bad, dtype)},
                dtype,
                {"label_format": fmt},
                tags=("invalid",),
                invalid=f"label values must be {'-1 or 1' if fmt == 'signed' else '0 or 1'} "
                f"with label_format='{fmt}'",
            )
        yield C.Case(
            f"invalid-size-{dtype}",
            {"pred": p, "label": C.in_dtype([[1.0, -1.0], [1.0, -1.0]], dtype)},
            dtype,
            tags=("invalid",),
            invalid="label must have the same number of elements as pred",
        )
        yield C.Case(
            f"invalid-sample_weight-{dtype}",
            {"pred": p, "label": C.signs(rng, (2, 3), dtype), "sample_weight": C.uniform(rng, (3, 1), 0, 1, dtype)},
            dtype,
            tags=("invalid",),
            invalid="sample_weight must be broadcastable to the shape of pred",
        )
    yield from C.subnormal_cases(SPEC.id, _subnormal)
    yield from C.limit_cases(
        SPEC,
        lambda dtype, opts: {
            "pred": C.in_dtype([[np.inf, -np.inf], [-np.inf, np.inf]], dtype),
            "label": C.in_dtype([[1.0, -1.0], [1.0, 1.0]] if opts.get("label_format", "signed") == "signed"
                                else [[1.0, 0.0], [1.0, 1.0]], dtype),
        },
        "pred of +-inf: the margin pred * s is +-inf; the value is the formula's limit (row 0: margins "
        "+inf, exactly 0; row 1: +inf), "
        "the derivative its limit (0 or -s)",
    )
    yield from _long()


#: per dtype, the margin pred * label between the ends: log(1 + exp(-m)) below half an ULP of log 2
LONG_MARGIN = {"float16": 9.0, "float32": 19.0, "bfloat16": 7.0}


def _long() -> Iterator[C.Case]:
    """The long regime, 16384 elements: pred = 0 at both ends (term log 2) and pred * label
    = m between (term log(1 + exp(-m)): float16 m = 9, 1.2e-4; float32 m = 19, 5.6e-9;
    bfloat16 m = 7, 9.1e-4; each below half an ULP of log 2), labels +1 in the first half
    and -1 in the second."""
    label = C.halves()
    for dtype in C.HALF_ULP_DTYPES:
        yield C.half_ulp_case({"pred": C.half_ulp_row(0.0, LONG_MARGIN[dtype]) * label, "label": label}, dtype=dtype)


def _subnormal(dtype: str):
    g = C.SUBNORMAL_GAP[dtype]
    yield ("confident", {"pred": C.in_dtype([[g, -g], [g, 0.5]], dtype), "label": C.in_dtype([[1, -1], [1, 1]], dtype)}, {},
           f"log(1 + exp(-{g:g})) and its gradient are subnormal")


def sample(rng, options: dict) -> dict:
    """Valid random float64 inputs for self-verification (see tests/)."""
    shape = C.sample_shape(options)
    return {
        "pred": C.normal(rng, shape, 2.0, "float64"),
        "label": _labels(rng, shape, options.get("label_format", "signed")),
        "sample_weight": C.per_sample_weight(rng, shape, options),
    }
