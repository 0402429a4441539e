"""The mxnet backend and its expectation file ``conformance/expectations/mxnet-1.9.1.toml``.

* The full conformance run over the fixtures has no unexplained failure and no unused entry
  (what ``lossconf run mxnet --strict-expectations`` gates on).
* Every failing check matches exactly one entry, so removing any one entry makes the run
  fail on exactly the checks that entry covered -- verified by re-evaluating the known
  deviations without each entry in turn (the backend's runs are reused, not repeated).
* The dtypes the backend declares unsupported are really rejected by MXNet, so the reasons
  ``supports()`` gives stay true.
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
def test_unsupported_dtypes_are_rejected_by_mxnet(session):
    """supports() declines these (loss, dtype) pairs; MXNet must really reject them."""
    from conformance.backends.mxnet_backend import DTYPE_UNSUPPORTED, backend

    by_loss = {}
    for case in session.cases:
        if case.dtype == "float32" and case.invalid is None and "regular" in case.tags:
            by_loss.setdefault(case.loss, case)
    for (loss, dtype), reason in DTYPE_UNSUPPORTED.items():
        case = by_loss[loss]
        inputs = {k: (v.astype(dtype) if v.dtype.kind == "f" else v) for k, v in case.inputs.items()}
        call = Call(case.loss, dict(case.options), inputs, dtype, tuple(case.vjp), case.cotangent.astype(dtype))
        assert backend.supports(call) == reason
        with pytest.raises(Exception, match="type|attr|dtype"):
            backend._run(call)
        # and float32 runs
        assert backend.supports(make_call(case)) is None


@needs_mxnet
def test_build_info():
    from conformance.backends.mxnet_backend import backend

    info = backend.build_info()
    assert info["mxnet"] == backend.version == "1.9.1"
    assert info["numpy"] == np.__version__
    assert isinstance(info["onednn"], bool) and info["onednn"] == ("MKLDNN" in info["features_enabled"])
    assert info["hybridized"] is False
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
