"""The per-call time limit (``runner.time_limit``, a watchdog thread that interrupts the
main thread): a call past its limit is interrupted promptly with a clear message, the
calls after it run normally, calls that return in time are never interrupted (no late
signal leaks into the harness's own code), and outside the main thread there is no limit."""

from __future__ import annotations

import threading
import time

import pytest

from conformance.harness.runner import Timeout, _Watchdog, time_limit


def _busy(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:  # Python bytecode: the signal handler can run
        pass


@pytest.mark.parametrize("work", [time.sleep, _busy], ids=["sleeping", "busy"])
def test_a_call_past_its_limit_is_interrupted(work):
    with time_limit(0.2, armed=False) as limit:
        limit.arm()
        start = time.monotonic()
        with pytest.raises(Timeout, match=r"^the backend call did not return within 0\.2 s$"):
            try:
                work(5.0)
            finally:
                limit.disarm()
        waited = time.monotonic() - start
    assert 0.2 <= waited < 0.2 + 10 * _Watchdog.tick + 0.3


def test_calls_after_a_timeout_run_normally():
    with time_limit(0.1, armed=False) as limit:
        limit.arm()
        with pytest.raises(Timeout):
            try:
                time.sleep(5.0)
            finally:
                limit.disarm()
        for _ in range(3):
            limit.arm()
            try:
                time.sleep(0.02)
            finally:
                limit.disarm()


def test_calls_that_return_in_time_are_never_interrupted():
    # many calls, each ending close to its limit: a signal for a call that has returned
    # must not surface in the code that runs after it
    # (on a loaded machine a call may really overrun its limit: that interruption is
    # legitimate; what must never happen is a Timeout outside an armed call)
    with time_limit(0.03, armed=False) as limit:
        for _ in range(40):
            try:
                limit.arm()
                try:
                    _busy(0.025)
                finally:
                    limit.disarm()
            except Timeout:
                pass
            _busy(0.03)  # the harness's own work between calls, past the old deadline


def test_armed_on_entry_and_handler_restored():
    import signal

    before = signal.getsignal(signal.SIGALRM)
    with pytest.raises(Timeout), time_limit(0.1):
        time.sleep(5.0)
    assert signal.getsignal(signal.SIGALRM) is before


def test_no_limit_outside_the_main_thread():
    done = []

    def work():
        with time_limit(0.05) as limit:
            assert not limit.active
            time.sleep(0.15)
        done.append(True)

    t = threading.Thread(target=work)
    t.start()
    t.join()
    assert done == [True]


def test_a_late_signal_for_a_returned_call_is_ignored():
    import signal

    with time_limit(10.0, armed=False) as limit:
        limit.arm()
        limit.disarm()
        # the watchdog decided to interrupt this call just as it returned
        limit.dog.fired = limit.dog.call
        signal.pthread_kill(threading.main_thread().ident, signal.SIGALRM)
        time.sleep(0.05)  # the handler runs here and must not raise
