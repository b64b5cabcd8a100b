"""Repo maintenance on run files: crash-safe delete, copy and move, repair, catalog rebuild.

Every step that a ``kill -9`` could interrupt leaves a name that says what was going on, and
:meth:`RunFiles.repair` (run before every delete, copy, move and rebuild) finishes or undoes it:

- delete: ``<hash>.sqlite`` is renamed to ``<hash>.deleting`` before its catalog entry goes,
  so a file left behind is known to be garbage and removed;
- copy: the copy is written as ``<hash>.copying`` (removed if found), synced, renamed to
  ``<hash>.sqlite``, then given its catalog entry; a run file without an entry (and without a
  writer) is *adopted*: its entry is rebuilt from the file;
- move: ``<hash>.moving`` in the source names the destination; once the destination holds
  the run, the source copy is deleted, else the marker is dropped and the source stays;
- close: a ``<hash>.closing`` copy is finished or removed (``run_file.repair_leftovers``);
- import: a ``<hash>.importing`` file is removed (``importer.write_run``);
- a lock file whose holder died is removed.

A run with a live writer is never touched: every operation takes the run's lock.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import AimCoreError, CatalogDamagedError, RunCorruptedError
from .catalog import TABLE, VERSION_KEY, Catalog, catalog_params, drop_catalog, entry_text
from .failures import is_damage
from .kvfile import RawJSON, connect, table_sql
from .lock import RunLock, is_locked
from .run_file import fdatasync_path, repair_leftovers, summary_of
from .run_reader import RunFile, drop_reader

MARKERS = (".deleting", ".copying", ".moving", ".closing", ".importing")


def entry_of(props: dict[str, Any], params: dict[str, Any], infos: dict[str, Any]
             ) -> dict[str, Any]:
    """The catalog entry of a run, from what its file holds."""
    sequences = [summary_of(info) for info in infos.values() if info.get("count")]
    kept, omitted = catalog_params(params)
    entry = {"props": props, "params": kept, "sequences": sequences}
    if omitted:
        entry["file_params"] = omitted
    return entry


class RunFiles:
    """The ``runs/`` folder of one repo and its catalog."""

    def __init__(self, root: Path, catalog: Catalog) -> None:
        self.root = Path(root)
        self.runs_dir = self.root / "runs"
        self.catalog = catalog

    def path(self, run_hash: str, suffix: str = ".sqlite") -> Path:
        """A file of one run."""
        return self.runs_dir / f"{run_hash}{suffix}"

    @contextlib.contextmanager
    def locked(self, run_hash: str) -> Iterator[None]:
        """Hold the run's lock (RunLockedError while a writer has it)."""
        lock = RunLock(self.path(run_hash, ".lock"), run_hash)
        lock.acquire()
        try:
            yield
        finally:
            lock.release()

    def read_entry(self, run_hash: str) -> dict[str, Any]:
        """The catalog entry rebuilt from the run's file."""
        run_file = RunFile(self.path(run_hash), run_hash)
        try:
            return entry_of(*run_file.load_meta())
        finally:
            run_file.close()

    # -- delete, copy, move ---------------------------------------------------------------
    def delete(self, run_hash: str) -> None:
        """Delete one run (the caller holds its lock)."""
        drop_reader(self.path(run_hash))
        with contextlib.suppress(FileNotFoundError):
            os.rename(self.path(run_hash), self.path(run_hash, ".deleting"))
        self.catalog.delete(run_hash)
        self._remove_files(run_hash)
        from .blobs import BlobStore  # runs without objects never load it

        BlobStore.of_repo(self.root).remove_run(run_hash)  # a blob goes with its last run

    def _remove_files(self, run_hash: str) -> None:
        for suffix in (".deleting", ".sqlite", ".sqlite-wal", ".sqlite-shm", ".closing",
                       ".closing-journal", ".moving"):
            self.path(run_hash, suffix).unlink(missing_ok=True)

    def copy_to(self, run_hash: str, target: RunFiles) -> None:
        """Copy one run into ``target`` (the caller holds the run's lock)."""
        with target.locked(run_hash):
            final = target.path(run_hash)
            if final.exists():
                raise AimCoreError(f"Run {run_hash} already exists in {target.root.parent}; "
                                   "delete it there first or copy another run.")
            tmp = target.path(run_hash, ".copying")
            journal = target.path(run_hash, ".copying-journal")
            tmp.unlink(missing_ok=True)
            journal.unlink(missing_ok=True)
            try:
                self._write_copy(run_hash, tmp)
                from .blobs import BlobStore

                BlobStore.of_repo(self.root).copy_run(run_hash, BlobStore.of_repo(target.root))
                os.rename(tmp, final)
            except BaseException:
                tmp.unlink(missing_ok=True)
                journal.unlink(missing_ok=True)
                raise
            target.catalog.put(run_hash, target.read_entry(run_hash))

    def _write_copy(self, run_hash: str, tmp: Path) -> None:
        uri = self.path(run_hash).resolve().as_uri()
        source = sqlite3.connect(f"{uri}?mode=ro", uri=True, isolation_level=None)
        try:
            source.execute("PRAGMA synchronous=OFF")  # one sync of the finished copy below
            source.execute("VACUUM INTO ?", (str(tmp),))
        finally:
            source.close()
        fdatasync_path(tmp)

    def move_to(self, run_hash: str, target: RunFiles) -> None:
        """Move one run into ``target`` (the caller holds the run's lock)."""
        marker = self.path(run_hash, ".moving")
        marker.write_text(json.dumps({"dest": str(target.root)}))
        if not self._copied_before(run_hash, target):
            self.copy_to(run_hash, target)
        self.delete(run_hash)

    def _copied_before(self, run_hash: str, target: RunFiles) -> bool:
        """True when an interrupted move already put this very run into ``target``."""
        if not target.path(run_hash).exists():
            return False
        try:
            mine, theirs = self.read_entry(run_hash), target.read_entry(run_hash)
        except AimCoreError:
            return False
        if mine != theirs:
            raise AimCoreError(f"Run {run_hash} already exists in {target.root.parent} and "
                               "differs from this one; delete one of them first.")
        target.catalog.put(run_hash, theirs)
        return True

    # -- repair --------------------------------------------------------------------------
    def repair(self) -> list[str]:
        """Finish or undo what interrupted operations left; return what was done."""
        done: list[str] = []
        if not self.runs_dir.is_dir():
            return done
        names = os.listdir(self.runs_dir)
        for name in names:
            run_hash, dot, suffix = name.removesuffix("-journal").rpartition(".")
            if not dot or "." + suffix not in MARKERS or is_locked(self.path(run_hash, ".lock")):
                continue
            with contextlib.suppress(AimCoreError, OSError, sqlite3.Error):
                message = self._repair_one(run_hash, "." + suffix)
                if message and message not in done:
                    done.append(message)
        done += self._adopt_orphans()
        self._remove_stale_locks(names)
        return done

    def _remove_stale_locks(self, names: list[str]) -> None:
        """Lock files left by killed processes: taken and released (which unlinks them)."""
        for name in names:
            if name.endswith(".lock"):
                with contextlib.suppress(AimCoreError, OSError), self.locked(name[:-5]):
                    pass

    def _repair_one(self, run_hash: str, suffix: str) -> str | None:
        with self.locked(run_hash):
            if suffix == ".deleting":
                self.delete(run_hash)
                return f"finished deleting run {run_hash}"
            if suffix in (".copying", ".importing"):
                self.path(run_hash, suffix).unlink(missing_ok=True)
                self.path(run_hash, f"{suffix}-journal").unlink(missing_ok=True)
                return f"removed an unfinished copy or import of run {run_hash}"
            if suffix == ".closing":
                repair_leftovers(self.path(run_hash))
                return f"finished closing run {run_hash}"
            return self._repair_move(run_hash)

    def _repair_move(self, run_hash: str) -> str:
        marker = self.path(run_hash, ".moving")
        try:
            dest = Path(json.loads(marker.read_text())["dest"])
        except (ValueError, KeyError, TypeError):  # killed while writing it: nothing was copied
            marker.unlink(missing_ok=True)
            return f"undid an unfinished move of run {run_hash}"
        target = RunFiles(dest, Catalog(dest / "index.sqlite"))
        target.path(run_hash, ".copying").unlink(missing_ok=True)
        if target.path(run_hash).exists() and self.path(run_hash).exists():
            with contextlib.suppress(AimCoreError):
                if self._copied_before(run_hash, target):
                    self.delete(run_hash)
                    return f"finished moving run {run_hash} to {dest.parent}"
        marker.unlink(missing_ok=True)
        return f"undid an unfinished move of run {run_hash}"

    def _adopt_orphans(self) -> list[str]:
        """Give run files that have no catalog entry (an interrupted copy) their entry."""
        on_disk = {p.stem for p in self.runs_dir.glob("*.sqlite")}
        if not on_disk:
            return []
        known = {key for key, in self.catalog.read(f'SELECT key FROM "{TABLE}"')}
        done = []
        for run_hash in sorted(on_disk - known):
            if is_locked(self.path(run_hash, ".lock")):
                continue  # a writer is creating it right now
            with contextlib.suppress(AimCoreError, OSError, sqlite3.Error):
                self.catalog.put(run_hash, self.read_entry(run_hash))
                done.append(f"adopted run {run_hash} (its file had no catalog entry)")
        return done

    # -- rebuilding the catalog ------------------------------------------------------------
    def rebuild_catalog(self) -> tuple[int, list[str]]:
        """Write the catalog again from the run files; return ``(runs, damaged hashes)``."""
        for name in os.listdir(self.runs_dir) if self.runs_dir.is_dir() else []:
            run_hash, _, suffix = name.rpartition(".")
            if suffix == "closing" and not is_locked(self.path(run_hash, ".lock")):
                with contextlib.suppress(AimCoreError, OSError):
                    self._repair_one(run_hash, ".closing")
        found: list[tuple[float, str, dict[str, Any]]] = []
        damaged: list[str] = []
        for path in self.runs_dir.glob("*.sqlite"):
            entry = self._entry_for_rebuild(path.stem, damaged)
            found.append((_number(entry["props"].get("creation_time")), path.stem, entry))
        found.sort(key=lambda item: item[:2])  # the catalog lists runs in creation order
        entries = {run_hash: entry_text(entry) for _, run_hash, entry in found}
        self._write_catalog(entries)
        self.rebuild_blobs()
        return len(entries), damaged

    def rebuild_blobs(self) -> dict[str, list]:
        """Restore the blob links the run files reference; drop blobs no run uses."""
        from .blobs import BlobStore

        store = BlobStore.of_repo(self.root)
        if not store.root.is_dir():
            return {}
        run_blobs: dict[str, set[str]] = {}
        for path in self.runs_dir.glob("*.sqlite"):
            try:
                run_blobs[path.stem] = self._blob_refs(path.stem)
            except (AimCoreError, OSError, sqlite3.Error, ValueError):
                run_blobs[path.stem] = store.run_blobs(path.stem)  # unreadable: keep its links
        return store.rebuild(run_blobs)

    def _blob_refs(self, run_hash: str) -> set[str]:
        from .object_chunks import blob_shas, referenced_payloads
        from .object_reads import read_object_columns

        run_file = RunFile(self.path(run_hash), run_hash)
        try:
            infos = run_file.load_meta()[2]
            wheres: list[str] = []
            for seq_id, info in infos.items():
                if info.get("kind", "metric") != "metric":
                    wheres += referenced_payloads(read_object_columns(run_file, seq_id))
            return blob_shas(wheres)
        finally:
            run_file.close()

    def _entry_for_rebuild(self, run_hash: str, damaged: list[str]) -> dict[str, Any]:
        try:
            return self.read_entry(run_hash)
        except RunCorruptedError:
            damaged.append(run_hash)
            mtime = self.path(run_hash).stat().st_mtime
            props = {"name": f"Run: {run_hash}", "description": "", "experiment": None,
                     "tags": [], "creation_time": mtime, "end_time": None, "active": False,
                     "archived": False, "status": "corrupted"}
            return {"props": props, "params": {}, "sequences": [], "corrupted": True}

    def _write_catalog(self, entries: dict[str, RawJSON]) -> None:
        try:
            if self.catalog.path.exists():
                self.catalog.replace_all(entries)
                return
        except CatalogDamagedError:
            pass
        except sqlite3.Error as exc:
            if not is_damage(exc):
                raise
        self._replace_catalog_file(entries)

    def _replace_catalog_file(self, entries: dict[str, RawJSON]) -> None:
        path = self.catalog.path
        drop_catalog(path)
        tmp = path.with_name("index.sqlite.rebuild")
        tmp.unlink(missing_ok=True)
        conn = connect(tmp)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(table_sql(TABLE))
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(f'INSERT INTO "{TABLE}" VALUES (?, ?)', (VERSION_KEY, "1"))
            conn.executemany(f'INSERT OR REPLACE INTO "{TABLE}" VALUES (?, ?)',
                             [(k, str(v)) for k, v in entries.items()])
            conn.execute("COMMIT")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.close()
        for side in ("-wal", "-shm"):
            Path(f"{path}{side}").unlink(missing_ok=True)
        os.rename(tmp, path)


def _number(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) else 0.0
