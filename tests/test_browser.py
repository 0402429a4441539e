"""The report in a real browser (issue 15, deliverable 4): headless Chromium (Debian's
``chromium`` package, which ``.ci/run`` installs) loads the sample report of
``tests/test_report_layout.py`` (a backend that fails some checks), and the test checks,
from the layout the browser computed, that the first screen shows every failing case of
every backend, and, from the screenshot's pixels, that the failures are drawn there.

Skipped, saying why, only when no Chromium is installed.

``python -m tests.test_browser docs/report-top.png`` writes the screenshot of the top of
the sample report that the docs show."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests import test_report_layout as layout

WIDTH, HEIGHT = 1400, 1000
FAILS_RGB = (0xF4, 0xA3, 0xA3)  # the report's colour of a failing check

#: run after the page has loaded: where the browser put the failures, as JSON in a <pre>
PROBE = """<script>
const rows = [...document.querySelectorAll('#failures table.causes tr.fails')].map(tr => {
  const r = tr.getBoundingClientRect(); return {top: r.top, bottom: r.bottom, text: tr.innerText};
});
const heads = [...document.querySelectorAll('#failures .headline')].map(p => {
  const r = p.getBoundingClientRect(); return {top: r.top, bottom: r.bottom, text: p.innerText};
});
const probe = document.createElement('pre');
probe.id = 'lossconf-probe';
probe.textContent = JSON.stringify({height: window.innerHeight, width: window.innerWidth, rows, heads,
  matrix: document.getElementById('matrix').getBoundingClientRect().top});
document.body.appendChild(probe);
</script>"""


def chromium() -> str | None:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    return None


def browse(page: Path, *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess:
    """Chromium, headless, on a local page, with nothing that reaches the network."""
    exe = chromium()
    assert exe is not None
    with tempfile.TemporaryDirectory(prefix="lossconf-chromium-") as profile:
        cmd = [
            exe, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", f"--user-data-dir={profile}",
            f"--window-size={WIDTH},{HEIGHT}", "--hide-scrollbars", *args, page.resolve().as_uri(),
        ]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def screenshot(page: Path, png: Path) -> Path:
    proc = browse(page, f"--screenshot={png}")
    if not png.exists():
        raise RuntimeError(f"chromium wrote no screenshot (exit {proc.returncode}): {proc.stderr[-500:]}")
    return png


needs_chromium = pytest.mark.skipif(
    chromium() is None,
    reason="Chromium is not installed (apt-get install -y chromium; .ci/run installs it): the report is not browsed",
)


@needs_chromium
def test_the_first_screen_shows_every_failure(tmp_path):
    report_html = layout.sample_report().read_text(encoding="utf-8")
    probed = tmp_path / "probed.html"
    probed.write_text(report_html.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    proc = browse(probed, "--dump-dom", "--virtual-time-budget=5000")
    assert proc.returncode == 0, proc.stderr[-2000:]
    m = re.search(r'<pre id="lossconf-probe">(.*?)</pre>', proc.stdout, re.S)
    assert m, "the browser did not run the probe: " + proc.stdout[:300]
    import html

    seen = json.loads(html.unescape(m.group(1)))
    assert seen["height"] <= HEIGHT and seen["width"] <= WIDTH

    numpy_path, defect_path = layout.sample_results()
    fails = [r for r in layout.rh.read(defect_path)["records"] if r["status"] in ("fail", "error")]
    assert fails
    # every backend's headline and every cause row lie within the first screen ...
    assert len(seen["heads"]) == 2 and all(h["bottom"] <= seen["height"] for h in seen["heads"])
    assert seen["rows"] and all(r["bottom"] <= seen["height"] for r in seen["rows"]), seen["rows"]
    # ... and together they name every failing case
    text = "\n".join(r["text"] for r in seen["rows"])
    for rec in fails:
        assert layout.case_id(rec) in text, rec["id"]
    assert "no failing checks" in seen["heads"][0]["text"] and f"{len(fails)} failing checks" in seen["heads"][1]["text"]
    assert seen["matrix"] > seen["rows"][-1]["bottom"]  # the matrix comes after them


@needs_chromium
def test_the_screenshot_of_the_top_shows_the_failures_in_red(tmp_path):
    from matplotlib.image import imread

    png = screenshot(layout.sample_report(), tmp_path / "top.png")
    pixels = imread(str(png))
    assert pixels.shape[:2] == (HEIGHT, WIDTH)
    rgb = (pixels[..., :3] * 255).round().astype(int)
    red = (abs(rgb - FAILS_RGB).max(axis=-1) <= 2).sum()
    assert red > 0.02 * WIDTH * HEIGHT  # failing rows fill a good part of the first screen


#: the five-backend report (tests/test_report_frameworks.py): per backend in the matrix, the
#: modes it ran (column groups) and did not run (with the reason), as the browser laid them out
PROBE_MODES = """<script>
const backends = [...document.querySelectorAll('#matrix h3')].map(h => {
  let t = h.nextElementSibling;
  while (t && !t.querySelector('table.matrix')) t = t.nextElementSibling;
  const table = t.querySelector('table.matrix');
  const shown = el => { const r = el.getBoundingClientRect(); return r.width > 0 && r.height > 0; };
  return {label: h.innerText,
          modes: [...table.querySelectorAll('th.mode:not(.not-run)')].filter(shown).map(th => th.innerText),
          not_run: [...table.querySelectorAll('td.not-run')].filter(shown).map(td => td.innerText),
          cells: [...table.querySelectorAll('td.cell')].filter(shown).length};
});
const map = [...document.querySelectorAll('#migration table.migration-overview th')].map(th => th.innerText);
const probe = document.createElement('pre');
probe.id = 'lossconf-probe';
probe.textContent = JSON.stringify({backends, map});
document.body.appendChild(probe);
</script>"""


@needs_chromium
def test_the_five_backends_and_their_modes_are_drawn(tmp_path):
    from tests import test_report_frameworks as fw

    if fw.missing():
        pytest.skip(f"cannot import {', '.join(fw.missing())}: set LOSSCONF_FRAMEWORK_PYTHON (tests/test_report_frameworks.py)")
    page = fw.five_backend_report().read_text(encoding="utf-8")
    probed = tmp_path / "probed.html"
    probed.write_text(page.replace("</body>", PROBE_MODES + "</body>"), encoding="utf-8")
    proc = browse(probed, "--dump-dom", "--virtual-time-budget=5000")
    assert proc.returncode == 0, proc.stderr[-2000:]
    m = re.search(r'<pre id="lossconf-probe">(.*?)</pre>', proc.stdout, re.S)
    assert m, "the browser did not run the probe: " + proc.stdout[:300]
    import html

    seen = json.loads(html.unescape(m.group(1)))
    labels = fw.labels()
    assert [b["label"] for b in seen["backends"]] == labels
    assert seen["map"] == ["loss", *labels]
    docs = [fw.read(p) for p in fw.results()]
    for b in seen["backends"]:
        mine = [d for d in docs if fw.label(d) == b["label"]]
        ran = {r["mode"] for d in mine for r in d["records"]}
        assert b["modes"] == [x for x in ("forward", "grad", "compiled", "hvp", "backward-twice") if x in ran], b["label"]
        not_run = {why or "" for d in mine for x, why in (d["provenance"].get("modes_not_run") or {}).items() if x not in ran}
        assert len(b["not_run"]) == len(not_run), b["label"]
        for text, why in zip(sorted(b["not_run"]), sorted(not_run)):
            assert why in " ".join(text.split()) or not why, (b["label"], text)
        assert b["cells"] > 0
    torch = next(b for b in seen["backends"] if b["label"].startswith("torch "))
    assert "compiled" in torch["modes"] and not torch["not_run"]  # the compiled sample, merged


def main(argv: list[str]) -> int:
    """Write the screenshot of the top of the sample report to argv[0]."""
    if chromium() is None:
        print("chromium is not installed: apt-get install -y chromium", file=sys.stderr)
        return 3
    out = Path(argv[0] if argv else "docs/report-top.png")
    screenshot(layout.sample_report(), out.resolve())
    print(f"screenshot of {layout.sample_report()} written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
