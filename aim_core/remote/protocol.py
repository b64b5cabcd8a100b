"""The wire format: batches of ordered operations with their points as binary columns.

A batch body is ``zlib(MAGIC | u32 header length | header JSON | columns)``. The header::

    {"v": 1, "run": hash, "session": id, "seq": n, "ops": [op, ...]}

with ``(session, seq)`` the batch's idempotency key (``seq`` counts 1, 2, ... per session) and
ops applied in order: ``{"op": "create", "props", "heartbeat"}``, ``{"op": "resume",
"heartbeat"}``, ``{"op": "points", "sequences": [{"name", "context", "kind", "n"}, ...]}``
(an object sequence adds ``"objects": [[is_list, [[meta, byte count], ...]], ...]``, one
entry per point, its payloads following its columns),
``{"op": "meta", "params", "props"}`` (params replaced, editable props merged) and
``{"op": "close", "status"}``. The columns of each points op follow the header in order:
per sequence ``n`` little-endian int64 steps, then float64 values, epochs and timestamps.
Decoding checks everything before anything is applied; any defect raises ``BatchError``.
"""

from __future__ import annotations

import json
import math
import re
import struct
import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..context import canonical_context
from ..params import to_json
from ..storage.chunks import FLOAT_DTYPE, POINT_BYTES, STEP_DTYPE, Columns
from ..storage.points import pending_columns

VERSION = 1
BATCH_MAGIC = b"ACB1"
SERIES_MAGIC = b"ACS1"
BATCH_TYPE = "application/x-aim-core-batch"
SERIES_TYPE = "application/x-aim-core-series"
MAX_HEADER = 16 << 20
EDITABLE_PROPS = {"name": str, "description": str, "experiment": str, "tags": list,
                  "archived": bool}
METRIC = "metric"
OBJECT_KINDS = ("text", "image", "distribution", "audio", "figure", "log_record")
KINDS = (METRIC, *OBJECT_KINDS)
Element = tuple[dict[str, Any], bytes]
ObjectPoint = tuple[bool, list[Element]]  # (is_list, [(meta, payload), ...]) of one step
STATUSES = ("finished", "failed")
_PREFIX = struct.Struct("<4sI")
_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class BatchError(ValueError):
    """A batch or series body is malformed; the message says what is wrong."""


@dataclass
class Sequence:
    """One sequence's points inside a points op."""

    name: str
    context: dict[str, Any]
    kind: str
    columns: Columns  # for object kinds the values column is NaN
    objects: list[ObjectPoint] | None = None  # one per point, for object kinds


@dataclass
class Op:
    """One operation of a batch (``kind`` is create, resume, points, meta or close)."""

    kind: str
    args: dict[str, Any] = field(default_factory=dict)
    sequences: list[Sequence] = field(default_factory=list)


@dataclass
class Batch:
    """A decoded batch: the run, its idempotency key and its operations in order."""

    run: str
    session: str
    seq: int
    ops: list[Op]
    heartbeat: float | None = None

    @property
    def points(self) -> int:
        """How many points the batch carries."""
        return sum(len(s.columns[0]) for op in self.ops for s in op.sequences)


# -- encoding --------------------------------------------------------------------------------
def encode_batch(run: str, session: str, seq: int, ops: list[Op], heartbeat: float,
                 level: int = 1) -> bytes:
    """The compressed body of one batch (``heartbeat``: the client's interval, seconds)."""
    header_ops, blobs = [], []
    for op in ops:
        entry = {"op": op.kind, **op.args}
        if op.kind == "points":
            entry["sequences"] = [_sequence_entry(s) for s in op.sequences]
            for s in op.sequences:
                blobs.append(_column_bytes(s.columns))
                blobs.extend(data for _, elements in s.objects or () for _, data in elements)
        header_ops.append(entry)
    header = json.dumps({"v": VERSION, "run": run, "session": session, "seq": seq,
                         "heartbeat": heartbeat, "ops": header_ops}, separators=(",", ":")).encode()
    return zlib.compress(b"".join([_PREFIX.pack(BATCH_MAGIC, len(header)), header, *blobs]),
                         level)


def _sequence_entry(seq: Sequence) -> dict[str, Any]:
    entry = {"name": seq.name, "context": seq.context, "kind": seq.kind,
             "n": len(seq.columns[0])}
    if seq.objects is not None:
        entry["objects"] = [[is_list, [[meta, len(data)] for meta, data in elements]]
                            for is_list, elements in seq.objects]
    return entry


def columns_of(points: list[tuple[Any, ...]]) -> Columns:
    """Turn ``(step, value, epoch, timestamp)`` tuples into four arrays (device values
    tracked from an accelerator are converted in one batch, as for a local run)."""
    return pending_columns(points)


def encode_series(columns: Columns) -> bytes:
    """The compressed body answering a series read."""
    return zlib.compress(_PREFIX.pack(SERIES_MAGIC, len(columns[0])) + _column_bytes(columns), 1)


def _column_bytes(columns: Columns) -> bytes:
    steps, values, epochs, times = columns
    return b"".join((np.ascontiguousarray(steps, STEP_DTYPE).tobytes(),
                     np.ascontiguousarray(values, FLOAT_DTYPE).tobytes(),
                     np.ascontiguousarray(epochs, FLOAT_DTYPE).tobytes(),
                     np.ascontiguousarray(times, FLOAT_DTYPE).tobytes()))


# -- decoding --------------------------------------------------------------------------------
def decompress(body: bytes, max_bytes: int) -> bytes:
    """Inflate a body, refusing one that is not zlib or inflates beyond ``max_bytes``."""
    inflater = zlib.decompressobj()
    try:
        raw = inflater.decompress(body, max_bytes)
    except zlib.error as exc:
        raise BatchError(f"body is not zlib-compressed ({exc})") from None
    if inflater.unconsumed_tail:
        raise BatchError(f"body inflates beyond the server's limit of {max_bytes} bytes")
    if not inflater.eof:
        raise BatchError("body is truncated (incomplete zlib stream)")
    return raw


def decode_batch(body: bytes, max_bytes: int) -> Batch:
    """Parse and check a batch body completely; ``BatchError`` on any defect."""
    raw = decompress(body, max_bytes)
    header, offset = _header(raw, BATCH_MAGIC)
    if header.get("v") != VERSION:
        raise BatchError(f"unsupported batch version {header.get('v')!r}; expected {VERSION}")
    run, session, seq = header.get("run"), header.get("session"), header.get("seq")
    if not isinstance(run, str) or not _ID.match(run):
        raise BatchError(f"bad run hash {run!r}")
    if not isinstance(session, str) or not _ID.match(session):
        raise BatchError(f"bad session id {session!r}")
    if type(seq) is not int or seq < 1:
        raise BatchError(f"bad batch number {seq!r}; batches count from 1")
    raw_ops = header.get("ops")
    if not isinstance(raw_ops, list):
        raise BatchError("'ops' must be a list")
    ops = []
    for index, entry in enumerate(raw_ops):
        if ops and ops[-1].kind == "close":
            raise BatchError("close must be the last op of a batch")
        op, offset = _op(entry, raw, offset, index)
        ops.append(op)
    if offset != len(raw):
        raise BatchError(f"{len(raw) - offset} bytes follow the last point column")
    heartbeat = _heartbeat(header, -1) if header.get("heartbeat") is not None else None
    return Batch(run, session, seq, ops, heartbeat)


def decode_series(body: bytes, max_bytes: int = 1 << 34) -> Columns:
    """Parse a series body back into columns."""
    raw = decompress(body, max_bytes)
    if len(raw) < _PREFIX.size:
        raise BatchError("series body shorter than its header")
    magic, n = _PREFIX.unpack_from(raw)
    if magic != SERIES_MAGIC or len(raw) != _PREFIX.size + n * POINT_BYTES:
        raise BatchError("series body has a bad header or length")
    return _columns(raw, _PREFIX.size, n)


def _header(raw: bytes, magic: bytes) -> tuple[dict[str, Any], int]:
    if len(raw) < _PREFIX.size:
        raise BatchError("body shorter than its header")
    found, size = _PREFIX.unpack_from(raw)
    if found != magic:
        raise BatchError("body does not start with the aim-core batch marker")
    end = _PREFIX.size + size
    if size > MAX_HEADER or end > len(raw):
        raise BatchError("header length is out of range")
    try:
        header = json.loads(raw[_PREFIX.size:end])
    except (UnicodeDecodeError, ValueError) as exc:
        raise BatchError(f"header is not JSON ({exc})") from None
    except RecursionError:
        raise BatchError("header is nested too deeply") from None
    if not isinstance(header, dict):
        raise BatchError("header must be a JSON object")
    return header, end


def _op(entry: Any, raw: bytes, offset: int, index: int) -> tuple[Op, int]:
    if not isinstance(entry, dict) or not isinstance(entry.get("op"), str):
        raise BatchError(f"op {index} must be an object with an 'op' name")
    kind = entry["op"]
    if kind == "points":
        sequences = entry.get("sequences")
        if not isinstance(sequences, list):
            raise BatchError(f"op {index}: 'sequences' must be a list")
        op = Op(kind)
        for seq in sequences:
            parsed, offset = _sequence(seq, raw, offset, index)
            op.sequences.append(parsed)
        return op, offset
    checks = {"create": _create_args, "resume": _resume_args, "meta": _meta_args,
              "close": _close_args}
    if kind not in checks:
        raise BatchError(f"op {index}: unknown op {kind!r}")
    return Op(kind, checks[kind](entry, index)), offset


def _sequence(entry: Any, raw: bytes, offset: int, index: int) -> tuple[Sequence, int]:
    if not isinstance(entry, dict):
        raise BatchError(f"op {index}: each sequence must be an object")
    name, kind, n = entry.get("name"), entry.get("kind", "metric"), entry.get("n")
    if not isinstance(name, str) or not name:
        raise BatchError(f"op {index}: sequence name must be a non-empty string, got {name!r}")
    if kind not in KINDS:
        raise BatchError(f"op {index}: sequence {name!r} has unsupported kind {kind!r}")
    if type(n) is not int or n < 0:
        raise BatchError(f"op {index}: sequence {name!r} has a bad point count {n!r}")
    context = _context(entry.get("context"), name, index)
    end = offset + n * POINT_BYTES
    if end > len(raw):
        raise BatchError(f"op {index}: sequence {name!r} claims {n} points; the body ends "
                         "before them")
    seq = Sequence(name, context, kind, _columns(raw, offset, n))
    if kind != METRIC:
        seq.objects, end = _objects(entry.get("objects"), n, raw, end, f"op {index}: {name!r}")
    return seq, end


def _objects(table: Any, n: int, raw: bytes, offset: int, where: str
             ) -> tuple[list[ObjectPoint], int]:
    """The elements of an object sequence's points: metadata from the header, payloads
    from the body after the columns."""
    if not isinstance(table, list) or len(table) != n:
        raise BatchError(f"{where}: 'objects' must list the elements of each of its {n} points")
    points = []
    for point in table:
        if not (isinstance(point, list) and len(point) == 2 and isinstance(point[0], bool)
                and isinstance(point[1], list)):
            raise BatchError(f"{where}: each point's objects must be [is_list, [elements]]")
        elements = []
        for element in point[1]:
            if not (isinstance(element, list) and len(element) == 2 and isinstance(
                    element[0], dict) and type(element[1]) is int and element[1] >= 0):
                raise BatchError(f"{where}: each element must be [metadata, byte count]")
            end = offset + element[1]
            if end > len(raw):
                raise BatchError(f"{where}: an element's bytes run past the end of the body")
            elements.append((element[0], raw[offset:end]))
            offset = end
        points.append((point[0], elements))
    return points, offset


def _context(context: Any, name: str, index: int) -> dict[str, Any]:
    try:
        context = canonical_context(context)
    except TypeError as exc:
        raise BatchError(f"op {index}: sequence {name!r}: {exc}") from None
    for key, value in context.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise BatchError(f"op {index}: sequence {name!r}: context value {key!r} is "
                             "not finite")
    return context


def _columns(raw: bytes, offset: int, n: int) -> Columns:
    view = memoryview(raw)
    n8 = n * 8
    return (np.frombuffer(view, STEP_DTYPE, n, offset),
            np.frombuffer(view, FLOAT_DTYPE, n, offset + n8),
            np.frombuffer(view, FLOAT_DTYPE, n, offset + 2 * n8),
            np.frombuffer(view, FLOAT_DTYPE, n, offset + 3 * n8))


def _heartbeat(entry: dict[str, Any], index: int) -> float:
    value = entry.get("heartbeat")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
            0 < value <= 3600):
        raise BatchError(f"op {index}: 'heartbeat' must be seconds in (0, 3600], got {value!r}")
    return float(value)


def _create_args(entry: dict[str, Any], index: int) -> dict[str, Any]:
    props = entry.get("props")
    if not isinstance(props, dict):
        raise BatchError(f"op {index}: create needs a 'props' object")
    created = props.get("creation_time")
    if isinstance(created, bool) or not isinstance(created, (int, float)) or not math.isfinite(
            created):
        raise BatchError(f"op {index}: create needs a numeric 'creation_time'")
    _check_props(props, index)
    return {"props": props, "heartbeat": _heartbeat(entry, index), "client": _client(entry)}


def _resume_args(entry: dict[str, Any], index: int) -> dict[str, Any]:
    return {"heartbeat": _heartbeat(entry, index), "client": _client(entry)}


def _client(entry: dict[str, Any]) -> dict[str, Any]:
    """Who sends (host and pid, for error messages); anything malformed is dropped."""
    client = entry.get("client")
    if not isinstance(client, dict):
        return {}
    host, pid = client.get("host"), client.get("pid")
    return {"host": host[:255] if isinstance(host, str) else "?",
            "pid": pid if type(pid) is int else -1}


def _meta_args(entry: dict[str, Any], index: int) -> dict[str, Any]:
    params, props = entry.get("params"), entry.get("props", {})
    if not isinstance(params, dict) or not isinstance(props, dict):
        raise BatchError(f"op {index}: meta needs 'params' and 'props' objects")
    unknown = sorted(set(props) - set(EDITABLE_PROPS))
    if unknown:
        raise BatchError(f"op {index}: props {unknown} cannot be set by a client")
    _check_props(props, index)
    try:  # the rules of a local run's params: int64 ints, at most MAX_DEPTH levels
        to_json(params)
    except (TypeError, ValueError) as exc:
        raise BatchError(f"op {index}: {exc}") from None
    return {"params": params, "props": props}


def _check_props(props: dict[str, Any], index: int) -> None:
    for key, kind in EDITABLE_PROPS.items():
        if key in props and not isinstance(props[key], kind):
            raise BatchError(f"op {index}: prop {key!r} must be a {kind.__name__}")
    tags = props.get("tags", [])
    if not all(isinstance(tag, str) for tag in tags):
        raise BatchError(f"op {index}: tags must be strings")


def _close_args(entry: dict[str, Any], index: int) -> dict[str, Any]:
    status = entry.get("status")
    if status not in STATUSES:
        raise BatchError(f"op {index}: close status must be one of {STATUSES}, got {status!r}")
    return {"status": status}
