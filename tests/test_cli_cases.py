"""Finding, showing and repeating one case: ``lossconf cases``, ``lossconf show``,
``lossconf run --case``, the note and the repeat command at the end of a failure message,
and ``module:attr`` backends found in the current directory (issue 15, deliverables 1-2).

Expected values here are read from the fixture files with ``json``, never from the code
under test."""

from __future__ import annotations

import json
import shlex
import sys
import textwrap
from pathlib import Path

import pytest

from conformance import cli
from conformance import fixtures as fx

FIXTURES = fx.default_dir()
NAN_FOR_EXTREME = "tests.defect_backends:NanForExtreme"


def records(file: str) -> list[dict]:
    return json.loads((FIXTURES / file).read_text())["cases"]


#: every case tagged extreme, in every fixture file
N_EXTREME = sum(
    "extreme" in c["tags"] for f in FIXTURES.glob("*.json") if f.name not in ("MANIFEST.json", "schema.json")
    for c in json.loads(f.read_text())["cases"]
)


def l2_id(rec: dict) -> str:
    """The test id of an L2Loss case with no options set (the format the README documents)."""
    assert rec["given_options"] == []
    return f"L2Loss[]-{rec['dtype']}-{rec['tags'][0]}-{rec['index']:03d}"


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# ------------------------------------------------------------------ lossconf cases


def test_cases_lists_what_the_filters_select(capsys):
    extreme = [r for r in records("l2_loss.json") if "extreme" in r["tags"]]
    want = [l2_id(r) for r in extreme if not r["given_options"]]
    assert len(want) == 4  # float16, float32, float64, bfloat16
    # and the option-value crossings (one documented option moved each: extreme-x-<option>=<value>)
    crossed = [r for r in extreme if r["given_options"]]
    assert crossed and all(len(r["given_options"]) == 1 and "-x-" in r["name"] for r in crossed)
    code, out, _ = run_cli(capsys, "cases", "--loss", "L2Loss", "--tag", "extreme")
    assert code == 0
    listed = [ln.split()[0] for ln in out.splitlines()[:-1]]
    assert [i for i in listed if i.startswith("L2Loss[]-")] == want and len(listed) == len(extreme)
    assert out.splitlines()[-1].startswith(f"{len(extreme)} case(s), {5 * len(extreme)} check(s)")


def test_cases_checks_and_json(capsys):
    code, out, _ = run_cli(capsys, "cases", "--loss", "L2Loss", "--tag", "extreme", "--check", "grad", "--checks")
    assert code == 0
    extreme = [r for r in records("l2_loss.json") if "extreme" in r["tags"]]
    assert len(out.split()) == len(extreme)  # one grad check per case, the option crossings too
    assert [i for i in out.split() if i.startswith("L2Loss[]-")] == [
        l2_id(r) + "-grad:pred" for r in extreme if not r["given_options"]
    ]
    code, out, _ = run_cli(capsys, "cases", "--loss", "L2Loss", "--dtype", "float64", "--json")
    doc = json.loads(out)
    assert [d["index"] for d in doc] == [r["index"] for r in records("l2_loss.json") if r["dtype"] == "float64"]


def test_case_pattern_matches_where_a_word_starts(capsys):
    code, out, _ = run_cli(capsys, "cases", "--case", "HingeLoss", "--dtype", "float32")
    ids = [ln.split()[0] for ln in out.splitlines()[:-1]]
    hinge = [r for r in records("hinge_loss.json") if r["dtype"] == "float32"]
    assert code == 0 and len(ids) == len(hinge)
    assert all(i.startswith("HingeLoss[") for i in ids)  # not SquaredHingeLoss
    code, out, _ = run_cli(capsys, "cases", "--case", "l2loss*extreme", "--case", "L1Loss[]-float16-extreme")
    ids = [ln.split()[0] for ln in out.splitlines()[:-1]]
    assert code == 0 and {i.split("[")[0] for i in ids} == {"L2Loss", "L1Loss"}
    assert all("extreme" in i for i in ids)


@pytest.mark.parametrize(
    "argv, words",
    [
        (["cases", "--case", "NoSuchThing"], "--case 'NoSuchThing' matches no test id or case name"),
        (["cases", "--loss", "L2Loss", "--case", "HingeLoss"], "the filters select no case"),
        (["show", "extreme"], f"matches {N_EXTREME} cases"),
        (["show", "nope"], "--case 'nope' matches no test id"),
    ],
)
def test_selections_of_nothing_or_too_much_are_one_line_exit_4(capsys, argv, words):
    code, out, err = run_cli(capsys, *argv)
    assert code == 4 and out == ""
    assert len(err.strip().splitlines()) == 1 and words in err


def test_cases_on_a_missing_fixtures_directory_exit_3(capsys, tmp_path):
    code, _, err = run_cli(capsys, "cases", "--fixtures", str(tmp_path / "none"))
    assert code == 3 and len(err.strip().splitlines()) == 1 and "fixtures" in err


# ------------------------------------------------------------------ lossconf show


def extreme_l2(dtype: str) -> dict:
    (rec,) = [r for r in records("l2_loss.json") if "extreme" in r["tags"] and r["dtype"] == dtype and not r["given_options"]]
    return rec


def test_show_json_is_the_fixture_record(capsys):
    rec = extreme_l2("float16")
    code, out, _ = run_cli(capsys, "show", l2_id(rec), "--json")
    assert code == 0
    shown = json.loads(out)
    for key in ("inputs", "cotangent", "expected", "vjp", "note", "tags", "options", "given_options", "name", "dtype"):
        assert shown[key] == rec[key], key
    assert shown["checks"] == ["value", "shape", "grad:pred", "repeat", "inputs"]


def test_show_text_has_everything_a_backend_author_needs(capsys):
    rec = extreme_l2("float32")
    code, out, _ = run_cli(capsys, "show", l2_id(rec) + "-grad:pred")  # a check's id shows its case
    assert code == 0
    assert out.startswith(l2_id(rec) + "\n")
    assert rec["note"] in out
    assert "batch_axis=0" in out and "weight=1.0" in out  # the documented defaults
    for name, arr in rec["inputs"].items():
        assert f"{name}:" in out and ", ".join(arr["data"]) in out
    assert ", ".join(rec["cotangent"]["data"]) in out
    assert ", ".join(rec["expected"]["value"]) in out
    assert ", ".join(rec["vjp"]["pred"]["value"]) in out
    assert f"lossconf run BACKEND --case '{l2_id(rec)}'" in out


def test_show_an_invalid_case_names_its_rule(capsys):
    rec = next(r for r in records("l2_loss.json") if r.get("invalid"))
    code, out, _ = run_cli(capsys, "show", l2_id(rec))
    assert code == 0 and rec["invalid"]["rule"] in out and "should raise" in out


# ------------------------------------------------------------------ run --case and the repeat command


def test_run_case_selects_exactly_one_check(capsys, tmp_path):
    rec = extreme_l2("float64")
    results = tmp_path / "r.json"
    code, _, _ = run_cli(capsys, "run", "numpy", "--case", l2_id(rec) + "-value", "--results", str(results))
    assert code == 0
    assert [r["id"] for r in json.loads(results.read_text())["records"]] == [l2_id(rec) + "-value"]
    code, _, _ = run_cli(capsys, "run", "numpy", "--case", l2_id(rec), "--mode", "grad", "--results", str(results))
    assert [r["check"] for r in json.loads(results.read_text())["records"]] == ["value", "shape", "grad:pred", "repeat", "inputs"]
    # a case's id selects the case in every mode the backend runs (ids of other modes add [mode])
    code, _, _ = run_cli(capsys, "run", "numpy", "--case", l2_id(rec), "--results", str(results))
    records = json.loads(results.read_text())["records"]
    assert {r["mode"] for r in records} == {"forward", "grad", "backward-twice"} and all(l2_id(rec) in r["id"] for r in records)


def test_run_case_through_pytest(capsys, tmp_path, monkeypatch):
    # `run --pytest` sets PYTEST_DISABLE_PLUGIN_AUTOLOAD for its in-process pytest: undo it afterwards
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    rec = extreme_l2("float64")
    results = tmp_path / "r.json"
    code = cli.main(["run", "--pytest", "numpy", "--case", l2_id(rec) + "-grad:pred", "--results", str(results)])
    capsys.readouterr()
    assert code == 0
    assert [r["id"] for r in json.loads(results.read_text())["records"]] == [l2_id(rec) + "-grad:pred"]


def test_a_failure_ends_with_its_note_and_the_command_that_repeats_it(capsys, tmp_path):
    code, out, _ = run_cli(capsys, "run", NAN_FOR_EXTREME, "--loss", "SoftmaxCELoss", "--dtype", "float16", "--tag", "extreme")
    assert code == 1
    blocks = [b for b in out.split("FAILED ")[1:]]
    assert blocks
    sce = {r["index"]: r for r in records("softmax_cross_entropy_loss.json")}
    for block in blocks[:4]:
        test_id, *lines = block.split("==========")[0].strip().splitlines()
        assert lines[-1] == f"  repeat: lossconf run {NAN_FOR_EXTREME} --case {shlex.quote(test_id)}"
        index = int(test_id.rsplit("-", 2)[-2])
        if sce[index].get("note"):
            assert f"  note: {sce[index]['note']}" in lines
    # the command repeats exactly that one check, and it fails again
    first_id = blocks[0].splitlines()[0]
    argv = shlex.split(blocks[0].split("  repeat: ")[1].splitlines()[0])[1:]  # without "lossconf"
    results = tmp_path / "again.json"
    code, out, _ = run_cli(capsys, *argv, "--results", str(results))
    assert code == 1 and out.startswith(f"FAILED {first_id}\n")
    (again,) = json.loads(results.read_text())["records"]
    assert again["id"] == first_id and again["status"] == "fail"


def test_the_repeat_command_keeps_the_fixtures_and_expectations(capsys, tmp_path):
    exp = tmp_path / "known.toml"
    exp.write_text('[[deviation]]\nloss = "mxnet.gluon.loss.L2Loss"\ncheck = "value"\nreason = "unrelated"\n')
    code, out, _ = run_cli(capsys, "run", NAN_FOR_EXTREME, "--loss", "SoftmaxCELoss", "--dtype", "float16", "--tag", "extreme",
                           "--fixtures", str(FIXTURES), "--expectations", str(exp))
    assert code == 1
    repeat = out.split("  repeat: ")[1].splitlines()[0]
    assert f"--fixtures {shlex.quote(str(FIXTURES))} --expectations {shlex.quote(str(exp))} --case " in repeat


# ------------------------------------------------------------------ module:attr from the current directory

BACKEND = textwrap.dedent(
    """
    from conformance.backends.numpy_backend import NumpyBackend

    class Mine(NumpyBackend):
        name = "mine"

    backend = Mine()
    """
)


def test_module_attr_backend_resolves_from_the_current_directory(capsys, tmp_path, monkeypatch):
    name = "lossconf_newcomer_backend_a"
    (tmp_path / f"{name}.py").write_text(BACKEND)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(capsys, "run", f"{name}:backend", "--loss", "L2Loss", "--dtype", "float64")
    sys.modules.pop(name, None)
    assert code == 0, err
    assert "backend mine" in out


def test_a_missing_module_names_the_directory_it_looked_in(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(capsys, "run", "no_such_module_here:backend")
    assert code == 3 and len(err.strip().splitlines()) == 1
    assert "No module named 'no_such_module_here'" in err and str(Path(tmp_path)) in err
