"""``RemoteRun``: a ``Run`` whose repo is a tracking server (``Run(repo="aim://...")``)."""

from __future__ import annotations

import json
from typing import Any

from ..errors import RemoteError
from ..run import Run
from ..storage.chunks import Columns
from .repo import RemoteRepo


class RemoteRun(Run):
    """A run tracked through a server: the same API; writes travel as batches, reads as API
    calls. ``token`` (else ``AIM_CORE_TOKEN``) is sent with every request."""

    _status: str | None = None

    def _resolve_repo(self, repo: Any, token: str | None, read_only: bool) -> RemoteRepo:
        """The server's repo: ``repo`` itself, or one opened from its URL."""
        return repo if isinstance(repo, RemoteRepo) else RemoteRepo(repo, token=token)

    def _missing_hash(self) -> str:
        raise self.repo.not_found("")

    def _new_writer(self, resume: bool, experiment: str | None, interval: float) -> Any:
        """The client-side writer that sends this run's batches to the server."""
        return self.repo.open_writer(self.hash, resume, experiment, interval)

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
