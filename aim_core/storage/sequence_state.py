"""The writer's state of one sequence: buffered points, its chunk list, summary and cached JSON.

Chunks are merged like a binary counter: each flush appends a chunk of its new points, then
the two newest chunks are merged while the older is no larger than the newer. A chunk that
reaches ``CHUNK_POINTS`` is sealed and never rewritten. So a point is rewritten about
log2(CHUNK_POINTS / points per flush) times, and a sequence of n points has at most
n / CHUNK_POINTS + log2(CHUNK_POINTS) chunks: few blob reads, however often it was flushed.
A merged chunk keeps one point per step (the last tracked), as readers see it.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable
from typing import Any

from ..context import context_key
from .points import Columns, Summary, concat_columns, latest_per_step
from .run_file import summary_of

METRIC = "metric"
_MIN_STEP, _MAX_STEP = -(2**63), 2**63 - 1


class SequenceState:
    """One sequence of a run being written. ``pending`` holds ``(step, value, epoch, time)``.

    ``track`` appends to ``pending`` without a lock; the flusher copies a prefix, writes it,
    and deletes that prefix only once it is committed, so points tracked meanwhile stay.
    ``exact`` is True when the context holds only str/None values, whose ``==`` already tells
    ``True``, ``1`` and ``1.0`` apart; other contexts also compare value types.
    """

    __slots__ = ("seq_id", "name", "context", "kind", "key", "exact", "pending", "next_step",
                 "chunk_ids", "chunk_sizes", "next_chunk_id", "tail", "summary", "head",
                 "catalog_json", "nonfinite")

    def __init__(self, seq_id: str, name: str, context: dict[str, Any],
                 kind: str = METRIC) -> None:
        self.seq_id, self.name, self.context = seq_id, name, context
        self.kind = sys.intern(kind)  # ``track`` compares it by identity
        self.key = context_key(context)
        self.exact = all(isinstance(v, str) or v is None for v in context.values())
        self.pending: list[tuple[Any, Any, float, float]] = []
        self.next_step = 0
        self.chunk_ids: list[int] = []
        self.chunk_sizes: list[int] = []
        self.next_chunk_id = 0
        self.tail = 0  # points in the stored tail (see run_file.py)
        self.summary: Summary = {"count": 0}
        self.head = (f'"name":{json.dumps(name)},"context":{_compact(context)},'
                     f'"kind":{json.dumps(self.kind)}')
        self.catalog_json = ""
        self.nonfinite = False
        self.set_catalog_json(self.encoded()[1])

    def add(self, step: int | None, value: Any, epoch: float = math.nan,
            timestamp: float | None = None) -> None:
        """Buffer one point from a producer other than ``Run.track`` (a server, a sampler, a
        converter): ``step`` None means the next step; ValueError for a step outside int64."""
        if step is None:
            step = self.next_step
        if not _MIN_STEP <= step <= _MAX_STEP:
            raise ValueError(f"step {step} of sequence {self.name!r} is outside the int64 range")
        if step >= self.next_step:
            self.next_step = step + 1
        self.pending.append((step, value, epoch, time.time() if timestamp is None else timestamp))

    def same_context(self, context: dict[str, Any]) -> bool:
        """For a ``context`` already ``==`` to this one: are the value types the same too?"""
        if self.exact:
            return True
        return all(type(value) is type(context[key]) for key, value in self.context.items())

    def restore(self, info: dict[str, Any]) -> None:
        """Take the chunk list and summary stored in the run file."""
        self.chunk_ids = list(info.get("chunks", []))
        self.chunk_sizes = list(info.get("chunk_sizes", []))
        self.next_chunk_id = max(self.chunk_ids, default=-1) + 1
        self.tail = int(info.get("tail", 0))
        self.summary = {k: v for k, v in summary_of(info).items()
                        if k not in ("name", "context", "kind", "tail")}
        last_step = self.summary.get("last_step")
        self.next_step = 0 if last_step is None else last_step + 1
        self.set_catalog_json(self.encoded()[1])

    def apply(self, layout: ChunkLayout, summary: Summary, catalog_json: str) -> None:
        """Adopt a committed chunk layout and summary (with its catalog JSON)."""
        self.chunk_ids, self.chunk_sizes = layout.ids, layout.sizes
        self.next_chunk_id, self.summary = layout.next_id, summary
        self.tail = layout.tail_count
        self.set_catalog_json(catalog_json)

    def info(self, layout: ChunkLayout | None = None, summary: Summary | None = None
             ) -> dict[str, Any]:
        """The JSON description stored in the run file under ``seq/<seq_id>``."""
        ids, sizes, tail = ((layout.ids, layout.sizes, layout.tail_count) if layout
                            else (self.chunk_ids, self.chunk_sizes, self.tail))
        info = {"name": self.name, "context": self.context, "kind": self.kind, "chunks": ids,
                "chunk_sizes": sizes, **(summary if summary is not None else self.summary)}
        if tail:
            info["tail"] = tail
        return info

    def catalog_info(self) -> dict[str, Any]:
        """The summary stored in the repo catalog."""
        return {"name": self.name, "context": self.context, "kind": self.kind, **self.summary}

    def encoded(self, layout: ChunkLayout | None = None, summary: Summary | None = None
                ) -> tuple[str, str]:
        """``(run-file info JSON, catalog summary JSON)``, the same as ``json.dumps`` of
        :meth:`info` and :meth:`catalog_info` gives, built from the cached name and context
        (a flush of many sequences spends its time here)."""
        ids, sizes, tail = ((layout.ids, layout.sizes, layout.tail_count) if layout
                            else (self.chunk_ids, self.chunk_sizes, self.tail))
        figures = ",".join(f'"{k}":{_number(v)}' for k, v in
                           (summary if summary is not None else self.summary).items())
        catalog = f"{{{self.head},{figures}}}"
        chunks = ",".join(map(str, ids))
        tail_part = f',"tail":{tail}' if tail else ""
        info = (f'{{{self.head},"chunks":[{chunks}],"chunk_sizes":[{",".join(map(str, sizes))}],'
                f"{figures}{tail_part}}}")
        return info, catalog

    def set_catalog_json(self, catalog_json: str) -> None:
        """Cache the catalog summary JSON (and whether it holds NaN or inf)."""
        self.catalog_json = catalog_json
        self.nonfinite = "NaN" in catalog_json or "Infinity" in catalog_json


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _number(value: Any) -> str:
    """A summary figure as JSON (NaN and inf as Python's ``json`` writes them)."""
    if value is None:
        return "null"
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return repr(value)


class ChunkLayout:
    """A sequence's chunk list while one flush rewrites it (applied only after commit)."""

    def __init__(self, seq: SequenceState, chunk_points: int) -> None:
        self.ids = list(seq.chunk_ids)
        self.sizes = list(seq.chunk_sizes)
        self.next_id = seq.next_chunk_id
        self.chunk_points = chunk_points
        self.written: dict[int, Columns] = {}
        self.deleted: list[int] = []
        self.tail_count = seq.tail
        self.tail: Columns | None = None  # the new tail, when this flush rewrote it

    def append(self, new: Columns, read: Callable[[int], Columns]) -> None:
        """Add new points as chunks, then merge the newest chunks as the counter says."""
        n = len(new[0])
        for start in range(0, n, self.chunk_points):
            piece = tuple(col[start:start + self.chunk_points] for col in new)
            self._add(piece)  # type: ignore[arg-type]
            self._merge(read)

    def set_tail(self, columns: Columns) -> None:
        """The points kept in the sequence's raw tail after this flush."""
        self.tail, self.tail_count = columns, len(columns[0])

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
            merged = latest_per_step(
                concat_columns([self.columns(older, read), self.columns(newer, read)]))
            for chunk_id in (older, newer):
                if self.written.pop(chunk_id, None) is None:
                    self.deleted.append(chunk_id)
            self._add(merged)

    def columns(self, chunk_id: int, read: Callable[[int], Columns]) -> Columns:
        """The points of one chunk of this layout, from memory or read from the file."""
        columns = self.written.get(chunk_id)
        return columns if columns is not None else read(chunk_id)
