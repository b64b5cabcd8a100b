"""``RemoteRun``: a ``Run`` whose repo is a tracking server (``Run(repo="aim://...")``)."""

from __future__ import annotations

import json
import uuid
import weakref
from typing import Any

from ..errors import RemoteError
from ..run import Run, check_experiment, check_hash, default_flush_interval
from ..storage import flusher as registry
from ..storage.chunks import Columns
from .repo import RemoteRepo


class RemoteRun(Run):
    """A run tracked through a server: the same API; writes travel as batches, reads as API
    calls. ``token`` (else ``AIM_CORE_TOKEN``) is sent with every request."""

    def __init__(self, run_hash: str | None = None, *, repo: Any = None,
                 experiment: str | None = None, read_only: bool = False,
                 force_resume: bool = False, flush_interval: float | None = None,
                 system_tracking_interval: float | None = 10, log_system_params: bool = False,
                 capture_terminal_logs: bool = True, token: str | None = None) -> None:
        check_experiment(experiment)
        self._system_options = {"system_tracking_interval": system_tracking_interval,
                                "log_system_params": bool(log_system_params),
                                "capture_terminal_logs": bool(capture_terminal_logs),
                                "token": token}
        self.repo = repo if isinstance(repo, RemoteRepo) else RemoteRepo(repo, token=token)
        self._writer, self._meta, self._file_ids, self._status = None, None, None, None
        if read_only:
            if not run_hash:
                raise self.repo.not_found("")
            self.hash = check_hash(run_hash)
            self._open_read_only()
            return
        self.hash = check_hash(run_hash) if run_hash else uuid.uuid4().hex[:24]
        interval = default_flush_interval() if flush_interval is None else flush_interval
        self._writer = registry.get_or_open(
            self.repo.root, self.hash,
            lambda: self._open_remote_writer(run_hash is not None, experiment, interval))
        self._finalizer = weakref.finalize(self, registry.release_dropped, self.repo.root,
                                           self._writer)
        if run_hash is not None and experiment is not None:
            self.experiment = experiment
        if log_system_params:
            from ..system.environment import system_params

            self["__system_params"] = system_params()

    def _open_remote_writer(self, resume: bool, experiment: str | None, interval: float) -> Any:
        """The run's writer with its system sampler and terminal capture (one per run)."""
        from ..system.tracking import start_tracking

        writer = self.repo.open_writer(self.hash, resume, experiment, interval)
        options = self._system_options
        writer.system = start_tracking(writer, options["system_tracking_interval"],
                                       options["capture_terminal_logs"])
        return writer

    @classmethod
    def from_catalog(cls, repo: Any, run_hash: str, entry: dict[str, Any]) -> RemoteRun:
        """A read-only run backed by a catalog entry the server sent."""
        run = super().from_catalog(repo, run_hash, entry)
        run._status = entry.get("status")
        return run

    def __repr__(self) -> str:
        mode = "writable" if self._writer else "read-only"
        return f"<RemoteRun {self.hash} {mode} on {self.repo.url}>"

    def _open_read_only(self) -> None:
        entry = self.repo.fetch_entry(self.hash)
        infos = {f"catalog/{i}": info for i, info in enumerate(entry["sequences"])}
        self._meta = (entry["props"], entry.get("params", {}), infos)
        self._status = entry.get("status")

    def _params(self) -> dict[str, Any]:
        if self._writer is None and getattr(self, "_file_params", False):
            self._open_read_only()  # the server sends every param, file-only ones too
            self._file_params = False
        return super()._params()

    def _read_stored(self, name: str, key: str) -> Columns:
        return self.repo.fetch_series(self.hash, name, json.loads(key))

    def _object_sequence(self, kind: str, name: str, context: Any) -> Any:
        raise self._objects_not_here(kind)

    def _read_stored_objects(self, name: str, key: str) -> Any:
        raise self._objects_not_here("object")

    def _objects_not_here(self, kind: str) -> RemoteError:
        return RemoteError(f"Reading {kind} sequences through the server {self.repo.url} is not "
                           "available: read them on the server's machine with Repo(<its repo "
                           "path>). Metrics, params and properties read here.")

    @property
    def status(self) -> str:
        """One of running, finished, failed, crashed, corrupted (as the server sees it)."""
        if self._writer is not None:
            return "running"
        if self._status is None:
            self._status = self.repo.status_of(self.hash, None)
        return self._status
