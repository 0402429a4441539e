"""Checks specific to PoissonNLLLoss: the value against the Poisson log-likelihood derived
independently (mpmath's loggamma), the two from_logits paths against each other, the
Stirling factor against log(target!), and batch_axis being value-neutral."""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest

import oracle

ID = "mxnet.gluon.loss.PoissonNLLLoss"

RATES = np.array([[0.5, 1.25, 3.0], [2.0, 0.75, 6.5]])
TARGETS = np.array([[0.0, 1.0, 4.0], [2.0, 0.0, 7.0]])


def _poisson_logpmf(k, lam):
    return k * mpmath.log(lam) - lam - mpmath.loggamma(k + 1)


def test_value_is_mean_negative_log_likelihood_without_factorial():
    with mpmath.workprec(200):
        expected = -mpmath.fsum(
            _poisson_logpmf(mpmath.mpf(k), mpmath.mpf(lam)) + mpmath.loggamma(k + 1)
            for k, lam in zip(TARGETS.ravel(), RATES.ravel())
        ) / RATES.size
        r = oracle.evaluate(ID, {"pred": RATES, "target": TARGETS}, {"from_logits": False, "epsilon": 0.0})
        assert r.shape == (1, 1)
        assert abs(r.value[0, 0] - expected) < mpmath.mpf(2) ** -150


def test_from_logits_paths_agree():
    logits = np.log(RATES)
    a = oracle.evaluate(ID, {"pred": logits, "target": TARGETS})
    with mpmath.workprec(200):
        # pred = exact log(rate) as a float64; the rate path gets exp(pred) exactly
        rates = np.array([float(mpmath.exp(mpmath.mpf(v))) for v in logits.ravel()]).reshape(logits.shape)
    b = oracle.evaluate(ID, {"pred": rates, "target": TARGETS}, {"from_logits": False, "epsilon": 0.0})
    assert abs(float(a.value[0, 0]) - float(b.value[0, 0])) < 1e-14
    # the gradients differ by the chain rule factor d rate / d logit = rate
    ga = a.grads["pred"].value
    gb = b.grads["pred"].value
    for x, y, lam in zip(ga.ravel(), gb.ravel(), rates.ravel()):
        assert abs(float(x) - float(y) * lam) < 1e-14


def test_compute_full_adds_stirling_approximation_of_log_factorial():
    base = oracle.evaluate(ID, {"pred": RATES, "target": TARGETS}, {"from_logits": False})
    full = oracle.evaluate(ID, {"pred": RATES, "target": TARGETS}, {"from_logits": False, "compute_full": True})
    added = float((full.value - base.value)[0, 0]) * TARGETS.size
    exact_log_factorial = sum(math.lgamma(k + 1) for k in TARGETS.ravel())
    # Stirling's series: log(k!) = stirling(k) + 1/(12k) - ..., and 0 for k in {0, 1}
    correction = sum(1 / (12 * k) for k in TARGETS.ravel() if k > 1)
    assert abs(added - exact_log_factorial) < correction
    assert abs(added + correction - exact_log_factorial) < 1e-3


def test_stirling_not_added_at_target_one():
    pred = np.array([0.3, -0.2])
    a = oracle.evaluate(ID, {"pred": pred, "target": np.array([1.0, 0.0])}, {"compute_full": True})
    b = oracle.evaluate(ID, {"pred": pred, "target": np.array([1.0, 0.0])})
    assert a.value[0, 0] == b.value[0, 0]


@pytest.mark.parametrize("axis", [1, -1])
def test_batch_axis_is_value_neutral(axis):
    x = {"pred": RATES, "target": TARGETS, "sample_weight": np.array([[0.5], [2.0]])}
    a = oracle.evaluate(ID, x)
    b = oracle.evaluate(ID, x, {"batch_axis": axis})
    assert a.value[0, 0] == b.value[0, 0]
    assert (a.grads["pred"].value == b.grads["pred"].value).all()


def test_epsilon_enters_only_without_logits():
    x = {"pred": RATES, "target": TARGETS}
    assert oracle.evaluate(ID, x, {"epsilon": 0.5}).value[0, 0] == oracle.evaluate(ID, x).value[0, 0]
    assert (
        oracle.evaluate(ID, x, {"epsilon": 0.5, "from_logits": False}).value[0, 0]
        != oracle.evaluate(ID, x, {"from_logits": False}).value[0, 0]
    )
