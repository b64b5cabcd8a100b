"""Reading run files: ``RunFile``, a read-only view, and each thread's few open ones.

A reader never writes anything, not even the side files of a closed file (see ``kvfile``).
"""

from __future__ import annotations

import gc
import os
import sqlite3
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

from ..errors import RunUnavailableError
from .chunks import Columns, decode_chunks
from .failures import ChunkDamagedError, out_of_fds, read_error, too_many_open_files
from .kvfile import ReadOnlyKV, abandon
from .points import concat_columns, latest_per_step
from .run_file import (
    LEGACY_SEQUENCES,
    SEQ_PREFIX,
    TABLE,
    Meta,
    check_format,
    chunk_key,
    decode_tail,
    file_looks_damaged,
    seq_key,
    tail_key,
)


class RunFile:
    """A read-only view of one run's file; never writes anything, not even side files."""

    def __init__(self, path: Path, run_hash: str) -> None:
        self.path, self.run_hash = Path(path), run_hash
        if file_looks_damaged(self.path):
            raise read_error(run_hash, self.path, ChunkDamagedError("not a complete SQLite file"))
        try:
            self.kv = ReadOnlyKV(self.path, TABLE)
        except (sqlite3.Error, OSError) as exc:
            raise read_error(run_hash, self.path, exc) from exc

    def load_meta(self) -> Meta:
        """Return ``(props, params, {seq_id: info})``; a clear error when unreadable."""
        try:
            with self.kv.snapshot():
                version = self.kv.get("format", 1)
                props = self.kv.get("props")
                params = self.kv.get("params", {})
                infos = self._infos()
        except (sqlite3.Error, OSError, ValueError) as exc:
            raise read_error(self.run_hash, self.path, exc) from exc
        check_format(version, self.run_hash)
        if not isinstance(props, dict) or not isinstance(params, dict):
            raise read_error(self.run_hash, self.path,
                             ChunkDamagedError("run properties are missing"))
        return props, params, infos

    def _infos(self) -> dict[str, dict[str, Any]]:
        infos = dict(self.kv.get(LEGACY_SEQUENCES) or {})
        for key, info in self.kv.scan(SEQ_PREFIX):
            infos[key[len(SEQ_PREFIX):]] = info
        return infos

    def read_sequence(self, seq_id: str) -> Columns:
        """The latest stored points of one sequence (one per step), read as one snapshot."""
        try:
            with self.kv.snapshot():
                info = self.kv.get(seq_key(seq_id))
                if info is None:
                    info = (self.kv.get(LEGACY_SEQUENCES) or {}).get(seq_id)
                if info is None:
                    return concat_columns([])
                blobs = [self.kv.get(chunk_key(seq_id, i)) for i in info["chunks"]]
                tail = self.kv.get(tail_key(seq_id)) if info.get("tail") else None
            try:
                columns = decode_chunks(blobs)
            except ValueError as exc:
                raise ChunkDamagedError(f"a chunk of sequence {seq_id}: {exc}") from exc
            if tail is not None:
                columns = concat_columns([columns, decode_tail(tail)])
        except (sqlite3.Error, OSError, ValueError, KeyError, TypeError) as exc:
            raise read_error(self.run_hash, self.path, exc) from exc
        return latest_per_step(columns)

    def get(self, key: str, default: Any = None) -> Any:
        """Read one key (for extra keys written by ``RunWriter.flush(extra=...)``)."""
        try:
            return self.kv.get(key, default)
        except (sqlite3.Error, OSError, ValueError) as exc:
            raise read_error(self.run_hash, self.path, exc) from exc

    def close(self) -> None:
        """Close the file."""
        self.kv.close()


class _ThreadReaders(threading.local):
    """Each thread's open read-only run files, most recently used last."""

    def __init__(self) -> None:
        self.files: OrderedDict[str, tuple[tuple[int, int], RunFile]] = OrderedDict()


_readers = _ThreadReaders()
READERS_PER_THREAD = 16


def cached_reader(path: Path, run_hash: str) -> RunFile:
    """A read-only view of a run file, kept open for this thread's next reads (at most
    ``READERS_PER_THREAD`` per thread); reopened when the path names another file now (its
    writer closed it by replacing it with a compact copy)."""
    key = str(path)
    try:
        stat = os.stat(path)
        ident = (stat.st_dev, stat.st_ino)
    except OSError:
        ident = (-1, -1)
    files = _readers.files
    entry = files.get(key)
    if entry is not None:
        if entry[0] == ident:
            files.move_to_end(key)
            return entry[1]
        drop_reader(path)
    try:
        reader = RunFile(path, run_hash)
    except RunUnavailableError as exc:
        if not out_of_fds(exc):
            raise
        gc.collect()  # runs dropped in reference cycles keep their files until collected
        try:
            reader = RunFile(path, run_hash)
        except RunUnavailableError as again:
            if not out_of_fds(again):
                raise
            raise too_many_open_files(run_hash) from again
    files[key] = (ident, reader)
    while len(files) > READERS_PER_THREAD:
        files.popitem(last=False)[1][1].close()
    return reader


def drop_reader(path: Path) -> None:
    """Close this thread's kept view of ``path``, if any (after an error, or a delete)."""
    entry = _readers.files.pop(str(path), None)
    if entry is not None:
        entry[1].close()


def forget_readers() -> None:
    """In a forked child: drop the parent's kept views without closing them."""
    for _, reader in _readers.files.values():
        abandon(reader.kv._conn)
    _readers.files.clear()


