"""The ``long`` and ``limit`` fixture cases catch the defects only they can see
(``tests/defect_backends.py``):

* ``RunningSumInDtype`` accumulates every long reduction one term at a time in the input
  dtype: its value check fails on every long case of every loss that has one -- L1Loss and
  L2Loss (16384 ones, float32's 1 + 2**-24 tail; option crossings of 4096); the 16384-term
  half-ULP cases (``long-half-ulp-<dtype>``, float16, float32 and bfloat16) of HuberLoss,
  HingeLoss, SquaredHingeLoss, LogisticLoss, SigmoidBCE, PoissonNLLLoss, KLDivLoss,
  SoftmaxCE's log-sum-exp over 16384 classes, CosineEmbeddingLoss's dot products and norms,
  TripletLoss's feature sum and SDMLLoss's squared distances; chainer's softmax_cross_entropy
  hard labels over 16384 positions (``long-hard-*``: float16, float32, bfloat16, and
  normalize=False, ignore_label and class_weight crossed with it) and soft targets
  (cross-entropy) averaged over a batch of 1024 -- while it passes the short cases; the
  numpy backend, which sums pairwise, passes the long cases;
* ``MXNetFormulaAtInfinity`` evaluates SigmoidBCELoss and LogisticLoss with MXNet's stable
  formula at infinite logits (nan): its value check fails on every limit case of the two
  losses with the default options, and passes the other cases;
* every 0 of fixtures/COVERAGE.md's option value x regime tables carries its reason (the
  loss module's REGIME_GAPS), and a 0 without one shows as a gap."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance import fixtures as fx
from conformance.backends.numpy_backend import backend as numpy_backend
from conformance.harness.runner import FAIL, PASS
from conformance.harness.session import Filters, Session
from oracle import catalog
from oracle import coverage as cov
from tests import defect_backends as d

#: every Gluon loss with a long case (the others: fixtures/COVERAGE.md says why not)
LOSSES = {
    "L1Loss", "L2Loss", "HuberLoss", "HingeLoss", "SquaredHingeLoss", "LogisticLoss", "SigmoidBinaryCrossEntropyLoss",
    "PoissonNLLLoss", "KLDivLoss", "SoftmaxCrossEntropyLoss", "CosineEmbeddingLoss", "TripletLoss", "SDMLLoss",
}
#: the losses whose long cases are the 16384-term half-ULP cases, one per dtype
HALF_ULP = LOSSES - {"L1Loss", "L2Loss"}
CHAINER_SCE = "chainer.functions.softmax_cross_entropy"
LIMIT_LOSSES = {"SigmoidBinaryCrossEntropyLoss", "LogisticLoss"}


@pytest.fixture(scope="module")
def cases() -> list[fx.FixtureCase]:
    return fx.load(losses=LOSSES)


def run(backend, cases, tag: str, check: str = "value", losses=LOSSES) -> dict[str, str]:
    f = Filters(sorted(losses), [], [tag])
    session = Session(backend, [c for c in cases if f.keep_case(c)], "test", None, 10.0)
    session.prepare(f)
    results = [session.check(c, chk, m) for c, chk, m in session.items(f) if chk == check]
    assert results, f"no {tag} case"
    return {r.test_id: (r.status, r.message) for r in results}


def test_long_cases_exist_for_each_low_precision_dtype(cases):
    long = [c for c in cases if "long" in c.tags]
    assert {c.dtype for c in long} >= {"float16", "float32", "bfloat16"}
    assert max(max(a.size for a in c.inputs.values()) for c in long) >= 16384


def test_every_listed_loss_has_a_long_case(cases):
    with_long = {c.loss for c in cases if "long" in c.tags}
    assert len(with_long) == len(LOSSES), sorted(with_long)


def test_every_half_ulp_loss_has_a_16384_term_case_in_each_low_precision_dtype(cases):
    for loss in HALF_ULP:
        long = {c.dtype: c for c in cases if c.short_loss == loss and "long" in c.tags}
        assert sorted(long) == ["bfloat16", "float16", "float32"], (loss, sorted(long))
        for dtype, c in long.items():
            assert c.name == f"long-half-ulp-{dtype}" and c.n_terms >= 16384, (loss, c.name, c.n_terms)


def test_running_sum_in_dtype_is_caught_on_every_long_case(cases):
    got = run(d.RunningSumInDtype(), cases, "long")
    assert all(status == FAIL for status, _ in got.values()), {k: v for k, v in got.items() if v[0] != FAIL}
    assert len(got) == sum(1 for c in cases if "long" in c.tags)
    assert {k.split("[")[0] for k in got} == LOSSES


def test_running_sum_in_dtype_passes_the_short_cases(cases):
    got = run(d.RunningSumInDtype(), cases, "regular")
    assert all(status == PASS for status, _ in got.values()), {k: v for k, v in got.items() if v[0] != PASS}


def test_numpy_passes_the_long_cases(cases):
    """The value and every gradient of every long case (pairwise sums keep the small terms)."""
    for check in ("value", "grad:pred", "grad:input1", "grad:input2", "grad:positive", "grad:x1", "grad:x2"):
        try:
            got = run(numpy_backend, cases, "long", check)
        except AssertionError:  # no long case has that input
            assert check not in ("value", "grad:pred")
            continue
        assert all(status == PASS for status, _ in got.values()), {k: v for k, v in got.items() if v[0] != PASS}


def test_running_sum_in_dtype_is_caught_on_the_soft_target_batches():
    cases = fx.load(losses={CHAINER_SCE})
    got = run(d.RunningSumInDtype(), cases, "long", losses={CHAINER_SCE})
    # the cross-entropy batches: losses near log 4 that a running float16 sum rounds the same
    # way at every step. (The kl-divergence batches are held to the scale of their terms,
    # sum t log t and -sum t log y, each about 1.4 where the difference is 0.14: the running
    # sum's error stays within that bound, as a correct evaluation's may.)
    ce = {k: v for k, v in got.items() if "cross-entropy" in k}
    assert any("]-float16-" in k for k in ce) and any("]-bfloat16-" in k for k in ce)
    assert all(status == FAIL for status, _ in ce.values()), ce
    regular = run(d.RunningSumInDtype(), cases, "regular", losses={CHAINER_SCE})
    assert all(status == PASS for status, _ in regular.values())


def test_running_sum_in_dtype_is_caught_on_the_hard_label_long_cases():
    """chainer's hard labels over 16384 positions: the default options in float16, float32
    and bfloat16, and normalize=False, ignore_label and class_weight crossed with it."""
    cases = [c for c in fx.load(losses={CHAINER_SCE}) if c.name.startswith("long-hard-")]
    assert {c.dtype for c in cases} == {"float16", "float32", "bfloat16"}
    assert {k for c in cases for k in c.given_options} == {"normalize", "ignore_label", "class_weight"}
    got = run(d.RunningSumInDtype(), cases, "long", losses={CHAINER_SCE})
    assert len(got) == len(cases) == 6
    assert all(status == FAIL for status, _ in got.values()), {k: v for k, v in got.items() if v[0] != FAIL}
    for check in ("value", "grad:x"):
        ok = run(numpy_backend, cases, "long", check, losses={CHAINER_SCE})
        assert all(status == PASS for status, _ in ok.values()), {k: v for k, v in ok.items() if v[0] != PASS}


def test_formula_at_infinity_is_caught_on_the_limit_cases():
    cases = fx.load(losses=LIMIT_LOSSES)
    limit = [c for c in cases if "limit" in c.tags]
    assert {c.dtype for c in limit} == {"float16", "bfloat16", "float32", "float64"}
    got = run(d.MXNetFormulaAtInfinity(), cases, "limit", losses=LIMIT_LOSSES)
    assert all(status == FAIL for status, _ in got.values()), {k: v for k, v in got.items() if v[0] != FAIL}
    for tag in ("regular", "extreme", "tiny"):
        other = run(d.MXNetFormulaAtInfinity(), cases, tag, losses=LIMIT_LOSSES)
        assert all(status == PASS for status, _ in other.values()), {k: v for k, v in other.items() if v[0] != PASS}


def test_numpy_passes_the_limit_cases():
    cases = fx.load(losses=LIMIT_LOSSES)
    for check in ("value", "grad:pred"):
        got = run(numpy_backend, cases, "limit", check, losses=LIMIT_LOSSES)
        assert all(status == PASS for status, _ in got.values()), {k: v for k, v in got.items() if v[0] != PASS}


# ----------------------------------------------------------------- option value x regime: every 0 explained

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def test_every_zero_of_the_option_x_regime_tables_has_a_reason():
    text = (FIXTURES / "COVERAGE.md").read_text()
    assert cov.UNEXPLAINED not in text
    # the pairs ruled out by the option value, and the losses without a long case, say so
    assert "- `from_sigmoid=True` x extreme: ruled out:" in text
    assert "- `from_sigmoid=True` x limit: ruled out:" in text
    assert text.count("- no `long` case: ") == 1  # CTCLoss


def test_a_zero_without_a_reason_is_shown_as_a_gap(monkeypatch):
    module = catalog.module("mxnet.gluon.loss.SigmoidBinaryCrossEntropyLoss")
    monkeypatch.setattr(module, "REGIME_GAPS", {})
    text = cov.render(FIXTURES)
    line = next(x for x in text.splitlines() if x.startswith("- `from_sigmoid=True` x extreme"))
    assert "`from_sigmoid=True` x limit" in line and line.endswith(cov.UNEXPLAINED)
