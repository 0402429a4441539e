"""The Python worker: one implementation of the wire protocol (``docs/WIRE.md``).

Started by the supervisor as ``python -m conformance.worker.python_worker``, it reads
frames on its standard input and writes frames on its standard output. It loads the
backend named in ``hello`` (a built-in name, an entry point, or ``module:attribute``),
answers ``ready``, then runs ``run`` messages entry by entry, one ``result`` frame per
entry as soon as that entry is done. It judges nothing: it returns what the backend
returned (as arrays) or what the backend raised.

Before any backend code runs, the worker moves the frame channel to private descriptors
and points descriptors 1 and 2 at the capture file the supervisor named, so what a
backend prints never corrupts the frames nor reaches the terminal; each entry's output is
returned with its result (head and tail). The faulthandler writes to the worker's
original standard error, which the supervisor keeps: on a crash (SIGSEGV, SIGABRT, ...)
or on the SIGTERM that ends a call over its time limit, the supervisor reads the
traceback there. The worker ends with ``os._exit``: a thread a backend left running cannot
keep it alive.
"""

from __future__ import annotations

import faulthandler
import io
import os
import signal
import sys
import time
import traceback
import warnings
from typing import Any

from ..protocol import Outcome, as_array, new_call
from . import wire

HEAD = TAIL = 2000  # bytes of a case's captured output returned (its beginning and its end)


def _describe(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    text = lines[0] if lines else ""
    if len(text) > 300:
        text = text[:297] + "..."
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def _kind(err: BaseException) -> str:
    """``raised`` for an Exception; ``base`` for SystemExit, KeyboardInterrupt and any other
    BaseException (never a documented rejection of an input)."""
    return "raised" if isinstance(err, Exception) else "base"


def _tb(err: BaseException) -> str:
    text = "".join(traceback.format_exception(type(err), err, err.__traceback__, limit=-8))
    return text[-4000:]




class Capture:
    """Descriptors 1 and 2 pointed at the capture file; per entry, what was written."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        if path is None:
            self.fd = os.open(os.devnull, os.O_WRONLY)
            self.rd = None
        else:
            self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o600)
            self.rd = os.open(path, os.O_RDONLY)
        os.dup2(self.fd, 1)
        os.dup2(self.fd, 2)
        sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), line_buffering=True, errors="replace")
        sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), line_buffering=True, errors="replace")

    def take(self) -> dict[str, Any] | None:
        """What the entry wrote (its beginning and end), the file emptied for the next."""
        for f in (sys.stdout, sys.stderr):
            try:
                f.flush()
            except Exception:
                pass
        if self.rd is None:
            return None
        size = os.fstat(self.fd).st_size
        if not size:
            return None
        if size <= HEAD + TAIL:
            data = os.pread(self.rd, size, 0)
        else:
            data = os.pread(self.rd, HEAD, 0) + b"\n[...]\n" + os.pread(self.rd, TAIL, size - TAIL)
        os.ftruncate(self.fd, 0)
        return {"bytes": size, "text": data.decode("utf-8", "replace")}


class Worker:
    def __init__(self, fd_in: int, fd_out: int) -> None:
        self.fd_in, self.fd_out = fd_in, fd_out
        self.backend: Any = None
        self.capture: Capture | None = None

    def send(self, header: dict[str, Any], body: bytes = b"") -> None:
        wire.write_all(self.fd_out, wire.frame(header, body))

    def hello(self, msg: dict[str, Any]) -> bool:
        self.capture = Capture(msg.get("capture"))
        if msg.get("protocol") != wire.PROTOCOL:
            self.send({"type": "fatal", "message": f"the worker speaks protocol {wire.PROTOCOL}, not {msg.get('protocol')!r}"})
            return False
        spec = msg.get("backend")
        try:
            from ..backends import BackendError, load_backend
            from ..protocol import build_info, mapping_of, supported_modes

            try:
                self.backend = load_backend(str(spec))
            except BackendError as err:
                self.send({"type": "fatal", "message": str(err)})
                return False
            try:
                name = self.backend.name
                version = self.backend.version
            except BaseException as err:
                self.send({"type": "fatal", "message": f"backend {spec!r}: reading its name and version raised {_describe(err)}"})
                return False
            if not isinstance(name, str) or not name:
                self.send({"type": "fatal", "message": f"backend {spec!r}: its name is {name!r}, not a non-empty string"})
                return False
            try:
                build = build_info(self.backend)
                build = {str(k): (v if isinstance(v, (str, int, float, bool, type(None))) else str(v)) for k, v in build.items()}
            except BaseException as err:
                build = {"error": f"build_info() raised {_describe(err)}"}
            try:
                mapping = mapping_of(self.backend)
            except BaseException as err:
                mapping = {"mapping_error": f"mapping() raised {_describe(err)}"}
            try:
                modes = supported_modes(self.backend)
            except ValueError as err:
                self.send({"type": "fatal", "message": f"backend {name}: {err}"})
                return False
        except BaseException as err:
            self.send({"type": "fatal", "message": f"backend {spec!r} could not be loaded: {_describe(err)}"})
            return False
        self.send({"type": "ready", "protocol": wire.PROTOCOL, "name": name, "version": str(version), "build": build,
                   "mapping": mapping, "modes": modes})
        return True

    def run(self, msg: dict[str, Any], body: bytearray) -> None:
        for entry in msg["entries"]:
            self.send(*self.entry(entry, body))

    def entry(self, entry: dict[str, Any], body: bytearray) -> tuple[dict[str, Any], bytes]:
        capture = self.capture
        assert capture is not None
        out = wire.Body()
        result: dict[str, Any] = {"type": "result", "id": entry["id"]}
        try:
            call = wire.call_from(entry["call"], body)
        except wire.WireError as err:
            result["error"] = {"kind": "protocol", "message": str(err)}
            return result, b""
        backend = self.backend
        if entry.get("supports"):
            try:
                reason = backend.supports(call)
            except BaseException as err:
                result["supports_error"] = {"kind": _kind(err), "message": f"supports() raised {_describe(err)}"}
                if not isinstance(err, Exception):
                    result["supports_error"]["traceback"] = _tb(err)
                reason = None
            else:
                if reason is not None and (not isinstance(reason, str) or not reason):
                    result["supports_error"] = {
                        "kind": "contract",
                        "message": f"supports() returned {reason!r} ({type(reason).__name__}); it must return None "
                        "(supported) or a non-empty string (the reason it is not)",
                    }
                elif reason is not None:
                    result["unsupported"] = reason
            if "supports_error" in result or "unsupported" in result:
                printed = capture.take()
                if printed:
                    result["printed"] = printed
                return result, out.bytes()
        calls = []
        pristine = call.inputs  # views of the frame's body, never handed to the backend but by the last call
        times = int(entry.get("times", 1))
        for k in range(times):
            last = k == times - 1
            own = new_call(
                call.loss, call.options, pristine if last and k else {n: v.copy() for n, v in pristine.items()},
                call.dtype, call.wrt, call.cotangent, call.mode, call.direction,
            )
            start = time.perf_counter()
            try:
                outcome = backend.run(own)
            except BaseException as err:
                seconds = time.perf_counter() - start
                error = {"kind": _kind(err), "message": _describe(err)}
                if not isinstance(err, Exception):  # where it came from (an exception's own text is enough)
                    error["traceback"] = _tb(err)
                calls.append({"error": error, "seconds": seconds})
                break
            seconds = time.perf_counter() - start
            try:
                if not isinstance(outcome, Outcome):
                    raise TypeError(f"run() returned a {type(outcome).__name__}, not a conformance.protocol.Outcome")
                output = as_array(outcome.output, "the output")
                grads = {n: as_array(g, "the gradient for " + n) for n, g in (outcome.grads or {}).items() if g is not None}
                hvp = {n: as_array(g, "the HVP for " + n) for n, g in (outcome.hvp or {}).items() if g is not None}
                done = wire.outcome_json(output, grads, hvp, out)
            except BaseException as err:
                calls.append({"error": {"kind": "return", "message": f"wrong return type: {err}"}, "seconds": seconds})
                break
            done["seconds"] = seconds
            done["mutated"] = [] if own.inputs is pristine else [n for n, v in own.inputs.items() if v.tobytes() != pristine[n].tobytes()]
            calls.append(done)
        result["calls"] = calls
        printed = capture.take()
        if printed:
            result["printed"] = printed
        return result, out.bytes()


def main() -> None:
    """The worker's loop (never returns: ends with ``os._exit``)."""
    fd_in = os.dup(0)
    fd_out = os.dup(1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)  # a backend reading stdin gets end of file, not frames
    faults = os.dup(2)
    faulthandler.enable(file=faults, all_threads=True)
    if hasattr(signal, "SIGTERM"):
        faulthandler.register(signal.SIGTERM, file=faults, all_threads=True, chain=True)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the supervisor's to handle
    warnings.simplefilter("ignore")  # a backend's overflow warnings on extreme cases (as `lossconf run` in process)
    worker = Worker(fd_in, fd_out)
    code = 0
    try:
        while True:
            got = wire.read_frame(fd_in)
            if got is None:
                break
            msg, body = got
            kind = msg["type"]
            if kind == "hello":
                if not worker.hello(msg):
                    code = 3
                    break
            elif kind == "run":
                worker.run(msg, body)
            elif kind == "bye":
                break
            else:
                worker.send({"type": "fatal", "message": f"unknown message type {kind!r}"})
                code = 2
                break
    except BrokenPipeError:
        code = 0
    except BaseException as err:  # the worker's own failure: say so where the supervisor looks
        os.write(faults, f"lossconf worker: {_describe(err)}\n{_tb(err)}".encode())
        code = 70
    os._exit(code)


if __name__ == "__main__":
    main()
