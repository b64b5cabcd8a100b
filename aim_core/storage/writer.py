"""The single writer of one run in this process: buffers, flushes, resumes and closes it."""

from __future__ import annotations

import contextlib
import threading
import time
import warnings
from pathlib import Path
from typing import Any

from ..errors import StorageError
from .catalog import Catalog
from .chunks import Columns, concat_columns, encode_chunk, sort_by_step
from .lock import RunLock
from .run_file import CHUNK_POINTS, FORMAT_VERSION, RunFile, chunk_key
from .sequence_state import ChunkLayout, SequenceState, merged_summary, pending_columns

MAX_PENDING_POINTS = 10_000_000  # per run; beyond it the oldest unwritable points are dropped


class RunWriter:
    """Owns a run's file and lock; ``Run`` handles share it, ``track`` feeds its buffers."""

    def __init__(self, runs_dir: Path, run_hash: str, catalog: Catalog,
                 flush_interval: float) -> None:
        self.run_hash = run_hash
        self.catalog = catalog
        self.flush_interval = flush_interval
        self.lock = RunLock(runs_dir / f"{run_hash}.lock", run_hash)
        self.path = runs_dir / f"{run_hash}.sqlite"
        self.by_name: dict[str, list[SequenceState]] = {}
        self.sequences: list[SequenceState] = []
        self.props: dict[str, Any] = {}
        self.params: dict[str, Any] = {}
        self.meta_dirty = False
        self.catalog_dirty = False
        self.handles = 0
        self.closed = False
        self.next_flush = time.monotonic() + flush_interval
        self.dropped = 0
        self.points_written = 0
        self.ended: tuple[float | None, str | None] | None = None  # how a resumed run had ended
        self._warned = False
        self._last_error: BaseException | None = None
        self._flush_lock = threading.RLock()
        self._new_seq_lock = threading.Lock()
        self.file: RunFile | None = None

    # -- opening -----------------------------------------------------------------------
    def create(self, props: dict[str, Any]) -> None:
        """Create the run's file and catalog entry."""
        self.lock.acquire()
        try:
            self.file = RunFile(self.path, self.run_hash, read_only=False)
            self.file.kv.put("format", FORMAT_VERSION)
            self.props = props
            self.meta_dirty = True
            self.flush()
        except BaseException:
            self.lock.release()
            raise

    def resume(self) -> None:
        """Open an existing run for appending; its status goes back to running."""
        self.lock.acquire()
        try:
            self.file = RunFile(self.path, self.run_hash, read_only=False)
            props, self.params, infos = self.file.load_meta()
            for seq_id, info in infos.items():
                self._restore_sequence(seq_id, info)
            if not props.get("active"):
                self.ended = (props.get("end_time"), props.get("status"))
            self.props = {**props, "active": True, "end_time": None, "status": "running"}
            self.meta_dirty = True
            self.flush()
        except BaseException:
            if self.file is not None:
                self.file.close()
            self.lock.release()
            raise

    def _restore_sequence(self, seq_id: str, info: dict[str, Any]) -> None:
        seq = SequenceState(seq_id, info["name"], info["context"])
        seq.restore(info)
        self.by_name.setdefault(seq.name, []).append(seq)
        self.sequences.append(seq)

    # -- sequences ---------------------------------------------------------------------
    def new_sequence(self, name: str, context: dict[str, Any]) -> SequenceState:
        """Return the sequence ``(name, context)``, creating it once (thread-safe)."""
        with self._new_seq_lock:
            for seq in self.by_name.get(name, ()):
                if seq.context == context:
                    return seq
            seq = SequenceState(str(len(self.sequences)), name, context)
            self.sequences.append(seq)
            self.by_name.setdefault(name, []).append(seq)
            self.meta_dirty = True
            return seq

    def find_sequence(self, name: str, context: dict[str, Any]) -> SequenceState | None:
        """Return the sequence ``(name, context)`` if it exists."""
        for seq in self.by_name.get(name, ()):
            if seq.context == context:
                return seq
        return None

    def read_points(self, seq: SequenceState) -> Columns:
        """Every point of ``seq``, stored and still buffered, sorted by step."""
        with self._flush_lock:  # the chunk list only changes inside a flush
            stored = self.file.read_columns(seq.seq_id, seq.chunk_ids, sort=False)
            pending = list(seq.pending)
        parts = [stored, pending_columns(pending)] if pending else [stored]
        return sort_by_step(concat_columns(parts))

    def pending_count(self) -> int:
        """How many points wait in memory."""
        return sum(len(seq.pending) for seq in self.sequences)

    # -- flushing ----------------------------------------------------------------------
    def flush(self) -> None:
        """Write buffered points and metadata in one transaction; raise on failure."""
        with self._flush_lock:
            self.next_flush = time.monotonic() + self.flush_interval
            if self.file is None:
                return
            batches = [(seq, seq.pending[: len(seq.pending)]) for seq in list(self.sequences)]
            batches = [(seq, pts) for seq, pts in batches if pts]
            if batches or self.meta_dirty:
                self._commit(batches)
                self.catalog_dirty = True
            if self.catalog_dirty:
                self.catalog.put(self.run_hash, self.catalog_entry())
                self.catalog_dirty = False

    def _commit(self, batches: list) -> None:
        kv = self.file.kv
        try:
            updates = self._write_points(batches)
            self._write_meta(updates)
            kv.commit()
        except BaseException:
            with contextlib.suppress(Exception):  # a dead connection has nothing to roll back
                kv.rollback()
            raise
        for seq, pts in batches:
            del seq.pending[: len(pts)]
            self.points_written += len(pts)
        for seq, (layout, summary) in updates.items():
            seq.chunk_ids, seq.chunk_sizes = layout.ids, layout.sizes
            seq.next_chunk_id, seq.summary = layout.next_id, summary
        self.meta_dirty = False

    def _write_points(self, batches: list) -> dict[SequenceState, tuple]:
        updates = {}
        kv = self.file.kv
        for seq, pts in batches:
            new = pending_columns(pts)
            layout = ChunkLayout(seq, CHUNK_POINTS)
            layout.append(new, lambda chunk_id, seq=seq: self.file.read_chunk(seq.seq_id,
                                                                                chunk_id))
            for chunk_id, columns in layout.written.items():
                kv.put(chunk_key(seq.seq_id, chunk_id), encode_chunk(columns))
            for chunk_id in layout.deleted:
                kv.delete(chunk_key(seq.seq_id, chunk_id))
            updates[seq] = (layout, merged_summary(seq.summary, new))
        return updates

    def _write_meta(self, updates: dict[SequenceState, tuple]) -> None:
        infos = {seq.seq_id: seq.info(*updates.get(seq, (None, None)))
                 for seq in list(self.sequences)}
        kv = self.file.kv
        kv.put("sequences", infos)
        kv.put("props", self.props)
        kv.put("params", self.params)

    def catalog_entry(self) -> dict[str, Any]:
        """The catalog entry describing this run now."""
        return {
            "props": self.props,
            "params": self.params,
            "sequences": [seq.catalog_info() for seq in self.sequences if seq.summary["count"]],
        }

    def flush_quietly(self) -> bool:
        """Flush from the background; on failure warn once, keep the points, return False."""
        try:
            self.flush()
        except Exception as exc:  # storage trouble must never reach training
            self._last_error = exc
            self._drop_overflow()
            if not self._warned:
                self._warned = True
                warnings.warn(
                    f"aim-core could not write run {self.run_hash} ({exc!r}); points stay "
                    "buffered and the write is retried.", RuntimeWarning, stacklevel=2)
            return False
        self._last_error = None
        return True

    def _drop_overflow(self) -> None:
        excess = self.pending_count() - MAX_PENDING_POINTS
        for seq in self.sequences:
            if excess <= 0:
                break
            cut = min(excess, len(seq.pending))
            del seq.pending[:cut]
            self.dropped += cut
            excess -= cut

    # -- closing -----------------------------------------------------------------------
    def close(self, status: str = "finished") -> None:
        """Flush everything, record the end, release the lock; StorageError if data is lost."""
        if self.closed:
            return
        self.closed = True
        end_time = time.time()
        touched = self.points_written or self.pending_count()
        if self.ended is not None and not touched:  # reopened only to edit props
            end_time = self.ended[0]
            status = self.ended[1] if status == "finished" else status
        self.props = {**self.props, "active": False, "end_time": end_time, "status": status}
        self.meta_dirty = True
        error = None
        for _ in range(3):
            try:
                self.flush()
                error = None
                break
            except Exception as exc:
                error = exc
                time.sleep(0.1)
        self.file.close()
        self.lock.release()
        lost = self.pending_count() + self.dropped
        if error is not None or self.dropped:
            raise StorageError(
                f"Run {self.run_hash}: {lost} points could not be written ({error!r}). "
                "Check free disk space and permissions of the repo folder."
            )

    def forget(self) -> None:
        """In a forked child: drop this writer without touching the parent's files."""
        self.closed = True
        self.lock.forget()


def default_props(run_hash: str, experiment: str | None) -> dict[str, Any]:
    """Properties of a brand-new run."""
    return {
        "name": f"Run: {run_hash}",
        "description": "",
        "experiment": experiment or "default",
        "tags": [],
        "creation_time": time.time(),
        "end_time": None,
        "active": True,
        "archived": False,
        "status": "running",
    }
