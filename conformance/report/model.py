"""The data of a report: reading results files (one backend each, or a merged report),
and aggregating their records per backend -- the matrix, per-loss and per-regime cells,
histogram counts, failures grouped by cause and known deviations grouped by root cause.
Everything the renderers show is computed here; they only lay it out."""

from __future__ import annotations

import json
import math
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..backends import BUILTIN
from ..harness.runner import CONTROL_RAISED

RESULTS_FORMAT = "lossconf-results"  # written by conformance.session
RESULTS_VERSION = 1
REPORT_FORMAT = "lossconf-report"  # the merged JSON written here
REPORT_VERSION = 1

HTML_FILE, MARKDOWN_FILE, JSON_FILE = "index.html", "summary.md", "report.json"

STATUSES = ("pass", "fail", "error", "raised", "skip", "known")  # the statuses the harness writes today
# "raised": the backend raised on a case whose documented value is +inf (conformance.harness.runner.RAISED):
# not a match, so it is shown with the failures (lossconf run fails on it unless an entry lists it).
FAILING = ("fail", "error", "raised")
REQUIRED = ("id", "loss", "options_label", "dtype", "check", "status", "verdict")
DTYPE_ORDER = ("float16", "bfloat16", "float32", "float64")

# verdict categories of the report, worst first (a cell shows the worst of its checks).
# OTHER holds the checks whose status is none of STATUSES (an outcome a newer harness
# writes after this renderer): they are shown by their status name, never dropped, and rank
# after failures (someone must look at them) but before known deviations.
FAILS, OTHER, KNOWN, STABLE, CONFORMS, UNSUPPORTED = "fails", "other", "known", "stable", "conforms", "unsupported"
CATEGORIES = (FAILS, OTHER, KNOWN, STABLE, CONFORMS, UNSUPPORTED)
CATEGORY_LABEL = {
    CONFORMS: "conforms",
    STABLE: "within stability bound",
    KNOWN: "known deviation",
    FAILS: "fails",
    OTHER: "other outcome",
    UNSUPPORTED: "unsupported",
}
CATEGORY_COLOUR = {  # background colours (colour-blind-safe ordering: blue..orange..red)
    CONFORMS: "#b8e0b0",
    STABLE: "#e3f0a8",
    KNOWN: "#fdd49e",
    FAILS: "#f4a3a3",
    OTHER: "#d9c8ee",
    UNSUPPORTED: "#e4e4e4",
}
CATEGORY_MARK = {CONFORMS: "✅", STABLE: "☑️", KNOWN: "⚠️", FAILS: "❌", OTHER: "❔", UNSUPPORTED: "➖"}

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
        # a string with no closing quote runs to the end of the text: cut inside it
        cut = err.pos >= len(text.rstrip()) - 1 or err.msg.startswith("Unterminated string")
        what = "truncated" if cut else "not valid JSON"
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
        if not isinstance(rec["status"], str) or not rec["status"].strip():
            raise ResultsError(f"{path}: {where}record {i} ({rec['id']}) has a malformed status {rec['status']!r}")
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
    version) from several files is merged if the files hold different checks -- e.g. a
    run of torch's eager modes and a run of its compiled mode on a sample (``tox -e
    torch``): one backend whose records hold every mode, counted once (see :func:`_merge`)."""
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
            merged[part.label] = _merge(have, part)
    return list(merged.values())


def _merge(a: BackendResults, b: BackendResults) -> BackendResults:
    """Two disjoint runs of one backend as one: their records and sources; the provenance
    of the first, with the modes of both (a mode one run did not select is not "not run"
    if the other ran it) and both run dates; the unused expectation entries once each,
    and only those that neither run used (an entry is used where a known deviation
    carries its reason)."""
    records = a.records + b.records
    prov = dict(a.provenance)
    modes = [*(a.provenance.get("modes") or []), *(b.provenance.get("modes") or [])]
    ran = {mode_of(r) for r in records} | set(modes)
    if modes or "modes" in prov:
        prov["modes"] = sorted(dict.fromkeys(modes), key=_mode_key)
    not_run: dict[str, Any] = {}
    for part in (a, b):
        for m, why in (part.provenance.get("modes_not_run") or {}).items():
            if m not in ran:
                not_run[m] = not_run.get(m) or why  # a reason of the backend's own over "not selected"
    if not_run or "modes_not_run" in prov:
        prov["modes_not_run"] = {m: not_run[m] for m in sorted(not_run, key=_mode_key)}
    dates = list(dict.fromkeys(str(x.provenance.get("created")) for x in (a, b) if x.provenance.get("created")))
    if len(dates) > 1:
        prov["created"] = " and ".join(dates)
    used = {str(r.get("reason")) for r in records if r["status"] == "known"}
    unused: list[Any] = []
    seen: set[str] = set()
    for u in a.unused_expectations + b.unused_expectations:
        key = json.dumps(u, sort_keys=True, default=str)
        if key in seen or (isinstance(u, dict) and str(u.get("reason")) in used):
            continue
        seen.add(key)
        unused.append(u)
    return BackendResults(a.source, prov, unused, records, a.sources + b.sources)


# ============================================================== aggregation


def category(rec: dict[str, Any]) -> str:
    s = rec["status"]
    if s in FAILING:
        return FAILS
    if s == "known":
        return KNOWN
    if s == "skip":
        return UNSUPPORTED
    if s != "pass":
        return OTHER  # an outcome this renderer does not know: shown by its name
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
    #: checks of category OTHER by their status name (e.g. {"quarantined": 2})
    others: dict[str, int] = field(default_factory=dict)
    #: why the checks skipped as unsupported were not run (the skip messages, first seen first)
    skipped_why: dict[str, None] = field(default_factory=dict)

    def add(self, rec: dict[str, Any]) -> None:
        cat = category(rec)
        self.counts[cat] += 1
        if cat == OTHER:
            self.others[str(rec["status"])] = self.others.get(str(rec["status"]), 0) + 1
        elif cat == UNSUPPORTED and len(self.skipped_why) < 3:
            self.skipped_why.setdefault(_clip(str(rec.get("message") or "no reason given"), 200), None)
        e = _err(rec)
        if e is not None and (self.worst is None or _rank(e) > _rank(self.worst)):
            self.worst, self.worst_id = e, rec["id"]

    def merge(self, other: Cell) -> None:
        for k in CATEGORIES:
            self.counts[k] += other.counts[k]
        for k, n in other.others.items():
            self.others[k] = self.others.get(k, 0) + n
        for k in other.skipped_why:
            if len(self.skipped_why) < 3:
                self.skipped_why.setdefault(k, None)
        if other.worst is not None and (self.worst is None or _rank(other.worst) > _rank(self.worst)):
            self.worst, self.worst_id = other.worst, other.worst_id

    @property
    def category(self) -> str | None:
        for c in CATEGORIES:
            if self.counts[c]:
                return c
        return None

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def other_names(self) -> str:
        """The status names of the checks of category OTHER: ``quarantined`` or ``quarantined, timeout``."""
        return ", ".join(sorted(self.others))

    def title(self) -> str:
        parts = []
        for c in CATEGORIES:
            if not self.counts[c]:
                continue
            if c == OTHER:
                parts += [f"{n} {name}" for name, n in sorted(self.others.items())]
            else:
                parts.append(f"{self.counts[c]} {CATEGORY_LABEL[c]}")
        if self.worst_id:
            parts.append(f"worst: {self.worst_id}")
        if self.skipped_why and self.counts[UNSUPPORTED]:
            parts.append("skipped: " + " / ".join(self.skipped_why))
        return "; ".join(parts)


def _dtype_key(d: str) -> tuple[int, str]:
    return (DTYPE_ORDER.index(d) if d in DTYPE_ORDER else len(DTYPE_ORDER), d)


MODE_ORDER = ("forward", "grad", "compiled", "hvp", "backward-twice")


def _mode_key(m: str) -> tuple[int, str]:
    return (MODE_ORDER.index(m) if m in MODE_ORDER else len(MODE_ORDER), m)


def _row_key(row: tuple[str, ...]) -> tuple:
    return (short(row[0]).lower(), row[0], row[1], *(_mode_key(m) for m in row[2:]))


def mode_of(rec: dict[str, Any]) -> str:
    """The record's mode (forward, grad, compiled, hvp, backward-twice), or "" for results
    written before calls had modes."""
    return str(rec.get("mode") or "")


@dataclass
class Summary:
    """Everything the renderers need about one backend."""

    br: BackendResults
    matrix: dict[tuple[str, str, str], dict[str, Cell]]  # (loss, options_label, mode) -> dtype -> cell
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
            matrix[(loss, r["options_label"], mode_of(r))][d].add(r)
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

    @property
    def has_modes(self) -> bool:
        return any(row[2] for row in self.matrix)

    def rows(self) -> list[tuple[str, str, str]]:
        return sorted(self.matrix, key=_row_key)

    def option_rows(self) -> list[tuple[str, str]]:
        """(loss, option set) of every row, whatever its modes."""
        return sorted({row[:2] for row in self.matrix}, key=_row_key)

    def losses(self) -> list[str]:
        return sorted(self.by_loss, key=lambda x: (short(x).lower(), x))

    def modes(self) -> list[str]:
        """The modes this backend's records ran, in the protocol's order ("" for records
        written before calls had modes)."""
        return sorted({row[2] for row in self.matrix}, key=_mode_key)

    def mode_dtypes(self, mode: str) -> list[str]:
        """The dtypes checked in ``mode``."""
        return sorted({d for row, cells in self.matrix.items() if row[2] == mode for d in cells}, key=_dtype_key)

    def modes_not_run(self) -> dict[str, str]:
        """Every mode the results say was not run, with the reason (:func:`modes_not_run`)."""
        return modes_not_run(self.br, set(self.modes()))

    def skipped_modes(self) -> dict[str, str]:
        """The modes run whose every check the backend skipped (e.g. torch's compiled mode
        where ``torch.compile`` does not work: every call declined with that reason), with
        the skip reasons -- unless every mode was skipped whole."""
        out = {}
        for m in self.modes():
            cell = Cell()
            for (_, _, mode), cells in self.matrix.items():
                if mode == m:
                    for c in cells.values():
                        cell.merge(c)
            if cell.total and cell.counts[UNSUPPORTED] == cell.total:
                out[m] = "every check skipped: " + " / ".join(cell.skipped_why)
        return {} if len(out) == len(self.modes()) else out

    def shown_modes(self) -> list[str]:
        """The modes shown as columns: those run, but for the ones skipped whole."""
        skipped = self.skipped_modes()
        return [m for m in self.modes() if m not in skipped]

    def not_run_groups(self) -> list[tuple[list[str], str]]:
        """:meth:`modes_not_run` and :meth:`skipped_modes` as (modes, reason): modes with
        the same reason together."""
        return group_reasons({**self.modes_not_run(), **self.skipped_modes()})

    def loss_mode_cells(self, loss: str) -> dict[str, dict[str, Cell]]:
        """mode -> dtype -> the cell of every check of ``loss`` (all option sets)."""
        out: dict[str, dict[str, Cell]] = defaultdict(lambda: defaultdict(Cell))
        for (lo, _, mode), cells in self.matrix.items():
            if lo == loss:
                for d, c in cells.items():
                    out[mode][d].merge(c)
        return out


def modes_not_run(br: BackendResults, ran: set[str]) -> dict[str, str]:
    """Every mode the results say was not run (``provenance.modes_not_run``) and not in
    ``ran`` (the modes with records), with the reason: the backend's own (it does not run
    that mode), or, where the backend runs it but the run did not select it, that."""
    declared = br.provenance.get("modes_not_run")
    if not isinstance(declared, dict):
        return {}
    out = {}
    for m in sorted(declared, key=_mode_key):
        if m in ran:
            continue
        why = declared[m]
        out[str(m)] = str(why) if why else f"the backend runs it, but this run did not select it (lossconf run {br.name} --mode {m})"
    return out


def group_reasons(reasons: dict[str, str]) -> list[tuple[list[str], str]]:
    """mode -> reason as (modes, reason), the modes with the same reason together."""
    groups: dict[str, list[str]] = {}
    for m, why in reasons.items():
        groups.setdefault(why, []).append(m)
    return [(ms, why) for why, ms in groups.items()]


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
            if r["status"] in (*FAILING, "known"):
                wanted[str(br.provenance.get("fixtures_digest", ""))].add(r["loss"])
    if not wanted:
        return {}
    try:
        from .. import fixtures as fx

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



def _split_invalid(msg: str) -> tuple[str, str]:
    """(the documented rule, what the backend did) from an invalid-check message, as the
    runner writes them: ``raised for invalid input (RULE): ERROR`` or ``input the
    documentation rules out (RULE) was accepted and returned X``. The rule may hold
    parentheses of its own (``labels must be in [0, C)``), so it is cut at the text that
    follows it, not at the first closing parenthesis."""
    for head, tail in (("raised for invalid input (", "): "), ("input the documentation rules out (", ") was accepted and returned")):
        if msg.startswith(head):
            end = msg.find(tail, len(head)) if tail == "): " else msg.rfind(tail)
            if end >= 0:
                rule, rest = msg[len(head) : end], msg[end + len(tail) :].strip()
                if tail != "): ":
                    rest = "returned " + rest
                return rule, rest
    return "", msg


def _clip(text: str, n: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"



# ============================================================== failures and deviations by cause

MAX_GROUP_ROWS = 40  # failing checks shown in full per cause at the top of the HTML
#: the backends ``lossconf run`` knows by name (mxnet-np, torch, jax too): a repeat command names them
BUILTIN_BACKENDS = tuple(BUILTIN)


def case_id(rec: dict[str, Any]) -> str:
    """The record's case test id: its check id without the check."""
    rid, chk = str(rec["id"]), str(rec["check"])
    return rid[: -len(chk) - 1] if rid.endswith("-" + chk) else rid


_BRACKETS = re.compile(r"\[[^\]]*\]")
_COUNT = re.compile(r"\s*\(\d+ element\(s\)\)")
_NUMBER = re.compile(r"(?<![A-Za-z_])[-+]?(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?", re.IGNORECASE)


def failure_kind(rec: dict[str, Any]) -> str:
    """What went wrong, without the numbers that differ from case to case (the element,
    how many elements, the values), so that checks failing for one cause share it."""
    msg = " ".join(str(rec.get("message") or rec.get("verdict") or "").split())
    if rec["check"] == "invalid":
        rule = _split_invalid(msg)[0]
        if rec.get("verdict") == CONTROL_RAISED:
            return f"raised on invalid input and on its valid control case alike ({rule})" if rule else msg
        return f"input the documentation rules out was silently returned ({rule})" if rule else msg
    msg = _COUNT.sub("", msg)
    msg = _BRACKETS.sub("[…]", msg)
    return _NUMBER.sub("#", msg)


def _severity(rec: dict[str, Any]) -> int:
    """Causes are listed most severe first: the backend failed on valid input; a
    non-finite result where the exact one is finite; a wrong shape, dtype or missing
    gradient; an error beyond tolerance; state kept between calls or modified inputs;
    invalid input silently accepted."""
    msg = str(rec.get("message") or "")
    if rec["status"] == "error":
        return 0
    if category(rec) == OTHER:
        return 3
    if rec["check"] == "invalid":
        return 5
    if rec["check"] in ("repeat", "inputs"):
        return 4
    if rec["check"] == "shape" or "returned no gradient" in msg or " elements, expected " in msg:
        return 2
    if msg.startswith(("nan", "inf", "-inf", "+inf")):
        return 1
    return 3


@dataclass
class Group:
    """The failing checks (or known deviations) of one backend that share a cause."""

    cause: str
    records: list[dict[str, Any]]
    loss: str = ""
    check: str = ""

    @property
    def count(self) -> int:
        return len(self.records)

    @property
    def category(self) -> str:
        """The worst category of its checks (FAILS; OTHER for an outcome this renderer does
        not know; KNOWN for a group of known deviations)."""
        cats = {category(r) for r in self.records}
        return next((c for c in CATEGORIES if c in cats), UNSUPPORTED)

    @property
    def dtypes(self) -> list[str]:
        return sorted({r["dtype"] for r in self.records}, key=_dtype_key)

    @property
    def losses(self) -> list[str]:
        return sorted({short(r["loss"]) for r in self.records}, key=lambda x: (x.lower(), x))

    @property
    def checks(self) -> list[str]:
        return sorted({r["check"] for r in self.records})

    @property
    def modes(self) -> list[str]:
        return sorted({mode_of(r) for r in self.records if mode_of(r)}, key=_mode_key)

    def cases(self) -> list[tuple[str, list[str]]]:
        """(case test id, its checks in this group), in the results' order."""
        out: dict[str, list[str]] = {}
        for r in self.records:
            out.setdefault(case_id(r), []).append(r["check"])
        return list(out.items())


def failure_groups(br: BackendResults) -> list[Group]:
    """The backend's failing checks grouped by (loss, kind of failure) -- a cause shared
    by the value and the gradients of the same cases is one group --, most severe cause
    first, then the most checks, then by loss."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in br.records:
        if r["status"] in FAILING:
            groups.setdefault((r["loss"], failure_kind(r)), []).append(r)
        elif category(r) == OTHER:  # an outcome this renderer does not know: by its name, never dropped
            groups.setdefault((r["loss"], f"outcome {r['status']!r}: {failure_kind(r)}"), []).append(r)
    out = [Group(kind, recs, loss, ", ".join(_check_order(recs))) for (loss, kind), recs in groups.items()]
    out.sort(key=lambda g: (min(map(_severity, g.records)), -g.count, short(g.loss).lower(), g.loss, g.cause))
    return out


def _check_order(recs: list[dict[str, Any]]) -> list[str]:
    seen: dict[str, None] = {}
    for r in recs:
        seen.setdefault(r["check"], None)
    return list(seen)


def known_groups(br: BackendResults) -> list[Group]:
    """The backend's known deviations, one group per root cause (the expectation entry's
    reason), the most checks first."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in br.records:
        if r["status"] == "known":
            groups.setdefault(str(r.get("reason") or "(no reason given)"), []).append(r)
    out = [Group(reason, recs) for reason, recs in groups.items()]
    out.sort(key=lambda g: (-g.count, g.cause))
    return out


def tolerance_text(rec: dict[str, Any]) -> str:
    """The bound the check was held to, computed for its case: ``4 ULP or 28.7 eps x
    scale`` (the stability bound, as the terminal shows it), with a non-default reason."""
    tol = rec.get("tolerance") or {}
    if not tol:
        return ""
    bound = _num(rec.get("bound"))
    parts = [f"{tol.get('ulps', '?'):g} ULP" if isinstance(tol.get("ulps"), (int, float)) else f"{tol.get('ulps', '?')} ULP"]
    if bound is not None:
        parts.append(f"{bound:.3g} eps × scale")
    elif tol.get("stability") is not None:
        parts.append(f"stability factor {tol['stability']:g}")
    text = " or ".join(parts)
    if tol.get("reason") not in (None, "default policy"):
        text += f" ({tol['reason']})"
    return text


def repeat_command(br: BackendResults, rec: dict[str, Any]) -> str:
    """The command that repeats one check (a built-in backend by its name; any other as
    BACKEND, since a results file records the backend's name, not how it was loaded)."""
    import shlex

    name = br.name if br.name in BUILTIN_BACKENDS else "BACKEND"
    return shlex.join(["lossconf", "run", name, "--case", str(rec["id"])])
