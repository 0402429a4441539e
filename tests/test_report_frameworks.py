"""The merged report of the five backends side by side (issue 14: "the merged report shows
numpy, MXNet, Chainer, PyTorch and JAX side by side with the migration map"; issue 13: the
report shows modes), from real runs of the real frameworks on a small selection (L2Loss
and PoissonNLLLoss in float32, which Chainer has no counterpart for), the way tox runs
them: torch's eager modes in one results file and its compiled mode on tox's sample
(``--mode compiled --dtype float32 --tag regular``) in another, which the report merges
into one torch backend.

Each framework runs in a Python that imports it: ``LOSSCONF_FRAMEWORK_PYTHON`` (a path
with ``{backend}``, e.g. ``/work/fw/{backend}/bin/python`` for the shared framework
virtualenvs, or ``.tox/{backend}/bin/python`` after ``tox -e mxnet,chainer,torch,jax``),
else this interpreter. The checkout is put on ``PYTHONPATH``. Skipped, naming the missing
frameworks, when any of them cannot be imported (the tox ``tests`` env has none). About
two minutes (torch.compile's graphs and JAX's compilations).

What the page must show is read here from the results files."""

from __future__ import annotations

import functools
import html as htmllib
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from conformance import cli, report

ROOT = Path(__file__).resolve().parent.parent
EXPECTATIONS = ROOT / "conformance" / "expectations"
#: backend -> (the module it imports, its expectation file or None)
FRAMEWORKS = {
    "numpy": ("numpy", None),
    "mxnet": ("mxnet", "mxnet-1.9.1.toml"),
    "chainer": ("chainer", "chainer-7.8.1.toml"),
    "torch": ("torch", "torch-2.13.0.toml"),
    "jax": ("jax", "jax-0.10.2.toml"),
}
SELECTION = ["--loss", "L2Loss", "--loss", "PoissonNLLLoss", "--dtype", "float32"]
TORCH_EAGER = ["--mode", "forward", "--mode", "grad", "--mode", "hvp", "--mode", "backward-twice"]
#: tox -e torch's compiled sample (tests/test_torch_expectations.py COMPILED_FLAGS), on L2Loss only
TORCH_COMPILED = ["--loss", "L2Loss", "--mode", "compiled", "--dtype", "float32", "--tag", "regular"]


@functools.cache
def python_for(backend: str) -> str | None:
    """A Python that imports the backend's framework, or None."""
    module = FRAMEWORKS[backend][0]
    template = os.environ.get("LOSSCONF_FRAMEWORK_PYTHON", "")
    candidates = [template.format(backend=backend)] if template else []
    candidates.append(sys.executable)
    for exe in candidates:
        if not Path(exe).exists():
            continue
        proc = subprocess.run([exe, "-c", f"import {module}"], capture_output=True, env=_env(), timeout=300)
        if proc.returncode == 0:
            return exe
    return None


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("MPLBACKEND", "Agg")
    return env


def missing() -> list[str]:
    return [b for b in FRAMEWORKS if python_for(b) is None]


needs_frameworks = pytest.mark.skipif(
    bool(missing()),
    reason=f"cannot import {', '.join(missing())}: set LOSSCONF_FRAMEWORK_PYTHON (e.g. /work/fw/{{backend}}/bin/python, "
    "or .tox/{backend}/bin/python after tox -e mxnet,chainer,torch,jax)",
)


@functools.cache
def workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="lossconf-report-frameworks-"))


def _run(backend: str, name: str, flags: list[str]) -> Path:
    path = workdir() / f"results-{name}.json"
    cmd = [python_for(backend), "-m", "conformance.cli", "run", backend, *flags, "--results", str(path), "-q"]
    exp = FRAMEWORKS[backend][1]
    if exp:
        cmd += ["--expectations", str(EXPECTATIONS / exp)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_env(), cwd=ROOT, timeout=1800)
    assert path.exists(), f"{' '.join(cmd)} wrote no results (exit {proc.returncode}): {(proc.stdout + proc.stderr)[-2000:]}"
    return path


@functools.cache
def results() -> list[Path]:
    """The results files in tox's report order: numpy, mxnet, chainer, torch (eager, then
    its compiled sample), jax."""
    return [
        _run("numpy", "numpy", SELECTION),
        _run("mxnet", "mxnet", SELECTION),
        _run("chainer", "chainer", SELECTION),
        _run("torch", "torch", [*SELECTION, *TORCH_EAGER]),
        _run("torch", "torch-compiled", TORCH_COMPILED),
        _run("jax", "jax", SELECTION),
    ]


@functools.cache
def five_backend_report() -> Path:
    out = workdir() / "report"
    assert cli.main(["report", *map(str, results()), "--out", str(out)]) == 0
    return out / report.HTML_FILE


def read(path: Path) -> dict:
    return json.loads(path.read_text())


def label(doc: dict) -> str:
    b = doc["provenance"]["backend"]
    return f"{b['name']} {b['version']}"


def labels() -> list[str]:
    """The five backends' labels, in order (torch once)."""
    return list(dict.fromkeys(label(read(p)) for p in results()))


@needs_frameworks
def test_five_backends_side_by_side_with_their_modes():
    html = five_backend_report().read_text(encoding="utf-8")
    docs = [read(p) for p in results()]
    names = labels()
    assert [n.split()[0] for n in names] == ["numpy", "mxnet", "chainer", "torch", "jax"]
    # one column per backend in the summary, the matrix, the cross-framework table and the map
    summary = html[html.index('<section id="summary">'): html.index('<section id="cross">')]
    assert re.findall(r'<tr><td><a href="#b-[^"]+">([^<]+)</a></td>', summary) == names
    matrix = html[html.index('<section id="matrix">'): html.index('<h2 id="details">')]
    assert re.findall(r"<h3>([^<]+)</h3>", matrix) == names
    migration = html[html.index('<section id="migration">'):]
    overview = migration[: migration.index("</tr>")]
    assert re.findall(r"<th>([^<]+)</th>", overview) == ["loss", *names]
    # torch: one backend, its eager modes and its compiled sample, each check counted once
    torch_docs = [d for d in docs if d["provenance"]["backend"]["name"] == "torch"]
    assert len(torch_docs) == 2
    n_torch = sum(len(d["records"]) for d in torch_docs)
    (torch_label,) = [n for n in names if n.startswith("torch ")]
    row = re.search(rf'<tr><td><a href="#b-[^"]+">{re.escape(torch_label)}</a></td><td class="n">(\d+)</td>', summary)
    assert row and int(row.group(1)) == n_torch
    part = matrix[matrix.index(f"<h3>{torch_label}</h3>"):]
    part = part[: part.index("</table>")]
    ran = {r["mode"] for d in torch_docs for r in d["records"]}
    assert "compiled" in ran and ran >= {"forward", "grad", "hvp", "backward-twice"}
    heads = re.findall(r'<th class="mode" colspan="\d+">([^<]+)</th>', part)
    assert heads == [m for m in ("forward", "grad", "compiled", "hvp", "backward-twice") if m in ran]
    assert "not-run" not in part  # compiled is not "not run": the second file ran it
    # every backend: each mode it did not run, with the reason its results give
    for d in docs:
        lab = label(d)
        ran_here = {r["mode"] for x in docs if label(x) == lab for r in x["records"]}
        part = matrix[matrix.index(f"<h3>{lab}</h3>"):]
        part = part[: part.index("</table>")]
        for mode, why in (d["provenance"].get("modes_not_run") or {}).items():
            if mode in ran_here:
                continue
            text = why or "the backend runs it, but this run did not select it"
            assert f"– not run: {text}" in htmllib.unescape(part), (lab, mode)


@needs_frameworks
def test_the_migration_map_has_each_frameworks_call_and_verdicts():
    html = five_backend_report().read_text(encoding="utf-8")
    migration = htmllib.unescape(re.sub(r"<[^>]+>", " ", html[html.index('<section id="migration">'):]))
    migration = " ".join(migration.split())
    for path in results():
        doc = read(path)
        mapping = doc["provenance"]["backend"].get("mapping") or {}
        losses = {r["loss"] for r in doc["records"]}
        for loss in losses:
            recs = [r for r in doc["records"] if r["loss"] == loss]
            if loss in mapping:
                assert " ".join(mapping[loss]["call"].split()) in migration, (label(doc), loss)
            elif all(r["status"] == "skip" for r in recs):  # e.g. chainer's PoissonNLLLoss
                why = " ".join(str(recs[0]["message"]).split())
                assert f"no counterpart : {why}" in migration or f"no counterpart: {why}" in migration, (label(doc), loss)
    # the Markdown map (lossconf map) from the same files
    out = workdir() / "migration.md"
    assert cli.main(["map", *map(str, results()), "-o", str(out)]) == 0
    md = out.read_text()
    assert md.splitlines()[[i for i, ln in enumerate(md.splitlines()) if ln.startswith("| loss |")][0]] == (
        "| loss | " + " | ".join(labels()) + " |"
    )
    assert "compiled: float32" in md  # torch's compiled sample, in the cells of its option sets
