"""Precision, held in one place: the working precision of every oracle evaluation, the
precision cap and the floor of its proofs, the exact decimal encoding of results, and
correct rounding of exact values to float16, bfloat16, float32 and float64.

bfloat16 (8-bit significand with the hidden bit, float32's exponent range, subnormals down
to 2**-133) is rounded like the IEEE formats: :class:`FloatFormat` describes it exactly,
and its numpy representation is ``ml_dtypes.bfloat16`` (importing this module registers
the dtype name ``"bfloat16"`` with numpy, so ``np.dtype("bfloat16")`` works).

The working precision is a setting (``LOSSCONF_PRECISION_BITS`` in the environment, or
:func:`set_working_precision`), never a constant scattered in the loss modules. Every
loss is evaluated inside :func:`working_precision` on enclosures (:mod:`oracle.real`), and
:func:`oracle.api.evaluate` doubles the precision up to :data:`MAX_PRECISION_BITS` until
every written digit is proven (or the value is a proven exact zero, or within the floor
:data:`NEGLIGIBLE`).

Why python-flint's arb balls and not mpmath's ``iv`` intervals (measured on the oracle's
own work, ``benchmarks/enclosures_bench.py``, figures in ``benchmarks/README.md``):

* speed: on the kernels of the two heaviest losses over the committed fixture inputs at
  256 bits, arb balls take 1 ms (softmax cross-entropy, value and gradient) and 31 ms
  (CTC forward-backward) where mpmath's iv intervals take 72 ms and 242 ms -- slower even
  than the former unproven mpmath point arithmetic (42 ms, 287 ms). The whole fixture
  generation, proof included, runs in about the time the old two-precision settling took;
* documented rigour: every arb function (``exp``, ``log``, ``log1p``, ``expm1``, ``sqrt``)
  has a proven error bound at any argument and precision; mpmath documents its iv
  context's rigour for the arithmetic and the monotone elementary functions, while its
  ``log1p`` and ``expm1`` on intervals are the generic point algorithms run on intervals
  (they contain the value on the arguments we tried, but nothing promises it);
* relative accuracy of tiny values, which both have: a ball is a midpoint and a radius,
  so e^-1000 or log1p(e^-10000) keeps 250 correct bits at 256 bits of precision.

The cost is one more dependency (``python-flint``: wheels for CPython 3.11+ on Linux,
macOS and Windows, no numpy requirement).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass

import ml_dtypes  # noqa: F401  (registers numpy's "bfloat16" dtype name)
import mpmath
import numpy as np
from mpmath import mpf

#: Default working precision in bits (about 77 significant decimal digits).
DEFAULT_PRECISION_BITS = 256
#: Precision used to re-derive values when verifying (about 154 digits).
VERIFY_PRECISION_BITS = 512
#: Significant decimal digits written for an exact value (the contract asks >= 30).
DECIMAL_DIGITS = 40
#: The precision cap of a proof: an element not proven at this precision raises OracleError.
MAX_PRECISION_BITS = 32768
#: The documented floor: an enclosure within +-2**-1200 that contains 0 is written as 0
#: (far below half of float64's smallest subnormal, 2**-1075).
NEGLIGIBLE = mpmath.ldexp(1, -1200)
#: The floor is a last resort: below this precision an enclosure within it that contains 0
#: raises the precision (to prove the digits of a value like 5e-435) instead of writing 0.
FLOOR_PRECISION_BITS = 4096

_bits = int(os.environ.get("LOSSCONF_PRECISION_BITS", DEFAULT_PRECISION_BITS))


def get_working_precision() -> int:
    """The working precision, in bits, that evaluations run at."""
    return _bits


def set_working_precision(bits: int) -> None:
    """Set the working precision in bits (at least 128, so 40 digits are meaningful)."""
    global _bits
    if not isinstance(bits, int) or bits < 128:
        raise ValueError(f"working precision must be an int >= 128 bits, got {bits!r}")
    _bits = bits


@contextlib.contextmanager
def working_precision(bits: int | None = None) -> Iterator[int]:
    """Run the enclosed arithmetic (arb balls and mpmath) at ``bits`` (default: the setting)."""
    from . import real

    prec = _bits if bits is None else bits
    before = real.get_precision()
    real.set_precision(prec)
    try:
        with mpmath.workprec(prec):
            yield prec
    finally:
        real.set_precision(before)


def mpmath_backend() -> str:
    """'gmpy' when mpmath uses gmpy2 for its integers (much faster), else 'python'."""
    return mpmath.libmp.BACKEND


# ---------------------------------------------------------------- decimal encoding


def to_decimal(x: mpf, digits: int = DECIMAL_DIGITS) -> str:
    """The exact value as a decimal string: ``digits`` significant digits in scientific
    notation (``-1.234...e-05``), ``"0"`` for zero, and ``"inf"``, ``"-inf"``, ``"nan"``.

    The digits are the correctly rounded decimal (ties to even) of the exact binary value,
    computed with integer arithmetic, so the encoding is monotone: two numbers that give
    the same string enclose only numbers that give it too (what the proof of
    :func:`oracle.api.evaluate` relies on). Beyond decimal exponents of +-100000 (values
    no dtype comes near) mpmath's own conversion is used."""
    if not isinstance(x, mpf):
        with mpmath.workprec(_bits):
            x = mpf(x)  # exact for ints and floats
    if mpmath.isnan(x):
        return "nan"
    if mpmath.isinf(x):
        return "inf" if x > 0 else "-inf"
    if x == 0:
        return "0"
    exact = _exact_decimal(x, digits)
    if exact is not None:
        return exact
    text = mpmath.libmp.to_str(x._mpf_, digits, min_fixed=1, max_fixed=0)
    mantissa, _, exponent = text.partition("e")
    if "." not in mantissa:
        mantissa += "."
    sign = "-" if mantissa.startswith("-") else ""
    body = mantissa.lstrip("-")
    whole, frac = body.split(".")
    frac = (frac + "0" * digits)[: digits - len(whole)]
    exp = int(exponent) if exponent else 0
    return f"{sign}{whole}.{frac}e{exp:+03d}"


def _exact_decimal(x: mpf, digits: int) -> str | None:
    sign, man, exp, bc = x._mpf_
    lead = exp + bc  # 2**(lead-1) <= |x| < 2**lead
    n = int((lead - 1) * 0.30102999566398120)  # estimate of floor(log10 |x|)
    if abs(n) > 100000:
        return None

    def scaled(k: int) -> tuple[int, int]:
        """|x| * 10**k as num / den."""
        num, den = man, 1
        num, den = (num << exp, den) if exp >= 0 else (num, den << -exp)
        return (num * 10**k, den) if k >= 0 else (num, den * 10 ** (-k))

    # find n with 10**n <= |x| < 10**(n+1)
    while True:
        num, den = scaled(-n)
        if num < den:
            n -= 1
        elif num >= 10 * den:
            n += 1
        else:
            break
    num, den = scaled(digits - 1 - n)
    q, r = divmod(num, den)
    if 2 * r > den or (2 * r == den and q & 1):
        q += 1
    if q == 10**digits:
        q //= 10
        n += 1
    text = str(q)
    return f"{'-' if sign else ''}{text[0]}.{text[1:]}e{n:+03d}"


def from_decimal(text: str) -> mpf:
    """Inverse of :func:`to_decimal` (also accepts any decimal mpmath can parse)."""
    if text in ("inf", "+inf"):
        return mpmath.inf
    if text == "-inf":
        return -mpmath.inf
    if text == "nan":
        return mpmath.nan
    return mpf(text)  # rounded to the caller's working precision


# ---------------------------------------------------------------- rounding to dtypes


@dataclass(frozen=True)
class FloatFormat:
    """An IEEE 754 binary format: precision (with the hidden bit) and exponent range."""

    name: str
    precision: int
    emin: int
    emax: int

    @property
    def max_finite(self) -> mpf:
        return mpmath.ldexp(2 ** self.precision - 1, self.emax - self.precision + 1)

    @property
    def eps(self) -> float:
        """Machine epsilon: the gap between 1 and the next larger number."""
        return 2.0 ** (1 - self.precision)

    @property
    def smallest_subnormal(self) -> float:
        return 2.0 ** (self.emin - self.precision + 1)


FORMATS: dict[str, FloatFormat] = {
    "float16": FloatFormat("float16", 11, -14, 15),
    # bfloat16: float32's exponent range with an 8-bit significand (ml_dtypes.bfloat16)
    "bfloat16": FloatFormat("bfloat16", 8, -126, 127),
    "float32": FloatFormat("float32", 24, -126, 127),
    "float64": FloatFormat("float64", 53, -1022, 1023),
}


def float_format(dtype: str) -> FloatFormat:
    try:
        return FORMATS[str(np.dtype(dtype))]
    except (KeyError, TypeError):
        raise ValueError(
            f"dtype must be one of {sorted(FORMATS)}, got {dtype!r}"
        ) from None


def round_to(x: mpf, dtype: str) -> float:
    """Round the exact value ``x`` to the nearest ``dtype`` number (ties to even, with
    subnormals and overflow to inf), returned as a Python float that holds it exactly.

    The rounding is done on the exact binary value of ``x`` with integer arithmetic, so
    it is correct whatever the working precision; only ``x`` itself carries the (far
    smaller) error of the working precision."""
    fmt = float_format(dtype)
    if hasattr(x, "mid") and not isinstance(x, mpf):  # a Real: its midpoint (case generation)
        x = x.mid()
    if not isinstance(x, mpf):
        x = mpf(x)  # ints and floats convert exactly
    if mpmath.isnan(x):
        return float("nan")
    if mpmath.isinf(x):
        return float(x)
    if x == 0:
        return 0.0
    sign, man, exp, bc = x._mpf_
    # |x| = man * 2**exp with man odd; its leading bit has exponent exp + bc - 1.
    lead = exp + bc - 1
    if lead < fmt.emin - fmt.precision - 1:  # below half the smallest subnormal
        return -0.0 if sign else 0.0
    if lead > fmt.emax + 1:
        return float("-inf") if sign else float("inf")
    quantum_exp = max(lead, fmt.emin) - fmt.precision + 1
    shift = quantum_exp - exp
    if shift <= 0:
        q = man << (-shift)
    else:
        q, rem = divmod(man, 1 << shift)
        half = 1 << (shift - 1)
        if rem > half or (rem == half and q & 1):
            q += 1
    value = mpmath.ldexp(q, quantum_exp)
    if value > fmt.max_finite:
        value = mpmath.inf
    result = float(value)  # exact: value is representable in float64
    return -result if sign else result


def round_array(values: np.ndarray, dtype: str) -> np.ndarray:
    """Round an object array of exact values to a numpy array of ``dtype``."""
    flat = [round_to(v, dtype) for v in np.asarray(values, dtype=object).ravel()]
    return np.array(flat, dtype=np.float64).astype(dtype).reshape(np.shape(values))


def from_float64(values: object, dtype: str) -> np.ndarray:
    """Float64 values correctly rounded (to nearest, ties to even) to ``dtype``, as a numpy
    array of that dtype.

    NumPy's own casts from float64 to float16 and float32 round correctly; ml_dtypes before
    0.6 (which the MXNet and Chainer environments need: 0.6 requires numpy>=2) casts float64
    to bfloat16 through float32, two roundings: a float64 just above a bfloat16 tie becomes
    the tie, which then goes to even. So bfloat16 goes through float32 rounded *to odd*
    (truncated, its last bit set when inexact), which a second rounding to bfloat16's 8 bits
    cannot spoil (24 >= 8 + 2 bits). The result is the same with every ml_dtypes version."""
    x = np.asarray(values, dtype=np.float64)
    target = numpy_dtype(dtype)
    if target != numpy_dtype("bfloat16"):
        return x.astype(target)
    with np.errstate(over="ignore", invalid="ignore"):
        nearest = np.ascontiguousarray(x.astype(np.float32))
        up = np.abs(nearest.astype(np.float64)) > np.abs(x)  # rounded away from zero (overflow too)
        truncated = np.where(up, np.nextafter(nearest, np.float32(0)), nearest).astype(np.float32)
        inexact = np.isfinite(x) & (truncated.astype(np.float64) != x)
        odd = (truncated.view(np.uint32) | inexact.astype(np.uint32)).view(np.float32)
        return odd.astype(target).reshape(x.shape)  # ascontiguousarray makes a 0-d array 1-d


def numpy_dtype(dtype: str) -> np.dtype:
    """The numpy dtype of a fixture dtype name (``bfloat16`` is ``ml_dtypes.bfloat16``)."""
    return np.dtype(ml_dtypes.bfloat16) if dtype == "bfloat16" else np.dtype(dtype)


def is_representable(x: float, dtype: str) -> bool:
    """Whether the float ``x`` is exactly a value of ``dtype``."""
    if x != x or x in (float("inf"), float("-inf")):
        return True
    return round_to(mpf(x), dtype) == x
