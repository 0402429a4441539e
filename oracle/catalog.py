"""The spec catalog: every documented loss by its documented id, with its constructor
options (default and valid values), its forward inputs by their documented names, its
output shape rule, which inputs are differentiable, and every place where the
documentation is ambiguous together with the reading chosen.

Each loss module in :mod:`oracle.losses` declares one :class:`LossSpec` as ``SPEC``; the
catalog is their union. Nothing here knows a formula.
"""

from __future__ import annotations

import importlib
import math
import numbers
import pkgutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np

from .errors import OptionError, UnknownLossError, describe


@dataclass(frozen=True)
class OptionSpec:
    """A documented constructor (or keyword) option."""

    name: str
    default: Any
    kind: str  # 'bool' | 'enum' | 'int' | 'float' | 'weight' | 'array'
    doc: str
    choices: tuple = ()
    #: extra domain check on the value; returns an error text or None
    check: Callable[[Any], str | None] | None = None
    #: values every fixture set covers besides the default
    fixture_values: tuple = ()
    #: true when the option cannot change values or gradients (e.g. a caching switch)
    value_neutral: bool = False
    neutral_reason: str = ""
    #: the valid values in words, where ``check`` narrows the kind (e.g. "> 0")
    domain: str = ""

    def expected(self) -> str:
        if self.domain:
            return self.domain
        if self.kind == "bool":
            return "True or False"
        if self.kind == "enum":
            return "one of " + ", ".join(repr(c) for c in self.choices)
        if self.kind == "int":
            return "an int"
        if self.kind == "weight":
            return "None or a finite real number"
        if self.kind == "float":
            return "a finite real number"
        if self.kind == "array":
            return "None or a 1-D array of floats"
        return self.kind

    def validate(self, loss_id: str, value: Any) -> Any:
        bad = None
        if self.kind == "bool":
            ok = isinstance(value, bool)
        elif self.kind == "enum":
            ok = value in self.choices
        elif self.kind == "int":
            ok = isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))
            if ok:
                value = int(value)  # numpy integers are accepted and normalised
        elif self.kind in ("float", "weight"):
            if value is None and self.kind == "weight":
                ok = True
            else:
                ok = (
                    isinstance(value, numbers.Real)
                    and not isinstance(value, (bool, np.bool_))
                    and math.isfinite(value)
                )
                if ok and not isinstance(value, int):
                    value = float(value)  # numpy floats are accepted and normalised
        elif self.kind == "array":
            ok = True  # shape is checked against the inputs by the loss module
        else:  # pragma: no cover - catalog bug
            raise AssertionError(self.kind)
        if ok and self.check is not None and value is not None:
            bad = self.check(value)
            ok = bad is None
        if not ok:
            raise OptionError(
                f"{loss_id}: option {self.name}={describe(value)} is invalid; "
                f"expected {bad or self.expected()}"
            )
        return value


@dataclass(frozen=True)
class InputSpec:
    """A documented forward input."""

    name: str
    doc: str
    kind: str = "float"  # 'float' or 'int'
    optional: bool = False
    differentiable: bool = False


@dataclass(frozen=True)
class Reading:
    """A place where the documentation is ambiguous or contradicts itself (or the code),
    the quoted text, and the reading the oracle follows."""

    topic: str
    quote: str
    reading: str


@dataclass(frozen=True)
class LossSpec:
    id: str
    summary: str
    formula: str
    options: tuple[OptionSpec, ...]
    inputs: tuple[InputSpec, ...]
    output_shape: str
    aliases: tuple[str, ...] = ()
    readings: tuple[Reading, ...] = ()
    source: str = ""

    @property
    def short_name(self) -> str:
        return self.id.rsplit(".", 1)[-1]

    @property
    def differentiable(self) -> tuple[str, ...]:
        return tuple(i.name for i in self.inputs if i.differentiable)

    def option(self, name: str) -> OptionSpec:
        for opt in self.options:
            if opt.name == name:
                return opt
        raise OptionError(
            f"{self.id}: unknown option {name!r}; documented options are "
            + ", ".join(o.name for o in self.options)
        )

    def input(self, name: str) -> InputSpec:
        for inp in self.inputs:
            if inp.name == name:
                return inp
        raise KeyError(name)

    def defaults(self) -> dict[str, Any]:
        return {o.name: o.default for o in self.options}

    def resolve_options(self, options: dict[str, Any] | None) -> dict[str, Any]:
        """Documented defaults overlaid with ``options``, each validated."""
        resolved = self.defaults()
        for name, value in (options or {}).items():
            resolved[name] = self.option(name).validate(self.id, value)
        return resolved


# ------------------------------------------------------------------------ registry


@dataclass
class _Registry:
    modules: dict[str, ModuleType] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)  # every accepted name -> id


_registry: _Registry | None = None


def _load() -> _Registry:
    global _registry
    if _registry is None:
        from . import losses

        reg = _Registry()
        for info in sorted(pkgutil.iter_modules(losses.__path__), key=lambda m: m.name):
            if info.name.startswith("_"):
                continue
            module = importlib.import_module(f"{losses.__name__}.{info.name}")
            spec: LossSpec = module.SPEC
            reg.modules[spec.id] = module
            for name in (spec.id, spec.short_name, *spec.aliases):
                reg.names[name] = spec.id
                reg.names[name.lower()] = spec.id
        _registry = reg
    return _registry


def loss_ids() -> list[str]:
    """Every documented loss id, MXNet's first, in documentation order."""
    return sorted(_load().modules, key=_doc_order)


_DOC_ORDER = (
    "L2Loss L1Loss SigmoidBinaryCrossEntropyLoss SoftmaxCrossEntropyLoss KLDivLoss CTCLoss "
    "HuberLoss HingeLoss SquaredHingeLoss LogisticLoss TripletLoss PoissonNLLLoss "
    "CosineEmbeddingLoss SDMLLoss softmax_cross_entropy"
).split()


def _doc_order(loss_id: str) -> tuple[int, str]:
    short = loss_id.rsplit(".", 1)[-1]
    return (_DOC_ORDER.index(short) if short in _DOC_ORDER else len(_DOC_ORDER), loss_id)


def resolve(name: str) -> str:
    """The documented id for a loss id, short name or alias (``SoftmaxCELoss``)."""
    reg = _load()
    for key in (name, name.lower(), name.rsplit(".", 1)[-1], name.rsplit(".", 1)[-1].lower()):
        if key in reg.names:
            return reg.names[key]
    raise UnknownLossError(
        f"unknown loss {name!r}; documented losses are: " + ", ".join(loss_ids())
    )


def spec(name: str) -> LossSpec:
    """The :class:`LossSpec` of a loss, by id or alias."""
    return _load().modules[resolve(name)].SPEC


def module(name: str) -> ModuleType:
    return _load().modules[resolve(name)]


def all_specs() -> Sequence[LossSpec]:
    return [spec(i) for i in loss_ids()]
