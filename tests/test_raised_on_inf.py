"""A backend that raises where the documented value is +inf (issue 11, item 4): CTC with a
label too long for its frames has p = 0 and the documented -log p = +inf. Such a raise is
recorded as its own outcome, status ``raised`` (verdict "raised on +inf"): not a pass (a
raise returns no value, and the batch's finite samples are lost with it), not an error of
the backend, not the invalid-input check. It fails the run (exit 1) like a failure unless an
expectation entry lists it (``outcome = "raised"`` lists only that). A backend that returns a
finite value there instead still fails the value check."""

from __future__ import annotations

import json

import pytest

from conformance import cli, diff
from conformance import fixtures as fx
from conformance.harness import expectations as ex
from conformance.harness.runner import FAIL, KNOWN, PASS, RAISED, RAISED_ON_INF
from conformance.harness.session import Filters, Session, format_summary
from conformance.report import model
from tests import defect_backends as d

CTC = "CTCLoss"
INFEASIBLE = "singular-infeasible-*"


@pytest.fixture(scope="module")
def ctc_cases() -> list[fx.FixtureCase]:
    return fx.load(losses={CTC})


def _run(backend, cases, expectations=None) -> Session:
    f = Filters([CTC])
    session = Session(backend, [c for c in cases if f.keep_case(c)], "test", expectations, 10.0)
    for c, chk, m in session.items(f):
        session.check(c, chk, m)
    return session


def _infeasible(case: fx.FixtureCase) -> bool:
    return case.name.startswith("singular-infeasible-")


def test_the_fixtures_document_inf_for_an_infeasible_label(ctc_cases):
    cases = [c for c in ctc_cases if _infeasible(c)]
    assert {c.dtype for c in cases} == {"float16", "bfloat16", "float32", "float64"}
    for c in cases:
        assert c.expected.text[0] == "inf" and c.expected.text[1] != "inf"
        assert "+inf" in c.note


def test_spec_table_quotes_the_documented_inf():
    from oracle.spec_table import render_markdown

    text = render_markdown()
    block = text[text.index("CTCLoss"):]
    assert "label too long for its frames" in block
    assert "loss = -log p(label | pred)" in block  # the quoted text
    assert "-log p is +inf" in block  # the reading: the expected value is +inf


def test_a_raise_on_the_documented_inf_is_recorded_as_raised(ctc_cases, tmp_path):
    session = _run(d.RaisesOnInfinity(), ctc_cases)
    raised = [r for r in session.results if r.status == RAISED]
    assert raised and {r.case.name for r in raised} == {c.name for c in ctc_cases if _infeasible(c)}
    assert {r.check for r in raised} == {"value", "shape", "grad:pred", "repeat", "inputs"}
    for r in raised:
        assert r.verdict == RAISED_ON_INF
        assert "documented value is +inf (element [0] of 2)" in r.message
        assert "ValueError: ctc_loss: no valid alignment" in r.message
    # every other check passes: the defect is only the raise
    assert all(r.status == PASS for r in session.results if not _infeasible(r.case))
    # visible in the summary (its own column) and in the results JSON
    lines = format_summary(session)
    head = lines[1].split()
    assert "raised" in head
    row = next(ln for ln in lines if ln.startswith("CTCLoss")).split()
    assert int(row[head.index("raised")]) == len(raised)
    assert int(row[head.index("error")]) == 0 and int(row[head.index("fail")]) == 0
    path = tmp_path / "results.json"
    session.write(path)
    recs = [r for r in json.loads(path.read_text())["records"] if r["status"] == "raised"]
    assert len(recs) == len(raised) and {r["verdict"] for r in recs} == {RAISED_ON_INF}
    # the report reads such a file and shows the raise with the failures, never as a pass
    (br,) = model.load(path)
    assert sum(model.category(r) == model.FAILS for r in br.records) == len(raised)


def test_a_finite_value_for_the_documented_inf_still_fails(ctc_cases):
    session = _run(d.FiniteForInfinity(), ctc_cases)
    value = [r for r in session.results if _infeasible(r.case) and r.check == "value"]
    assert value and all(r.status == FAIL for r in value)
    assert all("exact value is +inf but the backend returned the finite number" in r.message for r in value)
    assert not [r for r in session.results if r.status == RAISED]


def test_a_raise_on_a_finite_case_is_still_an_error(ctc_cases):
    session = _run(d.RaisesOnSampleWeight(), ctc_cases)
    weighted = [r for r in session.results if "sample_weight" in r.case.inputs and r.case.invalid is None]
    assert weighted and all(r.status == "error" and "failed on valid input" in r.message for r in weighted)
    assert not [r for r in session.results if r.status == RAISED]


def _expectations(tmp_path, outcome: str | None) -> ex.Expectations:
    line = "" if outcome is None else f'outcome = "{outcome}"\n'
    path = tmp_path / "exp.toml"
    path.write_text(
        '[[deviation]]\nloss = "CTCLoss"\ncase = "singular-infeasible-*"\n' + line
        + 'reason = "tests/defect_backends.py RaisesOnInfinity raises where -log 0 = +inf"\n'
    )
    return ex.load(path)


def test_an_expectation_entry_can_list_the_raise_and_only_it(ctc_cases, tmp_path):
    exp = _expectations(tmp_path, "raised")
    assert "outcome raised" in exp.entries[0].describe()
    session = _run(d.RaisesOnInfinity(), ctc_cases, exp)
    known = [r for r in session.results if _infeasible(r.case)]
    assert known and all(r.status == KNOWN and r.verdict == RAISED_ON_INF for r in known)
    assert not session.unused_expectations()
    # the same entry does not cover a wrong finite value: that fails, and the entry is unused
    exp = _expectations(tmp_path, "raised")
    session = _run(d.FiniteForInfinity(), ctc_cases, exp)
    assert [r for r in session.results if r.status == FAIL and r.check == "value"]
    assert session.unused_expectations()


def test_an_unknown_outcome_is_rejected(tmp_path):
    with pytest.raises(ex.ExpectationError, match=r"outcome 'raise' is not one of fail, error, raised"):
        _expectations(tmp_path, "raise")


def test_exit_codes(tmp_path, capsys):
    args = ["run", "tests.defect_backends:raises_on_infinity", "--loss", CTC, "--case", INFEASIBLE, "-q"]
    assert cli.main(args) == 1  # unlisted: fails the run
    _expectations(tmp_path, "raised")
    assert cli.main([*args, "--expectations", str(tmp_path / "exp.toml"), "--strict-expectations"]) == 0
    finite = ["run", "tests.defect_backends:finite_for_infinity", "--loss", CTC, "--case", INFEASIBLE, "-q"]
    assert cli.main([*finite, "--expectations", str(tmp_path / "exp.toml")]) == 1
    capsys.readouterr()


def test_diff_counts_a_new_raise_as_a_regression_and_error_to_raised_as_none(tmp_path, capsys):
    base = ["run", "--loss", CTC, "--case", "singular-infeasible-float64", "--mode", "grad", "-q", "--results"]
    ok, raised = tmp_path / "ok.json", tmp_path / "raised.json"
    assert cli.main([base[0], "numpy", *base[1:], str(ok)]) == 0
    assert cli.main([base[0], "tests.defect_backends:raises_on_infinity", *base[1:], str(raised)]) == 1
    d_ = diff.compare(ok, raised)
    assert len(d_.new_failures) == 5 and d_.regressions == 5
    # a baseline written before the status existed (the raise recorded as an error)
    old = json.loads(raised.read_text())
    for r in old["records"]:
        r["status"], r["verdict"] = "error", "error"
    (tmp_path / "old.json").write_text(json.dumps(old))
    assert diff.compare(tmp_path / "old.json", raised).regressions == 0
    capsys.readouterr()
