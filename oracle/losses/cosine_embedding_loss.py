"""mxnet.gluon.loss.CosineEmbeddingLoss -- "For a target label 1 or -1, vectors input1 and
input2, the function computes the cosine distance between the vectors."

Documented formula (MXNet 1.9.1 docstring)::

    L = sum_i { 1 - cos_sim(input1_i, input2_i)   if label_i = 1
              { cos_sim(input1_i, input2_i)       if label_i = -1
    cos_sim(input1, input2) = input1_i . input2_i / (||input1_i|| . ||input2_i||)

with a ``margin`` documented as the "Margin of separation between correct and incorrect
pair". Reading: each sample b is the vector u_b (v_b) of all non-batch elements of
input1 (input2, read in row-major order into input1's shape), c_b = cos_sim(u_b, v_b), and

    out[b] = weight * sw[b] * (1 - c_b)                 if label_b = 1
    out[b] = weight * sw[b] * max(0, c_b - margin)      if label_b = -1

(the second equals the formula's cos_sim whenever c_b >= margin, in particular for the
default margin 0 when c_b >= 0); ``sw[b]`` is the per-sample weight (1 without
sample_weight). A zero vector makes cos_sim 0/0 and is invalid input.

Gradient, with s_b = +-1 the slope of the per-sample loss in c_b (-1 for label 1, 1 for an
active label -1, 0 for a clamped one; at c_b == margin any value in [0, 1]):

    d out[b] / d u = weight * sw[b] * s_b * (v / (|u| |v|) - c_b * u / |u|^2)
    d out[b] / d v = weight * sw[b] * s_b * (u / (|u| |v|) - c_b * v / |v|^2)
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from .. import arrays as A
from .. import cases as C
from ..catalog import InputSpec, LossSpec, OptionSpec, Reading
from ..conventions import (
    batch_axis_option,
    normalize_axis,
    require,
    reshape_like,
    weight_factor,
    weight_option,
)
from ..errors import InputError, describe
from ..real import real as mpf
from ..result import Forward, Gradient

SPEC = LossSpec(
    id="mxnet.gluon.loss.CosineEmbeddingLoss",
    summary="Cosine distance between input1 and input2 per sample: 1 - cos_sim for label 1, "
    "max(0, cos_sim - margin) for label -1.",
    formula="out[b] = weight * sw[b] * (1 - c_b if label_b = 1 else max(0, c_b - margin)), "
    "c_b = <u_b, v_b> / (|u_b| |v_b|) over the non-batch elements of sample b",
    options=(
        weight_option(None),
        batch_axis_option(),
        OptionSpec(
            "margin",
            0,
            "float",
            "Margin of separation between correct and incorrect pair.",
            fixture_values=(0.5,),
        ),
    ),
    inputs=(
        InputSpec("input1", "a tensor with arbitrary shape", differentiable=True),
        InputSpec(
            "input2",
            "another tensor with same shape as pred to which input1 is compared for similarity "
            "and loss calculation",
            differentiable=True,
        ),
        InputSpec(
            "label",
            "A 1-D tensor indicating for each pair input1 and input2, target label is 1 or -1",
        ),
        InputSpec(
            "sample_weight",
            "per-sample weighting tensor, broadcastable to the shape of input1 with size 1 on "
            "every non-batch axis (e.g. (64, 1) for input1 of shape (64, 10))",
            optional=True,
        ),
    ),
    output_shape="(batch_size,)",
    readings=(
        Reading(
            "margin",
            "L = \\sum_i \\begin{cases} 1 - cos\\_sim(...) & if label_i = 1\\\\ cos\\_sim(...) & "
            "if label_i = -1 \\end{cases} ... margin : float -- Margin of separation between "
            "correct and incorrect pair.",
            "The formula has no margin; the oracle uses max(0, cos_sim - margin) for label -1 "
            "(equal to the formula's cos_sim whenever cos_sim >= margin) and 1 - cos_sim for "
            "label 1. The kink at cos_sim == margin (label -1) has derivative interval [0, full].",
        ),
        Reading(
            "what a sample's vector is",
            "vectors input1 and input2 ... cos_sim(input1, input2) = input1_i . input2_i / "
            "(||input1_i|| . ||input2_i||) ... batch_axis : int, default 0 -- The axis that "
            "represents mini-batch.",
            "input1_i is ALL non-batch elements of sample i (for 2-D inputs with batch_axis 0, "
            "row i; with batch_axis 1, column i). MXNet 1.9.1 always reduces over the last axis "
            "and ignores batch_axis (a finding).",
        ),
        Reading(
            "sum over i",
            "L = \\sum_i ... Outputs: loss: The loss tensor with shape (batch_size,).",
            "The index i runs over the samples, each of which is one output element; nothing "
            "is summed across the batch.",
        ),
        Reading(
            "zero vector",
            "cos_sim(input1, input2) = input1_i . input2_i / (||input1_i|| . ||input2_i||)",
            "If a sample's input1 or input2 vector is all zeros, cos_sim is 0/0, undefined: "
            "invalid input (InputError). MXNet clamps the norm product at 1e-12 (an "
            "implementation detail, not documented).",
        ),
        Reading(
            "output shape",
            "loss: The loss tensor with shape (batch_size,).",
            "The output has shape (batch_size,). MXNet 1.9.1 returns (batch_size, 1) (a finding).",
        ),
        Reading(
            "sample_weight",
            "sample_weight: element-wise weighting tensor. Must be broadcastable to the same "
            "shape as input1. For example, if input1 has shape (64, 10) and you want to weigh "
            "each sample in the batch separately, sample_weight should have shape (64, 1).",
            "The loss is per sample, so there is no element to weigh: sample_weight must "
            "broadcast to input1's shape AND have size 1 on every non-batch axis (after "
            "left-padding to input1's rank), e.g. (64, 1), (1, 1) or () for (64, 10) with "
            "batch_axis 0, (1, N) with batch_axis 1. It multiplies each sample's loss: "
            "out[b] = weight * sw[b] * l_b. Any other shape (a full (64, 10) tensor, or (64,) "
            "which aligns with the last axis) is an InputError.",
        ),
        Reading(
            "input shapes",
            "input1, input2 can have arbitrary shape as long as they have the same number of "
            "elements. ... input2: another tensor with same shape as pred",
            "'pred' is read as input1: input2 is read in row-major order into input1's shape, "
            "and input1's shape defines batch_axis and the samples. (MXNet reshapes input1 "
            "like input2; the two agree when both have the same leading batch dimension.)",
        ),
        Reading(
            "label",
            "label: A 1-D tensor indicating for each pair input1 and input2, target label is 1 or -1",
            "label must be 1-D with one entry per sample (batch_size entries), each exactly 1 "
            "or -1; any other value (0, 0.5, 2, nan) or shape (e.g. (N, 1)) is an InputError.",
        ),
    ),
)


def _samples(arr: np.ndarray, axis: int) -> np.ndarray:
    """(N, M): row b holds the non-batch elements of sample b in row-major order."""
    moved = np.moveaxis(arr, axis, 0)
    return moved.reshape(moved.shape[0], -1)


def _unsamples(rows: np.ndarray, shape: tuple[int, ...], axis: int) -> np.ndarray:
    moved_shape = (shape[axis],) + tuple(s for a, s in enumerate(shape) if a != axis)
    return np.moveaxis(rows.reshape(moved_shape), 0, axis)


def _per_sample_weight(sw: np.ndarray | None, shape: tuple[int, ...], axis: int) -> np.ndarray | None:
    if sw is None:
        return None
    try:
        ok = np.broadcast_shapes(sw.shape, shape) == tuple(shape)
    except ValueError:
        ok = False
    require(
        SPEC.id,
        ok,
        f"input sample_weight has shape {sw.shape}, which does not broadcast to the shape of "
        f"input1 {tuple(shape)}",
    )
    padded = (1,) * (len(shape) - sw.ndim) + sw.shape
    require(
        SPEC.id,
        all(padded[a] == 1 for a in range(len(shape)) if a != axis),
        f"input sample_weight has shape {sw.shape}; expected one weight per sample (size 1 on "
        f"every non-batch axis of input1 {tuple(shape)}, e.g. "
        f"{tuple(s if a == axis else 1 for a, s in enumerate(shape))}): the loss is per sample",
    )
    full = np.broadcast_to(sw.reshape(padded), shape)
    return _samples(full, axis)[:, 0]


def forward(x: dict, options: dict) -> Forward:
    in1 = x["input1"]
    in2 = reshape_like(SPEC.id, "input2", x["input2"], in1, like_name="input1")
    axis = normalize_axis(SPEC.id, "batch_axis", int(options["batch_axis"]), in1.ndim)
    u, v = _samples(in1, axis), _samples(in2, axis)
    n = u.shape[0]
    label = x["label"]
    require(
        SPEC.id,
        label.ndim == 1 and label.shape[0] == n,
        f"input label has shape {label.shape}; expected a 1-D tensor of batch_size={n} labels",
    )
    for i, y in enumerate(label):
        if not (y == 1 or y == -1):
            raise InputError(f"{SPEC.id}: input label[{i}] is {describe(y)}; expected 1 or -1")
    require(SPEC.id, u.shape[1] > 0, f"the non-batch axes of input1 are empty: shape {in1.shape}")
    sw = _per_sample_weight(x.get("sample_weight"), in1.shape, axis)
    w = weight_factor(options)
    margin = mpf(options["margin"])

    dot = A.asum((u * v).astype(object), axis=1)
    abs_dot = A.asum(A.fabs((u * v).astype(object)), axis=1)
    nu2 = A.asum((u * u).astype(object), axis=1)
    nv2 = A.asum((v * v).astype(object), axis=1)
    for b in range(n):
        for name, norm2 in (("input1", nu2[b]), ("input2", nv2[b])):
            if norm2 == 0:
                raise InputError(
                    f"{SPEC.id}: input {name} sample {b} is a zero vector; cos_sim is 0/0 "
                    "(undefined), expected a nonzero vector"
                )
    # |u| |v| as one square root: exact whenever u and v are parallel, so cos_sim is
    # exactly +-1 there and its gradient exactly 0
    nunv = A.sqrt((nu2 * nv2).astype(object))
    c = (dot / nunv).astype(object)
    cs = (abs_dot / nunv).astype(object)
    factor = A.full((n,), w) if sw is None else (w * sw).astype(object)
    pos = np.asarray([y == 1 for y in label], dtype=bool)
    per = np.where(pos, 1 - c, A.relu((c - margin).astype(object))).astype(object)
    value = (factor * per).astype(object)
    scale = (A.fabs(factor) * np.where(pos, 1 + cs, cs + abs(margin))).astype(object)
    # slope of the per-sample loss in c: [lo, hi]
    active = np.asarray([c[b] > margin for b in range(n)], dtype=bool)
    kink = ~pos & np.asarray([c[b] == margin for b in range(n)], dtype=bool)
    slope_lo = np.where(pos, mpf(-1), np.where(active, mpf(1), mpf(0))).astype(object)
    slope_hi = np.where(kink, mpf(1), slope_lo).astype(object)
    # dc/du = v/(|u||v|) - c u/|u|^2 = (|u|^2 v - <u,v> u) / (|u|^2 |u||v|)
    dc_du = ((nu2[:, None] * v - dot[:, None] * u) / (nu2 * nunv)[:, None]).astype(object)
    dc_dv = ((nv2[:, None] * u - dot[:, None] * v) / (nv2 * nunv)[:, None]).astype(object)

    def vjp(ct: np.ndarray) -> dict[str, Gradient]:
        k = (ct.reshape(n) * factor).astype(object)
        out = {}
        for name, dc in (("input1", dc_du), ("input2", dc_dv)):
            lo = _unsamples(((k * slope_lo)[:, None] * dc).astype(object), in1.shape, axis)
            lo = lo.reshape(x[name].shape)
            if kink.any():
                hi = _unsamples(((k * slope_hi)[:, None] * dc).astype(object), in1.shape, axis)
                out[name] = Gradient.between(lo, hi.reshape(x[name].shape))
            else:
                out[name] = Gradient.exact(lo)
        return out

    return Forward(value, scale, int(u.shape[1]), vjp)


# ------------------------------------------------------------------------- cases


def _labels(rng, n: int, dtype: str) -> np.ndarray:
    return C.in_dtype(C.choice(rng, (n,), (1.0, -1.0)), dtype)


def _pair(rng, shape, dtype, sigma=1.0):
    return {"input1": C.normal(rng, shape, sigma, dtype), "input2": C.normal(rng, shape, sigma, dtype)}

#: why an option value has no case of a regime (fixtures/COVERAGE.md, oracle.coverage.gap_reason)
REGIME_GAPS = {("*", "long"): C.LONG_DEFAULTS_ONLY}


def cases() -> Iterator[C.Case]:
    kink_float32 = None
    for dtype in C.DTYPES:
        info = np.finfo(dtype)
        for opts in C.option_variants(SPEC):
            name = f"{C.variant_name(opts)}-{dtype}"
            rng = C.rng_for(SPEC.id, name)
            ba = opts.get("batch_axis", 0)
            shape = (5, 3) if ba == 0 else (3, 5)
            x = _pair(rng, shape, dtype)
            x["label"] = C.in_dtype([1, -1, -1, 1, -1], dtype)
            yield C.Case(name, x, dtype, opts)
        rng = C.rng_for(SPEC.id, f"more-{dtype}")
        yield C.Case(
            f"margin=-0.5,weight=-1.5-{dtype}",
            {**_pair(rng, (4, 2), dtype), "label": C.in_dtype([-1, -1, 1, -1], dtype)},
            dtype,
            {"margin": -0.5, "weight": -1.5},
            note="a negative margin and a negative scalar weight",
        )
        # ---- labels
        yield C.Case(
            f"labels-all-minus1-{dtype}",
            {**_pair(rng, (3, 4), dtype), "label": C.in_dtype([-1, -1, -1], dtype)},
            dtype,
            {"margin": -0.25},
            tags=("label",),
        )
        # ---- sample_weight
        yield C.Case(
            f"sample_weight-per-sample-{dtype}",
            {**_pair(rng, (4, 3), dtype), "label": _labels(rng, 4, dtype),
             "sample_weight": C.uniform(rng, (4, 1), 0, 2, dtype)},
            dtype,
            tags=("shape",),
        )
        yield C.Case(
            f"sample_weight-batch_axis=1-{dtype}",
            {**_pair(rng, (3, 4), dtype), "label": _labels(rng, 4, dtype),
             "sample_weight": C.uniform(rng, (1, 4), 0, 2, dtype)},
            dtype,
            {"batch_axis": 1, "weight": 0.5},
            tags=("shape",),
        )
        yield C.Case(
            f"sample_weight-scalar-like-{dtype}",
            {**_pair(rng, (3, 2), dtype), "label": _labels(rng, 3, dtype),
             "sample_weight": C.in_dtype([[1.75]], dtype)},
            dtype,
            tags=("shape",),
            note="a (1, 1) sample_weight broadcasts to every sample",
        )
        # ---- shapes
        yield C.Case(
            f"minimum-{dtype}",
            {"input1": C.in_dtype([[-0.75]], dtype), "input2": C.in_dtype([[1.5]], dtype),
             "label": C.in_dtype([1], dtype)},
            dtype,
            tags=("shape",),
            note="one sample of one element: cos_sim is the sign of the product (-1)",
        )
        yield C.Case(
            f"vector-{dtype}",
            {"input1": C.in_dtype([2.0, -1.0, 0.5], dtype), "input2": C.in_dtype([3.0, 4.0, 0.25], dtype),
             "label": C.in_dtype([-1, -1, 1], dtype)},
            dtype,
            tags=("shape",),
            note="1-D inputs: every sample is a one-element vector",
        )
        yield C.Case(
            f"rank3-input2-reshaped-{dtype}",
            {"input1": C.normal(rng, (2, 3, 2), 1, dtype), "input2": C.normal(rng, (2, 6), 1, dtype),
             "label": C.in_dtype([1, -1], dtype)},
            dtype,
            tags=("shape",),
            note="each sample's vector is all 6 of its non-batch elements; input2 has another "
            "shape with the same samples",
        )
        yield C.Case(
            f"rank3-batch_axis=1-{dtype}",
            {**_pair(rng, (2, 3, 2), dtype), "label": C.in_dtype([-1, 1, -1], dtype)},
            dtype,
            {"batch_axis": 1},
            tags=("shape",),
        )
        # ---- kinks: label -1 with cos_sim exactly equal to the margin (norms are powers
        # of two, so every derivative is a dyadic rational, exact in the oracle)
        kink = C.Case(
            f"kink-orthogonal-{dtype}",
            {"input1": C.in_dtype([[1, 1, 1, 1], [1, 1, 1, 1], [1, -1, -1, 1]], dtype),
             "input2": C.in_dtype([[1, -1, 1, -1], [2, 0, 0, 0], [0.5, 0.5, 0.5, 0.5]], dtype),
             "label": C.in_dtype([-1, 1, -1], dtype)},
            dtype,
            tags=("kink",),
            note="samples 0 and 2 are orthogonal with label -1: cos_sim == margin == 0",
        )
        if dtype == "float32":
            kink_float32 = kink
        yield kink
        yield C.Case(
            f"kink-margin=0.5-{dtype}",
            {"input1": C.in_dtype([[1, 0, 0, 0], [0, 2, 0, 0]], dtype),
             "input2": C.in_dtype([[1, 1, 1, 1], [1, 1, -1, 1]], dtype),
             "label": C.in_dtype([-1, -1], dtype)},
            dtype,
            {"margin": 0.5, "weight": 2.0},
            tags=("kink",),
            note="cos_sim is exactly 1/2 in both samples",
        )
        yield C.Case(
            f"kink-margin=-0.5-{dtype}",
            {"input1": C.in_dtype([[1, 0, 0, 0], [1, 1, 1, 1]], dtype),
             "input2": C.in_dtype([[-1, 1, 1, 1], [1, 1, -1, 1]], dtype),
             "label": C.in_dtype([-1, -1], dtype)},
            dtype,
            {"margin": -0.5},
            tags=("kink",),
            note="sample 0 has cos_sim exactly -1/2; sample 1 is active (cos_sim 1/2)",
        )
        # ---- boundary: exactly parallel / antiparallel vectors, exact zeros
        yield C.Case(
            f"boundary-parallel-{dtype}",
            {"input1": C.in_dtype([[1, -2, 0.5], [1, -2, 0.5], [0, 3, 0], [0.25, 0, 1]], dtype),
             "input2": C.in_dtype([[2, -4, 1], [-1, 2, -0.5], [0, 0.5, 0], [-0.5, 0, -2]], dtype),
             "label": C.in_dtype([1, -1, -1, 1], dtype)},
            dtype,
            tags=("boundary",),
            note="cos_sim exactly 1, -1, 1, -1: losses 0, 0, 1, 2; every derivative is 0",
        )
        # ---- tiny: nearly parallel (1 - cos_sim tiny) and tiny magnitudes
        k = info.nmant
        yield C.Case(
            f"tiny-loss-{dtype}",
            {"input1": C.in_dtype([[1, 0], [1, 1], [0.5, -1]], dtype),
             "input2": C.in_dtype([[1, 2.0**-(k // 2)], [1, 1 + 2.0**-k], [2, 1.5]], dtype),
             "label": C.in_dtype([1, 1, 1], dtype)},
            dtype,
            tags=("tiny",),
            note="nearly parallel vectors: 1 - cos_sim is about 2^-k (sample 0) and 2^-2k "
            "(sample 1); sample 2 is ordinary, so the VJP's max-norm is O(1) (the gradients of "
            "nearly parallel vectors are ill-conditioned: tiny and sensitive to rounding)",
        )
        small = 2.0 ** (info.minexp // 2 - info.nmant // 2)
        yield C.Case(
            f"tiny-values-{dtype}",
            {**_pair(rng, (3, 3), dtype, small), "label": C.in_dtype([1, -1, -1], dtype)},
            dtype,
            tags=("tiny",),
            note="the squares underflow the dtype; cos_sim is scale-free",
        )
        # ---- extreme: the squares (norms) overflow the dtype
        big = 2.0 ** (info.maxexp // 2 + 2)
        yield C.Case(
            f"extreme-{dtype}",
            {**_pair(rng, (3, 3), dtype, big), "label": C.in_dtype([1, -1, -1], dtype)},
            dtype,
            tags=("extreme",),
            note="the squared norms overflow the dtype; cos_sim is scale-free",
        )
        yield C.Case(
            f"extreme-mixed-{dtype}",
            {"input1": C.in_dtype([[big, 1.0, -1.0], [1.0, 2.0, 3.0]], dtype),
             "input2": C.in_dtype([[1.0, big, 2.0], [big, -big, big]], dtype),
             "label": C.in_dtype([1, -1], dtype)},
            dtype,
            {"margin": 0.5},
            tags=("extreme",),
            note="one huge element per vector: the other elements underflow relative to it",
        )
        # ---- invalid
        yield C.Case(
            f"invalid-zero-vector-{dtype}",
            {"input1": C.in_dtype([[1, 2], [0, 0]], dtype), "input2": C.in_dtype([[1, 1], [1, 1]], dtype),
             "label": C.in_dtype([1, -1], dtype)},
            dtype,
            tags=("singular", "invalid"),
            invalid="cos_sim of a zero vector is 0/0 (undefined)",
        )
        yield C.Case(
            f"invalid-label-value-{dtype}",
            {**_pair(rng, (3, 2), dtype), "label": C.in_dtype([1, 0, -1], dtype)},
            dtype,
            tags=("invalid",),
            invalid="label must be 1 or -1",
        )
        yield C.Case(
            f"invalid-label-length-{dtype}",
            {**_pair(rng, (3, 2), dtype), "label": C.in_dtype([1, -1], dtype)},
            dtype,
            tags=("invalid",),
            invalid="label must hold one entry per sample (batch_size)",
        )
        yield C.Case(
            f"invalid-label-2d-{dtype}",
            {**_pair(rng, (3, 2), dtype), "label": C.in_dtype([[1], [-1], [1]], dtype)},
            dtype,
            tags=("invalid",),
            invalid="label must be a 1-D tensor",
        )
        yield C.Case(
            f"invalid-input2-size-{dtype}",
            {"input1": C.normal(rng, (3, 2), 1, dtype), "input2": C.normal(rng, (3, 3), 1, dtype),
             "label": C.in_dtype([1, -1, 1], dtype)},
            dtype,
            tags=("invalid",),
            invalid="input2 must have the same number of elements as input1",
        )
        yield C.Case(
            f"invalid-sample_weight-full-{dtype}",
            {**_pair(rng, (3, 2), dtype), "label": C.in_dtype([1, -1, 1], dtype),
             "sample_weight": C.uniform(rng, (3, 2), 0, 1, dtype)},
            dtype,
            tags=("invalid",),
            invalid="sample_weight must hold one weight per sample (size 1 on every non-batch "
            "axis): the loss is per sample",
        )
    yield from C.subnormal_cases(SPEC.id, _subnormal)
    # batch_axis=1 x kink: the samples are the columns, so the kink case's pairs are transposed
    yield C.crossing("kink", kink_float32, {"batch_axis": 1},
                     {"input1": kink_float32.inputs["input1"].T.copy(), "input2": kink_float32.inputs["input2"].T.copy(),
                      "label": kink_float32.inputs["label"].copy()},
                     "transposed (the samples are columns)")
    yield from _long()


#: per dtype, s: the features between the ends are 2**-s, products 2**-2s below half an ULP of 1
_LONG_S = {"float16": 6, "float32": 13, "bfloat16": 5}


def _long() -> Iterator[C.Case]:
    """The long regime, over 16384 features: input1 = (1, 2**-s, ..., 2**-s, 1) and input2
    the same with -1 last; the dot product and the squared norms sum terms 2**-2s (float16
    2**-12, float32 2**-26, bfloat16 2**-10: a quarter ULP of 1 and 2 or less) between +-1s:
    running sums in the dtype give cos 0, the exact cos is 16382 * 2**-2s / (2 + 16382 *
    2**-2s) (label -1, margin 0: the loss is cos)."""
    for dtype in C.HALF_ULP_DTYPES:
        u = C.half_ulp_row(1.0, 2.0 ** -_LONG_S[dtype])
        v = u.copy()
        v[0, -1] = -1.0
        yield C.half_ulp_case({"input1": u, "input2": v, "label": np.asarray([-1.0])}, dtype=dtype,
                              note=f"dot products and norms over 16384 features whose {dtype} running sums stagnate")


def _subnormal(dtype: str):
    # 64 smallest subnormals: a row scaled by 2**-e (an overflow guard) keeps it exact; with 2
    # the numpy backend's _scaled rounds it to 0, which puts cos exactly on the kink at 0
    sub = C.subnormal(dtype, 64)
    yield ("orthogonal", {"input1": C.in_dtype([[1.0, 0.0], [0.0, 1.0]], dtype),
                          "input2": C.in_dtype([[sub, 1.0], [1.0, sub]], dtype), "label": C.in_dtype([-1, -1], dtype)},
           {"margin": 0.0}, "nearly orthogonal pairs, label -1, margin 0: cos = sub / sqrt(1 + sub^2), subnormal")


def sample(rng, options: dict) -> dict:
    """Valid random float64 inputs for self-verification (away from the kink)."""
    ba = options.get("batch_axis", 0)
    shape = (3, 2) if ba == 0 else (2, 3)
    margin = float(options.get("margin", 0))
    while True:
        x = _pair(rng, shape, "float64")
        u, v = _samples(x["input1"], ba), _samples(x["input2"], ba)
        c = (u * v).sum(1) / np.sqrt((u * u).sum(1) * (v * v).sum(1))
        if np.all(np.abs(c - margin) > 1e-3) and np.all(np.abs(u).sum(1) > 0.1) and np.all(np.abs(v).sum(1) > 0.1):
            break
    x["label"] = np.asarray([rng.choice((1.0, -1.0)) for _ in range(3)])
    x["sample_weight"] = C.uniform(rng, (3, 1) if ba == 0 else (1, 3), 0.1, 2.0, "float64")
    return x

