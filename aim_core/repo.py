"""``Repo``: the folder holding many runs; listing, status, deletion, copy and move."""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from .context import context_key
from .errors import (
    AimCoreError,
    RepoError,
    RepoNotFoundError,
    RunCorruptedError,
    RunLockedError,
    RunNotFoundError,
)
from .remote.urls import remote_url_of
from .run import Run, check_hash
from .storage import flusher as registry
from .storage.catalog import Catalog, catalog_for, damaged_error
from .storage.lock import is_locked
from .storage.maintenance import RunFiles
from .storage.run_file import file_looks_damaged

REPO_DIR = ".aim_core"
CatalogEntry = dict[str, Any]


class Repo:
    """A repo: ``<path>/.aim_core`` with the catalog ``index.sqlite`` and ``runs/``.

    ``read_only=True`` refuses deletions, moves and copies into this repo (runs are still
    edited through ``Run``); ``init=True`` creates the repo when it does not exist.
    """

    def __new__(cls, path: Any = None, *args: Any, **kwargs: Any) -> Repo:
        """A ``RemoteRepo`` for a server URL (``aim://host:port``, ``http(s)://...``), also when
        ``path`` is None and ``AIM_CORE_REPO`` holds one."""
        if cls is Repo and remote_url_of(path):
            from .remote.repo import RemoteRepo

            return super().__new__(RemoteRepo)
        return super().__new__(cls)

    def __init__(self, path: str | os.PathLike | None = None, *, read_only: bool | None = None,
                 init: bool = False) -> None:
        self.read_only = bool(read_only)
        base = Path(path).expanduser() if path is not None else default_repo_path()
        if base.name == REPO_DIR and base.is_dir():
            base = base.parent
        if base.exists() and not base.is_dir():
            raise RepoError(f"{base} is a file; a repo path must be a folder (or not exist yet).")
        self.path = base.resolve()
        self.root = self.path / REPO_DIR
        self.runs_dir = self.root / "runs"
        self._catalog: Catalog | None = None
        if not self.index_path.exists() and not _has_run_files(self.runs_dir):
            if not init:
                raise RepoNotFoundError(_not_a_repo(self.path))
            self.runs_dir.mkdir(parents=True, exist_ok=True)
            catalog_for(self.index_path).create()

    @classmethod
    def from_path(cls, path: str | os.PathLike, read_only: bool | None = None,
                  init: bool = False) -> Repo:
        """Open the repo at ``path`` (creating it when ``init``)."""
        return cls(path, read_only=read_only, init=init)

    @classmethod
    def exists(cls, path: str | os.PathLike) -> bool:
        """True when ``path`` holds an aim-core repo (``path/.aim_core``)."""
        base = Path(path).expanduser()
        if base.name != REPO_DIR:
            base = base / REPO_DIR
        return (base / "index.sqlite").is_file()

    @classmethod
    def default_repo_path(cls) -> str:
        """Where ``Run()`` and ``Repo.default_repo()`` look: ``$AIM_CORE_REPO``, the nearest
        folder above the working directory holding ``.aim_core``, else the working directory."""
        return str(default_repo_path())

    @classmethod
    def default_repo(cls, init: bool = True) -> Repo:
        """The repo from ``AIM_CORE_REPO`` or the nearest ``.aim_core`` above the cwd."""
        return cls(None, init=init)

    @classmethod
    def resolve(cls, repo: Any, init: bool) -> Repo:
        """Turn a ``Repo``, a path or None into a ``Repo``."""
        if isinstance(repo, Repo):
            return repo
        return cls(repo, init=init)

    def __repr__(self) -> str:
        return f"<Repo {self.path}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Repo) and other.path == self.path

    def __hash__(self) -> int:
        return hash(self.path)

    @property
    def index_path(self) -> Path:
        """The catalog file ``index.sqlite``."""
        return self.root / "index.sqlite"

    @property
    def catalog(self) -> Catalog:
        """This process's shared catalog of the repo; CatalogDamagedError (naming
        ``aim-core reindex``) when it is missing, or damaged (found when it is read).

        The catalog file is never opened outside SQLite: closing any other descriptor of it
        would drop this process's SQLite locks on it (POSIX locks belong to the process).
        """
        if self._catalog is None:
            if not self.index_path.exists():
                raise damaged_error(self.index_path)
            self._catalog = catalog_for(self.index_path)
        return self._catalog

    def run_path(self, run_hash: str) -> Path:
        """The file of one run."""
        return self.runs_dir / f"{check_hash(run_hash)}.sqlite"

    def not_found(self, run_hash: str) -> RunNotFoundError:
        """The error for an unknown hash."""
        return RunNotFoundError(f"No run {run_hash!r} in repo {self.path}; "
                                "list the runs with `aim-core runs ls`.")

    # -- listing ---------------------------------------------------------------------------
    def catalog_entries(self) -> Iterator[tuple[str, CatalogEntry]]:
        """Yield ``(hash, entry)`` for every run, from the catalog alone."""
        registry.flush_repo(self.root)
        return self.catalog.entries()

    def iter_runs(self) -> Iterator[Run]:
        """Yield every run (archived ones too), read-only."""
        for run_hash, entry in self.catalog_entries():
            yield Run.from_catalog(self, run_hash, entry)

    def list_runs(self) -> list[str]:
        """The hashes of every run."""
        return [run_hash for run_hash, _ in self.catalog_entries()]

    def list_all_runs(self) -> list[str]:
        """The hashes of every run (Aim's name for :meth:`list_runs`)."""
        return self.list_runs()

    def total_runs_count(self) -> int:
        """How many runs the repo holds."""
        return len(self.list_runs())

    def run_exists(self, run_hash: str) -> bool:
        """True when the repo holds the run."""
        return self.catalog.get(check_hash(run_hash)) is not None

    def get_run(self, run_hash: str) -> Run | None:
        """Open one run read-only; None when there is no such run, RunCorruptedError when
        its file cannot be read."""
        try:
            return Run(check_hash(run_hash), repo=self, read_only=True)
        except (RunNotFoundError, ValueError):
            return None

    def status_of(self, run_hash: str, entry: CatalogEntry | None) -> str:
        """One of running, finished, failed, crashed, corrupted."""
        if entry is None:
            entry = self.catalog.get(run_hash) or {}
        if entry.get("corrupted"):
            props = self._recheck_damaged(run_hash)
            if props is None:
                return "corrupted"
            entry = {"props": props}
        props = entry.get("props", {})
        if props.get("active"):
            if is_locked(self.runs_dir / f"{run_hash}.lock"):
                return "running"
            return "crashed"
        if file_looks_damaged(self.runs_dir / f"{run_hash}.sqlite"):
            return "corrupted"
        return props.get("status") or "finished"

    def _recheck_damaged(self, run_hash: str) -> dict[str, Any] | None:
        """Read a run marked damaged again; when it reads cleanly, its entry is written again
        from the file (best effort: skipped in a read-only repo). Its props, or None."""
        try:
            entry = self.files().read_entry(run_hash)
        except AimCoreError:
            return None
        with contextlib.suppress(AimCoreError, OSError, sqlite3.Error):
            self.catalog.put(run_hash, entry)
        return entry["props"]

    # -- queries (AimQL, see query.py) --------------------------------------------------------
    def query_runs(self, query: str = "", **kwargs: Any) -> Any:
        """Runs matching an AimQL expression."""
        from . import query as aimql

        return aimql.query_runs(self, query, **kwargs)

    def query_metrics(self, query: str = "", **kwargs: Any) -> Any:
        """Metrics matching an AimQL expression."""
        from . import query as aimql

        return aimql.query_metrics(self, query, **kwargs)

    def query_images(self, query: str = "", **kwargs: Any) -> Any:
        """Image sequences matching an AimQL expression over ``images`` and ``run``."""
        return self._query_objects("image", query, **kwargs)

    def query_texts(self, query: str = "", **kwargs: Any) -> Any:
        """Text sequences matching an AimQL expression over ``texts`` and ``run``."""
        return self._query_objects("text", query, **kwargs)

    def query_distributions(self, query: str = "", **kwargs: Any) -> Any:
        """Distribution sequences matching an expression over ``distributions`` and ``run``."""
        return self._query_objects("distribution", query, **kwargs)

    def query_audios(self, query: str = "", **kwargs: Any) -> Any:
        """Audio sequences matching an AimQL expression over ``audios`` and ``run``."""
        return self._query_objects("audio", query, **kwargs)

    def query_figure_objects(self, query: str = "", **kwargs: Any) -> Any:
        """Figure sequences matching an AimQL expression over ``figures`` and ``run``."""
        return self._query_objects("figure", query, **kwargs)

    def _query_objects(self, kind: str, query: str, **kwargs: Any) -> Any:
        from .query.objects import query_objects

        return query_objects(self, kind, query, **kwargs)

    # -- deleting, copying, moving -----------------------------------------------------------
    def delete_run(self, run_hash: str) -> bool:
        """Delete one run: True when deleted, False when there is no such run;
        RunLockedError while a process writes it."""
        self._check_writable()
        try:
            self._check_known(run_hash)
        except (RunNotFoundError, ValueError):
            return False
        files = self.files()
        with files.locked(run_hash):
            files.delete(run_hash)
        return True

    def delete_runs(self, run_hashes: Iterable[str]) -> tuple[bool, list[str]]:
        """Delete runs; return ``(all_ok, failed_hashes)`` (an unknown hash is a failure)."""
        self.repair()
        return _each(run_hashes, self._delete_known)

    def _delete_known(self, run_hash: str) -> bool:
        if not self.delete_run(run_hash):
            raise self.not_found(run_hash)
        return True

    def _check_writable(self) -> None:
        if self.read_only:
            raise RepoError(f"Repo {self.path} was opened with read_only=True; open it with "
                            "Repo(path) to delete, move or copy runs.")

    def copy_runs(self, run_hashes: Iterable[str], dest: Repo | str | os.PathLike
                  ) -> tuple[bool, list[str]]:
        """Copy finished runs into ``dest``; return ``(all_ok, failed_hashes)``."""
        target = self._target(dest)
        return _each(run_hashes, lambda h: self.copy_run(h, target))

    def move_runs(self, run_hashes: Iterable[str], dest: Repo | str | os.PathLike
                  ) -> tuple[bool, list[str]]:
        """Move runs into ``dest``; return ``(all_ok, failed_hashes)``."""
        target = self._target(dest)
        return _each(run_hashes, lambda h: self.move_run(h, target))

    def copy_run(self, run_hash: str, target: Repo) -> bool:
        """Copy one run into ``target`` (a repo); errors name their cause."""
        self._check_known(run_hash)
        files = self.files()
        with files.locked(run_hash):
            files.copy_to(run_hash, target.files())
        return True

    def move_run(self, run_hash: str, target: Repo) -> bool:
        """Move one run into ``target`` (a repo); errors name their cause."""
        self._check_writable()
        self._check_known(run_hash)
        files = self.files()
        with files.locked(run_hash):
            files.move_to(run_hash, target.files())
        return True

    def _target(self, dest: Repo | str | os.PathLike) -> Repo:
        target = Repo.resolve(dest, init=True)
        target._check_writable()
        if target == self:
            raise RepoError("copy/move needs a different destination repo")
        self.repair()
        target.repair()
        return target

    def _check_known(self, run_hash: str) -> None:
        check_hash(run_hash)
        if self.catalog.get(run_hash) is None and not self.run_path(run_hash).exists():
            raise self.not_found(run_hash)
        if registry.find_writer(self.root, run_hash) is not None:
            raise RunLockedError(run_hash, "this process", os.getpid())

    def files(self, catalog: Catalog | None = None) -> RunFiles:
        """The repo's run files, for maintenance operations."""
        return RunFiles(self.root, catalog or self.catalog)

    def repair(self) -> list[str]:
        """Finish or undo what interrupted deletes, copies, moves and closes left behind."""
        registry.flush_repo(self.root)
        return self.files().repair()

    def reindex(self) -> tuple[int, list[str]]:
        """Rebuild the catalog (damaged, truncated or deleted) from the run files, then repair
        leftovers of interrupted operations; return ``(runs, damaged run hashes)``."""
        registry.flush_repo(self.root)
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        count, damaged = self.files(catalog_for(self.index_path)).rebuild_catalog()
        self._catalog = None
        self.repair()
        return count, damaged

    # -- summaries ---------------------------------------------------------------------------
    def collect_params_info(self) -> dict[str, Any]:
        """The union of every run's params, as one nested dict."""
        union: dict[str, Any] = {}
        for _, entry in self.catalog_entries():
            _merge(union, entry.get("params", {}))
        return union

    def collect_sequence_info(self, sequence_types: Any = "metric") -> dict[str, Any]:
        """``{kind: {name: [context, ...]}}`` over every run, for the kinds asked for
        (``"metric"``, ``("metric", "image")``, Aim's ``"images"``, ...; ``None`` lists
        every kind found). Each kind is keyed as it was asked for."""
        from .objects.run_objects import object_kind

        wanted = None if sequence_types is None else (
            (sequence_types,) if isinstance(sequence_types, str) else tuple(sequence_types))
        keys = {object_kind(k): k for k in wanted or ()}
        found: dict[str, dict[str, dict[str, dict[str, Any]]]] = {k: {} for k in wanted or ()}
        for _, entry in self.catalog_entries():
            for seq in entry.get("sequences", []):
                kind = seq.get("kind", "metric")
                if wanted is not None and kind not in keys:
                    continue
                contexts = found.setdefault(keys.get(kind, kind), {}).setdefault(seq["name"], {})
                contexts.setdefault(context_key(seq["context"]), seq["context"])
        return {kind: {name: list(contexts.values()) for name, contexts in names.items()}
                for kind, names in found.items()}


def default_repo_path() -> Path:
    """``AIM_CORE_REPO``, else the nearest folder above the cwd holding ``.aim_core``."""
    env = os.environ.get("AIM_CORE_REPO")
    if env:
        return Path(env).expanduser()
    cwd = Path.cwd()
    for folder in (cwd, *cwd.parents):
        if (folder / REPO_DIR).is_dir():
            return folder
    return cwd


def _not_a_repo(path: Path) -> str:
    """Why ``path`` cannot be opened, naming the repo found above it if there is one."""
    message = f"No aim-core repo at {path}."
    for folder in path.parents:
        if (folder / REPO_DIR / "index.sqlite").is_file():
            return (f"{message} The nearest repo above it is {folder}: pass "
                    f"Repo({str(folder)!r}) (or leave the path out to use the nearest repo), "
                    f"or create one here with `aim-core init {path}` or init=True.")
    return f"{message} Create one with `aim-core init` there, or pass init=True."


def _has_run_files(runs_dir: Path) -> bool:
    try:
        return any(name.endswith(".sqlite") for name in os.listdir(runs_dir))
    except OSError:
        return False


def _each(run_hashes: Iterable[str], action: Any) -> tuple[bool, list[str]]:
    failed = []
    for run_hash in run_hashes:
        try:
            action(run_hash)
        except (AimCoreError, OSError, ValueError, sqlite3.Error, RunCorruptedError):
            failed.append(run_hash)
    return not failed, failed


def _merge(into: dict[str, Any], params: dict[str, Any]) -> None:
    for key, value in params.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        elif isinstance(value, dict):
            into[key] = {}
            _merge(into[key], value)
        else:
            into[key] = value
