"""The Markdown summary (for a CI job summary, ``$GITHUB_STEP_SUMMARY``): per backend its
counts, its failing checks grouped by cause, its known deviations by root cause, the
modes it ran (and why it did not run the others), and a loss x mode table whose cells
give the verdict per dtype; across backends, a loss x backend table per mode."""

from __future__ import annotations

from typing import Any

from .model import (
    CATEGORY_LABEL,
    CATEGORY_MARK,
    CONFORMS,
    CONTROL_RAISED,
    FAILING,
    FAILS,
    KNOWN,
    MAX_MD_LIST,
    OTHER,
    STABLE,
    UNSUPPORTED,
    BackendResults,
    Cell,
    Summary,
    _clip,
    _dtype_key,
    _mode_key,
    _num,
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
            other = ", ".join(f"{n} {name}" for name, n in sorted(s.totals.others.items()))
            out.append(f"**{_md(s.br.label)}: {nfail} failing check(s)" + (f", other outcomes: {_md(other)}" if other else "")
                       + f", {len(groups)} cause(s)**")
            out.append("")
            for g in groups[:MAX_MD_LIST]:
                ids = [cid for cid, _ in g.cases()]
                shown = ", ".join(f"`{_md(x)}`" for x in ids[:5]) + (f" and {len(ids) - 5} more" if len(ids) > 5 else "")
                where = ", ".join(g.dtypes) + (f"; {', '.join(g.modes)}" if g.modes else "")
                out.append(
                    f"- {CATEGORY_MARK[g.category]} {_md(short(g.loss))} `{_md(g.check)}`: {_md(_clip(g.cause, 200))} — "
                    f"{g.count} check(s) ({where}): {shown}"
                )
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
    order = _order(sums)
    legend = " · ".join(f"{CATEGORY_MARK[c]} {CATEGORY_LABEL[c]}" for c in order)
    out += [legend, ""]
    out.append("| backend | checks | " + " | ".join(f"{CATEGORY_MARK[c]} {CATEGORY_LABEL[c]}" for c in order) + " | worst ULP | modes |")
    out.append("|---|---:|" + "---:|" * len(order) + "---:|---|")
    for s in sums:
        t = s.totals
        modes = ", ".join(m for m in s.shown_modes() if m) or "(not recorded)"
        out.append(
            f"| {_md(s.br.label)} | {t.total} | " + " | ".join(str(t.counts[c]) for c in order)
            + f" | {fmt_ulps(t.worst)} | {_md(modes)} |"
        )
    out.append("")
    if len(sums) > 1:
        losses = sorted({loss for s in sums for loss in s.by_loss}, key=lambda x: (short(x).lower(), x))
        out += ["### Cross-framework (per backend, the modes grouped by their worst verdict over option sets and dtypes)", ""]
        out.append("| loss | " + " | ".join(_md(s.br.label) for s in sums) + " |")
        out.append("|---|" + "---|" * len(sums))
        for loss in losses:
            row = []
            for s in sums:
                per_mode = {m: _merged(cells.values()) for m, cells in s.loss_mode_cells(loss).items()}
                row.append(_md_modes(per_mode))
            out.append(f"| {_md(short(loss))} | " + " | ".join(row) + " |")
        out.append("")
    for s in sums:
        out += [f"### {_md(s.br.label)}", ""]
        for ms, why in s.not_run_groups():
            out.append(f"- mode{'s' if len(ms) > 1 else ''} {', '.join(ms)} not run: {_md(why)}")
        if s.not_run_groups():
            out.append("")
        if not s.br.records:
            out += ["No records: this results file holds no checks.", ""]
            continue
        modes = s.shown_modes()
        heads = [m or "(no mode)" for m in modes] if s.has_modes else s.dtypes
        out.append("| loss | " + " | ".join(heads) + " | failing checks |")
        out.append("|---|" + "---|" * len(heads) + "---:|")
        for loss in s.losses():
            cells = s.by_loss[loss]
            nf = sum(c.counts[FAILS] for c in cells.values())
            if s.has_modes:
                by_mode = s.loss_mode_cells(loss)
                shown = [_md_dtypes(by_mode.get(m) or {}) for m in modes]
            else:
                shown = [_md_cell(cells.get(d)) for d in s.dtypes]
            out.append(f"| {_md(short(loss))} | " + " | ".join(shown) + f" | {nf} |")
        out.append("")
        fails = [r for r in s.br.records if r["status"] in FAILING]
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
        both = sum(1 for r in s.br.records if r["check"] == "invalid" and r["verdict"] == CONTROL_RAISED)
        if silent or raised or both:
            out.append(
                f"Invalid input: {raised} raised, {len(silent)} silently returned"
                + (f", {both} raised on the valid control case too (not judged)." if both else ".")
            )
            out.append("")
        if s.br.unused_expectations:
            out.append(f"{len(s.br.unused_expectations)} listed deviation(s) no longer occur.")
            out.append("")
    return "\n".join(out)


def _order(sums: list[Summary]) -> tuple[str, ...]:
    """The verdict categories shown: OTHER only when some check has an outcome this
    renderer does not know."""
    base = (CONFORMS, STABLE, KNOWN, FAILS, UNSUPPORTED)
    if any(s.totals.counts[OTHER] for s in sums):
        return (*base[:4], OTHER, base[4])
    return base


def _merged(cells) -> Cell:
    out = Cell()
    for c in cells:
        out.merge(c)
    return out


def _mark(c: Cell) -> str:
    cat = c.category
    if cat == OTHER:
        return f"{CATEGORY_MARK[OTHER]} {c.other_names()}"
    return CATEGORY_MARK[cat]


def _md_cell(c: Cell | None) -> str:
    if c is None or c.total == 0:
        return ""
    text = _mark(c)
    if c.worst is not None:
        text += f" {fmt_ulps(c.worst)}"
    return text


def _md_dtypes(cells: dict[str, Cell]) -> str:
    """One mode of a loss: its dtypes grouped by verdict, ``✅ f16, f32 · ⚠️ f64`` and the
    worst error."""
    groups: dict[str, list[str]] = {}
    worst = Cell()
    for d in sorted(cells, key=_dtype_key):
        c = cells[d]
        if c.total:
            groups.setdefault(_mark(c), []).append(d.replace("bfloat", "bf").replace("float", "f"))
            worst.merge(c)
    if not groups:
        return ""
    text = " · ".join(f"{mark} {', '.join(ds)}" for mark, ds in groups.items())
    return text + (f" ({fmt_ulps(worst.worst)})" if worst.worst is not None else "")


def _md_modes(per_mode: dict[str, Cell]) -> str:
    """One loss of a backend across its modes: the modes grouped by verdict,
    ``✅ forward, grad · ⚠️ hvp`` and the worst error."""
    groups: dict[str, list[str]] = {}
    worst = Cell()
    for m in sorted(per_mode, key=lambda x: _mode_key(x)):
        c = per_mode[m]
        if c.total:
            groups.setdefault(_mark(c), []).append(m)
            worst.merge(c)
    if not groups:
        return ""
    text = " · ".join(f"{mark} {', '.join(x for x in ms if x)}".rstrip() for mark, ms in groups.items())
    return text + (f" (worst {fmt_ulps(worst.worst)} ULP)" if worst.worst is not None else "")
