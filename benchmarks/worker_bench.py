"""The numpy run over the worker (the default of ``lossconf run``) against the bare loop.

Each repetition measures, back to back so that all see the same machine:

* the backend's calls alone in a bare loop (``harness_bench.backend_alone``: the same 2092
  calls the harness makes, on arrays of their own);
* one run through :class:`conformance.harness.session.Session` with the backend in its
  worker, the worker started and ready before the clock starts (as the in-process figure
  of ``harness_bench.py`` leaves out importing the backend: starting a worker is an
  interpreter start plus that import) -- from opening the fixtures to the last result;
* the same with the worker's start inside the clock (started when the run starts, so its
  start overlaps with opening the fixtures, as ``lossconf run`` does it);
* the same with one worker kept from run to run (its code paths warm, as the bare loop's
  and the in-process run's are from the second repetition on);
* one in-process run (``--in-process``), for comparison.

The issue's target: the whole numpy run over the worker within 2x of the bare loop. The
ratios are printed per repetition (median) and as the fastest run over the fastest bare
loop. Last, the real ``lossconf run numpy`` in a subprocess, with and without
``--in-process``.

    python benchmarks/worker_bench.py --repeat 7
    python benchmarks/worker_bench.py --batch 16     # entries per frame (default 64)

The figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from harness_bench import backend_alone, bare_calls, summarize  # noqa: E402

from conformance import fixtures as fx  # noqa: E402
from conformance.backends import load_backend  # noqa: E402
from conformance.harness.session import Filters, Session  # noqa: E402
from conformance.worker.supervisor import Supervisor  # noqa: E402

TARGET = 2.0


def over_worker(name: str, directory: Path, batch: int, started: bool, sup: Supervisor | None = None) -> dict:
    """One Session over every case and check with the backend in a worker; ``started``:
    the worker is ready before the clock starts; ``sup``: a worker kept from run to run
    (warm, as the in-process backend and the bare loop are), not closed here."""
    keep = sup is not None
    sup = sup or Supervisor(name, batch=batch)
    try:
        if started:
            sup.ready()
        filters = Filters()
        w0 = _cpu(sup.worker.proc.pid) if sup.worker is not None else 0.0
        c0 = time.process_time()
        t0 = time.perf_counter()
        sup.start()
        session = Session.open(sup, directory, filters, None, 60.0)
        sup.ready()
        session.run_all(filters)
        total = time.perf_counter() - t0
        cpu = time.process_time() - c0
        worker_cpu = _cpu(sup.worker.proc.pid) - w0
        bad = sum(r.status != "pass" for r in session.results)
        return {
            "total": total, "backend": session.backend_seconds(), "items": len(session.results), "not_pass": bad,
            "cpu": cpu, "worker_cpu": worker_cpu,
        }
    finally:
        if not keep:
            sup.close()


def _cpu(pid: int) -> float:
    """A process's CPU time so far (user + system), from /proc (0 where there is none)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


def bare_cpu(name: str, calls: list) -> float:
    """The bare loop's CPU time (``time.process_time``)."""
    start = time.process_time()
    backend_alone(name, calls)
    return time.process_time() - start


def in_process(name: str, directory: Path) -> float:
    backend = load_backend(name)
    filters = Filters()
    t0 = time.perf_counter()
    session = Session.open(backend, directory, filters, None, 60.0)
    session.run_all(filters)
    return time.perf_counter() - t0


def cli_run(name: str, extra: list[str]) -> tuple[float, int]:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "conformance.cli", "run", name, "-q", *extra], cwd=ROOT, capture_output=True)
    return time.perf_counter() - start, proc.returncode


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backend", default="numpy", help="backend to measure (default numpy)")
    ap.add_argument("--repeat", type=int, default=5, help="repetitions (default 5)")
    ap.add_argument("--batch", type=int, default=64, help="entries per run frame (default 64)")
    ap.add_argument("--no-subprocess", action="store_true", help="skip the `lossconf run` measurement")
    args = ap.parse_args(argv)
    directory = fx.default_dir()
    warnings.simplefilter("ignore")
    print(f"machine: {os.cpu_count()} cores, load average {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    calls = bare_calls(args.backend, directory)
    alone, alone_cpu, warm, ready, cold, inproc = [], [], [], [], [], []
    kept = Supervisor(args.backend, batch=args.batch)
    over_worker(args.backend, directory, args.batch, True, kept)  # its first run: the worker's code paths warmed
    for _ in range(args.repeat):
        alone.append(backend_alone(args.backend, calls))
        alone_cpu.append(bare_cpu(args.backend, calls))
        warm.append(over_worker(args.backend, directory, args.batch, True, kept))
        ready.append(over_worker(args.backend, directory, args.batch, True))
        cold.append(over_worker(args.backend, directory, args.batch, False))
        inproc.append(in_process(args.backend, directory))
    kept.close()
    r = ready[0]
    print(f"\n{r['items']} checks per run; checks not passing in the worker runs: {sorted({x['not_pass'] for x in warm + ready + cold})}")
    print(f"the backend's calls alone, bare loop ({len(calls)} calls): {summarize(alone)}")
    for label, runs in (
        ("a worker kept from run to run (warm, like the bare loop and the in-process backend)", warm),
        ("a fresh worker, ready before the clock", ready),
        ("a fresh worker started inside the clock", cold),
    ):
        totals = [x["total"] for x in runs]
        ratios = [t / a for t, a in zip(totals, alone)]
        fastest = min(totals) / min(alone)
        print(f"\nover the worker, {label}: total {summarize(totals)}; the calls inside the worker "
              f"{summarize([x['backend'] for x in runs])}")
        print(f"    total / bare loop: {summarize(ratios, 'x')}; fastest / fastest: {fastest:.2f}x; "
              f"target <= {TARGET}x: {'met' if fastest <= TARGET else 'MISSED'} (fastest), "
              f"{'met' if statistics.median(ratios) <= TARGET else 'MISSED'} (median)")
        wcpu, scpu = min(x["worker_cpu"] for x in runs), min(x["cpu"] for x in runs)
        print(f"    CPU (least of the runs): the worker {wcpu:.3f} s, the supervisor {scpu:.3f} s, the bare loop "
              f"{min(alone_cpu):.3f} s: the worker (the critical path when both have a core) "
              f"{wcpu / min(alone_cpu):.2f}x, both on one core {(wcpu + scpu) / min(alone_cpu):.2f}x")
    ratios = [t / a for t, a in zip(inproc, alone)]
    print(f"\nin process, for comparison: total {summarize(inproc)}; / bare loop {summarize(ratios, 'x')}")
    if not args.no_subprocess:
        for label, extra in (("lossconf run " + args.backend, []), (f"lossconf run {args.backend} --in-process", ["--in-process"])):
            res = [cli_run(args.backend, extra) for _ in range(args.repeat)]
            print(f"`{label} -q`: exit {res[0][1]}; wall {summarize([w for w, _ in res])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
