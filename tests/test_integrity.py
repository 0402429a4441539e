"""Fixture integrity and one-line errors (issue 12, items 4, 5 and 8 for damaged fixtures):
a damaged fixtures folder of each kind is caught, by ``lossconf run`` (exit 3: the
fixtures cannot be used) and by ``lossconf fixtures verify`` (exit 1: a problem found),
with one line naming the file and, where one is at fault, the case; ``verify --all``
regenerates every case and finds an edit of any field even when the manifest is resealed;
unwritable outputs and bad oracle input give one-line errors, never a traceback; the
compiled fixture schema gives jsonschema's verdict.

Damage is done to a copy of the committed fixtures in ``tmp_path``; ``fixtures/`` is never
touched. The run commands are called in process through ``conformance.cli.main`` (the
same code as the console script, without an interpreter start per test); one test runs
the real console command in a subprocess.
"""

from __future__ import annotations

import copy as copy_module
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

import oracle
from conformance import cli
from conformance import fixtures as fx
from conformance.fixture_schema import SCHEMA_FILE as PACKAGED_SCHEMA
from conformance.fixture_schema import compile_schema, validator
from oracle import fixtures as gen

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
L2, L1 = "l2_loss.json", "l1_loss.json"
L2_ID, L1_ID = "mxnet.gluon.loss.L2Loss", "mxnet.gluon.loss.L1Loss"


# ----------------------------------------------------------------- helpers


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def reseal(directory: Path) -> None:
    """Rewrite the manifest to match the folder as it is now (schema.json included), as
    someone widening a tolerance in secret would: only content checks can find the edit."""
    listed = json.loads((directory / "MANIFEST.json").read_text())["files"]
    present = [n for n in listed if (directory / n).is_file()]
    gen.write_manifest(
        directory,
        {n: sha(directory / n) for n in present},
        {n: fx.case_digests((directory / n).read_bytes()) for n in present},
        sha(directory / "schema.json"),
    )


def case_lines(path: Path) -> list[str]:
    return path.read_text().split("\n")


def line_of(path: Path, index: int) -> int:
    for n, line in enumerate(case_lines(path)):
        if line.startswith(f'{{"index":{index},'):
            return n
    raise AssertionError(f"case {index} not in {path.name}")


def set_line(path: Path, index: int, text: str) -> None:
    """Replace the line of case ``index`` by ``text`` (its trailing comma kept)."""
    lines = case_lines(path)
    n = line_of(path, index)
    lines[n] = text + ("," if lines[n].endswith(",") else "")
    path.write_text("\n".join(lines))


def edit_case(path: Path, index: int, edit) -> dict:
    """Case ``index`` replaced by ``edit(case)``, written in the generator's layout."""
    line = case_lines(path)[line_of(path, index)].rstrip(",")
    case = edit(json.loads(line))
    set_line(path, index, json.dumps(case, separators=(",", ":")))
    return case


def name_of(path: Path, index: int) -> str:
    return json.loads(case_lines(path)[line_of(path, index)].rstrip(","))["name"]


@pytest.fixture
def folder(tmp_path) -> Path:
    d = tmp_path / "fixtures"
    shutil.copytree(FIXTURES, d, ignore=shutil.ignore_patterns(".*"))
    return d


def run(capsys, folder: Path, *extra: str) -> tuple[int, list[str]]:
    """``lossconf run numpy`` on the folder (L2Loss only: the damage is in its file or the
    manifest, and a whole folder is still loaded and checked): exit code, stderr lines."""
    code = cli.main(["run", "numpy", "--fixtures", str(folder), "--loss", "L2Loss", *extra])
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    return code, err


def verify(capsys, folder: Path, *extra: str) -> tuple[int, list[str]]:
    """``lossconf fixtures verify`` on the folder: exit code, its FAIL lines."""
    code = cli.main(["fixtures", "verify", "--dir", str(folder), "-q", *extra])
    out = capsys.readouterr().out.splitlines()
    return code, [ln for ln in out if ln.startswith("FAIL ")]


def assert_unusable(capsys, folder: Path, message: str) -> None:
    """``run`` stops with exit 3 and exactly one line, and ``verify`` exits 1 with the same
    problem among its FAIL lines (``message``: the line after ``lossconf: fixtures: ``)."""
    code, err = run(capsys, folder)
    assert code == 3, err
    assert err == [f"lossconf: fixtures: {message}"], err
    file, rest = message.split(": ", 1)
    code, fails = verify(capsys, folder)
    assert code == 1, fails
    if rest.startswith("case "):
        label, detail = rest[len("case ") :].split("): ", 1)
        expected = f"FAIL {file} case {label}): {detail}"
    else:
        expected = f"FAIL {message}"
    assert expected in fails, fails


# ----------------------------------------------------------------- unsafe reads


def test_a_fifo_in_place_of_a_fixture_file_never_blocks(capsys, folder):
    (folder / L2).unlink()
    os.mkfifo(folder / L2)
    assert_unusable(capsys, folder, f"{L2}: a FIFO, not a regular file")


def test_a_stray_fifo_is_an_extra_file_and_is_never_opened(capsys, folder):
    os.mkfifo(folder / "stray.json")
    code, err = run(capsys, folder)
    assert code == 0, err  # the loader opens only what the manifest lists
    code, fails = verify(capsys, folder)
    assert code == 1 and fails == ["FAIL stray.json: extra file, not listed in MANIFEST.json"], fails


def test_a_link_to_dev_zero_is_refused(capsys, folder):
    (folder / L2).unlink()
    (folder / L2).symlink_to("/dev/zero")
    assert_unusable(capsys, folder, f"{L2}: a link to /dev/zero, outside the fixtures folder {os.path.realpath(folder)}")


def test_a_link_out_of_the_folder_is_refused_even_to_a_good_copy(capsys, folder, tmp_path):
    outside = tmp_path / "elsewhere.json"
    shutil.copy(folder / L2, outside)
    (folder / L2).unlink()
    (folder / L2).symlink_to(outside)
    assert_unusable(capsys, folder, f"{L2}: a link to {os.path.realpath(outside)}, outside the fixtures folder {os.path.realpath(folder)}")


def test_a_link_inside_the_folder_is_read(capsys, folder):
    os.replace(folder / L2, folder / "l2_copy.json")
    (folder / L2).symlink_to("l2_copy.json")
    assert fx.load(folder, losses={"L2Loss"})


def test_a_manifest_entry_out_of_the_folder_is_refused(capsys, folder):
    manifest = json.loads((folder / "MANIFEST.json").read_text())
    manifest["files"]["../../etc/passwd"] = "0" * 64
    (folder / "MANIFEST.json").write_text(json.dumps(manifest))
    assert_unusable(capsys, folder, "MANIFEST.json: lists '../../etc/passwd', not the name of a .json file inside the fixtures folder")


def test_a_file_over_the_size_limit_is_refused_unread(capsys, folder, monkeypatch):
    largest = max(p.stat().st_size for p in FIXTURES.glob("*.json"))
    monkeypatch.setattr(fx, "MAX_FILE_BYTES", largest)  # (so that the test need not write 32 MB)
    with open(folder / L2, "a") as f:
        f.write(" " * largest)  # (JSON allows trailing white space)
    reseal(folder)
    size = (folder / L2).stat().st_size
    assert_unusable(capsys, folder, f"{L2}: {size} bytes, over the limit of {largest} bytes")


def test_a_sparse_300_mb_file_is_refused_unread(capsys, folder):
    with open(folder / L2, "r+b") as f:
        f.truncate(300 * 2**20)  # (a sparse file: no disk used)
    # (the manifest still lists the file's old digest: the size is checked before anything is read)
    assert_unusable(capsys, folder, f"{L2}: {300 * 2**20} bytes, over the limit of {fx.MAX_FILE_BYTES} bytes")


# ----------------------------------------------------------------- JSON the loader will not take


def test_200k_deep_nesting_names_file_and_case(capsys, folder):
    index = 2
    name = name_of(folder / L2, index)
    deep = "[" * 200_000 + "]" * 200_000
    set_line(folder / L2, index, f'{{"index":2,"name":"{name}","note":{deep}}}')
    reseal(folder)
    message = "nested deeper than the JSON parser's limit (arrays or objects within each other)"
    assert_unusable(capsys, folder, f"{L2}: case {index} ({name}): {message}")


def test_a_5000_digit_integer_names_file_and_case(capsys, folder):
    name = name_of(folder / L2, 2)
    path = folder / L2
    line = case_lines(path)[line_of(path, 2)].rstrip(",")
    set_line(path, 2, line.replace('"shape":[', '"shape":[' + "7" * 5000 + ",", 1))
    reseal(folder)
    code, err = run(capsys, folder)
    assert code == 3 and len(err) == 1, err
    assert err[0].startswith(f"lossconf: fixtures: {L2}: case 2 ({name}): a number beyond the parser's limits (Exceeds the limit"), err


def test_a_5000_digit_number_string_names_file_and_case(capsys, folder):
    def long_number(c):
        c["inputs"]["pred"]["data"][0] = "1." + "3" * 5000 + "e+00"
        return c

    case = edit_case(folder / L2, 2, long_number)
    reseal(folder)
    code, err = run(capsys, folder)
    assert code == 3, err
    assert err == [f"lossconf: fixtures: {L2}: case 2 ({case['name']}): a number string of 5006 characters (limit 512): 1.{'3' * 38}..."], err
    code, fails = verify(capsys, folder)
    assert code == 1 and fails and all(f.startswith(f"FAIL {L2} case 2 ({case['name']}): ") for f in fails), fails
    assert all(len(f) < 400 for f in fails), "a FAIL line quotes at most the start of a long string"


def test_a_bare_nan_token_names_file_and_case(capsys, folder):
    path = folder / L2
    line = case_lines(path)[line_of(path, 2)].rstrip(",")
    set_line(path, 2, line.replace('"data":["', '"data":[NaN,"', 1))
    reseal(folder)
    message = 'a bare NaN token (the format writes "nan", "inf" and "-inf" as strings)'
    assert_unusable(capsys, folder, f"{L2}: case 2 ({name_of(folder / L2, 2)}): {message}")


@pytest.mark.parametrize("token", ["Infinity", "-Infinity"])
def test_bare_infinity_tokens_are_refused(capsys, folder, token):
    path = folder / L2
    line = case_lines(path)[line_of(path, 4)].rstrip(",")
    set_line(path, 4, line.replace('"rounded":["', f'"rounded":[{token},"', 1))
    reseal(folder)
    code, err = run(capsys, folder)
    assert code == 3 and err == [f"lossconf: fixtures: {L2}: case 4 ({name_of(path, 4)}): a bare {token} token "
                                 '(the format writes "nan", "inf" and "-inf" as strings)'], err


# ----------------------------------------------------------------- fields of the wrong kind

WRONG_FIELDS = {
    # (edit of case 2 of l2_loss.json, the loader's message after "case 2 (NAME): ")
    "input dtype 32": (lambda c: c["inputs"]["pred"].update(dtype=32), "inputs.pred.dtype: 32 is not 'float16' (the case dtype) or 'int64'"),
    "input in another dtype": (lambda c: c["inputs"]["pred"].update(dtype="float64"), "inputs.pred.dtype: \"float64\" is not 'float16' (the case dtype) or 'int64'"),
    "case dtype 32": (lambda c: c.update(dtype=32), "dtype: 32 is not one of float16, bfloat16, float32, float64"),
    "cotangent dtype 32": (lambda c: c["cotangent"].update(dtype=32), "cotangent.dtype: 32 is not 'float16' (the case dtype)"),
    "shape of strings": (lambda c: c["inputs"]["pred"].update(shape=["3"]), 'inputs.pred.shape: not a shape (a list of integers in [0, 2**31)): ["3"]'),
    "negative shape": (lambda c: c["inputs"]["pred"].update(shape=[-1, 12]), "inputs.pred.shape: not a shape (a list of integers in [0, 2**31)): [-1, 12]"),
    "data count": (lambda c: c["inputs"]["pred"]["data"].append("1e+00"), "inputs.pred.data: not a list of 12 number strings: "),
    "a number in words": (lambda c: c["inputs"]["pred"]["data"].__setitem__(0, "one"), '"one" is not a number as the format writes it'),
    "python float spelling": (lambda c: c["inputs"]["pred"]["data"].__setitem__(0, "1_000"), '"1_000" is not a number as the format writes it'),
    "expected missing": (lambda c: c.pop("expected"), "expected: missing or not an object (a case without 'invalid' has one): null"),
    "n_terms a string": (lambda c: c["expected"].update(n_terms="4"), 'expected.n_terms: not an integer in [0, 2**63): "4"'),
    "rounded too short": (lambda c: c["expected"]["rounded"].pop(), "expected.rounded: not a list of 3 number strings: "),
    "vjp of no input": (lambda c: c["vjp"].update(bogus=c["vjp"]["pred"]), "vjp: not an object of exact arrays, one per differentiable input: "),
    "cotangent shape": (lambda c: c["cotangent"].update(shape=[1, 3]), "cotangent.shape: [1, 3] is not the output shape [3]"),
    "options nested deep": (lambda c: c["options"].update(weight=[[[[[[1.0]]]]]]), "options: not an object of option values (null, bool, string, finite number or lists of those): "),
    "roundings a string": (lambda c: c["expected"].update(roundings="4"), 'expected.roundings: not an integer in [0, 2**31): "4"'),
    "index out of order": (lambda c: c.update(index=7), "index 7 out of order (expected 2)"),
    "name missing": (lambda c: c.pop("name"), "name: missing"),
}


@pytest.mark.parametrize("kind", list(WRONG_FIELDS))
def test_a_field_of_the_wrong_kind_names_file_case_and_field(capsys, folder, kind):
    edit, message = WRONG_FIELDS[kind]
    path = folder / L2
    name = name_of(path, 2)
    line = json.loads(case_lines(path)[line_of(path, 2)].rstrip(","))
    edit(line)
    set_line(path, 2, json.dumps(line, separators=(",", ":")))
    reseal(folder)
    code, err = run(capsys, folder)
    label = "?" if kind == "name missing" else name
    assert code == 3 and len(err) == 1, err
    assert err[0].startswith(f"lossconf: fixtures: {L2}: case 2 ({label}): {message}"), err
    code, fails = verify(capsys, folder)
    assert code == 1 and fails, fails
    assert all(f.startswith(f"FAIL {L2} case ") for f in fails), fails


# ----------------------------------------------------------------- the manifest and the schema


def test_a_loss_dropped_from_a_resealed_manifest(capsys, folder):
    (folder / L1).unlink()
    manifest = json.loads((folder / "MANIFEST.json").read_text())
    del manifest["files"][L1], manifest["cases"][L1]
    (folder / "MANIFEST.json").write_text(json.dumps(manifest))
    reseal(folder)
    message = f"MANIFEST.json: lists no fixture file for {L1_ID} ({L1}) (every loss of the catalog must be listed)"
    code, err = run(capsys, folder)
    assert code == 3 and err == [f"lossconf: fixtures: {message}"], err
    code, fails = verify(capsys, folder)
    assert code == 1 and fails == [f"FAIL MANIFEST.json: lists no fixture file for {L1_ID} ({L1}): every loss of the catalog must be listed"]


def test_a_file_holding_another_loss(capsys, folder):
    shutil.copy(folder / L1, folder / L2)
    reseal(folder)
    assert_unusable(capsys, folder, f"{L2}: holds the cases of {L1_ID}; that loss's file is {L1}")


def test_a_schema_replaced_by_an_empty_object(capsys, folder):
    (folder / "schema.json").write_text("{}")
    code, fails = verify(capsys, folder)
    assert code == 1 and fails == [
        "FAIL schema.json: changed: SHA-256 differs from MANIFEST.json",
        "FAIL schema.json: differs from the schema this harness reads fixtures by (conformance/fixtures_schema.json)",
    ], fails
    reseal(folder)  # the manifest sealed with the empty schema's digest: still not the packaged schema
    code, fails = verify(capsys, folder)
    assert code == 1 and fails == [
        "FAIL schema.json: differs from the schema this harness reads fixtures by (conformance/fixtures_schema.json)"
    ], fails


def test_the_schema_an_edited_fixture_is_checked_by_is_the_packaged_one(capsys, folder):
    """An empty schema.json permits anything; verify still judges by the packaged schema."""
    (folder / "schema.json").write_text("{}")
    edit_case(folder / L1, 2, lambda c: {**c, "tags": ["regular", "bogus-regime"]})
    reseal(folder)
    code, fails = verify(capsys, folder)
    assert code == 1 and any(f.startswith(f"FAIL {L1} case 2 (") and "schema: tags/1:" in f for f in fails), fails


def test_a_manifest_without_its_schema_entry(capsys, folder):
    manifest = json.loads((folder / "MANIFEST.json").read_text())
    del manifest["schema"]
    (folder / "MANIFEST.json").write_text(json.dumps(manifest))
    message = "MANIFEST.json: has no 'schema' table with the SHA-256 of schema.json (every file the loader trusts is listed)"
    code, err = run(capsys, folder)
    assert code == 3 and err == [f"lossconf: fixtures: {message}"], err
    code, fails = verify(capsys, folder)
    assert code == 1 and fails == [f"FAIL {message}"], fails


def test_verify_of_a_folder_that_does_not_exist_exits_3(capsys, tmp_path):
    code = cli.main(["fixtures", "verify", "--dir", str(tmp_path / "nowhere")])
    err = capsys.readouterr().err.splitlines()
    assert code == 3 and len(err) == 1 and err[0].startswith(f"lossconf: fixtures: directory {tmp_path / 'nowhere'} does not exist")


def test_a_run_writes_nothing_into_the_fixtures_folder(capsys, folder):
    """No decoded-fixtures cache (nor anything else) is kept beside the fixtures: a run
    decodes what it reads, so no stored copy can stand in for a file."""
    before = sorted(p.name for p in folder.iterdir())
    code, err = run(capsys, folder)
    assert code == 0, err
    assert sorted(p.name for p in folder.iterdir()) == before


# ----------------------------------------------------------------- verify --all: no field survives


@pytest.fixture(scope="module")
def l1_bytes() -> bytes:
    return (FIXTURES / L1).read_bytes()


def _kink_case(doc: dict) -> int:
    return next(c["index"] for c in doc["cases"] if any("lo" in v for v in c.get("vjp", {}).values()))


def _valid_case(doc: dict) -> int:
    return next(c["index"] for c in doc["cases"] if "expected" in c and c["expected"]["shape"] != [])


def _invalid_case(doc: dict) -> int:
    return next(c["index"] for c in doc["cases"] if "invalid" in c)


def _bump(text: str) -> str:
    """A decimal string with its last significand digit changed."""
    mant, _, exp = text.partition("e")
    last = next(i for i in range(len(mant) - 1, -1, -1) if mant[i].isdigit())
    return mant[:last] + str((int(mant[last]) + 1) % 10) + mant[last + 1 :] + ("e" + exp if exp else "")


FIELD_EDITS = {
    # name: (which case, edit, the field path the report must name)
    "scale": (_valid_case, lambda c: c["expected"]["scale"].__setitem__(0, str(float(c["expected"]["scale"][0]) * 1000)), "expected.scale[0]"),
    "n_terms": (_valid_case, lambda c: c["expected"].update(n_terms=c["expected"]["n_terms"] * 100), "expected.n_terms"),
    "condition": (_valid_case, lambda c: c["expected"].update(condition="0.001"), "expected.condition"),
    "rounded": (_valid_case, lambda c: c["expected"]["rounded"].__setitem__(0, "7e+00"), "expected.rounded[0]"),
    "value": (_valid_case, lambda c: c["expected"]["value"].__setitem__(0, _bump(c["expected"]["value"][0])), "expected.value[0]"),
    "vjp value": (_valid_case, lambda c: c["vjp"]["pred"]["value"].__setitem__(1, _bump(c["vjp"]["pred"]["value"][1])), "vjp.pred.value[1]"),
    "kink lower bound": (_kink_case, lambda c: [v["lo"].__setitem__(0, "-1e+300") for v in c["vjp"].values() if "lo" in v], ".lo[0]"),
    "kink upper bound": (_kink_case, lambda c: [v["hi"].__setitem__(0, "1e+300") for v in c["vjp"].values() if "hi" in v], ".hi[0]"),
    "input": (_valid_case, lambda c: c["inputs"]["pred"]["data"].__setitem__(0, "5e-01"), "inputs.pred.data[0]"),
    "cotangent": (_valid_case, lambda c: c["cotangent"]["data"].__setitem__(0, "2e+00"), "cotangent.data[0]"),
    "tags": (_valid_case, lambda c: c.update(tags=["regular", "extreme"]), "tags"),
    "options": (_valid_case, lambda c: c["options"].update(weight=2.0), "options.weight"),
    "given options": (_valid_case, lambda c: c.update(given_options=sorted(set(c["given_options"]) ^ {"batch_axis"})), "given_options"),
    "note": (_valid_case, lambda c: c.update(note="a note of someone's own"), "note"),
    "name": (_valid_case, lambda c: c.update(name=c["name"] + "-renamed"), "name"),
    "invalid rule": (_invalid_case, lambda c: c["invalid"].update(rule="anything goes"), "invalid.rule"),
}


@pytest.mark.parametrize("field", list(FIELD_EDITS))
def test_verify_all_finds_an_edit_of_any_field(l1_bytes, field):
    pick, edit, path = FIELD_EDITS[field]
    doc = json.loads(l1_bytes)
    index = pick(doc)
    text = l1_bytes.decode().split("\n")
    n = next(i for i, ln in enumerate(text) if ln.startswith(f'{{"index":{index},'))
    case = json.loads(text[n].rstrip(","))
    edit(case)
    text[n] = json.dumps(case, separators=(",", ":")) + ("," if text[n].endswith(",") else "")
    problems = gen.compare_with_fresh(L1_ID, L1, "\n".join(text).encode(), recompute_all=False)
    original = json.loads(l1_bytes)["cases"][index]["name"]
    assert problems and problems[0].startswith(f"{L1} case {index} ({original}): differs from a fresh generation: "), problems
    assert path in problems[0] and "recorded " in problems[0] and "fresh " in problems[0], problems


def test_verify_all_finds_a_deleted_last_case_and_an_added_one(l1_bytes):
    text = l1_bytes.decode().split("\n")  # header, cases..., "]}", ""
    last = json.loads(text[-3])
    shortened = "\n".join(text[:-4] + [text[-4].rstrip(",")] + text[-2:]).encode()
    problems = gen.compare_with_fresh(L1_ID, L1, shortened, recompute_all=False)
    n = len(json.loads(l1_bytes)["cases"])
    assert problems == [f"{L1} case {n - 1} ({last['name']}): missing (a fresh generation has {n} cases, the file {n - 1})"]
    extra = dict(last, index=n, name="extra")
    longer = "\n".join(text[:-3] + [text[-3] + ",", json.dumps(extra, separators=(",", ":"))] + text[-2:]).encode()
    problems = gen.compare_with_fresh(L1_ID, L1, longer, recompute_all=False)
    assert problems == [f"{L1} case {n}: extra (a fresh generation has {n} cases, the file {n + 1})"]


def test_verify_all_finds_a_header_edit_and_a_layout_edit(l1_bytes):
    head = json.loads(l1_bytes)
    text = l1_bytes.decode()
    edited = text.replace(f'"precision_bits":{head["provenance"]["precision_bits"]}', '"precision_bits":128', 1).encode()
    problems = gen.compare_with_fresh(L1_ID, L1, edited, recompute_all=False)
    assert problems == [f"{L1}: header differs from a fresh generation: provenance.precision_bits: recorded 128, "
                        f"fresh {head['provenance']['precision_bits']}"]
    spaced = text.replace('"index":3,', '"index": 3,', 1).encode()
    problems = gen.compare_with_fresh(L1_ID, L1, spaced, recompute_all=False)
    assert len(problems) == 1 and problems[0].startswith(f"{L1} case 3 (") and "in its bytes only" in problems[0], problems


def test_verify_all_passes_on_a_committed_file_and_re_derives_it(l1_bytes):
    assert gen.compare_with_fresh(L1_ID, L1, l1_bytes, recompute_all=True) == []


def test_verify_all_cli_finds_a_resealed_tolerance_widening(capsys, folder):
    """The whole command on a whole folder, its re-derivation limited to the edited loss
    (--loss: every file would take many minutes since the 16384-term long cases; the
    regeneration of every file is the same code, tests/test_fixtures.py's determinism
    test and the tests env's `fixtures verify --recompute` cover it): a resealed edit of
    n_terms -- a tolerance widened in secret -- passes plain verify and is found by --all,
    by file, case and field; progress goes to stderr as plain lines when stderr is not a
    terminal, and -q silences it."""
    case = edit_case(folder / L2, 4, lambda c: (c["expected"].update(n_terms=c["expected"]["n_terms"] * 100), c)[1])
    reseal(folder)
    code, fails = verify(capsys, folder)
    assert code == 0 and fails == [], "digests, schema and contents cannot see a consistent edit"
    code = cli.main(["fixtures", "verify", "--dir", str(folder), "--all", "--loss", "L2Loss", "--jobs", "2"])
    cap = capsys.readouterr()
    n = case["expected"]["n_terms"]
    assert code == 1 and [ln for ln in cap.out.splitlines() if ln.startswith("FAIL")] == [
        f"FAIL {L2} case 4 ({case['name']}): differs from a fresh generation: expected.n_terms: recorded {n}, fresh {n // 100}"
    ], cap.out
    # stderr holds progress only (a plain line every 10 s when not on a terminal)
    assert all(re.fullmatch(r"lossconf: regenerating: \d+/1 files \(\d+ s\)", ln) for ln in cap.err.splitlines()), cap.err
    # only L1Loss re-derived: the L2Loss edit is not looked at (the manifest is still compared)
    assert cli.main(["fixtures", "verify", "--dir", str(folder), "--all", "--loss", "L1Loss", "-q"]) == 0
    assert capsys.readouterr().err == ""
    assert cli.main(["fixtures", "verify", "--dir", str(folder), "--all", "--loss", "NoSuchLoss"]) == 2
    assert "NoSuchLoss" in capsys.readouterr().err
    cli.main(["fixtures", "verify", "--dir", str(folder), "--all", "--loss", "L2Loss", "--jobs", "2", "-q"])
    assert capsys.readouterr().err == ""


def test_verify_all_is_not_run_on_a_folder_that_fails_plain_verify(tmp_path):
    """The real console command: a damaged file is named by the plain checks, and nothing
    is regenerated (no progress lines, no traceback)."""
    d = tmp_path / "fixtures"
    shutil.copytree(FIXTURES, d, ignore=shutil.ignore_patterns(".*"))
    (d / L1).write_text("garbage")
    proc = subprocess.run([sys.executable, "-m", "conformance.cli", "fixtures", "verify", "--dir", str(d), "--all"],
                          capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert proc.returncode == 1 and proc.stderr == ""
    assert f"FAIL {L1}: not valid JSON (line 1, column 1: Expecting value)" in proc.stdout.splitlines()


# ----------------------------------------------------------------- unwritable outputs


@pytest.fixture
def unwritable(tmp_path) -> Path:
    """A path under a regular file: no process can create it, root included."""
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    return blocker / "sub" / "out"


def _one_line(capsys) -> str:
    cap = capsys.readouterr()
    err = [ln for ln in cap.err.splitlines() if ln.strip()]
    assert "Traceback" not in cap.err and len(err) == 1, cap.err
    return err[0]


def test_spec_into_an_unwritable_place(capsys, unwritable):
    assert cli.main(["spec", "-o", str(unwritable)]) == 2
    line = _one_line(capsys)
    assert line.startswith(f"lossconf: cannot write the spec table to {unwritable}: Not a directory"), line


def test_diff_markdown_into_an_unwritable_place(capsys, unwritable):
    from tests import results_helpers as rh

    results = str(rh.numpy_results())
    capsys.readouterr()
    assert cli.main(["diff", results, results, "--markdown", str(unwritable)]) == 2
    line = _one_line(capsys)
    assert line.startswith(f"lossconf: cannot write the Markdown comparison to {unwritable}: Not a directory"), line


def test_diff_markdown_onto_a_directory(capsys, tmp_path):
    from tests import results_helpers as rh

    results = str(rh.numpy_results())
    capsys.readouterr()
    assert cli.main(["diff", results, results, "--markdown", str(tmp_path)]) == 2
    assert _one_line(capsys) == f"lossconf: cannot write the Markdown comparison to {tmp_path}: it is a directory"


def test_report_out_into_an_unwritable_place(capsys, unwritable):
    from tests import results_helpers as rh

    results = str(rh.numpy_results())
    capsys.readouterr()
    assert cli.main(["report", results, "--out", str(unwritable)]) == 2
    line = _one_line(capsys)
    assert line.startswith(f"lossconf: cannot write the reports into {unwritable}: Not a directory"), line


def test_fixtures_generate_into_an_unwritable_place(capsys, unwritable):
    assert cli.main(["fixtures", "generate", "--out", str(unwritable), "--loss", "L2Loss"]) == 2
    line = _one_line(capsys)
    assert line.startswith(f"lossconf: cannot write the fixtures into {unwritable}: Not a directory"), line


# ----------------------------------------------------------------- the oracle's own input checks


@pytest.mark.parametrize(
    ("loss", "inputs", "message"),
    [
        ("L2Loss", {"pred": 1.0, "label": 2.0},
         "mxnet.gluon.loss.L2Loss: input pred is a scalar (shape ()); expected an array with a batch axis (at least one dimension): 1.0"),
        ("CTCLoss", {"pred": 0.0, "label": [[1]]},
         "mxnet.gluon.loss.CTCLoss: input pred is a scalar (shape ()); expected an array with a batch axis (at least one dimension): 0.0"),
        ("L2Loss", {"pred": [[1.0, 2.0], [3.0]], "label": [[1.0, 2.0], [3.0, 4.0]]},
         "mxnet.gluon.loss.L2Loss: input pred is ragged (nested lists of unequal lengths) or not an array of numbers: [[1.0, 2.0], [3.0]]"),
        ("SoftmaxCELoss", {"pred": [[0.0, 1.0]], "label": [[1], 0]},
         "mxnet.gluon.loss.SoftmaxCrossEntropyLoss: input label is ragged (nested lists of unequal lengths) or not an array of numbers: [[1], 0]"),
    ],
)
def test_oracle_evaluate_on_0d_or_ragged_input(loss, inputs, message):
    with pytest.raises(oracle.OracleError) as info:
        oracle.evaluate(loss, inputs)
    assert isinstance(info.value, oracle.InputError) and str(info.value) == message


def test_oracle_evaluate_takes_a_0d_sample_weight():
    """sample_weight is broadcast: a scalar one is documented input, not an error."""
    r = oracle.evaluate("L2Loss", {"pred": [[1.0, 2.0]], "label": [[0.0, 0.0]], "sample_weight": 2.0})
    assert r.value_as("float64").tolist() == [2.5]


# ----------------------------------------------------------------- the compiled schema


def _schema() -> dict:
    return json.loads(PACKAGED_SCHEMA.read_text())


_FULL = jsonschema.Draft202012Validator(json.loads(PACKAGED_SCHEMA.read_text()))


def _jsonschema_valid(doc) -> bool:
    return _FULL.is_valid(doc)


def test_compiled_schema_accepts_every_committed_file():
    fast = compile_schema(_schema())
    for name in sorted(json.loads((FIXTURES / "MANIFEST.json").read_text())["files"]):
        assert fast(json.loads((FIXTURES / name).read_text())), name


def _leaves(node, path=()):
    if isinstance(node, dict):
        for k, v in node.items():
            yield path + (k,), v
            yield from _leaves(v, path + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node[:3]):
            yield path + (i,), v
            yield from _leaves(v, path + (i,))


def _replaced(doc, path, value):
    out = copy_module.deepcopy(doc)
    node = out
    for p in path[:-1]:
        node = node[p]
    if value is _DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return out


_DELETE = object()
REPLACEMENTS = [None, True, 0, 1.0, -1, 2.5, "x", "1e+00", "nan", [], {}, ["1e+00"], [1], _DELETE]


def test_compiled_schema_gives_jsonschemas_verdict_on_damaged_documents():
    """Every field of a small fixture document (a valid case, an invalid-input case and a
    kink case of L1Loss) replaced in turn by values of every JSON kind, or deleted: the
    compiled check and jsonschema agree on every one."""
    doc = json.loads((FIXTURES / L1).read_text())
    picked = [c for c in doc["cases"] if "invalid" in c][:1] + [doc["cases"][_kink_case(doc)]] + doc["cases"][:1]
    small = {**doc, "cases": picked}
    fast = compile_schema(_schema())
    assert fast(small) and _jsonschema_valid(small)
    disagreements, tried, invalid = [], 0, 0
    for path, _ in list(_leaves(small)):
        for value in REPLACEMENTS:
            damaged = _replaced(small, path, value)
            expected = _jsonschema_valid(damaged)
            tried += 1
            invalid += not expected
            if fast(damaged) != expected:
                disagreements.append((path, value))
    assert not disagreements, disagreements[:10]
    assert tried > 1000 and invalid > tried // 2  # (the damage mostly breaks the format)


def test_validator_reports_jsonschemas_messages():
    doc = json.loads((FIXTURES / L2).read_text())
    doc["cases"][2]["tags"] = ["regular", "bogus-regime"]
    errors = validator()(doc)
    assert errors == [(["cases", 2, "tags", 1], "'bogus-regime' is not one of " + repr(_schema()["$defs"]["case"]["properties"]["tags"]["items"]["enum"]))]


def test_compiled_schema_semantics_follow_jsonschema():
    """The corners of JSON Schema the compiler must get right, against jsonschema itself."""
    cases = [
        ({"type": "integer"}, [1, 1.0, 1.5, True, "1"]),
        ({"const": 1}, [1, 1.0, True, "1"]),
        ({"enum": [1, "a"]}, [1.0, True, "a", "b"]),
        ({"pattern": "^a"}, ["ab", "ba", 1]),
        ({"pattern": "b"}, ["ab", "a"]),
        ({"minimum": 0}, [-1, 0, True, "x"]),
        ({"required": ["a"]}, [{"a": 1}, {}, [1]]),
        ({"properties": {"a": {"type": "string"}}, "additionalProperties": False}, [{"a": "x"}, {"a": 1}, {"b": 1}, 3]),
        ({"additionalProperties": {"type": "integer"}}, [{"a": 1}, {"a": "x"}]),
        ({"items": {"type": "string", "pattern": "^[0-9]$"}}, [["1", "2"], ["1", "22"], ["1", 2], "12"]),
        ({"oneOf": [{"type": "integer"}, {"minimum": 0}]}, [1, -1, 0.5, -0.5]),
        ({"not": {"required": ["a"]}}, [{"a": 1}, {"b": 1}]),
        ({"minItems": 1}, [[], [1], {}]),
        ({"minLength": 2}, ["ab", "a", "é", 5]),
    ]
    for schema, instances in cases:
        fast = compile_schema(schema)
        for x in instances:
            assert fast(x) == _jsonschema_valid_of(schema, x), (schema, x)


def _jsonschema_valid_of(schema: dict, x) -> bool:
    return not any(True for _ in jsonschema.Draft202012Validator(schema).iter_errors(x))


# ----------------------------------------------------------------- the real console command


def test_the_console_command_reports_a_damaged_fixture_in_one_line(folder):
    (folder / L2).unlink()
    (folder / L2).symlink_to("/dev/zero")
    proc = subprocess.run([sys.executable, "-m", "conformance.cli", "run", "numpy", "--fixtures", str(folder)],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 3
    assert proc.stderr.strip().splitlines() == [
        f"lossconf: fixtures: {L2}: a link to /dev/zero, outside the fixtures folder {os.path.realpath(folder)}"
    ]


def test_loading_reads_each_file_once(folder):
    """A case's JSON record comes from the bytes read and checked at loading, not from a
    second read of the file (which might have changed since)."""
    cases = fx.load(folder, losses={"L2Loss"})
    (folder / L2).write_text("changed after loading")
    assert cases[3].raw["name"] == cases[3].name


def test_a_vjp_term_scale_is_read_and_checked(folder):
    """``vjp.<input>.scale`` (written by the oracle from session 4 on) is read where a file
    has it, and a scale of the wrong length is named like any other field."""
    case = edit_case(folder / L2, 4, lambda c: (c["vjp"]["pred"].update(scale=["1.5"] * len(c["vjp"]["pred"]["value"])), c)[1])
    reseal(folder)
    loaded = next(c for c in fx.load(folder, losses={"L2Loss"}) if c.index == 4)
    assert loaded.vjp["pred"].scale.tolist() == [1.5] * len(case["vjp"]["pred"]["value"])
    edit_case(folder / L2, 4, lambda c: (c["vjp"]["pred"]["scale"].append("1"), c)[1])
    reseal(folder)
    with pytest.raises(fx.FixtureError) as info:
        fx.load(folder)
    n = len(case["vjp"]["pred"]["value"])
    assert str(info.value).startswith(f"{L2}: case 4 ({case['name']}): vjp.pred.scale: not a list of {n} number strings")
