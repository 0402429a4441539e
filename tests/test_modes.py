"""Modes (issue 13): a case runs on every path a backend declares -- forward, grad,
compiled, hvp, backward-twice -- and the mode is a dimension of the checks, results,
test ids, summary, expectations, ``diff`` and live mode. Each path's own checks can fail:
``tests/defect_backends.py`` injects one defect into one path, and the check one would
expect catches it there and nowhere else."""

from __future__ import annotations

import json
import random
import re

import numpy as np
import pytest

from conformance import cli, diff, live
from conformance import fixtures as fx
from conformance.backends import BackendError
from conformance.backends.numpy_backend import backend as numpy_backend
from conformance.harness import expectations as ex
from conformance.harness.runner import FAIL, PASS, SKIP, check_id, checks_for, describe_failure
from conformance.harness.session import (
    FilterError,
    Filters,
    Session,
    backend_modes,
    format_summary,
    select_modes,
)
from conformance.protocol import MODES, Call, Outcome, supported_modes
from oracle import catalog
from tests import defect_backends as d

L2, SCE = "L2Loss", "SoftmaxCrossEntropyLoss"


@pytest.fixture(scope="module")
def cases() -> list[fx.FixtureCase]:
    return fx.load(losses={L2, SCE})


def session_for(backend, cases, *, loss=(L2,), dtype=(), modes=None, expectations=None) -> Session:
    f = Filters(list(loss), list(dtype))
    support = backend_modes(backend)
    chosen = select_modes(support, list(modes or ()), backend.name)
    s = Session(backend, [c for c in cases if f.keep_case(c)], "test", expectations, 10.0, modes=chosen, mode_support=support)
    for c, chk, m in s.items(f):
        s.check(c, chk, m)
    return s


def by(session: Session, mode: str, check: str | None = None) -> list:
    return [r for r in session.results if r.mode == mode and (check is None or r.check == check)]


# ================================================================= the protocol


class NoModes:
    name, version = "plain", "0"

    def supports(self, call: Call) -> str | None:
        return None

    def run(self, call: Call) -> Outcome:
        return numpy_backend.run(call)


def test_a_backend_without_modes_runs_grad_only_and_says_why():
    support = supported_modes(NoModes())
    assert support["grad"] is None
    assert all("declares no modes" in support[m] for m in MODES if m != "grad")


@pytest.mark.parametrize(
    "modes, ok",
    [(("forward", "grad"), {"forward", "grad"}), ({"grad": None, "hvp": "no second order"}, {"grad"})],
)
def test_modes_as_a_sequence_or_a_mapping_with_reasons(modes, ok):
    b = NoModes()
    b.modes = modes
    support = supported_modes(b)
    assert {m for m, why in support.items() if why is None} == ok
    if isinstance(modes, dict):
        assert support["hvp"] == "no second order"


@pytest.mark.parametrize("modes, says", [(("jit",), "unknown mode"), ("grad", "sequence"), ({"grad": ""}, "reason")])
def test_a_bad_modes_declaration_is_a_backend_error(modes, says):
    b = NoModes()
    b.modes = modes
    with pytest.raises(BackendError, match=says):
        backend_modes(b)


def test_numpy_declares_forward_grad_and_backward_twice_with_reasons_for_the_rest():
    support = supported_modes(numpy_backend)
    assert [m for m, why in support.items() if why is None] == ["forward", "grad", "backward-twice"]
    assert "no graph or JIT" in support["compiled"] and "second derivatives" in support["hvp"]


def test_checks_per_mode(cases):
    case = next(c for c in cases if c.short_loss == SCE and c.invalid is None)
    invalid = next(c for c in cases if c.invalid is not None)
    assert checks_for(case, "grad") == checks_for(case, "compiled") == case.checks
    assert checks_for(case, "forward") == ("value", "shape", "repeat", "inputs")
    assert checks_for(case, "hvp") == ("value", "shape", "grad:pred", "hvp:pred", "repeat", "inputs")
    assert checks_for(case, "backward-twice") == ("value", "shape", "grad:pred", "twice", "inputs")
    assert checks_for(invalid, "forward") == ("invalid",) and checks_for(invalid, "hvp") == ()


def test_test_ids_of_mode_grad_are_unchanged_and_other_modes_carry_the_mode(cases):
    case = next(c for c in cases if c.short_loss == SCE and c.invalid is None)
    assert check_id(case, "grad:pred") == f"{case.test_id}-grad:pred"
    assert check_id(case, "grad:pred", "compiled") == f"{case.test_id}[compiled]-grad:pred"
    assert re.fullmatch(r"SoftmaxCrossEntropyLoss\[[^\]]*\]-float\d\d-[a-z]+-\d{3}\[backward-twice\]-twice", check_id(case, "twice", "backward-twice"))


# ================================================================= the harness


def test_numpy_runs_every_mode_it_declares_and_every_check_passes(cases):
    s = session_for(numpy_backend, cases)
    assert s.modes == ("forward", "grad", "backward-twice")
    assert {r.status for r in s.results} == {PASS}
    assert by(s, "forward") and not any(r.check.startswith("grad:") for r in by(s, "forward"))
    assert by(s, "backward-twice", "twice") and all(r.message.startswith("the second backward") for r in by(s, "backward-twice", "twice"))
    rec = json.loads(json.dumps(s.to_json()))
    assert {r["mode"] for r in rec["records"]} == {"forward", "grad", "backward-twice"}
    assert rec["provenance"]["modes"] == ["forward", "grad", "backward-twice"]
    assert set(rec["provenance"]["modes_not_run"]) == {"compiled", "hvp"}
    ids = [r["id"] for r in rec["records"]]
    assert len(set(ids)) == len(ids)
    text = "\n".join(format_summary(s))
    assert re.search(r"^mode forward\s+\d+", text, re.M) and re.search(r"^mode backward-twice\s+\d+", text, re.M)
    assert "mode compiled not run: NumPy has no graph" in text


def test_selecting_a_mode_the_backend_does_not_run_names_its_reason():
    with pytest.raises(FilterError, match="--mode compiled: backend numpy does not run it: NumPy has no graph"):
        select_modes(supported_modes(numpy_backend), ["compiled"], "numpy")
    with pytest.raises(FilterError, match="--mode 'jit' is not one of"):
        select_modes(supported_modes(numpy_backend), ["jit"], "numpy")


def test_lossconf_run_mode_selects_and_rejects(capsys, tmp_path):
    out = tmp_path / "r.json"
    assert cli.main(["run", "numpy", "--loss", L2, "--mode", "forward", "--results", str(out)]) == 0
    assert {r["mode"] for r in json.loads(out.read_text())["records"]} == {"forward"}
    capsys.readouterr()
    assert cli.main(["run", "numpy", "--loss", L2, "--mode", "hvp"]) == 4
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "--mode hvp: backend numpy does not run it" in err


# ================================================================= defects of one path


def test_a_value_that_differs_without_recording_is_caught_in_mode_forward_only(cases):
    s = session_for(d.forward_differs, cases, dtype=("float32", "float64"))
    failing = {(r.mode, r.check) for r in s.results if r.status == FAIL}
    assert failing == {("forward", "value")}
    r = next(r for r in by(s, "forward", "value") if r.status == FAIL)
    assert "value in mode forward fails" in describe_failure(r) and r.test_id.endswith("[forward]-value")
    assert all(r.status == PASS for r in by(s, "grad", "value"))


def test_a_compiled_path_that_drops_an_option_is_caught_in_mode_compiled_on_the_weighted_cases(cases):
    s = session_for(d.compiled_drops_weight, cases, modes=("grad", "compiled"))
    failing = [r for r in s.results if r.status == FAIL]
    assert failing and {r.mode for r in failing} == {"compiled"}
    assert {r.check for r in failing} <= {"value", "grad:pred"} and "value" in {r.check for r in failing}
    weighted = {(r.case.file, r.case.index) for r in failing}
    assert all(cases_by_key(cases)[k].options["weight"] not in (None, 1.0) for k in weighted)
    assert all(r.status == PASS for r in by(s, "grad"))
    assert any(r.test_id.endswith("[compiled]-value") for r in failing)


def cases_by_key(cases):
    return {(c.file, c.index): c for c in cases}


def test_a_graph_that_keeps_state_across_backward_twice_is_caught_by_twice_and_the_vjp(cases):
    s = session_for(d.keeps_graph_state, cases, loss=(SCE,), dtype=("float64",))
    failing = {(r.mode, r.check) for r in s.results if r.status == FAIL}
    assert failing == {("backward-twice", "twice"), ("backward-twice", "grad:pred")}
    twice = next(r for r in by(s, "backward-twice", "twice") if r.status == FAIL)
    assert "state kept in the graph?" in twice.message and "ratio 2" in twice.message
    assert all(r.status == PASS for r in by(s, "grad"))


def test_a_wrong_second_derivative_is_caught_by_the_exact_hvp(cases):
    """The fixtures carry exact HVPs (oracle/hvp.py): a zero HVP fails every hvp check
    whose exact HVP is not all zeros, and a case without one (no_hvp) is skipped, never
    passed."""
    s = session_for(d.wrong_hvp, cases, loss=(SCE,), dtype=("float32",), modes=("hvp",))
    hvp = [r for r in s.results if r.check.startswith("hvp:")]
    assert hvp
    for r in hvp:
        exact = r.case.hvp.get(r.check[4:])
        if exact is None:
            assert r.status == SKIP and "no exact Hessian-vector product" in r.message
        elif np.any(exact.hi != 0):
            assert r.status == FAIL, r.test_id
        else:
            assert r.status == PASS, r.test_id
    assert sum(r.status == FAIL for r in hvp) > 10
    assert {r.status for r in s.results if not r.check.startswith("hvp:")} == {PASS}


def test_float16_accumulation_passes_the_short_fixture_reductions_and_is_caught_on_a_long_one(cases):
    """The fixtures' short L2Loss reductions (at most a dozen terms) let naive float16
    summation pass (the gap issue 13 names); their ``long`` cases (16384 terms) catch it,
    and so does live mode's regime ``long``, where it stagnates and the value check fails."""
    short = [c for c in cases if "long" not in c.tags]
    s = session_for(d.float16_accumulation, short, dtype=("float16",), modes=("grad",))
    assert {r.status for r in s.results} == {PASS}
    long = [c for c in cases if "long" in c.tags]
    s = session_for(d.float16_accumulation, long, dtype=("float16",), modes=("grad",))
    assert any(r.status == FAIL and r.check == "value" for r in s.results)
    loss = catalog.resolve(L2)
    draw = live.Draw({}, "float16", 0, "long")
    inputs = live._sample(loss, draw)
    assert inputs["pred"].shape[-1] > 4000
    case = live.make_case(loss, draw, inputs)
    results = {r.check: r for r in live.check_case(d.float16_accumulation, case, modes=("grad",))}
    assert results["value"].status == FAIL and results["value"].error_ulps > 100
    assert {r.status for r in live.check_case(numpy_backend, case, modes=("grad",))} == {PASS}


# ================================================================= expectations and diff


def test_an_expectation_entry_may_name_a_mode(tmp_path, cases):
    path = tmp_path / "e.toml"
    path.write_text(
        '[[deviation]]\nloss = "L2Loss"\nmode = "forward"\ncheck = "value"\nreason = "the inference kernel (test)"\n'
    )
    exp = ex.load(path)
    s = session_for(d.forward_differs, cases, dtype=("float32",), expectations=exp)
    assert {r.status for r in by(s, "forward", "value")} <= {"known", PASS} and any(r.status == "known" for r in s.results)
    assert all(r.status == PASS for r in by(s, "grad", "value"))
    case = next(c for c in cases if c.short_loss == L2 and c.invalid is None)
    assert exp.entries[0].matches(case, "value", "forward") and not exp.entries[0].matches(case, "value", "grad")
    assert "mode forward" in exp.entries[0].describe()


def test_a_bad_mode_in_an_expectation_file_is_named(tmp_path):
    path = tmp_path / "e.toml"
    path.write_text('[[deviation]]\nloss = "L2Loss"\nmode = "jit"\nreason = "x.py"\n')
    with pytest.raises(ex.ExpectationError, match="mode 'jit' is not one of forward, grad"):
        ex.load(path)


def test_an_entry_for_a_check_of_one_mode_only_is_matchable(tmp_path, cases):
    path = tmp_path / "e.toml"
    path.write_text('[[deviation]]\nloss = "L2Loss"\ncheck = "twice"\nreason = "x.py"\n'
                    '[[deviation]]\nloss = "L2Loss"\nmode = "forward"\ncheck = "grad:pred"\nreason = "x.py"\n')
    exp = ex.load(path)
    dead = exp.unmatchable([c for c in cases if c.short_loss == L2], checks_for)
    assert [e.number for e in dead] == [2]  # forward has no gradient check


def test_diff_keeps_modes_apart_and_old_records_are_mode_grad(tmp_path, cases):
    s = session_for(numpy_backend, cases, dtype=("float32",))
    doc = s.to_json()
    old = json.loads(json.dumps(doc))
    old["records"] = [r for r in old["records"] if r.pop("mode") == "grad"]  # written before modes existed
    (tmp_path / "old.json").write_text(json.dumps(old))
    new = json.loads(json.dumps(doc))
    bad = next(r for r in new["records"] if r["mode"] == "forward" and r["check"] == "value")
    bad["status"], bad["verdict"] = "fail", "fails"
    (tmp_path / "new.json").write_text(json.dumps(new))
    result = diff.compare(tmp_path / "old.json", tmp_path / "new.json")
    assert not result.removed and result.compared == len(old["records"])
    assert {c.new["mode"] for c in result.added} == {"forward", "backward-twice"}
    assert not result.new_failures  # the failing forward check is new, not a regression of a grad check
    text = "\n".join(diff.format_text(result))
    assert "by mode:" in text and "forward:" in text
    # the same file against itself with the forward value now failing: a new failure in mode forward
    (tmp_path / "base.json").write_text(json.dumps(doc))
    result = diff.compare(tmp_path / "base.json", tmp_path / "new.json")
    assert [c.new["id"] for c in result.new_failures] == [bad["id"]] and "[forward]" in bad["id"]


# ================================================================= live mode


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_live_regimes_move_the_sampler_inputs(dtype):
    loss = catalog.resolve(L2)
    base = catalog.module(loss).sample(random.Random(1), {})
    info = np.finfo(dtype)

    def moved(regime):
        return live.in_regime(loss, base, regime, random.Random(2), dtype)

    assert moved("regular") is base
    big = np.max(np.abs(moved("extreme")["pred"]))
    assert float(info.max) / 2**11 <= big <= float(info.max)
    tiny = np.max(np.abs(moved("tiny")["pred"]))
    assert 0 < tiny < float(info.smallest_subnormal) * 2**21
    kink = moved("kink")
    assert all(set(np.unique(kink[k] * 2)) <= set(range(-4, 5)) for k in ("pred", "label"))
    long = moved("long")
    assert long["pred"].shape == long["label"].shape and long["pred"].shape[-1] * 2 >= min(live.LONG_TERMS)
    assert np.isinf(moved("limit")["pred"]).sum() == 1
    assert np.array_equal(moved("kink")["sample_weight"], kink["sample_weight"])


def test_live_runs_every_mode_and_regime_the_backend_declares(capsys):
    code = cli.main(["live", "numpy", "--loss", "HingeLoss", "--examples", "12", "--seed", "4",
                     "--regime", "regular", "--regime", "kink", "--regime", "extreme"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "modes forward/grad/backward-twice" in out and "regimes regular/kink/extreme" in out
    assert re.search(r"^HingeLoss\s+12 examples conform \(.*kink", out, re.M), out


def test_live_catches_a_defect_of_one_mode_and_names_the_mode(capsys):
    code = cli.main(["live", "tests.defect_backends:keeps_graph_state", "--loss", "L1Loss", "--examples", "5", "--seed", "1",
                     "--regime", "regular"])
    out = capsys.readouterr().out
    assert code == 1, out
    assert re.search(r"^L1Loss\s+FAILS (twice|grad:pred) in mode backward-twice", out, re.M), out
    assert "mode:      backward-twice" in out and "regime:    regular" in out
    assert cli.main(["live", "numpy", "--loss", "L1Loss", "--mode", "compiled", "--examples", "2"]) == 4
