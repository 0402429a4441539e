"""The wire protocol between the supervisor and a worker: frames, arrays, calls and results.

Language-neutral by construction (``docs/WIRE.md`` is the normative description, with the
JSON Schema of every message in ``conformance/worker/messages.schema.json``):

* a **frame** is ``u32 header length | u64 body length | header | body``, both lengths
  little-endian; the header is one JSON object in UTF-8, the body raw bytes;
* an **array** (dtype names: float16, bfloat16 -- 2 bytes, the upper half of a float32,
  ``ml_dtypes.bfloat16`` in numpy -- float32, float64, the integer types and bool) is a JSON object ``{"dtype": "float32", "shape": [2, 3], "offset": 0}`` in
  the header: its elements are ``prod(shape)`` values of that dtype, little-endian, C order,
  at byte ``offset`` of the frame's body (offsets are multiples of 8);
* nothing is pickled; a backend is named by a spec string and options are plain JSON.

This module encodes and decodes them with numpy only; it knows nothing of the harness.
"""

from __future__ import annotations

import json
import math
import os
import struct
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from ..protocol import Call, Outcome, new_call

PROTOCOL = 1
_PREFIX = struct.Struct("<IQ")
PREFIX_SIZE = _PREFIX.size  # 12 bytes
#: the largest header and body a reader accepts (a corrupt length must not allocate terabytes)
MAX_HEADER = 1 << 30
MAX_BODY = 1 << 40

#: the dtypes an array on the wire may have, by their wire names
DTYPES: dict[str, np.dtype] = {
    name: np.dtype(name).newbyteorder("<")
    for name in (
        "float16", "bfloat16", "float32", "float64", "int8", "int16", "int32", "int64",
        "uint8", "uint16", "uint32", "uint64", "bool",
    )
}
_NAMES = {dt: name for name, dt in DTYPES.items()}
_NAMES.update({dt.newbyteorder(">"): name for name, dt in DTYPES.items() if dt.itemsize > 1})


class WireError(Exception):
    """A frame or message that does not follow the protocol."""


# ------------------------------------------------------------------ frames


_encode = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode


def frame(header: Mapping[str, Any], body: bytes | bytearray | memoryview = b"") -> bytes:
    """One frame: the prefix, the header as compact JSON, the body."""
    head = _encode(header).encode()
    return b"".join((_PREFIX.pack(len(head), len(body)), head, body))


def split_prefix(prefix: bytes | memoryview) -> tuple[int, int]:
    """The header and body lengths of a frame's 12-byte prefix."""
    head_len, body_len = _PREFIX.unpack(prefix)
    if head_len > MAX_HEADER or body_len > MAX_BODY:
        raise WireError(f"frame lengths out of range (header {head_len}, body {body_len} bytes)")
    return head_len, body_len


def parse_header(data: bytes | memoryview) -> dict[str, Any]:
    try:
        header = json.loads(bytes(data))
    except (UnicodeDecodeError, ValueError) as err:
        raise WireError(f"a frame header is not JSON: {err}") from None
    if not isinstance(header, dict) or not isinstance(header.get("type"), str):
        raise WireError("a frame header is not a JSON object with a string 'type'")
    return header


def write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def read_exact(fd: int, n: int) -> bytearray | None:
    """Exactly ``n`` bytes from ``fd``, or None at end of file (blocking)."""
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = os.readv(fd, [view[got:]])
        if k == 0:
            return None
        got += k
    return buf


def read_frame(fd: int) -> tuple[dict[str, Any], bytearray] | None:
    """One frame from ``fd`` (blocking): its header and its body (writable), or None at
    end of file."""
    prefix = read_exact(fd, PREFIX_SIZE)
    if prefix is None:
        return None
    head_len, body_len = split_prefix(prefix)
    data = read_exact(fd, head_len + body_len)
    if data is None:
        raise WireError("the stream ended inside a frame")
    return parse_header(memoryview(data)[:head_len]), data[head_len:]


# ------------------------------------------------------------------ arrays


class Body:
    """A frame body being built: arrays appended at 8-byte aligned offsets."""

    __slots__ = ("parts", "size")

    def __init__(self) -> None:
        self.parts: list[Any] = []
        self.size = 0

    def array(self, value: np.ndarray) -> dict[str, Any]:
        """Append an array; its description for the header."""
        a = value if type(value) is np.ndarray else np.asarray(value)
        name = _NAMES.get(a.dtype)
        if name is None:
            raise WireError(f"an array of dtype {a.dtype} cannot be sent (wire dtypes: {', '.join(DTYPES)})")
        if a.dtype.byteorder == ">":
            a = a.astype(DTYPES[name])
        if not a.flags.c_contiguous:
            a = np.ascontiguousarray(a)
        pad = -self.size % 8
        if pad:
            self.parts.append(b"\0" * pad)
            self.size += pad
        desc = {"dtype": name, "shape": list(a.shape), "offset": self.size}
        if a.nbytes:
            # bfloat16 (a dtype numpy's buffer protocol cannot export) goes as its raw bytes
            self.parts.append(a.data if a.ndim and a.dtype.kind != "V" else a.tobytes())
            self.size += a.nbytes
        return desc

    def arrays(self, values: Mapping[str, Any] | None) -> dict[str, Any] | None:
        return None if values is None else {k: self.array(v) for k, v in values.items()}

    def bytes(self) -> bytes:
        return b"".join(self.parts)


def array_from(desc: Any, body: bytes | bytearray | memoryview) -> np.ndarray:
    """The array a header describes, a view of ``body`` (writable when the body is)."""
    try:
        dtype = DTYPES[desc["dtype"]]
        shape = desc["shape"]
        offset = desc["offset"]
        count = math.prod(shape)
        if type(count) is not int or (shape and min(shape) < 0):
            raise ValueError("a dimension is not an integer >= 0")
        if type(offset) is not int or offset < 0 or offset + count * dtype.itemsize > len(body):
            raise ValueError("the array does not lie inside the frame's body")
        a = np.frombuffer(body, dtype, count, offset) if count else np.empty(0, dtype)
        return a.reshape(shape)
    except (KeyError, TypeError, ValueError) as err:
        raise WireError(f"a bad array description {desc!r}: {err}") from None


def arrays_from(descs: Mapping[str, Any] | None, body: bytes | bytearray | memoryview) -> dict[str, np.ndarray] | None:
    return None if descs is None else {k: array_from(v, body) for k, v in descs.items()}


# ------------------------------------------------------------------ calls and outcomes


def call_json(call: Call, body: Body) -> dict[str, Any]:
    """A call as the ``call`` object of a ``run`` entry."""
    return {
        "loss": call.loss,
        "options": dict(call.options),
        "inputs": body.arrays(call.inputs),
        "dtype": call.dtype,
        "wrt": list(call.wrt),
        "cotangent": None if call.cotangent is None else body.array(call.cotangent),
        "mode": call.mode,
        "direction": body.arrays(call.direction),
    }


def unsendable(call: Call) -> str | None:
    """Why :func:`call_json` cannot encode a call (an array of a dtype the wire does not
    carry, an option JSON cannot hold), or None. Checked before a call is sent, so that
    such a call is an error of its own case rather than a writer that stops mid-run."""
    arrays = [*(call.inputs or {}).items(), *(call.direction or {}).items()]
    if call.cotangent is not None:
        arrays.append(("the cotangent", call.cotangent))
    for name, value in arrays:
        dt = value.dtype if type(value) is np.ndarray else np.asarray(value).dtype
        if dt not in _NAMES:
            return f"{name} is an array of dtype {dt}, which the wire cannot carry (wire dtypes: {', '.join(DTYPES)})"
    try:
        _encode({"loss": call.loss, "options": dict(call.options), "dtype": call.dtype, "wrt": list(call.wrt), "mode": call.mode})
    except (TypeError, ValueError) as err:
        return f"the call's options cannot be sent as JSON: {err}"
    return None


def call_from(obj: Mapping[str, Any], body: bytes | bytearray | memoryview) -> Call:
    """The call a ``call`` object describes; its arrays are views of ``body``."""
    try:
        ct = obj.get("cotangent")
        return new_call(
            obj["loss"], obj.get("options") or {}, arrays_from(obj["inputs"], body) or {}, obj["dtype"],
            tuple(obj.get("wrt") or ()), None if ct is None else array_from(ct, body),
            obj.get("mode", "grad"), arrays_from(obj.get("direction"), body),
        )
    except (KeyError, TypeError, AttributeError) as err:
        raise WireError(f"a bad call object: {type(err).__name__}: {err}") from None


def outcome_json(output: np.ndarray, grads: Mapping[str, np.ndarray], hvp: Mapping[str, np.ndarray], body: Body) -> dict[str, Any]:
    return {"output": body.array(output), "grads": body.arrays(grads), "hvp": body.arrays(hvp)}


def outcome_from(obj: Mapping[str, Any], body: bytes | bytearray | memoryview) -> Outcome:
    try:
        return Outcome(array_from(obj["output"], body), arrays_from(obj.get("grads"), body) or {}, arrays_from(obj.get("hvp"), body) or {})
    except (KeyError, TypeError) as err:
        raise WireError(f"a bad outcome object: {type(err).__name__}: {err}") from None


def run_frame(entries: Iterable[tuple[int, Call, int, bool]]) -> bytes:
    """A ``run`` message: entries ``(id, call, times, check_supports)``."""
    body = Body()
    out = [
        {"id": ident, "call": call_json(call, body), "times": times, "supports": check}
        for ident, call, times, check in entries
    ]
    return frame({"type": "run", "entries": out}, body.bytes())
