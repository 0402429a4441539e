"""The mxnet backend and its expectation file ``conformance/expectations/mxnet-1.9.1.toml``.

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
* A missing or broken MXNet surfaces as ``ModuleNotFoundError`` for ``mxnet`` (this test
  runs without MXNet too).

Everything but the last test is skipped when MXNet cannot be imported (run it with
``tox -e mxnet``). The run takes about 15 s.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conformance.harness import expectations as ex
from conformance.harness.runner import make_call
from conformance.harness.session import Filters
from conformance.protocol import Call
from tests import expectation_checks as xc

ROOT = Path(__file__).resolve().parent.parent
EXPECTATIONS = ROOT / "conformance" / "expectations" / "mxnet-1.9.1.toml"

needs_mxnet = xc.needs_backend("mxnet", "MXNet", "run `tox -e mxnet` (mxnet==1.9.1 needs numpy==1.23.5)")


@pytest.fixture(scope="module")
def session():
    return xc.checked_session("mxnet", EXPECTATIONS, Filters(losses=["mxnet.gluon.loss." + n for n in _mxnet_losses()]))


def _mxnet_losses() -> list[str]:
    from conformance.backends.mxnet_backend import BINDINGS

    return [k.rsplit(".", 1)[-1] for k in BINDINGS]


@needs_mxnet
def test_no_unexplained_failure_and_no_unused_entry(session):
    xc.assert_no_unexplained_failure_and_no_unused_entry(session)


@needs_mxnet
def test_every_failure_matches_exactly_one_entry(session):
    xc.assert_every_failure_matches_exactly_one_entry(session)


@needs_mxnet
def test_removing_an_entry_fails_exactly_its_checks(session):
    xc.assert_removing_an_entry_fails_exactly_its_checks(session, EXPECTATIONS)


@needs_mxnet
def test_reasons_name_their_source():
    for e in ex.load(EXPECTATIONS).entries:
        assert any(s in e.reason for s in (".py", ".h", ".cc", "oneDNN", "backward", "F.mean", "log_softmax", "harness")), (
            f"{e.describe()}: the reason names no place in MXNet's source"
        )


@needs_mxnet
def test_every_dtype_is_attempted_and_mxnet_rejects_the_float32_only_losses(session):
    """supports() declines no dtype: the float32-only losses' float16/float64 calls are made
    and MXNet itself raises (the findings the expectation file lists)."""
    from conformance.backends.mxnet_backend import backend

    by_loss = {}
    for case in session.cases:
        if case.dtype == "float32" and case.invalid is None and "regular" in case.tags:
            by_loss.setdefault(case.loss, case)
    for loss in ("CTCLoss", "SDMLLoss", "CosineEmbeddingLoss"):
        case = by_loss["mxnet.gluon.loss." + loss]
        assert backend.supports(make_call(case)) is None
        for dtype in ("float16", "float64"):
            inputs = {k: (v.astype(dtype) if v.dtype.kind == "f" else v) for k, v in case.inputs.items()}
            call = Call(case.loss, dict(case.options), inputs, dtype, tuple(case.vjp), case.cotangent.astype(dtype))
            assert backend.supports(call) is None
            with pytest.raises(Exception, match="type|attr|dtype"):
                backend._run(call)


@needs_mxnet
def test_modes_and_the_hvp_reason_hold():
    """The modes run are forward, grad, compiled and backward-twice; the reason given for
    hvp is what MXNet raises on a second-order backward through L2Loss."""
    import mxnet as mx
    from mxnet import autograd

    from conformance.backends.mxnet_backend import backend
    from conformance.protocol import supported_modes

    modes = supported_modes(backend)
    assert [m for m, why in modes.items() if why is None] == ["forward", "grad", "compiled", "backward-twice"]
    x = mx.nd.array([[0.5, -1.0]])
    x.attach_grad()
    with pytest.raises(mx.base.MXNetError, match="_backward_broadcast_sub is non-differentiable"):
        with autograd.record():
            out = mx.gluon.loss.L2Loss()(x, mx.nd.array([[0.0, 1.0]]))
            g = autograd.grad(out, [x], head_grads=mx.nd.ones_like(out), create_graph=True, retain_graph=True)[0]
            s = g.sum()
        s.backward()
        x.grad.asnumpy()
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
