"""Live mode: check a backend on fresh inputs rather than the frozen fixtures.

For each selected loss, hypothesis draws an option variant (``oracle.cases.option_variants``),
a dtype, an input regime and a seed; the loss module's ``sample(rng, options)`` turns the
seed into valid inputs, :func:`in_regime` moves them into the regime (see ``REGIMES``: the
transformations know no loss's formula, and a draw whose inputs leave the documented domain
is rejected by the oracle, not judged), and they are rounded to the dtype exactly as
fixture inputs are (``oracle.cases.in_dtype``). Every option variant is crossed with every
regime. Each example is run in every mode the backend runs (``--mode`` selects).
The oracle evaluates the case and ``oracle.fixtures.encode_case`` encodes it as a fixture
record (cotangent from ``oracle.cases.cotangent_for``); the record, round-tripped through
JSON, becomes a ``conformance.fixtures.FixtureCase``, and the backend is run and judged by
``conformance.harness.runner.run_case`` and ``evaluate_check`` -- the fixtures' own comparison path,
tolerances and expectation files included. The harness computes no truth itself.

The first failing check stops the search and hypothesis shrinks the draw; the minimal
failing example is reported with its loss, options, dtype, inputs, cotangent and the
check's failure message. Draws the backend does not support are rejected, not failed.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import fixtures as fx
from .harness.runner import (
    ERROR,
    FAILING,
    KNOWN,
    SKIP,
    CheckResult,
    checks_for,
    describe_failure,
    evaluate_check,
    run_case,
)
from .harness.tolerance import default
from .protocol import Backend, Call, supported_modes

SEED_RANGE = 2**32

#: the input regimes a draw is moved into, the first (the sampler's own inputs) the one
#: hypothesis shrinks towards
REGIMES: dict[str, str] = {
    "regular": "the sampler's inputs as drawn",
    "extreme": "the differentiable inputs scaled by a power of two towards the dtype's largest finite value",
    "tiny": "the differentiable inputs scaled by a power of two towards the dtype's smallest subnormal",
    "kink": "every float input rounded to the dyadic grid {-2, -1.5, ..., 2}: ties, zeros and unit margins, "
    "where piecewise losses have their kinks",
    "long": "the inputs of the first differentiable input's shape tiled along their last axis to 1024-16384 "
    "terms: a long reduction, where accumulating in a low precision stagnates",
    "limit": "one element of a differentiable input set to +inf or -inf, where the documented value is a limit",
}
#: reduction lengths of the regime "long"
LONG_TERMS = (1024, 4096, 16384)


@dataclass(frozen=True)
class Draw:
    """One drawn example: the inputs are ``sample(random.Random(seed), options)`` moved into
    ``regime`` (:func:`in_regime`, with the same generator) in ``dtype``."""

    options: dict[str, Any]
    dtype: str
    seed: int
    regime: str = "regular"


class LiveFailure(AssertionError):
    """A failing check on a drawn example (what hypothesis shrinks)."""

    def __init__(self, result: CheckResult, draw: Draw) -> None:
        super().__init__(describe_failure(result))
        self.result = result
        self.draw = draw


@dataclass
class LossOutcome:
    loss: str
    examples: int = 0  # drawn examples the backend ran, up to the first failure (not shrinking)
    known: int = 0  # examples with a known deviation (--expectations)
    rejected: Counter = field(default_factory=Counter)  # why draws were rejected
    failure: LiveFailure | None = None
    first_failure_at: int | None = None
    unsupported: str | None = None  # the backend supports no draw of this loss
    flaky: bool = False  # the failure did not repeat when hypothesis replayed it
    seconds: float = 0.0
    regimes: Counter = field(default_factory=Counter)  # examples run per regime


# ----------------------------------------------------------------- one example


def cast_inputs(loss: str, inputs: dict[str, Any], dtype: str) -> dict[str, np.ndarray]:
    """Float inputs rounded to ``dtype`` (as fixture inputs are); integer inputs as int64."""
    from oracle import cases as C
    from oracle import catalog

    kinds = {i.name: i.kind for i in catalog.spec(loss).inputs}
    return {
        k: C.in_dtype(v, dtype) if kinds[k] == "float" else np.asarray(v, dtype=np.int64)
        for k, v in inputs.items()
        if v is not None
    }


def call_options(loss: str, options: dict[str, Any]) -> dict[str, Any]:
    """The options a backend is called with: documented defaults overlaid with ``options``,
    as a fixture record holds them."""
    from oracle import catalog
    from oracle.fixtures import _json_options

    return json.loads(json.dumps(_json_options(catalog.spec(loss).resolve_options(options))))


def case_from_record(loss: str, record: dict[str, Any]) -> fx.FixtureCase:
    """A fixture record as ``conformance.fixtures.load_file`` reads it."""
    return fx.FixtureCase.from_record(loss, "live", record)


def in_regime(loss: str, inputs: dict[str, Any], regime: str, rng: random.Random, dtype: str) -> dict[str, Any]:
    """The sampler's float64 ``inputs`` moved into ``regime`` (see ``REGIMES``). Only the
    spec's input kinds (float or not) and differentiable inputs are used: nothing of a
    loss's formula. The result may leave the documented domain; the oracle then rejects it."""
    from oracle import catalog

    if regime == "regular":
        return inputs
    if regime not in REGIMES:
        raise ValueError(f"unknown regime {regime!r}; regimes are {', '.join(REGIMES)}")
    spec = catalog.spec(loss)
    kinds = {i.name: i.kind for i in spec.inputs}
    floats = [k for k, v in inputs.items() if v is not None and kinds.get(k) == "float"]
    diff = [k for k in spec.differentiable if k in floats]
    out = {k: (None if v is None else np.array(v, dtype=np.float64) if k in floats else v) for k, v in inputs.items()}
    info = np.finfo(dtype)
    if regime in ("extreme", "tiny"):
        for k in diff:
            a = out[k]
            top = float(np.max(np.abs(a))) if a.size else 0.0
            if not (top and np.isfinite(top)):
                continue
            binade = math.frexp(top)[1]  # top in [2**(binade-1), 2**binade)
            if regime == "extreme":  # the largest element lands in [max / 2**10, max / 2]
                exp = math.frexp(float(info.max))[1] - binade - rng.randint(1, 10)
            else:  # the largest element lands a few binades above the smallest subnormal
                exp = math.frexp(float(info.smallest_subnormal))[1] - binade + rng.randint(4, 20)
            out[k] = np.ldexp(a, exp)
    elif regime == "kink":
        for k in floats:
            out[k] = np.clip(np.round(out[k] * 2) / 2, -2.0, 2.0)
    elif regime == "long":
        if diff:
            shape = np.shape(out[diff[0]])
            if len(shape) >= 1 and shape[-1]:
                reps = max(1, rng.choice(LONG_TERMS) // int(np.prod(shape[1:], dtype=np.int64) or 1))
                for k, v in out.items():
                    if v is not None and np.shape(v) == shape:
                        out[k] = np.concatenate([np.asarray(v)] * reps, axis=-1)
    elif regime == "limit" and diff:
        k = diff[rng.randrange(len(diff))]
        a = out[k].copy()
        if a.size:
            a.reshape(-1)[rng.randrange(a.size)] = rng.choice((np.inf, -np.inf))
            out[k] = a
    return out


def make_case(loss: str, draw: Draw, inputs: dict[str, np.ndarray]) -> fx.FixtureCase:
    """The oracle's fixture record of one drawn example, as the harness reads a fixture
    (tagged with the draw's regime). Raises ``oracle.OracleError`` if the oracle rejects the
    inputs."""
    from oracle.cases import Case
    from oracle.fixtures import encode_case

    tag = "regular" if draw.regime in ("regular", "long", "limit") else draw.regime
    case = Case(f"live-{draw.regime}-{draw.seed}", inputs, draw.dtype, dict(draw.options), tags=(tag,))
    record = json.loads(json.dumps(encode_case(loss, 0, case), allow_nan=False))
    return case_from_record(loss, record)


def check_case(
    backend: Backend, case: fx.FixtureCase, expectations: Any = None, timeout: float = 60.0, modes: tuple[str, ...] = ("grad",),
) -> list[CheckResult]:
    """Every check of one case in each of ``modes``, as
    ``conformance.harness.session.Session.check`` judges it (tolerance overrides and known
    deviations from ``expectations``)."""
    out = []
    for mode in modes:
        checks = checks_for(case, mode)
        if not checks:
            continue
        run = run_case(backend, case, timeout, mode=mode)
        for check in checks:
            tol = default(case.dtype)
            if expectations is not None:
                tol = expectations.tolerance_for(case, check, tol, mode)
            try:
                result = evaluate_check(run, check, tol)
            except Exception as err:
                result = CheckResult(
                    case, check, ERROR, "error", f"lossconf could not evaluate this check: {type(err).__name__}: {err}", mode=mode,
                )
            if run.detail and run.fault is not None and result.status == ERROR:  # the worker's traceback
                result.message += "\n  traceback:\n    " + run.detail[-3000:].replace("\n", "\n    ")
            if expectations is not None and result.status in FAILING:
                entry = expectations.deviation_for(case, check, mode, result.status)
                if entry is not None:
                    result.status, result.reason = KNOWN, entry.reason
            out.append(result)
    return out


def live_modes(backend: Backend, wanted: list[str] | None = None) -> tuple[str, ...]:
    """The modes live mode runs: ``wanted`` (all of them run by the backend, else
    ValueError naming the backend's reason), or every mode the backend runs."""
    from .protocol import MODES

    support = supported_modes(backend)
    declined = [f"--mode {m}: backend {backend.name} does not run it: {support[m]}" for m in wanted or () if support.get(m)]
    if declined:
        raise ValueError("; ".join(declined))
    return tuple(m for m in MODES if (m in wanted if wanted else support[m] is None))


def _supports(backend: Backend, loss: str, draw: Draw, inputs: dict[str, np.ndarray]) -> str | None:
    """The backend's reason for not supporting the draw (None: supported, or supports()
    raised, which ``run_case`` then reports as an error of the example)."""
    from oracle import catalog

    wrt = tuple(n for n in catalog.spec(loss).differentiable if n in inputs)
    call = Call(loss, call_options(loss, draw.options), inputs, draw.dtype, wrt, None)
    try:
        reason = backend.supports(call)
    except Exception:
        return None
    return str(reason) if reason else None


def _sample(loss: str, draw: Draw) -> dict[str, np.ndarray]:
    from oracle import catalog

    rng = random.Random(draw.seed)
    inputs = catalog.module(loss).sample(rng, dict(draw.options))
    return cast_inputs(loss, in_regime(loss, inputs, draw.regime, rng, draw.dtype), draw.dtype)


# ----------------------------------------------------------------- one loss


def supported_choices(backend: Backend, loss: str, dtypes: list[str], probes: int = 3) -> tuple[list[tuple[dict, list[str]]], Counter]:
    """The option variants and dtypes the backend supports for some of ``probes`` drawn
    inputs (so hypothesis draws no combination the backend always refuses), and the
    reasons for the others."""
    from oracle import catalog
    from oracle.cases import option_variants

    choices, reasons = [], Counter()
    for options in option_variants(catalog.spec(loss)):
        ok = []
        for dtype in dtypes:
            why = []
            for seed in range(probes):
                draw = Draw(options, dtype, seed)
                reason = _supports(backend, loss, draw, _sample(loss, draw))
                if reason is None:
                    break
                why.append(reason)
            else:
                reasons[why[0]] += 1
                continue
            ok.append(dtype)
        if ok:
            choices.append((options, ok))
    return choices, reasons


def live_loss(
    backend: Backend,
    loss: str,
    *,
    examples: int,
    seed: int,
    dtypes: list[str],
    expectations: Any = None,
    timeout: float = 60.0,
    modes: tuple[str, ...] = ("grad",),
    regimes: tuple[str, ...] = tuple(REGIMES),
) -> LossOutcome:
    """Draw ``examples`` examples of one loss with hypothesis (seeded with ``seed``) in
    ``regimes`` and check the backend on each in ``modes``; on a failure, hypothesis shrinks
    it to a minimal one."""
    from hypothesis import HealthCheck, Phase, Verbosity, given, reject, settings
    from hypothesis import seed as hypothesis_seed
    from hypothesis import strategies as st
    from hypothesis.errors import Unsatisfiable

    from oracle.errors import OracleError

    outcome = LossOutcome(loss)
    start = time.perf_counter()
    choices, reasons = supported_choices(backend, loss, dtypes)
    if not choices:
        outcome.unsupported = "; ".join(reasons) or "no option variant or dtype"
        outcome.seconds = time.perf_counter() - start
        return outcome

    @st.composite
    def draws(draw: Any) -> Draw:
        options, ok = draw(st.sampled_from(choices))  # the documented defaults first: shrinks toward them
        dtype, seed = draw(st.sampled_from(ok)), draw(st.integers(0, SEED_RANGE - 1))
        return Draw(options, dtype, seed, draw(st.sampled_from(regimes)))  # regular first

    def example(d: Draw) -> None:
        inputs = _sample(loss, d)
        reason = _supports(backend, loss, d, inputs)
        if reason is not None:
            outcome.rejected[f"unsupported: {reason}"] += 1
            reject()
        try:
            case = make_case(loss, d, inputs)
        except OracleError as err:  # rounding to the dtype (or the regime) left the documented domain
            outcome.rejected[f"the oracle rejects the {d.regime} inputs in {d.dtype}: {str(err)[:200]}"] += 1
            reject()
        results = check_case(backend, case, expectations, timeout, modes)
        if results and results[0].status == SKIP:
            outcome.rejected[f"unsupported: {results[0].message}"] += 1
            reject()
        searching = outcome.first_failure_at is None  # not yet shrinking
        if searching:
            outcome.examples += 1
            outcome.known += any(r.status == KNOWN for r in results)
            outcome.regimes[d.regime] += 1
        for r in results:
            if r.status in FAILING:
                if searching:
                    outcome.first_failure_at = outcome.examples
                raise LiveFailure(r, d)

    test = hypothesis_seed(seed)(
        settings(
            max_examples=examples,
            database=None,
            deadline=None,
            phases=(Phase.generate, Phase.shrink),
            report_multiple_bugs=False,
            suppress_health_check=list(HealthCheck),
            verbosity=Verbosity.quiet,
            print_blob=False,
        )(given(draws())(example))
    )
    try:
        test()
    except LiveFailure as err:
        outcome.failure = err
    except Unsatisfiable:
        outcome.unsupported = "every drawn example was rejected: " + "; ".join(r for r, _ in outcome.rejected.most_common(3))
    except BaseExceptionGroup as group:  # hypothesis's FlakyFailure: the failure did not repeat
        found = group.subgroup(lambda e: isinstance(e, LiveFailure))
        if found is None:
            raise
        while isinstance(found, BaseExceptionGroup):
            found = found.exceptions[0]
        outcome.failure, outcome.flaky = found, True
    outcome.seconds = time.perf_counter() - start
    return outcome


# ----------------------------------------------------------------- reporting


def _array(name: str, a: np.ndarray) -> str:
    head = f"    {name}{list(a.shape)} = "
    body = np.array2string(a, separator=", ", threshold=10**6, max_line_width=110, floatmode="unique", prefix=head)
    return f"{head}{body}" + ("" if a.dtype.kind in "iu" else f"  ({a.dtype})")


def format_failure(outcome: LossOutcome, command: str) -> str:
    """The minimal failing example of a loss, in one block."""
    from oracle import catalog

    f = outcome.failure
    assert f is not None
    r, case = f.result, f.result.case
    sampler = f"{catalog.module(case.loss).__name__}.sample(random.Random({f.draw.seed}), {dict(f.draw.options)!r})"
    lines = [
        f"{case.short_loss}: minimal failing example (first failure after {outcome.first_failure_at} example(s); shrunk by hypothesis)"
        + (" -- it did not repeat when replayed: does the backend keep state between calls?" if outcome.flaky else ""),
        f"  loss:      {case.loss}",
        f"  options:   {case.options_label or 'documented defaults'}"
        + (" (the others documented defaults)" if case.options_label else ""),
        f"  dtype:     {case.dtype}",
        f"  mode:      {r.mode}",
        f"  check:     {r.check} ({r.verdict})",
        f"  regime:    {f.draw.regime} ({REGIMES[f.draw.regime]})",
        f"  inputs:    {sampler}"
        + ("" if f.draw.regime == "regular" else ", moved into the regime by conformance.live.in_regime with the same generator")
        + f", rounded to {case.dtype}:",
        *(_array(k, v) for k, v in case.inputs.items()),
    ]
    if case.invalid is None:
        lines.append(_array("cotangent", case.cotangent))
    lines += ["  " + ln for ln in describe_failure(r).splitlines() if not ln.lstrip().startswith("inputs:")]
    lines.append(f"  reproduce: {command}")
    return "\n".join(lines)


def format_line(outcome: LossOutcome) -> str:
    name = outcome.loss.rsplit(".", 1)[-1]
    if outcome.unsupported is not None:
        what = f"unsupported: {outcome.unsupported}"
    elif outcome.failure is not None:
        f = outcome.failure.result
        where = f.check if f.mode == "grad" else f"{f.check} in mode {f.mode}"
        what = f"FAILS {where} (first failure after {outcome.first_failure_at} example(s); minimal example below)"
    else:
        what = f"{outcome.examples} examples conform"
        if outcome.known:
            what += f" ({outcome.known} with known deviations)"
        if outcome.regimes and set(outcome.regimes) != {"regular"}:
            what += " (" + ", ".join(f"{n} {r}" for r, n in sorted(outcome.regimes.items(), key=lambda x: list(REGIMES).index(x[0]))) + ")"
    rejected = sum(outcome.rejected.values())
    if rejected and outcome.unsupported is None:
        what += f", {rejected} draw(s) rejected"
    return f"{name:<30} {what}  [{outcome.seconds:.1f} s]"


# ----------------------------------------------------------------- command


def _command(args: argparse.Namespace, loss: str, seed: int) -> str:
    parts = ["lossconf live", args.backend, "--loss", loss.rsplit(".", 1)[-1], "--seed", str(seed), "--examples", str(args.examples)]
    for d in args.dtype or []:
        parts += ["--dtype", d]
    for opt in ("mode", "regime"):
        for v in getattr(args, opt, None) or []:
            parts += [f"--{opt}", v]
    if args.expectations:
        parts += ["--expectations", args.expectations]
    return " ".join(parts)


def main(args: argparse.Namespace) -> int:
    """``lossconf live``: 0 every drawn example conforms (known deviations included), 1 a
    check failed (the minimal example is shown), 3 the backend, expectations or
    hypothesis cannot be used, 4 an unknown loss or nothing the backend supports."""
    from .backends import BackendError
    from .harness import expectations as ex
    from .harness.session import open_backend

    def err(msg: str, code: int) -> int:
        print(f"lossconf: {msg}", file=sys.stderr)
        return code

    try:
        import hypothesis  # noqa: F401
    except ImportError:
        return err("lossconf live needs hypothesis, which is missing from this environment: pip install 'lossconf[live]' (or 'hypothesis>=6.80')", 3)
    from oracle import catalog
    from oracle.errors import UnknownLossError

    try:
        losses = list(dict.fromkeys(catalog.resolve(x) for x in args.loss)) if args.loss else catalog.loss_ids()
    except UnknownLossError as e:
        return err(str(e), 4)
    try:
        backend, expectations = open_backend(
            args.backend, args.expectations, in_process=getattr(args, "in_process", True),
            call_timeout=getattr(args, "call_timeout", 60.0),
        )
    except (BackendError, ex.ExpectationError) as e:
        return err(str(e), 3)
    try:
        return _live(args, backend, expectations, losses)
    finally:
        close = getattr(backend, "close", None)
        if close is not None and not getattr(args, "in_process", True):
            close()


def _live(args: argparse.Namespace, backend: Backend, expectations: Any, losses: list[str]) -> int:
    from oracle.cases import DTYPES

    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(SEED_RANGE)
    dtypes = list(dict.fromkeys(args.dtype)) if args.dtype else list(DTYPES)
    try:
        modes = live_modes(backend, getattr(args, "mode", None))
    except ValueError as e:
        print(f"lossconf: {e}", file=sys.stderr)
        return 4
    regimes = tuple(dict.fromkeys(getattr(args, "regime", None) or REGIMES))

    start = time.perf_counter()
    print(
        f"lossconf live: backend {backend.name} {backend.version} -- {args.examples} examples per loss, "
        f"dtypes {'/'.join(dtypes)}, modes {'/'.join(modes)}, regimes {'/'.join(regimes)}, seed {seed}",
        flush=True,
    )
    outcomes = []
    for loss in losses:
        outcome = live_loss(
            backend, loss, examples=args.examples, seed=seed, dtypes=dtypes,
            expectations=expectations, timeout=getattr(args, "call_timeout", 60.0), modes=modes, regimes=regimes,
        )
        outcomes.append(outcome)
        print(format_line(outcome), flush=True)
    failed = [o for o in outcomes if o.failure is not None]
    for o in failed:
        print()
        print(format_failure(o, _command(args, o.loss, seed)))
    checked = sum(o.examples for o in outcomes)
    print(
        f"\n{checked} examples checked, {len(failed)} loss(es) failing, "
        f"{sum(o.unsupported is not None for o in outcomes)} unsupported, in {time.perf_counter() - start:.1f} s (seed {seed})"
    )
    if failed:
        return 1
    if checked == 0:
        print(f"lossconf: backend {backend.name} supports none of the drawn examples of the selected losses and dtypes", file=sys.stderr)
        return 4
    return 0
