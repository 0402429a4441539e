"""One conformance run: a backend, the selected fixture cases and checks, the
expectations, and the results. Shared by the pytest plugin and ``lossconf run``."""

from __future__ import annotations

import contextlib
import fnmatch
import gc
import json
import platform
import re
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import fixtures as fx
from ..protocol import Backend, build_info
from . import batch, compare
from .expectations import ExpectationError, Expectations
from .runner import (
    _DTYPES,
    ERROR,
    FAIL,
    INPUTS_PASS,
    KNOWN,
    PASS,
    REPEAT_PASSES,
    SKIP,
    CaseRun,
    CheckResult,
    _from_measurement,
    _shape_message,
    call_run,
    checks_for,
    evaluate_check,
    evaluate_checks,
    finish_run,
    prepare_run,
    time_limit,
)
from .tolerance import POLICY_VERSION, Tolerance, default

RESULTS_FORMAT = "lossconf-results"
RESULTS_VERSION = 1


def open_backend(spec: str, expectations_path: str | None) -> tuple[Backend, Expectations | None]:
    """The backend and the expectation file of a run; raises BackendError or
    ExpectationError with a one-line message (both mean: exit 3)."""
    from ..backends import load_backend
    from .expectations import load as load_expectations

    backend = load_backend(spec)
    return backend, (load_expectations(expectations_path) if expectations_path else None)


class FilterError(Exception):
    """A filter that names nothing the fixtures have, or a selection of no check."""


def _resolve(name: str) -> str:
    """A loss id for an alias (SoftmaxCELoss) when the catalog knows it; else the name."""
    try:
        from oracle.catalog import resolve

        return resolve(name)
    except Exception:
        return name


@dataclass
class Filters:
    losses: list[str] = field(default_factory=list)
    dtypes: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)
    #: ``--case`` patterns, matched against test ids and case names (:func:`case_pattern`)
    cases: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.losses = [_resolve(x) for x in self.losses]
        self._patterns = [case_pattern(p) for p in self.cases]

    def keep_case(self, case: fx.FixtureCase) -> bool:
        if self.losses and not any(x.lower() in (case.loss.lower(), case.short_loss.lower()) for x in self.losses):
            return False
        if self.dtypes and case.dtype not in self.dtypes:
            return False
        if self.tags and not set(self.tags) & set(case.tags):
            return False
        return not self.cases or any(self._item_matches(case, chk) for chk in case.checks)

    def _item_matches(self, case: fx.FixtureCase, check: str) -> bool:
        item, name = f"{case.test_id}-{check}", case.name
        return any(p.search(item) or p.search(name) for p in self._patterns)

    @property
    def selects_cases(self) -> bool:
        """Whether a filter leaves out cases (rather than only checks)."""
        return bool(self.losses or self.dtypes or self.tags or self.cases)

    def describe(self) -> str:
        parts = [f"--{k} {v}" for k in ("loss", "dtype", "tag", "check") for v in getattr(self, k + "s" if k != "loss" else "losses")]
        parts += [f"--case {v}" for v in self.cases]
        return " ".join(parts) or "(none)"

    def problems(self, cases: list[fx.FixtureCase]) -> list[str]:
        """Filter values that name nothing the fixtures have (a typo must not select
        nothing and pass)."""
        out: list[str] = []
        if not (self.losses or self.dtypes or self.tags or self.checks or self.cases):
            return out
        losses = {c.loss.lower() for c in cases} | {c.short_loss.lower() for c in cases}
        for x in self.losses:
            if x.lower() not in losses:
                out.append(f"--loss {x!r} is not a loss of the fixtures (known: {', '.join(sorted({c.short_loss for c in cases}))})")
        dtypes = {c.dtype for c in cases}
        out += [f"--dtype {x!r} is not one of {', '.join(sorted(dtypes))}" for x in self.dtypes if x not in dtypes]
        tags = {t for c in cases for t in c.tags}
        out += [f"--tag {x!r} is not one of {', '.join(sorted(tags))}" for x in self.tags if x not in tags]
        names = {chk for c in cases for chk in checks_for(c)}
        for x in self.checks:
            if not any(fnmatch.fnmatchcase(n, x) or n.split(":")[0] == x for n in names):
                out.append(f"--check {x!r} matches no check (checks: value, shape, grad, grad:NAME, repeat, inputs, invalid)")
        for x, p in zip(self.cases, self._patterns):
            if not any(p.search(f"{c.test_id}-{chk}") or p.search(c.name) for c in cases for chk in c.checks):
                out.append(f"--case {x!r} matches no test id or case name (`lossconf cases` lists them)")
        return out

    def keep_check(self, check: str, case: fx.FixtureCase | None = None) -> bool:
        """Whether a check is selected (``case``: also by the ``--case`` patterns)."""
        if self.checks and not any(fnmatch.fnmatchcase(check, c) or check.split(":")[0] == c for c in self.checks):
            return False
        return case is None or not self.cases or self._item_matches(case, check)


def case_pattern(pattern: str) -> re.Pattern[str]:
    """A ``--case`` pattern as a regular expression searched in a test id
    (``L2Loss[]-float32-extreme-020-value``) or a case name (``extreme-float32``), like
    pytest's ``-k``: case-insensitive, matching where a word starts (so ``HingeLoss``
    does not select ``SquaredHingeLoss``); ``*`` and ``?`` are wildcards, everything
    else (``[``, ``]``, ``=``) is literal. A whole test id selects just that case or check."""
    body = "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern)
    start = r"(?<![A-Za-z0-9])" if pattern[:1].isalnum() else ""
    return re.compile(start + body, re.IGNORECASE)


@dataclass
class Session:
    backend: Backend
    cases: list[fx.FixtureCase]
    fixtures_digest: str
    expectations: Expectations | None = None
    timeout: float = 60.0
    runs: dict[tuple[str, int], CaseRun] = field(default_factory=dict)
    results: list[CheckResult] = field(default_factory=list)
    started: float = field(default_factory=time.time)
    #: per case: its checks' results (before expectations), evaluated in one pass
    pending: dict[tuple[str, int], dict[str, CheckResult]] = field(default_factory=dict)

    @classmethod
    def open(cls, backend: Backend, directory: Path | None, filters: Filters, expectations: Expectations | None, timeout: float) -> Session:
        directory = Path(directory or fx.default_dir())
        with harness_work():
            every = fx.load(directory)
        if expectations is not None:
            dead = expectations.unmatchable(every, checks_for)
            if dead:
                raise ExpectationError(
                    f"{expectations.path}: "
                    + "; ".join(f"{e.describe()} matches no case and check of the fixtures" for e in dead)
                )
        problems = filters.problems(every)
        if problems:
            raise FilterError("; ".join(problems))
        cases = [c for c in every if filters.keep_case(c)] if filters.selects_cases else every
        session = cls(backend, cases, fx.manifest_digest(directory), expectations, timeout)
        if not any(filters.keep_check(chk, c) for c in cases for chk in checks_for(c)):
            raise FilterError("the filters select no check: " + filters.describe())
        return session

    def items(self, filters: Filters) -> list[tuple[fx.FixtureCase, str]]:
        return [(c, chk) for c in self.cases for chk in checks_for(c) if filters.keep_check(chk, c)]

    def _evaluated(self, case: fx.FixtureCase, check: str) -> CheckResult:
        key = (case.file, case.index)
        cached = self.pending.get(key)
        if cached is None or check not in cached:
            cached = self.pending[key] = self._evaluate_case(case, [*checks_for(case), *([check] if check not in checks_for(case) else [])])
        return cached.pop(check)

    def _evaluate_case(self, case: fx.FixtureCase, checks: list[str]) -> dict[str, CheckResult]:
        return self._evaluate_cases([(case, checks)])[0]

    def _evaluate_cases(self, todo: list[tuple[fx.FixtureCase, Sequence[str]]]) -> list[dict[str, CheckResult]]:
        collecting = gc.isenabled()
        with harness_work():
            return self._evaluate(todo, collecting)

    def _evaluate(self, todo: list[tuple[fx.FixtureCase, Sequence[str]]], collecting: bool = False) -> list[dict[str, CheckResult]]:
        """The listed checks of each case (its run made, or taken from earlier). The value
        and gradient checks are measured in one vectorised pass (a fixture file's case:
        :func:`batch.measure_rows`; any other: :func:`compare.conforming_many`); every
        other check, and every array that does not conform or is not within the
        stability bound, through :func:`runner.evaluate_check`, which explains failures."""
        results: list[dict[str, CheckResult]] = []
        items: list[batch.Item] = []  # fixture files' cases: their layout's rows
        jobs: list[compare.Job] = []  # any other case (e.g. live mode's): the arrays themselves
        where_items: list[tuple[int, str, CaseRun, Tolerance]] = []
        where_jobs: list[tuple[int, str, CaseRun, Tolerance]] = []
        rest: list[tuple[int, str, CaseRun, Tolerance]] = []
        expectations, runs, backend = self.expectations, self.runs, self.backend
        # the runs in three phases: every case's calls prepared, then the backend's calls
        # one after another with nothing of the harness's in between, then what they did
        failed: dict[tuple[str, int], Exception] = {}
        fresh: list[CaseRun] = []
        for case, _ in todo:
            key = (case.file, case.index)
            if key not in runs:
                try:
                    fresh.append(prepare_run(backend, case))
                except Exception as err:  # a harness bug must not hide the other results
                    failed[key] = err
        with backend_work(collecting), time_limit(self.timeout, armed=False) as limit:  # one handler for every call
            for run in fresh:
                try:
                    call_run(backend, run, limit)
                except Exception as err:  # (call_run reports the backend's own errors)
                    failed[(run.case.file, run.case.index)] = err
        for run in fresh:
            key = (run.case.file, run.case.index)
            if key not in failed:
                try:
                    runs[key] = finish_run(run)
                except Exception as err:
                    failed[key] = err
        for n, (case, checks) in enumerate(todo):
            key = (case.file, case.index)
            run = runs.get(key)
            if run is None:
                err = failed.get(key) or RuntimeError("the case was not run")
                results.append({
                    chk: CheckResult(case, chk, ERROR, "error", f"lossconf could not evaluate this check: {type(err).__name__}: {err}")
                    for chk in checks
                })
                continue
            tol0 = default(case.dtype)
            measured = run.unsupported is None and run.error is None
            if measured and expectations is None and case.source is not None:
                res = _usual(run, checks, tol0, n, items, where_items)
                if res is not None:
                    results.append(res)
                    continue
            res = dict.fromkeys(checks)  # type: ignore[arg-type]
            results.append(res)
            for chk in checks:
                tol = tol0 if expectations is None else expectations.tolerance_for(case, chk, tol0)
                if measured and (chk == "value" or chk.startswith("grad:")):
                    obs = run.output if chk == "value" else run.grads.get(chk[5:])
                    item = batch.item_for(case, chk, obs, tol)
                    if item is not None:
                        items.append(item)
                        where_items.append((n, chk, run, tol))
                        continue
                    job = _job(run, chk, tol) if case.source is None else None
                    if job is not None:
                        jobs.append(job)
                        where_jobs.append((n, chk, run, tol))
                        continue
                    rest.append((n, chk, run, tol))
                    continue
                try:
                    res[chk] = evaluate_check(run, chk, tol)
                except Exception:  # evaluate_checks reports it
                    rest.append((n, chk, run, tol))
        with np.errstate(all="ignore"):
            measured_items = batch.measure_rows(items) if items else []
            measured_jobs = compare.conforming_many(jobs) if jobs else []
        unusual = []  # arrays the vectorised pass left to measure() (it explains them)
        for (n, chk, run, tol), p in zip(where_items, measured_items):
            if p is None:
                unusual.append((n, chk, run, tol))
            else:
                verdict, worst, worst_scaled, bound, index, text, element = p
                results[n][chk] = CheckResult(
                    run.case, chk, PASS, verdict, "", worst, worst_scaled, bound, tol,
                    None if index is None else list(index), text, observed_element=element,
                )
        for (n, chk, run, tol), m in zip(where_jobs, measured_jobs):
            if m is None:
                unusual.append((n, chk, run, tol))
            else:
                results[n][chk] = _from_measurement(run.case, chk, m, tol)
        for (n, chk, _, _), result in zip(rest, evaluate_checks([(run, chk, tol) for _, chk, run, tol in rest])):
            results[n][chk] = result
        for (n, chk, _, _), result in zip(
            unusual, evaluate_checks([(run, chk, tol) for _, chk, run, tol in unusual], batched=False)
        ):
            results[n][chk] = result
        return results

    def prepare(self, filters: Filters) -> None:
        """Run every selected case and evaluate all its checks in one batch; ``check``
        then only applies expectations and records."""
        pending, every_check = self.pending, not (filters.checks or filters.cases)
        todo = [
            (case, case.checks) for case in self.cases
            if (case.file, case.index) not in pending and (every_check or any(filters.keep_check(chk, case) for chk in case.checks))
        ]
        for (case, _), res in zip(todo, self._evaluate_cases(todo)):
            self.pending[(case.file, case.index)] = res

    def check(self, case: fx.FixtureCase, check: str) -> CheckResult:
        return self._record(case, check, self._evaluated(case, check))

    def _record(self, case: fx.FixtureCase, check: str, result: CheckResult) -> CheckResult:
        """Apply the expectations to a check's result and keep it."""
        if self.expectations is not None and result.status in (FAIL, ERROR):
            entry = self.expectations.deviation_for(case, check)
            if entry is not None:
                entry.matched += 1
                result.status = KNOWN
                result.reason = entry.reason
        self.results.append(result)
        return result

    def run_all(self, filters: Filters) -> list[CheckResult]:
        """Every selected case and check, in order (what ``lossconf run`` does without pytest)."""
        self.prepare(filters)
        keep = filters.keep_check if (filters.checks or filters.cases) else None
        pending = self.pending
        for case in self.cases:  # the order of items(filters)
            res = pending.pop((case.file, case.index), None)
            if res is None:  # no check of it selected
                continue
            if keep is None and self.expectations is None:  # (each case's results are in check order)
                self.results.extend(res.values())
                continue
            for check in checks_for(case):
                if keep is None or keep(check, case):
                    self._record(case, check, res.pop(check))
        return self.results

    def unused_expectations(self) -> list:
        """Listed deviations that did not occur although this run checked (not skipped) a
        case and check they match; entries for what the run did not cover say nothing."""
        if not self.expectations:
            return []
        ran = [(r.case, r.check) for r in self.results if r.status != SKIP]
        return [e for e in self.expectations.unused() if any(e.matches(c, k) for c, k in ran)]

    # ------------------------------------------------------------------ reporting

    def backend_seconds(self) -> float:
        return sum(r.backend_seconds for r in self.runs.values())

    def summary(self) -> dict[str, dict[str, Any]]:
        """Per loss: counts by status and the worst value/grad errors in ULPs per dtype."""
        table: dict[str, dict[str, Any]] = defaultdict(
            lambda: {PASS: 0, "stable": 0, FAIL: 0, ERROR: 0, SKIP: 0, KNOWN: 0, "worst": {}, "worst_grad": {}}
        )
        for r in self.results:
            row = table[r.case.loss]
            row[r.status] += 1
            if r.status == PASS and r.verdict == "within stability bound":
                row["stable"] += 1
            if r.error_ulps is None or r.status == SKIP:
                continue
            if r.check == "value":
                w = row["worst"]
                w[r.case.dtype] = max(w.get(r.case.dtype, 0.0), r.error_ulps)
            elif r.check.startswith("grad:") and r.error_scale is not None:
                w = row["worst_grad"]
                w[r.case.dtype] = max(w.get(r.case.dtype, 0.0), r.error_scale)
        return dict(table)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": RESULTS_FORMAT,
            "format_version": RESULTS_VERSION,
            "provenance": {
                "backend": {
                    "name": getattr(self.backend, "name", "?"),
                    "version": str(getattr(self.backend, "version", "?")),
                    "build": build_info(self.backend),
                },
                "fixtures_digest": self.fixtures_digest,
                "policy_version": POLICY_VERSION,
                "expectations": self.expectations.path if self.expectations else None,
                "python": platform.python_version(),
                "numpy": np.__version__,
                "platform": platform.platform(terse=True),
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.started)),
            },
            "unused_expectations": [
                {"entry": e.number, "describe": e.describe(), "reason": e.reason} for e in self.unused_expectations()
            ],
            "records": [r.to_json() for r in self.results],
        }

    def write(self, path: Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), indent=1, allow_nan=False) + "\n")


@contextlib.contextmanager
def harness_work() -> Iterator[None]:
    """Run the enclosed work -- the harness's own: loading fixtures, preparing calls,
    comparing, recording -- with the cyclic garbage collector paused, and leave what it
    made in the collector's oldest generation.

    That work makes tens of thousands of objects (cases, arrays, results) that live as
    long as the session and form no reference cycles. Left to the collector's defaults,
    each would be traversed again and again by young-generation collections that find
    nothing: about 7 ms of a numpy run, and a full collection in a fresh process about
    20 ms. Nothing is lost: any cyclic garbage is collected by the next collection of the
    oldest generation, as it would be once these objects had aged there anyway. The
    backend's own calls run with the collector on (:func:`backend_work`)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        _to_oldest()
        if enabled:
            gc.enable()


@contextlib.contextmanager
def backend_work(enabled: bool) -> Iterator[None]:
    """Within :func:`harness_work`: the collector on again (if it was on before) while the
    backend's code runs, since that code may leave reference cycles. Every object that
    exists on entry is set aside (:func:`gc.freeze`) until the exit, so a collection in
    the backend's calls -- even a full one -- traverses only what those calls made, and
    the backend's measured time holds no traversal of the harness's objects."""
    if not enabled:
        yield
        return
    gc.freeze()
    gc.enable()
    try:
        yield
    finally:
        gc.disable()
        gc.unfreeze()


def _to_oldest() -> None:
    """Every tracked object into the oldest generation, the young generations' counts reset
    (``gc.freeze`` moves them to the permanent generation, ``gc.unfreeze`` back into the
    oldest, as the ``gc`` documentation describes)."""
    gc.freeze()
    gc.unfreeze()


def _usual(
    run: CaseRun, checks: Sequence[str], tol: Tolerance, n: int,
    items: list[batch.Item], where: list[tuple[int, str, CaseRun, Tolerance]],
) -> dict[str, CheckResult] | None:
    """The usual case's checks, without the general dispatch: a fixture file's valid case,
    every check of it selected, the run measured, its output and gradients float arrays
    of the documented shapes and the input dtype, the repeat identical, the inputs
    unchanged, default tolerances. Its shape, repeat and inputs checks pass (the results
    :func:`runner.evaluate_check` gives them, ``tests/test_batched_comparison.py``), its
    value and gradient checks go to the vectorised pass (``items``, ``where``). Anything
    else is None: the general dispatch takes the case."""
    case = run.case
    if run.repeat_problem is not None or run.mutated or checks is not case.checks:
        return None
    out, grads, inputs = run.output, run.grads, case.inputs
    dtype = _DTYPES[case.dtype]
    shape = case.expected_shape
    if type(out) is not np.ndarray or out.dtype != dtype or out.shape != shape:
        return None
    for name, g in grads.items():
        if type(g) is not np.ndarray or g.dtype != dtype or g.shape != inputs[name].shape:
            return None
    data, _, row = case.source  # type: ignore[misc]
    lay = data.derived.get("batch") or batch.layout(data)
    sizes, shapes = lay.sizes, lay.shapes
    if sizes[row] != out.size or not out.size:
        return None
    todo = [(row, "value", out)]
    for name in case.vjp_inputs:
        g = grads.get(name)
        row += 1
        if g is None or sizes[row] != g.size or not g.size:
            return None
        todo.append((row, "grad:" + name, g))
    res: dict[str, CheckResult] = dict.fromkeys(checks)  # type: ignore[arg-type]  # in check order
    for row, chk, obs in todo:  # (filled in after the vectorised pass)
        items.append((lay, row, obs.ravel(), tol, shapes[row]))
        where.append((n, chk, run, tol))
    res["shape"] = CheckResult(case, "shape", PASS, compare.CONFORMS, _shape_message(shape, case.dtype))
    res["repeat"] = CheckResult(case, "repeat", PASS, compare.CONFORMS, REPEAT_PASSES)
    res["inputs"] = CheckResult(case, "inputs", PASS, compare.CONFORMS, INPUTS_PASS)
    return res


def _job(run: CaseRun, check: str, tol: Tolerance) -> compare.Job | None:
    """A value or gradient check's array for :func:`compare.conforming_many` (what
    :func:`runner.evaluate_check` would measure), or None: another check, a skipped or
    failed run, a size mismatch, a missing gradient."""
    if run.unsupported is not None or run.error is not None:
        return None
    case = run.case
    try:
        if check == "value":
            exp, obs, scale = case.expected, run.output, case.scale
        elif check.startswith("grad:"):
            exp, obs = case.vjp[check[5:]], run.grads.get(check[5:])
            scale = exp.scale
            if obs is None:
                return None
        else:
            return None
        if obs.size != exp.hi.size:
            return None
        return (
            obs.reshape(exp.shape), exp.hi, exp.lo, exp.ulp(case.dtype), case.dtype, tol, case.n_terms, scale, exp.bounds,
            exp.text, exp.roundings,
        )
    except Exception:  # evaluate_check reports it
        return None


def format_summary(session: Session) -> list[str]:
    """The one-screen terminal summary, a line per loss. 'stable' counts passes that
    needed the stability bound; value errors are in ULPs, gradient errors normwise in eps."""
    summ = session.summary()
    lines = [
        f"lossconf: backend {session.backend.name} {session.backend.version} -- {len(session.results)} checks",
        f"{'loss':<30} {'pass':>5} {'(stbl)':>6} {'fail':>5} {'error':>5} {'skip':>5} {'known':>5}"
        "  worst value ULP f16/f32/f64   worst grad eps*norm f16/f32/f64",
    ]
    totals: dict[str, int] = defaultdict(int)
    keys = (PASS, "stable", FAIL, ERROR, SKIP, KNOWN)
    for loss in sorted(summ, key=lambda x: x.rsplit(".", 1)[-1].lower()):
        row = summ[loss]
        worst = "/".join(_g(row["worst"].get(d)) for d in ("float16", "float32", "float64"))
        worst_g = "/".join(_g(row["worst_grad"].get(d)) for d in ("float16", "float32", "float64"))
        lines.append(
            f"{loss.rsplit('.', 1)[-1]:<30} {row[PASS]:>5} {row['stable']:>6} {row[FAIL]:>5} {row[ERROR]:>5} "
            f"{row[SKIP]:>5} {row[KNOWN]:>5}  {worst:<28} {worst_g}"
        )
        for k in keys:
            totals[k] += row[k]
    lines.append(
        f"{'total':<30} {totals[PASS]:>5} {totals['stable']:>6} {totals[FAIL]:>5} {totals[ERROR]:>5} "
        f"{totals[SKIP]:>5} {totals[KNOWN]:>5}"
    )
    for e in session.unused_expectations():
        lines.append(f"expectation no longer needed: {e.describe()}: {e.reason}")
    return lines


def _g(x: float | None) -> str:
    if x is None:
        return "-"
    if x == float("inf"):
        return "inf"
    return f"{x:.3g}"
