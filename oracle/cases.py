"""Building blocks for golden-fixture cases: the :class:`Case` record each loss module's
``cases()`` yields, deterministic random inputs that are exact values of a dtype, and the
option variants every loss's fixtures must cover; :class:`ElementwiseCases` builds the
cases every elementwise Gluon loss of pred and label shares.

Randomness comes from :class:`random.Random` seeded by the loss id and case name, whose
stream Python guarantees across versions, so regenerating gives the same bytes on any
numpy.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import ml_dtypes
import numpy as np

from .catalog import LossSpec

DTYPES: tuple[str, ...] = ("float16", "float32", "float64")
#: every fixture dtype: :data:`DTYPES` (which the loss modules' cases iterate) and bfloat16,
#: whose cases are derived from the float32 ones (:func:`bfloat16_cases`)
FIXTURE_DTYPES: tuple[str, ...] = (*DTYPES, "bfloat16")

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
    "subnormal": "exact results (values or VJP elements) that are subnormal numbers of the case dtype",
    "invalid": "input the documentation rules out; the case records what should happen",
    "long": "a long reduction (up to 16384 terms) where accumulating one term at a time in the dtype stagnates",
    "limit": "+-inf inputs where the documented value is defined by its limit",
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
        if self.dtype not in FIXTURE_DTYPES:
            raise ValueError(f"case {self.name}: unknown dtype {self.dtype!r}")


#: a logit gap g for which exp(-g), and so log(1 + exp(-g)), lies well inside the dtype's
#: subnormal range (float16 [6e-8, 6e-5], float32 [1.4e-45, 1.2e-38], float64 [4.9e-324, 2.2e-308])
SUBNORMAL_GAP: dict[str, float] = {"float16": 12.0, "float32": 95.0, "float64": 720.0}
#: a normal number s of the dtype whose square s * s / 4 is subnormal
SUBNORMAL_ROOT: dict[str, float] = {"float16": 2.0**-9, "float32": 2.0**-66, "float64": 2.0**-530}


def subnormal(dtype: str, k: int = 1) -> float:
    """k times the dtype's smallest subnormal (a subnormal of the dtype for small k)."""
    return k * float(np.finfo(dtype).smallest_subnormal)


def subnormal_cases(
    spec_id: str, build: Callable[[str], Iterator[tuple[str, dict[str, Any], dict[str, Any], str]]]
) -> Iterator[Case]:
    """Cases tagged ``subnormal``, for every dtype, appended after a loss's other cases (so
    earlier cases keep their index): ``build(dtype)`` yields (name, inputs, options, note)."""
    for dtype in DTYPES:
        for name, inputs, options, note in build(dtype):
            yield Case(f"subnormal-{name}-{dtype}", inputs, dtype, options, tags=("subnormal",), note=note)


def rng_for(loss_id: str, name: str) -> random.Random:
    """A deterministic random stream for one case."""
    seed = int.from_bytes(hashlib.sha256(f"{loss_id}/{name}".encode()).digest()[:8], "big")
    return random.Random(seed)


def in_dtype(values: Any, dtype: str) -> np.ndarray:
    """Values rounded to ``dtype`` (so the fixture holds exact values of that dtype)."""
    from .precision import from_float64

    return from_float64(values, dtype)


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


def log_softmax_f64(x: Any, axis: int) -> np.ndarray:
    """log_softmax of float64 values for building case inputs: exact (mpmath), then
    correctly rounded, so the generated fixtures do not depend on numpy's exp/log."""
    from . import arrays as A
    from .precision import round_array, working_precision

    with working_precision():
        exact = A.log_softmax(A.asmp(np.asarray(x, dtype=np.float64)), axis)
    return round_array(exact, "float64")


def uniform(rng: random.Random, shape: Sequence[int], lo: float, hi: float, dtype: str) -> np.ndarray:
    n = int(np.prod(shape, dtype=np.int64))
    return in_dtype([rng.uniform(lo, hi) for _ in range(n)], dtype).reshape(tuple(shape))


def normal(rng: random.Random, shape: Sequence[int], sigma: float, dtype: str) -> np.ndarray:
    n = int(np.prod(shape, dtype=np.int64))
    return in_dtype([rng.gauss(0.0, sigma) for _ in range(n)], dtype).reshape(tuple(shape))


def choice(rng: random.Random, shape: Sequence[int], values: Sequence[Any]) -> np.ndarray:
    n = int(np.prod(shape, dtype=np.int64))
    return np.asarray([rng.choice(list(values)) for _ in range(n)]).reshape(tuple(shape))


def signs(rng: random.Random, shape: Sequence[int], dtype: str) -> np.ndarray:
    """Random values -1 or 1 (labels of a binary classifier)."""
    return in_dtype(choice(rng, shape, (-1.0, 1.0)), dtype)


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


#: a logit whose exp overflows the dtype: a naive softmax or log-sum-exp fails on it
OVERFLOWING_LOGIT: dict[str, float] = {"float16": 6.0e4, "float32": 1.0e4, "float64": 1.0e300}


def softmax_variant_shape(options: dict[str, Any]) -> tuple[int, ...]:
    """(2, 3, 4) for an option variant that puts the softmax axis or batch_axis on axis 1
    (so the two can differ), else (3, 4)."""
    if options.get("axis", -1) == 1 or options.get("batch_axis", 0) == 1:
        return (2, 3, 4)
    return (3, 4)


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


#: ``inputs(rng, shape, dtype, options)``: the random inputs of one case
InputsFor = Callable[[random.Random, tuple[int, ...], str, dict[str, Any]], dict[str, Any]]


def option_variant_cases(
    spec: LossSpec,
    dtype: str,
    inputs: InputsFor,
    shapes: tuple[tuple[int, ...], tuple[int, ...]] = ((3, 4), (4, 3)),
) -> Iterator[Case]:
    """One regular case per option variant (:func:`option_variants`), named after it and
    drawn from its own stream: inputs of ``shapes[0]``, or of ``shapes[1]`` where the
    variant moves batch_axis."""
    for opts in option_variants(spec):
        name = f"{variant_name(opts)}-{dtype}"
        rng = rng_for(spec.id, name)
        shape = shapes[0] if opts.get("batch_axis", 0) == 0 else shapes[1]
        yield Case(name, inputs(rng, shape, dtype, opts), dtype, opts)


#: ``labels(rng, shape, dtype)``: random label values of a shape
LabelsFor = Callable[[random.Random, tuple[int, ...], str], np.ndarray]


@dataclass(frozen=True)
class ElementwiseCases:
    """The cases every elementwise Gluon loss of ``pred``, a ``label`` of the same size
    and an optional ``sample_weight`` needs (see :mod:`oracle.conventions`), drawn the same
    way for each such loss: one per option variant, the minimum and rank-3 shapes,
    sample_weight shapes, and a label or sample_weight that does not fit.

    pred is normal with spread ``sigma``; label comes from ``labels``, or where that is
    None is drawn like pred (a regression target)."""

    spec: LossSpec
    sigma: float = 1.0
    labels: LabelsFor | None = None

    def label(self, rng: random.Random, shape: tuple[int, ...], dtype: str, sigma: float | None = None) -> np.ndarray:
        if self.labels is not None:
            return self.labels(rng, shape, dtype)
        return normal(rng, shape, self.sigma if sigma is None else sigma, dtype)

    def inputs(
        self,
        rng: random.Random,
        shape: tuple[int, ...],
        dtype: str,
        label_shape: tuple[int, ...] | None = None,
        sigma: float | None = None,
    ) -> dict[str, np.ndarray]:
        """Random pred of ``shape``, then label of ``label_shape`` (default: the same);
        ``sigma`` overrides the spread."""
        pred = normal(rng, shape, self.sigma if sigma is None else sigma, dtype)
        return {"pred": pred, "label": self.label(rng, shape if label_shape is None else label_shape, dtype, sigma)}

    def variants(self, dtype: str, sigma: Callable[[dict[str, Any]], float] | None = None) -> Iterator[Case]:
        """:func:`option_variant_cases`, pred's spread given by ``sigma(options)`` if set."""

        def inputs(rng: random.Random, shape: tuple[int, ...], dtype: str, opts: dict[str, Any]) -> dict[str, Any]:
            return self.inputs(rng, shape, dtype, sigma=None if sigma is None else sigma(opts))

        return option_variant_cases(self.spec, dtype, inputs)

    def shapes(
        self,
        rng: random.Random,
        dtype: str,
        reshaped_options: dict[str, Any] | None = None,
        rank3_batch_axis: bool = True,
    ) -> Iterator[Case]:
        """A single element; a rank-3 pred with a label of another shape of the same size
        (with ``reshaped_options``); a rank-3 pair batched along axis 2."""
        yield Case(f"minimum-{dtype}", self.inputs(rng, (1,), dtype), dtype, tags=("shape",))
        yield Case(
            f"rank3-label-reshaped-{dtype}",
            self.inputs(rng, (2, 3, 4), dtype, label_shape=(2, 12)),
            dtype,
            dict(reshaped_options or {}),
            tags=("shape",),
            note="label has another shape with the same number of elements",
        )
        if rank3_batch_axis:
            yield Case(f"rank3-batch_axis=2-{dtype}", self.inputs(rng, (2, 3, 4), dtype), dtype, {"batch_axis": 2}, tags=("shape",))

    def sample_weights(
        self,
        rng: random.Random,
        dtype: str,
        batch_axis_1: dict[str, Any] | None = None,
        low: float = 0.0,
        note: str = "",
    ) -> Iterator[Case]:
        """sample_weight of one weight per sample and of pred's full shape; then, given
        ``batch_axis_1`` (more options), per-sample weights in [low, 2) along batch axis 1."""
        for sw_shape, what in (((3, 1), "per-sample"), ((3, 4), "full")):
            yield Case(
                f"sample_weight-{what}-{dtype}",
                {**self.inputs(rng, (3, 4), dtype), "sample_weight": uniform(rng, sw_shape, 0, 2, dtype)},
                dtype,
                tags=("shape",),
            )
        if batch_axis_1 is not None:
            yield Case(
                f"sample_weight-batch_axis=1-{dtype}",
                {**self.inputs(rng, (4, 3), dtype), "sample_weight": uniform(rng, (1, 3), low, 2, dtype)},
                dtype,
                {"batch_axis": 1, **batch_axis_1},
                tags=("shape",),
                note=note,
            )

    def invalid_shapes(
        self,
        rng: random.Random,
        dtype: str,
        label_shape: tuple[int, ...] = (2, 2),
        sample_weight_shape: tuple[int, ...] = (3, 1),
    ) -> Iterator[Case]:
        """A (2, 3) pred with a label of another size, and with a sample_weight that does
        not broadcast to it."""
        yield Case(
            f"invalid-size-{dtype}",
            self.inputs(rng, (2, 3), dtype, label_shape=label_shape, sigma=1.0),
            dtype,
            tags=("invalid",),
            invalid="label must have the same number of elements as pred",
        )
        yield Case(
            f"invalid-sample_weight-{dtype}",
            {**self.inputs(rng, (2, 3), dtype), "sample_weight": uniform(rng, sample_weight_shape, 0, 1, dtype)},
            dtype,
            tags=("invalid",),
            invalid="sample_weight must be broadcastable to the shape of pred",
        )


def sample_shape(options: dict[str, Any]) -> tuple[int, int]:
    """The (2, 3) shape of self-verification inputs, (3, 2) where batch_axis is 1."""
    return (2, 3) if options.get("batch_axis", 0) == 0 else (3, 2)


def per_sample_weight(rng: random.Random, shape: tuple[int, int], options: dict[str, Any]) -> np.ndarray:
    """A positive float64 weight per sample of a 2-D ``shape`` (self-verification)."""
    sw_shape = (shape[0], 1) if options.get("batch_axis", 0) == 0 else (1, shape[1])
    return uniform(rng, sw_shape, 0.1, 2.0, "float64")


def iter_dtypes(dtypes: Sequence[str] = DTYPES) -> Iterator[str]:
    yield from dtypes


# ---------------------------------------------------------------- bfloat16, long reductions, limits


def bfloat16_cases(spec: LossSpec, cases: Sequence[Case]) -> Iterator[Case]:
    """The bfloat16 cases of a loss, derived from its float32 cases: bfloat16 has float32's
    exponent range, so every float32 regime (extreme, tiny, kink, limit, long, shape, label,
    invalid) is one of bfloat16 too; each float input is correctly rounded to bfloat16
    (:func:`oracle.precision.round_array`), integer inputs and options are kept. The
    ``subnormal`` cases are left out: their inputs are built so that float32 results are
    subnormal, which rounding the inputs to 8 bits does not preserve. The ``long`` cases
    come from the float16 ones instead (a float32 case's 1 + 2**-24 is within bfloat16's
    tolerance of 1; a bfloat16 running sum of ones stagnates at 256), and of those named
    ``long-*`` only ``long-float16``, of at most :data:`LONG_CROSSED` elements with the default options:
    the option crossings stay float16's; the half-ULP cases (:func:`half_ulp_case`) and chainer's
    hard-label long cases are built for bfloat16 in their own right, a float16 case's inputs
    rounded to 8 bits losing its small terms)."""
    from .precision import round_array

    top = float(ml_dtypes.finfo(ml_dtypes.bfloat16).max)

    def to_bf16(v: Any) -> np.ndarray:
        """Correctly rounded, except that a finite value beyond bfloat16's largest (a float32
        near its max rounds up to inf) becomes that largest value, keeping the case finite."""
        x = np.asarray(v, dtype=np.float64)
        r = round_array(x, "bfloat16")
        over = np.isfinite(x) & ~np.isfinite(r.astype(np.float64))
        return np.where(over, np.sign(x) * top, r.astype(np.float64)).astype(r.dtype) if over.any() else r

    kinds = {i.name: i.kind for i in spec.inputs}
    for case in cases:
        source = "float16" if "long" in case.tags else "float32"
        if case.dtype != source or "subnormal" in case.tags:
            continue
        if "long" in case.tags and (
            (case.name.startswith("long-") and case.name != f"long-{source}")
            or max(np.size(v) for v in case.inputs.values() if v is not None) > LONG_CROSSED
        ):
            continue  # the option crossings long-<option>-float16 stay float16's (fixtures/ under 20 MB)
        inputs = {
            k: (v if v is None or kinds.get(k) == "int" else to_bf16(v))
            for k, v in case.inputs.items()
        }
        ct = None if case.cotangent is None else to_bf16(case.cotangent)
        name = case.name.replace(source, "bfloat16") if source in case.name else f"{case.name}-bfloat16"
        note = (case.note + " " if case.note else "") + f"(the {source} case's inputs rounded to bfloat16)"
        yield Case(name, inputs, "bfloat16", dict(case.options), case.tags, ct, case.invalid, note)


def with_bfloat16(spec: LossSpec, cases: Iterator[Case]) -> list[Case]:
    """A loss's cases followed by their bfloat16 versions (:func:`bfloat16_cases`), so the
    earlier cases keep their index."""
    base = list(cases)
    return base + list(bfloat16_cases(spec, base))


#: the batch of the soft-target cases at low precision (float16, bfloat16): 1024 samples of
#: 4 classes; where the loss averages over the batch (chainer's reduce='mean') a long
#: reduction of per-sample losses of about log 4, whose float16 running sum passes 1024
SOFT_BATCH = (1024, 4)

#: reduction lengths of the ``long`` cases: 16384 (a float16 sum of ones, accumulated one
#: term at a time in float16, stagnates at 2048; of 2**-k terms at 2048 * 2**-k) and 4096
#: (already past it, a quarter of the size for the option crossings)
LONG = 16384
LONG_CROSSED = 4096


def stagnating(dtype: str, n: int, term: Callable[[float], float] | None = None) -> np.ndarray:
    """A (1, n) row of magnitudes whose sum a one-term-at-a-time accumulation in ``dtype``
    gets wrong by far more than the tolerance: float16 (and bfloat16): all ones (the running
    sum stagnates at 2048 * the term, bfloat16 at 256 * the term); float32: a 1 followed by
    2**-24 (each later term is half an ULP of the running sum, so ties-to-even drops it:
    the sum stays 1 instead of 1 + (n - 1) 2**-24)."""
    if dtype == "float32":
        row = [1.0] + [2.0**-24] * (n - 1)
    else:
        row = [1.0] * n
    return in_dtype([row], dtype)


#: the reduction length of the half-ULP ``long`` cases (:func:`half_ulp_case`) of each loss
#: other than L1Loss, L2Loss and chainer's softmax_cross_entropy: 16384 terms, in float16,
#: float32 and bfloat16 (fixtures write their repeated numbers as runs, so the length costs
#: next to nothing: fixtures/README.md, *Runs*)
LONG_HALF_ULP = LONG

#: the dtypes of the half-ULP ``long`` cases, each with its own construction (a float16
#: case's inputs rounded to bfloat16 would lose its small terms; float32 needs terms below
#: 2**-24 of the big one)
HALF_ULP_DTYPES = ("float16", "float32", "bfloat16")

#: significand bits (with the hidden one) of each dtype: a term t is below half an ULP of a
#: running sum S in [2**e, 2**(e+1)) when t < 2**(e - BITS)
BITS = {"float16": 11, "bfloat16": 8, "float32": 24, "float64": 53}

#: why an option value other than the default has no ``long`` case in a loss with a
#: half-ULP case (a loss module's ``REGIME_GAPS``, fixtures/COVERAGE.md)
LONG_DEFAULTS_ONLY = (
    "left out: the long cases (16384 terms in float16, float32 and bfloat16, each tuned so that the "
    "terms the default options give stagnate a running sum) have the default options only; every "
    "option value is crossed with the regular, extreme, tiny and kink regimes, and L1Loss and L2Loss "
    "cross each with a 4096-term long case"
)


def half_ulp_row(big: float, small: float, n: int = LONG_HALF_ULP) -> np.ndarray:
    """A (1, n) float64 row of ``big`` at both ends and ``small`` between: the inputs (or
    targets) whose elementwise terms a ``long`` case reduces. With the terms of ``small``
    below half an ULP of the terms of ``big`` in the case dtype, a running sum in that
    dtype in either direction drops each of them once past the first big term, so its
    total misses the n - 2 small terms (float16, bfloat16: most of the value; float32:
    about 1e-4 of it, some 100 times the tolerance); a pairwise or wider sum keeps them."""
    row = np.full((1, n), small, dtype=np.float64)
    row[0, 0] = row[0, -1] = big
    return row


def halves(n: int = LONG_HALF_ULP, first: float = 1.0, second: float = -1.0) -> np.ndarray:
    """A (1, n) row of ``first`` in its first half and ``second`` in its second (labels of
    both signs in long runs, so a fixture writes each half as one run)."""
    return np.where(np.arange(n) < n // 2, first, second)[None, :]


def half_ulp_case(
    inputs: dict[str, Any], options: dict[str, Any] | None = None, note: str = "", dtype: str = "float16"
) -> Case:
    """The ``long`` case named ``long-half-ulp-<dtype>`` (its bfloat16 case is built for
    bfloat16, not derived: see :func:`bfloat16_cases`); ``inputs`` are rounded to ``dtype``
    (integer arrays kept)."""
    x = {k: (v if v is None or np.asarray(v).dtype.kind in "iu" else in_dtype(v, dtype)) for k, v in inputs.items()}
    return Case(f"long-half-ulp-{dtype}", x, dtype, dict(options or {}), tags=("long",),
                note=note or f"terms below half an ULP of the running sum after the first: a {dtype} running sum stagnates")


def long_variants(spec: LossSpec, skip: Sequence[str] = ()) -> list[dict[str, Any]]:
    """The option variants a ``long`` or ``limit`` regime is crossed with (pairwise: each
    documented option value once, not their product): :func:`option_variants` without
    the defaults (the regime's own case has them)."""
    return [o for o in option_variants(spec, skip) if o]


def long_shape(n: int, options: dict[str, Any]) -> tuple[int, int]:
    """(1, n): one sample with n elements to average; (n, 1) where batch_axis is 1."""
    return (n, 1) if options.get("batch_axis", 0) in (1, -1) else (1, n)


def limit_cases(
    spec: LossSpec, inputs: Callable[..., dict[str, Any]], note: str, skip: Sequence[str] = ()
) -> Iterator[Case]:
    """Cases tagged ``limit`` (+-inf inputs whose documented value is a limit), for every
    dtype, with the default options and crossed with each documented option value
    (:func:`long_variants`; ``skip``: options whose other values rule the infinities out,
    e.g. from_sigmoid=True, where pred is a probability); ``inputs(dtype)`` or, if it takes
    two arguments, ``inputs(dtype, options)`` gives square inputs (so batch_axis 1 needs no
    other shape)."""
    import inspect

    two = len(inspect.signature(inputs).parameters) == 2
    for dtype in DTYPES:
        for opts in [{}, *long_variants(spec, skip)]:
            x = inputs(dtype, opts) if two else inputs(dtype)
            yield Case(f"limit-{variant_name(opts)}-{dtype}", x, dtype, opts, tags=("limit",), note=note)


# ---------------------------------------------------------------- option values x regimes, pairwise

#: the value regimes each documented option value is crossed with (``long`` and ``limit``
#: are crossed where a loss builds them: :func:`long_variants`, :func:`limit_cases`)
CROSSED_TAGS: tuple[str, ...] = ("extreme", "tiny", "kink")


def _option_value(spec: LossSpec, case: Case, name: str) -> Any:
    return case.options[name] if name in case.options else spec.option(name).default


def crossing(tag: str, src: Case, variant: dict[str, Any], inputs: dict[str, Any], how: str) -> Case:
    """The float32 case crossing one option value (``variant``) with the regime ``tag`` of ``src``
    (a float32 case of a loss's own builders) where the option value changes the layout
    the inputs must have (batch_axis=1, layout='TNC', ...), so that :func:`regime_crossings`
    cannot reuse ``src``'s inputs as they are: ``inputs`` are ``src``'s values laid out for
    the option (``how`` says how), named and tagged like :func:`regime_crossings`' cases."""
    if src.dtype != "float32" or tag not in src.tags:
        raise ValueError(f"case {src.name}: a crossing is built from a float32 case tagged {tag!r}")
    return Case(
        f"{tag}-x-{variant_name(variant)}-float32", inputs, "float32", {**src.options, **variant}, src.tags,
        None, None, f"the inputs of {src.name} {how}, with {variant_name(variant)} (option value x regime, pairwise)",
    )


def regime_crossings(spec: LossSpec, cases: Sequence[Case], accepts: Callable[[Case], bool]) -> Iterator[Case]:
    """Each documented option value (the default too) crossed with each regime of
    :data:`CROSSED_TAGS` the loss has, pairwise: for a (tag, option = value) pair that no case covers (a case with the tag
    and the option at that value), a float32 case with the inputs of the loss's first
    float32 case of that tag that ``accepts`` (the oracle evaluates it without an input
    error) once the option is moved to the value, named ``<tag>-x-<option>=<value>-float32``
    and tagged like its source; bfloat16 gets it through :func:`bfloat16_cases`. A pair no
    such case accepts (an option that changes what the inputs must be, e.g. sparse_label
    with integer labels) stays uncovered: ``oracle.coverage`` lists it."""
    seen = {c.name for c in cases}
    for tag in CROSSED_TAGS:
        sources = [c for c in cases if tag in c.tags and c.dtype == "float32" and c.invalid is None]
        if not sources:
            continue
        defaults = [{o.name: o.default} for o in spec.options]
        for variant in [*defaults, *long_variants(spec)]:
            (name, value), = variant.items()
            if any(tag in c.tags and c.invalid is None and _option_value(spec, c, name) == value for c in cases):
                continue
            for src in sources:
                opts = {**src.options, name: value}
                keep_ct = name != "batch_axis" and src.cotangent is not None
                case = Case(
                    f"{tag}-x-{variant_name(variant)}-float32", dict(src.inputs), "float32", opts, src.tags,
                    src.cotangent if keep_ct else None, None,
                    f"the inputs of {src.name} with {variant_name(variant)} (option value x regime, pairwise)",
                )
                if case.name not in seen and accepts(case):
                    seen.add(case.name)
                    yield case
                    break


def control_index(cases: Sequence[Case], invalid: int) -> int:
    """The valid case an invalid-input case is held against (its ``control``): a backend
    passes an invalid-input check only if it raises on the invalid case *and* returns on
    this one, so that a backend that raises on every call of a loss or dtype (an operator
    it lacks, a dtype it cannot make) never passes for "rejecting" input. The nearest
    valid call: the same dtype, then the fewest options set differently, the same inputs
    given, a ``regular`` case, the most inputs of the same shape, the lowest index."""
    bad = cases[invalid]

    def distance(case: Case) -> tuple[int, int, int, int]:
        keys = set(bad.options) | set(case.options)
        options = sum(1 for k in keys if _comparable(bad.options.get(k)) != _comparable(case.options.get(k)))
        given = {k for k, v in bad.inputs.items() if v is not None}
        names = {k for k, v in case.inputs.items() if v is not None}
        shapes = sum(1 for k in given & names if np.shape(bad.inputs[k]) != np.shape(case.inputs[k]))
        return options, int(given != names), int("regular" not in case.tags), shapes + len(given ^ names)

    candidates = [(distance(c), i) for i, c in enumerate(cases) if c.invalid is None and c.dtype == bad.dtype]
    if not candidates:
        raise ValueError(f"case {bad.name}: no valid case of dtype {bad.dtype} to hold its invalid input against")
    return min(candidates)[1]


def _comparable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, tuple):
        return list(value)
    return value
