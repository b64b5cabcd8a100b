"""The single writer of one run in this process: buffers, flushes, resumes and closes it.

A flush prepares every touched sequence (chunks, summary, info JSON) outside any transaction,
writes them in one ``BEGIN IMMEDIATE ... COMMIT``, and only then changes memory (chunk lists,
summaries, buffered points), so a failed flush leaves nothing behind, on disk or in memory. A
sequence whose points cannot be prepared is left out of the flush and keeps its points; the
other sequences are written.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..context import context_key
from ..errors import AimCoreError, DiskFullError, StorageError
from ..warn import warn_safely
from .catalog import NONFINITE_MARK, Catalog, catalog_params
from .exits import critical
from .failures import cause, disk_full_error, is_disk_full, read_error
from .kvfile import RawJSON
from .lock import RunLock
from .points import concat_columns, latest_per_step, pending_columns
from .run_file import (
    FORMAT_VERSION,
    LEGACY_SEQUENCES,
    RESERVED_KEYS,
    RESERVED_PREFIXES,
    RunFileWriter,
)
from .sequence_flush import Prepared, prepare_metric, prepare_objects
from .sequence_state import METRIC, SequenceState

CRASHED = "crashed"
_END_KEYS = ("active", "end_time", "status")
MAX_PENDING_POINTS = 10_000_000  # per run; beyond it the oldest unwritable points are dropped


class ClosedBuffer(list):
    """The buffer of a closed writer's sequence: what is appended is not stored, with a
    warning (once per writer) instead of a silent loss."""

    def __init__(self, on_append: Callable[[], None]) -> None:
        super().__init__()
        self._on_append = on_append

    def append(self, item: Any) -> None:
        """Drop ``item``; warn."""
        self._on_append()

    def extend(self, items: Any) -> None:
        """Drop ``items``; warn."""
        self._on_append()


class RunWriter:
    """Owns a run's file and lock; ``Run`` handles share it, ``track`` feeds its buffers."""

    wake_flusher: Callable[[], None] = staticmethod(lambda: None)  # set by ``flusher``

    def __init__(self, runs_dir: Path, run_hash: str, catalog: Catalog,
                 flush_interval: float) -> None:
        self.run_hash = run_hash
        self.catalog = catalog
        self.flush_interval = flush_interval
        self.lock = RunLock(runs_dir / f"{run_hash}.lock", run_hash)
        self.path = runs_dir / f"{run_hash}.sqlite"
        self.by_name: dict[str, list[SequenceState]] = {}
        self.sequences: list[SequenceState] = []
        self._by_key: dict[tuple[str, str], SequenceState] = {}
        self._next_seq_id = 0
        self.props: dict[str, Any] = {}
        self.params: dict[str, Any] = {}
        self.meta_dirty = False
        self._props_json = "{}"
        self._params_json = "{}"
        self._catalog_params = '"params":{}'  # params as the catalog keeps them (catalog.py)
        self._nonfinite = False
        self._migrate = False
        self.handles = 0
        self.closed = False
        self.next_flush = time.monotonic() + flush_interval
        self.dropped = 0
        self.points_written = 0
        self.ended: tuple[float | None, str | None] | None = None  # how a resumed run had ended
        self._stored_props: dict[str, Any] = {}  # the props a resumed run had
        self.seq_errors: dict[str, BaseException] = {}
        self._warned = False
        self._last_error: BaseException | None = None
        self._flush_lock = threading.RLock()
        self._close_lock = threading.RLock()
        self._new_seq_lock = threading.Lock()
        self.file: RunFileWriter | None = None
        # What the run records about its process (aim_core.system.tracking.SystemTracking):
        # ``collect()`` at the start of each flush, ``stop()`` before the last one.
        self.system: Any = None

    # -- opening -----------------------------------------------------------------------
    def create(self, props: dict[str, Any]) -> None:
        """Create the run's file and its catalog entry (visible to queries at once)."""
        try:
            self.lock.acquire()
            with critical():
                self.props = props
                self._encode_meta()
                first = [("format", FORMAT_VERSION), ("props", RawJSON(self._props_json)),
                         ("params", RawJSON(self._params_json))]
                self.file = RunFileWriter.create(self.path, self.run_hash, first)
                self._publish_now()
        except BaseException as exc:
            self._abandon(remove_file=self.file is not None)
            if is_disk_full(exc):
                raise disk_full_error(self.path, exc) from exc
            raise

    def resume(self) -> None:
        """Open an existing run for appending; its status goes back to running."""
        try:
            self.lock.acquire()
            with critical():
                self.file = RunFileWriter.open(self.path, self.run_hash)
                version, (props, params, infos), self._migrate = self.file.load_meta()
                self._migrate = self._migrate or version != FORMAT_VERSION
                for seq_id, info in infos.items():
                    self._restore_sequence(seq_id, info)
                if not props.get("active"):
                    self.ended = (props.get("end_time"), props.get("status"))
                else:  # the lock was free, so the writer that had it open died
                    self.ended = (None, CRASHED)
                self._stored_props = props
                self.params = params
                self.props = {**props, "active": True, "end_time": None, "status": "running"}
                self.meta_dirty = True
                self.flush()
                self._publish_now()
        except AimCoreError:
            self._abandon()
            raise
        except (sqlite3.Error, OSError, ValueError, KeyError, TypeError) as exc:
            self._abandon()
            if is_disk_full(exc):
                raise disk_full_error(self.path, exc) from exc
            raise read_error(self.run_hash, self.path, exc) from exc
        except BaseException:
            self._abandon()
            raise

    def _publish_now(self) -> None:
        self.catalog.acquire()
        try:
            self.catalog.put(self.run_hash, self.catalog_entry())
        except BaseException:
            self.catalog.release()
            raise

    def _abandon(self, remove_file: bool = False) -> None:
        if self.file is not None:
            self.file.kv.close()
            self.file = None
        if remove_file:  # a run that could not be created leaves nothing behind
            self.catalog.unstage(self.run_hash)
            for suffix in ("", "-wal", "-shm"):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)
        self.lock.release()

    def _restore_sequence(self, seq_id: str, info: dict[str, Any]) -> None:
        seq = SequenceState(seq_id, info["name"], info["context"], info.get("kind", METRIC))
        seq.restore(info)
        self._register(seq)
        if seq_id.isdigit():
            self._next_seq_id = max(self._next_seq_id, int(seq_id) + 1)

    def _register(self, seq: SequenceState) -> None:
        self._by_key[(seq.name, seq.key)] = seq
        self.by_name.setdefault(seq.name, []).append(seq)
        self.sequences.append(seq)

    # -- sequences ---------------------------------------------------------------------
    def new_sequence(self, name: str, context: dict[str, Any], kind: str = METRIC
                     ) -> SequenceState:
        """Return the sequence ``(name, context)``, creating it once (thread-safe).

        ``context`` must be canonical (``canonical_context``). A sequence keeps the kind of
        its first point: asking for another kind raises TypeError and changes nothing.
        """
        key = context_key(context)
        with self._new_seq_lock:
            seq = self._by_key.get((name, key))
            if seq is None:
                seq = SequenceState(str(self._next_seq_id), name, context, kind)
                self._next_seq_id += 1
                self._register(seq)
                self.meta_dirty = True
                if self.closed:
                    seq.pending = ClosedBuffer(self._warn_closed)
                else:
                    self.wake_flusher()
        if seq.kind != kind:
            raise TypeError(
                f"Sequence {name!r} with context {context!r} holds {seq.kind} values; it cannot "
                f"also hold {kind} values. Track them under another name or context.")
        return seq

    def mark_dirty(self) -> None:
        """Props or params changed: write them at the next flush."""
        if self.closed:
            self._warn_closed()
            return
        self.meta_dirty = True
        self.wake_flusher()

    def _warn_closed(self) -> None:
        self._warn_once(f"aim-core: run {self.run_hash} was closed (by a SIGTERM, at exit or in "
                        "a forked child); what is tracked or set on it now is not stored. "
                        f"Reopen it with Run(run_hash={self.run_hash!r}) to write again.",
                        stacklevel=5)  # the caller of track() / run[...] = ...

    def _seal(self) -> None:
        """After the close: buffers that warn instead of silently keeping points."""
        for seq in list(self.sequences):
            seq.pending = ClosedBuffer(self._warn_closed)

    def find_sequence(self, name: str, context: dict[str, Any]) -> SequenceState | None:
        """Return the sequence ``(name, context)`` if it exists."""
        return self._by_key.get((name, context_key(context)))

    def read_points(self, seq: SequenceState) -> Any:
        """Every point of ``seq``, stored and still buffered: one per step, sorted by step."""
        with self._flush_lock:  # the chunk list only changes inside a flush
            stored = [self.file.read_chunk(seq.seq_id, i) for i in seq.chunk_ids]
            if seq.tail:
                stored.append(self.file.read_tail(seq.seq_id))
            pending = list(seq.pending)
        if pending:
            stored.append(pending_columns(pending))
        return latest_per_step(concat_columns(stored))

    def pending_count(self) -> int:
        """How many points wait in memory."""
        return sum(len(seq.pending) for seq in self.sequences)

    # -- flushing ----------------------------------------------------------------------
    def flush(self, extra: dict[str, Any] | None = None, final: bool = False) -> None:
        """Write buffered points, metadata and ``extra`` keys in one transaction; raise on
        failure. The catalog entry is staged for the next group commit of the catalog.
        ``final`` (at close) also turns every raw tail into a compact chunk."""
        if extra:
            _check_extra(extra)
        with critical(), self._flush_lock:  # a held-back signal runs after the lock is free
            self.next_flush = time.monotonic() + self.flush_interval
            if self.file is None:
                return
            if self.system is not None:
                self.system.collect()  # captured terminal output becomes log lines here
            prepared = self._prepare_all(final)
            meta = self._meta_items()
            puts = [item for p in prepared for item in p.puts] + meta
            puts += list((extra or {}).items())
            if not puts:
                return
            deletes = [key for p in prepared for key in p.deletes]
            migrated = self._migrate and not self.seq_errors
            if migrated:
                deletes.append(LEGACY_SEQUENCES)  # replaced by the seq/<id> keys just prepared
            try:
                with self.file.kv.transaction() as kv:
                    kv.put_many(puts)
                    for key in deletes:
                        kv.delete(key)
            except BaseException as exc:
                if meta:
                    self.meta_dirty = True
                if is_disk_full(exc):
                    raise disk_full_error(self.path, exc) from exc
                raise
            for p in prepared:
                p.seq.apply(p.layout, p.summary, p.catalog_json)
                del p.seq.pending[: p.count]
                self.points_written += p.count
                self.seq_errors.pop(p.seq.seq_id, None)
            self._migrate = self._migrate and not migrated
            self.file.after_commit()
            self.catalog.stage(self.run_hash, self.catalog_entry())

    def publish(self) -> None:
        """Flush, then commit the catalog entry now (before this process reads the repo)."""
        self.flush()
        self.catalog.commit_staged()

    def _prepare_all(self, final: bool) -> list[Prepared]:
        prepared = []
        for seq in list(self.sequences):
            count = len(seq.pending)
            if not count and not self._migrate and not (final and seq.tail):
                continue
            try:
                prepared.append(self._prepare(seq, seq.pending[:count], final))
            except Exception as exc:  # this sequence waits; the others are written
                self.seq_errors[seq.seq_id] = exc
        return prepared

    def _prepare(self, seq: SequenceState, points: list, final: bool = False) -> Prepared:
        """What this flush writes for one sequence (see ``sequence_flush.py``)."""
        if seq.kind != METRIC:
            return prepare_objects(seq, points, self.file, final)
        return prepare_metric(seq, points, self.file, final)

    def _meta_items(self) -> list[tuple[str, Any]]:
        items: list[tuple[str, Any]] = []
        if self.meta_dirty:
            self.meta_dirty = False
            self._encode_meta()
            items = [("props", RawJSON(self._props_json)), ("params", RawJSON(self._params_json))]
        if self._migrate:
            items.append(("format", FORMAT_VERSION))
        return items

    def _encode_meta(self) -> None:
        self._props_json = json.dumps(self.props, separators=(",", ":"))
        try:
            self._params_json = json.dumps(self.params, separators=(",", ":"))
            kept, omitted = catalog_params(self.params)
            self._catalog_params = '"params":' + (json.dumps(kept, separators=(",", ":"))
                                                  if omitted else self._params_json)
            if omitted:
                self._catalog_params += ',"file_params":' + json.dumps(omitted)
        except (TypeError, ValueError) as exc:  # run[...] checks values; keep the last good params
            self.seq_errors["params"] = exc
        text = self._props_json + self._params_json
        self._nonfinite = "NaN" in text or "Infinity" in text

    def catalog_entry(self) -> RawJSON:
        """The catalog entry describing this run now, built from cached JSON."""
        shown = [s for s in self.sequences if s.summary.get("count")]
        mark = NONFINITE_MARK if self._nonfinite or any(s.nonfinite for s in shown) else ""
        sequences = ",".join(s.catalog_json for s in shown)
        return RawJSON(f'{mark}{{"props":{self._props_json},{self._catalog_params},'
                       f'"sequences":[{sequences}]}}')

    def flush_quietly(self) -> bool:
        """Flush from the background; on failure warn once, keep the points, return False."""
        try:
            self.flush()
        except Exception as exc:  # storage trouble must never reach training
            self._last_error = exc
            self._drop_overflow()
            why = str(exc) if isinstance(exc, AimCoreError) else f"{cause(exc)}: {exc!r}"
            self._warn_once(f"aim-core could not write run {self.run_hash} ({why}); points "
                            "stay buffered and the write is retried.")
            return False
        self._last_error = None
        if self.seq_errors:
            seq_id, exc = next(iter(self.seq_errors.items()))
            self._warn_once(f"aim-core could not write sequence {self._describe(seq_id)} of run "
                            f"{self.run_hash} ({exc!r}); its points stay buffered, the other "
                            "sequences are written.")
        return True

    def _warn_once(self, message: str, stacklevel: int = 3) -> None:
        if not self._warned:
            self._warned = True
            warn_safely(message, stacklevel=stacklevel)

    def _describe(self, seq_id: str) -> str:
        seq = next((s for s in self.sequences if s.seq_id == seq_id), None)
        return seq_id if seq is None else f"{seq.name!r} {seq.context!r}"

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
    def close(self, status: str | None = None,
              end: tuple[float | None, str] | None = None) -> None:
        """Flush everything, compact the file, record the end in the catalog, release the
        lock; StorageError if points are lost. Signals wait until the last byte is down.

        ``end=(end_time, status)`` records exactly that end (converters); otherwise a run
        reopened only to edit its props keeps how it had ended (a crashed run stays crashed),
        and any other run ends now with ``status`` (default ``finished``)."""
        with critical(), self._close_lock:
            if self.closed:
                return
            try:
                self._close(status or "finished", end)
            finally:
                self.closed = True
                self._warned = False  # the next warning is about writing into a closed run
                self._seal()

    def _close(self, status: str, end: tuple[float | None, str] | None) -> None:
        system, self.system = self.system, None
        if system is not None:
            system.stop()  # its last samples and log lines go into the final flush
        end_time, status = end if end is not None else self._end(status, system)
        self.props = {**self.props, "active": False, "end_time": end_time, "status": status}
        self.meta_dirty = True
        error = None
        for attempt in range(3):
            try:
                self.flush(final=True)
                error = None
                break
            except Exception as exc:
                error = exc
                if attempt < 2:
                    time.sleep(0.1)
        try:
            self.file.close(compact=error is None)
        finally:
            self.file = None
            try:
                self.catalog.commit_staged()
            except Exception as exc:
                error = error or exc
            finally:
                self.catalog.release()
                self.lock.release()
        self._raise_if_lost(error)

    def _end(self, status: str, system: Any) -> tuple[float | None, str]:
        """How the run ends: now with ``status``, or as it had ended when it was reopened
        only to edit its props (``aim-core runs close`` of an untouched crashed run ends it)."""
        # system samples and terminal lines alone do not make a reopened run "used" again
        touched = self.points_written + self.pending_count() > (system.points if system else 0)
        if self.ended is None or touched:
            return time.time(), status
        if self.ended[1] == CRASHED and not self._props_edited():
            return time.time(), status
        return self.ended[0], self.ended[1] if status == "finished" else status

    def _props_edited(self) -> bool:
        def kept(props: dict[str, Any]) -> dict[str, Any]:
            return {k: v for k, v in props.items() if k not in _END_KEYS}

        return kept(self.props) != kept(self._stored_props)

    def _raise_if_lost(self, error: BaseException | None) -> None:
        lost = self.pending_count() + self.dropped
        if not lost and error is None:
            return
        if not lost:
            kind = DiskFullError if is_disk_full(error) else StorageError
            raise kind(f"Run {self.run_hash}: its catalog entry could not be written "
                       f"({cause(error)}); its points are safe in its file. Rebuild the "
                       "catalog with `aim-core reindex` once the cause is fixed.")
        error = error or next(iter(self.seq_errors.values()), None)
        if error is not None and is_disk_full(error):
            raise DiskFullError(
                f"Run {self.run_hash}: {lost} points could not be written: the disk holding "
                f"{self.path.parent} is full. What was written before is intact; free some "
                "space before the next run.")
        raise StorageError(
            f"Run {self.run_hash}: {lost} points could not be written ({cause(error)}: "
            f"{error!r}). Check free disk space and permissions of the repo folder.")

    def forget(self) -> None:
        """In a forked child: drop this writer without touching the parent's files."""
        self.closed = True
        self._seal()
        self.system = None
        self.lock.forget()
        if self.file is not None:
            self.file.forget()


def _check_extra(extra: dict[str, Any]) -> None:
    for key in extra:
        if not isinstance(key, str) or key in RESERVED_KEYS or key.startswith(RESERVED_PREFIXES):
            raise ValueError(f"flush(extra=...) key {key!r} is reserved by the run file layout; "
                             "use a key of your own, e.g. 'remote/...'")


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

