"""``session.collector_paused``: the collector is paused for the harness's own work (and
only then), restored afterwards even after an exception, and reference cycles made
meanwhile are still collected by the next full collection."""

from __future__ import annotations

import gc
import weakref

import pytest

from conformance.harness.session import collector_paused


@pytest.mark.parametrize("enabled", [True, False])
def test_the_collector_is_paused_inside_and_restored_after(enabled):
    was = gc.isenabled()
    (gc.enable if enabled else gc.disable)()
    try:
        with collector_paused():
            assert not gc.isenabled()
        assert gc.isenabled() == enabled
        with pytest.raises(RuntimeError), collector_paused():
            raise RuntimeError("boom")
        assert gc.isenabled() == enabled
    finally:
        (gc.enable if was else gc.disable)()


def test_cycles_made_while_paused_are_collected_later():
    class Node:
        pass

    with collector_paused():
        a, b = Node(), Node()
        a.other, b.other = b, a
        ref = weakref.ref(a)
        del a, b
    assert ref() is not None  # nothing collected while paused
    gc.collect()
    assert ref() is None  # not frozen away: the next full collection finds the cycle
