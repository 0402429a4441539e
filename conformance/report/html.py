"""The HTML report: one self-contained page rendered from the Jinja2 templates in
``templates/`` (autoescaped), from a view of the results that this module builds.

The page leads with what a reader must act on: per backend, its failing checks grouped
by cause and shown in full; then its known deviations, one row per root cause; then the
matrix of loss x option set (x mode) x dtype with pass counts and a legend; then the
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
    FAILS,
    JSON_FILE,
    KNOWN,
    MAX_DRILL,
    MAX_GROUP_ROWS,
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
HTML_MARK = {CONFORMS: "✓", STABLE: "≈", KNOWN: "⚠", FAILS: "✗", UNSUPPORTED: "–"}


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
    return env


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
            "modes": g.modes, "cases": len(g.cases()),
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
    rows = []
    last = None
    for row in s.rows():
        loss, opts, mode = row
        cells = s.matrix[row]
        rows.append({
            "loss": loss, "first": loss != last, "options": opts or "defaults", "mode": mode,
            "cells": [cell_view(cells.get(d)) for d in s.dtypes],
            "checks": sum(c.total for c in cells.values()),
        })
        last = loss
    drill = []
    per_loss: dict[str, list[dict]] = defaultdict(list)
    for r in br.records:
        if r["status"] in ("fail", "error", "raised", "known"):
            per_loss[r["loss"]].append(r)
    for loss in sorted(per_loss, key=lambda x: (short(x).lower(), x)):
        recs = sorted(
            per_loss[loss],
            key=lambda r: (r["status"] == "known", _dtype_key(r["dtype"]), r["options_label"], r.get("case", 0), r["check"]),
        )
        nf = sum(1 for r in recs if r["status"] != "known")
        drill.append({
            "loss": loss, "nfail": nf, "nknown": len(recs) - nf,
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
        "known": known,
        "nknown": t.counts[KNOWN],
        "dtypes": s.dtypes,
        "has_modes": s.has_modes,
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


def _cross_view(sums: list[Summary]) -> dict[str, Any]:
    rows_keys = sorted({row for s in sums for row in s.matrix}, key=_row_key)
    dts = sorted({d for s in sums for d in s.dtypes}, key=_dtype_key)
    rows = []
    last = None
    for row in rows_keys:
        loss, opts, mode = row
        per_backend = []
        conforming = []
        for s in sums:
            cells = s.matrix.get(row)
            if not cells:
                per_backend.append(None)
                continue
            badges = []
            for d in dts:
                c = cells.get(d)
                if c is None or c.total == 0:
                    continue
                badges.append({"cls": c.category, "title": f"{d}: {c.title()}", "dtype": d.replace("float", "f"),
                               "worst": fmt_ulps(c.worst) if c.worst is not None else ""})
            per_backend.append(badges)
            cats = {c.category for c in cells.values() if c.total}
            if cats and cats <= {CONFORMS, STABLE}:
                conforming.append(s.br.label)
        rows.append({"loss": loss, "first": loss != last, "options": opts or "defaults", "mode": mode,
                     "backends": per_backend, "conforming": ", ".join(conforming) or "none"})
        last = loss
    return {"rows": rows, "has_modes": any(s.has_modes for s in sums)}


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
            what = _split_invalid(msg)[1] if r["verdict"] in ("raised", "silently returned") else msg
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
                               "cls": FAILS if t.get("silently returned") else CONFORMS})
        folded.append({"loss": entry["loss"], "rows": entry["rows"], "counts": counts,
                       "silent": any(c["cls"] == FAILS for c in counts)})
    lines = [f"{label}: " + ", ".join(f"{n} {v}" for v, n in sorted(t.items())) for label, t in tally.items() if t]
    return {"losses": folded, "totals": "; ".join(lines), "has_modes": any(row["mode"] for e in folded for row in e["rows"])}


# ------------------------------------------------------------------ the page


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
        "legend": [{"cls": c, "mark": HTML_MARK[c], "label": CATEGORY_LABEL[c]} for c in LEGEND_ORDER],
        "mark_fails": HTML_MARK[FAILS],
        "legend_order": LEGEND_ORDER,
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
