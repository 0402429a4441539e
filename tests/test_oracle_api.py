"""The oracle's public face: the README example, error messages for bad input, the
precision module's decimal encoding and rounding to dtypes, and the generated spec table.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction
from pathlib import Path

import mpmath
import numpy as np
import pytest

import oracle
from conformance import cli
from oracle import catalog, precision
from oracle.spec_table import render_markdown

ROOT = Path(__file__).resolve().parent.parent


# ----------------------------------------------------------------- the README example


def test_readme_example():
    import oracle as o  # the example's three lines, verbatim

    r = o.evaluate("SoftmaxCELoss", {"pred": [[1.0, 2.0, 3.0]], "label": [2]})
    value, grad = r.value_as("float32"), r.grads["pred"].value

    assert value.dtype == np.float32 and value.shape == (1,)
    with mpmath.workprec(300):
        lse = mpmath.log(mpmath.exp(1) + mpmath.exp(2) + mpmath.exp(3))
        exact = lse - 3
        soft = [mpmath.exp(k) / mpmath.exp(lse) for k in (1, 2, 3)]
        assert value[0] == np.float32(float(exact))
        want = [soft[0], soft[1], soft[2] - 1]
        for got, w in zip(np.asarray(grad).ravel(), want):
            assert abs(got - w) <= mpmath.mpf(10) ** -70
    assert r.decimal() == [precision.to_decimal(exact)]


def test_readme_shows_the_example():
    readme = (ROOT / "README.md").read_text()
    assert 'r = oracle.evaluate("SoftmaxCELoss", {"pred": [[1.0, 2.0, 3.0]], "label": [2]})' in readme
    assert 'r.value_as("float32"), r.grads["pred"].value' in readme


# ----------------------------------------------------------------- bad input

SCE = "mxnet.gluon.loss.SoftmaxCrossEntropyLoss"
BAD = {
    "unknown loss": (
        ("NoSuchLoss", {"pred": [[1.0]], "label": [0]}, {}),
        oracle.UnknownLossError,
        ["NoSuchLoss", "documented losses", "mxnet.gluon.loss.L2Loss"],
    ),
    "unknown option": (
        ("SoftmaxCELoss", {"pred": [[1.0, 2.0]], "label": [0]}, {"axiss": 1}),
        oracle.OptionError,
        [SCE, "axiss", "unknown option", "sparse_label"],
    ),
    "option out of range": (
        ("HuberLoss", {"pred": [[1.0, 2.0]], "label": [[0.0, 1.0]]}, {"rho": -1.0}),
        oracle.OptionError,
        ["mxnet.gluon.loss.HuberLoss", "rho", "-1.0", "expected", "> 0"],
    ),
    "axis out of range": (
        ("SoftmaxCELoss", {"pred": [[1.0, 2.0]], "label": [0]}, {"axis": 5}),
        oracle.OracleError,
        [SCE, "axis", "5", "expected", "[-2, 1]"],
    ),
    "option of the wrong type": (
        ("L2Loss", {"pred": [[1.0, 2.0]], "label": [[0.0, 1.0]]}, {"batch_axis": "x"}),
        oracle.OptionError,
        ["mxnet.gluon.loss.L2Loss", "batch_axis", "'x'", "expected an int"],
    ),
    "wrong shape": (
        ("L2Loss", {"pred": [[1.0, 2.0]], "label": [[0.0, 1.0, 3.0]]}, {}),
        oracle.InputError,
        ["mxnet.gluon.loss.L2Loss", "label", "(1, 3)", "expected", "(1, 2)"],
    ),
    "sparse label shape": (
        ("SoftmaxCELoss", {"pred": [[1.0, 2.0, 3.0]], "label": [[1, 2]]}, {}),
        oracle.InputError,
        [SCE, "label", "(1, 2)", "expected", "(1,)"],
    ),
    "label above the class range": (
        ("SoftmaxCELoss", {"pred": [[1.0, 2.0, 3.0]], "label": [3]}, {}),
        oracle.InputError,
        [SCE, "label", "3", "expected", "[0, 3)"],
    ),
    "negative label": (
        ("SoftmaxCELoss", {"pred": [[1.0, 2.0, 3.0]], "label": [-1]}, {}),
        oracle.InputError,
        [SCE, "label", "-1", "expected", "[0, 3)"],
    ),
    "negative Poisson target": (
        ("PoissonNLLLoss", {"pred": [[1.0, 2.0]], "target": [[-1.0, 1.0]]}, {}),
        oracle.InputError,
        ["mxnet.gluon.loss.PoissonNLLLoss", "target", "-1", "expected", "non-negative"],
    ),
    "unknown input": (
        ("L2Loss", {"pred": [[1.0, 2.0]], "labl": [[0.0, 1.0]]}, {}),
        oracle.InputError,
        ["mxnet.gluon.loss.L2Loss", "labl", "unknown input", "pred, label"],
    ),
    "missing input": (
        ("L2Loss", {"pred": [[1.0, 2.0]]}, {}),
        oracle.InputError,
        ["mxnet.gluon.loss.L2Loss", "missing", "label"],
    ),
}


@pytest.mark.parametrize("what", list(BAD))
def test_bad_input_error_names_loss_argument_value_and_expectation(what):
    (loss, inputs, options), error, fragments = BAD[what]
    with pytest.raises(error) as info:
        oracle.evaluate(loss, inputs, options)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, f"{what}: {fragment!r} not in the message {message!r}"
    assert isinstance(info.value, oracle.OracleError) and isinstance(info.value, ValueError)


def test_label_outside_domain_names_loss_input_and_rule():
    with pytest.raises(oracle.InputError) as info:
        oracle.evaluate("HingeLoss", {"pred": [[1.0, 2.0]], "label": [[0.5, 1.0]]})
    message = str(info.value)
    assert "mxnet.gluon.loss.HingeLoss" in message and "label" in message and "0.5" in message
    assert "expected only the values -1 or 1" in message


def test_label_outside_domain_shows_the_value_plainly():
    """The value in the message reads as the user wrote it, not as an internal mpf repr."""
    with pytest.raises(oracle.InputError) as info:
        oracle.evaluate("HingeLoss", {"pred": [[1.0, 2.0]], "label": [[0.5, 1.0]]})
    assert "mpf(" not in str(info.value), str(info.value)


def test_cotangent_of_the_wrong_shape_is_named():
    with pytest.raises(oracle.InputError, match=r"L2Loss: cotangent has shape \(2,\); expected the output's shape \(1,\)"):
        oracle.evaluate("L2Loss", {"pred": [[1.0, 2.0]], "label": [[0.0, 1.0]]}, cotangent=[1.0, 2.0])


def test_wrt_a_non_differentiable_input_is_named():
    with pytest.raises(oracle.InputError, match=r"SoftmaxCrossEntropyLoss: cannot differentiate with respect to 'label'"):
        oracle.evaluate("SoftmaxCELoss", {"pred": [[1.0, 2.0]], "label": [0]}, wrt=["label"])


# ----------------------------------------------------------------- precision: decimals


def _correct_digits(text: str, exact: mpmath.mpf) -> float:
    with mpmath.workprec(2000):
        got = mpmath.mpf(text)
        if got == exact:
            return math.inf
        return float(-mpmath.log10(abs(got - exact) / abs(exact)))


@pytest.mark.parametrize(
    "make",
    [
        lambda: mpmath.sqrt(2),
        lambda: mpmath.mpf(1) / 3,
        lambda: -mpmath.pi * mpmath.mpf(10) ** -300,
        lambda: mpmath.exp(mpmath.mpf(1000)),
        lambda: mpmath.mpf(1) + mpmath.ldexp(1, -80),  # invisible at 53 bits
        lambda: mpmath.log1p(mpmath.ldexp(1, -100)),
    ],
    ids=["sqrt2", "third", "tiny-neg-pi", "e1000", "one-plus-2^-80", "log1p"],
)
def test_to_decimal_keeps_30_digits_of_a_256_bit_value(make):
    with precision.working_precision(256):
        x = make()
    with mpmath.workprec(2000):
        reference = make()
    # called both inside and outside a precision context: never re-rounded to 53 bits
    for text in (precision.to_decimal(x), _outside_context(x)):
        assert _correct_digits(text, reference) >= 30, text
        assert len(re.sub(r"[^0-9]", "", text.split("e")[0])) == precision.DECIMAL_DIGITS
    as_double = mpmath.mpf(float(x))
    if as_double != x:
        assert precision.to_decimal(x) != precision.to_decimal(as_double)


def _outside_context(x: mpmath.mpf) -> str:
    with mpmath.workprec(53):
        return precision.to_decimal(x)


def test_to_decimal_of_a_value_just_above_one():
    with precision.working_precision(256):
        x = mpmath.mpf(1) + mpmath.ldexp(1, -100)  # 1 + 7.9e-31
        text = precision.to_decimal(x)
    assert text.startswith("1.000000000000000000000000000000788")


def test_to_decimal_round_trips_through_from_decimal():
    with precision.working_precision(256):
        for x in (mpmath.sqrt(3), -mpmath.e ** 50, mpmath.ldexp(mpmath.pi, -3000)):
            back = precision.from_decimal(precision.to_decimal(x))
            assert abs(back - x) <= abs(x) * mpmath.mpf(10) ** -39
    assert precision.to_decimal(mpmath.mpf(0)) == "0"
    assert [precision.to_decimal(v) for v in (mpmath.inf, -mpmath.inf, mpmath.nan)] == ["inf", "-inf", "nan"]
    assert precision.to_decimal(0.1) == "1.000000000000000055511151231257827021182e-01"  # floats exactly


# ----------------------------------------------------------------- precision: rounding


def _random_float64(rng: np.random.Generator, n: int, lo_exp: int, hi_exp: int) -> np.ndarray:
    """Random float64 values with exponents spread uniformly over [lo_exp, hi_exp] (so
    subnormals and overflow of the narrow dtype are hit as often as ordinary values), and
    random full 52-bit mantissas."""
    mant = 1.0 + rng.integers(0, 2**52, size=n, dtype=np.int64).astype(np.float64) * 2.0**-52
    exps = rng.integers(lo_exp, hi_exp + 1, size=n)
    signs = rng.choice([-1.0, 1.0], size=n)
    return signs * np.ldexp(mant, exps)


def _ties_and_neighbours(dtype: str, rng: np.random.Generator, n: int) -> np.ndarray:
    """Exact midpoints between adjacent ``dtype`` numbers (subnormal, normal, and the one
    above the largest finite, which rounds to inf), and the float64 values next to them."""
    info = np.finfo(dtype)
    bits = {"float16": np.uint16, "float32": np.uint32}[dtype]
    top = int(np.array(np.inf, dtype=dtype).view(bits))  # bit pattern of +inf
    patterns = rng.integers(0, top, size=n).astype(bits)
    patterns[:8] = np.arange(8, dtype=bits)  # the smallest subnormals, and zero
    patterns[8] = top - 1  # the largest finite
    a = patterns.view(dtype).astype(np.float64)
    b = (patterns + 1).view(dtype).astype(np.float64)
    b[8] = float(info.max) + (float(info.max) - (patterns[8:9] - 1).view(dtype).astype(np.float64)[0])  # next "number": 2**(emax+1)
    mid = (a + b) / 2  # exact in float64
    out = np.concatenate([mid, np.nextafter(mid, np.inf), np.nextafter(mid, -np.inf)])
    return np.concatenate([out, -out])


@pytest.mark.parametrize("dtype", ["float16", "float32"])
def test_round_to_matches_numpy_conversion(dtype):
    rng = np.random.default_rng(20240607 + (dtype == "float32"))
    info = np.finfo(dtype)
    emin, emax = int(np.log2(float(info.smallest_normal))), int(info.maxexp)
    p = info.nmant + 1
    values = np.concatenate(
        [
            _random_float64(rng, 3000, emin - p - 3, emax + 1),  # through subnormals up to overflow
            _random_float64(rng, 1000, -3, 3),  # ordinary magnitudes
            _ties_and_neighbours(dtype, rng, 1000),
            np.array([0.0, 1.0, -1.0, float(info.max), float(info.smallest_normal), float(info.smallest_subnormal)]),
        ]
    )
    with np.errstate(over="ignore"):
        want = values.astype(dtype).astype(np.float64)
    got = np.array([precision.round_to(mpmath.mpf(float(v)), dtype) for v in values])
    mismatch = ~((got == want) & (np.signbit(got) == np.signbit(want)) | (values == 0) & (got == 0))
    assert not mismatch.any(), [
        (float(v), float(g), float(w)) for v, g, w in zip(values[mismatch][:5], got[mismatch][:5], want[mismatch][:5])
    ]


def test_round_to_float64_matches_exact_rational_rounding():
    """Values no float64 holds (at 256 bits) rounded to float64, against Python's correctly
    rounded int/int division, through the subnormal range and to overflow."""
    rng = np.random.default_rng(7)
    with precision.working_precision(256):
        for _ in range(1500):
            man = int(rng.integers(1, 2**62)) * 2**190 + int(rng.integers(0, 2**62))
            exp = int(rng.integers(-1300, 800)) - 250
            x = mpmath.ldexp(man, exp) * (-1 if rng.random() < 0.5 else 1)
            s, m, e, _ = x._mpf_
            frac = Fraction(m * 2**e) if e >= 0 else Fraction(m, 2**-e)
            try:
                want = float(frac)
            except OverflowError:
                want = math.inf
            want = -want if s else want
            got = precision.round_to(x, "float64")
            assert got == want and math.copysign(1, got) == math.copysign(1, want), (x, got, want)


def test_round_to_far_below_the_subnormal_range():
    for dtype in ("float16", "float32", "float64"):
        for e in (-1100, -1075, -5000, -10**6):
            tiny = mpmath.ldexp(1, e)
            assert precision.round_to(tiny, dtype) == 0.0 and not math.copysign(1, precision.round_to(tiny, dtype)) < 0
            neg = precision.round_to(-tiny, dtype)
            assert neg == 0.0 and math.copysign(1, neg) < 0
    # exactly half the smallest subnormal ties to even (zero); a hair above rounds up
    for dtype in ("float16", "float32", "float64"):
        half = mpmath.ldexp(1, precision.float_format(dtype).emin - precision.float_format(dtype).precision)
        smallest = precision.float_format(dtype).smallest_subnormal
        assert precision.round_to(half, dtype) == 0.0
        with precision.working_precision(256):
            above = half * (1 + mpmath.ldexp(1, -200))
        assert precision.round_to(above, dtype) == smallest
        assert precision.round_to(3 * half, dtype) == 2 * smallest  # tie between 1 and 2: even


def test_round_to_far_beyond_the_range():
    for dtype in ("float16", "float32", "float64"):
        huge = mpmath.ldexp(1, 10**6)
        assert precision.round_to(huge, dtype) == math.inf
        assert precision.round_to(-huge, dtype) == -math.inf
        fmt = precision.float_format(dtype)
        largest = float(fmt.max_finite)
        half_step = mpmath.ldexp(1, fmt.emax - fmt.precision)  # half an ulp at the top
        assert precision.round_to(fmt.max_finite + half_step, dtype) == math.inf  # tie: to even = overflow
        with precision.working_precision(256):
            below = fmt.max_finite + half_step * (1 - mpmath.ldexp(1, -100))
        assert precision.round_to(below, dtype) == largest


def test_round_array_matches_round_to():
    with precision.working_precision(256):
        vals = np.array([mpmath.mpf(1) / 3, -mpmath.sqrt(2), mpmath.ldexp(1, -30), mpmath.mpf(70000)], dtype=object)
    for dtype in ("float16", "float32", "float64"):
        arr = precision.round_array(vals, dtype)
        assert arr.dtype == np.dtype(dtype)
        assert [float(v) for v in arr] == [precision.round_to(v, dtype) for v in vals]


# ----------------------------------------------------------------- the spec table


def test_spec_prints_every_loss_and_reading(capsys):
    assert cli.main(["spec"]) == 0
    out = capsys.readouterr().out
    for spec in catalog.all_specs():
        assert f"`{spec.id}`" in out, spec.id
        for option in spec.options:
            assert f"`{option.name}`" in out
        for reading in spec.readings:
            assert f"**{reading.topic}.**" in out, (spec.id, reading.topic)
    assert set(catalog.loss_ids()) == {s.id for s in catalog.all_specs()}


def test_committed_spec_is_current(capsys):
    assert cli.main(["spec"]) == 0
    out = capsys.readouterr().out
    assert out == render_markdown()
    assert (ROOT / "docs" / "SPEC.md").read_text() == out, "docs/SPEC.md is stale: run `lossconf spec -o docs/SPEC.md`"


def test_from_float64_rounds_to_bfloat16_once():
    """``precision.from_float64`` rounds float64 to bfloat16 correctly (against ``round_to``)
    whatever ml_dtypes does: the trap of a cast through float32 is a float64 just off a
    bfloat16 tie by less than a float32 ULP (0.2744140625 + 2**-40 must give 141/512, not the
    even 140/512), through subnormals (down to 2**-133) and to overflow."""
    rng = np.random.default_rng(16)
    lo = np.array(rng.integers(0, 2**15, 3000), dtype=np.uint16).view(precision.numpy_dtype("bfloat16"))
    lo = lo.astype(np.float64)
    lo = lo[np.isfinite(lo)]
    ulp = np.abs(np.nextafter(lo.astype(np.float32), np.float32(np.inf)).astype(np.float64) - lo) * 2**16
    ties = lo + ulp / 2  # bfloat16 midpoints above each value (exact in float64)
    nudged = np.concatenate([ties, ties + ties * 2.0**-40, ties - ties * 2.0**-40])
    values = np.concatenate([
        nudged, -nudged, _random_float64(rng, 2000, -140, 129), [0.0, -0.0, 0.2744140625 + 2.0**-40, 3.5e38, 1e300],
    ])
    got = precision.from_float64(values, "bfloat16").astype(np.float64)
    want = np.array([precision.round_to(mpmath.mpf(float(v)), "bfloat16") for v in values])
    mismatch = ~((got == want) & ((np.signbit(got) == np.signbit(values)) | np.isinf(got)))  # mpf has no -0
    assert not mismatch.any(), [(float(v), float(g), float(w)) for v, g, w in zip(values[mismatch][:5], got[mismatch][:5], want[mismatch][:5])]
    one = precision.from_float64(0.2744140625 + 2.0**-40, "bfloat16")
    assert one.shape == () and one.astype(np.float64) == 141 / 512
    assert precision.from_float64(np.zeros((2, 0, 3)), "bfloat16").shape == (2, 0, 3)
    assert np.isnan(precision.from_float64([np.nan], "bfloat16").astype(np.float64)).all()
    for dtype in ("float16", "float32", "float64"):
        assert precision.from_float64(values, dtype).dtype == np.dtype(dtype)
