"""The value and gradient checks of many fixture cases, measured in one vectorised pass.

A fixture file's exact results are laid out once, end to end in *check order* (each valid
case's value, then its VJPs in the file's order): per element, where its exact value,
term scale and kink interval are among the file's numbers, and its dtype. A run gathers
the rows it checks from every file, computes what depends on the dtype (the ULP and eps
at each exact value, the overflow to the dtype's infinity) once for all of them, and hands
them, with the backend's results, to :func:`compare.compare_flat` -- the arithmetic
:func:`compare.measure` uses too -- so the per-check cost is a list append, not a dozen
numpy calls. Every row that does not conform or is not within the stability bound is
left to :func:`runner.evaluate_check`, which measures it again and explains it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..fixtures import FileData, FixtureCase
from . import compare
from .tolerance import FORMATS, Tolerance, eps, min_normal, stability_bound

DTYPES = tuple(FORMATS)  # a row's dtype, as its position here


@dataclass
class Layout:
    """One fixture file's value and gradient checks (the rows of its ``checks`` table),
    laid out end to end."""

    data: FileData
    #: per row: first element, number of elements, the derived stability bound B(n) of its
    #: reduction in its dtype (tolerance.stability_bound); the number of elements and the
    #: shape as Python values
    offset: np.ndarray
    size: np.ndarray
    growth: np.ndarray
    sizes: list[int]
    shapes: list[tuple[int, ...]]
    #: per element, positions in the file's numbers: of the exact value, of its term scale
    #: (-1 for a gradient's element without one: its scale is the array's max-norm), and of
    #: a kink interval's ends (-1 where none; None when the file has no kink); the dtype
    #: (its position in :data:`DTYPES`)
    pos: np.ndarray
    scale_pos: np.ndarray
    blo_pos: np.ndarray | None
    bhi_pos: np.ndarray | None
    dtype: np.ndarray


def layout(data: FileData) -> Layout:
    """The layout of ``data``'s checks (computed once per file and kept with it). Only
    positions: the numbers themselves, and what depends on the dtype (ULPs, overflow),
    are gathered and computed by :func:`measure_rows` for the rows a run checks, all
    files at once."""
    found = data.derived.get("batch")
    if found is not None:
        return found
    n_rows = len(data.checks)
    start, end, dtype, scale_at, lo_at, hi_at, n_terms, shapes, roundings = (
        zip(*data.checks) if n_rows else ((),) * 9
    )
    first = np.array(start, dtype=np.int64)
    sizes = np.array(end, dtype=np.int64) - first
    offset = np.cumsum(sizes) - sizes
    within = np.arange(int(sizes.sum())) - np.repeat(offset, sizes)
    pos = np.repeat(first, sizes) + within
    scale_first = np.array(scale_at, dtype=np.int64)
    scale_pos = np.where(np.repeat(scale_first < 0, sizes), -1, np.repeat(scale_first, sizes) + within)
    blo_pos = bhi_pos = None
    lo_first = np.array(lo_at, dtype=np.int64)
    if (lo_first >= 0).any():
        none = np.repeat(lo_first < 0, sizes)
        blo_pos = np.where(none, -1, np.repeat(lo_first, sizes) + within)
        bhi_pos = np.where(none, -1, np.repeat(np.array(hi_at, dtype=np.int64), sizes) + within)
    code = {d: k for k, d in enumerate(DTYPES)}
    keys = list(zip(n_terms, dtype, roundings))
    g = {key: stability_bound(*key) for key in set(keys)}  # the same floats as Tolerance.bound's
    result = Layout(
        data, offset, sizes, np.array([g[key] for key in keys], dtype=np.float64), sizes.tolist(), list(shapes),
        pos, scale_pos, blo_pos, bhi_pos, np.repeat(np.array([code[d] for d in dtype], dtype=np.int8), sizes),
    )
    data.derived["batch"] = result
    return result


#: one check to measure: its file's layout, its row, the backend's array (flat, of the
#: row's size), its tolerance and the exact result's shape
Item = tuple[Layout, int, np.ndarray, Tolerance, tuple[int, ...]]


#: what :func:`measure_rows` gives for an item that conforms or is within the stability
#: bound: the verdict, the worst error in ULPs and in scale units, the stability bound,
#: the worst element's index, its exact text and the backend's value there (value, dtype)
Passed = tuple[str, float, float, float, "tuple[int, ...] | None", "str | None", "tuple[float, Any] | None"]


def measure_rows(items: list[Item]) -> list[Passed | None]:
    """For each item that conforms or is within the stability bound, its measurement;
    None for every other one (measure it with :func:`compare.measure`, which explains
    it). The same numbers :func:`compare.measure` gives (``tests/test_batched_comparison.py``)."""
    n_items = len(items)
    out: list[Passed | None] = [None] * n_items
    if not items:
        return out
    lays, row_list, observed, tols, shapes = zip(*items)
    all_rows = np.array(row_list, dtype=np.int64)
    # runs of consecutive items of the same file (a session lists a file's cases together)
    cuts = [0, *(i for i in range(1, n_items) if lays[i] is not lays[i - 1]), n_items]
    groups = list(zip(cuts, cuts[1:]))
    parts: list[tuple[np.ndarray, ...]] = []
    kinks = False
    for a, b in groups:  # every run's rows, gathered
        lay = lays[a]
        values, lo = lay.data.values, lay.data.lo
        rows = all_rows[a:b]
        sizes = lay.size[rows]
        starts = np.cumsum(sizes) - sizes
        idx = np.repeat(lay.offset[rows] - starts, sizes) + np.arange(int(sizes.sum()))
        pos = lay.pos[idx]
        hi = values[pos]
        scale_pos = lay.scale_pos[idx]
        if lay.blo_pos is None:
            blo = bhi = hi
        else:
            kinks = True
            blo_pos, bhi_pos = lay.blo_pos[idx], lay.bhi_pos[idx]
            blo = np.where(blo_pos < 0, hi, values[blo_pos])  # (-1: the last number, not read)
            bhi = np.where(bhi_pos < 0, hi, values[bhi_pos])
        parts.append((
            sizes, lay.growth[rows], pos, hi, lo[pos], values[scale_pos], scale_pos < 0, lay.dtype[idx], blo, bhi,
        ))
    sizes, growths, pos, hi, lo, scale, gradient, dtype, blo, bhi = (np.concatenate(x) for x in zip(*parts))
    # what depends on the dtype, for all files at once: the ULP and eps at each exact
    # value, and the overflow to +-inf (see compare.compare_flat)
    unit = np.empty(hi.size)
    eps_el = np.empty(hi.size)
    nmin_el = np.empty(hi.size)
    overflow = np.full(hi.size, np.nan)
    for k, d in enumerate(DTYPES):
        mask = dtype == k
        if mask.any():
            unit[mask] = compare.ulp(hi[mask], d)
            eps_el[mask] = eps(d)
            nmin_el[mask] = min_normal(d)
            overflow[mask] = compare.overflow_of(hi[mask], lo[mask], d)
    starts = np.cumsum(sizes) - sizes
    tol_ulps = np.array([t.ulps for t in tols])
    bound = np.array([t.stability for t in tols]) * growths
    o = np.concatenate(observed, dtype=np.float64)
    verdicts = compare.compare_flat(
        o, hi, lo, unit, eps_el, nmin_el, scale, gradient, overflow, blo if kinks else None, bhi if kinks else None,
        starts, sizes, tol_ulps, bound,
    )
    # each row's worst element (clipped: a row without one has no verdict either)
    at = np.minimum(starts + np.array([0 if k is None else k for k in verdicts[3]], dtype=np.int64), o.size - 1)
    o_at, bound_l = o[at].tolist(), bound.tolist()
    # the exact text of each row's worst element, run by run
    text_l: list[str] = []
    for a, b in groups:
        text_l += lays[a].data.texts_at(pos[at[a:b]])
    index_in = compare.index_in
    for j, (verdict, worst, worst_scaled, k) in enumerate(zip(*verdicts)):
        if verdict is None:
            continue
        if k is None:  # no finite exact element: nothing to measure, every infinity matched
            out[j] = (verdict, worst, worst_scaled, bound_l[j], None, None, None)
            continue
        out[j] = (verdict, worst, worst_scaled, bound_l[j], index_in(shapes[j], k), text_l[j], (o_at[j], observed[j].dtype))
    return out


def item_for(case: FixtureCase, check: str, observed: Any, tol: Tolerance) -> Item | None:
    """The item for a value or gradient check of a fixture file's case, or None (not such
    a check, not a file's case, or an array the batched pass cannot take: not a float
    array of the exact result's size, or an empty one)."""
    source = case.source
    if source is None or type(observed) is not np.ndarray or observed.dtype.kind != "f":
        return None
    row = case.exact_rows.get(None if check == "value" else check[5:] if check[:5] == "grad:" else "")
    if row is None:
        return None
    data = source[0]
    lay = data.derived.get("batch") or layout(data)
    size = lay.sizes[row]
    if observed.size != size or size == 0:
        return None
    return (lay, row, observed.ravel(), tol, lay.shapes[row])
