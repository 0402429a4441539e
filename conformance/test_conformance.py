"""The conformance tests: one item per fixture case and check (see conformance/plugin.py).
Run with ``pytest --pyargs conformance --backend NAME`` or ``lossconf run NAME``."""

from conformance.plugin import run_check


def test(lossconf_check):
    run_check(lossconf_check)
