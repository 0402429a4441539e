"""The report's mode dimension (issue 13: "the report shows modes"; issue 14: the merged
report): the matrix has a column per mode and dtype a backend ran, a mode a backend does
not run shows its reason (never an empty column), two runs of one backend (tox's torch
eager modes and its compiled sample) are one backend counted once, and an outcome the
report does not know (a newer harness's, e.g. ``raised``) is shown by its name.

The results are real runs (the numpy backend, and ``tests.regressed_backend`` -- numpy
with L2Loss's value 12.5 % too large and invalid input silently returned -- against a
sample expectation file); only the unknown outcome is an edited copy of a real results
file (the helpers' approach), since no harness writes one yet. What the page must show is
counted here from the results files."""

from __future__ import annotations

import functools
import html as htmllib
import json
import re
import tempfile
from collections import Counter, defaultdict
from pathlib import Path

from conformance import cli, report
from conformance.backends import load_backend
from conformance.backends.numpy_backend import backend as NUMPY_BACKEND
from conformance.harness import expectations as ex
from conformance.harness.session import Filters, Session
from conformance.protocol import MODES
from conformance.report import migration
from tests import results_helpers as rh
from tests.defect_backends import Wrapped

LOSS = "mxnet.gluon.loss.L2Loss"
NUMPY_MODES = ("forward", "grad", "backward-twice")  # the modes the numpy backend runs
R_VALUE = "tests/regressed_backend.py RegressedBackend.run: value * 1.125"
R_CROSS = "tests/regressed_backend.py RegressedBackend.run: zeros for invalid input (no invalid case in backward-twice)"
R_SHAPE = "a sample entry that never deviates (the regressed backend keeps the shape)"
# the first entry that matches a deviation covers it: value deviations are R_VALUE's in every
# mode; R_CROSS covers the invalid-input deviations of forward and grad, and matches the
# checks of backward-twice without a deviation there; R_SHAPE matches checks, never a deviation
EXPECTATIONS = f"""
[[deviation]]
loss = "{LOSS}"
check = "value"
reason = "{R_VALUE}"

[[deviation]]
loss = "{LOSS}"
check = "shape"
reason = "{R_SHAPE}"

[[deviation]]
loss = "{LOSS}"
mode = ["forward", "grad", "backward-twice"]
reason = "{R_CROSS}"
"""


@functools.cache
def workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="lossconf-report-modes-"))


def _run(spec: str, path: Path, modes: tuple[str, ...], expectations: bool = False) -> Path:
    filters = Filters(losses=[LOSS], modes=list(modes))
    exp = None
    if expectations:
        toml = workdir() / "regressed.toml"
        toml.write_text(EXPECTATIONS)
        exp = ex.load(str(toml))
    session = Session.open(load_backend(spec), None, filters, exp, 60.0)
    session.run_all(filters)
    session.write(path)
    return path


@functools.cache
def numpy_all_modes() -> Path:
    return _run("numpy", workdir() / "numpy.json", NUMPY_MODES)


@functools.cache
def regressed_split() -> tuple[Path, Path]:
    """Two disjoint runs of the regressed backend: forward and grad; backward-twice."""
    return (_run(rh.REGRESSED, workdir() / "regressed-a.json", ("forward", "grad"), True),
            _run(rh.REGRESSED, workdir() / "regressed-b.json", ("backward-twice",), True))


def render(out: Path, *paths: Path) -> str:
    assert cli.main(["report", *map(str, paths), "--out", str(out)]) == 0
    return (out / report.HTML_FILE).read_text(encoding="utf-8")


def matrix_of(html: str, label: str) -> str:
    part = html[html.index('<section id="matrix">'): html.index('<h2 id="details">')]
    start = part.index(f"<h3>{label}</h3>")
    end = part.find("<h3>", start + 1)
    return part[start: end if end >= 0 else len(part)]


def counts_from(records: list[dict]) -> dict[tuple, list[int]]:
    """(loss short name, option set, mode, dtype) -> [passed, run], from the records."""
    cells: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    for r in records:
        c = cells[(r["loss"].rsplit(".", 1)[-1], r["options_label"] or "defaults", r.get("mode") or "grad", r["dtype"])]
        c[1] += r["status"] != "skip"
        c[0] += r["status"] == "pass"
    return cells


def test_the_matrix_has_a_column_per_mode_and_dtype(tmp_path):
    doc = rh.read(numpy_all_modes())
    html = render(tmp_path / "out", numpy_all_modes())
    part = matrix_of(html, f"numpy {doc['provenance']['backend']['version']}")
    heads = re.findall(r'<th class="mode" colspan="(\d+)">([^<]+)</th>', part)
    assert [m for _, m in heads] == list(NUMPY_MODES)
    dtypes = re.findall(r'<th title="([^"]+)">', part)
    want = {m: sorted({r["dtype"] for r in doc["records"] if r["mode"] == m}) for m in NUMPY_MODES}
    assert [int(n) for n, _ in heads] == [len(want[m]) for m in NUMPY_MODES]
    order = [(m, d) for m in NUMPY_MODES for d in sorted(want[m], key=report.model._dtype_key)]
    assert dtypes == [d for _, d in order]
    # every cell: passed/run of its (loss, option set, mode, dtype), counted from the records
    cells = counts_from(doc["records"])
    rows = re.findall(r'<tr><td class="loss" title="[^"]*">\w*</td><td class="mono">(.*?)</td>(.*?)</tr>', part)
    assert rows
    for opts, tds in rows:
        opts = htmllib.unescape(opts.replace("<wbr>", ""))
        shown = [[int(a), int(b)] for a, b in re.findall(r'<span class="cnt">(\d+)/(\d+)</span>', tds)]
        assert shown == [cells[("L2Loss", opts, m, d)] for m, d in order if ("L2Loss", opts, m, d) in cells], opts
    assert sum(b for _, b in cells.values()) > 0


def test_a_mode_not_run_shows_its_reason_not_an_empty_column(tmp_path):
    doc = rh.read(numpy_all_modes())
    not_run = doc["provenance"]["modes_not_run"]
    assert set(not_run) == set(MODES) - set(NUMPY_MODES) and all(not_run.values())  # numpy's own reasons
    html = render(tmp_path / "out", numpy_all_modes())
    part = matrix_of(html, f"numpy {doc['provenance']['backend']['version']}")
    nrows = len(re.findall(r'<tr><td class="loss"', part))
    for mode, why in not_run.items():
        assert f'<th class="mode not-run" rowspan="2">{mode}</th>' in part
        # one cell spanning every row, with the backend's reason
        assert f'<td class="unsupported not-run small" rowspan="{nrows}" title="mode {mode} not run: {htmllib.escape(why)}">' \
               f"– not run: {htmllib.escape(why)}</td>" in part
        assert f"not run: <b>{mode}</b> — {htmllib.escape(why)}" in part  # and above the table
    md = (tmp_path / "out" / report.MARKDOWN_FILE).read_text()
    for mode, why in not_run.items():
        assert f"- mode {mode} not run: {why}" in md
    # the migration map: in the call table with the reason, and named in each cell
    m = migration.render_markdown(migration.build(report.load_all([numpy_all_modes()])))
    section = m[m.index("### L2Loss"):]
    for mode, why in not_run.items():
        assert f"➖ not run: {mode}: {why}" in section
    cells = [ln for ln in section.splitlines() if ln.startswith("| defaults |") or ln.startswith("| `")]
    assert cells and all(f"➖ not run — {', '.join(not_run)}" in ln for ln in cells)


def test_a_mode_the_run_did_not_select_says_so(tmp_path):
    a, b = regressed_split()
    html = render(tmp_path / "out", a)  # only the forward and grad run
    doc = rh.read(a)
    assert doc["provenance"]["modes_not_run"]["backward-twice"] is None  # the backend runs it
    part = matrix_of(html, f"numpy-regressed {doc['provenance']['backend']['version']}")
    assert "not run: the backend runs it, but this run did not select it (lossconf run numpy-regressed --mode backward-twice)" in part


def test_two_runs_of_one_backend_are_one_backend_counted_once(tmp_path):
    a, b = regressed_split()
    ra, rb = rh.read(a)["records"], rh.read(b)["records"]
    assert {r["mode"] for r in ra} == {"forward", "grad"} and {r["mode"] for r in rb} == {"backward-twice"}
    html = render(tmp_path / "out", a, b)
    label = f"numpy-regressed {rh.read(a)['provenance']['backend']['version']}"
    merged = json.loads((tmp_path / "out" / report.JSON_FILE).read_text())
    (part,) = merged["backends"]
    assert part["sources"] == [a.name, b.name]
    assert part["summary"]["checks"] == len(ra) + len(rb) == len(part["records"])
    assert len({r["id"] for r in part["records"]}) == len(ra) + len(rb)
    assert part["provenance"]["modes"] == ["forward", "grad", "backward-twice"]
    assert "backward-twice" not in part["provenance"]["modes_not_run"]
    # the summary row counts each check once
    row = re.search(rf'<tr><td><a href="#b-[^"]+">{re.escape(label)}</a></td><td class="n">(\d+)</td>', html)
    assert row and int(row.group(1)) == len(ra) + len(rb)
    heads = re.findall(r'<th class="mode" colspan="\d+">([^<]+)</th>', matrix_of(html, label))
    assert heads == ["forward", "grad", "backward-twice"]
    # unused expectation entries: each once, and none that the other run used
    ua, ub = rh.read(a)["unused_expectations"], rh.read(b)["unused_expectations"]
    assert R_SHAPE in [u["reason"] for u in ua] and R_SHAPE in [u["reason"] for u in ub]  # unused in both runs
    assert R_CROSS in [u["reason"] for u in ub] and R_CROSS not in [u["reason"] for u in ua]  # used by run a
    assert any(r["status"] == "known" and r["reason"] == R_CROSS for r in ra)
    assert [u["reason"] for u in part["unused_expectations"]] == [R_SHAPE]
    # a backend given twice is still an error
    assert cli.main(["report", str(a), str(a), "--out", str(tmp_path / "twice")]) == 2


def _with_status(tmp_path, status: str, verdict: str, message: str):
    """numpy's results of every mode with its float32 grad-mode value checks given this status."""

    def edit(d):
        n = 0
        for r in d["records"]:
            if r["check"] == "value" and r["mode"] == "grad" and r["dtype"] == "float32":
                r.update(status=status, verdict=verdict, message=message)
                n += 1
        assert n

    return rh.edited(numpy_all_modes(), tmp_path / f"{status}.json", edit)


def test_an_unknown_outcome_is_shown_by_its_name(tmp_path):
    message = "quarantined by a newer harness (an outcome this report does not know)"

    path = _with_status(tmp_path, "quarantined", "quarantined", message)
    raised = [r for r in rh.read(path)["records"] if r["status"] == "quarantined"]
    html = render(tmp_path / "out", path)
    top = html[html.index('id="failures"'): html.index('id="known"')]
    assert f"other outcomes: {len(raised)} quarantined" in top
    assert "outcome &#39;quarantined&#39;: quarantined by a newer harness" in top
    for r in raised:
        assert htmllib.escape(r["id"][: -len(r["check"]) - 1]) in top
    matrix = html[html.index('<section id="matrix">'): html.index('<h2 id="details">')]
    assert "other outcome (quarantined)" in matrix  # in the legend
    assert re.search(r'<td class="c cell other" title="[^"]*\d+ quarantined', matrix)
    summary = Counter(r["status"] for r in rh.read(path)["records"])
    assert summary["quarantined"] == len(raised)
    md = (tmp_path / "out" / report.MARKDOWN_FILE).read_text()
    assert f"other outcomes: {len(raised)} quarantined" in md and "❔ quarantined" in md
    m = migration.render_markdown(migration.build(report.load_all([path])))
    assert "❔ other outcome: quarantined — grad: float32" in m
    assert f"outcome (value): quarantined: {message}" in m


def test_a_raise_on_a_documented_infinity_is_shown_with_the_failures(tmp_path):
    """``raised`` (the harness's outcome for a backend that raises where the documented
    value is +inf) is not a match: the report lists it with the failures, not as an
    unknown outcome."""
    message = "the backend raised where the documented value is +inf (element [0] of 1): ValueError: no alignment"

    path = _with_status(tmp_path, "raised", "raised on +inf", message)
    raised = [r for r in rh.read(path)["records"] if r["status"] == "raised"]
    html = render(tmp_path / "out", path)
    top = html[html.index('id="failures"'): html.index('id="known"')]
    assert "other outcome" not in top
    for r in raised:
        assert htmllib.escape(r["id"][: -len(r["check"]) - 1]) in top
    matrix = html[html.index('<section id="matrix">'): html.index('<h2 id="details">')]
    assert re.search(r'<td class="c cell fails"', matrix)
    md = (tmp_path / "out" / report.MARKDOWN_FILE).read_text()
    assert "other outcomes" not in md


NO_COMPILE = "compiled: this backend's graph compiler does not work here (RuntimeError: no C++ compiler)"


class CompiledDeclined(Wrapped):
    """The numpy backend, declaring mode compiled but declining every call of it with one
    reason -- as the torch backend does where torch.compile does not work."""

    name = "numpy-compiled-declined"
    modes = {**NUMPY_BACKEND.modes, "compiled": None}

    def supports(self, call):
        return NO_COMPILE if call.mode == "compiled" else super().supports(call)


def test_a_mode_whose_every_check_was_skipped_shows_the_reason_not_a_column(tmp_path):
    filters = Filters(losses=[LOSS], modes=["grad", "compiled"])
    session = Session.open(CompiledDeclined(), None, filters, None, 60.0)
    session.run_all(filters)
    path = tmp_path / "declined.json"
    session.write(path)
    recs = rh.read(path)["records"]
    compiled = [r for r in recs if r["mode"] == "compiled"]
    assert compiled and all(r["status"] == "skip" and r["message"] == NO_COMPILE for r in compiled)
    html = render(tmp_path / "out", path)
    part = matrix_of(html, "numpy-compiled-declined 0")
    assert re.findall(r'<th class="mode" colspan="\d+">([^<]+)</th>', part) == ["grad"]
    assert '<th class="mode not-run" rowspan="2">compiled</th>' in part
    assert f"– not run: every check skipped: {NO_COMPILE}</td>" in htmllib.unescape(part)
    assert "modes run: <b>grad</b>" in part
    # the row totals still count the skipped checks
    totals = [int(n) for n in re.findall(r'<td class="n">(\d+)</td></tr>', part)]
    assert sum(totals) == len(recs)
    md = (tmp_path / "out" / report.MARKDOWN_FILE).read_text()
    assert f"- mode compiled not run: every check skipped: {NO_COMPILE}" in md
    m = migration.render_markdown(migration.build(report.load_all([path])))
    assert f"· unsupported: {NO_COMPILE} — " in m
