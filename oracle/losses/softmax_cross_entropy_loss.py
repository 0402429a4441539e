"""mxnet.gluon.loss.SoftmaxCrossEntropyLoss (alias SoftmaxCELoss) -- "Computes the softmax
cross entropy loss."

Documented formulas (MXNet 1.9.1 docstring), ``p = softmax(pred)`` along ``axis``::

    sparse_label=True:   L = -sum_i log p_{i, label_i}
    sparse_label=False:  L = -sum_i sum_j label_j log p_{ij}

with ``from_logits=True`` meaning "input is a log probability": ``log p = pred`` as given.

Reading implemented. Let ``logp = pred`` (from_logits) or ``log_softmax(pred, axis)``. The
per-position loss keeps the class axis at size 1 (pred's shape with ``axis`` of size 1)::

    sparse: l[pos] = -sw[pos] * logp[pos, t]          t = label[pos], an integer in [0, C)
    dense:  l[pos] = -sum_j sw[pos, j] * label[pos, j] * logp[pos, j]    (0 * log 0 = 0)

``sample_weight`` ("Must be broadcastable to the same shape as label") gives ``sw``:

* sparse (label = pred's shape without the class axis): a sample_weight that broadcasts to
  label's shape is broadcast to it and the class axis is inserted at size 1 ((N,) for pred
  (N, C); (N, W) for pred (N, C, W) with axis=1); one that does not, but broadcasts to the
  per-position shape (pred's shape with the class axis of size 1: (N, 1), MXNet's keepdims
  form), is read in that form; label's shape is tried first;
* dense (label = pred's shape): sample_weight broadcasts to label's shape and weighs each
  term label_j log p_j; a weight constant along the class axis ((64, 1) for label (64, 10),
  the documented example) weighs the position, a full (64, 10) weight each class term.

``weight`` multiplies, and "Dimenions other than batch_axis are averaged out"::

    out[b] = weight * mean_{pos in b} l[pos]

Gradient, with s[pos] = d out[b] / d l[pos] times the cotangent, P = exp(logp) and, dense,
the weighted label wl_j = sw_j * label_j:

    from_logits=False: sparse d/dpred_k = s * sw * (P_k - [k == t]);
                       dense  d/dpred_k = s * ((sum_j wl_j) * P_k - wl_k)
    from_logits=True:  sparse d/dpred_k = -s * sw * [k == t];  dense d/dpred_k = -s * wl_k

Scale (tolerance model): class j contributes ``|pred_j| + |logsumexp(pred)|`` over the
position's class slice: the target's for a sparse label, the label-weighted sum over j for
a dense one. The term scale follows ``/work/shared/DESIGN.md`` ("for softmax cross-entropy, |x_t| +
|logsumexp(x)|"), the magnitudes of the terms the documented formula adds, which is what
backward stability under a relative input perturbation allows (a logit of 1000 perturbed by
eps moves the loss by 1000 eps); issue 11 item 3 requires that "logaddexp instead of max-
shift" is a correct variant that passes everything, which a shift-invariant scale denied
(ruling of issue 13; see oracle.arrays.log_softmax_terms).
With from_logits=True the terms are |pred_t| (sparse) and sum_j |label_j pred_j|.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from .. import arrays as A
from .. import cases as C
from .. import conventions as G
from .. import real as R
from ..catalog import InputSpec, LossSpec, OptionSpec, Reading
from ..errors import InputError, describe
from ..result import Forward, Gradient

SPEC = LossSpec(
    id="mxnet.gluon.loss.SoftmaxCrossEntropyLoss",
    aliases=("SoftmaxCELoss", "mxnet.gluon.loss.SoftmaxCELoss"),
    summary="Softmax cross entropy between pred (logits or log-probabilities) and a sparse or dense label.",
    formula=(
        "logp = pred if from_logits else log_softmax(pred, axis); "
        "l = -sw * logp[label] (sparse) or -sum_j sw_j label_j logp_j (dense), class axis kept "
        "at size 1, sw = sample_weight broadcast to label's shape; "
        "out[b] = weight * mean_{pos in b} l"
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
            "element-wise weighting tensor, broadcastable to the same shape as label (sparse: "
            "pred's shape without the axis dimension, or with it of size 1; dense: pred's "
            "shape, weighing each class term)",
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
            "sample_weight must broadcast to label's shape. Sparse labels (label = pred's "
            "shape without the class axis): the weight is broadcast to label's shape and the "
            "class axis inserted at size 1, so it weighs each position ((N,) for pred (N, C); "
            "(N, W) for pred (N, C, W) with axis=1; the example's (64, 1) for a label (64, 10) "
            "of pred (64, 10, C)). A weight that does not broadcast to label's shape but does "
            "to the per-position shape, pred's shape with the class axis of size 1 (MXNet's "
            "keepdims form, e.g. (N, 1) for pred (N, C)), is also accepted and read in that "
            "form -- a leniency beyond the text, which the documented (64, 1) example and "
            "MXNet's own implementation suggest; label's shape is tried first, so it decides "
            "where both apply ((2, 1, 4) for pred (2, 2, 3, 4) with axis=2 is label-shaped, "
            "label being (2, 2, 4): it weighs by pred's axes 0 and 3). Dense labels (label = pred's shape; "
            "the example's label (64, 10) of pred (64, 10)): the weight broadcasts to label's "
            "shape and multiplies each term, l = -sum_j sw_j label_j log p_j, so (64, 1) "
            "weighs each sample and a full (64, 10) weight each class term. Any other shape "
            "is rejected.",
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
        Reading(
            "infinite value",
            "L = -sum_i log p_{i, label_i} ... from_logits (bool, default False) - Whether input "
            "is a log probability (usually from log_softmax) instead of unnormalized numbers.",
            "Where the target's probability is exactly 0 -- log p = -inf given with "
            "from_logits=True, or a logit of -inf at the target -- the documented -log p is "
            "+inf and so is the expected value (a dense label of 0 there weighs nothing: "
            "0 * log 0 = 0). The gradient stays finite (p_k - [k = t], or -[k = t] from logits).",
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
        term_scale = None
    else:
        G.require_softmax_logits(SPEC.id, pred, ax, "class")
        logp, term_scale = A.log_softmax_terms(pred, ax)
    elem_shape = pred.shape[:ax] + (1,) + pred.shape[ax + 1:]
    sw = x.get("sample_weight")

    if options["sparse_label"]:
        want = pred.shape[:ax] + pred.shape[ax + 1:]
        if label.shape != want:
            raise InputError(
                f"{SPEC.id}: input label has shape {label.shape}; expected pred's shape "
                f"{pred.shape} with axis {ax} removed, {want} (sparse_label=True)"
            )
        for v in label.ravel():
            if not (R.isfinite(v) and R.isint(v) and 0 <= v < n_class):
                raise InputError(
                    f"{SPEC.id}: input label holds {describe(float(v))}; expected integer class "
                    f"indices in [0, {n_class}) (sparse_label=True, pred.shape[axis]={n_class})"
                )
        sw = _sparse_sample_weight(sw, want, elem_shape, ax)
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
            elem_scale = np.take_along_axis(term_scale, idx, axis=ax).astype(object)
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
        # sample_weight weighs each term label_j log p_j (a weight constant along the class
        # axis weighs the position): it goes into the class sum, the reduction gets none
        sw_full = None if sw is None else G.broadcast_input(
            SPEC.id, "sample_weight", sw, pred.shape, "label",
            "expected a weight broadcastable to the same shape as label (sparse_label=False)",
        )
        sw = None
        cross = A.xmul(label, logp)
        if from_logits:
            terms = A.fabs(A.xmul(label, pred))
        else:
            terms = A.xmul(label, term_scale)
        if sw_full is not None:
            cross = (sw_full * cross).astype(object)
            terms = (A.fabs(sw_full) * terms).astype(object)
            dense = (sw_full * label).astype(object)  # the weighted label
        else:
            dense = label
        elem = (-A.asum(cross, axis=ax, keepdims=True)).astype(object)
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
        {**x, "sample_weight": sw},
        options,
        elem,
        vjp,
        elem_scale=elem_scale,
        terms_per_element=n_class,
        sample_weight_like="the per-position loss (pred's shape with the axis dimension of size 1)",
    )


def _sparse_sample_weight(sw, label_shape: tuple, elem_shape: tuple, ax: int):
    """A sparse label's sample_weight in the per-position shape (class axis of size 1):
    broadcast to label's shape with the class axis inserted, or else, if it broadcasts to
    the per-position shape (MXNet's keepdims form), as given."""
    if sw is None:
        return None
    for shape in (label_shape, elem_shape):
        try:
            fits = np.broadcast_shapes(sw.shape, shape) == tuple(shape)
        except ValueError:
            fits = False
        if fits and shape == label_shape:
            return np.expand_dims(np.broadcast_to(sw, label_shape), ax)
        if fits:
            return sw
    raise InputError(
        f"{SPEC.id}: input sample_weight has shape {sw.shape}, which broadcasts neither to the "
        f"shape of label {tuple(label_shape)} nor to the per-position loss shape "
        f"{tuple(elem_shape)} (pred's shape with axis {ax} of size 1); expected a weight "
        "broadcastable to the same shape as label"
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


def _soft_large_batch() -> Iterator[C.Case]:
    """Soft targets at low precision with a large batch: 1024 samples of 4 classes in float16
    and bfloat16 (one loss per sample, each a sum over the classes)."""
    for dt in ("float16", "bfloat16"):
        rng = C.rng_for(SPEC.id, f"soft-large-batch-{dt}")
        yield C.Case(f"soft-large-batch-{dt}", _inputs(rng, {"sparse_label": False}, C.SOFT_BATCH, dt), dt, {"sparse_label": False},
                     note="soft targets, a batch of 1024 at low precision")

#: why an option value has no case of a regime (fixtures/COVERAGE.md, oracle.coverage.gap_reason)
REGIME_GAPS = {("*", "long"): C.LONG_DEFAULTS_ONLY}


def cases() -> Iterator[C.Case]:
    sid = SPEC.id
    sources: dict[str, C.Case] = {}  # the float32 regime cases the batch_axis=1 crossings reuse
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
        for name, opts, shape, sw_shape, note in (
            ("sample_weight-label-shaped-sparse", {}, (3, 4), (3,),
             "label (N,) sparse, sample_weight (N,): label's shape, one weight per sample"),
            ("sample_weight-label-shaped-axis=1", {"axis": 1}, (2, 3, 4), (2, 4),
             "pred (2,3,4), axis=1: label and sample_weight (2,4), one weight per position"),
            ("sample_weight-dense-full", {"sparse_label": False}, (3, 4), (3, 4),
             "label (N, C) dense with a full (N, C) sample_weight: weighs each term label_j log p_j"),
        ):
            srng = C.rng_for(sid, f"{name}-{dtype}")
            yield C.Case(
                f"{name}-{dtype}",
                {**_inputs(srng, opts, shape, dtype), "sample_weight": C.uniform(srng, sw_shape, 0, 2, dtype)},
                dtype, opts, tags=("shape",), note=note,
            )

        # ---- extreme logits: a naive exp / log-sum-exp overflows or underflows
        big = C.OVERFLOWING_LOGIT[dtype]
        ext = C.in_dtype(
            [[big, 0, -big], [big, big / 2, 0], [-big, -big, -big], [big, big, 0]], dtype
        )
        sources[f"extreme-{dtype}"] = C.Case(
            f"extreme-sparse-{dtype}",
            {"pred": ext, "label": C.in_dtype([0, 1, 2, 0], dtype)},
            dtype, tags=("extreme",),
            note="losses ~0, big/2, log 3 (a tie at -big), log 2",
        )
        yield sources[f"extreme-{dtype}"]
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
        sources[f"tiny-{dtype}"] = C.Case(
            f"tiny-sparse-{dtype}",
            {"pred": tiny, "label": C.in_dtype([0, 2], dtype)},
            dtype, tags=("tiny",),
            note=f"the correct class dominates by {margin:g}: loss ~ 3 exp(-{margin:g}); "
            "computing lse - x_t without log1p loses every digit",
        )
        yield sources[f"tiny-{dtype}"]
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
            invalid="sample_weight must be broadcastable to label's shape (or to the per-position loss shape)",
        )
        yield C.Case(
            f"invalid-axis-is-batch_axis-{dtype}", ok, dtype, {"axis": 0},
            tags=("invalid",), invalid="axis (classes) and batch_axis must be different dimensions",
        )
    yield from C.subnormal_cases(SPEC.id, _subnormal)
    yield from _soft_large_batch()
    yield from _batch_axis_crossings(sources)
    yield from _long()


def _long() -> Iterator[C.Case]:
    """The long regime, over 16384 classes: the log-sum-exp's sum of exp(pred - max) has the
    terms 1 at both ends (logits 0, the first the label) and exp(m) between, below half an
    ULP of 1 (m as for PoissonNLLLoss: float16 -8.5, float32 -17.5, bfloat16 -6.5): a running
    sum in the dtype gives log 2, the loss is log(2 + 16382 exp(m))."""
    from .poisson_nll_loss import LONG_LOG_RATE

    for dtype in C.HALF_ULP_DTYPES:
        yield C.half_ulp_case({"pred": C.half_ulp_row(0.0, LONG_LOG_RATE[dtype]), "label": np.asarray([0], dtype=np.int64)},
                              note=f"a log-sum-exp over 16384 classes whose {dtype} running sum stagnates", dtype=dtype)


def _batch_axis_crossings(sources: dict[str, C.Case]) -> Iterator[C.Case]:
    """batch_axis=1 crossed with the extreme and tiny regimes: with the default axis=-1 the
    classes need an axis of their own, so the float32 regime case's (N, C) logits become
    (T, N, C) = (N/2, 2, C) (2 samples, each averaged over T positions) and its labels (N/2, 2)."""
    for tag in ("extreme", "tiny"):
        src = sources[f"{tag}-float32"]
        pred, label = src.inputs["pred"], src.inputs["label"]
        n, k = pred.shape
        t = n // 2 if n % 2 == 0 else n
        b = n // t
        yield C.crossing(tag, src, {"batch_axis": 1},
                         {"pred": pred.reshape(t, b, k).copy(), "label": label.reshape(t, b).copy()},
                         f"reshaped to pred ({t}, {b}, {k}), label ({t}, {b})")


def _subnormal(dtype: str):
    g = C.SUBNORMAL_GAP[dtype]
    yield ("confident", {"pred": C.in_dtype([[0.0, g], [g, 0.0]], dtype), "label": C.in_dtype([1, 0], dtype)}, {},
           f"log(1 + exp(-{g:g})) and p = exp(-{g:g})/(1 + exp(-{g:g})): subnormal values and gradients")


def sample(rng, options: dict) -> dict:
    """Valid random float64 inputs for self-verification (see tests/), with a sample_weight
    of label's shape or of the per-position shape (class axis of size 1)."""
    axis = options.get("axis", -1)
    shape = (2, 3, 2) if axis == 1 or options.get("batch_axis", 0) == 1 else (3, 4)
    ax = axis % len(shape)
    x = _inputs(rng, options, shape, "float64")
    if rng.random() < 0.5:
        sw_shape = list(shape)
        sw_shape[ax] = 1
    elif options.get("sparse_label", True):
        sw_shape = list(shape[:ax] + shape[ax + 1:])
    else:
        sw_shape = list(shape)
    x["sample_weight"] = C.uniform(rng, tuple(sw_shape), 0.1, 2.0, "float64")
    return x
