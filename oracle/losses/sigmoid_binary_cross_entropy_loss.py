"""mxnet.gluon.loss.SigmoidBinaryCrossEntropyLoss (alias SigmoidBCELoss) -- "The
cross-entropy loss for binary classification."

Documented formulas (MXNet 1.9.1 docstring)::

    from_sigmoid=False:  prob = 1 / (1 + exp(-pred))
                         L = - sum_i label_i * log(prob_i) * pos_weight + (1 - label_i) * log(1 - prob_i)
    from_sigmoid=True:   L = - sum_i label_i * log(pred_i) * pos_weight + (1 - label_i) * log(1 - pred_i)

Reading implemented (``a = label * pos_weight``, ``b = 1 - label``; pos_weight = 1 when
absent; ``label`` read row-major into pred's shape; pos_weight broadcast to pred's shape)::

    from_sigmoid=False:  elem = a * softplus(-pred) + b * softplus(pred)
                         (log(prob) = -softplus(-pred), log(1 - prob) = -softplus(pred), exact
                         at any logit)
    from_sigmoid=True:   elem = -(a * log(pred) + b * log(1 - pred)), with 0 * log(0) = 0,
                         so pred = 0 (1) gives +inf where a (b) is nonzero -- no eps

then the shared Loss conventions (:mod:`oracle.conventions`): times sample_weight and
weight, mean over every axis but batch_axis; out has shape (batch_size,).

Infinite logits (from_sigmoid=False; the ``limit`` cases). The seed documentation
(``shared/seeds/001_96463d9bf6ba4199.txt``) gives "prob = \\frac{1}{1 + \\exp(-{pred})}" and
"L = - \\sum_i {label}_i * \\log({prob}_i) + (1 - {label}_i) * \\log(1 - {prob}_i)" and
sets no bound on pred ("pred: prediction tensor with arbitrary shape"). Decision: a logit of
+-inf is accepted and its value is the limit of the documented formula as the logit goes to
+-inf, which exists for every label in [0, 1]: prob = 1 (0), so with the 0 * log(0) = 0
convention this module already applies to from_sigmoid=True (a term with a zero coefficient
is identically zero) ``elem = a * softplus(-pred) + b * softplus(pred)`` is 0 where the
label agrees (pred = +inf with b = 0, pred = -inf with a = 0) and +inf otherwise; the
derivative is the limit of ``b * sigmoid(pred) - a * sigmoid(-pred)``: b at +inf, -a at -inf
(finite). nan is still rejected. (Earlier readings rejected infinite logits; that reading
had no text behind it.)

Gradient of elem with respect to pred::

    from_sigmoid=False:  b * sigmoid(pred) - a * sigmoid(-pred)
    from_sigmoid=True:   -a / pred + b / (1 - pred)   (a term with a zero coefficient is
                         identically zero and contributes 0; at pred = 0 or 1 the nonzero
                         term gives the one-sided derivative -+inf)
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from .. import arrays as A
from .. import cases as C
from .. import conventions as G
from .. import real as R
from ..catalog import InputSpec, LossSpec, OptionSpec, Reading
from ..errors import describe
from ..real import real as mpf
from ..result import Forward, Gradient

SPEC = LossSpec(
    id="mxnet.gluon.loss.SigmoidBinaryCrossEntropyLoss",
    aliases=("SigmoidBCELoss", "mxnet.gluon.loss.SigmoidBCELoss"),
    summary="Binary cross-entropy of a logit (or a probability when from_sigmoid) against "
    "a label in [0, 1], with optional pos_weight on the positive term.",
    formula="out[b] = weight * mean_{i in b} sample_weight_i * -(label_i * pos_weight_i * "
    "log(prob_i) + (1 - label_i) * log(1 - prob_i)),  prob = sigmoid(pred) or pred",
    options=(
        OptionSpec(
            "from_sigmoid",
            False,
            "bool",
            "Whether the input is from the output of sigmoid (pred is a probability).",
        ),
        G.weight_option(None),
        G.batch_axis_option(),
    ),
    inputs=(
        InputSpec(
            "pred",
            "prediction tensor with arbitrary shape: a logit, or a probability in [0, 1] "
            "when from_sigmoid",
            differentiable=True,
        ),
        InputSpec("label", "target tensor with values in range [0, 1], same size as pred"),
        G.sample_weight_input(),
        InputSpec(
            "pos_weight",
            "weighting tensor of positive examples, broadcastable to the shape of pred "
            "(documented example: pred (64, 10), pos_weight (1, 10))",
            optional=True,
        ),
    ),
    output_shape="(batch_size,)",
    readings=(
        Reading(
            "sign and grouping",
            "L = - \\sum_i {label}_i * \\log({prob}_i) * pos\\_weight + (1 - {label}_i) * "
            "\\log(1 - {prob}_i)",
            "The leading minus applies to both terms (cross-entropy), and the sum is the mean "
            "over the non-batch axes that the output description names ('Dimensions other "
            "than batch_axis are averaged out'), as for every Loss.",
        ),
        Reading(
            "no eps inside the log",
            "L = - \\sum_i {label}_i * \\log({pred}_i) * pos\\_weight + (1 - {label}_i) * "
            "\\log(1 - {pred}_i)   [code: log(pred + 1e-12), log(1. - pred + 1e-12)]",
            "The documented formula has no eps; the oracle has none. With from_sigmoid=True, "
            "pred exactly 0 (1) gives +inf where label * pos_weight (1 - label) is nonzero; "
            "0 * log(0) is 0 by the limit convention. MXNet's eps=1e-12 is a deviation "
            "(finite ~27.6 instead of inf; values shifted by ~1e-12/pred).",
        ),
        Reading(
            "pos_weight shape",
            "pos_weight: a weighting tensor of positive examples. Must be a vector with length "
            "equal to the number of classes.For example, if pred has shape (64, 10), "
            "pos_weight should have shape (1, 10).",
            "'vector' and the (1, 10) example disagree; pos_weight is accepted in any shape "
            "that broadcasts to the shape of pred (as the code's broadcast_mul does) and "
            "multiplies the positive term elementwise; it must hold finite real numbers. It "
            "is an input, not differentiated.",
        ),
        Reading(
            "pos_weight in the from_sigmoid=False formula",
            "prob = 1/(1+exp(-pred)); L = - sum_i label_i * log(prob_i) * pos_weight + "
            "(1 - label_i) * log(1 - prob_i)",
            "pos_weight multiplies only the positive term in both branches; log(prob) = "
            "-softplus(-pred) and log(1 - prob) = -softplus(pred) exactly (the code's "
            "'x - x*z + (1 + z*pos_weight - z) * softplus(-x)' form is the same function).",
        ),
        Reading(
            "label domain",
            "label: target tensor with values in range [0, 1].",
            "Soft labels anywhere in the closed interval [0, 1] are valid; any other value "
            "(including nan) is rejected.",
        ),
        Reading(
            "pred domain",
            "If from_sigmoid is True ... L = - sum_i label_i * log(pred_i) ...; from_sigmoid: "
            "Whether the input is from the output of sigmoid.",
            "With from_sigmoid=True pred is a sigmoid output, so it must lie in [0, 1]; "
            "anything else is rejected. With from_sigmoid=False pred is a logit: any real "
            "number or +-inf (prob = 1/(1+exp(-pred)) is 1 or 0 there, and the value is the "
            "formula's limit, with 0 * log(0) = 0 for a term whose coefficient is zero: 0 "
            "where the label agrees, +inf otherwise; the derivative is its limit, "
            "(1 - label) at +inf and -label * pos_weight at -inf); nan is rejected.",
        ),
    ),
)


# ------------------------------------------------------------------ private helpers


def _coef_over(c: R.Real, d: R.Real) -> R.Real:
    """c / d for the derivative of c * log(d) with d >= 0: 0 when c is 0 (the term is
    identically zero), +-inf (the one-sided derivative) when d is 0."""
    if c == 0:
        return mpf(0)
    if d == 0:
        return R.INF if c > 0 else -R.INF
    return c / d


_coef_over_u = np.frompyfunc(_coef_over, 2, 1)


def _obj(x) -> np.ndarray:
    return np.asarray(x, dtype=object)


def _pos_weight(pw: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray:
    if pw is None:
        return A.full(shape, 1)
    pw_b = G.broadcast_input(SPEC.id, "pos_weight", pw, shape, expected="expected e.g. (1, C) or (C,) for pred (N, C)")
    G.require_finite(SPEC.id, "pos_weight", pw)
    return pw_b


# ----------------------------------------------------------------------- forward


def forward(x: dict, options: dict) -> Forward:
    pred, label = G.pred_and_label(SPEC.id, x)
    for v in label.ravel():
        G.require(
            SPEC.id,
            bool(0 <= v <= 1),
            f"input label holds {describe(v)}; expected values in range [0, 1]",
        )
    pw = _pos_weight(x.get("pos_weight"), pred.shape)
    a = _obj(label * pw)
    b = _obj(1 - label)
    if options["from_sigmoid"]:
        for v in pred.ravel():
            G.require(
                SPEC.id,
                bool(0 <= v <= 1),
                f"input pred holds {describe(v)}; with from_sigmoid=True expected a "
                "probability in [0, 1]",
            )
        t1 = _obj(-A.xlogy(a, pred))
        t2 = _obj(-A.xlog1py(b, -pred))
        dpred = _obj(_coef_over_u(b, 1 - pred) - _coef_over_u(a, pred))
    else:
        G.require_not_nan(SPEC.id, "pred", pred)
        # xmul: a zero coefficient times softplus(+inf) is 0 (the limit at an infinite logit)
        t1 = _obj(A.xmul(a, A.softplus(-pred)))
        t2 = _obj(A.xmul(b, A.softplus(pred)))
        dpred = _obj(b * A.sigmoid(pred) - a * A.sigmoid(-pred))
    elem = _obj(t1 + t2)
    scale = _obj(A.fabs(t1) + A.fabs(t2))

    def vjp(seed: np.ndarray) -> Gradient:  # seed: the cotangent pulled back to each element
        return Gradient.exact(_obj(seed * dpred))

    return G.batch_mean_forward(SPEC.id, x, options, elem, vjp, elem_scale=scale, terms_per_element=2)


# ------------------------------------------------------------------------- cases


def _labels(rng, shape, dtype: str) -> np.ndarray:
    """A mix of hard (0/1) and soft labels in [0, 1]."""
    n = int(np.prod(shape))
    vals = [rng.choice((0.0, 1.0)) if rng.random() < 0.4 else rng.uniform(0, 1) for _ in range(n)]
    return C.in_dtype(vals, dtype).reshape(shape)


def _preds(rng, shape, dtype: str, from_sigmoid: bool) -> np.ndarray:
    if from_sigmoid:
        return C.uniform(rng, shape, 0.02, 0.98, dtype)
    return C.normal(rng, shape, 2.0, dtype)


def _variant_inputs(rng, shape, dtype: str, opts: dict) -> dict:
    return {"pred": _preds(rng, shape, dtype, opts.get("from_sigmoid", False)), "label": _labels(rng, shape, dtype)}


#: why an option value has no case of a regime (fixtures/COVERAGE.md, oracle.coverage.gap_reason)
REGIME_GAPS = {
    ("*", "long"): C.LONG_DEFAULTS_ONLY,
    ("from_sigmoid=True", "extreme"): "ruled out: with from_sigmoid=True pred is a probability in [0, 1], "
    "so there are no logits whose naive exp overflows (the probabilities 0 and 1 are the boundary cases)",
    ("from_sigmoid=True", "limit"): "ruled out: with from_sigmoid=True pred is a probability in [0, 1], not a +-inf logit",
}

#: logits normal (sigma 2), labels hard and soft
GEN = C.ElementwiseCases(SPEC, sigma=2.0, labels=_labels)


def cases() -> Iterator[C.Case]:
    for dtype in C.DTYPES:
        yield from C.option_variant_cases(SPEC, dtype, _variant_inputs)

        rng = C.rng_for(SPEC.id, f"pos_weight-{dtype}")
        for fs in (False, True):
            yield C.Case(
                f"pos_weight-row-from_sigmoid={fs}-{dtype}",
                {
                    "pred": _preds(rng, (3, 4), dtype, fs),
                    "label": _labels(rng, (3, 4), dtype),
                    "pos_weight": C.uniform(rng, (1, 4), 0.25, 4.0, dtype),
                },
                dtype,
                {"from_sigmoid": fs},
                note="pos_weight of shape (1, C) as in the documented example",
            )
        yield C.Case(
            f"pos_weight-vector-sample_weight-{dtype}",
            {
                "pred": _preds(rng, (2, 3), dtype, False),
                "label": _labels(rng, (2, 3), dtype),
                "pos_weight": C.uniform(rng, (3,), 0.25, 4.0, dtype),
                "sample_weight": C.uniform(rng, (2, 1), 0.0, 2.0, dtype),
            },
            dtype,
            {"weight": 0.5},
            tags=("shape",),
            note="pos_weight as a vector of length C",
        )

        rng = C.rng_for(SPEC.id, f"shapes-{dtype}")
        yield from GEN.sample_weights(rng, dtype)
        yield C.Case(f"minimum-{dtype}", GEN.inputs(rng, (1,), dtype), dtype, tags=("shape",))
        yield C.Case(
            f"rank3-label-reshaped-from_sigmoid-{dtype}",
            {"pred": _preds(rng, (2, 3, 4), dtype, True), "label": _labels(rng, (2, 12), dtype)},
            dtype,
            {"from_sigmoid": True},
            tags=("shape",),
            note="label has another shape with the same number of elements",
        )

        # ---- regimes
        yield C.Case(
            f"zero-logits-{dtype}",
            {"pred": C.in_dtype([[0.0, 0.0, 0.0], [0.0, 0.0, 1.0]], dtype), "label": C.in_dtype([[0.0, 1.0, 0.5], [0.25, 1.0, 0.0]], dtype)},
            dtype,
            tags=("boundary",),
            note="logit exactly 0: prob = 1/2, value log 2 per element",
        )
        big = 60000.0 if dtype == "float16" else 1e4
        yield C.Case(
            f"extreme-logits-{dtype}",
            {
                "pred": C.in_dtype([[big, -big, big], [-big, big, -big]], dtype),
                "label": C.in_dtype([[1.0, 0.0, 0.0], [1.0, 0.5, 0.25]], dtype),
                "pos_weight": C.in_dtype([[0.5, 3.0, 0.25]], dtype),
            },
            dtype,
            tags=("extreme",),
            note="exp(|pred|) overflows the dtype; log(prob) = -softplus(-pred) is exact "
            "(each row's sum of terms stays below the float16 maximum)",
        )
        yield C.Case(
            f"extreme-logits-confident-{dtype}",
            {"pred": C.in_dtype([big, -big, big / 2, -big / 2], dtype), "label": C.in_dtype([1.0, 0.0, 1.0, 0.0], dtype)},
            dtype,
            tags=("extreme", "tiny"),
            note="correct confident predictions: the loss exp(-|pred|) underflows to 0",
        )
        tiny_logit = {"float16": 10.0, "float32": 20.0, "float64": 40.0}[dtype]
        yield C.Case(
            f"tiny-loss-logits-{dtype}",
            {
                "pred": C.in_dtype([[tiny_logit, -tiny_logit], [tiny_logit / 2, -tiny_logit * 0.75]], dtype),
                "label": C.in_dtype([[1.0, 0.0], [1.0, 0.0]], dtype),
            },
            dtype,
            tags=("tiny",),
            note="1 + exp(-|pred|) rounds to 1 in the dtype: a naive log(1 + exp(.)) gives 0",
        )
        eps = float(np.finfo(dtype).eps)
        yield C.Case(
            f"tiny-loss-probabilities-{dtype}",
            {
                "pred": C.in_dtype([[1.0 - eps / 2, eps / 4], [1.0 - eps, 2.0 ** -20]], dtype),
                "label": C.in_dtype([[1.0, 0.0], [1.0, 0.0]], dtype),
            },
            dtype,
            {"from_sigmoid": True},
            tags=("tiny",),
            note="-log(1 - p) for tiny p needs log1p; naive log(1 - p) gives 0",
        )
        yield C.Case(
            f"boundary-probabilities-{dtype}",
            {"pred": C.in_dtype([[0.0, 1.0], [0.0, 0.5]], dtype), "label": C.in_dtype([[0.0, 1.0], [0.0, 1.0]], dtype)},
            dtype,
            {"from_sigmoid": True},
            tags=("boundary",),
            note="pred exactly 0 or 1 with a matching hard label: 0 * log(0) = 0, finite value",
        )
        yield C.Case(
            f"boundary-pos_weight-zero-{dtype}",
            {
                "pred": C.in_dtype([[0.0, 0.25], [0.0, 1.0]], dtype),
                "label": C.in_dtype([[1.0, 1.0], [0.5, 1.0]], dtype),
                "pos_weight": C.in_dtype([[0.0, 2.0]], dtype),
            },
            dtype,
            {"from_sigmoid": True},
            tags=("boundary",),
            note="pos_weight 0 removes the positive term, so pred = 0 with label 1 stays finite",
        )
        yield C.Case(
            f"singular-probabilities-{dtype}",
            {"pred": C.in_dtype([[0.0, 0.5], [0.25, 1.0], [0.5, 0.5]], dtype), "label": C.in_dtype([[1.0, 0.5], [0.0, 0.5], [0.0, 1.0]], dtype)},
            dtype,
            {"from_sigmoid": True},
            tags=("singular",),
            note="-label*log(0) and -(1-label)*log(1-1) are +inf (no eps); the last row is finite",
        )
        yield C.Case(
            f"label-edges-{dtype}",
            {
                "pred": C.in_dtype([[-1.5, 0.75, 3.0], [2.0, -0.5, 0.125]], dtype),
                "label": C.in_dtype([[0.0, 1.0, 0.5], [0.0, 1.0, 0.5]], dtype),
                "pos_weight": C.in_dtype([[1.0, 1.0, 1.0]], dtype),
            },
            dtype,
            tags=("label",),
            note="labels exactly 0, 1 and 1/2; pos_weight of ones equals no pos_weight",
        )

        # ---- invalid
        rng = C.rng_for(SPEC.id, f"invalid-{dtype}")
        p, lab = _preds(rng, (2, 3), dtype, False), _labels(rng, (2, 3), dtype)
        yield C.Case(
            f"invalid-label-above-one-{dtype}",
            {"pred": p, "label": C.in_dtype([[0.0, 1.5, 1.0], [0.5, 0.5, 0.5]], dtype)},
            dtype,
            tags=("invalid",),
            invalid="label must hold values in range [0, 1]",
        )
        yield C.Case(
            f"invalid-label-negative-{dtype}",
            {"pred": C.in_dtype([[0.5, 0.25, 0.75], [0.5, 0.5, 0.5]], dtype), "label": C.in_dtype([[0.0, 1.0, -1.0], [0.5, 0.5, 0.5]], dtype)},
            dtype,
            {"from_sigmoid": True},
            tags=("invalid",),
            invalid="label must hold values in range [0, 1]",
        )
        yield C.Case(
            f"invalid-label-nan-{dtype}",
            {"pred": p, "label": C.in_dtype([[0.0, float("nan"), 1.0], [0.5, 0.5, 0.5]], dtype)},
            dtype,
            tags=("invalid",),
            invalid="label must hold values in range [0, 1] (nan is not)",
        )
        yield C.Case(
            f"invalid-pred-outside-unit-interval-{dtype}",
            {"pred": C.in_dtype([[0.5, 1.5], [-0.25, 0.5]], dtype), "label": C.in_dtype([[0.0, 1.0], [0.0, 1.0]], dtype)},
            dtype,
            {"from_sigmoid": True},
            tags=("invalid",),
            invalid="with from_sigmoid=True pred is a sigmoid output and must lie in [0, 1]",
        )
        yield C.Case(
            f"invalid-size-{dtype}",
            {"pred": p, "label": C.in_dtype([[0.0, 1.0], [1.0, 0.0]], dtype)},
            dtype,
            tags=("invalid",),
            invalid="label must have the same number of elements as pred",
        )
        yield C.Case(
            f"invalid-pos_weight-shape-{dtype}",
            {"pred": p, "label": lab, "pos_weight": C.in_dtype([[1.0, 2.0]], dtype)},
            dtype,
            tags=("invalid",),
            invalid="pos_weight must broadcast to the shape of pred (one weight per class)",
        )
        yield C.Case(
            f"invalid-sample_weight-{dtype}",
            {"pred": p, "label": lab, "sample_weight": C.uniform(rng, (3, 1), 0, 1, dtype)},
            dtype,
            tags=("invalid",),
            invalid="sample_weight must be broadcastable to the shape of pred",
        )
    yield from C.subnormal_cases(SPEC.id, _subnormal)
    yield from C.limit_cases(
        SPEC,
        lambda dtype: {
            "pred": C.in_dtype([[np.inf, np.inf, np.inf], [-np.inf, np.inf, -np.inf]], dtype),
            "label": C.in_dtype([[1.0, 1.0, 1.0], [1.0, 0.5, 0.0]], dtype),
        },
        "logits of +-inf: prob = 1 or 0; the value is the formula's limit (0 where the label agrees: "
        "row 0 is exactly 0, +inf otherwise), the derivative its limit (1 - label at +inf, -label at -inf)",
        skip=("from_sigmoid",),
    )
    yield from _long()


def _long() -> Iterator[C.Case]:
    """The long regime, 16384 elements: logit 0 at both ends (term log 2) and +m against
    label 1 (first half), -m against label 0 (second half) between (term log(1 + exp(-m)),
    below half an ULP of log 2: m as for LogisticLoss, float16 9, float32 19, bfloat16 7)."""
    from .logistic_loss import LONG_MARGIN

    label = C.halves(first=1.0, second=0.0)
    for dtype in C.HALF_ULP_DTYPES:
        yield C.half_ulp_case({"pred": C.half_ulp_row(0.0, LONG_MARGIN[dtype]) * (2 * label - 1), "label": label}, dtype=dtype)


def _subnormal(dtype: str):
    g = C.SUBNORMAL_GAP[dtype]
    yield ("confident", {"pred": C.in_dtype([[g, -g], [g, -g]], dtype), "label": C.in_dtype([[1, 0], [1, 0]], dtype)}, {},
           f"log(1 + exp(-{g:g})) and sigmoid(-{g:g}): subnormal values and gradients")


def sample(rng, options: dict) -> dict:
    """Valid random float64 inputs for self-verification (see tests/)."""
    shape = C.sample_shape(options)
    fs = options.get("from_sigmoid", False)
    pred = C.uniform(rng, shape, 0.05, 0.95, "float64") if fs else C.normal(rng, shape, 2.0, "float64")
    return {
        "pred": pred,
        "label": _labels(rng, shape, "float64"),
        "sample_weight": C.per_sample_weight(rng, shape, options),
        "pos_weight": C.uniform(rng, (1, shape[1]), 0.25, 4.0, "float64"),
    }
