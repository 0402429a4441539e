"""mxnet.gluon.loss.CTCLoss checked against a second derivation: brute-force enumeration
of every alignment (all C**T paths, collapse repeats, drop blanks, add up the path
probabilities), which shares no code with the oracle's forward-backward recursion.

The gradient is differentiated path by path: d log P(pi) / d pred[t, k] = [pi_t = k] -
y[t, k], so d(-log p) / d pred[t, k] = y[t, k] - sum_{pi: B(pi)=l, pi_t=k} P(pi) / p.
"""

from __future__ import annotations

import itertools
from fractions import Fraction

import mpmath
import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import oracle
from oracle import precision
from oracle.losses import ctc_loss

LOSS = ctc_loss.SPEC.id
TOL = mpmath.mpf(2) ** -200


@pytest.fixture(autouse=True)
def _working_precision():
    """The brute force runs at the oracle's working precision too (mpmath's default is 53 bits)."""
    with precision.working_precision():
        yield


def collapse(path, blank):
    return [k for k, _ in itertools.groupby(path) if k != blank]


def brute_force(xs, seq, blank):
    """p(seq | xs) and d(-log p)/d xs over all paths of len(xs) frames (mpf lists)."""
    n_time = len(xs)
    n_class = len(xs[0]) if n_time else 0
    ys = []
    for row in xs:
        z = mpmath.fsum(mpmath.exp(v) for v in row)
        ys.append([mpmath.exp(v) / z for v in row])
    p = mpmath.mpf(0)
    post = [[mpmath.mpf(0)] * n_class for _ in range(n_time)]
    for path in itertools.product(range(n_class), repeat=n_time):
        if collapse(path, blank) != seq:
            continue
        prob = mpmath.fprod(ys[t][k] for t, k in enumerate(path))
        p += prob
        for t, k in enumerate(path):
            post[t][k] += prob
    grad = None
    if p > 0:
        grad = [[ys[t][k] - post[t][k] / p for k in range(n_class)] for t in range(n_time)]
    return p, grad


@st.composite
def ctc_inputs(draw):
    n_batch = draw(st.integers(1, 3))
    n_time = draw(st.integers(1, 5))
    n_class = draw(st.integers(2, 4))
    layout = draw(st.sampled_from(["NTC", "TNC"]))
    label_layout = draw(st.sampled_from(["NT", "TN"]))
    weight = draw(st.one_of(st.none(), st.floats(-2, 2, allow_nan=False, width=32)))
    logit = st.one_of(
        st.floats(-6, 6, allow_nan=False, width=32),
        st.sampled_from([0.0, 40.0, -40.0, 1e3, -1e3]),
    )
    pred_ntc = np.asarray(
        draw(st.lists(logit, min_size=n_batch * n_time * n_class, max_size=n_batch * n_time * n_class)),
        dtype=np.float64,
    ).reshape(n_batch, n_time, n_class)
    frames = [n_time] * n_batch
    use_pred_lengths = draw(st.booleans())
    if use_pred_lengths:
        frames = draw(st.lists(st.integers(0, n_time), min_size=n_batch, max_size=n_batch))
    label_sym = st.integers(0, n_class - 2)
    allow_infeasible = draw(st.integers(0, 7)) == 0
    seqs = []
    for t_n in frames:
        seq = draw(st.one_of(
            st.lists(label_sym, max_size=n_time),
            # repeated labels that need a blank between them
            st.integers(1, 3).map(lambda r: [0] * r),
        ))
        while not allow_infeasible and len(seq) + sum(a == b for a, b in zip(seq, seq[1:])) > t_n:
            seq = seq[:-1]
        seqs.append(seq)
    use_label_lengths = draw(st.booleans())
    width = max(len(s) for s in seqs) + draw(st.integers(0, 2))
    rows = []
    for s in seqs:
        pad = width - len(s)
        junk = draw(st.lists(st.integers(-1, n_class - 2), min_size=pad, max_size=pad))
        if not use_label_lengths and pad:
            junk[0] = -1  # the sequence ends at its first -1; what follows is ignored
        rows.append(s + junk)
    label_nt = np.asarray(rows, dtype=np.int64).reshape(n_batch, width)
    inputs = {
        "pred": pred_ntc if layout == "NTC" else np.swapaxes(pred_ntc, 0, 1).copy(),
        "label": label_nt if label_layout == "NT" else label_nt.T.copy(),
    }
    if use_pred_lengths:
        inputs["pred_lengths"] = np.asarray(frames, dtype=np.int64)
    if use_label_lengths:
        inputs["label_lengths"] = np.asarray([len(s) for s in seqs], dtype=np.int64)
    sw = draw(st.sampled_from([None, (n_batch,), (1,)]))
    sw_vals = None
    if sw is not None:
        sw_vals = np.asarray(draw(st.lists(st.floats(-2, 2, width=32), min_size=sw[0], max_size=sw[0])))
        inputs["sample_weight"] = sw_vals
    options = {"layout": layout, "label_layout": label_layout, "weight": weight}
    ct = np.asarray(draw(st.lists(st.floats(-2, 2, width=32), min_size=n_batch, max_size=n_batch)))
    return inputs, options, pred_ntc, seqs, frames, sw_vals, ct


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ctc_inputs())
def test_value_and_gradient_match_brute_force(data):
    # every draw is proven, ties included: a VJP element that is exactly 0 by a symmetry of
    # the inputs (a frame's logits all equal), or a dyadic rounding tie, is proven by the
    # formula (ctc_loss, "Values the formula proves"), not rejected
    with precision.working_precision():
        _check_against_brute_force(data)


def _check_against_brute_force(data):
    inputs, options, pred_ntc, seqs, frames, sw_vals, ct = data
    n_batch, n_time, n_class = pred_ntc.shape
    blank = n_class - 1
    results = []
    for n in range(n_batch):
        xs = [[mpmath.mpf(float(v)) for v in pred_ntc[n, t]] for t in range(frames[n])]
        results.append(brute_force(xs, seqs[n], blank))
    event(f"{n_batch} sample(s) of {n_time} frames, {n_class} classes")
    r = oracle.evaluate(LOSS, inputs, options, cotangent=ct)
    assert r.shape == (n_batch,)
    w = mpmath.mpf(1) if options["weight"] is None else mpmath.mpf(options["weight"])
    grad = r.grads["pred"].value
    if options["layout"] == "TNC":
        grad = np.swapaxes(grad, 0, 1)
    for n, (p, g) in enumerate(results):
        f = w * (mpmath.mpf(1) if sw_vals is None else mpmath.mpf(float(sw_vals[n % len(sw_vals)])))
        if p == 0:
            # no alignment: the documented -log p is +inf; the derivative does not exist
            event("no alignment for some label")
            assert r.value[n] == (mpmath.inf if f > 0 else -mpmath.inf) or (f == 0 and mpmath.isnan(r.value[n]))
            assert all(mpmath.isnan(v) for v in grad[n].ravel())
            continue
        expected = -f * mpmath.log(p)
        assert abs(r.value[n] - expected) <= TOL * (1 + abs(expected)), (n, r.value[n], expected)
        c = mpmath.mpf(float(ct[n])) * f
        for t in range(n_time):
            for k in range(n_class):
                want = c * g[t][k] if t < frames[n] else 0
                assert abs(grad[n, t, k] - want) <= TOL * (1 + abs(want)), (n, t, k, grad[n, t, k], want)


def test_docstring_example_padding_equals_label_lengths():
    """The docstring's 'ba', 'cbb', 'abac' with {'a': 0, 'b': 1, 'c': 2, blank: 3}."""
    padded = np.array([[1, 0, -1, -1], [2, 1, 1, -1], [0, 1, 0, 2]])
    rng = np.random.default_rng(7)
    pred = rng.normal(size=(3, 5, 4))
    a = oracle.evaluate(LOSS, {"pred": pred, "label": padded})
    b = oracle.evaluate(
        LOSS, {"pred": pred, "label": np.where(padded < 0, 2, padded), "label_lengths": np.array([2, 3, 4])}
    )
    for n, seq in enumerate([[1, 0], [2, 1, 1], [0, 1, 0, 2]]):
        xs = [[mpmath.mpf(float(v)) for v in pred[n, t]] for t in range(5)]
        p, _ = brute_force(xs, seq, 3)
        assert abs(a.value[n] + mpmath.log(p)) <= TOL
        assert a.value[n] == b.value[n]


def test_equal_logits_count_alignments():
    """Equal logits: y = 1/C and a one-label sequence has T(T+1)/2 alignments."""
    r = oracle.evaluate(LOSS, {"pred": np.zeros((1, 4, 3)), "label": np.array([[0]])})
    assert abs(r.value[0] - (-mpmath.log(mpmath.mpf(10) / 81))) <= TOL
    # an empty label: only the all-blank path, p = (1/C)**T
    r = oracle.evaluate(LOSS, {"pred": np.full((1, 4, 3), 2.5), "label": np.array([[-1]])})
    assert abs(r.value[0] - 4 * mpmath.log(3)) <= TOL


def test_frames_beyond_pred_lengths_do_not_matter():
    rng = np.random.default_rng(3)
    pred = rng.normal(size=(2, 5, 3))
    other = pred.copy()
    other[0, 3:] = rng.normal(size=(2, 3)) * 10
    inputs = {"label": np.array([[0, 1], [1, -1]]), "pred_lengths": np.array([3, 5])}
    a = oracle.evaluate(LOSS, {"pred": pred, **inputs})
    b = oracle.evaluate(LOSS, {"pred": other, **inputs})
    assert list(a.value) == list(b.value)
    assert all(v == 0 for v in a.grads["pred"].value[0, 3:].ravel())


def test_infeasible_label_is_infinite():
    """[0, 0, 0] needs 5 frames (blanks between the repeats) and pred has 4: p = 0 for every
    pred, so the documented -log p is +inf and its derivative does not exist (nan)."""
    r = oracle.evaluate(LOSS, {"pred": np.zeros((2, 4, 3)), "label": np.array([[0, 0, 0], [0, -1, -1]])})
    assert r.value[0] == mpmath.inf
    assert mpmath.isfinite(r.value[1]) and r.value[1] > 0
    assert all(mpmath.isnan(v) for v in r.grads["pred"].value[0].ravel())
    assert all(mpmath.isfinite(v) for v in r.grads["pred"].value[1].ravel())


@pytest.mark.parametrize(
    "label,extra,match",
    [
        ([[2]], {}, "blank"),
        ([[3]], {}, r"expected labels in \[0, 1\]"),
        ([[-2]], {}, r"expected labels in \[0, 1\]"),
        ([[0, -1]], {"label_lengths": [2]}, "padding value -1"),
        ([[0]], {"pred_lengths": [5]}, "pred_lengths"),
        ([[0]], {"label_lengths": [2]}, "label_lengths"),
        ([[0]], {"sample_weight": np.ones((1, 1))}, "sample_weight"),
    ],
)
def test_invalid_inputs_raise(label, extra, match):
    inputs = {"pred": np.zeros((1, 4, 3)), "label": np.array(label), **extra}
    with pytest.raises(oracle.InputError, match=match):
        oracle.evaluate(LOSS, inputs)


def test_options_are_validated():
    with pytest.raises(oracle.OptionError):
        oracle.evaluate(LOSS, {"pred": np.zeros((1, 2, 3)), "label": np.array([[0]])}, {"layout": "NCT"})


def test_a_zero_by_symmetry_is_proven_exact_at_the_working_precision():
    """Frames of equal logits (40, not 0: the softmax is not an exact point then), label
    [0] in 3 frames of 3 classes: by symmetry gamma_1(blank) = 1/3 = y, so that element is
    exactly 0. It used to be settled only by the 2**-1200 floor at 4096 bits."""
    for logit in (0.0, 40.0, 1e3):
        r = oracle.evaluate(LOSS, {"pred": np.full((1, 3, 3), logit), "label": np.asarray([[0]])}, cotangent=np.asarray([0.7]))
        assert r.precision_bits == precision.get_working_precision()
        g = r.grads["pred"].value
        assert g[0, 1, 2] == 0
        assert g[0, 1, 0] == -g[0, 1, 1] != 0


def _exact(x) -> Fraction:
    sign, man, exp, _ = mpmath.mpf(x)._mpf_
    return (-1) ** sign * Fraction(int(man)) * Fraction(2) ** int(exp)


def test_a_rounding_tie_is_proven():
    """One frame of 4 tied logits, label [2]: y = 1/4 and gamma(2) = 1, so the VJP element
    is -3/4 * 0.3 = -16212958658533785 / 2**56, halfway between two float64 numbers: the
    two ends of any ball around it round apart, only the formula proves it."""
    ct = 0.3
    want = Fraction(ct) * Fraction(-3, 4)
    assert want.denominator == 2**56 and want.numerator % 2  # 54 significant bits: a float64 tie
    inputs = {"pred": np.full((1, 2, 4), 40.0), "label": np.asarray([[2]]), "pred_lengths": np.asarray([1])}
    r = oracle.evaluate(LOSS, inputs, cotangent=np.asarray([ct]))
    g = r.grads["pred"].value
    assert _exact(g[0, 0, 2]) == want
    assert _exact(g[0, 0, 0]) == Fraction(ct) / 4
    assert all(v == 0 for v in g[0, 1])  # beyond pred_lengths
    # rounded half to even, as every dtype's rounding of the exact value must be
    assert r.grad_as("pred", "float64")[0, 0, 2] == float(want)


def test_a_tied_frame_of_a_mixed_sample_is_proven_where_every_path_agrees():
    """The empty label: every valid path emits the blank at every frame (gamma = 1), so a
    tied frame's blank element is y - 1 = -3/4 exactly, whatever the other frames hold."""
    pred = np.asarray([[[1e3, 1e3, 1e3, 1e3], [0.25, -1.5, 2.0, 0.5]]])
    r = oracle.evaluate(LOSS, {"pred": pred, "label": np.asarray([[-1]])}, cotangent=np.asarray([0.3]))
    g = r.grads["pred"].value
    assert _exact(g[0, 0, 3]) == Fraction(0.3) * Fraction(-3, 4)
    assert _exact(g[0, 0, 1]) == Fraction(0.3) / 4
