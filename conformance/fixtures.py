"""Loading and verifying golden fixtures. Fixtures are data: they are read with ``json``
only, checked against the SHA-256 digests of ``MANIFEST.json`` (and, by ``verify``,
against the packaged schema), and nothing in them is ever executed.

Every read is bounded and safe (:func:`read_file`): a plain file name listed in the
manifest, a regular file inside the fixtures folder (never a FIFO, a device or a link out
of the folder), at most :data:`MAX_FILE_BYTES`; JSON without NaN/Infinity tokens, nesting
within the parser's limit, number strings of at most :data:`MAX_NUMBER_CHARS` characters;
every field the harness uses checked for its type, dtype and count. Anything else is a
:class:`FixtureError` naming the file and the case.

Exact values are decoded into double-double pairs (``hi`` = the float64 nearest the exact
value, ``lo`` = the float64 nearest the remainder), so errors of a float64 result are
measured well beyond float64's own precision without any arbitrary-precision library.

A file is decoded in one pass (:func:`decode`: every number string parsed once) into a
:class:`FileData` its cases share: their inputs are read-only views of its numbers, and
their exact values (:class:`ExactArray`) are built only when asked for. Every run decodes
the files it was given anew: nothing decoded is kept between runs.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal, localcontext
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

SCHEMA_FILE = "schema.json"
#: the fixture format this harness reads (2: lists of number strings may hold runs)
FORMAT_VERSION = 2
MANIFEST_FILE = "MANIFEST.json"
NON_FIXTURE_FILES = {SCHEMA_FILE, MANIFEST_FILE}


class FixtureError(Exception):
    """A missing, corrupt or inconsistent fixtures directory; the message names the file
    (and the case, where one is at fault): ``FILE: [case INDEX (NAME): ]DETAIL``."""

    def __init__(self, message: str, *, file: str | None = None, case: str | None = None, detail: str | None = None) -> None:
        super().__init__(message)
        self.file = file if file is not None else message.split(": ", 1)[0]
        self.case = case
        self.detail = detail if detail is not None else message.split(": ", 1)[-1]


def _error(file: str, detail: str, case: str | None = None) -> FixtureError:
    """A :class:`FixtureError` about ``file`` (and ``case``, its label ``INDEX (NAME)``)."""
    return FixtureError(f"{file}: {'case ' + case + ': ' if case else ''}{detail}", file=file, case=case, detail=detail)


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
        n = math.prod(shape)
        value = expand_runs(obj["value"], "value", n)
        hi, lo = decode_exact(value, need_lo)
        bounds = None
        if "lo" in obj:
            bounds = (decode_exact(expand_runs(obj["lo"], "lo", n))[0].reshape(shape),
                      decode_exact(expand_runs(obj["hi"], "hi", n))[0].reshape(shape))
        scale = np.array([float(s) for s in expand_runs(obj["scale"], "scale", n)]).reshape(shape) if "scale" in obj else None
        return cls(shape, value, hi.reshape(shape), lo.reshape(shape), bounds, scale, obj.get("roundings"))


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
    #: an invalid-input case's valid control case (``invalid.control``, set when its file is
    #: loaded): the invalid-input check passes only if the backend raises on this case and
    #: returns on the control (a backend that raises on every call rejects nothing)
    control: FixtureCase | None = field(default=None, repr=False, compare=False)
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
        return np.array([float(s) for s in expand_runs(self.raw["expected"]["scale"], "expected.scale")]).reshape(self.expected.shape)

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

    @cached_property
    def hvp(self) -> dict[str, ExactArray]:
        """The exact Hessian-vector products by input (``hvp``; empty where the fixture has
        none: ``no_hvp`` says why), along :attr:`direction`."""
        try:
            return {k: ExactArray.from_json(v, self.dtype == "float64") for k, v in self.raw.get("hvp", {}).items()}
        except ValueError as err:  # a malformed run (the loader decodes hvp only when asked)
            raise _error(self.file, f"hvp: {err}", f"{self.index} ({self.name})") from None

    @cached_property
    def direction(self) -> dict[str, np.ndarray]:
        """The HVP direction by differentiable input (``direction``), in the case dtype."""
        try:
            return {k: decode_array(v) for k, v in self.raw.get("direction", {}).items()}
        except ValueError as err:  # a malformed run (the loader decodes direction only when asked)
            raise _error(self.file, f"direction: {err}", f"{self.index} ({self.name})") from None


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
    """An array object (``shape``, ``dtype``, ``data``; runs expanded) as a NumPy array."""
    dtype = obj["dtype"]
    if dtype == "int64":
        return np.array(obj["data"], dtype=np.int64).reshape(obj["shape"])
    # strings are shortest round-trip decimals of the dtype's values: parse as float64
    # (correctly rounded, and exact for them), then narrow (exact: representable)
    data = expand_runs(obj["data"], "data", math.prod(obj["shape"]))
    return np.array([float(x) for x in data], dtype=np.float64).astype(dtype).reshape(obj["shape"])


# ----------------------------------------------------------------- reading, bounded and safe

#: the largest file the loader reads (the committed fixture files are about 0.2 MB each)
MAX_FILE_BYTES = 32 * 2**20
#: the longest number string (exact values have 40 digits and, far below every dtype's
#: range, exponents of some 300 digits: the longest committed one has 344 characters)
MAX_NUMBER_CHARS = 512
#: what a number string may be made of: digits, sign, point, exponent, and nan/inf
NUMBER_CHARS = b"0123456789+-.eainf\n"
#: a file name the manifest may list: a plain name inside the fixtures folder
_FILE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*\.json")
FLOAT_DTYPES = ("float16", "bfloat16", "float32", "float64")


class _Unusable(ValueError):
    """A JSON document the loader will not take (a bare NaN token, a number too long)."""


def _kind(mode: int) -> str:
    for test, what in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return what
    return "not a regular file"


def read_file(directory: Path, name: str, missing: str = "missing") -> bytes:
    """The bytes of ``name`` in the fixtures folder ``directory``, read safely: ``name`` a
    plain file name, the file (symbolic links followed) a regular file directly inside the
    folder and at most :data:`MAX_FILE_BYTES` long; never blocks (on a FIFO or a device).
    Anything else is a :class:`FixtureError` naming the file (``missing``: the message
    when it does not exist)."""
    if not isinstance(name, str) or not _FILE_NAME.fullmatch(name):
        raise FixtureError(f"{name!r}: not the name of a .json file inside the fixtures folder")
    root = os.path.realpath(directory)
    real = os.path.realpath(os.path.join(root, name))
    if os.path.dirname(real) != root:
        raise FixtureError(f"{name}: a link to {real}, outside the fixtures folder {root}")
    try:
        fd = os.open(real, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise FixtureError(f"{name}: {missing}") from None
    except OSError as err:
        raise FixtureError(f"{name}: cannot be read: {err.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise FixtureError(f"{name}: {_kind(st.st_mode)}, not a regular file")
        if st.st_size > MAX_FILE_BYTES:
            raise FixtureError(f"{name}: {st.st_size} bytes, over the limit of {MAX_FILE_BYTES} bytes")
        chunks, size = [], 0
        while size <= MAX_FILE_BYTES:
            chunk = os.read(fd, min(MAX_FILE_BYTES + 1 - size, 2**24))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > MAX_FILE_BYTES:
            raise FixtureError(f"{name}: grew over the limit of {MAX_FILE_BYTES} bytes while it was read")
        return b"".join(chunks)
    except OSError as err:
        raise FixtureError(f"{name}: cannot be read: {err.strerror}") from None
    finally:
        os.close(fd)


def _no_constant(token: str) -> Any:
    raise _Unusable(f'a bare {token} token (the format writes "nan", "inf" and "-inf" as strings)')


def _loads(text: str) -> Any:
    """``json.loads`` with the loader's limits: no NaN/Infinity tokens; numbers and nesting
    within what Python's parser allows (an integer of more than 4300 digits, nesting
    deeper than the recursion limit) become :class:`_Unusable`."""
    try:
        return json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        raise _Unusable("nested deeper than the JSON parser's limit (arrays or objects within each other)") from None
    except ValueError as err:
        if isinstance(err, (json.JSONDecodeError, _Unusable)):
            raise
        raise _Unusable(f"a number beyond the parser's limits ({str(err).split(':')[0]})") from None


def _parse_json(name: str, data: bytes) -> Any:
    """A file's JSON document, or a :class:`FixtureError` naming the file and, where the
    file has the one-case-per-line layout, the case at fault."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise FixtureError(f"{name}: not valid JSON (not UTF-8 text: byte {err.start} is {err.object[err.start]:#04x})") from None
    try:
        return _loads(text)
    except json.JSONDecodeError as err:
        # the text ends early: at its end, or inside a string (json reports where it began)
        ends = err.pos >= len(text.rstrip()) - 1 or err.msg.startswith("Unterminated string")
        what = "truncated" if ends else "not valid JSON"
        raise FixtureError(f"{name}: {what} (line {err.lineno}, column {err.colno}: {err.msg})") from None
    except _Unusable as err:
        raise _error(name, str(err), _case_of_unusable(data)) from None


def _case_of_unusable(data: bytes) -> str | None:
    """The case on the first line (after the header) that the loader's limits reject on
    its own, as ``INDEX (NAME)`` (the error path only; None where the file does not have
    the one-case-per-line layout)."""
    for n, line in enumerate(data.split(b"\n")[1:]):
        try:
            _loads(line.rstrip(b",").decode("utf-8", "replace"))
        except ValueError as err:
            if isinstance(err, _Unusable):
                return _label(n, line)
    return None


def load_manifest(directory: Path) -> dict[str, Any]:
    """``MANIFEST.json`` of a fixtures folder, read safely, with its ``files`` table checked
    to be names and SHA-256 digests."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FixtureError(
            f"fixtures directory {directory} does not exist: run from the lossconf checkout, or point to it "
            "with --fixtures DIR (pytest: --fixtures-dir) or LOSSCONF_FIXTURES, or create it with "
            "`lossconf fixtures generate --out DIR`"
        )
    data = read_file(directory, MANIFEST_FILE, f"missing from {directory} (run `lossconf fixtures generate`)")
    manifest = _parse_json(MANIFEST_FILE, data)
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise FixtureError(f"{MANIFEST_FILE}: has no 'files' table")
    for name, digest in manifest["files"].items():
        if not _FILE_NAME.fullmatch(name):
            raise FixtureError(f"{MANIFEST_FILE}: lists {name!r}, not the name of a .json file inside the fixtures folder")
        if not _is_sha256(digest):
            raise FixtureError(f"{MANIFEST_FILE}: the digest of {name} is not a SHA-256 in hex: {str(digest)[:80]!r}")
    return manifest


def manifest_digest(directory: Path) -> str:
    return str(load_manifest(directory).get("digest", ""))


def catalog_files() -> dict[str, str]:
    """{fixture file name: loss id} for every loss of the oracle's catalog: the files a
    complete fixtures folder has."""
    from oracle import catalog

    return {catalog.module(i).__name__.rsplit(".", 1)[-1] + ".json": i for i in catalog.loss_ids()}


def fixture_files(manifest: dict[str, Any]) -> dict[str, str]:
    """The fixture files the manifest lists, {name: SHA-256}, after checking that it lists
    the schema (its ``schema`` table) and a file for every loss of the catalog."""
    schema = manifest.get("schema")
    if not isinstance(schema, dict) or list(schema) != [SCHEMA_FILE] or not _is_sha256(schema[SCHEMA_FILE]):
        raise FixtureError(
            f"{MANIFEST_FILE}: has no 'schema' table with the SHA-256 of {SCHEMA_FILE} (every file the loader trusts is listed)"
        )
    files = dict(manifest["files"])
    absent = sorted(f"{loss} ({name})" for name, loss in catalog_files().items() if name not in files)
    if absent:
        raise FixtureError(f"{MANIFEST_FILE}: lists no fixture file for {', '.join(absent)} (every loss of the catalog must be listed)")
    return files


def _is_sha256(digest: Any) -> bool:
    return isinstance(digest, str) and re.fullmatch(r"[0-9a-f]{64}", digest) is not None


def load_file(path: Path, *, check_digest: str | None = None) -> list[FixtureCase]:
    """The cases of one fixture file, read safely (see :func:`read_file`). With
    ``check_digest`` the file's SHA-256 must equal it. Anything malformed is a
    :class:`FixtureError` naming the file and the case."""
    path = Path(path)
    data = read_file(path.parent, path.name, f"listed in {MANIFEST_FILE} but missing")
    if check_digest is not None and hashlib.sha256(data).hexdigest() != check_digest:
        raise FixtureError(f"{path.name}: SHA-256 differs from {MANIFEST_FILE} (the file was changed)")
    doc = _parse_json(path.name, data)
    if not isinstance(doc, dict) or doc.get("format") != "lossconf-fixtures":
        raise FixtureError(f"{path.name}: not a lossconf fixtures file")
    if doc.get("format_version") != FORMAT_VERSION:
        raise FixtureError(f"{path.name}: format_version {doc.get('format_version')!r}; this harness reads {FORMAT_VERSION}")
    if not isinstance(doc.get("loss"), str) or not isinstance(doc.get("cases"), list):
        raise FixtureError(f"{path.name}: malformed: no 'loss' name or no 'cases' list")
    return _build(path, decode(doc, path.name), data)


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
                         cotangent: [dtype, shape, start, end],
                         roundings or None]]
    """

    loss: str
    cases: list[list[Any]]
    texts: Sequence[str]
    values: np.ndarray
    lo: np.ndarray


#: the fields every case has
REQUIRED = ("index", "name", "dtype", "tags", "options", "given_options", "inputs")


class _Malformed(Exception):
    """A case's field that is not what the format says (the message names the field)."""


def _shape(where: str, v: Any) -> list[int]:
    if type(v) is not list or not all(type(n) is int and 0 <= n < 2**31 for n in v):
        raise _Malformed(f"{where}: not a shape (a list of integers in [0, 2**31)): {_brief(v)}")
    return v


def _strings(where: str, v: Any, n: int) -> list[str]:
    """A list of ``n`` number strings, its runs expanded (:func:`_expand`; that each is a
    string is checked for the whole file at once, by :func:`_numbers`)."""
    if type(v) is not list:
        raise _Malformed(f"{where}: not a list of {n} number strings: {_brief(v)}")
    if dict in map(type, v):
        return _expand(where, v, n)
    if len(v) != n:
        raise _Malformed(f"{where}: not a list of {n} number strings: {_brief(v)}")
    return v


#: a bound on what a list of runs whose shape is not known may expand to
MAX_EXPANDED = 2**26
#: what a run object is (format version 2), for messages
RUN_FORM = '{"repeat": <number string>, "count": <integer >= 2>}'


def _expand(where: str, v: list[Any], n: int) -> list[Any]:
    """A list of number strings and runs (``{"repeat": S, "count": K}``: K >= 2 copies of
    the string S) expanded to the ``n`` strings it stands for; a malformed run, or runs
    that expand to more or fewer than ``n`` values, is :class:`_Malformed` (checked before
    anything is expanded beyond ``n``, so no count can make the reader allocate more)."""
    out: list[Any] = []
    for x in v:
        if type(x) is dict:
            count, text = x.get("count"), x.get("repeat")
            if len(x) != 2 or type(text) is not str or type(count) is not int or count < 2:
                raise _Malformed(f"{where}: a malformed run {_brief(x)} (a run is {RUN_FORM})")
            if len(out) + count > n:
                raise _Malformed(f"{where}: its runs expand to more than the {n} values of its shape")
            out.extend([text] * count)
        else:
            out.append(x)
    if len(out) != n:
        raise _Malformed(f"{where}: {len(out)} values (runs expanded), not the {n} of its shape")
    return out


def expand_runs(v: list[Any], where: str = "data", n: int | None = None) -> list[Any]:
    """A list of a fixture array (``data``, ``value``, ...) with its runs expanded: the
    plain list as format version 1 wrote it. ``n``: the count its shape gives (checked).
    A malformed run is a ``ValueError`` naming ``where``."""
    if dict not in map(type, v):
        if n is not None and len(v) != n:
            raise ValueError(f"{where}: {len(v)} values, not the {n} of its shape")
        return v
    total = sum(x["count"] if type(x) is dict and type(x.get("count")) is int else 1 for x in v)
    if n is None and total > MAX_EXPANDED:
        raise ValueError(f"{where}: its runs expand to {total} values, over the limit of {MAX_EXPANDED}")
    try:
        return _expand(where, v, total if n is None else n)
    except _Malformed as err:
        raise ValueError(str(err)) from None


#: where a case record holds lists of number strings (``*``: every key of an object)
NUMBER_LISTS = (
    ("inputs", "*", "data"), ("cotangent", "data"), ("direction", "*", "data"),
    ("expected", "value"), ("expected", "rounded"), ("expected", "scale"),
    *((part, "*", key) for part in ("vjp", "hvp") for key in ("value", "scale", "lo", "hi")),
)


def expanded_record(record: dict[str, Any]) -> dict[str, Any]:
    """A copy of a case's JSON record with every run expanded (what ``lossconf show``
    prints); a malformed run is a ``ValueError`` naming the field."""
    out = json.loads(json.dumps(record))
    for path in NUMBER_LISTS:
        found = [out]
        for key in path[:-1]:
            found = [w for o in found if type(o) is dict for w in (o.values() if key == "*" else [o.get(key)]) if type(w) is dict]
        for o in found:
            if type(o.get(path[-1])) is list:
                o[path[-1]] = expand_runs(o[path[-1]], ".".join(path))
    return out


def _brief(v: Any) -> str:
    text = json.dumps(v) if not isinstance(v, float) or math.isfinite(v) else repr(v)
    return text if len(text) <= 60 else text[:57] + "..."


#: how deep an option's value may nest lists (an invalid-input case passes a 2-d class_weight)
MAX_OPTION_DEPTH = 4


def _roundings(where: str, obj: dict[str, Any]) -> int | None:
    """``roundings`` (roundings per term of the formula), where the fixture has it."""
    r = obj.get("roundings")
    if r is not None and (type(r) is not int or not 0 <= r < 2**31):
        raise _Malformed(f"{where}: not an integer in [0, 2**31): {_brief(r)}")
    return r


def _option_value(v: Any, depth: int = 0) -> bool:
    """An option's value as fixtures write it: null, a bool, a string, a finite number or
    a list of those, nested at most :data:`MAX_OPTION_DEPTH` deep."""
    if v is None or type(v) in (bool, str) or (type(v) is int and abs(v) < 2**63):
        return True
    if type(v) is float:
        return math.isfinite(v)
    return type(v) is list and depth < MAX_OPTION_DEPTH and all(_option_value(x, depth + 1) for x in v)


def decode(doc: dict[str, Any], file: str = "?") -> Decoded:
    """A fixture document's numbers, decoded; anything malformed (a field of the wrong
    type, a count that does not fit its shape, a number string that is no number, one
    over :data:`MAX_NUMBER_CHARS`) is a :class:`FixtureError` naming the file and case.
    Fields the loader does not know are left alone (the schema, in ``verify``, rules on
    them)."""
    texts: list[str] = []
    lo_spans: list[tuple[int, int]] = []
    spans: list[tuple[int, str]] = []  # per case: where its number strings start, its label

    def seg(where: str, data: Any, n: int) -> int:
        texts.extend(_strings(where, data, n))
        return len(texts) - n

    def array(where: str, v: Any, dtype: str, name: str | None = None) -> list[Any]:
        if type(v) is not dict:
            raise _Malformed(f"{where}: not an array object: {_brief(v)}")
        shape = _shape(f"{where}.shape", v.get("shape"))
        n = math.prod(shape)
        head = [] if name is None else [name]
        if v.get("dtype") == "int64" and name is not None:
            data = v.get("data")
            if type(data) is not list or len(data) != n or not all(type(x) is int and -(2**63) <= x < 2**63 for x in data):
                raise _Malformed(f"{where}.data: not a list of {n} int64 integers: {_brief(data)}")
            return [*head, "int64", list(shape), list(data)]
        if v.get("dtype") != dtype:
            allowed = f"{dtype!r} (the case dtype)" + (" or 'int64'" if name is not None else "")
            raise _Malformed(f"{where}.dtype: {_brief(v.get('dtype'))} is not {allowed}")
        start = seg(f"{where}.data", v.get("data"), n)
        return [*head, dtype, list(shape), start, len(texts)]

    cases = []
    docs = doc["cases"]
    for i, c in enumerate(docs):
        label = f"{i} ({c.get('name', '?') if type(c) is dict else '?'})"
        spans.append((len(texts), label))
        try:
            if type(c) is not dict:
                raise _Malformed("not a JSON object")
            for key in REQUIRED:
                if key not in c:
                    raise _Malformed(f"{key}: missing")
            index, name, dtype = c.get("index"), c.get("name"), c.get("dtype")
            if index != i or type(index) is not int:
                raise _Malformed(f"index {_brief(index)} out of order (expected {i})")
            if type(name) is not str or not name:
                raise _Malformed(f"name: not a non-empty string: {_brief(name)}")
            if dtype not in FLOAT_DTYPES:
                raise _Malformed(f"dtype: {_brief(dtype)} is not one of {', '.join(FLOAT_DTYPES)}")
            tags, options, given = c.get("tags"), c.get("options"), c.get("given_options")
            if type(tags) is not list or not tags or not all(type(t) is str for t in tags):
                raise _Malformed(f"tags: not a non-empty list of strings: {_brief(tags)}")
            if type(options) is not dict or not all(_option_value(v) for v in options.values()):
                raise _Malformed(f"options: not an object of option values (null, bool, string, finite number or lists of those): {_brief(options)}")
            if type(given) is not list or not all(type(g) is str and g in options for g in given):
                raise _Malformed(f"given_options: not a list of the names in options: {_brief(given)}")
            invalid, note = c.get("invalid"), c.get("note")
            if invalid is not None and (
                type(invalid) is not dict or not all(type(invalid.get(k)) is str for k in ("rule", "oracle_error"))
                or type(invalid.get("control")) is not int or invalid["control"] < 0
            ):
                raise _Malformed(f"invalid: not an object with a rule, an oracle_error and a control case index: {_brief(invalid)}")
            if note is not None and type(note) is not str:
                raise _Malformed(f"note: not a string: {_brief(note)}")
            raw_inputs = c.get("inputs")
            if type(raw_inputs) is not dict or not raw_inputs:
                raise _Malformed(f"inputs: not an object of arrays: {_brief(raw_inputs)}")
            inputs = [array(f"inputs.{k}", v, dtype, k) for k, v in raw_inputs.items()]
            exact = None
            if invalid is None:
                e, f64 = c.get("expected"), dtype == "float64"
                if type(e) is not dict:
                    raise _Malformed(f"expected: missing or not an object (a case without 'invalid' has one): {_brief(e)}")
                shape = _shape("expected.shape", e.get("shape"))
                n = math.prod(shape)
                start = seg("expected.value", e.get("value"), n)
                if f64:
                    lo_spans.append((start, len(texts)))
                n_terms = e.get("n_terms")
                if type(n_terms) is not int or not 0 <= n_terms < 2**63:
                    raise _Malformed(f"expected.n_terms: not an integer in [0, 2**63): {_brief(n_terms)}")
                if type(e.get("condition")) is not str:
                    raise _Malformed(f"expected.condition: not a string: {_brief(e.get('condition'))}")
                exact = [list(shape), start, len(texts), seg("expected.rounded", e.get("rounded"), n),
                         seg("expected.scale", e.get("scale"), n), n_terms, e["condition"], []]
                vjp = c.get("vjp")
                if type(vjp) is not dict or not all(k in raw_inputs for k in vjp):
                    raise _Malformed(f"vjp: not an object of exact arrays, one per differentiable input: {_brief(vjp)}")
                for k, v in vjp.items():
                    where = f"vjp.{k}"
                    if type(v) is not dict:
                        raise _Malformed(f"{where}: not an exact array object: {_brief(v)}")
                    vshape = _shape(f"{where}.shape", v.get("shape"))
                    vn = math.prod(vshape)
                    start = seg(f"{where}.value", v.get("value"), vn)
                    end = len(texts)
                    if f64:
                        lo_spans.append((start, end))
                    la = ha = -1
                    if "lo" in v or "hi" in v:
                        la, ha = seg(f"{where}.lo", v.get("lo"), vn), seg(f"{where}.hi", v.get("hi"), vn)
                    sa = seg(f"{where}.scale", v.get("scale"), vn) if "scale" in v else -1
                    exact[7].append([k, list(vshape), start, end, la, ha, sa, _roundings(f"{where}.roundings", v)])
                cotangent = array("cotangent", c.get("cotangent"), dtype)
                if cotangent[1] != shape:
                    raise _Malformed(f"cotangent.shape: {cotangent[1]} is not the output shape {shape}")
                exact.append(cotangent)
                exact.append(_roundings("expected.roundings", e))
            cases.append([index, name, dtype, list(tags), options, list(given), invalid, note, inputs, exact])
        except _Malformed as err:
            raise _error(file, str(err), label) from None
    values = _numbers(file, texts, spans)
    lo = np.zeros(len(texts))
    if lo_spans:
        at = np.concatenate([np.arange(a, b) for a, b in lo_spans])
        # below float64's range (hi == 0; exponents may exceed what Decimal parses) or
        # beyond it (hi == +-inf, nan) the remainder cannot matter for any dtype
        at = at[np.isfinite(values[at]) & (values[at] != 0)]
        with localcontext() as ctx:
            ctx.prec = 60
            lo[at] = [float(Decimal(texts[i]) - Decimal(h)) for i, h in zip(at.tolist(), values[at].tolist())]
    return Decoded(doc["loss"], cases, texts, values, lo)


def _numbers(file: str, texts: list[str], spans: list[tuple[int, str]]) -> np.ndarray:
    """The number strings parsed as float64 (correctly rounded), after checking that
    they are numbers as the format writes them and within :data:`MAX_NUMBER_CHARS`;
    else a :class:`FixtureError` naming the case and the string."""
    try:
        blob = "\n".join(texts).encode("utf-8")  # (a TypeError if one is not a string)
        if not blob.translate(None, NUMBER_CHARS) and (not texts or max(map(len, texts)) <= MAX_NUMBER_CHARS):
            return np.array([float(t) for t in texts], dtype=np.float64)
    except (TypeError, ValueError):
        pass
    # the error path: find the first string at fault, and its case
    for at, t in enumerate(texts):
        problem = None
        if type(t) is not str:
            problem = f"{_brief(t)} is not a number string"
        elif len(t) > MAX_NUMBER_CHARS:
            problem = f"a number string of {len(t)} characters (limit {MAX_NUMBER_CHARS}): {t[:40]}..."
        elif not t or t.encode("utf-8").translate(None, NUMBER_CHARS):
            problem = f"{_brief(t)} is not a number as the format writes it"
        else:
            try:
                float(t)
            except ValueError:
                problem = f"{_brief(t)} is not a number as the format writes it"
        if problem:
            label = next(lab for start, lab in reversed(spans) if start <= at)
            raise _error(file, problem, label)
    raise FixtureError(f"{file}: malformed numbers")  # (unreachable: a string above fails)


class FileData:
    """A fixture file's decoded numbers, shared by its cases: their arrays are read-only
    views of these (inputs: of the numbers converted to the input's dtype)."""

    def __init__(self, path: Path, decoded: Decoded, data: bytes = b"") -> None:
        self.path = path
        #: the file's bytes as they were read (and checked): a case's JSON record is parsed from these
        self.data = data
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
        """An input or cotangent array from its compact spec (``[dtype, shape, start, end]``
        or ``["int64", shape, data]``)."""
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
        return [texts[i] for i in positions.tolist()]

    def record(self, index: int) -> dict[str, Any]:
        """Case ``index``'s JSON record, from the file's bytes as they were read."""
        return json.loads(case_lines(self.data)[index])


def _build(path: Path, d: Decoded, data: bytes = b"") -> list[FixtureCase]:
    """The cases of a decoded file (shapes checked against the numbers by :func:`decode`).
    Each valid case's exact results get consecutive rows of the file's ``checks`` table:
    its value, then its VJPs in the file's order."""
    data_ = FileData(path, d, data)
    file = path.name
    out = []
    table: list[tuple[int, int, str, int, int, int, int, tuple[int, ...], int | None]] = []
    for index, name, dtype, tags, options, given, invalid, note, inputs, exact in d.cases:
        arrays = {spec[0]: data_.array(spec[1:]) for spec in inputs}
        case = FixtureCase(d.loss, file, index, name, dtype, tuple(tags), options, tuple(given), arrays, invalid, note)
        if exact is not None:
            shape = exact[0]
            case.source = (data_, exact, len(table))
            # what the case's properties would otherwise work out on first use (set here:
            # a cached_property's first access takes a lock, and every run reads these)
            known = case.__dict__
            known["expected_shape"] = shape_t = tuple(shape)
            known["vjp_inputs"] = vjp_inputs = tuple([v[0] for v in exact[7]])
            known["checks"] = checks_of(invalid is None, vjp_inputs)
            table.append((exact[1], exact[2], dtype, exact[4], -1, -1, exact[5], shape_t, exact[9]))
            for _, vshape, va, vb, la, ha, sa, r in exact[7]:
                table.append((va, vb, dtype, sa, la, ha, exact[5], tuple(vshape), r))
            case.__dict__["cotangent"] = data_.array(exact[8])
        out.append(case)
    data_.checks = table
    by_index = {case.index: case for case in out}
    for case in out:
        if case.invalid is not None:
            case.control = _control(path, by_index, case)
    return out


def _control(path: Path, cases: dict[int, FixtureCase], case: FixtureCase) -> FixtureCase:
    """An invalid-input case's valid control case (``invalid.control``): a case of the
    same file and dtype that is valid input."""
    at = case.invalid["control"]
    control = cases.get(at)
    if control is None or control.invalid is not None or control.dtype != case.dtype:
        raise FixtureError(
            f"{path.name}: case {case.index} ({case.name}): invalid.control {at} is not a valid case of dtype {case.dtype} in this file"
        )
    return control


def load(directory: Path | None = None, *, losses: set[str] | None = None) -> list[FixtureCase]:
    """Every case of the fixtures directory, optionally for some losses only (matched by
    id or short name). The manifest must list the schema and a file for every loss of
    the catalog; each file is read safely, must have its listed SHA-256 and hold the
    cases of the loss its name says."""
    directory = Path(directory or default_dir())
    manifest = load_manifest(directory)
    expected = catalog_files()
    cases: list[FixtureCase] = []
    for name, digest in sorted(fixture_files(manifest).items()):
        loaded = load_file(directory / name, check_digest=digest)
        if not loaded:
            raise FixtureError(f"{name}: holds no case (every loss of the catalog has cases)")
        if expected.get(name) != loaded[0].loss:
            raise FixtureError(f"{name}: holds the cases of {loaded[0].loss}; {_file_of(loaded[0].loss, expected)}")
        cases.extend(loaded)
    if losses is not None:
        wanted = {x.lower() for x in losses}
        cases = [c for c in cases if c.loss.lower() in wanted or c.short_loss.lower() in wanted]
    return cases


def _file_of(loss: str, expected: dict[str, str]) -> str:
    name = next((f for f, i in expected.items() if i == loss), None)
    return f"that loss's file is {name}" if name else "that is not a loss of the catalog"


# ----------------------------------------------------------------- verification


@dataclass
class Problem:
    file: str
    message: str
    case: str | None = None

    def __str__(self) -> str:
        where = self.file + (f" case {self.case}" if self.case else "")
        return f"{where}: {self.message}"

    @classmethod
    def of(cls, err: FixtureError) -> Problem:
        return cls(err.file or "?", err.detail or str(err), err.case)


def packaged_schema() -> bytes:
    """The schema this harness reads fixtures by (``conformance/fixtures_schema.json``);
    a fixtures folder's ``schema.json`` is a copy of it for other readers."""
    return (Path(__file__).resolve().parent / "fixtures_schema.json").read_bytes()


def verify(directory: Path | None = None, *, files: dict[str, bytes] | None = None) -> list[Problem]:
    """Check a fixtures directory: the manifest lists the schema and a file for every loss
    of the catalog, each present (read safely: a regular file inside the folder, within
    the size limit) with its SHA-256, no extra file; ``schema.json`` is the packaged schema;
    every fixture file is valid JSON within the loader's limits, matches the packaged
    schema, has every array's data consistent with its shape and dtype, holds the cases of
    the loss its name says, and loads. Returns the problems found (empty: all good).
    ``files``, when given, receives the bytes read of every fixture file (for the checks
    that regenerate them)."""
    from .fixture_schema import validator

    directory = Path(directory or default_dir())
    problems: list[Problem] = []
    try:
        manifest = load_manifest(directory)
    except FixtureError as err:
        return [Problem.of(err)]
    listed = dict(manifest["files"])
    files_digest = hashlib.sha256(json.dumps(dict(sorted(listed.items())), sort_keys=True).encode()).hexdigest()
    if manifest.get("digest") != files_digest:
        problems.append(Problem(MANIFEST_FILE, "its digest does not match its file list (the manifest was edited)"))
    catalog = catalog_files()
    for name, loss in sorted(catalog.items()):
        if name not in listed:
            problems.append(Problem(MANIFEST_FILE, f"lists no fixture file for {loss} ({name}): every loss of the catalog must be listed"))
    for name in sorted(set(listed) - set(catalog)):
        problems.append(Problem(name, f"listed in {MANIFEST_FILE}, but it is no loss's fixture file in the catalog"))
    present = {p.name for p in directory.glob("*.json")} - NON_FIXTURE_FILES
    for extra in sorted(present - set(listed)):
        problems.append(Problem(extra, f"extra file, not listed in {MANIFEST_FILE}"))
    problems += _verify_schema_file(directory, manifest)
    check = validator()
    for name, digest in sorted(listed.items()):
        try:
            data = read_file(directory, name, f"missing (listed in {MANIFEST_FILE})")
        except FixtureError as err:
            problems.append(Problem.of(err))
            continue
        if files is not None:
            files[name] = data
        if hashlib.sha256(data).hexdigest() != digest:
            changed = _changed_cases(data, manifest.get("cases", {}).get(name))
            if changed:
                for case in changed:
                    problems.append(Problem(name, f"changed: SHA-256 of this case differs from {MANIFEST_FILE}", case))
            else:
                problems.append(Problem(name, f"changed: SHA-256 differs from {MANIFEST_FILE}"))
        try:
            doc = _parse_json(name, data)
        except FixtureError as err:
            case = err.case or _case_at_error(data, err)
            problems.append(Problem(name, err.detail or str(err), case))
            continue
        found = len(problems)
        for path_, message in check(doc)[:20]:
            case = None
            if len(path_) >= 2 and path_[0] == "cases" and isinstance(doc.get("cases"), list):
                c = doc["cases"][path_[1]]
                case = f"{path_[1]} ({c.get('name', '?') if isinstance(c, dict) else '?'})"
                path_ = path_[2:]
            problems.append(Problem(name, f"schema: {'/'.join(map(str, path_)) or '(top)'}: {message[:200]}", case))
        if isinstance(doc, dict) and isinstance(doc.get("cases"), list):
            problems.extend(_consistency(name, doc["cases"]))
        if len(problems) == found and isinstance(doc, dict):
            # what the schema allows but the loader does not take (a number string too long,
            # a float input in another dtype than its case's): the loader's own word on it
            if name in catalog and doc.get("loss") != catalog[name]:
                problems.append(Problem(name, f"holds the cases of {doc.get('loss')}; {_file_of(str(doc.get('loss')), catalog)}"))
            try:
                _build(directory / name, decode(doc, name), data)
            except FixtureError as err:
                problems.append(Problem.of(err))
    return problems


def _verify_schema_file(directory: Path, manifest: dict[str, Any]) -> list[Problem]:
    """``schema.json``: listed in the manifest's ``schema`` table with its SHA-256, and the
    packaged schema byte for byte."""
    problems = []
    try:
        fixture_files(manifest)
    except FixtureError as err:
        if "'schema' table" in str(err):
            problems.append(Problem.of(err))
    try:
        data = read_file(directory, SCHEMA_FILE)
    except FixtureError as err:
        return [*problems, Problem.of(err)]
    listed = manifest.get("schema", {}).get(SCHEMA_FILE) if isinstance(manifest.get("schema"), dict) else None
    if listed is not None and hashlib.sha256(data).hexdigest() != listed:
        problems.append(Problem(SCHEMA_FILE, f"changed: SHA-256 differs from {MANIFEST_FILE}"))
    if data != packaged_schema():
        problems.append(Problem(SCHEMA_FILE, "differs from the schema this harness reads fixtures by (conformance/fixtures_schema.json)"))
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
            try:
                data = expand_runs(arr["data"], f"{key}.data")
            except ValueError as err:
                problems.append(Problem(name, str(err), label))
                continue
            if int(np.prod(arr["shape"], dtype=np.int64)) != len(data):
                problems.append(Problem(name, f"{key}: {len(data)} values for shape {arr['shape']}", label))
            elif arr.get("dtype") in FLOAT_DTYPES:
                for s in data:
                    if not isinstance(s, str) or s in ("nan", "inf", "-inf"):
                        continue
                    try:
                        narrowed = np.float64(float(s)).astype(arr["dtype"])
                    except ValueError:
                        problems.append(Problem(name, f"{key}: {s[:60]!r} is not a number", label))
                        break
                    if np.format_float_scientific(narrowed, unique=True, trim="-") != s:
                        problems.append(
                            Problem(name, f"{key}: {_brief(s)} is not the shortest round-trip decimal of a {arr['dtype']} value", label)
                        )
                        break
        exp = c.get("expected")
        if isinstance(exp, dict) and _is_shape(exp.get("shape")):
            n = int(np.prod(exp["shape"], dtype=np.int64))
            for key in ("value", "rounded", "scale"):
                if isinstance(exp.get(key), list):
                    try:
                        count = len(expand_runs(exp[key], f"expected.{key}"))
                    except ValueError as err:
                        problems.append(Problem(name, str(err), label))
                        continue
                    if count != n:
                        problems.append(Problem(name, f"expected {key}: {count} values for shape {exp['shape']}", label))
    return problems


def _is_shape(shape: Any) -> bool:
    return isinstance(shape, list) and all(isinstance(n, int) and not isinstance(n, bool) for n in shape)
