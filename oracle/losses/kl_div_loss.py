"""mxnet.gluon.loss.KLDivLoss -- "The Kullback-Leibler divergence loss."

Documented formulas (MXNet 1.9.1 docstring)::

    from_logits=True (default):  L = sum_i label_i * [log(label_i) - pred_i]
    from_logits=False:           prob = softmax(pred);  L = sum_i label_i * [log(label_i) - log(prob_i)]

Reading implemented. ``label`` is read in row-major order into pred's shape ("arbitrary
shape as long as they have the same number of elements"); ``logp = pred`` (from_logits) or
``log_softmax(pred, axis)``; the elementwise term is

    t_i = label_i * log(label_i) - label_i * logp_i      (a term with label_i = 0 is 0)

and, as for every Loss, ``sample_weight`` and ``weight`` multiply it and "Dimenions other
than batch_axis are averaged out"::

    out[b] = weight * mean_{i in b} sample_weight_i * t_i

(MXNet 1.9.1 sums over the non-batch axes and adds 1e-12 inside the log; both are
deviations from the documented text, not part of the oracle.)

Scale (tolerance model): term i contributes ``|label_i log label_i| + label_i * c_i`` with
``c_i = |pred_i|`` (from_logits) or, from_logits=False, ``c_i = |pred_i| +
|logsumexp(pred)|`` over pred_i's softmax slice.
The term scale follows ``/work/shared/DESIGN.md`` ("for softmax cross-entropy, |x_t| +
|logsumexp(x)|"), the magnitudes of the terms the documented formula adds, which is what
backward stability under a relative input perturbation allows (a logit of 1000 perturbed by
eps moves the loss by 1000 eps); issue 11 item 3 requires that "logaddexp instead of max-
shift" is a correct variant that passes everything, which a shift-invariant scale denied
(ruling of issue 13; see oracle.arrays.log_softmax_terms).

Gradient, with s_i = cotangent[b] * d out[b] / d t_i and P = softmax(pred, axis):

    from_logits=True:  d/dpred_k = -s_k * label_k
    from_logits=False: d/dpred_k = P_k * sum_{i on k's softmax slice} s_i label_i - s_k label_k
"""

from __future__ import annotations

from collections.abc import Iterator

import mpmath
import numpy as np

from .. import arrays as A
from .. import cases as C
from .. import conventions as G
from ..catalog import InputSpec, LossSpec, OptionSpec, Reading
from ..errors import InputError, describe
from ..result import Forward, Gradient

SPEC = LossSpec(
    id="mxnet.gluon.loss.KLDivLoss",
    summary="Kullback-Leibler divergence between label and the distribution pred gives (log-probabilities or logits).",
    formula=(
        "logp = pred if from_logits else log_softmax(pred, axis); "
        "t = label*log(label) - label*logp (0 where label = 0); "
        "out[b] = weight * mean_{i in b} sample_weight_i * t_i"
    ),
    options=(
        OptionSpec(
            "from_logits", True, "bool",
            "Whether the input is log probability (usually from log_softmax) instead of "
            "unnormalized numbers.",
        ),
        OptionSpec(
            "axis", -1, "int",
            "The dimension along with to compute softmax. Only used when from_logits is False.",
            fixture_values=(0,),
        ),
        G.weight_option(),
        G.batch_axis_option(),
    ),
    inputs=(
        InputSpec(
            "pred",
            "prediction tensor with arbitrary shape: log probabilities if from_logits is "
            "True, otherwise unnormalized predictions",
            differentiable=True,
        ),
        InputSpec("label", "truth tensor with values in range (0, 1); the same size as pred"),
        G.sample_weight_input(),
    ),
    output_shape="(batch_size,)",
    readings=(
        Reading(
            "sum or mean",
            "L = sum_i label_i * [log(label_i) - pred_i] ... loss: loss tensor with shape "
            "(batch_size,). Dimenions other than batch_axis are averaged out.",
            "The sigma in every Gluon loss formula denotes the per-element terms that the "
            "output description then averages: out[b] is the MEAN over the non-batch axes, "
            "as for every Loss (MXNet 1.9.1's code sums; that deviation is a finding). "
            "Upstream: apache/mxnet#18506 ('KLDivLoss misbehave', closed) and PR #18423 "
            "('fix misbehave of KLDivLoss', merged into master; backported to v1.x by PR "
            "#19356) changed the code from mean to sum so that KLDivLoss(from_logits=False) "
            "of a one-hot label equals SoftmaxCrossEntropyLoss(sparse_label=False), calling "
            "the sum 'what the document say[s]'. The reading STANDS: those PRs changed the "
            "code, not the text -- the 1.9.1 docstring, which ships the summing code, still "
            "says 'Dimenions other than batch_axis are averaged out' under Outputs; the same "
            "sigma-plus-'averaged out' wording in L2Loss, L1Loss and SigmoidBCELoss is read "
            "(and implemented by MXNet) as a mean, and one phrase cannot mean a sum in one "
            "docstring and a mean in its neighbours; DESIGN.md names 'a sum where the text "
            "says averaged out' as a deviation the oracle does not follow. So MXNet's sum "
            "stays a finding, recorded as upstream-intended: the documentation, not the "
            "code, is what upstream left inconsistent (the fix belongs in the Outputs text). "
            "A reader who wants upstream's sum multiplies the oracle's value by the number "
            "of non-batch elements.",
        ),
        Reading(
            "label domain",
            "label: truth tensor with values in range (0, 1).",
            "Labels in [0, 1] are accepted. A label exactly 0 contributes 0 (0 * log 0 = 0, "
            "the KL convention, even where pred = -inf) and is a boundary case; a label of 1 "
            "contributes -pred. Negative labels, labels > 1 and nan are rejected.",
        ),
        Reading(
            "no eps",
            "L = sum_i label_i * [log(label_i) - pred_i]",
            "log(label_i) is the exact logarithm; MXNet's log(label + 1e-12) is an "
            "implementation detail, not part of the documented loss.",
        ),
        Reading(
            "from_logits=False formula",
            "prob = softmax(pred); L = sum_i label_i * [log(label_i) - log(pred_i)]",
            "(One rendering writes log(pred_i), the package docstring log(prob_i).) The "
            "logarithm is of prob = softmax(pred, axis), i.e. log_softmax(pred, axis).",
        ),
        Reading(
            "axis",
            "axis (int, default -1) - The dimension along with to compute softmax. Only used "
            "when from_logits is False.",
            "axis is ignored (not even range-checked) when from_logits is True; when False it "
            "may be any dimension of pred, including batch_axis.",
        ),
        Reading(
            "label shape",
            "label and pred can have arbitrary shape as long as they have the same number "
            "of elements. ... label: ... Must have the same size as pred.",
            "label is read in row-major order into pred's shape; sample_weight broadcasts to "
            "pred's shape.",
        ),
        Reading(
            "from_logits=True input",
            "If from_logits is True, pred should be log probabilities.",
            "pred is used as log p exactly as given (not re-normalized, not checked to be <= 0).",
        ),
        Reading(
            "infinite value",
            "L = sum_i label_i * [log(label_i) - pred_i]",
            "Where a label > 0 meets a log probability pred = -inf (or, from_logits=False, a "
            "logit of -inf), the documented term label * (log label - pred) is +inf and so is "
            "the expected value; its derivative -label stays finite.",
        ),
    ),
    source="MXNet 1.9.1 python/mxnet/gluon/loss.py",
)

def forward(x: dict, options: dict) -> Forward:
    pred, label = G.pred_and_label(SPEC.id, x)
    G.require_not_nan(SPEC.id, "pred", pred)
    for v in label.ravel():
        if not (0 <= v <= 1):
            raise InputError(
                f"{SPEC.id}: input label holds {describe(float(v))}; expected values in [0, 1] "
                "(documented range (0, 1), with 0 read as the KL limit 0 * log 0 = 0)"
            )
    from_logits = bool(options["from_logits"])
    if from_logits:
        ax = None
        logp = pred
        n_class = 1
        pred_scale = A.fabs(pred)
    else:
        require_ndim = pred.ndim >= 1
        if not require_ndim:
            raise InputError(f"{SPEC.id}: input pred is a scalar; softmax needs an axis")
        ax = G.normalize_axis(SPEC.id, "axis", int(options["axis"]), pred.ndim)
        G.require_softmax_logits(SPEC.id, pred, ax, "softmax")
        logp, pred_scale = A.log_softmax_terms(pred, ax)  # |pred - max| + |lse(pred - max)|
        n_class = pred.shape[ax]
    ent = A.xlogy(label, label)
    cross = A.xmul(label, logp)
    elem = (ent - cross).astype(object)
    elem_scale = (A.fabs(ent) + A.xmul(label, pred_scale)).astype(object)

    def vjp(s: np.ndarray) -> Gradient:  # s: the cotangent pulled back to each element
        sl = (s * label).astype(object)
        if from_logits:
            return Gradient.exact((-sl).astype(object))
        total = A.asum(sl, axis=ax, keepdims=True)
        return Gradient.exact((total * A.exp(logp) - sl).astype(object))

    return G.batch_mean_forward(
        SPEC.id, x, options, elem, vjp, elem_scale=elem_scale, terms_per_element=2 + (n_class if not from_logits else 0)
    )


# --------------------------------------------------------------------------- cases


def _inputs(rng, opts: dict, shape: tuple, dtype: str) -> dict:
    """pred: log-probabilities (from_logits) or logits; label: probabilities along the
    softmax axis."""
    ax = opts.get("axis", -1) % len(shape) if not opts.get("from_logits", True) else len(shape) - 1
    logits = C.normal(rng, shape, 1.5, "float64")
    pred = (
        C.in_dtype(C.log_softmax_f64(logits, ax), dtype)
        if opts.get("from_logits", True)
        else C.in_dtype(logits, dtype)
    )
    return {"pred": pred, "label": C.probabilities(rng, shape, ax, dtype)}


def _tiny(dtype: str) -> float:
    return {"float16": 2.0**-20, "float32": 1.0e-30, "float64": 1.0e-300}[dtype]


def _soft_large_batch() -> Iterator[C.Case]:
    """Soft targets at low precision with a large batch: 1024 samples of 4 classes in float16
    and bfloat16 (one loss per sample, each a sum over the classes)."""
    for dt in ("float16", "bfloat16"):
        rng = C.rng_for(SPEC.id, f"soft-large-batch-{dt}")
        yield C.Case(f"soft-large-batch-{dt}", _inputs(rng, {}, C.SOFT_BATCH, dt), dt, {},
                     note="soft targets, a batch of 1024 at low precision")

#: why an option value has no case of a regime (fixtures/COVERAGE.md, oracle.coverage.gap_reason)
REGIME_GAPS = {("*", "long"): C.LONG_DEFAULTS_ONLY}


def cases() -> Iterator[C.Case]:
    sid = SPEC.id
    for dtype in C.DTYPES:
        variants = C.option_variants(SPEC) + [
            {"from_logits": False, "axis": 0},
            {"from_logits": False, "axis": 1},
            {"from_logits": False, "batch_axis": 1},
        ]
        for opts in variants:
            name = f"{C.variant_name(opts)}-{dtype}"
            rng = C.rng_for(sid, name)
            note = "axis is ignored when from_logits is True" if opts == {"axis": 0} else ""
            yield C.Case(name, _inputs(rng, opts, C.softmax_variant_shape(opts), dtype), dtype, opts, note=note)

        # ---- shapes
        rng = C.rng_for(sid, f"shapes-{dtype}")
        yield C.Case(
            f"minimum-{dtype}",
            {"pred": C.in_dtype([-0.5], dtype), "label": C.in_dtype([0.625], dtype)},
            dtype, tags=("shape",),
        )
        yield C.Case(
            f"minimum-from_logits=False-{dtype}",
            {"pred": C.in_dtype([[1.5]], dtype), "label": C.in_dtype([[0.75]], dtype)},
            dtype, {"from_logits": False}, tags=("shape",),
            note="one class: log softmax = 0, the loss is label * log(label)",
        )
        x = _inputs(rng, {}, (2, 3, 4), dtype)
        yield C.Case(
            f"rank3-label-reshaped-{dtype}",
            {"pred": x["pred"], "label": x["label"].reshape(2, 12)},
            dtype, tags=("shape",),
            note="label has another shape with the same number of elements",
        )
        for sw_shape, what in (((3, 1), "per-sample"), ((3, 4), "full")):
            yield C.Case(
                f"sample_weight-{what}-{dtype}",
                {**_inputs(rng, {"from_logits": False}, (3, 4), dtype),
                 "sample_weight": C.uniform(rng, sw_shape, 0, 2, dtype)},
                dtype, {"from_logits": False, "weight": 2.0}, tags=("shape",),
            )

        # ---- extreme
        big = C.OVERFLOWING_LOGIT[dtype]
        yield C.Case(
            f"extreme-logits-{dtype}",
            {"pred": C.in_dtype([[big, 0, -big], [-big, -big, -big], [big, big, 0]], dtype),
             "label": C.in_dtype([[0.5, 0.5, 0], [0.5, 0.25, 0.25], [0.25, 0.25, 0.5]], dtype)},
            dtype, {"from_logits": False}, tags=("extreme",),
            note="a naive softmax overflows; the tie at -big has O(1) loss; the label-0 term "
            "sits where log p = -2 big (beyond float16's range)",
        )
        yield C.Case(
            f"extreme-logprob-{dtype}",
            {"pred": C.in_dtype([[-big, -0.5], [-big / 2, 0]], dtype),
             "label": C.in_dtype([[0.5, 0.5], [0.25, 0.75]], dtype)},
            dtype, tags=("extreme",),
        )

        # ---- tiny, boundary, tie, singular, label
        tiny = _tiny(dtype)
        yield C.Case(
            f"tiny-labels-{dtype}",
            {"pred": C.in_dtype([[-1.0, -2.0, -0.5], [-3.0, -0.125, -1.0]], dtype),
             "label": C.in_dtype([[tiny, 0.5, tiny], [tiny, tiny, tiny]], dtype)},
            dtype, tags=("tiny",),
            note="label*log(label) with label near the dtype's smallest numbers",
        )
        p = np.array([0.125, 0.25, 0.625])
        yield C.Case(
            f"tiny-label-matches-pred-{dtype}",
            {"pred": C.in_dtype([C.mp_apply(mpmath.log, p), C.mp_apply(mpmath.log, p[::-1])], dtype),
             "label": C.in_dtype([p, p[::-1]], dtype)},
            dtype, tags=("tiny",),
            note="pred = log(label) rounded: the loss is only the rounding of pred",
        )
        yield C.Case(
            f"tie-uniform-{dtype}",
            {"pred": C.in_dtype([[3, 3, 3, 3], [-2, -2, -2, -2]], dtype),
             "label": C.in_dtype([[0.25] * 4, [0.5, 0.5, 0, 0]], dtype)},
            dtype, {"from_logits": False}, tags=("tie", "tiny"),
            note="equal logits: the uniform label's loss is exactly 0, the other's log 2 / 4",
        )
        yield C.Case(
            f"boundary-label-0-and-1-{dtype}",
            {"pred": C.in_dtype([[-0.75, -np.inf, -1.5], [0, -2, -np.inf]], dtype),
             "label": C.in_dtype([[1, 0, 0], [0.5, 0.5, 0]], dtype)},
            dtype, tags=("boundary",),
            note="label 0 contributes 0 even where pred = -inf; label 1 contributes -pred",
        )
        yield C.Case(
            f"boundary-zero-logits-{dtype}",
            {"pred": C.in_dtype([[0, 0], [0, 0]], dtype), "label": C.in_dtype([[1, 0], [0, 0]], dtype)},
            dtype, {"from_logits": False}, tags=("boundary", "tie", "label"),
            note="exact zero logits; an all-zero label row has loss 0",
        )
        yield C.Case(
            f"singular-logprob-neg-inf-{dtype}",
            {"pred": C.in_dtype([[-np.inf, -0.5], [-1, -0.25]], dtype),
             "label": C.in_dtype([[0.5, 0.5], [0.25, 0.75]], dtype)},
            dtype, tags=("singular",), note="label > 0 where log p = -inf: the loss is +inf",
        )
        yield C.Case(
            f"singular-logit-neg-inf-{dtype}",
            {"pred": C.in_dtype([[1, -np.inf, 0], [0, 1, 2]], dtype),
             "label": C.in_dtype([[0.25, 0.5, 0.25], [0.5, 0.25, 0.25]], dtype)},
            dtype, {"from_logits": False}, tags=("singular",),
        )
        yield C.Case(
            f"label-not-normalized-{dtype}",
            {"pred": C.normal(rng, (2, 3), 1, dtype),
             "label": C.in_dtype([[0.5, 0.5, 0.5], [0.125, 0.125, 0.25]], dtype)},
            dtype, {"from_logits": False}, tags=("label",),
            note="labels in [0, 1] that do not sum to 1 are used as given",
        )

        # ---- invalid
        ok = _inputs(rng, {}, (3, 4), dtype)
        bad = ok["label"].copy()
        bad[1, 2] = -0.25
        yield C.Case(
            f"invalid-label-negative-{dtype}", {"pred": ok["pred"], "label": bad}, dtype,
            tags=("invalid",), invalid="label must hold values in [0, 1] (documented range (0, 1))",
        )
        bad = ok["label"].copy()
        bad[0, 0] = 1.5
        yield C.Case(
            f"invalid-label-above-1-{dtype}", {"pred": ok["pred"], "label": bad}, dtype,
            tags=("invalid",), invalid="label must hold values in [0, 1] (documented range (0, 1))",
        )
        yield C.Case(
            f"invalid-label-size-{dtype}",
            {"pred": ok["pred"], "label": C.probabilities(rng, (3, 3), 1, dtype)}, dtype,
            tags=("invalid",), invalid="label must have the same number of elements as pred",
        )
        yield C.Case(
            f"invalid-sample_weight-{dtype}",
            {**ok, "sample_weight": C.uniform(rng, (4, 1), 0, 1, dtype)}, dtype,
            tags=("invalid",), invalid="sample_weight must be broadcastable to the shape of pred",
        )
        yield C.Case(
            f"invalid-axis-{dtype}", ok, dtype, {"from_logits": False, "axis": 2},
            tags=("invalid",), invalid="axis must be a dimension of pred (from_logits=False)",
        )
    yield from C.subnormal_cases(SPEC.id, _subnormal)
    yield from _soft_large_batch()
    yield from _long()


def _long() -> Iterator[C.Case]:
    """The long regime, 16384 elements: label 1 everywhere, pred -1 at both ends (term 1)
    and -2**-(p+1) between (p the dtype's significand bits: a term of half an ULP of 1's
    half: float16 2**-12, float32 2**-25, bfloat16 2**-9)."""
    for dtype in C.HALF_ULP_DTYPES:
        pred = C.half_ulp_row(-1.0, -(2.0 ** -(C.BITS[dtype] + 1)))
        yield C.half_ulp_case({"pred": pred, "label": np.ones(pred.shape)}, dtype=dtype)


def _subnormal(dtype: str):
    sub = C.subnormal(dtype, 4)
    yield ("label", {"pred": C.in_dtype([[0.0, -0.5]], dtype), "label": C.in_dtype([[sub, 0.5]], dtype)}, {},
           "a subnormal label weighs its term: a subnormal gradient element")


def sample(rng, options: dict) -> dict:
    """Valid random float64 inputs for self-verification (see tests/)."""
    shape = (2, 3, 2) if options.get("axis", -1) == 1 or options.get("batch_axis", 0) == 1 else (3, 4)
    x = _inputs(rng, options, shape, "float64")
    sw_shape = [1] * len(shape)
    sw_shape[options.get("batch_axis", 0)] = shape[options.get("batch_axis", 0)]
    x["sample_weight"] = C.uniform(rng, tuple(sw_shape), 0.1, 2.0, "float64")
    return x
