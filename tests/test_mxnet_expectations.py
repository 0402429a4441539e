"""The mxnet backend and its expectation file ``conformance/expectations/mxnet-1.9.1.toml``,
and its NumPy-mode variant ``mxnet-np`` with ``conformance/expectations/mxnet-np-1.9.1.toml``.

* The full conformance run over the fixtures has no unexplained failure and no unused entry
  (what ``lossconf run mxnet --strict-expectations`` gates on).
* Every failing check matches exactly one entry, so removing any one entry makes the run
  fail on exactly the checks that entry covered -- verified by re-evaluating the known
  deviations without each entry in turn (the backend's runs are reused, not repeated).
* Every fixture dtype is attempted: supports() declines no dtype, and the float32-only
  losses' float16/float64 calls really raise in MXNet (findings listed in the file).
* Modes: forward, grad, compiled (hybridized) and backward-twice run; hvp is declined with
  the reason MXNet gives, which a second-order call really raises.
* ``build_info()`` records the version and the build's features (oneDNN on or off).
* ``mxnet-np`` (the first three checks above run on it and its file too): every dtype is
  attempted (bfloat16 really fails in ``mxnet.numpy``, a legacy-operator loss really fails in
  MXNet's wrapper), its inputs are ``mxnet.np`` arrays that give legacy mode's values where the
  NumPy-mode branch computes the same thing, and its hvp reason is what NumPy mode raises.
* A missing or broken MXNet surfaces as ``ModuleNotFoundError`` for ``mxnet`` (this test
  runs without MXNet too).

Everything but the import-failure, tox.ini and report tests is skipped when MXNet cannot be
imported (run it with ``tox -e mxnet``). The two full sessions (mxnet, mxnet-np) take about
1 min CPU together (6.5 min wall at load 7; benchmarks/README.md).
"""

from __future__ import annotations

import configparser
import json
from pathlib import Path

import numpy as np
import pytest

from conformance import cli, report
from conformance.backends import load_backend
from conformance.fixtures import catalog_files, default_dir, load_file
from conformance.harness import expectations as ex
from conformance.harness.runner import make_call
from conformance.harness.session import Filters, Session
from conformance.protocol import Call
from conformance.report import model
from tests import expectation_checks as xc

ROOT = Path(__file__).resolve().parent.parent
EXPECTATIONS = ROOT / "conformance" / "expectations" / "mxnet-1.9.1.toml"
NP_EXPECTATIONS = ROOT / "conformance" / "expectations" / "mxnet-np-1.9.1.toml"
#: each variant of the backend with its expectation file
VARIANTS = {"mxnet": EXPECTATIONS, "mxnet-np": NP_EXPECTATIONS}

needs_mxnet = xc.needs_backend("mxnet", "MXNet", "run `tox -e mxnet` (mxnet==1.9.1 needs numpy==1.23.5)")


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def variant(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def session(variant):
    filters = Filters(losses=["mxnet.gluon.loss." + n for n in _mxnet_losses()])
    return xc.checked_session(variant, VARIANTS[variant], filters)


def _mxnet_losses() -> list[str]:
    from conformance.backends.mxnet_backend import BINDINGS

    return [k.rsplit(".", 1)[-1] for k in BINDINGS]


def _regular_case(loss: str, dtype: str = "float32"):
    """The first valid regular fixture case of ``loss`` in ``dtype`` with batch_axis 0 (the
    option the NumPy-mode branches ignore)."""
    files = {v: k for k, v in catalog_files().items()}
    cases = load_file(default_dir() / files["mxnet.gluon.loss." + loss])
    return next(
        c for c in cases
        if c.dtype == dtype and c.invalid is None and "regular" in c.tags and c.options.get("batch_axis", 0) == 0
    )


@needs_mxnet
def test_no_unexplained_failure_and_no_unused_entry(session):
    xc.assert_no_unexplained_failure_and_no_unused_entry(session)


@needs_mxnet
def test_every_failure_matches_exactly_one_entry(session):
    xc.assert_every_failure_matches_exactly_one_entry(session)


@needs_mxnet
def test_removing_an_entry_fails_exactly_its_checks(session, variant):
    xc.assert_removing_an_entry_fails_exactly_its_checks(session, VARIANTS[variant])


@needs_mxnet
@pytest.mark.parametrize("path", sorted(VARIANTS.values()), ids=lambda p: p.name)
def test_reasons_name_their_source(path):
    for e in ex.load(path).entries:
        assert any(s in e.reason for s in (".py", ".h", ".cc", "oneDNN", "backward", "F.mean", "log_softmax", "harness")), (
            f"{e.describe()}: the reason names no place in MXNet's source"
        )


@needs_mxnet
def test_every_dtype_is_attempted_and_mxnet_rejects_the_float32_only_losses():
    """supports() declines no dtype: the float32-only losses' float16/float64 calls are made
    and MXNet itself raises (the findings the expectation file lists)."""
    from conformance.backends.mxnet_backend import backend

    for loss in ("CTCLoss", "SDMLLoss", "CosineEmbeddingLoss"):
        case = _regular_case(loss)
        assert backend.supports(make_call(case)) is None
        for dtype in ("float16", "float64"):
            inputs = {k: (v.astype(dtype) if v.dtype.kind == "f" else v) for k, v in case.inputs.items()}
            call = Call(case.loss, dict(case.options), inputs, dtype, tuple(case.vjp), case.cotangent.astype(dtype))
            assert backend.supports(call) is None
            with pytest.raises(Exception, match="type|attr|dtype"):
                backend._run(call)


def _assert_l2_has_no_second_order(arrays, operator: str) -> None:
    """L2Loss differentiated twice (``arrays``: ``mx.nd`` or ``mx.np``) raises MXNet's error
    naming ``operator`` as non-differentiable: the reason the hvp mode is not run."""
    import mxnet as mx
    from mxnet import autograd

    x = arrays.array([[0.5, -1.0]])
    x.attach_grad()
    with pytest.raises(mx.base.MXNetError, match=f"{operator} is non-differentiable"):
        with autograd.record():
            out = mx.gluon.loss.L2Loss()(x, arrays.array([[0.0, 1.0]]))
            g = autograd.grad(out, [x], head_grads=arrays.ones_like(out), create_graph=True, retain_graph=True)[0]
            s = g.sum()
        s.backward()
        x.grad.asnumpy()


@needs_mxnet
def test_modes_and_the_hvp_reason_hold():
    """The modes run are forward, grad, compiled and backward-twice; the reason given for
    hvp is what MXNet raises on a second-order backward through L2Loss."""
    import mxnet as mx

    from conformance.backends.mxnet_backend import backend
    from conformance.protocol import supported_modes

    modes = supported_modes(backend)
    assert [m for m, why in modes.items() if why is None] == ["forward", "grad", "compiled", "backward-twice"]
    _assert_l2_has_no_second_order(mx.nd, "_backward_broadcast_sub")
    assert "_backward_broadcast_sub is non-differentiable" in modes["hvp"]


@needs_mxnet
def test_documented_constructor_option_goes_to_the_constructor():
    """PoissonNLLLoss's documented constructor parameter epsilon is passed to the
    constructor (which MXNet 1.9.1 rejects: the finding), never to forward."""
    from conformance.backends.mxnet_backend import backend

    call = Call(
        "mxnet.gluon.loss.PoissonNLLLoss",
        {"weight": None, "from_logits": False, "batch_axis": 0, "compute_full": False, "epsilon": 0.25},
        {"pred": np.array([[0.5, 1.0]], np.float32), "target": np.array([[1.0, 0.0]], np.float32)},
        "float32",
    )
    with pytest.raises(TypeError, match="epsilon"):
        backend._run(call)
    at_default = Call(call.loss, {**call.options, "epsilon": 1e-08}, call.inputs, "float32")
    assert backend._run(at_default).output.shape == (1,)


@needs_mxnet
def test_build_info():
    from conformance.backends.mxnet_backend import backend

    info = backend.build_info()
    assert info["mxnet"] == backend.version == "1.9.1"
    assert info["numpy"] == np.__version__
    assert isinstance(info["onednn"], bool) and info["onednn"] == ("MKLDNN" in info["features_enabled"])
    assert "compiled" in info["hybridized"] and info["numpy_mode"] is False
    assert "CTCLoss" in " ".join(info["isolated"])


@needs_mxnet
def test_chainer_loss_is_unsupported_with_a_reason():
    from conformance.backends.mxnet_backend import backend

    reason = backend.supports(Call("chainer.functions.softmax_cross_entropy", {}, {}, "float32"))
    assert reason and "Chainer" in reason


@needs_mxnet
def test_crash_in_the_isolated_helper_is_reported_and_the_run_goes_on():
    """A CTC call that corrupts the heap ends the helper's child, not the harness."""
    from conformance.backends.mxnet_backend import MXNetCrash, backend

    bad = Call(
        "mxnet.gluon.loss.CTCLoss",
        {"layout": "NTC", "label_layout": "NT", "weight": None},
        {
            "pred": np.zeros((2, 3, 3), np.float32),
            "label": np.array([[0, -1], [1, -1]]),
            "label_lengths": np.array([1, -1]),
        },
        "float32",
    )
    with pytest.raises((MXNetCrash, RuntimeError)):
        backend.run(bad)
    good = Call(bad.loss, bad.options, {"pred": bad.inputs["pred"], "label": bad.inputs["label"]}, "float32")
    out = backend.run(good)
    assert out.output.shape == (2,) and np.isfinite(out.output).all()


@pytest.mark.parametrize("how", ["missing", "broken"])
def test_import_failure_names_mxnet(monkeypatch, how):
    # MXNet 1.9.1 under numpy >= 1.24
    broken = "module 'numpy' has no attribute 'bool'."
    xc.assert_import_failure_names_framework(monkeypatch, how, "mxnet", broken, "mxnet==1.9.1 numpy==1.23.5")


# ------------------------------------------------------------------ mxnet-np (NumPy mode)


@needs_mxnet
def test_np_every_dtype_is_attempted():
    """mxnet-np declines no dtype: a bfloat16 call is made and mxnet.numpy itself raises
    (numpy/multiarray.py's KeyError), and a loss without a NumPy-mode branch is really called
    and refused by MXNet's legacy-operator wrapper (the findings of mxnet-np-1.9.1.toml)."""
    from conformance.backends.mxnet_backend import np_backend

    case = _regular_case("L2Loss")
    for dtype in ("float16", "bfloat16", "float32", "float64"):
        call = make_call(case)
        call = Call(call.loss, call.options, call.inputs, dtype, call.wrt, call.cotangent)
        assert np_backend.supports(call) is None
    bf16 = Call(case.loss, dict(case.options), dict(case.inputs), "bfloat16", tuple(case.vjp), case.cotangent)
    with pytest.raises(KeyError, match="numpy.void"):
        np_backend._run(bf16)
    hinge = make_call(_regular_case("HingeLoss"))
    with pytest.raises(TypeError, match="legacy operator which can only accept legacy ndarrays"):
        np_backend._run(hinge)


@needs_mxnet
@pytest.mark.parametrize("loss", ["L2Loss", "L1Loss", "SigmoidBinaryCrossEntropyLoss", "SoftmaxCrossEntropyLoss"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_np_inputs_are_numpy_arrays_with_legacy_values(loss, dtype):
    """The adapter hands NumPy mode mxnet.np arrays (the block sees is_np_array()) and converts
    them back faithfully: for a regular case with batch_axis 0 the NumPy-mode branch computes
    what the legacy branch does, so value and gradients agree with legacy mode's to rounding."""
    import mxnet as mx

    from conformance.backends.mxnet_backend import backend, np_backend

    call = make_call(_regular_case(loss, dtype))
    seen = []
    block_cls = getattr(mx.gluon.loss, loss)
    original = block_cls.hybrid_forward

    def spy(self, F, pred, *args, **kwargs):
        seen.append(type(pred))
        return original(self, F, pred, *args, **kwargs)

    block_cls.hybrid_forward = spy
    try:
        got = np_backend._run(call)
    finally:
        block_cls.hybrid_forward = original
    assert seen == [mx.np.ndarray]
    assert not mx.util.is_np_array()  # NumPy mode is reset after the call
    want = backend._run(call)
    assert got.output.dtype == want.output.dtype == np.dtype(dtype)
    assert got.output.shape == want.output.shape
    np.testing.assert_allclose(got.output, want.output, rtol=1e-5 if dtype == "float32" else 1e-12)
    assert set(got.grads) == set(want.grads) and got.grads
    for name, g in got.grads.items():
        np.testing.assert_allclose(g, want.grads[name], rtol=1e-5 if dtype == "float32" else 1e-12, atol=1e-30)


@needs_mxnet
def test_np_modes_and_the_hvp_reason_hold():
    """mxnet-np runs forward, grad, compiled and backward-twice; its hvp reason is what NumPy
    mode raises on a second-order backward through L2Loss."""
    import mxnet as mx

    from conformance.backends.mxnet_backend import np_backend
    from conformance.protocol import supported_modes

    modes = supported_modes(np_backend)
    assert [m for m, why in modes.items() if why is None] == ["forward", "grad", "compiled", "backward-twice"]
    mx.npx.set_np()
    try:
        _assert_l2_has_no_second_order(mx.np, "_backward_npi_broadcast_sub")
    finally:
        mx.npx.reset_np()
    assert "_backward_npi_broadcast_sub is non-differentiable" in modes["hvp"]


@needs_mxnet
def test_np_build_info_and_mapping_name_numpy_mode():
    from conformance.backends.mxnet_backend import np_backend

    assert np_backend.name == "mxnet-np"
    assert np_backend.build_info()["numpy_mode"] is True
    entry = np_backend.mapping()["mxnet.gluon.loss.L2Loss"]
    assert "NumPy mode" in entry["composition"] and entry["call"].startswith("mxnet.gluon.loss.L2Loss(")


def test_tox_runs_mxnet_np_strictly_and_reports_it():
    """tox.ini's mxnet env runs mxnet-np in every mode it declares (no filter) under its own
    strict expectation file, and the report env gives its results to the report and the map."""
    ini = configparser.ConfigParser(interpolation=None)
    ini.read(ROOT / "tox.ini")
    runs = [line.strip() for line in ini["testenv:mxnet"]["commands"].splitlines() if line.strip().startswith("lossconf run mxnet-np")]
    assert len(runs) == 1
    assert "mxnet-np-1.9.1.toml --strict-expectations" in runs[0] and "{toxworkdir}/results-mxnet-np.json" in runs[0]
    assert not any(f in runs[0] for f in ("--mode", "--dtype", "--tag", "--loss", "--case"))
    report = [
        line.strip() for line in ini["testenv:report"]["commands"].splitlines()
        if line.strip().startswith(("lossconf report", "lossconf map"))
    ]
    assert len(report) == 2 and all("{toxworkdir}/results-mxnet-np.json" in line for line in report)


def test_two_backends_of_one_framework_stay_apart_in_the_report_and_the_map(tmp_path):
    """Results of ``mxnet`` and ``mxnet-np`` (same version, same check ids) are two backends in
    the report and two columns in the migration map, never merged; a repeat command names
    each by its own built-in name. The two files are a real numpy run (L2Loss, float32, mode
    grad) with the backend's name edited, so this runs without MXNet: in the ``tests``
    environment, which has the report's Jinja2; ``tox -e mxnet`` installs only the test extra."""
    pytest.importorskip("jinja2", reason="the HTML report needs lossconf[report] (run in tox -e tests)")
    filters = Filters(losses=["L2Loss"], dtypes=["float32"], modes=["grad"])
    session = Session.open(load_backend("numpy"), None, filters, None, 60.0)
    session.run_all(filters)
    base = tmp_path / "numpy.json"
    session.write(base)
    doc = json.loads(base.read_text())
    paths = []
    for name in ("mxnet", "mxnet-np"):
        doc["provenance"]["backend"]["name"] = name
        doc["provenance"]["backend"]["version"] = "1.9.1"
        paths.append(tmp_path / f"results-{name}.json")
        paths[-1].write_text(json.dumps(doc))
    out = tmp_path / "reports"
    assert cli.main(["report", *map(str, paths), "--out", str(out)]) == 0
    merged = json.loads((out / report.JSON_FILE).read_text())
    names = [b["provenance"]["backend"]["name"] for b in merged["backends"]]
    assert names == ["mxnet", "mxnet-np"]
    assert [len(b["records"]) for b in merged["backends"]] == [len(doc["records"])] * 2
    assert cli.main(["map", *map(str, paths), "-o", str(tmp_path / "migration.md")]) == 0
    text = (tmp_path / "migration.md").read_text()
    assert "| mxnet 1.9.1 | mxnet-np 1.9.1 |" in text
    for br in model.load_all(paths):
        rec = br.records[0]
        assert model.repeat_command(br, rec).startswith(f"lossconf run {br.name} --case ")
