"""The repo catalog ``index.sqlite``: one JSON entry per run, enough for listings and queries.

Entry schema (version 1)::

    {"props": {"name", "description", "experiment", "tags", "creation_time", "end_time",
               "active", "archived", "status"},
     "params": {...},
     "sequences": [{"name", "context", "count", "first_step", "first", "last_step", "last",
                    "min", "max"}],
     "corrupted": true            # only once a reader found the run file damaged
    }

A query over many runs reads this table alone and never opens a run file.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .kvfile import KVFile, ReadOnlyKV

SCHEMA_VERSION = 1
_VERSION_KEY = "__schema__"


class Catalog:
    """The catalog table of one repo, shared by every run and reader in this process."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._file = KVFile(self.path, table="runs")
        self._lock = threading.Lock()
        self._reader: ReadOnlyKV | None = None
        if self._file.get(_VERSION_KEY) is None:
            self._file.put(_VERSION_KEY, SCHEMA_VERSION)
            self._file.commit()

    def get(self, run_hash: str) -> dict[str, Any] | None:
        """Return the entry of one run, or None."""
        return self._file.get(run_hash)

    def put(self, run_hash: str, entry: dict[str, Any]) -> None:
        """Write one entry and commit it."""
        with self._lock:
            try:
                self._file.put(run_hash, entry)
                self._file.commit()
            except Exception:
                self._file.rollback()
                raise

    def mark_corrupted(self, run_hash: str) -> None:
        """Record that the run's file could not be read."""
        entry = self.get(run_hash)
        if entry is not None and not entry.get("corrupted"):
            self.put(run_hash, {**entry, "corrupted": True})

    def delete(self, run_hash: str) -> None:
        """Remove one entry and commit."""
        with self._lock:
            try:
                self._file.delete(run_hash)
                self._file.commit()
            except Exception:
                self._file.rollback()
                raise

    def entries(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """Yield ``(run_hash, entry)`` for every run, oldest first."""
        if self._reader is None:
            self._reader = ReadOnlyKV(self.path, "runs")
        for key, value in self._reader.items():
            if key != _VERSION_KEY:
                yield key, value

    def close(self) -> None:
        """Close the connections."""
        self._file.close()
        if self._reader is not None:
            self._reader.close()


_catalogs: dict[Path, Catalog] = {}
_catalogs_lock = threading.Lock()


def catalog_for(path: Path) -> Catalog:
    """Return this process's shared catalog for the file at ``path``."""
    path = Path(path).resolve()
    with _catalogs_lock:
        catalog = _catalogs.get(path)
        if catalog is None:
            catalog = _catalogs[path] = Catalog(path)
        return catalog


def forget_catalogs() -> None:
    """Drop every shared catalog without closing it (in a forked child)."""
    _catalogs.clear()
