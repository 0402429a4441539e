"""The spec table, generated from the catalog: each loss with its options and defaults,
its inputs and output shape, its documented signature next to the installed frameworks'
signatures (:mod:`oracle.spec_sources`), every divergence between them with the decision
taken, and every documented ambiguity with the reading chosen.
``lossconf spec`` prints it; ``docs/SPEC.md`` is the committed copy."""

from __future__ import annotations

from . import catalog
from . import spec_sources as S


def _value(v: object) -> str:
    return f"`{v!r}`"


def render_markdown() -> str:
    out = [
        "# lossconf spec table",
        "",
        "Generated from the oracle's catalog by `lossconf spec` -- do not edit by hand.",
        "Each loss: its documented options with defaults and valid values, its forward inputs",
        "(differentiable ones marked), the output shape rule, and every place where the",
        "documentation is ambiguous or contradicts itself, quoted, with the reading the oracle follows.",
        "Each loss also shows its documented signature -- read from the seed documents",
        "(`oracle/documented/*.txt`) and the installed docstrings -- next to the installed code's",
        "signatures (MXNet 1.9.1, Chainer 7.8.1; captured by `python -m oracle.spec_sources capture`",
        "into `oracle/documented/installed-*.json`), and every divergence between the documents, the",
        "code and the catalog, quoted, with the decision taken. The documentation is the truth: an",
        "input or option a document lists is in the catalog even where a framework's code lacks it.",
        "",
        "| loss | aliases | options (default) | inputs | output |",
        "| --- | --- | --- | --- | --- |",
    ]
    for s in catalog.all_specs():
        opts = "<br>".join(f"`{o.name}`={_value(o.default)}" for o in s.options)
        inputs = "<br>".join(
            f"`{i.name}`" + (" (d)" if i.differentiable else "") + (" (optional)" if i.optional else "") for i in s.inputs
        )
        out.append(f"| `{s.id}` | {', '.join(s.aliases) or '-'} | {opts} | {inputs} | {s.output_shape} |")
    out.append("")
    out.append("(d): differentiable; the oracle gives the exact VJP for it.")
    out += _summary()
    for s in catalog.all_specs():
        out += ["", f"## {s.short_name}", "", f"`{s.id}` -- {s.summary}", "", f"Formula: `{s.formula}`", ""]
        out += ["| option | default | valid values | notes |", "| --- | --- | --- | --- |"]
        for o in s.options:
            note = o.doc
            if o.value_neutral:
                note += f" **Does not change values:** {o.neutral_reason}"
            out.append(f"| `{o.name}` | {_value(o.default)} | {o.expected()} | {note} |")
        out += ["", "| input | kind | differentiable | description |", "| --- | --- | --- | --- |"]
        for i in s.inputs:
            out.append(
                f"| `{i.name}`{' (optional)' if i.optional else ''} | {i.kind} | {'yes' if i.differentiable else 'no'} | {i.doc} |"
            )
        out += ["", f"Output shape: {s.output_shape}"]
        out += _signatures(s)
        if s.readings:
            out += ["", "Readings of ambiguous documentation:", ""]
            for n, r in enumerate(s.readings, 1):
                out.append(f"{n}. **{r.topic}.** The text: \"{r.quote}\" -- Reading: {r.reading}")
    return "\n".join(out) + "\n"


def _sig(params: list[S.Param] | None) -> str:
    return "-" if params is None else "(" + ", ".join(p.render() for p in params) + ")"


def _summary() -> list[str]:
    divs = S.all_divergences()
    readings = sum(len(s.readings) for s in catalog.all_specs())
    out = [
        "",
        "## Divergences at a glance",
        "",
        f"{len(divs)} divergences of signature between the documents, the installed code and the "
        f"catalog (each with its decision under its loss), and {readings} readings of ambiguous or "
        "self-contradicting documentation (each quoted under its loss).",
        "",
        "| loss | name | kind | what differs |",
        "| --- | --- | --- | --- |",
    ]
    for d in divs:
        out.append(f"| `{d.loss_id.rsplit('.', 1)[-1]}` | `{d.name}` | {d.kind} | {d.detail} |")
    out += ["", "Kinds: " + "; ".join(f"**{k}**: {v}" for k, v in S.KINDS.items()) + "."]
    return out


def _signatures(spec: catalog.LossSpec) -> list[str]:
    out = ["", "Signatures, documented and installed:", ""]
    out += ["| source | constructor / options | forward inputs |", "| --- | --- | --- |"]
    for listing in S.documented_signatures().get(spec.id, []):
        if listing.constructor is not None or listing.forward is not None:
            out.append(f"| {listing.source}, signature | `{_sig(listing.constructor)}` | `{_sig(listing.forward)}` |")
        if listing.parameters or listing.inputs:
            label = "Args" if listing.function else "Parameters / Inputs"
            params = ", ".join(p.render() for p in listing.parameters) or "-"
            out.append(f"| {listing.source}, {label} lists | {params} | {', '.join(listing.inputs) or '-'} |")
    got = S.installed(spec.id)
    if got is not None:
        code = got[0]
        out.append(f"| {code.framework} code (`inspect.signature`) | `{_sig(code.constructor)}` | `{_sig(code.forward)}` |")
    opts = ", ".join(f"{o.name}={o.default!r}" for o in spec.options)
    inputs = ", ".join(i.name + ("=None" if i.optional else "") for i in spec.inputs)
    out.append(f"| the catalog (the oracle) | `({opts})` | `({inputs})` |")
    divs = S.divergences(spec.id)
    out += ["", "Divergences:" if divs else "Divergences: none (the documents, the code and the catalog name the same options and inputs with the same defaults)."]
    for n, d in enumerate(divs, 1):
        out += ["", f"{n}. **`{d.name}`, {d.kind}.** {d.detail}."]
        for q in d.quotes:
            out.append(f"   - {q.render()}")
        out.append(f"   - Decision: {d.decision or '(none recorded)'}")
    return out
