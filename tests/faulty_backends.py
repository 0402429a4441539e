"""Backends that fail the way a framework author's bad day goes: they exit, abort,
segfault, hang, swallow the time limit's interruption, leave threads running, break the
``supports()`` contract, raise from ``name``, flood their output, eat memory, raise
KeyboardInterrupt or BaseException, return arrays the wire cannot carry, or support
nothing. ``tests/test_worker*.py`` run the
harness on them and check that each fault is reported against the case that caused it,
with the right message and exit code, in bounded time.

Each wraps the reference numpy backend and misbehaves on one case only: the case whose
inputs have the fingerprint (:func:`fingerprint`) in the environment variable
``LOSSCONF_FAULT_CASE`` (the worker inherits it), or on every call when it is unset or
``all``. From the command line, e.g.
``LOSSCONF_FAULT_CASE=all lossconf run tests.faulty_backends:segfault --loss L2Loss``.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import sys
import threading
import time

import numpy as np

from conformance.backends.numpy_backend import NumpyBackend
from conformance.protocol import Call, Outcome

_REFERENCE = NumpyBackend()
ENV = "LOSSCONF_FAULT_CASE"
FLAG = "LOSSCONF_FAULT_FLAG"  # a file created when the fault begins (for tests that must wait for it)


def fingerprint(inputs: dict[str, np.ndarray]) -> str:
    """A case's inputs, as a short digest (names, dtypes, shapes and bytes)."""
    h = hashlib.sha256()
    for name in sorted(inputs):
        a = np.ascontiguousarray(inputs[name])
        h.update(f"{name}:{a.dtype.str}:{a.shape};".encode())
        h.update(a.tobytes())
    return h.hexdigest()[:16]


def targeted(call: Call) -> bool:
    want = os.environ.get(ENV, "all")
    return want == "all" or fingerprint(dict(call.inputs)) == want


class Faulty:
    """The numpy backend; subclasses misbehave in ``fault`` on the targeted case."""

    name = "numpy-faulty"
    version = "0"

    def supports(self, call: Call) -> str | None:
        return _REFERENCE.supports(call)

    def run(self, call: Call) -> Outcome:
        if targeted(call):
            flag = os.environ.get(FLAG)
            if flag:
                open(flag, "w").close()
            self.fault(call)
        return _REFERENCE.run(call)

    def fault(self, call: Call) -> None:
        pass


class ExitZero(Faulty):
    def fault(self, call: Call) -> None:
        sys.exit(0)


class OsExitZero(Faulty):
    def fault(self, call: Call) -> None:
        os._exit(0)


class Abort(Faulty):
    def fault(self, call: Call) -> None:
        os.abort()


class Segfault(Faulty):
    def fault(self, call: Call) -> None:
        ctypes.string_at(0)  # reads address 0: SIGSEGV


class Hang(Faulty):
    def fault(self, call: Call) -> None:
        time.sleep(3600)


class SwallowsTimeout(Faulty):
    """Catches every exception the time limit raises, and goes on waiting."""

    def fault(self, call: Call) -> None:
        while True:
            try:
                time.sleep(3600)
            except BaseException:  # noqa: S110 -- the defect
                pass


def _forever() -> None:
    while True:
        time.sleep(3600)


class LeavesThread(Faulty):
    """Starts a thread that never ends (not a daemon) and returns correct results."""

    def fault(self, call: Call) -> None:
        threading.Thread(target=_forever, name="left-by-backend").start()


class Floods(Faulty):
    def fault(self, call: Call) -> None:
        chunk = "x" * 65536 + "\n"
        while True:
            sys.stdout.write(chunk)


class HogsMemory(Faulty):
    def fault(self, call: Call) -> None:
        hoard = []
        while True:
            hoard.append(np.ones(8 * 2**20 // 8))  # 8 MB, touched
            time.sleep(0.001)


class RaisesKeyboardInterrupt(Faulty):
    def fault(self, call: Call) -> None:
        raise KeyboardInterrupt


class RaisesBaseException(Faulty):
    def fault(self, call: Call) -> None:
        raise BaseException("a BaseException of the backend's own")


class PrintsAndErrs(Faulty):
    """Prints a line on stdout and one on stderr, then raises, on the targeted case."""

    def fault(self, call: Call) -> None:
        print("backend says hello on stdout")
        print("backend says hello on stderr", file=sys.stderr)
        raise ValueError("a wrong turn")


class Unencodable(Faulty):
    """Returns, on the targeted case, an output the wire cannot carry (``kind``: an object
    array, a complex array, a structured array); a gradient of that kind with ``grad``."""

    def __init__(self, kind: str, grad: bool = False) -> None:
        self.kind, self.grad = kind, grad

    def run(self, call: Call) -> Outcome:
        out = _REFERENCE.run(call)
        if not targeted(call):
            return out
        bad = {
            "object": lambda a: np.asarray(a).astype(object),
            "complex": lambda a: np.asarray(a).astype(np.complex128),
            "structured": lambda a: np.zeros(np.shape(a), dtype=[("re", "f8"), ("im", "f8")]),
        }[self.kind]
        if self.grad:
            return Outcome(out.output, {k: bad(g) for k, g in out.grads.items()})
        return Outcome(bad(out.output), out.grads)


class SupportsTrue(Faulty):
    """Reads "supported" as True: every call 'unsupported' by the old reading."""

    def supports(self, call: Call) -> str | None:
        return True  # type: ignore[return-value]


class SupportsNothing(Faulty):
    def supports(self, call: Call) -> str | None:
        return "not implemented yet"


class NameRaises(Faulty):
    @property
    def name(self) -> str:  # type: ignore[override]
        raise RuntimeError("no name today")


exit_zero = ExitZero()
os_exit_zero = OsExitZero()
abort = Abort()
segfault = Segfault()
hang = Hang()
swallows_timeout = SwallowsTimeout()
leaves_thread = LeavesThread()
floods = Floods()
hogs_memory = HogsMemory()
raises_keyboard_interrupt = RaisesKeyboardInterrupt()
raises_base_exception = RaisesBaseException()
prints_and_errs = PrintsAndErrs()
object_output = Unencodable("object")
complex_output = Unencodable("complex")
structured_output = Unencodable("structured")
complex_gradient = Unencodable("complex", grad=True)
supports_true = SupportsTrue()
supports_nothing = SupportsNothing()
name_raises = NameRaises()
