"""Reading the stored points of an object sequence: a closed run's, or a live one's."""

from __future__ import annotations

import sqlite3
from typing import Any

from .failures import ChunkDamagedError, read_error
from .object_chunks import ObjectColumns, concat_object_columns, decode_object_chunk
from .run_file import LEGACY_SEQUENCES, chunk_key, seq_key


def read_object_columns(run_file: Any, seq_id: str) -> ObjectColumns:
    """Every stored point of one object sequence of a ``RunFile``, in tracking order."""
    kv = run_file.kv
    try:
        with kv.snapshot():
            info = kv.get(seq_key(seq_id))
            if info is None:
                info = (kv.get(LEGACY_SEQUENCES) or {}).get(seq_id)
            blobs = [kv.get(chunk_key(seq_id, i)) for i in (info or {}).get("chunks", [])]
        return decode_all(seq_id, blobs)
    except (sqlite3.Error, OSError, ValueError, KeyError, TypeError) as exc:
        raise read_error(run_file.run_hash, run_file.path, exc) from exc


def live_object_columns(writer: Any, seq: Any) -> tuple[ObjectColumns, list]:
    """A live sequence's stored points and a copy of its buffered ones, taken together."""
    with writer._flush_lock:  # the chunk list only changes inside a flush
        blobs = [writer.file.kv.get(chunk_key(seq.seq_id, i)) for i in seq.chunk_ids]
        pending = list(seq.pending)
    return decode_all(seq.seq_id, blobs), pending


def decode_all(seq_id: str, blobs: list[Any]) -> ObjectColumns:
    """Decode chunks in order; ChunkDamagedError for a missing or damaged one."""
    parts = []
    for index, blob in enumerate(blobs):
        if not isinstance(blob, bytes):
            raise ChunkDamagedError(f"object chunk {index} of sequence {seq_id} is missing")
        try:
            parts.append(decode_object_chunk(blob))
        except ValueError as exc:
            raise ChunkDamagedError(f"object chunk {index} of sequence {seq_id}: {exc}") from exc
    return concat_object_columns(parts)
