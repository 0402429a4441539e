"""Harness figures for the numpy backend over every fixture case and every check.

1. In process, through :class:`conformance.session.Session` (what the pytest plugin drives,
   without pytest): total wall time, the backend's own call time
   (``Session.backend_seconds()``: every ``run`` call, the repeat check's second call
   included) and the harness overhead ratio total / backend.
2. The backend's calls alone: the same ``run`` calls (twice per valid case, as the harness
   makes them) in a bare loop, without loading, comparison or bookkeeping.
3. The real command, ``lossconf run numpy``, in a subprocess: wall and CPU time, which
   include interpreter start, pytest collection and one pytest item per case and check.

    python benchmarks/harness_bench.py                  # all three, once
    python benchmarks/harness_bench.py --repeat 3       # best and median of three
    python benchmarks/harness_bench.py --profile 25     # and cProfile's top 25 of (1)
    python benchmarks/harness_bench.py --variants       # (3) also with pytest plugins off

Issue targets: ``lossconf run numpy`` <= 30 s wall on the 2-core machine; total <= 1.5x the
backend's calls alone. The figures are printed, never asserted.
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
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from conformance import fixtures as fx  # noqa: E402
from conformance.backends import load_backend  # noqa: E402
from conformance.runner import make_call  # noqa: E402
from conformance.session import Filters, Session  # noqa: E402

TARGET_WALL = 30.0
TARGET_RATIO = 1.5

#: pytest plugins that cost time per run or per item and that a conformance run does not need
LEAN_PYTEST = ["-p", "no:hypothesispytest", "--assert=plain", "-p", "no:logging"]


def in_process(backend_name: str, directory: Path | None) -> dict:
    """One Session over every case and check, timed in phases."""
    t0 = time.perf_counter()
    backend = load_backend(backend_name)
    t1 = time.perf_counter()
    filters = Filters()
    session = Session.open(backend, directory, filters, None, 60.0)
    t2 = time.perf_counter()
    session.run_all(filters)
    t3 = time.perf_counter()
    statuses: dict[str, int] = {}
    for r in session.results:
        statuses[r.status] = statuses.get(r.status, 0) + 1
    return {
        "load_backend": t1 - t0,
        "load_fixtures": t2 - t1,
        "checks": t3 - t2,
        "total": t3 - t0,
        "backend": session.backend_seconds(),
        "cases": len(session.cases),
        "items": len(session.results),
        "statuses": statuses,
    }


def backend_alone(backend_name: str, directory: Path | None) -> tuple[float, int]:
    """The backend's calls in a bare loop: every valid case twice (first call and the
    repeat check's call), every invalid case once. Returns (seconds, calls)."""
    backend = load_backend(backend_name)
    cases = fx.load(directory)
    calls = []
    for case in cases:
        call = make_call(case, {k: v.copy() for k, v in case.inputs.items()})
        if backend.supports(call):
            continue
        calls.append(call)
        if case.invalid is None:
            calls.append(make_call(case, {k: v.copy() for k, v in case.inputs.items()}))
    start = time.perf_counter()
    for call in calls:
        try:
            backend.run(call)
        except Exception:  # invalid input: the backend is expected to raise
            pass
    return time.perf_counter() - start, len(calls)


def cli_run(backend_name: str, extra: list[str]) -> tuple[float, float, int, str]:
    """``lossconf run NAME`` in a fresh interpreter: (wall s, CPU s, exit code, total line)."""
    cmd = [sys.executable, "-m", "conformance.cli", "run", backend_name]
    if extra:
        cmd += ["--", *extra]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    total = next((line for line in proc.stdout.splitlines() if line.startswith("total ")), "")
    return wall, cpu, proc.returncode, " ".join(total.split())


def summarize(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.3f} s"
    return f"best {min(values):.3f} s, median {statistics.median(values):.3f} s"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backend", default="numpy", help="backend to measure (default numpy)")
    ap.add_argument("--fixtures", help="fixtures directory (default: the checkout's fixtures/)")
    ap.add_argument("--repeat", type=int, default=1, help="repeat each measurement (default 1)")
    ap.add_argument("--profile", type=int, metavar="N", default=0, help="print cProfile's top N functions of the in-process run")
    ap.add_argument("--variants", action="store_true", help=f"also time `lossconf run` with {' '.join(LEAN_PYTEST)}")
    ap.add_argument("--no-subprocess", action="store_true", help="skip the `lossconf run` measurement")
    args = ap.parse_args(argv)
    directory = Path(args.fixtures) if args.fixtures else None
    warnings.simplefilter("ignore")  # the backend's own overflow warnings on extreme cases

    print(f"machine: {os.cpu_count()} cores, load average {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    start = time.perf_counter()
    load_backend(args.backend)  # import it once, outside every timed run
    print(f"importing the {args.backend} backend: {time.perf_counter() - start:.3f} s (not in the figures below)")
    runs = [in_process(args.backend, directory) for _ in range(args.repeat)]
    r = min(runs, key=lambda x: x["total"])
    print(f"\n[1] in process (Session): {r['cases']} cases, {r['items']} checks, statuses {r['statuses']}")
    print(f"    total {summarize([x['total'] for x in runs])}  (fixtures load {r['load_fixtures']:.3f} s, "
          f"checks {r['checks']:.3f} s)")
    print(f"    backend calls (Session.backend_seconds): {summarize([x['backend'] for x in runs])}")
    ratios = [x["total"] / x["backend"] for x in runs]
    ratios_checks = [x["checks"] / x["backend"] for x in runs]
    print(f"    overhead ratio total / backend: {summarize(ratios).replace(' s', 'x')}  "
          f"(checks phase only: {min(ratios_checks):.2f}x); target <= {TARGET_RATIO}x: "
          f"{'met' if min(ratios) <= TARGET_RATIO else 'MISSED'}")

    alone = [backend_alone(args.backend, directory) for _ in range(args.repeat)]
    a = min(t for t, _ in alone)
    print(f"\n[2] the backend's calls alone ({alone[0][1]} calls in a bare loop): {summarize([t for t, _ in alone])}")
    print(f"    in-process total / calls alone: {r['total'] / a:.2f}x")

    if not args.no_subprocess:
        variants = [("lossconf run " + args.backend, [])]
        if args.variants:
            variants.append((f"lossconf run {args.backend} -- {' '.join(LEAN_PYTEST)}", LEAN_PYTEST))
        for label, extra in variants:
            res = [cli_run(args.backend, extra) for _ in range(args.repeat)]
            walls = [w for w, _, _, _ in res]
            cpus = [c for _, c, _, _ in res]
            code, total = res[0][2], res[0][3]
            print(f"\n[3] `{label}`: exit {code}; {total}")
            print(f"    wall {summarize(walls)}, CPU {summarize(cpus)}; target <= {TARGET_WALL:.0f} s wall: "
                  f"{'met' if min(walls) <= TARGET_WALL else 'MISSED'}")
            print(f"    wall / backend calls alone: {min(walls) / a:.1f}x")

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
