"""TripletLoss checks of our own: the value and the VJPs recomputed in exact rational
arithmetic (fractions) from the documented formula, independent of the oracle module."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

import oracle
from oracle import cases as C
from oracle.losses import triplet_loss as m

CASES = [c for c in m.cases() if c.invalid is None]
TOL = Fraction(1, 2**240)  # the oracle works at 256 bits; rational arithmetic is exact


def _frac(x) -> Fraction:
    """An mpf as the exact rational it is."""
    sign, man, exp, _ = x._mpf_
    return (-1) ** sign * Fraction(int(man)) * Fraction(2) ** exp if man else Fraction(0)


def _close(got, want: Fraction) -> bool:
    return abs(_frac(got) - want) <= abs(want) * TOL


def _brute(case):
    opts = m.SPEC.resolve_options(case.options)
    pred = np.asarray(case.inputs["pred"], dtype=np.float64)
    pos = np.asarray(case.inputs["positive"], dtype=np.float64).reshape(pred.shape)
    neg = np.asarray(case.inputs["negative"], dtype=np.float64).reshape(pred.shape)
    axis = opts["batch_axis"] % pred.ndim
    n = pred.shape[axis]
    w0 = Fraction(1) if opts["weight"] is None else Fraction(opts["weight"])
    if "sample_weight" in case.inputs:  # one weight per sample: its entries along batch_axis
        sw = np.broadcast_to(np.asarray(case.inputs["sample_weight"], dtype=np.float64), pred.shape)
        w = [w0 * Fraction(float(v)) for v in np.moveaxis(sw, axis, 0).reshape(n, -1)[:, 0]]
    else:
        w = [w0] * n
    pred, pos, neg = (np.moveaxis(a, axis, 0).reshape(a.shape[axis], -1) for a in (pred, pos, neg))
    margin = Fraction(opts["margin"])
    out, inner = [], []
    for b in range(pred.shape[0]):
        s = sum(
            (Fraction(float(p)) - Fraction(float(x))) ** 2 - (Fraction(float(n)) - Fraction(float(x))) ** 2
            for x, p, n in zip(pred[b], pos[b], neg[b])
        )
        inner.append(s + margin)
        out.append(w[b] * max(s + margin, Fraction(0)))
    return out, inner, w, (pred, pos, neg)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_value_matches_rational_arithmetic(case):
    r = oracle.evaluate(m.SPEC.id, case.inputs, case.options)
    out, _, _, _ = _brute(case)
    assert r.shape == (len(out),)
    for got, want in zip(r.value, out):
        assert _close(got, want), (got, float(want))


@pytest.mark.parametrize("case", [c for c in CASES if c.dtype == "float64"], ids=lambda c: c.name)
def test_pred_gradient_matches_rational_arithmetic(case):
    r = oracle.evaluate(m.SPEC.id, case.inputs, case.options)
    _, inner, w, (pred, pos, neg) = _brute(case)
    opts = m.SPEC.resolve_options(case.options)
    axis = opts["batch_axis"] % np.ndim(case.inputs["pred"])
    lo = np.moveaxis(r.grads["pred"].lo, axis, 0).reshape(pred.shape)
    hi = np.moveaxis(r.grads["pred"].hi, axis, 0).reshape(pred.shape)
    for b in range(pred.shape[0]):
        for i in range(pred.shape[1]):
            g = 2 * w[b] * (Fraction(float(neg[b, i])) - Fraction(float(pos[b, i])))
            if inner[b] > 0:
                want = (g, g)
            elif inner[b] < 0:
                want = (0, 0)
            else:
                want = (min(g, 0), max(g, 0))
            assert _close(lo[b, i], Fraction(want[0])) and _close(hi[b, i], Fraction(want[1])), (b, i)


def test_kink_cases_are_exactly_on_the_kink():
    for case in m.cases():
        if "kink" in case.tags:
            _, inner, _, _ = _brute(case)
            assert any(v == 0 for v in inner), case.name


def test_nonpositive_margin_is_rejected():
    x = {k: [[0.0, 1.0]] for k in ("pred", "positive", "negative")}
    for margin in (0, -0.5):
        with pytest.raises(oracle.OptionError, match="margin"):
            oracle.evaluate(m.SPEC.id, x, {"margin": margin})


def test_sample_weight_is_a_documented_per_sample_input():
    """forward(pred, positive, negative, sample_weight=None) is the documented signature: the
    input exists (whatever MXNet 1.9.1's code takes), one weight per sample."""
    assert m.SPEC.input("sample_weight").optional
    x = {"pred": [[0.0, 1.0], [1.0, 0.0]], "positive": [[1.0, 1.0], [0.0, 0.0]], "negative": [[0.0, 0.0], [1.0, 1.0]]}
    plain = oracle.evaluate(m.SPEC.id, x).value
    weighted = oracle.evaluate(m.SPEC.id, {**x, "sample_weight": [[2.0], [0.5]]}).value
    assert [float(v) for v in weighted] == [2 * float(plain[0]), 0.5 * float(plain[1])]
    for bad in ([[1.0, 2.0], [3.0, 4.0]], [1.0, 2.0, 3.0]):  # a full tensor; a wrong batch size
        with pytest.raises(oracle.InputError, match="sample_weight"):
            oracle.evaluate(m.SPEC.id, {**x, "sample_weight": bad})


def test_case_names_unique_and_count():
    names = [c.name for c in m.cases()]
    assert len(names) == len(set(names))
    # 83 since the long cases came in float16, float32 and bfloat16 (oracle.cases.HALF_ULP_DTYPES)
    assert 30 <= len(names) <= 100
    assert {c.dtype for c in m.cases()} == set(C.FIXTURE_DTYPES)
