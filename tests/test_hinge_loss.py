"""HingeLoss and SquaredHingeLoss checks beyond the generic self-verification: worked
examples computed by hand, the label domain, and a float64 transcription of the formulas."""

import numpy as np
import pytest

import oracle
from oracle.losses import hinge_loss, squared_hinge_loss
from tests.elementwise_checks import assert_float64_transcription, assert_invalid_cases_raise

X = {"pred": [[0.5, -2.0, 1.0, 3.0]], "label": [[1.0, 1.0, 1.0, -1.0]]}  # h = 0.5, 3, 0, 4


def test_hinge_worked_example():
    r = oracle.evaluate(hinge_loss.SPEC.id, X)
    assert r.value_as("float64").tolist() == [1.875]
    g = r.grads["pred"]
    assert np.asarray(g.lo, dtype=float).tolist() == [[-0.25, -0.25, -0.25, 0.25]]
    assert np.asarray(g.hi, dtype=float).tolist() == [[-0.25, -0.25, 0.0, 0.25]]


def test_squared_hinge_worked_example():
    r = oracle.evaluate(squared_hinge_loss.SPEC.id, X)
    assert r.value_as("float64").tolist() == [6.3125]
    g = r.grads["pred"]
    assert not g.at_kink.any()
    assert np.asarray(g.lo, dtype=float).tolist() == [[-0.25, -1.5, 0.0, 2.0]]


@pytest.mark.parametrize("module", [hinge_loss, squared_hinge_loss])
@pytest.mark.parametrize("bad", [0.0, -0.0, 0.5, 2.0, -3.0])
def test_labels_outside_minus_one_one_raise(module, bad):
    with pytest.raises(oracle.OracleError, match="label"):
        oracle.evaluate(module.SPEC.id, {"pred": [[0.5, 0.5]], "label": [[1.0, bad]]})


@pytest.mark.parametrize("module,square", [(hinge_loss, False), (squared_hinge_loss, True)])
def test_float64_transcription_of_the_formula(module, square):
    def term(pred, label, opts):
        loss = np.maximum(0.0, opts["margin"] - pred * label)
        return loss * loss if square else loss

    assert_float64_transcription(module, term)


@pytest.mark.parametrize("module", [hinge_loss, squared_hinge_loss])
def test_invalid_cases_raise(module):
    assert_invalid_cases_raise(module)
