"""The documented signature of every loss, where it comes from, and every divergence between
the documents, the installed frameworks' code and the oracle's catalog.

Three kinds of source, kept apart:

* **the documents** -- the rendered API pages the project was created from
  (``oracle/documented/*.txt``, copies of the seed documents) and the installed packages'
  docstrings (MXNet 1.9.1 ``mxnet/gluon/loss.py``, Chainer 7.8.1
  ``chainer/functions/loss/softmax_cross_entropy.py``). These are the truth.
* **the installed code** -- ``inspect.signature`` of each Gluon block's ``__init__`` and
  ``hybrid_forward`` and of ``chainer.functions.softmax_cross_entropy``. It is not
  documentation: where it lacks a documented input, that is the framework's finding.
* **the catalog** -- the oracle's options and inputs (:mod:`oracle.catalog`).

The installed packages are not importable next to the oracle (each needs its own numpy), so
their docstrings and signatures are captured once, in each framework's environment, into
committed JSON files (``oracle/documented/installed-*.json``)::

    /work/fw/mxnet/bin/python -m oracle.spec_sources capture mxnet
    /work/fw/chainer/bin/python -m oracle.spec_sources capture chainer

:func:`documented_signatures` parses the documents; :func:`divergences` compares the three
sources name by name and attaches the decision recorded for each in :data:`DECISIONS`
(a divergence without a decision, or a decision for a divergence that no longer occurs, is a
test failure: ``tests/test_spec_sources.py``). The spec table (:mod:`oracle.spec_table`)
prints all of it.
"""

from __future__ import annotations

import ast
import inspect
import json
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from . import catalog

DOCUMENTED_DIR = Path(__file__).parent / "documented"
#: the seed documents, in the order of their README
SEED_FILES = (
    "000_19470746dfb5709d.txt",
    "001_96463d9bf6ba4199.txt",
    "002_b33df37e53c3c88b.txt",
    "003_42f745763311a04c.txt",
    "004_8957bc9ae19b7207.txt",
)
INSTALLED_FILES = {"mxnet": "installed-mxnet-1.9.1.json", "chainer": "installed-chainer-7.8.1.json"}
#: the one output every Gluon page lists under Outputs (not an input)
_OUTPUT_NAMES = {"loss"}


@dataclass(frozen=True)
class Param:
    """One parameter of a signature: its name and its default as written (None: no default)."""

    name: str
    default: str | None = None

    def render(self) -> str:
        return self.name if self.default is None else f"{self.name}={self.default}"


@dataclass(frozen=True)
class Quote:
    """A line of a source, where it is (``file:line``) and what it says."""

    where: str
    text: str

    def render(self) -> str:
        return f"{self.where}: `{self.text.strip()}`"


@dataclass
class Listing:
    """What one source says about one loss: signatures and the named lists of its text."""

    source: str  # e.g. "seed 002_b33df37e53c3c88b.txt" or "MXNet 1.9.1 docstring"
    #: a function (Chainer): its positional parameters are the inputs, the rest options
    function: bool = False
    constructor: list[Param] | None = None
    forward: list[Param] | None = None
    parameters: list[Param] = field(default_factory=list)  # the Parameters / Args list
    inputs: list[str] = field(default_factory=list)  # the Inputs list
    quotes: dict[str, list[Quote]] = field(default_factory=dict)  # name -> where it is said

    def quote(self, name: str, where: str, text: str) -> None:
        self.quotes.setdefault(name, []).append(Quote(where, text))


# ------------------------------------------------------------------- parsing signatures


def _split_args(text: str) -> list[str]:
    out, depth, cur = [], 0, ""
    for ch in text:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        if ch == "," and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        out.append(cur)
    return [a.strip() for a in out if a.strip()]


def _normalise_default(text: str) -> str:
    """A default as written, with the rendering's artefacts undone (``- 1`` is ``-1``)."""
    return re.sub(r"^-\s+(\d)", r"-\1", text.strip())


def parse_signature(text: str) -> list[Param]:
    """The parameters of a signature written as in the documents: ``a, b=1, **kwargs`` or the
    summary form ``F, pred, label[, sample_weight]`` (bracketed ones are optional). ``self``,
    ``F`` and ``*args``/``**kwargs`` are not parameters of the documented API."""
    optional_from = text.find("[")
    params = []
    pos = 0
    for raw in _split_args(text.replace("[", "").replace("]", "")):
        start = text.find(raw.split("=")[0].strip(), pos)
        pos = max(pos, start)
        name, _, default = raw.partition("=")
        name = name.strip()
        if name in ("self", "F") or name.startswith("*") or name in ("…", "..."):
            continue
        if default:
            params.append(Param(name, _normalise_default(default)))
        elif optional_from != -1 and start > optional_from:
            params.append(Param(name, "None"))
        else:
            params.append(Param(name))
    return params


def _same_default(a: str | None, b: object) -> bool:
    if a is None or b is None:
        return a is None and b is None
    try:
        va = ast.literal_eval(a)
    except (ValueError, SyntaxError):
        return str(a) == str(b)
    vb = b
    if isinstance(b, str):
        try:
            vb = ast.literal_eval(b)
        except (ValueError, SyntaxError):
            return False
    if isinstance(va, bool) or isinstance(vb, bool):
        return va is vb
    return va == vb


# ------------------------------------------------------------------- the seed documents

_CLASS = re.compile(r"^class (?:mxnet\.gluon\.loss\.)?(\w+)\((.*)\)\[source\]\s*$")
_FUNCTION = re.compile(r"^(chainer\.functions\.\w+)\((.*)\)\[source\]\s*$")
_FORWARD = re.compile(r"^forward\((.*)\)\[source\]\s*$")
_HYBRID_SUMMARY = re.compile(r"^hybrid_forward\((F,.*)\)\s*(?:Overrides.*)?$")
_PARAM_BULLET = re.compile(r"^\s*•\s+(\w+)\s+\(([^)]*)\)\s+–")
_INPUT_BULLET = re.compile(r"^\s*•\s+(\w+):\s")
_DEFAULT_IN_TYPE = re.compile(r"default(?: is)?\s+(\S+)")


def _resolve(name: str) -> str | None:
    try:
        return catalog.resolve(name)
    except Exception:  # not a documented loss of the catalog (e.g. the base class Loss)
        return None


def _seed_listings(fname: str, text: str) -> Iterable[tuple[str, Listing]]:
    current: tuple[str, Listing] | None = None
    source = f"seed {fname}"
    for no, line in enumerate(text.splitlines(), 1):
        where = f"{fname}:{no}"
        m = _CLASS.match(line) or _FUNCTION.match(line)
        if m:
            if current:
                yield current
            loss_id = _resolve(m.group(1))
            current = None
            if loss_id is None:
                continue
            listing = Listing(source, function=bool(_FUNCTION.match(line)))
            params = parse_signature(m.group(2))
            if _FUNCTION.match(line):  # a function: positional parameters are the inputs
                listing.forward = [p for p in params if p.default is None]
                listing.constructor = [p for p in params if p.default is not None]
            else:
                listing.constructor = params
            for p in params:
                listing.quote(p.name, where, line)
            current = (loss_id, listing)
            continue
        if current is None:
            continue
        listing = current[1]
        m = _FORWARD.match(line) or _HYBRID_SUMMARY.match(line)
        if m and listing.forward is None:
            listing.forward = parse_signature(m.group(1))
            for p in listing.forward:
                listing.quote(p.name, where, line)
            continue
        m = _PARAM_BULLET.match(line)
        if m:
            d = _DEFAULT_IN_TYPE.search(m.group(2))
            listing.parameters.append(Param(m.group(1), _normalise_default(d.group(1)) if d else None))
            listing.quote(m.group(1), where, line)
            continue
        m = _INPUT_BULLET.match(line)
        if m and m.group(1) not in _OUTPUT_NAMES:
            listing.inputs.append(m.group(1))
            listing.quote(m.group(1), where, line)
    if current:
        yield current


# ------------------------------------------------------------------- installed docstrings

_NP_PARAM = re.compile(r"^\s{4}(\w+)\s*:\s*(.*)$")
_NP_INPUT = re.compile(r"^\s*- \*\*(\w+)\*\*:")
_GOOGLE_ARG = re.compile(r"^\s{8}(\w+) \((.*?)\):")


def _docstring_listing(source: str, entry: dict, fname: str, function: bool) -> Listing:
    """The Parameters (or Args) and Inputs lists of a captured docstring."""
    listing = Listing(source, function=function)
    section = None
    for k, line in enumerate(entry["doc"].splitlines()):
        where = f"{fname}:{entry['doc_line'] + k}"
        stripped = line.strip()
        if stripped in ("Parameters", "Args:"):
            section = "parameters"
            continue
        if stripped.startswith("Inputs:"):
            section = "inputs"
            continue
        if stripped.startswith(("Outputs:", "Returns:", "References", "Return type", ".. admonition")):
            section = None
            continue
        if section == "parameters":
            m = _NP_PARAM.match(line) or _GOOGLE_ARG.match(line)
            if m and not stripped.startswith("-"):
                d = _DEFAULT_IN_TYPE.search(m.group(2))
                default = _normalise_default(d.group(1).strip("`,")) if d else None
                listing.parameters.append(Param(m.group(1), default))
                listing.quote(m.group(1), where, line)
        elif section == "inputs":
            m = _NP_INPUT.match(line)
            if m and m.group(1) not in _OUTPUT_NAMES:
                listing.inputs.append(m.group(1))
                listing.quote(m.group(1), where, line)
    return listing


@dataclass
class Installed:
    """What the installed code of one loss takes (``inspect.signature``)."""

    framework: str  # "MXNet 1.9.1"
    constructor: list[Param]
    forward: list[Param]
    quotes: dict[str, list[Quote]] = field(default_factory=dict)
    #: the def lines themselves (quoted where the code lacks a documented name)
    signatures: tuple[Quote, ...] = ()


@cache
def _captured(framework: str) -> dict | None:
    path = DOCUMENTED_DIR / INSTALLED_FILES[framework]
    if not path.exists():
        return None
    return json.loads(path.read_text())


def _params(raw: list) -> list[Param]:
    return [Param(n, d) for n, d in raw if n not in ("self", "F") and not n.startswith("*")]


@cache
def installed(loss_id: str) -> tuple[Installed, Listing] | None:
    """The installed code's signature and docstring of a loss, from the captured JSON."""
    for framework in INSTALLED_FILES:
        cap = _captured(framework)
        if cap is None or loss_id not in cap["losses"]:
            continue
        entry = cap["losses"][loss_id]
        label = f"{cap['name']} {cap['version']}"
        fname = entry["file"]
        quotes: dict[str, list[Quote]] = {}
        for part in ("constructor", "forward"):
            sig = entry[part]
            for p in _params(sig["params"]):
                quotes.setdefault(p.name, []).append(Quote(f"{fname}:{sig['line']}", sig["text"]))
        ctor, fwd = _params(entry["constructor"]["params"]), _params(entry["forward"]["params"])
        sigs = tuple(dict.fromkeys(Quote(f"{fname}:{entry[part]['line']}", entry[part]["text"])
                                   for part in ("constructor", "forward")))
        if entry["kind"] == "function":  # positional parameters are the inputs
            ctor, fwd = [p for p in fwd if p.default is not None], [p for p in fwd if p.default is None]
        return (
            Installed(label, ctor, fwd, quotes, sigs),
            _docstring_listing(f"{label} docstring", entry, fname, entry["kind"] == "function"),
        )
    return None


@cache
def documented_signatures() -> dict[str, list[Listing]]:
    """Every loss id -> what each document says about it (seed pages, installed docstring)."""
    out: dict[str, list[Listing]] = {}
    for fname in SEED_FILES:
        text = (DOCUMENTED_DIR / fname).read_text(encoding="utf-8")
        for loss_id, listing in _seed_listings(fname, text):
            out.setdefault(loss_id, []).append(listing)
    for loss_id in catalog.loss_ids():
        got = installed(loss_id)
        if got is not None:
            out.setdefault(loss_id, []).append(got[1])
    return out


# ------------------------------------------------------------------- the comparison


@dataclass(frozen=True)
class Documented:
    """The union of the documents for one loss: each name, where it is documented, and as what."""

    options: dict[str, list[str]]  # name -> the places that document it as a constructor option
    inputs: dict[str, list[str]]  # name -> the places that document it as a forward input
    defaults: dict[str, dict[str, str]]  # name -> {place: default as written}
    quotes: dict[str, list[Quote]]


def documented(loss_id: str) -> Documented:
    options: dict[str, list[str]] = {}
    inputs: dict[str, list[str]] = {}
    defaults: dict[str, dict[str, str]] = {}
    quotes: dict[str, list[Quote]] = {}
    listings = documented_signatures().get(loss_id, [])
    # a function's documented positional parameters are its inputs, also in its Args list
    positional = {p.name for li in listings if li.function for p in li.forward or []}
    got = installed(loss_id)
    if got is not None and got[1].function:
        positional |= {p.name for p in got[0].forward}
    for listing in listings:
        for kind, params, target in (
            ("constructor signature", listing.constructor or [], options),
            ("Parameters list", listing.parameters, options),
            ("forward signature", listing.forward or [], inputs),
        ):
            for p in params:
                said, into = kind, target
                if listing.function:
                    said = "Args list" if kind == "Parameters list" else "signature"
                    into = inputs if p.name in positional else options
                where = f"{listing.source}, {said}"
                into.setdefault(p.name, []).append(where)
                if p.default is not None:
                    defaults.setdefault(p.name, {})[where] = p.default
        for name in listing.inputs:
            inputs.setdefault(name, []).append(f"{listing.source}, Inputs list")
        for name, qs in listing.quotes.items():
            quotes.setdefault(name, []).extend(qs)
    return Documented(options, inputs, defaults, quotes)


@dataclass(frozen=True)
class Divergence:
    """One place where the documents, the installed code and the catalog do not say the same."""

    loss_id: str
    name: str
    kind: str
    detail: str
    quotes: tuple[Quote, ...]

    @property
    def key(self) -> str:
        return f"{self.loss_id.rsplit('.', 1)[-1]}:{self.name}:{self.kind}"

    @property
    def decision(self) -> str | None:
        return DECISIONS.get(self.key)


#: the kinds of divergence :func:`divergences` reports
KINDS = {
    "code-lacks": "documented, but the installed code's signature does not take it",
    "code-only": "the installed code takes it, but no document lists it",
    "oracle-only": "the catalog has it, but no document lists it",
    "documents-disagree": "one document lists it and another, which lists that kind, does not",
    "placement": "documented as a constructor option in one place and as a forward input in another, "
    "or placed differently by the code or the catalog",
    "default": "the documented defaults, the code's default and the catalog's default are not all equal",
}


def _catalog_place(spec: catalog.LossSpec, name: str) -> str | None:
    if any(o.name == name for o in spec.options):
        return "option"
    if any(i.name == name for i in spec.inputs):
        return "input"
    return None


def missing_from_catalog(loss_id: str) -> list[str]:
    """Documented options and inputs that the catalog lacks (there must be none)."""
    spec = catalog.spec(loss_id)
    doc = documented(loss_id)
    return sorted(n for n in {*doc.options, *doc.inputs} if _catalog_place(spec, n) is None)


def divergences(loss_id: str) -> list[Divergence]:
    """Every divergence of one loss, in name order."""
    spec = catalog.spec(loss_id)
    doc = documented(loss_id)
    got = installed(loss_id)
    code = got[0] if got else None
    code_ctor = {p.name: p for p in code.constructor} if code else {}
    code_fwd = {p.name: p for p in code.forward} if code else {}
    listings = documented_signatures().get(loss_id, [])
    names = sorted({*doc.options, *doc.inputs, *code_ctor, *code_fwd, *(o.name for o in spec.options),
                    *(i.name for i in spec.inputs)})
    out: list[Divergence] = []

    def add(name: str, kind: str, detail: str) -> None:
        quotes = list(doc.quotes.get(name, []))
        if code:
            quotes += code.quotes.get(name, []) or (list(code.signatures) if kind in ("code-lacks", "placement") else [])
        out.append(Divergence(loss_id, name, kind, detail, tuple(dict.fromkeys(quotes))))

    for name in names:
        as_option, as_input = name in doc.options, name in doc.inputs
        place = _catalog_place(spec, name)
        in_code = "constructor" if name in code_ctor else "forward" if name in code_fwd else None
        if not (as_option or as_input):
            if in_code:
                add(name, "code-only", f"{code.framework} takes it in its {in_code}; no document lists it")
            if place:
                add(name, "oracle-only", f"the catalog has it as an {place}; no document lists it")
            continue
        if code and in_code is None:
            add(name, "code-lacks", f"documented as {'an input' if as_input else 'an option'}; "
                f"{code.framework}'s signatures do not take it")
        doc_place = {"option"} if as_option and not as_input else {"input"} if as_input and not as_option else {
            "option", "input"}
        code_place = {"constructor": "option", "forward": "input", None: None}[in_code]
        if len(doc_place) > 1 or (place and place not in doc_place) or (
            code_place and code_place not in doc_place
        ):
            said = []
            for p in sorted(doc_place):
                places = doc.options[name] if p == "option" else doc.inputs[name]
                what = "a constructor option" if p == "option" else "a forward input"
                said.append(f"{what} ({'; '.join(places)})")
            taker = code.framework if code else "the code"
            add(name, "placement", "documented as " + " and as ".join(said)
                + f"; {taker} takes it in its {in_code or '-'}; the catalog has it as an {place}")
        # documents disagree: a listing that has a list of the name's kind but not the name
        absent = []
        for listing in listings:
            lists = []
            if as_input:
                lists += [("forward signature", [p.name for p in listing.forward or []]),
                          ("Inputs list", listing.inputs)]
            if as_option:
                lists += [("constructor signature", [p.name for p in listing.constructor or []]),
                          ("Parameters list", [p.name for p in listing.parameters])]
            for what, present in lists:
                if present and name not in present and not (
                    what == "Parameters list" and as_input and name not in doc.options
                ):
                    absent.append(f"{listing.source}, {what}")
        if absent:
            add(name, "documents-disagree", "not in: " + "; ".join(absent))
        # defaults
        values = dict(doc.defaults.get(name, {}))
        code_param = code_ctor.get(name) or code_fwd.get(name)
        if code_param is not None and code_param.default is not None:
            values[f"{code.framework} code"] = code_param.default
        if place == "option":
            values["catalog"] = repr(spec.option(name).default)
        written = list(values.items())
        if any(not _same_default(written[0][1], v) for _, v in written[1:]):
            add(name, "default", "; ".join(f"{w}: {v}" for w, v in written))
    return out


def all_divergences() -> list[Divergence]:
    return [d for loss_id in catalog.loss_ids() for d in divergences(loss_id)]


# ------------------------------------------------------------------- decisions

#: the decision taken on each divergence, by ``Short:name:kind``. Where a reading of the
#: catalog already quotes the text and states the reading, the decision points to it.
DECISIONS: dict[str, str] = {
    "SigmoidBinaryCrossEntropyLoss:pos_weight:documents-disagree": (
        "The seed page 001 (an older rendering: its method table shows hybrid_forward(F, pred, "
        "label[, sample_weight])) lists no pos_weight; the installed 1.9.1 docstring lists it under "
        "Inputs ('pos_weight: a weighting tensor of positive examples') and its formulas multiply "
        "the positive term by pos_weight. Therefore pos_weight is a documented optional forward "
        "input (the newer document adds it, none removes it); without it the loss is the seed "
        "page's formula (pos_weight = 1). See the readings 'pos_weight shape' and 'pos_weight in "
        "the from_sigmoid=False formula'."
    ),
    "CTCLoss:sample_weight:code-only": (
        "No document lists sample_weight for CTCLoss (its Inputs list names pred, label, "
        "pred_lengths, label_lengths; its constructor signature has no batch_axis either); MXNet "
        "1.9.1's hybrid_forward takes it last and applies the shared _apply_weighting ('Per sample "
        "weighting'). Therefore kept in the catalog as an optional input with that shared meaning "
        "(see the reading 'sample_weight'), because it is the one convention every Gluon loss "
        "shares; cases without it check the documented API alone. A framework that fails only the "
        "cases passing it deviates from MXNet's code, not from the documentation, and the "
        "expectation entry must say so."
    ),
    "CTCLoss:sample_weight:oracle-only": (
        "The same input as 'CTCLoss:sample_weight:code-only': kept, as decided there."
    ),
    "TripletLoss:sample_weight:code-lacks": (
        "Documented: forward(pred, positive, negative, sample_weight=None). MXNet 1.9.1's "
        "hybrid_forward(self, F, pred, positive, negative) (mxnet/gluon/loss.py:793) lacks it and "
        "returns _apply_weighting(F, loss, self._weight, None) (loss.py:799). The "
        "documentation is the truth, so sample_weight is an input of the oracle (an earlier reading "
        "dropped it because the code lacks it; issue 13 reversed that). The fixtures carry "
        "sample_weight cases; MXNet 1.9.1 fails them with a TypeError, listed as its finding in "
        "conformance/expectations/mxnet-1.9.1.toml."
    ),
    "TripletLoss:sample_weight:documents-disagree": (
        "The forward signature lists sample_weight; the Inputs lists (seed 002 and the 1.9.1 "
        "docstring) name only pred, positive and negative. Therefore a list that leaves an input "
        "out does not remove it from the signature that documents it; its meaning is the shared "
        "Loss convention applied to a loss that is per sample: one weight per sample (see the "
        "reading 'sample_weight')."
    ),
    "PoissonNLLLoss:epsilon:placement": (
        "epsilon is documented under the constructor's Parameters ('epsilon (float, default "
        "1e-08) - This is to avoid calculating log(0)') and in forward's signature (forward(pred, "
        "target, sample_weight=None, epsilon=1e-08)); MXNet 1.9.1's __init__ lacks it (its **kwargs "
        "go to HybridBlock.__init__, which rejects it: TypeError) and its hybrid_forward takes it. Therefore an option of the "
        "catalog (a scalar documented with the constructor's Parameters), default 1e-08; adapters "
        "pass it where the Parameters list puts it, the constructor, so MXNet 1.9.1 rejects a "
        "non-default epsilon: its finding. See the reading 'epsilon is an option'."
    ),
    "PoissonNLLLoss:epsilon:documents-disagree": (
        "The constructor signature (weight=None, from_logits=True, batch_axis=0, "
        "compute_full=False, **kwargs) and the Inputs lists leave epsilon out; the Parameters lists "
        "and forward's signature have it: the contradiction decided under "
        "'PoissonNLLLoss:epsilon:placement'."
    ),
}


# ------------------------------------------------------------------- capturing the installed packages


def _signature(fn) -> dict:
    sig = inspect.signature(fn)
    lines, start = inspect.getsourcelines(fn)
    text, count = "", 0
    for line in lines:  # the def line(s), up to the colon that ends them
        text += line.strip() + " "
        count += 1
        if line.rstrip().endswith(":"):
            break
    params = []
    for p in sig.parameters.values():
        name = ("**" if p.kind is p.VAR_KEYWORD else "*" if p.kind is p.VAR_POSITIONAL else "") + p.name
        params.append([name, None if p.default is p.empty else repr(p.default)])
    return {"line": start, "lines": count, "text": re.sub(r"\s+", " ", text).strip(), "params": params}


def _relative(path: str, package: str) -> str:
    parts = Path(path).parts
    last = len(parts) - 1 - parts[::-1].index(package)  # site-packages/<package>/...
    return "/".join(parts[last:])


def capture(framework: str) -> dict:
    """The docstrings and signatures of the installed framework's losses (run in its environment)."""
    losses: dict[str, dict] = {}
    if framework == "mxnet":
        import mxnet
        from mxnet.gluon import loss as gloss

        for loss_id in catalog.loss_ids():
            if not loss_id.startswith("mxnet.gluon.loss."):
                continue
            cls = getattr(gloss, loss_id.rsplit(".", 1)[-1])
            _, class_line = inspect.getsourcelines(cls)
            losses[loss_id] = {
                "kind": "class",
                "file": _relative(inspect.getsourcefile(cls), "mxnet"),
                "constructor": _signature(cls.__init__),
                "forward": _signature(cls.hybrid_forward),
                "doc": cls.__doc__,
                "doc_line": class_line + 1,
            }
        return {"name": "MXNet", "version": mxnet.__version__, "losses": losses}
    if framework == "chainer":
        import chainer
        import chainer.functions as F

        fn = F.softmax_cross_entropy
        sig = _signature(fn)
        losses["chainer.functions.softmax_cross_entropy"] = {
            "kind": "function",
            "file": _relative(inspect.getsourcefile(fn), "chainer"),
            "constructor": {"line": sig["line"], "lines": sig["lines"], "text": sig["text"], "params": []},
            "forward": sig,
            "doc": fn.__doc__,
            "doc_line": sig["line"] + sig["lines"],
        }
        return {"name": "Chainer", "version": chainer.__version__, "losses": losses}
    raise SystemExit(f"lossconf spec capture: unknown framework {framework!r}; expected mxnet or chainer")


def main(argv: list[str] | None = None) -> int:
    """``python -m oracle.spec_sources capture mxnet|chainer [-o FILE]``: write the captured JSON."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) < 2 or args[0] != "capture":
        print("usage: python -m oracle.spec_sources capture mxnet|chainer [-o FILE]", file=sys.stderr)
        return 2
    data = capture(args[1])
    text = json.dumps(data, indent=1, sort_keys=True) + "\n"
    out = args[args.index("-o") + 1] if "-o" in args else str(DOCUMENTED_DIR / INSTALLED_FILES[args[1]])
    Path(out).write_text(text)
    print(f"captured {len(data['losses'])} losses of {data['name']} {data['version']} to {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
