"""The wire protocol (``docs/WIRE.md``): frames and arrays byte for byte, calls and outcomes
round trip, bad descriptions rejected, every header the supervisor and the Python worker
write valid under the JSON Schema, and the supervisor standing in for a backend."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from conformance import fixtures as fx
from conformance.harness.runner import CaseRun, entry_for
from conformance.protocol import Call
from conformance.worker import python_worker, wire
from conformance.worker.supervisor import Entry, Supervisor

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = json.loads((ROOT / "conformance" / "worker" / "messages.schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


def decode(data: bytes) -> tuple[dict, bytes]:
    head_len, body_len = struct.unpack("<IQ", data[:12])
    assert len(data) == 12 + head_len + body_len
    return json.loads(data[12 : 12 + head_len]), data[12 + head_len :]


def test_a_frame_is_two_little_endian_lengths_a_json_header_and_the_body():
    data = wire.frame({"type": "bye"}, b"\x01\x02")
    assert data[:4] == (14).to_bytes(4, "little") and data[4:12] == (2).to_bytes(8, "little")
    assert data[12:26] == b'{"type":"bye"}' and data[26:] == b"\x01\x02"
    assert decode(data) == ({"type": "bye"}, b"\x01\x02")


def test_arrays_are_little_endian_c_order_bytes_at_aligned_offsets():
    body = wire.Body()
    a = body.array(np.array([1.0, -2.0], dtype=">f4"))  # big-endian in, little-endian out
    b = body.array(np.arange(6, dtype=np.int64).reshape(2, 3).T)  # not contiguous
    c = body.array(np.float16(1.5))
    data = body.bytes()
    assert a == {"dtype": "float32", "shape": [2], "offset": 0}
    assert data[:8] == struct.pack("<ff", 1.0, -2.0)
    assert b == {"dtype": "int64", "shape": [3, 2], "offset": 8}
    assert data[8:56] == struct.pack("<6q", 0, 3, 1, 4, 2, 5)
    assert c == {"dtype": "float16", "shape": [], "offset": 56} and data[56:58] == struct.pack("<e", 1.5)


@pytest.mark.parametrize("dtype", sorted(wire.DTYPES))
@pytest.mark.parametrize("shape", [(), (0,), (3,), (2, 0, 4), (2, 3)])
def test_every_wire_dtype_and_shape_round_trips(dtype, shape):
    value = (np.arange(int(np.prod(shape))) % 3).astype(dtype).reshape(shape)
    body = wire.Body()
    desc = body.array(value)
    assert desc["offset"] % 8 == 0
    back = wire.array_from(desc, bytearray(body.bytes()))
    assert back.dtype == value.dtype and back.shape == value.shape and back.tobytes() == value.tobytes()


@pytest.mark.parametrize(
    "desc",
    [
        {"dtype": "float32", "shape": [4], "offset": 8},  # past the body's end
        {"dtype": "float32", "shape": [-1], "offset": 0},
        {"dtype": "complex64", "shape": [1], "offset": 0},
        {"dtype": "float32", "shape": [1]},
        "float32",
    ],
)
def test_a_bad_array_description_is_a_wire_error(desc):
    with pytest.raises(wire.WireError):
        wire.array_from(desc, bytearray(16))


def test_an_object_array_cannot_be_sent():
    with pytest.raises(wire.WireError, match="cannot be sent"):
        wire.Body().array(np.array([object()]))


def test_a_frame_with_absurd_lengths_or_a_non_json_header_is_refused():
    with pytest.raises(wire.WireError):
        wire.split_prefix(struct.pack("<IQ", 2**31, 0))
    with pytest.raises(wire.WireError):
        wire.parse_header(b"[1, 2]")
    with pytest.raises(wire.WireError):
        wire.parse_header(b"\xff")


def _call() -> Call:
    return Call(
        "mxnet.gluon.loss.L2Loss", {"weight": 0.5, "batch_axis": 0},
        {"pred": np.ones((2, 3), np.float32), "label": np.zeros((2, 3), np.float32)},
        "float32", ("pred",), np.ones(2, np.float32), "hvp", {"pred": np.full((2, 3), 2.0, np.float32)},
    )


def test_a_call_round_trips_with_its_mode_and_direction():
    call = _call()
    header, body = decode(wire.run_frame([(0, call, 2, True)]))
    assert not list(VALIDATOR.iter_errors(header))
    back = wire.call_from(header["entries"][0]["call"], bytearray(body))
    assert (back.loss, dict(back.options), back.dtype, back.wrt, back.mode) == (call.loss, dict(call.options), "float32", ("pred",), "hvp")
    for name in call.inputs:
        assert back.inputs[name].tobytes() == call.inputs[name].tobytes()
    assert back.cotangent.tobytes() == call.cotangent.tobytes()
    assert back.direction["pred"].tobytes() == call.direction["pred"].tobytes()


class _NoCapture:
    def take(self):
        return {"bytes": 5, "text": "hello"}


class _Backend:
    name, version = "fake", "1"

    def __init__(self, supports=None, run=None) -> None:
        self._supports, self._run = supports, run

    def supports(self, call):
        return self._supports

    def run(self, call):
        return self._run(call)


def _worker_result(backend, times=2) -> dict:
    w = python_worker.Worker(-1, -1)
    w.backend, w.capture = backend, _NoCapture()
    header, body = decode(wire.run_frame([(7, _call(), times, True)]))
    result, out = w.entry(header["entries"][0], bytearray(body))
    errors = [e.message for e in VALIDATOR.iter_errors(result)]
    assert not errors, errors
    return result


def test_every_result_the_python_worker_writes_is_valid_under_the_schema():
    from conformance.protocol import Outcome

    seen = []

    def mutate(call):
        seen.append(float(call.inputs["pred"][0, 0]))
        call.inputs["pred"][0, 0] = 9
        return Outcome(np.zeros(2, np.float32), {"pred": np.zeros((2, 3), np.float32)})

    ok = _worker_result(_Backend(run=mutate))
    assert ok["calls"][0]["mutated"] == ["pred"]  # (the harness judges the first call's)
    assert seen == [1.0, 1.0]  # the repeat call got the inputs as sent, not the first call's
    assert ok["printed"] == {"bytes": 5, "text": "hello"}
    assert _worker_result(_Backend(supports="no"))["unsupported"] == "no"
    assert _worker_result(_Backend(supports=True))["supports_error"]["kind"] == "contract"
    assert _worker_result(_Backend(supports=""))["supports_error"]["kind"] == "contract"
    raised = _worker_result(_Backend(run=lambda c: 1 / 0))
    assert raised["calls"] == [{"error": {"kind": "raised", "message": "ZeroDivisionError: division by zero"}, "seconds": raised["calls"][0]["seconds"]}]
    base = _worker_result(_Backend(run=lambda c: (_ for _ in ()).throw(SystemExit(3))))
    assert base["calls"][0]["error"]["kind"] == "base" and "SystemExit: 3" in base["calls"][0]["error"]["message"]
    wrong = _worker_result(_Backend(run=lambda c: {"output": 1}))
    assert wrong["calls"][0]["error"]["kind"] == "return"


def test_the_supervisor_stands_in_for_the_backend_and_batches_entries():
    cases = [c for c in fx.load() if c.short_loss == "L2Loss" and c.dtype == "float64"][:5]
    with Supervisor("numpy") as sup:
        info = sup.ready()
        assert not [e.message for e in VALIDATOR.iter_errors(info)]
        assert sup.name == "numpy" and sup.build_info() == info["build"]
        call = _call()
        assert sup.supports(Call(call.loss, call.options, call.inputs, call.dtype, call.wrt, call.cotangent)) is None
        assert "no second derivatives" in sup.supports(call)  # mode hvp: the numpy backend's reason (issue 13)
        assert sup.modes["hvp"] == sup.supports(call) and sup.modes["grad"] is None
        out = sup.run(Call(call.loss, call.options, call.inputs, call.dtype, call.wrt, call.cotangent))
        assert out.output.tolist() == [0.25, 0.25]
        results = list(sup.run_entries([entry_for(CaseRun(c)) for c in cases] + [Entry(call, 0, True)]))
        assert [i for i, _ in results] == list(range(6))
        assert all(len(r.calls) == 2 and r.calls[0].outcome is not None for _, r in results[:5])
        assert sup.restarts == 0


def test_a_bad_spec_is_the_workers_one_line_fatal_message():
    from conformance.backends import BackendError

    with Supervisor("no_such_module_xyz:backend") as sup, pytest.raises(BackendError, match="no_such_module_xyz"):
        sup.ready()


def test_the_protocol_page_shows_the_schema_file_verbatim():
    page = (ROOT / "docs" / "WIRE.md").read_text()
    block = page.split("```json\n")[-1].split("```")[0]
    assert json.loads(block) == SCHEMA


def test_nothing_in_the_worker_package_pickles():
    for path in (ROOT / "conformance" / "worker").glob("*.py"):
        text = path.read_text()
        assert "import pickle" not in text and "pickle." not in text and "marshal" not in text, path


def test_a_worker_that_dies_or_stays_silent_at_start_is_a_one_line_backend_error():
    from conformance.backends import BackendError

    with Supervisor("x", command=["/bin/sh", "-c", "echo cannot start >&2; exit 4"]) as sup:
        with pytest.raises(BackendError, match=r"exited with status 4 before it was ready \(cannot start\)"):
            sup.ready()
    with Supervisor("x", command=["/bin/sh", "-c", "sleep 30"], start_timeout=0.3, kill_grace=0.1) as sup:
        with pytest.raises(BackendError, match="did not answer hello within 0.3 s"):
            sup.ready()
