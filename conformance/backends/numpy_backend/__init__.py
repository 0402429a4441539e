"""The ``numpy`` backend: every loss of the catalog in plain NumPy, forward and analytic
gradients, numerically stable, computing in the input dtype.

It is the reference example of a backend (see README.md): ``supports`` and ``run`` are all
the protocol asks. Modes: ``forward`` (the kernel with nothing to differentiate), ``grad``,
and ``backward-twice`` -- NumPy keeps no graph, so differentiating "the same graph" again
is the analytic gradient evaluated a second time, which is what ``run`` does (a kernel
that kept state between the two would be caught). ``compiled`` and ``hvp`` are not run,
for the reasons in ``MODES``. The kernels live one module per loss beside this file, each with
``LOSS_ID`` and ``run(inputs, options, cotangent, wrt) -> (output, grads)``.

bfloat16 (``ml_dtypes.bfloat16``) is computed through float64 and rounded once to bfloat16
(in ``run``, with :func:`oracle.precision.from_float64`): NumPy has no bfloat16 arithmetic of its own (ml_dtypes' ufuncs cast each
operation through float32 and round after every one, the naive one-term-at-a-time
evaluation the ``long`` fixture cases catch). Not through float32: bfloat16 has float32's
range, so a float32 intermediate overflows where the exact result is a finite bfloat16
(L2Loss's extreme case: pred - label beyond float32's max gives an infinite gradient).

``mapping()`` (the migration map) names each kernel's ``run`` as the call, the first
paragraph of its module docstring after the title (the formula) as the composition, and
the title as the note.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import ml_dtypes
import numpy as np

from oracle.precision import from_float64

from ...protocol import Call, Outcome


def _kernels() -> dict:
    found = {}
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(module, "LOSS_ID") and hasattr(module, "run"):
            found[module.LOSS_ID] = module
    return found


#: the modes of the protocol this backend runs (None) or why not
MODES: dict[str, str | None] = {
    "forward": None,
    "grad": None,
    "compiled": "NumPy has no graph or JIT compiler: its kernels only ever run eagerly, so there is no compiled path to check",
    "hvp": "the NumPy kernels compute values and analytic first derivatives only; they have no second derivatives",
    "backward-twice": None,
}


class NumpyBackend:
    name = "numpy"
    version = np.__version__
    modes = MODES

    def __init__(self) -> None:
        self.kernels = _kernels()

    def build_info(self) -> dict:
        cfg = {}
        try:
            from threadpoolctl import threadpool_info  # optional

            cfg["blas"] = [f"{i.get('internal_api')} {i.get('version')}" for i in threadpool_info()]
        except Exception:
            pass
        cfg["kernels"] = len(self.kernels)
        return cfg

    def mapping(self) -> dict[str, dict[str, str]]:
        """Per loss: the kernel's ``run`` (the call), its docstring's first paragraph after the
        title (how it computes the documented formula; with the formula that follows when
        the sentence goes on past the paragraph) and the title."""
        out = {}
        for loss, module in sorted(self.kernels.items()):
            doc = inspect.getdoc(module) or ""
            first, _, body = doc.partition("\n\n")
            head, _, rest = body.partition("\n\n")
            if not head.rstrip().endswith("."):  # a sentence that goes on with a formula
                head += " " + rest.partition("\n\n")[0]
            out[loss] = {
                "call": f"{module.__name__}.run(inputs, options, cotangent, wrt)",
                "composition": " ".join(head.split()),
                "notes": " ".join(first.split()) + " Plain NumPy in the input dtype, analytic gradients.",
            }
        return out

    def supports(self, call: Call) -> str | None:
        if call.loss not in self.kernels:
            return f"no NumPy kernel for {call.loss}"
        return MODES.get(call.mode, f"unknown mode {call.mode!r}")

    def run(self, call: Call) -> Outcome:
        kernel = self.kernels[call.loss]
        bf16 = any(_is_bfloat16(v) for v in (*call.inputs.values(), call.cotangent))
        inputs = {k: _up(v) for k, v in call.inputs.items()} if bf16 else dict(call.inputs)
        cotangent = _up(call.cotangent) if bf16 else call.cotangent
        output, grads = kernel.run(dict(inputs), dict(call.options), cotangent, tuple(call.wrt))
        if call.mode == "backward-twice" and call.wrt:  # the gradient formula evaluated a second time
            _, grads = kernel.run(dict(inputs), dict(call.options), cotangent, tuple(call.wrt))
        if bf16:  # computed in float64, rounded once to nearest even (beyond bfloat16's range:
            # +-inf). Not ml_dtypes' cast: before 0.6 it rounds twice, through float32.
            return Outcome(from_float64(output, "bfloat16"), {k: from_float64(g, "bfloat16") for k, g in grads.items()})
        return Outcome(output, grads)


_BF16 = np.dtype(ml_dtypes.bfloat16)


def _is_bfloat16(x: object) -> bool:
    return isinstance(x, np.ndarray) and x.dtype == _BF16


def _up(x: object) -> object:
    """A bfloat16 array as float64 (exact); anything else as is."""
    return x.astype(np.float64) if _is_bfloat16(x) else x


backend = NumpyBackend()
