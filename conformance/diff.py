"""``lossconf diff OLD NEW``: compare two results files (or merged reports) check by check,
so that a CI job can gate on it.

Checks are matched by backend and by (loss, case name, mode, check), so adding cases to
the fixtures (which renumbers the case index in record ids) does not look like a removal.
The mode is a dimension like the check: a record without one (results written before
modes existed) is mode ``grad``, whose keys are as they always were, so old baselines
still match; a mode that one side ran and the other did not shows as checks added or
removed.
Backends are matched by name, so an upgrade (numpy 1.26 -> 2.0) compares like with like;
when each side holds exactly one backend they are compared whatever their names.

Regressions (exit code 1):

* **new failures** -- a check that passed, was a known deviation, or was unsupported now
  fails or errors (including invalid input that used to raise and is now silently returned);
* **errors grown** -- a check's error grew by more than ``--factor`` (default 4) over
  ``max(old error, 1 ULP)``, or became inf/nan, whatever its verdict (an upgrade that moves
  a value by 20 ULPs inside a loose tolerance is still a change worth seeing);
* **no longer supported** -- a check that ran now reports *unsupported*;
* **checks removed** -- a check in OLD is missing from NEW (a crashed or filtered run must
  not pass the gate), unless ``--allow-removed`` says the selection changed on purpose.

Reported but not a regression: **fixed** checks (failed or errored, now pass), checks
**newly listed as known deviations**, **newly supported** checks, and checks **added**
(the fixtures digests are compared and a difference is pointed out). Exit code 0 means no
regression; 2 means an input could not be read, or is a results file marked incomplete
(a run stopped at --max-time or by Ctrl-C: its missing checks are not removals), the
message naming the file. A raise where the documented value is +inf (status ``raised``)
fails like an error: a check that passed and now raises is a new failure.
"""

from __future__ import annotations

import json
import math
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .report import BackendResults, ResultsError, _num, fmt_ulps, load

FAILING = ("fail", "error", "raised")  # "raised": on a documented +inf (conformance.harness.runner.RAISED)
MAX_TEXT = 200  # lines per category in the text output
MAX_MD = 100  # lines per category in the Markdown


@dataclass
class Change:
    backend: str
    id: str
    old: dict[str, Any] | None
    new: dict[str, Any] | None

    def _err(self, rec: dict[str, Any] | None) -> str:
        """The record's error as the harness shows it: in ULPs, or in eps x scale where
        ULPs mean nothing (``error_ulps`` null: an exact zero, a subnormal, cancellation)."""
        if rec is None:
            return "-"
        e, unit = headline(rec)
        return f"{fmt_ulps(e)} {unit}" if e is not None else "-"

    def describe(self) -> str:
        o, n = self.old, self.new
        rec = n or o
        head = f"{self.backend}: {rec.get('id', self.id) if rec else self.id}"
        if o is None:
            return f"{head} ({n['status']}, {n['verdict']})"
        if n is None:
            return f"{head} (was {o['status']}, {o['verdict']})"
        text = f"{head}: {o['status']} -> {n['status']} ({o['verdict']} -> {n['verdict']})"
        if headline(rec)[0] is not None or headline(o)[0] is not None:
            text += f", error {self._err(o)} -> {self._err(n)}"
        msg = str(n.get("message") or "").strip()
        if n["status"] in FAILING and msg:
            text += f": {' '.join(msg.split())[:200]}"
        return text


@dataclass
class Diff:
    old_path: str
    new_path: str
    factor: float
    pairs: list[tuple[str, str]] = field(default_factory=list)  # (old label, new label)
    notes: list[str] = field(default_factory=list)
    new_failures: list[Change] = field(default_factory=list)
    grown: list[Change] = field(default_factory=list)
    unsupported: list[Change] = field(default_factory=list)
    fixed: list[Change] = field(default_factory=list)
    known: list[Change] = field(default_factory=list)
    supported: list[Change] = field(default_factory=list)
    added: list[Change] = field(default_factory=list)
    removed: list[Change] = field(default_factory=list)
    compared: int = 0

    REGRESSIONS = (
        ("new_failures", "new failures"),
        ("grown", "errors grown by more than the factor"),
        ("unsupported", "no longer supported"),
    )
    OTHERS = (
        ("fixed", "fixed"),
        ("known", "newly listed as known deviations"),
        ("supported", "newly supported"),
        ("added", "checks added"),
        ("removed", "checks removed"),
    )

    allow_removed: bool = False

    @property
    def regressions(self) -> int:
        """New failures, grown errors, checks no longer supported, and -- unless removals
        are allowed -- checks that ran before and are missing now (a crashed or
        filtered-to-nothing run must not pass the gate)."""
        removed = 0 if self.allow_removed else len(self.removed)
        return len(self.new_failures) + len(self.grown) + len(self.unsupported) + removed


def _key(r: dict[str, Any]) -> str:
    """A record's key: ``loss / case name / check``, with ``[mode]`` after the case name
    in a mode other than grad (a record without a name: its id)."""
    if "name" not in r:
        return r["id"]
    mode = r.get("mode") or "grad"
    where = r["name"] if mode == "grad" else f"{r['name']} [{mode}]"
    return f"{r.get('loss', '?')} / {where} / {r.get('check', '?')}"


def _index(br: BackendResults) -> dict[str, dict[str, Any]]:
    """Records by (loss, case name, mode, check): stable when cases are added to the
    fixtures (the case index in a record's id is not)."""
    out: dict[str, dict[str, Any]] = {}
    seen: Counter = Counter()
    for r in br.records:
        key = _key(r)
        seen[key] += 1
        if seen[key] > 1:  # the same check twice in one file: keep both, in order
            key = f"{key}#{seen[key]}"
        out[key] = r
    return out


def headline(rec: dict[str, Any]) -> tuple[float | None, str]:
    """A record's error figure and its unit: ``error_ulps`` in ULPs, else (null where
    ULPs mean nothing for the worst element) ``error_scale`` in eps x scale."""
    e = _num(rec.get("error_ulps"))
    if e is not None:
        return e, "ULP"
    return _num(rec.get("error_scale")), "eps x scale"


def _grew(o: dict[str, Any], n: dict[str, Any], factor: float) -> bool:
    if "skip" in (o["status"], n["status"]):
        return False
    eo, en = _num(o.get("error_ulps")), _num(n.get("error_ulps"))
    if eo is None or en is None:  # one side (or both) in eps x scale only: compare in that unit
        eo, en = _num(o.get("error_scale")), _num(n.get("error_scale"))
    if en is None:
        return False
    if math.isnan(en) or math.isinf(en):
        return eo is None or not (math.isnan(eo) or math.isinf(eo))
    if eo is None or math.isnan(eo) or math.isinf(eo):
        return False
    return en > factor * max(eo, 1.0)


def compare_backend(d: Diff, label: str, old: BackendResults | None, new: BackendResults | None) -> None:
    oi = _index(old) if old else {}
    ni = _index(new) if new else {}
    for key in [k for k in oi if k not in ni]:
        d.removed.append(Change(label, key, oi[key], None))
    for key, n in ni.items():
        o = oi.get(key)
        if o is None:
            d.added.append(Change(label, key, None, n))
            continue
        d.compared += 1
        c = Change(label, key, o, n)
        so, sn = o["status"], n["status"]
        if sn in FAILING and so not in FAILING:
            d.new_failures.append(c)
        elif sn == "skip" and so != "skip":
            d.unsupported.append(c)
        elif _grew(o, n, d.factor):
            d.grown.append(c)
        elif so in FAILING and sn == "pass":
            d.fixed.append(c)
        elif sn == "known" and so != "known":
            d.known.append(c)
        elif so == "skip" and sn != "skip":
            d.supported.append(c)


def _refuse_incomplete(path: Path) -> None:
    """A results file marked incomplete (its run stopped at --max-time or Ctrl-C) lacks
    the checks it did not reach: compared, they would count as removed (regressions) or
    hide removals. ResultsError (exit 2) naming the file and why the run stopped."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # (load() read it a moment ago)
        return
    if isinstance(doc, dict) and doc.get("complete") is False:
        why = doc.get("stopped") or "it stopped before its end"
        raise ResultsError(
            f"{path}: the run is marked incomplete ({why}): its missing checks cannot be compared; "
            "diff the results of a complete run"
        )


def compare(old_path: str | Path, new_path: str | Path, factor: float = 4.0) -> Diff:
    if not (factor >= 1.0):
        raise ValueError(f"--factor must be at least 1 (got {factor})")
    old, new = load(old_path), load(new_path)
    for path in (old_path, new_path):
        _refuse_incomplete(Path(path))
    d = Diff(str(old_path), str(new_path), factor)
    if len(old) == 1 and len(new) == 1:
        pairs = [(old[0], new[0])]
    else:
        by_name_old = {b.name: b for b in old}
        by_name_new = {b.name: b for b in new}
        names = list(by_name_old) + [n for n in by_name_new if n not in by_name_old]
        pairs = [(by_name_old.get(n), by_name_new.get(n)) for n in names]
    for o, n in pairs:
        label = n.name if n is not None else o.name
        if o is not None and n is not None and o.name != n.name:
            label = f"{o.name}->{n.name}"
        d.pairs.append((o.label if o else "(none)", n.label if n else "(none)"))
        if o is not None and n is not None:
            fo, fn = o.provenance.get("fixtures_digest"), n.provenance.get("fixtures_digest")
            if fo != fn:
                d.notes.append(
                    f"{label}: the fixtures differ (digest {str(fo)[:12]} -> {str(fn)[:12]}); cases are matched by id"
                )
            po, pn = o.provenance.get("policy_version"), n.provenance.get("policy_version")
            if po != pn:
                d.notes.append(f"{label}: the tolerance policy changed (version {po} -> {pn})")
        elif o is None:
            d.notes.append(f"backend {n.label} is new: all its checks count as added")
        else:
            d.notes.append(f"backend {o.label} is gone: all its checks count as removed")
        compare_backend(d, label, o, n)
    return d


def format_text(d: Diff) -> list[str]:
    lines = [f"lossconf diff: {d.old_path} -> {d.new_path} (factor {d.factor:g})"]
    for o, n in d.pairs:
        lines.append(f"  backend {o} -> {n}")
    lines += [f"  note: {x}" for x in d.notes]
    lines.append(
        f"  {d.compared} checks compared; "
        + ", ".join(f"{len(getattr(d, k))} {t}" for k, t in (*d.REGRESSIONS, *d.OTHERS))
    )
    modes = by_mode(d)
    if len(modes) > 1 or set(modes) - {"grad"}:
        lines.append("  by mode: " + "; ".join(
            f"{m}: " + ", ".join(f"{n} {t}" for t, n in counts.items()) for m, counts in modes.items()
        ))
    for key, title in (*d.REGRESSIONS, *d.OTHERS):
        items = getattr(d, key)
        if not items:
            continue
        lines.append(f"{title} ({len(items)}):")
        lines += [f"  {c.describe()}" for c in items[:MAX_TEXT]]
        if len(items) > MAX_TEXT:
            lines.append(f"  ... and {len(items) - MAX_TEXT} more")
    if d.removed and not d.allow_removed:
        lines.append(f"removed checks count as regressions ({len(d.removed)}); pass --allow-removed if the selection changed on purpose")
    if d.regressions:
        lines.append(f"REGRESSION: {d.regressions} check(s) regressed")
    else:
        lines.append("OK: no regressions")
    return lines


def by_mode(d: Diff) -> dict[str, dict[str, int]]:
    """Per mode, the number of changes in each category (that has any): the mode of the
    new record, or the old one for a removed check."""
    out: dict[str, dict[str, int]] = {}
    for key, title in (*d.REGRESSIONS, *d.OTHERS):
        for c in getattr(d, key):
            rec = c.new or c.old or {}
            counts = out.setdefault(rec.get("mode") or "grad", {})
            counts[title] = counts.get(title, 0) + 1
    return out


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def format_markdown(d: Diff) -> str:
    verdict = f"❌ **{d.regressions} regression(s)**" if d.regressions else "✅ **no regressions**"
    out = [
        "## lossconf diff",
        "",
        f"`{_md(Path(d.old_path).name)}` → `{_md(Path(d.new_path).name)}` (factor {d.factor:g}): {verdict}",
        "",
        "| category | checks |",
        "|---|---:|",
    ]
    out += [f"| {t} | {len(getattr(d, k))} |" for k, t in (*d.REGRESSIONS, *d.OTHERS)]
    out.append(f"| compared | {d.compared} |")
    out.append("")
    modes = by_mode(d)
    if len(modes) > 1 or set(modes) - {"grad"}:
        out += ["| mode | changes |", "|---|---|"]
        out += [f"| {m} | {_md(', '.join(f'{n} {t}' for t, n in counts.items()))} |" for m, counts in modes.items()]
        out.append("")
    if d.removed and not d.allow_removed:
        out.append(f"Removed checks count as regressions ({len(d.removed)}); `--allow-removed` if the selection changed on purpose.")
        out.append("")
    out += [f"- backend {_md(o)} → {_md(n)}" for o, n in d.pairs]
    out += [f"- note: {_md(x)}" for x in d.notes]
    out.append("")
    for key, title in (*d.REGRESSIONS, *d.OTHERS):
        items = getattr(d, key)
        if not items:
            continue
        regression = key in dict(d.REGRESSIONS) or (key == "removed" and not d.allow_removed)
        opened = " open" if regression else ""
        out += [f"<details{opened}><summary>{title} ({len(items)})</summary>", ""]
        out += [f"- {_md(c.describe())}" for c in items[:MAX_MD]]
        if len(items) > MAX_MD:
            out.append(f"- … and {len(items) - MAX_MD} more")
        out += ["", "</details>", ""]
    return "\n".join(out)


def main(args: Any) -> int:
    try:
        factor = getattr(args, "factor", None)
        d = compare(args.old, args.new, 4.0 if factor is None else float(factor))
        d.allow_removed = bool(getattr(args, "allow_removed", False))
    except ResultsError as err:
        print(f"lossconf diff: {err}", file=sys.stderr)
        return 2
    except ValueError as err:
        print(f"lossconf diff: {err}", file=sys.stderr)
        return 2
    try:
        for line in format_text(d):
            print(line)
        sys.stdout.flush()
    except BrokenPipeError:  # `lossconf diff ... | head`
        sys.stderr.close()
    md = getattr(args, "markdown", None)
    if md:
        path = Path(md)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(format_markdown(d), encoding="utf-8", newline="\n")
    return 1 if d.regressions else 0
