"""``lossconf report``: the HTML, Markdown and merged JSON from real results files (the
numpy backend and a deliberately regressed one on the L2Loss fixtures), reproducibility,
and bad input."""

from __future__ import annotations

import base64
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from conformance import cli, report
from tests import results_helpers as rh

ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")


def render(tmp_path: Path, *paths: Path, name: str = "out") -> Path:
    out = tmp_path / name
    code = cli.main(["report", *map(str, paths), "--out", str(out), "--fixtures", str(rh.fixtures_dir())])
    assert code == 0
    return out


def error_of(capsys, argv: list[str], progress: int = 0) -> str:
    """Run the CLI on bad input: exit code 2 and the error in exactly one line on stderr
    (after ``progress`` lines of progress)."""
    code = cli.main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 + progress, err
    return lines[-1]


# ------------------------------------------------------------------ contents


def test_report_writes_html_markdown_and_json(tmp_path):
    out = render(tmp_path, rh.numpy_results())
    html = (out / report.HTML_FILE).read_text()
    md = (out / report.MARKDOWN_FILE).read_text()
    merged = json.loads((out / report.JSON_FILE).read_text())

    # self-contained: no external resources, plots embedded as PNG
    assert not re.search(r"""(src|href)=["']?(https?:|//)""", html)
    assert "<script" not in html and "<link" not in html
    pngs = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(pngs) == 2  # the ULP histograms and the worst error by regime
    for p in pngs:
        assert base64.b64decode(p).startswith(b"\x89PNG\r\n\x1a\n")

    # the matrix, the libm-style table, the regime table, the invalid-input table
    for text in ("Matrix: loss × option set × mode × dtype", "libm style", "ULP-error histograms", "by value regime",
                 "Invalid input: raised or silently returned", "Cross-framework"):
        assert text in html
    assert 'title="mxnet.gluon.loss.L2Loss">L2Loss<' in html
    assert "weight=0.5" in html and "batch_axis=1" in html
    assert 'class="c cell conforms"' in html
    assert "<b>raised</b>" in html
    assert "numpy " + np.__version__ + "</b>: no failing checks" in html
    assert "No failing checks and no known deviations." in html

    assert md.startswith("## lossconf compatibility report")
    assert "| L2Loss | ✅" in md
    assert "Invalid input: 8 raised, 0 silently returned." in md

    assert merged["format"] == report.REPORT_FORMAT and merged["format_version"] == report.REPORT_VERSION
    (b,) = merged["backends"]
    assert b["provenance"]["backend"]["name"] == "numpy"
    assert b["summary"]["checks"] == len(rh.read(rh.numpy_results())["records"]) == len(b["records"])
    assert b["summary"]["by_verdict"]["fails"] == 0
    assert set(b["summary"]["losses"]["mxnet.gluon.loss.L2Loss"]) == {"float16", "bfloat16", "float32", "float64"}


def test_failures_are_drilled_down_with_inputs_expected_and_observed(tmp_path):
    out = render(tmp_path, rh.numpy_results(), rh.regressed_results())
    html = (out / report.HTML_FILE).read_text()
    section = html[html.index('id="b-numpy-regressed'):]
    assert 'class="c cell fails"' in section
    drill = section[section.index("Every failing check and known deviation"):]
    # 35: the 33 value checks of the earlier cases, and the float32 and float64 cases of
    # subnormal-squares (a 12.5 % error is 4 ULP of float16's subnormal quantum there: it passes)
    assert "<details><summary><b>L2Loss</b> — 54 failing</summary>" in drill
    row = re.search(r'<tr class="fails"><td class="mono" title="[^"]*">[^<]*</td><td class="mono">value</td><td>float32</td>.*?</tr>', drill).group(0)
    assert "inputs: pred[" in row and "label[" in row  # the inputs, abbreviated, from the fixtures
    assert re.search(r'<td class="mono">\d\.\d+e[-+]\d+</td>', row)  # expected, to full precision
    assert " at [" in row  # observed, at the worst element
    # the tolerance it was held to: 4 ULP, or the stability bound computed for the case
    # (the derived B(n) eps x scale, as the terminal shows it), not the bare factor
    bound = next(r["bound"] for r in rh.read(rh.regressed_results())["records"]
                 if r["id"] == re.search(r'title="([^"]*)"', row).group(1))
    assert f"4 ULP or {bound:.3g} eps × scale" in row and "stability 1.0" not in row

    # the cross-framework table shows both backends side by side; only numpy conforms
    cross = html[html.index('id="cross"'):html.index('id="invalid"')]
    assert f"<th>numpy {np.__version__}" in cross and f"<th>numpy-regressed {np.__version__}" in cross
    assert cross.count('<td class="small conf">numpy ') == cross.count("<tr><td class=\"loss\"")

    # the invalid-input table: raised by numpy, silently returned by the regressed backend
    inv = html[html.index('id="invalid"'):html.index("</section>", html.index('id="invalid"'))]
    assert "numpy-regressed" in inv and "8 silently returned" in inv and "8 raised" in inv
    assert "sample_weight must be broadcastable to the shape of pred" in inv

    md = (out / report.MARKDOWN_FILE).read_text()
    assert "### Cross-framework" in md and "| L2Loss | ✅" in md and "❌" in md
    assert "54 failing check(s)" in md and "silently returned" in md


def test_invalid_input_raised_only_because_every_call_raises_is_shown_as_not_judged(tmp_path):
    """A backend that raises on every float16 call "rejects" float16 invalid input too: the
    report counts those checks as errors against their control, never as raised."""
    results = rh.run("tests.defect_backends:RaisesOnEveryCall", tmp_path / "results-raises.json")
    records = [r for r in rh.read(results)["records"] if r["check"] == "invalid"]
    both = [r for r in records if r["dtype"] == "float16"]
    assert both and all(r["status"] == "error" and r["verdict"] == "raises on valid input too" for r in both)
    assert all(r["status"] == "pass" for r in records if r["dtype"] != "float16")
    out = render(tmp_path, results)
    md = (out / report.MARKDOWN_FILE).read_text()
    raised = len(records) - len(both)
    assert f"Invalid input: {raised} raised, 0 silently returned, {len(both)} raised on the valid control case too (not judged)." in md
    html = (out / report.HTML_FILE).read_text()
    assert "raised on invalid input and on its valid control case alike (label must have the same number of elements as pred)" in html
    inv = html[html.index('id="invalid"'):html.index("</section>", html.index('id="invalid"'))]
    assert f"{len(both)} raises on valid input too" in inv and 'class="badge fails"' in inv


def test_known_deviations_and_unused_expectations_are_shown(tmp_path):
    def edit(d):
        for r in d["records"]:
            if r["status"] == "fail" and r["dtype"] == "float64":
                r.update(status="known", reason="sums over non-batch axes where the docs say averaged")
        d["provenance"]["expectations"] = "conformance/expectations/numpy-regressed.toml"
        d["unused_expectations"] = [{"entry": 2, "describe": "entry 2 (L1Loss value)", "reason": "fixed upstream"}]

    known = rh.edited(rh.regressed_results(), tmp_path / "known.json", edit)
    out = render(tmp_path, known)
    html = (out / report.HTML_FILE).read_text()
    assert 'class="c cell known"' in html  # float64 cells: only known deviations, no failure
    assert 'class="c cell fails"' in html  # float16/float32 cells still fail
    assert "known deviation: sums over non-batch axes where the docs say averaged" in html
    assert "entry 2 (L1Loss value): fixed upstream" in html
    assert "expectations numpy-regressed.toml" in html.splitlines()[html.count("\n", 0, html.index("Provenance:"))]
    assert "1 listed deviation(s) no longer occur." in (out / report.MARKDOWN_FILE).read_text()


def test_provenance_is_one_line_with_the_results_date(tmp_path):
    out = render(tmp_path, rh.numpy_results(), rh.regressed_results())
    created = [rh.read(p)["provenance"]["created"] for p in (rh.numpy_results(), rh.regressed_results())]
    for name in (report.HTML_FILE, report.MARKDOWN_FILE):
        text = (out / name).read_text()
        dated = [ln for ln in text.splitlines() if ISO_DATE.search(ln)]
        assert len(dated) == 1 and "Provenance:" in dated[0], dated
        assert all(c in dated[0] for c in created)


def test_same_results_give_byte_identical_files(tmp_path):
    # copy the inputs under the same names elsewhere: only their contents may matter
    elsewhere = tmp_path / "copy"
    elsewhere.mkdir()
    copies = [Path(shutil.copy(p, elsewhere)) for p in (rh.numpy_results(), rh.regressed_results())]
    a = render(tmp_path, rh.numpy_results(), rh.regressed_results(), name="a")
    b = render(tmp_path, *copies, name="b")
    for name in (report.HTML_FILE, report.MARKDOWN_FILE, report.JSON_FILE):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_merged_json_reads_back_as_results(tmp_path):
    first = render(tmp_path, rh.numpy_results(), rh.regressed_results(), name="first")
    again = render(tmp_path, first / report.JSON_FILE, name="again")
    assert (first / report.JSON_FILE).read_bytes() == (again / report.JSON_FILE).read_bytes()
    assert (first / report.MARKDOWN_FILE).read_text().split("\n", 3)[3] == (again / report.MARKDOWN_FILE).read_text().split("\n", 3)[3]


def test_one_backend_in_two_disjoint_files_is_merged(tmp_path):
    doc = rh.read(rh.numpy_results())
    half = len(doc["records"]) // 2
    a = rh.edited(rh.numpy_results(), tmp_path / "a.json", lambda d: d.update(records=d["records"][:half]))
    b = rh.edited(rh.numpy_results(), tmp_path / "b.json", lambda d: d.update(records=d["records"][half:]))
    out = render(tmp_path, a, b)
    (merged,) = json.loads((out / report.JSON_FILE).read_text())["backends"]
    assert merged["sources"] == ["a.json", "b.json"]
    assert len(merged["records"]) == len(doc["records"])


def test_without_results_runs_the_numpy_backend_first(tmp_path):
    out = tmp_path / "reports"
    code = cli.main(["report", "--out", str(out), "--fixtures", str(rh.fixtures_dir())])
    assert code == 0
    results = rh.read(out / "results-numpy.json")
    assert results["format"] == "lossconf-results" and results["records"]
    assert {p.name for p in out.iterdir()} == {"results-numpy.json", report.HTML_FILE, report.MARKDOWN_FILE, report.JSON_FILE}


def test_a_backend_that_cannot_run_is_named(tmp_path, capsys):
    line = error_of(capsys, ["report", "--out", str(tmp_path), "--backend", "no_such_module:backend",
                             "--fixtures", str(rh.fixtures_dir())], progress=1)
    assert "backend no_such_module:backend: the run wrote no results" in line
    assert "No module named 'no_such_module'" in line


# ------------------------------------------------------------------ empty and bad input


def test_empty_results_give_an_empty_report_that_says_so(tmp_path):
    empty = rh.edited(rh.numpy_results(), tmp_path / "empty.json", lambda d: d.update(records=[]))
    out = render(tmp_path, empty)
    html = (out / report.HTML_FILE).read_text()
    assert "Empty report" in html and "empty.json" in html and "contain no records" in html
    assert "data:image/png" not in html
    assert "**Empty report**" in (out / report.MARKDOWN_FILE).read_text()
    assert json.loads((out / report.JSON_FILE).read_text())["backends"][0]["records"] == []


def test_one_empty_backend_beside_a_full_one(tmp_path):
    empty = rh.edited(rh.regressed_results(), tmp_path / "empty.json", lambda d: d.update(records=[]))
    html = (render(tmp_path, rh.numpy_results(), empty) / report.HTML_FILE).read_text()
    assert "No records: this results file holds no checks" in html


def test_truncated_results_are_named(tmp_path, capsys):
    text = rh.numpy_results().read_text()
    bad = tmp_path / "truncated.json"
    bad.write_text(text[: len(text) // 2])
    line = error_of(capsys, ["report", str(bad), "--out", str(tmp_path / "o")])
    assert str(bad) in line and "truncated" in line
    assert not (tmp_path / "o" / report.HTML_FILE).exists()


@pytest.mark.parametrize(
    "edit, words",
    [
        (lambda d: d.update(format="lossconf-fixtures"), "not a lossconf results file (format 'lossconf-fixtures'"),
        (lambda d: d.update(format_version=2), "format_version 2; this lossconf reads version 1"),
        (lambda d: d["provenance"]["backend"].update(name="?"), "results from an unknown backend"),
        (lambda d: d["provenance"].pop("backend"), "results from an unknown backend"),
        (lambda d: d.pop("provenance"), "has no provenance, so its backend is unknown"),
        (lambda d: d["records"][3].update(status=42), "record 3 ("),  # a status that is no name (a new name is shown)
        (lambda d: d["records"][5].pop("dtype"), "lacks dtype"),
        (lambda d: d.update(records={}), "'records' is not a list"),
    ],
)
def test_bad_results_are_named_in_one_line(tmp_path, capsys, edit, words):
    bad = rh.edited(rh.numpy_results(), tmp_path / "bad.json", edit)
    line = error_of(capsys, ["report", str(bad), "--out", str(tmp_path / "o")])
    assert line.startswith(f"lossconf report: {bad}: ") and words in line


@pytest.mark.parametrize(
    "content, words",
    [("", "the file is empty"), ("[1, 2]", "not a lossconf results file"), ("{\"format\": ", "truncated"),
     ("not json at all", "not valid JSON")],
)
def test_files_that_are_not_results_are_named(tmp_path, capsys, content, words):
    bad = tmp_path / "x.json"
    bad.write_text(content)
    line = error_of(capsys, ["report", str(bad), "--out", str(tmp_path / "o")])
    assert str(bad) in line and words in line


def test_missing_file_and_duplicate_backends_are_named(tmp_path, capsys):
    line = error_of(capsys, ["report", str(tmp_path / "nope.json"), "--out", str(tmp_path / "o")])
    assert "nope.json: no such results file" in line
    dup = Path(shutil.copy(rh.numpy_results(), tmp_path / "again.json"))
    line = error_of(capsys, ["report", str(rh.numpy_results()), str(dup), "--out", str(tmp_path / "o")])
    assert "again.json" in line and "already holds" in line


# ------------------------------------------------------------------ units


def test_ulp_bins_and_formatting():
    assert [report._bin(x) for x in (0.0, 0.5, 0.51, 4.0, 4.1, 1e5, float("inf"), float("nan"))] == [0, 0, 1, 3, 4, 10, 11, 11]
    assert [report.fmt_ulps(x) for x in (None, 0.0, 0.5, 12.4, 2.5e6, float("inf"), float("nan"))] == [
        "", "0", "0.5", "12", "2.5e6", "∞", "nan"]
