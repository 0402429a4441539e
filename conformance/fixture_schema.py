"""The fixtures' JSON Schema (``conformance/fixtures_schema.json``), compiled once into
plain Python checks, so that ``lossconf fixtures verify`` spends its time on the fixtures
rather than in a general validator's ``$ref`` resolution (jsonschema resolves every
``$ref`` anew for each of the 35,000 strings of the committed fixtures).

The compiled check only says whether a document is valid. When it is not, jsonschema
validates the document again to say why, in its own words; a schema with a keyword the
compiler does not know is validated by jsonschema alone. So the messages are
jsonschema's, and only the verdict on valid documents comes from here:
``tests/test_integrity.py`` holds the two verdicts equal on the committed fixtures and on
damaged copies of them.

Semantics followed (JSON Schema draft 2020-12, as jsonschema implements it): each
keyword applies only to instances of its type; ``integer`` includes floats with an
integral value and excludes booleans; ``const`` and ``enum`` compare as JSON does (``1``
equals ``1.0``, ``true`` does not equal ``1``); ``pattern`` is a search, not a full match;
``$ref`` applies beside its sibling keywords.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from itertools import repeat
from pathlib import Path
from typing import Any

Check = Callable[[Any], bool]
#: (path into the document, message) per schema violation
Errors = list[tuple[list[Any], str]]

#: the keywords the compiler knows; annotations are ignored
KEYWORDS = {
    "type", "const", "enum", "required", "properties", "additionalProperties", "items", "pattern",
    "minimum", "minLength", "minItems", "anyOf", "oneOf", "not", "$ref",
}
ANNOTATIONS = {"$schema", "$id", "$defs", "title", "description", "$comment"}
SCHEMA_FILE = Path(__file__).resolve().parent / "fixtures_schema.json"


class Unsupported(Exception):
    """The schema uses a keyword (or a ``$ref``) the compiler does not know."""


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


TYPES: dict[str, Check] = {
    "object": lambda x: isinstance(x, dict),
    "array": lambda x: isinstance(x, list),
    "string": lambda x: isinstance(x, str),
    "boolean": lambda x: isinstance(x, bool),
    "null": lambda x: x is None,
    "number": _is_number,
    "integer": lambda x: (isinstance(x, int) and not isinstance(x, bool)) or (isinstance(x, float) and x.is_integer()),
}


def equal(a: Any, b: Any) -> bool:
    """JSON equality as jsonschema has it: booleans are not numbers, 1 equals 1.0."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(equal(x, y) for x, y in zip(a, b))
    if _is_number(a) and _is_number(b):
        return a == b
    return a is None and b is None


class Compiler:
    """Compiles the nodes of one schema; ``$ref`` targets (``#/$defs/NAME``) once each."""

    def __init__(self, root: dict[str, Any]) -> None:
        self.root = root
        self.refs: dict[str, Check] = {}

    def ref(self, target: str) -> Check:
        if not target.startswith("#/$defs/") or "/" in target[len("#/$defs/") :]:
            raise Unsupported(f"$ref {target!r}")
        name = target[len("#/$defs/") :]
        if name not in self.refs:
            defs = self.root.get("$defs", {})
            if name not in defs:
                raise Unsupported(f"$ref {target!r}: no such definition")
            slot: list[Check] = []
            self.refs[name] = lambda x: slot[0](x)  # (a recursive definition reaches itself)
            slot.append(self.node(defs[name]))
            self.refs[name] = slot[0]
        return self.refs[name]

    def node(self, node: Any) -> Check:
        if node is True:
            return lambda x: True
        if node is False:
            return lambda x: False
        if not isinstance(node, dict):
            raise Unsupported(f"schema node {node!r}")
        unknown = set(node) - KEYWORDS - ANNOTATIONS
        if unknown:
            raise Unsupported(f"keywords {sorted(unknown)}")
        checks: list[Check] = []
        if "type" in node:
            names = node["type"] if isinstance(node["type"], list) else [node["type"]]
            tests = [TYPES[n] for n in names]
            checks.append(tests[0] if len(tests) == 1 else (lambda x: any(t(x) for t in tests)))
        if "const" in node:
            const = node["const"]
            checks.append(lambda x: equal(x, const))
        if "enum" in node:
            values = node["enum"]
            if all(isinstance(v, str) for v in values):
                strings = frozenset(values)
                checks.append(lambda x: isinstance(x, str) and x in strings)
            else:
                checks.append(lambda x: any(equal(x, v) for v in values))
        if "pattern" in node:
            search = re.compile(node["pattern"]).search
            checks.append(lambda x: not isinstance(x, str) or search(x) is not None)
        if "minLength" in node:
            min_length = node["minLength"]
            checks.append(lambda x: not isinstance(x, str) or len(x) >= min_length)
        if "minimum" in node:
            minimum = node["minimum"]
            checks.append(lambda x: not _is_number(x) or x >= minimum)
        if "minItems" in node:
            min_items = node["minItems"]
            checks.append(lambda x: not isinstance(x, list) or len(x) >= min_items)
        if "required" in node:
            required = tuple(node["required"])
            checks.append(lambda x: not isinstance(x, dict) or all(k in x for k in required))
        if "properties" in node or "additionalProperties" in node:
            checks.append(self.object(node.get("properties", {}), node.get("additionalProperties", True)))
        if "items" in node:
            checks.append(self.items(node["items"]))
        if "anyOf" in node:
            any_of = [self.node(n) for n in node["anyOf"]]
            checks.append(lambda x: any(f(x) for f in any_of))
        if "oneOf" in node:
            one_of = [self.node(n) for n in node["oneOf"]]
            checks.append(lambda x: sum(1 for f in one_of if f(x)) == 1)
        if "not" in node:
            negated = self.node(node["not"])
            checks.append(lambda x: not negated(x))
        if "$ref" in node:
            checks.append(self.ref(node["$ref"]))
        if not checks:
            return lambda x: True
        if len(checks) == 1:
            return checks[0]

        def every(x: Any) -> bool:
            for f in checks:
                if not f(x):
                    return False
            return True

        return every

    def object(self, properties: dict[str, Any], additional: Any) -> Check:
        props = {k: self.node(v) for k, v in properties.items()}
        closed = additional is False
        extra = None if additional in (True, False) else self.node(additional)

        def check(x: Any) -> bool:
            if not isinstance(x, dict):
                return True
            for k, v in x.items():
                f = props.get(k)
                if f is not None:
                    if not f(v):
                        return False
                elif closed or (extra is not None and not extra(v)):
                    return False
            return True

        return check

    def resolved(self, node: Any) -> Any:
        """A node with its lone ``$ref`` followed (to a local definition), else itself."""
        while isinstance(node, dict) and set(node) == {"$ref"} and str(node["$ref"]).startswith("#/$defs/"):
            node = self.root.get("$defs", {}).get(node["$ref"][len("#/$defs/") :], node)
            if set(node) == {"$ref"}:
                break
        return node

    def string_pattern(self, node: Any) -> Callable[[str], Any] | None:
        """For an items node that surely accepts a string matching some pattern -- the node
        ``{"type": "string", "pattern": P}``, or an ``anyOf`` with such a branch -- the
        pattern's search (None for other nodes)."""
        node = self.resolved(node)
        if isinstance(node, dict) and set(node) == {"type", "pattern"} and node["type"] == "string":
            return re.compile(node["pattern"]).search
        if isinstance(node, dict) and set(node) == {"anyOf"}:
            for branch in node["anyOf"]:
                found = self.string_pattern(branch)
                if found is not None:
                    return found
        return None

    def items(self, items: Any) -> Check:
        each = self.node(items)
        search = self.string_pattern(items)
        if search is None:
            return lambda x: not isinstance(x, list) or all(map(each, x))

        # the common case, an array of number strings: when every item is a string the
        # pattern matches, the items are valid (one pass at C speed); else item by item
        def check(x: Any) -> bool:
            if not isinstance(x, list):
                return True
            if all(map(isinstance, x, repeat(str))) and all(map(search, x)):
                return True
            return all(map(each, x))

        return check


def compile_schema(schema: dict[str, Any]) -> Check:
    """The schema as one check: document -> valid (raises :class:`Unsupported`)."""
    return Compiler(schema).node(schema)


@functools.cache
def validator() -> Callable[[Any], Errors]:
    """The packaged schema's validator: document -> its violations, sorted by path (empty:
    valid). Compiled once per process."""
    schema = json.loads(SCHEMA_FILE.read_text())
    try:
        fast: Check | None = compile_schema(schema)
    except Unsupported:
        fast = None

    def check(doc: Any) -> Errors:
        if fast is not None and fast(doc):
            return []
        import jsonschema

        full = jsonschema.Draft202012Validator(schema)
        errors = sorted(full.iter_errors(doc), key=lambda e: [(0, p, "") if isinstance(p, int) else (1, 0, str(p)) for p in e.absolute_path])
        return [(list(e.absolute_path), e.message) for e in errors]

    return check
