"""Writing converted runs: a new run whole or not at all, or new points added to one.

A converted run records where it came from in its ``source`` property (``kind``, ``id`` and
what the converter needs to tell what is new), so converting again finds it by its hash,
which each converter derives from the source, and adds only what is new.

``write_run`` has the signature of ``aim_core.storage.importer.write_run``; the converters
call it through this module only, so switching to the storage version is one import.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..context import canonical_context
from ..errors import RunLockedError
from ..repo import Repo
from ..storage import flusher as registry
from ..storage.writer import RunWriter

Point = tuple[int, Any, float, float]  # (step, value, epoch, timestamp)
SequenceData = tuple[str, dict[str, Any], str, list[Point]]  # (name, context, kind, points)
_NO_FLUSH = 1e9  # converters flush explicitly; the writers below are never registered


class _EntryHolder:
    """Receives the catalog entry a writer in a temporary folder produces."""

    def __init__(self) -> None:
        self.entry: dict[str, Any] | None = None

    def put(self, run_hash: str, entry: dict[str, Any]) -> None:
        """Keep the entry (the real catalog gets it once the file is in place)."""
        self.entry = entry


def finished_props(name: str, experiment: str, creation_time: float, end_time: float | None,
                   status: str, source: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """The properties of a converted run, which no writer holds open."""
    return {"name": name, "description": "", "experiment": experiment, "tags": [],
            "creation_time": creation_time, "end_time": end_time, "active": False,
            "archived": False, "status": status, **extra, "source": source}


def write_run(repo: Repo, run_hash: str, props: dict[str, Any], params: dict[str, Any],
              sequences: Iterable[SequenceData]) -> None:
    """Write a complete new run atomically; FileExistsError when the hash is taken.

    The run is built in a temporary folder inside the repo, linked into ``runs/`` (which
    fails if the file exists) and only then entered in the catalog.
    """
    tmp = Path(tempfile.mkdtemp(prefix=".convert-", dir=repo.root))
    try:
        holder = _EntryHolder()
        writer = RunWriter(tmp, run_hash, holder, _NO_FLUSH)  # type: ignore[arg-type]
        writer.create(props)
        try:
            writer.params = params
            _add_points(writer, sequences)
            writer.meta_dirty = True
            writer.flush()
        finally:
            writer.file.close()
            writer.lock.release()
        built = tmp / f"{run_hash}.sqlite"
        _checkpoint(built)
        dest = repo.run_path(run_hash)
        os.link(built, dest)
        try:
            repo.catalog.put(run_hash, holder.entry)
        except BaseException:
            dest.unlink(missing_ok=True)
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def append_run(repo: Repo, run_hash: str, props: dict[str, Any], params: dict[str, Any],
               sequences: Iterable[SequenceData]) -> None:
    """Add points to a closed run and replace its props and params, in one transaction."""
    if registry.find_writer(repo.root, run_hash) is not None:
        raise RunLockedError(run_hash, "this process", os.getpid())
    before = repo.catalog.get(run_hash) or {}
    writer = RunWriter(repo.runs_dir, run_hash, repo.catalog, _NO_FLUSH)
    writer.resume()  # takes the lock; RunLockedError while another writer has the run
    try:
        _add_points(writer, sequences)
        writer.props, writer.params = props, params
        writer.meta_dirty = True
        writer.flush()
    except BaseException:
        _restore(writer, before)
        raise
    finally:
        writer.file.close()
        writer.lock.release()


def _add_points(writer: RunWriter, sequences: Iterable[SequenceData]) -> None:
    for name, context, _kind, points in sequences:
        if not points:
            continue
        seq = writer.new_sequence(name, canonical_context(context))
        seq.pending.extend(points)
        seq.next_step = max(seq.next_step, max(p[0] for p in points) + 1)


def _restore(writer: RunWriter, before: dict[str, Any]) -> None:
    """After a failed append: drop the new points and put the run's old state back."""
    for seq in writer.sequences:
        seq.pending.clear()
    writer.props = before.get("props", writer.props)
    writer.params = before.get("params", writer.params)
    writer.meta_dirty = True
    with contextlib.suppress(Exception):  # the original error is the one to report
        writer.flush()


def _checkpoint(path: Path) -> None:
    """Fold the write-ahead log into the file so that the file alone holds the run."""
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    wal = Path(f"{path}-wal")
    if wal.exists() and wal.stat().st_size:
        raise OSError(f"could not fold the write-ahead log of {path} into the file")


def new_points(points: list[Point], stored: dict[str, Any] | None) -> list[Point]:
    """The points past the last step a stored sequence already has (all when none)."""
    if not stored or stored.get("last_step") is None:
        return points
    last = stored["last_step"]
    return [p for p in points if p[0] > last]


def stored_sequences(entry: dict[str, Any] | None) -> dict[tuple[str, str], dict[str, Any]]:
    """The catalog summaries of a run's sequences, by ``(name, context key)``."""
    from ..context import context_key

    if not entry:
        return {}
    return {(s["name"], context_key(s["context"])): s for s in entry.get("sequences", [])}


def finite_or_none(value: float | None) -> float | None:
    """A time that is a finite number, else None."""
    if value is None or not math.isfinite(value):
        return None
    return float(value)
