"""The chainer backend and its expectation file ``conformance/expectations/chainer-7.8.1.toml``.

* The full conformance run over the committed fixtures has no unexplained failure and no
  unused entry (what ``lossconf run chainer --strict-expectations`` gates on).
* Every failing check matches exactly one entry, so removing any one entry makes the run
  fail on exactly the checks that entry covered -- verified by re-evaluating the known
  deviations without each entry in turn (the backend's runs are reused, not repeated).
* Mapped paths that no fixture reaches (pos_weight with 0/1 labels, a rho that is not a
  power of two, a hinge margin of 1/4) agree with the oracle in float64.
* ``build_info()`` records the versions and the build configuration.
* A missing or broken Chainer surfaces as ``ModuleNotFoundError`` for ``chainer`` (this
  test runs without Chainer too).

Everything but the last test is skipped when Chainer cannot be imported (run it with
``tox -e chainer``).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from conformance import expectations as ex
from conformance import fixtures as fx
from conformance.backends import BackendError, load_backend
from conformance.protocol import Call
from conformance.runner import ERROR, FAIL, KNOWN, checks_for
from conformance.session import Filters, Session

ROOT = Path(__file__).resolve().parent.parent
EXPECTATIONS = ROOT / "conformance" / "expectations" / "chainer-7.8.1.toml"


def _chainer_importable() -> tuple[bool, str]:
    try:
        import conformance.backends.chainer_backend  # noqa: F401
    except ModuleNotFoundError as err:
        return False, f"Chainer is not importable here ({err}); run `tox -e chainer`"
    return True, ""


_OK, _WHY = _chainer_importable()
needs_chainer = pytest.mark.skipif(not _OK, reason=_WHY)

#: Chainer's overflowing extreme cases (recorded deviations) warn from inside NumPy
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


@pytest.fixture(scope="module")
def session():
    backend = load_backend("chainer")
    s = Session.open(backend, None, Filters(), ex.load(EXPECTATIONS), 120.0)
    for case in s.cases:
        for check in checks_for(case):
            s.check(case, check)
    return s


@needs_chainer
def test_no_unexplained_failure_and_no_unused_entry(session):
    bad = [f"{r.test_id}: {r.message}" for r in session.results if r.status in (FAIL, ERROR)]
    assert not bad, "unexplained failures:\n" + "\n".join(bad[:20])
    unused = [e.describe() for e in session.unused_expectations()]
    assert not unused, f"entries that match no failing check: {unused}"
    assert sum(r.status == KNOWN for r in session.results) > 0


@needs_chainer
def test_every_failure_matches_exactly_one_entry(session):
    entries = session.expectations.entries
    for r in session.results:
        if r.status != KNOWN:
            continue
        matching = [e.describe() for e in entries if e.tolerance is None and e.matches(r.case, r.check)]
        assert len(matching) == 1, f"{r.test_id} matches {matching}"


@needs_chainer
def test_removing_an_entry_fails_exactly_its_checks(session):
    known = [r for r in session.results if r.status == KNOWN]
    entries = session.expectations.entries
    # without tolerance overrides a passing check does not depend on the entries, so
    # re-evaluating the known deviations is enough
    assert all(e.tolerance is None for e in entries)
    for entry in entries:
        reduced = ex.load(EXPECTATIONS)
        reduced.entries = [e for e in reduced.entries if e.number != entry.number]
        trial = Session(session.backend, session.cases, session.fixtures_digest, reduced, session.timeout, runs=session.runs)
        failing = {r.test_id for r in (trial.check(k.case, k.check) for k in known) if r.status in (FAIL, ERROR)}
        covered = {r.test_id for r in known if entry.matches(r.case, r.check)}
        assert covered, f"{entry.describe()} covers nothing"
        assert failing == covered, f"without {entry.describe()}: {sorted(failing ^ covered)[:10]}"


@needs_chainer
def test_expectation_reasons_name_chainer_source():
    for e in ex.load(EXPECTATIONS).entries:
        assert ".py" in e.reason, f"{e.describe()}: the reason names no file of Chainer's source"


@needs_chainer
def test_build_info():
    from conformance.backends.chainer_backend import backend

    info = backend.build_info()
    assert info["chainer"] == backend.version == "7.8.1"
    assert info["numpy"] == np.__version__
    for key in ("chainerx_available", "cupy_available", "config"):
        assert key in info
    assert info["config"]["debug"] is False


def _oracle(loss, inputs, options, wrt):
    from oracle import api

    ev = api.evaluate(loss, inputs, options, cotangent=None, wrt=wrt)
    return ev.value_as("float64"), {n: ev.grad_as(n, "float64") for n in wrt}, ev.cotangent


@needs_chainer
@pytest.mark.parametrize(
    "loss, inputs, options",
    [
        (
            "mxnet.gluon.loss.SigmoidBinaryCrossEntropyLoss",
            {
                "pred": np.array([[0.5, -1.25, 2.0], [-0.75, 3.0, 0.125]]),
                "label": np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]]),
                "pos_weight": np.array([[2.0, 0.5, 3.0]]),
                "sample_weight": np.array([[0.5], [2.0]]),
            },
            {"weight": 0.75},
        ),
        (
            "mxnet.gluon.loss.HuberLoss",
            {"pred": np.array([[0.1, -0.2, 1.5], [2.0, 0.0, -0.05]]), "label": np.array([[0.0, 0.2, 0.0], [0.5, 0.25, 0.0]])},
            {"rho": 0.3},
        ),
        (
            "mxnet.gluon.loss.SquaredHingeLoss",
            {"pred": np.array([[0.1, -0.2, 1.5], [2.0, 0.0, -0.05]]), "label": np.array([[1.0, -1.0, 1.0], [-1.0, 1.0, 1.0]])},
            {"margin": 0.25},
        ),
    ],
)
def test_mapping_matches_the_oracle_where_no_fixture_reaches(loss, inputs, options):
    from conformance.backends.chainer_backend import backend
    from oracle import catalog

    spec = catalog.spec(loss)
    opts = spec.resolve_options(dict(options))
    value, grads, ct = _oracle(loss, inputs, opts, ("pred",))
    call = Call(loss, opts, inputs, "float64", ("pred",), np.asarray(ct, dtype=np.float64))
    assert backend.supports(call) is None
    out = backend.run(call)
    np.testing.assert_allclose(np.asarray(out.output).ravel(), value.ravel(), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(out.grads["pred"], grads["pred"], rtol=1e-13, atol=1e-15)


class _BrokenChainer(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Makes ``import chainer`` fail the way Chainer 7.8.1 fails under numpy 2."""

    def find_spec(self, name, path=None, target=None):
        if name == "chainer":
            return importlib.util.spec_from_loader(name, self)
        return None

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        raise AttributeError("`np.sctypes` was removed in the NumPy 2.0 release.")


@pytest.mark.parametrize("how", ["missing", "broken"])
def test_import_failure_names_chainer(monkeypatch, how):
    for name in [m for m in sys.modules if m == "chainer" or m.startswith(("chainer.", "chainerx"))]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.delitem(sys.modules, "conformance.backends.chainer_backend", raising=False)
    if how == "missing":
        monkeypatch.setitem(sys.modules, "chainer", None)
    else:
        monkeypatch.setattr(sys, "meta_path", [_BrokenChainer(), *sys.meta_path])
    with pytest.raises(ModuleNotFoundError) as info:
        importlib.import_module("conformance.backends.chainer_backend")
    assert info.value.name == "chainer"
    with pytest.raises(BackendError, match="chainer"):
        load_backend("chainer")


@needs_chainer
def test_fixture_case_count_is_covered(session):
    """Every case of every fixture file was run (nothing silently filtered)."""
    assert len(session.cases) == len(fx.load())
