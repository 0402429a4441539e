"""Real results files for the report and diff tests: the L2Loss fixtures, generated once
per test session into a copy of the committed fixtures, run on the numpy backend and on
``tests.regressed_backend:backend`` (numpy with L2Loss deliberately broken)."""

from __future__ import annotations

import copy
import functools
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from conformance.backends import load_backend
from conformance.harness.session import Filters, Session

REGRESSED = "tests.regressed_backend:backend"


@functools.cache
def workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="lossconf-report-tests-"))


@functools.cache
def fixtures_dir() -> Path:
    from conformance import fixtures as fx
    from oracle import fixtures

    # a copy of the committed fixtures (a fixtures folder has every loss of the catalog),
    # with the L2Loss file generated anew
    out = workdir() / "fixtures"
    shutil.copytree(fx.default_dir(), out)
    fixtures.generate(out, ["mxnet.gluon.loss.L2Loss"], jobs=1)
    return out


def run(spec: str, path: Path, modes: tuple[str, ...] = ("grad",)) -> Path:
    """Run every L2Loss check on a backend in ``modes`` (the report tests count the
    checks of mode grad), the way the pytest plugin does, and write the results JSON to
    ``path``."""
    backend = load_backend(spec)
    filters = Filters(losses=["L2Loss"], modes=list(modes))
    session = Session.open(backend, fixtures_dir(), filters, None, 60.0)
    for case, check, mode in session.items(filters):
        session.check(case, check, mode)
    session.write(path)
    return path


@functools.cache
def numpy_results() -> Path:
    return run("numpy", workdir() / "results-numpy.json")


@functools.cache
def numpy_rerun_results() -> Path:
    """A second, independent run of the unchanged numpy backend."""
    return run("numpy", workdir() / "results-numpy-rerun.json")


@functools.cache
def regressed_results() -> Path:
    return run(REGRESSED, workdir() / "results-regressed.json")


def read(path: Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text())


def write(doc: dict[str, Any], path: Path) -> Path:
    path.write_text(json.dumps(doc, indent=1))
    return path


def edited(path: Path, out: Path, edit) -> Path:
    """A copy of a results file with ``edit(doc)`` applied."""
    doc = copy.deepcopy(read(path))
    edit(doc)
    return write(doc, out)
