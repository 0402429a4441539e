"""The ``long`` fixture cases catch a backend that accumulates a mean one term at a time in
the input dtype (``tests/defect_backends.py``: ``RunningSumInDtype``): its value check fails
on every long case of L1Loss and L2Loss in float16, bfloat16 and float32, while it passes the
short cases (so only the long regime sees the defect) and the numpy backend, which sums
pairwise, passes the long cases."""

from __future__ import annotations

import pytest

from conformance import fixtures as fx
from conformance.backends.numpy_backend import backend as numpy_backend
from conformance.harness.runner import FAIL, PASS
from conformance.harness.session import Filters, Session
from tests import defect_backends as d

LOSSES = {"L1Loss", "L2Loss"}


@pytest.fixture(scope="module")
def cases() -> list[fx.FixtureCase]:
    return fx.load(losses=LOSSES)


def run(backend, cases, tag: str, check: str = "value") -> dict[str, str]:
    f = Filters(sorted(LOSSES), [], [tag])
    session = Session(backend, [c for c in cases if f.keep_case(c)], "test", None, 10.0)
    session.prepare(f)
    results = [session.check(c, chk, m) for c, chk, m in session.items(f) if chk == check]
    assert results, f"no {tag} case"
    return {r.test_id: (r.status, r.message) for r in results}


def test_long_cases_exist_for_each_low_precision_dtype(cases):
    long = [c for c in cases if "long" in c.tags]
    assert {c.dtype for c in long} >= {"float16", "float32", "bfloat16"}
    assert max(max(a.size for a in c.inputs.values()) for c in long) >= 16384


def test_running_sum_in_dtype_is_caught_on_every_long_case(cases):
    got = run(d.RunningSumInDtype(), cases, "long")
    assert all(status == FAIL for status, _ in got.values()), got


def test_running_sum_in_dtype_passes_the_short_cases(cases):
    got = run(d.RunningSumInDtype(), cases, "regular")
    assert all(status == PASS for status, _ in got.values()), {k: v for k, v in got.items() if v[0] != PASS}


def test_numpy_passes_the_long_cases(cases):
    for check in ("value", "grad:pred"):
        got = run(numpy_backend, cases, "long", check)
        assert all(status == PASS for status, _ in got.values()), {k: v for k, v in got.items() if v[0] != PASS}
