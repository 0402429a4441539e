"""A deliberately regressed backend for the report and diff tests: the numpy backend,
except that L2Loss returns a value 12.5 % too large (its gradients are unchanged) and
silently returns zeros for input the numpy backend rejects. Found as
``tests.regressed_backend:backend``."""

from __future__ import annotations

import numpy as np

from conformance.backends.numpy_backend import backend as _numpy
from conformance.protocol import Call, Outcome

REGRESSED_LOSS = "mxnet.gluon.loss.L2Loss"


class RegressedBackend:
    name = "numpy-regressed"
    version = _numpy.version
    modes = _numpy.modes  # the same paths as the backend it regresses

    def build_info(self) -> dict:
        return {"wraps": "numpy", "regressed": REGRESSED_LOSS}

    def supports(self, call: Call) -> str | None:
        return _numpy.supports(call)

    def run(self, call: Call) -> Outcome:
        try:
            out = _numpy.run(call)
        except Exception:
            if call.loss != REGRESSED_LOSS:
                raise
            return Outcome(np.zeros(1, dtype=call.dtype), {})
        if call.loss == REGRESSED_LOSS:
            value = np.asarray(out.output)
            out = Outcome((value * 1.125).astype(value.dtype), out.grads)
        return out


backend = RegressedBackend()
