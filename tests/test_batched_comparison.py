"""The batched comparison (``conformance.harness.batch``, used by ``Session``) is a faster way to
reach the same results, not a second policy: for every fixture case and check, the
result of a session equals the result of ``runner.evaluate_check(..., batched=False)`` --
the one-check-at-a-time path, which measures each array on its own with the explaining
computation of ``compare.measure`` -- field by field, for the reference backend (whose
results include exact infinities and overflow), for backends whose errors straddle every
verdict, and for a selection that leaves rows of the layout out. The same comparison
covers the session's own path for the usual case (``session._usual``: the shape, repeat
and inputs checks of a case whose run is unremarkable)."""

from __future__ import annotations

import numpy as np
import pytest

from conformance import fixtures as fx
from conformance.harness import batch
from conformance.harness.runner import CheckResult, evaluate_check
from conformance.harness.session import Filters, Session
from conformance.protocol import Call, Outcome
from tests import defect_backends as d


class Perturbed(d.Wrapped):
    """The reference's results, each element moved by a pseudo-random number of its
    dtype's ULPs (0, 1, 3, 6, 40 or 10**6, by element), so that every verdict --
    conforms, within the stability bound, fails -- occurs."""

    defect = "perturbed"

    def run(self, call: Call) -> Outcome:
        out = self.inner.run(call)
        return Outcome(self._move(out.output, call), {k: self._move(g, call) for k, g in out.grads.items()})

    @staticmethod
    def _move(a, call: Call):
        a = np.asarray(a)
        if a.dtype.kind != "f" or a.size == 0:
            return a
        seed = sum(int(x) for v in call.inputs.values() for x in np.asarray(v).view(np.uint8).ravel()[:64])
        steps = np.random.default_rng(seed).choice([0, 0, 1, 3, 6, 40, 10**6], size=a.shape)
        with np.errstate(all="ignore"):
            moved = a.astype(np.float64) + steps * np.spacing(np.abs(a)).astype(np.float64)
            return moved.astype(a.dtype)


class AbsoluteNoise(Perturbed):
    """The reference's results, each element moved by 0, 0.5, 3 or 1000 eps of the dtype
    times the array's largest magnitude: an absolute error the size of a rounding of the
    terms, so exact zeros, subnormals and cancelled elements are measured in eps x scale
    (``error_ulps`` None) and every verdict occurs there too."""

    defect = "absolute noise"

    @staticmethod
    def _move(a, call: Call):
        a = np.asarray(a)
        if a.dtype.kind != "f" or a.size == 0:
            return a
        seed = sum(int(x) for v in call.inputs.values() for x in np.asarray(v).view(np.uint8).ravel()[:64])
        steps = np.random.default_rng(seed).choice([0, 0, 0.5, -3, 1000], size=a.shape)
        with np.errstate(all="ignore"):
            wide = a.astype(np.float64)
            big = np.max(np.abs(wide[np.isfinite(wide)]), initial=0.0)
            return (wide + steps * np.finfo(a.dtype).eps * big).astype(a.dtype)


FIELDS = ("status", "verdict", "message", "error_ulps", "error_scale", "bound", "worst_index", "expected", "observed")


def _key(r: CheckResult) -> tuple:
    return tuple(getattr(r, f) for f in FIELDS)


def _same(a: CheckResult, b: CheckResult) -> bool:
    return all(
        x == y or (isinstance(x, float) and isinstance(y, float) and x != x and y != y)
        for x, y in zip(_key(a), _key(b))
    )


@pytest.mark.parametrize("backend", [d.Wrapped(), Perturbed(), AbsoluteNoise(), d.NanForExtreme(), d.FlatGradient(), d.ColumnOutput()],
                         ids=lambda b: b.defect)
def test_session_results_equal_one_check_at_a_time(backend):
    cases = fx.load()
    session = Session(backend, cases, "test", None, 30.0)
    f = Filters()
    session.prepare(f)
    results = [session.check(c, chk, m) for c, chk, m in session.items(f)]
    verdicts = {r.verdict for r in results}
    if isinstance(backend, Perturbed):  # the test covers every verdict
        assert {"conforms", "within stability bound", "fails"} <= verdicts, verdicts
    if isinstance(backend, AbsoluteNoise):  # and figures in both units
        measured = [r for r in results if r.check == "value" or r.check.startswith("grad:")]
        assert any(r.error_ulps is None for r in measured) and any(r.error_ulps is not None for r in measured)
    differ = []
    for r in results:
        alone = evaluate_check(session.runs[(r.case.file, r.case.index, r.mode)], r.check, r.tolerance, batched=False)
        if not _same(r, alone):
            differ.append(f"{r.test_id}: batched {_key(r)} != alone {_key(alone)}")
    assert not differ, "\n".join(differ[:5])


def test_a_selection_gathers_its_rows():
    # a dtype filter leaves most rows of each file's layout out
    cases = fx.load(losses={"L1Loss", "SoftmaxCrossEntropyLoss"})
    f = Filters(dtypes=["float32"], checks=["grad"])
    backend = Perturbed()
    session = Session(backend, [c for c in cases if f.keep_case(c)], "test", None, 30.0)
    results = [session.check(c, chk, m) for c, chk, m in session.items(f)]
    assert results and all(r.check.startswith("grad:") and r.case.dtype == "float32" for r in results)
    for r in results:
        alone = evaluate_check(session.runs[(r.case.file, r.case.index, r.mode)], r.check, r.tolerance, batched=False)
        assert _same(r, alone), (r.test_id, _key(r), _key(alone))


def test_the_layout_holds_every_value_and_gradient_check_of_its_file():
    cases = fx.load(losses={"HingeLoss"})
    data = cases[0].source[0]
    lay = batch.layout(data)
    assert sum(1 + len(c.vjp) for c in cases if c.invalid is None) == len(lay.size) == len(data.checks)
    for c in cases:
        if c.invalid is not None:
            continue
        for k, (check, exact) in enumerate([("value", c.expected), *((f"grad:{n}", v) for n, v in c.vjp.items())]):
            row = c.source[2] + k
            at = slice(lay.offset[row], lay.offset[row] + lay.size[row])
            pos = lay.pos[at]
            assert np.array_equal(data.values[pos], exact.hi.ravel()), check
            assert np.array_equal(data.lo[pos], exact.lo.ravel()), check
            assert {batch.DTYPES[k] for k in lay.dtype[at]} <= {c.dtype}, check
            if check == "value":
                assert np.array_equal(data.values[lay.scale_pos[at]], c.scale.ravel()), check
            elif exact.scale is None:  # a fixture without vjp.<input>.scale
                assert (lay.scale_pos[at] == -1).all(), check
            else:  # the gradient element's own term scale (vjp.<input>.scale)
                assert np.array_equal(data.values[lay.scale_pos[at]], exact.scale.ravel()), check


@pytest.mark.parametrize("shape", [(), (1,), (7,), (2, 3), (4, 1, 5), (2, 3, 4, 5)])
def test_index_in_is_numpys_unravel_index(shape):
    from conformance.harness.compare import index_in

    for k in range(int(np.prod(shape))):
        assert tuple(index_in(shape, k)) == tuple(int(x) for x in np.unravel_index(k, shape))
