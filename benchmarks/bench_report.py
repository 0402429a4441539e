"""Rendering speed of ``lossconf report`` and ``lossconf diff`` on ~10k records.

    python benchmarks/bench_report.py [--results results-numpy.json] [--records 10000]

Without ``--results`` it first runs the numpy backend on the checkout's fixtures. The
records are replicated under extra backend names (as a merged report of several
frameworks would hold them) until there are at least ``--records``. Prints seconds; asserts
nothing (timings belong here, not in tests)."""

from __future__ import annotations

import argparse
import copy
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from conformance import diff, report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", help="a results file to replicate (default: run the numpy backend first)")
    ap.add_argument("--records", type=int, default=10_000)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="lossconf-bench-"))
    src = Path(args.results) if args.results else work / "results-numpy.json"
    if not args.results:
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "conformance.cli", "run", "numpy", "--results", str(src)],
                       stdout=subprocess.DEVNULL, check=False)
        print(f"numpy run                {time.perf_counter() - t:6.2f} s")
    doc = json.loads(src.read_text())
    n = max(1, len(doc["records"]))
    paths = []
    for i in range(-(-args.records // n)):
        part = copy.deepcopy(doc)
        part["provenance"]["backend"]["name"] = f"{doc['provenance']['backend']['name']}-{i}" if i else part["provenance"]["backend"]["name"]
        paths.append(work / f"results-{i}.json")
        paths[-1].write_text(json.dumps(part))
    total = n * len(paths)
    t = time.perf_counter()
    report.render(paths, work / "reports")
    print(f"report, {total} records {time.perf_counter() - t:6.2f} s  ({len(paths)} backends)")
    t = time.perf_counter()
    d = diff.compare(work / "reports" / report.JSON_FILE, work / "reports" / report.JSON_FILE)
    print(f"diff, {total} records   {time.perf_counter() - t:6.2f} s  ({d.compared} compared)")
    for f in sorted((work / "reports").iterdir()):
        print(f"  {f.name:<22} {f.stat().st_size / 1e6:6.2f} MB")


if __name__ == "__main__":
    main()
