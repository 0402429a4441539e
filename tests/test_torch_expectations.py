"""The torch backend and its expectation file ``conformance/expectations/torch-2.13.0.toml``.

* The full conformance run over the fixtures in the eager modes (forward, grad, hvp,
  backward-twice), and the compiled run over its sample (:data:`COMPILED_SAMPLE`, the one
  ``tox -e torch`` runs: torch.compile costs seconds per new graph), have no unexplained
  failure and no unused entry (what ``lossconf run torch --strict-expectations`` gates on).
* Every failing check matches exactly one entry, so removing any one entry makes the run
  fail on exactly the checks that entry covered (the backend's runs are reused).
* Every entry's reason names a file of torch's source, and the root causes the entries
  name are exercised directly on torch's own functions (so the reasons stay true: a torch
  that fixes one makes its test fail here).
* The migration map (``MAPPING``) covers every documented loss, with the documented fields.
* Modes: ``forward`` and ``backward-twice`` agree with ``grad``; ``hvp`` agrees with a
  central difference of the VJP; ``compiled`` (``torch.compile``) agrees with eager.
* Bad input: an option value without a torch mapping, an unknown dtype or mode is declined
  by ``supports()`` with a one-line reason; a missing or broken torch surfaces as
  ``ModuleNotFoundError`` for ``torch`` (this test runs without torch too).

Everything but the last test is skipped when torch cannot be imported (run it with
``tox -e torch``). The run takes about 3 minutes (the eager modes' run, then the compiled
sample's graphs).
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest

from conformance.harness import expectations as ex
from conformance.harness.runner import FAILING, KNOWN, PASS, make_call
from conformance.harness.session import Filters, Session
from conformance.protocol import MODES, Call
from tests import expectation_checks as xc

ROOT = Path(__file__).resolve().parent.parent
EXPECTATIONS = ROOT / "conformance" / "expectations" / "torch-2.13.0.toml"

needs_torch = xc.needs_backend("torch", "torch", "run `tox -e torch` (pip install torch==2.13.0)")

MX = "mxnet.gluon.loss."

#: the modes of the full run (every fixture case): every mode but compiled
EAGER_MODES = ["forward", "grad", "hvp", "backward-twice"]
#: the compiled run's sample, as tox.ini's `lossconf run torch --mode compiled ...` selects it:
#: every float32 regular case (every documented loss and option set; about 4 minutes here,
#: where every case in every dtype and regime would take hours of graph compilation)
COMPILED_SAMPLE = Filters(modes=["compiled"], dtypes=["float32"], tags=["regular"])
COMPILED_FLAGS = "--mode compiled --dtype float32 --tag regular"
#: the compiled run of the float32 long cases (16384-term reductions, where Inductor's
#: reductions differ from eager torch's): the compiled entries of the long cases are used here
COMPILED_LONG = Filters(modes=["compiled"], dtypes=["float32"], tags=["long"])


@pytest.fixture(scope="module")
def session():
    return xc.checked_session("torch", EXPECTATIONS, Filters(modes=EAGER_MODES))


@pytest.fixture(scope="module")
def compiled_session():
    return xc.checked_session("torch", EXPECTATIONS, COMPILED_SAMPLE)


@pytest.fixture(scope="module")
def compiled_long_session():
    return xc.checked_session("torch", EXPECTATIONS, COMPILED_LONG)


@pytest.fixture(scope="module")
def F():
    import torch.nn.functional as functional

    return functional


@needs_torch
def test_no_unexplained_failure_and_no_unused_entry(session):
    xc.assert_no_unexplained_failure_and_no_unused_entry(session)


@needs_torch
def test_every_failure_matches_exactly_one_entry(session):
    xc.assert_every_failure_matches_exactly_one_entry(session)


def _assert_removing_fails_exactly_its_checks(session) -> set[int]:
    """Like xc.assert_removing_an_entry_fails_exactly_its_checks, for the entries that
    cover a known check of this session (the eager and the compiled runs each use only some
    entries: a mode-compiled entry covers nothing in the eager run); returns their numbers."""
    known = [r for r in session.results if r.status == KNOWN]
    # without tolerance overrides a passing check does not depend on the entries, so
    # re-evaluating the known deviations is enough
    assert all(e.tolerance is None for e in session.expectations.entries)
    used = set()
    for entry in session.expectations.entries:
        covered = {r.test_id for r in known if entry.matches(r.case, r.check, r.mode)}
        if not covered:
            continue
        used.add(entry.number)
        reduced = ex.load(EXPECTATIONS)
        reduced.entries = [e for e in reduced.entries if e.number != entry.number]
        trial = Session(session.backend, session.cases, session.fixtures_digest, reduced, session.timeout,
                        runs=session.runs, modes=session.modes, mode_support=session.mode_support)
        failing = {r.test_id for r in (trial.check(k.case, k.check, k.mode) for k in known) if r.status in FAILING}
        assert failing == covered, f"without {entry.describe()}: {sorted(failing ^ covered)[:10]}"
    return used


@pytest.fixture(scope="module")
def eager_used(session):
    return _assert_removing_fails_exactly_its_checks(session)


@pytest.fixture(scope="module")
def compiled_used(compiled_session, compiled_long_session):
    return _assert_removing_fails_exactly_its_checks(compiled_session) | _assert_removing_fails_exactly_its_checks(
        compiled_long_session
    )


@needs_torch
def test_removing_an_entry_fails_exactly_its_checks(eager_used, compiled_used):
    """Every entry covers a known check of the eager run or of the compiled sample, and
    removing it fails exactly those checks."""
    entries = ex.load(EXPECTATIONS).entries
    unused = [e.describe() for e in entries if e.number not in eager_used | compiled_used]
    assert not unused, f"entries that cover no known check of either run: {unused}"


@needs_torch
def test_compiled_sample_has_no_unexplained_failure_and_no_unused_entry(compiled_session):
    s = compiled_session
    if s.mode_support.get("compiled"):
        pytest.skip(s.mode_support["compiled"])  # torch.compile does not work here: the reason
    bad = [f"{r.test_id}: {r.message}" for r in s.results if r.status in FAILING]
    assert not bad, "unexplained failures:\n" + "\n".join(bad[:20])
    assert not s.unused_expectations()
    assert {r.mode for r in s.results} == {"compiled"}
    assert sum(r.status == PASS for r in s.results) > 0


@needs_torch
def test_compiled_long_cases_have_no_unexplained_failure(compiled_long_session):
    s = compiled_long_session
    if s.mode_support.get("compiled"):
        pytest.skip(s.mode_support["compiled"])
    bad = [f"{r.test_id}: {r.message}" for r in s.results if r.status in FAILING]
    assert not bad, "unexplained failures:\n" + "\n".join(bad[:20])
    xc.assert_every_failure_matches_exactly_one_entry(s)
    assert any(r.status == KNOWN for r in s.results)


@needs_torch
def test_compiled_failures_match_exactly_one_entry(compiled_session):
    xc.assert_every_failure_matches_exactly_one_entry(compiled_session)
    known = [r for r in compiled_session.results if r.status == KNOWN]
    assert any(r.case.loss == MX + "LogisticLoss" and r.check == "grad:pred" for r in known)


@needs_torch
def test_every_mode_is_declared_and_run(session):
    from conformance.backends.torch_backend import backend
    from conformance.protocol import supported_modes

    assert supported_modes(backend) == {m: None for m in MODES}
    ran = {r.mode for r in session.results}
    assert ran == set(EAGER_MODES)
    for mode in EAGER_MODES:  # every mode judged something
        assert sum(r.status == PASS and r.mode == mode for r in session.results) > 100, mode
    # hvp: the gradient is judged in mode hvp too, and the HVP check exists (skipped while the
    # fixtures carry no exact HVP, never passed)
    hvp_checks = [r for r in session.results if r.mode == "hvp" and r.check.startswith("hvp:")]
    assert hvp_checks and all(r.status != PASS or r.expected is not None for r in hvp_checks)
    # backward-twice: the twice check ran and passed on every case outside the known deviations
    twice = [r for r in session.results if r.check == "twice"]
    assert twice and all(r.status in (PASS, KNOWN) for r in twice)


@needs_torch
def test_ctc_hvp_is_the_known_deviation(session):
    ctc = [r for r in session.results if r.mode == "hvp" and r.case.loss == MX + "CTCLoss"
           and r.case.dtype not in ("float16", "bfloat16") and r.check != "invalid"]  # no CTC kernel for those
    assert ctc and all(r.status == KNOWN for r in ctc)
    assert all("_ctc_loss_backward is not implemented" in r.message for r in ctc if r.check == "value")


def test_tox_runs_the_documented_compiled_sample():
    """tox.ini's torch env runs the eager modes in full and compiled on COMPILED_SAMPLE."""
    tox = (ROOT / "tox.ini").read_text()
    env = tox[tox.index("[testenv:torch]"):]
    assert COMPILED_FLAGS in env
    assert "--mode forward --mode grad --mode hvp --mode backward-twice" in env
    assert env.count("--strict-expectations") == 2


@needs_torch
def test_compiled_sample_covers_every_documented_loss(compiled_session):
    from conformance.backends.torch_backend import MAPPING

    assert {c.loss for c in compiled_session.cases if COMPILED_SAMPLE.keep_case(c)} == set(MAPPING)


@needs_torch
def test_cause_soft_margin_decomposition_cancels():
    """The compiled deviation's cause: the decomposition Inductor uses for
    soft_margin_loss_backward computes sigmoid(t) - 1, eager ATen computes -z / (1 + z)."""
    import torch
    from torch._decomp.decompositions import soft_margin_loss_backward

    x = torch.tensor([3.4955046], dtype=torch.float32)
    y = torch.ones(1)
    g = torch.ones(1)
    decomposed = soft_margin_loss_backward(g, x, y, 0)
    eager = torch.ops.aten.soft_margin_loss_backward(g, x, y, 0)
    exact = -1.0 / (1.0 + math.exp(float(x[0])))
    eps32 = 2.0 ** -23
    assert abs(float(eager[0]) - exact) <= 2 * eps32 * abs(exact)
    assert abs(float(decomposed[0]) - exact) > 4 * eps32 * abs(exact)


@needs_torch
def test_reasons_name_torch_source():
    for e in ex.load(EXPECTATIONS).entries:
        assert any(s in e.reason for s in ("torch/nn/functional.py", "aten/src/ATen/", "derivatives.yaml", "torch/_decomp/", "torch/_inductor/")), (
            f"{e.describe()}: the reason names no file of torch's source"
        )


# ------------------------------------------------- the causes, exercised on torch itself


@needs_torch
def test_cause_mean_sums_in_the_input_dtype():
    import torch

    assert torch.isinf(torch.full((1, 2), 3e38, dtype=torch.float32).mean(1)).all()
    assert torch.isfinite(torch.full((1, 2), 6e4, dtype=torch.float16).mean(1)).all()  # float16: summed in float32


@needs_torch
def test_cause_log_softmax_has_no_log1p(F):
    import torch

    # exact loss log(1 + e^-40) = 4.2e-18, far above float32's smallest normal
    assert F.cross_entropy(torch.tensor([[40.0, 0.0]]), torch.tensor([0]), reduction="none").item() == 0


@needs_torch
def test_cause_cosine_embedding_epsilon(F):
    import torch

    u = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    loss = F.cosine_embedding_loss(u, 2 * u, torch.tensor([1.0], dtype=torch.float64), reduction="none").item()
    assert 1e-13 < loss < 1e-11  # exactly 0 for parallel vectors; EPSILON = 1e-12 shifts it
    zero = F.cosine_embedding_loss(torch.zeros(1, 2), torch.ones(1, 2), torch.tensor([1.0]), reduction="none")
    assert zero.item() == 1.0  # cos(0, v) is 0/0, taken as 0
    assert F.cosine_embedding_loss(u, u, torch.tensor([0.5], dtype=torch.float64), reduction="none").item() == 0


@needs_torch
def test_cause_soft_margin_loss_overflows(F):
    import torch

    x = torch.tensor([-100.0], requires_grad=True)
    loss = F.soft_margin_loss(x, torch.tensor([1.0]), reduction="none")
    assert torch.isinf(loss).all()
    (g,) = torch.autograd.grad(loss, x, torch.ones(1))
    assert torch.isnan(g).all()


@needs_torch
def test_cause_zero_times_minus_inf(F):
    import torch

    inf = float("inf")
    assert torch.isnan(F.kl_div(torch.tensor([-inf]), torch.tensor([0.0]), reduction="none")).all()
    ce = F.cross_entropy(torch.tensor([[-inf, 0.0]]), torch.tensor([[0.0, 1.0]]), reduction="none")
    assert torch.isnan(ce).all()


@needs_torch
def test_cause_binary_cross_entropy_clamps(F):
    import torch

    x = torch.tensor([0.0], dtype=torch.float64, requires_grad=True)
    loss = F.binary_cross_entropy(x, torch.tensor([1.0], dtype=torch.float64), reduction="none")
    assert loss.item() == 100.0  # documented: +inf
    (g,) = torch.autograd.grad(loss, x, torch.ones(1, dtype=torch.float64))
    assert g.item() == pytest.approx(-1e12)  # (x - y) / max(x (1 - x), 1e-12); documented: -inf


@needs_torch
def test_cause_binary_cross_entropy_double_backward_adds_eps(F):
    """FunctionsManual.cpp binary_cross_entropy_double_backward: (x^2 - 2xt + t) /
    ((x + 1e-12)^2 (1 - x + 1e-12)^2) instead of t / x^2 + (1 - t) / (1 - x)^2."""
    import torch

    x = torch.tensor([0.01, 0.3, 1e-3], dtype=torch.float64, requires_grad=True)
    t = torch.tensor([1.0, 0.0, 1.0], dtype=torch.float64)
    (g,) = torch.autograd.grad(F.binary_cross_entropy(x, t, reduction="sum"), x, create_graph=True)
    (h,) = torch.autograd.grad(g, x, torch.ones_like(x))
    xd, eps = x.detach(), 1e-12
    assert torch.equal(h, (xd * xd - 2 * xd * t + t) / ((xd + eps) ** 2 * (1 - xd + eps) ** 2))
    exact = t / xd**2 + (1 - t) / (1 - xd) ** 2
    assert ((h / exact - 1).abs() > 1e-12).all()  # far beyond float64's eps


@needs_torch
def test_cause_sigmoid_double_backward_is_y_times_one_minus_y(F):
    """The HVP of binary_cross_entropy_with_logits is y * (1 - y) of the rounded sigmoid: 0
    where y rounds to 1 (the exact exp(-|x|) is not)."""
    import torch

    x = torch.tensor([5.1207566, -4.0, 20.0], dtype=torch.float32, requires_grad=True)
    t = torch.tensor([0.0, 1.0, 1.0])
    (g,) = torch.autograd.grad(F.binary_cross_entropy_with_logits(x, t, reduction="sum"), x, create_graph=True)
    (h,) = torch.autograd.grad(g, x, torch.ones_like(x))
    y = torch.sigmoid(x.detach())
    assert torch.equal(h, y * (1 - y)) and h[2].item() == 0.0


@needs_torch
def test_hvp_checks_are_judged_against_the_exact_hvps(session):
    """Mode hvp is held to the fixtures' exact HVPs: judged (pass or a known deviation) on
    every loss but CTCLoss (torch has no double backward of ctc_loss, an entry), skipped only
    where the fixture has no HVP (no_hvp)."""
    hvp = [r for r in session.results if r.check.startswith("hvp:")]
    passed = {r.case.short_loss for r in hvp if r.status == PASS}
    assert {c.short_loss for c in session.cases} - passed == {"CTCLoss"}
    for r in hvp:
        if r.status not in (PASS, KNOWN):
            assert "no exact Hessian-vector product" in r.message and not r.case.hvp.get(r.check[4:]), r.test_id


@needs_torch
def test_cause_ctc_loss_cpu_is_float_and_double_only_and_checks_no_labels(F):
    import torch

    lp = torch.zeros(3, 1, 3).log_softmax(2)
    args = (torch.tensor([[2]]), torch.tensor([3]), torch.tensor([1]))
    with pytest.raises(NotImplementedError, match="ctc_loss_cpu.*Half"):
        F.ctc_loss(lp.half(), *args, blank=2, reduction="none")
    # the label 2 is the blank (documented as reserved): accepted
    assert torch.isfinite(F.ctc_loss(lp, *args, blank=2, reduction="none")).all()


@needs_torch
def test_cause_ctc_loss_has_no_double_backward(F):
    """Mode hvp of CTCLoss fails: torch has no derivative of _ctc_loss_backward."""
    import torch

    x = torch.zeros(3, 1, 3, dtype=torch.float64, requires_grad=True)
    loss = F.ctc_loss(x.log_softmax(2), torch.tensor([[0]]), torch.tensor([3]), torch.tensor([1]), blank=2, reduction="none")
    (g,) = torch.autograd.grad(loss.sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="_ctc_loss_backward is not implemented"):
        torch.autograd.grad(g.sum(), x)


@needs_torch
def test_cause_smooth_l1_beta_zero_is_l1(F):
    import torch

    a, b = torch.tensor([0.3, -2.0]), torch.tensor([0.0, 0.0])
    assert torch.equal(F.smooth_l1_loss(a, b, beta=0.0, reduction="none"), F.l1_loss(a, b, reduction="none"))


@needs_torch
def test_cause_unchecked_labels(F):
    import torch

    x = torch.tensor([0.5, -0.25])
    F.hinge_embedding_loss(x * 0.5, -torch.ones(2), margin=1.0, reduction="none")
    F.soft_margin_loss(x, torch.tensor([0.0, 2.0]), reduction="none")
    F.binary_cross_entropy_with_logits(x, torch.tensor([2.0, float("nan")]), reduction="none")
    F.poisson_nll_loss(x, torch.tensor([-1.0, 1.0]), reduction="none")
    F.kl_div(x, torch.tensor([1.5, 0.5]), reduction="none")
    F.cross_entropy(torch.tensor([[0.5, -0.25]]), torch.tensor([[1.5, -0.5]]), reduction="none")
    # and a 1-D input is one unbatched instance
    assert F.cross_entropy(torch.tensor([0.5, -0.25, 1.0]), torch.tensor(0)).shape == ()


@needs_torch
def test_cause_float16_overflows_and_underflows(F):
    import torch

    assert torch.tensor(1e-8, dtype=torch.float16).item() == 0  # poisson_nll_loss's eps in float16
    assert torch.isinf(torch.tensor([300.0], dtype=torch.float16) ** 2).all()
    x = torch.tensor([[6e4, -6e4]], dtype=torch.float16, requires_grad=True)
    loss = F.mse_loss(x, torch.tensor([[-6e4, 6e4]], dtype=torch.float16), reduction="none").mean(1)
    (g,) = torch.autograd.grad(loss, x, torch.ones(1, dtype=torch.float16))
    assert torch.isinf(g).all()  # 2 * (x - y) overflows


# ----------------------------------------------------------------------- migration map


@needs_torch
def test_mapping_covers_every_documented_loss():
    from conformance.backends.torch_backend import FORWARD, MAPPING
    from oracle import catalog

    assert set(MAPPING) == set(catalog.loss_ids()) == set(FORWARD)
    for loss, entry in MAPPING.items():
        assert set(entry) == {"call", "composition", "notes", "unsupported"}, loss
        assert "F." in entry["call"], loss
        for option, rule in entry["unsupported"].items():
            assert option in {o.name for o in catalog.spec(loss).options}, (loss, option)
            assert rule["mapped"] and rule["why"]


@needs_torch
def test_mapping_is_recorded_as_the_protocol_reads_it():
    from conformance.backends.torch_backend import MAPPING, backend
    from conformance.protocol import mapping_of

    recorded = mapping_of(backend)
    assert "mapping_error" not in recorded
    assert set(recorded["mapping"]) == set(MAPPING)
    sce = recorded["mapping"]["chainer.functions.softmax_cross_entropy"]
    assert sce["call"].startswith("F.cross_entropy(") and "only the documented" in sce["unsupported"]["reduce"]


# ------------------------------------------------------------------------------ modes


def _regular(session, loss: str, dtype: str = "float64"):
    for case in session.cases:
        if case.loss == loss and case.dtype == dtype and case.invalid is None and "regular" in case.tags:
            return case
    raise LookupError(loss)


@needs_torch
@pytest.mark.parametrize("loss", [MX + "SoftmaxCrossEntropyLoss", MX + "TripletLoss", MX + "CTCLoss", "chainer.functions.softmax_cross_entropy"])
def test_forward_and_backward_twice_agree_with_grad(session, loss):
    from conformance.backends.torch_backend import backend

    call = make_call(_regular(session, loss))
    grad = backend.run(call)
    forward = backend.run(dataclasses.replace(call, mode="forward"))
    assert forward.grads == {} and np.array_equal(forward.output, grad.output)
    twice = backend.run(dataclasses.replace(call, mode="backward-twice"))
    for name in call.wrt:
        assert np.array_equal(twice.grads[name], grad.grads[name])  # not twice the gradient


@needs_torch
@pytest.mark.parametrize("loss", [MX + "SDMLLoss", MX + "HuberLoss", MX + "KLDivLoss", MX + "CosineEmbeddingLoss", MX + "L1Loss"])
def test_hvp_is_the_derivative_of_the_vjp(session, loss):
    from conformance.backends.torch_backend import backend

    case = _regular(session, loss)
    call = make_call(case)
    rng = np.random.default_rng(7)
    direction = {n: rng.standard_normal(call.inputs[n].shape) for n in call.wrt}
    out = backend.run(dataclasses.replace(call, mode="hvp", direction=direction))
    h = 1e-6

    def vjp_at(sign):
        moved = {k: v + sign * h * direction[k] if k in direction else v for k, v in call.inputs.items()}
        return backend.run(dataclasses.replace(call, inputs=moved)).grads

    plus, minus = vjp_at(1), vjp_at(-1)
    for name in call.wrt:
        fd = (plus[name] - minus[name]) / (2 * h)
        assert out.hvp[name].shape == call.inputs[name].shape
        np.testing.assert_allclose(out.hvp[name], fd, atol=1e-6 * (1 + np.abs(fd).max()))


@needs_torch
def test_compiled_agrees_with_eager(session):
    from conformance.backends.torch_backend import backend

    call = make_call(_regular(session, MX + "HuberLoss"))
    compiled = dataclasses.replace(call, mode="compiled")
    reason = backend.supports(compiled)
    if reason is not None:
        assert reason.startswith("torch.compile does not work here")
        pytest.skip(reason)
    eager, out = backend.run(call), backend.run(compiled)
    np.testing.assert_allclose(out.output, eager.output, rtol=1e-14)
    np.testing.assert_allclose(out.grads["pred"], eager.grads["pred"], rtol=1e-14)


@needs_torch
def test_bfloat16_round_trip():
    ml_dtypes = pytest.importorskip("ml_dtypes")
    from conformance.backends.torch_backend import backend

    bf = ml_dtypes.bfloat16
    call = Call(MX + "L2Loss", {"weight": 1.0, "batch_axis": 0},
                {"pred": np.array([[0.5, -1.25], [2.0, 3.0]], bf), "label": np.array([[0.0, 1.0], [1.0, -1.0]], bf)},
                "bfloat16", ("pred",), np.ones(2, bf))
    assert backend.supports(call) is None
    out = backend.run(call)
    assert out.output.dtype == bf and out.grads["pred"].dtype == bf
    d = call.inputs["pred"].astype(np.float64) - call.inputs["label"].astype(np.float64)
    np.testing.assert_array_equal(out.output.astype(np.float64), (d * d).mean(axis=1) / 2)  # exact in bfloat16 here


# -------------------------------------------------------------------------- bad input


@needs_torch
@pytest.mark.parametrize("change, words", [
    ({"options": {"reduce": "sum"}}, "option reduce='sum' has no torch mapping"),
    ({"options": {"soft_target_loss": "mse"}}, "option soft_target_loss='mse' has no torch mapping"),
    ({"dtype": "int8"}, "dtype 'int8'"),
    ({"mode": "sideways"}, "mode 'sideways'"),
    ({"loss": "mxnet.gluon.loss.NoSuchLoss"}, "no torch mapping for mxnet.gluon.loss.NoSuchLoss"),
])
def test_supports_declines_with_a_one_line_reason(change, words):
    from conformance.backends.torch_backend import backend

    call = Call("chainer.functions.softmax_cross_entropy", {}, {"x": np.zeros((2, 3)), "t": np.zeros(2)}, "float64")
    reason = backend.supports(dataclasses.replace(call, **change))
    assert reason and words in reason and "\n" not in reason


@needs_torch
def test_build_info():
    import torch

    from conformance.backends.torch_backend import backend

    info = backend.build_info()
    assert info["torch"] == torch.__version__ and backend.version == "2.13.0"
    assert info["device"] == "cpu" and isinstance(info["num_threads"], int)
    assert math.isfinite(info["num_threads"])
    json.dumps(info)  # provenance is JSON


@pytest.mark.parametrize("how", ["missing", "broken"])
def test_import_failure_names_torch(monkeypatch, how):
    xc.assert_import_failure_names_framework(monkeypatch, how, "torch", "partially initialized module", "torch==2.13.0")
