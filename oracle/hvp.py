"""Exact second order: the Hessian-vector product of a loss, proven like first-order values.

The HVP for input ``a`` in direction ``v`` (one array per differentiable input, all moving
together) with the cotangent ``c`` fixed is

    hvp_a = d/dt VJP_a(x + t v; c) at t = 0.

It is computed generically, with no per-loss derivation: each loss module's own forward and
VJP code runs on inputs that carry the direction as their t-derivative (forward mode:
:attr:`oracle.real.Real.t`, every operation applying the chain rule on arb enclosures), so
the t-derivative of each VJP element is the HVP element, an enclosure proven to every written
digit like a first-order value (precision doubled until :func:`oracle.api.prove` accepts it).
Its term scale is the term magnitude of that t-derivative (:mod:`oracle.real`: the running
error bound of the same forward-mode evaluation).

Branches on computed values are decided on the germ at t = 0+ (values first, exactly equal
values by their t-derivatives): the run gives the right derivative along ``v``. When some
branch was decided that way (the line crosses a kink of a branch), the run is repeated along
``-v``, whose negated t-derivative is the left derivative, and:

* where the two VJPs themselves differ (the first derivative jumps: hinge at the margin, L1 at
  0, a relu of a sum at 0), the second derivative along ``v`` is a Dirac measure, which no
  finite number represents: the case has no HVP (:class:`NoSecondDerivative`, with the
  reason; the fixture records it as ``no_hvp``);
* where the VJP is continuous but its one-sided derivatives differ (Huber at |r| = rho,
  squared hinge at the margin: a kink of the first derivative), the HVP element is the
  interval between them (``lo``, ``hi``, the midpoint as its value), as a VJP at a kink is;
* where they agree, the HVP is exact.

A tie that survives to first order (two germs with equal values and equal nonzero
t-derivatives) cannot be decided this way; the case then has no HVP either.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from . import arrays as A
from . import catalog, precision
from . import real as R
from .api import convert_inputs, prove
from .errors import InputError, OracleError
from .real import Undecided
from .result import Gradient

#: a t-derivative that is not finite (an unbounded derivative, or |x| of an enclosure whose
#: sign is not decided yet) raises the precision up to here before the case is said to have
#: no HVP
RETRY_NONFINITE_BITS = 2048


class NoSecondDerivative(OracleError):
    """The VJP is not differentiable along the direction at this point (a Dirac, or a tie
    that survives to first order): the case has no HVP."""


def evaluate_hvp(
    loss: str,
    inputs: Mapping[str, Any],
    options: Mapping[str, Any] | None = None,
    *,
    direction: Mapping[str, Any],
    cotangent: Any = None,
    wrt: Sequence[str] | None = None,
    precision_bits: int | None = None,
    dtypes: Sequence[str] | None = None,
) -> dict[str, Gradient]:
    """The proven HVP of a loss for each input in ``wrt`` (default: every differentiable
    input): a :class:`Gradient` per input (``lo``/``hi`` differ at a kink of the first
    derivative; ``scale`` the term magnitudes). ``direction`` maps every differentiable
    input to an array of its shape; ``cotangent`` defaults to ones of the output's shape.
    Raises :class:`NoSecondDerivative` where the VJP is not differentiable along the
    direction, :class:`OracleError` where an element cannot be proven up to the cap."""
    loss_id = catalog.resolve(loss)
    spec = catalog.spec(loss_id)
    opts = spec.resolve_options(dict(options or {}))
    moving = tuple(n for n in spec.differentiable if inputs.get(n) is not None)
    wrt = moving if wrt is None else tuple(wrt)
    for name in moving:
        if name not in direction:
            raise InputError(f"{spec.id}: the direction has no array for input {name!r}")
        if np.shape(direction[name]) != np.shape(inputs[name]):
            raise InputError(
                f"{spec.id}: the direction for {name!r} has shape {np.shape(direction[name])}; "
                f"expected the input's shape {np.shape(inputs[name])}"
            )
    bits = precision_bits or precision.get_working_precision()
    dts = tuple(precision.FORMATS) if dtypes is None else tuple(str(np.dtype(d)) for d in dtypes)
    tried: list[str] = []
    while True:
        try:
            out, unproven = _hvp_at(loss_id, inputs, opts, cotangent, direction, moving, wrt, bits, dts)
            if not unproven:
                return out
            tried.append(f"{bits} bits: {unproven[0]} unproven")
        except Undecided as why:
            tried.append(f"{bits} bits: a branch undecided ({why})")
        if bits >= precision.MAX_PRECISION_BITS:
            raise OracleError(f"{spec.id}: the HVP cannot be proven up to the cap: " + "; ".join(tried[-3:]))
        bits = min(bits * 2, precision.MAX_PRECISION_BITS)


def _run(loss_id: str, inputs: Mapping[str, Any], opts: dict, cotangent: Any, direction: Mapping[str, Any],
         moving: tuple, wrt: tuple, sign: int) -> tuple[dict[str, Gradient], dict[str, int]]:
    """One forward-mode run along ``sign * direction``: the VJPs (their elements carry the
    t-derivatives) and the germ counters."""
    module = catalog.module(loss_id)
    x = convert_inputs(loss_id, inputs)
    for name in moving:
        d = np.asarray(direction[name], dtype=np.float64)
        arr = x[name]
        moved = np.empty(arr.shape, dtype=object)
        for idx in np.ndindex(arr.shape):
            moved[idx] = R.with_tangent(arr[idx], sign * float(d[idx]))
        x[name] = moved
    R.reset_germ()
    try:
        fwd = module.forward(x, opts)
        shape = np.shape(fwd.value)
        ct = A.full(shape, 1) if cotangent is None else A.asmp(np.asarray(cotangent, dtype=np.float64).reshape(shape))
        grads = fwd.vjp(ct)
    except InputError as why:
        # on the boundary of the documented domain (a probability of 0 or 1 ...), the line
        # x + t v leaves it on one side: no two-sided derivative
        raise NoSecondDerivative(
            f"{catalog.spec(loss_id).id}: the line x + t * direction leaves the documented domain at this point "
            f"(for t on one side: {why})"
        ) from None
    except ZeroDivisionError:
        raise NoSecondDerivative(
            f"{catalog.spec(loss_id).id}: a derivative of the formula is unbounded at this point (a division by an exact zero)"
        ) from None
    germ = dict(R.GERM)
    return {k: g for k, g in grads.items() if k in wrt}, germ


def _hvp_at(loss_id: str, inputs: Mapping[str, Any], opts: dict, cotangent: Any, direction: Mapping[str, Any],
            moving: tuple, wrt: tuple, bits: int, dts: tuple) -> tuple[dict[str, Gradient], list[str]]:
    spec = catalog.spec(loss_id)
    floor = bits >= precision.FLOOR_PRECISION_BITS
    unproven: list[str] = []
    with precision.working_precision(bits):
        right, germ = _run(loss_id, inputs, opts, cotangent, direction, moving, wrt, +1)
        left = None
        if germ["ties"]:
            left, germ_left = _run(loss_id, inputs, opts, cotangent, direction, moving, wrt, -1)
            germ["flat"] += germ_left["flat"]
        if germ["flat"]:
            raise NoSecondDerivative(
                f"{spec.id}: a tie of computed values persists to first order along the direction "
                "(equal values with equal t-derivatives): the one-sided derivatives cannot be decided"
            )
        out: dict[str, Gradient] = {}
        for name, g in right.items():
            if g.at_kink.any():
                raise NoSecondDerivative(
                    f"{spec.id}: the VJP of {name} is at a kink along the direction (a jump of the first "
                    "derivative): its derivative is a Dirac measure"
                )
            shape = np.shape(g.lo)
            lo = np.empty(shape, dtype=object)
            hi = np.empty(shape, dtype=object)
            mid = np.empty(shape, dtype=object)
            scale = np.empty(shape, dtype=object)
            gl = left[name] if left is not None else None
            for idx in np.ndindex(shape):
                v = g.lo[idx]
                if not R.isfinite(v):
                    raise NoSecondDerivative(f"{spec.id}: the VJP of {name}{list(idx)} is not finite")
                tr = R.tangent(v)
                if not R.isfinite(tr) and bits < RETRY_NONFINITE_BITS:
                    raise Undecided(f"the HVP of {name}{list(idx)} is not finite at {bits} bits")
                if not R.isfinite(tr):
                    raise NoSecondDerivative(
                        f"{spec.id}: the HVP of {name}{list(idx)} is not finite (a derivative of the "
                        "formula is unbounded there)"
                    )
                sides = [tr]
                if gl is not None:
                    if gl.at_kink[idx]:
                        raise NoSecondDerivative(f"{spec.id}: the VJP of {name} is at a kink along -direction")
                    w = gl.lo[idx]
                    # the VJP's one-sided limits: a jump makes the second derivative a Dirac
                    if not R.isfinite(w) or _differ(v, w, dts, floor):
                        raise NoSecondDerivative(
                            f"{spec.id}: the VJP of {name}{list(idx)} jumps at this point along the direction "
                            "(a kink of the loss): its derivative there is a Dirac measure"
                        )
                    tl = -R.tangent(w)
                    if not R.isfinite(tl):
                        raise NoSecondDerivative(f"{spec.id}: the HVP of {name}{list(idx)} is not finite")
                    sides.append(tl)
                proven = [prove(s, dts, floor=floor) for s in sides]
                if any(p is None for p in proven):
                    unproven.append(f"hvp {name}{list(idx)}")
                    continue
                m = max(s.magnitude() for s in sides)
                scale[idx] = m
                if len(proven) == 1 or _same(proven[0], proven[1], dts):
                    lo[idx] = hi[idx] = mid[idx] = proven[0]
                    continue
                a, b = (0, 1) if proven[0] <= proven[1] else (1, 0)
                lo[idx], hi[idx] = proven[a], proven[b]
                pm = prove((sides[0] + sides[1]) / 2, dts, floor=floor)
                if pm is None:
                    unproven.append(f"hvp {name}{list(idx)} midpoint")
                    continue
                mid[idx] = pm
            out[name] = Gradient(lo, hi, mid, scale)
    return out, unproven


def _same(a: Any, b: Any, dts: tuple) -> bool:
    """Two proven values that are written alike (every digit and every rounding)."""
    return precision.to_decimal(a) == precision.to_decimal(b) and all(
        precision.round_to(a, d) == precision.round_to(b, d) for d in dts
    )


def _differ(v: R.Real, w: R.Real, dts: tuple, floor: bool) -> bool:
    """Whether two first-order values (the VJP's right and left limits) are different;
    Undecided while their enclosures do not tell."""
    if v.b is not None and w.b is not None:
        d = v.b - w.b
        if d.is_zero():
            return False
        if d > 0 or d < 0:
            return True
    a, b = prove(v, dts, floor=floor), prove(w, dts, floor=floor)
    if a is None or b is None:
        raise Undecided("the VJP's one-sided limits are not proven yet")
    return not _same(a, b, dts)


__all__ = ["evaluate_hvp", "NoSecondDerivative"]
