"""The writer's state of one sequence: buffered points, the open chunk and the summary."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .chunks import Columns, concat_columns, empty_columns

Summary = dict[str, Any]


class SequenceState:
    """One sequence of a run being written. ``pending`` holds ``(step, value, epoch, time)``.

    ``track`` appends to ``pending`` without a lock; the flusher copies a prefix, writes it,
    and deletes that prefix only once it is committed, so points tracked meanwhile stay.
    """

    __slots__ = ("seq_id", "name", "context", "pending", "next_step", "n_full", "tail",
                 "summary")

    def __init__(self, seq_id: str, name: str, context: dict[str, Any]) -> None:
        self.seq_id, self.name, self.context = seq_id, name, context
        self.pending: list[tuple[Any, float, float, float]] = []
        self.next_step = 0
        self.n_full = 0  # chunks that are full and never rewritten
        self.tail: Columns = empty_columns()  # points of the open chunk already on disk
        self.summary: Summary = {"count": 0}

    @property
    def n_chunks(self) -> int:
        """How many chunks hold this sequence on disk."""
        return self.n_full + (1 if len(self.tail[0]) else 0)

    def info(self) -> dict[str, Any]:
        """The JSON description stored in the run file."""
        return {"name": self.name, "context": self.context, "chunks": self.n_chunks,
                **self.summary}

    def catalog_info(self) -> dict[str, Any]:
        """The summary stored in the repo catalog."""
        return {"name": self.name, "context": self.context, **self.summary}


def pending_columns(points: list[tuple[Any, float, float, float]]) -> Columns:
    """Turn buffered point tuples into four arrays."""
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


def split_chunks(tail: Columns, new: Columns, chunk_points: int) -> tuple[list[Columns], Columns]:
    """Append ``new`` to the open chunk; return the chunks that became full and the new tail."""
    joined = concat_columns([tail, new])
    n = len(joined[0])
    full = []
    start = 0
    while n - start >= chunk_points:
        full.append(tuple(col[start:start + chunk_points] for col in joined))
        start += chunk_points
    rest = tuple(col[start:] for col in joined)
    return full, rest  # type: ignore[return-value]
