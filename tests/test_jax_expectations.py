"""The jax backend and its expectation file ``conformance/expectations/jax-0.10.2.toml``.

* The full conformance run over the fixtures, in every mode, has no unexplained failure and
  no unused entry (what ``lossconf run jax --strict-expectations`` gates on).
* Every failing check matches exactly one entry, so removing any one entry makes the run
  fail on exactly the checks that entry covered -- verified by re-evaluating the known
  deviations without each entry in turn (the backend's runs are reused, not repeated).
* Every entry names its place in jax's or optax's source.
* Every mode is declared, run and judged; the HVP check exists and is never passed without
  an exact HVP to hold it to.
* The modes: ``forward`` returns the ``grad`` mode's value; ``compiled`` (one ``jax.jit``
  of value and VJP) agrees with ``grad`` and with the oracle; ``backward-twice`` returns
  the same VJP as ``grad``, bitwise; ``hvp`` (through the harness's call, with its
  ``direction``) agrees with a central difference of the VJP for every loss, follows the
  direction (linear in it, and another direction gives another HVP), and for L2Loss equals
  the Hessian of the documented formula times the direction, computed by hand.
* bfloat16 inputs run in bfloat16 and come back as ml_dtypes' bfloat16.
* One jitted function serves every call of a (loss, options, mode) group: a second case of
  the same shapes does not trace again.
* A loss, option, dtype or mode with no mapping is declined with a one-line reason.
* ``build_info()`` records the versions and the x64 flag.
* A missing or broken JAX surfaces as ``ModuleNotFoundError`` for ``jax`` (this test runs
  without JAX too).

Everything but the import-failure test is skipped when JAX cannot be imported (run it with
``tox -e jax``). The ``test_full_run_*`` tests share one in-process session of every case in
every mode (the cost of a second full run, benchmarks/README.md): ``tox -e jax`` leaves them
out (``-k "not full_run"``), because its strict ``lossconf run`` is the same gate as the first
of them; run them with ``pytest tests/test_jax_expectations.py`` when the expectation file
changes.

* tox.ini runs the jax env in CI (the default envlist), every case in every mode, strict, and
  the report env merges its results (and depends on the env that writes each results file it
  reads); .ci/run runs the envs two at a time.
"""

from __future__ import annotations

import configparser
import re
from pathlib import Path

import numpy as np
import pytest

from conformance import fixtures as fx
from conformance.harness import expectations as ex
from conformance.harness.runner import KNOWN, PASS, make_call
from conformance.protocol import MODES, Call, new_call, supported_modes
from tests import expectation_checks as xc

ROOT = Path(__file__).resolve().parent.parent
EXPECTATIONS = ROOT / "conformance" / "expectations" / "jax-0.10.2.toml"
MX = "mxnet.gluon.loss."

needs_jax = xc.needs_backend("jax", "JAX", "run `tox -e jax` (jax==0.10.2 jaxlib==0.10.2 optax==0.2.8)")


@pytest.fixture(scope="module")
def session():
    return xc.checked_session("jax", EXPECTATIONS)


@pytest.fixture(scope="module")
def cases():
    return fx.load(fx.default_dir())


def _case(cases, loss: str, dtype: str = "float64", tag: str = "regular"):
    for c in cases:
        if c.loss == loss and c.dtype == dtype and c.invalid is None and tag in c.tags:
            return c
    raise LookupError(f"no {tag} {dtype} case of {loss}")


def _with_mode(call: Call, mode: str, direction=None) -> Call:
    return new_call(call.loss, call.options, call.inputs, call.dtype, call.wrt, call.cotangent, mode, direction)


@needs_jax
def test_full_run_no_unexplained_failure_and_no_unused_entry(session):
    xc.assert_no_unexplained_failure_and_no_unused_entry(session)


@needs_jax
def test_full_run_every_failure_matches_exactly_one_entry(session):
    xc.assert_every_failure_matches_exactly_one_entry(session)


@needs_jax
def test_full_run_removing_an_entry_fails_exactly_its_checks(session):
    xc.assert_removing_an_entry_fails_exactly_its_checks(session, EXPECTATIONS)


@needs_jax
def test_reasons_name_their_source():
    for e in ex.load(EXPECTATIONS).entries:
        assert any(s in e.reason for s in ("optax/", "jax/", "jaxlib", "XLA")), (
            f"{e.describe()}: the reason names no place in jax's or optax's source"
        )


@needs_jax
@pytest.mark.parametrize("loss", [MX + "SoftmaxCrossEntropyLoss", MX + "TripletLoss", MX + "CTCLoss",
                                  "chainer.functions.softmax_cross_entropy"])
def test_modes_agree(cases, loss):
    from conformance.backends.jax_backend import backend

    case = _case(cases, loss)
    call = make_call(case)
    grad = backend.run(call)
    fwd = backend.run(_with_mode(call, "forward"))
    assert fwd.grads == {}
    np.testing.assert_array_equal(fwd.output, grad.output)
    for mode in ("compiled", "backward-twice"):
        other = backend.run(_with_mode(call, mode))
        np.testing.assert_allclose(other.output, grad.output, rtol=1e-13, atol=0)
        assert other.grads.keys() == grad.grads.keys() == set(call.wrt)
        for name in call.wrt:
            np.testing.assert_allclose(other.grads[name], grad.grads[name], rtol=1e-12, atol=1e-300)
            # and the oracle's VJP
            exact = case.vjp[name]
            np.testing.assert_allclose(other.grads[name], exact.hi.reshape(other.grads[name].shape), rtol=1e-9, atol=1e-300)


@needs_jax
def test_hvp_of_l2_is_the_hessian_times_the_direction(cases):
    """L2Loss: out[b] = w/2 mean_i (pred - label)^2, so VJP_i = ct[b] w (pred_i - label_i) / M and
    its derivative in the direction v is ct[b] w v_i / M."""
    from conformance.backends.jax_backend import backend

    case = _case(cases, MX + "L2Loss")
    call = make_call(case)
    pred = call.inputs["pred"]
    rng = np.random.default_rng(0)
    v = rng.standard_normal(pred.shape)
    out = backend.run(_with_mode(call, "hvp", {"pred": v}))
    b = case.options["batch_axis"] % pred.ndim
    m = pred.size // pred.shape[b]
    w = 1.0 if case.options["weight"] is None else case.options["weight"]
    ct = np.expand_dims(np.asarray(call.cotangent).reshape(-1), tuple(a for a in range(pred.ndim) if a != b))
    sw = call.inputs.get("sample_weight")
    want = ct * w * v / m * (1.0 if sw is None else sw)
    np.testing.assert_allclose(out.hvp["pred"], want, rtol=1e-13)


def _every_loss():
    from oracle import catalog

    return sorted(catalog.loss_ids())


@needs_jax
@pytest.mark.parametrize("loss", _every_loss())
def test_hvp_is_the_derivative_of_the_vjp(cases, loss):
    """Mode hvp through the protocol (the harness's call, ``Call.direction`` replaced by a
    random one) against a central difference of the grad mode's VJP along the direction
    (float64, step 1e-6); the hvp call's grads are the grad mode's VJP."""
    from conformance.backends.jax_backend import backend

    case = _case(cases, loss)
    call = make_call(case, mode="hvp")
    assert call.direction is not None and set(call.direction) == set(call.wrt)
    rng = np.random.default_rng(1)
    direction = {n: rng.standard_normal(call.inputs[n].shape) for n in call.wrt}
    out = backend.run(_with_mode(call, "hvp", direction))
    assert set(out.hvp) == set(call.wrt)
    grad = backend.run(_with_mode(call, "grad"))
    for n in call.wrt:
        np.testing.assert_allclose(out.grads[n], grad.grads[n], rtol=1e-12, atol=1e-300)
    h = 1e-6

    def shifted(t):
        inputs = dict(call.inputs)
        for n in call.wrt:
            inputs[n] = call.inputs[n] + t * direction[n]
        return backend.run(new_call(call.loss, call.options, inputs, call.dtype, call.wrt, call.cotangent)).grads

    plus, minus = shifted(h), shifted(-h)
    for n in call.wrt:
        fd = (plus[n] - minus[n]) / (2 * h)
        scale = max(np.max(np.abs(out.hvp[n])), 1e-3)
        assert np.max(np.abs(fd - out.hvp[n])) <= 1e-5 * scale, n


@needs_jax
def test_ctc_tie_hvp_deviation_is_jax_scan_dropping_logaddexps_custom_jvp(cases, monkeypatch):
    """The CTCLoss tie-* hvp entry's cause, pinned: at equal logits JAX's HVP is not the
    derivative of its own VJP (a central difference of the grad mode's VJP, which is smooth
    there, agrees with the oracle); with jax's scan residual hoisting disabled
    (jax/_src/lax/control_flow/loops.py _scan_known_hoisting, whose retrace inlines
    logaddexp's custom_jvp), the same backend call gives the oracle's HVP."""
    from jax._src.lax.control_flow import loops

    from conformance.backends.jax_backend import JaxBackend

    case = next(c for c in cases if c.loss == MX + "CTCLoss" and c.name == "tie-float64")
    call = make_call(case, mode="hvp")
    exact = case.hvp["pred"].hi
    observed = JaxBackend().run(call).hvp["pred"]
    assert np.max(np.abs(observed - exact)) > 0.05  # the deviation the entry covers

    h = 1e-6
    grads = [JaxBackend().run(new_call(call.loss, call.options, {**call.inputs, "pred": call.inputs["pred"] + t * call.direction["pred"]},
                                       call.dtype, call.wrt, call.cotangent)).grads["pred"] for t in (h, -h)]
    np.testing.assert_allclose((grads[0] - grads[1]) / (2 * h), exact, rtol=0, atol=1e-8)

    monkeypatch.setattr(loops, "_scan_known_hoisting", lambda jaxpr, consts, num_res: (jaxpr, consts, [False] * num_res, []))
    fixed = JaxBackend().run(call).hvp["pred"]  # a new backend: nothing compiled before the patch
    np.testing.assert_allclose(fixed, exact, rtol=1e-13, atol=1e-15)


@needs_jax
def test_hvp_follows_the_direction(cases):
    """A defect that ignores ``Call.direction`` (e.g. always the ones of the stand-in) is
    seen: two directions give HVPs in their ratio, and differ from each other."""
    from conformance.backends.jax_backend import backend

    call = make_call(_case(cases, MX + "SoftmaxCrossEntropyLoss"), mode="hvp")
    v = {n: np.linspace(-1.0, 1.0, call.inputs[n].size).reshape(call.inputs[n].shape) for n in call.wrt}
    one = backend.run(_with_mode(call, "hvp", v)).hvp
    three = backend.run(_with_mode(call, "hvp", {n: 3.0 * d for n, d in v.items()})).hvp
    # (reversed along the class axis: reversing rows would add a constant per row, which the
    # softmax's Hessian diag(p) - p p^T maps to 0)
    other = backend.run(_with_mode(call, "hvp", {n: d[..., ::-1].copy() for n, d in v.items()})).hvp
    for n in call.wrt:
        np.testing.assert_allclose(three[n], 3.0 * one[n], rtol=1e-12, atol=1e-300)
        assert not np.allclose(other[n], one[n])


@needs_jax
def test_backward_twice_is_a_second_call_of_the_same_pullback(cases):
    """JAX keeps no state between pullback calls: the second backward equals a single one bitwise."""
    from conformance.backends.jax_backend import backend

    call = make_call(_case(cases, MX + "CosineEmbeddingLoss"))
    once = backend.run(call).grads
    twice = backend.run(_with_mode(call, "backward-twice")).grads
    assert twice.keys() == once.keys() == set(call.wrt)
    for n in call.wrt:
        assert twice[n].tobytes() == once[n].tobytes() and twice[n].dtype == once[n].dtype


@needs_jax
def test_full_run_every_mode_is_declared_and_run(session):
    from conformance.backends.jax_backend import backend

    assert supported_modes(backend) == {m: None for m in MODES}
    assert {r.mode for r in session.results} == set(MODES)
    for mode in MODES:  # every mode judged something
        assert sum(r.status == PASS and r.mode == mode for r in session.results) > 100, mode
    # hvp: the gradient is judged in mode hvp too, and the HVP check exists (skipped while the
    # fixtures carry no exact HVP, never passed without one)
    hvp_checks = [r for r in session.results if r.mode == "hvp" and r.check.startswith("hvp:")]
    assert hvp_checks and all(r.status != PASS or r.expected is not None for r in hvp_checks)
    twice = [r for r in session.results if r.check == "twice"]
    assert twice and all(r.status in (PASS, KNOWN) for r in twice)


@needs_jax
def test_bfloat16_runs_in_bfloat16(cases):
    import ml_dtypes

    from conformance.backends.jax_backend import backend

    case = _case(cases, MX + "L2Loss", "float32")
    inputs = {k: (v.astype(ml_dtypes.bfloat16) if v.dtype.kind == "f" else v) for k, v in case.inputs.items()}
    call = new_call(case.loss, dict(case.options), inputs, "bfloat16", tuple(case.vjp_inputs),
                    np.asarray(case.cotangent).astype(ml_dtypes.bfloat16))
    assert backend.supports(call) is None
    out = backend.run(call)
    assert out.output.dtype == ml_dtypes.bfloat16 and out.grads["pred"].dtype == ml_dtypes.bfloat16
    # the same bfloat16 values computed in float32: within a few bfloat16 ULP
    as_f32 = {k: (v.astype(np.float32) if v.dtype.kind == "f" else v) for k, v in inputs.items()}
    f32 = backend.run(new_call(case.loss, dict(case.options), as_f32, "float32", tuple(case.vjp_inputs),
                               np.asarray(call.cotangent).astype(np.float32))).output.astype(np.float64)
    assert np.all(np.abs(out.output.astype(np.float64) - f32) <= 2.0**-5 * np.abs(f32))


@needs_jax
def test_one_trace_serves_a_group(cases, monkeypatch):
    """Two cases of the same loss, options, shapes and dtype share one jitted function and
    one trace: the loss's Python function runs once for both."""
    from conformance.backends import jax_backend as jb

    case = _case(cases, MX + "HingeLoss")
    calls = []
    original = jb.FORWARD[case.loss]

    def counting(o, x):
        calls.append(1)
        return original(o, x)

    monkeypatch.setitem(jb.FORWARD, case.loss, counting)
    backend = jb.JaxBackend()
    call = make_call(case)
    backend.run(call)
    traced = len(calls)
    assert traced >= 1
    other = {k: (v + 0.25 if k == "pred" else v) for k, v in call.inputs.items()}
    backend.run(new_call(call.loss, call.options, other, call.dtype, call.wrt, call.cotangent))
    backend.run(call)
    assert len(calls) == traced
    assert len(backend._jitted) == 1


@needs_jax
def test_declined_with_a_reason():
    from conformance.backends.jax_backend import backend

    x = {"pred": np.zeros((2, 2)), "label": np.zeros((2, 2))}
    assert "no JAX/optax mapping" in backend.supports(Call("mylib.Loss", {}, x, "float32"))
    assert "dtype 'int8'" in backend.supports(Call(MX + "L2Loss", {"weight": 1.0, "batch_axis": 0}, x, "int8"))
    assert "mode 'sideways'" in backend.supports(Call(MX + "L2Loss", {"weight": 1.0, "batch_axis": 0}, x, "float32", mode="sideways"))
    reason = backend.supports(Call(MX + "L2Loss", {"weight": 1.0, "batch_axis": 0, "smoothing": 2}, x, "float32"))
    assert "option 'smoothing'" in reason and "\n" not in reason


@needs_jax
def test_build_info():
    import jax

    from conformance.backends.jax_backend import backend

    info = backend.build_info()
    assert info["jax"] == backend.version == "0.10.2"
    assert info["optax"] == "0.2.8"
    assert info["jax_enable_x64"] is True and jax.config.jax_enable_x64


@pytest.mark.parametrize("how", ["missing", "broken"])
def test_import_failure_names_jax(monkeypatch, how):
    xc.assert_import_failure_names_framework(
        monkeypatch, how, "jax", "jaxlib version mismatch", "jax==0.10.2 jaxlib==0.10.2 optax==0.2.8",
        also_hide=("optax", "jaxlib"),
    )


@needs_jax
def test_mapping_covers_every_documented_loss():
    """mapping() gives the call, composition and notes for every documented loss, and the
    backend supports a call of each (no loss is declined for want of a mapping)."""
    from conformance.backends.jax_backend import FORWARD, backend
    from oracle import catalog

    m = backend.mapping()
    assert set(m) == set(catalog.loss_ids()) == set(FORWARD)
    for loss, entry in m.items():
        assert entry["call"] and entry["composition"] and entry["notes"], loss
        assert ("optax." in entry["call"]) or ("jnp." in entry["call"]), loss


def _tox() -> configparser.ConfigParser:
    ini = configparser.ConfigParser(interpolation=None)
    ini.read(ROOT / "tox.ini")
    return ini


def _commands(ini, env: str, start: str) -> list[str]:
    return [line.strip() for line in ini[f"testenv:{env}"]["commands"].splitlines() if line.strip().startswith(start)]


def test_tox_runs_jax_strictly_in_ci_and_reports_it():
    """tox.ini: jax is in the default envlist (what CI runs), its env runs every case in
    every mode the backend declares (no --mode, --dtype, --tag, --loss or --case filter: no
    sample) under the strict expectations, and the report env reads results-jax.json in the
    report and the migration map alike, after the env that writes it (``depends``), as for
    every backend results file it reads."""
    ini = _tox()
    envlist = [e.strip() for e in ini["tox"]["envlist"].split(",")]
    assert "jax" in envlist and "report" in envlist
    runs = _commands(ini, "jax", "lossconf run jax")
    assert len(runs) == 1 and "--strict-expectations" in runs[0] and "jax-0.10.2.toml" in runs[0]
    assert not any(f in runs[0] for f in ("--mode", "--dtype", "--tag", "--loss", "--case", "--check"))
    assert "{toxworkdir}/results-jax.json" in runs[0]
    report = _commands(ini, "report", ("lossconf report", "lossconf map"))
    assert len(report) == 2
    assert all("{toxworkdir}/results-jax.json" in line and "{posargs}" in line for line in report)
    # every results file the report reads from {toxworkdir} is written by an env it depends on
    writers = {}
    for env in envlist:
        for line in _commands(ini, env, "lossconf run"):
            for name in re.findall(r"--results \{toxworkdir\}/(results-[\w-]+\.json)", line):
                writers[name] = env
    depends = {e.strip() for e in ini["testenv:report"]["depends"].replace("\n", ",").split(",") if e.strip()}
    for line in report:
        for name in re.findall(r"\{toxworkdir\}/(results-[\w-]+\.json)", line):
            assert name in writers, f"no env of the envlist writes {name}"
            assert writers[name] == "report" or writers[name] in depends, f"report does not depend on {writers[name]} ({name})"
    assert "jax" in depends


def test_ci_runs_the_envs_two_at_a_time():
    """.ci/run runs tox's envs in parallel, two at a time (the CI machine's 2 cores: jax's
    strict run beside the others), and every env shows its output when it ends."""
    run = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^python3 -m pip install 'tox>=4' && python3 -m tox p -p 2$", run, re.M)
    assert _tox()["testenv"]["parallel_show_output"].strip() == "true"
