"""Measuring a backend's result against the exact value, elementwise, under the policy
of :mod:`conformance.harness.tolerance`. Pure numpy on double-double exact values; nothing here
knows a loss's formula."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .tolerance import FORMATS, ULP_MEANINGFUL, Tolerance, eps, min_normal

CONFORMS = "conforms"
STABLE = "within stability bound"
FAILS = "fails"


@dataclass
class Measurement:
    verdict: str  # CONFORMS | STABLE | FAILS
    #: the worst element's error in ULPs of its exact value, or None where ULPs mean
    #: nothing for it (exact zero, below the dtype's normal range, far below its terms:
    #: see :mod:`conformance.harness.tolerance`); then ``error_scale`` is the figure
    error_ulps: float | None
    error_scale: float  # the worst element's error in units of eps * S (its effective term scale)
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


def headline(error_ulps: float | None, error_scale: float | None) -> str:
    """A check's error as shown: in ULPs where they mean something, else in eps x scale."""
    if error_ulps is not None:
        return f"{error_ulps:.3g} ULP"
    if error_scale is not None:
        return f"{error_scale:.3g} eps x scale"
    return ""


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
    roundings: int | None = None,
) -> Measurement:
    """Compare ``obs`` with the exact ``hi + lo``. ``scale`` is each element's term scale
    (a value's, or a gradient's from the fixture's ``vjp.<input>.scale``); without it (a
    gradient of an older fixture) every element's scale is the max-norm of the exact
    result. ``bounds`` gives a kink's interval per element; ``unit`` may give
    ``ulp(hi, dtype)`` precomputed; ``roundings`` the fixture's roundings per term (see
    :func:`tolerance.stability_bound`; None: the default). The arithmetic is :func:`compare_flat`'s (the batched
    pass's), on this one array; the common case -- conforms, or within the stability
    bound -- is the vectorised pass's (:func:`conforming_many`); ``batched=False`` skips
    that attempt where the caller knows the pass declined the array. The rest of this
    function explains everything else."""
    shape = np.shape(hi)
    if shape == ():  # a scalar output: measure it as a 1-element array
        m = measure(
            np.reshape(obs, (1,)), np.reshape(hi, (1,)), np.reshape(lo, (1,)), dtype, tol, n_terms,
            scale=None if scale is None else np.reshape(scale, (1,)),
            bounds=None if bounds is None else (np.reshape(bounds[0], (1,)), np.reshape(bounds[1], (1,))),
            text=text, unit=None if unit is None else np.reshape(unit, (1,)), batched=batched, roundings=roundings,
        )
        m.worst_index = () if m.worst_index is not None else None
        return m
    obs = np.asarray(obs)
    unit = ulp(hi, dtype) if unit is None else unit
    if batched:
        fast = conforming_many([(obs, hi, lo, unit, dtype, tol, n_terms, scale, bounds, text, roundings)])[0]
        if fast is not None:
            return fast
    obs_dtype = obs.dtype if obs.dtype.kind == "f" or obs.dtype == np.dtype("bfloat16") else np.dtype(np.float64)
    obs = obs.astype(np.float64)
    over = overflow_of(hi, lo, dtype)
    # the exact value as the dtype rounds it: beyond the dtype's range it is +-inf, and
    # the backend must return that infinity (or a finite value within tolerance)
    special, msgs = _infinity_problems(obs, np.where(obs == over, over, hi), text, obs_dtype)
    bound = tol.bound(n_terms, dtype, roundings)
    size = int(np.prod(shape))
    j = _judge(
        obs.ravel(), hi.ravel(), lo.ravel(), np.ravel(unit), np.full(size, eps(dtype)), np.full(size, min_normal(dtype)),
        np.ravel(hi) if scale is None else np.ravel(scale), np.full(size, scale is None), over.ravel(),
        None if bounds is None else np.ravel(bounds[0]), None if bounds is None else np.ravel(bounds[1]),
        np.array([0]), np.array([size]), np.array([tol.ulps]), np.array([bound]),
    )
    finite = ~special
    k = j.first[0]
    m = Measurement(
        verdict=CONFORMS if j.code[0] == 1 else STABLE if j.code[0] == 2 else FAILS,
        error_ulps=j.worst_ulps[0], error_scale=j.worst_scaled[0], bound=bound,
    )
    if k is not None:
        worst = index_in(shape, k)
        m.worst_index = worst
        m.expected = text[k] if text else shown(hi[worst])
        m.observed_element = (obs[worst], obs_dtype)
    if msgs:
        m.verdict = FAILS
        m.message = "; ".join(msgs[:3]) + (f" (and {len(msgs) - 3} more)" if len(msgs) > 3 else "")
        if k is None:
            idx = next(zip(*np.nonzero(special)))
            m.worst_index = tuple(int(i) for i in idx)
            m.expected = "inf" if hi[idx] > 0 else ("-inf" if hi[idx] < 0 else "nan")
            m.observed_element = (obs[idx], obs_dtype)
    elif m.verdict == FAILS:
        bad = (~j.ok).reshape(shape) & finite
        m.failing_elements = int(bad.sum())
        nan_at = np.isnan(obs) & finite
        if nan_at.any():
            first = [int(i) for i in next(zip(*np.nonzero(nan_at)))]
            m.message = f"nan at {first} ({int(nan_at.sum())} element(s)) where the exact value is finite"
        elif np.isinf(obs[finite]).any():
            first = [int(i) for i in next(zip(*np.nonzero(np.isinf(obs) & finite)))]
            m.message = f"inf at {first} where the exact value is finite (overflow?)"
        else:
            m.message = _diagnose(obs, hi, j.err.reshape(shape), j.scaled.reshape(shape), bad, dtype, tol, bound)
    return m


#: the next narrower format, for recognising a result computed in it
_NARROWER = {"float64": "float32", "float32": "float16", "float16": "bfloat16"}


def _diagnose(obs, hi, err, scaled, bad, dtype, tol, bound) -> str:
    """The failure message for finite errors beyond tolerance, with a hint at the cause
    where the pattern is unmistakable: every failing element is nearer the exact value's
    negation than the exact value by a factor of ten (the sign flipped: a
    flipped element keeps the backend's own rounding error, which in a low precision can
    exceed 1 % of a small element), or every error would pass at the next narrower
    dtype's precision (the result was computed in that dtype)."""
    msg = f"error beyond tolerance in {int(bad.sum())} element(s)"
    o, h = obs[bad], hi[bad]
    if np.all((h != 0) & (np.abs(o + h) <= 0.1 * np.abs(o - h))):
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
#: tolerance, the number of terms, the term ``scale`` per element (None: a gradient
#: without one, measured against its max-norm), the kink bounds (or None), the exact
#: values' text and, optionally, the fixture's roundings per term (None: the default)
Job = tuple[
    np.ndarray, np.ndarray, np.ndarray, np.ndarray, str, Tolerance, int,
    "np.ndarray | None", "tuple[np.ndarray, np.ndarray] | None", "list[str] | None", "int | None",
]


def conforming_many(jobs: list[Job]) -> list[Measurement | None]:
    """:func:`measure` for many arrays in one vectorised pass: the Measurement it gives
    for each array that conforms or is within the stability bound, None for every other
    one (a non-finite exact value or error not matched, a non-float result, a size
    mismatch, an error beyond tolerance), which :func:`measure` must explain."""
    out: list[Measurement | None] = [None] * len(jobs)
    sel, obs_l, hi_l, lo_l, unit_l, scale_l, grad_l, dt_l, tol_l, bound_l = [], [], [], [], [], [], [], [], [], []
    kinks = False
    for i, (obs, hi, lo, unit, dtype, tol, n_terms, scale, bounds, _, *more) in enumerate(jobs):
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
        scale_l.append(hi.ravel() if scale is None else scale.ravel())  # (a max-norm row's is not read)
        grad_l.append(scale is None)
        dt_l.append(dtype)
        tol_l.append(tol.ulps)
        bound_l.append(tol.bound(n_terms, dtype, more[0] if more else None))
    if not sel:
        return out
    sizes = np.array([h.size for h in hi_l])
    starts = np.cumsum(sizes) - sizes
    with np.errstate(all="ignore"):
        hi = np.concatenate(hi_l)
        lo = np.concatenate(lo_l)
        eps_el = np.repeat(np.array([_EPS[d] for d in dt_l]), sizes)
        nmin_el = np.repeat(np.array([_MIN_NORMAL[d] for d in dt_l]), sizes)
        gradient = np.repeat(np.array(grad_l, dtype=bool), sizes)
        overflow = np.concatenate([overflow_of(hi_l[j], lo_l[j], jobs[i][4]) for j, i in enumerate(sel)])
        blo = bhi = None
        if kinks:  # elsewhere blo == bhi == hi: no interval
            blo = np.concatenate([hi_l[j] if jobs[i][8] is None else jobs[i][8][0].ravel() for j, i in enumerate(sel)])
            bhi = np.concatenate([hi_l[j] if jobs[i][8] is None else jobs[i][8][1].ravel() for j, i in enumerate(sel)])
        o = np.concatenate(obs_l, dtype=np.float64)
        verdicts = compare_flat(
            o, hi, lo, np.concatenate(unit_l), eps_el, nmin_el, np.concatenate(scale_l), gradient, overflow, blo, bhi,
            starts, sizes, np.array(tol_l), np.array(bound_l),
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
    o: np.ndarray, hi: np.ndarray, lo: np.ndarray, unit: np.ndarray, eps_el: np.ndarray, nmin_el: np.ndarray,
    scale: np.ndarray, gradient: np.ndarray, overflow: np.ndarray, blo: np.ndarray | None, bhi: np.ndarray | None,
    starts: np.ndarray, sizes: np.ndarray, tol_ulps: np.ndarray, bound: np.ndarray,
) -> tuple[list[str | None], list[float | None], list[float], list[int | None]]:
    """The arithmetic of :func:`measure` for many arrays laid end to end (array ``j`` is
    ``[starts[j], starts[j] + sizes[j])`` of every element-wise argument).

    Per element: the observed ``o``, the exact ``hi + lo``, the dtype's ULP ``unit`` at
    the exact value, its ``eps_el`` and smallest normal ``nmin_el``, the term scale
    ``scale``, ``gradient`` where the element has no term scale of its own (a gradient of
    an older fixture: its scale is the max-norm of the array's finite exact elements; its
    ``scale`` is not read), the exact value rounded to the dtype where that overflows to
    +-inf (``overflow``; nan elsewhere), and a kink's interval ``[blo, bhi]`` where they
    differ. Per array: the tolerance in ULPs and the stability bound (eps x scale).

    Returns per array the verdict (CONFORMS, STABLE, or None: anything else -- an error
    beyond tolerance, an infinity or nan not matched -- which :func:`measure` must
    explain), the worst element's error in ULPs (None where ULPs mean nothing for it) and
    in eps x scale, and its flat position (None when no exact element is finite)."""
    j = _judge(o, hi, lo, unit, eps_el, nmin_el, scale, gradient, overflow, blo, bhi, starts, sizes, tol_ulps, bound)
    names = (None, CONFORMS, STABLE)
    return [names[v] for v in j.code], j.worst_ulps, j.worst_scaled, j.first


class _Judged:
    """What :func:`_judge` works out: per element the error (``err``, and in ``scaled``
    eps x scale units) and whether it is within tolerance (``ok``); per array the verdict
    code (0 fails, 1 conforms, 2 within the stability bound), the worst element's figures
    and its position."""

    __slots__ = ("err", "scaled", "ok", "code", "worst_ulps", "worst_scaled", "first")


def _judge(o, hi, lo, unit, eps_el, nmin_el, scale, gradient, overflow, blo, bhi, starts, sizes, tol_ulps, bound) -> _Judged:
    """The policy of :mod:`conformance.harness.tolerance`, elementwise, for arrays laid
    end to end (the arguments of :func:`compare_flat`)."""
    with np.errstate(all="ignore"):
        n = o.size
        # infinite or undefined exact values, and finite ones beyond the dtype's range
        # that the backend returned as that infinity, are matched, not measured
        exact = np.where(o == overflow, overflow, hi)
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
        ahi = np.where(finite, np.abs(hi), 0.0)
        s = np.abs(scale)
        if gradient.any():  # no term scale of their own: the array's max-norm
            norm = np.maximum.reduceat(ahi, starts)
            s = np.where(gradient, np.repeat(norm, sizes), s)
        # the effective scale S = max(s, |x|, N): eps * N is the smallest subnormal
        den = eps_el * np.fmax(np.fmax(s, ahi), nmin_el)
        scaled = err / den
        scaled[err == 0] = 0.0
        scaled[np.isnan(scaled)] = np.inf
        ok_ulps = ulps <= np.repeat(tol_ulps, sizes)
        # where ULPs mean something: a normal exact value, one rounding of its terms
        # within the 4-ULP bar; or an element within the ULP tolerance (its figure is
        # the one that decides it conforms); or a nan or infinity where the exact value
        # is finite (infinitely wrong in any unit)
        meaningful = ok_ulps | np.isinf(err) | ((ahi >= nmin_el) & (den <= 2.0 * ULP_MEANINGFUL * unit))
        ok = ok_ulps | (scaled <= np.repeat(bound, sizes))
        # per element: -1 not measured (an infinity or nan), 0 conforms, 1 within the
        # stability bound, 2 fails
        level = np.where(finite, np.where(ok, np.where(ok_ulps, 0, 1), 2), -1).astype(np.int8)
        top = np.maximum.reduceat(level, starts)
        # the worst element: of the worst level; by ULPs among conforming ones, else by
        # eps x scale; the first of equals
        key = np.where(level == 0, ulps, scaled)
        candidate = level == np.repeat(top, sizes)
        best = np.maximum.reduceat(np.where(candidate, key, -1.0), starts)
        first = np.minimum.reduceat(np.where(candidate & (key == np.repeat(best, sizes)), np.arange(n), n), starts) - starts
        n_bad = np.add.reduceat(level == 2, starts)
        n_unmatched = np.add.reduceat(unmatched, starts)
        none = top < 0  # no finite exact element
        at = starts + np.where(none, 0, first)
        worst_ulps = np.where(none, 0.0, ulps[at])
        worst_scaled = np.where(none, 0.0, scaled[at])
        shown_in_ulps = none | meaningful[at]
        code = np.where((n_bad > 0) | (n_unmatched > 0), 0, np.where(top <= 0, 1, 2))
    j = _Judged()
    j.err, j.scaled, j.ok = err, scaled, ok | ~finite
    j.code = code.tolist()
    j.worst_ulps = [w if m else None for w, m in zip(worst_ulps.tolist(), shown_in_ulps.tolist())]
    j.worst_scaled = worst_scaled.tolist()
    j.first = [None if x else k for x, k in zip(none.tolist(), first.tolist())]
    return j


def overflow_of(hi: np.ndarray, lo: np.ndarray, dtype: str) -> np.ndarray:
    """The exact value ``hi + lo`` rounded to ``dtype`` where that overflows to +-inf
    from a finite value; nan elsewhere (what :func:`compare_flat` takes)."""
    with np.errstate(over="ignore", invalid="ignore"):
        rounded = (hi + lo).astype(dtype).astype(np.float64)
    return np.where(np.isinf(rounded) & np.isfinite(hi), rounded, np.nan)


_EPS = {d: eps(d) for d in FORMATS}
_MIN_NORMAL = {d: min_normal(d) for d in FORMATS}
