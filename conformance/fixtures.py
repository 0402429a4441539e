"""Loading and verifying golden fixtures. Fixtures are data: they are read with ``json``
only, checked against ``fixtures/schema.json`` and the SHA-256 digests of
``MANIFEST.json``, and nothing in them is ever executed.

Exact values are decoded into double-double pairs (``hi`` = the float64 nearest the exact
value, ``lo`` = the float64 nearest the remainder), so errors of a float64 result are
measured well beyond float64's own precision without any arbitrary-precision library.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from decimal import Decimal, localcontext
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

SCHEMA_FILE = "schema.json"
MANIFEST_FILE = "MANIFEST.json"
NON_FIXTURE_FILES = {SCHEMA_FILE, MANIFEST_FILE}


class FixtureError(Exception):
    """A missing, corrupt or inconsistent fixtures directory; the message names the file
    (and the case, where one is at fault)."""


def default_dir() -> Path:
    """``$LOSSCONF_FIXTURES``, else the checkout's ``fixtures/``, else ``./fixtures``."""
    env = os.environ.get("LOSSCONF_FIXTURES")
    if env:
        return Path(env)
    here = Path(__file__).resolve().parent.parent / "fixtures"
    if (here / MANIFEST_FILE).exists():
        return here
    return Path.cwd() / "fixtures"


# ----------------------------------------------------------------- exact numbers


def decode_exact(texts: list[str], need_lo: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Decimal strings (with inf/nan) -> (hi, lo) float64 arrays, hi + lo ~ exact.
    Without ``need_lo`` (results in float16 or float32, whose ULP is >= 2**29 times
    float64's) ``lo`` is left 0: hi alone measures their errors to within 2**-29 ULP."""
    hi = np.array([float(t) for t in texts], dtype=np.float64)
    lo = np.zeros(len(texts))
    if not need_lo:
        return hi, lo
    with localcontext() as ctx:
        ctx.prec = 60
        for i, t in enumerate(texts):
            h = float(t)
            hi[i] = h
            # below float64's range (hi == 0; exponents may exceed what Decimal parses)
            # or beyond it (hi == +-inf) the remainder cannot matter for any dtype
            if h == h and h != 0 and h not in (float("inf"), float("-inf")):
                lo[i] = float(Decimal(t) - Decimal(h))
    return hi, lo


@dataclass
class ExactArray:
    shape: tuple[int, ...]
    text: list[str]
    hi: np.ndarray
    lo: np.ndarray
    #: at a kink: the interval [lo_bound, hi_bound] elementwise (as double-double hi parts)
    bounds: tuple[np.ndarray, np.ndarray] | None = None

    def ulp(self, dtype: str) -> np.ndarray:
        """The dtype's ULP at each exact value (computed once)."""
        cache = self.__dict__.setdefault("_ulp", {})
        if dtype not in cache:
            from .compare import ulp

            cache[dtype] = ulp(self.hi, dtype)
        return cache[dtype]

    @classmethod
    def from_json(cls, obj: dict[str, Any], need_lo: bool = True) -> ExactArray:
        shape = tuple(obj["shape"])
        hi, lo = decode_exact(obj["value"], need_lo)
        bounds = None
        if "lo" in obj:
            bounds = (decode_exact(obj["lo"])[0].reshape(shape), decode_exact(obj["hi"])[0].reshape(shape))
        return cls(shape, obj["value"], hi.reshape(shape), lo.reshape(shape), bounds)


@dataclass
class FixtureCase:
    """One case as the harness sees it."""

    loss: str
    file: str
    index: int
    name: str
    dtype: str
    tags: tuple[str, ...]
    options: dict[str, Any]
    given_options: tuple[str, ...]
    inputs: dict[str, np.ndarray]
    invalid: dict[str, str] | None
    raw: dict[str, Any] = field(repr=False)

    @classmethod
    def from_record(
        cls, loss: str, file: str, record: dict[str, Any], inputs: dict[str, np.ndarray] | None = None
    ) -> FixtureCase:
        """A case from its JSON record (``inputs``: already decoded, else decoded here)."""
        return cls(
            loss=loss,
            file=file,
            index=record["index"],
            name=record["name"],
            dtype=record["dtype"],
            tags=tuple(record["tags"]),
            options=record["options"],
            given_options=tuple(record["given_options"]),
            inputs=inputs if inputs is not None else {k: decode_array(v) for k, v in record["inputs"].items()},
            invalid=record.get("invalid"),
            raw=record,
        )

    @property
    def short_loss(self) -> str:
        return self.loss.rsplit(".", 1)[-1]

    @property
    def options_label(self) -> str:
        """The options the case sets (the rest are documented defaults)."""
        return ",".join(f"{k}={_short(self.options[k])}" for k in self.given_options)

    @property
    def regime(self) -> str:
        return self.tags[0]

    @property
    def test_id(self) -> str:
        return f"{self.short_loss}[{self.options_label}]-{self.dtype}-{self.regime}-{self.index:03d}"

    @cached_property
    def expected(self) -> ExactArray:
        e = self.raw["expected"]
        return ExactArray.from_json({"shape": e["shape"], "value": e["value"]}, self.dtype == "float64")

    @cached_property
    def scale(self) -> np.ndarray:
        return np.array([float(s) for s in self.raw["expected"]["scale"]]).reshape(self.expected.shape)

    @property
    def n_terms(self) -> int:
        return int(self.raw["expected"]["n_terms"])

    @cached_property
    def cotangent(self) -> np.ndarray:
        return decode_array(self.raw["cotangent"])

    @cached_property
    def vjp(self) -> dict[str, ExactArray]:
        return {k: ExactArray.from_json(v, self.dtype == "float64") for k, v in self.raw.get("vjp", {}).items()}


def _short(v: Any) -> str:
    if isinstance(v, list):
        return "[" + ",".join(_short(x) for x in v) + "]"
    return str(v)


def decode_array(obj: dict[str, Any]) -> np.ndarray:
    dtype = obj["dtype"]
    if dtype == "int64":
        return np.array(obj["data"], dtype=np.int64).reshape(obj["shape"])
    # strings are shortest round-trip decimals of the dtype's values: parse as float64
    # (correctly rounded, and exact for them), then narrow (exact: representable)
    return np.array([float(x) for x in obj["data"]], dtype=np.float64).astype(dtype).reshape(obj["shape"])


# ----------------------------------------------------------------- loading


def _read_json(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise FixtureError(f"{path.name}: cannot be read: {err.strerror}") from None
    except UnicodeDecodeError as err:
        raise FixtureError(f"{path.name}: not valid JSON (not UTF-8 text: byte {err.start} is {err.object[err.start]:#04x})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        what = "truncated" if err.pos >= len(text.rstrip()) - 1 else "not valid JSON"
        raise FixtureError(f"{path.name}: {what} (line {err.lineno}, column {err.colno}: {err.msg})") from None


def load_manifest(directory: Path) -> dict[str, Any]:
    directory = Path(directory)
    if not directory.is_dir():
        raise FixtureError(
            f"fixtures directory {directory} does not exist: run from the lossconf checkout, or point to it "
            "with --fixtures DIR (pytest: --fixtures-dir) or LOSSCONF_FIXTURES, or create it with "
            "`lossconf fixtures generate --out DIR`"
        )
    path = directory / MANIFEST_FILE
    if not path.exists():
        raise FixtureError(f"{MANIFEST_FILE}: missing from {directory} (run `lossconf fixtures generate`)")
    manifest = _read_json(path)
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise FixtureError(f"{MANIFEST_FILE}: has no 'files' table")
    return manifest


def manifest_digest(directory: Path) -> str:
    return str(load_manifest(directory).get("digest", ""))


def load_file(path: Path, *, check_digest: str | None = None) -> list[FixtureCase]:
    data_bytes = path.read_bytes()
    if check_digest is not None and hashlib.sha256(data_bytes).hexdigest() != check_digest:
        raise FixtureError(f"{path.name}: SHA-256 differs from {MANIFEST_FILE} (the file was changed)")
    doc = _read_json(path)
    if not isinstance(doc, dict) or doc.get("format") != "lossconf-fixtures":
        raise FixtureError(f"{path.name}: not a lossconf fixtures file")
    if doc.get("format_version") != 1:
        raise FixtureError(f"{path.name}: format_version {doc.get('format_version')!r}; this harness reads 1")
    if not isinstance(doc.get("loss"), str) or not isinstance(doc.get("cases"), list):
        raise FixtureError(f"{path.name}: malformed: no 'loss' name or no 'cases' list")
    try:
        decoded = _decode_cases(doc["cases"])
        out = [FixtureCase.from_record(doc["loss"], path.name, c, inputs) for c, (inputs, _) in zip(doc["cases"], decoded)]
    except Exception:  # malformed somewhere: the per-case code below names the case
        pass
    else:
        for case, (_, exact) in zip(out, decoded):
            case.__dict__.update(exact)  # the cached properties, already decoded
        return out
    out = []
    for i, c in enumerate(doc["cases"]):
        if not isinstance(c, dict):
            raise FixtureError(f"{path.name}: case {i}: malformed: not a JSON object")
        try:
            out.append(FixtureCase.from_record(doc["loss"], path.name, c))
        except (KeyError, TypeError, ValueError) as err:
            raise FixtureError(f"{path.name}: case {c.get('index', '?')} ({c.get('name', '?')}): malformed: {err!r}") from None
    return out


def _decode_cases(cases: list[Any]) -> list[tuple[dict[str, np.ndarray], dict[str, Any]]]:
    """Every case's inputs and (valid cases) exact values -- expected value, scale,
    cotangent, every VJP value and kink bounds -- decoded in one pass over the file, with
    each exact value's ULP per dtype: the same arrays as the per-case code
    (:func:`decode_array`, :func:`decode_exact`, the cached properties of
    :class:`FixtureCase`), far fewer calls. Raises on anything malformed (the caller then
    falls back to the per-case code, whose messages name the case)."""
    from .compare import ulp

    texts: list[str] = []
    at = 0

    def seg(data: list[str]) -> tuple[int, int]:
        nonlocal at
        if not isinstance(data, list):
            raise TypeError("not a list")
        texts.extend(data)
        start, at = at, at + len(data)
        return start, at

    plans = []
    for c in cases:
        if not isinstance(c, dict):
            raise TypeError("case is not an object")
        valid = c.get("invalid") is None and "expected" in c
        inputs = {}
        for k, v in c["inputs"].items():
            if v["dtype"] == "int64":
                inputs[k] = ("int", np.array(v["data"], dtype=np.int64).reshape(v["shape"]))
            else:
                inputs[k] = ("float", seg(v["data"]), v["dtype"], v["shape"])
        exact = None
        if valid:
            dtype = c["dtype"]
            e = c["expected"]
            vjp = {}
            for k, v in c.get("vjp", {}).items():
                b = (seg(v["lo"]), seg(v["hi"])) if "lo" in v else None
                vjp[k] = (tuple(v["shape"]), v["value"], seg(v["value"]), b)
            ct = c["cotangent"] if "cotangent" in c else None
            exact = (
                dtype,
                (tuple(e["shape"]), e["value"], seg(e["value"]), None),
                seg(e["scale"]),
                None if ct is None else (seg(ct["data"]), ct["dtype"], ct["shape"]) if ct["dtype"] != "int64" else ct,
                vjp,
            )
        plans.append((inputs, exact))
    values = np.array([float(t) for t in texts], dtype=np.float64)
    by_dtype: dict[str, list[ExactArray]] = {}
    out = []
    with localcontext() as ctx:
        ctx.prec = 60

        def exact_array(spec: tuple, dtype: str) -> ExactArray:
            shape, text, (a, b), bounds = spec
            hi = values[a:b].copy()
            lo = np.zeros(b - a)
            if dtype == "float64":
                for i, t in enumerate(text):
                    h = hi[i]
                    if h == h and h != 0 and h not in (float("inf"), float("-inf")):
                        lo[i] = float(Decimal(t) - Decimal(float(h)))
            bnds = None
            if bounds is not None:
                (la, lb), (ha, hb) = bounds
                bnds = (values[la:lb].copy().reshape(shape), values[ha:hb].copy().reshape(shape))
            arr = ExactArray(shape, text, hi.reshape(shape), lo.reshape(shape), bnds)
            by_dtype.setdefault(dtype, []).append(arr)
            return arr

        for inputs_plan, exact in plans:
            inputs = {}
            for k, p in inputs_plan.items():
                if p[0] == "int":
                    inputs[k] = p[1]
                else:
                    (a, b), dt, shape = p[1], p[2], p[3]
                    inputs[k] = values[a:b].astype(dt).reshape(shape)
            cached: dict[str, Any] = {}
            if exact is not None:
                dtype, espec, (sa, sb), ct, vjp = exact
                cached["expected"] = expected = exact_array(espec, dtype)
                cached["scale"] = values[sa:sb].copy().reshape(expected.shape)
                if ct is not None:
                    if isinstance(ct, dict):
                        cached["cotangent"] = decode_array(ct)
                    else:
                        (a, b), dt, shape = ct
                        cached["cotangent"] = values[a:b].astype(dt).reshape(shape)
                cached["vjp"] = {k: exact_array(v, dtype) for k, v in vjp.items()}
            out.append((inputs, cached))
    for dtype, arrays in by_dtype.items():
        if not arrays:
            continue
        units = ulp(np.concatenate([a.hi.ravel() for a in arrays]), dtype)
        at = 0
        for a in arrays:
            n = a.hi.size
            a.__dict__.setdefault("_ulp", {})[dtype] = units[at : at + n].reshape(a.hi.shape)
            at += n
    return out


def load(directory: Path | None = None, *, losses: set[str] | None = None) -> list[FixtureCase]:
    """Every case of the fixtures directory (digests checked), optionally for some losses
    only (matched by id or short name)."""
    directory = Path(directory or default_dir())
    manifest = load_manifest(directory)
    cases: list[FixtureCase] = []
    for name, digest in sorted(manifest["files"].items()):
        path = directory / name
        if not path.exists():
            raise FixtureError(f"{name}: listed in {MANIFEST_FILE} but missing")
        cases.extend(load_file(path, check_digest=digest))
    if losses is not None:
        wanted = {x.lower() for x in losses}
        cases = [c for c in cases if c.loss.lower() in wanted or c.short_loss.lower() in wanted]
    return cases


# ----------------------------------------------------------------- verification


@dataclass
class Problem:
    file: str
    message: str
    case: str | None = None

    def __str__(self) -> str:
        where = self.file + (f" case {self.case}" if self.case else "")
        return f"{where}: {self.message}"


def verify(directory: Path | None = None) -> list[Problem]:
    """Check a fixtures directory: every file of the manifest present with its digest, no
    extra files, every file valid JSON that matches the schema, and every array's data
    consistent with its shape and dtype. Returns the problems found (empty: all good)."""
    import jsonschema

    directory = Path(directory or default_dir())
    problems: list[Problem] = []
    try:
        manifest = load_manifest(directory)
    except FixtureError as err:
        return [Problem(MANIFEST_FILE, str(err).split(": ", 1)[-1])]
    listed = dict(manifest["files"])
    files_digest = hashlib.sha256(json.dumps(dict(sorted(listed.items())), sort_keys=True).encode()).hexdigest()
    if manifest.get("digest") != files_digest:
        problems.append(Problem(MANIFEST_FILE, "its digest does not match its file list (the manifest was edited)"))
    present = {p.name for p in directory.glob("*.json")} - NON_FIXTURE_FILES
    for extra in sorted(present - set(listed)):
        problems.append(Problem(extra, f"extra file, not listed in {MANIFEST_FILE}"))
    schema_path = directory / SCHEMA_FILE
    if not schema_path.exists():
        problems.append(Problem(SCHEMA_FILE, "missing"))
        return problems
    validator = jsonschema.Draft202012Validator(json.loads(schema_path.read_text()))
    for name, digest in sorted(listed.items()):
        path = directory / name
        if not path.exists():
            problems.append(Problem(name, f"missing (listed in {MANIFEST_FILE})"))
            continue
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != digest:
            changed = _changed_cases(data, manifest.get("cases", {}).get(name))
            if changed:
                for case in changed:
                    problems.append(Problem(name, f"changed: SHA-256 of this case differs from {MANIFEST_FILE}", case))
            else:
                problems.append(Problem(name, f"changed: SHA-256 differs from {MANIFEST_FILE}"))
        try:
            doc = _read_json(path)
        except FixtureError as err:
            problems.append(Problem(name, str(err).split(": ", 1)[-1], _case_at_error(data, err)))
            continue
        for err in sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))[:20]:
            path_ = list(err.absolute_path)
            case = None
            if len(path_) >= 2 and path_[0] == "cases" and isinstance(doc.get("cases"), list):
                c = doc["cases"][path_[1]]
                case = f"{path_[1]} ({c.get('name', '?') if isinstance(c, dict) else '?'})"
                path_ = path_[2:]
            problems.append(Problem(name, f"schema: {'/'.join(map(str, path_)) or '(top)'}: {err.message[:200]}", case))
        if isinstance(doc, dict) and isinstance(doc.get("cases"), list):
            problems.extend(_consistency(name, doc["cases"]))
    return problems


_NAME = re.compile(rb'"name":"((?:[^"\\]|\\.)*)"')


def case_lines(data: bytes) -> list[bytes]:
    """The case lines of a fixture file as the generator writes it (one case per line,
    between the header line and the closing line), without their trailing commas."""
    lines = data.split(b"\n")
    return [ln[:-1] if ln.endswith(b",") else ln for ln in lines[1:] if ln.startswith(b"{")]


def case_digests(data: bytes) -> list[str]:
    return [hashlib.sha256(ln).hexdigest() for ln in case_lines(data)]


def _label(index: int, line: bytes) -> str:
    m = _NAME.search(line)
    return f"{index} ({m.group(1).decode('utf-8', 'replace') if m else '?'})"


def _changed_cases(data: bytes, digests: list[str] | None) -> list[str]:
    """Which cases of a changed file differ from the manifest's per-case digests."""
    if not digests:
        return []
    lines = case_lines(data)
    out = [_label(i, ln) for i, (ln, d) in enumerate(zip(lines, digests)) if hashlib.sha256(ln).hexdigest() != d]
    if len(lines) != len(digests):
        out.append(f"{min(len(lines), len(digests))} (cases {len(digests)} listed, {len(lines)} present)")
    return out


def _case_at_error(data: bytes, err: FixtureError) -> str | None:
    """The case on the line where a JSON parse error (or a truncation) was found."""
    m = re.search(r"\(line (\d+),", str(err))
    if not m:
        return None
    lines = data.split(b"\n")
    lineno = min(int(m.group(1)), len(lines))
    line = lines[lineno - 1]
    if lineno < 2 or not line.startswith(b"{"):
        return None
    return _label(lineno - 2, line)


def _consistency(name: str, cases: list[Any]) -> list[Problem]:
    problems = []
    seen: set[str] = set()
    for i, c in enumerate(cases):
        if not isinstance(c, dict):
            continue
        label = f"{i} ({c.get('name', '?')})"
        if c.get("index") != i:
            problems.append(Problem(name, f"index {c.get('index')!r} out of order (expected {i})", label))
        if c.get("name") in seen:
            problems.append(Problem(name, "duplicate case name", label))
        seen.add(c.get("name"))
        arrays = dict((c.get("inputs") or {}).items())
        if "cotangent" in c:
            arrays["cotangent"] = c["cotangent"]
        for key, arr in arrays.items():
            if not isinstance(arr, dict) or not _is_shape(arr.get("shape")) or not isinstance(arr.get("data"), list):
                continue  # the schema reports it
            if int(np.prod(arr["shape"], dtype=np.int64)) != len(arr["data"]):
                problems.append(Problem(name, f"{key}: {len(arr['data'])} values for shape {arr['shape']}", label))
            elif arr.get("dtype") in ("float16", "float32", "float64"):
                for s in arr["data"]:
                    if not isinstance(s, str) or s in ("nan", "inf", "-inf"):
                        continue
                    try:
                        narrowed = np.float64(float(s)).astype(arr["dtype"])
                    except ValueError:
                        problems.append(Problem(name, f"{key}: {s[:60]!r} is not a number", label))
                        break
                    if np.format_float_scientific(narrowed, unique=True, trim="-") != s:
                        problems.append(
                            Problem(name, f"{key}: {s} is not the shortest round-trip decimal of a {arr['dtype']} value", label)
                        )
                        break
        exp = c.get("expected")
        if isinstance(exp, dict) and _is_shape(exp.get("shape")):
            n = int(np.prod(exp["shape"], dtype=np.int64))
            for key in ("value", "rounded", "scale"):
                if isinstance(exp.get(key), list) and len(exp[key]) != n:
                    problems.append(Problem(name, f"expected {key}: {len(exp[key])} values for shape {exp['shape']}", label))
    return problems


def _is_shape(shape: Any) -> bool:
    return isinstance(shape, list) and all(isinstance(n, int) and not isinstance(n, bool) for n in shape)
