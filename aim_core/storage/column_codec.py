"""Column encodings of point chunks: each column is stored as what it holds.

A column is a run of int64 words (the steps, or the bit patterns of float64 values, so every
round trip is exact, NaN payloads and -0.0 included), stored as one of:

- ``RAW``: the words as they are (noisy values);
- ``ARITH``: ``start`` and ``stride``, word i being ``start + i * stride`` in wrapping int64
  arithmetic (steps that go up by one, a constant value, an all-NaN epoch column);
- ``DELTA``: the first word, then the wrapping differences in the narrowest of int8/16/32/64
  that holds them all (uneven steps; timestamps, whose float64 bits grow by small integers);
- ``RUNS``: each distinct consecutive word once, with how often it repeats (epochs).

Wire format (little-endian)::

    column = kind u1 | RAW: block | ARITH: start i8, stride i8 | DELTA: first i8, block
             | RUNS: runs u4, block (words), block (run lengths)
    block  = width u1 | shuffled u1 | part, or one part per byte plane when shuffled
    part   = codec u1 | length u4 | bytes: 0 the bytes as they are, 1 zlib-compressed,
             2 one byte that repeats ``length`` times

A shuffled block stores byte k of every item together, so the nearly constant high bytes of
floats and small deltas compress well; a part is zlib-compressed only where that saves at
least half, so bytes that barely compress cost nothing to read back; a plane of one repeated
byte (the zero low bytes of float32 values) is stored as that byte. Every length is checked:
damaged input raises ``ValueError``.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

RAW, ARITH, DELTA, RUNS = 0, 1, 2, 3
STORED, ZLIB, REPEAT = 0, 1, 2
ZLIB_LEVEL = 1
# Inflating costs far more than copying, so a part is compressed only when that halves it.
MAX_RATIO = 1 / 2
MIN_COMPRESS_BYTES = 64
SAMPLE_BYTES = 4096  # a plane whose sample does not compress is not tried as a whole
SAMPLE_WINDOWS = 8

_KIND = struct.Struct("<B")
_ARITH = struct.Struct("<qq")
_FIRST = struct.Struct("<q")
_RUNS = struct.Struct("<I")
_BLOCK = struct.Struct("<BB")
_PART = struct.Struct("<BI")
_WIDTHS = (1, 2, 4, 8)
_LIMITS = [(np.iinfo(f"i{w}").min, np.iinfo(f"i{w}").max, w) for w in _WIDTHS]


class Reader:
    """A cursor over a chunk's bytes that refuses to read past the end."""

    __slots__ = ("buf", "pos")

    def __init__(self, buf: memoryview, pos: int = 0) -> None:
        self.buf, self.pos = buf, pos

    def take(self, size: int) -> memoryview:
        """Return the next ``size`` bytes."""
        end = self.pos + size
        if size < 0 or end > len(self.buf):
            raise ValueError("chunk is truncated")
        view = self.buf[self.pos:end]
        self.pos = end
        return view

    def unpack(self, layout: struct.Struct) -> tuple:
        """Read one fixed-size record."""
        return layout.unpack(self.take(layout.size))


Pieces = list[bytes | np.ndarray]  # an encoding's pieces, joined once into the chunk


def encode_column(words: np.ndarray) -> Pieces:
    """Encode an int64 column with the encoding that stores it in the fewest bytes."""
    n = len(words)
    if n < 2:
        return [_KIND.pack(RAW), *encode_block(words)]
    deltas = np.diff(words)  # wrapping int64 differences
    first = int(words[0])
    if bool((deltas == deltas[0]).all()):
        return [_KIND.pack(ARITH), _ARITH.pack(first, int(deltas[0]))]
    width = int_width(deltas)
    runs = 1 + int(np.count_nonzero(deltas))
    raw_cost = 8 * n
    delta_cost = width * (n - 1) if width < 8 else raw_cost
    runs_cost = runs * (8 + int_width_of(0, n))
    if runs_cost < min(raw_cost, delta_cost):
        starts = np.concatenate(([0], np.flatnonzero(deltas) + 1))
        lengths = np.diff(np.append(starts, n))
        return [_KIND.pack(RUNS), _RUNS.pack(runs), *encode_block(words[starts]),
                *encode_block(narrow(lengths))]
    if delta_cost < raw_cost:
        return [_KIND.pack(DELTA), _FIRST.pack(first), *encode_block(narrow(deltas, width))]
    return [_KIND.pack(RAW), *encode_block(words)]


def decode_column(reader: Reader, out: np.ndarray) -> None:
    """Read one column into ``out``, an int64 array of the chunk's point count."""
    n = len(out)
    (kind,) = reader.unpack(_KIND)
    if kind == RAW:
        decode_block(reader, n, 8, out)
    elif kind == ARITH:
        start, stride = reader.unpack(_ARITH)
        out.fill(stride if stride else start)
        if stride and n:
            out[0] = start
            np.cumsum(out, out=out)  # wrapping int64 sums: start + i * stride exactly
    elif kind == DELTA:
        (first,) = reader.unpack(_FIRST)
        if n == 0:
            raise ValueError("chunk has a delta column with no points")
        out[0] = first
        decode_block(reader, n - 1, None, out[1:])
        np.cumsum(out, out=out)  # wraps exactly as the encoder's differences did
    elif kind == RUNS:
        _decode_runs(reader, out)
    else:
        raise ValueError(f"chunk has an unknown column encoding {kind}")


def _decode_runs(reader: Reader, out: np.ndarray) -> None:
    n = len(out)
    (runs,) = reader.unpack(_RUNS)
    if runs > n or (runs == 0) != (n == 0):
        raise ValueError("chunk has more runs than points")
    words = decode_block(reader, runs, 8)
    lengths = decode_block(reader, runs)
    if runs and (int(lengths.min()) < 1 or int(lengths.max()) > n
                 or int(lengths.astype(np.uint64).sum()) != n):
        raise ValueError("chunk run lengths do not add up to its point count")
    out[:] = np.repeat(words, lengths)


def encode_block(items: np.ndarray) -> Pieces:
    """Store integer items plainly, or byte-shuffled when some byte plane compresses."""
    width = items.dtype.itemsize
    data = np.ascontiguousarray(items, f"<i{width}")
    if width > 1 and len(data) * width >= MIN_COMPRESS_BYTES:
        grid = data.view(np.uint8).reshape(-1, width)
        parts = [encode_part(np.ascontiguousarray(grid[:, k])) for k in range(width)]
        if any(part[0][0] != STORED for part in parts):
            return [_BLOCK.pack(width, 1), *(piece for part in parts for piece in part)]
    return [_BLOCK.pack(width, 0), *encode_part(data.view(np.uint8))]


def decode_block(reader: Reader, count: int, width: int | None = None,
                 out: np.ndarray | None = None) -> np.ndarray:
    """Read ``count`` little-endian signed items; into ``out`` (int64) when it is given."""
    stored_width, shuffled = reader.unpack(_BLOCK)
    if stored_width not in _WIDTHS or (width is not None and stored_width != width):
        raise ValueError(f"chunk has a block of unexpected width {stored_width}")
    dtype = np.dtype(f"<i{stored_width}")
    if not shuffled:
        items = np.frombuffer(decode_part(reader, count * stored_width), dtype)
    elif shuffled == 1:
        direct = out is not None and stored_width == 8
        grid = (out.view(np.uint8).reshape(count, 8) if direct
                else np.empty((count, stored_width), np.uint8))
        for k in range(stored_width):
            grid[:, k] = np.frombuffer(decode_part(reader, count), np.uint8)
        if direct:
            return out
        items = grid.reshape(-1).view(dtype)
    else:
        raise ValueError("chunk has an unknown block layout")
    if out is None:
        return items
    out[:] = items
    return out


def encode_part(data: np.ndarray) -> Pieces:
    """Store bytes as one repeated byte, as they are, or zlib-compressed where that pays."""
    size = len(data)
    if size and data[0] == data[-1] and data.min() == data.max():
        return [_PART.pack(REPEAT, size), data[:1].tobytes()]
    if size >= MIN_COMPRESS_BYTES and _may_compress(data):
        packed = zlib.compress(data, ZLIB_LEVEL)
        if len(packed) <= size * MAX_RATIO:
            return [_PART.pack(ZLIB, len(packed)), packed]
    return [_PART.pack(STORED, size), data]


def decode_part(reader: Reader, size: int) -> memoryview | bytes:
    """Read a part that must hold exactly ``size`` bytes once inflated."""
    codec, stored = reader.unpack(_PART)
    if codec == REPEAT:
        if stored != size:
            raise ValueError("chunk has a part of the wrong length")
        return reader.take(1 if size else 0).tobytes() * size
    data = reader.take(stored)
    if codec == STORED:
        if stored != size:
            raise ValueError("chunk has a part of the wrong length")
        return data
    if codec != ZLIB:
        raise ValueError(f"chunk has an unknown codec {codec}")
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(data, size + 1)  # bounded: a damaged part cannot balloon
    except zlib.error as exc:
        raise ValueError(f"chunk has a damaged compressed part ({exc})") from exc
    if len(out) != size or not inflater.eof or inflater.unused_data:
        raise ValueError("chunk has a compressed part of the wrong length")
    return out


def _may_compress(data: np.ndarray) -> bool:
    """Whether windows spread over ``data`` compress well enough to try all of it."""
    if len(data) <= 2 * SAMPLE_BYTES:
        return True
    window = SAMPLE_BYTES // SAMPLE_WINDOWS
    starts = np.linspace(0, len(data) - window, SAMPLE_WINDOWS).astype(np.int64)
    sample = np.concatenate([data[i:i + window] for i in starts])
    return len(zlib.compress(sample, ZLIB_LEVEL)) <= len(sample) * MAX_RATIO


def int_width_of(lo: int, hi: int) -> int:
    """The narrowest of 1, 2, 4, 8 bytes whose signed range holds ``lo..hi``."""
    for low, high, width in _LIMITS:
        if low <= lo and hi <= high:
            return width
    return 8


def int_width(values: np.ndarray) -> int:
    """The narrowest signed width that holds every item of a non-empty int64 array."""
    return int_width_of(int(values.min()), int(values.max()))


def narrow(values: np.ndarray, width: int | None = None) -> np.ndarray:
    """Cast a non-empty int64 array to the narrowest signed width that holds it."""
    width = int_width(values) if width is None else width
    return values.astype(f"<i{width}", copy=False)
