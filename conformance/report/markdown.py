"""The Markdown summary (for a CI job summary, ``$GITHUB_STEP_SUMMARY``): per backend its
counts, its failing checks grouped by cause, its known deviations by root cause, and a
loss x dtype table."""

from __future__ import annotations

from typing import Any

from .model import (
    CATEGORIES,
    CATEGORY_LABEL,
    CATEGORY_MARK,
    CONFORMS,
    FAILS,
    KNOWN,
    MAX_MD_LIST,
    STABLE,
    UNSUPPORTED,
    BackendResults,
    Cell,
    Summary,
    _clip,
    _num,
    _worse,
    failure_groups,
    fmt_ulps,
    known_groups,
    provenance_line,
    short,
)


def _md(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render_markdown(backends: list[BackendResults], sums: list[Summary]) -> str:
    out = ["## lossconf compatibility report", "", _md(provenance_line(backends)), ""]
    total = sum(s.totals.total for s in sums)
    if total == 0:
        out += ["**Empty report**: the results contain no records, so nothing was checked (was the run filtered to nothing?).", ""]
        return "\n".join(out)
    for s in sums:  # what matters first: every backend's failures by cause, then its known deviations
        groups = failure_groups(s.br)
        nfail = s.totals.counts[FAILS]
        if groups:
            out.append(f"**{_md(s.br.label)}: {nfail} failing check(s), {len(groups)} cause(s)**")
            out.append("")
            for g in groups[:MAX_MD_LIST]:
                ids = [cid for cid, _ in g.cases()]
                shown = ", ".join(f"`{_md(x)}`" for x in ids[:5]) + (f" and {len(ids) - 5} more" if len(ids) > 5 else "")
                out.append(f"- ❌ {_md(short(g.loss))} `{_md(g.check)}`: {_md(_clip(g.cause, 200))} — {g.count} check(s) ({', '.join(g.dtypes)}): {shown}")
            if len(groups) > MAX_MD_LIST:
                out.append(f"- … and {len(groups) - MAX_MD_LIST} more cause(s) (see the HTML report)")
            out.append("")
        else:
            out += [f"**{_md(s.br.label)}: no failing checks**", ""]
        known = known_groups(s.br)
        if known:
            out += ["| known deviation (root cause) | checks | losses |", "|---|---:|---|"]
            for g in known[:MAX_MD_LIST]:
                out.append(f"| {_md(_clip(g.cause, 300))} | {g.count} | {_md(', '.join(g.losses))} |")
            if len(known) > MAX_MD_LIST:
                out.append(f"| … and {len(known) - MAX_MD_LIST} more root causes | | |")
            out.append("")
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
        fails = [r for r in s.br.records if r["status"] in ("fail", "error", "raised")]
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

