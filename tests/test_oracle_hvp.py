"""Self-verification of the oracle's exact second order (oracle.hvp): for every loss and
every option variant the fixtures cover, the HVP (forward mode on the loss module's own VJP
code) against mpmath's numerical differentiation of the VJP along the direction; at kinks
of the first derivative, the interval against both one-sided numerical derivatives; where
the first derivative jumps, no HVP; and the fixtures carry an HVP for every case whose VJP
is not at a kink."""

from __future__ import annotations

import copy
import json
import random
from pathlib import Path

import mpmath
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import oracle
from oracle import cases as C
from oracle import catalog
from oracle.api import convert_inputs
from oracle.fixtures import expand_runs
from oracle.hvp import NoSecondDerivative, evaluate_hvp
from oracle.precision import working_precision
from tests.verify_helpers import NUMERIC_PRECISION_BITS, close

LOSSES = catalog.loss_ids()
VARIANTS = [(loss, opts) for loss in LOSSES for opts in C.option_variants(catalog.spec(loss))]
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def _id(v):
    loss, opts = v
    return f"{catalog.spec(loss).short_name}[{C.variant_name(opts)}]"


def numeric_hvp(loss_id: str, inputs: dict, options: dict, ct, direction: dict, name: str, side: int = 0) -> np.ndarray:
    """d/dt VJP_name(inputs + t * direction) at t = 0, each element by mpmath.diff (side
    +1/-1: one-sided), the VJP taken at each step's exact point (its midpoint) at the
    precision mpmath.diff asks for."""
    spec = catalog.spec(loss_id)
    opts = spec.resolve_options(options)
    module = catalog.module(loss_id)
    cache: dict = {}

    def vjp_at(t):
        key = (t, mpmath.mp.prec)
        if key not in cache:
            with working_precision(mpmath.mp.prec):
                x = convert_inputs(loss_id, inputs)
                for k, d in direction.items():
                    dd = oracle.api.mpf_array(d)
                    x[k] = np.vectorize(lambda a, b: a + oracle.real.real(t) * b, otypes=[object])(x[k], dd)
                ctm = oracle.api.mpf_array(ct)
                g = module.forward(x, opts).vjp(ctm)[name]
                cache[key] = np.vectorize(lambda v: v.mid(), otypes=[object])(g.lo)
        return cache[key]

    with working_precision(NUMERIC_PRECISION_BITS):
        shape = vjp_at(mpmath.mpf(0)).shape
        out = np.empty(shape, dtype=object)
        for idx in np.ndindex(shape):
            out[idx] = mpmath.diff(lambda t, idx=idx: vjp_at(t)[idx], 0, direction=side)
    return out


def _direction(loss: str, inputs: dict, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    spec = catalog.spec(loss)
    return {n: rng.normal(size=np.shape(inputs[n])) for n in spec.differentiable if inputs.get(n) is not None}


@pytest.mark.parametrize("variant", VARIANTS, ids=_id)
@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1))
def test_hvp_matches_numerical_derivative_of_the_vjp(variant, seed):
    loss, opts = variant
    inputs = catalog.module(loss).sample(random.Random(seed), opts)
    shape = oracle.evaluate(loss, inputs, opts, wrt=()).shape
    ct = C.cotangent_for(random.Random(seed ^ 0x5EED), shape, "float64") if shape else np.float64(1.5)
    direction = _direction(loss, inputs, seed)
    h = evaluate_hvp(loss, inputs, opts, direction=direction, cotangent=ct)
    assert h
    for name, g in h.items():
        assert not g.at_kink.any(), f"{loss} {opts}: random point landed on a kink of the first derivative"
        num = numeric_hvp(loss, inputs, opts, ct, direction, name)
        scale = max([abs(v) for v in num.ravel()] + [mpmath.mpf(1)])
        for idx in np.ndindex(num.shape):
            assert close(g.value[idx], num[idx], rel=mpmath.mpf(2) ** -120, abs_=scale * mpmath.mpf(2) ** -120), (
                f"{loss} {opts} hvp {name}{list(idx)}: forward mode {g.value[idx]} vs numerical {num[idx]}"
            )
            assert g.scale[idx] >= abs(g.value[idx]) * (1 - mpmath.mpf(2) ** -20)


def _kink_cases():
    for loss in LOSSES:
        for case in catalog.module(loss).cases():
            if "kink" in case.tags and case.dtype == "float64" and case.invalid is None:
                yield pytest.param(loss, case, id=f"{catalog.spec(loss).short_name}-{case.name}")


@pytest.mark.parametrize("loss,case", list(_kink_cases()))
def test_at_a_kink_the_hvp_interval_holds_both_one_sided_derivatives(loss, case):
    """Where the VJP is continuous (Huber at |r| = rho, squared hinge at the margin) the
    HVP is exact or the interval between the one-sided numerical derivatives; where the
    VJP is an interval (the first derivative jumps) there is no HVP."""
    r = oracle.evaluate(loss, case.inputs, case.options)
    ct = np.ones(r.shape) * 0.75
    direction = _direction(loss, case.inputs, 7)
    if any(g.at_kink.any() for g in r.grads.values()):
        with pytest.raises(NoSecondDerivative):
            evaluate_hvp(loss, case.inputs, case.options, direction=direction, cotangent=ct)
        return
    h = evaluate_hvp(loss, case.inputs, case.options, direction=direction, cotangent=ct)
    for name, g in h.items():
        right = numeric_hvp(loss, case.inputs, case.options, ct, direction, name, side=1)
        left = numeric_hvp(loss, case.inputs, case.options, ct, direction, name, side=-1)
        tol = mpmath.mpf(2) ** -100
        for idx in np.ndindex(g.lo.shape):
            lo, hi = sorted([right[idx], left[idx]])
            assert close(g.lo[idx], lo, rel=tol, abs_=tol) and close(g.hi[idx], hi, rel=tol, abs_=tol), (
                f"{loss} {case.name} hvp {name}{list(idx)}: [{g.lo[idx]}, {g.hi[idx]}] vs one-sided {lo}, {hi}"
            )


def test_one_sided_interval_at_the_huber_knee():
    """Huber, |pred - label| == rho: the second derivative jumps from 1/rho to 0."""
    h = evaluate_hvp("HuberLoss", {"pred": [[2.0]], "label": [[1.0]]}, direction={"pred": [[1.0]]}, cotangent=[1.0])
    g = h["pred"]
    assert (g.lo[0, 0], g.hi[0, 0], g.value[0, 0]) == (0, 1, mpmath.mpf(0.5))


def test_one_class_softmax_hvp_is_exactly_zero_with_the_documented_terms():
    """chainer's softmax cross-entropy of one class: the loss -log_softmax(x) is 0 for every
    x, so the HVP is an exact 0; its term scale is that of the documented x_k - logsumexp(x),
    whose t-derivative v_k - p_k v_k (p_k = 1) adds two terms of |v_k|, times the cotangent:
    2 |c| |v| (a floating-point evaluation errs at that scale, not at the dtype's subnormals)."""
    c, v = -0.4286802, -0.5772051
    h = evaluate_hvp("softmax_cross_entropy", {"x": [[-2.2675176]], "t": [0]}, direction={"x": [[v]]},
                     cotangent=c)
    g = h["x"]
    assert g.value[0, 0] == 0 and g.lo[0, 0] == 0 and g.hi[0, 0] == 0
    assert close(g.scale[0, 0], 2 * abs(c) * abs(v), rel=mpmath.mpf(2) ** -20, abs_=0)


def test_hinge_at_the_margin_has_no_hvp():
    with pytest.raises(NoSecondDerivative, match="Dirac"):
        evaluate_hvp("HingeLoss", {"pred": [[1.0, 0.3]], "label": [[1.0, -1.0]]},
                      direction={"pred": [[0.5, 1.0]]}, cotangent=[1.0])


def test_the_direction_must_match_the_inputs():
    with pytest.raises(oracle.OracleError, match="direction"):
        evaluate_hvp("L2Loss", {"pred": [[1.0, 2.0]], "label": [[0.0, 0.0]]}, direction={"pred": [[1.0]]})


def test_fixtures_carry_the_hvp_of_every_case_off_a_kink():
    """Every valid case has a direction per differentiable input (in the case dtype) and an
    hvp of the VJP's shape, or a no_hvp reason; no_hvp only where the first derivative is
    not differentiable (its VJP at a kink, a domain boundary, a non-finite VJP)."""
    seen = 0
    for path in sorted(FIXTURES.glob("*.json")):
        if path.name in ("MANIFEST.json", "schema.json"):
            continue
        doc = json.loads(path.read_text())
        for c in doc["cases"]:
            if "invalid" in c:
                assert "hvp" not in c and "direction" not in c
                continue
            assert set(c["direction"]) == set(c["vjp"]), (path.name, c["name"])
            for d in c["direction"].values():
                assert d["dtype"] == c["dtype"]
            kinked = any("lo" in v for v in c["vjp"].values())
            if "hvp" in c:
                assert not kinked
                seen += 1
                for k, v in c["hvp"].items():
                    assert v["shape"] == c["vjp"][k]["shape"]
                    assert len(expand_runs(v["value"])) == len(expand_runs(v["scale"])) == int(np.prod(v["shape"]))
            else:
                assert c["no_hvp"], (path.name, c["name"])
                assert kinked or any(w in c["no_hvp"] for w in ("domain", "not finite", "unbounded")), c["no_hvp"]
    assert seen > 800


def test_verify_recompute_re_proves_the_recorded_hvp():
    """``lossconf fixtures verify --recompute`` re-derives each sampled case's HVP along its
    recorded direction: the committed ones agree, an altered digit is reported by name."""
    from oracle.fixtures import recompute_cases

    data = json.loads((FIXTURES / "l2_loss.json").read_text())
    cases = [c for c in data["cases"] if "hvp" in c][:2]
    assert recompute_cases("l2_loss.json", data["loss"], cases) == []
    bad = copy.deepcopy(cases)
    value = bad[0]["hvp"]["pred"]["value"]
    value[0] = repr(float(value[0]) * 1.001)
    problems = recompute_cases("l2_loss.json", data["loss"], bad)
    assert len(problems) == 1 and "hvp:pred[0]" in problems[0], problems
