"""The oracle's front door: evaluate any documented loss, its value and its exact VJPs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import mpmath
import numpy as np
from mpmath import mpf

from . import arrays as A
from . import catalog, precision
from .errors import InputError, OracleError, describe
from .real import Real, Undecided
from .result import Evaluation, Gradient


def convert_inputs(loss_id: str, inputs: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Inputs by documented name: floats become exact mpf arrays, integer inputs int64
    arrays. Unknown or missing inputs raise :class:`InputError` naming them."""
    spec = catalog.spec(loss_id)
    known = {i.name for i in spec.inputs}
    for name in inputs:
        if name not in known:
            raise InputError(
                f"{spec.id}: unknown input {name!r}; documented inputs are "
                + ", ".join(i.name for i in spec.inputs)
            )
    out: dict[str, np.ndarray] = {}
    for inp in spec.inputs:
        raw = inputs.get(inp.name)
        if raw is None:
            if not inp.optional:
                raise InputError(f"{spec.id}: missing required input {inp.name!r}")
            continue
        arr = _as_array(spec.id, inp.name, raw)
        if arr.ndim == 0 and not inp.optional:
            raise InputError(
                f"{spec.id}: input {inp.name} is a scalar (shape ()); expected an array with a batch axis "
                f"(at least one dimension): {describe(arr)}"
            )
        if inp.kind == "int":
            if arr.dtype.kind == "f" or arr.dtype == object:
                flat = arr.ravel().tolist()
                if not all(float(v).is_integer() for v in flat):
                    bad = next(v for v in flat if not float(v).is_integer())
                    raise InputError(
                        f"{spec.id}: input {inp.name} holds {describe(bad)}; expected integers"
                    )
            elif arr.dtype.kind not in "iub":
                raise InputError(
                    f"{spec.id}: input {inp.name} has dtype {arr.dtype}; expected integers"
                )
            out[inp.name] = arr.astype(np.int64)
        else:
            if arr.dtype == precision.numpy_dtype("bfloat16"):
                arr = arr.astype(np.float64)  # exact: every bfloat16 is a float64
            if arr.dtype.kind not in "fiub" and arr.dtype != object:
                raise InputError(
                    f"{spec.id}: input {inp.name} has dtype {arr.dtype}; expected real numbers"
                )
            out[inp.name] = A.asmp(arr)
    return out


def _as_array(loss_id: str, name: str, raw: Any) -> np.ndarray:
    """An input as a numpy array; nested lists of unequal lengths (ragged) or holding
    anything but numbers are an :class:`InputError` naming the loss and the input."""
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # numpy < 1.24 warns and makes an object array of a ragged list
            arr = np.asarray(raw)
    except (ValueError, TypeError, Warning):
        raise InputError(
            f"{loss_id}: input {name} is ragged (nested lists of unequal lengths) or not an array of numbers: {describe(raw)}"
        ) from None
    if arr.dtype == object and any(isinstance(v, (list, tuple, np.ndarray)) for v in arr.ravel().tolist()):
        raise InputError(f"{loss_id}: input {name} is ragged (nested lists of unequal lengths): {describe(raw)}")
    return arr


def evaluate(
    loss: str,
    inputs: Mapping[str, Any],
    options: Mapping[str, Any] | None = None,
    *,
    cotangent: Any = None,
    wrt: Sequence[str] | None = None,
    precision_bits: int | None = None,
    dtypes: Sequence[str] | None = None,
) -> Evaluation:
    """Evaluate a documented loss exactly, every number proven.

    ``loss`` is a documented id or alias; ``inputs`` maps documented input names to
    arrays (or nested lists); ``options`` are the documented constructor options (the
    rest take their documented defaults). ``cotangent`` (default: ones of the output's
    shape) is the vector of the vector-Jacobian product computed for each input in
    ``wrt`` (default: every differentiable input).

    The loss module's formula runs on enclosures (:mod:`oracle.real`), first at the working
    precision, then at twice, four times ... up to :data:`precision.MAX_PRECISION_BITS`,
    until every value, VJP element and kink bound is proven (:func:`prove`): its
    enclosure fixes every one of the :data:`precision.DECIMAL_DIGITS` written digits and
    its rounding to float16, float32 and float64; or it is a point at 0, an exact zero
    that the formula itself produced (a zero weight, a tie ``x - x``, ``0 * y``); or it
    lies within +-2**-1200 (:data:`precision.NEGLIGIBLE`, written 0). A branch the
    enclosures cannot decide also raises the precision. What is not proven at the cap
    raises :class:`OracleError` naming the loss, the element and the widths reached.

    >>> import oracle
    >>> r = oracle.evaluate("SoftmaxCELoss", {"pred": [[0.0, 0.0]], "label": [1]})
    >>> r.value_as("float64")
    array([0.69314718])
    """
    loss_id = catalog.resolve(loss)
    spec = catalog.spec(loss_id)
    opts = spec.resolve_options(dict(options or {}))
    wrt = spec.differentiable if wrt is None else tuple(wrt)
    for name in wrt:
        if name not in spec.differentiable:
            raise InputError(
                f"{spec.id}: cannot differentiate with respect to {name!r}; "
                f"differentiable inputs are {', '.join(spec.differentiable)}"
            )
    bits = precision_bits or precision.get_working_precision()
    dts = tuple(precision.FORMATS) if dtypes is None else tuple(str(np.dtype(d)) for d in dtypes)
    tried: list[str] = []
    widths: dict[str, list[str]] = {}
    while True:
        try:
            ev = _evaluate_at(loss_id, inputs, opts, cotangent, wrt, bits)
            with precision.working_precision(bits):
                unproven = _prove_evaluation(ev, dts, bits)
        except Undecided as why:
            tried.append(f"{bits} bits: a branch undecided ({why})")
            ev = None
        if ev is not None:
            if not unproven:
                return ev
            for what, width in unproven:
                widths.setdefault(what, []).append(f"{width} at {bits} bits")
            what = unproven[0][0]
            tried.append(f"{bits} bits: {what} unproven")
        if bits >= precision.MAX_PRECISION_BITS:
            break
        bits = min(bits * 2, precision.MAX_PRECISION_BITS)
    if widths:
        what, reached = next(iter(widths.items()))
        more = f" (and {len(widths) - 1} more element(s))" if len(widths) > 1 else ""
        raise OracleError(
            f"{spec.id}: {what} cannot be proven up to the cap of {precision.MAX_PRECISION_BITS} bits{more}: "
            f"its enclosure is neither narrow enough for {precision.DECIMAL_DIGITS} digits nor provably 0 nor "
            f"within 2**-1200; widths reached: {', '.join(reached)}"
        )
    raise OracleError(f"{spec.id}: a branch on a computed value cannot be decided up to the cap: " + "; ".join(tried))


def prove(x: Real, dtypes: Sequence[str] = tuple(precision.FORMATS), floor: bool = True) -> mpf | None:
    """The proven exact value of an enclosure, or None if it does not prove it yet.

    Proven are: a special value (inf, nan) or a point (an exact result, 0 included); an
    enclosure whose ends give the same :data:`precision.DECIMAL_DIGITS`-digit decimal and
    the same rounding to each of ``dtypes`` (then its midpoint is returned: it has that decimal
    and those roundings); and an enclosure within +-:data:`precision.NEGLIGIBLE` that
    contains 0 (returned as 0: every dtype rounds it to 0)."""
    if x.is_exact:
        return x.mid()
    lo, hi = x.bounds()
    if not (mpmath.isfinite(lo) and mpmath.isfinite(hi)):
        return None
    if lo > 0 or hi < 0:
        if precision.to_decimal(lo) != precision.to_decimal(hi):
            return None
        if any(precision.round_to(lo, dt) != precision.round_to(hi, dt) for dt in dtypes):
            return None
        return x.mid()
    if floor and -lo < precision.NEGLIGIBLE and hi < precision.NEGLIGIBLE:
        return mpmath.mpf(0)
    return None


def _width(x: Real) -> str:
    lo, hi = x.bounds()
    return mpmath.nstr(hi - lo, 3) if mpmath.isfinite(hi - lo) else "inf"


def _prove_evaluation(ev: Evaluation, dtypes: tuple[str, ...], bits: int) -> list[tuple[str, str]]:
    """Replace every enclosure of ``ev`` by its proven exact value (mpf); list the
    elements not proven yet as (name, enclosure width). The term scales and magnitudes
    (6 digits) are taken at their midpoints."""
    unproven: list[tuple[str, str]] = []

    def proved(name: str, arr: np.ndarray) -> np.ndarray:
        out = np.empty(np.shape(arr), dtype=object)
        for idx in np.ndindex(out.shape):
            v = prove(arr[idx], dtypes, floor=bits >= precision.FLOOR_PRECISION_BITS)
            if v is None:
                unproven.append((f"{name}{list(idx)}", _width(arr[idx])))
            out[idx] = v
        return out

    ev.value = proved("value", ev.value)
    ev.scale = _mids(ev.scale)
    for name, g in list(ev.grads.items()):
        at_kink = g.at_kink
        lo = proved(f"vjp {name}", g.lo) if not at_kink.any() else proved(f"vjp {name} lo", g.lo)
        hi = lo if not at_kink.any() else proved(f"vjp {name} hi", g.hi)
        mid = lo if not at_kink.any() else proved(f"vjp {name} midpoint", g.value)
        scale = np.vectorize(lambda a, b: max(a.magnitude(), b.magnitude()), otypes=[object])(g.lo, g.hi) \
            if g.lo.size else np.empty(g.lo.shape, dtype=object)
        ev.grads[name] = Gradient(lo, hi, mid, scale)
    if ev.cotangent is not None:
        ev.cotangent = _mids(ev.cotangent)
    return unproven


def _mids(arr: Any) -> np.ndarray:
    a = np.asarray(arr, dtype=object)
    out = np.empty(a.shape, dtype=object)
    for idx in np.ndindex(a.shape):
        v = a[idx]
        out[idx] = v.mid() if isinstance(v, Real) else v
    return out


def _evaluate_at(loss_id: str, inputs: Mapping[str, Any], opts: dict, cotangent: Any, wrt: tuple, bits: int) -> Evaluation:
    spec = catalog.spec(loss_id)
    module = catalog.module(loss_id)
    with precision.working_precision(bits):
        x = convert_inputs(loss_id, inputs)
        fwd = module.forward(x, opts)
        value = np.asarray(fwd.value, dtype=object)
        if cotangent is None:
            ct = A.full(value.shape, 1)
        else:
            ct = A.asmp(cotangent)
            if ct.shape != value.shape:
                raise InputError(
                    f"{spec.id}: cotangent has shape {ct.shape}; expected the output's shape {value.shape}"
                )
        grads = fwd.vjp(ct) if wrt else {}
        grads = {k: g for k, g in grads.items() if k in wrt}
        return Evaluation(
            loss_id=loss_id,
            options=opts,
            value=value,
            scale=np.asarray(fwd.scale, dtype=object),
            n_terms=int(fwd.n_terms),
            grads=grads,
            cotangent=ct,
            precision_bits=bits,
        )


def mpf_array(values: Any) -> np.ndarray:
    """Exact mpf object array of the given numbers (a convenience for callers)."""
    return A.asmp(values)


__all__ = ["evaluate", "prove", "convert_inputs", "mpf_array", "mpmath"]
