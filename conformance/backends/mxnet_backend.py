"""The ``mxnet`` backend: MXNet 1.9.1's ``mxnet.gluon.loss`` blocks, called as a user calls
them.

For every call the Gluon block is constructed with the documented options
(``mxnet.gluon.loss.X(**options)``), the forward inputs are passed positionally in the
order of the block's ``hybrid_forward`` (Gluon's ``Block.__call__`` takes positional
arguments only; an optional input that the case leaves out is passed as ``None``), as
``mx.nd`` arrays on ``mx.cpu()`` in the case's dtype -- labels too, since MXNet expects
floating-point labels. Gradients come from ``autograd.record()`` and
``out.backward(cotangent)``, with ``attach_grad()`` on the inputs to differentiate.

Modes (``MODES``): ``forward`` calls the block outside ``autograd.record()`` with no
``attach_grad()``; ``grad`` as above, the block not hybridized; ``compiled`` is ``grad``
after ``block.hybridize()`` (MXNet's graph path: the block runs as a cached symbolic
graph); ``backward-twice`` calls ``out.backward(head, retain_graph=True)`` and then
``out.backward(head)`` on the same recorded graph and returns the gradients after the
second (with the default ``grad_req='write'`` they must equal the first). ``hvp`` is not
run: MXNet 1.9.1 registers no gradient for the backward operators the losses use (see
``MODES``).

Constructor options go to the constructor and forward inputs to forward, as the
documentation lists them. Documented inputs and where MXNet takes them:

==========================  ===========  ==================================================
loss                        option/input how MXNet takes it
==========================  ===========  ==================================================
PoissonNLLLoss              epsilon      documented among the constructor's Parameters
                                         ("epsilon: float, default 1e-08"); passed to the
                                         constructor when it is not that default.
                                         MXNet's ``__init__`` lacks it (it is
                                         ``hybrid_forward``'s ``epsilon=1e-08``), so the
                                         constructor rejects it: that is MXNet's finding
SigmoidBinaryCrossEntropy   pos_weight   a documented forward input: 4th positional
                                         forward argument, after ``sample_weight``
CTCLoss                     pred_lengths 3rd/4th positional forward arguments; MXNet's
                            label_lengths operator reads ``pred_lengths`` as float32
TripletLoss                 sample_weight documented in forward's signature
                                         (``forward(pred, positive, negative,
                                         sample_weight=None)``): 4th positional forward
                                         argument. MXNet 1.9.1's ``hybrid_forward(F, pred,
                                         positive, negative)`` lacks it, so the call fails
                                         with a TypeError: that is MXNet's finding
==========================  ===========  ==================================================

The output is returned exactly as MXNet produces it: an ``(N, 1)`` where ``(N,)`` is
documented is left for the harness's shape check to report. Only the cotangent is
reshaped to the output's shape (same number of elements), because ``backward`` needs a
head gradient of the output's shape; if the element counts differ no gradient is
returned.

Dtypes: every loss is called in every fixture dtype (float16, bfloat16, float32, float64);
where MXNet 1.9.1 rejects one (CTCLoss, SDMLLoss and CosineEmbeddingLoss are float32-only in
its code) the error is MXNet's finding, listed with its cause in the expectation file.
bfloat16 is MXNet's own bfloat16 dtype, the one its Python API names
(``mxnet/ndarray/ndarray.py``: ``np.dtype([('bfloat16', np.uint16)])`` in
``_DTYPE_NP_TO_MX``, type flag 12): the inputs are made as float32 NDArrays (which hold
every bfloat16 value exactly) and cast with ``astype`` to it; an output or gradient in it
comes back bit for bit as ``ml_dtypes.bfloat16``. Whatever MXNet's operators do with it
(run, or reject it: in MXNet 1.9.1 bfloat16 kernels exist for a oneDNN subset) is MXNet's
finding.

``mxnet-np`` is the same backend in MXNet's NumPy mode: ``mxnet.npx.set_np()`` for the
call (reset after it), the inputs (and the head gradient) as ``mxnet.np`` arrays made with
``mxnet.np.array(value, dtype=...)``, the same blocks called the same way in the same modes.
The Gluon losses then take their ``is_np_array()`` branches (``F.np``/``F.npx`` operators)
where they have one; in 1.9.1 only L2Loss, L1Loss, SigmoidBinaryCrossEntropyLoss and
SoftmaxCrossEntropyLoss do, and the others call legacy operators that refuse ``mxnet.np``
arrays: MXNet's findings, listed with their causes in
``conformance/expectations/mxnet-np-1.9.1.toml``. bfloat16 inputs are made as in legacy mode
(a float32 ``mxnet.np`` array cast with ``astype`` to MXNet's bfloat16), which
``mxnet.numpy`` rejects (a finding of the same file). Its hvp reason is ``NP_MODES``'s: in
NumPy mode the backward operators are the ``_npi`` ones.

CTCLoss runs in a separate process: a fresh interpreter with mxnet imported that forks one
child per call (see ``_Zygote``). MXNet's CTC operator reads and writes out of bounds for
lengths out of range, which corrupts the heap; isolated, such a call ends only its child
(reported as ``MXNetCrash`` for that case) and every call starts from the same heap, so the
outcome does not depend on what ran before. The children fill fresh allocations with a fixed
byte (glibc M_PERTURB) so that an output MXNet never writes reads the same on every run.

``build_info()`` records MXNet's version, ``mxnet.runtime.Features()`` (oneDNN, BLAS, CUDA),
the MXNET_* and thread-count environment variables and the isolation, because results
differ with them (oneDNN's float32 kernels, MXNET_SAFE_ACCUMULATION for float16).

``chainer.functions.softmax_cross_entropy`` is not an MXNet API and is unsupported here.

``mapping()`` (the migration map) gives, per loss, the documented Gluon call itself, built
from ``BINDINGS``: the block with its constructor options, called with its positional
forward arguments; the notes name the dtypes MXNet rejects and the inputs it reads in a
fixed dtype.
"""

from __future__ import annotations

import atexit
import os
import pickle
import signal
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import ml_dtypes
import numpy as np

from ..protocol import Call, Outcome

try:
    import mxnet as mx
    from mxnet import autograd
    from mxnet.gluon import loss as gloss
except ModuleNotFoundError:
    raise
except Exception as _err:  # e.g. MXNet 1.9.1 under numpy >= 1.24 (np.bool was removed)
    raise ModuleNotFoundError(
        f"mxnet is installed but fails to import ({type(_err).__name__}: {_err}); "
        "MXNet 1.9.1 needs numpy 1.23.5",
        name="mxnet",
    ) from _err


PREFIX = "mxnet.gluon.loss."


#: MXNet's bfloat16 as its Python API names it (mxnet/ndarray/ndarray.py, _DTYPE_NP_TO_MX:
#: ``np.dtype([('bfloat16', np.uint16)]): 12``); the fixtures' bfloat16 is ml_dtypes'
MX_BFLOAT16 = np.dtype([("bfloat16", np.uint16)])


@dataclass(frozen=True)
class Binding:
    """How one documented loss maps onto its Gluon block."""

    cls: str
    #: documented options passed to the constructor under the same name
    ctor: tuple[str, ...]
    #: hybrid_forward's positional parameters after F, in order: the documented input names
    forward: tuple[str, ...]


BINDINGS: dict[str, Binding] = {
    PREFIX + "L2Loss": Binding("L2Loss", ("weight", "batch_axis"), ("pred", "label", "sample_weight")),
    PREFIX + "L1Loss": Binding("L1Loss", ("weight", "batch_axis"), ("pred", "label", "sample_weight")),
    PREFIX + "SigmoidBinaryCrossEntropyLoss": Binding(
        "SigmoidBinaryCrossEntropyLoss",
        ("from_sigmoid", "weight", "batch_axis"),
        ("pred", "label", "sample_weight", "pos_weight"),
    ),
    PREFIX + "SoftmaxCrossEntropyLoss": Binding(
        "SoftmaxCrossEntropyLoss",
        ("axis", "sparse_label", "from_logits", "weight", "batch_axis"),
        ("pred", "label", "sample_weight"),
    ),
    PREFIX + "KLDivLoss": Binding(
        "KLDivLoss", ("from_logits", "axis", "weight", "batch_axis"), ("pred", "label", "sample_weight")
    ),
    PREFIX + "CTCLoss": Binding(
        "CTCLoss",
        ("layout", "label_layout", "weight"),
        ("pred", "label", "pred_lengths", "label_lengths", "sample_weight"),
    ),
    PREFIX + "HuberLoss": Binding("HuberLoss", ("rho", "weight", "batch_axis"), ("pred", "label", "sample_weight")),
    PREFIX + "HingeLoss": Binding("HingeLoss", ("margin", "weight", "batch_axis"), ("pred", "label", "sample_weight")),
    PREFIX + "SquaredHingeLoss": Binding(
        "SquaredHingeLoss", ("margin", "weight", "batch_axis"), ("pred", "label", "sample_weight")
    ),
    PREFIX + "LogisticLoss": Binding(
        "LogisticLoss", ("weight", "batch_axis", "label_format"), ("pred", "label", "sample_weight")
    ),
    # sample_weight: documented, forward(pred, positive, negative, sample_weight=None); 1.9.1's
    # hybrid_forward(F, pred, positive, negative) lacks it, so passing it fails (a finding)
    PREFIX + "TripletLoss": Binding(
        "TripletLoss", ("margin", "weight", "batch_axis"), ("pred", "positive", "negative", "sample_weight")
    ),
    PREFIX + "PoissonNLLLoss": Binding(
        "PoissonNLLLoss",
        ("weight", "from_logits", "batch_axis", "compute_full", "epsilon"),
        ("pred", "target", "sample_weight"),
    ),
    PREFIX + "CosineEmbeddingLoss": Binding(
        "CosineEmbeddingLoss", ("weight", "batch_axis", "margin"), ("input1", "input2", "label", "sample_weight")
    ),
    PREFIX + "SDMLLoss": Binding("SDMLLoss", ("smoothing_parameter", "weight", "batch_axis"), ("x1", "x2")),
}

#: the modes of the protocol this backend runs (None) or why not
MODES: dict[str, str | None] = {
    "forward": None,
    "grad": None,
    "compiled": None,
    "hvp": (
        "MXNet 1.9.1 registers no gradient (FGradient) for the backward operators the Gluon losses use: "
        "autograd.grad(out, [x], create_graph=True) and a backward through it raise 'Operator "
        "_backward_broadcast_sub is non-differentiable because it didn't register FGradient attribute.' "
        "(L2Loss; _backward_log_softmax for SoftmaxCrossEntropyLoss, _backward_broadcast_mul for "
        "SigmoidBinaryCrossEntropyLoss): there is no second-order path to check"
    ),
    "backward-twice": None,
}

#: the modes of the ``mxnet-np`` variant (NumPy mode): the same, with hvp's reason as NumPy mode raises it
NP_MODES: dict[str, str | None] = {
    **MODES,
    "hvp": (
        "MXNet 1.9.1 registers no gradient (FGradient) for the backward operators the NumPy-mode branches of the "
        "Gluon losses use: autograd.grad(out, [x], create_graph=True) and a backward through it raise 'Operator "
        "_backward_npi_broadcast_sub is non-differentiable because it didn't register FGradient attribute.' "
        "(L2Loss, L1Loss; _backward_log_softmax for SoftmaxCrossEntropyLoss, _backward_npi_broadcast_mul for "
        "SigmoidBinaryCrossEntropyLoss; the other losses fail in the forward pass in NumPy mode): there is no "
        "second-order path to check"
    ),
}

#: documented constructor options that MXNet 1.9.1's constructor lacks, with the documented
#: default: passed to the constructor (which then rejects them) only when the case sets
#: another value, since the documented call with the default leaves the option out
CTOR_DEFAULTS: dict[tuple[str, str], Any] = {
    (PREFIX + "PoissonNLLLoss", "epsilon"): 1e-08,  # docstring: "epsilon: float, default 1e-08"
}

#: inputs MXNet's operator reads in a fixed dtype whatever the case's dtype is
FIXED_INPUT_DTYPE = {
    (PREFIX + "CTCLoss", "pred_lengths"): "float32",  # ctc_loss-inl.h: inputs[kInputLength].get<xpu, 1, real_t>
}


#: losses run in a separate process (see _Zygote): MXNet 1.9.1's CTC operator trusts
#: pred_lengths and label_lengths as buffer bounds (ctc_loss-inl.h PackLabelByLength,
#: cpu_ctc.h), so lengths out of range corrupt the heap and abort or crash the process; in a
#: child process that is reported against the one case instead of ending the run
ISOLATED = {PREFIX + "CTCLoss"}


#: glibc's M_PERTURB (mallopt parameter -6): fill every allocation with a fixed byte. The
#: CTC operator can return an output it never wrote (see README findings: an all-empty label
#: batch makes warp-ctc return CTC_STATUS_INVALID_VALUE, which ctc_loss-inl.h ignores); with
#: the fill that output is the same wrong number (0x7f7f7f7f = 3.39e38 in float32) on every
#: run instead of whatever the heap held, so the result is reproducible
_M_PERTURB, _PERTURB_BYTE = -6, 0x80


def _perturb_malloc() -> None:
    try:
        import ctypes

        ctypes.CDLL(None).mallopt(_M_PERTURB, _PERTURB_BYTE)
    except (OSError, AttributeError):  # not glibc: nothing to do
        pass


class MXNetCrash(RuntimeError):
    """The process running MXNet died (a signal such as SIGABRT or SIGSEGV)."""


def _read_exact(fd: int, n: int, into: memoryview | None = None) -> bytes | None:
    """n bytes from fd (into ``into`` when given), or None at end of file."""
    target = into if into is not None else memoryview(bytearray(n))
    got = 0
    while got < n:
        k = os.readv(fd, [target[got:n]])
        if k == 0:
            return None
        got += k
    return b"" if into is not None else bytes(target)


def _write_frame(fd: int, kind: bytes, body: bytes) -> None:
    data = kind + len(body).to_bytes(8, "little") + body
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


class _Zygote:
    """A fresh interpreter with mxnet imported that forks one child per isolated call.

    Every child starts from the zygote's unchanged heap, so what an out-of-bounds access in
    MXNet does (return garbage, abort, segfault) does not depend on what ran before it in
    the harness's process: the outcome of a case is reproducible. The child sends back the
    Outcome (frame R) or the exception text (frame E); the zygote then reports the child's
    exit status (frame S)."""

    def __init__(self, variant: str = "mxnet") -> None:
        self.proc: subprocess.Popen | None = None
        self.variant = variant

    def _start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", f"import {__name__} as m; m._zygote_main()"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            start_new_session=True,  # its own process group: stop() ends it with its child
        )
        atexit.register(self.stop)

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass
        proc.wait()
        for f in (proc.stdin, proc.stdout):
            try:
                f.close()
            except OSError:
                pass

    def run(self, call: Call) -> Outcome:
        if self.proc is None or self.proc.poll() is not None:
            self._start()
        payload = pickle.dumps((self.variant, call), protocol=pickle.HIGHEST_PROTOCOL)
        result: tuple | None = None
        try:
            _write_frame(self.proc.stdin.fileno(), b"C", payload)
            while True:
                head = _read_exact(self.proc.stdout.fileno(), 9)
                if head is None:
                    raise MXNetCrash("the MXNet helper process ended unexpectedly")
                body = _read_exact(self.proc.stdout.fileno(), int.from_bytes(head[1:], "little")) or b""
                if head[:1] == b"S":
                    status = int.from_bytes(body, "little", signed=True)
                    break
                result = (head[:1], body)
        except BaseException:  # interrupted (e.g. by the harness's time limit): start afresh next time
            self.stop()
            raise
        if os.WIFSIGNALED(status):
            raise MXNetCrash(
                f"the process running MXNet died with {signal.Signals(os.WTERMSIG(status)).name} "
                "(memory corruption or a fatal check in MXNet's C++ code; a user's process would end here)"
            )
        if result is None or os.WEXITSTATUS(status) != 0:
            raise MXNetCrash(f"the process running MXNet exited with status {os.WEXITSTATUS(status)} without a result")
        kind, body = result
        if kind == b"E":
            raise RuntimeError(body.decode("utf-8", "replace"))
        return pickle.loads(body)


def _zygote_main() -> None:
    """The loop of the zygote process: read a call, fork, let the child run it."""
    import gc

    fd_in, fd_out = sys.stdin.fileno(), sys.stdout.fileno()
    buf = memoryview(bytearray(1 << 24))  # preallocated: reading a call leaves the heap as it was
    while True:
        head = _read_exact(fd_in, 9)
        if head is None:
            os._exit(0)
        n = int.from_bytes(head[1:], "little")
        big = n > len(buf)
        target = memoryview(bytearray(n)) if big else buf
        if _read_exact(fd_in, n, target) is None:
            os._exit(0)
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                _perturb_malloc()
                variant, call = pickle.loads(target[:n])
                try:
                    runner = np_backend if variant == np_backend.name else backend
                    kind, body = b"R", pickle.dumps(runner._run(call), protocol=pickle.HIGHEST_PROTOCOL)
                except Exception as err:
                    kind, body = b"E", f"{type(err).__name__}: {err}".encode()
                gc.collect()
                mx.nd.waitall()  # let MXNet free what it holds: corruption glibc detects shows here
                _write_frame(fd_out, kind, body)
            except BaseException:
                code = 70
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        _write_frame(fd_out, b"S", status.to_bytes(4, "little", signed=True))


def _mapping_entry(loss: str, binding: Binding, numpy_mode: bool = False) -> dict[str, str]:
    """The migration-map entry of one loss: the documented Gluon block, called as ``run`` calls it
    (in NumPy mode for the ``mxnet-np`` variant)."""
    args = list(binding.forward)
    composition = "none: the documented block itself (hybridized in mode compiled)"
    if numpy_mode:
        composition = (
            "none: the documented block itself in NumPy mode (mxnet.npx.set_np(), inputs as mxnet.np arrays; "
            "hybridized in mode compiled)"
        )
    notes = [f"{name} is read as {dt} whatever the dtype" for (lo, name), dt in sorted(FIXED_INPUT_DTYPE.items()) if lo == loss]
    notes += [
        f"{name} (documented default {default!r}) is passed to the constructor only when another value is asked for"
        for (lo, name), default in sorted(CTOR_DEFAULTS.items()) if lo == loss
    ]
    if loss in ISOLATED:
        notes.append("run in a forked child process per call (lengths out of range corrupt the heap)")
    return {
        "call": f"{PREFIX}{binding.cls}({', '.join(binding.ctor)})({', '.join(args)})",
        "composition": composition,
        "notes": "; ".join(notes),
    }


class MXNetBackend:
    name = "mxnet"
    version = mx.__version__
    modes = MODES

    def __init__(self, numpy_mode: bool = False) -> None:
        self.ctx = mx.cpu()
        self._zygote: _Zygote | None = None
        #: MXNet's NumPy mode (mxnet.npx.set_np(), mxnet.np arrays): the "mxnet-np" variant
        self.numpy_mode = numpy_mode
        if numpy_mode:
            self.name = "mxnet-np"
            self.modes = NP_MODES

    def build_info(self) -> dict:
        feats = mx.runtime.Features()
        enabled = sorted(name for name, f in feats.items() if f.enabled)
        env = {
            k: v
            for k, v in sorted(os.environ.items())
            if k.startswith("MXNET_") or k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
        }
        return {
            "mxnet": mx.__version__,
            "features_enabled": enabled,
            "onednn": feats.is_enabled("MKLDNN"),
            "blas": next((f for f in enabled if f.startswith("BLAS_")), None),
            "cuda": feats.is_enabled("CUDA"),
            "context": str(self.ctx),
            "hybridized": "in mode compiled only (block.hybridize())",
            "numpy_mode": self.numpy_mode,
            # run in a fresh helper process, one forked child per call, with glibc's
            # M_PERTURB filling allocations with 0x7f (see ISOLATED)
            "isolated": sorted(ISOLATED),
            "env": env,
            "numpy": np.__version__,
        }

    def mapping(self) -> dict[str, dict[str, str]]:
        """Per documented loss, the Gluon call this backend makes (see ``BINDINGS``)."""
        return {loss: _mapping_entry(loss, b, self.numpy_mode) for loss, b in BINDINGS.items()}

    def supports(self, call: Call) -> str | None:
        binding = BINDINGS.get(call.loss)
        if binding is None:
            if call.loss.startswith("chainer."):
                return f"{call.loss} is Chainer's API, not MXNet's; run it with --backend chainer"
            return f"no MXNet Gluon block for {call.loss}"
        unknown = set(call.options) - set(binding.ctor)
        if unknown:
            return f"the documentation of {binding.cls} lists no option {', '.join(sorted(unknown))}"
        return self.modes.get(call.mode, f"unknown mode {call.mode!r}")

    # ------------------------------------------------------------------ running

    def _array(self, loss: str, name: str, value: np.ndarray, dtype: str):
        want = FIXED_INPUT_DTYPE.get((loss, name), dtype)
        if want == "bfloat16" or np.dtype(want) == MX_BFLOAT16:  # float32 holds it exactly
            wide = np.asarray(value).astype(np.float32)
            made = mx.np.array(wide, ctx=self.ctx) if self.numpy_mode else mx.nd.array(wide, ctx=self.ctx, dtype="float32")
            return made.astype(MX_BFLOAT16)
        if self.numpy_mode:
            return mx.np.array(np.asarray(value), ctx=self.ctx, dtype=want)
        return mx.nd.array(np.asarray(value), ctx=self.ctx, dtype=want)

    def _positional(self, binding: Binding, call: Call, arrays: dict) -> list:
        args = [arrays.get(slot) for slot in binding.forward]
        # trailing optional inputs the case leaves out take hybrid_forward's defaults
        while args and args[-1] is None:
            args.pop()
        return args

    def _constructor_options(self, binding: Binding, call: Call) -> dict:
        out = {}
        for k in binding.ctor:
            if k not in call.options:
                continue
            default = CTOR_DEFAULTS.get((call.loss, k), _NO_DEFAULT)
            if default is _NO_DEFAULT or call.options[k] != default:
                out[k] = call.options[k]
        return out

    def run(self, call: Call) -> Outcome:
        if call.loss in ISOLATED:
            return self._run_in_child(call)
        return self._run(call)

    def _run_in_child(self, call: Call) -> Outcome:
        if not hasattr(os, "fork"):  # no fork (Windows): run in this process
            return self._run(call)
        if self._zygote is None:
            self._zygote = _Zygote(self.name)
        return self._zygote.run(call)

    def _run(self, call: Call) -> Outcome:
        if not self.numpy_mode:
            return self._run_mode(call)
        mx.npx.set_np()
        try:
            return self._run_mode(call)
        finally:
            mx.npx.reset_np()

    def _run_mode(self, call: Call) -> Outcome:
        binding = BINDINGS[call.loss]
        block = getattr(gloss, binding.cls)(**self._constructor_options(binding, call))
        if call.mode == "compiled":
            block.hybridize()
        arrays = {k: self._array(call.loss, k, v, call.dtype) for k, v in call.inputs.items()}
        wrt: Sequence[str] = tuple(call.wrt) if call.mode != "forward" else ()
        for name in wrt:
            arrays[name].attach_grad()
        args = self._positional(binding, call, arrays)
        if wrt:
            with autograd.record():
                out = block(*args)
        else:
            out = block(*args)
        output = _numpy(out)  # synchronizes: errors of asynchronous operators surface here
        grads: dict[str, np.ndarray] = {}
        if wrt and call.cotangent is not None:
            ct = np.asarray(call.cotangent)
            if ct.size == out.size:
                head = self._array(call.loss, "", ct.reshape(out.shape), _dtype_name(out.dtype))
                if call.mode == "backward-twice":  # the same graph, differentiated a second time
                    out.backward(head, retain_graph=True)
                    mx.nd.waitall()
                out.backward(head)
                grads = {name: _numpy(arrays[name].grad) for name in wrt}
        return Outcome(output, grads)


def _dtype_name(dtype: Any) -> str:
    """A dtype MXNet reports as a fixture dtype name (its bfloat16 as ``bfloat16``)."""
    return "bfloat16" if np.dtype(dtype) == MX_BFLOAT16 else np.dtype(dtype).name


def _numpy(a: Any) -> np.ndarray:
    """``a.asnumpy()``, MXNet's bfloat16 (uint16 bit patterns) viewed as ml_dtypes' bfloat16."""
    out = a.asnumpy()
    if out.dtype == MX_BFLOAT16:
        return out.view(np.uint16).view(ml_dtypes.bfloat16)
    return out


_NO_DEFAULT = object()

backend = MXNetBackend()
#: MXNet's NumPy mode (mxnet.npx.set_np(), mxnet.np arrays)
np_backend = MXNetBackend(numpy_mode=True)
