"""The migration map (issue 14, deliverable 5): ``lossconf map`` and the report's
"Migration map" section, from real runs.

The results are real: the numpy backend, and :class:`MappedDefect` -- numpy with nan for
extreme inputs (``tests.defect_backends.NanForExtreme``) that records a mapping, has no
counterpart for PoissonNLLLoss, none for SigmoidBCELoss with from_sigmoid=True, no float16
HingeLoss, and lists its HingeLoss failures as known deviations. What every cell must say is
worked out here from the records, independently of the map's code, and a planted record
that changes the truth must change the cell."""

from __future__ import annotations

import copy
import functools
import html as htmllib
import json
import re
import tempfile
from collections import defaultdict
from pathlib import Path

import pytest

from conformance import cli, report
from conformance.harness import expectations as ex
from conformance.harness.session import Filters, Session
from conformance.protocol import MODES, Call, mapping_of
from conformance.report import migration
from oracle.catalog import loss_ids
from tests.defect_backends import NanForExtreme

LOSSES = ["L2Loss", "HingeLoss", "SigmoidBCELoss", "PoissonNLLLoss"]
MX = "mxnet.gluon.loss."
NO_POISSON = "PoissonNLLLoss: this framework has no Poisson negative log-likelihood"
NO_FROM_SIGMOID = "SigmoidBinaryCrossEntropyLoss: from_sigmoid=True has no counterpart (only logits)"
NO_F16_HINGE = "HingeLoss: float16 is not implemented here"
REASON_HINGE = "tests/test_migration_map.py MappedDefect: nan for |input| > 1000 (NanForExtreme.run), listed for HingeLoss"
EXPECTATIONS = f"""
[[deviation]]
loss = "{MX}HingeLoss"
reason = "{REASON_HINGE}"
"""

MAPPING = {
    MX + "L2Loss": {"call": "defect.mse(pred, label) / 2", "composition": "mean over the non-batch axes",
                    "notes": "no factor 1/2 in defect.mse"},
    MX + "HingeLoss": {"call": "defect.hinge(pred * label, margin)", "composition": "", "notes": "",
                       "unsupported": {"dtype": "float16 has no kernel"}},
    MX + "SigmoidBinaryCrossEntropyLoss": {"call": "defect.bce_with_logits(pred, label)",
                                           "composition": "times pos_weight where label = 1", "notes": "logits only"},
}


class MappedDefect(NanForExtreme):
    """NanForExtreme with a migration map and a few losses, options and dtypes it does not support."""

    name = "mapped-defect"

    def mapping(self) -> dict:
        return copy.deepcopy(MAPPING)

    def supports(self, call: Call) -> str | None:
        if call.loss == MX + "PoissonNLLLoss":
            return NO_POISSON
        if call.loss == MX + "SigmoidBinaryCrossEntropyLoss" and call.options.get("from_sigmoid"):
            return NO_FROM_SIGMOID
        if call.loss == MX + "HingeLoss" and call.dtype == "float16":
            return NO_F16_HINGE
        return super().supports(call)


@functools.cache
def workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="lossconf-migration-"))


def _run(backend, path: Path, expectations: Path | None = None) -> Path:
    filters = Filters(losses=list(LOSSES), modes=["grad"])  # (the cells below are of mode grad)
    exp = ex.load(str(expectations)) if expectations else None
    session = Session.open(backend, None, filters, exp, 60.0)
    session.run_all(filters)
    session.write(path)
    return path


@functools.cache
def results() -> tuple[Path, Path]:
    """(numpy results, MappedDefect results with its expectation file) on LOSSES."""
    from conformance.backends import load_backend

    exp = workdir() / "defect.toml"
    exp.write_text(EXPECTATIONS)
    return _run(load_backend("numpy"), workdir() / "numpy.json"), _run(MappedDefect(), workdir() / "defect.json", exp)


def read(path: Path) -> dict:
    return json.loads(path.read_text())


def write(doc: dict, path: Path) -> Path:
    path.write_text(json.dumps(doc, indent=1))
    return path


def the_map(*paths: Path) -> migration.MigrationMap:
    return migration.build(report.load_all(list(paths)))


def markdown(*paths: Path) -> str:
    return migration.render_markdown(the_map(*paths))


def loss_section(md: str, short: str) -> str:
    start = md.index(f"\n### {short}\n")
    end = md.find("\n### ", start + 1)
    return md[start: end if end >= 0 else len(md)]


def option_row(section: str, options: str) -> list[str]:
    """The cells of an option set's row in a loss's section of the Markdown."""
    name = f"`{options}`" if options else "defaults"
    for line in section.splitlines():
        if line.startswith(f"| {name} |") or line.startswith(f"| {name} (invalid input) |"):
            return [c.strip() for c in re.split(r"(?<!\\)\|", line)[2:-1]]
    raise AssertionError(f"no row {options!r}")


# ------------------------------------------------------------------ the protocol method


def test_the_session_records_the_backends_mapping_in_the_provenance():
    numpy_path, defect_path = results()
    backend = read(defect_path)["provenance"]["backend"]
    assert backend["mapping"] == {k: {"composition": "", "notes": "", **v} for k, v in MAPPING.items()}
    assert "mapping_error" not in backend
    mapped = read(numpy_path)["provenance"]["backend"]["mapping"]
    assert set(mapped) == set(loss_ids())  # every documented loss has a numpy kernel
    assert mapped[MX + "HuberLoss"]["call"] == "conformance.backends.numpy_backend.huber_loss.run(inputs, options, cotangent, wrt)"
    assert "rho" in mapped[MX + "HuberLoss"]["composition"]


class _Raises(MappedDefect):
    def mapping(self) -> dict:
        raise RuntimeError("mapping table not built")


class _Malformed(MappedDefect):
    def mapping(self) -> dict:
        return {MX + "L2Loss": {"call": "ok(pred, label)"}, MX + "L1Loss": "not a dict", MX + "HingeLoss": {"notes": "no call"}}


def test_a_failing_or_malformed_mapping_never_stops_a_run(tmp_path):
    assert mapping_of(_Raises()) == {"mapping_error": "mapping() raised RuntimeError: mapping table not built"}
    bad = mapping_of(_Malformed())
    assert list(bad["mapping"]) == [MX + "L2Loss"]
    assert "'mxnet.gluon.loss.L1Loss'" in bad["mapping_error"] and "'mxnet.gluon.loss.HingeLoss'" in bad["mapping_error"]
    assert mapping_of(NanForExtreme()) == {}  # the method is optional
    path = _run(_Raises(), tmp_path / "raises.json")
    doc = read(path)
    assert doc["records"] and doc["provenance"]["backend"]["mapping_error"].startswith("mapping() raised RuntimeError")
    md = markdown(path)
    assert "Mapping problem: mapped-defect 0: mapping() raised RuntimeError: mapping table not built" in md
    assert "the results record no mapping for this loss" in loss_section(md, "L2Loss")


# ------------------------------------------------------------------ every cell from the records


def _truth(paths: list[Path]) -> dict:
    """(loss, options, backend label, dtype, mode) -> (worst category, causes), from the records."""
    out: dict = {}
    recs: dict = defaultdict(list)
    for p in paths:
        doc = read(p)
        b = doc["provenance"]["backend"]
        label = f"{b['name']} {b['version']}"
        for r in doc["records"]:
            recs[(r["loss"], r["options_label"], label, r["dtype"], r.get("mode") or "grad")].append(r)
    for key, rs in recs.items():
        statuses = {r["status"] for r in rs}
        worst = next(c for s, c in (("fail", "fails"), ("error", "fails"), ("known", "known"),
                                    ("pass", "pass"), ("skip", "unsupported")) if s in statuses)
        causes = set()
        for r in rs:
            if r["status"] == "known":
                causes.add(("known", r["reason"]))
            elif r["status"] == "skip":
                causes.add(("unsupported", r["message"]))
            elif r["status"] in ("fail", "error"):
                causes.add(("fails", r["message"]))
        out[key] = (worst, causes)
    return out


def test_every_cell_says_what_its_records_say():
    paths = list(results())
    truth = _truth(paths)
    m = the_map(*paths)
    seen = set()
    for lm in m.losses:
        for row in lm.rows:
            for label, cell in zip(m.labels, row.cells):
                if cell is None:
                    assert not any(k[:3] == (lm.loss, row.options, label) for k in truth)
                    continue
                for v in cell:
                    for dtype, mode in v.pairs:
                        key = (lm.loss, row.options, label, dtype, mode)
                        assert key not in seen
                        seen.add(key)
                        worst, causes = truth[key]
                        cat = "pass" if v.category in ("conforms", "stable") else v.category
                        assert cat == worst, key
                        shown = {(c.kind, c.text) for c in v.causes}
                        # every reason and skip reason is shown; every failure by one message of its kind
                        assert {c for c in causes if c[0] != "fails"} <= shown, key
                        assert {c for c in shown if c[0] != "fails"} <= causes, key
                        assert {c for c in shown if c[0] == "fails"} <= {c for c in causes if c[0] == "fails"}, key
                        assert bool({c for c in causes if c[0] == "fails"}) == any(c.kind == "fails" for c in v.causes)
    assert seen == set(truth)


def test_the_markdown_shows_the_calls_the_known_causes_and_the_missing_counterparts():
    numpy_path, defect_path = results()
    md = markdown(numpy_path, defect_path)
    labels = [f"numpy {read(numpy_path)['provenance']['backend']['version']}", "mapped-defect 0"]
    assert f"| loss | {labels[0]} | {labels[1]} |" in md

    poisson = loss_section(md, "PoissonNLLLoss")
    assert f"| mapped-defect 0 | ➖ **no counterpart**: {NO_POISSON} |" in poisson
    for row in re.findall(r"^\| (?:`[^`]*`|defaults).*$", poisson, re.M):
        assert row.endswith("| ➖ no counterpart |")
    assert "| [PoissonNLLLoss](#poissonnllloss) | " in md and md.split("[PoissonNLLLoss](#poissonnllloss) | ")[1].split("\n")[0].endswith("| ➖ no counterpart |")

    sbce = loss_section(md, "SigmoidBinaryCrossEntropyLoss")
    assert "`defect.bce_with_logits(pred, label)`<br>composition: times pos_weight where label = 1<br>notes: logits only" in sbce
    numpy_cell, defect_cell = option_row(sbce, "from_sigmoid=True")
    assert numpy_cell.startswith("✅ conforms") or numpy_cell.startswith("☑️ within stability bound")
    assert defect_cell.startswith("➖ unsupported — grad: float16, bfloat16, float32, float64 (")
    assert f"· unsupported: {NO_FROM_SIGMOID} — " in defect_cell

    hinge = loss_section(md, "HingeLoss")
    assert "`defect.hinge(pred * label, margin)`<br>not mapped: dtype: float16 has no kernel" in hinge
    _, defect_cell = option_row(hinge, "")
    known, unsupported = defect_cell.split("<br>✅")[0], defect_cell
    assert known.startswith("⚠️ known deviation — grad: bfloat16, float32, float64 (")
    assert f"· known deviation: {REASON_HINGE.replace('|', chr(92) + '|')} — " in known  # (| escaped in a table)
    assert "➖ unsupported — grad: float16 (" in unsupported and f"· unsupported: {NO_F16_HINGE}" in unsupported

    l2 = loss_section(md, "L2Loss")
    numpy_cell, defect_cell = option_row(l2, "")
    # (within the stability bound: a float16 long reduction of 16384 terms)
    assert re.match(r"(✅ conforms|☑️ within stability bound) — grad: float16, bfloat16, float32, float64 \(", numpy_cell)
    assert defect_cell.startswith("❌ fails — grad: ")
    failing = {r["dtype"] for r in read(defect_path)["records"]
               if r["loss"] == MX + "L2Loss" and r["options_label"] == "" and r["status"] == "fail"}
    shown = {d for ds in re.findall(r"❌ fails — grad: ([a-z0-9, ]+) \(", defect_cell) for d in ds.split(", ")}
    assert failing and shown == failing
    assert "· fails (value, grad:pred): nan at [" in defect_cell and "where the exact value is finite" in defect_cell


def test_the_counts_in_a_cell_are_the_records_counts():
    numpy_path, defect_path = results()
    recs = [r for r in read(defect_path)["records"] if r["loss"] == MX + "L2Loss" and r["options_label"] == ""]
    ran = [r for r in recs if r["status"] != "skip"]
    passed = sum(r["status"] == "pass" for r in ran)
    failing = sum(r["status"] == "fail" for r in ran)
    assert failing  # the defect shows in L2Loss's default options
    _, defect_cell = option_row(loss_section(markdown(numpy_path, defect_path), "L2Loss"), "")
    heads = [(int(a), int(b)) for a, b in re.findall(r"\((\d+)/(\d+) checks pass", defect_cell)]
    assert (sum(a for a, _ in heads), sum(b for _, b in heads)) == (passed, len(ran))
    assert sum(int(n) for n in re.findall(r"· fails \([^)]*\): .*? — (\d+) checks?", defect_cell)) == failing


def test_a_planted_record_changes_its_cell(tmp_path):
    """A cell is computed from its records: make one float32 check fail, another run in mode
    compiled, and the map says so where (and only where) they are."""
    numpy_path, _ = results()
    doc = read(numpy_path)
    target = next(r for r in doc["records"] if r["loss"] == MX + "L2Loss" and r["options_label"] == "weight=0.5"
                  and r["dtype"] == "float32" and r["check"] == "value")
    target.update(status="fail", verdict="fails", message="planted: 7 ULP at [1] where 4 are allowed")
    moved = next(r for r in doc["records"] if r["loss"] == MX + "HingeLoss" and r["options_label"] == ""
                 and r["dtype"] == "float64" and r["check"] == "value")
    moved["mode"] = "compiled"
    md = markdown(write(doc, tmp_path / "planted.json"))
    (cell,) = option_row(loss_section(md, "L2Loss"), "weight=0.5")
    assert cell.startswith("❌ fails — grad: float32 (")
    assert "· fails (value): planted: 7 ULP at [1] where 4 are allowed — 1 check" in cell
    assert "✅ conforms — grad: float16, bfloat16, float64 (" in cell
    (before,) = option_row(loss_section(markdown(numpy_path), "L2Loss"), "weight=0.5")
    assert before.startswith("✅ conforms — grad: float16, bfloat16, float32, float64 (")
    (hinge,) = option_row(loss_section(md, "HingeLoss"), "")
    n = sum(1 for r in doc["records"] if r["loss"] == MX + "HingeLoss" and r["options_label"] == "")
    # the modes the run did not select (numpy's own reasons, or "not selected"), but compiled, now run
    not_run = [m for m in MODES if m in doc["provenance"]["modes_not_run"] and m != "compiled"]
    assert not_run and "grad" not in not_run
    assert hinge == (f"✅ conforms — grad: float16, bfloat16, float32, float64; compiled: float64 ({n}/{n} checks pass)"
                     f"<br>➖ not run — {', '.join(not_run)}")


def test_a_mapping_written_in_the_build_information_is_read_too(tmp_path):
    """The torch backend's first results kept its map as build_info()["migration_map"] with the
    call under the framework's name; the map reads that as well."""
    _, defect_path = results()
    doc = read(defect_path)
    b = doc["provenance"]["backend"]
    b["name"] = "torch"
    b["build"]["migration_map"] = {MX + "L2Loss": {"torch": "F.mse_loss(pred, label, reduction='none')",
                                                    "composition": "halved", "notes": "",
                                                    "unsupported": {"weight": {"mapped": [None], "why": "weight=None only"}}}}
    del b["mapping"]
    md = markdown(write(doc, tmp_path / "torch.json"))
    assert "| torch 0 | `F.mse_loss(pred, label, reduction='none')`<br>composition: halved<br>not mapped: weight: weight=None only<br>modes run: grad<br>" in md


# ------------------------------------------------------------------ the command and the report


def test_lossconf_map_writes_markdown_byte_identical(tmp_path, capsys):
    paths = [str(p) for p in results()]
    assert cli.main(["map", *paths, "-o", str(tmp_path / "a.md")]) == 0
    assert cli.main(["map", *paths, "--output", str(tmp_path / "b.md")]) == 0
    capsys.readouterr()
    assert cli.main(["map", *paths]) == 0
    out = capsys.readouterr().out
    a = (tmp_path / "a.md").read_bytes()
    assert a == (tmp_path / "b.md").read_bytes() == out.encode("utf-8")
    assert a.startswith(b"## lossconf migration map\n")


def test_lossconf_map_help_and_bad_input(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main(["map", "--help"])
    assert stop.value.code == 0
    text = capsys.readouterr().out
    assert "migration map" in text and "--output" in text and "no counterpart" in text
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "lossconf-results", "format_version": 1, "records": [')
    assert cli.main(["map", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("lossconf map: ") and "bad.json: truncated" in err
    assert cli.main(["map", str(tmp_path / "missing.json")]) == 2
    assert "missing.json: no such results file" in capsys.readouterr().err
    assert cli.main(["map", str(results()[0]), "-o", str(tmp_path / "no" / "dir" / "x.md")]) == 2
    assert "cannot be written" in capsys.readouterr().err


def test_the_html_report_has_the_same_map(tmp_path):
    pytest.importorskip("jinja2")  # (the report extra; the framework environments run without it)
    paths = [str(p) for p in results()]
    assert cli.main(["report", *paths, "--out", str(tmp_path / "a")]) == 0
    assert cli.main(["report", *paths, "--out", str(tmp_path / "b")]) == 0
    page = (tmp_path / "a" / report.HTML_FILE).read_text(encoding="utf-8")
    assert page == (tmp_path / "b" / report.HTML_FILE).read_text(encoding="utf-8")
    assert '<a href="#migration">Migration map</a>' in page
    part = page[page.index('<section id="migration">'):]

    text = htmllib.unescape(re.sub(r"<[^>]+>", "", part))
    assert f"no counterpart: {NO_POISSON}" in text
    poisson_sets = {r["options_label"] for r in read(results()[1])["records"] if r["loss"] == MX + "PoissonNLLLoss"}
    assert part.count('<td class="unsupported small">– no counterpart</td>') == len(poisson_sets) > 1
    assert f"· known deviation: {REASON_HINGE} — " in text
    assert f"· unsupported: {NO_FROM_SIGMOID} — " in text
    assert "defect.hinge(pred * label, margin)" in text and "not mapped: dtype: float16 has no kernel" in text
    # the same verdict lines as the Markdown, cell by cell
    md = markdown(*results())
    for line in re.findall(r"(?:✅|☑️|⚠️|❌|➖) ([a-z ]+ — [^(<|]+\([^)]*\))", md):
        assert line in text, line
    # the merged report.json keeps the mapping, so the map can be drawn from it again
    again = markdown(tmp_path / "a" / report.JSON_FILE)
    assert again.split("\n", 4)[4] == md.split("\n", 4)[4]  # (only the provenance's sources differ)


def test_the_built_in_backends_mappings():
    from conformance.backends.numpy_backend import backend

    mapped = backend.mapping()
    assert all(e["call"].endswith(".run(inputs, options, cotangent, wrt)") and e["composition"] for e in mapped.values())


def test_the_chainer_mapping_is_the_readme_table():
    chainer_backend = pytest.importorskip("conformance.backends.chainer_backend", exc_type=ModuleNotFoundError)
    mapped = chainer_backend.backend.mapping()
    assert set(mapped) == set(chainer_backend.MAPPINGS)
    assert not set(mapped) & set(chainer_backend.NO_COUNTERPART)
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    table = readme[readme.index("### Chainer: how the MXNet-documented losses map"):]
    table = table[: table.index("\n\n", table.index("|---|"))]
    for loss, entry in mapped.items():
        name = loss.rsplit(".", 1)[-1]
        assert name in table, name
        fn = re.match(r"F\.(\w+)", entry["call"]).group(1)
        assert f"F.{fn}(" in table or f"F.{fn}" in table, (name, fn)


def test_the_mxnet_mapping_is_the_documented_gluon_call():
    mxnet_backend = pytest.importorskip("conformance.backends.mxnet_backend", exc_type=ModuleNotFoundError)
    mapped = mxnet_backend.backend.mapping()
    assert set(mapped) == set(mxnet_backend.BINDINGS)
    assert mapped[MX + "HuberLoss"]["call"] == "mxnet.gluon.loss.HuberLoss(rho, weight, batch_axis)(pred, label, sample_weight)"
    assert "epsilon passed positionally" in mapped[MX + "PoissonNLLLoss"]["composition"]
    assert "float16: MXNet 1.9.1 CTCLoss is float32-only" in mapped[MX + "CTCLoss"]["notes"]
