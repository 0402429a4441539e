"""Expectation files for CI gating: the known deviations of one backend version, each
with its root cause in one line.

Format (TOML, ``conformance/expectations/<backend>-<version>.toml``)::

    [[deviation]]
    loss = "mxnet.gluon.loss.KLDivLoss"      # id or short name (required)
    options = { from_logits = false }         # subset the case's options must match
    dtype = ["float16"]                       # any of these dtypes (default: all)
    check = "value"                           # value | shape | grad:NAME | invalid | repeat | inputs | glob
    tags = ["extreme"]                        # the case has any of these tags (default: any)
    case = "extreme-*"                        # glob on the case name (default: any)
    reason = "loss.py sums over non-batch axes (F.sum(..., exclude=True)) where the docs say averaged"

    # a tolerance override instead of a deviation: the check is held to this tolerance
    tolerance = { ulps = 64 }

A listed deviation that occurs is reported as *known*; an unlisted failure fails the run;
a listed deviation that no longer occurs is reported, and fails the run under
``--strict-expectations``. Every entry needs a ``reason``.
"""

from __future__ import annotations

import fnmatch
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .fixtures import FixtureCase
from .tolerance import Tolerance

KEYS = {"loss", "options", "dtype", "check", "tags", "case", "reason", "tolerance"}


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
    matched: int = 0

    def describe(self) -> str:
        parts = [self.loss]
        if self.options:
            parts.append(",".join(f"{k}={v}" for k, v in self.options.items()))
        if self.dtype:
            parts.append("/".join(self.dtype))
        parts.append(self.check)
        if self.tags:
            parts.append("tags " + "/".join(self.tags))
        if self.case != "*":
            parts.append(f"case {self.case}")
        return f"entry {self.number} ({' '.join(parts)})"

    def matches(self, case: FixtureCase, check: str) -> bool:
        if self.loss.lower() not in (case.loss.lower(), case.short_loss.lower()):
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

    def deviation_for(self, case: FixtureCase, check: str) -> Entry | None:
        for e in self.entries:
            if e.tolerance is None and e.matches(case, check):
                return e
        return None

    def tolerance_for(self, case: FixtureCase, check: str, base: Tolerance) -> Tolerance:
        for e in self.entries:
            if e.tolerance is not None and e.matches(case, check):
                e.matched += 1
                return base.with_override(e.tolerance.get("ulps"), e.tolerance.get("stability"), f"override: {e.reason}")
        return base

    def unused(self) -> list[Entry]:
        return [e for e in self.entries if e.matched == 0]


def load(path: str | Path) -> Expectations:
    path = Path(path)
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise ExpectationError(f"{path}: cannot be read: {err.strerror}") from None
    except tomllib.TOMLDecodeError as err:
        raise ExpectationError(f"{path}: not valid TOML: {err}") from None
    entries = []
    for i, raw in enumerate(doc.get("deviation", []), start=1):
        unknown = set(raw) - KEYS
        if unknown:
            raise ExpectationError(f"{path}: entry {i}: unknown keys {sorted(unknown)}; allowed: {sorted(KEYS)}")
        if not raw.get("loss"):
            raise ExpectationError(f"{path}: entry {i}: 'loss' is required")
        if not str(raw.get("reason", "")).strip():
            raise ExpectationError(f"{path}: entry {i} ({raw['loss']}): every entry needs a 'reason' naming its root cause")
        dtype = raw.get("dtype", ())
        tags = raw.get("tags", ())
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
            )
        )
    return Expectations(str(path), entries)
