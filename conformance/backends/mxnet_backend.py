"""The ``mxnet`` backend: MXNet 1.9.1's ``mxnet.gluon.loss`` blocks, called as a user calls
them.

For every call the Gluon block is constructed with the documented options
(``mxnet.gluon.loss.X(**options)``), the forward inputs are passed positionally in the
order of the block's ``hybrid_forward`` (Gluon's ``Block.__call__`` takes positional
arguments only; an optional input that the case leaves out is passed as ``None``), as
``mx.nd`` arrays on ``mx.cpu()`` in the case's dtype -- labels too, since MXNet expects
floating-point labels. The block is not hybridized (``SDMLLoss`` reads ``x1.shape`` and
only runs imperatively). Gradients come from ``autograd.record()`` and
``out.backward(cotangent)``, with ``attach_grad()`` on the inputs to differentiate.

Where the documented option is not a constructor argument the mapping is:

==========================  ===========  ==================================================
loss                        option/input how MXNet takes it
==========================  ===========  ==================================================
PoissonNLLLoss              epsilon      4th positional forward argument (``epsilon=1e-08``
                                         in ``hybrid_forward``), after ``sample_weight``
SigmoidBinaryCrossEntropy   pos_weight   4th positional forward argument, after
                                         ``sample_weight``
CTCLoss                     pred_lengths 3rd/4th positional forward arguments; MXNet's
                            label_lengths operator reads ``pred_lengths`` as float32
==========================  ===========  ==================================================

The output is returned exactly as MXNet produces it: an ``(N, 1)`` where ``(N,)`` is
documented is left for the harness's shape check to report. Only the cotangent is
reshaped to the output's shape (same number of elements), because ``backward`` needs a
head gradient of the output's shape; if the element counts differ no gradient is
returned.

Dtypes: every loss runs in float16, float32 and float64 except where MXNet 1.9.1 rejects
the dtype; ``supports()`` names the cause for those (see ``DTYPE_UNSUPPORTED``), and
``tests/test_mxnet_expectations.py`` checks that MXNet really does reject them.

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


@dataclass(frozen=True)
class Binding:
    """How one documented loss maps onto its Gluon block."""

    cls: str
    #: documented options passed to the constructor under the same name
    ctor: tuple[str, ...]
    #: hybrid_forward's positional parameters after F, in order: documented input
    #: names, or "option:NAME" for a documented option that MXNet takes in forward()
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
    PREFIX + "TripletLoss": Binding("TripletLoss", ("margin", "weight", "batch_axis"), ("pred", "positive", "negative")),
    PREFIX + "PoissonNLLLoss": Binding(
        "PoissonNLLLoss",
        ("weight", "from_logits", "batch_axis", "compute_full"),
        ("pred", "target", "sample_weight", "option:epsilon"),
    ),
    PREFIX + "CosineEmbeddingLoss": Binding(
        "CosineEmbeddingLoss", ("weight", "batch_axis", "margin"), ("input1", "input2", "label", "sample_weight")
    ),
    PREFIX + "SDMLLoss": Binding("SDMLLoss", ("smoothing_parameter", "weight", "batch_axis"), ("x1", "x2")),
}

#: (loss, dtype) -> why MXNet 1.9.1 cannot run it (found in its source; verified by
#: tests/test_mxnet_expectations.py, which runs a small call and expects MXNet to raise)
DTYPE_UNSUPPORTED: dict[tuple[str, str], str] = {}
for _dt, _cpp in (("float16", "half"), ("float64", "double")):
    DTYPE_UNSUPPORTED[(PREFIX + "CTCLoss", _dt)] = (
        f"MXNet 1.9.1 CTCLoss is float32-only: src/operator/nn/ctc_loss-inl.h reads pred, the costs "
        f"and the gradient as Tensor<xpu, N, real_t> (real_t = float), so a {_dt} pred fails with "
        f"'data type do not match specified type. Expected: {_cpp} v.s. given float'"
    )
    DTYPE_UNSUPPORTED[(PREFIX + "SDMLLoss", _dt)] = (
        f"MXNet 1.9.1 SDMLLoss is float32-only: loss.py _compute_labels builds F.eye(batch_size) in the "
        f"default float32, and the inner KLDivLoss's ops reject mixing it with {_dt} distances "
        f"('Incompatible attr ... expected float32, got {_dt}')"
    )
    DTYPE_UNSUPPORTED[(PREFIX + "CosineEmbeddingLoss", _dt)] = (
        f"MXNet 1.9.1 CosineEmbeddingLoss is float32-only: loss.py creates its constants with "
        f"F.array([0]) and F.array([1e-12]) in the default float32, and broadcast_maximum rejects mixing "
        f"them with {_dt} inputs ('Incompatible attr ... expected {_dt}, got float32')"
    )

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

    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None

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
        payload = pickle.dumps(call, protocol=pickle.HIGHEST_PROTOCOL)
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
                call = pickle.loads(target[:n])
                try:
                    kind, body = b"R", pickle.dumps(backend._run(call), protocol=pickle.HIGHEST_PROTOCOL)
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


def _mapping_entry(loss: str, binding: Binding) -> dict[str, str]:
    """The migration-map entry of one loss: the documented Gluon block, called as ``run`` calls it."""
    args = [slot.removeprefix("option:") for slot in binding.forward]
    in_forward = [slot[7:] for slot in binding.forward if slot.startswith("option:")]
    composition = "none: the documented block itself, not hybridized"
    if in_forward:
        composition += "; " + ", ".join(in_forward) + " passed positionally to forward (hybrid_forward's parameter)"
    notes = [f"{name} is read as {dt} whatever the dtype" for (lo, name), dt in sorted(FIXED_INPUT_DTYPE.items()) if lo == loss]
    notes += [f"{dt}: {why}" for (lo, dt), why in sorted(DTYPE_UNSUPPORTED.items()) if lo == loss]
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

    def __init__(self) -> None:
        self.ctx = mx.cpu()
        self._zygote: _Zygote | None = None

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
            "hybridized": False,
            # run in a fresh helper process, one forked child per call, with glibc's
            # M_PERTURB filling allocations with 0x7f (see ISOLATED)
            "isolated": sorted(ISOLATED),
            "env": env,
            "numpy": np.__version__,
        }

    def mapping(self) -> dict[str, dict[str, str]]:
        """Per documented loss, the Gluon call this backend makes (see ``BINDINGS``)."""
        return {loss: _mapping_entry(loss, b) for loss, b in BINDINGS.items()}

    def supports(self, call: Call) -> str | None:
        binding = BINDINGS.get(call.loss)
        if binding is None:
            if call.loss.startswith("chainer."):
                return f"{call.loss} is Chainer's API, not MXNet's; run it with --backend chainer"
            return f"no MXNet Gluon block for {call.loss}"
        reason = DTYPE_UNSUPPORTED.get((call.loss, call.dtype))
        if reason:
            return reason
        unknown = set(call.options) - set(binding.ctor) - {f[7:] for f in binding.forward if f.startswith("option:")}
        if unknown:
            return f"MXNet's {binding.cls} has no option {', '.join(sorted(unknown))}"
        return None

    # ------------------------------------------------------------------ running

    def _array(self, loss: str, name: str, value: np.ndarray, dtype: str):
        want = FIXED_INPUT_DTYPE.get((loss, name), dtype)
        return mx.nd.array(np.asarray(value), ctx=self.ctx, dtype=want)

    def _positional(self, binding: Binding, call: Call, arrays: dict) -> list:
        args: list = []
        for slot in binding.forward:
            if slot.startswith("option:"):
                args.append(call.options[slot[7:]])
            else:
                args.append(arrays.get(slot))
        # trailing optional inputs the case leaves out take hybrid_forward's defaults
        while args and args[-1] is None:
            args.pop()
        return args

    def run(self, call: Call) -> Outcome:
        if call.loss in ISOLATED:
            return self._run_in_child(call)
        return self._run(call)

    def _run_in_child(self, call: Call) -> Outcome:
        if not hasattr(os, "fork"):  # no fork (Windows): run in this process
            return self._run(call)
        if self._zygote is None:
            self._zygote = _Zygote()
        return self._zygote.run(call)

    def _run(self, call: Call) -> Outcome:
        binding = BINDINGS[call.loss]
        block = getattr(gloss, binding.cls)(**{k: call.options[k] for k in binding.ctor if k in call.options})
        arrays = {k: self._array(call.loss, k, v, call.dtype) for k, v in call.inputs.items()}
        wrt: Sequence[str] = tuple(call.wrt)
        for name in wrt:
            arrays[name].attach_grad()
        args = self._positional(binding, call, arrays)
        if wrt:
            with autograd.record():
                out = block(*args)
        else:
            out = block(*args)
        output = out.asnumpy()  # synchronizes: errors of asynchronous operators surface here
        grads: dict[str, np.ndarray] = {}
        if wrt and call.cotangent is not None:
            ct = np.asarray(call.cotangent)
            if ct.size == out.size:
                head = mx.nd.array(ct.reshape(out.shape), ctx=self.ctx, dtype=out.dtype)
                out.backward(head)
                grads = {name: arrays[name].grad.asnumpy() for name in wrt}
        return Outcome(output, grads)


backend = MXNetBackend()
