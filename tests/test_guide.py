"""``docs/WRITING_A_BACKEND.md`` is generated (``lossconf guide``) and current, and its
per-loss tables say what the fixture files hold (read here with ``json``)."""

from __future__ import annotations

import functools
import json
import tempfile
from pathlib import Path

from conformance import cli

ROOT = Path(__file__).resolve().parent.parent
GUIDE = ROOT / "docs" / "WRITING_A_BACKEND.md"


@functools.cache
def generated() -> str:
    """The guide as `lossconf guide -o FILE` writes it now (generation runs the worked example)."""
    out = Path(tempfile.mkdtemp(prefix="lossconf-guide-test-")) / "guide.md"
    assert cli.main(["guide", "-o", str(out)]) == 0
    return out.read_text(encoding="utf-8")


def test_the_committed_guide_is_current():
    assert GUIDE.read_text(encoding="utf-8") == generated(), (
        "docs/WRITING_A_BACKEND.md is stale: run `lossconf guide -o docs/WRITING_A_BACKEND.md`"
    )


def test_the_tables_say_what_the_fixtures_hold():
    text = GUIDE.read_text(encoding="utf-8")
    cases = [c for c in json.loads((ROOT / "fixtures" / "l2_loss.json").read_text())["cases"] if "invalid" not in c]
    section = text[text.index("### L2Loss"):text.index("### L1Loss")]
    sw = sorted({tuple(c["inputs"]["sample_weight"]["shape"]) for c in cases if "sample_weight" in c["inputs"]})
    row = next(line for line in section.splitlines() if line.startswith("| `sample_weight`"))
    assert ", ".join(str(s) for s in sw) in row
    assert f"{sum('sample_weight' in c['inputs'] for c in cases)} of {len(cases)}" in row
    assert all(c["inputs"]["pred"]["dtype"] == c["dtype"] for c in cases) and "| `call.dtype` |" in row
    ctc = json.loads((ROOT / "fixtures" / "ctc_loss.json").read_text())["cases"]
    assert {c["inputs"]["label"]["dtype"] for c in ctc if "invalid" not in c} == {"int64"}
    assert "`CTCLoss.label`" in text


def test_the_worked_example_fails_then_passes():
    text = GUIDE.read_text(encoding="utf-8")
    example = text[text.index("## A worked example"):]
    assert "$ lossconf run mine:backend        # exit 1" in example and "FAILED L2Loss[]-float16-extreme-008-grad:pred" in example
    assert "--case 'L2Loss[]-float16-extreme-008-grad:pred'        # exit 0" in example
    assert "$ lossconf run mine:backend --loss L2Loss        # exit 0" in example
