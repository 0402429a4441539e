"""A run never passes falsely, never dies silently, never hangs: each faulty backend of
``tests/faulty_backends.py`` is run by ``lossconf run`` (the backend in its worker, and
where it matters ``--in-process``) on twelve L2Loss float32 cases, with the fault on one of
them. Each fault must be reported against that case (an error with the right message,
the worker's traceback where there is one), every other case must pass, the exit code must
say what happened, and the run must end in bounded time (short limits here)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conformance import fixtures as fx
from conformance.cli import main
from conformance.harness import session as session_module
from conformance.harness.session import Filters
from tests.faulty_backends import ENV, FLAG, fingerprint

ROOT = Path(__file__).resolve().parent.parent
SELECT = ["--loss", "L2Loss", "--dtype", "float32"]
CASES = [c for c in fx.load() if Filters(["L2Loss"], ["float32"]).keep_case(c)]
TARGET = CASES[3]  # neither the first nor the last: the run goes on after it
INVALID = next(c for c in fx.load() if c.invalid is not None and c.dtype == "float32" and c.short_loss == "softmax_cross_entropy")


def run(monkeypatch, tmp_path, backend: str, *extra: str, target=TARGET, select=SELECT) -> tuple[int, dict | None, float]:
    """``lossconf run tests.faulty_backends:BACKEND`` with the fault on ``target``: the exit
    code, the results document and the wall time."""
    monkeypatch.setenv(ENV, fingerprint(dict(target.inputs)) if target is not None else "all")
    monkeypatch.setattr(session_module, "CHUNK", 5)  # judged in chunks while the worker runs the rest
    out = tmp_path / "results.json"
    start = time.monotonic()
    code = main(["run", f"tests.faulty_backends:{backend}", *select, "--results", str(out), "--call-timeout", "2", *extra])
    took = time.monotonic() - start
    return code, (json.loads(out.read_text()) if out.exists() else None), took


def by_case(doc: dict) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for r in doc["records"]:
        out.setdefault(r["id"].rsplit("-", 1)[0] if not r["id"].endswith("grad:pred") else r["id"][: -len("-grad:pred")], []).append(r)
    return out


def assert_only_target_errs(doc: dict, *words: str, target=TARGET) -> str:
    """Every check of ``target`` is an error whose message has ``words``; every other
    record passes. Returns the target's message."""
    mine = [r for r in doc["records"] if r["id"].startswith(target.test_id + "-")]
    others = [r for r in doc["records"] if not r["id"].startswith(target.test_id + "-")]
    assert mine, "the faulty case has no record"
    assert {r["status"] for r in mine} == {"error"}, [(r["check"], r["status"], r["message"][:200]) for r in mine]
    assert {r["status"] for r in others} <= {"pass"}, [(r["id"], r["message"][:200]) for r in others if r["status"] != "pass"]
    assert len(others) == sum(len(c.checks) for c in CASES) - len(target.checks)
    message = mine[0]["message"]
    for w in words:
        assert w in message, message
    return message


@pytest.mark.parametrize(
    ("backend", "words"),
    [
        ("exit_zero", ["SystemExit"]),
        ("os_exit_zero", ["exited with status 0", "ended its process"]),
        ("abort", ["SIGABRT", "faulty_backends.py", "in fault"]),
        ("segfault", ["SIGSEGV", "segmentation fault", "faulty_backends.py"]),
        ("raises_keyboard_interrupt", ["KeyboardInterrupt"]),
        ("raises_base_exception", ["BaseException: a BaseException of the backend's own", "traceback"]),
    ],
)
def test_a_backend_that_ends_or_crashes_is_an_error_of_its_case_and_the_run_goes_on(monkeypatch, tmp_path, backend, words):
    code, doc, took = run(monkeypatch, tmp_path, backend)
    assert code == 1
    assert doc["complete"] is True
    assert_only_target_errs(doc, *words)
    assert took < 30


def test_a_hang_is_stopped_at_the_call_limit_with_the_stack_where_it_hung(monkeypatch, tmp_path):
    code, doc, took = run(monkeypatch, tmp_path, "hang", "--call-timeout", "1")
    assert code == 1
    msg = assert_only_target_errs(doc, "did not return within 1 s", "faulty_backends.py", "in fault")
    assert "time.sleep" in msg or "line" in msg
    assert took < 30


def test_a_backend_that_swallows_the_interruption_is_stopped_all_the_same(monkeypatch, tmp_path):
    code, doc, took = run(monkeypatch, tmp_path, "swallows_timeout", "--call-timeout", "1")
    assert code == 1
    assert_only_target_errs(doc, "did not return within 1 s")
    assert took < 30


def test_a_worker_over_its_memory_limit_is_an_error_of_its_case(monkeypatch, tmp_path):
    code, doc, took = run(monkeypatch, tmp_path, "hogs_memory", "--memory-limit", "300")
    assert code == 1
    assert_only_target_errs(doc, "over its memory limit of 300 MB")
    assert took < 30


def test_output_flooding_is_an_error_of_its_case(monkeypatch, tmp_path):
    code, doc, took = run(monkeypatch, tmp_path, "floods", "--output-limit", "1")
    assert code == 1
    msg = assert_only_target_errs(doc, "wrote more than 1 MB", "the backend's output")
    assert len(msg) < 10_000  # shown truncated
    assert took < 30


def test_a_crash_on_invalid_input_is_an_error_not_a_documented_rejection(monkeypatch, tmp_path):
    select = ["--loss", INVALID.short_loss, "--dtype", "float32", "--tag", "invalid"]
    code, doc, _ = run(monkeypatch, tmp_path, "segfault", target=INVALID, select=select)
    assert code == 1
    mine = [r for r in doc["records"] if r["id"].startswith(INVALID.test_id + "-")]
    assert [(r["check"], r["status"]) for r in mine] == [("invalid", "error")]
    assert "SIGSEGV" in mine[0]["message"]


@pytest.mark.parametrize("in_process", [False, True])
def test_keyboard_interrupt_raised_by_the_backend_is_an_error_of_its_case_in_process_too(monkeypatch, tmp_path, in_process):
    code, doc, _ = run(monkeypatch, tmp_path, "raises_keyboard_interrupt", *(["--in-process"] if in_process else []))
    assert code == 1 and doc["complete"] is True
    assert_only_target_errs(doc, "KeyboardInterrupt")


def test_in_process_system_exit_and_base_exception_are_errors_of_their_case(monkeypatch, tmp_path):
    for backend, word in (("exit_zero", "SystemExit"), ("raises_base_exception", "BaseException")):
        code, doc, _ = run(monkeypatch, tmp_path, backend, "--in-process")
        assert code == 1
        assert_only_target_errs(doc, word)


def test_the_backends_output_is_in_its_case_failure_and_not_in_the_summary(monkeypatch, tmp_path, capsys):
    code, doc, _ = run(monkeypatch, tmp_path, "prints_and_errs")
    assert code == 1
    msg = assert_only_target_errs(doc, "ValueError: a wrong turn", "backend says hello on stdout", "backend says hello on stderr")
    assert "the backend's output" in msg
    out, err = capsys.readouterr()
    summary = out.split("lossconf summary", 1)[1]
    assert "hello" not in summary and "hello" not in err
    # shown once per failing check of the case, inside its FAILED block
    blocks = out.split("FAILED ")[1:]
    assert all(("hello on stdout" in b) == b.startswith(TARGET.test_id) for b in blocks)


def test_supports_returning_true_is_an_error_of_the_backend_reported_once(monkeypatch, tmp_path, capsys):
    for mode in ([], ["--in-process"]):
        code, doc, _ = run(monkeypatch, tmp_path, "supports_true", *mode)
        _, err = capsys.readouterr()
        assert code == 3
        assert doc is None
        assert err.count("\n") == 1 and "supports() returned True (bool)" in err and "None" in err


def test_a_name_that_raises_is_a_one_line_error(monkeypatch, tmp_path, capsys):
    for mode in ([], ["--in-process"]):
        code, doc, _ = run(monkeypatch, tmp_path, "name_raises", *mode)
        _, err = capsys.readouterr()
        assert code == 3 and doc is None
        assert err.count("\n") == 1 and "RuntimeError: no name today" in err, err


def test_a_run_in_which_no_check_ran_has_its_own_exit_code_unless_allowed(monkeypatch, tmp_path, capsys):
    code, doc, _ = run(monkeypatch, tmp_path, "supports_nothing")
    _, err = capsys.readouterr()
    assert code == 5
    assert {r["status"] for r in doc["records"]} == {"skip"}
    assert "no check ran" in err and "--allow-empty" in err
    code, _, _ = run(monkeypatch, tmp_path, "supports_nothing", "--allow-empty")
    assert code == 0


def test_max_time_stops_the_run_with_partial_results_marked_incomplete(monkeypatch, tmp_path, capsys):
    code, doc, took = run(monkeypatch, tmp_path, "hang", "--call-timeout", "60", "--max-time", "2")
    _, err = capsys.readouterr()
    assert code == 6
    assert doc["complete"] is False and "--max-time" in doc["stopped"]
    ran = {r["id"].split("-float32-")[1][:-0 or None] for r in doc["records"]}
    assert ran and not any(r["id"].startswith(TARGET.test_id + "-") for r in doc["records"])  # the stopped case: no verdict
    assert {r["status"] for r in doc["records"]} == {"pass"}
    assert "incomplete" in err
    assert took < 60  # stopped by --max-time, not by the hanging call's own 60 s timeout


def _cli(*args: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "conformance.cli", "run", *args], cwd=ROOT, env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


@pytest.mark.parametrize("in_process", [False, True])
def test_ctrl_c_stops_the_run_and_writes_the_partial_results(tmp_path, in_process):
    flag, out = tmp_path / "hanging", tmp_path / "r.json"
    env = {ENV: fingerprint(dict(TARGET.inputs)), FLAG: str(flag)}
    proc = _cli("tests.faulty_backends:hang", *SELECT, "--call-timeout", "60", "--results", str(out),
                *(["--in-process"] if in_process else []), env=env)
    try:
        deadline = time.monotonic() + 30
        while not flag.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert flag.exists(), proc.communicate()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    doc = json.loads(out.read_text())
    assert doc["complete"] is False and "Ctrl-C" in doc["stopped"]
    assert doc["records"] and {r["status"] for r in doc["records"]} == {"pass"}


@pytest.mark.parametrize("in_process", [False, True])
def test_a_thread_the_backend_leaves_running_does_not_keep_the_run_alive(tmp_path, in_process):
    proc = _cli("tests.faulty_backends:leaves_thread", *SELECT, *(["--in-process"] if in_process else []), env={ENV: "all"})
    try:
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "total" in out
    if in_process:
        assert "thread(s) the backend left running" in err


def test_in_process_a_backend_that_swallows_the_interruption_ends_the_run_with_a_line_not_a_hang(tmp_path):
    proc = _cli("tests.faulty_backends:swallows_timeout", *SELECT, "--call-timeout", "1", "--in-process",
                env={ENV: fingerprint(dict(TARGET.inputs))})
    try:
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 6
    assert err.count("\n") == 1 and "swallowed the interruption" in err and "without --in-process" in err


def test_in_process_max_time_interrupts_a_hanging_call_and_keeps_the_results_before_it(monkeypatch, tmp_path):
    code, doc, took = run(monkeypatch, tmp_path, "hang", "--call-timeout", "60", "--max-time", "2", "--in-process")
    assert code == 6
    assert doc["complete"] is False and doc["records"]
    assert not any(r["id"].startswith(TARGET.test_id + "-") for r in doc["records"])
    assert {r["status"] for r in doc["records"]} == {"pass"}
    assert took < 20


def test_live_mode_reports_a_crash_as_a_failing_example_with_the_workers_traceback(monkeypatch, capsys):
    monkeypatch.setenv(ENV, "all")
    code = main(["live", "tests.faulty_backends:segfault", "--loss", "L2Loss", "--examples", "2", "--seed", "1"])
    out, _ = capsys.readouterr()
    assert code == 1
    assert "died of SIGSEGV" in out and "faulty_backends.py" in out


@pytest.mark.parametrize("backend", ["object_output", "complex_output", "structured_output", "complex_gradient"])
@pytest.mark.parametrize("in_process", [False, True])
def test_an_output_the_wire_cannot_carry_is_an_error_of_its_case_not_a_hang(monkeypatch, tmp_path, backend, in_process):
    """An object, complex or structured array returned as the output (or a gradient) is an
    error of its case, in the worker (it cannot be encoded) and in process alike."""
    code, doc, took = run(monkeypatch, tmp_path, backend, *(["--in-process"] if in_process else []))
    assert code == 1
    assert doc["complete"] is True
    msg = assert_only_target_errs(doc, "wrong return type")
    assert ("object" in msg or "complex" in msg or "cannot be sent" in msg or "dtype" in msg), msg
    assert took < 30


def test_a_call_the_wire_cannot_carry_is_an_error_of_its_entry_and_the_others_run():
    """A call with an array the wire does not carry (a complex input; before the wire knew
    bfloat16, a bfloat16 one) or an option JSON cannot hold (nan) used to stop the
    supervisor's writer thread, and the reader then waited on that entry's result until the
    time limit, entry after entry: now it is never sent, and is an error of its own entry."""
    from conformance.harness.runner import make_call
    from conformance.protocol import new_call
    from conformance.worker.supervisor import Entry, Supervisor

    good = make_call(CASES[0])
    complex_input = new_call(good.loss, good.options, {k: v.astype(np.complex128) if v.dtype.kind == "f" else v
                                                       for k, v in good.inputs.items()}, good.dtype, good.wrt,
                             good.cotangent, good.mode, None)
    nan_option = new_call(good.loss, {**good.options, "weight": float("nan")}, good.inputs, good.dtype, good.wrt,
                          good.cotangent, good.mode, None)
    entries = [Entry(good, 1, True), Entry(complex_input, 1, True), Entry(good, 1, True), Entry(nan_option, 1, False),
               Entry(complex_input, 0, True), Entry(good, 2, True)]
    start = time.monotonic()
    with Supervisor("numpy", call_timeout=5) as sup:
        results = dict(sup.run_entries(entries))
    assert time.monotonic() - start < 20
    assert sorted(results) == list(range(len(entries)))
    for i in (0, 2, 5):
        assert [c.kind for c in results[i].calls] == ["ok"] * entries[i].times
    for i, what in ((1, "dtype complex128, which the wire cannot carry"), (3, "options cannot be sent as JSON")):
        (call,) = results[i].calls
        assert call.kind == "protocol" and "lossconf cannot send this call to the worker" in call.error and what in call.error
    assert results[4].supports_kind == "protocol" and "complex128" in results[4].supports_error


@pytest.mark.parametrize("in_process", [False, True])
def test_ctrl_c_while_judging_keeps_the_records_judged_so_far(monkeypatch, tmp_path, in_process):
    """A Ctrl-C in the harness's own judging (here: the third chunk's vectorised pass) stops
    the run with exit 130; the chunks judged before it are written, marked incomplete."""
    from conformance.harness import batch

    monkeypatch.setattr(session_module, "CHUNK", 4)
    real, seen = batch.measure_rows, []

    def interrupted(items):
        seen.append(len(items))
        if len(seen) == 3:
            raise KeyboardInterrupt
        return real(items)

    monkeypatch.setattr(batch, "measure_rows", interrupted)
    out = tmp_path / "results.json"
    args = ["run", "numpy", *SELECT, "--mode", "grad", "--results", str(out), "-q"]
    code = main([*args, *(["--in-process"] if in_process else [])])
    assert code == 130
    doc = json.loads(out.read_text())
    assert doc["complete"] is False and doc["stopped"] == session_module.INTERRUPTED
    judged = {r["id"].rsplit("-", 1)[0] for r in doc["records"] if r["check"] == "value"}
    assert judged == {c.test_id for c in CASES[:8]}  # two chunks of 4 cases, every check of each
    assert len(doc["records"]) == sum(len(c.checks) for c in CASES[:8])
    assert {r["status"] for r in doc["records"]} == {"pass"}
