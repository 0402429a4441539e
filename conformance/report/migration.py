"""The migration map: for every documented loss and option set, the call each framework
uses for it and, per dtype and mode, whether that call conforms, with the deviation's
cause -- the page a person moving a Gluon model to PyTorch or JAX reads.

It is built from results files only (never from the backends): the call, composition and
notes come from the results' provenance (``provenance.backend.mapping``, which the session
records from a backend's optional ``mapping()``, see :func:`conformance.protocol.mapping_of`);
the verdicts from the records. A record without ``mode`` ran in mode ``grad``. Per (loss,
option set, backend) the (dtype, mode) pairs that share a verdict and its causes are shown
together: known deviations with their expectation reason, failures with their message (one
per kind of failure), skips with their reason -- a loss (or option set) whose every check a
backend skipped is shown as having no counterpart there, with the skip reason.

``lossconf map RESULTS... [-o FILE]`` writes it as Markdown (:func:`render_markdown`); the
HTML report has the same content as its "Migration map" section (:func:`html_view` and
``templates/migration.html.j2``). The same results give byte-identical output.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .model import (
    CATEGORIES,
    CATEGORY_LABEL,
    CATEGORY_MARK,
    CONFORMS,
    FAILS,
    KNOWN,
    OTHER,
    STABLE,
    UNSUPPORTED,
    BackendResults,
    ResultsError,
    _clip,
    category,
    failure_kind,
    group_reasons,
    load_all,
    modes_not_run,
    provenance_line,
    short,
)

#: a record without ``mode`` ran in this mode (results written before calls had modes)
DEFAULT_MODE = "grad"
MODE_ORDER = ("forward", "grad", "compiled", "hvp", "backward-twice")
DTYPE_ORDER = ("float16", "bfloat16", "float32", "float64")
MAX_CAUSE = 300  # characters of one cause shown
NO_COUNTERPART = "no counterpart"
NOT_RECORDED = "mapping not recorded"
NOT_RUN = "not run"


def _dtype_key(d: str) -> tuple[int, str]:
    return (DTYPE_ORDER.index(d) if d in DTYPE_ORDER else len(DTYPE_ORDER), d)


def _mode_key(m: str) -> tuple[int, str]:
    return (MODE_ORDER.index(m) if m in MODE_ORDER else len(MODE_ORDER), m)


def mode_of(rec: dict[str, Any]) -> str:
    """The record's mode; absent means ``grad``."""
    return str(rec.get("mode") or DEFAULT_MODE)


# ====================================================================== the model


@dataclass(frozen=True)
class Cause:
    """Why a check did not simply conform: ``kind`` is the category (fails, known,
    unsupported), ``text`` the message, expectation reason or skip reason, ``checks`` the
    check names it concerns, ``count`` how many checks."""

    kind: str
    text: str
    checks: tuple[str, ...]
    count: int

    def line(self) -> str:
        what = {FAILS: "fails", KNOWN: "known deviation", UNSUPPORTED: "unsupported"}.get(self.kind, "outcome")
        chk = f" ({', '.join(self.checks)})" if self.kind in (FAILS, OTHER) else ""
        return f"{what}{chk}: {self.text} — {self.count} check{'s' if self.count != 1 else ''}"


@dataclass
class Verdict:
    """The (dtype, mode) pairs of one (loss, option set, backend) that share a verdict:
    the worst category of their checks (passes within the stability bound are grouped with
    conforming ones; the category is ``stable`` if any of them needed it), how many of the
    checks run passed, and the causes."""

    category: str
    pairs: list[tuple[str, str]]  # (dtype, mode)
    passed: int
    ran: int
    skipped: int
    causes: list[Cause]
    stable: int = 0  # passes that needed the stability bound

    @property
    def where(self) -> str:
        """``grad: float16, float32`` -- modes that share the same dtypes listed together."""
        by_mode: dict[str, list[str]] = defaultdict(list)
        for d, m in self.pairs:
            by_mode[m].append(d)
        groups: dict[tuple[str, ...], list[str]] = {}
        for m in sorted(by_mode, key=_mode_key):
            groups.setdefault(tuple(sorted(by_mode[m], key=_dtype_key)), []).append(m)
        return "; ".join(f"{', '.join(ms)}: {', '.join(ds)}" for ds, ms in groups.items())

    @property
    def counts(self) -> str:
        if not self.ran:
            return f"{self.skipped} check{'s' if self.skipped != 1 else ''} skipped"
        text = f"{self.passed}/{self.ran} checks pass"
        return text + (f", {self.stable} within the stability bound" if self.stable else "")


@dataclass
class Row:
    """One option set of a loss: per backend its verdicts (None: not run there)."""

    options: str
    invalid_only: bool
    cells: list[list[Verdict] | None]
    #: per backend: the modes it did not run for this option set (those it ran for others,
    #: and those it does not run at all), where it ran any
    not_run: list[list[str]] = field(default_factory=list)


@dataclass
class CallEntry:
    """What a backend calls for a loss: ``status`` is ``mapped``, ``no counterpart``
    (every check of the loss skipped and no mapping for it; ``why`` the skip reasons),
    ``mapping not recorded`` (checks ran, the results hold no mapping for the loss) or
    ``not run`` (no record of the loss)."""

    status: str
    call: str = ""
    composition: str = ""
    notes: str = ""
    unsupported: dict[str, str] = field(default_factory=dict)
    why: list[str] = field(default_factory=list)
    #: the modes the backend ran (for any loss), and the modes it did not run, with why
    modes: list[str] = field(default_factory=list)
    modes_not_run: list[tuple[list[str], str]] = field(default_factory=list)


@dataclass
class LossMap:
    loss: str
    calls: list[CallEntry]
    rows: list[Row]
    #: per backend: the worst category over the loss's checks, and option sets that conform
    overall: list[tuple[str | None, int, int]]


@dataclass
class MigrationMap:
    labels: list[str]  # the backends, in the order of the results given
    losses: list[LossMap]
    provenance: str
    problems: list[str]  # per backend: a mapping the results record as malformed


def recorded_mapping(br: BackendResults) -> tuple[dict[str, dict[str, Any]] | None, str]:
    """The backend's migration map as its results record it, and any error recorded with
    it. ``provenance.backend.mapping`` is the protocol's; a ``migration_map`` inside the
    build information (what the torch backend first wrote) is read the same way."""
    backend = br.provenance.get("backend") or {}
    error = str(backend.get("mapping_error") or "")
    mapping = backend.get("mapping")
    if mapping is None:
        build = backend.get("build") or {}
        mapping = build.get("migration_map") if isinstance(build, dict) else None
    if mapping is None:
        return None, error
    if not isinstance(mapping, dict):
        return None, error or "the recorded mapping is not an object"
    out: dict[str, dict[str, Any]] = {}
    for loss, entry in mapping.items():
        if not isinstance(entry, dict):
            continue
        call = entry.get("call", entry.get(br.name))
        if not isinstance(call, str):
            continue
        unsupported = entry.get("unsupported") or {}
        out[str(loss)] = {
            "call": call,
            "composition": str(entry.get("composition") or ""),
            "notes": str(entry.get("notes") or ""),
            "unsupported": {
                str(k): str(v.get("why", v) if isinstance(v, dict) else v) for k, v in sorted(unsupported.items())
            } if isinstance(unsupported, dict) else {},
        }
    return out, error


def _verdicts(recs: list[dict[str, Any]]) -> list[Verdict]:
    """The records of one (loss, option set, backend), as verdicts per group of (dtype,
    mode) pairs with the same category and causes, worst first."""
    per: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in recs:
        per[(str(r["dtype"]), mode_of(r))].append(r)
    grouped: dict[tuple, dict[str, Any]] = {}
    for pair in sorted(per, key=lambda p: (_dtype_key(p[0]), _mode_key(p[1]))):
        rs = per[pair]
        cats = [category(r) for r in rs]
        worst = next(c for c in CATEGORIES if c in cats)
        kinds: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for r, c in zip(rs, cats):
            if c == FAILS:
                kinds.setdefault((FAILS, failure_kind(r)), []).append(r)
            elif c == KNOWN:
                kinds.setdefault((KNOWN, str(r.get("reason") or "(no reason given)")), []).append(r)
            elif c == UNSUPPORTED:
                kinds.setdefault((UNSUPPORTED, str(r.get("message") or "(no reason given)")), []).append(r)
            elif c == OTHER:  # an outcome this renderer does not know: by its name
                kinds.setdefault((OTHER, f"{r['status']}: {failure_kind(r)}"), []).append(r)
        # passes within the stability bound group with conforming ones (counted apart)
        key = (CONFORMS if worst == STABLE else worst, tuple(sorted(kinds, key=lambda k: (CATEGORIES.index(k[0]), k[1]))))
        g = grouped.setdefault(key, {"pairs": [], "passed": 0, "stable": 0, "ran": 0, "skipped": 0, "causes": defaultdict(list)})
        g["pairs"].append(pair)
        g["passed"] += sum(1 for c in cats if c in (CONFORMS, STABLE))
        g["stable"] += sum(1 for c in cats if c == STABLE)
        g["skipped"] += sum(1 for c in cats if c == UNSUPPORTED)
        g["ran"] += sum(1 for c in cats if c != UNSUPPORTED)
        for k, rr in kinds.items():
            g["causes"][k].extend(rr)
    out = []
    for (worst, kinds), g in grouped.items():
        causes = []
        for k in kinds:
            rr = g["causes"][k]
            text = str(rr[0].get("message") or rr[0].get("verdict") or "") if k[0] == FAILS else k[1]
            if k[0] == OTHER:
                text = f"{rr[0]['status']}: {rr[0].get('message') or rr[0].get('verdict') or ''}"
            checks = tuple(dict.fromkeys(str(r["check"]) for r in rr))
            causes.append(Cause(k[0], _clip(text, MAX_CAUSE), checks, len(rr)))
        shown = STABLE if worst == CONFORMS and g["stable"] else worst
        out.append(Verdict(shown, g["pairs"], g["passed"], g["ran"], g["skipped"], causes, g["stable"]))
    out.sort(key=lambda v: (CATEGORIES.index(v.category), _dtype_key(v.pairs[0][0]), _mode_key(v.pairs[0][1])))
    return out


def _row_key(item: tuple[str, bool]) -> tuple:
    opts, invalid_only = item
    return (invalid_only, opts != "", opts)


def build(backends: list[BackendResults]) -> MigrationMap:
    """The migration map of the backends' results."""
    recs: dict[tuple[str, int, str], list[dict[str, Any]]] = defaultdict(list)  # (loss, backend, options) -> records
    by_loss: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
    options: dict[str, dict[str, bool]] = defaultdict(dict)  # loss -> option set -> invalid-input checks only
    for i, br in enumerate(backends):
        for r in br.records:
            loss, opts = str(r["loss"]), str(r["options_label"])
            recs[(loss, i, opts)].append(r)
            by_loss[(loss, i)].append(r)
            options[loss][opts] = options[loss].get(opts, True) and r["check"] == "invalid"
    mappings = [recorded_mapping(br) for br in backends]
    ran = [sorted({mode_of(r) for r in br.records}, key=_mode_key) for br in backends]
    not_run = [modes_not_run(br, set(ran[i])) for i, br in enumerate(backends)]
    losses = []
    for loss in sorted(options, key=lambda x: (short(x).lower(), x)):
        calls = []
        for i in range(len(backends)):
            call = _call_entry(loss, by_loss.get((loss, i), []), mappings[i][0])
            call.modes, call.modes_not_run = ran[i], group_reasons(not_run[i])
            calls.append(call)
        rows = []
        for opts, invalid_only in sorted(options[loss].items(), key=_row_key):
            cells = [_verdicts(recs[(loss, i, opts)]) if (loss, i, opts) in recs else None for i in range(len(backends))]
            missing = []
            for i in range(len(backends)):
                here = {mode_of(r) for r in recs.get((loss, i, opts), ())}
                missing.append([m for m in MODE_ORDER if here and m not in here and (m in ran[i] or m in not_run[i])])
            rows.append(Row(opts, invalid_only, cells, missing))
        overall = []
        for i in range(len(backends)):
            rs = by_loss.get((loss, i), [])
            cats = {category(r) for r in rs}
            worst = next((c for c in CATEGORIES if c in cats), None)
            cells = [row.cells[i] for row in rows if row.cells[i] is not None]
            good = sum(1 for c in cells if all(v.category in (CONFORMS, STABLE) for v in c))
            overall.append((worst, good, len(cells)))
        losses.append(LossMap(loss, calls, rows, overall))
    problems = [f"{br.label}: {err}" for br, (_, err) in zip(backends, mappings) if err]
    return MigrationMap([br.label for br in backends], losses, provenance_line(backends), problems)


def _call_entry(loss: str, recs: list[dict[str, Any]], mapping: dict[str, dict[str, Any]] | None) -> CallEntry:
    if not recs:
        return CallEntry(NOT_RUN)
    entry = (mapping or {}).get(loss)
    if entry is not None:
        return CallEntry("mapped", entry["call"], entry["composition"], entry["notes"], dict(entry["unsupported"]))
    if all(r["status"] == "skip" for r in recs):
        why = list(dict.fromkeys(str(r.get("message") or "(no reason given)") for r in recs))
        return CallEntry(NO_COUNTERPART, why=why)
    return CallEntry(NOT_RECORDED)


# ====================================================================== Markdown


def _md(text: Any) -> str:
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;").replace("\n", " ")


def _code(text: str) -> str:
    """Inline code in a table cell (backticks inside are shown as quotes)."""
    return "`" + str(text).replace("`", "'").replace("|", "\\|").replace("\n", " ") + "`"


LEGEND = " · ".join(f"{CATEGORY_MARK[c]} {CATEGORY_LABEL[c]}" for c in (CONFORMS, STABLE, KNOWN, FAILS, UNSUPPORTED))


def _md_call(c: CallEntry) -> str:
    if c.status == NO_COUNTERPART:
        return f"{CATEGORY_MARK[UNSUPPORTED]} **no counterpart**: " + _md("; ".join(c.why))
    if c.status == NOT_RECORDED:
        return "<br>".join(["(checks ran; the results record no mapping for this loss)", *_md_modes(c)])
    if c.status == NOT_RUN:
        return "not run"
    parts = [_code(c.call)]
    if c.composition:
        parts.append("composition: " + _md(c.composition))
    if c.notes:
        parts.append("notes: " + _md(c.notes))
    for opt, why in c.unsupported.items():
        parts.append(f"not mapped: {_md(opt)}: {_md(why)}")
    parts += _md_modes(c)
    return "<br>".join(parts)


def _md_modes(c: CallEntry) -> list[str]:
    out = [f"modes run: {_md(', '.join(c.modes))}"] if c.modes else []
    for ms, why in c.modes_not_run:
        out.append(f"{CATEGORY_MARK[UNSUPPORTED]} not run: {_md(', '.join(ms))}: {_md(why)}")
    return out


def _label(v: Verdict) -> str:
    """The verdict's label; an outcome this renderer does not know by its name."""
    if v.category == OTHER:
        names = sorted({c.text.split(":", 1)[0] for c in v.causes if c.kind == OTHER})
        return f"{CATEGORY_LABEL[OTHER]}: {', '.join(names)}"
    return CATEGORY_LABEL[v.category]


def _md_cell(cell: list[Verdict] | None, call: CallEntry, not_run: list[str]) -> str:
    if cell is None:
        return NOT_RUN
    if call.status == NO_COUNTERPART:
        return f"{CATEGORY_MARK[UNSUPPORTED]} no counterpart"
    lines = []
    for v in cell:
        head = f"{CATEGORY_MARK[v.category]} {_md(_label(v))} — {_md(v.where)} ({v.counts})"
        lines.append(head + "".join(f"<br>· {_md(c.line())}" for c in v.causes))
    if not_run:
        lines.append(f"{CATEGORY_MARK[UNSUPPORTED]} not run — {', '.join(not_run)}")
    return "<br>".join(lines)


def render_markdown(m: MigrationMap) -> str:
    out = ["## lossconf migration map", ""]
    out.append(
        "For every documented loss and option set: the call each framework uses, and per dtype and mode "
        "whether it conforms to the documented loss, with the cause of each deviation "
        "(a record without a mode ran in mode grad). The modes a framework did not run are named "
        "in each cell (\"not run\"), and with the reason in the call table."
    )
    out += ["", _md(m.provenance), "", LEGEND, ""]
    for p in m.problems:
        out += [f"Mapping problem: {_md(p)}", ""]
    if not m.losses:
        out += ["**Empty map**: the results contain no records.", ""]
        return "\n".join(out)
    out += ["### Overview", ""]
    out.append("| loss | " + " | ".join(_md(x) for x in m.labels) + " |")
    out.append("|---|" + "---|" * len(m.labels))
    for lm in m.losses:
        cells = []
        for (worst, good, n), call in zip(lm.overall, lm.calls):
            if call.status == NO_COUNTERPART:
                cells.append(f"{CATEGORY_MARK[UNSUPPORTED]} no counterpart")
            elif worst is None:
                cells.append(NOT_RUN)
            else:
                cells.append(f"{CATEGORY_MARK[worst]} {good}/{n} option sets conform")
        out.append(f"| [{_md(short(lm.loss))}](#{_anchor(lm.loss)}) | " + " | ".join(cells) + " |")
    out.append("")
    for lm in m.losses:
        out += [f"### {_md(short(lm.loss))}", "", f"`{lm.loss}`", ""]
        out += ["| framework | call |", "|---|---|"]
        for label, call in zip(m.labels, lm.calls):
            out.append(f"| {_md(label)} | {_md_call(call)} |")
        out += ["", "| option set | " + " | ".join(_md(x) for x in m.labels) + " |", "|---|" + "---|" * len(m.labels)]
        for row in lm.rows:
            name = _code(row.options) if row.options else "defaults"
            if row.invalid_only:
                name += " (invalid input)"
            cells = [_md_cell(c, call, nr) for c, call, nr in zip(row.cells, lm.calls, row.not_run)]
            out.append(f"| {name} | " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)


def _anchor(loss: str) -> str:
    """GitHub's heading anchor of the loss's section (its short name)."""
    return short(loss).lower()


# ====================================================================== HTML


def html_view(m: MigrationMap) -> dict[str, Any]:
    """What ``templates/migration.html.j2`` shows (the HTML marks are plain text symbols); a
    cell is None (not run), ``"no counterpart"`` or its verdicts."""
    from .html import HTML_MARK, slug

    def verdicts(cell: list[Verdict] | None) -> list[dict[str, Any]] | None:
        if cell is None:
            return None
        return [{
            "cls": v.category, "mark": HTML_MARK[v.category], "label": _label(v),
            "where": v.where, "counts": v.counts, "causes": [{"cls": c.kind, "line": c.line()} for c in v.causes],
        } for v in cell]

    losses = []
    for lm in m.losses:
        overall = []
        for (worst, good, n), call in zip(lm.overall, lm.calls):
            if call.status == NO_COUNTERPART:
                overall.append({"cls": UNSUPPORTED, "text": f"{HTML_MARK[UNSUPPORTED]} no counterpart"})
            elif worst is None:
                overall.append({"cls": "", "text": NOT_RUN})
            else:
                overall.append({"cls": worst, "text": f"{HTML_MARK[worst]} {good}/{n} option sets conform"})
        losses.append({
            "loss": lm.loss, "short": short(lm.loss), "slug": "m-" + slug(lm.loss), "overall": overall,
            "calls": [{
                "status": c.status, "call": c.call, "composition": c.composition, "notes": c.notes,
                "unsupported": list(c.unsupported.items()), "why": "; ".join(c.why),
                "modes": ", ".join(c.modes), "not_run": [{"modes": ", ".join(ms), "why": why} for ms, why in c.modes_not_run],
            } for c in lm.calls],
            "rows": [{
                "options": r.options or "defaults", "invalid_only": r.invalid_only,
                "cells": [None if c is None else (NO_COUNTERPART if call.status == NO_COUNTERPART else verdicts(c))
                          for c, call in zip(r.cells, lm.calls)],
                "not_run": [", ".join(nr) for nr in r.not_run],
            } for r in lm.rows],
        })
    return {"labels": m.labels, "losses": losses, "problems": m.problems}


# ====================================================================== lossconf map


def main(args: Any) -> int:
    """``lossconf map RESULTS... [-o FILE]``: the migration map as Markdown."""
    try:
        text = render_markdown(build(load_all(list(args.results))))
    except ResultsError as err:
        print(f"lossconf map: {err}", file=sys.stderr)
        return 2
    out = getattr(args, "output", None)
    if not out:
        sys.stdout.write(text)
        return 0
    try:
        Path(out).write_text(text, encoding="utf-8", newline="\n")
    except OSError as err:
        print(f"lossconf map: {out}: cannot be written: {err.strerror}", file=sys.stderr)
        return 2
    print(f"migration map written to {out}", file=sys.stderr)
    return 0
