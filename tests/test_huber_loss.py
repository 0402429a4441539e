"""HuberLoss checks beyond the generic self-verification: worked examples computed by
hand, the branch meeting point, and a float64 transcription of the documented formula."""

import numpy as np
import pytest

import oracle
from oracle.losses import huber_loss as m
from tests.elementwise_checks import assert_float64_transcription, assert_invalid_cases_raise

ID = m.SPEC.id


def test_worked_example():
    x = {"pred": [[0.5, 3.0]], "label": [[0.0, 0.0]]}
    r = oracle.evaluate(ID, x)
    assert r.value_as("float64").tolist() == [1.3125]  # (0.125 + 2.5) / 2
    assert np.asarray(r.grads["pred"].lo, dtype=float).tolist() == [[0.25, 0.5]]
    r = oracle.evaluate(ID, x, {"rho": 2.0})
    assert r.value_as("float64").tolist() == [1.03125]  # (0.0625 + 2) / 2
    assert np.asarray(r.grads["pred"].lo, dtype=float).tolist() == [[0.125, 0.5]]


def test_branches_meet_with_value_and_slope():
    r = oracle.evaluate(ID, {"pred": [[2.0, -2.0]], "label": [[0.0, 0.0]]}, {"rho": 2.0})
    assert r.value_as("float64").tolist() == [1.0]
    assert not r.grads["pred"].at_kink.any()
    assert np.asarray(r.grads["pred"].lo, dtype=float).tolist() == [[0.5, -0.5]]


@pytest.mark.parametrize("rho", [0, 0.0, -0.5])
def test_rho_must_be_positive(rho):
    with pytest.raises(oracle.OracleError, match="rho"):
        oracle.evaluate(ID, {"pred": [1.0], "label": [0.0]}, {"rho": rho})


def _huber(pred, label, opts):
    rho = opts["rho"]
    d = label - pred
    return np.where(np.abs(d) < rho, d * d / (2 * rho), np.abs(d) - rho / 2)


def test_float64_transcription_of_the_formula():
    assert_float64_transcription(m, _huber)


def test_invalid_cases_raise():
    assert_invalid_cases_raise(m)
