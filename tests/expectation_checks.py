"""Checks the tests of a framework backend and its expectation file share
(test_chainer_expectations.py, test_mxnet_expectations.py): a full conformance run with
no unexplained failure and no unused entry, each failing check matched by exactly one
entry, and an import failure of the framework that names it."""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
from pathlib import Path

import pytest

from conformance.backends import BackendError, load_backend
from conformance.harness import expectations as ex
from conformance.harness.runner import FAILING, KNOWN
from conformance.harness.session import Filters, Session


def needs_backend(framework: str, name: str, advice: str) -> pytest.MarkDecorator:
    """Skip unless ``conformance.backends.<framework>_backend`` imports here."""
    try:
        importlib.import_module(f"conformance.backends.{framework}_backend")
    except ModuleNotFoundError as err:
        ok, why = False, f"{name} is not importable here ({err}); {advice}"
    else:
        ok, why = True, ""
    return pytest.mark.skipif(not ok, reason=why)


def checked_session(framework: str, expectations: Path, filters: Filters | None = None) -> Session:
    """Every check of every selected fixture case in every mode the backend runs, run on
    the framework's backend."""
    filters = filters or Filters()
    s = Session.open(load_backend(framework), None, filters, ex.load(expectations), 120.0)
    s.prepare(filters)
    for case, check, mode in s.items(filters):
        s.check(case, check, mode)
    return s


def assert_no_unexplained_failure_and_no_unused_entry(session: Session) -> None:
    bad = [f"{r.test_id}: {r.message}" for r in session.results if r.status in FAILING]
    assert not bad, "unexplained failures:\n" + "\n".join(bad[:20])
    unused = [e.describe() for e in session.unused_expectations()]
    assert not unused, f"entries that match no failing check: {unused}"
    assert sum(r.status == KNOWN for r in session.results) > 0


def assert_every_failure_matches_exactly_one_entry(session: Session) -> None:
    entries = session.expectations.entries
    for r in session.results:
        if r.status != KNOWN:
            continue
        matching = [e.describe() for e in entries if e.tolerance is None and e.matches(r.case, r.check, r.mode)]
        assert len(matching) == 1, f"{r.test_id} matches {matching}"


def assert_removing_an_entry_fails_exactly_its_checks(session: Session, expectations: Path) -> None:
    known = [r for r in session.results if r.status == KNOWN]
    entries = session.expectations.entries
    # without tolerance overrides a passing check does not depend on the entries, so
    # re-evaluating the known deviations is enough
    assert all(e.tolerance is None for e in entries)
    for entry in entries:
        reduced = ex.load(expectations)
        reduced.entries = [e for e in reduced.entries if e.number != entry.number]
        trial = Session(
            session.backend, session.cases, session.fixtures_digest, reduced, session.timeout, runs=session.runs,
            modes=session.modes, mode_support=session.mode_support,
        )
        mine = [r for r in known if entry.matches(r.case, r.check, r.mode)]
        covered = {r.test_id for r in mine}
        assert covered, f"{entry.describe()} covers nothing"
        # a check the entry does not match has the same matching entries without it, so its
        # verdict cannot change: re-evaluating the entry's own checks is the whole trial (one
        # pass over the known checks in all, not one per entry)
        failing = {r.test_id for r in (trial.check(k.case, k.check, k.mode) for k in mine) if r.status in FAILING}
        assert failing == covered, f"without {entry.describe()}: {sorted(failing ^ covered)[:10]}"


class _BrokenImport(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Makes ``import <name>`` fail with AttributeError(``message``), the way a framework
    fails under a numpy it was not built for."""

    def __init__(self, name: str, message: str) -> None:
        self.name = name
        self.message = message

    def find_spec(self, name, path=None, target=None):
        if name == self.name:
            return importlib.util.spec_from_loader(name, self)
        return None

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        raise AttributeError(self.message)


def assert_import_failure_names_framework(
    monkeypatch: pytest.MonkeyPatch,
    how: str,
    framework: str,
    broken: str,
    backend_error: str,
    also_hide: tuple[str, ...] = (),
) -> None:
    """With the framework ``missing`` (or ``broken``: its import raises AttributeError
    with the message ``broken``), the backend module raises ModuleNotFoundError naming
    the framework, and load_backend a BackendError matching ``backend_error``. The
    framework's modules (and those starting with ``also_hide``) are only hidden for the
    test: monkeypatch restores them, and the real framework is never imported a second
    time."""
    hidden = (f"{framework}.", *also_hide)
    for name in [m for m in sys.modules if m == framework or m.startswith(hidden)]:
        monkeypatch.delitem(sys.modules, name)
    backend_module = f"conformance.backends.{framework}_backend"
    monkeypatch.delitem(sys.modules, backend_module, raising=False)
    if how == "missing":
        monkeypatch.setitem(sys.modules, framework, None)
    else:
        monkeypatch.setattr(sys, "meta_path", [_BrokenImport(framework, broken), *sys.meta_path])
    with pytest.raises(ModuleNotFoundError) as info:
        importlib.import_module(backend_module)
    assert info.value.name == framework
    with pytest.raises(BackendError, match=backend_error):
        load_backend(framework)
