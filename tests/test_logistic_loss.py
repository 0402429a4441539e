"""Checks specific to LogisticLoss: the documented formula log(1 + exp(-pred * label))
evaluated directly at high precision, and the binary reading (0/1 labels are the signed
labels -1/1 in another encoding)."""

from __future__ import annotations

import random

import mpmath
import numpy as np
import pytest

import oracle
from oracle import cases as C

ID = "mxnet.gluon.loss.LogisticLoss"


def brute(pred, label, sample_weight=None, weight=None):
    pred = np.asarray(pred, dtype=np.float64)
    label = np.asarray(label, dtype=np.float64).reshape(pred.shape)
    sw = np.broadcast_to(np.ones(1) if sample_weight is None else np.asarray(sample_weight), pred.shape)
    out = []
    with mpmath.workprec(600):
        for b in range(pred.shape[0]):
            terms = [
                mpmath.log(1 + mpmath.exp(-mpmath.mpf(pred[(b, *i)]) * mpmath.mpf(label[(b, *i)]))) * mpmath.mpf(sw[(b, *i)])
                for i in np.ndindex(pred.shape[1:])
            ]
            out.append((1 if weight is None else mpmath.mpf(weight)) * mpmath.fsum(terms) / len(terms))
    return out


def _close(a, b, rel=None):
    rel = mpmath.mpf(10) ** -60 if rel is None else rel
    return abs(a - b) <= rel * max(abs(a), abs(b), mpmath.mpf(10) ** -300)


@pytest.mark.parametrize("seed", range(4))
def test_signed_matches_documented_formula(seed):
    rng = random.Random(seed)
    pred = C.normal(rng, (3, 4), 3.0, "float64")
    label = C.choice(rng, (3, 4), (-1.0, 1.0)).astype(np.float64)
    sw = C.uniform(rng, (3, 1), 0.1, 2, "float64")
    r = oracle.evaluate(ID, {"pred": pred, "label": label, "sample_weight": sw}, {"weight": 1.5})
    for got, want in zip(r.value, brute(pred, label, sw, 1.5)):
        assert _close(got, want)


@pytest.mark.parametrize("seed", range(3))
def test_binary_is_signed_relabelled(seed):
    rng = random.Random(seed)
    pred = C.normal(rng, (2, 5), 3.0, "float64")
    binary = C.choice(rng, (2, 5), (0.0, 1.0)).astype(np.float64)
    rb = oracle.evaluate(ID, {"pred": pred, "label": binary}, {"label_format": "binary"})
    for got, want in zip(rb.value, brute(pred, 2 * binary - 1)):
        assert _close(got, want)
    rs = oracle.evaluate(ID, {"pred": pred, "label": 2 * binary - 1})
    assert all(rb.grads["pred"].lo.ravel() == rs.grads["pred"].lo.ravel())


def test_binary_zero_label_depends_on_pred():
    # the rejected literal reading would give log 2 for any pred with label 0
    r = oracle.evaluate(ID, {"pred": [[3.0]], "label": [[0.0]]}, {"label_format": "binary"})
    with mpmath.workprec(600):
        assert _close(r.value[0], mpmath.log1p(mpmath.exp(3)))


@pytest.mark.parametrize(
    "label,fmt", [([[0.0]], "signed"), ([[-1.0]], "binary"), ([[0.5]], "binary"), ([[float("nan")]], "signed")]
)
def test_labels_outside_format_raise(label, fmt):
    with pytest.raises(oracle.InputError, match="LogisticLoss"):
        oracle.evaluate(ID, {"pred": [[0.5]], "label": label}, {"label_format": fmt})


def test_infinite_pred_gives_the_formulas_limit_and_nan_is_rejected():
    """pred = +-inf: the margin pred * s is +-inf and the value the formula's limit (0 or
    +inf), the derivative its limit (0 or -s); nan stays an input error."""
    inf = float("inf")
    r = oracle.evaluate(ID, {"pred": [[inf, -inf], [-inf, inf]], "label": [[1.0, -1.0], [1.0, 1.0]]}, {})
    assert r.value[0] == 0 and mpmath.isinf(r.value[1]) and r.value[1] > 0
    assert [float(v) for v in r.grads["pred"].lo.ravel()] == [0.0, 0.0, -0.5, 0.0]
    with pytest.raises(oracle.InputError, match="LogisticLoss"):
        oracle.evaluate(ID, {"pred": [[float("nan")]], "label": [[1.0]]}, {})
