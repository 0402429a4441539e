"""The supervisor: the harness's side of a backend that runs in a worker process.

:class:`Supervisor` starts a worker (by default the Python worker,
``python -m conformance.worker.python_worker``; any executable speaking ``docs/WIRE.md``
will do), says ``hello`` with the backend's spec string, and then stands in for the
backend: it has the backend's ``name``, ``version`` and ``build_info()``, answers
``supports(call)`` and ``run(call)`` over the wire, and, for speed, runs many calls at once
(:meth:`Supervisor.run_entries`: entries batched into frames by a writer thread, results
read as the worker finishes each).

Whatever ends or stalls the worker is reported against the entry it was running (an
:class:`EntryResult` whose call failed with a ``kind`` other than ``raised``): an exit, a
death by a signal (the faulthandler's traceback attached), a call over its time limit
(SIGTERM, which makes the faulthandler dump the stacks, then SIGKILL after a grace), the
worker's memory over its limit, or output flooding past its limit. The worker is started
again and the run goes on with the next entry. A run-wide deadline (:attr:`deadline`)
stops the run with :class:`RunStopped`.
"""

from __future__ import annotations

import fcntl
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..backends import BackendError
from ..protocol import Call, Outcome
from . import wire

POLL = 0.05  # seconds between checks of a worker's time, memory and output while a call runs
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


class BackendContractError(BackendError):
    """The backend broke the protocol in a way that makes the whole run meaningless (e.g.
    ``supports()`` returned something other than None or a reason string)."""


class RunStopped(Exception):
    """The run-wide time limit passed; the entries not yet finished were not run."""


@dataclass(slots=True)
class Entry:
    """One case's calls: ``call`` made ``times`` times (each on fresh copies of its inputs;
    a later one only if the earlier returned), after ``supports(call)`` if ``supports``."""

    call: Call
    times: int = 1
    supports: bool = True


@dataclass(slots=True)
class CallResult:
    """One call's result: an outcome, or an error. ``kind`` says which: ``ok``; ``raised``
    (the backend raised, including SystemExit and KeyboardInterrupt); ``return`` (it
    returned something not an Outcome of arrays); ``base`` (it raised a BaseException that
    is not an Exception: SystemExit, KeyboardInterrupt, ...); and the worker's failures while on this
    entry: ``exit``, ``signal``, ``timeout``, ``memory``, ``flood``, ``protocol``."""

    outcome: Outcome | None = None
    error: str | None = None
    kind: str = "ok"
    detail: str = ""
    seconds: float = 0.0
    mutated: list[str] = field(default_factory=list)


@dataclass(slots=True)
class EntryResult:
    unsupported: str | None = None
    supports_error: str | None = None
    supports_kind: str = "raised"  # of supports_error: raised, base, or a worker failure's kind
    calls: list[CallResult] = field(default_factory=list)
    printed: str | None = None  # the backend's own stdout and stderr during the entry (truncated)


def _signal_name(num: int) -> str:
    try:
        name = signal.Signals(num).name
    except ValueError:
        return f"signal {num}"
    what = {
        "SIGSEGV": "segmentation fault", "SIGABRT": "abort", "SIGBUS": "bus error", "SIGFPE": "arithmetic fault",
        "SIGILL": "illegal instruction", "SIGKILL": "killed", "SIGTERM": "terminated",
    }.get(name)
    return f"{name} ({what})" if what else name


def _printed(obj: Any) -> str | None:
    if not obj:
        return None
    size, text = obj.get("bytes", 0), obj.get("text", "")
    return f"{size} bytes: {text}" if size > len(text.encode()) else text


class _Worker:
    """One started worker process and its channel."""

    def __init__(self, command: list[str], env: dict[str, str], faults: str, memory: int | None) -> None:
        self.faults_path = faults
        self.faults = open(faults, "wb")
        self.proc = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.faults, env=env,
            start_new_session=True,  # its own process group: the terminal's Ctrl-C is the supervisor's
        )
        if memory:
            _limit_memory(self.proc.pid, memory)
        self.fd_in = self.proc.stdin.fileno()
        self.fd_out = self.proc.stdout.fileno()
        for fd in (self.fd_in, self.fd_out):  # room for many entries and results in flight
            try:
                fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), 1 << 20)
            except OSError:
                pass
        self.buf = bytearray()
        self.writer: threading.Thread | None = None
        self.how: str | None = None  # why the supervisor stopped it, if it did
        self.send_error: str | None = None  # why the writer could not send the calls, if it could not

    def rss(self) -> int:
        try:
            with open(f"/proc/{self.proc.pid}/statm", "rb") as f:
                return int(f.read().split()[1]) * _PAGE
        except (OSError, ValueError, IndexError):
            return 0

    def stop(self, grace: float) -> None:
        """SIGTERM (the faulthandler dumps the stacks), SIGKILL to its group after ``grace``."""
        proc = self.proc
        if proc.poll() is None:
            try:
                proc.send_signal(signal.SIGTERM)
                proc.wait(grace)
            except (OSError, subprocess.TimeoutExpired):
                pass
        self.kill()

    def kill(self) -> None:
        proc = self.proc
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            pass
        if self.writer is not None:
            self.writer.join(5)
        for f in (proc.stdin, proc.stdout, self.faults):
            try:
                f.close()
            except OSError:
                pass

    def fault_text(self, limit: int = 6000) -> str:
        try:
            with open(self.faults_path, "rb") as f:
                f.seek(0, 2)
                size = f.tell()
                f.seek(max(0, size - limit))
                return f.read().decode("utf-8", "replace").strip()
        except OSError:
            return ""


def _limit_memory(pid: int, limit: int) -> None:
    """A hard address-space cap on the worker, well above the polled limit: a backstop for
    allocations faster than the supervisor's polling (where ``prlimit`` exists)."""
    import resource

    cap = max(limit * 4, 1 << 34)
    try:
        resource.prlimit(pid, resource.RLIMIT_AS, (cap, cap))
    except (AttributeError, ValueError, OSError):
        pass


class Supervisor:
    """A backend in a worker process, driven over the wire protocol (see the module
    docstring). ``spec`` is what ``lossconf run`` takes: a built-in name, an entry point
    name or ``module:attribute``."""

    def __init__(
        self, spec: str, *, call_timeout: float = 60.0, memory_mb: float | None = 4096.0,
        output_mb: float = 64.0, start_timeout: float = 120.0, kill_grace: float = 1.0,
        batch: int = 64, command: Sequence[str] | None = None,
    ) -> None:
        self.spec = spec
        self.call_timeout = call_timeout
        self.memory = int(memory_mb * 2**20) if memory_mb else None
        self.output_limit = int(output_mb * 2**20)
        self.start_timeout = start_timeout
        self.kill_grace = kill_grace
        self.batch = batch
        self.command = list(command) if command else [sys.executable, "-m", "conformance.worker.python_worker"]
        self.deadline: float | None = None  # run-wide, time.monotonic()
        self.restarts = 0
        self.dir = tempfile.mkdtemp(prefix="lossconf-worker-")
        self.capture = os.path.join(self.dir, "output")
        self.worker: _Worker | None = None
        self.info: dict[str, Any] | None = None
        self._starts = 0
        self._left = 0  # entries of the current run_entries without a result yet
        env = dict(os.environ)
        paths = [p for p in sys.path if p and os.path.isdir(p)]
        env["PYTHONPATH"] = os.pathsep.join(paths + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
        self.env = env

    # ------------------------------------------------------------------ the backend's face

    @property
    def name(self) -> str:
        return (self.info or self.ready())["name"]

    @property
    def version(self) -> str:
        return (self.info or self.ready())["version"]

    def build_info(self) -> dict[str, Any]:
        return dict((self.info or self.ready()).get("build") or {})

    @property
    def modes(self) -> dict[str, str | None]:
        """The modes the worker's backend runs (:func:`conformance.protocol.supported_modes`
        as the worker read it: every mode -> None, or the reason it does not); a worker that
        sends none runs mode grad only."""
        got = (self.info or self.ready()).get("modes")
        if not isinstance(got, dict):
            return {"grad": None}
        return {str(k): (None if v is None else str(v)) for k, v in got.items()}

    def mapping(self) -> dict[str, Any]:
        """The backend's migration map as the worker read it (:func:`conformance.protocol.mapping_of`):
        what it could read, and its error, if any, raised for the results to record."""
        got = dict((self.info or self.ready()).get("mapping") or {})
        if got.get("mapping_error") and not got.get("mapping"):
            raise RuntimeError(got["mapping_error"].removeprefix("mapping() raised "))
        return dict(got.get("mapping") or {})

    def supports(self, call: Call) -> str | None:
        (_, res), = self.run_entries([Entry(call, 0, True)])
        if res.supports_error is not None:
            raise WorkerCallError(res.supports_error, res.supports_kind)
        return res.unsupported

    def run(self, call: Call) -> Outcome:
        (_, res), = self.run_entries([Entry(call, 1, False)])
        c = res.calls[0]
        if c.outcome is None:
            raise WorkerCallError(c.error or "the worker returned nothing", c.kind, c.detail)
        return c.outcome

    # ------------------------------------------------------------------ the worker's life

    def start(self) -> None:
        """Start the worker and say hello (without waiting for its answer: the harness
        loads the fixtures meanwhile)."""
        if self.worker is not None:
            return
        self._starts += 1
        faults = os.path.join(self.dir, f"faults-{self._starts}")
        w = self.worker = _Worker(self.command, self.env, faults, self.memory)
        try:
            wire.write_all(w.fd_in, wire.frame({"type": "hello", "protocol": wire.PROTOCOL, "backend": self.spec, "capture": self.capture}))
        except OSError:
            pass  # it died at once: ready() says why

    def ready(self) -> dict[str, Any]:
        """The worker's ``ready`` message (waiting for it if needed); BackendError with the
        worker's one-line reason if it cannot load the backend."""
        if self.info is not None and self.worker is not None:
            return self.info
        self.start()
        w = self.worker
        assert w is not None
        limit = time.monotonic() + self.start_timeout
        got = self._read(w, limit)
        if isinstance(got, str):
            last = [ln.strip() for ln in w.fault_text().splitlines() if ln.strip()]
            self._discard()
            why = f" ({last[-1][:300]})" if last else ""
            if got == "timeout":
                raise BackendError(f"backend {self.spec!r}: the worker did not answer hello within {self.start_timeout:g} s{why}")
            raise BackendError(f"backend {self.spec!r}: the worker {got} before it was ready{why}")
        msg, _ = got
        if msg["type"] == "fatal":
            self._discard()
            raise BackendError(str(msg.get("message")))
        if msg["type"] != "ready":
            self._discard()
            raise BackendError(f"backend {self.spec!r}: the worker answered {msg['type']!r} to hello")
        if self.info is not None and (msg.get("name"), msg.get("version")) != (self.info["name"], self.info["version"]):
            self._discard()
            raise BackendError(f"backend {self.spec!r}: a restarted worker names another backend")
        self.info = msg
        return msg

    def _discard(self) -> None:
        w, self.worker = self.worker, None
        if w is not None:
            w.stop(self.kill_grace)

    def close(self) -> None:
        """End the worker (``bye``; killed if it does not end at once) and remove its files."""
        w, self.worker = self.worker, None
        if w is not None:
            try:
                wire.write_all(w.fd_in, wire.frame({"type": "bye"}))
                w.proc.wait(min(self.kill_grace, 2.0))
            except (OSError, subprocess.TimeoutExpired):
                pass
            w.kill()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Supervisor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    # ------------------------------------------------------------------ reading

    def _read(self, w: _Worker, limit: float | None, watch: bool = False) -> tuple[dict[str, Any], bytearray] | str:
        """The next frame, or why there is none: the worker ended (``exit``/``signal``
        text), or the supervisor stopped it (``timeout``, ``memory``, ``flood``), recorded
        in ``w.how``. Raises RunStopped when the run-wide deadline passes."""
        buf, fd = w.buf, w.fd_out
        need = wire.PREFIX_SIZE
        lens: tuple[int, int] | None = None
        checked = time.monotonic()
        while True:
            if lens is None and len(buf) >= wire.PREFIX_SIZE:
                lens = wire.split_prefix(bytes(buf[: wire.PREFIX_SIZE]))
                need = wire.PREFIX_SIZE + lens[0] + lens[1]
            if lens is not None and len(buf) >= need:
                head = wire.parse_header(memoryview(buf)[wire.PREFIX_SIZE : wire.PREFIX_SIZE + lens[0]])
                body = buf[wire.PREFIX_SIZE + lens[0] : need]
                del buf[:need]
                return head, body
            now = time.monotonic()
            wait = POLL
            if limit is not None:
                wait = min(wait, max(0.0, limit - now))
            ready, _, _ = select.select([fd], [], [], wait)
            if ready:
                data = os.read(fd, max(1 << 20, need - len(buf)))
                if not data:
                    return self._ended(w)
                buf += data
                if time.monotonic() - checked < 0.2:
                    continue
            now = time.monotonic()
            checked = now
            if self.deadline is not None and now > self.deadline:
                w.how = "deadline"
                w.stop(self.kill_grace)
                self.worker = None
                raise RunStopped("the run-wide time limit (--max-time) passed")
            if not ready and limit is not None and now > limit:
                w.how = "timeout"
            elif watch and self.memory and w.rss() > self.memory:
                w.how = f"memory {w.rss()}"
            elif watch and _size(self.capture) > self.output_limit:
                w.how = "flood"
            if w.how:
                w.stop(self.kill_grace)
                return w.how

    def _ended(self, w: _Worker) -> str:
        try:
            code = w.proc.wait(5)
        except subprocess.TimeoutExpired:  # closed its output but lives on
            w.stop(self.kill_grace)
            code = w.proc.returncode
        w.kill()
        if code is not None and code < 0:
            return f"died of {_signal_name(-code)}"
        return f"exited with status {code}"

    # ------------------------------------------------------------------ running

    def run_entries(self, entries: Sequence[Entry]) -> Iterator[tuple[int, EntryResult]]:
        """Each entry's result, in order, as ``(index, result)``. A worker that ends or is
        stopped while on an entry is reported as that entry's failed call and started
        again for the next entries."""
        self._left = len(entries)
        try:
            yield from self._run_entries(entries)
        except BaseException:  # (Ctrl-C, a caller's own time limit...): a worker mid-entry is of no more use
            if self._left:  # (not a caller that stopped iterating after the last result)
                self._discard()
            raise

    def _run_entries(self, entries: Sequence[Entry]) -> Iterator[tuple[int, EntryResult]]:
        done = 0
        # calls the wire cannot carry are never sent: each is an error of its own entry
        unsendable = {i: why for i, e in enumerate(entries) if (why := wire.unsendable(e.call)) is not None}
        while done < len(entries):
            while done in unsendable:
                self._left = len(entries) - done - 1
                yield done, _unsent(entries[done], unsendable[done])
                done += 1
            if done >= len(entries):
                break
            self.ready()
            w = self.worker
            assert w is not None
            first = done
            writer = threading.Thread(
                target=self._write, args=(w, entries, first, unsendable), name="lossconf-wire-writer", daemon=True,
            )
            w.writer = writer
            writer.start()
            began = time.monotonic()
            while done < len(entries):
                if done in unsendable:
                    self._left = len(entries) - done - 1
                    yield done, _unsent(entries[done], unsendable[done])
                    done += 1
                    continue
                entry = entries[done]
                budget = max(entry.times, 1) * self.call_timeout
                got = self._read(w, began + budget, watch=True)
                if isinstance(got, str):
                    res = self._failure(w, entry, got)
                    self._left = len(entries) - done - 1
                    yield done, res
                    done += 1
                    self.worker = None
                    self.restarts += 1
                    break
                began = time.monotonic()
                msg, body = got
                if msg.get("type") != "result" or msg.get("id") != done:
                    w.how = "protocol"
                    w.stop(self.kill_grace)
                    self.worker = None
                    res = EntryResult(calls=[CallResult(
                        error=f"the worker broke the protocol: expected the result of entry {done}, got {msg.get('type')!r} {msg.get('id')!r}",
                        kind="protocol",
                    )])
                    self._left = len(entries) - done - 1
                    yield done, res
                    done += 1
                    break
                res = self._result(msg, body)
                self._left = len(entries) - done - 1
                yield done, res
                done += 1

    def _write(self, w: _Worker, entries: Sequence[Entry], first: int, skip: Mapping[int, str]) -> None:
        try:
            for at in range(first, len(entries), self.batch):
                part = [(at + k, e.call, e.times, e.supports) for k, e in enumerate(entries[at : at + self.batch]) if at + k not in skip]
                if part:
                    frame = wire.run_frame(part)
                    wire.write_all(w.fd_in, frame)
        except OSError:  # the worker ended: the reader reports it
            pass
        except Exception as err:  # a call that cannot be encoded after all: never leave the reader waiting
            w.send_error = f"{type(err).__name__}: {err}"
            w.stop(self.kill_grace)

    def _result(self, msg: dict[str, Any], body: bytearray) -> EntryResult:
        res = EntryResult(msg.get("unsupported"), printed=_printed(msg.get("printed")))
        err = msg.get("supports_error")
        if err is not None:
            if err.get("kind") == "contract":
                raise BackendContractError(f"backend {self.info['name'] if self.info else self.spec}: {err.get('message')}")
            res.supports_error = err.get("message")
            res.supports_kind = err.get("kind", "raised")
        if msg.get("error"):
            e = msg["error"]
            res.calls.append(CallResult(error=e.get("message"), kind=e.get("kind", "protocol")))
        for c in msg.get("calls") or ():
            e = c.get("error")
            if e is not None:
                res.calls.append(CallResult(error=e.get("message"), kind=e.get("kind", "raised"), detail=e.get("traceback") or "", seconds=c.get("seconds", 0.0)))
                continue
            try:
                out = wire.outcome_from(c, body)
            except wire.WireError as we:
                res.calls.append(CallResult(error=f"the worker sent a bad outcome: {we}", kind="protocol"))
                continue
            res.calls.append(CallResult(out, seconds=c.get("seconds", 0.0), mutated=list(c.get("mutated") or ())))
        return res

    def _failure(self, w: _Worker, entry: Entry, how: str) -> EntryResult:
        """The entry the worker was on when it ended or was stopped."""
        limit = self.call_timeout
        if how == "timeout":
            kind = "timeout"
            msg = (
                f"the backend call did not return within {limit:g} s (the per-call limit); "
                f"the worker was stopped and started again"
            )
        elif how.startswith("memory"):
            kind = "memory"
            used = int(how.split()[1]) / 2**20
            msg = (
                f"the worker used {used:.0f} MB, over its memory limit of {self.memory / 2**20:.0f} MB; "
                "it was stopped and started again"
            )
        elif how == "flood":
            kind = "flood"
            msg = (
                f"the backend wrote more than {self.output_limit / 2**20:g} MB to its stdout/stderr while on "
                "this case; the worker was stopped and started again"
            )
        elif w.send_error is not None:
            kind = "protocol"
            msg = f"lossconf could not send the calls to the worker ({w.send_error}); it was started again"
        elif how.startswith("died"):
            kind = "signal"
            msg = f"the worker {how} while running this case; it was started again"
        else:
            kind = "exit"
            msg = f"the worker {how} while running this case (the backend ended its process); it was started again"
        detail = w.fault_text()
        printed = None
        size = _size(self.capture)
        if size:
            try:
                with open(self.capture, "rb") as f:
                    head = f.read(2000)
                    if size > 4000:
                        f.seek(size - 2000)
                        printed = f"{size} bytes: " + (head + b"\n[...]\n" + f.read(2000)).decode("utf-8", "replace")
                    else:
                        printed = (head + f.read()).decode("utf-8", "replace")
            except OSError:
                pass
        if entry.times == 0 and entry.supports:
            return EntryResult(supports_error=f"supports() did not return: {msg}", supports_kind=kind, printed=printed)
        return EntryResult(calls=[CallResult(error=msg, kind=kind, detail=detail)], printed=printed)


def _unsent(entry: Entry, why: str) -> EntryResult:
    """The result of an entry whose call cannot be sent to the worker (:func:`wire.unsendable`)."""
    msg = f"lossconf cannot send this call to the worker: {why}"
    if entry.times == 0 and entry.supports:
        return EntryResult(supports_error=msg, supports_kind="protocol")
    return EntryResult(calls=[CallResult(error=msg, kind="protocol")])


class WorkerCallError(Exception):
    """A call the worker could not complete (its message says why); ``kind`` as in
    :class:`CallResult`."""

    def __init__(self, message: str, kind: str, detail: str = "") -> None:
        super().__init__(message)
        self.kind = kind
        self.detail = detail


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0
