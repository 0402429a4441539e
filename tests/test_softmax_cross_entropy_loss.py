"""Checks specific to mxnet.gluon.loss.SoftmaxCrossEntropyLoss: a brute-force float64
derivation of the documented formula, closed forms (ties, one class), axis moves, the
documented sample_weight example and the extreme-logit values."""

from __future__ import annotations

import math

import numpy as np
import pytest

import oracle
from oracle.losses import softmax_cross_entropy_loss as m

ID = m.SPEC.id


def _brute(pred, label, *, axis=-1, sparse=True, from_logits=False, weight=None, batch_axis=0, sw=None):
    """The documented formula, written out with plain float64 loops."""
    pred = np.moveaxis(np.asarray(pred, float), axis, -1)
    n_class = pred.shape[-1]
    if sparse:
        label = np.asarray(label)
    else:
        label = np.moveaxis(np.asarray(label, float), axis, -1)
    per = np.zeros(pred.shape[:-1])
    for pos in np.ndindex(per.shape):
        row = pred[pos]
        if from_logits:
            logp = row
        else:
            z = sum(math.exp(v - max(row)) for v in row)
            logp = [v - max(row) - math.log(z) for v in row]
        if sparse:
            per[pos] = -logp[int(label[pos])]
        else:
            per[pos] = -sum(label[pos][j] * logp[j] for j in range(n_class))
    per = np.moveaxis(per[..., None], -1, axis)  # the class axis kept at size 1
    if sw is not None:
        per = per * np.asarray(sw, float)
    if weight is not None:
        per = per * weight
    other = tuple(a for a in range(per.ndim) if a != batch_axis % per.ndim)
    return per.mean(axis=other)


def _val(inputs, opts=None):
    return oracle.evaluate(ID, inputs, opts or {}).value_as("float64")


def test_alias_resolves():
    assert oracle.resolve("SoftmaxCELoss") == ID
    assert oracle.resolve("mxnet.gluon.loss.SoftmaxCELoss") == ID


@pytest.mark.parametrize("case", [c for c in m.cases() if c.invalid is None and c.dtype == "float64"
                                  and set(c.tags) & {"regular", "shape"}], ids=lambda c: c.name)
def test_regular_cases_match_brute_force(case):
    o = dict(m.SPEC.defaults(), **case.options)
    expect = _brute(
        case.inputs["pred"], case.inputs["label"], axis=o["axis"], sparse=o["sparse_label"],
        from_logits=o["from_logits"], weight=o["weight"], batch_axis=o["batch_axis"],
        sw=case.inputs.get("sample_weight"),
    )
    np.testing.assert_allclose(_val(case.inputs, case.options), expect, rtol=1e-12, atol=1e-14)


def test_ties_are_log_c():
    v = _val({"pred": [[5.0] * 4, [-3.0] * 4], "label": [3, 0]})
    assert v.tolist() == [math.log(4), math.log(4)]


def test_one_class_is_zero_and_gradient_zero():
    r = oracle.evaluate(ID, {"pred": [[3.5]], "label": [0]})
    assert r.value_as("float64").tolist() == [0.0]
    assert r.grad_as("pred", "float64").tolist() == [[0.0]]


def test_extreme_logits_keep_o1_results():
    big = 1e300
    v = _val({"pred": [[-big, -big, -big], [big, big, 0.0], [big, 0.0, -big]], "label": [2, 0, 2]})
    assert v[0] == math.log(3)
    assert v[1] == math.log(2)
    assert v[2] == 2 * big


def test_tiny_loss_relative_accuracy():
    v = _val({"pred": [[0.0, -30.0, -30.0, -30.0]], "label": [0]})
    e = math.exp(-30)
    assert abs(v[0] - (3 * e - 4.5 * e * e)) <= 4e-16 * v[0]  # log1p(3e), series


def test_axis_moves_with_the_data():
    rng = np.random.default_rng(0)
    pred = rng.normal(size=(2, 3, 4))
    label = rng.integers(0, 3, size=(2, 4)).astype(float)
    a = _val({"pred": pred, "label": label}, {"axis": 1})
    b = _val({"pred": np.moveaxis(pred, 1, -1), "label": label}, {"axis": -1})
    np.testing.assert_allclose(a, b, rtol=1e-15)


def test_documented_sample_weight_example_shape():
    """label (64, 10) dense with sample_weight (64, 1) weighs each sample."""
    rng = np.random.default_rng(1)
    pred = rng.normal(size=(64, 10))
    label = rng.dirichlet(np.ones(10), size=64)
    sw = rng.uniform(0, 2, size=(64, 1))
    weighted = _val({"pred": pred, "label": label, "sample_weight": sw}, {"sparse_label": False})
    plain = _val({"pred": pred, "label": label}, {"sparse_label": False})
    np.testing.assert_allclose(weighted, plain * sw[:, 0], rtol=1e-14)


def test_dense_one_hot_equals_sparse():
    rng = np.random.default_rng(2)
    pred = rng.normal(size=(3, 5))
    t = np.array([4, 0, 2])
    onehot = np.eye(5)[t]
    a = oracle.evaluate(ID, {"pred": pred, "label": t.astype(float)})
    b = oracle.evaluate(ID, {"pred": pred, "label": onehot}, {"sparse_label": False})
    np.testing.assert_array_equal(a.value_as("float64"), b.value_as("float64"))
    np.testing.assert_array_equal(a.grad_as("pred", "float64"), b.grad_as("pred", "float64"))


def test_gradient_rows_sum_to_zero_without_from_logits():
    rng = np.random.default_rng(3)
    r = oracle.evaluate(ID, {"pred": rng.normal(size=(3, 4)), "label": [1.0, 2.0, 3.0]})
    g = r.grad_as("pred", "float64")
    np.testing.assert_allclose(g.sum(axis=1), 0, atol=1e-16)


@pytest.mark.parametrize(
    "inputs,opts",
    [
        ({"pred": [[0.0, 1.0]], "label": [2.0]}, {}),
        ({"pred": [[0.0, 1.0]], "label": [0.5]}, {}),
        ({"pred": [[0.0, 1.0]], "label": [[0.0, 1.0]]}, {}),
        ({"pred": [[0.0, 1.0]], "label": [[1.5, -0.5]]}, {"sparse_label": False}),
        ({"pred": [[0.0, 1.0]], "label": [1.0]}, {"axis": 0}),
        ({"pred": [[0.0, 1.0]], "label": [1.0]}, {"axis": 3}),
        ({"pred": [[0.0, float("inf")]], "label": [1.0]}, {}),
        ({"pred": [[0.0, float("nan")]], "label": [1.0]}, {}),
    ],
)
def test_bad_inputs_raise(inputs, opts):
    with pytest.raises(oracle.OracleError, match=ID):
        oracle.evaluate(ID, inputs, opts)
