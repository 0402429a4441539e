"""mxnet.gluon.loss.SoftmaxCrossEntropyLoss (alias SoftmaxCELoss) -- "Computes the softmax
cross entropy loss."

Documented formulas (MXNet 1.9.1 docstring), ``p = softmax(pred)`` along ``axis``::

    sparse_label=True:   L = -sum_i log p_{i, label_i}
    sparse_label=False:  L = -sum_i sum_j label_j log p_{ij}

with ``from_logits=True`` meaning "input is a log probability": ``log p = pred`` as given.

Reading implemented. Let ``logp = pred`` (from_logits) or ``log_softmax(pred, axis)``. The
per-position loss keeps the class axis at size 1 (pred's shape with ``axis`` of size 1)::

    sparse: l[pos] = -logp[pos, t]          t = label[pos], an integer in [0, C)
    dense:  l[pos] = -sum_j label[pos, j] * logp[pos, j]    (0 * log 0 = 0)

``sample_weight`` broadcasts to that per-position shape and multiplies it, ``weight``
multiplies, and "Dimenions other than batch_axis are averaged out"::

    out[b] = weight * mean_{pos in b} sample_weight[pos] * l[pos]

Gradient, with s[pos] = d out[b] / d l[pos] times the cotangent and P = exp(logp):

    from_logits=False: sparse d/dpred_k = s * (P_k - [k == t]);
                       dense  d/dpred_k = s * ((sum_j label_j) * P_k - label_k)
    from_logits=True:  sparse d/dpred_k = -s * [k == t];  dense d/dpred_k = -s * label_k
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
    id="mxnet.gluon.loss.SoftmaxCrossEntropyLoss",
    aliases=("SoftmaxCELoss", "mxnet.gluon.loss.SoftmaxCELoss"),
    summary="Softmax cross entropy between pred (logits or log-probabilities) and a sparse or dense label.",
    formula=(
        "logp = pred if from_logits else log_softmax(pred, axis); "
        "l = -logp[label] (sparse) or -sum_j label_j logp_j (dense), class axis kept at size 1; "
        "out[b] = weight * mean_{pos in b} sample_weight * l"
    ),
    options=(
        OptionSpec(
            "axis", -1, "int", "The axis to sum over when computing softmax and entropy.",
            fixture_values=(1,),
        ),
        OptionSpec(
            "sparse_label", True, "bool",
            "Whether label is an integer array instead of probability distribution.",
        ),
        OptionSpec(
            "from_logits", False, "bool",
            "Whether input is a log probability (usually from log_softmax) instead of "
            "unnormalized numbers.",
        ),
        G.weight_option(),
        G.batch_axis_option(),
    ),
    inputs=(
        InputSpec(
            "pred",
            "the prediction tensor, where the batch_axis dimension ranges over batch size and "
            "axis dimension ranges over the number of classes",
            differentiable=True,
        ),
        InputSpec(
            "label",
            "sparse_label: integers in [0, C) with pred's shape minus the axis dimension; "
            "otherwise floats in [0, 1] with pred's shape",
        ),
        InputSpec(
            "sample_weight",
            "element-wise weighting tensor, broadcastable to the per-position loss "
            "(pred's shape with the axis dimension of size 1)",
            optional=True,
        ),
    ),
    output_shape="(batch_size,)",
    readings=(
        Reading(
            "sample_weight shape",
            "sample_weight: element-wise weighting tensor. Must be broadcastable to the same "
            "shape as label. For example, if label has shape (64, 10) and you want to weigh "
            "each sample in the batch separately, sample_weight should have shape (64, 1).",
            "The loss per position has pred's shape with the class axis kept at size 1 (for "
            "pred (64, 10) that is (64, 1), matching the example); sample_weight must "
            "broadcast to that shape and multiplies it before the mean. A sample_weight of "
            "a dense label's full shape (64, 10) is rejected.",
        ),
        Reading(
            "sum or mean",
            "L = -sum_i log p_{i,label_i} ... loss: loss tensor with shape (batch_size,). "
            "Dimenions other than batch_axis are averaged out.",
            "The sum over i in the formula is over the positions that the output description "
            "then averages: out[b] is the mean over the non-batch positions, as for every Loss; "
            "the sum over classes j (dense) is a sum.",
        ),
        Reading(
            "from_logits",
            "from_logits (bool, default False) - Whether input is a log probability (usually "
            "from log_softmax) instead of unnormalized numbers.",
            "With from_logits=True, pred is used as log p exactly as given (it is not "
            "re-normalized and not checked to be <= 0).",
        ),
        Reading(
            "sparse label values",
            "label's shape should be (1,2,4) and values should be integers between 0 and 2",
            "(The example's 0..2 is garbled: the class axis of (1,2,3,4) at axis=2 has 3 "
            "classes.) A sparse label must hold integers in [0, C), C = pred.shape[axis]; "
            "anything else (negative, >= C, non-integer) is rejected.",
        ),
        Reading(
            "dense label",
            "If sparse_label is False, label's shape must be the same as pred and values "
            "should be floats in the range [0, 1].",
            "A dense label must have exactly pred's shape (MXNet reshapes any label of the "
            "same size) and values in [0, 1]; it is used as given, not required to sum to "
            "1 (that cannot be exact in a float dtype). label_j = 0 contributes 0 even "
            "where log p_j = -inf.",
        ),
        Reading(
            "axis and batch_axis",
            "pred: the prediction tensor, where the batch_axis dimension ranges over batch "
            "size and axis dimension ranges over the number of classes.",
            "axis and batch_axis must name different dimensions of pred (otherwise the "
            "output could not have shape (batch_size,)); the same dimension is rejected.",
        ),
    ),
    source="MXNet 1.9.1 python/mxnet/gluon/loss.py",
)

def forward(x: dict, options: dict) -> Forward:
    pred = x["pred"]
    nd = pred.ndim
    G.require(SPEC.id, nd >= 1, f"input pred has shape {pred.shape}; expected at least one dimension")
    ax = G.normalize_axis(SPEC.id, "axis", int(options["axis"]), nd)
    bax = G.normalize_axis(SPEC.id, "batch_axis", int(options["batch_axis"]), nd)
    G.require(
        SPEC.id,
        ax != bax,
        f"option axis={options['axis']} and batch_axis={options['batch_axis']} name the same "
        f"dimension of pred {pred.shape}; expected the class axis and the batch axis to differ",
    )
    n_class = pred.shape[ax]
    G.require(SPEC.id, n_class >= 1, f"input pred has shape {pred.shape}; the class axis {ax} is empty")
    from_logits = bool(options["from_logits"])
    G.require_not_nan(SPEC.id, "pred", pred)
    label = x["label"]
    if from_logits:
        logp = pred
        lse = None
    else:
        G.require_softmax_logits(SPEC.id, pred, ax, "class")
        logp, lse = A.log_softmax_lse(pred, ax)

    if options["sparse_label"]:
        want = pred.shape[:ax] + pred.shape[ax + 1:]
        if label.shape != want:
            raise InputError(
                f"{SPEC.id}: input label has shape {label.shape}; expected pred's shape "
                f"{pred.shape} with axis {ax} removed, {want} (sparse_label=True)"
            )
        for v in label.ravel():
            if not (mpmath.isfinite(v) and mpmath.isint(v) and 0 <= v < n_class):
                raise InputError(
                    f"{SPEC.id}: input label holds {describe(float(v))}; expected integer class "
                    f"indices in [0, {n_class}) (sparse_label=True, pred.shape[axis]={n_class})"
                )
        idx = np.expand_dims(
            np.array([int(v) for v in label.ravel()], dtype=np.int64).reshape(label.shape), ax
        )
        onehot = np.zeros(pred.shape, dtype=bool)
        np.put_along_axis(onehot, idx, True, axis=ax)
        picked = np.take_along_axis(logp, idx, axis=ax)
        elem = (-picked).astype(object)
        if from_logits:
            elem_scale = A.fabs(picked)
        else:
            elem_scale = (A.fabs(np.take_along_axis(pred, idx, axis=ax)) + A.fabs(lse)).astype(object)
        dense = None
    else:
        if label.shape != pred.shape:
            raise InputError(
                f"{SPEC.id}: input label has shape {label.shape}; expected pred's shape "
                f"{pred.shape} (sparse_label=False)"
            )
        for v in label.ravel():
            if not (0 <= v <= 1):
                raise InputError(
                    f"{SPEC.id}: input label holds {describe(float(v))}; expected probabilities in "
                    "[0, 1] (sparse_label=False)"
                )
        dense = label
        elem = (-A.asum(A.xmul(label, logp), axis=ax, keepdims=True)).astype(object)
        if from_logits:
            terms = A.fabs(A.xmul(label, pred))
        else:
            terms = A.xmul(label, (A.fabs(pred) + A.fabs(lse)).astype(object))
        elem_scale = A.asum(terms, axis=ax, keepdims=True)
        onehot = None


    def vjp(seed: np.ndarray) -> Gradient:  # per-position, class axis of size 1: broadcasts along it
        if from_logits:
            d = -onehot.astype(int) if dense is None else -dense
            return Gradient.exact((seed * d).astype(object))
        prob = A.exp(logp)
        if dense is None:
            d = (prob - onehot.astype(int)).astype(object)
        else:
            total = A.asum(dense, axis=ax, keepdims=True)
            d = (total * prob - dense).astype(object)
        return Gradient.exact((seed * d).astype(object))

    return G.batch_mean_forward(
        SPEC.id,
        x,
        options,
        elem,
        vjp,
        elem_scale=elem_scale,
        terms_per_element=n_class,
        sample_weight_like="the per-position loss (pred's shape with the axis dimension of size 1)",
    )


# --------------------------------------------------------------------------- cases


def _logprobs(rng, shape, axis, dtype):
    """Log-probabilities (log_softmax of random logits), rounded to dtype."""
    return C.in_dtype(C.log_softmax_f64(C.normal(rng, shape, 1.5, "float64"), axis), dtype)


def _inputs(rng, opts: dict, shape: tuple, dtype: str) -> dict:
    ax = opts.get("axis", -1) % len(shape)
    if opts.get("from_logits", False):
        pred = _logprobs(rng, shape, ax, dtype)
    else:
        pred = C.normal(rng, shape, 2.0, dtype)
    if opts.get("sparse_label", True):
        lshape = shape[:ax] + shape[ax + 1:]
        label = C.integers(rng, lshape, 0, shape[ax]).astype(dtype)
    else:
        label = C.probabilities(rng, shape, ax, dtype)
    return {"pred": pred, "label": label}


def cases() -> Iterator[C.Case]:
    sid = SPEC.id
    for dtype in C.DTYPES:
        variants = C.option_variants(SPEC) + [
            {"sparse_label": False, "from_logits": True},
            {"sparse_label": False, "axis": 1},
        ]
        for opts in variants:
            name = f"{C.variant_name(opts)}-{dtype}"
            rng = C.rng_for(sid, name)
            yield C.Case(name, _inputs(rng, opts, C.softmax_variant_shape(opts), dtype), dtype, opts)

        # ---- shapes
        rng = C.rng_for(sid, f"shapes-{dtype}")
        yield C.Case(
            f"minimum-one-class-{dtype}",
            {"pred": C.normal(rng, (1, 1), 1, dtype), "label": C.in_dtype([0], dtype)},
            dtype, tags=("shape",), note="a single class: p = 1, the loss is exactly 0",
        )
        yield C.Case(
            f"minimum-dense-{dtype}",
            {"pred": C.normal(rng, (1, 2), 1, dtype), "label": C.in_dtype([[0.25, 0.75]], dtype)},
            dtype, {"sparse_label": False}, tags=("shape",),
        )
        yield C.Case(
            f"doc-example-shape-axis2-{dtype}",
            _inputs(rng, {"axis": 2}, (1, 2, 3, 4), dtype),
            dtype, {"axis": 2}, tags=("shape",),
            note="the documented example: pred (1,2,3,4), axis=2, label (1,2,4)",
        )
        yield C.Case(
            f"batch_axis=1,axis=0-{dtype}",
            _inputs(rng, {"axis": 0}, (4, 3), dtype),
            dtype, {"axis": 0, "batch_axis": 1}, tags=("shape",),
            note="classes on axis 0, the batch on axis 1",
        )
        yield C.Case(
            f"sample_weight-doc-example-dense-{dtype}",
            {**_inputs(rng, {"sparse_label": False}, (3, 4), dtype),
             "sample_weight": C.uniform(rng, (3, 1), 0, 2, dtype)},
            dtype, {"sparse_label": False}, tags=("shape",),
            note="label (N, C) dense, sample_weight (N, 1) as in the documented example",
        )
        for sw_shape, what in (((2, 1, 1), "per-sample"), ((2, 1, 4), "full")):
            yield C.Case(
                f"sample_weight-{what}-axis=1-{dtype}",
                {**_inputs(rng, {"axis": 1}, (2, 3, 4), dtype),
                 "sample_weight": C.uniform(rng, sw_shape, 0, 2, dtype)},
                dtype, {"axis": 1, "weight": 2.0}, tags=("shape",),
            )

        # ---- extreme logits: a naive exp / log-sum-exp overflows or underflows
        big = C.OVERFLOWING_LOGIT[dtype]
        ext = C.in_dtype(
            [[big, 0, -big], [big, big / 2, 0], [-big, -big, -big], [big, big, 0]], dtype
        )
        yield C.Case(
            f"extreme-sparse-{dtype}",
            {"pred": ext, "label": C.in_dtype([0, 1, 2, 0], dtype)},
            dtype, tags=("extreme",),
            note="losses ~0, big/2, log 3 (a tie at -big), log 2",
        )
        yield C.Case(
            f"extreme-dense-{dtype}",
            {"pred": ext, "label": C.in_dtype(
                [[0.25, 0.75, 0], [0, 0.5, 0.5], [0.5, 0.25, 0.25], [0, 0, 1]], dtype)},
            dtype, {"sparse_label": False}, tags=("extreme",),
        )
        yield C.Case(
            f"extreme-axis=1-{dtype}",
            {"pred": C.in_dtype([[[big, -big], [-big, big], [0, 0]]], dtype),
             "label": C.in_dtype([[2, 1]], dtype)},
            dtype, {"axis": 1}, tags=("extreme",),
            note="per position: big and ~0 (the mean is big/2, finite in the dtype)",
        )

        # ---- ties, tiny loss, boundaries, singular
        yield C.Case(
            f"tie-equal-logits-{dtype}",
            {"pred": C.in_dtype([[5, 5, 5, 5], [-3, -3, -3, -3], [2, 2, -1, 0]], dtype),
             "label": C.in_dtype([3, 0, 1], dtype)},
            dtype, tags=("tie",), note="log 4, log 4, and a tie at the maximum",
        )
        margin = 10.0 if dtype == "float16" else 30.0
        tiny = C.in_dtype([[0, -margin, -margin, -margin], [-margin, -margin, 0, -margin]], dtype)
        yield C.Case(
            f"tiny-sparse-{dtype}",
            {"pred": tiny, "label": C.in_dtype([0, 2], dtype)},
            dtype, tags=("tiny",),
            note=f"the correct class dominates by {margin:g}: loss ~ 3 exp(-{margin:g}); "
            "computing lse - x_t without log1p loses every digit",
        )
        yield C.Case(
            f"tiny-dense-onehot-{dtype}",
            {"pred": tiny, "label": C.in_dtype([[1, 0, 0, 0], [0, 0, 1, 0]], dtype)},
            dtype, {"sparse_label": False}, tags=("tiny", "boundary"),
        )
        yield C.Case(
            f"boundary-zero-logits-{dtype}",
            {"pred": C.in_dtype([[0, 0, 0], [0, 0, 0]], dtype),
             "label": C.in_dtype([[1, 0, 0], [0, 0, 0]], dtype)},
            dtype, {"sparse_label": False}, tags=("boundary", "tie", "label"),
            note="exact zero logits; a one-hot label and an all-zero label (loss 0)",
        )
        yield C.Case(
            f"boundary-from_logits-logp0-{dtype}",
            {"pred": C.in_dtype([[0, -np.inf, -np.inf], [-0.5, -1.0, 0]], dtype),
             "label": C.in_dtype([0, 2], dtype)},
            dtype, {"from_logits": True}, tags=("boundary",),
            note="log p = 0 at the target (p = 1): the loss is exactly 0",
        )
        yield C.Case(
            f"boundary-neg-inf-logit-{dtype}",
            {"pred": C.in_dtype([[1, -np.inf, 0], [2, -np.inf, -np.inf]], dtype),
             "label": C.in_dtype([[0.5, 0, 0.5], [1, 0, 0]], dtype)},
            dtype, {"sparse_label": False}, tags=("boundary",),
            note="a -inf logit (p = 0) with label 0 contributes 0",
        )
        yield C.Case(
            f"singular-from_logits-neg-inf-{dtype}",
            {"pred": C.in_dtype([[-np.inf, -0.5], [-1.0, -0.25]], dtype),
             "label": C.in_dtype([0, 1], dtype)},
            dtype, {"from_logits": True}, tags=("singular",),
            note="log p = -inf at the target: the loss is +inf (gradient finite)",
        )
        yield C.Case(
            f"singular-logit-neg-inf-target-{dtype}",
            {"pred": C.in_dtype([[1, -np.inf, 0], [0.5, 0.25, 0]], dtype),
             "label": C.in_dtype([1, 0], dtype)},
            dtype, tags=("singular",),
        )
        yield C.Case(
            f"label-edges-{dtype}",
            {"pred": C.normal(rng, (4, 5), 2, dtype), "label": C.in_dtype([0, 4, 4, 0], dtype)},
            dtype, tags=("label",), note="the first and the last class index",
        )

        # ---- invalid
        ok = _inputs(rng, {}, (3, 4), dtype)
        for lab, rule, what in (
            ([0, 4, 1], "a sparse label must be an integer in [0, C)", "label-eq-C"),
            ([0, -1, 1], "a sparse label must be an integer in [0, C)", "label-negative"),
            ([0, 1.5, 1], "a sparse label must be an integer", "label-non-integer"),
        ):
            yield C.Case(
                f"invalid-{what}-{dtype}", {"pred": ok["pred"], "label": C.in_dtype(lab, dtype)},
                dtype, tags=("invalid",), invalid=rule,
            )
        yield C.Case(
            f"invalid-sparse-label-shape-{dtype}",
            {"pred": ok["pred"], "label": C.in_dtype(np.zeros((3, 4)), dtype)},
            dtype, tags=("invalid",),
            invalid="a sparse label must have pred's shape with the axis dimension removed",
        )
        yield C.Case(
            f"invalid-dense-label-shape-{dtype}",
            {"pred": ok["pred"], "label": C.probabilities(rng, (4, 3), 1, dtype)},
            dtype, {"sparse_label": False}, tags=("invalid",),
            invalid="a dense label must have the same shape as pred",
        )
        yield C.Case(
            f"invalid-dense-label-range-{dtype}",
            {"pred": ok["pred"], "label": C.in_dtype(
                [[0.5, 0.5, 0, 0], [1.5, -0.5, 0, 0], [0, 0, 0, 1]], dtype)},
            dtype, {"sparse_label": False}, tags=("invalid",),
            invalid="a dense label must hold values in [0, 1]",
        )
        yield C.Case(
            f"invalid-sample_weight-{dtype}",
            {**ok, "sample_weight": C.uniform(rng, (4, 1), 0, 1, dtype)},
            dtype, tags=("invalid",),
            invalid="sample_weight must be broadcastable to the per-position loss shape",
        )
        yield C.Case(
            f"invalid-axis-is-batch_axis-{dtype}", ok, dtype, {"axis": 0},
            tags=("invalid",), invalid="axis (classes) and batch_axis must be different dimensions",
        )


def sample(rng, options: dict) -> dict:
    """Valid random float64 inputs for self-verification (see tests/)."""
    axis = options.get("axis", -1)
    shape = (2, 3, 2) if axis == 1 or options.get("batch_axis", 0) == 1 else (3, 4)
    ax = axis % len(shape)
    x = _inputs(rng, options, shape, "float64")
    sw_shape = list(shape)
    sw_shape[ax] = 1
    x["sample_weight"] = C.uniform(rng, tuple(sw_shape), 0.1, 2.0, "float64")
    return x
