"""``lossconf live``: fresh inputs drawn by hypothesis, evaluated by the oracle, judged by
the fixtures' comparison path. The reference numpy backend conforms; an injected defect is
caught and shrunk to a minimal example that names the loss, the check and the inputs."""

from __future__ import annotations

import random
import re

import numpy as np

from conformance import cli, live
from conformance.harness.runner import FAIL
from oracle import catalog
from tests import defect_backends as d


def lossconf_live(capsys, *args: str) -> tuple[int, str, str]:
    code = cli.main(["live", *args])
    out, err = capsys.readouterr()
    return code, out, err


def without_timings(text: str) -> str:
    return re.sub(r"\[\d+\.\d s\]|in \d+\.\d s", "", text)


def test_numpy_backend_conforms_on_fresh_inputs(capsys):
    code, out, err = lossconf_live(
        capsys, "numpy", "--loss", "L2Loss", "--loss", "SoftmaxCELoss", "--loss", "CTCLoss", "--examples", "15", "--seed", "1"
    )
    assert code == 0, out + err
    for name in ("L2Loss", "SoftmaxCrossEntropyLoss", "CTCLoss"):
        assert re.search(rf"^{name}\s+15 examples conform", out, re.M), out
    assert "45 examples checked, 0 loss(es) failing" in out


def test_flipped_gradient_sign_is_caught_with_a_minimal_example(capsys):
    code, out, err = lossconf_live(capsys, "tests.defect_backends:flipped_grad_sign", "--loss", "HuberLoss", "--examples", "10", "--seed", "5")
    assert code == 1, out + err
    assert re.search(r"^HuberLoss\s+FAILS grad:pred", out, re.M), out
    block = out[out.index("HuberLoss: minimal failing example"):]
    assert "loss:      mxnet.gluon.loss.HuberLoss" in block
    assert "check:     grad:pred (fails)" in block
    assert "sign flipped?" in block
    for name in ("pred", "label", "sample_weight", "cotangent"):  # every input, in full
        assert re.search(rf"^    {name}\[[\d, ]+\] = ", block, re.M), (name, block)
    assert "reproduce: lossconf live tests.defect_backends:flipped_grad_sign --loss HuberLoss --seed 5" in block


def test_failing_example_is_shrunk_and_reproducible():
    outcome = live.live_loss(d.batch_axis_ignored, catalog.resolve("L2Loss"), examples=30, seed=3, dtypes=["float32"])
    failure = outcome.failure
    assert failure is not None and failure.result.status == FAIL
    # only batch_axis=1 is affected; hypothesis shrinks the rest to the simplest draw
    assert failure.draw == live.Draw({"batch_axis": 1}, "float32", 0)
    case = failure.result.case
    assert case.options["batch_axis"] == 1 and case.dtype == "float32"
    # the reported inputs are the loss's sampler at the reported seed, rounded to the dtype
    again = live.cast_inputs(case.loss, catalog.module(case.loss).sample(random.Random(0), {"batch_axis": 1}), "float32")
    assert again.keys() == case.inputs.keys()
    for k, v in again.items():
        np.testing.assert_array_equal(v, case.inputs[k])


def test_same_seed_same_run(capsys):
    args = ("tests.defect_backends:dropped_sample_weight", "--loss", "SoftmaxCELoss", "--examples", "10", "--seed", "11")
    first = lossconf_live(capsys, *args)
    second = lossconf_live(capsys, *args)
    assert first[0] == second[0] == 1
    assert without_timings(first[1]) == without_timings(second[1])


def test_known_deviations_count_as_passing(capsys, tmp_path):
    known = tmp_path / "known.toml"
    known.write_text('[[deviation]]\nloss = "L2Loss"\ncheck = "grad:pred"\nreason = "test: the sign of the gradient is flipped"\n')
    code, out, err = lossconf_live(
        capsys, "tests.defect_backends:flipped_grad_sign", "--loss", "L2Loss", "--examples", "8", "--seed", "2",
        "--expectations", str(known),
    )
    assert code == 0, out + err
    assert "8 examples conform (8 with known deviations)" in out


def test_unknown_loss_is_one_line(capsys):
    code, out, err = lossconf_live(capsys, "numpy", "--loss", "NoSuchLoss")
    assert code == 4
    assert out == ""
    assert len(err.strip().splitlines()) == 1 and "unknown loss 'NoSuchLoss'" in err


def test_unusable_backend_exits_3(capsys):
    code, out, err = lossconf_live(capsys, "tests.defect_backends:no_such_backend", "--loss", "L2Loss")
    assert code == 3 and len(err.strip().splitlines()) == 1


def test_nothing_supported_is_said(capsys):
    code, out, err = lossconf_live(capsys, "tests.defect_backends:NoFloat16", "--loss", "L2Loss", "--dtype", "float16", "--seed", "1")
    assert code == 4
    assert re.search(r"^L2Loss\s+unsupported: float16 is not implemented by this backend", out, re.M), out
    assert "supports none of the drawn examples" in err
