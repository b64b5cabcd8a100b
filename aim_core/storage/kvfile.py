"""One SQLite key-value table in sqlitedict's layout, holding JSON text or raw bytes, never pickle.

The table is ``key TEXT PRIMARY KEY, value BLOB`` exactly as sqlitedict creates it, so every
file also opens with ``SqliteDict(path, tablename=..., encode=encode, decode=decode)``.

Writes do not go through sqlitedict: its statement queue runs each request on a thread of its
own and keeps executing queued statements after SQLite rolled a failed one back (so a flush
that failed on a full disk could still commit half of itself), and it starts one thread per
open file. ``KVWriter`` is a plain connection used by one owner under its lock, with explicit
``BEGIN IMMEDIATE ... COMMIT`` and ``ROLLBACK`` on any error. ``ReadOnlyKV`` reads through a
``mode=ro`` connection (``immutable=1`` where the folder cannot be written, or a private copy
when a WAL there holds commits), so readers never write anything in the repo, not even WAL side
files of a closed file.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import tempfile
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import RunUnavailableError

BUSY_TIMEOUT_S = 30.0
_abandoned: list[sqlite3.Connection] = []  # a forked child's copies of its parent's connections


def abandon(conn: sqlite3.Connection | None) -> None:
    """Keep a connection inherited through ``fork`` from ever being closed here: closing it
    would checkpoint (and could delete the WAL of) a file the parent still writes."""
    if conn is not None:
        _abandoned.append(conn)


class RawJSON(str):
    """Text that already is JSON: stored as it is, without encoding it again."""

    __slots__ = ()


def encode(value: Any) -> Any:
    """Bytes are stored as a BLOB as they are; everything else as JSON text."""
    if type(value) is bytes:
        return value  # bound as a BLOB
    if isinstance(value, (bytearray, memoryview)):
        return sqlite3.Binary(value)
    if isinstance(value, RawJSON):
        return value  # bound as text; no copy of a large entry
    return json.dumps(value, separators=(",", ":"))


def decode(value: Any) -> Any:
    """Inverse of ``encode``: SQLite hands back bytes for a BLOB and str for TEXT."""
    if isinstance(value, bytes):
        return value
    return json.loads(value)


def table_sql(table: str) -> str:
    """The CREATE statement sqlitedict uses for a table."""
    return f'CREATE TABLE IF NOT EXISTS "{_quoted(table)}" (key TEXT PRIMARY KEY, value BLOB)'


def key_range(prefix: str) -> tuple[str, str]:
    """The ``[low, high)`` key bounds holding every key that starts with ``prefix``."""
    return prefix, prefix[:-1] + chr(ord(prefix[-1]) + 1)


def connect(path: Path) -> sqlite3.Connection:
    """A read-write connection in autocommit mode (transactions are explicit)."""
    return sqlite3.connect(str(path), isolation_level=None, check_same_thread=False,
                           timeout=BUSY_TIMEOUT_S)


class KVWriter:
    """The writing connection of one file; its owner uses it from one thread at a time."""

    def __init__(self, path: Path, table: str, connection: sqlite3.Connection) -> None:
        self.path = Path(path)
        self.table = table
        self.conn = connection
        quoted = _quoted(table)
        self._put_sql = f'INSERT OR REPLACE INTO "{quoted}" (key, value) VALUES (?, ?)'
        self._get_sql = f'SELECT value FROM "{quoted}" WHERE key = ?'
        self._del_sql = f'DELETE FROM "{quoted}" WHERE key = ?'
        self._scan_sql = (f'SELECT key, value FROM "{quoted}" '
                          "WHERE key >= ? AND key < ? ORDER BY key")

    @contextlib.contextmanager
    def transaction(self) -> Iterator[KVWriter]:
        """``BEGIN IMMEDIATE``; ``COMMIT`` when the block ends, ``ROLLBACK`` if it raises."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self
            self.conn.execute("COMMIT")
        except BaseException:
            self.rollback()
            raise

    def rollback(self) -> None:
        """Undo the open transaction, if SQLite has not already done so."""
        if self.conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                self.conn.execute("ROLLBACK")

    def put(self, key: str, value: Any) -> None:
        """Write ``value`` at ``key`` (inside a transaction)."""
        self.conn.execute(self._put_sql, (key, encode(value)))

    def put_many(self, items: list[tuple[str, Any]]) -> None:
        """Write several keys (inside a transaction)."""
        self.conn.executemany(self._put_sql, [(key, encode(value)) for key, value in items])

    def delete(self, key: str) -> None:
        """Remove ``key`` if present (inside a transaction)."""
        self.conn.execute(self._del_sql, (key,))

    def get(self, key: str, default: Any = None) -> Any:
        """Return the value at ``key``, or ``default``."""
        row = self.conn.execute(self._get_sql, (key,)).fetchone()
        return default if row is None else decode(row[0])

    def scan(self, prefix: str) -> list[tuple[str, Any]]:
        """Every ``(key, value)`` whose key starts with ``prefix``, in key order."""
        rows = self.conn.execute(self._scan_sql, key_range(prefix)).fetchall()
        return [(key, decode(value)) for key, value in rows]

    def close(self) -> None:
        """Close the connection (committing is the caller's job)."""
        with contextlib.suppress(sqlite3.Error):
            self.conn.close()


class ReadOnlyKV:
    """A read-only view of one table: ``mode=ro``, or ``immutable=1`` on a read-only folder."""

    def __init__(self, path: Path, table: str = "kv") -> None:
        self.path = Path(path)
        quoted = _quoted(table)
        self._get_sql = f'SELECT value FROM "{quoted}" WHERE key = ?'
        self._scan_sql = (f'SELECT key, value FROM "{quoted}" '
                          "WHERE key >= ? AND key < ? ORDER BY key")
        self._items_sql = f'SELECT key, value FROM "{quoted}" ORDER BY rowid'
        self._conn = open_read_only(self.path, f'SELECT 1 FROM "{quoted}" LIMIT 1')

    def get(self, key: str, default: Any = None) -> Any:
        """Return the value stored at ``key``, or ``default``."""
        row = self._conn.execute(self._get_sql, (key,)).fetchone()
        return default if row is None else decode(row[0])

    def scan(self, prefix: str) -> list[tuple[str, Any]]:
        """Every ``(key, value)`` whose key starts with ``prefix``, in key order."""
        rows = self._conn.execute(self._scan_sql, key_range(prefix)).fetchall()
        return [(key, decode(value)) for key, value in rows]

    def items(self) -> Iterator[tuple[str, Any]]:
        """Yield every ``(key, value)`` in insertion order."""
        rows = self._conn.execute(self._items_sql).fetchall()
        return ((key, decode(value)) for key, value in rows)

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[None]:
        """Make the reads inside the block see one consistent state of the file."""
        self._conn.execute("BEGIN")
        try:
            yield
        finally:
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute("ROLLBACK")

    def close(self) -> None:
        """Close the connection."""
        with contextlib.suppress(sqlite3.Error):
            self._conn.close()


def open_read_only(path: Path, probe: str = "SELECT 1 FROM sqlite_master LIMIT 1"
                   ) -> sqlite3.Connection:
    """A connection that never writes: ``mode=ro``, falling back to ``immutable=1``.

    A file in WAL mode needs its ``-shm`` side file to be read; where the folder is not
    writable (a read-only mount, another user's repo) and that fails, the file cannot be
    changing, so it is read as immutable. ``immutable`` ignores the ``-wal``, so when one holds
    commits (a crashed writer's last flushes, a parked catalog), the file and its WAL are
    copied to a private temporary folder and the copy is read instead (SQLite replays the
    WAL there). ``probe`` is run to surface open errors here.
    """
    path = Path(path)
    if not path.exists():
        raise sqlite3.OperationalError(f"unable to open database file {path}")
    uri = path.absolute().as_uri()
    conn = sqlite3.connect(f"{uri}?mode=ro", uri=True, isolation_level=None,
                           check_same_thread=False, timeout=BUSY_TIMEOUT_S)
    try:
        conn.execute(probe).fetchall()
        return conn
    except sqlite3.Error:
        conn.close()
        if not _cannot_write_beside(path):
            raise
    if _has_commits_in_wal(path):
        return _open_private_copy(path, probe)
    return _probed(sqlite3.connect(f"{uri}?immutable=1", uri=True, isolation_level=None,
                                   check_same_thread=False), probe)


def _probed(conn: sqlite3.Connection, probe: str) -> sqlite3.Connection:
    """``conn`` once ``probe`` reads through it; closed, and the error raised, otherwise."""
    try:
        conn.execute(probe).fetchall()
    except sqlite3.Error:
        conn.close()
        raise
    return conn


class _CopyConnection(sqlite3.Connection):
    """A connection to a private copy of a file; the copy is removed when it closes."""

    copy_dir: str = ""

    def close(self) -> None:
        """Close, then remove the copy."""
        try:
            super().close()
        finally:
            shutil.rmtree(self.copy_dir, ignore_errors=True)


def _has_commits_in_wal(path: Path) -> bool:
    try:
        return os.path.getsize(f"{path}-wal") > 0
    except OSError:
        return False


def _open_private_copy(path: Path, probe: str) -> sqlite3.Connection:
    """Read a file whose WAL holds commits, where its folder cannot be written: copy both."""
    folder = ""
    try:
        folder = tempfile.mkdtemp(prefix="aim-core-read-")
        copy = Path(folder) / path.name
        shutil.copyfile(path, copy)
        shutil.copyfile(f"{path}-wal", f"{copy}-wal")
        conn = sqlite3.connect(str(copy), isolation_level=None, check_same_thread=False,
                               factory=_CopyConnection)
    except OSError as exc:
        if folder:
            shutil.rmtree(folder, ignore_errors=True)
        raise RunUnavailableError(
            f"{path} has commits in its WAL file, which cannot be read in place without write "
            f"access to {path.parent}, and no private copy could be made in "
            f"{tempfile.gettempdir()} ({exc}). Set TMPDIR to a writable folder with room for "
            "the copy, or read the repo where its folder can be written.") from exc
    except BaseException:
        if folder:
            shutil.rmtree(folder, ignore_errors=True)
        raise
    conn.copy_dir = folder
    weakref.finalize(conn, shutil.rmtree, folder, True)  # also when never closed
    return _probed(conn, probe)


def _cannot_write_beside(path: Path) -> bool:
    """True when the side files of ``path`` cannot be created or opened for writing."""
    shm = Path(f"{path}-shm")
    if shm.exists():
        return not os.access(shm, os.W_OK)
    return not os.access(path.parent, os.W_OK)


def _quoted(name: str) -> str:
    return name.replace('"', '""')
