"""Compatibility reports: ``lossconf report`` reads one or more results files (the JSON
that ``lossconf run --results`` writes) and renders, into one output directory:

* ``index.html`` -- a self-contained page (inline CSS, plots as embedded PNG; no network
  needed): a summary per backend; a cross-framework table (loss x option set: which
  backends conform, dtype by dtype, side by side); the invalid-input table (raised vs
  silently returned); and per backend a matrix loss x option set x dtype with the worst
  error in each cell coloured by verdict, a libm-style table of the worst error per loss
  and dtype, ULP-error histograms per loss and dtype, the worst error by value regime, and
  a drill-down to the failing cases (inputs, expected, observed, error, tolerance);
* ``summary.md`` -- a Markdown summary for a CI job summary (``$GITHUB_STEP_SUMMARY``);
* ``report.json`` -- the merged results (format ``lossconf-report``), which
  ``lossconf report`` and ``lossconf diff`` read back like a results file.

Reports are reproducible: the same results give byte-identical files. The only date in
them is in the one provenance line, and it is taken from the results' provenance, never
from the clock; PNGs are written without software metadata by a fixed matplotlib style.

Given no results files, ``lossconf report`` first runs the backends (default: numpy), each
in its own ``lossconf run`` process, writing ``<out>/results-<backend>.json``.

Bad input ends with exit code 2 and one line naming the file: not JSON or truncated,
another format or format version, a results file that does not name its backend, a
malformed record, or two files with the same checks of the same backend. A results file
with no records gives a report that says so.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import os
import re
import subprocess
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RESULTS_FORMAT = "lossconf-results"  # written by conformance.session
RESULTS_VERSION = 1
REPORT_FORMAT = "lossconf-report"  # the merged JSON written here
REPORT_VERSION = 1

HTML_FILE, MARKDOWN_FILE, JSON_FILE = "index.html", "summary.md", "report.json"

STATUSES = ("pass", "fail", "error", "skip", "known")
REQUIRED = ("id", "loss", "options_label", "dtype", "check", "status", "verdict")
DTYPE_ORDER = ("float16", "float32", "float64")

# verdict categories of the report, worst first (a cell shows the worst of its checks)
FAILS, KNOWN, STABLE, CONFORMS, UNSUPPORTED = "fails", "known", "stable", "conforms", "unsupported"
CATEGORIES = (FAILS, KNOWN, STABLE, CONFORMS, UNSUPPORTED)
CATEGORY_LABEL = {
    CONFORMS: "conforms",
    STABLE: "within stability bound",
    KNOWN: "known deviation",
    FAILS: "fails",
    UNSUPPORTED: "unsupported",
}
CATEGORY_COLOUR = {  # background colours (colour-blind-safe ordering: blue..orange..red)
    CONFORMS: "#b8e0b0",
    STABLE: "#e3f0a8",
    KNOWN: "#fdd49e",
    FAILS: "#f4a3a3",
    UNSUPPORTED: "#e4e4e4",
}
CATEGORY_MARK = {CONFORMS: "✅", STABLE: "☑️", KNOWN: "⚠️", FAILS: "❌", UNSUPPORTED: "➖"}

# ULP-error histogram bins (upper edges), in the spirit of the libm accuracy tables
BIN_EDGES = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 64.0, 256.0, 1024.0, 65536.0)
BIN_LABELS = ("≤½", "≤1", "≤2", "≤4", "≤8", "≤16", "≤64", "≤256", "≤1k", "≤64k", ">64k", "inf/nan")
DPI = 90
MAX_DRILL = 200  # failing checks listed per loss and backend in the HTML
MAX_MD_LIST = 30  # failing checks listed in the Markdown summary


class ResultsError(Exception):
    """Input that cannot be reported; the message is one line that names the file."""


# ============================================================== loading


@dataclass
class BackendResults:
    """The records of one backend (one results file, or one part of a merged report)."""

    source: str
    provenance: dict[str, Any]
    unused_expectations: list[Any]
    records: list[dict[str, Any]]
    sources: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return str(self.provenance["backend"]["name"])

    @property
    def version(self) -> str:
        return str(self.provenance["backend"].get("version", "?"))

    @property
    def label(self) -> str:
        return f"{self.name} {self.version}"


def _num(x: Any) -> float | None:
    """A record's number (float, None, or the strings inf/-inf/nan) as a float."""
    if x is None:
        return None
    if isinstance(x, str):
        return float(x)
    return float(x)


def _read(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ResultsError(f"{path}: no such results file") from None
    except OSError as err:
        raise ResultsError(f"{path}: cannot be read: {err.strerror}") from None
    except UnicodeDecodeError:
        raise ResultsError(f"{path}: not a results file (not UTF-8 text)") from None
    if not text.strip():
        raise ResultsError(f"{path}: the file is empty (0 records would still be a JSON document; did the run crash?)")
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        what = "truncated" if err.pos >= len(text.rstrip()) - 1 else "not valid JSON"
        raise ResultsError(f"{path}: {what} (line {err.lineno}, column {err.colno}: {err.msg})") from None


def _check_part(path: Path, where: str, prov: Any, records: Any) -> None:
    if not isinstance(prov, dict):
        raise ResultsError(f"{path}: {where}has no provenance, so its backend is unknown")
    backend = prov.get("backend")
    name = backend.get("name") if isinstance(backend, dict) else None
    if not isinstance(name, str) or not name.strip() or name.strip() == "?":
        raise ResultsError(
            f"{path}: {where}results from an unknown backend (provenance.backend.name is {name!r}); "
            "write results with `lossconf run BACKEND --results FILE`"
        )
    if not isinstance(records, list):
        raise ResultsError(f"{path}: {where}'records' is not a list")
    for i, rec in enumerate(records):
        if not isinstance(rec, dict):
            raise ResultsError(f"{path}: {where}record {i} is not an object")
        missing = [k for k in REQUIRED if k not in rec]
        if missing:
            raise ResultsError(f"{path}: {where}record {i} ({rec.get('id', '?')}) lacks {', '.join(missing)}")
        if rec["status"] not in STATUSES:
            raise ResultsError(f"{path}: {where}record {i} ({rec['id']}) has unknown status {rec['status']!r}")
        try:
            _num(rec.get("error_ulps"))
        except (TypeError, ValueError):
            raise ResultsError(f"{path}: {where}record {i} ({rec['id']}) has a malformed error_ulps") from None


def load(path: str | Path) -> list[BackendResults]:
    """The backends of a results file (one) or of a merged report (any number)."""
    path = Path(path)
    doc = _read(path)
    if not isinstance(doc, dict) or doc.get("format") not in (RESULTS_FORMAT, REPORT_FORMAT):
        fmt = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
        raise ResultsError(f"{path}: not a lossconf results file (format {fmt!r}, expected {RESULTS_FORMAT!r})")
    want = RESULTS_VERSION if doc["format"] == RESULTS_FORMAT else REPORT_VERSION
    if doc.get("format_version") != want:
        raise ResultsError(
            f"{path}: {doc['format']} format_version {doc.get('format_version')!r}; this lossconf reads version {want}"
        )
    if doc["format"] == RESULTS_FORMAT:
        _check_part(path, "", doc.get("provenance"), doc.get("records"))
        return [BackendResults(path.name, doc["provenance"], list(doc.get("unused_expectations") or []), doc["records"], [path.name])]
    parts = doc.get("backends")
    if not isinstance(parts, list):
        raise ResultsError(f"{path}: {REPORT_FORMAT} without a 'backends' list")
    out = []
    for i, part in enumerate(parts):
        if not isinstance(part, dict):
            raise ResultsError(f"{path}: backends[{i}] is not an object")
        _check_part(path, f"backends[{i}]: ", part.get("provenance"), part.get("records"))
        out.append(
            BackendResults(
                path.name, part["provenance"], list(part.get("unused_expectations") or []), part["records"],
                list(part.get("sources") or [path.name]),
            )
        )
    return out


def load_all(paths: list[str | Path]) -> list[BackendResults]:
    """Every backend of every file, in the order given; the same backend (name and
    version) from several files is merged if the files hold different checks."""
    merged: dict[str, BackendResults] = {}
    for p in paths:
        for part in load(p):
            have = merged.get(part.label)
            if have is None:
                merged[part.label] = part
                continue
            ids = {r["id"] for r in have.records}
            if any(r["id"] in ids for r in part.records):
                raise ResultsError(
                    f"{p}: holds checks of backend {part.label} that {', '.join(have.sources)} already holds; "
                    "give one results file per backend (or per disjoint selection)"
                )
            have.records = have.records + part.records
            have.sources = have.sources + part.sources
            have.unused_expectations = have.unused_expectations + part.unused_expectations
    return list(merged.values())


# ============================================================== aggregation


def category(rec: dict[str, Any]) -> str:
    s = rec["status"]
    if s in ("fail", "error"):
        return FAILS
    if s == "known":
        return KNOWN
    if s == "skip":
        return UNSUPPORTED
    return STABLE if rec.get("verdict") == "within stability bound" else CONFORMS


def short(loss: str) -> str:
    return loss.rsplit(".", 1)[-1]


def _err(rec: dict[str, Any]) -> float | None:
    if rec["status"] == "skip":
        return None
    return _num(rec.get("error_ulps"))


def _rank(x: float) -> tuple[int, float]:
    """Orders errors, nan (undefined where the exact value is not) as the worst."""
    return (1, 0.0) if math.isnan(x) else (0, x)


def _worse(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return a if _rank(a) >= _rank(b) else b


@dataclass
class Cell:
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CATEGORIES, 0))
    worst: float | None = None
    worst_id: str | None = None

    def add(self, rec: dict[str, Any]) -> None:
        self.counts[category(rec)] += 1
        e = _err(rec)
        if e is not None and (self.worst is None or _rank(e) > _rank(self.worst)):
            self.worst, self.worst_id = e, rec["id"]

    @property
    def category(self) -> str | None:
        for c in CATEGORIES:
            if self.counts[c]:
                return c
        return None

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def title(self) -> str:
        parts = [f"{self.counts[c]} {CATEGORY_LABEL[c]}" for c in CATEGORIES if self.counts[c]]
        if self.worst_id:
            parts.append(f"worst: {self.worst_id}")
        return "; ".join(parts)


def _dtype_key(d: str) -> tuple[int, str]:
    return (DTYPE_ORDER.index(d) if d in DTYPE_ORDER else len(DTYPE_ORDER), d)


def _row_key(row: tuple[str, str]) -> tuple[str, str, str]:
    return (short(row[0]).lower(), row[0], row[1])


@dataclass
class Summary:
    """Everything the renderers need about one backend."""

    br: BackendResults
    matrix: dict[tuple[str, str], dict[str, Cell]]  # (loss, options_label) -> dtype -> cell
    by_loss: dict[str, dict[str, Cell]]  # loss -> dtype -> cell (all option sets)
    value_grad: dict[str, dict[str, tuple[Cell, Cell]]]  # loss -> dtype -> (value cell, grad cell)
    regime: dict[str, dict[str, Cell]]  # tag -> dtype -> cell (value and grad checks)
    regime_loss: dict[str, dict[str, Cell]]  # loss -> tag -> cell
    totals: Cell
    dtypes: list[str]
    hist: dict[tuple[str, str, bool], list[int]]  # (loss, dtype, is_gradient) -> checks per ULP bin

    @classmethod
    def of(cls, br: BackendResults) -> Summary:
        matrix: dict = defaultdict(lambda: defaultdict(Cell))
        by_loss: dict = defaultdict(lambda: defaultdict(Cell))
        vg: dict = defaultdict(lambda: defaultdict(lambda: (Cell(), Cell())))
        regime: dict = defaultdict(lambda: defaultdict(Cell))
        regime_loss: dict = defaultdict(lambda: defaultdict(Cell))
        totals = Cell()
        dtypes = set()
        hist: dict = defaultdict(lambda: [0] * len(BIN_LABELS))
        for r in br.records:
            loss, d = r["loss"], r["dtype"]
            dtypes.add(d)
            matrix[(loss, r["options_label"])][d].add(r)
            by_loss[loss][d].add(r)
            totals.add(r)
            chk = r["check"]
            if chk == "value" or chk.startswith("grad:"):
                vg[loss][d][0 if chk == "value" else 1].add(r)
                e = _err(r)
                if e is not None:
                    hist[(loss, d, chk != "value")][_bin(e)] += 1
                for t in r.get("tags") or ():
                    regime[t][d].add(r)
                    regime_loss[loss][t].add(r)
        return cls(br, matrix, by_loss, vg, regime, regime_loss, totals, sorted(dtypes, key=_dtype_key), dict(hist))

    def rows(self) -> list[tuple[str, str]]:
        return sorted(self.matrix, key=_row_key)

    def losses(self) -> list[str]:
        return sorted(self.by_loss, key=lambda x: (short(x).lower(), x))


def fmt_ulps(x: float | None) -> str:
    if x is None:
        return ""
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "∞"
    if x == 0:
        return "0"
    if x < 100:
        return f"{x:.2g}" if x < 10 else f"{x:.0f}"
    mant, exp = f"{x:.1e}".split("e")
    return f"{mant}e{int(exp)}"


# ============================================================== plots


class _Plots:
    """matplotlib (Agg, object API, default style) to base64 PNG, byte-reproducible."""

    def __init__(self) -> None:
        try:
            import matplotlib
            from matplotlib.backends.backend_agg import FigureCanvasAgg
            from matplotlib.collections import PolyCollection
            from matplotlib.figure import Figure
            from matplotlib.patches import Patch
        except ImportError:
            self.available = False
            return
        self.available = True
        self.matplotlib, self.Figure, self.Canvas, self.Patch = matplotlib, Figure, FigureCanvasAgg, Patch
        self.PolyCollection = PolyCollection
        rc = {k: v for k, v in matplotlib.rcParamsDefault.items() if k not in ("backend", "backend_fallback")}
        rc.update({"svg.hashsalt": "lossconf", "font.size": 8, "axes.titlesize": 9, "figure.dpi": DPI})
        self.rc = rc

    def figure(self, w: float, h: float):
        fig = self.Figure(figsize=(w, h), dpi=DPI)
        self.Canvas(fig)
        return fig

    def png(self, fig) -> str:
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
        return base64.b64encode(buf.getvalue()).decode("ascii")

    def histograms(self, s: Summary) -> str:
        """ULP-error histograms, one row per loss and one panel per dtype: the share of the
        value checks (blue) and gradient checks (orange) whose worst element fell in each
        bin, with the worst error at the right. One figure, so it stays fast."""
        losses = [loss for loss in s.losses() if any(sum(s.hist.get((loss, d, g), ())) for d in s.dtypes for g in (False, True))]
        dts = s.dtypes
        n = len(losses)
        left = 0.3 + 0.075 * max(len(short(x)) for x in losses)
        width, height = left + 3.6 * len(dts), 1.0 + 0.42 * n
        empty = [0] * len(BIN_LABELS)
        xs = list(range(len(BIN_LABELS)))
        with self.matplotlib.rc_context(self.rc):
            fig = self.figure(width, height)
            axes = fig.subplots(1, len(dts), squeeze=False, sharey=True)[0]
            for ax, d in zip(axes, dts):
                boxes: dict[bool, list] = {False: [], True: []}
                for i, loss in enumerate(losses):
                    y0 = n - 1 - i
                    for grad, dx in ((False, -0.4), (True, 0.0)):
                        h = s.hist.get((loss, d, grad), empty)
                        tot = sum(h)
                        for x, c in zip(xs, h):
                            if c:
                                top = y0 + 0.85 * c / tot
                                boxes[grad].append([(x + dx, y0), (x + dx + 0.4, y0), (x + dx + 0.4, top), (x + dx, top)])
                    pair = s.value_grad[loss].get(d)
                    worst = _worse(pair[0].worst, pair[1].worst) if pair else None
                    label = fmt_ulps(worst) if worst is not None else "-"
                    ax.text(len(BIN_LABELS) - 0.3, y0 + 0.35, label, ha="left", va="center", fontsize=6.5)
                for grad, colour in ((False, "#3b75af"), (True, "#ef8636")):
                    ax.add_collection(self.PolyCollection(boxes[grad], facecolors=colour, linewidths=0))
                ax.hlines([y - 0.05 for y in range(n + 1)], -0.6, len(BIN_LABELS) + 1.4, colors="#dddddd", lw=0.5)
                ax.axvline(3.5, color="#555555", lw=0.8, ls="--")
                ax.set_xlim(-0.6, len(BIN_LABELS) + 1.4)
                ax.set_ylim(-0.1, n)
                ax.set_xticks(xs)
                ax.set_xticklabels(BIN_LABELS, fontsize=6.5, rotation=45)
                ax.set_title(f"{d} (error in ULPs; right: worst)", fontsize=8)
                ax.tick_params(axis="y", length=0)
            axes[0].set_yticks([n - 1 - i + 0.4 for i in range(n)])
            axes[0].set_yticklabels([short(x) for x in losses], fontsize=7)
            fig.legend(
                handles=[self.Patch(color="#3b75af", label="value"), self.Patch(color="#ef8636", label="gradient")],
                loc="upper left", fontsize=7, frameon=False, ncol=2,
            )
            fig.subplots_adjust(left=left / width, right=0.99, bottom=0.55 / height, top=1 - 0.35 / height, wspace=0.06)
            return self.png(fig)

    def regimes(self, s: Summary) -> str:
        """Worst error (log scale) by value regime, one bar per dtype."""
        tags = sorted(s.regime, key=_tag_key)
        dts = s.dtypes
        colours = {"float16": "#ef8636", "float32": "#3b75af", "float64": "#519e3e"}
        with self.matplotlib.rc_context(self.rc):
            fig = self.figure(max(4.0, 0.9 * len(tags) + 1.2), 2.6)
            ax = fig.subplots()
            width = 0.8 / max(1, len(dts))
            finite = [c.worst for t in tags for c in s.regime[t].values() if c.worst is not None and math.isfinite(c.worst)]
            top = min(max([*finite, 10.0]), 1e30) * 10  # a log axis needs finite limits: bars beyond 1e30 are drawn there, labelled
            for j, d in enumerate(dts):
                xs, ys, inf_x = [], [], []
                for i, t in enumerate(tags):
                    c = s.regime[t].get(d)
                    if c is None or c.worst is None:
                        continue
                    y = c.worst
                    if not math.isfinite(y) or y > top:
                        inf_x.append((i + (j - (len(dts) - 1) / 2) * width, "∞" if math.isinf(y) else fmt_ulps(y)))
                        y = top
                    xs.append(i + (j - (len(dts) - 1) / 2) * width)
                    ys.append(max(y, 0.01))
                ax.bar(xs, ys, width=width, color=colours.get(d, "#888888"), label=d)
                for x, label in inf_x:
                    ax.text(x, top, label, ha="center", va="bottom", fontsize=7)
            ax.set_yscale("log")
            ax.set_ylim(0.01, top * 3)
            ax.axhline(4.0, color="#555555", lw=0.8, ls="--")
            ax.set_xticks(range(len(tags)))
            ax.set_xticklabels(tags)
            ax.set_ylabel("worst error (ULP)")
            ax.set_title("worst value/gradient error by value regime (dashed: default 4 ULP)")
            ax.legend(fontsize=7, frameon=False)
            fig.subplots_adjust(left=0.1, right=0.99, bottom=0.12, top=0.88)
            return self.png(fig)


_TAG_ORDER = ("regular", "tiny", "extreme", "boundary", "kink", "singular", "shape", "label", "tie", "invalid")


def _tag_key(t: str) -> tuple[int, str]:
    return (_TAG_ORDER.index(t) if t in _TAG_ORDER else len(_TAG_ORDER), t)


def _bin(x: float) -> int:
    if math.isnan(x) or math.isinf(x):
        return len(BIN_LABELS) - 1
    for i, edge in enumerate(BIN_EDGES):
        if x <= edge:
            return i
    return len(BIN_EDGES)


# ============================================================== fixtures (inputs for the drill-down)


def _inputs_lookup(backends: list[BackendResults], fixtures_dir: str | None) -> dict[tuple[str, str, int], str]:
    """(fixtures digest, loss, case index) -> abbreviated inputs, for the losses with failing
    checks, where a fixtures directory with the results' digest is at hand."""
    wanted: dict[str, set[str]] = defaultdict(set)
    for br in backends:
        for r in br.records:
            if r["status"] in ("fail", "error", "known"):
                wanted[str(br.provenance.get("fixtures_digest", ""))].add(r["loss"])
    if not wanted:
        return {}
    try:
        from . import fixtures as fx

        directory = Path(fixtures_dir) if fixtures_dir else fx.default_dir()
        digest = fx.manifest_digest(directory)
        if digest not in wanted:
            return {}
        cases = fx.load(directory, losses=wanted[digest])
    except Exception:  # inputs are a convenience; the report never depends on them
        return {}
    return {(digest, c.loss, c.index): _abbrev_inputs(c.inputs) for c in cases}


def _abbrev_inputs(inputs: dict[str, Any], limit: int = 4) -> str:
    parts = []
    for k, v in inputs.items():
        flat = v.ravel()
        body = ", ".join(str(x) for x in flat[:limit]) + (", …" if flat.size > limit else "")
        parts.append(f"{k}{list(v.shape)}=[{body}]")
    return "; ".join(parts)


# ============================================================== HTML

CSS = """
body{font:14px/1.4 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:1.5em auto;max-width:1400px;padding:0 1em;color:#1d1d1d}
h1{font-size:1.6em;margin:.2em 0}h2{border-bottom:2px solid #ddd;padding-bottom:.2em;margin-top:2em}h3{margin-top:1.6em}
.prov{font:12px/1.4 ui-monospace,Menlo,Consolas,monospace;color:#444;background:#f6f6f6;padding:.4em .6em;overflow-wrap:anywhere}
.note{color:#555}.warn{background:#fff3cd;padding:.3em .6em}
table{border-collapse:collapse;margin:.5em 0}th,td{border:1px solid #ccc;padding:2px 6px;vertical-align:top}
th{background:#f0f0f0;position:sticky;top:0;text-align:left}td.n{text-align:right;font-variant-numeric:tabular-nums}
td.c{text-align:center;font-variant-numeric:tabular-nums;min-width:4.5em}td.loss{font-weight:600}
.fails{background:#f4a3a3}.known{background:#fdd49e}.stable{background:#e3f0a8}.conforms{background:#b8e0b0}.unsupported{background:#e4e4e4;color:#666}
.legend span{display:inline-block;padding:1px 8px;margin-right:6px;border:1px solid #bbb}
.badge{display:inline-block;min-width:2.4em;padding:0 3px;margin:1px;border:1px solid #bbb;font-size:11px;text-align:center}
code,.mono{font:12px ui-monospace,Menlo,Consolas,monospace;overflow-wrap:anywhere}
details{margin:.3em 0}summary{cursor:pointer}img{max-width:100%;display:block;margin:.3em 0}
nav a{margin-right:1em}.small{font-size:12px}td.msg{max-width:40em}
"""


def _e(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "x"


def provenance_line(backends: list[BackendResults]) -> str:
    """The one line that says where the results came from (and the only date in a report)."""
    parts = []
    for br in backends:
        p = br.provenance
        fx_digest = str(p.get("fixtures_digest") or "?")[:12]
        exp = p.get("expectations")
        bits = [
            f"python {p.get('python', '?')}",
            f"numpy {p.get('numpy', '?')}",
            str(p.get("platform", "?")),
            f"fixtures {fx_digest}",
            f"policy {p.get('policy_version', '?')}",
        ]
        if exp:
            bits.append(f"expectations {Path(str(exp)).name}")
        bits.append(f"run {p.get('created', '?')}")
        parts.append(f"{br.label} ({', '.join(bits)}) from {', '.join(br.sources)}")
    return "Provenance: " + ("; ".join(parts) if parts else "no results")


def _legend() -> str:
    return '<p class="legend">' + "".join(
        f'<span class="{c}">{_e(CATEGORY_LABEL[c])}</span>' for c in (CONFORMS, STABLE, KNOWN, FAILS, UNSUPPORTED)
    ) + '<span class="note" style="border:0">cells: worst error in ULPs over the value and gradient checks; colour: the worst verdict of all checks</span></p>'


def _cell_td(cell: Cell | None, extra: str = "") -> str:
    if cell is None or cell.total == 0:
        return '<td class="c"></td>'
    cat = cell.category
    text = fmt_ulps(cell.worst) or ("—" if cat == UNSUPPORTED else "✓" if cat in (CONFORMS, STABLE) else "✗")
    nfail = cell.counts[FAILS]
    if nfail:
        text += f" <small>({nfail}✗)</small>"
    return f'<td class="c {cat}" title="{_e(cell.title())}">{text}{extra}</td>'


def _summary_table(sums: list[Summary]) -> str:
    out = ["<table><tr><th>backend</th><th>checks</th>"]
    out += [f'<th class="{c}">{_e(CATEGORY_LABEL[c])}</th>' for c in (CONFORMS, STABLE, KNOWN, FAILS, UNSUPPORTED)]
    out.append("<th>losses</th><th>worst error (ULP)</th><th>unused expectations</th></tr>")
    for s in sums:
        t = s.totals
        out.append(f'<tr><td><a href="#b-{_slug(s.br.label)}">{_e(s.br.label)}</a></td><td class="n">{t.total}</td>')
        out += [f'<td class="n">{t.counts[c]}</td>' for c in (CONFORMS, STABLE, KNOWN, FAILS, UNSUPPORTED)]
        out.append(
            f'<td class="n">{len(s.by_loss)}</td><td class="n">{fmt_ulps(t.worst)}</td>'
            f'<td class="n">{len(s.br.unused_expectations)}</td></tr>'
        )
    out.append("</table>")
    return "\n".join(out)


def _cross_table(sums: list[Summary]) -> str:
    rows = sorted({row for s in sums for row in s.matrix}, key=_row_key)
    dts = sorted({d for s in sums for d in s.dtypes}, key=_dtype_key)
    out = [
        "<table><tr><th>loss</th><th>option set</th>",
        *[f"<th>{_e(s.br.label)}</th>" for s in sums],
        "<th>conforming backends</th></tr>",
    ]
    last = None
    for row in rows:
        loss, opts = row
        name = _e(short(loss)) if loss != last else ""
        last = loss
        out.append(f'<tr><td class="loss" title="{_e(loss)}">{name}</td><td class="mono">{_e(opts or "defaults")}</td>')
        conforming = []
        for s in sums:
            cells = s.matrix.get(row)
            if not cells:
                out.append('<td class="c unsupported" title="not run">not run</td>')
                continue
            badges = []
            for d in dts:
                c = cells.get(d)
                if c is None or c.total == 0:
                    continue
                badges.append(
                    f'<span class="badge {c.category}" title="{_e(d + ": " + c.title())}">{_e(d.replace("float", "f"))}'
                    f"{(' ' + fmt_ulps(c.worst)) if c.worst is not None else ''}</span>"
                )
            out.append(f'<td>{"".join(badges)}</td>')
            cats = {c.category for c in cells.values() if c.total}
            if cats and cats <= {CONFORMS, STABLE}:
                conforming.append(s.br.label)
        out.append(f'<td class="small">{_e(", ".join(conforming) or "none")}</td></tr>')
    out.append("</table>")
    return "\n".join(out)


def _split_invalid(msg: str) -> tuple[str, str]:
    """(the documented rule, what the backend did) from an invalid-check message such as
    ``raised for invalid input (RULE): ValueError: ...``."""
    start = msg.find("(")
    if start < 0:
        return "", msg
    depth = 0
    for i in range(start, len(msg)):
        depth += {"(": 1, ")": -1}.get(msg[i], 0)
        if depth == 0:
            rule, rest = msg[start + 1 : i], msg[i + 1 :].lstrip(": ").strip()
            return rule, rest
    return "", msg


def _invalid_table(sums: list[Summary]) -> str:
    keyed: dict[tuple, dict[str, dict]] = defaultdict(dict)
    for s in sums:
        for r in s.br.records:
            if r["check"] == "invalid":
                keyed[(short(r["loss"]).lower(), r["loss"], r["name"], r["options_label"], r["dtype"])][s.br.label] = r
    if not keyed:
        return '<p class="note">No invalid-input cases in these results.</p>'
    out = [
        "<table><tr><th>loss</th><th>case</th><th>dtype</th><th>documented rule</th>",
        *[f"<th>{_e(s.br.label)}</th>" for s in sums],
        "</tr>",
    ]
    tally = {s.br.label: defaultdict(int) for s in sums}
    for key in sorted(keyed):
        _, loss, name, opts, d = key
        rule = ""
        for r in keyed[key].values():
            rule = rule or _split_invalid(str(r.get("message") or ""))[0]
        out.append(
            f'<tr><td class="loss">{_e(short(loss))}</td><td class="mono" title="{_e(opts)}">{_e(name)}</td>'
            f'<td>{_e(d)}</td><td class="small">{_e(rule)}</td>'
        )
        for s in sums:
            r = keyed[key].get(s.br.label)
            if r is None:
                out.append("<td></td>")
                continue
            verdict = r["verdict"] if r["status"] != "known" else f"known: {r['verdict']}"
            tally[s.br.label][r["verdict"]] += 1
            msg = str(r.get("message") or "")
            what = _split_invalid(msg)[1] if r["verdict"] in ("raised", "silently returned") else msg
            out.append(
                f'<td class="{category(r)} small" title="{_e(msg)}"><b>{_e(verdict)}</b> {_e(_clip(what, 110))}</td>'
            )
        out.append("</tr>")
    out.append("</table>")
    lines = [
        f"{_e(label)}: " + ", ".join(f"{n} {_e(v)}" for v, n in sorted(t.items())) for label, t in tally.items() if t
    ]
    return '<p class="small">' + "; ".join(lines) + "</p>\n" + "\n".join(out)


def _clip(text: str, n: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def _matrix_table(s: Summary) -> str:
    out = ["<table><tr><th>loss</th><th>option set</th>", *[f"<th>{_e(d)}</th>" for d in s.dtypes], "<th>checks</th></tr>"]
    last = None
    for row in s.rows():
        loss, opts = row
        name = _e(short(loss)) if loss != last else ""
        last = loss
        cells = s.matrix[row]
        n = sum(c.total for c in cells.values())
        out.append(f'<tr><td class="loss" title="{_e(loss)}">{name}</td><td class="mono">{_e(opts or "defaults")}</td>')
        out += [_cell_td(cells.get(d)) for d in s.dtypes]
        out.append(f'<td class="n">{n}</td></tr>')
    out.append("</table>")
    return "\n".join(out)


def _libm_table(s: Summary) -> str:
    out = [
        "<table><tr><th>loss</th>",
        *[f'<th colspan="2">{_e(d)}</th>' for d in s.dtypes],
        "</tr><tr><th></th>",
        *["<th>value</th><th>gradient</th>" for _ in s.dtypes],
        "</tr>",
    ]
    for loss in s.losses():
        out.append(f'<tr><td class="loss" title="{_e(loss)}">{_e(short(loss))}</td>')
        for d in s.dtypes:
            pair = s.value_grad.get(loss, {}).get(d)
            out += [_cell_td(pair[0]), _cell_td(pair[1])] if pair else ['<td class="c"></td>', '<td class="c"></td>']
        out.append("</tr>")
    out.append("</table>")
    return "\n".join(out)


def _regime_table(s: Summary) -> str:
    tags = sorted(s.regime, key=_tag_key)
    out = ["<table><tr><th>loss</th>", *[f"<th>{_e(t)}</th>" for t in tags], "</tr>"]
    for loss in s.losses():
        cells = s.regime_loss.get(loss, {})
        out.append(f'<tr><td class="loss" title="{_e(loss)}">{_e(short(loss))}</td>')
        out += [_cell_td(cells.get(t)) for t in tags]
        out.append("</tr>")
    out.append("</table>")
    return "\n".join(out)


def _drilldown(s: Summary, inputs: dict[tuple[str, str, int], str]) -> str:
    digest = str(s.br.provenance.get("fixtures_digest", ""))
    per_loss: dict[str, list[dict]] = defaultdict(list)
    for r in s.br.records:
        if r["status"] in ("fail", "error", "known"):
            per_loss[r["loss"]].append(r)
    if not per_loss:
        return '<p class="note">No failing checks and no known deviations.</p>'
    out = []
    for loss in sorted(per_loss, key=lambda x: (short(x).lower(), x)):
        recs = per_loss[loss]
        nf = sum(1 for r in recs if r["status"] != "known")
        nk = len(recs) - nf
        head = ", ".join(x for x in (f"{nf} failing" if nf else "", f"{nk} known deviation{'s' * (nk != 1)}" if nk else "") if x)
        out.append(f"<details><summary><b>{_e(short(loss))}</b> — {head}</summary>")
        out.append(
            "<table><tr><th>check</th><th>dtype</th><th>option set</th><th>case</th><th>verdict</th><th>error (ULP)</th>"
            "<th>tolerance</th><th>expected</th><th>observed</th><th>message and inputs</th></tr>"
        )
        recs = sorted(recs, key=lambda r: (r["status"] == "known", _dtype_key(r["dtype"]), r["options_label"], r.get("case", 0), r["check"]))
        for r in recs[:MAX_DRILL]:
            tol = r.get("tolerance") or {}
            tol_text = f"{tol.get('ulps', '')} ULP, stability {tol.get('stability', '')}" if tol else ""
            if tol and tol.get("reason") not in (None, "default policy"):
                tol_text += f" ({tol['reason']})"
            where = f" at {r['worst_index']}" if r.get("worst_index") is not None else ""
            msg = str(r.get("message") or "")
            if r["status"] == "known" and r.get("reason"):
                msg = f"known deviation: {r['reason']}. {msg}"
            inp = inputs.get((digest, r["loss"], r.get("case", -1)))
            tags = ", ".join(r.get("tags") or ())
            out.append(
                f'<tr class="{category(r)}"><td class="mono">{_e(r["check"])}</td><td>{_e(r["dtype"])}</td>'
                f'<td class="mono">{_e(r["options_label"] or "defaults")}</td>'
                f'<td class="mono" title="{_e(r["id"])}">{int(r.get("case", 0)):03d} {_e(r.get("name", ""))} <small>({_e(tags)})</small></td>'
                f"<td>{_e(r['verdict'])}</td><td class=\"n\">{fmt_ulps(_num(r.get('error_ulps')))}</td>"
                f'<td class="small">{_e(tol_text)}</td><td class="mono">{_e(r.get("expected") or "")}</td>'
                f'<td class="mono">{_e(r.get("observed") or "")}{_e(where)}</td>'
                f'<td class="msg small">{_e(msg)}'
                + (f'<br><span class="mono">inputs: {_e(_clip(inp, 400))}</span>' if inp else "")
                + "</td></tr>"
            )
        out.append("</table>")
        if len(recs) > MAX_DRILL:
            out.append(f'<p class="note">… and {len(recs) - MAX_DRILL} more in {JSON_FILE}.</p>')
        out.append("</details>")
    return "\n".join(out)


def _backend_section(s: Summary, plots: _Plots, inputs: dict) -> str:
    br = s.br
    slug = _slug(br.label)
    out = [f'<section id="b-{slug}"><h2>{_e(br.label)}</h2>']
    build = br.provenance.get("backend", {}).get("build") or {}
    if build:
        out.append(f'<p class="small">build: <span class="mono">{_e(json.dumps(build, sort_keys=True))}</span></p>')
    exp = br.provenance.get("expectations")
    if exp:
        out.append(f'<p class="small">expectations: <span class="mono">{_e(exp)}</span></p>')
    if br.unused_expectations:
        out.append('<p class="warn">Listed deviations that did not occur (the expectation file can drop them):</p><ul>')
        for u in br.unused_expectations:
            if isinstance(u, dict):
                out.append(f"<li>{_e(u.get('describe', u.get('entry', '?')))}: {_e(u.get('reason', ''))}</li>")
            else:
                out.append(f"<li>{_e(u)}</li>")
        out.append("</ul>")
    if not br.records:
        out.append('<p class="warn">No records: this results file holds no checks (was the run filtered to nothing?).</p></section>')
        return "\n".join(out)
    out.append("<h3>Matrix: loss × option set × dtype</h3>")
    out.append(_matrix_table(s))
    out.append("<h3>Worst error per loss and dtype (libm style)</h3>")
    out.append('<p class="note small">Worst error in ULPs of the exact value over all option sets and cases; the colour is the worst verdict of those checks.</p>')
    out.append(_libm_table(s))
    out.append("<h3>ULP-error histograms</h3>")
    out.append(
        '<p class="note small">Per loss and dtype: the share of the value checks (blue) and gradient checks (orange) whose '
        "worst element fell within each error bin, and the worst error (right). Dashed: the default 4-ULP tolerance; "
        "errors beyond it may still be within the stability bound.</p>"
    )
    if not plots.available:
        out.append('<p class="warn">matplotlib is not installed (pip install "lossconf[report]"); plots omitted.</p>')
    elif any(s.hist.values()):
        out.append(f'<img alt="ULP-error histograms per loss and dtype" src="data:image/png;base64,{plots.histograms(s)}">')
    else:
        out.append('<p class="note">No value or gradient measurements.</p>')
    out.append("<h3>Worst error by value regime</h3>")
    if s.regime:
        if plots.available:
            out.append(f'<img alt="worst error by value regime" src="data:image/png;base64,{plots.regimes(s)}">')
        out.append(_regime_table(s))
    else:
        out.append('<p class="note">No value or gradient measurements.</p>')
    out.append("<h3>Failing checks and known deviations</h3>")
    out.append(_drilldown(s, inputs))
    out.append("</section>")
    return "\n".join(out)


def render_html(backends: list[BackendResults], sums: list[Summary], inputs: dict) -> str:
    plots = _Plots()
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">',
        "<title>lossconf compatibility report</title>",
        f"<style>{CSS}</style></head><body>",
        "<h1>lossconf compatibility report</h1>",
        f'<p class="prov">{_e(provenance_line(backends))}</p>',
    ]
    digests = {str(b.provenance.get("fixtures_digest")) for b in backends}
    if len(digests) > 1:
        out.append('<p class="warn">The backends were run on different fixtures (digests differ); cases are matched by id.</p>')
    total = sum(s.totals.total for s in sums)
    if total == 0:
        out.append(
            f'<p class="warn">Empty report: the results ({_e(", ".join(x for b in backends for x in b.sources))}) '
            "contain no records, so nothing was checked (was the run filtered to nothing?).</p></body></html>"
        )
        return "\n".join(out) + "\n"
    out.append(
        '<nav><a href="#summary">Summary</a><a href="#cross">Cross-framework</a><a href="#invalid">Invalid input</a>'
        + "".join(f'<a href="#b-{_slug(s.br.label)}">{_e(s.br.label)}</a>' for s in sums)
        + "</nav>"
    )
    out.append('<section id="summary"><h2>Summary</h2>')
    out.append(_legend())
    out.append(_summary_table(sums))
    out.append("</section>")
    out.append('<section id="cross"><h2>Cross-framework: which backends conform, loss by loss, option by option</h2>')
    out.append('<p class="note small">Each badge is one dtype, coloured by the worst verdict of its checks, with the worst error in ULPs; hover for counts.</p>')
    out.append(_cross_table(sums))
    out.append("</section>")
    out.append('<section id="invalid"><h2>Invalid input: raised or silently returned</h2>')
    out.append('<p class="note small">Input the documentation rules out should raise; a backend that returns a number instead hides the mistake from its user.</p>')
    out.append(_invalid_table(sums))
    out.append("</section>")
    for s in sums:
        out.append(_backend_section(s, plots, inputs))
    out.append("</body></html>")
    return "\n".join(out) + "\n"


# ============================================================== Markdown


def _md(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render_markdown(backends: list[BackendResults], sums: list[Summary]) -> str:
    out = ["## lossconf compatibility report", "", _md(provenance_line(backends)), ""]
    total = sum(s.totals.total for s in sums)
    if total == 0:
        out += ["**Empty report**: the results contain no records, so nothing was checked (was the run filtered to nothing?).", ""]
        return "\n".join(out)
    legend = " · ".join(f"{CATEGORY_MARK[c]} {CATEGORY_LABEL[c]}" for c in (CONFORMS, STABLE, KNOWN, FAILS, UNSUPPORTED))
    out += [legend, ""]
    out.append("| backend | checks | " + " | ".join(f"{CATEGORY_MARK[c]} {CATEGORY_LABEL[c]}" for c in (CONFORMS, STABLE, KNOWN, FAILS, UNSUPPORTED)) + " | worst ULP |")
    out.append("|---|---:|" + "---:|" * 5 + "---:|")
    for s in sums:
        t = s.totals
        out.append(
            f"| {_md(s.br.label)} | {t.total} | " + " | ".join(str(t.counts[c]) for c in (CONFORMS, STABLE, KNOWN, FAILS, UNSUPPORTED))
            + f" | {fmt_ulps(t.worst)} |"
        )
    out.append("")
    if len(sums) > 1:
        losses = sorted({loss for s in sums for loss in s.by_loss}, key=lambda x: (short(x).lower(), x))
        out += ["### Cross-framework (worst verdict over option sets and dtypes)", ""]
        out.append("| loss | " + " | ".join(_md(s.br.label) for s in sums) + " |")
        out.append("|---|" + "---|" * len(sums))
        for loss in losses:
            row = []
            for s in sums:
                merged = Cell()
                for c in s.by_loss.get(loss, {}).values():
                    for k in CATEGORIES:
                        merged.counts[k] += c.counts[k]
                    merged.worst = _worse(merged.worst, c.worst)
                row.append(_md_cell(merged))
            out.append(f"| {_md(short(loss))} | " + " | ".join(row) + " |")
        out.append("")
    for s in sums:
        out += [f"### {_md(s.br.label)}", ""]
        if not s.br.records:
            out += ["No records: this results file holds no checks.", ""]
            continue
        out.append("| loss | " + " | ".join(s.dtypes) + " | failing checks |")
        out.append("|---|" + "---|" * len(s.dtypes) + "---:|")
        for loss in s.losses():
            cells = s.by_loss[loss]
            nf = sum(c.counts[FAILS] for c in cells.values())
            out.append(f"| {_md(short(loss))} | " + " | ".join(_md_cell(cells.get(d)) for d in s.dtypes) + f" | {nf} |")
        out.append("")
        fails = [r for r in s.br.records if r["status"] in ("fail", "error")]
        if fails:
            out += [f"<details><summary>{len(fails)} failing check(s)</summary>", ""]
            for r in fails[:MAX_MD_LIST]:
                e = fmt_ulps(_num(r.get("error_ulps")))
                out.append(
                    f"- `{_md(r['id'])}`: {_md(r['verdict'])}" + (f", {e} ULP" if e else "")
                    + f" — {_md(_clip(str(r.get('message') or ''), 160))}"
                )
            if len(fails) > MAX_MD_LIST:
                out.append(f"- … and {len(fails) - MAX_MD_LIST} more (see the HTML report)")
            out += ["", "</details>", ""]
        silent = [r for r in s.br.records if r["check"] == "invalid" and r["verdict"] == "silently returned"]
        raised = sum(1 for r in s.br.records if r["check"] == "invalid" and r["verdict"] == "raised")
        if silent or raised:
            out.append(f"Invalid input: {raised} raised, {len(silent)} silently returned.")
            out.append("")
        if s.br.unused_expectations:
            out.append(f"{len(s.br.unused_expectations)} listed deviation(s) no longer occur.")
            out.append("")
    return "\n".join(out)


def _md_cell(c: Cell | None) -> str:
    if c is None or c.total == 0:
        return ""
    cat = c.category
    text = CATEGORY_MARK[cat]
    if c.worst is not None:
        text += f" {fmt_ulps(c.worst)}"
    return text


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
    except ResultsError as err:
        print(f"lossconf report: {err}", file=sys.stderr)
        return 2
    for kind, path in files.items():
        print(f"{kind:<8} {path}")
    return 0
