"""One SQLite key-value table holding JSON or raw-bytes values, never pickle.

Writers go through sqlitedict (``KVFile``). Readers use a plain read-only SQLite connection
(``ReadOnlyKV``): sqlitedict starts a thread and issues setup writes per open, which costs
milliseconds per run file, and a query may open hundreds of run files.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlitedict import SqliteDict

BUSY_TIMEOUT_MS = 30_000

# sqlitedict logs every failed statement at ERROR before re-raising it to the caller; we
# handle and report those ourselves (one warning), so its duplicate tracebacks stay quiet.
logging.getLogger("sqlitedict.SqliteMultithread").addHandler(logging.NullHandler())
logging.getLogger("sqlitedict.SqliteMultithread").propagate = False
_OPEN_RETRIES = 50


def encode(value: Any) -> Any:
    """Bytes are stored as a BLOB as they are; everything else as JSON text."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return sqlite3.Binary(value)
    return json.dumps(value, separators=(",", ":"))


def decode(value: Any) -> Any:
    """Inverse of ``encode``: SQLite hands back bytes for a BLOB and str for TEXT."""
    if isinstance(value, bytes):
        return value
    return json.loads(value)


class KVFile:
    """A key-value table in one SQLite file: WAL, explicit commits, no pickle.

    Writes are queued on sqlitedict's connection thread and made durable by ``commit``;
    a failed statement or commit raises from ``commit`` and leaves the queued values to be
    written again by the caller.
    """

    def __init__(self, path: Path, table: str = "kv") -> None:
        self.path = Path(path)
        self._db = _open_sqlitedict(self.path, table)
        self._dirty = False

    def get(self, key: str, default: Any = None) -> Any:
        """Return the value stored at ``key``, or ``default``."""
        self._check_alive()
        try:
            return self._db[key]
        except KeyError:
            return default

    def put(self, key: str, value: Any) -> None:
        """Queue a write of ``value`` at ``key`` (durable after ``commit``)."""
        self._check_alive()
        self._dirty = True
        self._db[key] = value

    def delete(self, key: str) -> None:
        """Queue the removal of ``key`` if present."""
        self._check_alive()
        self._dirty = True
        self._db.conn.execute(f'DELETE FROM "{self._db.tablename}" WHERE key = ?', (key,))

    def commit(self) -> None:
        """Make queued writes durable; raises the first error of any queued statement."""
        self._check_alive()
        # A plain COMMIT statement: unlike sqlitedict's own commit request, a failure here is
        # reported back instead of killing the connection thread.
        if self._dirty:
            self._db.conn.select_one("COMMIT")
            self._dirty = False

    def rollback(self) -> None:
        """Drop queued, uncommitted writes and any errors they left behind."""
        self._dirty = False
        conn = self._db.conn
        if conn is None or not conn.is_alive():
            return
        # sqlitedict reports a failed queued write at some later call: flush those out first,
        # so that they cannot surface in an unrelated call afterwards.
        self._drain_errors()
        with contextlib.suppress(sqlite3.Error):
            conn.select_one("ROLLBACK")  # fails harmlessly when SQLite already rolled back

    def _drain_errors(self) -> None:
        for _ in range(10_000):
            try:
                self._db.conn.select_one("SELECT 1")
                return
            except sqlite3.Error:
                continue

    def close(self) -> None:
        """Close the connection (committing is the caller's job)."""
        db = self._db
        if db.conn is not None and db.conn.is_alive():
            db.close(do_log=False)
        else:
            db.conn = None

    def _check_alive(self) -> None:
        conn = self._db.conn
        if conn is None or not conn.is_alive():
            raise sqlite3.OperationalError(f"connection to {self.path} is closed")


class ReadOnlyKV:
    """A read-only view of the same table, through a plain ``mode=ro`` SQLite connection."""

    def __init__(self, path: Path, table: str = "kv") -> None:
        self.path = Path(path)
        self._table = table.replace('"', '""')
        uri = f"file:{self.path.resolve()}?mode=ro"
        self._conn = sqlite3.connect(uri, uri=True, check_same_thread=False,
                                     isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
        self._lock = threading.RLock()
        self._conn.execute(f'SELECT 1 FROM "{self._table}" LIMIT 1').fetchall()

    def get(self, key: str, default: Any = None) -> Any:
        """Return the value stored at ``key``, or ``default``."""
        with self._lock:
            row = self._conn.execute(
                f'SELECT value FROM "{self._table}" WHERE key = ?', (key,)).fetchone()
        return default if row is None else decode(row[0])

    def items(self) -> Iterator[tuple[str, Any]]:
        """Yield every ``(key, value)`` in insertion order."""
        with self._lock:
            rows = self._conn.execute(
                f'SELECT key, value FROM "{self._table}" ORDER BY rowid').fetchall()
        return ((key, decode(value)) for key, value in rows)

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[None]:
        """Make the reads inside the block see one consistent state of the file."""
        with self._lock:
            self._conn.execute("BEGIN")
            try:
                yield
            finally:
                self._conn.execute("ROLLBACK")

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()


def _open_sqlitedict(path: Path, table: str) -> SqliteDict:
    """Open, retrying while another process holds the write lock during creation."""
    for attempt in range(_OPEN_RETRIES):
        try:
            db = SqliteDict(
                str(path), tablename=table, flag="c",
                journal_mode="WAL", encode=encode, decode=decode, outer_stack=False,
            )
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == _OPEN_RETRIES - 1:
                raise
            time.sleep(0.02 * (attempt + 1))
            continue
        # sqlitedict turns fsync off; NORMAL with WAL survives a killed process and keeps
        # commits cheap, and the busy timeout lets several processes share the catalog.
        db.conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        db.conn.execute("PRAGMA synchronous = NORMAL")
        return db
    raise AssertionError("unreachable")
