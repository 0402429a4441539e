"""The oracle's front door: evaluate any documented loss, its value and its exact VJPs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import mpmath
import numpy as np

from . import arrays as A
from . import catalog, precision
from .errors import InputError, OracleError, describe
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
    settle: bool = True,
) -> Evaluation:
    """Evaluate a documented loss exactly.

    ``loss`` is a documented id or alias; ``inputs`` maps documented input names to
    arrays (or nested lists); ``options`` are the documented constructor options (the
    rest take their documented defaults). ``cotangent`` (default: ones of the output's
    shape) is the vector of the vector-Jacobian product computed for each input in
    ``wrt`` (default: every differentiable input).

    With ``settle`` (the default) the result is also computed at twice the working
    precision, and every element whose decimal digits differ is re-derived at four times
    the precision: it is kept if the two higher precisions agree, and recognised as an
    exact zero if it keeps shrinking with the precision (rounding noise of a cancellation,
    e.g. the gradient of a tie). So every digit returned is settled.

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
    first = _evaluate_at(loss_id, inputs, opts, cotangent, wrt, bits)
    if not settle:
        return first
    levels: list[Evaluation] = [first]

    def at(level: int) -> Evaluation:
        while len(levels) <= level:
            levels.append(_evaluate_at(loss_id, inputs, opts, cotangent, wrt, bits << len(levels)))
        return levels[level]

    def settle_array(name: str, get) -> np.ndarray:
        out = np.asarray(get(first), dtype=object).copy()
        for idx in np.ndindex(out.shape):
            # accept the first two consecutive precisions that agree to every digit
            # written; an exact zero must also be confirmed one level further (it may be
            # a cancellation that needs still more bits, like -log p for p ~ 1 - 2**-860);
            # a value that shrinks by >= 2**-(bits/2) per doubling is rounding noise of an
            # exact zero (the gradient of a tie)
            for level in range(1, _MAX_LEVELS):
                prev, cur = get(at(level - 1))[idx], get(at(level))[idx]
                if _same_digits(prev, cur) and (cur != 0 or get(at(level + 1))[idx] == 0):
                    out[idx] = cur
                    break
                if prev != 0 and abs(cur) <= mpmath.ldexp(abs(prev), -(bits << (level - 1)) // 2):
                    nxt = get(at(level + 1))[idx]
                    if abs(nxt) <= mpmath.ldexp(abs(cur), -(bits << level) // 2):
                        out[idx] = mpmath.mpf(0)
                        break
            else:
                if all(abs(get(e)[idx]) < _NEGLIGIBLE for e in levels[-2:]):
                    # below 2**-1200 at the two highest precisions: every dtype rounds it to zero, so
                    # it is written as 0 with an absolute error < 2**-1200 (fixtures/README.md)
                    out[idx] = mpmath.mpf(0)
                    continue
                raise OracleError(
                    f"{spec.id}: {name}{list(idx)} does not settle up to {bits << (_MAX_LEVELS - 1)} bits: "
                    + ", ".join(precision.to_decimal(get(e)[idx]) for e in levels)
                )
        return out

    first.value = settle_array("value", lambda e: e.value)
    for name in list(first.grads):
        g = first.grads[name]
        lo = settle_array(f"vjp {name} lo", lambda e, n=name: e.grads[n].lo)
        hi = lo if g.lo is g.hi else settle_array(f"vjp {name} hi", lambda e, n=name: e.grads[n].hi)
        first.grads[name] = Gradient(lo, hi)
    return first


_MAX_LEVELS = 5  # up to 16x the working precision
_NEGLIGIBLE = mpmath.ldexp(1, -1200)


def _same_digits(a: Any, b: Any) -> bool:
    return precision.to_decimal(a) == precision.to_decimal(b)


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


__all__ = ["evaluate", "convert_inputs", "mpf_array", "mpmath"]
