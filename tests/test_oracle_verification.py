"""Independent verification of every loss in the catalog:

* each analytic VJP against mpmath's numerical differentiation at random points drawn by
  hypothesis, for every option variant the fixtures cover;
* each value re-derived at a higher precision and shown to be the same proven value;
* at a kink, the oracle's interval holds both one-sided derivatives.
"""

from __future__ import annotations

import random

import mpmath
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import oracle
from oracle import cases as C
from oracle import catalog, precision
from tests.verify_helpers import close, numeric_vjp

LOSSES = catalog.loss_ids()
VARIANTS = [(loss, opts) for loss in LOSSES for opts in C.option_variants(catalog.spec(loss))]


def _id(v):
    loss, opts = v
    return f"{catalog.spec(loss).short_name}[{C.variant_name(opts)}]"


def _sample(loss: str, opts: dict, seed: int) -> dict:
    module = catalog.module(loss)
    return module.sample(random.Random(seed), opts)


@pytest.mark.parametrize("variant", VARIANTS, ids=_id)
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1))
def test_vjp_matches_numerical_derivative(variant, seed):
    loss, opts = variant
    inputs = _sample(loss, opts, seed)
    shape = oracle.evaluate(loss, inputs, opts, wrt=()).shape
    ct = C.cotangent_for(random.Random(seed ^ 0x5EED), shape, "float64") if shape else np.float64(1.5)
    r = oracle.evaluate(loss, inputs, opts, cotangent=ct)
    assert r.grads, f"{loss}: no gradient computed"
    for name, grad in r.grads.items():
        assert not grad.at_kink.any(), f"{loss} {opts}: random point landed on a kink"
        num = numeric_vjp(loss, inputs, opts, ct, name)
        scale = max([abs(v) for v in num.ravel()] + [mpmath.mpf(1)])
        for idx in np.ndindex(num.shape):
            assert close(grad.lo[idx], num[idx], rel=mpmath.mpf(2) ** -150, abs_=scale * mpmath.mpf(2) ** -150), (
                f"{loss} {opts} d/d{name}{list(idx)}: analytic {grad.lo[idx]} vs numerical {num[idx]}"
            )


@pytest.mark.parametrize("variant", VARIANTS, ids=_id)
@settings(max_examples=3, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_value_is_the_same_at_a_higher_precision(variant, seed):
    loss, opts = variant
    inputs = _sample(loss, opts, seed)
    lo = oracle.evaluate(loss, inputs, opts)
    hi = oracle.evaluate(loss, inputs, opts, precision_bits=precision.VERIFY_PRECISION_BITS)
    tol = mpmath.mpf(2) ** -(precision.get_working_precision() - 16)
    for idx in np.ndindex(lo.shape):
        scale = max(abs(lo.scale[idx]), mpmath.mpf(2) ** -1000)
        assert abs(lo.value[idx] - hi.value[idx]) <= tol * scale, (loss, opts, idx)
        assert precision.to_decimal(lo.value[idx]) == precision.to_decimal(hi.value[idx]) or close(
            lo.value[idx], hi.value[idx], rel=mpmath.mpf(10) ** -38
        )


def _kink_cases():
    for loss in LOSSES:
        for case in catalog.module(loss).cases():
            if "kink" in case.tags and case.dtype == "float64" and case.invalid is None:
                yield pytest.param(loss, case, id=f"{catalog.spec(loss).short_name}-{case.name}")


@pytest.mark.parametrize("loss,case", list(_kink_cases()))
def test_kink_interval_holds_both_one_sided_derivatives(loss, case):
    r = oracle.evaluate(loss, case.inputs, case.options)
    assert any(g.at_kink.any() for g in r.grads.values()), f"{loss} {case.name}: tagged kink but no interval"
    ct = np.ones(r.shape)
    for name, grad in r.grads.items():
        right = numeric_vjp(loss, case.inputs, case.options, ct, name, direction=1)
        left = numeric_vjp(loss, case.inputs, case.options, ct, name, direction=-1)
        with mpmath.workprec(precision.VERIFY_PRECISION_BITS):  # compare without re-rounding to 53 bits
            eps = mpmath.mpf(2) ** -100
            for idx in np.ndindex(right.shape):
                lo, hi = grad.lo[idx], grad.hi[idx]
                for d in (left[idx], right[idx]):
                    assert lo - eps * (1 + abs(lo)) <= d <= hi + eps * (1 + abs(hi)), (loss, case.name, name, idx, lo, hi, d)
