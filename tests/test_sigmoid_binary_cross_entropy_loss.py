"""Checks specific to SigmoidBinaryCrossEntropyLoss: the documented formula evaluated
directly (prob = 1 / (1 + exp(-pred)), then logs of prob and 1 - prob) at high precision,
independent of the module's softplus form; pos_weight semantics; the eps-free boundary."""

from __future__ import annotations

import random

import mpmath
import numpy as np
import pytest

import oracle
from oracle import cases as C
from oracle.losses import sigmoid_binary_cross_entropy_loss as m

ID = m.SPEC.id


def brute(pred, label, pos_weight=None, sample_weight=None, weight=None, from_sigmoid=False):
    """Documented formula, row by row (batch_axis 0), at 600 bits."""
    pred = np.asarray(pred, dtype=np.float64)
    label = np.asarray(label, dtype=np.float64).reshape(pred.shape)
    pw = np.broadcast_to(np.ones(1) if pos_weight is None else np.asarray(pos_weight), pred.shape)
    sw = np.broadcast_to(np.ones(1) if sample_weight is None else np.asarray(sample_weight), pred.shape)
    out = []
    with mpmath.workprec(600):
        for b in range(pred.shape[0]):
            terms = []
            for idx in np.ndindex(pred.shape[1:]):
                i = (b, *idx)
                x, z = mpmath.mpf(pred[i]), mpmath.mpf(label[i])
                prob = x if from_sigmoid else 1 / (1 + mpmath.exp(-x))
                lt = -(z * mpmath.log(prob) * mpmath.mpf(pw[i]) + (1 - z) * mpmath.log(1 - prob))
                terms.append(lt * mpmath.mpf(sw[i]))
            w = 1 if weight is None else mpmath.mpf(weight)
            out.append(w * mpmath.fsum(terms) / len(terms))
    return out


def _close(a, b, rel=None):
    rel = mpmath.mpf(10) ** -60 if rel is None else rel
    return abs(a - b) <= rel * max(abs(a), abs(b), mpmath.mpf(10) ** -300)


@pytest.mark.parametrize("from_sigmoid", [False, True])
@pytest.mark.parametrize("seed", range(4))
def test_matches_documented_formula(seed, from_sigmoid):
    rng = random.Random(seed)
    pred = C.uniform(rng, (3, 4), 0.01, 0.99, "float64") if from_sigmoid else C.normal(rng, (3, 4), 3.0, "float64")
    label = C.uniform(rng, (3, 4), 0, 1, "float64")
    pw = C.uniform(rng, (1, 4), 0.1, 5, "float64")
    sw = C.uniform(rng, (3, 1), 0.1, 2, "float64")
    r = oracle.evaluate("SigmoidBCELoss", {"pred": pred, "label": label, "pos_weight": pw, "sample_weight": sw},
                        {"from_sigmoid": from_sigmoid, "weight": 0.75})
    exp = brute(pred, label, pw, sw, 0.75, from_sigmoid)
    for got, want in zip(r.value, exp):
        assert _close(got, want), (got, want)


def test_extreme_logit_is_exact():
    # -log(sigmoid(1e4)) = log(1 + exp(-1e4)) ~ exp(-1e4): far below any dtype, still exact here
    r = oracle.evaluate(ID, {"pred": [[1e4], [-1e4]], "label": [[1.0], [1.0]]})
    with mpmath.workprec(600):
        assert _close(r.value[0], mpmath.log1p(mpmath.exp(-10000)), rel=mpmath.mpf(10) ** -70)
        assert _close(r.value[1], 10000 + mpmath.log1p(mpmath.exp(-10000)), rel=mpmath.mpf(10) ** -70)


def test_pos_weight_of_ones_is_no_pos_weight_and_scales_positive_term():
    pred, label = [[0.3, -1.2, 2.0]], [[1.0, 0.0, 0.5]]
    a = oracle.evaluate(ID, {"pred": pred, "label": label})
    b = oracle.evaluate(ID, {"pred": pred, "label": label, "pos_weight": [[1.0, 1.0, 1.0]]})
    assert a.value[0] == b.value[0]
    # pos_weight only on the label-1 element (index 0): changes by (pw - 1) * softplus(-0.3) / 3
    c = oracle.evaluate(ID, {"pred": pred, "label": label, "pos_weight": [[3.0, 5.0, 1.0]]})
    with mpmath.workprec(600):
        delta = c.value[0] - a.value[0]
        want = 2 * mpmath.log1p(mpmath.exp(-mpmath.mpf(0.3))) / 3
        assert _close(delta, want, rel=mpmath.mpf(10) ** -70)


def test_probability_boundary_has_no_eps():
    r = oracle.evaluate(ID, {"pred": [[0.0, 1.0]], "label": [[0.0, 1.0]]}, {"from_sigmoid": True})
    assert r.value[0] == 0  # MXNet's eps would give about -1e-12 ... here 0 * log(0) = 0 exactly
    r = oracle.evaluate(ID, {"pred": [[0.0], [1.0]], "label": [[1.0], [0.0]]}, {"from_sigmoid": True})
    assert all(mpmath.isinf(v) and v > 0 for v in r.value)
    assert r.grads["pred"].lo[0, 0] == -mpmath.inf and r.grads["pred"].lo[1, 0] == mpmath.inf


@pytest.mark.parametrize(
    "inputs,opts",
    [
        ({"pred": [[0.5]], "label": [[1.0000001]]}, {}),
        ({"pred": [[0.5]], "label": [[-1e-9]]}, {"from_sigmoid": True}),
        ({"pred": [[1.0000001]], "label": [[1.0]]}, {"from_sigmoid": True}),
        ({"pred": [[float("nan")]], "label": [[1.0]]}, {}),
        ({"pred": [[float("inf")]], "label": [[1.0]]}, {"from_sigmoid": True}),
        ({"pred": [[0.5, 0.5]], "label": [[1.0, 1.0]], "pos_weight": [[1.0, 2.0, 3.0]]}, {}),
    ],
)
def test_invalid_inputs_raise(inputs, opts):
    with pytest.raises(oracle.InputError, match="SigmoidBinaryCrossEntropyLoss"):
        oracle.evaluate(ID, inputs, opts)


def test_infinite_logits_give_the_formulas_limit():
    """The documented formula's limit at +-inf logits (the module docstring's decision):
    0 where the label agrees, +inf otherwise; the derivative (1 - label) at +inf and
    -label * pos_weight at -inf -- the limits of the finite-logit values."""
    inf = float("inf")
    r = oracle.evaluate(ID, {"pred": [[inf, -inf], [inf, -inf]], "label": [[1.0, 0.0], [0.25, 0.5]],
                             "pos_weight": [[1.0, 3.0]]}, {})
    assert r.value[0] == 0 and mpmath.isinf(r.value[1]) and r.value[1] > 0
    g = r.grads["pred"].lo  # cotangent of ones, mean over 2 elements: a factor 1/2
    assert [float(v) for v in g.ravel()] == [0.0, 0.0, (1 - 0.25) / 2, -0.5 * 3.0 / 2]
    # the limit of the finite-logit values
    big = oracle.evaluate(ID, {"pred": [[40.0, -40.0]], "label": [[0.25, 0.5]], "pos_weight": [[1.0, 3.0]]}, {})
    assert [float(v) for v in big.grads["pred"].lo.ravel()] == pytest.approx([(1 - 0.25) / 2, -0.5 * 3.0 / 2], abs=1e-15)
