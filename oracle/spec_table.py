"""The spec table, generated from the catalog: each loss with its options and defaults,
its inputs and output shape, and every documented ambiguity with the reading chosen.
``lossconf spec`` prints it; ``docs/SPEC.md`` is the committed copy."""

from __future__ import annotations

from . import catalog


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
        if s.readings:
            out += ["", "Readings of ambiguous documentation:", ""]
            for n, r in enumerate(s.readings, 1):
                out.append(f"{n}. **{r.topic}.** The text: \"{r.quote}\" -- Reading: {r.reading}")
    return "\n".join(out) + "\n"
