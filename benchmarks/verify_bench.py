"""``lossconf fixtures verify`` and fixture loading: where their time goes.

Measures, in process, best and median of N (CPU time of this process, which a loaded
machine disturbs less than wall time):

* ``fixtures.verify`` on the committed fixtures (what ``lossconf fixtures verify`` does);
* within it, schema validation: the compiled schema (``conformance/fixture_schema.py``)
  over every fixture file, and, for comparison, jsonschema's ``Draft202012Validator`` on
  the same files (what ``verify`` used before session 4, resolving ``$ref`` per item);
* ``fixtures.load`` (what every ``lossconf run`` does first: read, check, decode);
* with ``--all``: ``lossconf fixtures verify --all -q`` in a subprocess (wall and CPU of it
  and its worker processes).

    python benchmarks/verify_bench.py
    python benchmarks/verify_bench.py --repeat 7 --all

The figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import jsonschema  # noqa: E402

from conformance import fixtures as fx  # noqa: E402
from conformance.fixture_schema import SCHEMA_FILE, compile_schema  # noqa: E402


def cpu(fn, repeat: int) -> list[float]:
    fn()  # warm: imports, the OS file cache
    out = []
    for _ in range(repeat):
        t = time.process_time()
        fn()
        out.append(time.process_time() - t)
    return out


def show(label: str, times: list[float]) -> None:
    print(f"{label:58s} best {min(times) * 1000:7.1f} ms, median {statistics.median(times) * 1000:7.1f} ms CPU")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=5, help="repetitions (default 5)")
    ap.add_argument("--all", action="store_true", help="also time `lossconf fixtures verify --all` (slow)")
    args = ap.parse_args(argv)
    directory = fx.default_dir()
    print(f"machine: {os.cpu_count()} cores, load average {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    names = sorted(fx.fixture_files(fx.load_manifest(directory)))
    docs = [json.loads((directory / n).read_text()) for n in names]
    schema = json.loads(SCHEMA_FILE.read_text())
    compiled = compile_schema(schema)
    full = jsonschema.Draft202012Validator(schema)

    total = cpu(lambda: fx.verify(directory), args.repeat)
    fast = cpu(lambda: [compiled(d) for d in docs], args.repeat)
    slow = cpu(lambda: [full.is_valid(d) for d in docs], max(1, args.repeat // 2))
    load = cpu(lambda: fx.load(directory), args.repeat)
    show("fixtures.verify (lossconf fixtures verify)", total)
    show("  of which schema validation, compiled", fast)
    print(f"  = {statistics.median(fast) / statistics.median(total):.0%} of verify (medians)")
    show("schema validation through jsonschema (before)", slow)
    print(f"  = {statistics.median(slow) / (statistics.median(total) - statistics.median(fast) + statistics.median(slow)):.0%} "
          "of a verify that used it")
    show("fixtures.load (every run: read, check, decode)", load)
    if args.all:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "conformance.cli", "fixtures", "verify", "--all", "-q"],
                              cwd=ROOT, capture_output=True, text=True)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        used = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        print(f"lossconf fixtures verify --all: exit {proc.returncode}, {wall:.1f} s wall, {used:.1f} s CPU "
              f"(its worker processes included): {proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr[-300:]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
