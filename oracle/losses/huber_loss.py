"""mxnet.gluon.loss.HuberLoss -- "Calculates smoothed L1 loss that is equal to L1 loss if
absolute error exceeds rho but is equal to L2 loss otherwise. Also called SmoothedL1 loss."

Documented formula (MXNet 1.9.1 docstring)::

    L = sum_i { 1/(2 rho) (label_i - pred_i)^2   if |label_i - pred_i| < rho
              { |label_i - pred_i| - rho/2       otherwise

with the shared Loss conventions (:mod:`oracle.conventions`): with d_i = pred_i - label_i
and h(d) the bracketed term, for batch element b

    out[b] = weight * mean_{i in b} sample_weight_i * h(d_i)

Gradient: d out[b] / d pred_i = weight * sample_weight_i * h'(d_i) / M with
h'(d) = d / rho for |d| < rho and sign(d) otherwise. The two branches meet at |d| = rho
with the same value (rho/2) and the same slope (+-1), so h is continuously
differentiable everywhere: there is no kink (only h'' jumps at |d| = rho), and at d = 0
h is smooth. The VJP is exact everywhere.
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


def _check_rho(value) -> str | None:
    return None if value > 0 else "a finite real number > 0 (the formula divides by rho)"


SPEC = LossSpec(
    id="mxnet.gluon.loss.HuberLoss",
    summary="Smoothed L1 loss: quadratic for |label - pred| < rho, linear beyond.",
    formula=(
        "out[b] = weight * mean_{i in b} sample_weight_i * h(label_i - pred_i), "
        "h(d) = d^2/(2 rho) if |d| < rho else |d| - rho/2"
    ),
    options=(
        OptionSpec(
            "rho",
            1.0,
            "float",
            "Threshold for trimmed mean estimator.",
            check=_check_rho,
            domain="a finite real number > 0",
            fixture_values=(0.5, 2.0),
        ),
        G.weight_option(None),
        G.batch_axis_option(),
    ),
    inputs=(G.pred_input(), InputSpec("label", "target tensor with the same size as pred"), G.sample_weight_input()),
    output_shape="(batch_size,)",
    readings=(
        G.averaged_out_reading("L = sum_i {...} ... Dimenions other than batch_axis are averaged out."),
        Reading(
            "summary and formula",
            "equal to L1 loss if absolute error exceeds rho but is equal to L2 loss otherwise",
            "The formula is followed: |d| - rho/2 (not L1's |d|) beyond rho and d^2/(2 rho) "
            "(not L2's d^2/2) within it; the summary describes the shape only.",
        ),
        Reading(
            "branch at |label - pred| == rho",
            "1/(2 rho) (label_i - pred_i)^2 if |label_i - pred_i| < rho; "
            "|label_i - pred_i| - rho/2 otherwise",
            "At |d| == rho the documented 'otherwise' (linear) branch applies (the code uses "
            "'loss > rho' for it, i.e. the quadratic branch); both give rho/2 and slope "
            "sign(d) there, so value and gradient are the same either way and exact: the "
            "point is not a kink.",
        ),
        Reading(
            "domain of rho",
            "rho : float, default 1 -- Threshold for trimmed mean estimator.",
            "rho must be > 0: the formula divides by rho, and for rho <= 0 the quadratic "
            "branch is empty. rho <= 0 is an OptionError.",
        ),
    ),
)


def forward(x: dict, options: dict) -> Forward:
    pred, label = G.pred_and_label(SPEC.id, x)
    rho = mpf(options["rho"])
    diff = (pred - label).astype(object)  # d = pred - label; h is even, h' odd in d
    absd = A.fabs(diff)
    quad = (absd < rho).astype(bool)
    elem = np.where(quad, diff * diff / (2 * rho), absd - rho / 2).astype(object)
    elem_scale = np.where(quad, elem, absd + rho / 2).astype(object)

    def vjp(s: np.ndarray) -> Gradient:  # s: the cotangent pulled back to each element
        sign = np.where(diff > 0, mpf(1), np.where(diff < 0, mpf(-1), mpf(0)))
        slope = np.where(quad, diff / rho, sign).astype(object)
        return Gradient.exact((s * slope).astype(object))

    return G.batch_mean_forward(SPEC.id, x, options, elem, vjp, elem_scale=elem_scale)


#: pred and label both normal (sigma 1)
GEN = C.ElementwiseCases(SPEC)

#: why an option value has no case of a regime (fixtures/COVERAGE.md, oracle.coverage.gap_reason)
REGIME_GAPS = {("*", "long"): C.LONG_DEFAULTS_ONLY}


def cases() -> Iterator[C.Case]:
    for dtype in C.DTYPES:
        # spread of d comparable to rho, so both branches occur
        yield from GEN.variants(dtype, sigma=lambda opts: float(opts.get("rho", 1.0)))
        rng = C.rng_for(SPEC.id, f"shapes-{dtype}")
        yield from GEN.shapes(rng, dtype, reshaped_options={"rho": 0.5})
        yield from GEN.sample_weights(
            rng,
            dtype,
            batch_axis_1={"weight": -2.0, "rho": 0.5},
            low=-1,
            note="negative weight and some negative sample weights",
        )
        fmax = float(np.finfo(dtype).max)
        big = fmax / 2
        root2 = 2 * float(np.sqrt(fmax))
        yield C.Case(
            f"extreme-{dtype}",
            {
                "pred": C.in_dtype([[big, -big], [root2, 0.5], [-root2, 0.25]], dtype),
                "label": C.in_dtype([[-big, big], [0.0, 0.0], [0.0, 0.0]], dtype),
            },
            dtype,
            tags=("extreme",),
            note="row 0: each |d| is the dtype's max, their naive sum overflows; rows 1-2: d^2 "
            "of the unused quadratic branch overflows (a where() of both branches gets inf*0 = nan "
            "in the gradient)",
        )
        eps = float(np.finfo(dtype).eps)
        tiny = float(np.finfo(dtype).tiny)
        yield C.Case(
            f"tiny-{dtype}",
            {
                "pred": C.in_dtype([[1.0 + 4 * eps, 1.0], [0.5, tiny], [2.0 ** -10, -(2.0 ** -14)]], dtype),
                "label": C.in_dtype([[1.0, 1.0 - eps / 2], [0.5 + eps / 2, 0.0], [0.0, 0.0]], dtype),
            },
            dtype,
            tags=("tiny",),
            note="differences of a few ulps and below: d^2/(2 rho) is far below eps, often below "
            "the dtype's range",
        )
        for rho in (1.0, 0.5):
            opts = {} if rho == 1.0 else {"rho": rho}
            base = C.in_dtype([[0.25, -1.5, 3.0], [0.0, -0.75, 1.25]], dtype)
            signs = np.asarray([[1.0, -1.0, 1.0], [-1.0, 1.0, -1.0]])
            yield C.Case(
                f"at-rho-{C.variant_name(opts)}-{dtype}",
                {"pred": base, "label": C.in_dtype(base - signs * rho, dtype)},
                dtype,
                opts,
                tags=("boundary",),
                note="|label - pred| == rho exactly, both signs: the branches meet with equal value "
                "and slope (not a kink)",
            )
        one_ulp_below = 1.0 - eps / 2
        one_ulp_above = 1.0 + eps
        yield C.Case(
            f"around-rho-{dtype}",
            {
                "pred": C.in_dtype([[one_ulp_below, -one_ulp_above], [one_ulp_above, -one_ulp_below]], dtype),
                "label": C.in_dtype(np.zeros((2, 2)), dtype),
            },
            dtype,
            tags=("boundary",),
            note="|d| one ulp below and above rho = 1",
        )
        rng = C.rng_for(SPEC.id, f"boundary-{dtype}")
        p = C.normal(rng, (2, 3), 1, dtype)
        yield C.Case(
            f"equal-{dtype}",
            {"pred": p, "label": p.copy()},
            dtype,
            tags=("boundary",),
            note="pred == label: zero loss, zero gradient (h is smooth at 0)",
        )
        yield C.Case(
            f"zero-label-{dtype}",
            {"pred": C.normal(rng, (2, 3), 1, dtype), "label": C.in_dtype(np.zeros((2, 3)), dtype)},
            dtype,
            tags=("boundary",),
        )
        for rho in (0.0, -1.0):
            yield C.Case(
                f"invalid-rho={rho}-{dtype}",
                GEN.inputs(rng, (2, 3), dtype),
                dtype,
                {"rho": rho},
                tags=("invalid",),
                invalid="rho must be > 0",
            )
        yield from GEN.invalid_shapes(rng, dtype)
    yield from C.subnormal_cases(SPEC.id, _subnormal)
    yield from C.limit_cases(
        SPEC,
        lambda dtype: {"pred": C.in_dtype([[np.inf, -np.inf], [1.0, 0.5]], dtype), "label": C.in_dtype([[1.0, -1.0], [np.inf, 0.25]], dtype)},
        "an infinite |label - pred| is on the linear branch: +inf, the derivative the limit +-1 (times the normalisation)",
    )
    yield from _long()


#: per dtype, (|label - pred| at both ends, between): float16 4.5 and 2**-4 (h = 4 and
#: 2**-9, exactly half an ULP of 4: ties to even drop it; divided by 16384 it is still a
#: float16 number, 2**-23, as a mean computed as a sum of terms / M needs); float32 1.5 and
#: 2**-12.5 (h = 1 and about 2**-26); bfloat16 1.5 and 2**-4.5 (h = 1 and about 2**-10)
_LONG = {"float16": (4.5, 2.0**-4), "float32": (1.5, 2.0**-12.5), "bfloat16": (1.5, 2.0**-4.5)}


def _long() -> Iterator[C.Case]:
    """The long regime, 16384 elements: |label - pred| big at both ends and small between
    (:data:`_LONG`), so that the terms between are at most half an ULP of the ends' term;
    positive in the first half and negative in the second."""
    for dtype in C.HALF_ULP_DTYPES:
        big, small = _LONG[dtype]
        pred = C.half_ulp_row(big, small) * C.halves()
        yield C.half_ulp_case({"pred": pred, "label": np.zeros(pred.shape)}, dtype=dtype)


def _subnormal(dtype: str):
    s, sub = C.SUBNORMAL_ROOT[dtype], C.subnormal(dtype, 8)
    yield ("quadratic", {"pred": C.in_dtype([[s, 0.0], [sub, -sub]], dtype), "label": C.in_dtype([[0.0, 0.0], [0.0, 0.0]], dtype)}, {},
           "the quadratic branch d^2/(2 rho) of a tiny d: subnormal values; row 1 subnormal gradients")


def sample(rng, options: dict) -> dict:
    """Valid random float64 inputs for self-verification (see tests/); |d| stays away
    from rho, where h'' jumps and numerical differentiation would lose accuracy."""
    rho = float(options.get("rho", 1.0))
    shape = C.sample_shape(options)
    pred = C.normal(rng, shape, 1.0, "float64")
    mags = [rng.choice((rng.uniform(0.0, 0.9), rng.uniform(1.1, 3.0))) * rho for _ in range(pred.size)]
    gap = np.asarray([rng.choice((-1.0, 1.0)) * m for m in mags]).reshape(shape)
    return {"pred": pred, "label": pred + gap, "sample_weight": C.per_sample_weight(rng, shape, options)}
