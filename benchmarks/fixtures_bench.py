"""Fixture generation figures: the wall time of a full regeneration into a temporary
directory (``lossconf fixtures generate``, all cores by default) and the size of the
committed ``fixtures/`` directory. Also says whether the regenerated files are
byte-identical to the committed ones.

    python benchmarks/fixtures_bench.py              # one full regeneration
    python benchmarks/fixtures_bench.py --repeat 3   # best and median of three
    python benchmarks/fixtures_bench.py --jobs 1     # a single worker process

Issue targets: regeneration <= 120 s on the 2-core machine, fixtures/ < 20 MB. The figures
are printed, never asserted (timings depend on the machine and its load).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
TARGET_SECONDS = 120.0
TARGET_MB = 20.0


def dir_size(directory: Path) -> tuple[int, int]:
    """(bytes of every file, bytes of the fixture JSON files listed in the manifest)."""
    total = sum(p.stat().st_size for p in directory.iterdir() if p.is_file())
    listed = json.loads((directory / "MANIFEST.json").read_text())["files"]
    return total, sum((directory / n).stat().st_size for n in listed)


def regenerate(out: Path, jobs: int | None) -> tuple[float, float, str]:
    """Run ``lossconf fixtures generate`` in a fresh interpreter; (wall s, CPU s of it and
    its workers, its "wrote ..." line)."""
    cmd = [sys.executable, "-m", "conformance.cli", "fixtures", "generate", "--out", str(out)]
    if jobs:
        cmd += ["--jobs", str(jobs)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        sys.exit(f"generation failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    wrote = [line for line in proc.stdout.splitlines() if line.startswith("wrote ")]
    return wall, cpu, (wrote or [""])[-1]


def compare(out: Path) -> tuple[list[str], list[str]]:
    """Files of the committed fixtures/ that the regeneration reproduced byte for byte, and
    those it did not."""
    same, differ = [], []
    for p in sorted(FIXTURES.iterdir()):
        if p.suffix not in (".json", ".md") or p.name == "README.md":
            continue
        other = out / p.name
        (same if other.exists() and other.read_bytes() == p.read_bytes() else differ).append(p.name)
    return same, differ


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jobs", type=int, default=None, help="worker processes (default: all cores)")
    ap.add_argument("--repeat", type=int, default=1, help="regenerate this many times (default 1)")
    args = ap.parse_args(argv)

    print(f"machine: {os.cpu_count()} cores, load average {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    walls, cpus = [], []
    for i in range(args.repeat):
        with tempfile.TemporaryDirectory(prefix="lossconf-fixtures-") as tmp:
            out = Path(tmp) / "fixtures"
            wall, cpu, last = regenerate(out, args.jobs)
            walls.append(wall)
            cpus.append(cpu)
            print(f"run {i + 1}: {wall:.2f} s wall, {cpu:.2f} s CPU -- {last}")
            if i == 0:
                same, differ = compare(out)
                regen_total, regen_json = dir_size(out)
    jobs = args.jobs or "all"
    print()
    print(f"full regeneration ({jobs} cores): best {min(walls):.2f} s, median {statistics.median(walls):.2f} s wall "
          f"(CPU {statistics.median(cpus):.2f} s); target <= {TARGET_SECONDS:.0f} s: "
          f"{'met' if min(walls) <= TARGET_SECONDS else 'MISSED'}")
    total, listed = dir_size(FIXTURES)
    print(f"fixtures/ size: {total / 1e6:.2f} MB in all ({listed / 1e6:.2f} MB of fixture JSON); "
          f"target < {TARGET_MB:.0f} MB: {'met' if total < TARGET_MB * 1e6 else 'MISSED'}")
    print(f"regenerated: {regen_json / 1e6:.2f} MB of fixture JSON ({regen_total / 1e6:.2f} MB with manifest, schema, coverage)")
    print(f"byte-identical to the committed files: {len(same)}/{len(same) + len(differ)}"
          + (f"; DIFFERENT: {', '.join(differ)}" if differ else ""))
    return 0 if not differ else 1


if __name__ == "__main__":
    sys.exit(main())
