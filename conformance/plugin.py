"""The pytest plugin: ``pytest --pyargs conformance --backend NAME`` checks a backend
against the golden fixtures. One test item per case, mode and check, with ids such as
``SoftmaxCrossEntropyLoss[axis=1,sparse_label=False]-float32-extreme-017-grad:pred`` (mode
grad) and ``...-017[compiled]-grad:pred`` (any other mode)."""

from __future__ import annotations

from pathlib import Path

import pytest

from . import fixtures as fx
from .backends import BackendError, load_backend
from .harness import expectations as ex
from .harness.runner import FAILING, KNOWN, SKIP, check_id, describe_failure
from .harness.session import FilterError, Filters, Session, format_summary

_STATE: dict = {}


def _timeout(text: str) -> float:
    import argparse
    import math

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not (math.isfinite(value) and 0 < value <= 1e6):
        raise argparse.ArgumentTypeError(f"expected seconds in (0, 1e6], got {text!r}")
    return value


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("lossconf", "lossconf conformance")
    g.addoption("--backend", help="backend to check: numpy, mxnet, chainer, an entry point name, or module:attribute")
    g.addoption("--fixtures-dir", help="fixtures directory (default: the checkout's fixtures/ or $LOSSCONF_FIXTURES)")
    g.addoption("--results", help="write the results JSON here")
    g.addoption("--expectations", help="expectation file (TOML) of known deviations")
    g.addoption("--strict-expectations", action="store_true", help="fail if a listed deviation no longer occurs")
    g.addoption("--loss", action="append", default=[], help="only this loss (id or short name; repeatable)")
    g.addoption("--dtype", action="append", default=[], help="only this dtype (repeatable)")
    g.addoption("--tag", action="append", default=[], help="only cases with this tag (repeatable)")
    g.addoption(
        "--check", action="append", default=[],
        help="only this check: value, shape, grad, repeat, inputs, invalid, twice, hvp (repeatable)",
    )
    g.addoption("--case", action="append", default=[], help="only checks whose test id or case name matches this pattern (see `lossconf run --help`; repeatable)")
    g.addoption(
        "--mode", action="append", default=[],
        help="only this mode: forward, grad, compiled, hvp, backward-twice (repeatable; default: every mode the backend runs)",
    )
    g.addoption("--call-timeout", type=_timeout, default=60.0, help="time limit per backend call in seconds (default 60)")


def _filters(config: pytest.Config) -> Filters:
    return Filters(
        config.getoption("--loss"), config.getoption("--dtype"), config.getoption("--tag"), config.getoption("--check"),
        config.getoption("--case"), config.getoption("--mode"),
    )


def pytest_configure(config: pytest.Config) -> None:
    name = config.getoption("--backend", None)
    if not name:
        return
    try:
        backend = load_backend(name)
    except BackendError as err:
        pytest.exit(f"lossconf: {err}", returncode=3)
    exp = None
    if config.getoption("--expectations"):
        try:
            exp = ex.load(config.getoption("--expectations"))
        except ex.ExpectationError as err:
            pytest.exit(f"lossconf: {err}", returncode=3)
    try:
        fixtures_dir = Path(config.getoption("--fixtures-dir")) if config.getoption("--fixtures-dir") else None
        session = Session.open(backend, fixtures_dir, _filters(config), exp, config.getoption("--call-timeout"))
    except BackendError as err:
        pytest.exit(f"lossconf: {err}", returncode=3)
    except fx.FixtureError as err:
        pytest.exit(f"lossconf: fixtures: {err}", returncode=3)
    except FilterError as err:
        pytest.exit(f"lossconf: {err}", returncode=4)
    except ex.ExpectationError as err:
        pytest.exit(f"lossconf: {err}", returncode=3)
    _STATE["session"] = session
    _STATE["config"] = config


def pytest_unconfigure(config: pytest.Config) -> None:
    _STATE.clear()


def session_or_none() -> Session | None:
    return _STATE.get("session")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "lossconf_check" not in metafunc.fixturenames:
        return
    session = session_or_none()
    if session is None:
        metafunc.parametrize("lossconf_check", [pytest.param(None, marks=pytest.mark.skip(reason="no --backend given"))])
        return
    items = session.items(_filters(metafunc.config))
    metafunc.parametrize("lossconf_check", items, ids=[check_id(c, chk, mode) for c, chk, mode in items])


def run_check(item: tuple) -> None:
    """The body of every conformance test item."""
    session = session_or_none()
    if item is None or session is None:
        pytest.skip("no --backend given")
    case, check, mode = item
    r = session.check(case, check, mode)
    if r.status == SKIP:
        pytest.skip(f"unsupported by {session.backend.name}: {r.message}" if r.verdict == "unsupported" else r.message)
    if r.status == KNOWN:
        pytest.xfail(f"known deviation: {r.reason}")
    if r.status in FAILING:
        config = _STATE["config"]
        repeat: list[str] = []
        for opt, flag in (("--fixtures-dir", "--fixtures"), ("--expectations", "--expectations")):
            if config.getoption(opt):
                repeat += [flag, str(config.getoption(opt))]
        pytest.fail(describe_failure(r, config.getoption("--backend"), repeat), pytrace=False)


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    session = session_or_none()
    if session is None or not session.results:
        return
    terminalreporter.section("lossconf summary")
    for line in format_summary(session):
        terminalreporter.write_line(line)
    path = config.getoption("--results")
    if path:
        session.write(Path(path))
        terminalreporter.write_line(f"results written to {path}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    s = session_or_none()
    if s is None:
        return
    if s.expectations is not None and session.config.getoption("--strict-expectations") and s.unused_expectations():
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
