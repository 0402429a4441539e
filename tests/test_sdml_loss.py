"""Checks specific to SDMLLoss: the documented label example, a brute-force transcription of
the KL divergence (probabilities by exp/sum, not log_softmax), the batch_axis=1 layout,
translation invariance of a distance-based loss, and s = 0 as softmax cross-entropy."""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest

import oracle

ID = "mxnet.gluon.loss.SDMLLoss"

X1 = np.array([[0.5, -1.0, 0.25], [1.5, 0.0, -0.75], [-0.5, 2.0, 1.0], [0.0, 0.5, -1.25]])
X2 = np.array([[0.75, -0.5, 0.0], [1.0, 0.25, -1.0], [-1.0, 1.5, 1.5], [0.25, 0.0, -1.0]])


def _brute(x1, x2, s, w=1.0):
    b = x1.shape[0]
    out = []
    with mpmath.workprec(300):
        for i in range(b):
            d = [mpmath.fsum((mpmath.mpf(a) - mpmath.mpf(c)) ** 2 for a, c in zip(x1[i], x2[j])) for j in range(b)]
            z = mpmath.fsum(mpmath.exp(-dj) for dj in d)
            kl = 0
            for j in range(b):
                lab = mpmath.mpf(1 - mpmath.mpf(s)) if i == j else mpmath.mpf(s) / (b - 1)
                if lab:
                    kl += lab * mpmath.log(lab / (mpmath.exp(-d[j]) / z))
            out.append(w * kl)
    return out


@pytest.mark.parametrize("s,w", [(0.3, 1.0), (0.0, 1.0), (0.9, 0.5)])
def test_brute_force_kl(s, w):
    r = oracle.evaluate(ID, {"x1": X1, "x2": X2}, {"smoothing_parameter": s, "weight": w})
    assert r.shape == (4,)
    for got, want in zip(r.value, _brute(X1, X2, s, w)):
        assert abs(got - want) <= mpmath.mpf(2) ** -200 * max(1, abs(want))


def test_documented_label_example_against_uniform_softmax():
    # _compute_labels: labels [[0.9, 0.1], [0.1, 0.9]] (batch of 2, s = 0.1); with every
    # distance equal the softmax is uniform, so out[i] = KL(labels_i || (1/2, 1/2)).
    z = np.zeros((2, 3))
    r = oracle.evaluate(ID, {"x1": z, "x2": z}, {"smoothing_parameter": 0.1})
    want = 0.9 * math.log(0.9) + 0.1 * math.log(0.1) + math.log(2)
    assert np.allclose(r.value_as("float64"), [want, want], rtol=1e-15)


def test_batch_axis_one_is_the_transposed_layout():
    ct = np.array([0.5, -1.0, 2.0, 1.5])
    a = oracle.evaluate(ID, {"x1": X1, "x2": X2}, cotangent=ct)
    b = oracle.evaluate(ID, {"x1": X1.T, "x2": X2.T}, {"batch_axis": 1}, cotangent=ct)
    assert (a.value == b.value).all()
    for name in ("x1", "x2"):
        assert b.grads[name].value.shape == X1.T.shape
        assert (a.grads[name].value.T == b.grads[name].value).all()


def test_translation_invariance_and_gradients_sum_to_zero():
    a = oracle.evaluate(ID, {"x1": X1, "x2": X2})
    b = oracle.evaluate(ID, {"x1": X1 + 3.0, "x2": X2 + 3.0})
    for u, v in zip(a.value, b.value):
        assert abs(u - v) < 1e-60
    # a common translation does not change the loss: the x1 and x2 gradients cancel
    with mpmath.workprec(256):
        total = a.grads["x1"].value.sum(axis=0) + a.grads["x2"].value.sum(axis=0)
        assert all(abs(t) < 1e-60 for t in total)


def test_no_smoothing_is_softmax_cross_entropy_of_the_pair():
    r = oracle.evaluate(ID, {"x1": X1, "x2": X2}, {"smoothing_parameter": 0.0})
    d = ((X1[:, None, :] - X2[None, :, :]) ** 2).sum(axis=2)
    want = [np.logaddexp.reduce(-d[i]) + d[i, i] for i in range(4)]
    assert np.allclose(r.value_as("float64"), want, rtol=1e-13)


def test_batch_of_one_is_invalid_even_without_smoothing():
    with pytest.raises(oracle.InputError, match="batch_size >= 2"):
        oracle.evaluate(ID, {"x1": np.ones((1, 2)), "x2": np.ones((1, 2))}, {"smoothing_parameter": 0.0})
