"""``lossconf diff``: gating CI on a deliberately regressed backend, passing an unchanged
rerun, and each kind of change (fixed, grown, unsupported, known, added, removed)."""

from __future__ import annotations

import json

import pytest

from conformance import cli, diff, report
from tests import results_helpers as rh


def run_diff(capsys, old, new, *extra: str) -> tuple[int, str]:
    code = cli.main(["diff", str(old), str(new), *extra])
    return code, capsys.readouterr().out


def first(doc: dict, check: str = "value", status: str = "pass") -> dict:
    return next(r for r in doc["records"] if r["check"] == check and r["status"] == status and r["error_ulps"])


def test_an_unchanged_rerun_passes(capsys, tmp_path):
    md = tmp_path / "diff.md"
    code, out = run_diff(capsys, rh.numpy_results(), rh.numpy_rerun_results(), "--markdown", str(md))
    assert code == 0, out
    n = len(rh.read(rh.numpy_results())["records"])
    assert f"{n} checks compared; 0 new failures, 0 errors grown" in out
    assert out.rstrip().endswith("OK: no regressions")
    assert "✅ **no regressions**" in md.read_text()


def test_a_regressed_backend_is_gated(capsys, tmp_path):
    md = tmp_path / "diff.md"
    code, out = run_diff(capsys, rh.numpy_results(), rh.regressed_results(), "--markdown", str(md))
    assert code == 1, out
    new = rh.read(rh.regressed_results())["records"]
    failing = [r for r in new if r["status"] == "fail"]
    assert f"new failures ({len(failing)}):" in out
    # the broken value and the invalid input that is now silently returned, each named
    assert "L2Loss[]-float32-regular-012-value: pass -> fail (conforms -> fails), error " in out
    assert "-invalid: pass -> fail (raised -> silently returned)" in out
    assert out.rstrip().endswith(f"REGRESSION: {len(failing)} check(s) regressed")
    text = md.read_text()
    assert f"❌ **{len(failing)} regression(s)**" in text and "<details open><summary>new failures" in text


def test_the_fix_of_a_regression_is_reported_and_passes(capsys):
    code, out = run_diff(capsys, rh.regressed_results(), rh.numpy_results())
    assert code == 0, out
    n = sum(1 for r in rh.read(rh.regressed_results())["records"] if r["status"] == "fail")
    assert f"fixed ({n}):" in out and "fail -> pass" in out


def test_a_merged_report_is_a_baseline(capsys, tmp_path):
    out_dir = tmp_path / "reports"
    assert cli.main(["report", str(rh.numpy_results()), "--out", str(out_dir)]) == 0
    capsys.readouterr()
    code, out = run_diff(capsys, out_dir / report.JSON_FILE, rh.numpy_rerun_results())
    assert code == 0, out
    code, out = run_diff(capsys, out_dir / report.JSON_FILE, rh.regressed_results())
    assert code == 1, out


def test_an_error_that_grew_beyond_the_factor_is_a_regression(capsys, tmp_path):
    doc = rh.read(rh.numpy_results())
    rec = first(doc)
    old_err = rec["error_ulps"]

    def grow(d):
        r = next(x for x in d["records"] if x["id"] == rec["id"])
        r["error_ulps"] = 5 * max(old_err, 1.0)  # still a pass, by record: only its error changed

    new = rh.edited(rh.numpy_results(), tmp_path / "grown.json", grow)
    code, out = run_diff(capsys, rh.numpy_results(), new)
    assert code == 1, out
    assert "errors grown by more than the factor (1):" in out and rec["id"] in out
    code, out = run_diff(capsys, rh.numpy_results(), new, "--factor", "8")
    assert code == 0, out


def test_an_error_that_became_infinite_is_a_regression(capsys, tmp_path):
    rec = first(rh.read(rh.numpy_results()), check="grad:pred")

    def inf(d):
        next(x for x in d["records"] if x["id"] == rec["id"])["error_ulps"] = "inf"

    code, out = run_diff(capsys, rh.numpy_results(), rh.edited(rh.numpy_results(), tmp_path / "inf.json", inf))
    assert code == 1 and "-> ∞ ULP" in out


def test_small_errors_do_not_count_as_growth():
    o = {"status": "pass", "error_ulps": 0.0}
    assert not diff._grew(o, {"status": "pass", "error_ulps": 3.9}, 4.0)  # against a 1-ULP floor
    assert diff._grew(o, {"status": "pass", "error_ulps": 4.1}, 4.0)
    assert not diff._grew({"status": "pass", "error_ulps": 10.0}, {"status": "pass", "error_ulps": 39.0}, 4.0)
    assert diff._grew({"status": "pass", "error_ulps": 10.0}, {"status": "fail", "error_ulps": "nan"}, 4.0)
    assert not diff._grew({"status": "pass", "error_ulps": "inf"}, {"status": "pass", "error_ulps": "inf"}, 4.0)


def test_unsupported_known_added_and_removed(capsys, tmp_path):
    doc = rh.read(rh.numpy_results())
    recs = [r for r in doc["records"] if r["check"] == "value"]
    to_skip, to_known, to_drop = recs[0]["id"], recs[1]["id"], recs[2]["id"]

    def edit(d):
        out = []
        for r in d["records"]:
            if r["id"] == to_skip:
                r.update(status="skip", verdict="unsupported", error_ulps=None, message="not in this build")
            elif r["id"] == to_known:
                r.update(status="known", reason="documented in the expectation file")
            elif r["id"] == to_drop:
                continue
            out.append(r)
        out.append(dict(next(r for r in out if r["status"] == "pass"), id="L2Loss[]-float64-regular-999-value"))
        d["records"] = out

    new = rh.edited(rh.numpy_results(), tmp_path / "new.json", edit)
    code, out = run_diff(capsys, rh.numpy_results(), new)
    assert code == 1, out  # a check that no longer runs is a regression (and so is the removed one)
    assert "removed checks count as regressions (1)" in out
    assert f"no longer supported (1):\n  numpy: {to_skip}: pass -> skip" in out
    assert f"newly listed as known deviations (1):\n  numpy: {to_known}: pass -> known" in out
    assert f"checks removed (1):\n  numpy: {to_drop} (was pass" in out
    assert "checks added (1):\n  numpy: L2Loss[]-float64-regular-999-value (pass" in out
    # the other way round: newly supported, not a regression
    code, out = run_diff(capsys, new, rh.numpy_results())
    assert "newly supported (1):" in out and "no longer supported (0)" not in out


def test_different_fixtures_are_pointed_out(capsys, tmp_path):
    new = rh.edited(rh.numpy_results(), tmp_path / "new.json", lambda d: d["provenance"].update(fixtures_digest="0" * 64))
    code, out = run_diff(capsys, rh.numpy_results(), new)
    assert code == 0 and "note: numpy: the fixtures differ" in out


@pytest.mark.parametrize(
    "edit, words",
    [
        (lambda d: d.update(format_version=7), "format_version 7"),
        (lambda d: d["provenance"]["backend"].update(name=""), "unknown backend"),
    ],
)
def test_bad_input_exits_2_naming_the_file(capsys, tmp_path, edit, words):
    bad = rh.edited(rh.numpy_results(), tmp_path / "bad.json", edit)
    code = cli.main(["diff", str(rh.numpy_results()), str(bad)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and str(bad) in err and words in err


def test_truncated_input_and_bad_factor(capsys, tmp_path):
    bad = tmp_path / "cut.json"
    text = rh.numpy_results().read_text()[:1000]
    bad.write_text(text[: text.rindex(",") + 1])  # cut between two values: nothing after it
    assert cli.main(["diff", str(bad), str(rh.numpy_results())]) == 2
    assert "cut.json: truncated" in capsys.readouterr().err
    assert cli.main(["diff", str(rh.numpy_results()), str(rh.numpy_results()), "--factor", "0.5"]) == 2
    assert "--factor must be at least 1" in capsys.readouterr().err


def test_an_incomplete_results_file_is_refused_not_counted_as_removals(capsys, tmp_path):
    """A run stopped at --max-time or by Ctrl-C is marked incomplete; its missing checks are
    not removals (nor would a complete OLD be compared fairly): exit 2 naming the file."""
    doc = rh.read(rh.numpy_results())
    doc["records"] = doc["records"][: len(doc["records"]) // 3]
    doc["complete"], doc["stopped"] = False, "interrupted by the user (Ctrl-C)"
    partial = tmp_path / "partial.json"
    partial.write_text(json.dumps(doc))
    for old, new in ((rh.numpy_results(), partial), (partial, rh.numpy_results())):
        code = cli.main(["diff", str(old), str(new)])
        err = capsys.readouterr().err
        assert code == 2
        assert f"{partial}: the run is marked incomplete (interrupted by the user (Ctrl-C))" in err
        assert err.count("\n") == 1
