"""The backend protocol: the one small interface a backend implements.

A backend has a ``name`` and a ``version``, says whether it ``supports`` a call (and if
not, why), and ``run``s a call. A call names the loss by its documented id, gives the
documented constructor options, the forward inputs by their documented names (floats in
the case's dtype, integer inputs as int64), the dtype, which inputs to differentiate and
the cotangent for the vector-Jacobian product. ``run`` returns the output array and the
requested VJPs. Optionally, ``build_info()`` describes the build (e.g. MXNet's features),
because results differ with it; ``mapping()`` says which framework call computes each
documented loss (the migration map; see :func:`mapping_of`); and ``modes`` says which modes
(see :data:`MODES`) the backend runs: a sequence of mode names, or a mapping from every
mode to None (runs it) or the reason it does not. A backend without ``modes`` is run in
mode ``grad`` only (see :func:`supported_modes`); ``supports(call)`` may still decline one
call of a mode it runs.

A complete minimal backend (see README.md)::

    import numpy as np
    from conformance.protocol import Call, Outcome

    class MyBackend:
        name = "mine"
        version = "1.0"

        def supports(self, call: Call) -> str | None:
            if call.loss != "mxnet.gluon.loss.L2Loss" or call.inputs.get("sample_weight") is not None:
                return "only L2Loss without sample_weight"
            return None

        def run(self, call: Call) -> Outcome:
            pred, label = call.inputs["pred"], call.inputs["label"].reshape(call.inputs["pred"].shape)
            w = 1.0 if call.options["weight"] is None else call.options["weight"]
            axes = tuple(a for a in range(pred.ndim) if a != call.options["batch_axis"] % pred.ndim)
            n = np.prod([pred.shape[a] for a in axes])
            out = (w / 2 * (pred - label) ** 2).mean(axis=axes).astype(call.dtype)
            ct = np.expand_dims(call.cotangent, axes)
            return Outcome(out, {"pred": (ct * w * (pred - label) / n).astype(call.dtype)})

    backend = MyBackend()   # found as  --backend mypackage.module:backend
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

#: The paths a framework runs, each a mode of a call:
#:
#: * ``forward``: the value with no gradient recording (``wrt`` is empty);
#: * ``grad``: the value under gradient recording, then the VJP with ``cotangent``;
#: * ``compiled``: ``grad`` through the framework's graph/JIT path (MXNet ``hybridize()``,
#:   ``torch.compile``, ``jax.jit``);
#: * ``hvp``: ``grad`` plus the Hessian-vector product: the derivative of the VJP (with
#:   ``cotangent``) in the direction ``direction`` (one array per input in ``wrt``),
#:   returned in :attr:`Outcome.hvp`;
#: * ``backward-twice``: ``grad`` where the same graph is differentiated a second time;
#:   the backend returns the second VJP in :attr:`Outcome.grads` (or raises the
#:   framework's documented error).
MODES: tuple[str, ...] = ("forward", "grad", "compiled", "hvp", "backward-twice")


@dataclass(frozen=True)
class Call:
    """One call of one loss."""

    loss: str
    options: Mapping[str, Any]
    inputs: Mapping[str, np.ndarray]
    dtype: str
    wrt: tuple[str, ...] = ()
    cotangent: np.ndarray | None = None
    mode: str = "grad"
    direction: Mapping[str, np.ndarray] | None = None


_new = object.__new__
_set = object.__setattr__


def new_call(
    loss: str, options: Mapping[str, Any], inputs: Mapping[str, np.ndarray], dtype: str,
    wrt: tuple[str, ...] = (), cotangent: np.ndarray | None = None,
    mode: str = "grad", direction: Mapping[str, np.ndarray] | None = None,
) -> Call:
    """``Call(loss, options, inputs, dtype, wrt, cotangent)``, built without the frozen
    dataclass's six ``object.__setattr__`` calls (a third of the cost; the harness
    builds two calls per case). The result is an ordinary, equal, frozen ``Call``."""
    call = _new(Call)
    _set(call, "__dict__", {
        "loss": loss, "options": options, "inputs": inputs, "dtype": dtype, "wrt": wrt, "cotangent": cotangent,
        "mode": mode, "direction": direction,
    })
    return call


@dataclass
class Outcome:
    """What ``run`` returns: the output, the VJP for each input in ``call.wrt``, and in
    mode ``hvp`` the Hessian-vector product for each input in ``call.wrt``."""

    output: Any
    grads: dict[str, Any] = field(default_factory=dict)
    hvp: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Backend(Protocol):
    name: str
    version: str

    def supports(self, call: Call) -> str | None:
        """None if the call is supported; otherwise the reason it is not."""

    def run(self, call: Call) -> Outcome:
        """Run the call; raise for input the backend rejects."""


def build_info(backend: Backend) -> dict[str, Any]:
    fn = getattr(backend, "build_info", None)
    if fn is None:
        return {}
    try:
        return dict(fn())
    except Exception as err:  # a provenance probe must never stop a run
        return {"error": f"build_info() raised {type(err).__name__}: {err}"}


def supported_modes(backend: Backend) -> dict[str, str | None]:
    """Every mode of :data:`MODES` -> None if the backend runs it, else the reason it does
    not (from the backend's ``modes``; a backend without ``modes`` runs ``grad`` only).
    Raises ValueError for a ``modes`` that names an unknown mode or is not a sequence or
    mapping, or a reason that is not a non-empty string."""
    declared = getattr(backend, "modes", None)
    if declared is None:
        return {m: None if m == "grad" else "the backend declares no modes (no `modes` attribute): it runs grad only"
                for m in MODES}
    if isinstance(declared, Mapping):
        unknown = [m for m in declared if m not in MODES]
        if unknown:
            raise ValueError(f"modes names unknown mode(s) {', '.join(map(repr, unknown))}; modes are {', '.join(MODES)}")
        out: dict[str, str | None] = {}
        for m in MODES:
            reason = declared.get(m, "not among the modes the backend declares")
            if reason is not None and not (isinstance(reason, str) and reason.strip()):
                raise ValueError(f"modes[{m!r}] must be None (supported) or the reason it is not, got {reason!r}")
            out[m] = reason
        return out
    if isinstance(declared, str) or not all(isinstance(m, str) for m in declared):
        raise ValueError(f"modes must be a sequence of mode names or a mapping, got {declared!r}")
    unknown = [m for m in declared if m not in MODES]
    if unknown:
        raise ValueError(f"modes names unknown mode(s) {', '.join(map(repr, unknown))}; modes are {', '.join(MODES)}")
    return {m: None if m in declared else "not among the modes the backend declares" for m in MODES}


#: the text fields of one entry of a backend's ``mapping()``
MAPPING_FIELDS: tuple[str, ...] = ("call", "composition", "notes")


def mapping_of(backend: Backend) -> dict[str, Any]:
    """The backend's migration map for the results' provenance: ``{"mapping": {...}}``,
    ``{}`` for a backend without the optional method, or ``{"mapping_error": "..."}``
    (beside what could be read) when it fails or returns something malformed -- like
    :func:`build_info`, a failing probe never stops a run.

    The optional method is ``mapping() -> dict[loss_id, entry]``, one entry per documented
    loss the backend computes, each a dict of strings::

        {"call": "torch.nn.functional.smooth_l1_loss(pred, label, beta=rho, reduction='none')",
         "composition": "mean over the non-batch axes of sample_weight * loss, times weight",
         "notes": "Gluon's rho is smooth_l1_loss's beta",
         "unsupported": {"rho": "rho <= 0 has no counterpart"}}   # optional: option -> why

    ``call`` is the framework's own API as a user writes it (required); ``composition`` is
    how the documented quantity is built around it ("" when the call is the documented loss
    itself); ``notes`` where the framework's definition differs. A loss the framework has
    no counterpart for is left out (its ``supports()`` gives the reason, which the results
    record as the skip reason). ``lossconf map`` and the report's migration map show it."""
    fn = getattr(backend, "mapping", None)
    if fn is None or not callable(fn):
        return {}
    try:
        raw = fn()
        items = list(dict(raw).items())
    except Exception as err:  # a provenance probe must never stop a run
        return {"mapping_error": f"mapping() raised {type(err).__name__}: {err}"}
    out: dict[str, dict[str, Any]] = {}
    bad: list[str] = []
    for loss, entry in items:
        if not isinstance(loss, str) or not isinstance(entry, Mapping) or not isinstance(entry.get("call"), str):
            bad.append(f"{loss!r}: not a dict with a string 'call'")
            continue
        clean: dict[str, Any] = {k: str(entry.get(k) or "") for k in MAPPING_FIELDS}
        unsupported = entry.get("unsupported")
        if isinstance(unsupported, Mapping) and unsupported:
            clean["unsupported"] = {
                str(k): str(v.get("why", v) if isinstance(v, Mapping) else v) for k, v in sorted(unsupported.items(), key=lambda kv: str(kv[0]))
            }
        out[loss] = clean
    if not out and not bad:  # an empty map is no map (the worker's proxy answers {} for none)
        return {}
    result: dict[str, Any] = {"mapping": dict(sorted(out.items()))}
    if bad:
        result["mapping_error"] = "mapping() entries left out: " + "; ".join(bad)
    return result


def as_array(value: Any, what: str) -> np.ndarray:
    """A value a backend returned as a numpy array (numpy arrays and scalars, mxnet NDArray
    and cupy through ``asnumpy``/``get``, chainer.Variable through ``.array``); TypeError
    naming ``what`` for anything else, or for an array of no real numbers (object, complex,
    strings, structured). Shared by the in-process runner and the Python worker."""
    if type(value) is np.ndarray and value.dtype.kind not in _NOT_REAL and value.dtype.names is None:
        return value
    for attr in ("asnumpy", "get"):  # mxnet NDArray / cupy
        if hasattr(value, attr) and not isinstance(value, np.ndarray):
            try:
                value = getattr(value, attr)()
                break
            except Exception:
                pass
    if hasattr(value, "array") and not isinstance(value, np.ndarray):  # chainer.Variable
        value = value.array
    if not isinstance(value, (np.ndarray, np.generic, float, int)):
        raise TypeError(f"{what} is a {type(value).__name__}, not an array")
    value = np.asarray(value)
    if value.dtype.kind in _NOT_REAL or value.dtype.names is not None:
        raise TypeError(f"{what} is an array of dtype {value.dtype}, not of real numbers")
    return value


#: array kinds that are no loss value or gradient (object, complex, strings, datetimes):
#: a wrong return type in process and in a worker (whose wire could not carry them) alike
_NOT_REAL = frozenset("OcUSMm")
