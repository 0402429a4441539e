"""Loading and verifying golden fixtures. Fixtures are data: they are read with ``json``
only, checked against ``fixtures/schema.json`` and the SHA-256 digests of
``MANIFEST.json``, and nothing in them is ever executed.

Exact values are decoded into double-double pairs (``hi`` = the float64 nearest the exact
value, ``lo`` = the float64 nearest the remainder), so errors of a float64 result are
measured well beyond float64's own precision without any arbitrary-precision library.

A file is decoded in one pass (:func:`decode`: every number string parsed once) into a
:class:`FileData` its cases share: their inputs are read-only views of its numbers, and
their exact values (:class:`ExactArray`) are built only when asked for. What a decoding
produced is kept in the decoded-fixtures cache (:mod:`conformance.fixture_cache`), keyed
by the file's SHA-256, so that the next run skips it.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal, localcontext
from functools import cached_property
from pathlib import Path
from typing import Any, overload

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
    #: a VJP's term scale per element (``vjp.<input>.scale``), where the fixture has it
    scale: np.ndarray | None = None
    #: roundings per term of its formula (``roundings``), where the fixture has it
    roundings: int | None = None

    def ulp(self, dtype: str) -> np.ndarray:
        """The dtype's ULP at each exact value (computed once)."""
        cache = self.__dict__.setdefault("_ulp", {})
        if dtype not in cache:
            from .harness.compare import ulp

            cache[dtype] = ulp(self.hi, dtype)
        return cache[dtype]

    @classmethod
    def from_json(cls, obj: dict[str, Any], need_lo: bool = True) -> ExactArray:
        shape = tuple(obj["shape"])
        hi, lo = decode_exact(obj["value"], need_lo)
        bounds = None
        if "lo" in obj:
            bounds = (decode_exact(obj["lo"])[0].reshape(shape), decode_exact(obj["hi"])[0].reshape(shape))
        scale = np.array([float(s) for s in obj["scale"]]).reshape(shape) if "scale" in obj else None
        return cls(shape, obj["value"], hi.reshape(shape), lo.reshape(shape), bounds, scale, obj.get("roundings"))


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
    note: str | None = None
    #: the JSON record the case was built from (live cases); file cases have ``source``
    record: dict[str, Any] | None = field(default=None, repr=False)
    #: a fixture file's case: its file's decoded numbers, where its exact values are
    #: (see :class:`Decoded`) and its first row of the file's ``checks`` table
    source: tuple[FileData, list[Any], int] | None = field(default=None, repr=False)

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
            note=record.get("note"),
            record=record,
        )

    @property
    def raw(self) -> dict[str, Any]:
        """The case's JSON record, as its file has it."""
        if self.record is None and self.source is not None:
            self.record = self.source[0].record(self.index)
        return self.record if self.record is not None else {}

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
        if self.source is not None:
            data, (shape, a, b, *_), _ = self.source
            return data.exact(shape, a, b, None, -1, self.source[1][9])
        e = self.raw["expected"]
        return ExactArray.from_json({k: e[k] for k in ("shape", "value", "roundings") if k in e}, self.dtype == "float64")

    @cached_property
    def checks(self) -> tuple[str, ...]:
        """The checks of the case, in order: ``invalid`` for an invalid-input case; else
        ``value``, ``shape``, ``grad:NAME`` per differentiable input, ``repeat``, ``inputs``."""
        return checks_of(self.invalid is None, self.vjp_inputs)

    @cached_property
    def vjp_inputs(self) -> tuple[str, ...]:
        """The inputs with an exact VJP, in the fixture's order (a fixture file's case has
        it from its compact description, set when the file is loaded)."""
        return tuple(self.vjp) if self.invalid is None else ()

    @cached_property
    def exact_rows(self) -> dict[str | None, int]:
        """A file case's rows of its file's ``checks`` table: ``None`` for the value, the
        input's name for its VJP (empty for other cases)."""
        if self.source is None:
            return {}
        row = self.source[2]
        return {None: row, **{name: row + 1 + i for i, name in enumerate(self.vjp_inputs)}}

    @cached_property
    def expected_shape(self) -> tuple[int, ...]:
        """The documented output shape (a fixture file's case has it from its compact
        description, set when the file is loaded)."""
        return self.expected.shape

    @cached_property
    def scale(self) -> np.ndarray:
        if self.source is not None:
            data, (shape, a, b, _, scale_at, *_), _ = self.source
            return data.values[scale_at : scale_at + b - a].reshape(shape)
        return np.array([float(s) for s in self.raw["expected"]["scale"]]).reshape(self.expected.shape)

    @cached_property
    def n_terms(self) -> int:
        if self.source is not None:
            return int(self.source[1][5])
        return int(self.raw["expected"]["n_terms"])

    @cached_property
    def cotangent(self) -> np.ndarray:
        if self.source is not None:
            return self.source[0].array(self.source[1][8])
        return decode_array(self.raw["cotangent"])

    @cached_property
    def vjp(self) -> dict[str, ExactArray]:
        if self.source is not None:
            data, exact, _ = self.source
            return {k: data.exact(shape, a, b, None if la < 0 else (la, ha), sa, r) for k, shape, a, b, la, ha, sa, r in exact[7]}
        return {k: ExactArray.from_json(v, self.dtype == "float64") for k, v in self.raw.get("vjp", {}).items()}


def checks_of(valid: bool, vjp_inputs: tuple[str, ...]) -> tuple[str, ...]:
    """The checks of a valid or invalid-input case with these differentiable inputs."""
    if not valid:
        return ("invalid",)
    return ("value", "shape", *(f"grad:{n}" for n in vjp_inputs), "repeat", "inputs")


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
        data = path.read_bytes()
    except OSError as err:
        raise FixtureError(f"{path.name}: cannot be read: {err.strerror}") from None
    return _parse_json(path.name, data)


def _parse_json(name: str, data: bytes) -> Any:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise FixtureError(f"{name}: not valid JSON (not UTF-8 text: byte {err.start} is {err.object[err.start]:#04x})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        # the text ends early: at its end, or inside a string (json reports where it began)
        ends = err.pos >= len(text.rstrip()) - 1 or err.msg.startswith("Unterminated string")
        what = "truncated" if ends else "not valid JSON"
        raise FixtureError(f"{name}: {what} (line {err.lineno}, column {err.colno}: {err.msg})") from None


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


def load_file(path: Path, *, check_digest: str | None = None, cache: bool = True) -> list[FixtureCase]:
    """The cases of one fixture file. With ``check_digest`` the file's SHA-256 must equal
    it. With ``cache`` the file's decoded numbers are taken from (or written to) the
    decoded-fixtures cache (:mod:`conformance.fixture_cache`), keyed by that SHA-256."""
    from . import fixture_cache

    try:
        data = path.read_bytes()
    except OSError as err:
        raise FixtureError(f"{path.name}: cannot be read: {err.strerror}") from None
    digest = hashlib.sha256(data).hexdigest()
    if check_digest is not None and digest != check_digest:
        raise FixtureError(f"{path.name}: SHA-256 differs from {MANIFEST_FILE} (the file was changed)")
    use_cache = cache and fixture_cache.enabled()
    if use_cache:
        decoded = fixture_cache.read(path, digest)
        if decoded is not None:
            try:
                return _build(path, decoded)
            except Exception:  # an entry this harness cannot use: decode the file again
                pass
    doc = _parse_json(path.name, data)
    if not isinstance(doc, dict) or doc.get("format") != "lossconf-fixtures":
        raise FixtureError(f"{path.name}: not a lossconf fixtures file")
    if doc.get("format_version") != 1:
        raise FixtureError(f"{path.name}: format_version {doc.get('format_version')!r}; this harness reads 1")
    if not isinstance(doc.get("loss"), str) or not isinstance(doc.get("cases"), list):
        raise FixtureError(f"{path.name}: malformed: no 'loss' name or no 'cases' list")
    try:
        decoded = decode(doc)
        out = _build(path, decoded)
    except Exception:  # malformed somewhere: the per-case code below names the case
        pass
    else:
        if use_cache:
            fixture_cache.write(path, digest, decoded)
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


@dataclass
class Decoded:
    """One fixture file with its numbers decoded in one pass.

    ``texts`` holds every number string of the file as it is written, ``values`` each of
    them parsed (the correctly rounded float64), ``lo`` the double-double low part of each
    exact value of a float64 case (0 elsewhere: float16 and float32 errors need only the
    float64 ``hi``). ``cases`` describes each case compactly, every list of numbers given
    by its ``[start, end)`` in ``texts``::

        [index, name, dtype, tags, options, given_options, invalid or None, note or None,
         inputs: [[name, dtype, shape, start, end] or [name, "int64", shape, data]],
         exact or None: [shape, start, end, rounded_start, scale_start, n_terms, condition,
                         vjp: [[name, shape, start, end, lo_start or -1, hi_start or -1,
                                scale_start or -1, roundings or None]],
                         cotangent or None: [dtype, shape, start, end] or ["int64", shape, data],
                         roundings or None]]
    """

    loss: str
    cases: list[list[Any]]
    texts: Sequence[str]
    values: np.ndarray
    lo: np.ndarray


def decode(doc: dict[str, Any]) -> Decoded:
    """A fixture document's numbers, decoded (raises on anything malformed)."""
    texts: list[str] = []
    lo_spans: list[tuple[int, int]] = []

    def seg(data: list[str]) -> int:
        if not isinstance(data, list):
            raise TypeError("not a list")
        texts.extend(data)
        return len(texts) - len(data)

    def array(name: str | None, v: dict[str, Any]) -> list[Any]:
        head = [] if name is None else [name]
        if v["dtype"] == "int64":
            return [*head, "int64", list(v["shape"]), list(v["data"])]
        start = seg(v["data"])
        return [*head, v["dtype"], list(v["shape"]), start, len(texts)]

    cases = []
    for c in doc["cases"]:
        if not isinstance(c, dict):
            raise TypeError("case is not an object")
        exact = None
        inputs = [array(k, v) for k, v in c["inputs"].items()]
        if c.get("invalid") is None and "expected" in c:
            e, f64 = c["expected"], c["dtype"] == "float64"
            start = seg(e["value"])
            if f64:
                lo_spans.append((start, len(texts)))
            if not len(e["rounded"]) == len(e["scale"]) == len(texts) - start:
                raise ValueError("expected: value, rounded and scale differ in length")
            exact = [list(e["shape"]), start, len(texts), seg(e["rounded"]), seg(e["scale"]), e["n_terms"], e["condition"], []]
            for k, v in c.get("vjp", {}).items():
                start = seg(v["value"])
                end = len(texts)
                if f64:
                    lo_spans.append((start, end))
                la = ha = -1
                if "lo" in v:
                    la, ha = seg(v["lo"]), seg(v["hi"])
                    if not len(v["lo"]) == len(v["hi"]) == end - start:
                        raise ValueError(f"vjp {k}: value, lo and hi differ in length")
                sa = seg(v["scale"]) if "scale" in v else -1
                if sa >= 0 and len(texts) - sa != end - start:
                    raise ValueError(f"vjp {k}: value and scale differ in length")
                exact[7].append([k, list(v["shape"]), start, end, la, ha, sa, v.get("roundings")])
            exact.append(array(None, c["cotangent"]) if "cotangent" in c else None)
            exact.append(e.get("roundings"))
        cases.append([
            c["index"], c["name"], c["dtype"], list(c["tags"]), c["options"], list(c["given_options"]),
            c.get("invalid"), c.get("note"), inputs, exact,
        ])
    values = np.array([float(t) for t in texts], dtype=np.float64)
    lo = np.zeros(len(texts))
    with localcontext() as ctx:
        ctx.prec = 60
        for a, b in lo_spans:
            for i in range(a, b):
                h = values[i]
                # below float64's range (hi == 0; exponents may exceed what Decimal parses)
                # or beyond it (hi == +-inf) the remainder cannot matter for any dtype
                if h == h and h != 0 and h not in (float("inf"), float("-inf")):
                    lo[i] = float(Decimal(texts[i]) - Decimal(float(h)))
    return Decoded(doc["loss"], cases, texts, values, lo)


class Texts(Sequence[str]):
    """A file's number strings, cut on demand from their newline-joined UTF-8 text (what
    the decoded-fixtures cache stores), so a run does not split them all."""

    def __init__(self, blob: bytes, ends: np.ndarray | None = None) -> None:
        """``ends``: where each string ends in ``blob`` (found here when not given)."""
        self.blob = blob
        if ends is None:
            ends = np.flatnonzero(np.frombuffer(blob, dtype=np.uint8) == 10)
            ends = np.append(ends, len(blob)) if blob else ends
        self.ends = ends
        self.starts = np.concatenate([[0], ends[:-1] + 1]) if len(ends) else ends

    def __len__(self) -> int:
        return len(self.ends)

    @overload
    def __getitem__(self, i: int) -> str: ...
    @overload
    def __getitem__(self, i: slice) -> list[str]: ...
    def __getitem__(self, i: int | slice) -> str | list[str]:
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        return self.blob[int(self.starts[i]) : int(self.ends[i])].decode("utf-8")

    def many(self, positions: np.ndarray) -> list[str]:
        """The strings at many positions at once."""
        blob = self.blob
        return [blob[a:b].decode("utf-8") for a, b in zip(self.starts[positions].tolist(), self.ends[positions].tolist())]


class FileData:
    """A fixture file's decoded numbers, shared by its cases: their arrays are read-only
    views of these (inputs: of the numbers converted to the input's dtype)."""

    def __init__(self, path: Path, decoded: Decoded) -> None:
        self.path = path
        self.values = decoded.values
        self.lo = decoded.lo
        self.texts = decoded.texts
        self.values.flags.writeable = False
        self.lo.flags.writeable = False
        self._as: dict[str, np.ndarray] = {}
        #: one row per value or VJP of a valid case, in file order: (start, end, dtype,
        #: scale start or -1, kink lower-bound start or -1, upper-bound start or -1,
        #: n_terms, shape, roundings per term or None)
        self.checks: list[tuple[int, int, str, int, int, int, int, tuple[int, ...], int | None]] = []
        #: derived data a consumer keeps with the file (e.g. the batched comparison's layout)
        self.derived: dict[str, Any] = {}

    def converted(self, dtype: str) -> np.ndarray:
        """Every number of the file as ``dtype`` (exact for the inputs, written as that dtype's values)."""
        v = self._as.get(dtype)
        if v is None:
            with np.errstate(over="ignore", invalid="ignore"):
                v = self._as[dtype] = self.values.astype(dtype)
            v.flags.writeable = False
        return v

    def array(self, spec: list[Any]) -> np.ndarray:
        """An input or cotangent array from its compact spec (``[dtype, shape, start, end]``;
        a size that does not fit the shape raises)."""
        if spec[0] == "int64":
            return np.array(spec[2], dtype=np.int64).reshape(spec[1])
        dtype, shape, a, b = spec
        return self.converted(dtype)[a:b].reshape(shape)

    def exact(
        self, shape: list[int], a: int, b: int, bounds: tuple[int, int] | None, scale: int = -1, roundings: int | None = None
    ) -> ExactArray:
        shape_ = tuple(shape)
        arr = ExactArray(
            shape_, self.texts[a:b], self.values[a:b].reshape(shape_), self.lo[a:b].reshape(shape_),
            None if bounds is None else (
                self.values[bounds[0] : bounds[0] + b - a].reshape(shape_),
                self.values[bounds[1] : bounds[1] + b - a].reshape(shape_),
            ),
            None if scale < 0 else self.values[scale : scale + b - a].reshape(shape_),
            roundings,
        )
        return arr

    def texts_at(self, positions: np.ndarray) -> list[str]:
        """The number strings at ``positions`` (as the file writes them)."""
        texts = self.texts
        if isinstance(texts, Texts):
            return texts.many(positions)
        return [texts[i] for i in positions.tolist()]

    def record(self, index: int) -> dict[str, Any]:
        """Case ``index``'s JSON record, read from the file again."""
        return json.loads(case_lines(self.path.read_bytes())[index])


def _build(path: Path, d: Decoded) -> list[FixtureCase]:
    """The cases of a decoded file (shapes checked against the numbers here, so a
    malformed file is caught at loading, not in the middle of a run). Each valid case's
    exact results get consecutive rows of the file's ``checks`` table: its value, then
    its VJPs in the file's order."""
    data = FileData(path, d)
    file = path.name
    out = []
    table: list[tuple[int, int, str, int, int, int, int, tuple[int, ...], int | None]] = []
    for index, name, dtype, tags, options, given, invalid, note, inputs, exact in d.cases:
        arrays = {spec[0]: data.array(spec[1:]) for spec in inputs}
        case = FixtureCase(d.loss, file, index, name, dtype, tuple(tags), options, tuple(given), arrays, invalid, note)
        if exact is not None:
            shape, a, b = exact[0], exact[1], exact[2]
            if b - a != math.prod(shape):
                raise ValueError(f"case {index}: {b - a} expected values for shape {shape}")
            case.source = (data, exact, len(table))
            # what the case's properties would otherwise work out on first use (set here:
            # a cached_property's first access takes a lock, and every run reads these)
            known = case.__dict__
            known["expected_shape"] = shape_t = tuple(shape)
            known["vjp_inputs"] = vjp_inputs = tuple([v[0] for v in exact[7]])
            known["checks"] = checks_of(invalid is None, vjp_inputs)
            table.append((a, b, dtype, exact[4], -1, -1, exact[5], shape_t, exact[9]))
            for _, vshape, va, vb, la, ha, sa, r in exact[7]:
                if vb - va != math.prod(vshape):
                    raise ValueError(f"case {index}: {vb - va} VJP values for shape {vshape}")
                table.append((va, vb, dtype, sa, la, ha, exact[5], tuple(vshape), r))
            if exact[8] is not None:
                case.__dict__["cotangent"] = data.array(exact[8])
        out.append(case)
    data.checks = table
    return out


def load(directory: Path | None = None, *, losses: set[str] | None = None, cache: bool = True) -> list[FixtureCase]:
    """Every case of the fixtures directory (digests checked), optionally for some losses
    only (matched by id or short name); ``cache``: through the decoded-fixtures cache."""
    directory = Path(directory or default_dir())
    manifest = load_manifest(directory)
    cases: list[FixtureCase] = []
    for name, digest in sorted(manifest["files"].items()):
        path = directory / name
        if not path.exists():
            raise FixtureError(f"{name}: listed in {MANIFEST_FILE} but missing")
        cases.extend(load_file(path, check_digest=digest, cache=cache))
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
