"""Running fixture cases on a backend and turning what it returns into check results.

A case is run in a mode (see :data:`protocol.MODES`) once (plus once more for the repeat
check, or in mode ``backward-twice`` for the fresh single backward its second gradients
are held to) and its checks -- value, shape and dtype, one gradient check per
differentiable input, repeat, inputs unchanged, ``twice``, ``hvp:NAME``, or the
invalid-input check -- all read that one run (:func:`checks_for` lists them per mode).
Each backend call has a time limit; a backend that raises, hangs or returns the wrong type
is reported against that case and the run goes on.
"""

from __future__ import annotations

import functools
import shlex
import signal
import threading
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..fixtures import FixtureCase
from ..protocol import Backend, Call, Outcome, as_array, new_call
from ..worker.supervisor import BackendContractError, Entry, EntryResult, Supervisor, WorkerCallError
from . import compare
from .tolerance import Tolerance, default

PASS, FAIL, SKIP, KNOWN, ERROR = "pass", "fail", "skip", "known", "error"
#: the backend raised on a valid case whose documented exact value is +inf in some element
#: (e.g. CTC with no feasible alignment: -log 0): not a pass (a raise returns no value to
#: match, and the case's finite elements are lost with it), not an error (no crash: the
#: backend refused a value the documentation gives) -- its own status (README: exit codes)
RAISED = "raised"
RAISED_ON_INF = "raised on +inf"
#: an invalid-input case raised, and so did its valid control case (an error: not judged)
CONTROL_RAISED = "raises on valid input too"
#: the statuses that fail a run unless an expectation file lists them
FAILING = (FAIL, ERROR, RAISED)
REPEAT_PASSES = "identical results on a second call"
INPUTS_PASS = "inputs unchanged"
TWICE_PASSES = "the second backward's gradients are identical to a single backward's on a fresh graph"
#: the mode whose test ids carry no mode (ids as before modes existed)
PLAIN_MODE = "grad"


def check_id(case: FixtureCase, check: str, mode: str = PLAIN_MODE) -> str:
    """A check's id: ``L2Loss[]-float32-extreme-017-grad:pred`` in mode ``grad`` (as ever),
    ``L2Loss[]-float32-extreme-017[compiled]-grad:pred`` in any other mode."""
    return f"{case.test_id}-{check}" if mode == PLAIN_MODE else f"{case.test_id}[{mode}]-{check}"


@dataclass(slots=True)
class CheckResult:
    """One record of the results file."""

    case: FixtureCase
    check: str
    status: str
    verdict: str
    message: str = ""
    error_ulps: float | None = None
    error_scale: float | None = None
    bound: float | None = None
    tolerance: Tolerance | None = None
    worst_index: list[int] | None = None
    expected: str | None = None
    observed_text: str | None = None  # what the backend returned, as shown
    observed_element: tuple[Any, Any] | None = None  # or its worst element, (value, dtype)
    reason: str | None = None  # expectation reason, for known deviations
    mode: str = PLAIN_MODE

    @property
    def observed(self) -> str | None:
        """What the backend returned (its worst element: the shortest decimal that
        round-trips in the backend's dtype, formatted when first shown)."""
        if self.observed_text is None and self.observed_element is not None:
            self.observed_text = compare.shown(*self.observed_element)
        return self.observed_text

    @property
    def test_id(self) -> str:
        return check_id(self.case, self.check, self.mode)

    def to_json(self) -> dict[str, Any]:
        c = self.case
        return {
            "id": self.test_id,
            "loss": c.loss,
            "options": {k: c.options[k] for k in c.given_options},
            "options_label": c.options_label,
            "dtype": c.dtype,
            "case": c.index,
            "name": c.name,
            "tags": list(c.tags),
            "mode": self.mode,
            "check": self.check,
            "status": self.status,
            "verdict": self.verdict,
            "error_ulps": _num(self.error_ulps),
            "error_scale": _num(self.error_scale),
            "bound": _num(self.bound),
            "tolerance": self.tolerance.to_json() if self.tolerance else None,
            "worst_index": self.worst_index,
            "expected": self.expected,
            "observed": self.observed,
            "message": self.message,
            "reason": self.reason,
        }


def _num(x: float | None) -> float | str | None:
    if x is None:
        return None
    if x != x:
        return "nan"
    if x in (float("inf"), float("-inf")):
        return "inf" if x > 0 else "-inf"
    return float(x)


class Timeout(Exception):
    pass


class _Watchdog:
    """One daemon thread that interrupts the main thread (with SIGALRM, whose handler
    :class:`time_limit` installs) when the armed call passes its deadline. Arming and
    disarming a call are attribute writes, not system calls: the thread looks at the
    deadline every ``tick`` seconds while a :class:`time_limit` is entered."""

    tick = 0.02
    #: (grace seconds, exit code): a call still running ``grace`` seconds after it was
    #: interrupted swallowed the interruption; the process then ends with that code (an
    #: in-process run cannot go on; see :func:`abandon_after`)
    hard: tuple[float, int] | None = None

    def __init__(self) -> None:
        self.deadline: float | None = None
        self.call = 0  # the armed call's number
        self.fired = -1  # the number of the call the thread interrupted
        self.users = 0
        self.busy = threading.Event()
        self.main = threading.main_thread().ident
        threading.Thread(target=self._watch, name="lossconf-time-limit", daemon=True).start()

    def _watch(self) -> None:
        while True:
            if self.users <= 0:
                self.busy.wait()
                self.busy.clear()
                continue
            time.sleep(self.tick)
            deadline, call = self.deadline, self.call
            if deadline is not None and time.monotonic() > deadline and self.fired != call:
                self.fired = call
                signal.pthread_kill(self.main, signal.SIGALRM)  # type: ignore[arg-type]
            elif deadline is not None and self.fired == call and _Watchdog.hard is not None:
                grace, code = _Watchdog.hard
                if time.monotonic() > deadline + grace:
                    _abandon(code, grace)


_watchdog: _Watchdog | None = None


def abandon_after(grace: float | None, code: int = 6) -> None:
    """In this process from now on (until called with None): a backend call still running
    ``grace`` seconds after its time limit interrupted it (it caught the interruption and
    went on) ends the process with ``code`` and a one-line message, rather than hanging
    the run."""
    _Watchdog.hard = None if grace is None else (grace, code)


def _abandon(code: int, grace: float) -> None:
    import os
    import sys

    sys.stderr.write(
        f"lossconf: a backend call went on {grace:g} s past its time limit (it swallowed the interruption); "
        "a run in process cannot stop it and ends here without results -- run without --in-process to have "
        "it reported against its case\n"
    )
    sys.stderr.flush()
    os._exit(code)


class time_limit:
    """Interrupt the enclosed call after ``seconds`` (main thread only, where SIGALRM can
    be delivered; elsewhere, or with ``seconds <= 0``, no limit). The previous handler is
    restored on exit. Entered with ``armed=False`` it only installs the handler;
    ``arm()`` and ``disarm()`` then time each call (one installation for many calls).
    The limit is kept within ``_Watchdog.tick`` (20 ms)."""

    __slots__ = ("seconds", "old", "active", "armed", "dog", "until")

    def __init__(self, seconds: float, armed: bool = True, until: float | None = None) -> None:
        self.seconds = seconds
        self.armed = armed
        self.until = until  # a run-wide deadline (time.monotonic()) no call may pass
        self.active = (
            seconds > 0 and hasattr(signal, "pthread_kill") and hasattr(signal, "SIGALRM")
            and threading.current_thread() is threading.main_thread()
        )

    def _handler(self, signum: int, frame: Any) -> None:
        dog = self.dog
        if dog.deadline is not None and dog.fired == dog.call:  # not a late signal of a call that returned
            raise Timeout(f"the backend call did not return within {self.seconds:g} s")

    def arm(self) -> None:
        if self.active:
            dog = self.dog
            dog.call += 1
            end = time.monotonic() + self.seconds
            dog.deadline = end if self.until is None or end < self.until else self.until

    def disarm(self) -> None:
        if self.active:
            self.dog.deadline = None

    def __enter__(self) -> time_limit:
        global _watchdog
        if self.active:
            if _watchdog is None:
                _watchdog = _Watchdog()
            self.dog = _watchdog
            self.old = signal.signal(signal.SIGALRM, self._handler)
            self.dog.users += 1
            self.dog.busy.set()
            if self.armed:
                self.arm()
        return self

    def __exit__(self, *exc: object) -> bool:
        if self.active:
            self.disarm()
            self.dog.users -= 1
            signal.signal(signal.SIGALRM, self.old)
        return False


@dataclass(slots=True)
class CaseRun:
    case: FixtureCase
    mode: str = PLAIN_MODE
    unsupported: str | None = None
    outcome: Outcome | None = None
    output: np.ndarray | None = None
    grads: dict[str, np.ndarray] = field(default_factory=dict)
    error: str | None = None
    repeat_problem: str | None = None
    #: mode hvp: the Hessian-vector products returned; mode backward-twice: how the second
    #: backward's gradients differ from a single backward's (None: identical)
    hvp: dict[str, np.ndarray] = field(default_factory=dict)
    twice_problem: str | None = None
    mutated: list[str] = field(default_factory=list)
    backend_seconds: float = 0.0
    #: a failure that is never the documented rejection of an input: the worker ended or
    #: was stopped (``exit``, ``signal``, ``timeout``, ``memory``, ``flood``, ``protocol``),
    #: or the backend raised a BaseException that is not an Exception (``base``)
    fault: str | None = None
    detail: str | None = None  # the worker's traceback (faulthandler) or the backend's
    printed: str | None = None  # what the backend wrote to stdout/stderr (worker runs; truncated)
    #: the first call raised an Exception (not a crash, a time limit or a wrong return type)
    raised: bool = False
    #: between the phases of a run (:func:`prepare_run`, :func:`call_run`,
    #: :func:`finish_run`): the calls to make, whether the first returned, and the repeat
    #: call's results (output, grads)
    calls: list[Call] = field(default_factory=list, repr=False)
    returned: bool = False
    second: tuple[np.ndarray, dict[str, np.ndarray]] | None = field(default=None, repr=False)
    #: an invalid-input case: the same call on its valid control case (``case.control``),
    #: made after the case's own; what it did: None (not made), ``returned``, ``raised``
    #: (``control_error`` says what), or ``unsupported`` (``control_error`` says why)
    pending_control: Call | None = field(default=None, repr=False)
    control: str | None = None
    control_error: str | None = None


def make_call(case: FixtureCase, inputs: dict[str, np.ndarray] | None = None, mode: str = PLAIN_MODE) -> Call:
    """The call of a case in a mode: in ``forward`` (and for invalid input) nothing to
    differentiate; in ``hvp`` the direction too (:func:`direction_for`)."""
    if case.invalid is None and mode != "forward":
        wrt, ct = case.vjp_inputs, case.cotangent
    else:
        wrt, ct = (), None
    inputs = inputs if inputs is not None else case.inputs
    direction = direction_for(case, inputs) if mode == "hvp" and wrt else None
    return new_call(case.loss, dict(case.options), inputs, case.dtype, wrt, ct, mode, direction)


def control_call(case: FixtureCase, mode: str) -> Call | None:
    """The call of an invalid-input case's valid control case (``case.control``) in the
    same mode: that case's own call (its differentiable inputs and cotangent in modes that
    differentiate), a call the backend is held to anyway; None for a valid case or one
    without a control."""
    control = case.control
    if case.invalid is None or control is None:
        return None
    return make_call(control, {k: v.copy() for k, v in control.inputs.items()}, mode)


def exact_hvp(case: FixtureCase) -> dict[str, Any]:
    """The case's exact Hessian-vector products by input (``FixtureCase.hvp``, along
    ``FixtureCase.direction``); empty where the fixture has none (``no_hvp`` says why)."""
    return dict(case.hvp)


def direction_for(case: FixtureCase, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The HVP direction of a case: the fixture's (``FixtureCase.direction``), the direction
    along which its exact HVP was proven. A fixture folder without directions (an older
    format) gets ones of each differentiable input's shape and dtype: the backend's
    second-order path runs, and ``hvp:NAME`` is skipped (no exact value to hold it to)."""
    if case.direction:
        return {k: np.asarray(v) for k, v in case.direction.items()}
    return {k: np.ones_like(inputs[k]) for k in case.vjp_inputs}


def _describe_exc(err: BaseException) -> str:
    if isinstance(err, WorkerCallError):  # the worker's own words, naming what the backend raised
        return str(err)
    first = str(err).strip().splitlines()
    text = first[0] if first else ""
    if text.endswith("Traceback (most recent call last):") and len(first) > 1:
        # a C++ traceback in the message (MXNet): its last line says what failed
        where = next((ln.strip() for ln in reversed(first) if ln.strip().startswith("File ")), "")
        last = first[-1].strip()
        last = last[len(type(err).__name__) + 2:] if last.startswith(type(err).__name__ + ": ") else last
        text = text[: -len("Traceback (most recent call last):")] + last + (f" ({where})" if where else "")
    if len(text) > 300:
        text = text[:297] + "..."
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def run_case(
    backend: Backend, case: FixtureCase, timeout: float = 60.0, *, limit: time_limit | None = None, mode: str = PLAIN_MODE,
) -> CaseRun:
    """Run one case (and its repeat call), each call limited to ``timeout`` seconds; a
    ``limit`` already entered (``armed=False``) serves many cases with one handler. The
    three phases -- :func:`prepare_run`, :func:`call_run`, :func:`finish_run` -- can also
    be taken for many cases at once, so that the backend's calls follow one another with
    nothing of the harness's in between (as ``Session`` does)."""
    run = prepare_run(backend, case, mode)
    if limit is not None:
        call_run(backend, run, limit)
    else:  # (a supervisor enforces the limit on its worker itself)
        with time_limit(0 if isinstance(backend, Supervisor) else timeout, armed=False) as limit:
            call_run(backend, run, limit)
    return finish_run(run)


def prepare_run(backend: Backend, case: FixtureCase, mode: str = PLAIN_MODE) -> CaseRun:
    """A case's calls in a mode, each with inputs of its own (copies of the fixture's: a
    backend that modifies them is caught, and the second call is independent of the first),
    or why it is not run: the backend does not support it, or ``supports()`` raised. The
    second call is the repeat (the same call again) in every mode but ``backward-twice``,
    where it is the same case in mode ``grad``: the single backward on a fresh graph that
    the second backward's gradients must equal."""
    run = CaseRun(case, mode)
    inputs = case.inputs
    call = make_call(case, {k: v.copy() for k, v in inputs.items()}, mode)
    try:
        reason = backend.supports(call)
    except BaseException as err:
        if _users_interrupt(err):
            raise
        run.error = err.args[0] if isinstance(err, WorkerCallError) else f"supports() raised {_describe_exc(err)}"
        run.fault = _fault_of(err)
        return run
    if reason is not None:
        if not isinstance(reason, str) or not reason:
            raise BackendContractError(
                f"backend {_name(backend)}: supports() returned {reason!r} ({type(reason).__name__}) for "
                f"{case.test_id}; it must return None (supported) or a non-empty string (the reason it is not)"
            )
        run.unsupported = reason
        return run
    run.calls = [call]
    if case.invalid is None:  # and the repeat check's identical second call (or the fresh backward)
        second = PLAIN_MODE if mode == "backward-twice" else mode
        run.calls.append(make_call(case, {k: v.copy() for k, v in inputs.items()}, second))
        return run
    run.pending_control = control_call(case, mode)
    if run.pending_control is not None:
        try:
            reason = backend.supports(run.pending_control)
        except BaseException as err:
            if _users_interrupt(err):
                raise
            reason = f"supports() raised {_describe_exc(err)}"
        if reason is not None:
            run.control, run.control_error, run.pending_control = "unsupported", str(reason), None
    return run


def call_run(backend: Backend, run: CaseRun, limit: time_limit) -> None:
    """The backend's calls of a prepared run, each timed and under the time limit. What a
    call returns is copied at once (a backend that reuses its buffers cannot change it
    later); the repeat call is made only when the first returned a usable outcome; an
    invalid-input case's control call after the case's own, whatever that did."""
    if not run.calls:
        return
    _call_case(backend, run, limit)
    if run.pending_control is not None:
        start = time.perf_counter()
        try:
            try:
                limit.arm()
                start = time.perf_counter()
                backend.run(run.pending_control)
            finally:
                limit.disarm()
                run.backend_seconds += time.perf_counter() - start
        except BaseException as err:
            if _users_interrupt(err):
                raise
            run.control, run.control_error = "raised", _describe_exc(err)
        else:
            run.control = "returned"


def _call_case(backend: Backend, run: CaseRun, limit: time_limit) -> None:
    call = run.calls[0]
    start = time.perf_counter()
    try:
        try:
            limit.arm()
            start = time.perf_counter()  # the backend's own time, not the timer's setup
            outcome = backend.run(call)
        finally:
            limit.disarm()
    except BaseException as err:
        if _users_interrupt(err):
            raise
        run.backend_seconds = time.perf_counter() - start
        run.error = _describe_exc(err)
        run.fault = _fault_of(err)
        run.raised = run.fault is None and (not isinstance(err, WorkerCallError) or err.kind == "raised")
        if isinstance(err, WorkerCallError) and err.detail:  # (a supervisor's: the worker's traceback)
            run.detail = err.detail
        return
    run.backend_seconds = time.perf_counter() - start
    run.returned = True
    try:
        if not isinstance(outcome, Outcome):
            raise TypeError(f"run() returned a {type(outcome).__name__}, not a conformance.protocol.Outcome")
        run.outcome = outcome
        run.output = _kept(outcome.output, "the output")
        grads = outcome.grads
        for name in call.wrt:
            if name not in grads or grads[name] is None:
                continue
            run.grads[name] = _kept(grads[name], "the gradient for " + name)
    except TypeError as err:
        run.error = f"wrong return type: {err}"
        return
    if len(run.calls) < 2:
        return
    start = time.perf_counter()
    try:
        try:
            limit.arm()
            start = time.perf_counter()
            second = backend.run(run.calls[1])
        finally:
            limit.disarm()
            run.backend_seconds += time.perf_counter() - start  # the repeat is a backend call too
        grads = second.grads
        run.second = (
            _kept(second.output, "the output"),
            {name: _kept(grads[name], name) for name in run.grads if name in grads},
        )
    except BaseException as err:
        if _users_interrupt(err):
            raise
        run.repeat_problem = f"a second identical call raised {_describe_exc(err)}"
        fault = _fault_of(err)
        if fault is not None:
            run.error, run.fault = f"the repeat call: {_describe_exc(err)}", fault


def finish_run(run: CaseRun) -> CaseRun:
    """What the first call did to its inputs, and whether the repeat call gave identical
    results (both bitwise, see :func:`_same`)."""
    if run.returned and run.calls:  # (a worker's run reports what changed itself)
        original = run.case.inputs
        run.mutated = [k for k, v in run.calls[0].inputs.items() if not _same(v, original[k])]
        if run.mode == "hvp" and run.outcome is not None:
            hvp = run.outcome.hvp or {}
            try:
                run.hvp = {name: _kept(hvp[name], "the HVP for " + name) for name in run.calls[0].wrt if hvp.get(name) is not None}
            except TypeError as err:
                run.error = f"wrong return type: {err}"
    if run.mode == "backward-twice":
        return _finish_twice(run)
    if run.second is not None:
        out2, grads2 = run.second
        same = _same(out2, run.output) and all(name in grads2 and _same(grads2[name], g) for name, g in run.grads.items())
        if not same:
            run.repeat_problem = "a second identical call returned different results (state kept between calls?)"
    return run


def _finish_twice(run: CaseRun) -> CaseRun:
    """Mode backward-twice: the second backward's gradients (``run.grads``) against a
    single backward's on a fresh graph (the call in mode grad, ``run.second``), bitwise."""
    problem, run.repeat_problem = run.repeat_problem, None
    if not run.returned or run.error is not None:
        return run
    if run.second is None:
        run.twice_problem = (problem or "the single backward it is compared with did not run").replace(
            "a second identical call", "the same case in mode grad (a single backward)"
        )
        return run
    _, fresh = run.second
    differ = [name for name, g in run.grads.items() if name not in fresh or not _same(fresh[name], g)]
    missing = [name for name in fresh if name not in run.grads]
    if differ or missing:
        parts = []
        for name in differ:
            g, f = run.grads[name], fresh.get(name)
            if f is not None and f.shape == g.shape and g.size:
                with np.errstate(all="ignore"):
                    k = int(np.argmax(np.abs(g.astype(np.float64) - f.astype(np.float64)).ravel()))
                    ratio = g.ravel()[k] / f.ravel()[k] if f.ravel()[k] else float("nan")
                parts.append(
                    f"{name}: second backward {g.ravel()[k]!r} where a single backward gives {f.ravel()[k]!r} "
                    f"at flat index {k} (ratio {ratio:.6g})"
                )
            else:
                parts.append(f"{name}: differs from a single backward's")
        parts += [f"{name}: no gradient from the second backward" for name in missing]
        run.twice_problem = "the second backward on the same graph gave other gradients (state kept in the graph?): " + "; ".join(parts)
    return run


def _kept(value: Any, what: str) -> np.ndarray:
    """A backend's result as an array of the harness's own (a copy: the backend may hand
    out a buffer it writes again on its next call)."""
    return as_array(value, what).copy()


def _same(a: Any, b: Any) -> bool:
    """Bitwise identical: same shape, dtype and bytes (so nan == nan, and -0.0 != 0.0)."""
    if type(a) is not np.ndarray or type(b) is not np.ndarray:
        a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and (a.dtype is b.dtype or a.dtype == b.dtype) and a.tobytes() == b.tobytes()


def checks_for(case: FixtureCase, mode: str = PLAIN_MODE) -> tuple[str, ...]:
    """The checks of a case in a mode, in order. Modes ``grad`` and ``compiled``:
    :attr:`fixtures.FixtureCase.checks` (``invalid`` for an invalid-input case; else
    ``value``, ``shape``, ``grad:NAME`` per differentiable input, ``repeat``, ``inputs``);
    ``forward``: ``invalid``, or ``value``, ``shape``, ``repeat``, ``inputs``; ``hvp``:
    ``value``, ``shape``, ``grad:NAME``, ``hvp:NAME``, ``repeat``, ``inputs``;
    ``backward-twice``: ``value``, ``shape``, ``grad:NAME`` (the second backward's),
    ``twice``, ``inputs``. Modes hvp and backward-twice have no checks (the case is not
    run in them) for invalid input or a case with nothing to differentiate."""
    if mode == PLAIN_MODE or mode == "compiled":
        return case.checks
    return _mode_checks(case.checks, mode)


@functools.lru_cache(maxsize=4096)
def _mode_checks(checks: tuple[str, ...], mode: str) -> tuple[str, ...]:
    grads = tuple(c for c in checks if c.startswith("grad:"))
    if mode == "forward":
        return tuple(c for c in checks if not c.startswith("grad:"))
    if checks == ("invalid",) or not grads:
        return ()
    if mode == "hvp":
        return ("value", "shape", *grads, *(f"hvp:{c[5:]}" for c in grads), "repeat", "inputs")
    if mode == "backward-twice":
        return ("value", "shape", *grads, "twice", "inputs")
    raise ValueError(f"unknown mode {mode!r}")


def _inputs_label(case: FixtureCase, limit: int = 4) -> str:
    parts = []
    for k, v in case.inputs.items():
        flat = v.ravel()
        body = ", ".join(str(x) for x in flat[:limit]) + (", ..." if flat.size > limit else "")
        parts.append(f"{k}{list(v.shape)}=[{body}]")
    return "; ".join(parts)


def repeat_command(r: CheckResult, backend: str, options: Sequence[str] = ()) -> str:
    """The shell command that runs exactly this one check again: ``lossconf run BACKEND
    --case TEST_ID`` (plus ``options``, e.g. ``--fixtures DIR``), quoted for a POSIX shell."""
    return shlex.join(["lossconf", "run", backend, *options, "--case", r.test_id])


def describe_failure(r: CheckResult, backend: str | None = None, options: Sequence[str] = ()) -> str:
    """A message a person can act on: loss, options, dtype, case, worst element, inputs,
    expected, observed, error and tolerance, the fixture's note, and (given the backend as
    it was named on the command line) the command that repeats this one check."""
    c = r.case
    mode = "" if r.mode == PLAIN_MODE else f" in mode {r.mode}"
    lines = [
        f"{c.loss} [{c.options_label or 'documented defaults'}] {c.dtype} case {c.index:03d} '{c.name}' ({', '.join(c.tags)}): "
        f"{r.check}{mode} {r.verdict}",
    ]
    if r.message:
        lines.append(f"  {r.message}")
    if r.worst_index is not None:
        lines.append(f"  worst element {r.worst_index}: expected {r.expected}, observed {r.observed}")
    if r.error_scale is not None:
        tol = r.tolerance
        ulps = (
            f"{r.error_ulps:.3g} ULP (tolerance {tol.ulps:g} ULP), " if r.error_ulps is not None and tol
            else "" if r.error_ulps is None else f"{r.error_ulps:.3g} ULP, "
        )
        lines.append(f"  error {ulps}{r.error_scale:.3g} eps x scale (stability bound {r.bound:.3g}; {tol.reason if tol else ''})")
    lines.append(f"  inputs: {_inputs_label(c)}")
    if c.note:
        lines.append(f"  note: {' '.join(str(c.note).split())}")
    if backend:
        lines.append(f"  repeat: {repeat_command(r, backend, options)}")
    return "\n".join(lines)


def evaluate_check(run: CaseRun, check: str, tol: Tolerance | None = None, *, batched: bool = True) -> CheckResult:
    """The result of one check of one case run in its mode (before expectations are
    applied); ``batched=False``: the vectorised pass already declined the array (see
    :func:`compare.measure`)."""
    result = _evaluate_check(run, check, tol, batched)
    result.mode = run.mode
    return result


def _invalid_raised(run: CaseRun, rule: str) -> CheckResult:
    """An invalid-input case the backend raised on: a pass only if it returned on the valid
    control case, the same call with valid input -- else the raise says nothing about the
    input (the backend raises on every such call: an operator or dtype it lacks)."""
    case, check = run.case, "invalid"
    control = case.control
    said = f"raised for invalid input ({rule}): {run.error}"
    if control is None:
        return CheckResult(case, check, SKIP, "no control", f"not judged: {said}, but the case names no valid control case to tell a rejection of the input from a backend that raises on every call")
    name = f"{control.name} (case {control.index})"
    if run.control == "returned":
        return CheckResult(case, check, PASS, "raised", f"{said}; it returns on the valid control case {name}")
    if run.control == "unsupported":
        return CheckResult(case, check, SKIP, "unsupported", f"not judged: {said}, but the backend does not run the valid control case {name}: {run.control_error}")
    if run.control == "raised":
        return CheckResult(
            case, check, ERROR, CONTROL_RAISED,
            f"{said} -- but it raises on the valid control case {name} too ({run.control_error}): the raise does not show that it checks this input",
        )
    return CheckResult(case, check, ERROR, "error", f"{said}; its valid control case {name} was not run")


def _evaluate_check(run: CaseRun, check: str, tol: Tolerance | None, batched: bool) -> CheckResult:
    case = run.case
    tol = tol or default(case.dtype)
    if run.unsupported is not None:
        return CheckResult(case, check, SKIP, "unsupported", run.unsupported)
    if run.fault is not None:  # never the documented rejection of an input
        return CheckResult(case, check, ERROR, "error", f"the backend failed: {run.error}")
    if check == "invalid":
        rule = case.invalid["rule"] if case.invalid else ""
        if run.error is not None and not run.raised:  # supports() raised, or a wrong return type
            return CheckResult(case, check, ERROR, "error", f"the backend failed (not a rejection of the input by the call): {run.error}")
        if run.error is not None:
            return _invalid_raised(run, rule)
        shown = "" if run.output is None else np.array2string(np.asarray(run.output).ravel()[:4], precision=6)
        return CheckResult(
            case, check, FAIL, "silently returned",
            f"input the documentation rules out ({rule}) was accepted and returned {shown}",
            observed_text=shown,
        )
    if run.error is not None:
        infinite = documented_infinity(case) if run.raised else None
        if infinite is not None:
            return CheckResult(
                case, check, RAISED, RAISED_ON_INF,
                f"the backend raised where the documented value is +inf ({infinite}); a raise is not that value, "
                f"and the case's other elements are lost with it: {run.error}",
                expected="inf",
            )
        return CheckResult(case, check, ERROR, "error", f"the backend failed on valid input: {run.error}")
    if check == "shape":
        obs = run.output
        shape = case.expected_shape
        problems = []
        if obs.shape != shape:
            problems.append(f"output shape {tuple(obs.shape)}, documented {shape}")
        if obs.dtype != _DTYPES[case.dtype]:
            problems.append(f"output dtype {obs.dtype}, expected the input dtype {case.dtype}")
        for what, arrays in (("gradient", run.grads), ("HVP", run.hvp)):
            for name, g in arrays.items():
                want = case.inputs[name]
                if g.shape != want.shape:
                    problems.append(f"{what} for {name} has shape {tuple(g.shape)}, input has {want.shape}")
                elif g.dtype != want.dtype:
                    problems.append(f"{what} for {name} has dtype {g.dtype}, input has {want.dtype}")
        if problems:
            return CheckResult(case, check, FAIL, compare.FAILS, "; ".join(problems), expected=str(shape), observed_text=str(tuple(obs.shape)))
        return CheckResult(case, check, PASS, compare.CONFORMS, _shape_message(shape, case.dtype))
    if check == "repeat":
        if run.repeat_problem:
            return CheckResult(case, check, FAIL, compare.FAILS, run.repeat_problem)
        return CheckResult(case, check, PASS, compare.CONFORMS, REPEAT_PASSES)
    if check == "twice":
        if run.twice_problem:
            return CheckResult(case, check, FAIL, compare.FAILS, run.twice_problem)
        return CheckResult(case, check, PASS, compare.CONFORMS, TWICE_PASSES)
    if check.startswith("hvp:"):
        name = check[4:]
        exact = exact_hvp(case).get(name)
        if exact is None:
            return CheckResult(
                case, check, SKIP, "no exact value",
                f"not checked: the fixture carries no exact Hessian-vector product for {name} "
                f"({case.raw.get('no_hvp', 'none recorded')}); the backend's HVP was computed, not judged",
            )
        if name not in run.hvp:
            return CheckResult(case, check, FAIL, compare.FAILS, f"the backend returned no HVP for {name}")
        h = run.hvp[name]
        if h.size != exact.hi.size:
            return CheckResult(case, check, FAIL, compare.FAILS, f"HVP for {name} has {h.size} elements, expected {exact.hi.size}")
        m = compare.measure(
            h.reshape(exact.shape), exact.hi, exact.lo, case.dtype, tol, case.n_terms,
            scale=exact.scale, bounds=exact.bounds, text=exact.text, unit=exact.ulp(case.dtype), batched=batched,
        )
        return _from_measurement(case, check, m, tol)
    if check == "inputs":
        if run.mutated:
            return CheckResult(case, check, FAIL, compare.FAILS, f"the backend modified its input array(s): {', '.join(run.mutated)}")
        return CheckResult(case, check, PASS, compare.CONFORMS, INPUTS_PASS)
    exp = case.expected
    if check == "value":
        obs = run.output
        if obs.size != exp.hi.size:
            return CheckResult(case, check, FAIL, compare.FAILS, f"output has {obs.size} elements, expected {exp.hi.size} (shape {exp.shape})")
        m = compare.measure(
            obs.reshape(exp.shape), exp.hi, exp.lo, case.dtype, tol, case.n_terms,
            scale=case.scale, text=exp.text, unit=exp.ulp(case.dtype), batched=batched, roundings=exp.roundings,
        )
        return _from_measurement(case, check, m, tol)
    if check.startswith("grad:"):
        name = check[5:]
        exact = case.vjp[name]
        if name not in run.grads:
            return CheckResult(case, check, FAIL, compare.FAILS, f"the backend returned no gradient for {name}")
        g = run.grads[name]
        if g.size != exact.hi.size:
            return CheckResult(case, check, FAIL, compare.FAILS, f"gradient for {name} has {g.size} elements, expected {exact.hi.size}")
        m = compare.measure(
            g.reshape(exact.shape), exact.hi, exact.lo, case.dtype, tol, case.n_terms,
            scale=exact.scale, bounds=exact.bounds, text=exact.text, unit=exact.ulp(case.dtype), batched=batched,
            roundings=exact.roundings,
        )
        return _from_measurement(case, check, m, tol)
    raise ValueError(f"unknown check {check!r}")


_DTYPES = {d: np.dtype(d) for d in ("float16", "bfloat16", "float32", "float64")}


@functools.lru_cache(maxsize=1024)
def _shape_message(shape: tuple[int, ...], dtype: str) -> str:
    return f"shape {shape}, dtype {dtype}"


def documented_infinity(case: FixtureCase) -> str | None:
    """Where a valid case's exact value is +inf (``"element [0] of 2"``), or None: a case
    on which a raise is recorded as :data:`RAISED`, not as an error."""
    if case.invalid is not None:
        return None
    try:
        texts = list(case.expected.text)
    except Exception:
        return None
    where = [i for i, t in enumerate(texts) if str(t).strip().lstrip("+") in ("inf", "Infinity")]
    if not where:
        return None
    shown = ", ".join(str([int(j) for j in np.unravel_index(i, case.expected.shape)]) for i in where[:4])
    return f"element{'s' if len(where) > 1 else ''} {shown}{', ...' if len(where) > 4 else ''} of {len(texts)}"


def evaluate_checks(items: list[tuple[CaseRun, str, Tolerance | None]], *, batched: bool = True) -> list[CheckResult]:
    """:func:`evaluate_check` for many (run, check, tolerance) items, in order; a check the
    harness cannot evaluate is an error result, not an exception."""
    out = []
    with np.errstate(all="ignore"):
        for run, check, tol in items:
            try:
                out.append(evaluate_check(run, check, tol, batched=batched))
            except Exception as err:  # a harness bug must not hide the other results
                out.append(CheckResult(
                    run.case, check, ERROR, "error", f"lossconf could not evaluate this check: {type(err).__name__}: {err}",
                    mode=run.mode,
                ))
    return out


def _from_measurement(case: FixtureCase, check: str, m: compare.Measurement, tol: Tolerance, mode: str = PLAIN_MODE) -> CheckResult:
    status = FAIL if m.verdict == compare.FAILS else PASS
    msg = m.message
    if status == FAIL and not msg:
        msg = f"error beyond tolerance in {m.failing_elements if m.failing_elements is not None else '?'} element(s)"
    return CheckResult(
        case, check, status, m.verdict, msg, m.error_ulps, m.error_scale, m.bound, tol,
        list(m.worst_index) if m.worst_index is not None else None, m.expected,
        observed_element=m.observed_element, mode=mode,
    )


def traceback_text(err: BaseException) -> str:
    return "".join(traceback.format_exception_only(type(err), err)).strip()


# ------------------------------------------------------------------ interrupts and faults

#: set by the SIGINT handler of :class:`user_interrupts`: the user pressed Ctrl-C
_interrupt = threading.Event()
_handling = [0]


class user_interrupts:
    """While entered (main thread only): Ctrl-C raises KeyboardInterrupt as usual and is
    remembered, so that a KeyboardInterrupt a backend raises on its own is told apart from
    the user's and reported as an error of its case. Outside it, every KeyboardInterrupt
    counts as the user's."""

    def __enter__(self) -> user_interrupts:
        self.old = None
        if threading.current_thread() is threading.main_thread():
            _interrupt.clear()
            self.old = signal.signal(signal.SIGINT, self._handler)
            _handling[0] += 1
        return self

    @staticmethod
    def _handler(signum: int, frame: Any) -> None:
        _interrupt.set()
        raise KeyboardInterrupt

    def __exit__(self, *exc: object) -> bool:
        if self.old is not None:
            signal.signal(signal.SIGINT, self.old)
            _handling[0] -= 1
        return False


def interrupts_handled() -> bool:
    """Whether a :class:`user_interrupts` is entered (the CLI's run: a Ctrl-C stops the
    run and its partial results are written)."""
    return _handling[0] > 0


def _users_interrupt(err: BaseException) -> bool:
    """Whether ``err`` is the user's own Ctrl-C (to be passed on, not recorded)."""
    return isinstance(err, KeyboardInterrupt) and (_interrupt.is_set() or not _handling[0])


def _fault_of(err: BaseException) -> str | None:
    if isinstance(err, WorkerCallError):
        return None if err.kind in ("raised", "return") else err.kind
    if isinstance(err, Timeout):
        return "timeout"
    return None if isinstance(err, Exception) else "base"


def _name(backend: Backend) -> str:
    try:
        return str(backend.name)
    except Exception:
        return "?"


# ------------------------------------------------------------------ runs in a worker


def entry_for(run: CaseRun) -> Entry:
    """A case's calls as one entry for :meth:`Supervisor.run_entries`: ``supports()``, then
    the call, made twice for a valid case (the repeat check) on fresh copies of its inputs."""
    case = run.case
    times = 1 if case.invalid is not None or run.mode == "backward-twice" else 2
    return Entry(make_call(case, mode=run.mode), times, True)


def fresh_backward_entry(run: CaseRun) -> Entry | None:
    """Mode backward-twice: the entry of the same case in mode grad, a single backward on a
    fresh graph, which the second backward's gradients must equal (:func:`_finish_twice`);
    None in other modes and for invalid input."""
    if run.mode != "backward-twice" or run.case.invalid is not None:
        return None
    return Entry(make_call(run.case, mode=PLAIN_MODE), 1, False)


def apply_fresh_backward(run: CaseRun, res: EntryResult) -> None:
    """What a worker reported for :func:`fresh_backward_entry`, as ``run.second`` (or, when
    it raised, ``run.repeat_problem``, which :func:`_finish_twice` words)."""
    if not run.returned or not res.calls:
        return
    call = res.calls[0]
    if call.outcome is None:
        run.repeat_problem = f"a second identical call raised {call.error}"
        return
    grads = call.outcome.grads
    run.second = (call.outcome.output, {n: grads[n] for n in run.grads if n in grads})


def control_entry(run: CaseRun) -> Entry | None:
    """An invalid-input case's second entry: its valid control case's call
    (:func:`control_call`), after ``supports()``; None for any other case."""
    call = control_call(run.case, run.mode)
    return None if call is None else Entry(call, 1, True)


def apply_control(run: CaseRun, res: EntryResult) -> None:
    """What a worker reported for :func:`control_entry`, as ``run.control`` and
    ``run.control_error``."""
    run.backend_seconds += sum(c.seconds for c in res.calls)
    if res.unsupported is not None or res.supports_error is not None:
        run.control = "unsupported"
        run.control_error = res.unsupported if res.unsupported is not None else f"supports() raised {res.supports_error}"
    elif not res.calls:
        run.control, run.control_error = "raised", "the worker returned no result for it"
    elif res.calls[0].outcome is None and res.calls[0].kind != "return":  # (returned, if not an Outcome)
        call = res.calls[0]
        run.control = "raised"
        run.control_error = call.error if call.kind == "raised" else f"{call.error} ({call.kind})"
    else:
        run.control = "returned"


def apply_entry(run: CaseRun, res: EntryResult) -> None:
    """What a worker reported for a case's entry, into its CaseRun (as :func:`prepare_run`
    and :func:`call_run` fill it in process)."""
    run.printed = res.printed
    if res.unsupported is not None:
        run.unsupported = res.unsupported
        return
    if res.supports_error is not None:
        run.error = res.supports_error
        run.fault = None if res.supports_kind == "raised" else res.supports_kind
        return
    calls = res.calls
    run.backend_seconds = sum(c.seconds for c in calls)
    if not calls:
        run.error, run.fault = "the worker returned no result for this case", "protocol"
        return
    first = calls[0]
    if first.outcome is None:
        run.error, run.detail = first.error, first.detail or None
        run.fault = None if first.kind in ("raised", "return") else first.kind
        run.raised = first.kind == "raised"
        return
    run.returned = True
    out = first.outcome
    run.outcome = out
    run.output = out.output
    wrt = make_wrt(run.case)
    run.grads = {n: g for n, g in out.grads.items() if n in wrt}
    if run.mode == "hvp":  # (as finish_run keeps them in process)
        run.hvp = {n: h for n, h in (out.hvp or {}).items() if n in wrt and h is not None}
    run.mutated = first.mutated
    if len(calls) < 2:
        return
    second = calls[1]
    if second.outcome is None:
        run.repeat_problem = f"a second identical call raised {second.error}"
        if second.kind not in ("raised", "return"):
            run.error, run.fault, run.detail = f"the repeat call: {second.error}", second.kind, second.detail or None
        return
    grads = second.outcome.grads
    run.second = (second.outcome.output, {n: grads[n] for n in run.grads if n in grads})


def make_wrt(case: FixtureCase) -> tuple[str, ...]:
    return case.vjp_inputs if case.invalid is None else ()
