"""The backend in its worker is judged exactly as in process: for the reference backend
and every injected defect of ``tests/defect_backends.py`` (wrong values, shapes, dtypes,
gradients, types, mutated inputs, state between calls, raising supports()), the results
of a run over the wire equal the in-process results record by record: status, verdict,
message, errors."""

from __future__ import annotations

import warnings

import pytest

from conformance import fixtures as fx
from conformance.backends import load_backend
from conformance.harness.session import CHUNK, Filters, Session, backend_modes
from conformance.worker.supervisor import Supervisor

FILTERS = Filters(["L2Loss", "SoftmaxCrossEntropyLoss", "SigmoidBinaryCrossEntropyLoss"], ["float16", "float32"])
CASES = [c for c in fx.load() if FILTERS.keep_case(c)]

SPECS = ["numpy"] + [
    f"tests.defect_backends:{name}"
    for name in (
        "FlippedGradSign", "Float32Accumulation", "DroppedSampleWeight", "BatchAxisIgnored", "ColumnOutput",
        "NanForExtreme", "NaiveLogSumExp", "WrongOutputDtype", "RaisesOnSampleWeight", "WrongType",
        "DropsLastSample", "FlatGradient", "AccumulatesGradients", "MutatesInputs", "Lenient", "RaisesOnEveryCall", "NoFloat16",
        "SupportsRaises",
    )
]


def records(session: Session) -> list[tuple]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        session.run_all(Filters())
    return [
        (r.test_id, r.status, r.verdict, r.message, r.error_ulps, r.error_scale, r.worst_index, r.expected, r.observed)
        for r in session.results
    ]


@pytest.mark.parametrize("spec", SPECS)
def test_a_run_over_the_wire_gives_the_in_process_results(spec):
    inside = records(Session(load_backend(spec), CASES, "test", None, 30.0))
    with Supervisor(spec, call_timeout=30.0) as sup:
        over = records(Session(sup, CASES, "test", None, 30.0))
        assert sup.restarts == 0
    assert len(over) == len(inside) > 0
    for a, b in zip(over, inside):
        assert a == b


def test_every_case_of_the_reference_backend_over_the_wire_in_chunks_gives_the_in_process_results():
    every = fx.load()
    inside = records(Session(load_backend("numpy"), every, "test", None, 30.0))
    with Supervisor("numpy") as sup:
        over = records(Session(sup, every, "test", None, 30.0))
        again = records(Session(sup, every[:10], "test", None, 30.0))
        assert sup.restarts == 0 and sup._starts == 1  # one worker served both sessions
    assert len(every) > 2 * CHUNK  # judged in chunks while the worker ran the rest
    assert over == inside
    assert again == inside[: len(again)]


def test_the_hvp_mode_over_the_wire_gives_the_in_process_results():
    """Mode hvp: the HVPs a worker returns are judged against the fixture's exact HVPs as in
    process (a zero HVP passes where the exact one is 0 and fails elsewhere), never read as
    "the backend returned no HVP"."""
    spec = "tests.defect_backends:WrongHVP"
    support = backend_modes(load_backend(spec))
    cases = [c for c in CASES if c.short_loss == "L2Loss" or c.dtype == "float32"]

    def session(backend) -> Session:
        return Session(backend, cases, "test", None, 30.0, modes=("hvp",), mode_support=support)

    inside = records(session(load_backend(spec)))
    with Supervisor(spec, call_timeout=30.0) as sup:
        over = records(session(sup))
    hvp = [r for r in inside if "-hvp:" in r[0]]
    assert {r[1] for r in hvp} >= {"pass", "fail"}
    assert not any("returned no HVP" in r[3] for r in over)
    assert over == inside
