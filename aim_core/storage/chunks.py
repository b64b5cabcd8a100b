"""Point chunks: the steps, values, epochs and timestamps of one stretch of a sequence.

A chunk is ``b"AC2" | crc32 (u4) | count (u4)`` and then the four columns, steps (int64),
values, epochs (NaN where none) and timestamps (float64 unix seconds), each encoded for what
it holds (see ``column_codec.py``: steps that go up by one cost 17 bytes, epochs are runs,
timestamps small deltas, values raw or byte-shuffled and compressed). The CRC-32 covers
everything after it, so a damaged chunk raises ``ValueError`` instead of returning wrong points.

Chunks written before (``b"AC1" | flags (u1) | count (u4)`` then the four raw little-endian
arrays, zlib-compressed as one block with flag ``1``) still decode. Never pickle.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable

import numpy as np

from .column_codec import Reader, decode_column, encode_column
from .points import concat_columns as concat_columns  # one implementation, imported from here too

MAGIC = b"AC2"
LEGACY_MAGIC = b"AC1"
LEGACY_ZLIB = 1
MAX_POINTS = 1 << 20  # a chunk claiming more is damaged (the writer seals chunks far sooner)
_HEADER = struct.Struct("<3sII")
_LEGACY_HEADER = struct.Struct("<3sBI")
STEP_DTYPE = np.dtype("<i8")
FLOAT_DTYPE = np.dtype("<f8")
POINT_BYTES = STEP_DTYPE.itemsize + 3 * FLOAT_DTYPE.itemsize

Columns = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def empty_columns() -> Columns:
    """Return four empty arrays: steps, values, epochs, timestamps."""
    return (np.empty(0, STEP_DTYPE), np.empty(0, FLOAT_DTYPE),
            np.empty(0, FLOAT_DTYPE), np.empty(0, FLOAT_DTYPE))


def encode_chunk(columns: Columns) -> bytes:
    """Serialize four equally long columns into one chunk."""
    steps, values, epochs, times = columns
    count = len(steps)
    if not len(values) == len(epochs) == len(times) == count:
        raise ValueError("chunk columns must have the same length")
    if count > MAX_POINTS:
        raise ValueError(f"a chunk holds at most {MAX_POINTS} points; split the columns")
    pieces = [struct.pack("<I", count), *encode_column(np.ascontiguousarray(steps, STEP_DTYPE))]
    for col in (values, epochs, times):
        pieces += encode_column(np.ascontiguousarray(col, FLOAT_DTYPE).view(STEP_DTYPE))
    crc = 0
    for piece in pieces:
        crc = zlib.crc32(piece, crc)
    return b"".join([MAGIC, struct.pack("<I", crc), *pieces])


def decode_chunk(blob: object) -> Columns:
    """Parse a chunk back into four arrays; ValueError when it is missing or damaged."""
    return decode_chunks([blob])


def decode_chunks(blobs: Iterable[object]) -> Columns:
    """Parse chunks in order straight into one set of columns (no copy per chunk)."""
    opened = [_open_chunk(blob) for blob in blobs]
    total = sum(count for count, _ in opened)
    out = (np.empty(total, STEP_DTYPE), np.empty(total, FLOAT_DTYPE),
           np.empty(total, FLOAT_DTYPE), np.empty(total, FLOAT_DTYPE))
    start = 0
    for count, body in opened:
        parts = [col[start:start + count] for col in out]
        if isinstance(body, Reader):
            _decode_columns(body, parts)
        else:
            _copy_legacy(body, count, parts)
        start += count
    return out


def _open_chunk(blob: object) -> tuple[int, Reader | memoryview]:
    """Check a chunk's header and checksum; return its point count and body."""
    if not isinstance(blob, (bytes, bytearray, memoryview)):
        raise ValueError("chunk is missing or not binary")
    view = memoryview(blob)
    if bytes(view[:3]) == LEGACY_MAGIC:
        return _open_legacy(view)
    if len(view) < _HEADER.size:
        raise ValueError("chunk shorter than its header")
    magic, crc, count = _HEADER.unpack_from(view)
    if magic != MAGIC:
        raise ValueError("chunk has an unknown format")
    if zlib.crc32(view[7:]) != crc:
        raise ValueError("chunk failed its checksum")
    if count > MAX_POINTS:
        raise ValueError("chunk claims more points than a chunk may hold")
    return count, Reader(view, _HEADER.size)


def _decode_columns(reader: Reader, parts: list[np.ndarray]) -> None:
    for col in parts:
        decode_column(reader, col.view(STEP_DTYPE))
    if reader.pos != len(reader.buf):
        raise ValueError("chunk has bytes after its last column")


def _open_legacy(view: memoryview) -> tuple[int, memoryview]:
    if len(view) < _LEGACY_HEADER.size:
        raise ValueError("chunk shorter than its header")
    _, flags, count = _LEGACY_HEADER.unpack_from(view)
    body = view[_LEGACY_HEADER.size:]
    size = count * POINT_BYTES
    if flags & LEGACY_ZLIB:
        inflater = zlib.decompressobj()
        try:
            body = memoryview(inflater.decompress(body, size + 1))
        except zlib.error as exc:
            raise ValueError(f"chunk has a damaged compressed body ({exc})") from exc
        if not inflater.eof:
            raise ValueError("chunk has a truncated compressed body")
    if len(body) != size:
        raise ValueError("chunk length does not match its point count")
    return count, body


def _copy_legacy(body: memoryview, count: int, parts: list[np.ndarray]) -> None:
    for k, col in enumerate(parts):
        col[:] = np.frombuffer(body, col.dtype, count, k * count * 8)
