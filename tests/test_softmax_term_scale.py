"""The term scale of every softmax-based loss is DESIGN.md's: for softmax cross-entropy
``|x_t| + |logsumexp(x)|``, the magnitudes of the terms the documented formula
``x_t - logsumexp(x)`` adds (the ruling on issue 11 item 3: an unshifted log-sum-exp is a
correct evaluation and must pass), with the error the terms exp(x_k) of logsumexp carry,
``sum_k p_k |x_k|`` (oracle.arrays.lse_terms). Each expected scale here is computed
independently with mpmath from the inputs: ``_lse(row)`` is ``|logsumexp| + sum p |x|``."""

from __future__ import annotations

import mpmath
import numpy as np
import pytest

import oracle
from oracle.losses import sdml_loss


def _lse(row) -> mpmath.mpf:
    """|logsumexp(row)| + sum_k p_k |row_k|."""
    with mpmath.workprec(200):
        xs = [mpmath.mpf(float(v)) for v in row]
        lse = mpmath.log(mpmath.fsum(mpmath.exp(v) for v in xs))
        return abs(lse) + mpmath.fsum(mpmath.exp(v - lse) * abs(v) for v in xs)


def _logits(seed, shape):
    return np.random.default_rng(seed).normal(size=shape) * 3


def test_softmax_cross_entropy_sparse():
    pred = _logits(1, (3, 4)) + np.array([[1000.0], [-250.0], [0.0]])
    label = np.array([0.0, 2.0, 3.0])
    r = oracle.evaluate("mxnet.gluon.loss.SoftmaxCrossEntropyLoss", {"pred": pred, "label": label})
    want = [abs(pred[i, int(label[i])]) + abs(_lse(pred[i])) for i in range(3)]
    np.testing.assert_allclose(np.asarray(r.scale, float), np.asarray(want, float), rtol=1e-12)


def test_softmax_cross_entropy_dense():
    pred = _logits(2, (3, 4))
    label = np.random.default_rng(3).dirichlet(np.ones(4), size=3)
    r = oracle.evaluate("mxnet.gluon.loss.SoftmaxCrossEntropyLoss", {"pred": pred, "label": label}, {"sparse_label": False})
    want = [sum(label[i, j] * (abs(pred[i, j]) + abs(float(_lse(pred[i])))) for j in range(4)) for i in range(3)]
    np.testing.assert_allclose(np.asarray(r.scale, float), want, rtol=1e-12)


def test_the_offset_example_is_held_to_the_logits_scale():
    """[1000, 970, 970], target 0: a loss of 1.9e-13 whose terms are 1000 and 1000 + 1.9e-13
    (plus 1000 carried by logsumexp's terms): an evaluation that rounds x_t - logsumexp(x)
    at 1000 is backward stable."""
    r = oracle.evaluate("chainer.functions.softmax_cross_entropy",
                        {"x": np.array([[1000.0, 970.0, 970.0]]), "t": np.array([0])}, {"reduce": "no"})
    assert float(r.scale[0]) == pytest.approx(3000.0, rel=1e-12)


def test_kl_div_from_logits_false():
    pred = _logits(2, (3, 4))
    label = np.random.default_rng(3).dirichlet(np.ones(4), size=3)
    r = oracle.evaluate("mxnet.gluon.loss.KLDivLoss", {"pred": pred, "label": label}, {"from_logits": False})
    with mpmath.workprec(200):
        want = [
            mpmath.fsum(abs(label[i, j] * mpmath.log(label[i, j])) + label[i, j] * (abs(pred[i, j]) + abs(_lse(pred[i])))
                        for j in range(4)) / 4
            for i in range(3)
        ]
    np.testing.assert_allclose(np.asarray(r.scale, float), np.asarray(want, float), rtol=1e-12)


def test_chainer_hard_labels():
    x = _logits(4, (3, 4))
    t = np.array([0, 3, 1])
    r = oracle.evaluate("chainer.functions.softmax_cross_entropy", {"x": x, "t": t}, {"reduce": "no"})
    want = [abs(x[i, t[i]]) + abs(float(_lse(x[i]))) for i in range(3)]
    np.testing.assert_allclose(np.asarray(r.scale, float), want, rtol=1e-12)


def test_ctc_one_frame_one_symbol_is_softmax_cross_entropy_plus_the_value():
    pred = np.array([[[0.5, -1.0, 2.0]]]) + 300.0
    r = oracle.evaluate("mxnet.gluon.loss.CTCLoss", {"pred": pred, "label": np.array([[1.0]])})
    # one frame, label [1]: the only path emits 1; gamma is one-hot at 1
    lse = float(_lse(pred[0, 0]))  # |lse| + sum_k y_k |x_k|
    want = abs(pred[0, 0, 1]) + lse + float(r.value[0])
    assert float(r.scale[0]) == pytest.approx(want, rel=1e-12)


def test_sdml_log_softmax_part():
    """SDML's logits are -d_ij: weight * sum_j [labels |log labels| + labels * (|d_ij| +
    |logsumexp_j(-d_ij)|) + |labels - p| d_ij]."""
    rng = np.random.default_rng(6)
    x1, x2 = rng.normal(size=(3, 2)), rng.normal(size=(3, 2))
    r = oracle.evaluate(sdml_loss.SPEC.id, {"x1": x1, "x2": x2})
    s = 0.3
    labels = np.where(np.eye(3, dtype=bool), 1 - s, s / 2)
    d = ((x1[:, None, :] - x2[None, :, :]) ** 2).sum(-1)
    lse = np.array([float(mpmath.log(mpmath.fsum(mpmath.exp(-v) for v in d[i]))) for i in range(3)])
    p = np.exp(-d - lse[:, None])
    terms = np.abs(lse) + (p * d).sum(1)
    want = (np.abs(labels * np.log(labels)) + labels * (d + terms[:, None]) + np.abs(labels - p) * d).sum(1)
    np.testing.assert_allclose(np.asarray(r.scale, float), want, rtol=1e-9)
