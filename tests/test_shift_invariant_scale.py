"""The term scale of every softmax-based loss is shift-invariant: it is made of the terms a
stable log-sum-exp adds after subtracting the maximum logit, |x_j - m| and
|log sum exp(x - m)|. A uniform offset of the logits of one softmax slice changes neither
the loss nor its scale (with |x_t| + |logsumexp(x)| the offset would inflate the scale and
so the stability bound: [1000, 970, 970] would be held to 2000 eps around a 1.9e-13 loss)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import oracle
from oracle.losses import sdml_loss

OFFSETS = np.array([1000.0, -250.0, 4096.0])


def _same(a, b, rel=1e-12):
    np.testing.assert_array_equal(a.value_as("float64"), b.value_as("float64"))
    np.testing.assert_allclose(np.asarray(a.scale, float), np.asarray(b.scale, float), rtol=rel)


def _logits(seed, shape):
    """Random logits in steps of 1/64, so that adding the offsets is exact."""
    return np.round(np.random.default_rng(seed).normal(size=shape) * 3 * 64) / 64


@pytest.mark.parametrize(
    "label,opts",
    [
        (np.array([0.0, 2.0, 3.0]), {}),
        (np.full((3, 4), 0.25), {"sparse_label": False}),
    ],
)
def test_softmax_cross_entropy(label, opts):
    pred = _logits(1, (3, 4))
    loss = "mxnet.gluon.loss.SoftmaxCrossEntropyLoss"
    _same(
        oracle.evaluate(loss, {"pred": pred, "label": label}, opts),
        oracle.evaluate(loss, {"pred": pred + OFFSETS[:, None], "label": label}, opts),
    )


def test_kl_div_from_logits_false():
    pred = _logits(2, (3, 4))
    label = np.random.default_rng(3).dirichlet(np.ones(4), size=3)
    loss, opts = "mxnet.gluon.loss.KLDivLoss", {"from_logits": False}
    _same(
        oracle.evaluate(loss, {"pred": pred, "label": label}, opts),
        oracle.evaluate(loss, {"pred": pred + OFFSETS[:, None], "label": label}, opts),
    )


@pytest.mark.parametrize(
    "t,opts",
    [
        (np.array([0, 3, 1]), {"reduce": "no"}),
        (np.full((3, 4), 0.25), {"reduce": "no", "soft_target_loss": "kl-divergence"}),
        (np.array([[0.5, 0.25, 0.25, 0.0]] * 3), {}),
    ],
)
def test_chainer_softmax_cross_entropy(t, opts):
    x = _logits(4, (3, 4))
    loss = "chainer.functions.softmax_cross_entropy"
    _same(oracle.evaluate(loss, {"x": x, "t": t}, opts), oracle.evaluate(loss, {"x": x + OFFSETS[:, None], "t": t}, opts))


def test_chainer_tiny_loss_scale_is_the_loss():
    """The target at the maximum: both shifted terms are the loss itself, whatever the offset."""
    r = oracle.evaluate(
        "chainer.functions.softmax_cross_entropy",
        {"x": np.array([[1000.0, 970.0, 970.0]]), "t": np.array([0])},
        {"reduce": "no"},
    )
    assert float(r.scale[0]) == pytest.approx(2 * math.exp(-30), rel=1e-12)
    assert abs(r.scale[0] - r.value[0]) <= 1e-30 * r.value[0]


def test_ctc_per_frame_offsets():
    loss = "mxnet.gluon.loss.CTCLoss"
    pred = _logits(5, (2, 3, 4))
    label = np.array([[0.0, 1.0], [2.0, -1.0]])
    shifted = pred + np.array([[[1000.0], [-30.0], [250.0]], [[-4096.0], [7.0], [0.5]]])
    _same(oracle.evaluate(loss, {"pred": pred, "label": label}), oracle.evaluate(loss, {"pred": shifted, "label": label}))


def test_sdml_log_softmax_part():
    """SDML's logits are -d_ij: its scale is weight * sum_j [labels |log labels| + labels *
    |log p| (the shifted terms) + |labels - p| d (the rounding of each distance)]."""
    rng = np.random.default_rng(6)
    x1, x2 = rng.normal(size=(3, 2)), rng.normal(size=(3, 2))
    r = oracle.evaluate(sdml_loss.SPEC.id, {"x1": x1, "x2": x2})
    s = 0.3
    labels = np.where(np.eye(3, dtype=bool), 1 - s, s / 2)
    d = ((x1[:, None, :] - x2[None, :, :]) ** 2).sum(-1)
    neg = -d - (-d).max(1, keepdims=True)
    logp = neg - np.log(np.exp(neg).sum(1, keepdims=True))
    p = np.exp(logp)
    want = (np.abs(labels * np.log(labels)) + labels * np.abs(logp) + np.abs(labels - p) * d).sum(1)
    np.testing.assert_allclose(np.asarray(r.scale, float), want, rtol=1e-12)
