"""Expectation files for CI gating: the known deviations of one backend version, each
with its root cause in one line.

Format (TOML, ``conformance/expectations/<backend>-<version>.toml``)::

    [[deviation]]
    loss = "mxnet.gluon.loss.KLDivLoss"      # id or short name (required)
    options = { from_logits = false }         # subset the case's options must match
    dtype = ["float16"]                       # any of these dtypes (default: all)
    check = "value"                           # value | shape | grad:NAME | invalid | repeat | inputs | twice | hvp:NAME | glob
    mode = ["forward"]                        # any of these modes (default: every mode)
    tags = ["extreme"]                        # the case has any of these tags (default: any)
    case = "extreme-*"                        # glob on the case name (default: any)
    outcome = ["raised"]                      # any of these statuses: fail | error | raised (default: any)
    reason = "loss.py sums over non-batch axes (F.sum(..., exclude=True)) where the docs say averaged"

    # a tolerance override instead of a deviation: the check is held to this tolerance
    tolerance = { ulps = 64 }

An entry without ``mode`` applies in every mode (see ``conformance/protocol.py``); one
without ``outcome`` covers the check whatever went wrong. ``outcome = "raised"`` lists a
backend that raises where the documented value is +inf (status ``raised``, see
``runner.RAISED``) and nothing else: were it to return a wrong finite value there instead,
that is an unlisted failure (and the entry no longer occurs).
A listed deviation that occurs is reported as *known*; an unlisted failure fails the run;
a listed deviation that no longer occurs is reported, and fails the run under
``--strict-expectations``. Every entry needs a ``reason``.
"""

from __future__ import annotations

import fnmatch
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..fixtures import FixtureCase
from ..protocol import MODES
from .tolerance import Tolerance

KEYS = {"loss", "options", "dtype", "check", "tags", "case", "reason", "tolerance", "mode", "outcome"}
#: the statuses an entry's ``outcome`` may name (runner.FAIL, ERROR, RAISED)
OUTCOMES = ("fail", "error", "raised")



class ExpectationError(Exception):
    pass


@dataclass
class Entry:
    number: int
    loss: str
    reason: str
    options: dict[str, Any] = field(default_factory=dict)
    dtype: tuple[str, ...] = ()
    check: str = "*"
    tags: tuple[str, ...] = ()
    case: str = "*"
    tolerance: dict[str, float] | None = None
    mode: tuple[str, ...] = ()
    outcome: tuple[str, ...] = ()
    matched: int = 0

    def describe(self) -> str:
        parts = [self.loss]
        if self.options:
            parts.append(",".join(f"{k}={v}" for k, v in self.options.items()))
        if self.dtype:
            parts.append("/".join(self.dtype))
        parts.append(self.check)
        if self.mode:
            parts.append("mode " + "/".join(self.mode))
        if self.tags:
            parts.append("tags " + "/".join(self.tags))
        if self.case != "*":
            parts.append(f"case {self.case}")
        if self.outcome:
            parts.append("outcome " + "/".join(self.outcome))
        return f"entry {self.number} ({' '.join(parts)})"

    def matches(self, case: FixtureCase, check: str, mode: str = "grad") -> bool:
        if self.loss.lower() not in (case.loss.lower(), case.short_loss.lower()):
            return False
        if self.mode and mode not in self.mode:
            return False
        if self.dtype and case.dtype not in self.dtype:
            return False
        if not fnmatch.fnmatchcase(check, self.check):
            return False
        if self.tags and not set(self.tags) & set(case.tags):
            return False
        if not fnmatch.fnmatchcase(case.name, self.case):
            return False
        return all(case.options.get(k, _missing) == v for k, v in self.options.items())


_missing = object()


@dataclass
class Expectations:
    path: str
    entries: list[Entry]

    def deviation_for(self, case: FixtureCase, check: str, mode: str = "grad", status: str | None = None) -> Entry | None:
        """The first deviation entry for a failing check (``status``: its status, which an
        entry's ``outcome`` must name, if it has one)."""
        for e in self.entries:
            if e.tolerance is None and e.matches(case, check, mode) and (not e.outcome or status in e.outcome):
                return e
        return None

    def tolerance_for(self, case: FixtureCase, check: str, base: Tolerance, mode: str = "grad") -> Tolerance:
        for e in self.entries:
            if e.tolerance is not None and e.matches(case, check, mode):
                e.matched += 1
                return base.with_override(e.tolerance.get("ulps"), e.tolerance.get("stability"), f"override: {e.reason}")
        return base

    def unused(self) -> list[Entry]:
        return [e for e in self.entries if e.matched == 0]

    def unmatchable(self, cases: list[FixtureCase], checks_for: Any) -> list[Entry]:
        """Entries that match no (case, check, mode) of the fixtures at all: a typo in a
        case glob or an option value, which would otherwise never be reported.
        ``checks_for(case, mode)`` lists a case's checks in a mode."""
        return [
            e for e in self.entries
            if not any(e.matches(c, chk, m) for c in cases for m in (e.mode or MODES) for chk in checks_for(c, m))
        ]


DTYPES = ("float16", "bfloat16", "float32", "float64")
TAGS = tuple(json.loads((Path(__file__).parent.parent / "fixtures_schema.json").read_text())["$defs"]["case"]["properties"]["tags"]["items"]["enum"])
CHECKS = ("value", "shape", "repeat", "inputs", "invalid", "twice")


_TYPES: dict[str, tuple[type, ...]] = {
    "loss": (str,),
    "reason": (str,),
    "check": (str,),
    "case": (str,),
    "options": (dict,),
    "tolerance": (dict,),
    "dtype": (str, list),
    "tags": (str, list),
    "mode": (str, list),
    "outcome": (str, list),
}


def _check_types(path: Path, number: int, raw: dict[str, Any]) -> None:
    for key, types in _TYPES.items():
        if key in raw and not isinstance(raw[key], types):
            want = " or ".join({str: "a string", list: "an array", dict: "a table"}[t] for t in types)
            raise ExpectationError(f"{path}: entry {number}: {key} must be {want}, got {raw[key]!r}")
    for key in ("dtype", "tags", "mode", "outcome"):
        if isinstance(raw.get(key), list) and not all(isinstance(x, str) for x in raw[key]):
            raise ExpectationError(f"{path}: entry {number}: {key} must hold strings, got {raw[key]!r}")
    tol = raw.get("tolerance")
    if tol is not None:
        unknown = set(tol) - {"ulps", "stability"}
        if unknown:
            raise ExpectationError(f"{path}: entry {number}: unknown tolerance keys {sorted(unknown)}; allowed: ulps, stability")
        for k, v in tol.items():
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
                raise ExpectationError(f"{path}: entry {number}: tolerance {k} must be a number > 0, got {v!r}")


def _validated(path: Path, number: int, raw: dict[str, Any]) -> str:
    """Check an entry names things that exist (so a typo cannot silently match nothing,
    even under --strict-expectations) and return its loss as the documented id."""
    where = f"{path}: entry {number} ({raw['loss']})"
    modes = raw.get("mode", ())
    for m in (modes,) if isinstance(modes, str) else modes:
        if m not in MODES:
            raise ExpectationError(f"{where}: mode {m!r} is not one of {', '.join(MODES)}")
    outcomes = raw.get("outcome", ())
    for o in (outcomes,) if isinstance(outcomes, str) else outcomes:
        if o not in OUTCOMES:
            raise ExpectationError(f"{where}: outcome {o!r} is not one of {', '.join(OUTCOMES)}")
    if outcomes and raw.get("tolerance") is not None:
        raise ExpectationError(f"{where}: outcome applies to a deviation, not to a tolerance override")
    try:
        from oracle import catalog
        from oracle.errors import UnknownLossError
    except ImportError:  # the harness without the oracle: names are taken as given
        return str(raw["loss"])
    try:
        spec = catalog.spec(str(raw["loss"]))
    except UnknownLossError as err:
        raise ExpectationError(f"{where}: {err}") from None
    for name, value in dict(raw.get("options", {})).items():
        if name not in {o.name for o in spec.options}:
            raise ExpectationError(
                f"{where}: unknown option {name!r}; documented options are {', '.join(o.name for o in spec.options)}"
            )
        # the value's type only: invalid-input cases carry values outside the domain
        opt = spec.option(name)
        kinds = {"bool": (bool,), "int": (int,), "float": (int, float), "weight": (int, float), "enum": (str,)}
        want = kinds.get(opt.kind)
        if want and (not isinstance(value, want) or (opt.kind != "bool" and isinstance(value, bool))):
            raise ExpectationError(f"{where}: option {name} must be {opt.expected()}, got {value!r}")
    dtypes = raw.get("dtype", ())
    for d in (dtypes,) if isinstance(dtypes, str) else dtypes:
        if d not in DTYPES:
            raise ExpectationError(f"{where}: dtype {d!r} is not one of {', '.join(DTYPES)}")
    tags = raw.get("tags", ())
    for t in (tags,) if isinstance(tags, str) else tags:
        if t not in TAGS:
            raise ExpectationError(f"{where}: tag {t!r} is not one of {', '.join(TAGS)}")
    names = [*CHECKS, *(f"{k}:{n}" for k in ("grad", "hvp") for n in spec.differentiable)]
    pattern = str(raw.get("check", "*"))
    if not any(fnmatch.fnmatchcase(n, pattern) for n in names):
        raise ExpectationError(f"{where}: check {pattern!r} matches none of {', '.join(names)}")
    return spec.id


def load(path: str | Path) -> Expectations:
    path = Path(path)
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise ExpectationError(f"{path}: cannot be read: {err.strerror}") from None
    except tomllib.TOMLDecodeError as err:
        raise ExpectationError(f"{path}: not valid TOML: {err}") from None
    extra = set(doc) - {"deviation"}
    if extra:
        raise ExpectationError(f"{path}: unknown top-level keys {sorted(extra)}; entries are [[deviation]] tables")
    deviations = doc.get("deviation", [])
    if not isinstance(deviations, list):
        raise ExpectationError(f"{path}: 'deviation' must be an array of tables: write [[deviation]], not [deviation]")
    entries = []
    for i, raw in enumerate(deviations, start=1):
        if not isinstance(raw, dict):
            raise ExpectationError(f"{path}: entry {i} is not a table")
        _check_types(path, i, raw)
        unknown = set(raw) - KEYS
        if unknown:
            raise ExpectationError(f"{path}: entry {i}: unknown keys {sorted(unknown)}; allowed: {sorted(KEYS)}")
        if not raw.get("loss"):
            raise ExpectationError(f"{path}: entry {i}: 'loss' is required")
        if not str(raw.get("reason", "")).strip():
            raise ExpectationError(f"{path}: entry {i} ({raw['loss']}): every entry needs a 'reason' naming its root cause")
        dtype = raw.get("dtype", ())
        tags = raw.get("tags", ())
        mode = raw.get("mode", ())
        outcome = raw.get("outcome", ())
        raw = dict(raw, loss=_validated(path, i, raw))
        entries.append(
            Entry(
                number=i,
                loss=raw["loss"],
                reason=" ".join(str(raw["reason"]).split()),
                options=dict(raw.get("options", {})),
                dtype=(dtype,) if isinstance(dtype, str) else tuple(dtype),
                check=raw.get("check", "*"),
                tags=(tags,) if isinstance(tags, str) else tuple(tags),
                case=raw.get("case", "*"),
                tolerance=raw.get("tolerance"),
                mode=(mode,) if isinstance(mode, str) else tuple(mode),
                outcome=(outcome,) if isinstance(outcome, str) else tuple(outcome),
            )
        )
    return Expectations(str(path), entries)
