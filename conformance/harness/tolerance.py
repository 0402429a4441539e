"""The comparison and tolerance policy, in one place: how error is measured, in which unit
it is shown, and the bound it is held to, with the reasons.

Notation: ``x`` the exact value of one element (value or VJP element), ``o`` what the
backend returned, ``err = |o - x|`` (at a kink: the distance from ``o`` to the oracle's
interval of one-sided derivatives), ``eps = 2**(1-p)`` the dtype's machine epsilon
(``p`` bits with the hidden one), ``u = eps / 2`` its unit roundoff, ``N`` its smallest
normal number and ``eps * N`` its smallest subnormal. ``s`` is the element's **term
scale**: the sum of the magnitudes of the terms the documented formula adds up to make
that element, as the oracle writes it in the fixture -- ``expected.scale`` for values
(e.g. |x_t - m| + |logsumexp(x - m)|, m = max(x), for softmax cross-entropy), and
``vjp.<input>.scale`` for each gradient element (e.g. |c| (|p| + |y|) for a softmax
gradient c (p - y)).

Two units
---------
* **ULPs** of the dtype at ``x``: ``err / ulp(x)``; 0.5 is a correctly rounded result.
* **eps x scale**: ``err / (eps * S)`` with the *effective scale*
  ``S = max(s, |x|, N)``. ``S >= |x|`` because a sum of magnitudes is never below the
  magnitude of the sum (the fixture's 6-digit scale, or a missing one, must not make it
  so); ``S >= N`` because a dtype cannot resolve errors below its subnormal spacing, and
  ``eps * N`` *is* that spacing (the smallest subnormal): an exact zero made of zero terms
  is measured in subnormal steps, not divided by zero.

**Which unit is the headline.** ULPs mean something where the exact value is a normal
number of the dtype and one rounding of its terms is within the 4-ULP bar that decides
*conforms*: ``|x| >= N`` and ``u * S <= 4 ulp(x)`` (i.e. ``eps * S <= 8 ulp(x)``; with
``ulp(x)`` between ``eps |x| / 2`` and ``eps |x|`` that is a scale up to 4-8 times the
value). Elsewhere -- an exact zero, a value below the dtype's normal range, a value far
below its terms (cancellation) -- ULPs count the spacing of numbers no evaluation of the
documented formula can resolve: an error of one rounding of O(1) terms at an exact zero
would read as 1e306 ULP in float64. There the error is shown, and recorded, in eps x
scale only (``error_ulps`` is null in the results file; ``error_scale`` is the figure).
Two exceptions read in ULPs anyway, because there the ULP figure is the one that says
what happened: an element within the 4-ULP tolerance (it *conforms*: e.g. one subnormal
step at an exact zero is 1 ULP), and a nan or infinity where the exact value is finite
(inf ULP).
A check's figures are those of its *worst element*: the worst failing element if any
fails, else the worst element that needed the stability bound, else the element with
the most ULPs (ranked by eps x scale in the first two cases, by ULPs in the last).

Gradient elements use their own term scale when the fixture has ``vjp.<input>.scale``.
**Fallback** (fixtures written before it): the max-norm of the exact VJP's finite
elements, the normwise comparison (a stable algorithm's error is small relative to the
largest component); it is too strict for an element whose own terms are much larger
than every element of the VJP (a softmax gradient p - y with y ~ p everywhere: terms
O(0.5), elements O(1e-7)), which is why the fixtures carry the per-element scale.

Verdicts
--------
An element **conforms** when ``err <= ulps * ulp(x)`` (``ulps`` = 4). Otherwise it is
**within the stability bound** when ``err <= B * eps * S`` (B below); otherwise it
**fails**. A check conforms when every element does, fails when any fails.

The stability bound, derived
----------------------------
Model (Higham, *Accuracy and Stability of Numerical Algorithms*, 2nd ed., ch. 2-4): each
floating-point operation is exact then rounded, ``fl(a op b) = (a op b)(1 + d)``,
``|d| <= u``; a libm elementary function (exp, log, log1p, sqrt, tanh ...) is within 1
ULP, i.e. a relative error of at most ``2u``, two roundings' worth. A product of ``m``
such factors ``(1 + d_i)`` is ``1 + t`` with ``|t| <= gamma_m = m u / (1 - m u)``
(Higham, Lemma 3.1) -- exact, not first order.

A backward-stable evaluation of the documented formula ``y = c * sum_i t_i`` (a loss
value, or one VJP element, is such a reduction of ``n`` terms ``t_i``, then a
normalisation):

1. each term is computed with relative error ``gamma_k``: ``k`` counts its roundings --
   by default **k = 4**: up to two arithmetic operations on the (exact) inputs and one
   elementary function (2): e.g. ``x_t - m``; ``exp(x_i - m)``; ``t log t``;
   ``max(0, 1 - y x)``;
2. the terms are summed pairwise or blocked (numpy's ``add.reduce``, the frameworks' tree
   reductions): each term passes through at most ``ceil(log2 n)`` additions, so the sum's
   error is at most ``gamma_d * sum_i |t_i|``, ``d = ceil(log2 n)`` (Higham, eq. 4.6);
3. at most **2** more roundings after the reduction: a division by a count or a weight
   sum, and a multiplication by a sample weight or the cotangent.

Together: ``|y_computed - y| <= gamma_m * |c| sum_i |t_i| = gamma_m * s`` with
``m = k + ceil(log2 n) + 2``, so in units of ``eps * s``::

    B(n) = gamma_m / eps = (m / 2) / (1 - m u),   m = 4 + ceil(log2 n) + 2

n = 1: 3 eps x scale; n = 4: 4; n = 24: 5.5; n = 60: 6 (float64; float16 up to 0.8 %
more). For a well-conditioned element (S = |x|) that is 6 to 12 ULP -- not the 16 to 130
ULP of the former ``8 (2 + log2 n) eps x scale`` -- so a backend off by 32 ULP fails
(``benchmarks/detection_curve.py`` measures it), while any evaluation that obeys the model
(another summation order within the tree depth, float64 then rounded, logaddexp instead
of a max-shift, ...) passes. Where the same reduction is done by recursive summation, the
worst case grows as ``n - 1`` instead of ``ceil(log2 n)``, but its probabilistic bound
(Higham & Mary 2019: ``lambda sqrt(n) u``) is below ``ceil(log2 n) + 2`` roundings for
every n in the fixtures (n <= 60). The gradient of such a reduction is a reduction of the
same length (its ``p_j`` carry the forward sum's error), so it gets the same bound.

Per-loss constants: where a loss's terms need more roundings than the default ``k = 4``
the fixture says so, per case, and the harness (which knows no formula) reads it:
``expected.roundings`` for the value, ``vjp.<input>.roundings`` for a gradient (an
integer ``k``; the bound is then ``B = gamma_m / eps`` with ``m = k + ceil(log2 n) + 2``).
E.g. CTC: every path's probability is a product of T softmax outputs, and the
forward-backward recursion adds a log-add-exp per time step, so its ``k`` grows with T.

Infinite and undefined exact values: where the exact value is +-inf (or finite but beyond
the dtype's range, which rounds to +-inf), the backend must return the same infinity;
returning a finite number (e.g. through an eps clamp inside a log) or nan fails, and the
message says which it returned. Where the exact value is undefined (nan), nan conforms.

bfloat16 (8-bit significand, float32's exponent range): ``eps = 2**-7``, ``N = 2**-126``;
its defaults are those of every dtype, because both bounds are in its own units -- and they
are not loose for it: 4 ULP is 2**-5 relative, and a result computed in float32 and rounded
once to bfloat16 is within 0.5 ULP plus float32's own error (2**-16 of a bfloat16 ULP).
Whether the default tolerance suits bfloat16, expressed as relative error, is the same
question as for float16 (2**-8 vs 2**-11 unit roundoff); the fixtures' ``long`` cases
show that the log2 n growth of the bound still catches a running sum that stagnates.

Defaults, the same for every dtype because both bounds are in the dtype's own units:
``ulps = 4``, ``stability = 1`` (a multiplier on ``B``: the derived bound itself). A
backend-specific override is allowed only in an expectation file, with a reason, and is
shown in reports.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

POLICY_VERSION = "2"

#: roundings of one term of a documented formula, unless the fixture says otherwise
#: (two arithmetic operations and one elementary function of at most 1 ULP)
TERM_ROUNDINGS = 4
#: roundings after the reduction (a normalisation and a weight or cotangent)
FINAL_ROUNDINGS = 2
#: ULPs are the headline where one rounding of the terms, u * S, is within this many ULPs
#: of the exact value (the default ULP tolerance)
ULP_MEANINGFUL = 4.0


@dataclass(frozen=True)
class Tolerance:
    ulps: float = 4.0
    stability: float = 1.0
    reason: str = "default policy"

    def bound(self, n_terms: int, dtype: str = "float64", roundings: int | None = None) -> float:
        """The stability bound in units of eps * scale for a reduction of ``n_terms``
        terms of ``dtype`` numbers (``roundings`` per term; default :data:`TERM_ROUNDINGS`)."""
        return self.stability * stability_bound(n_terms, dtype, roundings)

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
    # bfloat16: the same defaults in its own units (eps = 2**-7, N = 2**-126). A backend
    # that computes in float32 and rounds once is within 0.5 ULP + 2**-16 ULP; one that
    # computes natively in bfloat16 is held to the same model of roundings as every dtype,
    # and B(n) stays a proper bound (m u = 20 / 256 < 1 at n = 16384, the longest reduction)
    "bfloat16": Tolerance(),
}

#: (mantissa bits with the hidden bit, minimum normal exponent); bfloat16 (ml_dtypes) has
#: float32's exponent range with an 8-bit significand
FORMATS = {"float16": (11, -14), "float32": (24, -126), "float64": (53, -1022), "bfloat16": (8, -126)}


def depth(n_terms: int) -> int:
    """``ceil(log2 n)``: the additions a term passes through in a pairwise sum of n terms."""
    return max(int(n_terms) - 1, 0).bit_length()


def roundings(n_terms: int, term_roundings: int | None = None) -> int:
    """``m = k + ceil(log2 n) + 2``: the roundings on the path of every term."""
    k = TERM_ROUNDINGS if term_roundings is None else int(term_roundings)
    return k + depth(n_terms) + FINAL_ROUNDINGS


def gamma(m: int, dtype: str) -> float:
    """Higham's ``gamma_m = m u / (1 - m u)``: the bound on the relative error of m roundings
    (no bound, inf, once ``m u >= 1``: e.g. a CTC with hundreds of roundings per term in bfloat16)."""
    mu = m * unit_roundoff(dtype)
    return mu / (1.0 - mu) if mu < 1.0 else math.inf


def stability_bound(n_terms: int, dtype: str = "float64", term_roundings: int | None = None) -> float:
    """``B(n) = gamma_m / eps`` (see the module docstring)."""
    return gamma(roundings(n_terms, term_roundings), dtype) / eps(dtype)


def growth(n_terms: int) -> float:
    """The former growth factor ``2 + log2 n`` (kept for readers of old results)."""
    return 2.0 + math.log2(max(int(n_terms), 1))


def eps(dtype: str) -> float:
    return 2.0 ** (1 - FORMATS[dtype][0])


def unit_roundoff(dtype: str) -> float:
    return 2.0 ** -FORMATS[dtype][0]


def min_normal(dtype: str) -> float:
    return 2.0 ** FORMATS[dtype][1]


def default(dtype: str) -> Tolerance:
    return DEFAULTS[dtype]
