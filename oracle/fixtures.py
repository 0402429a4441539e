"""Golden-fixture generation: every loss module's ``cases()`` evaluated by the oracle and
frozen as language-neutral JSON (format: ``fixtures/README.md``, ``fixtures/schema.json``).

Generation is deterministic: cases are drawn from seeded streams, evaluated at the
working precision and written with a fixed layout, so the same command gives the same
bytes. Files are written one per loss, one case per line, plus ``MANIFEST.json`` with
their SHA-256 digests.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import flint
import mpmath
import numpy as np

from . import __version__, catalog, precision
from .api import evaluate
from .cases import Case, control_index, cotangent_for, regime_crossings, rng_for, with_bfloat16
from .errors import InputError, OracleError
from .hvp import NoSecondDerivative, evaluate_hvp

FORMAT = "lossconf-fixtures"
FORMAT_VERSION = 2
#: the shortest run of equal consecutive number strings the writer writes as one run object
#: ``{"repeat": S, "count": K}`` (format version 2; fixtures/README.md, *Runs*)
RUN_MIN = 8
#: where a case record holds lists of number strings (the paths :func:`compact_record`
#: run-length encodes): ``*`` is every key of an object (an input's or a VJP's name)
NUMBER_LISTS = (
    ("inputs", "*", "data"), ("cotangent", "data"), ("direction", "*", "data"),
    ("expected", "value"), ("expected", "rounded"), ("expected", "scale"),
    *((part, "*", key) for part in ("vjp", "hvp") for key in ("value", "scale", "lo", "hi")),
)


def file_name(loss_id: str) -> str:
    return catalog.module(loss_id).__name__.rsplit(".", 1)[-1] + ".json"


def format_input(value: Any, dtype: str) -> str:
    """Shortest decimal that round-trips to the value in ``dtype``."""
    v = np.asarray(value, dtype=precision.numpy_dtype(dtype))[()]
    if np.isnan(v):
        return "nan"
    if np.isinf(v):
        return "inf" if v > 0 else "-inf"
    return np.format_float_scientific(v, unique=True, trim="-")


def encode_array(arr: Any, kind: str, dtype: str) -> dict:
    a = np.asarray(arr)
    if kind == "int":
        data: list = [int(v) for v in a.astype(np.int64).ravel()]
        return {"shape": list(a.shape), "dtype": "int64", "data": data}
    return {"shape": list(a.shape), "dtype": dtype, "data": [format_input(v, dtype) for v in a.ravel()]}


def run_length(data: list) -> list:
    """``data`` with every run of at least :data:`RUN_MIN` equal consecutive strings written
    as one run object ``{"repeat": S, "count": K}`` (anything else, integers included, as
    it is): the form fixture files write lists of number strings in (format version 2)."""
    out: list = []
    i, n = 0, len(data)
    while i < n:
        x = data[i]
        j = i + 1
        if isinstance(x, str):
            while j < n and data[j] == x:
                j += 1
        if j - i >= RUN_MIN:
            out.append({"repeat": x, "count": j - i})
        else:
            out.extend(data[i:j])
        i = j
    return out


def expand_runs(data: list, where: str = "data") -> list:
    """The inverse of :func:`run_length`: every run object replaced by its ``count`` copies
    of its ``repeat`` string (a ``ValueError`` naming ``where`` for a malformed one)."""
    out: list = []
    for x in data:
        if isinstance(x, dict):
            if set(x) != {"repeat", "count"} or not isinstance(x["repeat"], str) or type(x["count"]) is not int or x["count"] < 2:
                raise ValueError(f"{where}: a malformed run {json.dumps(x)[:60]} (a run is {{\"repeat\": <number string>, \"count\": <integer >= 2>}})")
            if len(out) + x["count"] > MAX_EXPANDED:
                raise ValueError(f"{where}: runs expand to more than {MAX_EXPANDED} values")
            out.extend([x["repeat"]] * x["count"])
        else:
            out.append(x)
    return out


#: a bound on what one list of runs may expand to (no fixture array comes near it)
MAX_EXPANDED = 2**26


def _paths(record: dict, path: tuple[str, ...]) -> list[tuple[dict, str]]:
    """The (object, key) pairs of ``record`` that ``path`` (with ``*`` for every key) names."""
    found = [record]
    for key in path[:-1]:
        found = [v for o in found if isinstance(o, dict) for v in (o.values() if key == "*" else [o.get(key)]) if isinstance(v, dict)]
    return [(o, path[-1]) for o in found if isinstance(o.get(path[-1]), list)]


def compact_record(record: dict) -> dict:
    """A case record with its lists of number strings (:data:`NUMBER_LISTS`) run-length
    encoded (:func:`run_length`), in place; the record is returned."""
    for path in NUMBER_LISTS:
        for obj, key in _paths(record, path):
            obj[key] = run_length(obj[key])
    return record


def expanded_record(record: dict) -> dict:
    """A copy of a case record (as a fixture file writes it) with every run expanded
    (:func:`expand_runs`): the record :func:`encode_case` gave before :func:`compact_record`."""
    out = json.loads(json.dumps(record))
    for path in NUMBER_LISTS:
        for obj, key in _paths(out, path):
            obj[key] = expand_runs(obj[key], ".".join(path))
    return out


def encode_exact(values: np.ndarray) -> list[str]:
    return [precision.to_decimal(v) for v in np.asarray(values, dtype=object).ravel()]


def encode_scale(values: np.ndarray) -> list[str]:
    """Term scales as decimal strings of 6 significant digits (``inf`` where infinite)."""
    return [
        mpmath.nstr(abs(s), 6, min_fixed=-3, max_fixed=6) if mpmath.isfinite(s) else precision.to_decimal(s)
        for s in np.asarray(values, dtype=object).ravel()
    ]


def _condition(value: np.ndarray, scale: np.ndarray) -> str:
    worst = mpmath.mpf(0)
    for v, s in zip(np.asarray(value, dtype=object).ravel(), np.asarray(scale, dtype=object).ravel()):
        if not mpmath.isfinite(v) or not mpmath.isfinite(s):
            continue
        if v == 0:
            if s != 0:
                return "inf"
            continue
        worst = max(worst, abs(s / v))
    return mpmath.nstr(worst, 6, min_fixed=-3, max_fixed=6)


def proof_dtypes(dtype: str) -> tuple[str, ...]:
    """The dtypes whose rounding a case's proof settles: its own, except for bfloat16, whose
    cases prove the 40 digits and the rounding to float32. With 8-bit inputs and
    cotangents, exact values exactly halfway between two bfloat16 numbers are common (a
    product of two 8-bit numbers divided by 12), and no enclosure that is not a point can
    tell which side of such a tie the value lies on, so proving the bfloat16 rounding would
    raise the precision to the cap for nothing; the written bfloat16 ``rounded`` value is
    that of the proven decimal (the harness's 4-ULP tolerance does not depend on the side)."""
    return ("float32",) if dtype == "bfloat16" else (dtype,)


def hvp_proof_dtypes(dtype: str) -> tuple[str, ...]:
    """The dtypes whose rounding an HVP's proof settles: the case's own, but none for
    bfloat16 (only the 40 digits, which are all an ``hvp`` entry records): with 8-bit inputs,
    directions and cotangents its exact HVPs are often rationals that lie exactly on a
    float32 rounding boundary, which no enclosure that is not a point can place."""
    return () if dtype == "bfloat16" else (dtype,)


def encode_case(loss_id: str, index: int, case: Case, control: int | None = None) -> dict:
    """Evaluate one case with the oracle and encode it (``control``: an invalid-input
    case's valid control case, :func:`cases.control_index`)."""
    spec = catalog.spec(loss_id)
    kinds = {i.name: i.kind for i in spec.inputs}
    options = spec.resolve_options(case.options) if case.invalid is None else dict(spec.defaults(), **case.options)
    record: dict[str, Any] = {
        "index": index,
        "name": case.name,
        "dtype": case.dtype,
        "tags": list(case.tags),
        "options": _json_options(options),
        "given_options": sorted(case.options),
        "inputs": {k: encode_array(v, kinds[k], case.dtype) for k, v in case.inputs.items() if v is not None},
    }
    if case.note:
        record["note"] = case.note
    if case.invalid is not None:
        try:
            evaluate(loss_id, case.inputs, case.options, wrt=())
        except OracleError as err:
            if control is None:
                raise AssertionError(f"{loss_id} case {case.name}: an invalid-input case needs its valid control case") from None
            record["invalid"] = {"rule": case.invalid, "oracle_error": str(err), "control": control}
            return record
        raise AssertionError(f"{loss_id} case {case.name}: marked invalid but the oracle accepted it")
    try:
        proven = proof_dtypes(case.dtype)
        shape = evaluate(loss_id, case.inputs, case.options, wrt=(), dtypes=proven).shape
        ct = case.cotangent
        if ct is None:
            ct = cotangent_for(rng_for(loss_id, case.name + "/cotangent"), shape, case.dtype)
        ct = precision.from_float64(np.asarray(ct, dtype=np.float64), case.dtype).reshape(shape)
        r = evaluate(loss_id, case.inputs, case.options, cotangent=ct.astype(np.float64), dtypes=proven)
    except OracleError as err:
        raise OracleError(f"{file_name(loss_id)} case {index} ({case.name}): {err}") from None
    record["expected"] = {
        "shape": list(r.shape),
        "value": encode_exact(r.value),
        "rounded": [format_input(v, case.dtype) for v in r.value_as(case.dtype).ravel()],
        "scale": encode_scale(r.scale),
        "n_terms": r.n_terms,
        "condition": _condition(r.value, r.scale),
    }
    record["cotangent"] = encode_array(ct, "float", case.dtype)
    vjp = {}
    for name, g in r.grads.items():
        entry: dict[str, Any] = {
            "shape": list(np.shape(g.lo)), "value": encode_exact(g.value), "scale": encode_scale(g.scale)
        }
        if g.at_kink.any():
            entry["lo"] = encode_exact(g.lo)
            entry["hi"] = encode_exact(g.hi)
        vjp[name] = entry
    record["vjp"] = vjp
    _encode_second_order(record, loss_id, index, case, r, ct)
    return record


#: a ``long`` case whose input is made of runs (:func:`_made_of_runs`) takes one normal
#: number of its HVP direction per block of this many consecutive elements (row-major), so
#: that its direction and HVP, like its inputs, are runs in the fixture (fixtures/README.md,
#: *Second order*)
LONG_DIRECTION_BLOCK = 64


def _made_of_runs(values: np.ndarray) -> bool:
    """Whether a row-major array's runs of equal elements are :data:`LONG_DIRECTION_BLOCK`
    long on average (the half-ULP and long-hard inputs; not the random logits of chainer's
    ``soft-large-batch-*``, rows of 4 classes whose direction, repeated over a block, would
    be constant along each row: the softmax Hessian maps that to an exact 0, an HVP any
    backend that returns zeros would match)."""
    flat = np.asarray(values).ravel()
    runs = 1 + int(np.count_nonzero(flat[1:] != flat[:-1])) if flat.size else 0
    return runs * LONG_DIRECTION_BLOCK <= flat.size


def direction_for(loss_id: str, case: Case, names: Iterable[str]) -> dict[str, np.ndarray]:
    """The case's HVP direction: for each differentiable input, standard normal numbers
    drawn from the case's own stream (``<case>/direction``), rounded to the case dtype; in
    a ``long`` case whose input is made of runs, one number per block of
    :data:`LONG_DIRECTION_BLOCK` consecutive elements (row-major), repeated over the block."""
    rng = rng_for(loss_id, case.name + "/direction")
    out = {}
    for name in names:
        shape = np.shape(case.inputs[name])
        size = int(np.prod(shape))
        block = LONG_DIRECTION_BLOCK if "long" in case.tags and _made_of_runs(case.inputs[name]) else 1
        draws = [rng.gauss(0.0, 1.0) for _ in range(-(-size // block))]
        out[name] = precision.from_float64(np.repeat(draws, block)[:size], case.dtype).reshape(shape)
    return out


def _encode_second_order(record: dict, loss_id: str, index: int, case: Case, r: Any, ct: np.ndarray) -> None:
    """``direction`` and ``hvp`` (oracle.hvp) of a case; ``no_hvp`` (the reason) where the
    VJP is not differentiable along the direction at the case's point."""
    spec = catalog.spec(loss_id)
    names = [n for n in spec.differentiable if case.inputs.get(n) is not None]
    if not names:
        return
    direction = direction_for(loss_id, case, names)
    record["direction"] = {k: encode_array(v, "float", case.dtype) for k, v in direction.items()}
    if any(g.at_kink.any() for g in r.grads.values()):
        record["no_hvp"] = "the VJP is at a kink (an interval): the first derivative jumps, its derivative is a Dirac measure"
        return
    try:
        h = evaluate_hvp(
            loss_id, case.inputs, case.options, direction={k: v.astype(np.float64) for k, v in direction.items()},
            cotangent=ct.astype(np.float64), dtypes=hvp_proof_dtypes(case.dtype),
        )
    except NoSecondDerivative as why:
        record["no_hvp"] = str(why).split(": ", 1)[-1]
        return
    except OracleError as err:
        raise OracleError(f"{file_name(loss_id)} case {index} ({case.name}): hvp: {err}") from None
    hvp = {}
    for name, g in h.items():
        entry: dict[str, Any] = {"shape": list(np.shape(g.lo)), "value": encode_exact(g.value), "scale": encode_scale(g.scale)}
        if g.at_kink.any():
            entry["lo"] = encode_exact(g.lo)
            entry["hi"] = encode_exact(g.hi)
        hvp[name] = entry
    record["hvp"] = hvp


def _json_options(options: dict) -> dict:
    out = {}
    for k, v in options.items():
        if isinstance(v, np.ndarray):
            out[k] = [float(x) for x in v.ravel()]
        elif isinstance(v, (list, tuple)):
            out[k] = [float(x) if isinstance(x, float) else x for x in v]
        else:
            out[k] = v
    return out


def provenance() -> dict:
    return {
        "oracle_version": __version__,
        "mpmath_version": mpmath.__version__,
        "mpmath_backend": precision.mpmath_backend(),
        "flint_version": flint.__version__,
        "precision_bits": precision.get_working_precision(),
        "max_precision_bits": precision.MAX_PRECISION_BITS,
        "decimal_digits": precision.DECIMAL_DIGITS,
    }


def loss_cases(loss_id: str, limit: int | None = None) -> list[Case]:
    """Every case of one loss's fixture file, in file order: the module's cases, the regime
    crossings, their bfloat16 copies (the first ``limit`` only, if given)."""
    spec = catalog.spec(loss_id)
    base = list(catalog.module(loss_id).cases())
    base += list(regime_crossings(spec, base, lambda c: _accepts(loss_id, c)))
    every = with_bfloat16(spec, base)
    return every if limit is None else every[:limit]


def case_line(loss_id: str, index: int, case: Case, control: int | None = None) -> str:
    """The line of a case in its fixture file (``control``: as :func:`encode_case`)."""
    return json.dumps(compact_record(encode_case(loss_id, index, case, control)), separators=(",", ":"), allow_nan=False)


def file_text(loss_id: str, lines: list[str]) -> str:
    """A fixture file: its header (format, loss, provenance) and one case per line."""
    head = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "loss": loss_id,
        "provenance": provenance(),
    }
    return json.dumps(head, separators=(",", ":"))[:-1] + ',"cases":[\n' + ",\n".join(lines) + "\n]}\n"


def render_loss(loss_id: str, limit: int | None = None) -> tuple[str, str]:
    """The fixture file of one loss (its id, short name or alias): (file name, text)."""
    loss_id = catalog.resolve(loss_id)
    every = loss_cases(loss_id, limit)
    return file_name(loss_id), file_text(loss_id, [case_line(loss_id, i, *_with_control(every, i)) for i in range(len(every))])


def _with_control(every: list[Case], index: int) -> tuple[Case, int | None]:
    case = every[index]
    return case, (control_index(every, index) if case.invalid is not None else None)


def _accepts(loss_id: str, case: Case) -> bool:
    """Whether the oracle evaluates a case's forward without an input error."""
    try:
        evaluate(loss_id, case.inputs, case.options, wrt=(), dtypes=proof_dtypes(case.dtype))
    except InputError:
        return False
    return True


def _case_job(args: tuple[str, int, Case, int | None, int]) -> tuple[str, int, str]:
    loss_id, index, case, control, bits = args
    precision.set_working_precision(bits)
    return loss_id, index, case_line(loss_id, index, case, control)


def _cost(case: Case) -> int:
    """A case's work, for scheduling: its number of input elements."""
    return sum(int(np.size(v)) for v in case.inputs.values() if v is not None)


def sha256(text: bytes) -> str:
    return hashlib.sha256(text).hexdigest()


def generate(
    out_dir: Path,
    losses: Iterable[str] | None = None,
    *,
    jobs: int | None = None,
    limit: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, str]:
    """Write the fixtures of ``losses`` (default: all) into ``out_dir`` and the manifest,
    one case per job in ``jobs`` worker processes (default: all cores; the largest cases
    first), in file order with ``jobs=1`` (so the first case that cannot be proven is the
    one reported); ``progress(done, total)`` counts cases. Returns {file name: sha256}."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ids = [catalog.resolve(x) for x in (losses or catalog.loss_ids())]
    bits = precision.get_working_precision()
    manifest_path = out_dir / "MANIFEST.json"
    digests: dict[str, str] = {}
    if manifest_path.exists() and losses is not None:
        digests = dict(json.loads(manifest_path.read_text())["files"])
    cases = {loss_id: loss_cases(loss_id, limit) for loss_id in ids}
    lines: dict[str, list[str | None]] = {loss_id: [None] * len(every) for loss_id, every in cases.items()}
    left = {loss_id: len(every) for loss_id, every in cases.items()}
    results: dict[str, tuple[str, str]] = {}

    def finish(loss_id: str, index: int, line: str) -> None:
        lines[loss_id][index] = line
        left[loss_id] -= 1
        if not left[loss_id]:
            results[loss_id] = (file_name(loss_id), file_text(loss_id, lines[loss_id]))
        if progress:
            progress(len(work) - sum(left.values()), len(work))

    for loss_id in ids:  # a loss without cases (a limit of 0) is written at once
        if not left[loss_id]:
            results[loss_id] = (file_name(loss_id), file_text(loss_id, []))
    # one job per case, in file order
    work = [(loss_id, i, *_with_control(every, i), bits) for loss_id, every in cases.items() for i in range(len(every))]
    jobs = max(1, min(len(work), jobs or os.cpu_count() or 1))
    if progress:
        progress(0, len(work))
    if jobs > 1:
        with ProcessPoolExecutor(jobs) as pool:
            # the largest first (the long cases), so that the workers finish together
            futures = [pool.submit(_case_job, job) for job in sorted(work, key=lambda job: -_cost(job[2]))]
            try:
                for future in as_completed(futures):
                    finish(*future.result())
            except BaseException:  # a case the oracle cannot prove, or ^C: the jobs not yet
                for future in futures:  # started are dropped (those running finish first)
                    future.cancel()
                raise
    else:
        for job in work:
            finish(*_case_job(job))
    case_digests: dict[str, list[str]] = {}
    if manifest_path.exists() and losses is not None:
        case_digests = dict(json.loads(manifest_path.read_text()).get("cases", {}))
    for loss_id in ids:
        name, text = results[loss_id]
        data = text.encode()
        (out_dir / name).write_bytes(data)
        digests[name] = sha256(data)
        case_digests[name] = [sha256(line.rstrip(",").encode()) for line in text.split("\n")[1:] if line.startswith("{")]
    schema = SCHEMA_SOURCE.read_bytes()
    (out_dir / SCHEMA_FILE).write_bytes(schema)
    write_manifest(out_dir, digests, case_digests, sha256(schema))
    return digests


#: the schema of the format, as the harness reads it; ``generate`` copies it beside the fixtures
SCHEMA_SOURCE = Path(__file__).resolve().parent.parent / "conformance" / "fixtures_schema.json"
SCHEMA_FILE = "schema.json"


def manifest_text(digests: dict[str, str], case_digests: dict[str, list[str]] | None = None, schema_digest: str | None = None) -> str:
    """``MANIFEST.json`` as the generator writes it: ``files``: SHA-256 per fixture file;
    ``cases``: SHA-256 per case line of each file (so a changed file's changed cases can be
    named); ``schema``: the SHA-256 of ``schema.json`` (every file the loader trusts is
    listed); ``digest``: SHA-256 of ``files``."""
    files = {k: v for k, v in sorted(digests.items()) if k != SCHEMA_FILE}
    body = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "files": files,
        "cases": {k: v for k, v in sorted((case_digests or {}).items()) if k in files},
        "schema": {SCHEMA_FILE: schema_digest or sha256(SCHEMA_SOURCE.read_bytes())},
        "digest": sha256(json.dumps(files, sort_keys=True).encode()),
    }
    return json.dumps(body, indent=1, sort_keys=True) + "\n"


def write_manifest(
    out_dir: Path, digests: dict[str, str], case_digests: dict[str, list[str]] | None = None, schema_digest: str | None = None
) -> None:
    """Write :func:`manifest_text` (``schema_digest``: of the folder's ``schema.json``; by
    default the packaged schema's)."""
    (Path(out_dir) / "MANIFEST.json").write_text(manifest_text(digests, case_digests, schema_digest))


def _progress(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def recompute(
    directory: Path,
    sample: int | None = 3,
    progress: Callable[[str], None] | None = None,
    files: dict[str, bytes] | None = None,
) -> list[str]:
    """Re-prove cases of the fixture files, starting at :data:`precision.VERIFY_PRECISION_BITS`,
    from their recorded inputs and options, and report every value, VJP element or kink
    bound whose proven decimal differs from the recorded one (a value proven below the
    floor, 2**-1200, may be written 0 or with digits). ``sample`` cases per loss (spread
    evenly), or all with ``sample=None``. ``files``: the fixture files' bytes as already
    read (and verified) by the caller; else they are read from ``directory``."""
    problems: list[str] = []
    if files is None:
        manifest = json.loads((Path(directory) / "MANIFEST.json").read_text())
        files = {name: (Path(directory) / name).read_bytes() for name in manifest["files"]}
    for name in sorted(files):
        cases = json.loads(files[name])["cases"]
        problems += recompute_cases(name, json.loads(files[name])["loss"], cases, sample)
        if progress:
            progress(f"recomputed {min(len(cases), sample or len(cases))} case(s) of {name}")
    return problems


def recompute_cases(name: str, loss_id: str, cases: list[dict], sample: int | None = None) -> list[str]:
    """:func:`recompute` on the cases of one file."""
    problems: list[str] = []
    digits = precision.DECIMAL_DIGITS
    if sample is not None and len(cases) > sample:
        step = len(cases) / sample
        cases = [cases[int(i * step)] for i in range(sample)]
    for c in cases:
        try:
            c = expanded_record(c)
        except ValueError as err:
            problems.append(f"{name} case {c.get('index')} ({c.get('name')}): {err}")
            continue
        inputs = {k: _decode_input(v) for k, v in c["inputs"].items()}
        opts = {k: c["options"][k] for k in c["given_options"]}
        label = f"{name} case {c['index']} ({c['name']})"
        try:
            ct = None if "cotangent" not in c else _decode_input(c["cotangent"]).astype(np.float64)
            r = evaluate(
                loss_id, inputs, opts, cotangent=ct, precision_bits=precision.VERIFY_PRECISION_BITS, dtypes=proof_dtypes(c["dtype"])
            )
        except OracleError as err:
            if "invalid" not in c:
                problems.append(f"{label}: the oracle now rejects it: {err}")
            continue
        if "invalid" in c:
            problems.append(f"{label}: recorded as invalid but the oracle accepts it")
            continue
        pairs = [("value", c["expected"]["value"], r.value)]
        pairs += [(f"vjp:{k}", v["value"], r.grads[k].value) for k, v in c["vjp"].items()]
        pairs += [(f"vjp:{k}:{b}", v[b], getattr(r.grads[k], b)) for k, v in c["vjp"].items() for b in ("lo", "hi") if b in v]
        if "hvp" in c:  # second order, re-proven along the recorded direction
            try:
                h = evaluate_hvp(
                    loss_id, inputs, opts,
                    direction={k: _decode_input(v).astype(np.float64) for k, v in c["direction"].items()},
                    cotangent=ct, precision_bits=precision.VERIFY_PRECISION_BITS, dtypes=hvp_proof_dtypes(c["dtype"]),
                )
            except (OracleError, NoSecondDerivative) as err:
                problems.append(f"{label}: hvp: the oracle now gives none: {err}")
                h = {}
            pairs += [(f"hvp:{k}", v["value"], h[k].value) for k, v in c["hvp"].items() if k in h]
            pairs += [(f"hvp:{k}:{b}", v[b], getattr(h[k], b)) for k, v in c["hvp"].items() if k in h for b in ("lo", "hi") if b in v]
        for what, recorded, fresh in pairs:
            for i, (text, val) in enumerate(zip(recorded, np.asarray(fresh, dtype=object).ravel())):
                if not _agree(text, val, digits):
                    problems.append(f"{label}: {what}[{i}] recorded {text}, re-derived {precision.to_decimal(val)}")
                    break
    return problems


# ----------------------------------------------------------------- regeneration check


def compare_with_fresh(loss_id: str, name: str, data: bytes, recompute_all: bool = True) -> list[str]:
    """Regenerate the fixture file of ``loss_id`` (as ``lossconf fixtures generate`` does,
    at the default working precision) and compare it with ``data``, the file's bytes,
    line by line: every case line must equal its fresh generation byte for byte, so no
    field (inputs, options, tags, expected and rounded values, scale, n_terms, condition,
    cotangent, VJPs and kink bounds, note, ...) can differ. Each differing case is named
    with the fields that differ; a missing or extra case, a differing header
    (provenance) or layout too. With ``recompute_all`` every case is also re-derived at
    :data:`precision.VERIFY_PRECISION_BITS` (:func:`recompute_cases`). Returns the
    problems, each ``FILE[ case INDEX (NAME)]: MESSAGE``."""
    try:
        _, text = render_loss(loss_id)
    except Exception as err:  # the oracle itself fails on a case: a finding, named
        return [f"{name}: a fresh generation of {loss_id} fails: {type(err).__name__}: {err}"]
    fresh = text.encode()
    if fresh == data:
        return recompute_cases(name, loss_id, json.loads(data)["cases"]) if recompute_all else []
    problems: list[str] = []
    old_lines, new_lines = data.split(b"\n"), fresh.split(b"\n")
    old_head, new_head = _head(data), _head(fresh)
    for field in _differences(old_head, new_head):
        problems.append(f"{name}: header differs from a fresh generation: {field}")
    old_cases = [ln for ln in old_lines[1:] if ln.startswith(b"{")]
    new_cases = [ln for ln in new_lines[1:] if ln.startswith(b"{")]
    for i, (old, new) in enumerate(zip(old_cases, new_cases)):
        old, new = old.rstrip(b","), new.rstrip(b",")
        if old == new:
            continue
        fresh_case = json.loads(new)
        label = f"{name} case {i} ({fresh_case.get('name', '?')})"
        try:
            recorded = json.loads(old)
        except ValueError:
            problems.append(f"{label}: differs from a fresh generation (its line is not a JSON object)")
            continue
        fields = _differences(recorded, fresh_case)
        what = "; ".join(fields[:6]) + (f"; and {len(fields) - 6} more" if len(fields) > 6 else "")
        problems.append(f"{label}: differs from a fresh generation: {what or 'in its bytes only (key order, spacing or escapes)'}")
    for i in range(len(old_cases), len(new_cases)):
        c = json.loads(new_cases[i].rstrip(b","))
        problems.append(f"{name} case {i} ({c.get('name', '?')}): missing (a fresh generation has {len(new_cases)} cases, the file {len(old_cases)})")
    for i in range(len(new_cases), len(old_cases)):
        problems.append(f"{name} case {i}: extra (a fresh generation has {len(new_cases)} cases, the file {len(old_cases)})")
    if not problems:
        problems.append(f"{name}: differs from a fresh generation outside its cases' lines (layout)")
    if recompute_all:
        try:
            problems += recompute_cases(name, loss_id, json.loads(data)["cases"])
        except (KeyError, TypeError, ValueError):
            pass  # (a file the regeneration already found wanting)
    return problems


def _head(data: bytes) -> dict:
    """The header fields of a fixture file (all but its cases)."""
    try:
        doc = json.loads(data)
    except ValueError:
        return {"(the file)": "not valid JSON"}
    return {k: v for k, v in doc.items() if k != "cases"} if isinstance(doc, dict) else {"(the file)": "not an object"}


def _differences(old: Any, new: Any, path: str = "") -> list[str]:
    """The fields where ``old`` (as recorded) and ``new`` (freshly generated) differ, with
    both values, e.g. ``expected.n_terms: recorded 400, fresh 4``."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for k in list(new) + [k for k in old if k not in new]:
            where = f"{path}.{k}" if path else str(k)
            if k not in old:
                out.append(f"{where}: missing (fresh {_brief(new[k])})")
            elif k not in new:
                out.append(f"{where}: not in a fresh generation (recorded {_brief(old[k])})")
            else:
                out += _differences(old[k], new[k], where)
        return out
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [d for i, (a, b) in enumerate(zip(old, new)) for d in _differences(a, b, f"{path}[{i}]")]
    if type(old) is type(new) and old == new:
        return []
    return [f"{path or '(value)'}: recorded {_brief(old)}, fresh {_brief(new)}"]


def _brief(v: Any) -> str:
    text = json.dumps(v)
    return text if len(text) <= 48 else text[:45] + "..."


def _compare_job(args: tuple[str, str, bytes, bool, int]) -> tuple[str, list[str]]:
    loss_id, name, data, recompute_all, bits = args
    precision.set_working_precision(bits)
    return name, compare_with_fresh(loss_id, name, data, recompute_all)


def compare_all_with_fresh(
    files: dict[str, tuple[str, bytes]],
    *,
    jobs: int | None = None,
    recompute_all: bool = True,
    progress: Callable[[str, int, int], None] | None = None,
) -> list[str]:
    """:func:`compare_with_fresh` on every file, {name: (loss id, bytes)}, in ``jobs``
    worker processes (default: all cores), the slowest losses first, as :func:`generate`
    does. ``progress(name, done, total)`` after each file."""
    bits = precision.get_working_precision()
    order = sorted(files, key=lambda n: (0 if "CTC" in files[n][0] or "SDML" in files[n][0] else 1, n))
    work = [(files[n][0], n, files[n][1], recompute_all, bits) for n in order]
    jobs = max(1, min(len(work), jobs or os.cpu_count() or 1))
    found: dict[str, list[str]] = {}
    if jobs > 1:
        with ProcessPoolExecutor(jobs) as pool:
            for future in as_completed([pool.submit(_compare_job, job) for job in work]):
                name, problems = future.result()
                found[name] = problems
                if progress:
                    progress(name, len(found), len(work))
    else:
        for job in work:
            name, problems = _compare_job(job)
            found[name] = problems
            if progress:
                progress(name, len(found), len(work))
    return [p for n in sorted(found) for p in found[n]]


def _decode_input(obj: dict) -> np.ndarray:
    if obj["dtype"] == "int64":
        return np.array(obj["data"], dtype=np.int64).reshape(obj["shape"])
    return np.array([float(x) for x in obj["data"]], dtype=np.float64).astype(obj["dtype"]).reshape(obj["shape"])


def _agree(text: str, value: mpmath.mpf, digits: int = precision.DECIMAL_DIGITS) -> bool:
    """The recorded decimal is the proven one (proven values have one decimal each); a
    value below the floor may be written 0 or with its digits (oracle.api.prove)."""
    if text == precision.to_decimal(value, digits):
        return True
    with precision.working_precision(precision.VERIFY_PRECISION_BITS):
        recorded = precision.from_decimal(text)
        if not (mpmath.isfinite(recorded) and mpmath.isfinite(value)):
            return False
        return abs(recorded) < precision.NEGLIGIBLE and abs(value) < precision.NEGLIGIBLE
