"""The stability bound's detection curve: how often a uniformly wrong backend is caught.

For k = 2, 4, 8, 16, 32, 64 ULP, every value element (and, separately, every gradient
element) the numpy backend returns is moved k ULPs of its dtype away from zero
(``tests.variant_backends.Perturbed``), and the share of the value (gradient) checks that
then fail is counted per loss, split into well-conditioned checks (every element's term
scale at most twice its exact value: ``scale <= 2 |x|``, x != 0) and ill-conditioned ones.
A gradient element's term scale is the fixture's ``vjp.<input>.scale`` where it has one,
else the max-norm of the exact VJP (the harness's fallback). Then the correct variants of
``tests.variant_backends`` (sequential sums in reverse order, float64 then rounded,
logaddexp for log-sum-exp) are run and their failures counted.

    python benchmarks/detection_curve.py [--loss NAME ...] [--markdown]

The target (issue 11): at 32 ULP at least 90 % of the well-conditioned value checks fail,
while the correct variants pass everything.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from conformance import fixtures as fx  # noqa: E402
from conformance.harness.runner import FAIL  # noqa: E402
from conformance.harness.session import Filters, Session  # noqa: E402
from tests import variant_backends as vb  # noqa: E402

KS = (2, 4, 8, 16, 32, 64)


def well_conditioned(case: fx.FixtureCase, check: str) -> bool:
    """Every finite element's term scale at most twice its nonzero exact value."""
    if check == "value":
        exact, scale = case.expected, case.scale
    else:
        exact = case.vjp[check[5:]]
        finite = np.isfinite(exact.hi)
        scale = exact.scale if exact.scale is not None else np.full(exact.hi.shape, np.abs(exact.hi[finite]).max(initial=0.0))
    x = exact.hi[np.isfinite(exact.hi)]
    s = np.asarray(scale)[np.isfinite(exact.hi)]
    with np.errstate(over="ignore"):  # 2 |x| of a value near float64's maximum is inf: well-conditioned
        return bool(x.size) and bool(np.all((x != 0) & (s <= 2 * np.abs(x))))


def run(backend, cases: list[fx.FixtureCase], kind: str | None) -> list:
    """The value (kind "value") or gradient ("grad") check results, or all (None)."""
    f = Filters()
    s = Session(backend, cases, "bench", None, 60.0)
    s.prepare(f)
    out = []
    for case, check in s.items(f):
        if kind is None or (kind == "value" and check == "value") or (kind == "grad" and check.startswith("grad:")):
            out.append(s.check(case, check))
    return out


def curve(cases: list[fx.FixtureCase], kind: str) -> dict:
    """{(loss, well) : {k: (failed, total)}}, with (loss "all") the totals."""
    table: dict = defaultdict(dict)
    for k in KS:
        counts: dict = defaultdict(lambda: [0, 0])
        for r in run(vb.Perturbed(k, kind), cases, kind):
            if r.case.invalid is not None:
                continue
            well = well_conditioned(r.case, r.check)
            for key in ((r.case.short_loss, well), ("all", well)):
                counts[key][0] += r.status == FAIL
                counts[key][1] += 1
        for key, (bad, n) in counts.items():
            table[key][k] = (bad, n)
    return table


def pct(bad: int, n: int) -> str:
    return "-" if n == 0 else f"{100.0 * bad / n:.0f}"


def markdown(table: dict, kind: str) -> list[str]:
    lines = [
        f"| loss ({kind} checks) | conditioning | checks | " + " | ".join(f"{k} ULP" for k in KS) + " |",
        "| --- | --- | ---: | " + " | ".join("---:" for _ in KS) + " |",
    ]
    keys = sorted(table, key=lambda key: (key[0] == "all", key[0].lower(), not key[1]))
    for loss, well in keys:
        row = table[(loss, well)]
        n = next(iter(row.values()))[1]
        name = f"**{loss}**" if loss == "all" else loss
        lines.append(f"| {name} | {'well' if well else 'ill'} | {n} | " + " | ".join(f"{pct(*row[k])} %" for k in KS) + " |")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--loss", action="append", help="only this loss (id or short name; repeatable)")
    ap.add_argument("--markdown", action="store_true", help="print the tables as Markdown (for benchmarks/README.md)")
    args = ap.parse_args(argv)
    cases = fx.load(losses=set(args.loss) if args.loss else None)
    for kind in ("value", "grad"):
        table = curve(cases, kind)
        print(f"\nshare of {kind} checks failing (%), numpy backend moved k ULP")
        print("\n".join(markdown(table, kind)))
    print("\ncorrect variants: failing checks (of all value and gradient checks)")
    print("| variant | checks | failing |\n| --- | ---: | ---: |")
    for backend in vb.VARIANTS:
        results = [r for r in run(backend, cases, None) if r.check == "value" or r.check.startswith("grad:")]
        bad = [r for r in results if r.status == FAIL]
        print(f"| {backend.name} | {len(results)} | {len(bad)} |")
        for r in bad[:8]:
            print(f"|   {r.test_id} | | {r.error_scale:.3g} eps x scale (bound {r.bound:.3g}) |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
