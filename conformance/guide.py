"""The "writing a backend" guide, ``docs/WRITING_A_BACKEND.md``, generated so that it
cannot drift: the call's fields from :class:`conformance.protocol.Call`, one table per
loss from the oracle's catalog (inputs, options, defaults, valid values, output shape)
and from the fixtures (the dtypes and shapes a backend actually receives, sample_weight
shapes, option values, the invalid inputs it must reject), the expectation-file format
from :mod:`conformance.harness.expectations`, and a worked example whose commands are
run while the guide is generated (their output is pasted, not typed).

``lossconf guide -o docs/WRITING_A_BACKEND.md`` writes it; a test checks it is current."""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
import tempfile
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from . import fixtures as fx
from .harness import expectations as ex
from .protocol import MODES, Call

MAX_SHAPES = 8

#: what each field of a Call means for a backend (a field missing here stops generation)
CALL_FIELDS = {
    "loss": "the documented id, e.g. `mxnet.gluon.loss.L2Loss` (never an alias)",
    "options": "every documented constructor option of the loss, the documented defaults filled in "
               "(so `call.options[\"weight\"]` always exists; it may be `None`)",
    "inputs": "the forward inputs by their documented names (a dict of numpy arrays); optional inputs the "
              "case does not use are absent, not `None`",
    "dtype": "`\"float16\"`, `\"bfloat16\"`, `\"float32\"` or `\"float64\"`: the dtype the output and every "
             "gradient must have (`bfloat16` arrays are `ml_dtypes.bfloat16`)",
    "wrt": "the inputs to return a VJP for (the differentiable inputs present; empty for an invalid-input case)",
    "cotangent": "the vector of the vector-Jacobian product, output-shaped, in `call.dtype` (`None` when `wrt` is empty)",
    "mode": f"the path to run: {', '.join(f'`{m}`' for m in MODES)} (fixture runs use `grad`)",
    "direction": "mode `hvp` only: the direction of the Hessian-vector product, one array per input in `wrt`",
}

EXAMPLE = '''\
import numpy as np
from conformance.protocol import Call, Outcome

class MyBackend:
    name = "mine"
    version = "1.0"

    def supports(self, call: Call) -> str | None:
        if call.loss != "mxnet.gluon.loss.L2Loss" or "sample_weight" in call.inputs:
            return "only L2Loss without sample_weight"
        return None                                   # None: supported

    def run(self, call: Call) -> Outcome:
        pred = call.inputs["pred"]
        label = call.inputs["label"].reshape(pred.shape)
        w = 1.0 if call.options["weight"] is None else call.options["weight"]
        axes = tuple(a for a in range(pred.ndim) if a != call.options["batch_axis"] % pred.ndim)
        n = int(np.prod([pred.shape[a] for a in axes]))
        sq = w / 2 * (pred - label) ** 2
        out = sq.mean(axis=axes, dtype=np.float64).astype(call.dtype)  # sum in float64
        ct = np.expand_dims(call.cotangent, axes)     # the VJP's vector, output-shaped
        return Outcome(out, {"pred": (ct * w * (pred - label) / n).astype(call.dtype)})

backend = MyBackend()
'''

FIX_OLD = '''        sq = w / 2 * (pred - label) ** 2
        out = sq.mean(axis=axes, dtype=np.float64).astype(call.dtype)  # sum in float64
        ct = np.expand_dims(call.cotangent, axes)     # the VJP's vector, output-shaped
        return Outcome(out, {"pred": (ct * w * (pred - label) / n).astype(call.dtype)})
'''
FIX_NEW = '''        wide = np.float64 if call.dtype != "float64" else pred.dtype
        d = pred.astype(wide) - label.astype(wide)    # pred - label overflows float16/float32
        out = (w / 2 * d**2).mean(axis=axes).astype(call.dtype)
        ct = np.expand_dims(call.cotangent, axes)     # the VJP's vector, output-shaped
        return Outcome(out, {"pred": (ct * w * d / n).astype(call.dtype)})
'''


# ------------------------------------------------------------------ from the fixtures


def _shape(s: Iterable[int]) -> str:
    s = tuple(s)
    return "(" + ", ".join(map(str, s)) + ("," if len(s) == 1 else "") + ")"


def _shapes(shapes: Iterable[tuple[int, ...]]) -> str:
    distinct = sorted(set(shapes), key=lambda s: (len(s), s))
    text = ", ".join(_shape(s) for s in distinct[:MAX_SHAPES])
    if len(distinct) > MAX_SHAPES:
        text += f", … ({len(distinct)} shapes)"
    return text


def _dtypes(pairs: list[tuple[str, str]]) -> str:
    """How an input's dtype relates to the case's: ``call.dtype``, or a fixed dtype."""
    if pairs and all(a == c for a, c in pairs):
        return "`call.dtype`"
    fixed = sorted({a for a, _ in pairs})
    return ", ".join(f"`{d}`" for d in fixed)


def _value(v: Any) -> str:
    return repr(v)


def observed(cases: list[fx.FixtureCase]) -> dict[str, dict[str, Any]]:
    """Per loss id: what the fixtures hand a backend."""
    out: dict[str, dict[str, Any]] = {}
    for c in cases:
        o = out.setdefault(c.loss, {
            "cases": 0, "invalid": defaultdict(int), "inputs": defaultdict(list), "dtypes": defaultdict(list),
            "present": defaultdict(int), "output": [], "weight_pairs": [], "options": defaultdict(set),
        })
        if c.invalid is not None:
            o["invalid"][c.invalid["rule"]] += 1
            continue
        o["cases"] += 1
        first = next(iter(c.inputs))
        for name, a in c.inputs.items():
            o["inputs"][name].append(tuple(a.shape))
            o["dtypes"][name].append((str(a.dtype), c.dtype))
            o["present"][name] += 1
        if "sample_weight" in c.inputs:
            o["weight_pairs"].append((first, tuple(c.inputs[first].shape), tuple(c.inputs["sample_weight"].shape)))
        o["output"].append(tuple(c.expected_shape))
        for k in c.given_options:
            o["options"][k].add(_value(c.options[k]))
    return out


# ------------------------------------------------------------------ the worked example


def _run(argv: list[str], cwd: Path) -> tuple[int, str]:
    env = dict(os.environ, PYTHONWARNINGS="ignore", LOSSCONF_FIXTURE_CACHE="0")
    env.pop("PYTHONPATH", None)
    proc = subprocess.run([sys.executable, "-m", "conformance.cli", *argv], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)
    return proc.returncode, proc.stdout + proc.stderr


def _trim_summary(text: str, losses: tuple[str, ...] = ("L2Loss", "total")) -> str:
    """A run's output with the summary cut to the rows of the example's loss and the
    counts (the worst-error columns depend on the machine's libm; the counts do not)."""
    out = []
    for line in text.splitlines():
        fields = line.split()
        if fields and fields[0] in ("loss", *losses) and len(fields) >= 7:
            out.append("  ".join(fields[:7]) if fields[0] != "loss" else "loss  pass  (stbl)  fail  error  skip  known")
        elif fields and len(fields) >= 7 and fields[1].isdigit():
            continue  # another loss's row: every check skipped as unsupported
        else:
            out.append(line)
    return "\n".join(out)


def worked_example(fixtures: Path | None = None) -> dict[str, str]:
    """Run the example backend, show a case, fix it, re-run one check and then all;
    each step's command and its output."""
    steps: dict[str, str] = {}
    extra = ["--fixtures", str(fixtures)] if fixtures else []
    with tempfile.TemporaryDirectory(prefix="lossconf-guide-") as tmp:
        d = Path(tmp)
        (d / "mine.py").write_text(EXAMPLE)
        code, text = _run(["run", "mine:backend", *extra], d)
        steps["run"] = _trim_summary(text.replace(str(fixtures), "FIXTURES") if fixtures else text)
        steps["run_code"] = str(code)
        first = re.search(r"^FAILED (\S+)$", text, re.M)
        if first is None:
            raise RuntimeError("the worked example no longer fails: the guide's story needs a new failure")
        steps["first"] = first.group(1)
        block = text[first.start():].split("\nFAILED ", 1)[0].split("\n=====", 1)[0]
        steps["block"] = block.replace(str(fixtures), "FIXTURES") if fixtures else block
        case = steps["first"].rsplit("-", 1)[0]
        steps["case"] = case
        code, text = _run(["show", case, *extra], d)
        steps["show"] = text
        (d / "mine.py").write_text(EXAMPLE.replace(FIX_OLD, FIX_NEW))
        code, text = _run(["run", "mine:backend", *extra, "--case", steps["first"]], d)
        steps["rerun"], steps["rerun_code"] = _trim_summary(text), str(code)
        code, text = _run(["run", "mine:backend", *extra, "--loss", "L2Loss"], d)
        steps["all"], steps["all_code"] = _trim_summary(text), str(code)
        (d / "mine.py").write_text(EXAMPLE)
        (d / "known.toml").write_text(_example_entry(steps["first"]))
        code, text = _run(["run", "mine:backend", *extra, "--loss", "L2Loss", "--expectations", "known.toml"], d)
        steps["known"], steps["known_code"] = _trim_summary(text), str(code)
    return steps


def _example_entry(first: str) -> str:
    return (
        "[[deviation]]\n"
        'loss = "mxnet.gluon.loss.L2Loss"\n'
        'dtype = ["float16", "float32"]\n'
        'check = "grad:pred"\n'
        'tags = ["extreme"]\n'
        'reason = "mine.py MyBackend.run line 22: ct * w * (pred - label) is computed in the input dtype and overflows '
        'for extreme inputs (fixed in 1.1)"\n'
    )


def _explain(cases: list[fx.FixtureCase], case_id: str) -> str:
    """Why the example fails on its first failing case, in numbers taken from the case
    (checked here: if the fixtures change, generation stops rather than mislead)."""
    import numpy as np

    (case,) = [c for c in cases if c.test_id == case_id]
    pred, label, ct = case.inputs["pred"], case.inputs["label"], case.cotangent
    with np.errstate(over="ignore"):
        d = pred - label
        i = int(np.argmax(np.abs(d.astype(np.float64))))
        row = np.unravel_index(i, d.shape)[0]
        product = ct[row] * d.flat[i]
    big = np.finfo(case.dtype).max
    if not (np.isfinite(d.flat[i]) and abs(d.flat[i]) == big and not np.isfinite(product)):
        raise RuntimeError(f"conformance/guide.py: the worked example's explanation no longer fits {case_id}")
    return (
        f"The exact gradient is finite, and so is `pred - label`: {pred.flat[i]:g} - ({label.flat[i]:g}) = "
        f"{d.flat[i]:g}, exactly the largest {case.dtype}. But `ct * w * (pred - label)` multiplies it by the "
        f"cotangent ({ct[row]:.4g}) before dividing by n, and that product overflows to inf. (In the float32 "
        f"case the difference itself, 2^128, overflows.) The documented formula has no such intermediate: "
        f"compute in a wider type, then round the result to `call.dtype`."
    )


# ------------------------------------------------------------------ the page


def render(fixtures: Path | None = None) -> str:
    """The guide's Markdown."""
    from oracle import catalog

    missing = [f.name for f in dataclasses.fields(Call) if f.name not in CALL_FIELDS]
    if missing:
        raise RuntimeError(f"conformance/guide.py: describe the Call field(s) {', '.join(missing)} in CALL_FIELDS")
    directory = Path(fixtures) if fixtures else fx.default_dir()
    cases = fx.load(directory)
    seen = observed(cases)
    ints = sorted({f"{c.short_loss}.{n}" for c in cases if c.invalid is None for n, a in c.inputs.items() if a.dtype.kind == "i"})
    steps = worked_example(Path(fixtures) if fixtures else None)
    o: list[str] = []
    w = o.append
    w("# Writing a backend")
    w("")
    w("Generated by `lossconf guide -o docs/WRITING_A_BACKEND.md` from the oracle's catalog, the fixtures and")
    w("a run of the example below -- do not edit by hand (a test checks it is current).")
    w("")
    w("A backend is any object with `name`, `version`, `supports(call)` and `run(call)`")
    w("([conformance/protocol.py](../conformance/protocol.py)); `build_info()` is optional (a dict that")
    w("the results record, e.g. a build's features), and so is `mapping()` (per loss: the framework call,")
    w("the composition around it and notes; `lossconf map` and the report's migration map show it).")
    w("Give it to lossconf as `module:attribute`")
    w("(the module is imported with the current directory first on the path, as `python -m` does),")
    w("or register it under the entry point group `lossconf.backends` and use its name.")
    w("")
    w("Contents: [the call](#the-call) · [the losses, one table each](#the-losses) ·")
    w("[reading a failure](#reading-a-failure) · [expectation entries](#expectation-entries) ·")
    w("[a worked example](#a-worked-example-from-a-failing-run-to-a-passing-one)")
    w("")
    w("## The call")
    w("")
    w("`run(call)` gets one `Call`; `supports(call)` gets the same object first and returns `None` (run it)")
    w("or the reason it cannot (the check is reported as unsupported, with that reason).")
    w("")
    w("| field | what it holds |")
    w("| --- | --- |")
    for f in dataclasses.fields(Call):
        w(f"| `call.{f.name}` | {CALL_FIELDS[f.name]} |")
    w("")
    w("Conventions every loss follows (the tables below give each loss's details):")
    w("")
    w("* **Floating inputs arrive in `call.dtype`**, class labels of the cross-entropies included (as")
    w("  whole numbers in that dtype). Integer inputs arrive as `int64`: " + ", ".join(f"`{x}`" for x in ints) + ".")
    w("* **Options**: `call.options` holds every documented option; the ones a case sets are in its test id")
    w("  (`HuberLoss[rho=0.5]-…`), the rest are the documented defaults.")
    w("* **Return** `Outcome(output, grads)`: `output` in `call.dtype` with the documented output shape; `grads`")
    w("  one array per name in `call.wrt`, each the shape and dtype of its input (the VJP with `call.cotangent`).")
    w("  numpy arrays are best; objects with `asnumpy()` or `.array` are converted.")
    w("* **Raise** for input the documentation rules out (the `invalid` cases, listed per loss below): returning")
    w("  a number there fails the `invalid` check. Any exception type will do, but the same call on the case's")
    w("  valid control case (`invalid.control`) must return: a backend that raises on every call of a loss or")
    w("  dtype rejects nothing, and its `invalid` checks are errors.")
    w("* **Leave the inputs alone** (the `inputs` check) and **return the same bits for the same call** (the")
    w("  `repeat` check: a second identical call is made).")
    w("* Each case gives these checks: `value`, `shape` (and dtype), `grad:NAME` per differentiable input, `repeat`")
    w("  and `inputs`; an invalid-input case has one check, `invalid`.")
    w("")
    w("## The losses")
    w("")
    w("Per loss: its inputs (*d*: differentiable, so in `call.wrt`), the dtype and the shapes the fixtures")
    w("hand a backend, its options with defaults and valid values (and the values the fixtures use),")
    w("and the input it must reject. `lossconf cases --loss NAME` lists the cases, `lossconf show ID` shows one.")
    for s in catalog.all_specs():
        ob = seen.get(s.id)
        if ob is None:
            continue
        w("")
        w(f"### {s.short_name}")
        w("")
        alias = f" (also {', '.join(f'`{a}`' for a in s.aliases)})" if s.aliases else ""
        w(f"`{s.id}`{alias} -- {s.summary} Formula: `{s.formula}`. {ob['cases']} valid cases, "
          f"{sum(ob['invalid'].values())} invalid.")
        w("")
        w("| input | d | dtype | shapes in the fixtures | in cases | documented |")
        w("| --- | --- | --- | --- | --- | --- |")
        for i in s.inputs:
            n = ob["present"].get(i.name, 0)
            shapes = _shapes(ob["inputs"][i.name]) if n else "never given"
            w(f"| `{i.name}`{' (optional)' if i.optional else ''} | {'*d*' if i.differentiable else ''} | "
              f"{_dtypes(ob['dtypes'][i.name]) if n else '-'} | {shapes} | {n} of {ob['cases']} | {i.doc} |")
        if ob["weight_pairs"]:
            first = ob["weight_pairs"][0][0]
            pairs = sorted({(a, b) for _, a, b in ob["weight_pairs"]}, key=lambda p: (len(p[0]), p, len(p[1])))
            text = "; ".join(f"{_shape(a)} → {_shape(b)}" for a, b in pairs[:MAX_SHAPES])
            if len(pairs) > MAX_SHAPES:
                text += f"; … ({len(pairs)} pairs)"
            w("")
            w(f"`sample_weight` shapes, as `{first}` shape → `sample_weight` shape: {text}. How it weighs the")
            w("terms is the loss's documented formula (above; the readings of ambiguous text are in [SPEC.md](SPEC.md)).")
        w("")
        w(f"Output shape: {s.output_shape}; in the fixtures: {_shapes(ob['output'])}. The cotangent has this shape.")
        w("")
        w("| option | default | valid values | values the fixtures set |")
        w("| --- | --- | --- | --- |")
        for opt in s.options:
            used = sorted(ob["options"].get(opt.name, ()))
            w(f"| `{opt.name}` | `{opt.default!r}` | {opt.expected()} | {', '.join(f'`{u}`' for u in used) or '-'} |")
        if ob["invalid"]:
            w("")
            w("Must raise for: " + "; ".join(f"{rule} ({n})" for rule, n in sorted(ob["invalid"].items())) + ".")
    w("")
    w("## Reading a failure")
    w("")
    w("A failing check prints `FAILED <test id>` and a message; this one is from the worked example below:")
    w("")
    w("```")
    w(steps["block"])
    w("```")
    w("")
    w("Line by line:")
    w("")
    w("1. The loss, the options the case sets (or *documented defaults*), the dtype, the case number and name")
    w("   in its fixture file, its tags (the value regime: `regular`, `extreme`, `tiny`, `boundary`, `kink`, …),")
    w("   the check and the verdict.")
    w("2. What is wrong, in words (here: an infinity where the exact value is finite).")
    w("3. The worst element: its index, the exact expected value (40 digits, from the oracle) and what the")
    w("   backend returned.")
    w("4. The error in ULPs of the dtype with the tolerance (4 ULP by default) and in units of eps × scale")
    w("   with the stability bound computed for this case (the check passes within either).")
    w("5. The inputs, abbreviated (`lossconf show ID` prints them in full, with the cotangent and every")
    w("   expected value).")
    w("6. The fixture's note: what the case is for (here: the squared difference overflows the dtype).")
    w("7. The command that repeats exactly this check.")
    w("")
    w("## Expectation entries")
    w("")
    w("A deviation you cannot or will not fix goes into an expectation file, with its root cause: the file")
    w("and line in the framework's source. Run with `--expectations FILE`: a listed deviation is reported as")
    w("*known* and does not fail the run; `--strict-expectations` also fails on entries that no longer occur.")
    w("The format ([conformance/harness/expectations.py](../conformance/harness/expectations.py)):")
    w("")
    w("```toml")
    doc = ex.__doc__ or ""
    block = doc[doc.index("::") + 2 : doc.index("A listed deviation")]
    w("\n".join(line[4:] if line.startswith("    ") else line for line in block.strip("\n").splitlines()).rstrip())
    w("```")
    w("")
    w(f"Keys: {', '.join(f'`{k}`' for k in sorted(ex.KEYS))}. Every entry needs a `reason`. A tolerance override")
    w("is allowed only with a reason, and reports show it. For the worked example's failure, before its fix:")
    w("")
    w("```toml")
    w(_example_entry(steps["first"]).rstrip())
    w("```")
    w("")
    w("```")
    w(f"$ lossconf run mine:backend --loss L2Loss --expectations known.toml        # exit {steps['known_code']}")
    w(steps["known"].rstrip())
    w("```")
    w("")
    w("## A worked example: from a failing run to a passing one")
    w("")
    w("1. Write the backend (the README's example) into `mine.py` in any directory:")
    w("")
    w("```python")
    w(EXAMPLE.rstrip())
    w("```")
    w("")
    w("2. Run it from that directory (every case; the ones it does not support are skipped with its reason):")
    w("")
    w("```")
    w(f"$ lossconf run mine:backend        # exit {steps['run_code']}")
    w(steps["run"].rstrip())
    w("```")
    w("")
    w("3. Look at the first failing case:")
    w("")
    w("```")
    w(f"$ lossconf show '{steps['case']}'")
    w(steps["show"].rstrip())
    w("```")
    w("")
    w(f"   {_explain(cases, steps['case'])}")
    w("")
    w("4. Fix it: in `run`, replace the last three lines with")
    w("")
    w("```python")
    w(FIX_NEW.rstrip())
    w("```")
    w("")
    w("5. Re-run just that check, with the command the failure printed:")
    w("")
    w("```")
    w(f"$ lossconf run mine:backend --case '{steps['first']}'        # exit {steps['rerun_code']}")
    w(steps["rerun"].rstrip())
    w("```")
    w("")
    w("6. And every check of the loss:")
    w("")
    w("```")
    w(f"$ lossconf run mine:backend --loss L2Loss        # exit {steps['all_code']}")
    w(steps["all"].rstrip())
    w("```")
    w("")
    w("Then `lossconf run mine:backend --results mine.json && lossconf report mine.json` renders the report;")
    w("`lossconf live mine:backend --loss L2Loss` tries fresh inputs drawn by hypothesis.")
    return "\n".join(o) + "\n"
