"""One conformance run: a backend, the selected fixture cases, modes and checks, the
expectations, and the results. Shared by the pytest plugin and ``lossconf run``.

Every selected case is run in every selected mode the backend runs (``--mode``; by default
every mode it declares, see :func:`protocol.supported_modes`); a mode is a dimension of the
results like the dtype: each record names its mode, test ids of modes other than ``grad``
carry it (``...-017[compiled]-grad:pred``), and the summary counts each mode."""

from __future__ import annotations

import contextlib
import fnmatch
import gc
import itertools
import json
import platform
import re
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import fixtures as fx
from ..protocol import MODES, Backend, build_info, mapping_of, supported_modes
from ..worker.supervisor import BackendContractError, RunStopped, Supervisor
from . import batch, compare
from .expectations import ExpectationError, Expectations
from .runner import (
    _DTYPES,
    ERROR,
    FAIL,
    FAILING,
    INPUTS_PASS,
    KNOWN,
    PASS,
    PLAIN_MODE,
    RAISED,
    REPEAT_PASSES,
    SKIP,
    CaseRun,
    CheckResult,
    _from_measurement,
    _shape_message,
    apply_control,
    apply_entry,
    apply_fresh_backward,
    call_run,
    check_id,
    checks_for,
    control_entry,
    entry_for,
    evaluate_check,
    evaluate_checks,
    finish_run,
    fresh_backward_entry,
    interrupts_handled,
    prepare_run,
    time_limit,
)
from .tolerance import POLICY_VERSION, Tolerance, default

MAX_TIME = "stopped at the run-wide time limit (--max-time)"
INTERRUPTED = "interrupted by the user (Ctrl-C)"

#: cases judged at a time when the backend runs in a worker (judging overlaps its calls)
CHUNK = 256

RESULTS_FORMAT = "lossconf-results"
RESULTS_VERSION = 1


def open_backend(
    spec: str, expectations_path: str | None, *, in_process: bool = True, call_timeout: float = 60.0,
) -> tuple[Backend, Expectations | None]:
    """The backend and the expectation file of a run; raises BackendError or
    ExpectationError with a one-line message (both mean: exit 3). Not ``in_process``: a
    :class:`Supervisor` standing in for the backend, its worker started and ready (the
    caller closes it)."""
    from ..backends import BackendError, load_backend
    from .expectations import load as load_expectations

    expectations = load_expectations(expectations_path) if expectations_path else None
    if not in_process:
        sup = Supervisor(spec, call_timeout=call_timeout)
        try:
            sup.ready()
        except BaseException:
            sup.close()
            raise
        return sup, expectations
    try:
        backend = load_backend(spec)
    except BackendError:
        raise
    except Exception as err:  # e.g. a property of the backend raised while it was checked
        raise BackendError(f"backend {spec!r} could not be loaded: {type(err).__name__}: {err}") from None
    backend_identity(backend)
    return backend, expectations


def backend_identity(backend: Backend) -> tuple[str, str]:
    """The backend's name and version; BackendError (one line) if reading them raises or
    the name is not a non-empty string (a worker's backend: checked by the worker)."""
    from ..backends import BackendError

    try:
        name, version = backend.name, backend.version
    except BackendError:
        raise
    except BaseException as err:
        if isinstance(err, KeyboardInterrupt):
            raise
        raise BackendError(f"backend {type(backend).__name__}: reading its name and version raised {type(err).__name__}: {err}") from None
    if not isinstance(name, str) or not name:
        raise BackendError(f"backend {type(backend).__name__}: its name is {name!r}, not a non-empty string")
    return name, str(version)


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
    modes: list[str] = field(default_factory=list)

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
        return not self.cases or any(self._item_matches(case, chk, m) for m in MODES for chk in checks_for(case, m))

    def _item_matches(self, case: fx.FixtureCase, check: str, mode: str = PLAIN_MODE) -> bool:
        item, name = check_id(case, check, mode), case.name
        return any(p.search(item) or p.search(name) for p in self._patterns)

    @property
    def selects_cases(self) -> bool:
        """Whether a filter leaves out cases (rather than only checks)."""
        return bool(self.losses or self.dtypes or self.tags or self.cases)

    def describe(self) -> str:
        parts = [f"--{k} {v}" for k in ("loss", "dtype", "tag", "check", "mode") for v in getattr(self, k + "s" if k != "loss" else "losses")]
        parts += [f"--case {v}" for v in self.cases]
        return " ".join(parts) or "(none)"

    def problems(self, cases: list[fx.FixtureCase]) -> list[str]:
        """Filter values that name nothing the fixtures have (a typo must not select
        nothing and pass)."""
        out: list[str] = [f"--mode {x!r} is not one of {', '.join(MODES)}" for x in self.modes if x not in MODES]
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
        names = {chk for c in cases for mode in MODES for chk in checks_for(c, mode)}
        for x in self.checks:
            if not any(fnmatch.fnmatchcase(n, x) or n.split(":")[0] == x for n in names):
                out.append(
                    f"--check {x!r} matches no check (checks: value, shape, grad, grad:NAME, repeat, inputs, invalid, "
                    "twice, hvp, hvp:NAME)"
                )
        for x, p in zip(self.cases, self._patterns):
            if not any(
                p.search(check_id(c, chk, m)) or p.search(c.name) for c in cases for m in MODES for chk in checks_for(c, m)
            ):
                out.append(f"--case {x!r} matches no test id or case name (`lossconf cases` lists them)")
        return out

    def keep_check(self, check: str, case: fx.FixtureCase | None = None, mode: str = PLAIN_MODE) -> bool:
        """Whether a check is selected (``case``: also by the ``--case`` patterns, matched
        against its test id in ``mode``)."""
        if self.checks and not any(fnmatch.fnmatchcase(check, c) or check.split(":")[0] == c for c in self.checks):
            return False
        return case is None or not self.cases or self._item_matches(case, check, mode)


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
    #: per case and mode: its checks' results (before expectations), evaluated in one pass
    pending: dict[tuple[str, int, str], dict[str, CheckResult]] = field(default_factory=dict)
    #: the run-wide deadline (``time.monotonic()``; ``lossconf run --max-time``)
    deadline: float | None = None
    #: why the run stopped before its end (--max-time, Ctrl-C), or None
    stopped: str | None = None
    #: cases (and modes) not run because the run stopped
    not_run: set[tuple[str, int, str]] = field(default_factory=set)
    #: called with the number of cases just run (progress display)
    progress: Callable[[int], None] | None = None
    #: the modes run, in the order of protocol.MODES
    modes: tuple[str, ...] = (PLAIN_MODE,)
    #: every mode -> None if the backend runs it, else why not (its ``modes``)
    mode_support: dict[str, str | None] = field(default_factory=dict)

    @classmethod
    def open(cls, backend: Backend, directory: Path | None, filters: Filters, expectations: Expectations | None, timeout: float) -> Session:
        directory = Path(directory or fx.default_dir())
        support = backend_modes(backend)
        modes = select_modes(support, filters.modes, getattr(backend, "name", "?"))
        with collector_paused():
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
        session = cls(backend, cases, fx.manifest_digest(directory), expectations, timeout, modes=modes, mode_support=support)
        if not any(filters.keep_check(chk, c, mode) for c in cases for mode in modes for chk in checks_for(c, mode)):
            raise FilterError("the filters select no check: " + filters.describe())
        return session

    def items(self, filters: Filters) -> list[tuple[fx.FixtureCase, str, str]]:
        """The selected (case, check, mode) items, case by case, each case's modes in the
        order of protocol.MODES."""
        return [
            (c, chk, mode) for c in self.cases for mode in self.modes for chk in checks_for(c, mode)
            if filters.keep_check(chk, c, mode)
        ]

    def _evaluated(self, case: fx.FixtureCase, check: str, mode: str) -> CheckResult:
        key = (case.file, case.index, mode)
        cached = self.pending.get(key)
        if cached is None or check not in cached:
            checks = checks_for(case, mode)
            cached = self.pending[key] = self._evaluate_cases([(case, mode, [*checks, *([check] if check not in checks else [])])])[0]
        if check not in cached:  # the run stopped before this case
            return CheckResult(case, check, SKIP, "not run", f"not run: the run {self.stopped or 'stopped'}", mode=mode)
        return cached.pop(check)

    def _evaluate_cases(self, todo: list[tuple[fx.FixtureCase, str, Sequence[str]]]) -> list[dict[str, CheckResult]]:
        """:meth:`_evaluate`; with a worker, in chunks of :data:`CHUNK` cases, so that the
        harness judges one chunk while the worker runs the next (every entry was sent at
        once: the worker does not wait). Every result carries its case's mode."""
        results = self._evaluate_todo(todo)
        for (_, mode, _), res in zip(todo, results):
            if mode != PLAIN_MODE:
                for r in res.values():
                    r.mode = mode
        return results

    def _evaluate_todo(self, todo: list[tuple[fx.FixtureCase, str, Sequence[str]]]) -> list[dict[str, CheckResult]]:
        backend = self.backend
        if not isinstance(backend, Supervisor):
            if len(todo) <= CHUNK:
                return self._evaluate(todo)
            return self._chunked(todo, self._evaluate)
        with collector_paused():  # (no backend code runs in this process)
            if len(todo) <= CHUNK:
                return self._evaluate(todo)
            return self._evaluate_chunks(backend, todo)

    def _evaluate_chunks(self, backend: Supervisor, todo: list[tuple[fx.FixtureCase, str, Sequence[str]]]) -> list[dict[str, CheckResult]]:
        runs = self.runs
        pending = {(c.file, c.index, m): CaseRun(c, m) for c, m, _ in todo if (c.file, c.index, m) not in runs}
        stream = self._worker_runs(backend, list(pending.values()))
        try:
            results = self._chunked(todo, lambda part: self._evaluate(part, (stream, pending)))
            if self.stopped is None:
                for _ in stream:  # (ends the generator: nothing is left)
                    pass
        finally:
            stream.close()  # (stopped early: the worker mid-entry is discarded)
        return results

    def _chunked(
        self, todo: list[tuple[fx.FixtureCase, str, Sequence[str]]],
        evaluate: Callable[[list[tuple[fx.FixtureCase, str, Sequence[str]]]], list[dict[str, CheckResult]]],
    ) -> list[dict[str, CheckResult]]:
        """``evaluate`` over ``todo`` :data:`CHUNK` cases at a time. A Ctrl-C while a chunk
        is judged (the CLI's run: :func:`runner.interrupts_handled`) stops the run there:
        the chunks judged before it are kept (and recorded), the rest are not run; the
        same when the run stopped during a chunk's calls (--max-time, Ctrl-C)."""
        results: list[dict[str, CheckResult]] = []
        try:
            for at in range(0, len(todo), CHUNK):
                results += evaluate(todo[at : at + CHUNK])
                if self.stopped is not None:
                    break
        except KeyboardInterrupt:
            if not interrupts_handled():
                raise
            self.stopped = INTERRUPTED
        for case, mode, _ in todo[len(results):]:
            self.not_run.add((case.file, case.index, mode))
        return results

    def _evaluate(
        self, todo: list[tuple[fx.FixtureCase, str, Sequence[str]]],
        worker: tuple[Iterator[CaseRun], dict[tuple[str, int, str], CaseRun]] | None = None,
    ) -> list[dict[str, CheckResult]]:
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
        failed: dict[tuple[str, int, str], Exception] = {}
        fresh: list[CaseRun] = []
        if isinstance(backend, Supervisor):
            if worker is None:
                fresh = [CaseRun(case, mode) for case, mode, _ in todo if (case.file, case.index, mode) not in runs]
                stream = self._worker_runs(backend, fresh)  # (consumed to its end below)
            else:
                stream, pending = worker
                fresh = [pending[(case.file, case.index, mode)] for case, mode, _ in todo if (case.file, case.index, mode) not in runs]
            made = sum(1 for _ in (stream if worker is None else itertools.islice(stream, len(fresh))))
        else:
            for case, mode, _ in todo:
                key = (case.file, case.index, mode)
                if key not in runs:
                    try:
                        fresh.append(prepare_run(backend, case, mode))
                    except BackendContractError:
                        raise
                    except Exception as err:  # a harness bug must not hide the other results
                        failed[key] = err
            made = self._call_in_process(backend, fresh, failed)
        for run in fresh[made:]:  # the run was stopped before these
            self.not_run.add((run.case.file, run.case.index, run.mode))
        for run in fresh[:made]:
            key = (run.case.file, run.case.index, run.mode)
            if key not in failed:
                try:
                    runs[key] = finish_run(run)
                except Exception as err:
                    failed[key] = err
        not_run = self.not_run
        for n, (case, mode, checks) in enumerate(todo):
            key = (case.file, case.index, mode)
            run = runs.get(key)
            if run is None and key in not_run:
                results.append({})
                continue
            if run is None:
                err = failed.get(key) or RuntimeError("the case was not run")
                results.append({
                    chk: CheckResult(case, chk, ERROR, "error", f"lossconf could not evaluate this check: {type(err).__name__}: {err}")
                    for chk in checks
                })
                continue
            tol0 = default(case.dtype)
            measured = run.unsupported is None and run.error is None
            if measured and expectations is None and case.source is not None and mode in _USUAL_MODES:
                res = _usual(run, checks, tol0, n, items, where_items)
                if res is not None:
                    results.append(res)
                    continue
            res = dict.fromkeys(checks)  # type: ignore[arg-type]
            results.append(res)
            for chk in checks:
                tol = tol0 if expectations is None else expectations.tolerance_for(case, chk, tol0, mode)
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
        noted = [run for run in fresh if run.detail or run.printed]
        if noted:  # what the worker saw: in the messages of the case's failures
            where = {(c.file, c.index, m): n for n, (c, m, _) in enumerate(todo)}
            for run in noted:
                for res in results[where[(run.case.file, run.case.index, run.mode)]].values():
                    if res is not None and res.status in FAILING:
                        res.message += _worker_notes(run)
        return results

    def _call_in_process(self, backend: Backend, fresh: list[CaseRun], failed: dict) -> int:
        """The backend's calls in this process; the number of runs made (all, unless the
        run-wide deadline passed or the user pressed Ctrl-C)."""
        progress, deadline = self.progress, self.deadline
        made = 0
        try:
            with time_limit(self.timeout, armed=False, until=deadline) as limit:  # one handler for every call
                for run in fresh:
                    if deadline is not None and time.monotonic() > deadline:
                        self.stopped = MAX_TIME
                        break
                    try:
                        call_run(backend, run, limit)
                    except KeyboardInterrupt:
                        raise
                    except Exception as err:  # (call_run reports the backend's own errors)
                        failed[(run.case.file, run.case.index, run.mode)] = err
                    if deadline is not None and time.monotonic() > deadline:  # its result is not to be trusted
                        self.stopped = MAX_TIME
                        break
                    made += 1
                    if progress is not None:
                        progress(1)
        except KeyboardInterrupt:
            self.stopped = INTERRUPTED
            if not interrupts_handled():
                raise
        return made

    def _worker_runs(self, backend: Supervisor, fresh: list[CaseRun]) -> Iterator[CaseRun]:
        """The runs of ``fresh`` as the worker makes them, in order (batched entries); it
        ends early when the run stops (--max-time, Ctrl-C)."""
        progress = self.progress
        backend.deadline = self.deadline
        entries, owners = [], []  # owners: per entry, (its run, whether it is the run's last entry)
        for i, run in enumerate(fresh):
            entries.append(entry_for(run))
            # a run's second entry: in mode backward-twice the single backward it is held to;
            # for invalid input the valid control case's call
            second = fresh_backward_entry(run) or control_entry(run)
            owners.append((i, second is None))
            if second is not None:
                entries.append(second)
                owners.append((i, True))
        try:
            for j, res in backend.run_entries(entries):
                i, last = owners[j]
                if not (j and owners[j - 1][0] == i):
                    apply_entry(fresh[i], res)
                elif fresh[i].case.invalid is not None:
                    apply_control(fresh[i], res)
                else:
                    apply_fresh_backward(fresh[i], res)
                if not last:
                    continue
                if progress is not None:
                    progress(1)
                yield fresh[i]
        except RunStopped:
            self.stopped = MAX_TIME
        except KeyboardInterrupt:
            self.stopped = INTERRUPTED
            if not interrupts_handled():
                raise

    def prepare(self, filters: Filters) -> None:
        """Run every selected case and evaluate all its checks in one batch; ``check``
        then only applies expectations and records."""
        pending, every_check = self.pending, not (filters.checks or filters.cases)
        todo = [
            (case, mode, checks) for case in self.cases for mode in self.modes
            for checks in (checks_for(case, mode),)
            if checks and (case.file, case.index, mode) not in pending
            and (every_check or any(filters.keep_check(chk, case, mode) for chk in checks))
        ]
        for (case, mode, _), res in zip(todo, self._evaluate_cases(todo)):
            self.pending[(case.file, case.index, mode)] = res

    def check(self, case: fx.FixtureCase, check: str, mode: str = PLAIN_MODE) -> CheckResult:
        return self._record(case, check, self._evaluated(case, check, mode))

    def _record(self, case: fx.FixtureCase, check: str, result: CheckResult) -> CheckResult:
        """Apply the expectations to a check's result and keep it."""
        if self.expectations is not None and result.status in FAILING:
            entry = self.expectations.deviation_for(case, check, result.mode, result.status)
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
            for mode in self.modes:
                res = pending.pop((case.file, case.index, mode), None)
                if res is None:  # no check of it selected
                    continue
                if keep is None and self.expectations is None:  # (each case's results are in check order)
                    self.results.extend(res.values())
                    continue
                for check in checks_for(case, mode):
                    if (keep is None or keep(check, case, mode)) and check in res:
                        self._record(case, check, res.pop(check))
        return self.results

    def unused_expectations(self) -> list:
        """Listed deviations that did not occur although this run checked (not skipped) a
        case and check they match; entries for what the run did not cover say nothing."""
        if not self.expectations:
            return []
        ran = [(r.case, r.check, r.mode) for r in self.results if r.status != SKIP]
        return [e for e in self.expectations.unused() if any(e.matches(c, k, m) for c, k, m in ran)]

    # ------------------------------------------------------------------ reporting

    def backend_seconds(self) -> float:
        return sum(r.backend_seconds for r in self.runs.values())

    def summary(self, by: str = "loss") -> dict[str, dict[str, Any]]:
        """Per loss (``by="mode"``: per mode): counts by status and the worst value/grad
        errors in ULPs per dtype."""
        table: dict[str, dict[str, Any]] = defaultdict(
            lambda: {PASS: 0, "stable": 0, FAIL: 0, ERROR: 0, RAISED: 0, SKIP: 0, KNOWN: 0, "worst": {}, "worst_grad": {}}
        )
        for r in self.results:
            row = table[r.case.loss if by == "loss" else r.mode]
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
                    **mapping_of(self.backend),  # the migration map (lossconf map), when the backend has one
                },
                "fixtures_digest": self.fixtures_digest,
                "policy_version": POLICY_VERSION,
                "expectations": self.expectations.path if self.expectations else None,
                "modes": list(self.modes),
                "modes_not_run": {m: why for m, why in self.mode_support.items() if m not in self.modes},
                "python": platform.python_version(),
                "numpy": np.__version__,
                "platform": platform.platform(terse=True),
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.started)),
            },
            "unused_expectations": [
                {"entry": e.number, "describe": e.describe(), "reason": e.reason} for e in self.unused_expectations()
            ],
            "records": [r.to_json() for r in self.results],
            # False when the run stopped before its end (--max-time, Ctrl-C): records are missing
            "complete": self.stopped is None,
            "stopped": self.stopped,
        }

    def write(self, path: Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), indent=1, allow_nan=False) + "\n")


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """The cyclic garbage collector paused for the enclosed work: the harness's own, which
    makes tens of thousands of long-lived objects and no reference cycles (loading
    fixtures; judging a worker's results, where no backend code runs in this process).
    Left on, it traverses them again and again: a full collection in a run over the worker
    measured 40-70 ms of CPU (``benchmarks/README.md``). What it made is left in the
    oldest generation (``gc.freeze`` then ``gc.unfreeze``, as the ``gc`` documentation
    describes), so no young collection traverses it on the way there either. Any cyclic
    garbage is collected by the next full collection."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.unfreeze()
        if enabled:
            gc.enable()


def _worker_notes(run: CaseRun) -> str:
    """The worker's traceback and the backend's own output, for a failure's message."""
    out = ""
    if run.detail:
        detail = run.detail if len(run.detail) <= 3000 else "..." + run.detail[-3000:]
        out += "\n  traceback:\n    " + detail.replace("\n", "\n    ")
    if run.printed:
        text = run.printed if len(run.printed) <= 2000 else run.printed[:1000] + "\n[...]\n" + run.printed[-1000:]
        out += "\n  the backend's output:\n    " + text.rstrip().replace("\n", "\n    ")
    return out


def backend_modes(backend: Backend) -> dict[str, str | None]:
    """:func:`protocol.supported_modes`, its ValueError as a BackendError (exit 3)."""
    try:
        return supported_modes(backend)
    except ValueError as err:
        from ..backends import BackendError

        raise BackendError(f"backend {getattr(backend, 'name', '?')}: {err}") from None


def select_modes(support: dict[str, str | None], wanted: Sequence[str], name: str) -> tuple[str, ...]:
    """The modes to run: those of ``wanted`` (``--mode``; empty: every mode the backend
    runs), in the order of protocol.MODES. A wanted mode the backend does not run is a
    FilterError naming the backend's reason."""
    bad = [m for m in wanted if m not in MODES]
    if bad:
        raise FilterError("; ".join(f"--mode {m!r} is not one of {', '.join(MODES)}" for m in bad))
    declined = [f"--mode {m}: backend {name} does not run it: {support[m]}" for m in wanted if support.get(m) is not None]
    if declined:
        raise FilterError("; ".join(declined))
    modes = tuple(m for m in MODES if (m in wanted if wanted else support.get(m) is None))
    if not modes:
        raise FilterError(f"backend {name} runs no mode ({'; '.join(f'{m}: {why}' for m, why in support.items())})")
    return modes


#: modes whose checks are a fixture case's usual ones (FixtureCase.checks), which _usual may take
_USUAL_MODES = frozenset((PLAIN_MODE, "compiled"))


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
    needed the stability bound; 'raised' counts checks of cases whose documented value is
    +inf on which the backend raised (:data:`runner.RAISED`); value errors are in ULPs,
    gradient errors in eps x the element's term scale."""
    summ = session.summary()
    lines = [
        f"lossconf: backend {session.backend.name} {session.backend.version} -- {len(session.results)} checks",
        f"{'loss':<30} {'pass':>5} {'(stbl)':>6} {'fail':>5} {'error':>5} {'raised':>6} {'skip':>5} {'known':>5}"
        "  worst value ULP f16/f32/f64   worst grad eps*scale f16/f32/f64",
    ]
    totals: dict[str, int] = defaultdict(int)
    keys = (PASS, "stable", FAIL, ERROR, RAISED, SKIP, KNOWN)
    for loss in sorted(summ, key=lambda x: x.rsplit(".", 1)[-1].lower()):
        row = summ[loss]
        worst = "/".join(_g(row["worst"].get(d)) for d in ("float16", "float32", "float64"))
        worst_g = "/".join(_g(row["worst_grad"].get(d)) for d in ("float16", "float32", "float64"))
        lines.append(
            f"{loss.rsplit('.', 1)[-1]:<30} {row[PASS]:>5} {row['stable']:>6} {row[FAIL]:>5} {row[ERROR]:>5} "
            f"{row[RAISED]:>6} {row[SKIP]:>5} {row[KNOWN]:>5}  {worst:<28} {worst_g}"
        )
        for k in keys:
            totals[k] += row[k]
    lines.append(
        f"{'total':<30} {totals[PASS]:>5} {totals['stable']:>6} {totals[FAIL]:>5} {totals[ERROR]:>5} "
        f"{totals[RAISED]:>6} {totals[SKIP]:>5} {totals[KNOWN]:>5}"
    )
    by_mode = session.summary(by="mode")
    if len(session.modes) > 1 or session.modes != (PLAIN_MODE,):
        for mode in session.modes:
            row = by_mode.get(mode)
            if row is None:
                continue
            worst = "/".join(_g(row["worst"].get(d)) for d in ("float16", "float32", "float64"))
            worst_g = "/".join(_g(row["worst_grad"].get(d)) for d in ("float16", "float32", "float64"))
            lines.append(
                f"{'mode ' + mode:<30} {row[PASS]:>5} {row['stable']:>6} {row[FAIL]:>5} {row[ERROR]:>5} "
                f"{row[RAISED]:>6} {row[SKIP]:>5} {row[KNOWN]:>5}  {worst:<28} {worst_g}"
            )
    not_run: dict[str, list[str]] = defaultdict(list)  # one line per reason
    for mode, why in session.mode_support.items():
        if mode not in session.modes and why is not None:
            not_run[why].append(mode)
    for why, modes in not_run.items():
        lines.append(f"mode{'s' if len(modes) > 1 else ''} {'/'.join(modes)} not run: {why}")
    for e in session.unused_expectations():
        lines.append(f"expectation no longer needed: {e.describe()}: {e.reason}")
    return lines


def _g(x: float | None) -> str:
    if x is None:
        return "-"
    if x == float("inf"):
        return "inf"
    return f"{x:.3g}"
