"""Second derivations used by the oracle's self-verification: numerical differentiation
with mpmath at high precision, independent of every analytic VJP in oracle/losses."""

from __future__ import annotations

import mpmath
import numpy as np

import oracle
from oracle import catalog
from oracle import real as R
from oracle.api import convert_inputs
from oracle.precision import working_precision

NUMERIC_PRECISION_BITS = 320


def weighted_output(loss_id: str, x: dict, options: dict, ct: np.ndarray) -> mpmath.mpf:
    module = catalog.module(loss_id)
    fwd = module.forward(x, catalog.spec(loss_id).resolve_options(options))
    # the formula runs on enclosures (oracle.real); mpmath.diff needs numbers: the midpoint
    return R.fsum(np.asarray(fwd.value * ct, dtype=object).ravel()).mid()


def numeric_vjp(loss_id: str, inputs: dict, options: dict, ct, name: str, direction: int = 0) -> np.ndarray:
    """d/dt sum(ct * out(inputs with input `name` moved by t along each unit vector)),
    by mpmath.diff at NUMERIC_PRECISION_BITS; direction=+1/-1 gives one-sided derivatives."""
    with working_precision(NUMERIC_PRECISION_BITS):
        x = convert_inputs(loss_id, inputs)
        ctm = oracle.api.mpf_array(ct)
        base = x[name]
        out = np.empty(base.shape, dtype=object)
        for idx in np.ndindex(base.shape):
            def g(t, idx=idx):
                # mpmath.diff raises mpmath's precision for its steps: the enclosures follow it
                with working_precision(mpmath.mp.prec):
                    moved = base.copy()
                    moved[idx] = base[idx] + t
                    y = dict(x)
                    y[name] = moved
                    return weighted_output(loss_id, y, options, ctm)

            out[idx] = mpmath.diff(g, 0, direction=direction)
        return out


def close(a, b, rel: float, abs_: float = 0.0) -> bool:
    a, b = mpmath.mpf(a), mpmath.mpf(b)
    if mpmath.isinf(a) or mpmath.isinf(b) or mpmath.isnan(a) or mpmath.isnan(b):
        return (a == b) or (mpmath.isnan(a) and mpmath.isnan(b))
    return abs(a - b) <= max(rel * max(abs(a), abs(b)), abs_)
