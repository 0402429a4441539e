"""The oracle's proof rule (oracle/api.py, oracle/real.py): tiny values are proven to every
digit, not settled to 0; a tie's zero is an exact zero; what cannot be proven up to the
precision cap raises; subnormal results are exact to the last bit. References here are
computed independently with mpmath at far higher precision, and roundings with Python's
correctly rounded Fraction -> float conversion."""

from __future__ import annotations

import decimal
import json
from fractions import Fraction
from pathlib import Path

import mpmath
import numpy as np
import pytest

import oracle
from oracle import api, catalog, precision
from oracle.real import Real, Undecided, real

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def reference(fn, bits: int = 4000) -> mpmath.mpf:
    with mpmath.workprec(bits):
        return +fn()


def as_float(x: mpmath.mpf) -> float:
    """Correctly rounded float64 of an mpf (Fraction -> float rounds correctly, subnormals too)."""
    sign, man, exp, _ = x._mpf_
    f = Fraction(man) * Fraction(2) ** exp
    return -float(f) if sign else float(f)


def close(a: mpmath.mpf, b: mpmath.mpf, digits: int = 39) -> bool:
    with mpmath.workprec(4000):  # exact for the numbers compared here
        return abs(a - b) <= mpmath.mpf(10) ** -digits * abs(b)


SOFTPLUS_720 = reference(lambda: mpmath.log1p(mpmath.exp(-720)))
SOFTPLUS_1000 = reference(lambda: mpmath.log1p(mpmath.exp(-1000)))


def test_log1p_exp_minus_720_is_a_float64_subnormal_exact_to_the_bit():
    r = oracle.evaluate("SoftmaxCELoss", {"pred": [[0.0, 720.0]], "label": [1]})
    assert close(r.value[0], SOFTPLUS_720)
    got = r.value_as("float64")[0]
    assert got == as_float(SOFTPLUS_720) and 0 < got < np.finfo(np.float64).tiny  # a subnormal, not 0
    # the gradient: p - onehot = (e^-720 / (1 + e^-720), -e^-720 / (1 + e^-720)), subnormal too
    p0 = reference(lambda: mpmath.exp(-720) / (1 + mpmath.exp(-720)))
    g = r.grads["pred"].value[0]
    assert close(g[0], p0) and close(g[1], reference(lambda: -p0))
    assert r.grad_as("pred", "float64")[0, 0] == as_float(p0) != 0


def test_log1p_exp_minus_1000_is_proven_below_every_dtype():
    r = oracle.evaluate("SoftmaxCELoss", {"pred": [[0.0, 1000.0]], "label": [1]})
    assert close(r.value[0], SOFTPLUS_1000)  # 5.08e-435: proven digits, not a settled 0
    assert precision.to_decimal(r.value[0]).endswith("e-435")
    assert r.value_as("float64")[0] == 0.0  # rounds to 0 in every dtype, as it must
    assert close(r.grads["pred"].value[0, 1], reference(lambda: -mpmath.exp(-1000) / (1 + mpmath.exp(-1000))))


@pytest.mark.parametrize(
    "loss,inputs",
    [
        ("LogisticLoss", {"pred": [720.0], "label": [1.0]}),
        ("SigmoidBCELoss", {"pred": [[720.0]], "label": [[1.0]]}),
        ("mxnet.gluon.loss.CTCLoss", {"pred": [[[720.0, 0.0]]], "label": [[0]]}),
        ("chainer.functions.softmax_cross_entropy", {"x": [[720.0, 0.0]], "t": np.array([0], dtype=np.int32)}),
    ],
)
def test_log1p_exp_minus_720_through_other_losses(loss, inputs):
    r = oracle.evaluate(loss, inputs)
    assert close(np.ravel(r.value)[0], SOFTPLUS_720)
    assert r.value_as("float64").ravel()[0] == as_float(SOFTPLUS_720)


def test_log_of_a_sum_near_one_keeps_relative_accuracy():
    """log(1 + e^-10000 + e^-20000): the shifted log-sum-exp is log1p of the other terms."""
    r = oracle.evaluate("SoftmaxCELoss", {"pred": [[1e4, 0.0, -1e4]], "label": [0]})
    ref = reference(lambda: mpmath.log1p(mpmath.exp(-10000) + mpmath.exp(-20000)), bits=40000)
    assert close(r.value[0], ref)


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_subnormal_roundings_are_exact_in_every_dtype(dtype):
    gap = {"float16": 12.0, "float32": 95.0, "float64": 720.0}[dtype]
    r = oracle.evaluate("SoftmaxCELoss", {"pred": [[0.0, gap]], "label": [1]}, dtypes=(dtype,))
    ref = reference(lambda: mpmath.log1p(mpmath.exp(-gap)))
    info = np.finfo(dtype)
    # the exact value rounded once: Fraction of the reference, rounded to the dtype's quantum
    quantum = Fraction(2) ** (int(np.log2(float(info.smallest_subnormal))))
    q = Fraction(ref.man) * Fraction(2) ** ref.exp / quantum
    want = float(round(q) * quantum)  # round() on a Fraction: ties to even
    got = float(r.value_as(dtype)[0])
    assert got == want and 0 < got < float(info.tiny)


def _enclosures(loss: str, inputs: dict, options: dict | None = None, bits: int = 256):
    loss_id = catalog.resolve(loss)
    opts = catalog.spec(loss_id).resolve_options(options or {})
    with precision.working_precision(bits):
        return api._evaluate_at(loss_id, inputs, opts, None, catalog.spec(loss_id).differentiable, bits)


def test_a_tie_is_a_proven_exact_zero():
    """Equal logits with a dense label (0.5, 0.5): the gradient (sum wl) p_k - wl_k is
    1 * exp(-log 2) - 0.5, exactly 0: a point at 0, not an enclosure straddling it."""
    ev = _enclosures("SoftmaxCELoss", {"pred": [[3.0, 3.0]], "label": [[0.5, 0.5]]}, {"sparse_label": False})
    g = ev.grads["pred"].lo[0]
    assert all(isinstance(v, Real) and v.is_zero for v in g)
    r = oracle.evaluate("SoftmaxCELoss", {"pred": [[3.0, 3.0]], "label": [[0.5, 0.5]]}, {"sparse_label": False})
    assert list(r.grads["pred"].value[0]) == [0, 0]


def test_a_zero_weight_is_a_proven_exact_zero():
    ev = _enclosures("SoftmaxCELoss", {"pred": [[1.0, 2.5]], "label": [1], "sample_weight": [0.0]})
    assert ev.value[0].is_zero
    assert all(v.is_zero for v in ev.grads["pred"].lo.ravel())


def test_a_ball_straddling_zero_is_not_called_zero():
    """An enclosure containing 0 but wider than the floor proves nothing."""
    with precision.working_precision(256):
        x = real(1) / 3 - real(2) / 6  # exactly 0, but computed as two balls
        assert not x.is_exact
        assert api.prove(x) is None
        tiny = real(2) ** -1300 * (real(1) / 3 - real(2) / 6)
        assert api.prove(tiny) == 0  # within +-2**-1200: the documented floor


def test_undecided_branch_raises_undecided():
    with precision.working_precision(256):
        third = real(1) / 3
        with pytest.raises(Undecided):
            _ = third * 3 > 1


def test_oracle_error_at_the_precision_cap(monkeypatch):
    """ct (p_0 - 0.25) with p_0 = 1 - e^-15000-ish and ct = 1 + 2^-23: 0.75 ct is a float32
    rounding boundary, and the exact value lies e^-15000 below it, so proving its float32
    rounding needs some 21000 bits; with the cap at 1024 bits the oracle says so, naming
    the loss, the element and the widths reached -- never a silent value."""
    monkeypatch.setattr(precision, "MAX_PRECISION_BITS", 1024)
    inputs = {"x": np.array([[3e4, -3e4, 0.0, 1.5e4]], dtype=np.float32), "t": np.full((1, 4), 0.25, np.float32)}
    options = {"soft_target_loss": "kl-divergence", "reduce": "no"}
    with pytest.raises(oracle.OracleError) as err:
        oracle.evaluate("chainer.functions.softmax_cross_entropy", inputs, options, cotangent=[1 + 2.0**-23], dtypes=("float32",))
    text = str(err.value)
    assert "chainer.functions.softmax_cross_entropy" in text and "vjp x[0, 0]" in text
    assert "at 256 bits" in text and "at 1024 bits" in text and "cap of 1024 bits" in text


def test_decimal_encoding_is_correctly_rounded_ties_to_even():
    decimal.getcontext().prec = 2000
    for x in (mpmath.ldexp(1, -57), mpmath.ldexp(3, -61), mpmath.ldexp(1, -1074), mpmath.mpf(2) ** 200 + 1):
        sign, man, exp, _ = x._mpf_
        exact = decimal.Decimal(int(man)) * decimal.Decimal(2) ** int(exp)
        want = format(exact.quantize(decimal.Decimal(1).scaleb(exact.adjusted() - 39), rounding=decimal.ROUND_HALF_EVEN), ".39e")
        got = precision.to_decimal(x)
        assert decimal.Decimal(got) == decimal.Decimal(want), (x, got, want)


def test_vjp_term_scale_of_softmax_cross_entropy():
    """The documented running-error rule (oracle/real.py) re-derived by hand for
    s (p_k - y_k), p_k = exp(d_k - L), d_k = x_k - m, L = log1p(r), r = sum_{j != top} e^{d_j}:
    |s| (p_k (1 + c_k + L + mag(r) / (1 + r)) + y_k), mag(r) = sum e^{d_j} (1 + c_j), where
    c_k = |x_k| + |m| is the exponent's error term of the documented x_k - logsumexp(x)
    (DESIGN.md's |x_t| + |logsumexp(x)|, the ruling on issue 11 item 3)."""
    for offset in (0.0, 1000.0):
        pred = [0.5 + offset, -1.0 + offset, 2.0 + offset]
        with mpmath.workprec(200):
            x = [mpmath.mpf(v) for v in pred]
            m = max(x)
            d = [v - m for v in x]
            c = [abs(v) + abs(m) for v in x]
            rest = [j for j in range(3) if d[j] != 0]
            r = mpmath.fsum(mpmath.exp(d[j]) for j in rest)
            mag_r = mpmath.fsum(mpmath.exp(d[j]) * (1 + c[j]) for j in rest)
            big_l = mpmath.log1p(r)
            p = [mpmath.exp(v - big_l) for v in d]
            want = [2 * (p[k] * (1 + c[k] + big_l + mag_r / (1 + r)) + (1 if k == 2 else 0)) for k in range(3)]
        r_ = oracle.evaluate("SoftmaxCELoss", {"pred": [pred], "label": [2]}, cotangent=[-2.0])
        for got, w in zip(r_.grads["pred"].scale[0], want):
            assert abs(got - w) <= 1e-7 * w, (offset, got, w)


def test_subnormal_fixture_cases_hold_subnormal_results():
    """Every case tagged subnormal has a value or VJP element that rounds to a nonzero
    subnormal of its dtype (read from the committed fixtures, rounded here with Fraction)."""
    seen: dict[str, set] = {}
    for path in sorted(FIXTURES.glob("*.json")):
        doc = json.loads(path.read_text())
        if "loss" not in doc:  # MANIFEST.json, schema.json
            continue
        for c in doc["cases"]:
            if "subnormal" not in c["tags"]:
                continue
            info = np.finfo(c["dtype"])
            texts = list(c["expected"]["value"]) + [t for v in c["vjp"].values() for t in v["value"]]
            subs = []
            for t in texts:
                if t in ("0", "nan", "inf", "-inf") or "e-" not in t or len(t.split("e-")[1]) > 4:
                    continue
                f = abs(float(decimal.Decimal(t)))
                if c["dtype"] == "float64":
                    rounded = f
                else:
                    rounded = float(np.asarray(f, dtype=c["dtype"]))
                if 0 < rounded < float(info.tiny):
                    subs.append(t)
            assert subs, f"{path.name} {c['name']}: no subnormal result"
            seen.setdefault(doc["loss"], set()).add(c["dtype"])
    # SDMLLoss has none (its softmax over pairwise distances with smoothing has no simple
    # subnormal case); TripletLoss none in float64 (see its _subnormal's docstring)
    assert len(seen) == 14 and "mxnet.gluon.loss.SDMLLoss" not in seen
    for loss, dts in seen.items():
        want = {"float16", "float32"} if loss == "mxnet.gluon.loss.TripletLoss" else {"float16", "float32", "float64"}
        assert dts == want, (loss, dts)


def test_generation_names_the_case_that_cannot_be_proven(monkeypatch, tmp_path, capsys):
    """Bad input at the cap: `lossconf fixtures generate` ends with one line naming the file,
    the case, the element and the widths -- no traceback."""
    from conformance.cli import main

    monkeypatch.setattr(precision, "MAX_PRECISION_BITS", 1024)
    code = main(["fixtures", "generate", "--loss", "chainer.functions.softmax_cross_entropy", "--jobs", "1",
                 "--out", str(tmp_path), "--no-coverage"])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 2
    assert err.startswith("lossconf: chainer_softmax_cross_entropy.json case ")
    assert "(extreme-soft-kl-float16)" in err and "cannot be proven up to the cap of 1024 bits" in err
    assert "Traceback" not in err
