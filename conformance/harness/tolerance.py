"""The comparison and tolerance policy, in one place.

Every check measures the error of a backend's result against the exact value and reports
it in two units, with the tolerance it was held to:

* **ULPs** of the dtype at the exact value: 0.5 is a correctly rounded result. A result
  within ``ulps`` ULPs *conforms*.
* **term-scale units**: ``error / (eps * scale)``, where ``scale`` is the oracle's sum of
  the magnitudes of the terms the documented formula adds up (|x_t - m| +
  |logsumexp(x - m)| with m = max(x) for softmax cross-entropy; the value itself for a mean
  of squares) and ``eps`` the dtype's machine epsilon. For every softmax-based loss the
  scale is shift-invariant: the terms after subtracting the maximum logit, which is what a
  stable log-sum-exp adds (so a uniform logit offset, which changes nothing, cannot inflate
  the bound). Backward error analysis bounds a stable algorithm's error by a small
  multiple of ``eps * scale * g(n)``, with ``g(n) = 2 + log2(n)`` growing slowly with the
  number ``n`` of terms reduced (pairwise or blocked summation; ordinary recursive
  summation rarely reaches its worst case of n). A result outside ``ulps`` but within
  ``stability * g(n)`` scale units is *within the stability bound*: it lost digits only
  where the problem itself is ill-conditioned (a tiny result of large terms), so summing
  in another order is not punished, while a backend that loses every digit of a tiny
  loss in a well-conditioned case (scale ~ value) fails.

Gradients are compared elementwise against the exact VJP (or, at a kink, the distance to
the oracle's interval of one-sided derivatives) and normwise: an element passes if its
error is within ``ulps`` ULPs of itself, or within ``stability * g(n)`` eps of the max-norm
of the exact VJP (a stable algorithm's error is small relative to the largest component,
not necessarily to each tiny one). The normwise error (max error / max-norm, in eps) is
always reported.

Infinite and undefined exact values: where the exact value is +-inf (or finite but beyond
the dtype's range, which rounds to +-inf), the backend must return the same infinity;
returning a finite number (e.g. through an eps clamp inside a log) or nan fails, and the
message says which it returned. Where the exact value is undefined (nan), nan conforms.

Defaults and why:

============  ====  =========  ======================================================
dtype         ulps  stability  reason
============  ====  =========  ======================================================
float64       4     8          a few roundings per elementwise term, then a reduction
float32       4     8          same analysis; eps = 2**-23
float16       4     8          same analysis with eps = 2**-10; frameworks that
                               accumulate float16 in float32 land well inside it
============  ====  =========  ======================================================

The same numbers for every dtype because the bound is already expressed in the dtype's
eps. A backend-specific override is allowed only in an expectation file, with a reason,
and is shown in reports.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

POLICY_VERSION = "1"


@dataclass(frozen=True)
class Tolerance:
    ulps: float = 4.0
    stability: float = 8.0
    reason: str = "default policy"

    def bound(self, n_terms: int) -> float:
        """The stability bound in units of eps * scale for a reduction of n terms."""
        return self.stability * growth(n_terms)

    def to_json(self) -> dict:
        return {"ulps": self.ulps, "stability": self.stability, "reason": self.reason}

    def with_override(self, ulps: float | None, stability: float | None, reason: str) -> Tolerance:
        return replace(
            self,
            ulps=self.ulps if ulps is None else float(ulps),
            stability=self.stability if stability is None else float(stability),
            reason=reason,
        )


DEFAULTS: dict[str, Tolerance] = {
    "float64": Tolerance(),
    "float32": Tolerance(),
    "float16": Tolerance(),
}

#: (mantissa bits with the hidden bit, minimum normal exponent)
FORMATS = {"float16": (11, -14), "float32": (24, -126), "float64": (53, -1022)}


def growth(n_terms: int) -> float:
    return 2.0 + math.log2(max(int(n_terms), 1))


def eps(dtype: str) -> float:
    return 2.0 ** (1 - FORMATS[dtype][0])


def default(dtype: str) -> Tolerance:
    return DEFAULTS[dtype]
