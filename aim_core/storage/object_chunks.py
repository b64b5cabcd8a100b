"""Object chunks: the points of one stretch of an object sequence, without their payloads.

A chunk is ``MAGIC | flags (u1) | columns length (u4) | columns | meta``:

- ``columns`` is a metric chunk (``chunks.encode_chunk``) of steps, list flags (1.0 where a
  list was tracked, else 0.0), epochs and timestamps, so the column encoding is shared;
- ``meta`` is JSON (zlib-compressed with flag ``ZLIB``):
  ``{"b": [payload key, ...], "p": [[element, ...] per point]}`` where an element is
  ``[meta]`` (no payload), ``[meta, block index, offset, length]`` (bytes inside a payload
  block of the run file) or ``[meta, sha256, length]`` (a blob file, see ``blobs.py``).

Payload blocks are separate values of the run file holding many payloads back to back (up
to ``BLOCK_BYTES``), written once and never rewritten: merging chunks rewrites only
metadata, and reading metadata never touches a payload. A payload above
``BLOB_THRESHOLD`` goes to a content-addressed blob file instead. Never pickle.
"""

from __future__ import annotations

import contextlib
import json
import struct
import threading
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from typing import Any, NamedTuple

import numpy as np

from .chunks import decode_chunk, encode_chunk

MAGIC = b"AO1"
ZLIB = 1
_HEADER = struct.Struct("<3sBI")
BLOB_THRESHOLD = 64 * 1024  # payloads above this size go to blob files
BLOCK_BYTES = 1 << 20  # a payload block is closed once it reaches this size
BLOB_PREFIX = "blob:"


class ElementRecord(NamedTuple):
    """One stored element: its metadata and where its payload lives."""

    meta: dict[str, Any]
    where: str  # a payload block key, "blob:<sha256>", or "" for no payload
    offset: int
    length: int


class StoredPoint:
    """What one tracked point holds once stored: one element, or a list of them."""

    __slots__ = ("is_list", "elements")

    def __init__(self, is_list: bool, elements: list[ElementRecord]) -> None:
        self.is_list, self.elements = is_list, elements

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, StoredPoint) and other.is_list == self.is_list
                and other.elements == self.elements)

    def __repr__(self) -> str:
        return f"StoredPoint({self.is_list}, {self.elements!r})"


# Points of an object sequence in tracking order, as the metric columns are:
# ``(steps int64, points (object array), epochs float64, timestamps float64)``. A point is a
# ``StoredPoint`` once read from storage; a live run's buffered points are the tracked values
# themselves (an element, a list of elements, an ``EncodedPoint``). The shape lets the
# writer's chunk layout and one-point-per-step code treat both kinds of sequence alike.
ObjectColumns = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def object_array(values: list[Any]) -> np.ndarray:
    """A 1-D object array of ``values`` (lists stay single items, never a second axis)."""
    out = np.empty(len(values), dtype=object)
    for i, value in enumerate(values):
        out[i] = value
    return out


def object_columns(steps: Any, points: list[Any], epochs: Any, times: Any) -> ObjectColumns:
    """Build the four columns from lists."""
    return (np.asarray(steps, np.int64).reshape(-1), object_array(points),
            np.asarray(epochs, np.float64).reshape(-1), np.asarray(times, np.float64).reshape(-1))


def empty_object_columns() -> ObjectColumns:
    """No points."""
    return object_columns([], [], [], [])


# -- encoding -------------------------------------------------------------------------------
def encode_object_chunk(columns: ObjectColumns, compress: bool = True) -> bytes:
    """Serialize stored points (``StoredPoint`` values) into one chunk."""
    steps, stored, epochs, times = columns
    blocks: dict[str, int] = {}
    points = []
    for point in stored.tolist():
        points.append([_element_json(e, blocks) for e in point.elements])
    flags = np.array([1.0 if p.is_list else 0.0 for p in stored.tolist()], np.float64)
    body = encode_chunk((steps, flags, epochs, times))
    meta = json.dumps({"b": list(blocks), "p": points}, separators=(",", ":"),
                      ensure_ascii=False, allow_nan=False).encode("utf-8")
    header_flags = 0
    if compress:
        meta, header_flags = zlib.compress(meta, 1), ZLIB
    return _HEADER.pack(MAGIC, header_flags, len(body)) + body + meta


def _element_json(element: ElementRecord, blocks: dict[str, int]) -> list:
    meta, where, offset, length = element
    if not where:
        return [meta]
    if where.startswith(BLOB_PREFIX):
        return [meta, where[len(BLOB_PREFIX):], length]
    index = blocks.setdefault(where, len(blocks))
    return [meta, index, offset, length]


# -- decoding -------------------------------------------------------------------------------
def _split(blob: bytes) -> tuple[int, memoryview, memoryview]:
    if len(blob) < _HEADER.size:
        raise ValueError("object chunk shorter than its header")
    magic, flags, body_len = _HEADER.unpack_from(blob)
    if magic != MAGIC:
        raise ValueError("object chunk has an unknown format")
    view = memoryview(blob)
    end = _HEADER.size + body_len
    if end > len(blob):
        raise ValueError("object chunk is cut short")
    return flags, view[_HEADER.size:end], view[end:]


def decode_object_steps(blob: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Only the columns of a chunk: steps, epochs, timestamps (no metadata parsed)."""
    _, body, _ = _split(blob)
    steps, _flags, epochs, times = decode_chunk(bytes(body))
    return steps, epochs, times


def decode_object_chunk(blob: bytes) -> ObjectColumns:
    """Parse a chunk: columns and element metadata; ValueError when it is damaged."""
    flags, body, meta = _split(blob)
    steps, is_list, epochs, times = decode_chunk(bytes(body))
    try:
        table = json.loads(_inflate(meta) if flags & ZLIB else bytes(meta))
        keys, rows = table["b"], table["p"]
    except (ValueError, KeyError, TypeError, zlib.error) as exc:
        raise ValueError(f"object chunk metadata is damaged ({exc})") from None
    if len(rows) != len(steps):
        raise ValueError("object chunk metadata does not match its point count")
    points = [StoredPoint(bool(flag), [_element_record(e, keys) for e in row])
              for flag, row in zip(is_list.tolist(), rows, strict=True)]
    return steps, object_array(points), epochs, times


def _inflate(data: memoryview) -> bytes:
    inflater = zlib.decompressobj()
    out = inflater.decompress(data)
    if not inflater.eof or inflater.unused_data:
        raise ValueError("object chunk metadata has a bad length")
    return out


def _element_record(item: list, keys: list[str]) -> ElementRecord:
    if len(item) == 1:
        return ElementRecord(item[0], "", 0, 0)
    if len(item) == 3:
        return ElementRecord(item[0], BLOB_PREFIX + item[1], 0, item[2])
    return ElementRecord(item[0], keys[item[1]], item[2], item[3])


def concat_object_columns(parts: list[ObjectColumns]) -> ObjectColumns:
    """Join chunks' points in order."""
    if not parts:
        return empty_object_columns()
    if len(parts) == 1:
        return parts[0]
    return tuple(np.concatenate([p[i] for p in parts]) for i in range(4))  # type: ignore[return-value]


def latest_per_step(columns: ObjectColumns) -> ObjectColumns:
    """One point per step, sorted by step: the last tracked of equal steps wins."""
    steps = columns[0]
    n = len(steps)
    if n < 2 or bool(np.all(steps[1:] > steps[:-1])):
        return columns
    order = np.argsort(steps, kind="stable")
    ordered = steps[order]
    keep = np.ones(n, bool)
    keep[:-1] = ordered[1:] != ordered[:-1]
    index = order[keep]
    return tuple(col[index] for col in columns)  # type: ignore[return-value]


def object_summary(columns: ObjectColumns) -> dict[str, Any]:
    """Count (distinct steps), first and last step of points."""
    steps = np.unique(columns[0])
    if not len(steps):
        return {"count": 0}
    return {"count": int(len(steps)), "first_step": int(steps[0]), "last_step": int(steps[-1])}


def referenced_payloads(columns: ObjectColumns) -> Iterator[str]:
    """Every payload location (block keys and ``blob:<sha>``) the points use."""
    for point in columns[1].tolist():
        for element in point.elements:
            if element.where:
                yield element.where


def blob_shas(wheres: Iterable[str]) -> set[str]:
    """The blob shas among payload locations."""
    return {w[len(BLOB_PREFIX):] for w in wheres if w.startswith(BLOB_PREFIX)}


# -- writing payloads (flusher thread) ------------------------------------------------------
class PayloadBlocks:
    """Collects one flush's payloads into blocks; large ones go to blob files.

    ``block_key(i)`` names the i-th block of this flush (unique within the run file);
    ``put_blob(data) -> sha`` stores a large payload (blob files are written at once, before
    the run file's commit that references them).
    """

    def __init__(self, block_key: Callable[[int], str],
                 put_blob: Callable[[bytes], str] | None = None,
                 blob_threshold: int = BLOB_THRESHOLD, block_bytes: int = BLOCK_BYTES) -> None:
        self._block_key, self._put_blob = block_key, put_blob
        self._threshold, self._block_bytes = blob_threshold, block_bytes
        self.blocks: dict[str, bytes] = {}
        self._parts: list[bytes] = []
        self._size = 0

    def add(self, data: bytes) -> tuple[str, int, int]:
        """Place one payload; return ``(where, offset, length)``."""
        length = len(data)
        if not length:
            return "", 0, 0
        if length > self._threshold and self._put_blob is not None:
            return BLOB_PREFIX + self._put_blob(data), 0, length
        if self._size and self._size + length > self._block_bytes:
            self._close_block()
        offset = self._size
        self._parts.append(data)
        self._size += length
        return self._block_key(len(self.blocks)), offset, length

    def _close_block(self) -> None:
        if self._parts:
            self.blocks[self._block_key(len(self.blocks))] = b"".join(self._parts)
        self._parts, self._size = [], 0

    def finish(self) -> dict[str, bytes]:
        """Close the open block and return every block: ``{key: bytes}``."""
        self._close_block()
        return self.blocks


def encode_value(value: Any) -> tuple[bool, list[tuple[dict[str, Any], bytes]]]:
    """``(is_list, [(meta, bytes), ...])`` of a buffered value: an element (its
    ``to_storage()`` gives ``(meta, bytes)``), a list of elements, or an already encoded
    point whose ``to_storage()`` gives ``(is_list, [...])``."""
    if isinstance(value, list):
        return True, [item.to_storage() for item in value]
    encoded = value.to_storage()
    if isinstance(encoded[0], bool):
        return encoded
    return False, [encoded]


def encode_in_parallel(values: list[Any], workers: int,
                       encode: Callable[[Any], Any] = encode_value) -> None:
    """Encode ``values`` on ``workers`` threads first (elements keep what they encode; zlib
    and numpy release the GIL); errors are left for the caller's own pass to report. The
    threads end before this returns."""
    if workers < 2:
        return

    def encode_all(part: list[Any]) -> None:
        for value in part:
            with contextlib.suppress(Exception):  # reported, once, by the caller's pass
                encode(value)

    threads = [threading.Thread(target=encode_all, args=(values[i::workers],),
                                name="aim-core-encoder", daemon=True) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def build_stored_points(points: list[tuple[Any, Any, float, float]], blocks: PayloadBlocks,
                        on_error: Callable[[Any, BaseException], None],
                        encode: Callable[[Any], tuple[bool, list]] = encode_value
                        ) -> ObjectColumns:
    """Encode buffered ``(step, value, epoch, time)`` points and place their payloads.

    A point whose encoding raises is left out and reported to ``on_error(point, exc)``;
    the others are kept. Storage errors (writing a blob file) propagate: the flush fails
    and every point stays buffered.
    """
    steps, epochs, times, stored = [], [], [], []
    for point in points:
        step, value, epoch, timestamp = point
        try:
            is_list, pairs = encode(value)
            for meta, _ in pairs:
                json.dumps(meta, allow_nan=False)  # fail here, not in the chunk
        except Exception as exc:  # one bad element must not stop the others
            on_error(point, exc)
            continue
        elements = [ElementRecord(meta, *blocks.add(data)) for meta, data in pairs]
        steps.append(step)
        epochs.append(epoch)
        times.append(timestamp)
        stored.append(StoredPoint(is_list, elements))
    return object_columns(steps, stored, epochs, times)


# -- reading payloads -----------------------------------------------------------------------
class PayloadReader:
    """Reads payload bytes by location, keeping the last few blocks in memory.

    ``get(key)`` returns a payload block of the run file; ``read_blob(sha, length)`` a blob.
    """

    CACHED_BLOCKS = 4

    def __init__(self, get: Callable[[str], bytes | None],
                 read_blob: Callable[[str, int], bytes] | None = None) -> None:
        self._get, self._read_blob = get, read_blob
        self._cache: OrderedDict[str, bytes] = OrderedDict()

    def read(self, where: str, offset: int, length: int) -> bytes:
        """The bytes at one location."""
        if not where:
            return b""
        if where.startswith(BLOB_PREFIX):
            if self._read_blob is None:
                raise ValueError("this reader has no blob store")
            return self._read_blob(where[len(BLOB_PREFIX):], length)
        block = self._cache.get(where)
        if block is None:
            block = self._get(where)
            if block is None:
                raise ValueError(f"payload block {where} is missing")
            self._cache[where] = block
            if len(self._cache) > self.CACHED_BLOCKS:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(where)
        if offset + length > len(block):
            raise ValueError(f"payload block {where} is shorter than its elements say")
        return bytes(block[offset:offset + length])
