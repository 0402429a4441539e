"""Checks specific to mxnet.gluon.loss.KLDivLoss: a brute-force float64 derivation of the
documented formula (mean over the non-batch axes), the KL identities, label 0, and the
relation to SoftmaxCrossEntropyLoss."""

from __future__ import annotations

import math

import numpy as np
import pytest

import oracle
from oracle.losses import kl_div_loss as m

ID = m.SPEC.id


def _brute(pred, label, *, from_logits=True, axis=-1, weight=None, batch_axis=0, sw=None):
    pred = np.asarray(pred, float)
    label = np.asarray(label, float).reshape(pred.shape)
    if from_logits:
        logp = pred
    else:
        mx = pred.max(axis=axis, keepdims=True)
        logp = pred - mx - np.log(np.exp(pred - mx).sum(axis=axis, keepdims=True))
    t = np.zeros(pred.shape)
    for i in np.ndindex(pred.shape):
        if label[i] != 0:
            t[i] = label[i] * (math.log(label[i]) - logp[i])
    if sw is not None:
        t = t * np.asarray(sw, float)
    if weight is not None:
        t = t * weight
    other = tuple(a for a in range(t.ndim) if a != batch_axis % t.ndim)
    return t.mean(axis=other) if other else t


def _val(inputs, opts=None):
    return oracle.evaluate(ID, inputs, opts or {}).value_as("float64")


@pytest.mark.parametrize("case", [c for c in m.cases() if c.invalid is None and c.dtype == "float64"
                                  and set(c.tags) & {"regular", "shape"}], ids=lambda c: c.name)
def test_regular_cases_match_brute_force(case):
    o = dict(m.SPEC.defaults(), **case.options)
    expect = _brute(
        case.inputs["pred"], case.inputs["label"], from_logits=o["from_logits"], axis=o["axis"],
        weight=o["weight"], batch_axis=o["batch_axis"], sw=case.inputs.get("sample_weight"),
    )
    np.testing.assert_allclose(_val(case.inputs, case.options), expect, rtol=1e-12, atol=1e-15)


def test_mean_not_sum_over_non_batch_axes():
    """Documented: "Dimenions other than batch_axis are averaged out"."""
    label = np.array([[0.5, 0.25, 0.25]])
    pred = np.log(np.array([[0.25, 0.5, 0.25]]))
    kl = sum(p * math.log(p / q) for p, q in zip(label[0], [0.25, 0.5, 0.25]))
    np.testing.assert_allclose(_val({"pred": pred, "label": label}), [kl / 3], rtol=1e-15)


def test_kl_of_a_distribution_with_itself_is_zero():
    logits = np.array([[0.3, -1.2, 2.0, 0.0]])
    p = np.exp(logits - logits.max())
    p = p / p.sum()
    r = oracle.evaluate(ID, {"pred": [[7.0, 7.0, 7.0, 7.0]], "label": [[0.25] * 4]}, {"from_logits": False})
    assert r.value_as("float64").tolist() == [0.0]
    assert _val({"pred": logits, "label": p}, {"from_logits": False})[0] < 1e-15


def test_label_zero_contributes_nothing_even_at_minus_inf():
    a = _val({"pred": [[-0.5, -np.inf]], "label": [[1.0, 0.0]]})
    assert a.tolist() == [0.25]


def test_relates_to_softmax_cross_entropy():
    """KL(label || softmax(pred)) = CE(label, pred) - H(label), both averaged per position."""
    rng = np.random.default_rng(4)
    pred = rng.normal(size=(3, 5))
    label = rng.dirichlet(np.ones(5), size=3)
    kl = _val({"pred": pred, "label": label}, {"from_logits": False})
    ce = oracle.evaluate("SoftmaxCELoss", {"pred": pred, "label": label}, {"sparse_label": False}).value_as("float64")
    ent = -(label * np.log(label)).sum(axis=1)
    np.testing.assert_allclose(kl * 5, ce - ent, rtol=1e-12)


def test_axis_ignored_with_from_logits():
    rng = np.random.default_rng(5)
    x = {"pred": rng.normal(size=(2, 3)) - 2, "label": rng.uniform(0, 1, size=(2, 3))}
    assert _val(x, {"axis": 0}).tolist() == _val(x).tolist()
    assert _val(x, {"axis": 7}).tolist() == _val(x).tolist()


@pytest.mark.parametrize(
    "inputs,opts",
    [
        ({"pred": [[0.0, -1.0]], "label": [[1.5, 0.5]]}, {}),
        ({"pred": [[0.0, -1.0]], "label": [[-0.5, 0.5]]}, {}),
        ({"pred": [[0.0, -1.0]], "label": [[float("nan"), 0.5]]}, {}),
        ({"pred": [[0.0, -1.0]], "label": [[0.5, 0.25, 0.25]]}, {}),
        ({"pred": [[0.0, -1.0]], "label": [[0.5, 0.5]]}, {"from_logits": False, "axis": -3}),
        ({"pred": [[0.0, float("inf")]], "label": [[0.5, 0.5]]}, {"from_logits": False}),
    ],
)
def test_bad_inputs_raise(inputs, opts):
    with pytest.raises(oracle.OracleError, match=ID):
        oracle.evaluate(ID, inputs, opts)
