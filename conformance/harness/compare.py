"""Measuring a backend's result against the exact value, elementwise, under the policy
of :mod:`conformance.harness.tolerance`. Pure numpy on double-double exact values; nothing here
knows a loss's formula."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np

from .tolerance import FORMATS, Tolerance, eps, growth

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
    #: the worst element as the backend returned it, (value, dtype): formatted only when
    #: shown (:attr:`observed`), so a passing check costs no decimal conversion
    observed_element: tuple[Any, Any] | None = None
    message: str = ""
    failing_elements: int | None = None

    @property
    def observed(self) -> str | None:
        """The worst element as the shortest decimal that round-trips in its dtype."""
        return None if self.observed_element is None else shown(*self.observed_element)


def ulp(x: np.ndarray, dtype: str) -> np.ndarray:
    """The spacing of ``dtype`` numbers at |x| (subnormal spacing below the normal range)."""
    p, emin = FORMATS[dtype]
    ax = np.abs(x)
    with np.errstate(divide="ignore", invalid="ignore"):
        _, e = np.frexp(np.where(np.isfinite(ax), ax, 1.0))
    e = np.where(ax > 0, np.maximum(e - 1, emin), emin)
    return np.ldexp(1.0, e - p + 1)


def shown(v: float, dtype: np.dtype | str = "float64") -> str:
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
                msgs.append(f"at {[int(i) for i in idx]} exact value is undefined (nan) but the backend returned {shown(o, obs_dtype)}")
        elif not (np.isinf(o) and np.sign(o) == np.sign(e)):
            what = "nan" if np.isnan(o) else ("the opposite infinity" if np.isinf(o) else f"the finite number {shown(o, obs_dtype)}")
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
    batched: bool = True,
) -> Measurement:
    """Compare ``obs`` with the exact ``hi + lo``. With ``scale`` (values) the stability
    bound is per element, eps * scale; without it (gradients) it is eps * max-norm of the
    exact result. ``bounds`` gives a kink's interval per element; ``unit`` may give
    ``ulp(hi, dtype)`` precomputed. The common case -- conforms, or within the stability
    bound -- is the vectorised pass's (:func:`conforming_many`); ``batched=False`` skips
    that attempt where the caller knows the pass declined the array."""
    shape = np.shape(hi)
    if shape == ():  # a scalar output: measure it as a 1-element array
        m = measure(
            np.reshape(obs, (1,)), np.reshape(hi, (1,)), np.reshape(lo, (1,)), dtype, tol, n_terms,
            scale=None if scale is None else np.reshape(scale, (1,)),
            bounds=None if bounds is None else (np.reshape(bounds[0], (1,)), np.reshape(bounds[1], (1,))),
            text=text, unit=None if unit is None else np.reshape(unit, (1,)), batched=batched,
        )
        m.worst_index = () if m.worst_index is not None else None
        return m
    obs = np.asarray(obs)
    # the common case (conforms, or within the stability bound) as the batched pass does it;
    # the rest of this function explains everything else
    if batched:
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
            # the distance to the interval (0 inside it); a nan stays nan, so it fails
            outside = np.maximum(np.maximum(blo - obs, obs - bhi), 0.0)
            point = np.abs((obs - hi) - lo)
            err = np.where(blo == bhi, point, outside)
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
        m.expected = text[int(np.ravel_multi_index(worst, err.shape))] if text else shown(hi[worst])
        m.observed_element = (obs[worst], obs_dtype)
    if msgs:
        m.verdict = FAILS
        m.message = "; ".join(msgs[:3]) + (f" (and {len(msgs) - 3} more)" if len(msgs) > 3 else "")
        if worst is None:
            idx = next(zip(*np.nonzero(special)))
            m.worst_index = tuple(int(i) for i in idx)
            m.expected = "inf" if hi[idx] > 0 else ("-inf" if hi[idx] < 0 else "nan")
            m.observed_element = (obs[idx], obs_dtype)
    elif not bool(np.all(elem_ok[finite])):
        m.verdict = FAILS
        bad = ~elem_ok & finite
        m.failing_elements = int(bad.sum())
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
    one (a non-finite exact value or error, a non-float result, a size mismatch, an error
    beyond tolerance): call :func:`measure` for those, which explains failures."""
    out: list[Measurement | None] = [None] * len(jobs)
    sel, obs_l, hi_l, lo_l, unit_l, scale_l, e_l, tol_l, bound_l = [], [], [], [], [], [], [], [], []
    kinks = False
    for i, (obs, hi, lo, unit, dtype, tol, n_terms, scale, bounds, _) in enumerate(jobs):
        shape = hi.shape
        if (
            obs.dtype.kind != "f" or hi.size == 0 or obs.shape != shape or lo.shape != shape
            or unit.shape != shape or (scale is not None and scale.shape != shape)
        ):
            continue
        if bounds is not None:
            if not bounds[0].shape == bounds[1].shape == shape:
                continue
            kinks = True
        sel.append(i)
        obs_l.append(obs.ravel())
        hi_l.append(hi.ravel())
        lo_l.append(lo.ravel())
        unit_l.append(unit.ravel())
        scale_l.append(hi.ravel() if scale is None else scale.ravel())  # (a gradient's is not read)
        e_l.append(_EPS[dtype] if scale is not None else -_EPS[dtype])  # negative: a gradient
        tol_l.append(tol.ulps)
        bound_l.append(tol.stability * _growth(n_terms))
    if not sel:
        return out
    sizes = np.array([h.size for h in hi_l])
    starts = np.cumsum(sizes) - sizes
    with np.errstate(all="ignore"):
        hi = np.concatenate(hi_l)
        lo = np.concatenate(lo_l)
        eps_el = np.repeat(np.array(e_l), sizes)
        gradient = eps_el < 0
        eps_el = np.abs(eps_el)
        overflow = np.concatenate([overflow_of(hi_l[j], lo_l[j], jobs[i][4]) for j, i in enumerate(sel)])
        blo = bhi = None
        if kinks:  # elsewhere blo == bhi == hi: no interval
            blo = np.concatenate([hi_l[j] if jobs[i][8] is None else jobs[i][8][0].ravel() for j, i in enumerate(sel)])
            bhi = np.concatenate([hi_l[j] if jobs[i][8] is None else jobs[i][8][1].ravel() for j, i in enumerate(sel)])
        o = np.concatenate(obs_l, dtype=np.float64)
        verdicts = compare_flat(
            o, hi, lo, np.concatenate(unit_l), eps_el, np.concatenate(scale_l), gradient, overflow, blo, bhi, starts, sizes,
            np.array(tol_l), np.array(bound_l),
        )
    start_l = starts.tolist()
    for j, (verdict, worst, worst_scaled, k) in enumerate(zip(*verdicts)):
        if verdict is None:
            continue
        i = sel[j]
        obs, h, text = jobs[i][0], jobs[i][1], jobs[i][9]
        if k is None:  # no finite exact element: nothing to measure, every infinity matched
            out[i] = Measurement(verdict, worst, worst_scaled, bound_l[j])
            continue
        at = start_l[j] + k
        out[i] = Measurement(
            verdict, worst, worst_scaled, bound_l[j], index_in(h.shape, k),
            text[k] if text else shown(hi[at]), (o[at], obs.dtype),
        )
    return out


def index_in(shape: tuple[int, ...], k: int) -> tuple[int, ...]:
    """The index of flat position ``k`` in an array of ``shape`` (C order)."""
    n = len(shape)
    if n == 1:
        return (k,)
    if n == 2:
        return divmod(k, shape[1])
    index = []
    for n in reversed(shape):
        k, r = divmod(k, n)
        index.append(r)
    return tuple(reversed(index))


def compare_flat(
    o: np.ndarray, hi: np.ndarray, lo: np.ndarray, unit: np.ndarray, eps_el: np.ndarray, scale: np.ndarray,
    gradient: np.ndarray, overflow: np.ndarray, blo: np.ndarray | None, bhi: np.ndarray | None,
    starts: np.ndarray, sizes: np.ndarray, tol_ulps: np.ndarray, bound: np.ndarray,
) -> tuple[list[str | None], list[float], list[float], list[int | None]]:
    """The arithmetic of :func:`measure` for many arrays laid end to end (array ``j`` is
    ``[starts[j], starts[j] + sizes[j])`` of every element-wise argument).

    Per element: the observed ``o``, the exact ``hi + lo``, the dtype's ULP ``unit`` at
    the exact value and its ``eps_el``, the term scale ``scale`` of a value's element,
    ``gradient`` where the element is a gradient's instead (its bound is eps times the
    max-norm of the array's finite exact elements; its ``scale`` is not read), the exact
    value rounded to the dtype where that overflows to +-inf (``overflow``; nan
    elsewhere), and a kink's interval ``[blo, bhi]`` where they differ. Per array: the
    tolerance in ULPs and the stability bound.

    Returns per array the verdict (CONFORMS, STABLE, or None: anything else -- an error
    beyond tolerance, an infinity or nan not matched -- which :func:`measure` must
    explain), the worst error in ULPs and in scale units over the finite exact elements,
    and the flat position of the worst element (None when no exact element is finite)."""
    with np.errstate(all="ignore"):
        n = o.size
        # infinite or undefined exact values, and finite ones beyond the dtype's range
        # that the backend returned as that infinity, are matched, not measured
        matched_overflow = o == overflow
        exact = np.where(matched_overflow, overflow, hi)
        special = ~np.isfinite(exact)
        unmatched = special & ~((np.isnan(exact) & np.isnan(o)) | (o == exact))
        finite = ~special
        err = o - hi
        err -= lo
        np.abs(err, out=err)
        if blo is not None and bhi is not None:  # the distance to the interval (a nan stays nan)
            kink = blo != bhi
            outside = np.maximum(np.maximum(blo - o, o - bhi), 0.0)
            err[kink] = outside[kink]
        err[special] = 0.0
        err[np.isnan(err)] = np.inf  # a nan where the exact value is finite
        ulps = err / unit
        norm = np.maximum.reduceat(np.where(finite, np.abs(hi), 0.0), starts)
        den = eps_el * np.where(gradient, np.repeat(norm, sizes), np.abs(scale))
        scaled = err / np.where(den > 0, den, 0.0)
        scaled[err == 0] = 0.0
        ranked = np.where(finite, ulps, -1.0)
        worst = np.maximum.reduceat(ranked, starts)
        first = np.minimum.reduceat(np.where(ranked == np.repeat(worst, sizes), np.arange(n), n), starts) - starts
        worst_scaled = np.maximum.reduceat(np.where(finite, scaled, -1.0), starts)
        elem_ok = (ulps <= np.repeat(tol_ulps, sizes)) | (scaled <= np.repeat(bound, sizes))
        n_bad = np.add.reduceat(~elem_ok & finite, starts)
        n_unmatched = np.add.reduceat(unmatched, starts)
        verdict = np.where(
            (n_bad > 0) | (n_unmatched > 0), 0, np.where(worst <= tol_ulps, 1, 2)
        ).tolist()
        none = worst < 0  # no finite exact element
        worst = np.where(none, 0.0, worst)
        worst_scaled = np.where(none, 0.0, worst_scaled)
    names = (None, CONFORMS, STABLE)
    return (
        [names[v] for v in verdict], worst.tolist(), worst_scaled.tolist(),
        [None if x else k for x, k in zip(none.tolist(), first.tolist())],
    )


def overflow_of(hi: np.ndarray, lo: np.ndarray, dtype: str) -> np.ndarray:
    """The exact value ``hi + lo`` rounded to ``dtype`` where that overflows to +-inf
    from a finite value; nan elsewhere (what :func:`compare_flat` takes)."""
    with np.errstate(over="ignore", invalid="ignore"):
        rounded = (hi + lo).astype(dtype).astype(np.float64)
    return np.where(np.isinf(rounded) & np.isfinite(hi), rounded, np.nan)


_EPS = {d: eps(d) for d in FORMATS}


@functools.lru_cache(maxsize=4096)
def _growth(n_terms: int) -> float:
    return growth(n_terms)
