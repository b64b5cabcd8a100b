"""Flushing an object sequence: encode buffered points, place their payloads, merge chunks.

``prepare_object_points`` runs on the flusher thread for an object sequence with buffered
points; encoding (PNG, WAV, ...) happens here, never in ``track``. A point whose encoding
fails is dropped with one warning and never holds back the others. A storage failure (a blob
file that cannot be written) fails the whole flush, so every point stays buffered and is
retried. Payload blocks are new keys of the flush's transaction; blob files are written and
synced (data and names) before it commits (a failed commit leaves at most an unreferenced,
content-addressed file that ``BlobStore.rebuild`` removes).
"""

from __future__ import annotations

import os
import uuid
import warnings
from collections.abc import Callable
from typing import Any

from .blobs import BlobStore
from .object_chunks import (
    PayloadBlocks,
    build_stored_points,
    concat_object_columns,
    decode_object_chunk,
    encode_in_parallel,
    encode_object_chunk,
    object_summary,
)
from .run_file import chunk_key
from .sequence_state import ChunkLayout, SequenceState

OBJECT_CHUNK_POINTS = 4096  # points per object chunk: metadata only, so chunks stay small
PARALLEL_AT = 64  # a flush of this many points encodes them on several threads
ENCODERS = min(4, os.cpu_count() or 1)
PAYLOAD_PREFIX = "payload/"

Prepared = tuple[ChunkLayout, dict[str, Any], list[tuple[str, Any]]]


def payload_key(seq_id: str, token: str, index: int) -> str:
    """The key of one payload block written by one flush."""
    return f"{PAYLOAD_PREFIX}{seq_id}/{token}.{index}"


def prepare_object_points(seq: SequenceState, points: list, get: Callable[[str], Any],
                          blobs: BlobStore, run_hash: str) -> Prepared:
    """``(layout, summary, puts)`` that write ``points`` of object sequence ``seq``.

    ``get(key)`` reads a stored value of the run file (the sequence's older chunks).
    """
    if len(points) >= PARALLEL_AT:
        encode_in_parallel([p[1] for p in points], ENCODERS)
    token = uuid.uuid4().hex[:12]
    blocks = PayloadBlocks(lambda i: payload_key(seq.seq_id, token, i),
                           lambda data: blobs.put(run_hash, data))
    new = build_stored_points(points, blocks, lambda point, exc: _warn_dropped(seq, point, exc))
    read = chunk_reader(seq.seq_id, get)
    layout = ChunkLayout(seq, OBJECT_CHUNK_POINTS)
    layout.append(new, read)
    summary = merged_object_summary(seq.summary, new)
    if summary is None:  # a re-tracked or earlier step: recount from every stored point
        summary = object_summary(concat_object_columns(
            [layout.columns(i, read) for i in layout.ids]))
    puts: list[tuple[str, Any]] = list(blocks.finish().items())
    blobs.sync_names()  # before the transaction that refers to them
    puts += [(chunk_key(seq.seq_id, i), encode_object_chunk(c)) for i, c in layout.written.items()]
    return layout, summary, puts


def chunk_reader(seq_id: str, get: Callable[[str], Any]) -> Callable[[int], Any]:
    """A function reading one stored object chunk of a sequence."""
    def read(chunk_id: int) -> Any:
        blob = get(chunk_key(seq_id, chunk_id))
        if not isinstance(blob, bytes):
            raise ValueError(f"object chunk {chunk_id} of sequence {seq_id} is missing")
        return decode_object_chunk(blob)
    return read


def merged_object_summary(summary: dict[str, Any], new: Any) -> dict[str, Any] | None:
    """``summary`` extended by new points, or None when a new step is not above the last
    (re-tracked or earlier steps: the caller recounts from every stored point)."""
    added = object_summary(new)
    if not added["count"]:
        return summary
    last = summary.get("last_step")
    if last is None or not summary.get("count"):
        return added
    if added["first_step"] <= last:
        return None
    return {"count": summary["count"] + added["count"], "first_step": summary["first_step"],
            "last_step": added["last_step"]}


def _warn_dropped(seq: SequenceState, point: Any, exc: BaseException) -> None:
    # The same text for every point of a sequence: Python shows it once.
    warnings.warn(f"aim-core could not encode a {seq.kind} of sequence {seq.name!r} "
                  f"{seq.context!r} ({type(exc).__name__}: {exc}); that point is dropped, the "
                  "others are written.", RuntimeWarning, stacklevel=2)
