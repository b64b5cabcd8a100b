"""``RemoteRepo``: ``Repo("aim://host:port")``, the runs of a tracking server, read-only.

Listings and queries run on the server (next to its catalog); only the matches travel, and a
metric's points load when first read.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from ..errors import RemoteError, RunLockedError, RunNotFoundError
from ..query.results import MetricCollection, QueryReportMode, RunCollection, RunMatch
from ..repo import Repo
from ..run import check_hash
from ..storage.chunks import Columns
from ..storage.writer import default_props
from .orphans import replay_in_background
from .transport import transport_for
from .urls import base_url, remote_url_of
from .writer import RemoteRunWriter

_recent: dict[tuple[str, str], RemoteRunWriter] = {}


class RemoteRepo(Repo):
    """The repo a tracking server owns, seen through its API (reads only)."""

    is_remote = True

    def __init__(self, url: str | None = None, *, read_only: bool | None = None,
                 init: bool = False, token: str | None = None) -> None:
        url = remote_url_of(url)
        if url is None:
            raise ValueError("RemoteRepo needs a server URL (aim://host:port) or AIM_CORE_REPO")
        self.url = base_url(url)
        self.path = self.url  # what adapters pass on and messages show
        self.root = f"aim-core-remote:{self.url}"  # this process's key of the repo's writers
        self.read_only = True  # runs are written through Run, never deleted through here
        self.transport = transport_for(self.url, token)
        self._catalog = None

    def __repr__(self) -> str:
        return f"<RemoteRepo {self.url}>"

    @property
    def catalog(self) -> Any:
        """Not available: the catalog lives on the server."""
        raise RemoteError(f"{self.url} is a server: its catalog is read through its API.")

    def run_path(self, run_hash: str) -> Any:
        """Not available: run files live on the server."""
        raise RemoteError(f"{self.url} is a server: its run files live on the server.")

    # -- listing -----------------------------------------------------------------------------
    def catalog_entries(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """Yield ``(hash, entry)`` for every run; each entry carries the run's ``status``."""
        runs = self.transport.get("/runs")["runs"]
        return ((run_hash, entry) for run_hash, entry in runs)

    def iter_runs(self) -> Iterator[Any]:
        """Yield every run, read-only."""
        from .run import RemoteRun

        for run_hash, entry in self.catalog_entries():
            yield RemoteRun.from_catalog(self, run_hash, entry)

    def run_exists(self, run_hash: str) -> bool:
        """True when the server holds the run."""
        try:
            self.transport.get(f"/runs/{check_hash(run_hash)}")
        except RunNotFoundError:
            return False
        return True

    def get_run(self, run_hash: str) -> Any:
        """Open one run read-only; None when the server has no such run."""
        from .run import RemoteRun

        try:
            return RemoteRun(check_hash(run_hash), repo=self, read_only=True)
        except (RunNotFoundError, ValueError):
            return None

    def status_of(self, run_hash: str, entry: dict[str, Any] | None) -> str:
        """The status the server computed (fetched when ``entry`` does not carry it)."""
        if entry and "status" in entry:
            return entry["status"]
        return self.fetch_entry(run_hash)["status"]

    # -- queries -----------------------------------------------------------------------------
    def query_runs(self, query: str = "", *, timeout: float | None = None,
                   offset: str | None = None, report_mode: Any = QueryReportMode.PROGRESS_BAR,
                   **_: Any) -> RunCollection:
        """Runs matching an AimQL expression, evaluated by the server."""
        found = self.transport.get("/query/runs", **_query(query, timeout, offset))["runs"]
        return RunCollection([RunMatch(self, run_hash, entry) for run_hash, entry in found],
                             QueryReportMode(report_mode))

    def query_metrics(self, query: str = "", *, timeout: float | None = None,
                      offset: str | None = None,
                      report_mode: Any = QueryReportMode.PROGRESS_BAR,
                      **_: Any) -> MetricCollection:
        """Metrics matching an AimQL expression, evaluated by the server."""
        found = self.transport.get("/query/metrics", **_query(query, timeout, offset))
        return MetricCollection(self, [(h, entry, sequences)
                                       for h, entry, sequences in found["matches"]],
                                QueryReportMode(report_mode))

    # -- what a server does not allow -----------------------------------------------------------
    def delete_run(self, run_hash: str) -> bool:
        """Not available through a server."""
        raise self._read_only("delete")

    def delete_runs(self, run_hashes: Iterable[str]) -> tuple[bool, list[str]]:
        """Not available through a server."""
        raise self._read_only("delete")

    def copy_runs(self, run_hashes: Iterable[str], dest: Any) -> tuple[bool, list[str]]:
        """Not available through a server."""
        raise self._read_only("copy")

    def move_runs(self, run_hashes: Iterable[str], dest: Any) -> tuple[bool, list[str]]:
        """Not available through a server."""
        raise self._read_only("move")

    def _read_only(self, verb: str) -> RemoteError:
        return RemoteError(f"Cannot {verb} runs through the server {self.url}: a remote repo "
                           "is read-only. Run `aim-core runs ...` on the server's machine.")

    # -- what RemoteRun uses ----------------------------------------------------------------
    def fetch_entry(self, run_hash: str) -> dict[str, Any]:
        """One run's catalog entry with its status."""
        return self.transport.get(f"/runs/{check_hash(run_hash)}")

    def fetch_series(self, run_hash: str, name: str, context: dict[str, Any]) -> Columns:
        """The stored points of one sequence."""
        return self.transport.series(run_hash, name, context)

    def open_writer(self, run_hash: str, resume: bool, experiment: str | None,
                    flush_interval: float) -> RemoteRunWriter:
        """A writer for a new run, or for resuming ``run_hash`` (its state asked of the server)."""
        replay_in_background(self.transport)
        key = (self.url, run_hash)
        recent = _recent.get(key)
        if resume and recent is not None and recent.closed and recent.sender is not None and (
                not recent.sender.exited):
            recent.revive()  # closed here moments ago and still sending: same stream
            return recent
        writer = RemoteRunWriter(self.transport, run_hash, flush_interval)
        if resume:
            state = self.transport.get(f"/runs/{run_hash}/state")
            holder = state.get("holder")
            if holder:
                raise RunLockedError(run_hash, holder.get("host", "?"), holder.get("pid", -1))
            writer.resume(state)
        else:
            writer.create(default_props(run_hash, experiment))
        for stale in [k for k, w in _recent.items() if w.sender is None or w.sender.exited]:
            del _recent[stale]
        _recent[key] = writer
        return writer


def _query(query: str, timeout: float | None, offset: str | None) -> dict[str, Any]:
    """The query string of a query request."""
    params: dict[str, Any] = {"q": query or ""}
    if timeout is not None:
        params["timeout"] = timeout
    if offset is not None:
        params["offset"] = offset
    return params
