"""L1Loss checks beyond the generic self-verification: worked examples computed by hand
and a float64 transcription of the documented formula."""

import numpy as np
import pytest

import oracle
from oracle.losses import l1_loss as m

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
    for case in m.cases():
        if case.dtype != "float64" or case.invalid or "extreme" in case.tags:
            continue
        opts = m.SPEC.resolve_options(case.options)
        pred = np.asarray(case.inputs["pred"], dtype=np.float64)
        label = np.asarray(case.inputs["label"], dtype=np.float64).reshape(pred.shape)
        loss = np.abs(label - pred)
        if "sample_weight" in case.inputs:
            loss = loss * case.inputs["sample_weight"]
        if opts["weight"] is not None:
            loss = loss * opts["weight"]
        ax = opts["batch_axis"] % pred.ndim
        want = loss.mean(axis=tuple(a for a in range(pred.ndim) if a != ax))
        got = oracle.evaluate(ID, case.inputs, case.options).value_as("float64")
        np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-300, err_msg=case.name)


def test_invalid_cases_raise():
    for case in m.cases():
        if case.invalid:
            with pytest.raises(oracle.OracleError):
                oracle.evaluate(ID, case.inputs, case.options)
