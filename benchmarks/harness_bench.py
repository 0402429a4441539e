"""Harness figures for the numpy backend over every fixture case and every check.

Each repetition measures, back to back so that both see the same machine:

* the backend's calls alone: the same ``run`` calls the harness makes (twice per valid
  case -- the first call and the repeat check's --, once per invalid case) in a bare
  loop, without loading, comparison or bookkeeping;
* one in-process run through :class:`conformance.harness.session.Session` (what ``lossconf run``
  and the pytest plugin drive): total wall time from opening the fixtures to the last
  result, and the backend's own call time within it (``Session.backend_seconds()``).

The issue's target is the total at most 1.5x the backend's calls alone (the harness's own
time at most half of the backend's). The ratios are printed -- total over the bare loop,
and total over the backend's time inside the run -- per repetition, as best and median,
and the fastest run over the fastest bare loop (timing noise only adds time, so on a
machine whose speed drifts the two minima are the least disturbed figures).

Every run reads, checks and decodes the fixture files (there is no decoded-fixtures cache
since session 4: a cache entry could not be proven to match its file). Last, the real
command ``lossconf run numpy`` in a subprocess (interpreter start and imports included),
against the 30 s wall target.

    python benchmarks/harness_bench.py                  # three repetitions
    python benchmarks/harness_bench.py --repeat 9       # best and median of nine
    python benchmarks/harness_bench.py --profile 25     # and cProfile's top 25 of a run
    python benchmarks/harness_bench.py --variants       # also `lossconf run --pytest`

The figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import resource
import statistics
import subprocess
import sys
import time
import warnings
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from conformance import fixtures as fx  # noqa: E402
from conformance.backends import load_backend  # noqa: E402
from conformance.harness.runner import make_call  # noqa: E402
from conformance.harness.session import Filters, Session  # noqa: E402

TARGET_WALL = 30.0
TARGET_RATIO = 1.5

#: pytest plugins that cost time per run or per item and that a conformance run does not need
LEAN_PYTEST = ["-p", "no:hypothesispytest", "--assert=plain", "-p", "no:logging"]


def in_process(backend_name: str, directory: Path | None) -> dict:
    """One Session over every case and check, timed in phases."""
    backend = load_backend(backend_name)
    filters = Filters()
    t0 = time.perf_counter()
    session = Session.open(backend, directory, filters, None, 60.0)
    t1 = time.perf_counter()
    session.run_all(filters)
    t2 = time.perf_counter()
    statuses: dict[str, int] = {}
    for r in session.results:
        statuses[r.status] = statuses.get(r.status, 0) + 1
    return {
        "load": t1 - t0,
        "checks": t2 - t1,
        "total": t2 - t0,
        "backend": session.backend_seconds(),
        "cases": len(session.cases),
        "items": len(session.results),
        "statuses": statuses,
    }


def bare_calls(backend_name: str, directory: Path | None) -> list:
    """The calls the harness makes, prepared once: every valid case twice (first call and
    the repeat check's call), every invalid case once."""
    backend = load_backend(backend_name)
    calls = []
    for case in fx.load(directory):
        call = make_call(case, {k: v.copy() for k, v in case.inputs.items()})
        if backend.supports(call):
            continue
        calls.append(call)
        if case.invalid is None:
            calls.append(make_call(case, {k: v.copy() for k, v in case.inputs.items()}))
    return calls


def backend_alone(backend_name: str, calls: list) -> float:
    """The calls in a bare loop, each on input arrays of its own (copied before the clock
    starts): the harness, too, gives every call fresh arrays (so that a backend that
    modifies them is caught and the repeat call is independent), and a backend is a
    little slower on arrays it has not seen than on the same arrays again and again."""
    backend = load_backend(backend_name)
    calls = [replace(call, inputs={k: v.copy() for k, v in call.inputs.items()}) for call in calls]
    start = time.perf_counter()
    for call in calls:
        try:
            backend.run(call)
        except Exception:  # invalid input: the backend is expected to raise
            pass
    return time.perf_counter() - start


def cli_run(backend_name: str, extra: list[str]) -> tuple[float, float, int, str]:
    """``lossconf run NAME`` in a fresh interpreter: (wall s, CPU s, exit code, total line);
    with ``extra``, ``lossconf run --pytest NAME -- EXTRA``."""
    cmd = [sys.executable, "-m", "conformance.cli", "run", backend_name]
    if extra:
        cmd = [*cmd[:-1], "--pytest", backend_name, "--", *extra]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    total = next((line for line in proc.stdout.splitlines() if line.startswith("total ")), "")
    return wall, cpu, proc.returncode, " ".join(total.split())


def summarize(values: list[float], unit: str = " s") -> str:
    if len(values) == 1:
        return f"{values[0]:.3f}{unit}"
    return f"best {min(values):.3f}{unit}, median {statistics.median(values):.3f}{unit}"


def verdict(values: list[float]) -> str:
    return "met" if statistics.median(values) <= TARGET_RATIO else "MISSED"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backend", default="numpy", help="backend to measure (default numpy)")
    ap.add_argument("--fixtures", help="fixtures directory (default: the checkout's fixtures/)")
    ap.add_argument("--repeat", type=int, default=3, help="repetitions (default 3)")
    ap.add_argument("--profile", type=int, metavar="N", default=0, help="print cProfile's top N functions of an in-process run")
    ap.add_argument("--variants", action="store_true", help="also time `lossconf run --pytest` (with " + " ".join(LEAN_PYTEST) + ")")
    ap.add_argument("--no-subprocess", action="store_true", help="skip the `lossconf run` measurement")
    args = ap.parse_args(argv)
    directory = Path(args.fixtures) if args.fixtures else fx.default_dir()
    warnings.simplefilter("ignore")  # the backend's own overflow warnings on extreme cases

    print(f"machine: {os.cpu_count()} cores, load average {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    start = time.perf_counter()
    load_backend(args.backend)  # import it once, outside every timed run
    print(f"importing the {args.backend} backend: {time.perf_counter() - start:.3f} s (not in the figures below)")

    calls = bare_calls(args.backend, directory)
    runs, alone = [], []
    for _ in range(args.repeat):
        alone.append(backend_alone(args.backend, calls))
        runs.append(in_process(args.backend, directory))
    r = min(runs, key=lambda x: x["total"])
    by_alone = [x["total"] / a for x, a in zip(runs, alone)]
    by_inside = [x["total"] / x["backend"] for x in runs]
    print(f"\n[1] in process (Session): {r['cases']} cases, {r['items']} checks, "
          f"statuses {r['statuses']}")
    print(f"    total {summarize([x['total'] for x in runs])}  (fastest: fixtures {r['load']:.3f} s, "
          f"checks {r['checks']:.3f} s)")
    print(f"    the backend's calls alone, bare loop ({len(calls)} calls): {summarize(alone)}")
    print(f"    the backend's calls inside the run (Session.backend_seconds): {summarize([x['backend'] for x in runs])}")
    print(f"    total / calls alone: {summarize(by_alone, 'x')}; target <= {TARGET_RATIO}x (median): {verdict(by_alone)}")
    print(f"    total / calls inside the run: {summarize(by_inside, 'x')}; (median): {verdict(by_inside)}")
    fastest = min(x["total"] for x in runs) / min(alone)
    print(f"    fastest run / fastest bare loop: {fastest:.3f}x (timing noise only adds time, so the two minima "
          f"are the least disturbed figures): {'met' if fastest <= TARGET_RATIO else 'MISSED'}")

    if not args.no_subprocess:
        variants = [("lossconf run " + args.backend, [])]
        if args.variants:
            variants.append((f"lossconf run --pytest {args.backend} -- {' '.join(LEAN_PYTEST)}", LEAN_PYTEST))
        for label, extra in variants:
            res = [cli_run(args.backend, extra) for _ in range(args.repeat)]
            walls = [w for w, _, _, _ in res]
            cpus = [c for _, c, _, _ in res]
            code, total = res[0][2], res[0][3]
            print(f"\n[3] `{label}`: exit {code}; {total}")
            print(f"    wall {summarize(walls)}, CPU {summarize(cpus)}; target <= {TARGET_WALL:.0f} s wall: "
                  f"{'met' if min(walls) <= TARGET_WALL else 'MISSED'}")

    if args.profile:
        prof = cProfile.Profile()
        prof.enable()
        in_process(args.backend, directory)
        prof.disable()
        out = io.StringIO()
        pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(args.profile)
        print("\n[profile] in-process run, by own time:")
        print(out.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main())
