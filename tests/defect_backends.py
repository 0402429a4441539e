"""Backends with one injected defect each, for proving that the harness's checks can fail
(issue 4, deliverable 8). Each wraps the reference ``numpy`` backend and changes exactly
one thing; ``tests/test_injected_defects.py`` runs the harness on them and asserts which
check catches the defect and that the message names its cause.

Every backend here is also usable from the command line, e.g.
``lossconf run tests.defect_backends:column_output --loss L2Loss``.
"""

from __future__ import annotations

import time
from dataclasses import replace

import ml_dtypes
import numpy as np

from conformance.backends.numpy_backend import NumpyBackend
from conformance.protocol import Call, Outcome

_REFERENCE = NumpyBackend()
SCE = "mxnet.gluon.loss.SoftmaxCrossEntropyLoss"


def _is_float(a: np.ndarray) -> bool:
    """A floating-point array, bfloat16 (ml_dtypes, numpy kind 'V') included."""
    return a.dtype.kind == "f" or a.dtype == ml_dtypes.bfloat16


class Wrapped:
    """The numpy backend, unchanged; subclasses inject one defect."""

    name = "numpy-with-defect"
    version = "0"
    defect = "none"

    def __init__(self) -> None:
        self.inner = _REFERENCE

    def build_info(self) -> dict:
        return {"wraps": f"numpy {_REFERENCE.version}", "defect": self.defect}

    def supports(self, call: Call) -> str | None:
        return self.inner.supports(call)

    def run(self, call: Call) -> Outcome:
        return self.inner.run(call)


# ----------------------------------------------------------------- numerical defects


class FlippedGradSign(Wrapped):
    """The VJP for one input has the wrong sign (e.g. ``pred`` of SoftmaxCrossEntropyLoss)."""

    defect = "gradient sign flipped"

    def __init__(self, input_name: str = "pred") -> None:
        super().__init__()
        self.input_name = input_name

    def run(self, call: Call) -> Outcome:
        out = self.inner.run(call)
        if self.input_name in out.grads:
            out.grads[self.input_name] = -out.grads[self.input_name]
        return out


class Float32Accumulation(Wrapped):
    """Asked for float64, computes in float32 and casts the results back to float64."""

    defect = "float32 accumulation for float64"

    def run(self, call: Call) -> Outcome:
        if call.dtype != "float64":
            return self.inner.run(call)
        narrow = {k: v.astype(np.float32) if v.dtype == np.float64 else v for k, v in call.inputs.items()}
        ct = None if call.cotangent is None else np.asarray(call.cotangent, np.float32)
        out = self.inner.run(replace(call, inputs=narrow, dtype="float32", cotangent=ct))
        return Outcome(
            np.asarray(out.output).astype(np.float64),
            {k: np.asarray(g).astype(np.float64) for k, g in out.grads.items()},
        )


class DroppedSampleWeight(Wrapped):
    """Ignores the ``sample_weight`` input."""

    defect = "sample_weight dropped"

    def run(self, call: Call) -> Outcome:
        inputs = {k: v for k, v in call.inputs.items() if k != "sample_weight"}
        return self.inner.run(replace(call, inputs=inputs))


class BatchAxisIgnored(Wrapped):
    """Always reduces as if ``batch_axis`` were 0."""

    defect = "batch_axis ignored"

    def run(self, call: Call) -> Outcome:
        if "batch_axis" not in call.options:
            return self.inner.run(call)
        wrong = replace(call, options={**call.options, "batch_axis": 0})
        out = self.inner.run(replace(wrong, wrt=(), cotangent=None))
        if call.wrt:  # the backward pass takes the cotangent at the shape it produced
            ct = np.resize(np.asarray(call.cotangent), np.shape(out.output))
            out = self.inner.run(replace(wrong, cotangent=ct))
        return out


class ColumnOutput(Wrapped):
    """Returns an ``(N, 1)`` output where ``(N,)`` is documented (as MXNet 1.x often does)."""

    defect = "(N, 1) output"

    def run(self, call: Call) -> Outcome:
        out = self.inner.run(call)
        output = np.asarray(out.output)
        if output.ndim == 1:
            output = output.reshape(-1, 1)
        return Outcome(output, out.grads)


class NanForExtreme(Wrapped):
    """Returns nan (output and gradients) when any float input has |x| > 1000, as an
    overflowing exp followed by inf/inf would."""

    defect = "nan for extreme inputs"
    limit = 1000.0

    def run(self, call: Call) -> Outcome:
        out = self.inner.run(call)
        extreme = any(
            _is_float(v) and bool(np.any(np.abs(v[np.isfinite(v)]) > self.limit)) for v in call.inputs.values()
        )
        if not extreme:
            return out
        nan = np.asarray(np.nan, dtype=call.dtype)
        return Outcome(
            np.full_like(np.asarray(out.output), nan),
            {k: np.full_like(np.asarray(g), nan) for k, g in out.grads.items()},
        )


class NaiveLogSumExp(Wrapped):
    """SoftmaxCrossEntropyLoss with log_softmax(x) = x - log(sum(exp(x))), without
    subtracting the maximum first: exp overflows for large logits. Gradients and every
    other loss are the reference's."""

    defect = "unstable log-sum-exp"

    def run(self, call: Call) -> Outcome:
        out = self.inner.run(call)
        if call.loss != SCE or call.options["from_logits"]:
            return out
        return Outcome(_naive_sce_value(call), out.grads)


def _naive_sce_value(call: Call) -> np.ndarray:
    o = call.options
    x = np.asarray(call.inputs["pred"])
    dt = x.dtype
    ax, ba = int(o["axis"]) % x.ndim, int(o["batch_axis"]) % x.ndim
    label = np.asarray(call.inputs["label"])
    with np.errstate(all="ignore"):
        logp = x - np.log(np.sum(np.exp(x), axis=ax, keepdims=True))  # the defect
        if o["sparse_label"]:
            elem = -np.take_along_axis(logp, np.expand_dims(label.astype(np.int64), ax), axis=ax)
        else:
            lab = label.astype(dt)
            elem = -np.sum(np.where(lab == 0, dt.type(0), lab * logp), axis=ax, keepdims=True)
        sw = call.inputs.get("sample_weight")
        if sw is not None:
            elem = elem * sw.astype(dt)
        if o.get("weight") is not None:
            elem = elem * dt.type(o["weight"])
        other = tuple(i for i in range(x.ndim) if i != ba)
        return np.asarray(np.mean(elem, axis=other), dtype=dt)


class WrongOutputDtype(Wrapped):
    """Returns a float32 output whatever dtype was asked for."""

    defect = "float32 output"

    def run(self, call: Call) -> Outcome:
        out = self.inner.run(call)
        return Outcome(np.asarray(out.output).astype(np.float32), out.grads)


# ----------------------------------------------------------------- behavioural defects


class RaisesOnSampleWeight(Wrapped):
    """Raises on every call that passes ``sample_weight`` (valid input included)."""

    defect = "exception"

    def run(self, call: Call) -> Outcome:
        if call.inputs.get("sample_weight") is not None:
            raise RuntimeError("sample_weight is not implemented in this kernel")
        return self.inner.run(call)


class RaisesOnInfinity(Wrapped):
    """Raises where the documented value is +inf (CTC with a label too long for its frames:
    -log 0), as a framework that checks alignments might; returns the reference otherwise."""

    defect = "raises on a documented +inf"

    def run(self, call: Call) -> Outcome:
        out = self.inner.run(call)
        if np.isposinf(np.asarray(out.output)).any():
            raise ValueError("ctc_loss: no valid alignment: a label is longer than its input sequence")
        return out


class FiniteForInfinity(Wrapped):
    """Returns a large finite loss where the documented value is +inf (a stand-in for
    log 0, as MXNet's zero_padding = -1e10 gives): a wrong value, not a raise."""

    defect = "finite value for a documented +inf"

    def run(self, call: Call) -> Outcome:
        out = self.inner.run(call)
        value = np.asarray(out.output).copy()
        value[np.isposinf(value)] = 1e4
        return Outcome(value, out.grads)


class Hangs(Wrapped):
    """Sleeps far beyond any sensible per-call time limit on one call: the float64 call
    whose ``pred`` has shape ``(4, 3)`` (L2Loss's batch_axis=1 case)."""

    defect = "hangs"

    def __init__(self, seconds: float = 30.0) -> None:
        super().__init__()
        self.seconds = seconds

    def run(self, call: Call) -> Outcome:
        if call.dtype == "float64" and call.inputs["pred"].shape == (4, 3):
            time.sleep(self.seconds)
        return self.inner.run(call)


class WrongType(Wrapped):
    """Returns something that is not an array where an array belongs.

    ``kind``: ``"list"`` (output as a nested Python list), ``"str"`` (output as text),
    ``"tuple"`` (a bare ``(output, grads)`` tuple instead of an Outcome), ``"grad-str"``
    (the gradient as text)."""

    defect = "wrong return type"

    def __init__(self, kind: str = "list") -> None:
        super().__init__()
        self.kind = kind

    def run(self, call: Call):
        out = self.inner.run(call)
        output = np.asarray(out.output)
        if self.kind == "list":
            return Outcome(output.tolist(), out.grads)
        if self.kind == "str":
            return Outcome(str(output), out.grads)
        if self.kind == "tuple":
            return output, out.grads
        if self.kind == "grad-str":
            return Outcome(output, {k: str(np.asarray(g)) for k, g in out.grads.items()})
        raise ValueError(self.kind)


class DropsLastSample(Wrapped):
    """Returns one sample too few (an off-by-one in the batch loop)."""

    defect = "wrong output shape"

    def run(self, call: Call) -> Outcome:
        out = self.inner.run(call)
        return Outcome(np.asarray(out.output)[:-1], out.grads)


class FlatGradient(Wrapped):
    """Returns each gradient flattened to 1-D (right values, wrong shape)."""

    defect = "wrong gradient shape"

    def run(self, call: Call) -> Outcome:
        out = self.inner.run(call)
        return Outcome(out.output, {k: np.asarray(g).ravel() for k, g in out.grads.items()})


class AccumulatesGradients(Wrapped):
    """Keeps state between calls: gradients are added into a buffer per input (like
    ``grad_req='add'`` on a reused parameter) that is never zeroed, so a second identical
    call returns twice the gradient. The first call of every case is correct."""

    defect = "state kept between calls"

    def __init__(self) -> None:
        super().__init__()
        self.buffers: dict[tuple, np.ndarray] = {}

    def run(self, call: Call) -> Outcome:
        out = self.inner.run(call)
        key0 = (call.loss, call.dtype, repr(sorted(call.options.items())))
        key0 += tuple((k, v.dtype.str, v.shape, v.tobytes()) for k, v in sorted(call.inputs.items()))
        grads = {}
        for name, g in out.grads.items():
            buf = self.buffers.setdefault((*key0, name), np.zeros_like(np.asarray(g)))
            buf += g
            grads[name] = buf.copy()
        return Outcome(out.output, grads)


class MutatesInputs(Wrapped):
    """Shifts ``pred`` in place by its maximum (the in-place "stable softmax" trick) after
    computing; the results are right, the caller's array is not."""

    defect = "mutates its input"

    def run(self, call: Call) -> Outcome:
        out = self.inner.run(call)
        pred = call.inputs["pred"]
        if _is_float(pred) and pred.size and np.isfinite(pred).all():
            pred -= pred.max(axis=-1, keepdims=True)
        return out


class Lenient(Wrapped):
    """Never rejects input: where the reference raises, returns zeros."""

    defect = "accepts invalid input"

    def run(self, call: Call) -> Outcome:
        try:
            return self.inner.run(call)
        except ValueError:
            first = next(iter(call.inputs.values()))
            return Outcome(np.zeros(first.shape[:1], call.dtype), {})


class RaisesOnEveryCall(Wrapped):
    """Raises on every float16 call, valid input or not (like MXNet's NumPy mode, which
    cannot make some dtypes' arrays or run some operators on its arrays): its raise on
    invalid input is no evidence that it checks input (the invalid-input check's control)."""

    defect = "raises on every float16 call"

    def run(self, call: Call) -> Outcome:
        if call.dtype == "float16":
            raise TypeError("operator does not support float16 arrays")
        return self.inner.run(call)


class NoFloat16(Wrapped):
    """Not a defect: declares float16 unsupported (the harness must skip, with the reason)."""

    defect = "none (float16 unsupported)"

    def supports(self, call: Call) -> str | None:
        if call.dtype == "float16":
            return "float16 is not implemented by this backend"
        return self.inner.supports(call)


class SupportsRaises(Wrapped):
    """``supports()`` itself raises for float32 calls."""

    defect = "supports() raises"

    def supports(self, call: Call) -> str | None:
        if call.dtype == "float32":
            raise KeyError("float32")
        return self.inner.supports(call)


# instances for ``module:attribute`` use
flipped_grad_sign = FlippedGradSign()
float32_accumulation = Float32Accumulation()
dropped_sample_weight = DroppedSampleWeight()
batch_axis_ignored = BatchAxisIgnored()
column_output = ColumnOutput()
nan_for_extreme = NanForExtreme()
naive_log_sum_exp = NaiveLogSumExp()
raises_on_sample_weight = RaisesOnSampleWeight()
hangs = Hangs()


# ----------------------------------------------------------------- defects of one path (mode)


class ModeWrapped(Wrapped):
    """The numpy backend in every mode it runs (forward, grad, backward-twice), plus the
    modes a subclass adds; subclasses inject one defect into one path."""

    modes: dict = dict(_REFERENCE.modes)

    def supports(self, call: Call) -> str | None:
        if call.mode in self.modes and self.modes[call.mode] is None:
            return self.inner.supports(replace(call, mode="grad") if call.mode in ("compiled", "hvp") else call)
        return self.inner.supports(call)

    def run(self, call: Call) -> Outcome:
        if call.mode in ("compiled", "hvp"):  # the numpy kernels, as the "compiled" / second-order path
            return self.inner.run(replace(call, mode="grad"))
        return self.inner.run(call)


class ForwardDiffers(ModeWrapped):
    """Without gradient recording (mode forward) the value is computed differently: 2**-8
    relatively too large, as a framework whose inference kernel differs from its training
    kernel. Mode grad is right."""

    defect = "a value that differs without recording"

    def run(self, call: Call) -> Outcome:
        out = super().run(call)
        if call.mode != "forward":
            return out
        value = np.asarray(out.output)
        return Outcome((value * (1 + 2.0**-8)).astype(value.dtype), out.grads)


class CompiledDropsWeight(ModeWrapped):
    """Runs mode compiled too, but its compiled path drops the constructor option
    ``weight`` (as a graph built from a block whose attribute is not captured): the value
    and gradients of every case with a weight other than 1 are off in mode compiled only."""

    defect = "a compiled path that drops an option"
    modes = {**ModeWrapped.modes, "compiled": None}

    def run(self, call: Call) -> Outcome:
        if call.mode == "compiled" and call.options.get("weight") is not None:
            call = replace(call, options={**call.options, "weight": None})
        return super().run(call)


class KeepsGraphState(ModeWrapped):
    """The second backward on the same graph adds to the first one's gradients (a graph
    whose backward accumulates into a buffer it kept): in mode backward-twice every
    gradient is twice the VJP. A single backward (mode grad) is right."""

    defect = "a graph that keeps state across backward-twice"

    def run(self, call: Call) -> Outcome:
        out = super().run(call)
        if call.mode != "backward-twice":
            return out
        return Outcome(out.output, {k: (np.asarray(g) * 2).astype(np.asarray(g).dtype) for k, g in out.grads.items()})


class WrongHVP(ModeWrapped):
    """Runs mode hvp and returns a Hessian-vector product that is plainly wrong (zeros):
    the check hvp:NAME fails wherever the fixture's exact HVP is not 0, and is skipped
    (never passed) where the fixture has none (no_hvp)."""

    defect = "a wrong second derivative"
    modes = {**ModeWrapped.modes, "hvp": None}

    def run(self, call: Call) -> Outcome:
        out = super().run(call)
        if call.mode == "hvp":
            out.hvp = {k: np.zeros_like(call.inputs[k]) for k in call.wrt}
        return out


class Float16Accumulation(ModeWrapped):
    """L2Loss in float16 summed one term at a time in float16 (the documented mean as a
    naive running sum): exact enough for the fixtures' short reductions, it stagnates once
    the running sum is large against each term -- near 2**11 terms of similar size."""

    defect = "float16 accumulation"

    def run(self, call: Call) -> Outcome:
        out = super().run(call)
        if call.dtype != "float16" or call.loss != "mxnet.gluon.loss.L2Loss":
            return out
        pred, label = call.inputs["pred"], call.inputs["label"].reshape(call.inputs["pred"].shape)
        b = call.options["batch_axis"] % pred.ndim
        w = np.float16(1.0 if call.options["weight"] is None else call.options["weight"])
        with np.errstate(all="ignore"):
            elem = (w / np.float16(2)) * (pred - label) ** 2
            sw = call.inputs.get("sample_weight")
            if sw is not None:
                elem = elem * np.broadcast_to(sw.astype(np.float16), elem.shape)
            terms = np.moveaxis(elem, b, 0).reshape(pred.shape[b], -1)
            sums = np.zeros(terms.shape[0], np.float16)
            for j in range(terms.shape[1]):  # one float16 addition per term
                sums += terms[:, j]
            value = (sums / np.float16(terms.shape[1])).astype(np.float16)
        return Outcome(value.reshape(np.shape(out.output)), out.grads)


raises_on_infinity = RaisesOnInfinity()
finite_for_infinity = FiniteForInfinity()
forward_differs = ForwardDiffers()
compiled_drops_weight = CompiledDropsWeight()
keeps_graph_state = KeepsGraphState()
wrong_hvp = WrongHVP()
float16_accumulation = Float16Accumulation()


def _hinge(p, y, o):
    return np.maximum(0, o.get("margin", 1.0) - p * y)


def _logistic(p, y, o):
    s = y if o.get("label_format", "signed") == "signed" else 2 * y - 1
    return np.logaddexp(0, -p * s)


def _sigmoid_bce(p, y, o):
    return None if o.get("from_sigmoid") else np.logaddexp(0, p) - p * y


def _poisson(p, y, o):
    return np.exp(p) - y * p if o.get("from_logits", True) and not o.get("compute_full") else None


def _kl_div(p, y, o):
    if not o.get("from_logits", True):
        return None
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(y > 0, y * np.log(np.where(y > 0, y, 1)), 0) - y * p


def _huber(p, y, o):
    rho, d = o.get("rho", 1.0), np.abs(y - p)
    return np.where(d < rho, d * d / (2 * rho), d - rho / 2)


class RunningSumInDtype(Wrapped):
    """Every reduction of a long axis accumulated one term at a time in the input dtype
    (``np.add.accumulate``, a rounding to the dtype after every addition) instead of
    pairwise or in a wider type; gradients as the reference. The elementwise Gluon losses:
    the mean over the non-batch axes (PoissonNLLLoss: over every element); SoftmaxCE: the
    log-sum-exp's sum of exp over the classes; CosineEmbeddingLoss: the dot product and the
    squared norms over a sample's elements; TripletLoss: the sum over a sample's elements;
    SDMLLoss: the squared distances over the features;
    chainer's softmax_cross_entropy: the mean of the instance losses (soft targets or hard
    labels, every documented divisor). A float16 running sum of ones stagnates at 2048, a
    float32 one drops terms below half an ULP of the sum, a float16 one the terms of a
    half-ULP case (oracle.cases.half_ulp_row): only the ``long`` cases can see it."""

    defect = "every long reduction accumulated one term at a time in the input dtype"
    #: the elementwise term of each loss as a function of (pred, label, options) in a wide
    #: dtype; None where the defect does not model the options
    LOSSES = {
        "mxnet.gluon.loss.L1Loss": lambda p, y, o: np.abs(p - y),
        "mxnet.gluon.loss.L2Loss": lambda p, y, o: (p - y) ** 2 / 2,
        "mxnet.gluon.loss.HuberLoss": _huber,
        "mxnet.gluon.loss.HingeLoss": _hinge,
        "mxnet.gluon.loss.SquaredHingeLoss": lambda p, y, o: _hinge(p, y, o) ** 2,
        "mxnet.gluon.loss.LogisticLoss": _logistic,
        "mxnet.gluon.loss.SigmoidBinaryCrossEntropyLoss": _sigmoid_bce,
        "mxnet.gluon.loss.PoissonNLLLoss": _poisson,
        "mxnet.gluon.loss.KLDivLoss": _kl_div,
    }
    TRIPLET = "mxnet.gluon.loss.TripletLoss"
    SDML = "mxnet.gluon.loss.SDMLLoss"
    CHAINER_SCE = "chainer.functions.softmax_cross_entropy"
    COSINE = "mxnet.gluon.loss.CosineEmbeddingLoss"

    def run(self, call: Call) -> Outcome:
        if call.loss == self.CHAINER_SCE:
            return self._chainer_mean(call)
        if call.loss == SCE:
            return self._softmax(call)
        if call.loss == self.COSINE:
            return self._cosine(call)
        if call.loss == self.TRIPLET:
            return self._triplet(call)
        if call.loss == self.SDML:
            return self._sdml(call)
        out = self.inner.run(call)
        term = self.LOSSES.get(call.loss)
        if term is None or call.inputs.get("sample_weight") is not None or call.inputs.get("pos_weight") is not None:
            return out
        pred = call.inputs["pred"]
        dt = pred.dtype
        label = call.inputs["target" if "target" in call.inputs else "label"].reshape(pred.shape)
        wide = np.float64 if dt == np.float64 else np.float32  # each term right, only the sum wrong
        with np.errstate(over="ignore", invalid="ignore"):
            terms = term(pred.astype(wide), label.astype(wide), call.options)
        if terms is None:
            return out
        if call.loss == "mxnet.gluon.loss.PoissonNLLLoss":
            rows = terms.reshape(1, -1)
        else:
            axis = call.options.get("batch_axis", 0) % pred.ndim
            rows = np.moveaxis(terms, axis, 0).reshape(pred.shape[axis], -1)
        w = call.options.get("weight")
        scale = wide((1.0 if w is None else w) / rows.shape[1])
        with np.errstate(over="ignore", invalid="ignore"):
            running = np.add.accumulate((rows * scale).astype(dt), axis=1, dtype=dt)[:, -1]
        return Outcome(running.astype(dt).reshape(np.shape(out.output)), out.grads)

    def _softmax(self, call: Call) -> Outcome:
        """SoftmaxCE (sparse labels, logits, classes on the last of two axes): the sum of
        exp(pred - max) over the classes accumulated one term at a time in the dtype."""
        out = self.inner.run(call)
        o, pred = call.options, call.inputs["pred"]
        if (pred.ndim != 2 or o.get("axis", -1) not in (-1, 1) or not o.get("sparse_label", True) or o.get("from_logits")
                or o.get("batch_axis", 0) != 0 or call.inputs.get("sample_weight") is not None):
            return out
        dt = pred.dtype
        wide = np.float64 if dt == np.float64 else np.float32
        x = pred.astype(wide)
        if not np.isfinite(x).all():
            return out
        m = x.max(axis=1, keepdims=True)
        s = np.add.accumulate(np.exp(x - m).astype(dt), axis=1, dtype=dt)[:, -1].astype(wide)
        t = np.asarray(call.inputs["label"]).astype(np.int64).reshape(-1)
        w = o.get("weight")
        loss = (m[:, 0] + np.log(s) - x[np.arange(len(t)), t]) * (1.0 if w is None else w)
        return Outcome(loss.astype(dt).reshape(np.shape(out.output)), out.grads)

    def _cosine(self, call: Call) -> Outcome:
        """CosineEmbeddingLoss (batch_axis 0, 2-D inputs): the dot product and both squared
        norms over each sample accumulated one term at a time in the dtype."""
        out = self.inner.run(call)
        o = call.options
        u, v = call.inputs["input1"], call.inputs["input2"]
        if u.ndim != 2 or u.shape != v.shape or o.get("batch_axis", 0) != 0 or call.inputs.get("sample_weight") is not None:
            return out
        dt = u.dtype
        wide = np.float64 if dt == np.float64 else np.float32

        def running(a: np.ndarray) -> np.ndarray:
            return np.add.accumulate(a.astype(dt), axis=1, dtype=dt)[:, -1].astype(wide)

        a, b = u.astype(wide), v.astype(wide)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            cos = running(a * b) / np.sqrt(running(a * a) * running(b * b))
        y = np.asarray(call.inputs["label"]).astype(wide).reshape(-1)
        loss = np.where(y == 1, 1 - cos, np.maximum(0, cos - o.get("margin", 0)))
        w = o.get("weight")
        return Outcome((loss * (1.0 if w is None else w)).astype(dt).reshape(np.shape(out.output)), out.grads)

    def _triplet(self, call: Call) -> Outcome:
        """TripletLoss (batch_axis 0, inputs of one shape): the sum over each sample's
        elements of (pred - positive)**2 - (pred - negative)**2 accumulated one term at a
        time in the dtype."""
        out = self.inner.run(call)
        o = call.options
        p, a, b = (call.inputs[k] for k in ("pred", "positive", "negative"))
        if p.ndim < 2 or not p.shape == a.shape == b.shape or o.get("batch_axis", 0) != 0:
            return out
        dt = p.dtype
        wide = np.float64 if dt == np.float64 else np.float32
        pw, aw, bw = p.astype(wide), a.astype(wide), b.astype(wide)
        terms = ((pw - aw) ** 2 - (pw - bw) ** 2).reshape(p.shape[0], -1)
        with np.errstate(over="ignore", invalid="ignore"):
            s = np.add.accumulate(terms.astype(dt), axis=1, dtype=dt)[:, -1].astype(wide)
        w = o.get("weight")
        loss = np.maximum(s + o.get("margin", 1.0), 0) * (1.0 if w is None else w)
        return Outcome(loss.astype(dt).reshape(np.shape(out.output)), out.grads)

    def _sdml(self, call: Call) -> Outcome:
        """SDMLLoss (batch_axis 0): each squared distance ||x1_i - x2_j||**2 accumulated one
        term at a time in the dtype, the rest (softmax of -d, KL against the smoothed
        identity) in a wide dtype."""
        out = self.inner.run(call)
        o = call.options
        x1, x2 = call.inputs["x1"], call.inputs["x2"]
        if x1.ndim != 2 or x1.shape != x2.shape or o.get("batch_axis", 0) != 0 or x1.shape[0] < 2:
            return out
        dt = x1.dtype
        wide = np.float64 if dt == np.float64 else np.float32
        a, b = x1.astype(wide), x2.astype(wide)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            d = np.add.accumulate(((a[:, None, :] - b[None, :, :]) ** 2).astype(dt), axis=2, dtype=dt)[..., -1].astype(np.float64)
            n, s = a.shape[0], float(o.get("smoothing_parameter", 0.3))
            labels = np.where(np.eye(n, dtype=bool), 1 - s, s / (n - 1))
            z = -d - (-d).max(axis=1, keepdims=True)
            logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
            kl = np.where(labels > 0, labels * (np.log(np.where(labels > 0, labels, 1)) - logp), 0).sum(axis=1)
        w = o.get("weight")
        return Outcome((kl * (1.0 if w is None else w)).astype(dt).reshape(np.shape(out.output)), out.grads)

    def _chainer_mean(self, call: Call) -> Outcome:
        """chainer's softmax_cross_entropy with reduce='mean': the per-instance losses (the
        reference's reduce='no', weighted by class_weight) summed one at a time in the input
        dtype, then divided as documented (normalize=True: by the instances not ignored --
        every soft-target instance --; False: by the batch size N); gradients as the
        reference."""
        out = self.inner.run(call)
        o = call.options
        x, t = call.inputs["x"], call.inputs["t"]
        if o.get("reduce", "mean") != "mean":
            return out
        per = self.inner.run(replace(call, options={**o, "reduce": "no"}, wrt=(), cotangent=None)).output
        dt = x.dtype
        running = np.add.accumulate(np.asarray(per, dtype=dt).ravel(), dtype=dt)[-1]
        if not o.get("normalize", True):
            n = x.shape[0]
        elif t.shape == x.shape:  # soft targets: never ignored
            n = x.size // x.shape[1]
        else:
            n = int(np.count_nonzero(np.asarray(t) != o.get("ignore_label", -1)))
        return Outcome(np.asarray(np.float64(running) / max(n, 1)).astype(dt), out.grads)


class MXNetFormulaAtInfinity(Wrapped):
    """SigmoidBinaryCrossEntropyLoss (from_sigmoid=False, no pos_weight) and LogisticLoss
    evaluated with MXNet's stable formula relu(x) - x * z + softrelu(-|x|) (z the 0/1 label)
    taken literally at an infinite logit: inf - inf or 0 * inf is nan (the sample's mean
    too), where the documented formula has a limit; finite logits as the reference. Only the
    ``limit`` cases have infinite logits."""

    defect = "relu(x) - x * z + softrelu(-|x|) at x = +-inf (nan)"
    LOSSES = ("mxnet.gluon.loss.SigmoidBinaryCrossEntropyLoss", "mxnet.gluon.loss.LogisticLoss")

    def run(self, call: Call) -> Outcome:
        out = self.inner.run(call)
        if call.loss not in self.LOSSES or call.options.get("from_sigmoid") or call.inputs.get("pos_weight") is not None:
            return out
        x = np.asarray(call.inputs["pred"]).astype(np.float64)
        z = np.asarray(call.inputs["label"]).astype(np.float64).reshape(x.shape)
        if call.loss.endswith("LogisticLoss") and call.options.get("label_format", "signed") == "signed":
            z = (z + 1) / 2
        with np.errstate(invalid="ignore", over="ignore"):
            elem = np.maximum(x, 0) - x * z + np.log1p(np.exp(-np.abs(x)))
        axis = call.options.get("batch_axis", 0) % x.ndim
        bad = np.isnan(np.moveaxis(elem, axis, 0).reshape(x.shape[axis], -1)).any(axis=1)
        if not bad.any():
            return out
        value = np.array(out.output, copy=True)
        value[bad] = np.nan
        return Outcome(value, out.grads)
