"""HuberLoss checks beyond the generic self-verification: worked examples computed by
hand, the branch meeting point, and a float64 transcription of the documented formula."""

import numpy as np
import pytest

import oracle
from oracle.losses import huber_loss as m

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


def test_float64_transcription_of_the_formula():
    for case in m.cases():
        if case.dtype != "float64" or case.invalid or "extreme" in case.tags:
            continue
        opts = m.SPEC.resolve_options(case.options)
        rho = opts["rho"]
        pred = np.asarray(case.inputs["pred"], dtype=np.float64)
        label = np.asarray(case.inputs["label"], dtype=np.float64).reshape(pred.shape)
        d = label - pred
        loss = np.where(np.abs(d) < rho, d * d / (2 * rho), np.abs(d) - rho / 2)
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
