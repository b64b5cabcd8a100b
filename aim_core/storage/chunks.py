"""Point chunks: the steps, values, epochs and timestamps of one stretch of a sequence.

A chunk is ``MAGIC | flags (u1) | count (u4, little-endian)`` followed by four little-endian
arrays of ``count`` items: steps (int64), values, epochs, timestamps (float64). With flag
``ZLIB`` the arrays are zlib-compressed as one block. Never pickle.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

MAGIC = b"AC1"
ZLIB = 1
_HEADER = struct.Struct("<3sBI")
STEP_DTYPE = np.dtype("<i8")
FLOAT_DTYPE = np.dtype("<f8")
POINT_BYTES = STEP_DTYPE.itemsize + 3 * FLOAT_DTYPE.itemsize

Columns = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def empty_columns() -> Columns:
    """Return four empty arrays: steps, values, epochs, timestamps."""
    return (np.empty(0, STEP_DTYPE), np.empty(0, FLOAT_DTYPE),
            np.empty(0, FLOAT_DTYPE), np.empty(0, FLOAT_DTYPE))


def encode_chunk(columns: Columns, compress: bool = False) -> bytes:
    """Serialize four equally long columns into one chunk."""
    steps, values, epochs, times = columns
    body = b"".join((
        np.ascontiguousarray(steps, STEP_DTYPE).tobytes(),
        np.ascontiguousarray(values, FLOAT_DTYPE).tobytes(),
        np.ascontiguousarray(epochs, FLOAT_DTYPE).tobytes(),
        np.ascontiguousarray(times, FLOAT_DTYPE).tobytes(),
    ))
    flags = 0
    if compress:
        body, flags = zlib.compress(body, 1), ZLIB
    return _HEADER.pack(MAGIC, flags, len(steps)) + body


def decode_chunk(blob: bytes) -> Columns:
    """Parse a chunk back into four arrays; ValueError when it is damaged."""
    if len(blob) < _HEADER.size:
        raise ValueError("chunk shorter than its header")
    magic, flags, count = _HEADER.unpack_from(blob)
    if magic != MAGIC:
        raise ValueError("chunk has an unknown format")
    body = memoryview(blob)[_HEADER.size:]
    if flags & ZLIB:
        body = memoryview(zlib.decompress(body))
    if len(body) != count * POINT_BYTES:
        raise ValueError("chunk length does not match its point count")
    n8 = count * 8
    return (
        np.frombuffer(body, STEP_DTYPE, count, 0),
        np.frombuffer(body, FLOAT_DTYPE, count, n8),
        np.frombuffer(body, FLOAT_DTYPE, count, 2 * n8),
        np.frombuffer(body, FLOAT_DTYPE, count, 3 * n8),
    )


def concat_columns(parts: list[Columns]) -> Columns:
    """Join chunks' columns in order."""
    if not parts:
        return empty_columns()
    if len(parts) == 1:
        return parts[0]
    return tuple(np.concatenate([p[i] for p in parts]) for i in range(4))  # type: ignore[return-value]


def sort_by_step(columns: Columns) -> Columns:
    """Order points by step, keeping tracking order among equal steps."""
    steps = columns[0]
    if len(steps) < 2 or bool(np.all(steps[1:] >= steps[:-1])):
        return columns
    order = np.argsort(steps, kind="stable")
    return tuple(col[order] for col in columns)  # type: ignore[return-value]
