"""Measuring a backend's result against the exact value, elementwise, under the policy
of :mod:`conformance.tolerance`. Pure numpy on double-double exact values; nothing here
knows a loss's formula."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .tolerance import FORMATS, Tolerance, eps

CONFORMS = "conforms"
STABLE = "within stability bound"
FAILS = "fails"


@dataclass
class Measurement:
    verdict: str  # CONFORMS | STABLE | FAILS
    error_ulps: float  # worst elementwise error in ULPs of the exact value
    error_scale: float  # worst error in units of eps * scale (value) or eps * norm (grads)
    bound: float  # the stability bound the error_scale was held to
    worst_index: tuple[int, ...] | None = None
    expected: str | None = None
    observed: str | None = None
    message: str = ""
    details: dict[str, Any] = field(default_factory=dict)


def ulp(x: np.ndarray, dtype: str) -> np.ndarray:
    """The spacing of ``dtype`` numbers at |x| (subnormal spacing below the normal range)."""
    p, emin = FORMATS[dtype]
    ax = np.abs(x)
    with np.errstate(divide="ignore", invalid="ignore"):
        _, e = np.frexp(np.where(np.isfinite(ax), ax, 1.0))
    e = np.where(ax > 0, np.maximum(e - 1, emin), emin)
    return np.ldexp(1.0, e - p + 1)


def _fmt(v: float, dtype: np.dtype | str = "float64") -> str:
    """The shortest decimal that round-trips ``v`` as a ``dtype`` number: an observed
    value is shown exactly as the backend returned it, every digit that differs visible."""
    if not np.isfinite(v):
        return str(v)
    return np.format_float_scientific(np.dtype(dtype).type(v), unique=True, trim="-")


def _infinity_problems(
    obs: np.ndarray, hi: np.ndarray, text: list[str] | None, obs_dtype: np.dtype | str = "float64"
) -> tuple[np.ndarray, list[str]]:
    """Elements whose exact value is not a finite float64 (inf, nan, or beyond float64),
    and whether the backend matched them. Returns (mask of such elements, messages)."""
    special = ~np.isfinite(hi)
    msgs = []
    for idx in zip(*np.nonzero(special)):
        e, o = hi[idx], obs[idx]
        if np.isnan(e):
            if not np.isnan(o):
                msgs.append(f"at {[int(i) for i in idx]} exact value is undefined (nan) but the backend returned {_fmt(o, obs_dtype)}")
        elif not (np.isinf(o) and np.sign(o) == np.sign(e)):
            what = "nan" if np.isnan(o) else ("the opposite infinity" if np.isinf(o) else f"the finite number {_fmt(o, obs_dtype)}")
            msgs.append(f"at {[int(i) for i in idx]} exact value is {'+' if e > 0 else '-'}inf but the backend returned {what}")
    return special, msgs


def measure(
    obs: np.ndarray,
    hi: np.ndarray,
    lo: np.ndarray,
    dtype: str,
    tol: Tolerance,
    n_terms: int,
    *,
    scale: np.ndarray | None = None,
    bounds: tuple[np.ndarray, np.ndarray] | None = None,
    text: list[str] | None = None,
    unit: np.ndarray | None = None,
) -> Measurement:
    """Compare ``obs`` with the exact ``hi + lo``. With ``scale`` (values) the stability
    bound is per element, eps * scale; without it (gradients) it is eps * max-norm of the
    exact result. ``bounds`` gives a kink's interval per element; ``unit`` may give
    ``ulp(hi, dtype)`` precomputed."""
    shape = np.shape(hi)
    if shape == ():  # a scalar output: measure it as a 1-element array
        m = measure(
            np.reshape(obs, (1,)), np.reshape(hi, (1,)), np.reshape(lo, (1,)), dtype, tol, n_terms,
            scale=None if scale is None else np.reshape(scale, (1,)),
            bounds=None if bounds is None else (np.reshape(bounds[0], (1,)), np.reshape(bounds[1], (1,))),
            text=text, unit=None if unit is None else np.reshape(unit, (1,)),
        )
        m.worst_index = () if m.worst_index is not None else None
        return m
    obs = np.asarray(obs)
    # the common case (conforms, or within the stability bound) as the batched pass does it;
    # the rest of this function explains everything else
    fast = conforming_many([(obs, hi, lo, ulp(hi, dtype) if unit is None else unit, dtype, tol, n_terms, scale, bounds, text)])[0]
    if fast is not None:
        return fast
    obs_dtype = obs.dtype if obs.dtype.kind == "f" else np.dtype(np.float64)
    obs = obs.astype(np.float64)
    with np.errstate(over="ignore"):
        # the exact value as the dtype rounds it: beyond the dtype's range it is +-inf,
        # and the backend must return that infinity (or a finite value within tolerance)
        rounded = (hi + lo).astype(dtype).astype(np.float64)
    overflow = np.isinf(rounded) & np.isfinite(hi) & (obs == rounded)
    special, msgs = _infinity_problems(obs, np.where(overflow, rounded, hi), text, obs_dtype)
    finite = ~special
    err = np.zeros(hi.shape)
    with np.errstate(invalid="ignore", over="ignore"):
        if bounds is not None:
            blo, bhi = bounds
            below = np.where(obs < blo, blo - obs, 0.0)
            above = np.where(obs > bhi, obs - bhi, 0.0)
            inside = (obs >= blo) & (obs <= bhi)
            point = np.abs((obs - hi) - lo)
            err = np.where(blo == bhi, point, np.where(inside, 0.0, below + above))
        else:
            err = np.abs((obs - hi) - lo)
        err = np.where(finite, err, 0.0)
        err = np.where(np.isnan(err), np.inf, err)  # a nan where the exact value is finite
        ulps = err / ulp(hi, dtype)
        e = eps(dtype)
        if scale is not None:
            denom = e * np.abs(scale)
        else:
            ref = np.abs(hi[finite]).max() if finite.any() else 0.0
            denom = np.full(hi.shape, e * ref)
        with np.errstate(divide="ignore"):
            scaled = np.where(err == 0, 0.0, err / np.where(denom > 0, denom, 0.0))
    bound = tol.bound(n_terms)
    elem_ok_ulps = ulps <= tol.ulps
    elem_ok = elem_ok_ulps | (scaled <= bound)
    worst = None
    if err.size and finite.any():
        flat = np.where(finite, ulps, -1.0)
        worst = tuple(int(i) for i in np.unravel_index(int(np.argmax(flat)), err.shape))
    m = Measurement(
        verdict=CONFORMS,
        error_ulps=float(ulps[finite].max()) if finite.any() else 0.0,
        error_scale=float(scaled[finite].max()) if finite.any() else 0.0,
        bound=bound,
        worst_index=worst,
    )
    if worst is not None:
        m.expected = text[int(np.ravel_multi_index(worst, err.shape))] if text else _fmt(hi[worst])
        m.observed = _fmt(obs[worst], obs_dtype)
    if msgs:
        m.verdict = FAILS
        m.message = "; ".join(msgs[:3]) + (f" (and {len(msgs) - 3} more)" if len(msgs) > 3 else "")
        if worst is None:
            idx = next(zip(*np.nonzero(special)))
            m.worst_index = tuple(int(i) for i in idx)
            m.expected = "inf" if hi[idx] > 0 else ("-inf" if hi[idx] < 0 else "nan")
            m.observed = _fmt(obs[idx], obs_dtype)
    elif not bool(np.all(elem_ok[finite])):
        m.verdict = FAILS
        bad = ~elem_ok & finite
        m.details["failing_elements"] = int(bad.sum())
        nan_at = np.isnan(obs) & finite
        if nan_at.any():
            first = [int(i) for i in next(zip(*np.nonzero(nan_at)))]
            m.message = f"nan at {first} ({int(nan_at.sum())} element(s)) where the exact value is finite"
        elif np.isinf(obs[finite]).any():
            first = [int(i) for i in next(zip(*np.nonzero(np.isinf(obs) & finite)))]
            m.message = f"inf at {first} where the exact value is finite (overflow?)"
        else:
            m.message = _diagnose(obs, hi, err, scaled, bad, dtype, tol, bound)
    elif not bool(np.all(elem_ok_ulps[finite])):
        m.verdict = STABLE
    return m


#: the next narrower format, for recognising a result computed in it
_NARROWER = {"float64": "float32", "float32": "float16"}


def _diagnose(obs, hi, err, scaled, bad, dtype, tol, bound) -> str:
    """The failure message for finite errors beyond tolerance, with a hint at the cause
    where the pattern is unmistakable: every failing element has the exact value's
    magnitude with the opposite sign, or every error would pass at the next narrower
    dtype's precision (the result was computed in that dtype)."""
    msg = f"error beyond tolerance in {int(bad.sum())} element(s)"
    o, h = obs[bad], hi[bad]
    if np.all((h != 0) & (np.abs(o + h) <= 1e-2 * np.abs(h))):
        return msg + ", each with the exact value's magnitude and the opposite sign (sign flipped?)"
    narrow = _NARROWER.get(dtype)
    if narrow is not None:
        with np.errstate(divide="ignore", invalid="ignore"):
            narrow_ulps = err / ulp(hi, narrow)
            ok = (narrow_ulps <= tol.ulps) | (scaled * (eps(dtype) / eps(narrow)) <= bound)
        # and the errors look like the narrower rounding, not like a few ULPs of dtype
        if np.all(ok[bad]) and np.max(narrow_ulps[bad]) >= 0.05:
            return msg + f"; every error is within {narrow}'s tolerance (computed in {narrow} instead of {dtype}?)"
    return msg


#: one array to measure in :func:`conforming_many`: the observed result (already of the
#: exact value's shape), the exact ``hi`` and ``lo``, ``ulp(hi, dtype)``, the dtype, the
#: tolerance, the number of terms, ``scale`` (values; None for gradients), the kink
#: bounds (or None) and the exact values' text
Job = tuple[
    np.ndarray, np.ndarray, np.ndarray, np.ndarray, str, Tolerance, int,
    "np.ndarray | None", "tuple[np.ndarray, np.ndarray] | None", "list[str] | None",
]


def conforming_many(jobs: list[Job]) -> list[Measurement | None]:
    """:func:`measure` for many arrays in one vectorised pass: the Measurement it gives
    for each array that conforms or is within the stability bound, None for every other
    one (a kink's bounds, a non-finite exact value or error, a non-float result, a size
    mismatch, an error beyond tolerance): call :func:`measure` for those, which explains
    failures."""
    out: list[Measurement | None] = [None] * len(jobs)
    sel = [
        i for i, (obs, hi, lo, unit, _, _, _, scale, bounds, _) in enumerate(jobs)
        if bounds is None and obs.dtype.kind == "f" and hi.size > 0 and obs.shape == hi.shape
        and lo.shape == hi.shape and unit.shape == hi.shape and (scale is None or scale.shape == hi.shape)
    ]
    if not sel:
        return out
    chosen = [jobs[i] for i in sel]
    sizes = np.array([j[1].size for j in chosen])
    ends = np.cumsum(sizes)
    starts = ends - sizes
    with np.errstate(all="ignore"):
        o = np.concatenate([j[0].ravel() for j in chosen], dtype=np.float64)
        hi = np.concatenate([j[1].ravel() for j in chosen])
        lo = np.concatenate([j[2].ravel() for j in chosen])
        unit = np.concatenate([j[3].ravel() for j in chosen])
        eps_of = {d: eps(d) for d in {j[4] for j in chosen}}
        e = np.array([eps_of[j[4]] for j in chosen])
        has_scale = np.array([j[7] is not None for j in chosen])
        scale = np.concatenate([np.abs(j[7]).ravel() if j[7] is not None else np.zeros(j[1].size) for j in chosen])
        absmax = np.maximum.reduceat(np.abs(hi), starts)
        finite_hi = np.add.reduceat(~np.isfinite(hi), starts) == 0
        # eps * |scale| per element (values), eps * max-norm of the exact result (gradients)
        denom = np.where(np.repeat(has_scale, sizes), np.repeat(e, sizes) * scale, np.repeat(e * absmax, sizes))
        nan_denom = np.add.reduceat(np.isnan(denom), starts) > 0
        err = o - hi
        err -= lo
        np.abs(err, out=err)
        ulps = err / unit
        worst = np.maximum.reduceat(ulps, starts)
        n = ulps.size
        first = np.minimum.reduceat(np.where(ulps == np.repeat(worst, sizes), np.arange(n), n), starts) - starts
        scaled = err / denom
        scaled[err == 0] = 0.0
        worst_scaled = np.maximum.reduceat(scaled, starts)
        tol_ulps = np.array([j[5].ulps for j in chosen])
        bound = np.array([j[5].bound(j[6]) for j in chosen])
        elem_ok = (ulps <= np.repeat(tol_ulps, sizes)) | (scaled <= np.repeat(bound, sizes))
        n_bad = np.add.reduceat(~elem_ok, starts)
    for j, (i, job) in enumerate(zip(sel, chosen)):
        w = worst[j]
        if not (finite_hi[j] and np.isfinite(w)) or nan_denom[j]:
            continue
        if w <= tol_ulps[j]:
            verdict = CONFORMS
        elif n_bad[j] == 0:
            verdict = STABLE
        else:
            continue
        obs, h, text = job[0], job[1], job[9]
        k = int(first[j])
        if h.ndim == 0:
            idx: tuple[int, ...] = ()
        elif h.ndim == 1:
            idx = (k,)
        else:
            idx = tuple(int(x) for x in np.unravel_index(k, h.shape))
        at = int(starts[j]) + k
        out[i] = Measurement(
            verdict=verdict,
            error_ulps=float(w),
            error_scale=float(worst_scaled[j]),
            bound=float(bound[j]),
            worst_index=idx,
            expected=text[k] if text else _fmt(hi[at]),
            observed=_fmt(o[at], obs.dtype),
        )
    return out
