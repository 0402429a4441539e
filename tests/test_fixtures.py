"""The golden fixtures: generation is deterministic and reproduces the committed files
byte for byte; ``verify`` passes on the committed fixtures and fails, by name, on every
kind of corruption; ``verify --recompute`` catches a consistently altered exact value;
loading never executes anything; the coverage table has no empty documented cell.

Corruptions are made on a small copy (two losses, the schema and a manifest for them) in
``tmp_path``, so each check runs in a fraction of a second; ``fixtures/`` is never touched.
"""

from __future__ import annotations

import ast
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conformance import cli
from conformance import fixtures as fx
from oracle import catalog
from oracle import coverage as cov
from oracle import fixtures as gen

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
SCHEMA_SOURCE = ROOT / "conformance" / "fixtures_schema.json"

#: two cheap losses (a fraction of a second each to regenerate)
CHEAP = ["mxnet.gluon.loss.L2Loss", "mxnet.gluon.loss.L1Loss"]
L2, L1 = "l2_loss.json", "l1_loss.json"


def committed_manifest() -> dict:
    return json.loads((FIXTURES / "MANIFEST.json").read_text())


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def reseal(directory: Path) -> None:
    """Rewrite the manifest so its digests match the files as they are now, schema.json
    included (so only the content checks can find what was done to them)."""
    listed = json.loads((directory / "MANIFEST.json").read_text())["files"]
    present = [n for n in listed if (directory / n).exists()]
    schema = directory / "schema.json"
    gen.write_manifest(
        directory,
        {n: sha(directory / n) for n in present},
        {n: fx.case_digests((directory / n).read_bytes()) for n in present},
        sha(schema) if schema.is_file() else None,
    )


def lines(path: Path) -> list[str]:
    return path.read_text().split("\n")


def case_line(path: Path, index: int) -> int:
    """Line number (0-based) of case ``index`` in a fixture file: one case per line."""
    for n, line in enumerate(lines(path)):
        if line.startswith(f'{{"index":{index},'):
            return n
    raise AssertionError(f"case {index} not found in {path.name}")


def edit_case(path: Path, index: int, edit) -> dict:
    """Replace case ``index`` of a fixture file by ``edit(case)`` (same compact layout)."""
    text = lines(path)
    n = case_line(path, index)
    line = text[n]
    comma = line.endswith(",")
    case = json.loads(line.rstrip(","))
    case = edit(case)
    text[n] = json.dumps(case, separators=(",", ":")) + ("," if comma else "")
    path.write_text("\n".join(text))
    return case


def problems_of(directory: Path) -> list[str]:
    return [str(p) for p in fx.verify(directory)]


# ----------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    """A copy of the committed fixtures folder (a folder has a file for every loss of the
    catalog), its manifest written by the generator's own function."""
    d = tmp_path_factory.mktemp("pristine") / "fixtures"
    shutil.copytree(FIXTURES, d, ignore=shutil.ignore_patterns(".*"))
    m = committed_manifest()
    gen.write_manifest(d, m["files"], m["cases"], m["schema"]["schema.json"])
    assert problems_of(d) == [], "the copy of the committed fixtures must verify"
    return d


@pytest.fixture
def copy(pristine, tmp_path) -> Path:
    d = tmp_path / "fixtures"
    shutil.copytree(pristine, d)
    return d


# ----------------------------------------------------------------- determinism


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory) -> tuple[Path, Path]:
    a = tmp_path_factory.mktemp("gen-a")
    b = tmp_path_factory.mktemp("gen-b")
    gen.generate(a, CHEAP, jobs=2)  # two worker processes
    gen.generate(b, CHEAP, jobs=1)  # in this process
    return a, b


def test_generation_is_deterministic(regenerated):
    a, b = regenerated
    names = sorted(p.name for p in a.iterdir())
    assert names == sorted(p.name for p in b.iterdir())
    assert {L2, L1, "MANIFEST.json", "schema.json"} <= set(names)
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes(), f"{name} differs between two generations"


def test_regenerated_files_equal_the_committed_ones(regenerated):
    a, _ = regenerated
    committed = committed_manifest()["files"]
    for name in (L2, L1):
        assert (a / name).read_bytes() == (FIXTURES / name).read_bytes(), (
            f"regenerating {name} does not reproduce the committed file byte for byte"
        )
        assert json.loads((a / "MANIFEST.json").read_text())["files"][name] == committed[name]
    assert (a / "schema.json").read_bytes() == (FIXTURES / "schema.json").read_bytes()


def test_committed_manifest_is_what_the_generator_writes(tmp_path):
    m = committed_manifest()
    gen.write_manifest(tmp_path, m["files"], m["cases"], sha(FIXTURES / "schema.json"))
    assert (tmp_path / "MANIFEST.json").read_bytes() == (FIXTURES / "MANIFEST.json").read_bytes()


def test_every_loss_has_a_committed_fixture_file():
    listed = set(committed_manifest()["files"])
    assert {gen.file_name(i) for i in catalog.loss_ids()} == listed


# ----------------------------------------------------------------- verify: pass


def test_verify_passes_on_the_committed_fixtures():
    assert problems_of(FIXTURES) == []


def test_verify_cli_passes_in_process(pristine, capsys):
    assert cli.main(["fixtures", "verify", "--dir", str(pristine)]) == 0
    assert "verified" in capsys.readouterr().out


def test_schema_in_fixtures_is_the_packaged_schema():
    assert (FIXTURES / "schema.json").read_bytes() == SCHEMA_SOURCE.read_bytes()


# ----------------------------------------------------------------- verify: corruption


def test_changed_digit_is_named(copy):
    path = copy / L2
    n = case_line(path, 5)
    text = lines(path)
    marker = '"value":["'
    at = text[n].index(marker, text[n].index('"expected"')) + len(marker) + 4  # a digit of the mantissa
    digit = text[n][at]
    assert digit.isdigit()
    text[n] = text[n][:at] + str((int(digit) + 1) % 10) + text[n][at + 1 :]
    path.write_text("\n".join(text))
    problems = problems_of(copy)
    assert len(problems) == 1 and problems[0].startswith(f"{L2} case 5 ("), problems
    assert problems[0].endswith("changed: SHA-256 of this case differs from MANIFEST.json"), problems


def test_missing_file_is_named(copy):
    (copy / L1).unlink()
    assert problems_of(copy) == [f"{L1}: missing (listed in MANIFEST.json)"]


def test_extra_file_is_named(copy):
    shutil.copy2(copy / L1, copy / "stray_loss.json")
    assert problems_of(copy) == ["stray_loss.json: extra file, not listed in MANIFEST.json"]


def test_truncated_file_is_named(copy):
    path = copy / L2
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    problems = problems_of(copy)
    assert any(p.startswith(f"{L2}") and "changed: SHA-256" in p for p in problems), problems
    assert any(p.startswith(f"{L2}") and ": truncated" in p for p in problems), problems
    assert all(p.startswith(L2) for p in problems)


def test_truncated_file_is_named_even_with_a_resealed_manifest(copy):
    path = copy / L2
    path.write_bytes(path.read_bytes()[:-3])  # just the closing "]}\n" lost
    reseal(copy)
    problems = problems_of(copy)
    assert len(problems) == 1 and problems[0].startswith(f"{L2}: truncated"), problems


def test_non_json_file_is_named(copy):
    path = copy / L1
    text = lines(path)
    n = case_line(path, 3)
    text[n] = text[n].replace('"dtype":', "dtype=", 1)  # not JSON any more
    path.write_text("\n".join(text))
    reseal(copy)
    problems = problems_of(copy)
    assert len(problems) == 1 and problems[0].startswith(f"{L1} case ") and f"not valid JSON (line {n + 1}" in problems[0], problems


def test_binary_garbage_is_named(copy):
    (copy / L1).write_bytes(b"\x00\xff\xfe garbage")
    reseal(copy)
    problems = problems_of(copy)
    assert len(problems) == 1 and problems[0].startswith(f"{L1}: "), problems


def test_parse_error_names_the_case(copy):
    path = copy / L1
    text = lines(path)
    n = case_line(path, 3)
    text[n] = text[n].replace('"dtype":', "dtype=", 1)
    path.write_text("\n".join(text))
    reseal(copy)
    problems = problems_of(copy)
    assert any(p.startswith(f"{L1} case 3 (") for p in problems), problems


def test_truncation_names_the_case(copy):
    path = copy / L2
    text = lines(path)
    n = case_line(path, 10)
    path.write_text("\n".join(text[:n]) + "\n" + text[n][: len(text[n]) // 2])
    reseal(copy)
    problems = problems_of(copy)
    assert any(p.startswith(f"{L2} case 10 (") for p in problems), problems


STRUCTURAL = {
    "no cases list": lambda d: {k: v for k, v in d.items() if k != "cases"},
    "cases not a list": lambda d: {**d, "cases": 5},
    "a case not an object": lambda d: {**d, "cases": [1, *d["cases"]]},
    "no loss name": lambda d: {k: v for k, v in d.items() if k != "loss"},
    "data not a list": lambda d: _set_input(d, "data", 3),
    "data not numbers": lambda d: _set_input(d, "data", ["abc"] * len(d["cases"][0]["inputs"]["pred"]["data"])),
    "shape not integers": lambda d: _set_input(d, "shape", ["a"]),
}


def _set_input(doc: dict, key: str, value) -> dict:
    doc["cases"][0]["inputs"]["pred"][key] = value
    return doc


@pytest.mark.parametrize("corruption", list(STRUCTURAL))
def test_structural_corruption_is_named_never_a_crash(copy, corruption):
    """A file that is valid JSON but not the format (manifest resealed, so only the content
    checks see it): verify reports it by name, and loading stops with a FixtureError that
    names the file (the harness's one clear line), never a traceback."""
    path = copy / L2
    path.write_text(json.dumps(STRUCTURAL[corruption](json.loads(path.read_text()))))
    reseal(copy)
    problems = problems_of(copy)
    assert problems and all(p.startswith(L2) for p in problems), problems
    with pytest.raises(fx.FixtureError, match=rf"^{L2}: "):
        fx.load(copy)


def test_missing_required_key_names_file_and_case(copy):
    path = copy / L2

    def drop_dtype(case):
        del case["dtype"]
        return case

    case = edit_case(path, 7, drop_dtype)
    reseal(copy)  # so that only the schema can find it
    problems = problems_of(copy)
    assert problems, "a case without its dtype must not verify"
    assert all(p.startswith(f"{L2} case 7 ({case['name']}): schema:") for p in problems), problems
    assert any("'dtype' is a required property" in p for p in problems), problems


def test_bad_tag_names_file_and_case(copy):
    path = copy / L1
    case = edit_case(path, 2, lambda c: {**c, "tags": ["regular", "bogus-regime"]})
    reseal(copy)
    problems = problems_of(copy)
    assert problems and all(p.startswith(f"{L1} case 2 ({case['name']}): schema: tags/1:") for p in problems), problems
    assert "bogus-regime" in problems[0]


def test_schema_violation_without_reseal_reports_digest_and_case(copy):
    path = copy / L2
    case = edit_case(path, 0, lambda c: {**c, "expected": {**c["expected"], "value": ["one point two"]}})
    problems = problems_of(copy)
    assert any(p.startswith(f"{L2}") and "changed: SHA-256" in p for p in problems), problems
    assert any(p.startswith(f"{L2} case 0 ({case['name']}): schema: expected/value/0:") for p in problems), problems


def test_inconsistent_input_names_file_and_case(copy):
    path = copy / L2

    def bad_shape(case):
        case["inputs"]["pred"]["shape"] = [case["inputs"]["pred"]["shape"][0] + 1] + case["inputs"]["pred"]["shape"][1:]
        return case

    case = edit_case(path, 4, bad_shape)
    reseal(copy)
    problems = problems_of(copy)
    assert len(problems) == 1 and problems[0].startswith(f"{L2} case 4 ({case['name']}): pred:"), problems


def test_edited_manifest_digest_is_named(copy):
    manifest = json.loads((copy / "MANIFEST.json").read_text())
    manifest["files"][L1] = "0" * 64
    (copy / "MANIFEST.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    problems = problems_of(copy)
    assert "MANIFEST.json: its digest does not match its file list (the manifest was edited)" in problems
    assert any(p.startswith(f"{L1}") and "changed: SHA-256" in p for p in problems), problems
    assert len(problems) == 2


def test_edited_manifest_entry_removed(copy):
    manifest = json.loads((copy / "MANIFEST.json").read_text())
    del manifest["files"][L1]
    (copy / "MANIFEST.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    problems = problems_of(copy)
    assert sorted(problems) == sorted(
        [
            "MANIFEST.json: its digest does not match its file list (the manifest was edited)",
            "MANIFEST.json: lists no fixture file for mxnet.gluon.loss.L1Loss (l1_loss.json): "
            "every loss of the catalog must be listed",
            f"{L1}: extra file, not listed in MANIFEST.json",
        ]
    )


def test_corrupt_manifest_is_named(copy):
    (copy / "MANIFEST.json").write_text('{"files": {')
    problems = problems_of(copy)
    assert len(problems) == 1 and problems[0].startswith("MANIFEST.json: truncated"), problems


def test_missing_manifest_is_named(copy):
    (copy / "MANIFEST.json").unlink()
    problems = problems_of(copy)
    assert len(problems) == 1 and problems[0].startswith("MANIFEST.json: missing"), problems


def test_loading_a_changed_file_stops_with_its_name(copy):
    path = copy / L2
    path.write_bytes(path.read_bytes().replace(b'"index":3,', b'"index":3, ', 1))
    with pytest.raises(fx.FixtureError, match=rf"^{L2}: SHA-256 differs"):
        fx.load(copy)


def test_verify_cli_exits_non_zero_and_names_the_file(copy):
    (copy / L1).unlink()
    proc = subprocess.run(
        [sys.executable, "-m", "conformance.cli", "fixtures", "verify", "--dir", str(copy)],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )
    assert proc.returncode != 0
    assert f"FAIL {L1}: missing" in proc.stdout


def test_verify_cli_in_process_exits_non_zero(copy, capsys):
    edit_case(copy / L2, 1, lambda c: {**c, "dtype": "float128"})
    assert cli.main(["fixtures", "verify", "--dir", str(copy)]) != 0
    out = capsys.readouterr().out
    assert f"FAIL {L2} case " in out and "changed: SHA-256 of this case differs" in out
    assert f"FAIL {L2} case 1 (" in out and "schema: dtype" in out


# ----------------------------------------------------------------- verify --recompute


def _alter_value(case: dict) -> dict:
    """Change the 6th significant digit of the first exact output value."""
    v = case["expected"]["value"][0]
    assert v[0].isdigit() and v[1] == "." and v[6].isdigit(), v
    case["expected"]["value"][0] = v[:6] + str((int(v[6]) + 1) % 10) + v[7:]
    return case


def test_recompute_finds_a_consistently_altered_value(copy, capsys):
    # case 0 is among the cases `--recompute` samples by default (spread evenly from 0)
    case = edit_case(copy / L2, 0, _alter_value)
    reseal(copy)
    assert problems_of(copy) == [], "digests and schema cannot see a consistent edit"
    assert cli.main(["fixtures", "verify", "--dir", str(copy)]) == 0
    capsys.readouterr()
    assert cli.main(["fixtures", "verify", "--dir", str(copy), "--recompute"]) == 1
    out = capsys.readouterr().out
    assert f"FAIL {L2} case 0 ({case['name']}): value[0] recorded {case['expected']['value'][0]}" in out


def test_recompute_all_finds_an_altered_gradient(copy):
    n_cases = len(json.loads((copy / L1).read_text())["cases"])
    index = n_cases // 2 + 1  # not one of the evenly spread default sample

    def alter_grad(case):
        g = case["vjp"]["pred"]["value"]
        k = next(i for i, v in enumerate(g) if isinstance(v, str) and v not in ("0", "nan", "inf", "-inf"))
        g[k] = ("-" + g[k]) if not g[k].startswith("-") else g[k][1:]
        return case

    case = edit_case(copy / L1, index, alter_grad)
    reseal(copy)
    assert problems_of(copy) == []
    # every case of the altered file (re-deriving every file, long cases included, takes
    # many minutes; the other files are unaltered copies)
    problems = gen.recompute(copy, sample=None, files={L1: (copy / L1).read_bytes()})
    assert len(problems) == 1 and problems[0].startswith(f"{L1} case {index} ({case['name']}): vjp:pred["), problems


def test_recompute_passes_on_unaltered_copy(pristine):
    assert gen.recompute(pristine, sample=3) == []


# ----------------------------------------------------------------- nothing is executed

PAYLOAD_TARGET = "lossconf-fixture-payload-ran"


def _payloads(sentinel: Path) -> list[str]:
    return [
        f"__import__('os').system('touch {sentinel}')",
        f"eval(\"open('{sentinel}', 'w')\")",
        f"!!python/object/apply:os.system ['touch {sentinel}']",
    ]


def test_loading_never_executes_a_fixture_string(copy, tmp_path):
    sentinel = tmp_path / PAYLOAD_TARGET
    payloads = _payloads(sentinel)
    # in free-text fields the payload is valid data: it loads as a plain string
    case = edit_case(copy / L2, 3, lambda c: {**c, "note": payloads[0], "name": payloads[1]})
    # in a number field it is a malformed number: named, never run
    edit_case(copy / L1, 2, lambda c: {**c, "inputs": {**c["inputs"], "pred": {**c["inputs"]["pred"], "data": payloads}}})
    reseal(copy)
    problems = problems_of(copy)
    assert problems and all(p.startswith(f"{L1} case 2 (") for p in problems), problems
    with pytest.raises(fx.FixtureError, match=rf"^{L1}: case 2 \(.*\): inputs.pred.data: not a list of \d+ number strings"):
        fx.load(copy)
    cases = fx.load_file(copy / L2)
    loaded = next(c for c in cases if c.index == 3)
    assert loaded.raw["note"] == payloads[0] and loaded.name == payloads[1] == case["name"]
    assert not sentinel.exists()


def test_loader_uses_json_only():
    """Static check: the loader and the verifier parse fixtures with ``json`` only and call
    nothing that could run code found in a file."""
    forbidden_calls = {"eval", "exec", "compile", "__import__", "loads_unsafe"}
    forbidden_modules = {"pickle", "marshal", "shelve", "yaml", "dill", "cloudpickle", "ast"}
    for module in ("conformance/fixtures.py", "oracle/coverage.py"):
        tree = ast.parse((ROOT / module).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                assert node.func.id not in forbidden_calls, f"{module} calls {node.func.id}"
            if isinstance(node, ast.Import):
                for alias in node.names:
                    assert alias.name.split(".")[0] not in forbidden_modules, f"{module} imports {alias.name}"
            if isinstance(node, ast.ImportFrom) and node.module:
                assert node.module.split(".")[0] not in forbidden_modules, f"{module} imports from {node.module}"


def test_json_constants_are_not_accepted_as_numbers(copy):
    """``NaN``/``Infinity`` JSON extensions are not the format's spelling ("nan", "inf"):
    a file using them is rejected by the schema, by name."""
    path = copy / L2
    text = path.read_text().replace('"rounded":["', '"rounded":[NaN,"', 1)
    path.write_text(text)
    reseal(copy)
    problems = problems_of(copy)
    assert problems and all(p.startswith(f"{L2} case 0 (") for p in problems), problems


# ----------------------------------------------------------------- coverage


def test_no_empty_cell_for_a_documented_option():
    assert cov.empty_cells(FIXTURES) == []


def test_committed_coverage_table_is_current():
    assert (FIXTURES / "COVERAGE.md").read_text() == cov.render(FIXTURES)


def test_empty_cells_reports_a_gap(copy):
    """The coverage check can fail: drop every float16 case of L1Loss from a copy."""

    def keep_non_float16(path: Path) -> None:
        doc = json.loads(path.read_text())
        doc["cases"] = [c for c in doc["cases"] if c["dtype"] != "float16"]
        path.write_text(json.dumps(doc))

    keep_non_float16(copy / L1)
    missing = cov.empty_cells(copy)
    assert missing and all(m.startswith("mxnet.gluon.loss.L1Loss:") and m.endswith("has no float16 case") for m in missing)


# ----------------------------------------------------------------- runs (format version 2)


def test_run_length_writes_runs_of_eight_or_more_and_expands_back():
    plain = ["1e+00"] * 8 + ["2e+00"] * 7 + [3, 3, 3, 3, 3, 3, 3, 3] + ["nan"] * 9
    runs = gen.run_length(plain)
    assert runs == [{"repeat": "1e+00", "count": 8}, *["2e+00"] * 7, *[3] * 8, {"repeat": "nan", "count": 9}]
    assert gen.expand_runs(runs) == plain == fx.expand_runs(runs) == fx.expand_runs(runs, n=len(plain))
    assert gen.run_length(["a"] * 7) == ["a"] * 7 and gen.run_length([]) == []


def _case_index(path: Path, name: str) -> int:
    return next(c["index"] for c in json.loads(path.read_text())["cases"] if c["name"] == name)


@pytest.mark.parametrize("name", ["long-float16", "long-float32", "default-float32"])
def test_runs_expand_to_what_the_oracle_generates(name):
    """A case regenerated by the oracle (a plain record, every list element a string) equals
    the committed record with its runs expanded, and the committed line is the oracle's
    record with runs written (so the expanded content is that of format version 1)."""
    loss = "mxnet.gluon.loss.L1Loss"
    spec = catalog.spec(loss)
    base = list(catalog.module(loss).cases())
    case = next(c for c in base if c.name == name)
    index = _case_index(FIXTURES / L1, name)
    plain = gen.encode_case(loss, index, case)
    line = fx.case_lines((FIXTURES / L1).read_bytes())[index]
    committed = json.loads(line)
    assert fx.expanded_record(committed) == plain == gen.expanded_record(committed)
    assert json.dumps(gen.compact_record(json.loads(json.dumps(plain))), separators=(",", ":")).encode() == line
    if name.startswith("long"):
        assert any(isinstance(x, dict) for x in committed["inputs"]["pred"]["data"]), "a long case's inputs are runs"
    assert spec  # (the loss of the file)


def test_loader_decodes_runs_into_the_same_numbers_as_plain_lists():
    """The decoded numbers of a file with runs (what the batched comparison reads: every
    number string and its float64, where each array's strings start and end) equal those
    of the same file with every run expanded (format version 1's lists)."""
    doc = json.loads((FIXTURES / L1).read_text())
    plain = {**doc, "cases": [fx.expanded_record(c) for c in doc["cases"]]}
    a, b = fx.decode(doc, L1), fx.decode(plain, L1)
    assert list(a.texts) == list(b.texts) and a.cases == b.cases
    assert (a.values.view("u8") == b.values.view("u8")).all() and (a.lo == b.lo).all()
    cases = fx.load_file(FIXTURES / L1)
    long = next(c for c in cases if c.name == "long-float16")
    record = fx.expanded_record(long.raw)
    for got, data in ((long.inputs["pred"], record["inputs"]["pred"]["data"]), (long.direction["pred"], record["direction"]["pred"]["data"])):
        assert got.size == len(data) and (got.ravel() == np.array([float(x) for x in data]).astype(got.dtype)).all()


BAD_RUNS = {
    "count 1": ({"repeat": "1e+00", "count": 1}, "a malformed run"),
    "count 0": ({"repeat": "1e+00", "count": 0}, "a malformed run"),
    "count negative": ({"repeat": "1e+00", "count": -5}, "a malformed run"),
    "count a string": ({"repeat": "1e+00", "count": "9"}, "a malformed run"),
    "count a bool": ({"repeat": "1e+00", "count": True}, "a malformed run"),
    "count a float": ({"repeat": "1e+00", "count": 9.0}, "a malformed run"),
    "repeat a number": ({"repeat": 1.0, "count": 9}, "a malformed run"),
    "repeat missing": ({"count": 9}, "a malformed run"),
    "extra key": ({"repeat": "1e+00", "count": 9, "x": 1}, "a malformed run"),
    "count beyond the shape": ({"repeat": "1e+00", "count": 10**15}, "its runs expand to more than the"),
    "repeat not a number": ({"repeat": "abc", "count": None}, "is not a number as the format writes it"),  # (count kept)
}


@pytest.mark.parametrize("bad", list(BAD_RUNS))
def test_a_malformed_run_is_one_line_naming_file_and_case(copy, bad):
    """A run that is not ``{"repeat": <number string>, "count": <integer >= 2>}`` (count 1
    is rejected: the writer never writes it), or runs that do not expand to the shape's
    count: loading stops with one line naming the file, the case and the field; verify
    reports it too."""
    run, message = BAD_RUNS[bad]
    index = _case_index(copy / L1, "long-float16")

    def edit(case):
        data = case["inputs"]["pred"]["data"]
        at = next(i for i, x in enumerate(data) if isinstance(x, dict))
        data[at] = dict(run, count=data[at]["count"]) if run.get("count", 0) is None else run
        return case

    case = edit_case(copy / L1, index, edit)
    reseal(copy)
    with pytest.raises(fx.FixtureError) as info:
        fx.load_file(copy / L1)
    text = str(info.value)
    assert text.startswith(f"{L1}: case {index} ({case['name']}): ") and message in text, text
    assert "inputs.pred.data" in text or bad == "repeat not a number", text
    assert "\n" not in text
    problems = problems_of(copy)
    assert problems and all(p.startswith(f"{L1} case {index} ({case['name']}): ") for p in problems), problems


def test_runs_at_the_start_and_end_and_short_lists(copy):
    """Runs may begin and end a list, stand next to plain strings and to each other; the
    loader reads them as the strings they stand for (verify agrees)."""
    index = _case_index(copy / L1, "long-float16")

    def edit(case):
        pred = case["inputs"]["pred"]
        n = pred["shape"][0] * pred["shape"][1]
        pred["data"] = [{"repeat": "1e+00", "count": 2}, "1e+00", {"repeat": "1e+00", "count": n - 6}, "1e+00", {"repeat": "1e+00", "count": 2}]
        return case

    edit_case(copy / L1, index, edit)
    reseal(copy)
    problems = [p for p in problems_of(copy) if "SHA-256" not in p]
    assert problems == [], problems
    long = next(c for c in fx.load_file(copy / L1) if c.index == index)
    assert long.inputs["pred"].size == 16384 and (long.inputs["pred"] == 1).all()


def test_a_malformed_run_in_an_hvp_is_named_when_it_is_read(copy):
    """``hvp`` and ``direction`` are decoded when a check asks for them: a malformed run
    there is then one line naming the file and the case (verify finds it at once)."""
    index = _case_index(copy / L1, "long-float16")
    edit_case(copy / L1, index, lambda c: {**c, "direction": {"pred": {**c["direction"]["pred"], "data": [{"repeat": "1e+00", "count": 1}]}}})
    reseal(copy)
    case = next(c for c in fx.load_file(copy / L1) if c.index == index)
    with pytest.raises(fx.FixtureError, match=rf"^{L1}: case {index} \(long-float16\): direction: .*a malformed run"):
        _ = case.direction
    assert any(p.startswith(f"{L1} case {index} (long-float16): schema:") for p in problems_of(copy))
