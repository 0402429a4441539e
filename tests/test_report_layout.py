"""The report leads with what matters (issue 15, deliverable 4): per backend the failing
checks grouped by cause and shown in full, then the known deviations one row per root
cause, then the matrix with pass counts and a legend, then the details; the invalid-input
table folded by loss; Jinja2 templates with autoescaping; the ``mode`` dimension when the
results have it.

The results are real: the numpy backend and ``tests.defect_backends:NanForExtreme`` (nan
for any |input| > 1000) on three losses, with a sample expectation file that lists some of
its failures. What the page must show is counted here from the results files."""

from __future__ import annotations

import functools
import html as htmllib
import json
import re
import sys
import tempfile
from collections import Counter, defaultdict
from importlib.metadata import requires
from pathlib import Path

import pytest

from conformance import cli, report
from conformance.backends import load_backend
from conformance.harness import expectations as ex
from conformance.harness.session import Filters, Session
from tests import results_helpers as rh

LOSSES = ["L2Loss", "SoftmaxCELoss", "HingeLoss"]
DEFECT = "tests.defect_backends:NanForExtreme"
REASON_HINGE = "tests/defect_backends.py NanForExtreme.run: nan for every output when any |input| > 1000 (hinge: listed)"
REASON_L2 = "tests/defect_backends.py NanForExtreme.limit = 1000.0: L2Loss float64 listed <as a sample>"
SAMPLE_EXPECTATIONS = f"""
[[deviation]]
loss = "mxnet.gluon.loss.HingeLoss"
tags = ["extreme"]
reason = "{REASON_HINGE}"

[[deviation]]
loss = "mxnet.gluon.loss.L2Loss"
dtype = ["float64"]
reason = "{REASON_L2}"
"""


@functools.cache
def workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="lossconf-report-layout-"))


def _run(spec: str, path: Path, expectations: Path | None = None) -> Path:
    filters = Filters(losses=list(LOSSES))
    exp = ex.load(str(expectations)) if expectations else None
    session = Session.open(load_backend(spec), None, filters, exp, 60.0)
    session.run_all(filters)
    session.write(path)
    return path


@functools.cache
def sample_results() -> tuple[Path, Path]:
    """(numpy results, defect-backend results with known deviations) on LOSSES."""
    exp = workdir() / "sample-expectations.toml"
    exp.write_text(SAMPLE_EXPECTATIONS)
    return _run("numpy", workdir() / "numpy.json"), _run(DEFECT, workdir() / "defect.json", exp)


@functools.cache
def sample_report() -> Path:
    out = workdir() / "report"
    assert cli.main(["report", *map(str, sample_results()), "--out", str(out)]) == 0
    return out / report.HTML_FILE


def page() -> str:
    return sample_report().read_text(encoding="utf-8")


def section(html: str, start: str, end: str) -> str:
    return html[html.index(start) : html.index(end)]


def case_id(rec: dict) -> str:
    return rec["id"][: -len(rec["check"]) - 1]


# ------------------------------------------------------------------ order and contents


def test_the_page_leads_with_failures_then_known_then_matrix_then_details():
    html = page()
    order = ['id="failures"', 'id="known"', 'id="matrix"', 'id="summary"', 'id="cross"', 'id="invalid"', 'id="b-numpy-']
    at = [html.index(x) for x in order]
    assert at == sorted(at), list(zip(order, at))


def test_the_top_names_every_failing_case_of_every_backend_expanded():
    html = page()
    numpy_path, defect_path = sample_results()
    fails = [r for r in rh.read(defect_path)["records"] if r["status"] in ("fail", "error")]
    assert fails and not [r for r in rh.read(numpy_path)["records"] if r["status"] in ("fail", "error")]
    # the table of causes, before anything else of the page's sections
    top = section(html, 'id="failures"', "every failing check, by cause")
    assert "<details" not in top  # expanded, not folded
    for rec in fails:
        assert htmllib.escape(case_id(rec)) in top, rec["id"]
    assert f"<b>numpy-with-defect 0</b>: {len(fails)} failing checks" in top
    assert "no failing checks" in top  # the numpy backend says so at the top too
    # then every failing check in full: expected, observed, the computed bound, the repeat command
    full = htmllib.unescape(section(html, "every failing check, by cause", 'id="known"'))
    for rec in fails:
        assert f'title="{rec["id"]}"' in full
        assert f"repeat: lossconf run BACKEND --case '{rec['id']}'" in full


def test_failure_causes_group_the_checks_that_fail_alike():
    _, defect_path = sample_results()
    fails = [r for r in rh.read(defect_path)["records"] if r["status"] in ("fail", "error")]
    groups = report.failure_groups(report.load(defect_path)[0])
    assert sum(g.count for g in groups) == len(fails)
    # NanForExtreme returns nan everywhere: one cause per loss, value and gradient together
    assert len(groups) == len({r["loss"] for r in fails})
    assert all(g.cause == "nan at […] where the exact value is finite" for g in groups)
    assert [g.count for g in groups] == sorted((g.count for g in groups), reverse=True)


def test_failure_causes_are_ordered_most_severe_first():
    base = {"loss": "mxnet.gluon.loss.L2Loss", "options_label": "", "dtype": "float32", "verdict": "fails", "tags": ["regular"]}
    records = [
        {**base, "id": "L2Loss[]-float32-regular-001-value", "check": "value", "status": "fail",
         "message": "error beyond tolerance in 2 element(s)"},
        {**base, "id": "L2Loss[]-float32-regular-002-value", "check": "value", "status": "fail",
         "message": "error beyond tolerance in 1 element(s)"},
        {**base, "id": "L2Loss[]-float32-regular-003-value", "check": "value", "status": "error",
         "message": "the backend failed on valid input: ValueError: boom"},
    ]
    br = report.BackendResults("x.json", {"backend": {"name": "x"}}, [], records)
    groups = report.failure_groups(br)
    assert [g.count for g in groups] == [1, 2]  # the crash first, although it is one check
    assert groups[1].cause == "error beyond tolerance in # element(s)"


def test_known_deviations_are_one_row_per_root_cause():
    html = page()
    _, defect_path = sample_results()
    known = Counter(r["reason"] for r in rh.read(defect_path)["records"] if r["status"] == "known")
    assert set(known) == {REASON_HINGE, REASON_L2}
    part = section(html, 'id="known"', 'id="matrix"')
    rows = re.findall(r'<tr class="known"><td class="msg">(.*?)</td><td class="n">(\d+)</td>', part)
    assert {(htmllib.unescape(reason), int(n)) for reason, n in rows} == set(known.items())
    assert len(rows) == len(known)
    assert "&lt;as a sample&gt;" in part  # escaped by the template engine


def test_the_matrix_shows_pass_counts_and_has_a_legend():
    html = page()
    part = section(html, 'id="matrix"', 'id="summary"')
    for label in ("conforms", "within stability bound", "known deviation", "fails", "unsupported"):
        assert label in part[: part.index("<table")]
    # every cell: passed/run, counted here from the records
    _, defect_path = sample_results()
    cells: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    for r in rh.read(defect_path)["records"]:
        c = cells[(r["loss"].rsplit(".", 1)[-1], r["options_label"] or "defaults", r["dtype"])]
        c[1] += r["status"] != "skip"
        c[0] += r["status"] == "pass"
    mine = part[part.index("<h3>numpy-with-defect 0</h3>"):]
    shown = re.findall(r'<tr><td class="loss" title="mxnet.gluon.loss.(\w+)">\w*</td><td class="mono">([^<]*)</td>(.*?)</tr>', mine)
    dtypes = ["float16", "bfloat16", "float32", "float64"]
    assert shown
    for loss, opts, tds in shown:
        counts = re.findall(r'<span class="cnt">(\d+)/(\d+)</span>', tds)
        want = [cells[(loss, htmllib.unescape(opts), d)] for d in dtypes if (loss, htmllib.unescape(opts), d) in cells]
        assert [[int(a), int(b)] for a, b in counts] == want, (loss, opts)


def test_the_invalid_input_table_is_folded_by_loss():
    html = page()
    part = section(html, 'id="invalid"', 'id="b-numpy-')
    numpy_path, _ = sample_results()
    losses = {r["loss"] for r in rh.read(numpy_path)["records"] if r["check"] == "invalid"}
    folds = re.findall(r'<details class="invalid-loss"><summary><b>(\w+)</b>', part)
    assert sorted(folds) == sorted(x.rsplit(".", 1)[-1] for x in losses)
    outside = re.sub(r"<details.*?</details>", "", part, flags=re.S)
    assert "<b>raised</b>" not in outside


def test_a_rule_with_a_parenthesis_is_not_cut(tmp_path):
    rule = "labels must be in [0, C)"

    def edit(d):
        for r in d["records"]:
            if r["check"] == "invalid":
                r["message"] = f"raised for invalid input ({rule}): ValueError: label 3 (of 3 classes) is out of range"

    out = tmp_path / "out"
    edited = rh.edited(rh.numpy_results(), tmp_path / "paren.json", edit)
    assert cli.main(["report", str(edited), "--out", str(out), "--fixtures", str(rh.fixtures_dir())]) == 0
    html = (out / report.HTML_FILE).read_text()
    assert f'<td class="small">{htmllib.escape(rule)}</td>' in html
    assert "<b>raised</b> ValueError: label 3 (of 3 classes) is out of range" in html
    silently = f"input the documentation rules out ({rule}) was accepted and returned [1.5]"
    assert report._split_invalid(silently) == (rule, "returned [1.5]")


def test_results_with_modes_get_a_mode_column(tmp_path):
    def edit(d):
        recs = []
        for mode in ("forward", "compiled"):
            for r in d["records"]:
                recs.append({**r, "id": f"{r['id']}-{mode}", "mode": mode})
        d["records"] = recs

    out = tmp_path / "out"
    edited = rh.edited(rh.regressed_results(), tmp_path / "modes.json", edit)
    assert cli.main(["report", str(edited), "--out", str(out), "--fixtures", str(rh.fixtures_dir())]) == 0
    html = (out / report.HTML_FILE).read_text()
    matrix = section(html, 'id="matrix"', 'id="summary"')
    # a column group per mode (then one column per dtype under it), in the protocol's order
    assert re.findall(r'<th class="mode" colspan="4">(\w+)</th>', matrix) == ["forward", "compiled"]
    assert matrix.count('<th title="float32">f32</th>') == 2
    assert "modes forward, compiled" in section(html, 'id="failures"', 'id="known"')
    cross = section(html, 'id="cross"', 'id="invalid"')
    # the two modes' records are the same here, so their badges are: one line names both
    assert cross.count('<span class="mode-name">forward, compiled</span>') == cross.count('<tr><td class="loss"') > 0


def test_markup_in_results_is_escaped(tmp_path):
    def edit(d):
        d["records"][0].update(status="fail", verdict="fails", message="<script>alert(1)</script>")

    out = tmp_path / "out"
    edited = rh.edited(rh.numpy_results(), tmp_path / "markup.json", edit)
    assert cli.main(["report", str(edited), "--out", str(out), "--fixtures", str(rh.fixtures_dir())]) == 0
    html = (out / report.HTML_FILE).read_text()
    assert "<script" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_without_jinja2_the_report_says_what_to_install(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "jinja2", None)  # import jinja2 raises ImportError
    code = cli.main(["report", str(rh.numpy_results()), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "pip install 'lossconf[report]'" in err[0]


def test_dependencies_fit_the_features():
    reqs = requires("lossconf") or []
    assert any(r.startswith("hypothesis") and "extra" not in r for r in reqs)  # lossconf live, installed with lossconf
    assert any(r.startswith("hypothesis") and 'extra == "live"' in r for r in reqs)
    assert any(r.startswith("jinja2") and 'extra == "report"' in r for r in reqs)
    templates = Path(report.__file__).parent / "templates"
    assert {p.name for p in templates.iterdir()} >= {"report.html.j2", "macros.j2", "report.css"}


def test_merged_json_of_the_sample_is_byte_identical_on_a_second_render(tmp_path):
    out = tmp_path / "again"
    assert cli.main(["report", *map(str, sample_results()), "--out", str(out)]) == 0
    for name in (report.HTML_FILE, report.MARKDOWN_FILE, report.JSON_FILE):
        assert (out / name).read_bytes() == (sample_report().parent / name).read_bytes(), name
    assert json.loads((out / report.JSON_FILE).read_text())["format"] == report.REPORT_FORMAT


@pytest.mark.parametrize("name", [report.MARKDOWN_FILE])
def test_the_markdown_summary_also_leads_with_failures(name):
    md = (sample_report().parent / name).read_text()
    _, defect_path = sample_results()
    nfail = sum(r["status"] == "fail" for r in rh.read(defect_path)["records"])
    head = md[: md.index("| backend | checks |")]
    assert f"**numpy-with-defect 0: {nfail} failing check(s)" in head
    assert REASON_HINGE.replace("|", "\\|") in head and "**numpy " in head


def test_huge_ulp_figures_render(tmp_path):
    def edit(d):
        for r in d["records"]:
            if r["check"] == "value" and r["dtype"] == "float64":
                r["error_ulps"] = 1.7e308  # finite, near the float64 maximum

    out = tmp_path / "out"
    edited = rh.edited(rh.numpy_results(), tmp_path / "huge.json", edit)
    assert cli.main(["report", str(edited), "--out", str(out), "--fixtures", str(rh.fixtures_dir())]) == 0
    assert "1.7e308" in (out / report.HTML_FILE).read_text()
