"""mxnet.gluon.loss.SDMLLoss -- "Calculates Batchwise Smoothed Deep Metric Learning (SDML)
Loss given two input tensors and a smoothing weight".

Documented semantics (MXNet 1.9.1 docstrings of the class and of its ``_loss`` and
``_compute_labels``): "computes the kl divergence between the negative distances
(internally it compute a softmax casting into probabilities) and the identity matrix",
the identity smoothed so that ``smoothing_parameter`` ("Probability mass to be distributed
over the minibatch") is spread over the other items ([[0.9, 0.1], [0.1, 0.9]]).

Reading implemented (see ``SPEC.readings``), with B = batch_size, s = smoothing_parameter::

    labels_ij = (1 - s) if i == j else s / (B - 1)
    d_ij      = ||x1_i - x2_j||^2
    logp_ij   = log_softmax_j(-d_ij)
    out[i]    = weight * sum_j labels_ij * (log labels_ij - logp_ij)     (0*log 0 = 0)

Gradient: with p = softmax_j(-d) and G_ij = ct_i * weight * (labels_ij - p_ij * sum_k
labels_ik), d/dx1_ik = 2 * sum_j G_ij (x1_ik - x2_jk) and d/dx2_jk = -2 * sum_i G_ij
(x1_ik - x2_jk).

Scale (tolerance model), per row i: weight times sum_j [labels_ij*|log labels_ij| +
labels_ij*(|d_ij| + |logsumexp_j(-d_ij)|) + |labels_ij - p_ij|*d_ij]: the terms of the KL
sum, plus the error the rounding of each d_ij carries into the loss. The log_softmax part
is scaled as softmax cross-entropy's (logits -d_ij).
The term scale follows ``/work/shared/DESIGN.md`` ("for softmax cross-entropy, |x_t| +
|logsumexp(x)|"), the magnitudes of the terms the documented formula adds, which is what
backward stability under a relative input perturbation allows (a logit of 1000 perturbed by
eps moves the loss by 1000 eps); issue 11 item 3 requires that "logaddexp instead of max-
shift" is a correct variant that passes everything, which a shift-invariant scale denied
(ruling of issue 13; see oracle.arrays.log_softmax_terms).
"""

from __future__ import annotations

from collections.abc import Iterator

import mpmath
import numpy as np

from .. import arrays as A
from .. import cases as C
from .. import real as R
from ..catalog import InputSpec, LossSpec, OptionSpec, Reading
from ..conventions import batch_axis_option, normalize_axis, require, weight_factor, weight_option
from ..result import Forward, Gradient


def _check_smoothing(s: float) -> str | None:
    if not 0 <= s < 1:
        return "a probability mass in [0, 1): 'Must be < 1.0' and not negative"
    return None


SPEC = LossSpec(
    id="mxnet.gluon.loss.SDMLLoss",
    summary="KL divergence between smoothed identity labels and the softmax of negative "
    "squared distances between the rows of x1 and x2.",
    formula="out[i] = weight * sum_j labels_ij * (log labels_ij - log_softmax_j(-||x1_i - x2_j||^2))",
    options=(
        OptionSpec(
            "smoothing_parameter",
            0.3,
            "float",
            "Probability mass to be distributed over the minibatch. Must be < 1.0.",
            check=_check_smoothing,
            domain="a real number in [0, 1)",
            fixture_values=(0.0, 0.9),
        ),
        weight_option(1.0),
        batch_axis_option(),
    ),
    inputs=(
        InputSpec("x1", "Minibatch of data points with shape (batch_size, vector_dim)", differentiable=True),
        InputSpec(
            "x2",
            "Minibatch of data points with shape (batch_size, vector_dim); x2[i] is the "
            "positive sample of x1[i]",
            differentiable=True,
        ),
    ),
    output_shape="(batch_size,)",
    readings=(
        Reading(
            "sum over the batch items (KL divergence proper)",
            "the function computes the kl divergence between the negative distances "
            "(internally it compute a softmax casting into probabilities) and the identity "
            "matrix.  /  loss: loss tensor with shape (batch_size,).",
            "out[i] is the KL divergence of row i: a SUM over j of labels_ij * (log "
            "labels_ij - log p_ij), not the mean that the shared Loss convention "
            "('Dimensions other than batch_axis are averaged out') would give; the SDMLLoss "
            "docs do not state that convention.",
        ),
        Reading(
            "distance",
            "This function computes the euclidean distance between every vector in the two "
            "batches in input.  /  # sum of squared differences distance",
            "d_ij is the SQUARED euclidean distance ||x1_i - x2_j||^2 (the private "
            "_compute_distances docstring says 'euclidean distance'; its code and comment "
            "use the sum of squared differences).",
        ),
        Reading(
            "softmax axis",
            "Given the question president of France in batch 1 the model will learn to "
            "predict french president comparing it with all the other vectors in batch 2",
            "The softmax is over j (the items of x2) for each item i of x1.",
        ),
        Reading(
            "smoothed labels",
            "smoothing_parameter: Probability mass to be distributed over the minibatch.  "
            "/  labels: [[0.9, 0.1] [0.1, 0.9]]",
            "labels = eye * (1 - s) + (1 - eye) * s / (batch_size - 1): the mass s is "
            "spread evenly over the batch_size - 1 unpaired items.",
        ),
        Reading(
            "smoothing_parameter domain",
            "Probability mass to be distributed over the minibatch. Must be < 1.0.",
            "A probability mass: 0 <= smoothing_parameter < 1. At 0 the labels hold zeros, "
            "whose terms are 0 (0 * log 0 = 0).",
        ),
        Reading(
            "batch of one",
            "labels = gold * (1 - self.smoothing_parameter) + (1 - gold) * "
            "self.smoothing_parameter / (batch_size - 1)",
            "A batch of 1 has no unpaired items and s / (batch_size - 1) divides by zero: "
            "invalid input (whatever s is).",
        ),
        Reading(
            "batch_axis",
            "batch_axis : int, default 0 -- The axis that represents mini-batch.  /  x1: "
            "Minibatch of data points with shape (batch_size, vector_dim)",
            "batch_axis=1 means x1 and x2 are laid out (vector_dim, batch_size); the output "
            "is (batch_size,) either way (MXNet's code ignores batch_axis).",
        ),
        Reading(
            "weight",
            "weight : float or None -- Global scalar weight for loss.",
            "weight multiplies the output (None: 1). MXNet's code never applies it (its "
            "inner KLDivLoss is built without the weight).",
        ),
        Reading(
            "input shapes",
            "x1: Minibatch of data points with shape (batch_size, vector_dim)  /  x2: "
            "Minibatch of data points with shape (batch_size, vector_dim)",
            "x1 and x2 must both be 2-D with the same shape; anything else is invalid input.",
        ),
    ),
)


def _check_shapes(x1: np.ndarray, x2: np.ndarray, batch_axis: int) -> None:
    for name, x in (("x1", x1), ("x2", x2)):
        require(
            SPEC.id,
            x.ndim == 2,
            f"input {name} has shape {x.shape}; expected a 2-D minibatch "
            + ("(batch_size, vector_dim)" if batch_axis == 0 else "(vector_dim, batch_size) for batch_axis=1"),
        )
    require(SPEC.id, x1.shape == x2.shape, f"input x2 has shape {x2.shape}; expected the shape of x1 {x1.shape}")
    require(
        SPEC.id,
        x1.shape[batch_axis] >= 2,
        f"inputs x1 and x2 hold a batch of {x1.shape[batch_axis]} (shape {x1.shape}, batch_axis="
        f"{batch_axis}); expected batch_size >= 2 (the labels divide by batch_size - 1)",
    )


def forward(x: dict, options: dict) -> Forward:
    x1, x2 = x["x1"], x["x2"]
    require(SPEC.id, x1.ndim == 2, f"input x1 has shape {x1.shape}; expected a 2-D minibatch")
    axis = normalize_axis(SPEC.id, "batch_axis", int(options["batch_axis"]), 2)
    _check_shapes(x1, x2, axis)
    if axis == 1:
        x1, x2 = x1.T, x2.T
    b, dim = x1.shape
    s = R.real(options["smoothing_parameter"])
    w = weight_factor(options)
    off = s / (b - 1)
    labels = np.empty((b, b), dtype=object)
    for i in range(b):
        for j in range(b):
            labels[i, j] = 1 - s if i == j else off
    diff = (x1[:, None, :] - x2[None, :, :]).astype(object)  # (b, b, dim): x1_i - x2_j
    d = A.asum((diff * diff).astype(object), axis=2) if dim else A.zeros((b, b))
    neg = (-d).astype(object)
    logp, term_scale = A.log_softmax_terms(neg, axis=1)  # term_scale: |d_ij - min_j d_ij| + |log_s_i|
    ent = A.xlogy(labels, labels).astype(object)
    cross = np.where(labels == 0, R.real(0), labels * logp).astype(object)
    value = (w * A.asum((ent - cross).astype(object), axis=1)).astype(object)
    p = A.exp(logp)
    lsum = A.asum(labels, axis=1, keepdims=True)
    g_unit = (labels - p * lsum).astype(object)  # d out_i / d d_ij, before the weight
    scale_terms = (
        A.fabs(ent) + labels * term_scale + A.fabs(g_unit) * d
    ).astype(object)
    scale = (abs(w) * A.asum(scale_terms, axis=1)).astype(object)

    def vjp(ct: np.ndarray) -> dict[str, Gradient]:
        g = (ct.reshape(b, 1) * w * g_unit).astype(object)
        g1 = (2 * A.asum((g[:, :, None] * diff).astype(object), axis=1)).astype(object)
        g2 = (-2 * A.asum((g[:, :, None] * diff).astype(object), axis=0)).astype(object)
        if axis == 1:
            g1, g2 = g1.T, g2.T
        return {"x1": Gradient.exact(np.ascontiguousarray(g1)), "x2": Gradient.exact(np.ascontiguousarray(g2))}

    return Forward(value, scale, b * (dim + 2), vjp)


# ------------------------------------------------------------------------------ cases


def _pair(rng, b, dim, dtype, noise=0.5, spread=1.0, axis=0):
    """x1 random, x2 a noisy copy: paired rows are the nearest, as the loss expects."""
    x1 = C.normal(rng, (b, dim), spread, dtype)
    x2 = C.in_dtype(x1.astype(np.float64) + C.normal(rng, (b, dim), noise, "float64"), dtype)
    if axis == 1:
        x1, x2 = x1.T.copy(), x2.T.copy()
    return {"x1": x1, "x2": x2}

#: why an option value has no case of a regime (fixtures/COVERAGE.md, oracle.coverage.gap_reason)
REGIME_GAPS = {("*", "long"): C.LONG_DEFAULTS_ONLY}


def cases() -> Iterator[C.Case]:
    for dtype in C.DTYPES:
        for opts in C.option_variants(SPEC):
            name = f"{C.variant_name(opts)}-{dtype}"
            rng = C.rng_for(SPEC.id, name)
            axis = opts.get("batch_axis", 0)
            tags = ("shape",) if axis else ("regular",)
            yield C.Case(name, _pair(rng, 4, 3, dtype, axis=axis), dtype, opts, tags=tags)
        rng = C.rng_for(SPEC.id, f"more-{dtype}")
        yield C.Case(
            f"unrelated-pairs-{dtype}",
            {"x1": C.normal(rng, (5, 2), 1.0, dtype), "x2": C.normal(rng, (5, 2), 1.0, dtype)},
            dtype,
            note="x2 independent of x1: a large loss",
        )
        yield C.Case(f"minimum-{dtype}", _pair(rng, 2, 1, dtype), dtype, tags=("shape",), note="batch of 2, vector_dim 1")
        yield C.Case(
            f"minimum-batch_axis=1-{dtype}",
            _pair(rng, 2, 1, dtype, axis=1),
            dtype,
            {"batch_axis": 1},
            tags=("shape",),
        )
        yield C.Case(f"wide-{dtype}", _pair(rng, 3, 8, dtype), dtype, tags=("shape",), note="vector_dim > batch_size")
        yield C.Case(
            f"identical-inputs-{dtype}",
            {"x1": (x := C.normal(rng, (4, 3), 1.0, dtype)), "x2": x.copy()},
            dtype,
            tags=("boundary",),
            note="x1 == x2: every paired distance is exactly 0",
        )
        yield C.Case(
            f"identical-inputs-no-smoothing-{dtype}",
            {"x1": (x := C.normal(rng, (4, 3), 1.0, dtype)), "x2": x.copy()},
            dtype,
            {"smoothing_parameter": 0.0},
            tags=("boundary",),
            note="labels = identity (zeros off the diagonal)",
        )
        x2 = C.normal(rng, (4, 2), 1.0, dtype)
        x2[2] = x2[1]
        yield C.Case(
            f"tie-equal-rows-of-x2-{dtype}",
            {"x1": C.normal(rng, (4, 2), 1.0, dtype), "x2": x2},
            dtype,
            tags=("tie",),
            note="x2[1] == x2[2]: every row has two equal distances (equal logits)",
        )
        yield C.Case(
            f"tie-all-zero-{dtype}",
            {"x1": C.in_dtype(np.zeros((3, 2)), dtype), "x2": C.in_dtype(np.zeros((3, 2)), dtype)},
            dtype,
            tags=("tie", "boundary"),
        )
        # x2 rows 0, 1, 2 on an equilateral triangle of squared side log(0.7 / 0.15), x1
        # rows 0 and 1 on their pairs: softmax_j(-d_ij) = (0.7, 0.15, 0.15) = labels_i up to
        # the rounding of the inputs, so rows 0 and 1 have a KL of order eps^2; row 2 is
        # ordinary (and keeps the gradients well away from zero)
        side = float(C.mp_apply(lambda v: mpmath.sqrt(mpmath.log(v)), 0.7 / 0.15))
        tri = C.in_dtype([[0.0, 0.0], [side, 0.0], [side / 2, side * float(C.mp_apply(mpmath.sqrt, 3.0)) / 2]], dtype)
        yield C.Case(
            f"tiny-kl-{dtype}",
            {"x1": C.in_dtype([tri[0], tri[1], [side / 2, -side]], dtype), "x2": tri},
            dtype,
            tags=("tiny",),
            note="rows 0 and 1: the softmax matches the smoothed labels up to rounding",
        )
        far = {"float16": 3.0, "float32": 5.0, "float64": 8.0}[dtype]
        grid = C.in_dtype([[0.0, 0.0], [far, 0.0], [0.0, far], [far, far]], dtype)
        yield C.Case(
            f"tiny-separated-no-smoothing-{dtype}",
            {"x1": grid, "x2": grid.copy()},
            dtype,
            {"smoothing_parameter": 0.0},
            tags=("tiny",),
            note="paired distances 0, the others far: a loss of order exp(-far^2)",
        )
        # x1 rows on a grid of spacing sp (coordinates 0, 1), x2 = x1 moved by `shift` along
        # coordinate 2 (plus noise): every exp(-d) underflows the dtype, while the paired
        # item stays the nearest by sp^2, so the softmax (and the gradient) is well-conditioned
        sp, shift = {"float16": (6.0, 5.0), "float32": (7.0, 11.0), "float64": (8.0, 28.0)}[dtype]
        grid = np.array([[0.0, 0.0, 0.0], [sp, 0.0, 0.0], [0.0, sp, 0.0], [sp, sp, 0.0]])
        yield C.Case(
            f"extreme-distances-{dtype}",
            {
                "x1": C.in_dtype(grid, dtype),
                "x2": C.in_dtype(grid + [0.0, 0.0, shift] + C.normal(rng, (4, 3), 0.3, "float64"), dtype),
            },
            dtype,
            tags=("extreme",),
            note="every distance so large that exp(-d) underflows the dtype (unshifted: 0/0)",
        )
        spread = {"float16": 1.0, "float32": 3.0, "float64": 8.0}[dtype]
        yield C.Case(
            f"extreme-unrelated-{dtype}",
            {"x1": C.normal(rng, (3, 2), 4 * spread, dtype), "x2": C.normal(rng, (3, 2), 4 * spread, dtype)},
            dtype,
            {"smoothing_parameter": 0.0},
            tags=("extreme",),
            note="large distances, paired items not the nearest: a large loss",
        )
        yield C.Case(
            f"invalid-batch-of-one-{dtype}",
            {"x1": C.normal(rng, (1, 3), 1.0, dtype), "x2": C.normal(rng, (1, 3), 1.0, dtype)},
            dtype,
            tags=("invalid",),
            invalid="batch_size must be >= 2: the labels divide by batch_size - 1",
        )
        yield C.Case(
            f"invalid-shape-mismatch-{dtype}",
            {"x1": C.normal(rng, (3, 2), 1.0, dtype), "x2": C.normal(rng, (3, 3), 1.0, dtype)},
            dtype,
            tags=("invalid",),
            invalid="x1 and x2 both have shape (batch_size, vector_dim)",
        )
        yield C.Case(
            f"invalid-rank-{dtype}",
            {"x1": C.normal(rng, (2, 2, 2), 1.0, dtype), "x2": C.normal(rng, (2, 2, 2), 1.0, dtype)},
            dtype,
            tags=("invalid",),
            invalid="x1 and x2 are 2-D minibatches (batch_size, vector_dim)",
        )
        for s in (1.0, -0.1):
            yield C.Case(
                f"invalid-smoothing_parameter={s}-{dtype}",
                _pair(rng, 3, 2, dtype),
                dtype,
                {"smoothing_parameter": s},
                tags=("invalid",),
                invalid="smoothing_parameter is a probability mass: 'Must be < 1.0', not negative",
            )
    yield from _long()


#: per dtype, s: the features of x2's second row between its ends are 2**-s, their squares
#: 2**-2s below half an ULP of 1
_LONG_S = {"float16": 6, "float32": 13, "bfloat16": 5}


def _long() -> Iterator[C.Case]:
    """The long regime, a batch of 2 over 16384 features: x1 = 0, x2's first row 0 and its
    second (1, 2**-s, ..., 2**-s, 1), so the squared distances d_i1 = ||x1_i - x2_1||**2 add
    the terms 1 at both ends and 2**-2s between (float16 2**-12, float32 2**-26, bfloat16
    2**-10: a quarter ULP of 1 and 2 or less): running sums in the dtype give 2, the exact
    distance is 2 + 16382 * 2**-2s, and the softmax of -d moves with it."""
    for dtype in C.HALF_ULP_DTYPES:
        row = C.half_ulp_row(1.0, 2.0 ** -_LONG_S[dtype])
        x2 = np.concatenate([np.zeros(row.shape), row])
        yield C.half_ulp_case({"x1": np.zeros(x2.shape), "x2": x2}, dtype=dtype,
                              note=f"squared distances over 16384 features whose {dtype} running sums stagnate")


def sample(rng, options: dict) -> dict:
    """Valid random float64 inputs for self-verification (see tests/)."""
    return _pair(rng, 3, 2, "float64", noise=0.7, axis=options.get("batch_axis", 0))
