"""The catalog against the documents: every option and input a seed document or an installed
docstring lists is in the oracle's catalog (the documentation is the truth, even where a
framework's code lacks it), every divergence between documents, code and catalog has a
recorded decision, and the captured installed signatures are those of the installed packages."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import re
from pathlib import Path

import pytest

from oracle import catalog
from oracle import spec_sources as S
from oracle.spec_table import render_markdown

SHARED_SEEDS = Path("/work/shared/seeds")


def test_catalog_lists_every_documented_option_and_input():
    missing = {loss_id: S.missing_from_catalog(loss_id) for loss_id in catalog.loss_ids()}
    assert {k: v for k, v in missing.items() if v} == {}, (
        "options or inputs the documents list but the catalog lacks (add them to the loss's SPEC, "
        "with the documented semantics, even where a framework's code lacks them)"
    )


def test_every_loss_is_in_a_seed_document():
    docs = S.documented_signatures()
    for loss_id in catalog.loss_ids():
        seeds = [li for li in docs.get(loss_id, []) if li.source.startswith("seed ")]
        assert seeds, f"{loss_id}: no seed document describes it"
        assert any(li.constructor is not None for li in seeds), f"{loss_id}: no documented signature parsed"


def test_the_parser_reads_every_bullet_of_the_seed_documents():
    """No listed parameter or input is skipped silently: every bullet line of a seed document
    that names something (not the Inputs/Outputs headers, not the output 'loss') is parsed
    into a listing, under the loss whose section it is in."""
    for fname in S.SEED_FILES:
        text = (S.DOCUMENTED_DIR / fname).read_text(encoding="utf-8")
        bullets = set()
        section_loss = None
        for no, line in enumerate(text.splitlines(), 1):
            m = S._CLASS.match(line) or S._FUNCTION.match(line)
            if m:
                section_loss = S._resolve(m.group(1))
                continue
            b = re.match(r"^\s*•\s+(\w+)\b(.*)$", line)
            if b and section_loss and b.group(1) not in ("Inputs", "Outputs", "loss"):
                bullets.add(f"{fname}:{no}")
        quoted = {
            q.where
            for listings in S.documented_signatures().values()
            for li in listings
            for qs in li.quotes.values()
            for q in qs
            if q.where.startswith(fname)
        }
        assert bullets and bullets <= quoted, (fname, sorted(bullets - quoted))


def test_parsed_signatures_match_the_text():
    """Spot checks against lines of the seed documents."""
    docs = S.documented_signatures()
    triplet = [li for li in docs["mxnet.gluon.loss.TripletLoss"] if li.source.startswith("seed ")][0]
    assert [p.render() for p in triplet.forward] == ["pred", "positive", "negative", "sample_weight=None"]
    assert [p.name for p in triplet.constructor] == ["margin", "weight", "batch_axis"]
    sce = [li for li in docs["chainer.functions.softmax_cross_entropy"] if li.source.startswith("seed ")][0]
    assert [p.name for p in sce.forward] == ["x", "t"]
    assert dict((p.name, p.default) for p in sce.constructor)["ignore_label"] == "-1"  # rendered "- 1"
    doc = S.documented("mxnet.gluon.loss.PoissonNLLLoss")
    assert "epsilon" in doc.options and "epsilon" in doc.inputs  # Parameters list and forward(...)
    assert S.parse_signature("F, pred, label[, sample_weight]") == [
        S.Param("pred"), S.Param("label"), S.Param("sample_weight", "None")
    ]


def test_the_coverage_check_can_fail(monkeypatch):
    """Dropping a documented input from the catalog (as the TripletLoss spec once dropped
    sample_weight because MXNet 1.9.1's code lacks it) is caught."""
    real = catalog.spec
    triplet = real("TripletLoss")
    dropped = dataclasses.replace(triplet, inputs=tuple(i for i in triplet.inputs if i.name != "sample_weight"))
    monkeypatch.setattr(catalog, "spec", lambda name: dropped if real(name).id == triplet.id else real(name))
    assert S.missing_from_catalog(triplet.id) == ["sample_weight"]
    poisson = real("PoissonNLLLoss")
    no_eps = dataclasses.replace(poisson, options=tuple(o for o in poisson.options if o.name != "epsilon"))
    monkeypatch.setattr(catalog, "spec", lambda name: no_eps if real(name).id == poisson.id else real(name))
    assert S.missing_from_catalog(poisson.id) == ["epsilon"]


def test_triplet_sample_weight_is_a_divergence_of_the_code_not_of_the_catalog():
    kinds = {d.kind for d in S.divergences("mxnet.gluon.loss.TripletLoss") if d.name == "sample_weight"}
    assert "code-lacks" in kinds and "oracle-only" not in kinds


def test_every_divergence_has_a_decision_and_every_decision_a_divergence():
    found = {d.key: d for d in S.all_divergences()}
    assert {k for k, d in found.items() if not d.decision} == set(), "record a decision in spec_sources.DECISIONS"
    assert set(S.DECISIONS) - set(found) == set(), "decisions for divergences that no longer occur"
    for d in found.values():
        assert d.kind in S.KINDS and d.quotes or d.kind in ("code-only", "oracle-only"), d.key


def test_the_table_shows_signatures_and_decisions():
    text = render_markdown()
    for loss_id in catalog.loss_ids():
        section = text.split(f"`{loss_id}` -- ", 1)[1].split("\n## ", 1)[0]
        assert "Signatures, documented and installed:" in section, loss_id
        assert "| the catalog (the oracle) |" in section, loss_id
        assert "code (`inspect.signature`)" in section, loss_id
    for d in S.all_divergences():
        assert d.decision in text, d.key
    assert f"{len(S.all_divergences())} divergences of signature" in text


@pytest.mark.skipif(not SHARED_SEEDS.is_dir(), reason="the shared seed documents are not on this machine")
def test_the_committed_seed_copies_are_the_seed_documents():
    for fname in S.SEED_FILES:
        assert (S.DOCUMENTED_DIR / fname).read_bytes() == (SHARED_SEEDS / fname).read_bytes(), fname


@pytest.mark.parametrize("framework", sorted(S.INSTALLED_FILES))
def test_the_captured_signatures_are_the_installed_ones(framework):
    """Run with a framework's interpreter (e.g. ``PYTHONPATH=. /work/fw/mxnet/bin/python -m
    pytest tests/test_spec_sources.py``); elsewhere the framework is not importable."""
    if importlib.util.find_spec(framework) is None:
        pytest.skip(f"{framework} is not installed in this interpreter")
    try:
        got = S.capture(framework)
    except ImportError as err:  # installed but not importable here (e.g. MXNet with numpy 2)
        pytest.skip(f"{framework} does not import here: {err}")
    committed = json.loads((S.DOCUMENTED_DIR / S.INSTALLED_FILES[framework]).read_text())
    assert json.loads(json.dumps(got)) == committed, (
        f"re-capture: python -m oracle.spec_sources capture {framework}"
    )


def test_a_changed_default_is_a_divergence(monkeypatch):
    real = catalog.spec
    huber = real("HuberLoss")
    rho = next(o for o in huber.options if o.name == "rho")
    changed = dataclasses.replace(
        huber, options=tuple(dataclasses.replace(o, default=2.0) if o is rho else o for o in huber.options)
    )
    monkeypatch.setattr(catalog, "spec", lambda name: changed if real(name).id == huber.id else real(name))
    found = [d for d in S.divergences(huber.id) if d.kind == "default"]
    assert [d.name for d in found] == ["rho"] and "catalog: 2.0" in found[0].detail
    assert S.divergences(huber.id) != [] and S.DECISIONS.get(found[0].key) is None
