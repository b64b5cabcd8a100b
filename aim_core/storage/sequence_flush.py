"""What one flush writes for one sequence: ``prepare_metric`` and, for objects, ``prepare_objects``.

A preparation reads what it needs from the run file (outside the flush's transaction: the
writer is the file's only writer) and returns the keys to put and delete plus the sequence's
next state; the writer commits every sequence's share in one transaction and only then
applies the new states. Nothing here changes a ``SequenceState``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .chunks import encode_chunk
from .kvfile import RawJSON
from .points import (
    Columns,
    Summary,
    concat_columns,
    latest_per_step,
    merged_summary,
    pending_columns,
    summarize,
)
from .run_file import (
    CHUNK_POINTS,
    TAIL_POINTS,
    RunFileWriter,
    chunk_key,
    encode_tail,
    seq_key,
    tail_key,
)
from .sequence_state import ChunkLayout, SequenceState


@dataclass
class Prepared:
    """One sequence's share of a flush, ready to write."""

    seq: SequenceState
    count: int  # buffered points it writes (deleted from ``pending`` after the commit)
    layout: ChunkLayout
    summary: Summary
    catalog_json: str
    puts: list[tuple[str, Any]]
    deletes: list[str]


def prepare_metric(seq: SequenceState, points: list, file: RunFileWriter, final: bool
                   ) -> Prepared:
    """New points go to the sequence's raw tail; full tails (all of it when ``final``, at
    close) become compact chunks, merged as ``ChunkLayout`` says."""
    layout = ChunkLayout(seq, CHUNK_POINTS)
    summary: Summary = seq.summary
    puts: list[tuple[str, Any]] = []
    deletes: list[str] = []
    if points or (final and seq.tail):
        read = _chunk_reader(seq, file)
        new = pending_columns(points)
        tail = concat_columns([file.read_tail(seq.seq_id), new] if seq.tail else [new])
        size = len(tail[0])
        cut = size if final else size - size % TAIL_POINTS
        if cut:
            layout.append(_slice(tail, 0, cut), read)
        layout.set_tail(_slice(tail, cut, size))
        merged = merged_summary(seq.summary, new)
        if merged is None:  # a step at or below the last one: recompute from every point
            merged = summarize(latest_per_step(concat_columns(
                [layout.columns(i, read) for i in layout.ids] + [layout.tail])))
        summary = merged
        puts = [(chunk_key(seq.seq_id, i), encode_chunk(c)) for i, c in layout.written.items()]
        if layout.tail_count:
            puts.append((tail_key(seq.seq_id), encode_tail(layout.tail)))
        elif seq.tail:
            deletes.append(tail_key(seq.seq_id))
    return _finish(seq, len(points), layout, summary, puts, deletes)


def prepare_objects(seq: SequenceState, points: list, file: RunFileWriter, final: bool
                    ) -> Prepared:
    """The points of an object sequence (text, image, distribution, audio, figure): each
    value's ``to_storage()`` is called here, on the flusher thread, never in ``track``."""
    from .blobs import BlobStore  # only runs that track objects load these
    from .object_flush import prepare_object_points

    layout, summary, puts = prepare_object_points(
        seq, points, file.kv.get, BlobStore.of_repo(file.path.parent.parent), file.run_hash)
    return _finish(seq, len(points), layout, summary, puts, [])


def _finish(seq: SequenceState, count: int, layout: ChunkLayout, summary: Summary,
            puts: list[tuple[str, Any]], deletes: list[str]) -> Prepared:
    info_json, catalog_json = seq.encoded(layout, summary)
    puts.append((seq_key(seq.seq_id), RawJSON(info_json)))
    deletes += [chunk_key(seq.seq_id, i) for i in layout.deleted]
    return Prepared(seq, count, layout, summary, catalog_json, puts, deletes)


def _chunk_reader(seq: SequenceState, file: RunFileWriter) -> Callable[[int], Columns]:
    return lambda chunk_id: file.read_chunk(seq.seq_id, chunk_id)


def _slice(columns: Columns, start: int, stop: int) -> Columns:
    return tuple(c[start:stop] for c in columns)  # type: ignore[return-value]
