"""The writer's state of one sequence: buffered points, its chunk list and its summary.

Chunks are merged like a binary counter: each flush appends a chunk of its new points, then
the two newest chunks are merged while the older is no larger than the newer. A chunk that
reaches ``CHUNK_POINTS`` is sealed and never rewritten. So a point is rewritten about
log2(CHUNK_POINTS / points per flush) times, and a sequence of n points has at most
n / CHUNK_POINTS + log2(CHUNK_POINTS) chunks: few blob reads, however often it was flushed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import deferred
from .chunks import Columns, concat_columns
from .run_file import summary_of

Summary = dict[str, Any]


class SequenceState:
    """One sequence of a run being written. ``pending`` holds ``(step, value, epoch, time)``.

    ``track`` appends to ``pending`` without a lock; the flusher copies a prefix, writes it,
    and deletes that prefix only once it is committed, so points tracked meanwhile stay.
    """

    __slots__ = ("seq_id", "name", "context", "pending", "next_step", "chunk_ids",
                 "chunk_sizes", "next_chunk_id", "summary")

    def __init__(self, seq_id: str, name: str, context: dict[str, Any]) -> None:
        self.seq_id, self.name, self.context = seq_id, name, context
        self.pending: list[tuple[Any, float, float, float]] = []
        self.next_step = 0
        self.chunk_ids: list[int] = []
        self.chunk_sizes: list[int] = []
        self.next_chunk_id = 0
        self.summary: Summary = {"count": 0}

    def restore(self, info: dict[str, Any]) -> None:
        """Take the chunk list and summary stored in the run file."""
        self.chunk_ids = list(info.get("chunks", []))
        self.chunk_sizes = list(info.get("chunk_sizes", []))
        self.next_chunk_id = max(self.chunk_ids, default=-1) + 1
        self.summary = {k: v for k, v in summary_of(info).items() if k not in ("name", "context")}
        last_step = self.summary.get("last_step")
        self.next_step = 0 if last_step is None else last_step + 1

    def info(self, layout: ChunkLayout | None = None, summary: Summary | None = None
             ) -> dict[str, Any]:
        """The JSON description stored in the run file."""
        ids, sizes = (layout.ids, layout.sizes) if layout else (self.chunk_ids, self.chunk_sizes)
        return {"name": self.name, "context": self.context, "chunks": ids,
                "chunk_sizes": sizes, **(summary if summary is not None else self.summary)}

    def catalog_info(self) -> dict[str, Any]:
        """The summary stored in the repo catalog."""
        return {"name": self.name, "context": self.context, **self.summary}


class ChunkLayout:
    """A sequence's chunk list while one flush rewrites it (applied only after commit)."""

    def __init__(self, seq: SequenceState, chunk_points: int) -> None:
        self.ids = list(seq.chunk_ids)
        self.sizes = list(seq.chunk_sizes)
        self.next_id = seq.next_chunk_id
        self.chunk_points = chunk_points
        self.written: dict[int, Columns] = {}
        self.deleted: list[int] = []

    def append(self, new: Columns, read: Callable[[int], Columns]) -> None:
        """Add new points as chunks, then merge the newest chunks as the counter says."""
        n = len(new[0])
        for start in range(0, n, self.chunk_points):
            piece = tuple(col[start:start + self.chunk_points] for col in new)
            self._add(piece)  # type: ignore[arg-type]
            self._merge(read)

    def _add(self, columns: Columns) -> None:
        self.ids.append(self.next_id)
        self.sizes.append(len(columns[0]))
        self.written[self.next_id] = columns
        self.next_id += 1

    def _merge(self, read: Callable[[int], Columns]) -> None:
        sizes, cap = self.sizes, self.chunk_points
        while len(sizes) >= 2 and sizes[-2] < cap and sizes[-1] < cap and sizes[-2] <= sizes[-1]:
            newer, older = self.ids.pop(), self.ids.pop()
            sizes.pop()
            sizes.pop()
            merged = concat_columns([self._columns(older, read), self._columns(newer, read)])
            for chunk_id in (older, newer):
                if self.written.pop(chunk_id, None) is None:
                    self.deleted.append(chunk_id)
            self._add(merged)

    def _columns(self, chunk_id: int, read: Callable[[int], Columns]) -> Columns:
        columns = self.written.get(chunk_id)
        return columns if columns is not None else read(chunk_id)


def pending_columns(points: list[tuple[Any, float, float, float]]) -> Columns:
    """Turn buffered point tuples into four arrays (held device values converted first)."""
    if deferred.ever_captured():
        points = deferred.host_points(points)
    table = np.array(points, dtype=np.float64).reshape(-1, 4)
    steps = np.array([p[0] for p in points], dtype=np.int64)
    return steps, table[:, 1].copy(), table[:, 2].copy(), table[:, 3].copy()


def merged_summary(summary: Summary, new: Columns) -> Summary:
    """Return ``summary`` updated with new points given in tracking order."""
    steps, values = new[0], new[1]
    if not len(steps):
        return summary
    out = dict(summary)
    out["count"] = summary.get("count", 0) + len(steps)
    hi = int(steps.max())
    last_idx = len(steps) - 1 - int(np.argmax(steps[::-1] == hi))
    if summary.get("last_step") is None or hi >= summary["last_step"]:
        out["last_step"], out["last"] = hi, float(values[last_idx])
    lo = int(steps.min())
    first_idx = int(np.argmax(steps == lo))
    if summary.get("first_step") is None or lo < summary["first_step"]:
        out["first_step"], out["first"] = lo, float(values[first_idx])
    finite = values[~np.isnan(values)]
    if len(finite):
        new_min, new_max = float(finite.min()), float(finite.max())
        old_min, old_max = summary.get("min"), summary.get("max")
        out["min"] = new_min if _missing(old_min) else min(old_min, new_min)
        out["max"] = new_max if _missing(old_max) else max(old_max, new_max)
    return out


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))
