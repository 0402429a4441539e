"""The harness refuses what would otherwise pass silently: filters that name nothing,
expectation entries that can never match, a diff whose NEW lost checks, arguments out of
range. Each guard is checked both ways (the guard fires; the valid form passes)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conformance import cli
from conformance.backends.numpy_backend import backend as numpy_backend
from conformance.harness import expectations as ex
from conformance.harness.session import FilterError, Filters, Session
from tests import results_helpers as rh

ROOT = Path(__file__).resolve().parent.parent


def open_session(filters: Filters, expectations=None) -> Session:
    return Session.open(numpy_backend, ROOT / "fixtures", filters, expectations, 60.0)


# ------------------------------------------------------------------ filters


@pytest.mark.parametrize(
    "filters, says",
    [
        (Filters(losses=["NoSuchLoss"]), "--loss 'NoSuchLoss' is not a loss of the fixtures"),
        (Filters(losses=["L2Loss"], dtypes=["float8"]), "--dtype 'float8' is not one of"),
        (Filters(losses=["L2Loss"], tags=["nosuch"]), "--tag 'nosuch' is not one of"),
        (Filters(losses=["L2Loss"], checks=["gradd"]), "--check 'gradd' matches no check"),
        (Filters(losses=["L2Loss"], tags=["kink"]), "the filters select no check"),  # L2 has no kink
    ],
)
def test_a_filter_that_selects_nothing_is_an_error(filters, says):
    with pytest.raises(FilterError, match=says.replace("(", r"\(").replace(")", r"\)")):
        open_session(filters)


def test_aliases_and_valid_filters_select_checks():
    s = open_session(Filters(losses=["SoftmaxCELoss"], dtypes=["float16"], checks=["grad:pred"]))
    items = s.items(Filters(losses=["SoftmaxCELoss"], dtypes=["float16"], checks=["grad:pred"]))
    assert items and all(c.dtype == "float16" and chk == "grad:pred" for c, chk, _ in items)


def test_lossconf_run_exits_4_on_an_unknown_loss():
    proc = subprocess.run(
        [sys.executable, "-m", "conformance.cli", "run", "numpy", "--loss", "NoSuchLoss"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert "NoSuchLoss" in proc.stdout + proc.stderr


# ------------------------------------------------------------------ expectations


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "exp.toml"
    path.write_text(body)
    return path


@pytest.mark.parametrize(
    "body, says",
    [
        ('[[deviation]]\nloss = "L2Losss"\nreason = "r"\n', "unknown loss 'L2Losss'"),
        ('[[deviation]]\nloss = "L2Loss"\ncheck = "valu"\nreason = "r"\n', "check 'valu' matches none of"),
        ('[[deviation]]\nloss = "L2Loss"\noptions = {nosuch = 1}\nreason = "r"\n', "unknown option 'nosuch'"),
        ('[[deviation]]\nloss = "SoftmaxCELoss"\noptions = {sparse_label = "false"}\nreason = "r"\n', "sparse_label"),
        ('[[deviation]]\nloss = "L2Loss"\ndtype = 16\nreason = "r"\n', "dtype must be a string or an array"),
        ('[[deviation]]\nloss = "L2Loss"\ntags = ["nosuch"]\nreason = "r"\n', "tag 'nosuch' is not one of"),
        ('[[deviation]]\nloss = "L2Loss"\ntolerance = {ulp = 64}\nreason = "r"\n', "unknown tolerance keys ['ulp']"),
        ('[deviation]\nloss = "L2Loss"\nreason = "r"\n', "write [[deviation]], not [deviation]"),
        ('[[deviations]]\nloss = "L2Loss"\nreason = "r"\n', "unknown top-level keys ['deviations']"),
        ('[[deviation]]\nloss = "L2Loss"\n', "every entry needs a 'reason'"),
    ],
)
def test_a_broken_expectation_entry_is_rejected_at_load(tmp_path, body, says):
    with pytest.raises(ex.ExpectationError) as info:
        ex.load(write(tmp_path, body))
    assert says in str(info.value), str(info.value)


def test_an_entry_that_matches_no_case_is_rejected_when_the_run_opens(tmp_path):
    exp = ex.load(write(tmp_path, '[[deviation]]\nloss = "L2Loss"\ncase = "nosuch-*"\nreason = "r"\n'))
    with pytest.raises(ex.ExpectationError, match="matches no case and check of the fixtures"):
        open_session(Filters(losses=["L2Loss"]), exp)


def test_a_valid_entry_with_an_alias_loads_as_the_documented_id(tmp_path):
    exp = ex.load(write(tmp_path, '[[deviation]]\nloss = "SoftmaxCELoss"\ncheck = "grad:*"\nreason = "r"\n'))
    assert exp.entries[0].loss == "mxnet.gluon.loss.SoftmaxCrossEntropyLoss"
    open_session(Filters(losses=["SoftmaxCELoss"]), exp)  # matches cases: no error


def test_the_committed_expectation_files_load_and_match_the_fixtures():
    """Always runs (unlike the framework tests): a stale entry in either file fails here."""
    for path in sorted((ROOT / "conformance" / "expectations").glob("*.toml")):
        exp = ex.load(path)
        assert exp.entries, path
        open_session(Filters(), exp)


# ------------------------------------------------------------------ diff


def test_diff_counts_removed_checks_unless_allowed(capsys, tmp_path):
    old = rh.numpy_results()
    doc = json.loads(old.read_text())
    doc["records"] = doc["records"][:10]
    new = tmp_path / "filtered.json"
    new.write_text(json.dumps(doc))
    assert cli.main(["diff", str(old), str(new)]) == 1
    assert "removed checks count as regressions" in capsys.readouterr().out
    assert cli.main(["diff", str(old), str(new), "--allow-removed"]) == 0
    assert "OK: no regressions" in capsys.readouterr().out
    assert cli.main(["diff", str(old), str(old)]) == 0


# ------------------------------------------------------------------ arguments


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "numpy", "--call-timeout", "inf"],
        ["run", "numpy", "--call-timeout", "-1"],
        ["fixtures", "verify", "--recompute", "--sample", "0"],
        ["spec", "--", "-x"],
    ],
)
def test_out_of_range_arguments_are_refused(argv, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 2
    assert "error:" in capsys.readouterr().err
