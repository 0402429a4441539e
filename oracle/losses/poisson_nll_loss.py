"""mxnet.gluon.loss.PoissonNLLLoss -- "For a target (Random Variable) in a Poisson
distribution, the function calculates the Negative Log likelihood loss."

Documented formula (MXNet 1.9.1 docstring)::

    L = pred - target * log(pred) + log(target!)

refined by the options: ``from_logits=True`` (default) "the loss is computed as
exp(pred) - target * pred", ``from_logits=False`` "pred - target * log(pred + epsilon)";
``compute_full`` adds "an approximation (Stirling factor) for the Factorial term":
``target*log(target) - target + 0.5*log(2*pi*target)``. Output: "Average loss
(shape=(1,1)) of the loss tensor with shape (batch_size,)".

Reading implemented (see ``SPEC.readings``), with N the number of elements of pred::

    elem_i = exp(pred_i) - target_i*pred_i                      (from_logits=True)
    elem_i = pred_i - target_i*log(pred_i + epsilon)            (from_logits=False)
    elem_i += [target_i > 1] * (target_i*log(target_i) - target_i
                                + 0.5*log(2*pi*target_i))       (compute_full=True)
    out[0, 0] = weight/N * sum_i sample_weight_i * elem_i

Gradient: d out / d pred_i = weight*sample_weight_i/N * (exp(pred_i) - target_i) for
from_logits=True and weight*sample_weight_i/N * (1 - target_i/(pred_i + epsilon))
otherwise; the Stirling factor depends on target only.

Scale (tolerance model): the sum over elements of |weight*sample_weight_i/N| times the
absolute terms of elem_i; for from_logits=False with epsilon != 0 it also holds
|target_i|, the error target*log(.) takes from rounding pred+epsilon in any dtype.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

from .. import arrays as A
from .. import cases as C
from .. import real as R
from ..catalog import InputSpec, LossSpec, OptionSpec, Reading
from ..conventions import (
    broadcast_sample_weight,
    normalize_axis,
    require,
    reshape_like,
    sample_weight_input,
    weight_factor,
    weight_option,
)
from ..errors import describe
from ..result import Forward, Gradient

SPEC = LossSpec(
    id="mxnet.gluon.loss.PoissonNLLLoss",
    summary="Poisson negative log likelihood, averaged over every element.",
    formula=(
        "out[0,0] = weight/N * sum_i sample_weight_i * (exp(pred_i) - target_i*pred_i  "
        "| pred_i - target_i*log(pred_i + epsilon)) [+ Stirling(target_i) where target_i > 1]"
    ),
    options=(
        weight_option(None),
        OptionSpec(
            "from_logits",
            True,
            "bool",
            "Whether log(predicted) value has already been computed: True: exp(pred) - "
            "target*pred; False: pred - target*log(pred + epsilon).",
        ),
        OptionSpec(
            "batch_axis",
            0,
            "int",
            "The axis that represents mini-batch.",
            fixture_values=(1,),
            value_neutral=True,
            neutral_reason=(
                "the documented output is the average over ALL elements (shape (1,1)), "
                "which does not depend on which axis is the batch axis; it is only checked "
                "to be an axis of pred"
            ),
        ),
        OptionSpec(
            "compute_full",
            False,
            "bool",
            "Whether to add the Stirling approximation of log(target!): "
            "target*log(target) - target + 0.5*log(2*pi*target).",
        ),
        OptionSpec(
            "epsilon",
            1e-08,
            "float",
            "Added to pred inside the log when from_logits is False, 'to avoid calculating "
            "log(0)'.",
            fixture_values=(0.0, 0.25),
        ),
    ),
    inputs=(
        InputSpec("pred", "Predicted value (log-rate if from_logits, else the rate)", differentiable=True),
        InputSpec(
            "target",
            "Random variable (count or number) of a Poisson distribution; same number of "
            "elements as pred",
        ),
        sample_weight_input(),
    ),
    output_shape="(1, 1)",
    readings=(
        Reading(
            "epsilon is an option",
            "Parameters: ... epsilon: float, default 1e-08. This is to avoid calculating "
            "log(0) which is not defined.  /  forward(pred, target, sample_weight=None, "
            "epsilon=1e-08)",
            "epsilon is documented under the constructor Parameters, while MXNet takes it as "
            "a forward() keyword; the catalog treats it as an option (default 1e-08). It "
            "only enters the from_logits=False formula.",
        ),
        Reading(
            "epsilon inside the log",
            "L = pred - target * log(pred) + log(target!)  /  if False, then loss is "
            "computed as pred - target * log(pred+epsilon)",
            "For from_logits=False the oracle uses the option's formula, epsilon included "
            "(exactly the float epsilon given, not rounded to the input dtype).",
        ),
        Reading(
            "log(target!) and compute_full",
            "L = pred - target * log(pred) +log(target!)  /  compute_full: boolean, default "
            "False. Indicates whether to add an approximation(Stirling factor) for the "
            "Factorial term in the formula for the loss. The Stirling factor is: target * "
            "log(target) - target + 0.5 * log(2 * pi * target)",
            "The factorial term is left out unless compute_full is True; then the "
            "documented Stirling factor (not the exact log(target!)) is added, but only "
            "where target > 1, as MXNet's code masks it (target > 1). The text does not say "
            "where the approximation applies: the factor is singular at target 0, and at "
            "target 1 it gives -0.081 where log(1!) = 0; for non-integer targets in (0, 1] "
            "(the oracle accepts any target >= 0, 'count or number') no factor is added -- "
            "the documented approximation is not extended below 1, where it is poor "
            "(at 0.5 it gives -0.274 against log Gamma(1.5) = -0.121).",
        ),
        Reading(
            "output: a mean over every element",
            "loss: Average loss (shape=(1,1)) of the loss tensor with shape (batch_size,).",
            "The output is the mean over ALL elements of weight * sample_weight * elem, "
            "returned with shape (1, 1) as documented (MXNet returns another shape).",
        ),
        Reading(
            "batch_axis",
            "batch_axis : int, default 0 -- The axis that represents mini-batch.",
            "batch_axis cannot change a mean over every element: value-neutral; it is only "
            "required to name an axis of pred.",
        ),
        Reading(
            "target domain",
            "target: Random variable(count or number) which belongs to a Poisson "
            "distribution.",
            "target may be any non-negative real number (counts need not be integers); a "
            "negative target is invalid input.",
        ),
        Reading(
            "pred domain for from_logits=False",
            "if False, then loss is computed as pred - target * log(pred+epsilon)",
            "pred + epsilon <= 0 is outside the log's domain: invalid input (even where "
            "target is 0).",
        ),
        Reading(
            "shape of target",
            "target, 'pred' can have arbitrary shape as long as they have the same number "
            "of elements.",
            "target is read in row-major order into pred's shape.",
        ),
    ),
)


def _stirling(t):
    return t * R.log(t) - t + R.log(2 * R.pi() * t) / 2


def forward(x: dict, options: dict) -> Forward:
    pred = x["pred"]
    target = reshape_like(SPEC.id, "target", x["target"], pred)
    normalize_axis(SPEC.id, "batch_axis", int(options["batch_axis"]), max(pred.ndim, 1))
    for v in target.ravel():
        require(SPEC.id, v >= 0, f"input target holds {describe(float(v))}; expected a non-negative "
                "count or number (a Poisson random variable)")
    eps = R.real(options["epsilon"])
    from_logits = options["from_logits"]
    if from_logits:
        ex = A.exp(pred)
        elem = (ex - target * pred).astype(object)
        elem_scale = (ex + A.fabs(target * pred)).astype(object)
    else:
        z = (pred + eps).astype(object)
        for p, zz in zip(pred.ravel(), z.ravel()):
            require(SPEC.id, zz > 0, f"input pred holds {describe(float(p))}, so pred + epsilon = "
                    f"{describe(float(zz))}; expected pred + epsilon > 0 (from_logits=False "
                    "takes log(pred + epsilon))")
        tlog = A.xlogy(target, z).astype(object)
        elem = (pred - tlog).astype(object)
        elem_scale = (A.fabs(pred) + A.fabs(tlog)).astype(object)
        if eps != 0:
            elem_scale = (elem_scale + A.fabs(target)).astype(object)
    if options["compute_full"]:
        stir = np.frompyfunc(lambda t: _stirling(t) if t > 1 else R.real(0), 1, 1)(target)
        stir_scale = np.frompyfunc(
            lambda t: (abs(t * R.log(t)) + t + abs(R.log(2 * R.pi() * t)) / 2)
            if t > 1 else R.real(0),
            1,
            1,
        )(target)
        elem = (elem + stir).astype(object)
        elem_scale = (elem_scale + stir_scale).astype(object)
    n = pred.size
    require(SPEC.id, n > 0, "input pred is empty; expected at least one element")
    sw = broadcast_sample_weight(SPEC.id, x.get("sample_weight"), pred.shape)
    factor = A.full(pred.shape, weight_factor(options))  # the mean's 1/n is applied last (exact quotients)
    if sw is not None:
        factor = (factor * sw).astype(object)
    value = np.array(A.asum((factor * elem).astype(object))[()] / n, dtype=object).reshape(1, 1)
    scale = np.array(A.asum((A.fabs(factor) * elem_scale).astype(object))[()] / n, dtype=object).reshape(1, 1)
    terms = 2 + (3 if options["compute_full"] else 0)

    def vjp(ct: np.ndarray) -> dict[str, Gradient]:
        seed = (ct.reshape(()) * factor / n).astype(object)
        if from_logits:
            d = (A.exp(pred) - target).astype(object)
        else:
            d = (1 - target / (pred + eps)).astype(object)
        return {"pred": Gradient.exact((seed * d).astype(object))}

    return Forward(value, scale, n * terms, vjp)


# ------------------------------------------------------------------------------ cases


def _counts(rng, shape, dtype, hi=6):
    return C.in_dtype(C.integers(rng, shape, 0, hi).astype(np.float64), dtype).reshape(shape)


def _rates(rng, shape, dtype):
    return C.uniform(rng, shape, 0.1, 4.0, dtype)

#: why an option value has no case of a regime (fixtures/COVERAGE.md, oracle.coverage.gap_reason)
REGIME_GAPS = {("*", "long"): C.LONG_DEFAULTS_ONLY}


def cases() -> Iterator[C.Case]:
    for dtype in C.DTYPES:
        for opts in C.option_variants(SPEC):
            if "epsilon" in opts:  # epsilon only enters the from_logits=False formula
                opts = {**opts, "from_logits": False}
            name = f"{C.variant_name(opts)}-{dtype}"
            rng = C.rng_for(SPEC.id, name)
            shape = (3, 4)
            pred = C.normal(rng, shape, 1.0, dtype) if opts.get("from_logits", True) else _rates(rng, shape, dtype)
            yield C.Case(name, {"pred": pred, "target": _counts(rng, shape, dtype)}, dtype, opts)
        rng = C.rng_for(SPEC.id, f"more-{dtype}")
        yield C.Case(
            f"compute_full,from_logits=False-{dtype}",
            {"pred": _rates(rng, (3, 4), dtype), "target": _counts(rng, (3, 4), dtype, 9)},
            dtype,
            {"compute_full": True, "from_logits": False},
        )
        yield C.Case(
            f"non-integer-targets-{dtype}",
            {"pred": C.normal(rng, (2, 5), 1.0, dtype), "target": C.uniform(rng, (2, 5), 0.0, 6.0, dtype)},
            dtype,
            {"compute_full": True},
            note="'count or number': real non-negative targets",
        )
        for sw_shape, what in (((3, 1), "per-sample"), ((3, 4), "full")):
            yield C.Case(
                f"sample_weight-{what}-{dtype}",
                {
                    "pred": C.normal(rng, (3, 4), 1.0, dtype),
                    "target": _counts(rng, (3, 4), dtype),
                    "sample_weight": C.uniform(rng, sw_shape, 0, 2, dtype),
                },
                dtype,
                {"weight": 0.5},
                tags=("shape",),
            )
        yield C.Case(
            f"minimum-{dtype}",
            {"pred": C.normal(rng, (1,), 1.0, dtype), "target": C.in_dtype([3.0], dtype)},
            dtype,
            tags=("shape",),
        )
        yield C.Case(
            f"rank3-target-reshaped-{dtype}",
            {"pred": C.normal(rng, (2, 3, 2), 1.0, dtype), "target": _counts(rng, (3, 4), dtype)},
            dtype,
            {"batch_axis": 2},
            tags=("shape",),
            note="target has another shape with the same number of elements",
        )
        for fl in (True, False):
            pred = C.normal(rng, (2, 3), 1.0, dtype) if fl else _rates(rng, (2, 3), dtype)
            yield C.Case(
                f"zero-targets,from_logits={fl}-{dtype}",
                {"pred": pred, "target": C.in_dtype(np.zeros((2, 3)), dtype)},
                dtype,
                {"from_logits": fl, "compute_full": True},
                tags=("boundary",),
            )
        one_up = float(np.nextafter(np.array(1.0, dtype), np.array(2.0, dtype)))
        yield C.Case(
            f"compute_full-targets-0-1-2-{dtype}",
            {
                "pred": C.normal(rng, (2, 4), 1.0, dtype),
                "target": C.in_dtype([[0.0, 1.0, 2.0, one_up], [1.0, 2.0, 0.0, 5.0]], dtype),
            },
            dtype,
            {"compute_full": True},
            tags=("boundary",),
            note="Stirling factor added only where target > 1: not at 1, but just above 1",
        )
        yield C.Case(
            f"zero-pred-{dtype}",
            {"pred": C.in_dtype([[0.0, 0.0, 1.0], [0.0, 2.0, 0.5]], dtype), "target": C.in_dtype([[0, 3, 1], [2, 0, 1]], dtype)},
            dtype,
            tags=("boundary",),
            note="exact zero logits",
        )
        yield C.Case(
            f"zero-rate-{dtype}",
            {"pred": C.in_dtype([[0.0, 0.0, 1.0], [0.0, 2.0, 0.5]], dtype), "target": C.in_dtype([[0, 3, 1], [2, 0, 1]], dtype)},
            dtype,
            {"from_logits": False},
            tags=("boundary",),
            note="rate 0 with a positive target: log(epsilon) is finite, large",
        )
        big = {"float16": 12.0, "float32": 100.0, "float64": 800.0}[dtype]
        yield C.Case(
            f"extreme-exp-overflow-{dtype}",
            {"pred": C.in_dtype([[big, big], [big, 1.0]], dtype), "target": C.in_dtype([[1, 0], [3, 2]], dtype)},
            dtype,
            tags=("extreme",),
            note="exp(pred) overflows the dtype; the exact mean is finite but rounds to inf",
        )
        near = {"float16": 12.0, "float32": 89.0, "float64": 710.0}[dtype]
        yield C.Case(
            f"extreme-exp-overflow-finite-mean-{dtype}",
            {"pred": C.in_dtype([[near, 0.0], [-1.0, 0.5]], dtype), "target": C.in_dtype([[1, 0], [3, 2]], dtype)},
            dtype,
            tags=("extreme",),
            note="exp(pred) overflows the dtype, but the mean over 4 elements is representable",
        )
        half = {"float16": 11.0, "float32": 88.0, "float64": 709.0}[dtype]
        yield C.Case(
            f"extreme-sum-overflow-{dtype}",
            {"pred": C.in_dtype([half] * 4, dtype), "target": C.in_dtype([0, 1, 2, 0], dtype)},
            dtype,
            tags=("extreme",),
            note="each exp(pred) is finite, their sum overflows, the mean does not",
        )
        yield C.Case(
            f"extreme-negative-logits-{dtype}",
            {"pred": C.in_dtype([[-big, -big / 2], [-1.0, -big]], dtype), "target": C.in_dtype([[2, 0], [1, 3]], dtype)},
            dtype,
            tags=("extreme",),
        )
        low = {"float16": -15.0, "float32": -80.0, "float64": -700.0}[dtype]
        yield C.Case(
            f"tiny-loss-{dtype}",
            {"pred": C.in_dtype([[low, low + 1], [low + 2, low]], dtype), "target": C.in_dtype(np.zeros((2, 2)), dtype)},
            dtype,
            tags=("tiny",),
            note="target 0 and very negative logits: a tiny loss exp(pred)",
        )
        small = float(np.finfo(dtype).smallest_subnormal)
        yield C.Case(
            f"tiny-rates-{dtype}",
            {"pred": C.in_dtype([[small, 1e-7], [3e-6, 1e-3]], dtype), "target": C.in_dtype([[1, 2], [1, 0]], dtype)},
            dtype,
            {"from_logits": False},
            tags=("tiny",),
            note="rates near epsilon (1e-8): the epsilon inside the log matters",
        )
        yield C.Case(
            f"invalid-negative-target-{dtype}",
            {"pred": C.normal(rng, (2, 2), 1.0, dtype), "target": C.in_dtype([[1, -1], [0, 2]], dtype)},
            dtype,
            tags=("invalid",),
            invalid="target is a Poisson random variable: a non-negative count or number",
        )
        yield C.Case(
            f"invalid-negative-rate-{dtype}",
            {"pred": C.in_dtype([[1.0, -0.5], [2.0, 0.25]], dtype), "target": C.in_dtype([[1, 0], [0, 2]], dtype)},
            dtype,
            {"from_logits": False},
            tags=("invalid",),
            invalid="from_logits=False takes log(pred + epsilon): pred + epsilon must be > 0",
        )
        yield C.Case(
            f"invalid-zero-rate-no-epsilon-{dtype}",
            {"pred": C.in_dtype([[1.0, 0.0]], dtype), "target": C.in_dtype([[1, 1]], dtype)},
            dtype,
            {"from_logits": False, "epsilon": 0.0},
            tags=("invalid",),
            invalid="from_logits=False takes log(pred + epsilon): pred + epsilon must be > 0",
        )
        yield C.Case(
            f"invalid-size-{dtype}",
            {"pred": C.normal(rng, (2, 3), 1.0, dtype), "target": _counts(rng, (2, 2), dtype)},
            dtype,
            tags=("invalid",),
            invalid="target must have the same number of elements as pred",
        )
        yield C.Case(
            f"invalid-sample_weight-{dtype}",
            {
                "pred": C.normal(rng, (2, 3), 1.0, dtype),
                "target": _counts(rng, (2, 3), dtype),
                "sample_weight": C.uniform(rng, (3, 1), 0, 1, dtype),
            },
            dtype,
            tags=("invalid",),
            invalid="sample_weight must be broadcastable to the shape of pred",
        )
    yield from C.subnormal_cases(SPEC.id, _subnormal)
    yield from _long()


#: per dtype, the log-rate between the ends: exp(-m) below half an ULP of 1
LONG_LOG_RATE = {"float16": -8.5, "float32": -17.5, "bfloat16": -6.5}


def _long() -> Iterator[C.Case]:
    """The long regime, 16384 elements: log-rate 0 at both ends (term exp(0) = 1) and m
    between (term exp(m): float16 m = -8.5, 2.0e-4; float32 -17.5, 2.5e-8; bfloat16 -6.5,
    1.5e-3; each below half an ULP of 1), target 0."""
    for dtype in C.HALF_ULP_DTYPES:
        pred = C.half_ulp_row(0.0, LONG_LOG_RATE[dtype])
        yield C.half_ulp_case({"pred": pred, "target": np.zeros(pred.shape)}, dtype=dtype)


def _subnormal(dtype: str):
    g = C.SUBNORMAL_GAP[dtype]
    yield ("rate", {"pred": C.in_dtype([[-g, -g]], dtype), "target": C.in_dtype([[0.0, 0.0]], dtype)}, {"from_logits": True},
           f"exp(-{g:g}) with target 0: a subnormal value and gradient")


def sample(rng, options: dict) -> dict:
    """Valid random float64 inputs for self-verification (see tests/)."""
    shape = (2, 3)
    if options.get("from_logits", True):
        pred = C.normal(rng, shape, 1.0, "float64")
    else:
        pred = C.uniform(rng, shape, 0.2, 3.0, "float64")
    target = np.asarray(
        [rng.choice([0.0, 1.0, 2.0, 3.0, 5.0, rng.uniform(0.0, 6.0)]) for _ in range(math.prod(shape))]
    ).reshape(shape)
    return {
        "pred": pred,
        "target": target,
        "sample_weight": C.uniform(rng, (shape[0], 1), 0.1, 2.0, "float64"),
    }
