"""Compatibility reports: ``lossconf report`` reads one or more results files (the JSON
that ``lossconf run --results`` writes) and renders, into one output directory:

* ``index.html`` -- a self-contained page (inline CSS, plots as embedded PNG; no network
  needed), rendered from Jinja2 templates (``templates/``, autoescaped) by
  :mod:`.html`. It leads with what matters: per backend its failing checks grouped by
  cause, shown in full (inputs, expected, observed, error, the computed tolerance, the
  command that repeats each); then the known deviations, one row per root cause; then
  the matrix loss x option set x (mode x dtype) with pass counts and a legend, where a
  mode the backend did not run is one column with the reason its results give; then the
  details: a summary, the cross-framework table (a line per mode), the invalid-input table folded by loss,
  and per backend a libm-style table, ULP-error histograms, the worst error by value
  regime and a drill-down to every failing check; and last the migration map
  (:mod:`.migration`: per loss and option set, each backend's call and its verdicts);
* ``summary.md`` -- a Markdown summary for a CI job summary (``$GITHUB_STEP_SUMMARY``);
* ``report.json`` -- the merged results (format ``lossconf-report``), which
  ``lossconf report`` and ``lossconf diff`` read back like a results file.

Reports are reproducible: the same results give byte-identical files. The only date in
them is in the one provenance line, and it is taken from the results' provenance, never
from the clock; PNGs are written without software metadata by a fixed matplotlib style.

Given no results files, ``lossconf report`` first runs the backends (default: numpy), each
in its own ``lossconf run`` process, writing ``<out>/results-<backend>.json``.

Results files of one backend (name and version) with disjoint checks -- ``tox -e torch``'s
eager modes and its compiled sample -- are one backend: its records together, its modes
from both, unused expectation entries once. A status the report does not know (a newer
harness's outcome, e.g. ``raised``) is shown by its name as an "other outcome", never
dropped and never an error.

Bad input ends with exit code 2 and one line naming the file: not JSON or truncated,
another format or format version, a results file that does not name its backend, a
malformed record, or two files with the same checks of the same backend. A results file
with no records gives a report that says so.
"""


from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from .html import TemplateUnavailable, render_html
from .markdown import render_markdown
from .model import (
    BIN_EDGES,
    BIN_LABELS,
    CATEGORIES,
    CATEGORY_COLOUR,
    CATEGORY_LABEL,
    CATEGORY_MARK,
    CONFORMS,
    DTYPE_ORDER,
    FAILS,
    HTML_FILE,
    JSON_FILE,
    KNOWN,
    MARKDOWN_FILE,
    REPORT_FORMAT,
    REPORT_VERSION,
    REQUIRED,
    RESULTS_FORMAT,
    RESULTS_VERSION,
    STABLE,
    STATUSES,
    UNSUPPORTED,
    BackendResults,
    Cell,
    Group,
    ResultsError,
    Summary,
    _bin,
    _clip,
    _dtype_key,
    _inputs_lookup,
    _num,
    _split_invalid,
    category,
    failure_groups,
    fmt_ulps,
    known_groups,
    load,
    load_all,
    provenance_line,
    short,
    tolerance_text,
)

__all__ = [
    "BIN_EDGES", "BIN_LABELS", "CATEGORIES", "CATEGORY_COLOUR", "CATEGORY_LABEL", "CATEGORY_MARK", "CONFORMS",
    "DTYPE_ORDER", "FAILS", "HTML_FILE", "JSON_FILE", "KNOWN", "MARKDOWN_FILE", "REPORT_FORMAT", "REPORT_VERSION",
    "REQUIRED", "RESULTS_FORMAT", "RESULTS_VERSION", "STABLE", "STATUSES", "UNSUPPORTED", "BackendResults", "Cell",
    "Group", "ResultsError", "Summary", "TemplateUnavailable", "_bin", "_num", "_split_invalid", "category", "failure_groups",
    "fmt_ulps", "known_groups", "load", "load_all", "main", "provenance_line", "render", "render_html",
    "render_json", "render_markdown", "run_backends", "short", "tolerance_text",
]


# ============================================================== merged JSON


def render_json(backends: list[BackendResults], sums: list[Summary]) -> str:
    """The merged results: per backend its sources, provenance, a summary, and its records
    as they were read, one record per line."""
    parts = []
    for i, s in enumerate(sums):
        parts.append(
            {
                "sources": s.br.sources,
                "provenance": s.br.provenance,
                "summary": {
                    "checks": s.totals.total,
                    "by_verdict": {CATEGORY_LABEL[c]: s.totals.counts[c] for c in CATEGORIES},
                    "worst_error_ulps": _json_num(s.totals.worst),
                    "losses": {
                        loss: {
                            d: {
                                "verdict": CATEGORY_LABEL[c.category] if c.category else None,
                                "worst_error_ulps": _json_num(c.worst),
                                "checks": c.total,
                            }
                            for d, c in sorted(s.by_loss[loss].items(), key=lambda kv: _dtype_key(kv[0]))
                        }
                        for loss in s.losses()
                    },
                },
                "unused_expectations": s.br.unused_expectations,
                "records": f"\x00records {i}\x00",
            }
        )
    text = json.dumps({"format": REPORT_FORMAT, "format_version": REPORT_VERSION, "backends": parts},
                      indent=1, allow_nan=False, ensure_ascii=False)
    for i, s in enumerate(sums):
        lines = ",\n".join(json.dumps(r, allow_nan=False, ensure_ascii=False) for r in s.br.records)
        text = text.replace(json.dumps(f"\x00records {i}\x00"), f"[\n{lines}\n]" if lines else "[]", 1)
    return text + "\n"


def _json_num(x: float | None) -> float | str | None:
    if x is None:
        return None
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return x


# ============================================================== entry points


def render(paths: list[str | Path], out: str | Path, fixtures_dir: str | None = None) -> dict[str, Path]:
    """Read results files and write the HTML, Markdown and merged JSON into ``out``."""
    backends = load_all(paths)
    sums = [Summary.of(b) for b in backends]
    inputs = _inputs_lookup(backends, fixtures_dir)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files = {
        "html": (out / HTML_FILE, render_html(backends, sums, inputs)),
        "markdown": (out / MARKDOWN_FILE, render_markdown(backends, sums)),
        "json": (out / JSON_FILE, render_json(backends, sums)),
    }
    for path, text in files.values():
        path.write_text(text, encoding="utf-8", newline="\n")
    return {k: v[0] for k, v in files.items()}


def _results_name(backend: str) -> str:
    return f"results-{re.sub(r'[^A-Za-z0-9_.-]+', '_', backend)}.json"


def run_backends(backends: list[str], out: Path, fixtures: str | None) -> list[Path]:
    """Run each backend in its own ``lossconf run`` process; the results files it wrote."""
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for b in backends:
        path = out / _results_name(b)
        if path.exists():
            path.unlink()
        cmd = [sys.executable, "-m", "conformance.cli", "run", b, "--results", str(path)]
        if fixtures:
            cmd += ["--fixtures", str(fixtures)]
        print(f"lossconf report: running backend {b} ...", file=sys.stderr, flush=True)
        env = dict(os.environ)
        env.setdefault("MPLBACKEND", "Agg")
        proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        tail = [ln for ln in proc.stdout.splitlines() if ln.strip()]
        if not path.exists():
            why = tail[-1].removeprefix("Exit: ") if tail else f"exit code {proc.returncode}"
            raise ResultsError(f"backend {b}: the run wrote no results ({_clip(why, 300)})")
        try:
            statuses = Counter(str(r.get("status")) for r in json.loads(path.read_text())["records"])
            done = f"{sum(statuses.values())} checks (" + ", ".join(f"{statuses[k]} {k}" for k in STATUSES) + ")"
        except (ValueError, KeyError, TypeError, AttributeError):
            done = f"exit code {proc.returncode}"
        print(f"lossconf report: backend {b}: {done}; results in {path}", file=sys.stderr)
        paths.append(path)
    return paths


def main(args: Any) -> int:
    out = Path(getattr(args, "out", None) or "reports")
    paths: list[str | Path] = list(getattr(args, "results", None) or [])
    fixtures = getattr(args, "fixtures", None)
    try:
        if not paths:
            paths = list(run_backends(list(getattr(args, "backend", None) or ["numpy"]), out, fixtures))
        files = render(paths, out, fixtures)
    except (ResultsError, TemplateUnavailable) as err:
        print(f"lossconf report: {err}", file=sys.stderr)
        return 2
    for kind, path in files.items():
        print(f"{kind:<8} {path}")
    return 0
