"""CosineEmbeddingLoss checks of our own: values recomputed per sample with mpmath's own
dot product and norms (a separate code path from the oracle module), kinks verified in
rational arithmetic, the sample_weight / label / batch_axis readings, invariances."""

from __future__ import annotations

from fractions import Fraction

import mpmath
import numpy as np
import pytest

import oracle
from oracle.losses import cosine_embedding_loss as m

ID = m.SPEC.id
CASES = [c for c in m.cases() if c.invalid is None]


def _rows(case):
    opts = m.SPEC.resolve_options(case.options)
    a = np.asarray(case.inputs["input1"], dtype=np.float64)
    b = np.asarray(case.inputs["input2"], dtype=np.float64).reshape(a.shape)
    axis = opts["batch_axis"] % a.ndim
    a = np.moveaxis(a, axis, 0).reshape(a.shape[axis], -1)
    b = np.moveaxis(b, axis, 0).reshape(b.shape[axis], -1)
    return opts, a, b, axis


def _brute(case):
    opts, a, b, axis = _rows(case)
    w = 1 if opts["weight"] is None else opts["weight"]
    sw = case.inputs.get("sample_weight")
    out = []
    with mpmath.workprec(300):
        for i in range(a.shape[0]):
            u = [mpmath.mpf(float(t)) for t in a[i]]
            v = [mpmath.mpf(float(t)) for t in b[i]]
            c = mpmath.fdot(u, v) / (mpmath.norm(u) * mpmath.norm(v))
            y = float(case.inputs["label"][i])
            loss = 1 - c if y == 1 else max(mpmath.mpf(0), c - opts["margin"])
            s = 1 if sw is None else float(np.moveaxis(np.broadcast_to(sw, np.shape(case.inputs["input1"])), axis, 0).reshape(a.shape[0], -1)[i, 0])
            out.append(w * s * loss)
    return out


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_value_matches_mpmath_per_sample(case):
    r = oracle.evaluate(ID, case.inputs, case.options)
    want = _brute(case)
    assert r.shape == (len(want),)
    for got, exp in zip(r.value, want):
        assert abs(got - exp) <= mpmath.mpf(2) ** -200 * (1 + abs(exp)), (got, exp)


def test_kink_cases_have_cos_sim_exactly_margin():
    for case in m.cases():
        if "kink" not in case.tags:
            continue
        opts, a, b, _ = _rows(case)
        margin = Fraction(opts["margin"])
        hits = 0
        for i in range(a.shape[0]):
            if float(case.inputs["label"][i]) != -1:
                continue
            dot = sum(Fraction(float(x)) * Fraction(float(y)) for x, y in zip(a[i], b[i]))
            n2 = sum(Fraction(float(x)) ** 2 for x in a[i]) * sum(Fraction(float(y)) ** 2 for y in b[i])
            hits += dot * dot == margin * margin * n2 and (dot >= 0) == (margin >= 0)
        assert hits, case.name
        r = oracle.evaluate(ID, case.inputs, case.options)
        assert r.grads["input1"].at_kink.any()


def test_batch_axis_1_is_the_transpose():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    y = np.array([1.0, -1.0, -1.0, 1.0])
    r0 = oracle.evaluate(ID, {"input1": a, "input2": b, "label": y}, {"margin": 0.1})
    r1 = oracle.evaluate(ID, {"input1": a.T, "input2": b.T, "label": y}, {"margin": 0.1, "batch_axis": 1})
    tol = mpmath.mpf(2) ** -200
    assert all(abs(p - q) <= tol * abs(p) for p, q in zip(r0.value, r1.value))
    g0, g1 = r0.grads["input1"].value, r1.grads["input1"].value
    assert all(abs(g0[i, j] - g1[j, i]) <= tol * abs(g0[i, j]) for i in range(4) for j in range(3))


def test_scale_invariance_and_parallel_vectors():
    a = np.array([[0.5, -1.0, 2.0]])
    r = oracle.evaluate(ID, {"input1": a, "input2": 4 * a, "label": [1.0]})
    assert r.value[0] == 0 and all(g == 0 for g in r.grads["input1"].value.ravel())
    b = np.array([[1.0, 3.0, -2.0]])
    r1 = oracle.evaluate(ID, {"input1": a, "input2": b, "label": [-1.0]}, {"margin": -1.0})
    r2 = oracle.evaluate(ID, {"input1": 8 * a, "input2": b, "label": [-1.0]}, {"margin": -1.0})
    assert abs(r1.value[0] - r2.value[0]) < mpmath.mpf(2) ** -240
    # the gradient of a scale-free function is orthogonal to its argument
    g = r1.grads["input1"].value
    with mpmath.workprec(256):
        assert abs(sum(g[0, i] * a[0, i] for i in range(3))) < mpmath.mpf(2) ** -240


def test_sample_weight_is_per_sample():
    a = np.array([[1.0, 2.0], [3.0, -1.0], [0.5, 0.5]])
    b = np.array([[2.0, 1.0], [1.0, 1.0], [-1.0, 0.25]])
    y = np.array([1.0, -1.0, 1.0])
    base = oracle.evaluate(ID, {"input1": a, "input2": b, "label": y}).value
    sw = np.array([[0.5], [2.0], [3.0]])
    got = oracle.evaluate(ID, {"input1": a, "input2": b, "label": y, "sample_weight": sw}, {"weight": 1.5}).value
    with mpmath.workprec(512):
        for i in range(3):
            want = base[i] * mpmath.mpf(1.5) * sw[i, 0]
            assert abs(got[i] - want) <= mpmath.mpf(2) ** -200 * abs(want)
    got_t = oracle.evaluate(
        ID, {"input1": a.T, "input2": b.T, "label": y, "sample_weight": sw.T}, {"weight": 1.5, "batch_axis": 1}
    ).value
    assert all(abs(got_t[i] - got[i]) <= mpmath.mpf(2) ** -200 * abs(got[i]) for i in range(3))
    for bad in (np.ones((3, 2)), np.ones((3,)), np.ones((2, 1))):
        with pytest.raises(oracle.InputError, match="sample_weight"):
            oracle.evaluate(ID, {"input1": a, "input2": b, "label": y, "sample_weight": bad})


@pytest.mark.parametrize("bad", [0.0, 0.5, 2.0, -2.0, float("nan")])
def test_labels_other_than_plus_minus_one_are_rejected(bad):
    with pytest.raises(oracle.InputError, match="label"):
        oracle.evaluate(ID, {"input1": [[1.0, 0.0], [0.0, 1.0]], "input2": [[1.0, 1.0], [1.0, 1.0]], "label": [1.0, bad]})


def test_zero_vector_is_rejected():
    for which in ("input1", "input2"):
        x = {"input1": [[1.0, 2.0], [3.0, 4.0]], "input2": [[1.0, 2.0], [3.0, 4.0]], "label": [1.0, -1.0]}
        x[which] = [[1.0, 2.0], [0.0, 0.0]]
        with pytest.raises(oracle.InputError, match=f"{which} sample 1 is a zero vector"):
            oracle.evaluate(ID, x)


def test_case_names_unique():
    names = [c.name for c in m.cases()]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
@pytest.mark.parametrize("multiple", [1, 2, 3])
def test_numpy_kernel_keeps_the_smallest_subnormals(dtype, multiple):
    """cos_sim([1, 0], [g, 1]) = g / sqrt(1 + g**2) rounds to g for a subnormal g. The numpy
    kernel used to halve the row [g, 1] (scaling its maximum into [0.5, 1)), which turns
    g = 1, 2 or 3 smallest subnormals into 0, 1 or 2: it now scales down only where the
    squares could overflow."""
    from conformance.backends.numpy_backend import cosine_embedding_loss as kernel

    g = np.finfo(dtype).smallest_subnormal * multiple
    inputs = {
        "input1": np.asarray([[1, 0], [0, 1]], dtype=dtype),
        "input2": np.asarray([[g, 1], [1, g]], dtype=dtype),
        "label": np.asarray([-1, -1], dtype=dtype),
    }
    want = oracle.evaluate(ID, inputs, {"margin": 0.0}).value_as(dtype)
    assert np.array_equal(want, [g, g])
    out, _ = kernel.run(inputs, {"margin": 0.0, "weight": None, "batch_axis": 0}, None, ())
    assert out.dtype == np.dtype(dtype) and np.array_equal(out, want)
