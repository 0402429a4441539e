"""Checks specific to chainer.functions.softmax_cross_entropy: the docstring's worked
example, and brute-force re-derivations in plain float64 (math.exp / math.log loops written
independently of the oracle module)."""

from __future__ import annotations

import itertools
import math
import zlib

import mpmath
import numpy as np
import pytest

import oracle
from oracle.losses import chainer_softmax_cross_entropy as m

LOSS = "chainer.functions.softmax_cross_entropy"
CW = (0.5, 2.0, 1.0, 0.25)


def _log_softmax(row):
    mx = max(row)
    lse = mx + math.log(sum(math.exp(v - mx) for v in row))
    return [v - lse for v in row]


def _instances(x):
    """(index tuple without axis 1, logits along axis 1) for every instance of x."""
    x = np.asarray(x, dtype=np.float64)
    n, c = x.shape[:2]
    for idx in itertools.product(range(n), *[range(d) for d in x.shape[2:]]):
        yield idx, [float(x[(idx[0], k, *idx[1:])]) for k in range(c)]


def _brute(x, t, normalize=True, class_weight=None, ignore_label=-1, reduce="mean", soft_target_loss="cross-entropy"):
    x = np.asarray(x, dtype=np.float64)
    c = x.shape[1]
    w = [1.0] * c if class_weight is None else list(class_weight)
    soft = np.shape(t) == x.shape
    losses, count = {}, 0
    for idx, row in _instances(x):
        lp = _log_softmax(row)
        if soft:
            tt = [float(np.asarray(t)[(idx[0], k, *idx[1:])]) for k in range(c)]
            val = -sum(tt[k] * w[k] * lp[k] for k in range(c))
            if soft_target_loss == "kl-divergence":
                val += sum(tk * math.log(tk) for tk in tt if tk > 0)
            count += 1
        else:
            lab = int(np.asarray(t)[idx])
            if lab == ignore_label:
                val = 0.0
            else:
                val = -w[lab] * lp[lab]
                count += 1
        losses[idx] = val
    if reduce == "no":
        shape = (x.shape[0], *x.shape[2:])
        out = np.zeros(shape)
        for idx, v in losses.items():
            out[idx] = v
        return out
    denom = max(count, 1) if normalize else x.shape[0]
    return sum(losses.values()) / denom


def _value(inputs, **opts):
    return np.asarray(oracle.evaluate(LOSS, inputs, opts).value_as("float64"), dtype=np.float64)


# ---------------------------------------------------------------- worked example


def test_worked_example_from_the_docstring():
    x = np.array([[-1, 0, 1, 2], [2, 0, 1, -1]]).astype(np.float32)
    t = np.array([3, 0]).astype(np.int32)
    r = oracle.evaluate(LOSS, {"x": x, "t": t})
    assert r.shape == ()
    # "expected_loss = np.mean([log_softmax[row, column] ...])", log_softmax = -F.log_softmax(x),
    # computed here in float64 with math.log / math.exp
    picks = [-_log_softmax([float(v) for v in x[i]])[int(t[i])] for i in range(2)]
    expected = sum(picks) / 2
    assert abs(float(r.value[()]) - expected) <= 4e-16 * expected
    # both rows have the target at the maximum, with gaps 1, 2, 3 to the other classes
    with mpmath.workprec(256):
        exact = mpmath.log(1 + mpmath.exp(-1) + mpmath.exp(-2) + mpmath.exp(-3))
        assert abs(r.value[()] - exact) < mpmath.mpf(10) ** -60

    # ">>> y" prints "variable(0.44018972)". The exact value is 0.4401896985611953..., so the
    # correctly rounded float32 is 0.44018968939... (shortest repr 0.4401897); the printed
    # 0.44018972 is the float32 one ulp above it (error 0.69 ulp), i.e. Chainer's float32
    # result, well within eps32 * scale (scale = |x_t - max| + |logsumexp(x - max)| = 0.44,
    # the target being each row's maximum).
    documented = np.float32(0.44018972)
    y = r.value_as("float32")[()]
    assert repr(y) in ("np.float32(0.4401897)", "0.4401897")
    assert np.nextafter(y, np.float32(1)) == documented
    assert abs(float(documented) - float(exact)) <= 0.7 * 2.0**-25
    assert abs(float(documented) - float(exact)) <= np.finfo(np.float32).eps * float(r.scale[()])
    assert f"{float(exact):.7g}" == f"{float(documented):.7g}" == "0.4401897"


# --------------------------------------------------------------- brute force


@pytest.mark.parametrize(
    "opts",
    [
        {},
        {"normalize": False},
        {"class_weight": CW},
        {"class_weight": CW, "normalize": False},
        {"reduce": "no"},
        {"reduce": "no", "class_weight": CW, "ignore_label": 2},
        {"ignore_label": 2},
    ],
    ids=str,
)
@pytest.mark.parametrize("shape", [(3, 4), (2, 4, 3), (2, 4, 2, 2)], ids=str)
def test_hard_labels_match_brute_force(opts, shape):
    rng = np.random.default_rng(zlib.crc32(f"{opts}{shape}".encode()))
    x = rng.normal(0, 2, shape)
    inst = (shape[0], *shape[2:])
    ignore = opts.get("ignore_label", -1)
    t = rng.integers(0, shape[1], inst)
    t.reshape(-1)[0] = ignore
    got = _value({"x": x, "t": t}, **opts)
    want = _brute(x, t, **opts)
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("loss", ["cross-entropy", "kl-divergence"])
@pytest.mark.parametrize(
    "opts", [{}, {"normalize": False}, {"reduce": "no"}, {"class_weight": CW}], ids=str
)
@pytest.mark.parametrize("shape", [(3, 4), (2, 4, 3, 1)], ids=str)
def test_soft_targets_match_brute_force(loss, opts, shape):
    rng = np.random.default_rng(zlib.crc32(f"{opts}{loss}{shape}".encode()))
    x = rng.normal(0, 2, shape)
    t = rng.uniform(0.05, 1, shape)
    t = t / t.sum(axis=1, keepdims=True)
    got = _value({"x": x, "t": t}, soft_target_loss=loss, **opts)
    want = _brute(x, t, soft_target_loss=loss, **opts)
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-15)
    if opts.get("reduce") == "no":
        assert got.shape == (shape[0], *shape[2:])


def test_hard_gradient_matches_brute_force():
    x = np.array([[0.5, -1.0, 2.0], [1.0, 1.0, -3.0], [0.0, 0.25, 0.5]])
    t = np.array([2, -1, 0])
    w = (2.0, 0.5, 4.0)
    r = oracle.evaluate(LOSS, {"x": x, "t": t}, {"class_weight": w}, cotangent=np.float64(3.0))
    want = np.zeros_like(x)
    for i, lab in enumerate(t):
        if lab == -1:
            continue
        p = [math.exp(v) for v in _log_softmax(list(x[i]))]
        for k in range(3):
            want[i, k] = 3.0 * w[lab] * (p[k] - (k == lab)) / 2  # two non-ignored instances
    np.testing.assert_allclose(r.grad_as("x", "float64"), want, rtol=1e-13, atol=1e-16)


# --------------------------------------------------------------- readings


def test_every_label_ignored_gives_zero():
    x = np.array([[1.0, 2.0], [3.0, -1.0]])
    for opts in ({}, {"normalize": False}, {"reduce": "no"}):
        r = oracle.evaluate(LOSS, {"x": x, "t": np.array([-1, -1])}, opts)
        assert all(v == 0 for v in r.value.ravel())
        assert all(v == 0 for v in r.grads["x"].value.ravel())


def test_one_hot_soft_target_equals_hard_label():
    x = np.array([[0.5, -1.0, 2.0], [1.0, 1.0, -3.0]])
    hard = _value({"x": x, "t": np.array([1, 2])}, reduce="no")
    for loss in ("cross-entropy", "kl-divergence"):
        soft = _value({"x": x, "t": np.eye(3)[[1, 2]]}, reduce="no", soft_target_loss=loss)
        np.testing.assert_allclose(soft, hard, rtol=1e-15)


def test_kl_is_cross_entropy_minus_entropy():
    x = np.array([[0.5, -1.0, 2.0, 0.0]])
    t = np.array([[0.125, 0.5, 0.375, 0.0]])
    ce = oracle.evaluate(LOSS, {"x": x, "t": t}).value[()]
    kl = oracle.evaluate(LOSS, {"x": x, "t": t}, {"soft_target_loss": "kl-divergence"}).value[()]
    with mpmath.workprec(256):
        entropy = -sum(mpmath.mpf(v) * mpmath.log(v) for v in t.ravel() if v > 0)
        assert abs(kl - (ce - entropy)) < mpmath.mpf(10) ** -60


def test_ignore_label_may_be_a_class_index():
    x = np.array([[0.5, -1.0, 2.0], [1.0, 1.0, -3.0]])
    r = _value({"x": x, "t": np.array([2, 0])}, ignore_label=2, reduce="no")
    assert r[0] == 0 and r[1] > 0
    with pytest.raises(oracle.OracleError, match="label -1"):
        oracle.evaluate(LOSS, {"x": x, "t": np.array([-1, 0])}, {"ignore_label": 2})


def test_value_neutral_options_do_not_change_anything():
    x = np.array([[0.5, -1.0, 2.0], [1.0, 1.0, -3.0]])
    t = np.array([2, 0])
    base = oracle.evaluate(LOSS, {"x": x, "t": t})
    for opts in ({"cache_score": False}, {"enable_double_backprop": True}):
        r = oracle.evaluate(LOSS, {"x": x, "t": t}, opts)
        assert r.value[()] == base.value[()]
        assert (r.grads["x"].value == base.grads["x"].value).all()


def test_tiny_loss_keeps_relative_accuracy():
    x = np.array([[0.0, -200.0, -200.0, -200.0]])
    r = oracle.evaluate(LOSS, {"x": x, "t": np.array([0])})
    with mpmath.workprec(1000):
        exact = mpmath.log1p(3 * mpmath.exp(-200))
        assert abs(r.value[()] - exact) <= abs(exact) * mpmath.mpf(2) ** -240
        # d/dx_0 = p_0 - 1 = -3e/(1 + 3e) with e = exp(-200), also tiny
        e3 = 3 * mpmath.exp(-200)
        g0 = r.grads["x"].value[0, 0]
        assert abs(g0 + e3 / (1 + e3)) <= abs(g0) * mpmath.mpf(2) ** -240


@pytest.mark.parametrize(
    "inputs,opts,match",
    [
        ({"x": [[0.0, 1.0]], "t": [2]}, {}, "label 2"),
        ({"x": [[0.0, 1.0]], "t": [0.5]}, {}, "integer labels"),
        ({"x": [[0.0, 1.0]], "t": [[0.5, 0.25]]}, {}, "sums to"),
        ({"x": [[0.0, 1.0]], "t": [[1.5, -0.5]]}, {}, ">= 0"),
        ({"x": [[0.0, 1.0]], "t": [0, 1]}, {}, "shape"),
        ({"x": [0.0, 1.0], "t": [0]}, {}, "at least 2 dimensions"),
        ({"x": [[0.0, 1.0]], "t": [0]}, {"class_weight": (1.0, 2.0, 3.0)}, "class_weight"),
        ({"x": [[0.0, float("inf")]], "t": [0]}, {}, "finite logits"),
    ],
)
def test_bad_input_raises(inputs, opts, match):
    with pytest.raises(oracle.OracleError, match=match):
        oracle.evaluate(LOSS, inputs, opts)


def test_every_invalid_case_raises():
    for case in m.cases():
        if case.invalid:
            with pytest.raises(oracle.OracleError):
                oracle.evaluate(LOSS, case.inputs, case.options)


def test_soft_target_tolerance_is_2_to_minus_8():
    x = [[0.0, 1.0]]
    oracle.evaluate(LOSS, {"x": x, "t": [[0.5 + 2.0**-9, 0.5]]})
    with pytest.raises(oracle.OracleError, match="sums to"):
        oracle.evaluate(LOSS, {"x": x, "t": [[0.5 + 2.0**-7, 0.5]]})
