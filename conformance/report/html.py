"""The HTML report: one self-contained page rendered from the Jinja2 templates in
``templates/`` (autoescaped), from a view of the results that this module builds.

The page leads with what a reader must act on: per backend, its failing checks grouped
by cause and shown in full; then its known deviations, one row per root cause; then the
matrix of loss x option set x (mode x dtype) with pass counts and a legend (a mode not
run: one column with its reason); then the
details (summary, cross-framework table, invalid-input table folded by loss, per-backend
error tables, plots and the drill-down to every failing check); and last, the migration
map (:mod:`.migration`, ``templates/migration.html.j2``), linked from the top."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

from . import migration
from .model import (
    CATEGORIES,
    CATEGORY_LABEL,
    CONFORMS,
    CONTROL_RAISED,
    FAILS,
    JSON_FILE,
    KNOWN,
    MAX_DRILL,
    MAX_GROUP_ROWS,
    OTHER,
    STABLE,
    UNSUPPORTED,
    BackendResults,
    Cell,
    Summary,
    _clip,
    _dtype_key,
    _num,
    _row_key,
    _split_invalid,
    _tag_key,
    case_id,
    category,
    failure_groups,
    fmt_ulps,
    known_groups,
    mode_of,
    provenance_line,
    repeat_command,
    short,
    tolerance_text,
)
from .plots import _Plots

TEMPLATES = Path(__file__).parent / "templates"
LEGEND_ORDER = (CONFORMS, STABLE, KNOWN, FAILS, UNSUPPORTED)
MAX_CASES_SHOWN = 12  # case ids listed inline per known-deviation cause (the rest folded)
MAX_IDS_AT_TOP = 30  # failing case ids named per cause in the table at the top
#: the verdict symbols in the HTML: plain text symbols that every font has (the Markdown
#: summary uses emoji, which GitHub renders)
HTML_MARK = {CONFORMS: "✓", STABLE: "≈", KNOWN: "⚠", FAILS: "✗", OTHER: "?", UNSUPPORTED: "–"}


class TemplateUnavailable(Exception):
    """Jinja2 is not installed; the message says how to install it."""


def _environment():
    try:
        import jinja2
    except ImportError:
        raise TemplateUnavailable(
            "the HTML report needs Jinja2, which is not installed: pip install 'lossconf[report]'"
        ) from None
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["ulps"] = fmt_ulps
    env.filters["short"] = short
    env.filters["slug"] = slug
    env.filters["clip"] = _clip
    env.filters["dtype_short"] = dtype_short
    env.filters["breakable"] = breakable
    return env


def dtype_short(d: str) -> str:
    """float16 -> f16, bfloat16 -> bf16 (the matrix's column heads under a mode)."""
    return str(d).replace("bfloat", "bf").replace("float", "f")


def breakable(text: str) -> Any:
    """An option set, escaped, that may wrap after its commas (``<wbr>``)."""
    from markupsafe import Markup, escape

    return Markup(",<wbr>").join(escape(part) for part in str(text).split(","))


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", str(text).lower()).strip("-") or "x"


# ------------------------------------------------------------------ cells


def cell_view(cell: Cell | None) -> dict[str, Any] | None:
    """A matrix cell: its verdict colour and symbol, passed/run checks and the worst error."""
    if cell is None or cell.total == 0:
        return None
    cat = cell.category
    ran = cell.total - cell.counts[UNSUPPORTED]
    passed = cell.counts[CONFORMS] + cell.counts[STABLE]
    return {
        "cls": cat,
        "mark": HTML_MARK[cat],
        "counts": f"{passed}/{ran}" if ran else "",
        "worst": fmt_ulps(cell.worst),
        "nfail": cell.counts[FAILS],
        "nknown": cell.counts[KNOWN],
        "other": ", ".join(f"{n} {name}" for name, n in sorted(cell.others.items())),
        "title": cell.title(),
    }


def _record_view(br: BackendResults, r: dict[str, Any], inputs: dict) -> dict[str, Any]:
    digest = str(br.provenance.get("fixtures_digest", ""))
    msg = str(r.get("message") or "")
    return {
        "id": r["id"],
        "case_id": case_id(r),
        "check": r["check"],
        "dtype": r["dtype"],
        "mode": mode_of(r),
        "options": r["options_label"] or "defaults",
        "case": f"{int(r.get('case', 0)):03d} {r.get('name', '')}",
        "tags": ", ".join(r.get("tags") or ()),
        "cls": category(r),
        "verdict": r["verdict"],
        "error": fmt_ulps(_num(r.get("error_ulps"))),
        "tolerance": tolerance_text(r),
        "expected": r.get("expected") or "",
        "observed": r.get("observed") or "",
        "where": f" at {r['worst_index']}" if r.get("worst_index") is not None else "",
        "message": msg,
        "reason": r.get("reason") or "",
        "inputs": _clip(inputs.get((digest, r["loss"], r.get("case", -1)), ""), 400),
        "repeat": repeat_command(br, r),
    }


# ------------------------------------------------------------------ sections


def _backend_view(s: Summary, inputs: dict, plots: _Plots) -> dict[str, Any]:
    br = s.br
    t = s.totals
    fails = []
    for g in failure_groups(br):
        fails.append({
            "loss": g.loss, "check": g.check, "cause": g.cause, "count": g.count, "dtypes": g.dtypes,
            "modes": g.modes, "cases": len(g.cases()), "cls": g.category, "mark": HTML_MARK[g.category],
            "case_ids": [f"{cid} ({', '.join(chks)})" if "," in g.check else cid for cid, chks in g.cases()][:MAX_IDS_AT_TOP], "more_ids": max(0, len(g.cases()) - MAX_IDS_AT_TOP),
            "rows": [_record_view(br, r, inputs) for r in g.records[:MAX_GROUP_ROWS]],
            "more": max(0, g.count - MAX_GROUP_ROWS),
        })
    known = []
    for g in known_groups(br):
        cases = [f"{cid} ({', '.join(chks)})" for cid, chks in g.cases()]
        known.append({
            "cause": g.cause, "count": g.count, "losses": g.losses, "checks": g.checks, "dtypes": g.dtypes,
            "modes": g.modes, "shown": cases[:MAX_CASES_SHOWN], "folded": cases[MAX_CASES_SHOWN:],
        })
    mode_cols = [{"mode": m, "dtypes": s.mode_dtypes(m)} for m in s.shown_modes()]
    rows = []
    last = None
    for loss, opts in s.option_rows():
        groups = []
        for mc in mode_cols:
            cells = s.matrix.get((loss, opts, mc["mode"])) or {}
            groups.append([cell_view(cells.get(d)) for d in mc["dtypes"]])
        nchecks = sum(c.total for m in s.modes() for c in (s.matrix.get((loss, opts, m)) or {}).values())
        rows.append({"loss": loss, "first": loss != last, "options": opts or "defaults", "groups": groups, "checks": nchecks})
        last = loss
    drill = []
    per_loss: dict[str, list[dict]] = defaultdict(list)
    for r in br.records:
        if category(r) in (FAILS, OTHER, KNOWN):
            per_loss[r["loss"]].append(r)
    for loss in sorted(per_loss, key=lambda x: (short(x).lower(), x)):
        recs = sorted(
            per_loss[loss],
            key=lambda r: (r["status"] == "known", _dtype_key(r["dtype"]), r["options_label"], r.get("case", 0), r["check"]),
        )
        nf = sum(1 for r in recs if category(r) == FAILS)
        others: dict[str, int] = defaultdict(int)
        for r in recs:
            if category(r) == OTHER:
                others[str(r["status"])] += 1
        drill.append({
            "loss": loss, "nfail": nf, "nknown": sum(1 for r in recs if r["status"] == "known"),
            "other": ", ".join(f"{n} {name}" for name, n in sorted(others.items())),
            "rows": [_record_view(br, r, inputs) for r in recs[:MAX_DRILL]], "more": max(0, len(recs) - MAX_DRILL),
        })
    unused = []
    for u in br.unused_expectations:
        if isinstance(u, dict):
            unused.append(f"{u.get('describe', u.get('entry', '?'))}: {u.get('reason', '')}")
        else:
            unused.append(str(u))
    tags = sorted(s.regime, key=_tag_key)
    has_hist = any(s.hist.values())
    return {
        "label": br.label,
        "slug": slug(br.label),
        "build": json.dumps(br.provenance.get("backend", {}).get("build") or {}, sort_keys=True)
        if br.provenance.get("backend", {}).get("build") else "",
        "expectations": br.provenance.get("expectations") or "",
        "unused": unused,
        "empty": not br.records,
        "counts": {c: t.counts[c] for c in CATEGORIES},
        "total": t.total,
        "worst": fmt_ulps(t.worst),
        "nlosses": len(s.by_loss),
        "fails": fails,
        "nfail": t.counts[FAILS],
        "other": ", ".join(f"{n} {name}" for name, n in sorted(t.others.items())),
        "known": known,
        "nknown": t.counts[KNOWN],
        "dtypes": s.dtypes,
        "has_modes": s.has_modes,
        "mode_cols": mode_cols,
        "modes_run": ", ".join(m for m in s.shown_modes() if m),
        "not_run": [{"modes": ", ".join(ms), "why": why} for ms, why in s.not_run_groups()],
        "matrix": rows,
        "libm": [
            {"loss": loss, "cells": [
                cell_view(c) for d in s.dtypes for c in (s.value_grad.get(loss, {}).get(d) or (None, None))
            ]}
            for loss in s.losses()
        ],
        "tags": tags,
        "regime": [
            {"loss": loss, "cells": [cell_view(s.regime_loss.get(loss, {}).get(t)) for t in tags]} for loss in s.losses()
        ],
        "plots_available": plots.available,
        "histogram": plots.histograms(s) if plots.available and has_hist else "",
        "has_hist": has_hist,
        "regime_plot": plots.regimes(s) if plots.available and s.regime else "",
        "drill": drill,
    }


def _badges(cells: dict[str, Cell], dts: list[str]) -> list[dict[str, Any]]:
    out = []
    for d in dts:
        c = cells.get(d)
        if c is None or c.total == 0:
            continue
        out.append({"cls": c.category, "title": f"{d}: {c.title()}", "dtype": dtype_short(d),
                    "worst": fmt_ulps(c.worst) if c.worst is not None else ""})
    return out


def _conforms(cells: dict[str, Cell]) -> bool:
    cats = {c.category for c in cells.values() if c.total}
    return bool(cats) and cats <= {CONFORMS, STABLE}


def _cross_view(sums: list[Summary]) -> dict[str, Any]:
    """Loss x option set rows, one column per backend; in a cell, one line per mode the
    backend ran for that row, with a badge per dtype."""
    keys = sorted({row[:2] for s in sums for row in s.matrix}, key=_row_key)
    dts = sorted({d for s in sums for d in s.dtypes}, key=_dtype_key)
    modes = {id(s): s.modes() for s in sums}
    rows = []
    last = None
    for loss, opts in keys:
        per_backend = []
        conforming = []
        for s in sums:
            lines: list[dict[str, Any]] = []
            good = []
            for m in modes[id(s)]:
                cells = s.matrix.get((loss, opts, m))
                if not cells:
                    continue
                badges = _badges(cells, dts)
                # modes whose badges are the same share a line (hover a badge for its counts)
                same = next((ln for ln in lines if [(b["cls"], b["dtype"], b["worst"]) for b in ln["badges"]]
                             == [(b["cls"], b["dtype"], b["worst"]) for b in badges]), None)
                if same is None:
                    lines.append({"mode": m, "badges": badges})
                else:
                    same["mode"] += f", {m}"
                    for old, new in zip(same["badges"], badges):
                        old["title"] += f"; {m}: {new['title'].split(': ', 1)[1]}"
                if _conforms(cells):
                    good.append(m)
            per_backend.append(lines or None)
            if lines and len(good) == len(lines):
                conforming.append(s.br.label)
            elif good and any(good):
                conforming.append(f"{s.br.label} ({', '.join(good)})")
        rows.append({"loss": loss, "first": loss != last, "options": opts or "defaults",
                     "backends": per_backend, "conforming": ", ".join(conforming) or "none"})
        last = loss
    heads = []
    for s in sums:
        heads.append({"label": s.br.label, "modes": ", ".join(m for m in s.shown_modes() if m),
                      "not_run": [{"modes": ", ".join(ms), "why": why} for ms, why in s.not_run_groups()]})
    return {"rows": rows, "heads": heads, "has_modes": any(s.has_modes or s.modes_not_run() for s in sums)}


def _invalid_view(sums: list[Summary]) -> dict[str, Any]:
    """The invalid-input cases folded by loss: per loss a line of counts per backend, and
    inside it one row per case."""
    keyed: dict[tuple, dict[str, dict]] = defaultdict(dict)
    for s in sums:
        for r in s.br.records:
            if r["check"] == "invalid":
                key = (short(r["loss"]).lower(), r["loss"], r["name"], r["options_label"], _dtype_key(r["dtype"]), mode_of(r))
                keyed[key][s.br.label] = r
    tally: dict[str, dict[str, int]] = {s.br.label: defaultdict(int) for s in sums}
    losses: dict[str, dict[str, Any]] = {}
    for key in sorted(keyed):
        _, loss, name, opts, _, mode = key
        entry = losses.setdefault(loss, {"loss": loss, "rows": [], "tally": {s.br.label: defaultdict(int) for s in sums}})
        rule = ""
        for r in keyed[key].values():
            rule = rule or _split_invalid(str(r.get("message") or ""))[0]
        cells = []
        for s in sums:
            r = keyed[key].get(s.br.label)
            if r is None:
                cells.append(None)
                continue
            tally[s.br.label][r["verdict"]] += 1
            entry["tally"][s.br.label][r["verdict"]] += 1
            msg = str(r.get("message") or "")
            what = _split_invalid(msg)[1] if r["verdict"] in ("raised", "silently returned", CONTROL_RAISED) else msg
            cells.append({"cls": category(r), "verdict": r["verdict"] if r["status"] != "known" else f"known: {r['verdict']}",
                          "what": _clip(what, 160), "title": msg})
        entry["rows"].append({"name": name, "options": opts, "dtype": next(iter(keyed[key].values()))["dtype"],
                              "mode": mode, "rule": rule, "cells": cells})
    folded = []
    for entry in losses.values():
        counts = []
        for s in sums:
            t = entry["tally"][s.br.label]
            if t:
                counts.append({"label": s.br.label, "text": ", ".join(f"{n} {v}" for v, n in sorted(t.items())),
                               "cls": FAILS if t.get("silently returned") or t.get(CONTROL_RAISED) else CONFORMS})
        folded.append({"loss": entry["loss"], "rows": entry["rows"], "counts": counts,
                       "silent": any(c["cls"] == FAILS for c in counts)})
    lines = [f"{label}: " + ", ".join(f"{n} {v}" for v, n in sorted(t.items())) for label, t in tally.items() if t]
    return {"losses": folded, "totals": "; ".join(lines), "has_modes": any(row["mode"] for e in folded for row in e["rows"])}


# ------------------------------------------------------------------ the page


def _legend_order(sums: list[Summary]) -> tuple[str, ...]:
    """The legend's categories: OTHER (outcomes this renderer does not know) only when
    some check has one."""
    if any(s.totals.counts[OTHER] for s in sums):
        return (*LEGEND_ORDER[:4], OTHER, *LEGEND_ORDER[4:])
    return LEGEND_ORDER


def _legend_label(c: str, sums: list[Summary]) -> str:
    if c != OTHER:
        return CATEGORY_LABEL[c]
    names = sorted({name for s in sums for name in s.totals.others})
    return f"{CATEGORY_LABEL[OTHER]} ({', '.join(names)})"


def render_html(backends: list[BackendResults], sums: list[Summary], inputs: dict) -> str:
    """The self-contained HTML page (byte-identical for the same results)."""
    env = _environment()
    total = sum(s.totals.total for s in sums)
    digests = {str(b.provenance.get("fixtures_digest")) for b in backends}
    plots = _Plots()
    page = {
        "css": (TEMPLATES / "report.css").read_text(encoding="utf-8"),
        "provenance": provenance_line(backends),
        "digests_differ": len(digests) > 1,
        "empty": total == 0,
        "sources": ", ".join(x for b in backends for x in b.sources),
        "legend": [{"cls": c, "mark": HTML_MARK[c], "label": _legend_label(c, sums)} for c in _legend_order(sums)],
        "mark_fails": HTML_MARK[FAILS],
        "legend_order": _legend_order(sums),
        "category_label": CATEGORY_LABEL,
        "json_file": JSON_FILE,
    }
    if total:
        page["backends"] = [_backend_view(s, inputs, plots) for s in sums]
        page["cross"] = _cross_view(sums)
        page["invalid"] = _invalid_view(sums)
        page["nfail"] = sum(s.totals.counts[FAILS] for s in sums)
        page["plots_available"] = plots.available
        page["migration"] = migration.html_view(migration.build(backends))
    return env.get_template("report.html.j2").render(**page)
