"""The report renders every figure the harness can write into a results file: an error of
0, a subnormal, a huge finite one (1e308), inf, nan, no figure at all (null: a check
without a measured error, or an ``error_ulps`` left null where ULPs mean nothing), in any
mix of backends, losses, dtypes, checks, verdicts and tags -- a property test over random
results files, with matplotlib's plots drawn (the tox ``tests`` env installs
``.[test,report]``; without matplotlib the plots are skipped and the test says so)."""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conformance import report
from conformance.report.model import _err

try:
    import matplotlib  # noqa: F401

    HAVE_MPL = True
except ImportError:  # pragma: no cover - the tests env has it
    HAVE_MPL = False

#: every kind of figure the harness writes: JSON numbers, "inf"/"-inf"/"nan" strings, null
EDGES = [0.0, 5e-324, 2.2e-308, 1e-300, 0.5, 4.0, 1e30, 1.46e306, 1.9e307, 1e308, 1.7976931348623157e308,
         "inf", "nan", None]
FIGURES = st.one_of(st.sampled_from(EDGES), st.floats(min_value=0.0, allow_nan=False, allow_infinity=False))
STATUS_VERDICT = [
    ("pass", "conforms"), ("pass", "within stability bound"), ("fail", "fails"), ("known", "fails"),
    ("error", "error"), ("skip", "unsupported"), ("pass", "raised"), ("fail", "silently returned"),
    ("raised", "raised on +inf"),  # a raise where the documented value is +inf: with the failures
    ("quarantined", "quarantined"),  # an outcome this report does not know (a newer harness's): shown by its name
]
MODES = [None, "forward", "grad", "compiled", "hvp", "backward-twice"]  # None: results written before modes
LOSSES = ["mxnet.gluon.loss.L2Loss", "mxnet.gluon.loss.CTCLoss", "chainer.functions.softmax_cross_entropy"]
TAGS = ["regular", "tiny", "extreme", "boundary", "kink", "singular", "tie", "label", "shape", "subnormal"]


@st.composite
def records(draw, n_max=8):
    out = []
    for i in range(draw(st.integers(min_value=0, max_value=n_max))):
        loss = draw(st.sampled_from(LOSSES))
        dtype = draw(st.sampled_from(["float16", "float32", "float64"]))
        check = draw(st.sampled_from(["value", "grad:pred", "grad:x", "shape", "repeat", "inputs", "invalid"]))
        status, verdict = draw(st.sampled_from(STATUS_VERDICT))
        tag = draw(st.sampled_from(TAGS))
        ulps, scale = draw(FIGURES), draw(FIGURES)
        mode = draw(st.sampled_from(MODES))
        out.append({
            "id": f"{loss.rsplit('.', 1)[-1]}[]-{dtype}-{tag}-{i:03d}-{check}", "loss": loss, "options": {},
            "options_label": draw(st.sampled_from(["", "axis=1", "weight=0.5"])), "dtype": dtype, "case": i,
            "name": f"case-{i}", "tags": [tag], "check": check, "status": status, "verdict": verdict,
            "error_ulps": ulps, "error_scale": scale, "bound": draw(st.sampled_from([None, 3.0, 5.5, 1e308])),
            "tolerance": draw(st.sampled_from([None, {"ulps": 4.0, "stability": 1.0, "reason": "default policy"}])),
            "worst_index": draw(st.sampled_from([None, [], [0], [1, 2]])), "expected": draw(st.sampled_from([None, "0", "1e-320", "inf"])),
            "observed": draw(st.sampled_from([None, "0e+00", "-7.2e-18", "nan", "inf", "4.9e-324"])),
            "message": draw(st.sampled_from(["", "error beyond tolerance in 1 element(s)"])), "reason": None,
            **({"mode": mode} if mode else {}),
        })
        if mode:
            out[-1]["id"] = out[-1]["id"].replace(f"-{i:03d}-", f"-{i:03d}[{mode}]-")
    return out


def results_file(path: Path, backend: str, recs: list, not_run: dict | None = None) -> Path:
    modes = sorted({r["mode"] for r in recs if r.get("mode")})
    path.write_text(json.dumps({
        "format": report.RESULTS_FORMAT, "format_version": report.RESULTS_VERSION,
        "provenance": {"backend": {"name": backend, "version": "1.0", "build": {}}, "fixtures_digest": "0" * 64,
                       "policy_version": "2", "created": "2026-01-01T00:00:00Z", "expectations": None,
                       **({"modes": modes, "modes_not_run": {m: why for m, why in (not_run or {}).items() if m not in modes}}
                          if not_run is not None else {})},
        "unused_expectations": [], "records": recs,
    }))
    return path


@pytest.mark.skipif(not HAVE_MPL, reason="matplotlib is not installed here (pip install '.[report]')")
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(records(), min_size=1, max_size=3),
       st.one_of(st.none(), st.dictionaries(st.sampled_from(MODES[1:]), st.sampled_from([None, "no such path <here>"]))))
def test_every_figure_renders(parts, not_run):
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        paths = [results_file(tmp / f"r{i}.json", f"backend{i}", recs, not_run) for i, recs in enumerate(parts)]
        files = report.render(paths, tmp / "out")
        html = files["html"].read_text()
        measured = [r for recs in parts for r in recs if r["check"] == "value" or r["check"].startswith("grad:")]
        if any(_err(r) is not None for r in measured):  # something to plot: the plots are drawn
            assert 'src="data:image/png;base64,' in html
        json.loads(files["json"].read_text())  # the merged report is valid JSON
        assert files["markdown"].read_text().strip()


@pytest.mark.skipif(not HAVE_MPL, reason="matplotlib is not installed here (pip install '.[report]')")
@pytest.mark.parametrize("figure", [0.0, 5e-324, 1.46e306, 1.9e307, 1e308, 1.7976931348623157e308, "inf", "nan"])
def test_the_regime_plot_takes_any_figure(figure, tmp_path):
    # the crash of issue 11: a passing check measured as 1.46e306 ULP overflowed the log axis
    recs = [{
        "id": f"CTCLoss[]-float64-{tag}-072-grad:pred", "loss": "mxnet.gluon.loss.CTCLoss", "options": {},
        "options_label": "", "dtype": "float64", "case": 72, "name": "tie-float64", "tags": [tag],
        "check": "grad:pred", "status": "pass", "verdict": "within stability bound", "error_ulps": e,
        "error_scale": 0.37, "bound": 5.5, "tolerance": None, "worst_index": [0], "expected": "0",
        "observed": "-7.2e-18", "message": "", "reason": None,
    } for tag, e in (("tie", figure), ("regular", 0.5))]
    files = report.render([results_file(tmp_path / "r.json", "numpy", recs)], tmp_path / "out")
    assert files["html"].read_text().count('src="data:image/png;base64,') >= 2


def test_figures_are_formatted_without_overflow():
    for x in (0.0, 5e-324, 1e308, 1.7976931348623157e308, math.inf, math.nan):
        assert report.fmt_ulps(x)
