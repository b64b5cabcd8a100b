"""The repo catalog ``index.sqlite``: one JSON entry per run, enough for listings and queries.

Entry schema (version 1; ``kind`` was added to sequence summaries without a version bump,
a missing kind means ``"metric"``)::

    {"props": {"name", "description", "experiment", "tags", "creation_time", "end_time",
               "active", "archived", "status"},
     "params": {...},
     "sequences": [{"name", "context", "kind", "count", "first_step", "first", "last_step",
                    "last", "min", "max"}],     # object kinds: name, context, kind, count,
                                                # first_step, last_step
     "corrupted": true,           # only while a reader finds the run file damaged
     "file_params": ["__system_params"]   # params kept in the run file only (see below)
    }

Params named in :data:`FILE_ONLY_PARAMS` stay out of the entry (system params are ~10 KB a
run: packages and environment; AimQL cannot name them, as it refuses ``_`` names). The entry
lists them under ``file_params`` so a reader knows to ask the run file.

A query over many runs reads this table alone and never opens a run file. The catalog is an
index: every run file holds what its entry needs, and ``rebuild`` (``aim-core reindex``)
writes it again from the run files.

One writing connection per repo per process, used under a lock; readers open their own
read-only connections. The flusher stages the entries of one flush cycle and commits them in
one transaction (group commit). The writing connection is kept, without any thread, while
writers use it and afterwards as the one *parked* catalog of the process, so that a sweep of
short runs does not pay a checkpoint (two syncs) and a new WAL (two more) per run; it is
closed when another repo's catalog is parked, at exit, or by :func:`close_idle`.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import CatalogDamagedError
from .exits import critical
from .failures import disk_full_error, is_damage, is_disk_full
from .kvfile import KVWriter, RawJSON, abandon, connect, decode, open_read_only, table_sql
from .run_file import fdatasync_path

SCHEMA_VERSION = 1
CHECKPOINT_PAGES = 10_000  # entries are small; a sweep of hundreds of runs needs no checkpoint
TABLE = "runs"
VERSION_KEY = "__schema__"
NONFINITE_MARK = " "  # leads an entry holding NaN/inf, which SQLite's JSON functions refuse
_checked: set[Path] = set()  # catalogs whose schema this process has checked


FILE_ONLY_PARAMS = ("__system_params",)


def catalog_params(params: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """``params`` as the catalog keeps them, and the names of those left in the run file."""
    omitted = [key for key in FILE_ONLY_PARAMS if key in params]
    if not omitted:
        return params, []
    return {k: v for k, v in params.items() if k not in FILE_ONLY_PARAMS}, omitted


def entry_text(entry: dict[str, Any]) -> RawJSON:
    """An entry as stored: JSON, led by :data:`NONFINITE_MARK` when it holds NaN or inf
    (queries then decode it in Python instead of SQLite; both read the same values)."""
    try:
        return RawJSON(json.dumps(entry, separators=(",", ":"), allow_nan=False))
    except ValueError:
        return RawJSON(NONFINITE_MARK + json.dumps(entry, separators=(",", ":")))


class Catalog:
    """The catalog table of one repo, shared by every run and reader in this process."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.users = 0
        self._kv: KVWriter | None = None
        self._lock = threading.RLock()
        self._staged: dict[str, str] = {}

    # -- the writing connection ------------------------------------------------------------
    def acquire(self) -> None:
        """A run writer starts using the catalog."""
        with self._lock:
            self.users += 1

    def release(self) -> None:
        """A run writer stopped using the catalog; the last one parks it."""
        with self._lock:
            self.users -= 1
            idle = self.users <= 0
        if idle:
            park(self)

    def create(self) -> None:
        """Create the catalog file if it does not exist yet: built complete (WAL mode, table,
        schema version) under a temporary name, synced once, then linked into place."""
        if self.path.exists():
            return
        tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.creating")
        tmp.unlink(missing_ok=True)
        conn = connect(tmp)
        try:
            conn.execute("PRAGMA journal_mode=OFF")  # nothing to roll back in a new file
            conn.execute("PRAGMA synchronous=OFF")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(table_sql(TABLE))
            conn.execute(f'INSERT INTO "{TABLE}" VALUES (?, ?)',
                         (VERSION_KEY, json.dumps(SCHEMA_VERSION)))
        finally:
            conn.close()
        try:
            fdatasync_path(tmp)
            os.link(tmp, self.path)  # never replaces a catalog another process just made
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)

    @contextlib.contextmanager
    def _writing(self) -> Iterator[KVWriter]:
        with self._lock:
            kv = self._kv if self._kv is not None else self._open_writer()
            yield kv
        if self.users <= 0:
            park(self)

    def _open_writer(self) -> KVWriter:
        conn = connect(self.path)
        try:
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(f"PRAGMA wal_autocheckpoint={CHECKPOINT_PAGES}")
            if self.path not in _checked:
                self._check_schema(conn)
            kv = KVWriter(self.path, TABLE, conn)
        except sqlite3.Error as exc:
            conn.close()
            raise self._error(exc) from exc
        except BaseException:
            conn.close()
            raise
        self._kv = kv
        return kv

    def _check_schema(self, conn: sqlite3.Connection) -> None:
        """A catalog without its table or schema row (an emptied file) is damaged while run
        files exist: filling it in would hide every run. Without run files, it is made."""
        table = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                             (TABLE,)).fetchone()
        row = table and conn.execute(f'SELECT value FROM "{TABLE}" WHERE key = ?',
                                     (VERSION_KEY,)).fetchone()
        if row is None:
            if _has_run_files(self.path.parent / "runs"):
                raise damaged_error(self.path, "no catalog table or schema version")
            if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(table_sql(TABLE))
            conn.execute(f'INSERT OR IGNORE INTO "{TABLE}" VALUES (?, ?)',
                         (VERSION_KEY, json.dumps(SCHEMA_VERSION)))
        elif conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            conn.execute("PRAGMA journal_mode=WAL")
        _checked.add(self.path)

    def _error(self, exc: BaseException) -> Exception:
        if is_damage(exc) or "no such table" in str(exc):  # emptied after it was checked
            self.close()  # a rebuilt catalog is a new file: open that one next time
            _checked.discard(self.path)
            return damaged_error(self.path, exc)
        if is_disk_full(exc):
            return disk_full_error(self.path, exc)
        return exc if isinstance(exc, Exception) else RuntimeError(str(exc))

    # -- writes ----------------------------------------------------------------------------
    def put(self, run_hash: str, entry: dict[str, Any] | RawJSON) -> None:
        """Write one entry (and any staged ones) in one transaction."""
        with critical(), self._lock:
            self._staged[run_hash] = entry if isinstance(entry, RawJSON) else entry_text(entry)
            self.commit_staged()

    def stage(self, run_hash: str, entry: RawJSON) -> None:
        """Queue an entry for the next :meth:`commit_staged`."""
        with self._lock:
            self._staged[run_hash] = entry

    def unstage(self, run_hash: str) -> None:
        """Forget a staged entry (of a run whose creation failed)."""
        with self._lock:
            self._staged.pop(run_hash, None)

    def commit_staged(self) -> None:
        """Write every staged entry in one transaction; on failure they stay staged."""
        with critical(), self._lock:
            if not self._staged:
                return
            staged, self._staged = self._staged, {}
            try:
                with self._writing() as kv, kv.transaction():
                    kv.put_many(list(staged.items()))
            except BaseException as exc:
                self._staged = {**staged, **self._staged}
                if isinstance(exc, sqlite3.Error):
                    raise self._error(exc) from exc
                raise

    def delete(self, run_hash: str) -> None:
        """Remove one entry."""
        with critical(), self._lock:
            self._staged.pop(run_hash, None)
            try:
                with self._writing() as kv, kv.transaction():
                    kv.delete(run_hash)
            except sqlite3.Error as exc:
                raise self._error(exc) from exc

    def replace_all(self, entries: dict[str, RawJSON]) -> None:
        """Make ``entries`` the whole content of the catalog, in one transaction."""
        with critical(), self._lock:
            self._staged.clear()
            try:
                with self._writing() as kv, kv.transaction():
                    kv.conn.execute(f'DELETE FROM "{TABLE}" WHERE key != ?', (VERSION_KEY,))
                    kv.put_many(list(entries.items()))
            except sqlite3.Error as exc:
                raise self._error(exc) from exc

    def set_corrupted(self, run_hash: str, damaged: bool) -> None:
        """Record (or clear) that a reader found the run's file damaged; best effort."""
        try:
            entry = self.get(run_hash)
            if entry is None or bool(entry.get("corrupted")) == damaged:
                return
            if damaged:
                entry["corrupted"] = True
            else:
                entry.pop("corrupted", None)
            self.put(run_hash, entry)
        except (sqlite3.Error, OSError, CatalogDamagedError):
            pass  # a read-only repo, a locked or damaged catalog: the listing still tells

    # -- reads -----------------------------------------------------------------------------
    def get(self, run_hash: str) -> dict[str, Any] | None:
        """Return the entry of one run, or None."""
        with self._lock:
            staged = self._staged.get(run_hash)
            if staged is not None:
                return json.loads(staged)
            if self._kv is not None:
                try:
                    return self._kv.get(run_hash)
                except sqlite3.Error as exc:
                    raise self._error(exc) from exc
        rows = self.read(f'SELECT value FROM "{TABLE}" WHERE key = ?', (run_hash,))
        return decode(rows[0][0]) if rows else None

    def entries(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """Yield ``(run_hash, entry)`` for every run, oldest first."""
        self.commit_staged_quietly()
        rows = self.read(f'SELECT key, value FROM "{TABLE}" ORDER BY rowid')
        return ((key, decode(value)) for key, value in rows if key != VERSION_KEY)

    def read(self, sql: str, args: tuple = ()) -> list[tuple]:
        """Run one read on a private read-only connection."""
        try:
            conn = open_read_only(self.path, f'SELECT 1 FROM "{TABLE}" LIMIT 1')
        except sqlite3.Error as exc:
            raise self._error(exc) from exc
        try:
            return conn.execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise self._error(exc) from exc
        finally:
            conn.close()

    def commit_staged_quietly(self) -> None:
        """Commit staged entries before this process reads; a failure is left to the flusher."""
        with contextlib.suppress(Exception):
            self.commit_staged()

    def close(self) -> None:
        """Close the writing connection (SQLite checkpoints and removes the WAL)."""
        with self._lock:
            kv, self._kv = self._kv, None
        if kv is not None:
            kv.close()

    def forget(self) -> None:
        """In a forked child: drop the parent's connection without touching it."""
        if self._kv is not None:
            abandon(self._kv.conn)
        self._kv = None
        self._staged = {}
        self.users = 0


def _has_run_files(runs_dir: Path) -> bool:
    try:
        return any(name.endswith(".sqlite") for name in os.listdir(runs_dir))
    except OSError:
        return False


def damaged_error(path: Path, exc: BaseException | str | None = None) -> CatalogDamagedError:
    """The error for a damaged or missing catalog, naming the command that rebuilds it."""
    repo = path.parent.parent
    why = f" ({exc})" if exc is not None else ""
    return CatalogDamagedError(
        f"The catalog {path} of repo {repo} is damaged or missing{why}. The run files are "
        f"intact: rebuild it with `aim-core reindex --repo {repo}` (or Repo(...).reindex()).")


_catalogs: dict[Path, Catalog] = {}
_parked: list[Catalog] = []
_catalogs_lock = threading.RLock()


def catalog_for(path: Path) -> Catalog:
    """Return this process's shared catalog for the file at ``path``."""
    path = Path(path).resolve()
    with _catalogs_lock:
        catalog = _catalogs.get(path)
        if catalog is None:
            catalog = _catalogs[path] = Catalog(path)
        return catalog


def park(catalog: Catalog) -> None:
    """Keep an unused catalog's connection open, closing the one parked before it."""
    with _catalogs_lock:
        previous = _parked[0] if _parked else None
        _parked[:] = [catalog]
    if previous is not None and previous is not catalog and previous.users <= 0:
        previous.close()


def close_idle() -> None:
    """Close the connection of every catalog no writer uses (at exit, or on request)."""
    with _catalogs_lock:
        idle = [c for c in _catalogs.values() if c.users <= 0]
        _parked.clear()
    for catalog in idle:
        with contextlib.suppress(Exception):
            catalog.commit_staged()
        catalog.close()


def drop_catalog(path: Path) -> None:
    """Close and forget the catalog of ``path`` (before its file is replaced)."""
    path = Path(path).resolve()
    with _catalogs_lock:
        catalog = _catalogs.pop(path, None)
        if catalog in _parked:
            _parked.remove(catalog)
        _checked.discard(path)
    if catalog is not None:
        catalog.close()


def forget_catalogs() -> None:
    """Drop every shared catalog without closing it (in a forked child)."""
    for catalog in _catalogs.values():
        catalog.forget()
    _catalogs.clear()
    _parked.clear()
