"""Real numbers as proven enclosures: the number type every loss formula runs on.

A :class:`Real` is a ball of python-flint's ``arb`` (midpoint and radius, every operation
rounded outward, elementary functions with rigorous error bounds) that is certain to hold
the exact mathematical value of the expression that produced it, or an exact special
value (``+inf``, ``-inf``, ``nan``: arb has no signed infinity). Inputs are exact points
(a float converts exactly), and exact arithmetic on points stays a point while the working
precision holds the result, so a zero weight, a zero cotangent or ``x - x`` is a *proven*
exact zero (a point at 0), while a value computed through ``exp``/``log`` is a ball.

Branches on computed values stay as the loss modules write them: a comparison that the
enclosures decide returns a bool; one they do not decide (``[0.3 +/- 1e-70] > 0.3``)
raises :class:`Undecided`, and the evaluation is repeated at a higher precision
(:func:`oracle.api.evaluate`). Identity decides what the balls cannot: an object equals
itself (``np.where`` hands the same object to both sides of a kink test).

Every Real also carries a *term magnitude* (:attr:`Real.mag`, a 30-bit float of mpmath's
raw format): the scale of the rounding errors a floating-point evaluation of the same
expression commits, to first order, in units of the unit roundoff -- the sum of the
magnitudes of the terms it adds up, carried through products and elementary functions
(a running error bound, Wilkinson; Higham, *Accuracy and Stability*, 3.3). An input or
constant is exact (a *leaf*, magnitude ``|x|``); then

* ``a +- b``: ``mag(a) + mag(b)``; a formula may declare a difference one term
  (:func:`term`: ``x_j - max(x)``, one rounding of an exact difference, as the value scales
  of the softmax losses do, so that their gradient scales are shift-invariant);
* ``a b``: ``|b| mag(a) + |a| mag(b) - |a b|``; ``a / b``: ``mag(a) / |b| + |a| (mag(b) - |b|) / b^2``
  (relative errors add; a leaf times a sum of terms keeps ``|b| sum |t_i|``);
* an elementary function: its own rounding plus its argument's error carried through its
  derivative: ``exp(a)``: ``|e^a| (1 + mag(a))``, ``log(a)``: ``|log a| + mag(a) / |a|``,
  ``log1p(a)``: ``|log1p a| + mag(a) / |1 + a|``, ``expm1(a)``: ``|expm1 a| + |e^a| mag(a)``,
  ``sqrt(a)``: ``|sqrt a| + mag(a) / (2 sqrt a)`` (a leaf argument contributes nothing).

For a softmax gradient ``s (p - y)``, ``p = exp(x_k - m - log s)``, it is
``|s| (|p| (1 + |x_k - m| + |log s| + ...) + |y|)``: the terms ``|p| + |y|`` with ``p``'s
exponent's conditioning; for CTC's ``y - gamma`` it includes the recursion's products.
It is meaningful where the value itself is 0 or tiny by cancellation (fixtures'
``vjp.<input>.scale``).

Why arb rather than mpmath's ``iv`` context: see :mod:`oracle.precision` (measured: arb is
7 to 70 times faster on the oracle's kernels, and its functions carry documented error
bounds).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import flint
import mpmath
import numpy as np
from flint import arb
from mpmath import mpf
from mpmath.libmp import fzero, mpf_abs, mpf_add, mpf_div, mpf_mul, mpf_sub, round_up

_MAG_BITS = 30
_INF = float("inf")


class Undecided(ArithmeticError):
    """A branch on a computed value that the enclosures at this precision cannot decide."""


def set_precision(bits: int) -> None:
    """Working precision (bits) of every ball operation."""
    flint.ctx.prec = bits


def get_precision() -> int:
    return flint.ctx.prec


def _mag_of_arb(b: arb) -> tuple:
    """|b| as a raw mpf (upper bound of the midpoint's magnitude, 30 bits)."""
    m, e = b.mid().man_exp()
    return mpmath.libmp.from_man_exp(abs(int(m)), int(e), _MAG_BITS, round_up)


_MAG_INF = mpmath.libmp.finf


class Real:
    """An enclosure of one real number (see the module docstring)."""

    __slots__ = ("b", "s", "mag", "log_of", "leaf", "t")

    def __init__(self, b: arb | None, s: float | None = None, mag: tuple | None = None):
        self.b = b  # the ball, or None for a special value
        self.s = s  # +inf, -inf or nan when b is None
        #: (a, sign) when this is exactly sign * log(a) of an exact point a (so that
        #: exp(-log n) is the exact 1/n of a tie, not a ball around it)
        self.log_of: tuple[Real, int] | None = None
        #: an input or constant: exact, no rounding error of its own (see the docstring)
        self.leaf = False
        #: the t-derivative (a Real without a tangent of its own), or None for an exact 0:
        #: set on inputs by :func:`oracle.hvp.evaluate_hvp` (forward mode, see :func:`tangent`)
        self.t: Real | None = None
        if mag is None:
            mag = _mag_of_arb(b) if b is not None else (mpmath.libmp.fnan if s != s else _MAG_INF)
        self.mag = mag

    # ------------------------------------------------------------ queries
    @property
    def is_special(self) -> bool:
        return self.b is None

    @property
    def is_exact(self) -> bool:
        """A point: the exact value itself (or a special value)."""
        return self.b is None or self.b.is_exact()

    @property
    def is_zero(self) -> bool:
        """Proven exactly zero (a point at 0, with no t-derivative)."""
        return self.b is not None and self.b.is_zero() and (self.t is None or self.t.is_zero)

    def bounds(self) -> tuple[mpf, mpf]:
        """Lower and upper bound, exact mpf."""
        if self.b is None:
            v = mpf(self.s)
            return v, v
        return _arf_to_mpf(self.b.lower()), _arf_to_mpf(self.b.upper())

    def mid(self) -> mpf:
        if self.b is None:
            return mpf(self.s)
        return _arf_to_mpf(self.b.mid())

    def radius(self) -> mpf:
        return mpf(0) if self.b is None else _arf_to_mpf(self.b.rad())

    def magnitude(self) -> mpf:
        """The term magnitude as an mpf (see the module docstring)."""
        return mpf(self.mag)

    def __repr__(self) -> str:
        return f"Real({self.s})" if self.b is None else f"Real({self.b.str(20, radius=True)})"

    __str__ = __repr__

    # ------------------------------------------------------------ arithmetic
    def __neg__(self) -> Real:
        if self.b is None:
            return Real(None, -self.s, self.mag)
        out = Real(-self.b, None, self.mag)
        out.leaf = self.leaf
        if self.t is not None:
            out.t = -self.t
        if self.log_of is not None:
            out.log_of = (self.log_of[0], -self.log_of[1])
        return out

    def __pos__(self) -> Real:
        return self

    def __abs__(self) -> Real:
        if self.b is None:
            return Real(None, abs(self.s), self.mag)
        b = self.b
        if self.t is not None:  # the germ's sign (value, then t-derivative) decides
            try:
                c = self._cmp(0)
            except Undecided:  # a sign the enclosure does not tell: no derivative known
                out = Real(abs(b), None, self.mag)
                out.t = NAN
                return out
            return -self if c < 0 else (self if c > 0 else Real(arb(0), None, fzero))
        if b >= 0:
            return Real(b, None, self.mag)
        if b <= 0:
            return Real(-b, None, self.mag)
        return Real(abs(b), None, self.mag)  # arb's |ball| is an enclosure

    def __add__(self, other: object) -> Real:
        if isinstance(other, np.ndarray):
            return NotImplemented
        o = real(other)
        mag = mpf_add(self.mag, o.mag, _MAG_BITS, round_up)
        if self.b is None or o.b is None:
            return Real(None, _special(self) + _special(o), mag)
        out = Real(self.b + o.b, None, mag)
        if self.t is not None or o.t is not None:
            out.t = self.t if o.t is None else (o.t if self.t is None else self.t + o.t)
        # x + 0 is x exactly: it keeps what is known of x (that it is a log)
        if o.log_of is not None and self.b.is_zero():
            out.log_of = o.log_of
        elif self.log_of is not None and o.b.is_zero():
            out.log_of = self.log_of
        return out

    __radd__ = __add__

    def __sub__(self, other: object) -> Real:
        if isinstance(other, np.ndarray):
            return NotImplemented
        o = real(other)
        if o is self:  # x - x is exactly 0 in any arithmetic: no error, an exact leaf
            return _leaf(Real(arb(0), None, fzero)) if self.b is not None else Real(None, math.nan)
        return self + (-o)

    def __rsub__(self, other: object) -> Real:
        if isinstance(other, np.ndarray):
            return NotImplemented
        return real(other) - self

    def __mul__(self, other: object) -> Real:
        if isinstance(other, np.ndarray):
            return NotImplemented
        o = real(other)
        if self.b is None or o.b is None:
            return Real(None, _special(self) * _special(o, self), _mag_mul(self.mag, o.mag))
        b = self.b * o.b
        out = Real(b, None, _mag_product(self, o, _mag_of_arb(b)))
        if self.t is not None or o.t is not None:
            out.t = _tsum(None if self.t is None else self.t * _plain(o), None if o.t is None else _plain(self) * o.t)
        return out

    __rmul__ = __mul__

    def __truediv__(self, other: object) -> Real:
        if isinstance(other, np.ndarray):
            return NotImplemented
        o = real(other)
        if o.b is not None and o.b.is_zero():
            raise ZeroDivisionError("division by an exact zero")
        if o.b is not None and o.b.contains(0):
            raise Undecided("a divisor whose enclosure contains 0")
        if self.b is None or o.b is None:
            if o.b is None and self.b is None:
                return Real(None, math.nan)
            if o.b is None:  # finite / inf
                return Real(arb(0), None, fzero)
            return Real(None, self.s * _sign(o), self.mag)
        q = self.b / o.b
        ob = _mag_of_arb(o.b)
        excess = _nonneg(mpf_sub(o.mag, ob, _MAG_BITS, round_up))  # mag(b) - |b|
        mag = mpf_add(mpf_div(self.mag, ob, _MAG_BITS, round_up),
                      mpf_div(mpf_mul(_mag_of_arb(q), excess, _MAG_BITS, round_up), ob, _MAG_BITS, round_up),
                      _MAG_BITS, round_up)
        out = Real(q, None, mag)
        if self.t is not None or o.t is not None:  # (a/b)' = a'/b - (a/b) b'/b
            po = _plain(o)
            out.t = _tsum(None if self.t is None else self.t / po, None if o.t is None else -(_plain(out) * o.t / po))
        return out

    def __rtruediv__(self, other: object) -> Real:
        if isinstance(other, np.ndarray):
            return NotImplemented
        return real(other) / self

    def __pow__(self, n: object) -> Real:
        if isinstance(n, (int, np.integer)) and n >= 0:
            out = Real(arb(1), None, mpmath.libmp.fone)
            for _ in range(int(n)):
                out = out * self
            return out
        if isinstance(n, (int, np.integer)):
            return 1 / (self ** (-int(n)))
        return exp(log(self) * real(n))

    # ------------------------------------------------------------ comparisons
    __array_priority__ = -1  # an ndarray operand is numpy's: elementwise

    def _cmp(self, other: object) -> int | None:
        """-1, 0, 1 when decided, None with a nan (every comparison but != is False);
        raises Undecided."""
        o = real(other)
        if o is self and self.b is not None:
            return 0
        if self.b is None or o.b is None:
            a, c = _special(self), _special(o)
            if a != a or c != c:
                return None
            return (a > c) - (a < c)
        d = self.b - o.b
        if d.is_zero():
            if self.t is None and o.t is None:
                return 0
            return _germ_cmp(self, o)
        if d > 0:
            return 1
        if d < 0:
            return -1
        raise Undecided(f"cannot order {self} and {o} at {flint.ctx.prec} bits")

    def __lt__(self, o: object) -> bool:
        c = self._cmp(o)
        return c is not None and c < 0

    def __le__(self, o: object) -> bool:
        c = self._cmp(o)
        return c is not None and c <= 0

    def __gt__(self, o: object) -> bool:
        c = self._cmp(o)
        return c is not None and c > 0

    def __ge__(self, o: object) -> bool:
        c = self._cmp(o)
        return c is not None and c >= 0

    def __eq__(self, o: object) -> bool:  # type: ignore[override]
        if not isinstance(o, (Real, int, float, mpf, np.number)):
            return NotImplemented
        return self._cmp(o) == 0

    def __ne__(self, o: object) -> bool:  # type: ignore[override]
        eq = self.__eq__(o)
        return eq if eq is NotImplemented else not eq

    def __bool__(self) -> bool:
        return self != 0

    def __hash__(self) -> int:
        if not self.is_exact:
            raise TypeError("an inexact enclosure is not hashable")
        return hash(self.mid())

    # ------------------------------------------------------------ conversions
    def __float__(self) -> float:
        return float(self.mid())

    def __int__(self) -> int:
        if not self.is_exact:
            raise Undecided(f"{self} is not an exact integer")
        return int(self.mid())

    def __index__(self) -> int:
        return int(self)


def _sign(x: Real) -> int:
    return x._cmp(0)


def _special(x: Real, other: Real | None = None) -> float:
    """The value as a float for arithmetic with a special value: a special itself, or a
    finite ball's sign (all that inf arithmetic needs)."""
    if x.b is None:
        return x.s  # type: ignore[return-value]
    if x.b.is_zero():
        return 0.0
    return float(_sign(x))


def _nonneg(x: tuple) -> tuple:
    return fzero if mpmath.libmp.mpf_sign(x) < 0 else x


def _mag_product(a: Real, b: Real, ab: tuple) -> tuple:
    """|b| mag(a) + |a| mag(b) - |ab| (at least |ab|): relative errors add."""
    if a.mag == fzero or b.mag == fzero:
        return fzero if ab == fzero else ab
    t = mpf_add(mpf_mul(_mag_of_arb(b.b), a.mag, _MAG_BITS, round_up),
                mpf_mul(_mag_of_arb(a.b), b.mag, _MAG_BITS, round_up), _MAG_BITS, round_up)
    t = mpf_sub(t, ab, _MAG_BITS, round_up)
    return t if mpmath.libmp.mpf_cmp(t, ab) > 0 else ab


def _mag_mul(a: tuple, b: tuple) -> tuple:
    if a == fzero or b == fzero:
        return fzero
    return mpf_mul(a, b, _MAG_BITS, round_up)


def _arf_to_mpf(b: arb) -> mpf:
    if not b.is_finite():
        s = b.str()
        return mpmath.nan if "nan" in s else (mpmath.inf if not s.startswith("-") else -mpmath.inf)
    m, e = b.mid().man_exp()
    return mpmath.mp.make_mpf(mpmath.libmp.from_man_exp(int(m), int(e)))  # exact, never rounded


def _leaf(x: Real) -> Real:
    x.leaf = True
    return x


def real(x: object) -> Real:
    """An exact Real of a number (int, float, mpf, numpy scalar, or a Real itself)."""
    if isinstance(x, Real):
        return x
    if isinstance(x, (bool, np.bool_)):
        x = int(x)
    if isinstance(x, (int, np.integer)):
        x = int(x)
        return _leaf(Real(arb(x), None, mpmath.libmp.from_int(abs(x), _MAG_BITS, round_up)))
    if isinstance(x, (float, np.floating)):
        x = float(x)
        if not math.isfinite(x):
            return _leaf(Real(None, x))
        return _leaf(Real(arb(x), None, mpmath.libmp.from_float(abs(x), _MAG_BITS, round_up)))
    if isinstance(x, mpf):
        if not mpmath.isfinite(x):
            return _leaf(Real(None, float(x)))
        sign, man, exp_, _ = x._mpf_
        b = arb((-int(man) if sign else int(man), int(exp_)))  # exact whatever the precision
        return _leaf(Real(b, None, mpf_abs(x._mpf_, _MAG_BITS, round_up)))
    if isinstance(x, str):
        return real(mpf(x)) if x in ("inf", "-inf", "nan") else Real(arb(x))
    raise TypeError(f"cannot make a Real of {type(x).__name__} {x!r}")


INF = Real(None, _INF)
NAN = Real(None, math.nan)


# ------------------------------------------------------------------ elementary functions
def _exp_value(x: Real) -> Real:
    if x.log_of is not None:  # exp(+-log a) = a or 1/a, exactly
        a, sign = x.log_of
        out = a if sign > 0 else 1 / a
        return _fresh(out.b, _carried(x, _mag_of_arb(out.b)))
    if x.b is None:
        return Real(None, x.s if x.s > 0 or x.s != x.s else 0.0) if x.s != -_INF else Real(arb(0), None, fzero)
    e = x.b.exp()
    return _fresh(e, _carried(x, _mag_of_arb(e)))


def _expm1_value(x: Real) -> Real:
    if x.log_of is not None:
        e = exp(x) - 1
        return _fresh(e.b, _carried(x, _mag_of_arb(e.b + 1)))
    if x.b is None:
        return Real(None, x.s) if x.s != -_INF else real(-1)
    if x.b.is_zero():
        return Real(arb(0), None, fzero)
    e = x.b.expm1()
    return _fresh(e, _carried(x, _mag_of_arb(e + 1)))


def _log_value(x: Real) -> Real:
    if x.b is None:
        return Real(None, x.s if x.s > 0 else math.nan)
    if x.b.is_zero():
        return Real(None, -_INF)
    if x.b < 0:
        return Real(None, math.nan)
    if not x.b > 0:
        raise Undecided(f"log of {x}, an enclosure that contains 0")
    if x.is_exact and x.b == 1:
        return Real(arb(0), None, fzero)
    out = _fresh(x.b.log(), _carried(x, _inverse(_mag_of_arb(x.b))))
    if x.is_exact:
        out.log_of = (x, 1)
    return out


def _log1p_value(x: Real) -> Real:
    if x.b is None:
        return Real(None, x.s if x.s > 0 else math.nan)
    if x.b.is_zero():
        return Real(arb(0), None, fzero)
    c = x._cmp(-1)
    if c == 0:
        return Real(None, -_INF)
    if c < 0:
        return Real(None, math.nan)
    out = _fresh(x.b.log1p(), _carried(x, _inverse(_mag_of_arb(x.b + 1))))
    if x.is_exact:
        one_plus = x + 1
        if one_plus.is_exact:
            out.log_of = (one_plus, 1)
    return out


def _sqrt_value(x: Real) -> Real:
    if x.b is None:
        return Real(None, x.s if x.s > 0 else math.nan)
    if x.b.is_zero():
        return Real(arb(0), None, fzero)
    if not x.b > 0:
        if x.b < 0:
            return Real(None, math.nan)
        raise Undecided(f"sqrt of {x}, an enclosure that contains 0")
    r = x.b.sqrt()
    return _fresh(r, _carried(x, _inverse(_mag_of_arb(2 * r))))


def exp(x: object) -> Real:
    x = real(x)
    out = _exp_value(_plain(x))
    return _chain(out, x, lambda: _plain(out))


def expm1(x: object) -> Real:
    x = real(x)
    out = _expm1_value(_plain(x))
    return _chain(out, x, lambda: _exp_value(_plain(x)))


def log(x: object) -> Real:
    x = real(x)
    out = _log_value(_plain(x))
    return _chain(out, x, lambda: 1 / _plain(x))


def log1p(x: object) -> Real:
    x = real(x)
    out = _log1p_value(_plain(x))
    return _chain(out, x, lambda: 1 / (1 + _plain(x)))


def sqrt(x: object) -> Real:
    x = real(x)
    out = _sqrt_value(_plain(x))
    return _chain(out, x, lambda: 1 / (2 * _plain(out)))


def pi() -> Real:
    return _fresh(arb.pi())


def _fresh(b: arb, carried: tuple = fzero) -> Real:
    """The result of an elementary function: its own magnitude (one rounding) plus the
    argument's error carried through the derivative (``carried``)."""
    if not b.is_finite():
        raise Undecided("an elementary function's enclosure is not finite")
    return Real(b, None, mpf_add(_mag_of_arb(b), carried, _MAG_BITS, round_up))


def _carried(x: Real, derivative: tuple) -> tuple:
    """|f'(x)| mag(x): the argument's error through f (nothing for a leaf: it is exact)."""
    if x.leaf or x.mag == fzero:
        return fzero
    return mpf_mul(derivative, x.mag, _MAG_BITS, round_up)


def _inverse(m: tuple) -> tuple:
    return mpf_div(mpmath.libmp.fone, m, _MAG_BITS, round_up) if m != fzero else _MAG_INF


def term(x: object) -> Real:
    """``x`` declared one term of the formula: the result of one operation on exact inputs
    (``x_j - max(x)``), its magnitude ``|x|`` (one rounding), not its operands' sum."""
    x = real(x)
    if x.b is None:
        return x
    out = Real(x.b, None, _mag_of_arb(x.b))
    out.log_of = x.log_of
    out.t = x.t
    return out


def with_terms(x: object, *terms: object) -> Real:
    """``x`` with the term magnitude of a floating-point sum of ``terms`` (the sum of their
    magnitudes, one rounding each): ``x_j - max(x)`` evaluated as the documented
    ``x_j - logsumexp(x)`` adds ``|x_j|`` and ``|m|`` whatever the shift (see
    :func:`oracle.arrays.log_softmax_terms`). Its t-derivative likewise gets the term
    magnitude of the terms' t-derivatives (``|v_j| + |v_m|`` for the tangent of
    ``x_j - logsumexp(x)``), not that of the shifted difference, which is exactly 0 where
    ``x_j`` is the maximum: second order is held to the same documented formula as the
    value and the VJP."""
    x = real(x)
    if x.b is None:
        return x
    mag = fzero
    for t in terms:
        t = real(t)
        m = _mag_of_arb(t.b) if t.b is not None else _MAG_INF
        mag = mpf_add(mag, m, _MAG_BITS, round_up)
    out = Real(x.b, None, mag)
    out.log_of = x.log_of
    out.t = x.t
    if x.t is not None or any(real(t).t is not None for t in terms):
        out.t = with_terms(tangent(x), *(tangent(t) for t in terms))
    return out


def with_tangent_terms(x: object, *terms: object) -> Real:
    """``x`` (value and scale unchanged) whose t-derivative carries the term magnitude of a
    floating-point sum of ``terms`` (t-derivatives): for a log-probability evaluated as
    ``-log1p(sum_j exp(x_j - x_k))`` the documented ``x_k - logsumexp(x)`` has the
    t-derivative ``v_k - sum_j p_j v_j``, whose terms are O(|v|) where the shifted form's
    are tiny (see :func:`with_terms`). Where ``x`` carries no t-derivative (an exact 0: a
    log-probability of one class, ``-log1p(0)``, is 0 whatever the inputs), the terms still
    count: ``v_k - p_k v_k`` is exactly 0, but a floating-point evaluation of it commits
    errors of O(|v_k|)."""
    x = real(x)
    if x.b is None or (x.t is not None and x.t.b is None):
        return x
    terms = tuple(real(t) for t in terms)
    if x.t is None and all(t.mag == fzero for t in terms):
        return x  # nothing moves: no t-derivative to carry
    out = Real(x.b, x.s, x.mag)
    out.leaf = x.leaf
    out.log_of = x.log_of
    out.t = with_terms(tangent(x), *terms)
    return out


def fsum(values: Iterable[object]) -> Real:
    out = Real(arb(0), None, fzero)
    for v in values:
        out = out + v
    return out


def isinf(x: object) -> bool:
    x = real(x)
    return x.b is None and x.s == x.s


def isnan(x: object) -> bool:
    x = real(x)
    return x.b is None and x.s != x.s


# ------------------------------------------------------------------ values a formula proves
def known_exactly(x: Real, q: flint.fmpq) -> Real:
    """``x`` with its enclosure replaced by the rational ``q`` that the formula proves it
    equals (a loss module states the argument, e.g. :mod:`oracle.losses.ctc_loss`): a point
    when ``q`` is dyadic and fits the working precision (0 included), else the tightest
    ball of ``q``. For what no enclosure can prove -- an exact zero by symmetry, or a
    dyadic value that is a rounding tie of a float format (the two ends of any ball around
    it round apart). The term magnitude stays ``x``'s (how a floating-point evaluation of
    the same expression errs does not depend on how its value is proven). ``x``'s own
    enclosure must meet ``q``'s: the proof is checked against the balls."""
    if x.b is None:
        raise ValueError(f"known_exactly: {x} is not a finite enclosure")
    b = arb(q)
    if not x.b.overlaps(b):
        raise AssertionError(f"known_exactly: the enclosure {x} excludes the value {q} the formula gives")
    out = Real(b, None, x.mag)
    t = getattr(x, "t", None)  # (a forward-mode t-derivative, where Real carries one, is x's)
    if t is not None:
        out.t = t
    return out


def isfinite(x: object) -> bool:
    return real(x).b is not None


def isint(x: object) -> bool:
    x = real(x)
    return x.b is not None and x.b.is_exact() and x.b.is_integer()


def fabs(x: object) -> Real:
    return abs(real(x))


# ------------------------------------------------------------------ forward mode (t-derivatives)
# A Real may carry ``t``, its derivative along a line x + t v of the inputs at t = 0 (itself a
# Real, with its own enclosure and term magnitude), so that a loss module's VJP code, run
# unchanged on inputs that carry the direction v, yields the Hessian-vector product as the
# t-derivative of each VJP element (:mod:`oracle.hvp`). A branch on computed values is then
# decided on the germ at t = 0+: by the values, and where they are exactly equal, by the
# t-derivatives (x + t v just after 0): the right derivative along v. Such decisions are
# counted (:data:`GERM`), so that the caller knows when the left derivative (direction -v)
# may differ, or when a tie survives to first order.

#: counters of the current evaluation: "ties" (comparisons decided by t-derivatives) and
#: "flat" (exactly equal values with exactly equal, nonzero t-derivatives: undecided at first order)
GERM = {"ties": 0, "flat": 0}


def reset_germ() -> None:
    GERM["ties"] = 0
    GERM["flat"] = 0


def _germ_cmp(a: Real, b: Real) -> int:
    """Order of two germs whose values are exactly equal: by their t-derivatives."""
    ta = a.t if a.t is not None else Real(arb(0), None, fzero)
    tb = b.t if b.t is not None else Real(arb(0), None, fzero)
    d = ta.b - tb.b
    if d.is_zero():
        if not (ta.b.is_zero() and tb.b.is_zero()):
            GERM["flat"] += 1
        return 0
    GERM["ties"] += 1
    if d > 0:
        return 1
    if d < 0:
        return -1
    raise Undecided(f"cannot order the t-derivatives {ta} and {tb} at {flint.ctx.prec} bits")


def _plain(x: Real) -> Real:
    """``x`` without its t-derivative (the same value, magnitude and exactness facts)."""
    if x.t is None:
        return x
    out = Real(x.b, x.s, x.mag)
    out.leaf = x.leaf
    out.log_of = x.log_of
    return out


def without_tangent(x: object) -> Real:
    """``x`` without its t-derivative: for a comparison that picks a term *scale*, not a
    branch of the formula (the maximum logit of a term magnitude), which must not be decided
    on the germ nor counted in :data:`GERM` -- tied candidates give the same scale."""
    return _plain(real(x))


def _tsum(a: Real | None, b: Real | None) -> Real | None:
    if a is None:
        return b
    if b is None:
        return a
    return a + b


def _chain(out: Real, x: Real, derivative) -> Real:
    """``out = f(x)`` with t-derivative f'(x) x.t (NaN where f' is not finite there)."""
    if x.t is None:
        return out
    if out.b is None or x.b is None:
        out.t = NAN
        return out
    try:
        d = derivative()
    except (ZeroDivisionError, Undecided):
        out.t = NAN
        return out
    if d.b is None:
        out.t = NAN
        return out
    out.t = x.t * d
    return out


def tangent(x: object) -> Real:
    """The t-derivative of ``x`` (an exact 0 when it carries none)."""
    x = real(x)
    return x.t if x.t is not None else Real(arb(0), None, fzero)


def with_tangent(x: object, t: object) -> Real:
    """A copy of ``x`` whose t-derivative is ``t`` (an input moving along a direction)."""
    x = real(x)
    out = Real(x.b, x.s, x.mag)
    out.leaf = x.leaf
    out.log_of = x.log_of
    out.t = _plain(real(t))
    return out
