"""L1Loss checks beyond the generic self-verification: worked examples computed by hand
and a float64 transcription of the documented formula."""

import numpy as np

import oracle
from oracle.losses import l1_loss as m
from tests.elementwise_checks import assert_float64_transcription, assert_invalid_cases_raise

ID = m.SPEC.id


def test_worked_example_and_kink_interval():
    r = oracle.evaluate(ID, {"pred": [[1.0, 2.0], [3.0, 5.0]], "label": [[0.0, 2.0], [4.0, 1.0]]})
    assert r.value_as("float64").tolist() == [0.5, 2.5]
    g = r.grads["pred"]
    assert np.asarray(g.lo, dtype=float).tolist() == [[0.5, -0.5], [-0.5, 0.5]]
    assert np.asarray(g.hi, dtype=float).tolist() == [[0.5, 0.5], [-0.5, 0.5]]
    assert g.at_kink.tolist() == [[False, True], [False, False]]


def test_batch_axis_and_weights_by_hand():
    x = {"pred": [[1.0, 2.0], [3.0, 5.0]], "label": [[0.0, 2.0], [4.0, 1.0]]}
    assert oracle.evaluate(ID, x, {"batch_axis": 1}).value_as("float64").tolist() == [1.0, 2.0]
    r = oracle.evaluate(ID, {**x, "sample_weight": [[2.0], [1.0]]}, {"weight": 0.5})
    assert r.value_as("float64").tolist() == [0.5, 1.25]


def test_float64_transcription_of_the_formula():
    assert_float64_transcription(m, lambda pred, label, opts: np.abs(label - pred))


def test_invalid_cases_raise():
    assert_invalid_cases_raise(m)
