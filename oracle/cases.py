"""Building blocks for golden-fixture cases: the :class:`Case` record each loss module's
``cases()`` yields, deterministic random inputs that are exact values of a dtype, and the
option variants every loss's fixtures must cover.

Randomness comes from :class:`random.Random` seeded by the loss id and case name, whose
stream Python guarantees across versions, so regenerating gives the same bytes on any
numpy.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .catalog import LossSpec

DTYPES: tuple[str, ...] = ("float16", "float32", "float64")

#: The value regimes a case may be tagged with, and what each means.
TAGS: dict[str, str] = {
    "regular": "random values of moderate magnitude",
    "extreme": "magnitudes that overflow a naive exp or log-sum-exp in the dtype",
    "tiny": "tiny values or a tiny loss, where cancellation loses every digit",
    "boundary": "a domain boundary (probability 0 or 1, zero label or target, exact zero)",
    "kink": "inputs exactly on a kink, where the derivative is an interval",
    "singular": "the exact value or a derivative is infinite or undefined",
    "tie": "exact ties (equal logits) where a careless branch goes wrong",
    "label": "label edge cases (ignored labels, repeated CTC labels, empty labels)",
    "shape": "minimum or higher-rank shapes, other batch axes, sample_weight shapes",
    "invalid": "input the documentation rules out; the case records what should happen",
}


@dataclass
class Case:
    """One fixture case of one loss. ``inputs`` hold exact values of ``dtype`` (integer
    inputs as ints); ``invalid`` holds the documented rule the inputs break, if any."""

    name: str
    inputs: dict[str, Any]
    dtype: str
    options: dict[str, Any] = field(default_factory=dict)
    tags: tuple[str, ...] = ("regular",)
    cotangent: Any = None
    invalid: str | None = None
    note: str = ""

    def __post_init__(self) -> None:
        unknown = set(self.tags) - set(TAGS)
        if unknown:
            raise ValueError(f"case {self.name}: unknown tags {sorted(unknown)}")
        if self.dtype not in DTYPES:
            raise ValueError(f"case {self.name}: unknown dtype {self.dtype!r}")


def rng_for(loss_id: str, name: str) -> random.Random:
    """A deterministic random stream for one case."""
    seed = int.from_bytes(hashlib.sha256(f"{loss_id}/{name}".encode()).digest()[:8], "big")
    return random.Random(seed)


def in_dtype(values: Any, dtype: str) -> np.ndarray:
    """Values rounded to ``dtype`` (so the fixture holds exact values of that dtype)."""
    return np.asarray(values, dtype=np.float64).astype(dtype)


def mp_apply(fn: Any, values: Any) -> np.ndarray:
    """``fn`` (an mpmath function) applied to each value exactly, correctly rounded to
    float64. Case inputs derived through exp, log, sqrt, ... use this rather than numpy's
    ufuncs, whose last bit differs between numpy versions and CPUs, so that regenerating
    fixtures gives the same bytes everywhere."""
    import mpmath

    from .precision import round_to, working_precision

    arr = np.asarray(values, dtype=np.float64)
    with working_precision():
        out = [round_to(fn(mpmath.mpf(float(v))), "float64") for v in arr.ravel()]
    return np.asarray(out, dtype=np.float64).reshape(arr.shape)


def uniform(rng: random.Random, shape: Sequence[int], lo: float, hi: float, dtype: str) -> np.ndarray:
    n = int(np.prod(shape, dtype=np.int64))
    return in_dtype([rng.uniform(lo, hi) for _ in range(n)], dtype).reshape(tuple(shape))


def normal(rng: random.Random, shape: Sequence[int], sigma: float, dtype: str) -> np.ndarray:
    n = int(np.prod(shape, dtype=np.int64))
    return in_dtype([rng.gauss(0.0, sigma) for _ in range(n)], dtype).reshape(tuple(shape))


def choice(rng: random.Random, shape: Sequence[int], values: Sequence[Any]) -> np.ndarray:
    n = int(np.prod(shape, dtype=np.int64))
    return np.asarray([rng.choice(list(values)) for _ in range(n)]).reshape(tuple(shape))


def integers(rng: random.Random, shape: Sequence[int], lo: int, hi: int) -> np.ndarray:
    """Integers in [lo, hi)."""
    n = int(np.prod(shape, dtype=np.int64))
    return np.asarray([rng.randrange(lo, hi) for _ in range(n)], dtype=np.int64).reshape(tuple(shape))


def probabilities(rng: random.Random, shape: Sequence[int], axis: int, dtype: str) -> np.ndarray:
    """Nonnegative values of ``dtype`` along ``axis`` that sum to about one (exactly one
    cannot always be represented; the oracle uses the values as given)."""
    raw = np.asarray([rng.uniform(0.05, 1.0) for _ in range(int(np.prod(shape)))]).reshape(shape)
    raw = raw / raw.sum(axis=axis, keepdims=True)
    return in_dtype(raw, dtype)


def cotangent_for(rng: random.Random, shape: Sequence[int], dtype: str) -> np.ndarray:
    """A cotangent of moderate magnitude with mixed signs (never all ones, so a backend
    that ignores the head gradient is caught)."""
    return uniform(rng, shape, -2.0, 2.0, dtype)


def option_variants(spec: LossSpec, skip: Sequence[str] = ()) -> list[dict[str, Any]]:
    """The default options, then each documented option moved, alone, to each other value
    it must be covered at (booleans both ways, every enum choice, a second number)."""
    variants: list[dict[str, Any]] = [{}]
    for opt in spec.options:
        if opt.name in skip:
            continue
        values: list[Any] = []
        if opt.kind == "bool":
            values = [not opt.default]
        elif opt.kind == "enum":
            values = [c for c in opt.choices if c != opt.default]
        values += [v for v in opt.fixture_values if v != opt.default and v not in values]
        for v in values:
            variants.append({opt.name: v})
    return variants


def variant_name(options: dict[str, Any]) -> str:
    if not options:
        return "default"
    return ",".join(f"{k}={v}" for k, v in sorted(options.items()))


def iter_dtypes(dtypes: Sequence[str] = DTYPES) -> Iterator[str]:
    yield from dtypes
