"""The file of one run, ``runs/<hash>.sqlite``: its layout and lifecycle (reading: ``run_reader``).

Keys of the single table ``run`` (JSON unless said otherwise):

- ``format``: the layout version (``FORMAT_VERSION``); a newer one is refused, not guessed at.
- ``props``: name, description, experiment, tags, creation_time, end_time, active,
  archived, status.
- ``params``: the nested params dict.
- ``seq/<seq_id>``: one sequence: ``{"name", "context", "kind", "chunks" (chunk ids, oldest
  first), "chunk_sizes", "count", "first_step", "first", "last_step", "last", "min", "max"}``;
  rewritten only when that sequence changed, read all at once with one range scan.
- ``chunk/<seq_id>/<chunk_id>``: point chunks (see ``chunks.py``), in tracking order.
- ``tail/<seq_id>``: the newest points of a live sequence, fewer than ``TAIL_POINTS``, raw
  (``ACT | count (u4)`` then steps int64, values, epochs, timestamps float64, little-endian):
  each flush rewrites it cheaply; once it holds ``TAIL_POINTS`` points, and at close, its
  points move into a compact chunk. Its points come after the chunks' (``"tail"`` in the
  sequence info counts them).
- ``payload/<seq_id>/<token>.<n>``: raw payload bytes of object sequences (images, texts,
  ...), many back to back, written once (see ``object_chunks.py``); object chunks hold the
  metadata and where each payload lives.
- ``sequences``: format 1 only, every sequence in one dict; still read, and replaced by
  ``seq/`` keys at the first flush of a writer that resumes such a file.

The file holds everything its catalog entry needs (``aim-core reindex`` rebuilds the catalog
from the run files). Everything one flush writes lands in one transaction.

Lifecycle: a new file is switched to WAL before its first write; the writer commits to the
WAL without syncing (``synchronous=NORMAL``; see ``RunFileWriter`` for the first WAL
generation). ``close`` leaves one compact, synced file in rollback-journal mode with no
``-wal``/``-shm`` beside it, so readers need no side files: ``VACUUM INTO <hash>.closing``,
one ``fdatasync``, unlink the WAL side files, rename over the original. Until the WAL is
unlinked the old file with its WAL is complete; from then on the synced copy is, and
``repair_leftovers`` finishes the rename after a crash in between.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import struct
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import NewerFormatError
from .chunks import Columns, decode_chunk
from .failures import ChunkDamagedError
from .kvfile import KVWriter, abandon, connect, table_sql
from .points import FLOAT_DTYPE, STEP_DTYPE

TABLE = "run"
CHUNK_POINTS = 1 << 16
FORMAT_VERSION = 2
SEQ_PREFIX = "seq/"
LEGACY_SEQUENCES = "sequences"
LAYOUT_KEYS = ("chunks", "chunk_sizes", "tail")
RESERVED_KEYS = ("format", "props", "params", LEGACY_SEQUENCES)
RESERVED_PREFIXES = (SEQ_PREFIX, "chunk/", "tail/", "payload/")
TAIL_POINTS = 1024
TAIL_MAGIC = b"ACT"
_TAIL_HEADER = struct.Struct("<3sI")
FRESH_WAL_LIMIT = 4 << 20  # bytes of a first-generation WAL before syncing starts
COMPACT_LIMIT = 64 << 20  # larger files are checkpointed in place instead of copied
SQLITE_MAGIC = b"SQLite format 3\x00"

Meta = tuple[dict[str, Any], dict[str, Any], dict[str, dict[str, Any]]]


def summary_of(info: dict[str, Any]) -> dict[str, Any]:
    """A sequence info without its chunk layout: name, context, kind, count, first/last, min/max."""
    out = {k: v for k, v in info.items() if k not in LAYOUT_KEYS}
    out.setdefault("kind", "metric")
    return out


def seq_key(seq_id: str) -> str:
    """Return the key of one sequence's info."""
    return f"{SEQ_PREFIX}{seq_id}"


def chunk_key(seq_id: str, index: int) -> str:
    """Return the key of one chunk."""
    return f"chunk/{seq_id}/{index:06d}"


def tail_key(seq_id: str) -> str:
    """Return the key of one sequence's tail."""
    return f"tail/{seq_id}"


def encode_tail(columns: Columns) -> bytes:
    """The raw bytes of a tail (see the module docstring)."""
    steps, values, epochs, times = columns
    return b"".join((_TAIL_HEADER.pack(TAIL_MAGIC, len(steps)),
                     np.ascontiguousarray(steps, STEP_DTYPE).tobytes(),
                     *(np.ascontiguousarray(c, FLOAT_DTYPE).tobytes()
                       for c in (values, epochs, times))))


def decode_tail(blob: Any) -> Columns:
    """The points of a tail; ChunkDamagedError when it is not one."""
    if not isinstance(blob, bytes) or len(blob) < _TAIL_HEADER.size:
        raise ChunkDamagedError("a sequence tail is missing or too short")
    magic, count = _TAIL_HEADER.unpack_from(blob)
    if magic != TAIL_MAGIC or len(blob) != _TAIL_HEADER.size + 32 * count:
        raise ChunkDamagedError("a sequence tail has a bad header or length")
    start, n8 = _TAIL_HEADER.size, 8 * count
    return (np.frombuffer(blob, STEP_DTYPE, count, start),
            *(np.frombuffer(blob, FLOAT_DTYPE, count, start + k * n8) for k in (1, 2, 3)))


def closing_path(path: Path) -> Path:
    """The temporary name a closing writer copies the file to."""
    return path.with_name(path.name.rsplit(".", 1)[0] + ".closing")


def check_format(version: Any, run_hash: str) -> None:
    """Refuse a file written by a newer aim-core."""
    if isinstance(version, int) and version > FORMAT_VERSION:
        raise NewerFormatError(
            f"Run {run_hash} was written by a newer aim-core (run file format {version}; this "
            f"version reads up to {FORMAT_VERSION}). Upgrade aim-core to read it.")


class RunFileWriter:
    """The run file as its one writer holds it: WAL mode, explicit transactions.

    A WAL file that this writer created itself starts with ``synchronous=OFF`` and no
    automatic checkpoint: before the first checkpoint, the only syncs ``NORMAL`` makes are of
    the new WAL's header and of its folder entry, which protect a restarted WAL and the name
    of a file that ``close`` replaces anyway; commits are not synced in either mode. Once the
    WAL grows past ``FRESH_WAL_LIMIT`` the writer switches to ``NORMAL`` with checkpoints.
    """

    def __init__(self, path: Path, run_hash: str, conn: sqlite3.Connection,
                 fresh_wal: bool) -> None:
        self.path, self.run_hash = Path(path), run_hash
        self.kv = KVWriter(self.path, TABLE, conn)
        self._fresh = fresh_wal
        self._wal = Path(f"{self.path}-wal")
        if not fresh_wal:
            self._sync_normally()

    @classmethod
    def create(cls, path: Path, run_hash: str, first: list[tuple[str, Any]]) -> RunFileWriter:
        """Create the file (WAL before its first write) holding ``first``; FileExistsError
        if the name is taken."""
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        os.close(fd)
        conn = connect(path)
        try:
            conn.execute("PRAGMA synchronous=OFF")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA wal_autocheckpoint=0")
            writer = cls(path, run_hash, conn, fresh_wal=True)
            with writer.kv.transaction() as kv:
                conn.execute(table_sql(TABLE))
                kv.put_many(first)
        except BaseException:
            conn.close()
            for leftover in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
                with contextlib.suppress(OSError):
                    leftover.unlink()
            raise
        return writer

    @classmethod
    def open(cls, path: Path, run_hash: str) -> RunFileWriter:
        """Open an existing file for appending (the caller holds the run's lock)."""
        repair_leftovers(path)
        fresh = not Path(f"{path}-wal").exists()
        conn = connect(path)
        try:
            conn.execute("PRAGMA synchronous=NORMAL")  # the header switch below is synced
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise sqlite3.OperationalError(f"cannot switch {path} to WAL (mode {mode})")
            if fresh:
                conn.execute("PRAGMA synchronous=OFF")
                conn.execute("PRAGMA wal_autocheckpoint=0")
            return cls(path, run_hash, conn, fresh_wal=fresh)
        except BaseException:
            conn.close()
            raise

    def _sync_normally(self) -> None:
        self.kv.conn.execute("PRAGMA synchronous=NORMAL")
        self.kv.conn.execute("PRAGMA wal_autocheckpoint=1000")
        self._fresh = False

    def after_commit(self) -> None:
        """Leave the first WAL generation once the WAL has grown large."""
        if self._fresh:
            try:
                size = self._wal.stat().st_size
            except OSError:
                return
            if size > FRESH_WAL_LIMIT:
                self._sync_normally()

    def read_chunk(self, seq_id: str, index: int) -> Columns:
        """Read one stored chunk in tracking order."""
        blob = self.kv.get(chunk_key(seq_id, index))
        if not isinstance(blob, bytes):
            raise ChunkDamagedError(f"chunk {index} of sequence {seq_id} is missing")
        return decode_chunk(blob)

    def read_tail(self, seq_id: str) -> Columns:
        """Read one sequence's stored tail."""
        return decode_tail(self.kv.get(tail_key(seq_id)))

    def load_meta(self) -> tuple[Any, Meta, bool]:
        """``(format, (props, params, infos), legacy)`` as stored."""
        version = self.kv.get("format", 1)
        check_format(version, self.run_hash)
        legacy = dict(self.kv.get(LEGACY_SEQUENCES) or {})
        infos = dict(legacy)
        for key, info in self.kv.scan(SEQ_PREFIX):
            infos[key[len(SEQ_PREFIX):]] = info
        props = self.kv.get("props")
        params = self.kv.get("params", {})
        if not isinstance(props, dict) or not isinstance(params, dict):
            raise ChunkDamagedError("run properties are missing")
        return version, (props, params, infos), bool(legacy)

    def close(self, compact: bool = True) -> None:
        """Close the file, leaving one compact synced file without WAL side files."""
        conn = self.kv.conn
        if compact:
            try:
                size = conn.execute("PRAGMA page_count").fetchone()[0] * conn.execute(
                    "PRAGMA page_size").fetchone()[0]
                if size <= COMPACT_LIMIT:
                    self._close_by_copy()
                    return
            except (sqlite3.Error, OSError):
                pass  # e.g. no room for the copy: the in-place close below still works
        self._close_in_place()

    def _close_by_copy(self) -> None:
        conn, tmp = self.kv.conn, closing_path(self.path)
        _unlink(tmp)
        _unlink(Path(f"{tmp}-journal"))
        conn.execute("PRAGMA synchronous=OFF")  # VACUUM INTO syncs as its source does
        try:
            conn.execute("VACUUM INTO ?", (str(tmp),))
            fdatasync_path(tmp)
        except BaseException:
            _unlink(tmp)
            _unlink(Path(f"{tmp}-journal"))
            self._sync_normally()
            raise
        # The old file takes in its WAL too (unsynced: the synced copy is what counts), so a
        # reader that opens it in the next microseconds sees it complete without the WAL.
        with contextlib.suppress(sqlite3.Error):
            conn.execute("PRAGMA busy_timeout=100")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        # From here the synced copy is complete: remove the WAL before the copy takes the
        # name, so that no reader ever pairs the new file with the old WAL.
        _unlink(self._wal)
        _unlink(Path(f"{self.path}-shm"))
        os.rename(tmp, self.path)
        self.kv.close()  # its checkpoint goes to the replaced file, unsynced and discarded

    def _close_in_place(self) -> None:
        conn = self.kv.conn
        with contextlib.suppress(sqlite3.Error):
            self._sync_normally()
            conn.execute("PRAGMA busy_timeout=200")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            conn.execute("PRAGMA journal_mode=DELETE")  # fails while readers hold it: stays WAL
        self.kv.close()

    def forget(self) -> None:
        """In a forked child: drop the connection without checkpointing the parent's file."""
        abandon(self.kv.conn)
        self.kv.conn = None  # type: ignore[assignment]


def repair_leftovers(path: Path) -> None:
    """Finish or undo a close that was interrupted (call only while holding the run's lock).

    A ``.closing`` copy is complete once the WAL is gone (it was synced before the WAL was
    unlinked): it then takes the file's name. While the WAL still holds data, the copy may be
    partial and is removed; the file with its WAL is complete.
    """
    tmp = closing_path(path)
    if not tmp.exists():
        return
    wal, journal = Path(f"{path}-wal"), Path(f"{tmp}-journal")
    wal_size = wal.stat().st_size if wal.exists() else 0
    if journal.exists() or wal_size > 0 or not _complete_sqlite_file(tmp):
        _unlink(tmp)
        _unlink(journal)
        return
    _unlink(wal)
    _unlink(Path(f"{path}-shm"))
    os.rename(tmp, path)


def file_looks_damaged(path: Path) -> bool:
    """A cheap check: the SQLite header is missing or claims more pages than the file has.

    For run files only: it opens and closes a descriptor of the file, which drops this
    process's POSIX locks on it; that is harmless for a run file (only its one writer could
    checkpoint it) but not for the catalog, which several processes write.
    """
    try:
        with open(path, "rb") as f:
            header = f.read(100)
            size = os.fstat(f.fileno()).st_size
    except FileNotFoundError:
        return True
    except OSError:
        return False
    if header and not header.startswith(SQLITE_MAGIC[: len(header)]):
        return True
    try:
        if os.stat(f"{path}-wal").st_size > 0:
            return False  # the newest pages live in the write-ahead log
    except OSError:
        pass
    if len(header) < 100:
        return True
    return _pages_bytes(header) > size


def _complete_sqlite_file(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            header = f.read(100)
            size = os.fstat(f.fileno()).st_size
    except OSError:
        return False
    return (len(header) == 100 and header.startswith(SQLITE_MAGIC)
            and _pages_bytes(header) == size)


def _pages_bytes(header: bytes) -> int:
    page_size = struct.unpack_from(">H", header, 16)[0]
    page_size = 65536 if page_size == 1 else page_size
    return struct.unpack_from(">I", header, 28)[0] * page_size


def fdatasync_path(path: Path) -> None:
    """Make the data of the file at ``path`` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fdatasync(fd)
    finally:
        os.close(fd)


def _unlink(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()

