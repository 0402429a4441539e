"""``lossconf``: the command line front of the oracle, the fixtures, the harness and the
reports. ``lossconf --help`` and ``lossconf COMMAND --help`` explain every option."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any

MAIN_EXAMPLE = """examples:
  lossconf report                      run the numpy backend and write reports/ (the main job)
  lossconf run numpy                   check the numpy backend against every fixture
  lossconf run mypkg.mod:backend --loss L2Loss --dtype float32
  lossconf cases --loss L2Loss --tag extreme   list cases (the same filters as run)
  lossconf show 'L2Loss[]-float32-extreme-020' show one case: inputs, options, expected values
  lossconf run numpy --case 'L2Loss[]-float32-extreme-020'   run just that case
  lossconf live numpy                  check the numpy backend on fresh inputs drawn by hypothesis
  lossconf spec                        print the spec table
  lossconf guide                       print the guide to writing a backend
  lossconf fixtures generate           regenerate fixtures/ from the oracle
  lossconf fixtures verify --recompute check digests, schema, and re-derive a sample
  lossconf fixtures verify --all       regenerate every case and compare every field
  lossconf diff old.json new.json      gate CI on regressions
  lossconf map results-*.json -o MIGRATION.md   the migration map: each loss's call per framework
"""


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return value


def _seconds(text: str) -> float:
    value = _positive(text)
    if not value <= 1e6:  # also rejects inf: setitimer cannot take it
        raise argparse.ArgumentTypeError(f"expected seconds in (0, 1e6], got {text!r}")
    return value


def _at_least_one(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


def _err(msg: str, code: int = 2) -> int:
    print(f"lossconf: {msg}", file=sys.stderr)
    return code


def _why(err: OSError) -> str:
    """An OSError in a few words (``Permission denied``, ``Not a directory: 'x'``)."""
    text = err.strerror or type(err).__name__
    return f"{text}: {err.filename!r}" if err.filename else text


def _unwritable_file(path: str) -> str | None:
    """Why a file cannot be written at ``path`` (its folder made if need be), or None; a
    file that did not exist is not left behind."""
    target = Path(path)
    existed = target.exists()
    try:
        if target.is_dir():
            return "it is a directory"
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "a"):
            pass
        if not existed:
            target.unlink()
    except OSError as err:
        return _why(err)
    return None


def _unwritable_dir(path: str) -> str | None:
    """Why files cannot be written into the folder ``path`` (made if need be), or None."""
    import tempfile

    try:
        Path(path).mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as err:
        return _why(err)
    return None


def cmd_spec(args: argparse.Namespace) -> int:
    from oracle.spec_table import render_markdown

    text = render_markdown()
    if args.output:
        try:
            Path(args.output).parent.mkdir(parents=True, exist_ok=True)
            Path(args.output).write_text(text)
        except OSError as err:
            return _err(f"cannot write the spec table to {args.output}: {_why(err)}")
        print(f"spec table written to {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def _resolve_losses(names: list[str] | None) -> list[str] | None:
    """The documented ids of the losses ``--loss`` names, each once in the order given
    (None: every loss); an unknown name raises ``UnknownLossError``."""
    from oracle import catalog

    return list(dict.fromkeys(catalog.resolve(x) for x in names)) if names else None


def cmd_fixtures_generate(args: argparse.Namespace) -> int:
    from oracle import fixtures
    from oracle.errors import OracleError, UnknownLossError

    try:
        losses = _resolve_losses(args.loss)
    except UnknownLossError as err:
        return _err(str(err))
    why = _unwritable_dir(args.out)
    if why:
        return _err(f"cannot write the fixtures into {args.out}: {why}")
    start = time.perf_counter()
    bar = _Progress(0, args.quiet, "fixtures")
    try:
        digests = fixtures.generate(Path(args.out), losses, jobs=args.jobs, progress=bar.to)
    except OSError as err:
        return _err(f"cannot write the fixtures into {args.out}: {_why(err)}")
    except OracleError as err:  # a value that cannot be proven within the precision cap
        return _err(str(err))
    finally:
        bar.close()
    written = [fixtures.file_name(x) for x in losses] if losses else list(digests)
    size = sum((Path(args.out) / n).stat().st_size for n in written)
    print(f"wrote {len(written)} fixture file{'' if len(written) == 1 else 's'} ({size / 1e6:.2f} MB) to {args.out} in {time.perf_counter() - start:.1f} s")
    if args.coverage:
        from oracle.coverage import write_coverage

        write_coverage(Path(args.out))
        print(f"coverage table written to {Path(args.out) / 'COVERAGE.md'}")
    return 0


def cmd_fixtures_verify(args: argparse.Namespace) -> int:
    from conformance import fixtures as fx
    from oracle.errors import UnknownLossError
    from oracle.fixtures import file_name

    directory = Path(args.dir) if args.dir else fx.default_dir()
    if not directory.is_dir():
        return _err(f"fixtures: directory {directory} does not exist or is not a directory (--dir DIR, or LOSSCONF_FIXTURES)", 3)
    try:
        losses = _resolve_losses(args.loss)
        chosen = {file_name(x) for x in losses} if losses else None
    except UnknownLossError as err:
        return _err(str(err))
    files: dict[str, bytes] = {}
    problems = [str(p) for p in fx.verify(directory, files=files)]
    for p in problems:
        print(f"FAIL {p}")
    derived = files if chosen is None else {name: data for name, data in files.items() if name in chosen}
    if not problems and args.all:
        problems = _regenerate_and_compare(directory, files, derived, args)
    elif not problems and args.recompute:
        from oracle.fixtures import recompute

        bar = _Progress(len(derived), args.quiet, "re-deriving", unit="file")
        try:
            problems = recompute(directory, sample=args.sample, files=derived, progress=lambda m: bar(1))
        finally:
            bar.close()
        for p in problems:
            print(f"FAIL {p}")
    if problems:
        print(f"{len(problems)} problem(s) in {directory}")
        return 1
    what = "every case regenerated and identical; " if args.all else ""
    print(f"fixtures in {directory}: {what}digests, schema and contents verified")
    return 0


def _regenerate_and_compare(directory: Path, files: dict[str, bytes], derived: dict[str, bytes], args: argparse.Namespace) -> list[str]:
    """``verify --all``: every fixture file of ``derived`` (every file, or those of the
    losses --loss names) regenerated and compared byte for byte (every field of every case),
    every case re-derived at the verification precision, and the manifest compared with what
    the generator writes for all the files; on all cores, with progress on stderr."""
    import hashlib

    from conformance import fixtures as fx
    from oracle import fixtures as gen

    catalog = fx.catalog_files()
    work = {name: (catalog[name], data) for name, data in derived.items()}
    bar = _Progress(len(work), args.quiet, "regenerating", unit="file")
    try:
        problems = gen.compare_all_with_fresh(work, jobs=args.jobs, progress=lambda name, done, total: bar(1))
    finally:
        bar.close()
    digests = {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}
    cases = {name: fx.case_digests(data) for name, data in files.items()}
    schema = hashlib.sha256(fx.read_file(directory, fx.SCHEMA_FILE)).hexdigest()
    if fx.read_file(directory, fx.MANIFEST_FILE).decode("utf-8", "replace") != gen.manifest_text(digests, cases, schema):
        problems.append(f"{fx.MANIFEST_FILE}: differs from what the generator writes for these files")
    for p in problems:
        print(f"FAIL {p}")
    return problems


def pytest_args(args: argparse.Namespace) -> list[str]:
    # `lossconf run` loads only its own plugin (third-party pytest plugins cost seconds of
    # start-up and assert rewriting; `pytest --pyargs conformance` still loads them all)
    out = ["--pyargs", "conformance", "--backend", args.backend, "-p", "no:cacheprovider", "--assert=plain"]
    # per-item machinery the conformance checks do not use (they catch what they need)
    out += ["-p", "no:warnings", "-p", "no:logging", "-p", "no:faulthandler"]
    out += ["-p", "no:unraisableexception", "-p", "no:threadexception"]
    out += ["-p", "conformance.plugin"]
    for opt, flag in (("fixtures", "--fixtures-dir"), ("results", "--results"), ("expectations", "--expectations")):
        if getattr(args, opt, None):
            out += [flag, str(getattr(args, opt))]
    if args.strict_expectations:
        out.append("--strict-expectations")
    for opt in ("loss", "dtype", "tag", "check", "case", "mode"):
        for v in getattr(args, opt, None) or []:
            out += [f"--{opt}", v]
    out += ["--call-timeout", str(args.call_timeout)]
    out += ["-q", "-rfE", "--tb=short"] if args.verbose else ["-qq", "--tb=no"]
    return out + list(args.pytest_args or [])


#: the exit codes of ``lossconf run`` (also in ``lossconf run --help``)
EXIT_PASSED, EXIT_FAILED, EXIT_USAGE, EXIT_UNUSABLE, EXIT_FILTER, EXIT_EMPTY, EXIT_STOPPED, EXIT_INTERRUPTED = 0, 1, 2, 3, 4, 5, 6, 130
RUN_EXIT_CODES = """exit codes:
  0    every check ran passed (or is a known deviation listed in --expectations)
  1    a check failed or errored (a crash, exit, hang or memory/output overrun of the
       backend is an error of the case it was on), or was raised (the backend raised
       where the documented value is +inf; an expectation entry with outcome = "raised"
       lists it); with --strict-expectations, also a listed deviation that no longer occurs
  2    bad command line
  3    the backend, the fixtures or the expectations cannot be used (the backend cannot
       be loaded or named, its supports() returned something other than None or a
       reason string, its worker cannot start)
  4    a filter names something the fixtures do not have, or selects no check
  5    no check ran: every selected check was skipped (unsupported); --allow-empty
       accepts such a run (exit 0)
  6    the run stopped before its end: at --max-time (the results written are partial,
       marked incomplete), or, with --in-process only, a backend call that went on past
       its time limit (no results)
  130  the run was interrupted (Ctrl-C); the results written are partial, marked incomplete
"""


class _Progress:
    """Progress of a run's cases on stderr: a tqdm bar on a terminal, a plain line every
    ``every`` seconds otherwise, nothing when quiet."""

    def __init__(self, total: int, quiet: bool, label: str, every: float = 10.0, unit: str = "case") -> None:
        self.total, self.done, self.every, self.unit = total, 0, every, unit
        self.bar = None
        self.quiet = quiet
        self.label = label
        self.start = self.last = time.monotonic()
        if not quiet and sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=label, unit=unit, file=sys.stderr, leave=False, mininterval=0.25)

    def __call__(self, n: int) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
        elif not self.quiet:
            now = time.monotonic()
            if now - self.last >= self.every:
                self.last = now
                print(f"lossconf: {self.label}: {self.done}/{self.total} {self.unit}s ({now - self.start:.0f} s)", file=sys.stderr, flush=True)

    def to(self, done: int, total: int) -> None:
        """``done`` of ``total`` (a total known only once the work is listed)."""
        self.total = total
        if self.bar is not None:
            self.bar.total = total
        self(done - self.done)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _run_direct(args: argparse.Namespace) -> int:
    """``lossconf run`` without pytest: the same Session, messages, summary, results file
    and exit codes as the pytest plugin drives, at a fraction of the per-check cost. The
    backend runs in a supervised worker process unless ``--in-process``."""
    from conformance.backends import BackendError
    from conformance.harness import expectations as ex
    from conformance.harness.session import open_backend
    from conformance.worker.supervisor import Supervisor

    supervisor = None
    try:
        if args.in_process:
            from conformance.harness.runner import abandon_after

            abandon_after(max(5.0, args.call_timeout), EXIT_STOPPED)
            backend, exp = open_backend(args.backend, args.expectations)
        else:
            backend = supervisor = Supervisor(
                args.backend, call_timeout=args.call_timeout, memory_mb=args.memory_limit, output_mb=args.output_limit,
            )
            supervisor.start()  # it loads the backend while the fixtures are read
            exp = ex.load(args.expectations) if args.expectations else None
    except (BackendError, ex.ExpectationError) as err:
        return _err(str(err), EXIT_UNUSABLE)
    try:
        return _run_session(args, backend, exp)
    except KeyboardInterrupt:  # before the calls began (e.g. while the fixtures were read)
        return _err("interrupted before any check ran", EXIT_INTERRUPTED)
    finally:
        if supervisor is not None:
            supervisor.close()
        else:
            from conformance.harness.runner import abandon_after

            abandon_after(None)


def _run_session(args: argparse.Namespace, backend: Any, exp: Any) -> int:
    """The run itself (the backend open): its calls, failures, summary, results, exit code."""
    import warnings

    from conformance import fixtures as fx
    from conformance.backends import BackendError
    from conformance.harness import expectations as ex
    from conformance.harness.runner import FAILING, RAISED, SKIP, describe_failure, user_interrupts
    from conformance.harness.session import (
        INTERRUPTED,
        FilterError,
        Filters,
        Session,
        backend_identity,
        format_summary,
    )

    filters = Filters(
        args.loss or [], args.dtype or [], args.tag or [], args.check or [], args.case or [], getattr(args, "mode", None) or []
    )
    repeat = _repeat_options(args)
    try:
        session = Session.open(backend, Path(args.fixtures) if args.fixtures else None, filters, exp, args.call_timeout)
    except BackendError as err:
        return _err(str(err), 3)
    except fx.FixtureError as err:
        return _err(f"fixtures: {err}", EXIT_UNUSABLE)
    except FilterError as err:
        return _err(str(err), EXIT_FILTER)
    except ex.ExpectationError as err:
        return _err(str(err), EXIT_UNUSABLE)
    try:
        backend_identity(backend)
    except BackendError as err:
        return _err(str(err), EXIT_UNUSABLE)
    if args.max_time:
        session.deadline = time.monotonic() + args.max_time
    progress = _Progress(len(session.cases) * len(session.modes), args.quiet, f"{args.backend}")
    session.progress = progress
    try:
        with warnings.catch_warnings(), user_interrupts():
            warnings.simplefilter("ignore")  # a backend's overflow warnings on extreme cases
            session.run_all(filters)
    except BackendError as err:  # e.g. supports() broke the protocol: reported once
        progress.close()
        return _err(str(err), EXIT_UNUSABLE)
    except KeyboardInterrupt:  # after the calls (the Session stops them itself)
        session.stopped = INTERRUPTED
    finally:
        progress.close()
    shown = 0
    limit = None if args.verbose else 10
    for r in session.results:
        if r.status in FAILING:
            shown += 1
            if not args.quiet and (limit is None or shown <= limit):
                print(f"{'RAISED' if r.status == RAISED else 'FAILED'} {r.test_id}\n{describe_failure(r, args.backend, repeat)}")
    if not args.quiet and limit is not None and shown > limit:
        print(f"... and {shown - limit} more failure(s); -v shows every one")
    if not args.quiet:
        print("=" * 20 + " lossconf summary " + "=" * 20)
        for line in format_summary(session):
            print(line)
    if args.results:
        try:
            session.write(Path(args.results))
        except OSError as err:
            return _err(f"cannot write the results file {args.results}: {err.strerror}", EXIT_UNUSABLE)
        if not args.quiet:
            print(f"results written to {args.results}" + ("" if session.stopped is None else " (partial: the run is incomplete)"))
    if session.stopped is not None:
        run = len(session.cases) - len(session.not_run)
        _err(f"the run is incomplete: {session.stopped}, after {run} of {len(session.cases)} case(s)", 0)
        return EXIT_INTERRUPTED if session.stopped == INTERRUPTED else EXIT_STOPPED
    if shown:
        return EXIT_FAILED
    if exp is not None and args.strict_expectations and session.unused_expectations():
        return EXIT_FAILED
    if not args.allow_empty and all(r.status == SKIP for r in session.results):
        return _err(
            f"no check ran: the backend skipped all {len(session.results)} selected check(s) of "
            f"{len(session.cases)} case(s) (unsupported); --allow-empty accepts such a run",
            EXIT_EMPTY,
        )
    return EXIT_PASSED


def cmd_run(args: argparse.Namespace) -> int:
    import os

    if args.pytest_args and not args.pytest:
        return _err("arguments after -- are passed to pytest only with --pytest (`lossconf run --pytest NAME -- ARGS`)", 2)
    if args.results:  # fail now, with one line, rather than after the whole run
        target = Path(args.results)
        existed = target.exists()
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(target, "a"):
                pass
        except OSError as err:
            return _err(f"cannot write the results file {args.results}: {err.strerror}")
        if not existed:
            target.unlink()

    if not args.pytest:
        return _run_direct(args)
    import pytest

    os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    code = int(pytest.main(pytest_args(args)))
    if code == int(pytest.ExitCode.NO_TESTS_COLLECTED):
        return _err("no check was selected (the pytest arguments after -- deselected every check)", 4)
    return code


def _repeat_options(args: argparse.Namespace) -> list[str]:
    """The options of this run that a command repeating one of its checks must keep."""
    out: list[str] = []
    for opt in ("fixtures", "expectations"):
        if getattr(args, opt, None):
            out += [f"--{opt}", str(getattr(args, opt))]
    return out


def _emit(lines: list[str]) -> int:
    """Print the output of ``cases``/``show``; a reader that closes the pipe early (``| head``)
    ends it quietly, without a traceback."""
    import os

    try:
        sys.stdout.write("".join(line + "\n" for line in lines))
        sys.stdout.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
    return 0


def _selected_cases(args: argparse.Namespace, patterns: list[str]) -> tuple[list, Path] | int:
    """The fixture cases the filters of ``lossconf cases``/``show`` select, or an exit code
    (3: the fixtures cannot be read; 4: a filter names nothing or selects nothing)."""
    from conformance import fixtures as fx
    from conformance.harness.session import Filters

    directory = Path(args.fixtures) if args.fixtures else fx.default_dir()
    filters = Filters(args.loss or [], args.dtype or [], args.tag or [], args.check or [], patterns)
    try:
        every = fx.load(directory)
    except fx.FixtureError as err:
        return _err(f"fixtures: {err}", 3)
    problems = filters.problems(every)
    if problems:
        return _err("; ".join(problems), 4)
    picked = [
        (c, [chk for chk in c.checks if filters.keep_check(chk, c)]) for c in every if filters.keep_case(c)
    ]
    picked = [(c, checks) for c, checks in picked if checks]
    if not picked:
        return _err("the filters select no case: " + filters.describe(), 4)
    return picked, directory


def cmd_cases(args: argparse.Namespace) -> int:
    got = _selected_cases(args, args.case or [])
    if isinstance(got, int):
        return got
    picked, _ = got
    if args.json:
        doc = [
            {"id": c.test_id, "loss": c.loss, "file": c.file, "index": c.index, "name": c.name, "dtype": c.dtype,
             "tags": list(c.tags), "options": {k: c.options[k] for k in c.given_options}, "checks": checks}
            for c, checks in picked
        ]
        return _emit([json.dumps(doc, indent=1)])
    if args.checks:
        return _emit([f"{c.test_id}-{chk}" for c, checks in picked for chk in checks])
    width = max(len(c.test_id) for c, _ in picked)
    lines = [f"{c.test_id:<{width}}  {c.name}  ({', '.join(c.tags)})  {' '.join(checks)}" for c, checks in picked]
    n_checks = sum(len(x) for _, x in picked)
    lines.append(f"{len(picked)} case(s), {n_checks} check(s); `lossconf show ID` shows one, `lossconf run BACKEND --case ID` runs it")
    return _emit(lines)


def cmd_show(args: argparse.Namespace) -> int:
    from conformance import fixtures as fx

    got = _selected_cases(args, [args.case])
    if isinstance(got, int):
        return got
    picked, directory = got
    exact = [(c, k) for c, k in picked if args.case.lower() in (c.test_id.lower(), *(f"{c.test_id}-{x}".lower() for x in k))]
    if len(picked) > 1 and len(exact) == 1:
        picked = exact
    if len(picked) > 1:
        ids = ", ".join(c.test_id for c, _ in picked[:8]) + (", ..." if len(picked) > 8 else "")
        return _err(
            f"{args.case!r} matches {len(picked)} cases ({ids}); give one test id "
            f"(`lossconf cases --case {args.case}` lists them) or narrow with --loss/--dtype", 4,
        )
    case, checks = picked[0]
    record = fx.expanded_record(json.loads(fx.case_lines((directory / case.file).read_bytes())[case.index]))  # runs expanded: every element shown
    shown = {
        "id": case.test_id, "loss": case.loss, "file": case.file, "index": case.index, "name": case.name,
        "dtype": case.dtype, "tags": list(case.tags), "note": case.note,
        "given_options": list(case.given_options), "options": case.options, "checks": list(case.checks),
        "inputs": record.get("inputs"), "cotangent": record.get("cotangent"), "expected": record.get("expected"),
        "vjp": record.get("vjp"), "invalid": record.get("invalid"),
    }
    if args.json:
        return _emit([json.dumps(shown, indent=1)])
    return _emit(_show_lines(shown))


def _show_lines(c: dict) -> list[str]:
    """``lossconf show``'s text: everything a backend author needs to reproduce a case."""

    def arr(a: dict | None, indent: str = "    ") -> list[str]:
        if a is None:
            return [indent + "(none)"]
        data = a.get("data", a.get("value"))
        head = f"{a.get('dtype', 'exact')} shape {tuple(a['shape'])}"
        return [indent + head + ": [" + ", ".join(map(str, data)) + "]"]

    given = [k for k in c["given_options"]]
    defaults = [k for k in c["options"] if k not in given]
    out = [
        f"{c['id']}",
        f"  loss:      {c['loss']}  (case {c['index']:03d} '{c['name']}' of fixtures/{c['file']})",
        f"  dtype:     {c['dtype']}",
        f"  tags:      {', '.join(c['tags'])}",
        "  options:   " + (", ".join(f"{k}={json.dumps(c['options'][k])}" for k in given) or "(none set)")
        + ("; documented defaults: " + ", ".join(f"{k}={json.dumps(c['options'][k])}" for k in defaults) if defaults else ""),
        "  (call.options holds all of them)",
    ]
    if c["note"]:
        out.append(f"  note:      {c['note']}")
    out.append("  inputs (call.inputs):")
    for name, a in (c["inputs"] or {}).items():
        out += [f"    {name}:"] + arr(a, "      ")
    if c["invalid"]:
        out.append(f"  invalid input: {c['invalid'].get('rule')}")
        out.append("    the backend should raise; returning a number is a failure of the `invalid` check")
        out.append(f"    and it should return on the valid control case {c['invalid'].get('control')} (the same call with valid input)")
        if c["invalid"].get("oracle_error"):
            out.append(f"    the oracle says: {c['invalid']['oracle_error']}")
    else:
        e = c["expected"] or {}
        out.append("  cotangent (call.cotangent, output-shaped; the VJP's vector):")
        out += arr(c["cotangent"], "    ")
        out.append(f"  expected value (exact; output shape {tuple(e.get('shape', ()))}):")
        out += arr(e, "    ")
        if e.get("rounded"):
            out.append(f"    rounded to {c['dtype']}: [" + ", ".join(e["rounded"]) + "]")
        for name, v in (c["vjp"] or {}).items():
            out.append(f"  expected VJP for {name} (exact; check grad:{name}):")
            out += arr(v, "    ")
            for side in ("lo", "hi"):
                if v.get(side):
                    out.append(f"    one-sided bound {side} (at a kink any value in [lo, hi] passes): [" + ", ".join(map(str, v[side])) + "]")
    out.append(f"  checks:    {' '.join(c['checks'])}")
    out.append(f"  run it:    lossconf run BACKEND --case {shlex.quote(c['id'])}")
    return out


def cmd_guide(args: argparse.Namespace) -> int:
    from conformance import fixtures as fx
    from conformance import guide

    try:
        text = guide.render()
    except fx.FixtureError as err:
        return _err(f"fixtures: {err}", 3)
    if not args.output:
        return _emit([text.removesuffix("\n")])
    try:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(text, encoding="utf-8")
    except OSError as err:
        return _err(f"cannot write the guide to {args.output}: {err.strerror}")
    print(f"guide written to {args.output}", file=sys.stderr)
    return 0


def cmd_live(args: argparse.Namespace) -> int:
    from conformance import live

    return live.main(args)


def cmd_report(args: argparse.Namespace) -> int:
    from conformance import report

    why = _unwritable_dir(args.out)  # fail now, with one line, rather than after the runs
    if why:
        return _err(f"cannot write the reports into {args.out}: {why}")
    try:
        return report.main(args)
    except OSError as err:
        return _err(f"report: cannot write into {args.out}: {_why(err)}")


def cmd_map(args: argparse.Namespace) -> int:
    from conformance.report import migration

    return migration.main(args)


def cmd_diff(args: argparse.Namespace) -> int:
    from conformance import diff

    if args.markdown:  # fail now, with one line, rather than after the comparison
        why = _unwritable_file(args.markdown)
        if why:
            return _err(f"cannot write the Markdown comparison to {args.markdown}: {why}")
    try:
        return diff.main(args)
    except OSError as err:
        return _err(f"diff: {_why(err)}")


def _add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--fixtures", help="fixtures directory (default: the checkout's fixtures/)")
    p.add_argument("--expectations", help="expectation file of known deviations (TOML)")
    p.add_argument("--strict-expectations", action="store_true", help="fail when a listed deviation no longer occurs")
    p.add_argument("--loss", action="append", help="only this loss: documented id, short name or alias (repeatable)")
    p.add_argument("--dtype", action="append", choices=("float16", "bfloat16", "float32", "float64"), help="only this dtype (repeatable)")
    p.add_argument(
        "--tag", action="append",
        help="only cases with this tag: regular, extreme, tiny, boundary, kink, singular, tie, label, shape, invalid (repeatable)",
    )
    p.add_argument(
        "--check", action="append",
        help="only this check: value, shape, grad (every input) or grad:NAME, repeat, inputs, invalid, "
        "twice, hvp or hvp:NAME (repeatable)",
    )
    p.add_argument(
        "--mode", action="append", choices=("forward", "grad", "compiled", "hvp", "backward-twice"),
        help="only this mode (repeatable; default: every mode the backend runs): forward (no gradient recording), "
        "grad, compiled (the framework's graph/JIT path), hvp (second order), backward-twice (the same graph "
        "differentiated twice)",
    )
    p.add_argument("--call-timeout", type=_seconds, default=60.0, help="seconds allowed per backend call (default 60)")


def _add_worker_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--in-process", action="store_true",
        help="run the backend in this process (for debugging and profiling): a crash, exit or hang of the "
        "backend then ends or stalls the run instead of being reported against its case",
    )
    p.add_argument("--max-time", type=_seconds, help="seconds allowed for the whole run; then it stops with partial results (exit 6)")
    p.add_argument("--allow-empty", action="store_true", help="exit 0 (not 5) when every selected check was skipped")
    p.add_argument(
        "--memory-limit", type=_positive, default=4096.0, metavar="MB",
        help="the worker's memory (resident set) limit in MB; a case that passes it is an error (default 4096)",
    )
    p.add_argument(
        "--output-limit", type=_positive, default=64.0, metavar="MB",
        help="MB a backend may write to its stdout/stderr on one case; beyond, the case is an error (default 64)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors (no progress, failures or summary)")


CASE_HELP = (
    "only checks whose test id (e.g. 'L2Loss[]-float32-extreme-020-value') or case name (e.g. extreme-float32) "
    "matches PATTERN, like pytest's -k: case-insensitive, matched where a word starts, * and ? wildcards; "
    "a whole test id selects that one case or check (repeatable: any of them)"
)


def _add_selection_options(p: argparse.ArgumentParser) -> None:
    """The filters of ``lossconf run``, for the commands that look at cases."""
    p.add_argument("--fixtures", help="fixtures directory (default: the checkout's fixtures/)")
    p.add_argument("--loss", action="append", help="only this loss: documented id, short name or alias (repeatable)")
    p.add_argument("--dtype", action="append", choices=("float16", "bfloat16", "float32", "float64"), help="only this dtype (repeatable)")
    p.add_argument("--tag", action="append", help="only cases with this tag: regular, extreme, tiny, boundary, kink, singular, tie, label, shape, invalid (repeatable)")
    p.add_argument("--check", action="append", help="only cases with this check: value, shape, grad or grad:NAME, repeat, inputs, invalid (repeatable)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lossconf",
        description="Conformance suite and exact reference oracle for deep-learning loss functions.",
        epilog=MAIN_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser(
        "spec",
        help="print the spec table (losses, options, defaults, documented ambiguities)",
        description=(
            "Print the spec table generated from the oracle's catalog: every loss, its documented "
            "options with defaults and valid values, its inputs (differentiable ones marked), the "
            "output shape, and every documented ambiguity with the quoted text and the reading chosen. "
            "Exit codes: 0 written, 2 the output file cannot be written."
        ),
    )
    p.add_argument("-o", "--output", help="write Markdown to this file instead of stdout")
    p.set_defaults(func=cmd_spec)

    pf = sub.add_parser("fixtures", help="generate or verify the golden fixtures")
    fsub = pf.add_subparsers(dest="fixtures_command", metavar="ACTION")
    g = fsub.add_parser("generate", help="write fixtures/ from the oracle (deterministic, parallel)")
    g.add_argument("--out", default="fixtures", help="output directory (default: fixtures)")
    g.add_argument("--loss", action="append", help="only this loss (repeatable); the manifest keeps the others")
    g.add_argument("--jobs", type=int, default=None, help="worker processes (default: all cores)")
    g.add_argument("--no-coverage", dest="coverage", action="store_false", help="do not write COVERAGE.md")
    g.add_argument("-q", "--quiet", action="store_true", help="no progress display")
    g.set_defaults(func=cmd_fixtures_generate)
    v = fsub.add_parser(
        "verify",
        help="check digests, schema and contents; optionally regenerate and compare every case",
        description=(
            "Check a fixtures folder: the manifest lists schema.json and a file for every loss of the catalog, "
            "each a regular file inside the folder within the size limit and with its SHA-256; schema.json is "
            "the packaged schema; every file is JSON within the loader's limits (no NaN token, number strings "
            "of at most 512 characters, bounded nesting), matches the schema and loads. --recompute re-derives "
            "a sample of cases at a higher precision; --all regenerates every file and compares every field of "
            "every case byte for byte, re-derives every case, and compares the manifest with what the generator "
            "writes. Exit codes: 0 verified, 1 a problem found (each FAIL line names the file and case), "
            "2 usage, 3 the folder does not exist."
        ),
    )
    v.add_argument("--dir", help="fixtures directory (default: the checkout's fixtures/)")
    v.add_argument("--recompute", action="store_true", help="re-derive a sample of cases at a higher precision")
    v.add_argument("--sample", type=_at_least_one, default=3, help="cases per loss to re-derive with --recompute (default 3)")
    v.add_argument(
        "--all", action="store_true",
        help="regenerate every case and compare every field byte for byte; re-derive every case (slow: all cores)",
    )
    v.add_argument("--jobs", type=_at_least_one, default=None, help="worker processes for --all (default: all cores)")
    v.add_argument(
        "--loss", action="append",
        help="with --all or --recompute: re-derive only this loss's file (repeatable; the plain checks and the "
        "manifest still cover every file). A whole --all takes many minutes since the 16384-term long cases",
    )
    v.add_argument("-q", "--quiet", action="store_true", help="no progress display")
    v.set_defaults(func=cmd_fixtures_verify)
    pf.set_defaults(func=lambda a: (pf.print_help(), 2)[1])

    r = sub.add_parser(
        "run",
        help="check a backend against the fixtures",
        description=(
            "Check a backend against every fixture case it supports: value, output shape and dtype, "
            "the VJP of every differentiable input, repeat (no state between calls), inputs unchanged, "
            "and whether input the documentation rules out is rejected. The backend runs in a worker process "
            "driven over the wire protocol (docs/WIRE.md): a crash, exit, hang, or memory or output overrun is "
            "reported against the case it was on, the worker is started again and the run goes on. Its own "
            "stdout and stderr are captured per case and shown in that case's failure. With --pytest the "
            "checks run as pytest items in process and arguments after -- go to pytest."
        ),
        epilog=RUN_EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    r.add_argument("backend", help="numpy, mxnet, chainer, an entry point name, or module:attribute")
    r.add_argument("--results", help="write the results JSON here")
    _add_run_options(r)
    r.add_argument("--case", action="append", metavar="PATTERN", help=CASE_HELP)
    _add_worker_options(r)
    r.add_argument("-v", "--verbose", action="store_true", help="show every failure in full")
    r.add_argument("--pytest", action="store_true", help="run the checks as pytest items (one per case and check; slower); arguments after -- go to pytest")
    r.set_defaults(func=cmd_run, pytest_args=[])

    cs = sub.add_parser(
        "cases",
        help="list the fixture cases (the same filters as run)",
        description=(
            "List the fixture cases that `lossconf run` with the same filters would check: one line per case "
            "with its test id, name, tags and checks. `lossconf show ID` shows one case; "
            "`lossconf run BACKEND --case ID` runs it. Exit codes: 0 listed, 3 the fixtures cannot be read, "
            "4 a filter names something the fixtures do not have or selects nothing."
        ),
    )
    _add_selection_options(cs)
    cs.add_argument("--case", action="append", metavar="PATTERN", help=CASE_HELP)
    cs.add_argument("--checks", action="store_true", help="one line per check: the test ids `lossconf run` prints")
    cs.add_argument("--json", action="store_true", help="print the list as JSON")
    cs.set_defaults(func=cmd_cases)

    sh = sub.add_parser(
        "show",
        help="show one fixture case: inputs, options, cotangent, expected values, tags, note",
        description=(
            "Show everything a backend author needs to reproduce one fixture case: the loss, the options the "
            "case sets and the documented defaults (call.options holds both), the inputs by their documented "
            "names with dtypes and shapes (call.inputs), the cotangent of the VJP (call.cotangent), the exact "
            "expected value and VJPs, the tags, the fixture's note, and the command that runs it. "
            "Exit codes: 0 shown, 3 the fixtures cannot be read, 4 CASE matches no case or several."
        ),
    )
    sh.add_argument("case", metavar="CASE", help="a test id as `lossconf run` or `lossconf cases` prints it (a check's id works too), or a pattern that selects one case")
    _add_selection_options(sh)
    sh.add_argument("--json", action="store_true", help="print the case as JSON (the fixture's own encoding of numbers)")
    sh.set_defaults(func=cmd_show)

    gd = sub.add_parser(
        "guide",
        help="print the 'writing a backend' guide (docs/WRITING_A_BACKEND.md), generated",
        description=(
            "Print the guide to writing a backend, generated from the catalog, the fixtures and a run of its "
            "worked example (so it cannot drift): the call's fields and conventions, one table per loss "
            "(inputs, dtypes, shapes, sample_weight shapes, options and defaults, invalid input to reject), "
            "how to read a failure, expectation entries. docs/WRITING_A_BACKEND.md is the committed copy."
        ),
    )
    gd.add_argument("-o", "--output", help="write Markdown to this file instead of stdout")
    gd.set_defaults(func=cmd_guide)

    lv = sub.add_parser(
        "live",
        help="check a backend on fresh inputs drawn by hypothesis and evaluated by the oracle",
        description=(
            "Check a backend on fresh inputs instead of the fixtures: for each loss, hypothesis draws an "
            "option variant, a dtype, an input regime and a seed for the loss's sampler; the oracle evaluates the "
            "exact value and VJP, and every check of `lossconf run` (value, shape, grad, repeat, inputs; twice, hvp) "
            "judges the backend in every mode it runs, with the same tolerances. A failing example is shrunk and shown in full (loss, options, dtype, "
            "inputs, cotangent). Draws the backend does not support are rejected. Exit codes: 0 every example "
            "conforms (or is a known deviation), 1 a check failed, 3 the backend or expectations could not be "
            "used, 4 an unknown loss or nothing the backend supports."
        ),
    )
    lv.add_argument("backend", help="numpy, mxnet, chainer, an entry point name, or module:attribute")
    lv.add_argument("--loss", action="append", help="only this loss: documented id, short name or alias (repeatable; default: every loss)")
    lv.add_argument("--examples", type=_at_least_one, default=50, help="examples drawn per loss (default 50)")
    lv.add_argument("--seed", type=int, help="hypothesis seed, for a repeatable run (default: a random one, printed)")
    lv.add_argument("--dtype", action="append", choices=("float16", "bfloat16", "float32", "float64"), help="only this dtype (repeatable)")
    lv.add_argument("--expectations", help="expectation file of known deviations (TOML)")
    lv.add_argument("--call-timeout", type=_seconds, default=60.0, help="seconds allowed per backend call (default 60)")
    lv.add_argument(
        "--in-process", action="store_true",
        help="run the backend in this process (debugging, profiling); by default it runs in a supervised "
        "worker, where a crash, exit or hang is a failing example instead of the end of the run",
    )
    lv.add_argument(
        "--mode", action="append", choices=("forward", "grad", "compiled", "hvp", "backward-twice"),
        help="only this mode (repeatable; default: every mode the backend runs)",
    )
    lv.add_argument(
        "--regime", action="append", choices=("regular", "extreme", "tiny", "kink", "long", "limit"),
        help="only draws of this input regime (repeatable; default: all): regular (the sampler's inputs), extreme "
        "(differentiable inputs scaled towards the dtype's max), tiny (towards its smallest subnormal), kink (inputs "
        "on a coarse dyadic grid: ties, zeros, margins), long (a reduction axis tiled to 1024-16384 terms), limit "
        "(an element of a differentiable input set to +-inf)",
    )
    lv.set_defaults(func=cmd_live)

    rep = sub.add_parser(
        "report",
        help="render HTML, Markdown and merged JSON reports from results files",
        description=(
            "Render reports/index.html (self-contained; it leads with every backend's failing checks grouped "
            "by cause, then the known deviations by root cause, then the matrix loss x option set x dtype with "
            "pass counts and a legend, then the details: cross-framework table, invalid-input table folded by "
            "loss, ULP histograms, error by value regime, drill-down), and last the migration map (as lossconf map "
            "writes it), reports/summary.md (for a CI job summary) "
            "and reports/report.json (merged results). With no results files, run the backends first (default: numpy). "
            "Exit codes: 0 written, 2 a results file cannot be read or the output folder cannot be written."
        ),
    )
    rep.add_argument("results", nargs="*", help="results JSON files (default: run the numpy backend first)")
    rep.add_argument("--out", default="reports", help="output directory (default: reports)")
    rep.add_argument("--backend", action="append", help="with no results given: a backend to run first (repeatable; default: numpy)")
    rep.add_argument("--fixtures", help="fixtures directory for the runs")
    rep.set_defaults(func=cmd_report)

    mp = sub.add_parser(
        "map",
        help="the migration map (Markdown): each documented loss's call per framework and whether it conforms",
        description=(
            "Write the migration map as Markdown, from results files only: for every documented loss and option "
            "set, the call each backend uses (from the mapping its results record) and, per dtype and mode "
            "(a record without a mode ran in mode grad), whether it conforms, with each deviation's cause: the "
            "known deviation's reason, the failure's message, or the skip reason; a loss a framework has no "
            "counterpart for is shown as such. The HTML report (lossconf report) has the same map as a section. "
            "Exit codes: 0 written, 2 a results file cannot be read."
        ),
    )
    mp.add_argument("results", nargs="+", help="results JSON files (lossconf run --results) or report.json, one column per backend")
    mp.add_argument("-o", "--output", help="write the Markdown to this file (default: standard output)")
    mp.set_defaults(func=cmd_map)

    d = sub.add_parser(
        "diff",
        help="compare two results files; exit 1 on a regression",
        description=(
            "Compare two results files (or two report.json) check by check. A regression is: a check "
            "that passed (or was a known deviation, or unsupported) and now fails, errors or raises where "
            "the documented value is +inf, including "
            "invalid input that raised and is now silently returned; an error that grew by more than "
            "--factor over max(old error, 1 ULP), or became inf/nan; a check no longer supported; a "
            "check that ran before and is missing now (unless --allow-removed). "
            "Exit codes: 0 no regression, 1 regression, 2 an input cannot be read, is a results file marked "
            "incomplete (a run stopped at --max-time or by Ctrl-C), or the Markdown cannot be written."
        ),
    )
    d.add_argument("old", help="baseline results JSON")
    d.add_argument("new", help="new results JSON")
    d.add_argument("--factor", type=_positive, default=4.0, help="an error that grew by more than this factor is a regression (default 4)")
    d.add_argument("--allow-removed", action="store_true", help="checks missing from NEW are reported, not counted as regressions")
    d.add_argument("--markdown", help="also write the comparison as Markdown here")
    d.set_defaults(func=cmd_diff)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in argv:  # everything after -- goes to pytest (lossconf run)
        at = argv.index("--")
        argv, extra = argv[:at], argv[at + 1 :]
    args = parser.parse_args(argv)
    if extra:
        if getattr(args, "func", None) is not cmd_run:
            parser.error("arguments after -- are only for `lossconf run` (they go to pytest)")
        args.pytest_args = extra
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    code = int(args.func(args) or 0)
    _leave_if_threads_linger(code)
    return code


def _leave_if_threads_linger(code: int) -> None:
    """A thread a backend left running (not a daemon) would keep this process alive after
    the summary: say so and end now, with the run's exit code."""
    import os
    import threading

    lingering = [t.name for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon and t.is_alive()]
    if lingering:
        print(f"lossconf: ending despite {len(lingering)} thread(s) the backend left running ({', '.join(lingering[:3])})", file=sys.stderr)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
