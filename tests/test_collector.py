"""The session's handling of the cyclic garbage collector: paused for the harness's own
work, on for the backend's calls, and left as it was found."""

from __future__ import annotations

import gc

import pytest

from conformance.harness.session import backend_work, harness_work
from conformance.protocol import Call, new_call


@pytest.mark.parametrize("enabled", [True, False])
def test_harness_work_pauses_the_collector_and_restores_it(enabled):
    (gc.enable if enabled else gc.disable)()
    try:
        with harness_work():
            assert not gc.isenabled()
            with backend_work(enabled):
                assert gc.isenabled() is enabled
            assert not gc.isenabled()
        assert gc.isenabled() is enabled
    finally:
        gc.enable()


def test_harness_work_restores_the_collector_after_an_exception():
    with pytest.raises(RuntimeError), harness_work():
        raise RuntimeError("boom")
    assert gc.isenabled()


def test_objects_made_in_harness_work_are_not_frozen_and_cycles_are_still_collected():
    class Node:
        pass

    with harness_work():
        a, b = Node(), Node()
        a.other, b.other = b, a  # a reference cycle
    assert gc.get_freeze_count() == 0
    del a, b
    assert gc.collect() >= 2


def test_new_call_equals_the_dataclass_constructor():
    args = ("mxnet.gluon.loss.L2Loss", {"weight": 1.0}, {"pred": None}, "float32", ("pred",), None)
    fast, plain = new_call(*args), Call(*args)
    assert fast == plain and repr(fast) == repr(plain)
    with pytest.raises(AttributeError):
        fast.dtype = "float64"  # still frozen


def test_collections_in_the_backends_calls_traverse_only_what_they_made():
    with harness_work():
        kept = [[] for _ in range(1000)]  # the harness's objects
        with backend_work(True):
            assert gc.isenabled() and gc.get_freeze_count() >= len(kept)
        assert gc.get_freeze_count() == 0
    assert gc.get_freeze_count() == 0
