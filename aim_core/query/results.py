"""AimQL queries over a repo's catalog: ``query_runs`` and ``query_metrics`` and their results.

The query is compiled once (:mod:`aim_core.query.validate`) and evaluated per run on the
catalog entry alone, so no run file is opened while filtering. A metric query tests its
``run``-only terms once per run and the rest once per sequence summary; the result opens
only the matching runs, and their points load when first read.
"""

from __future__ import annotations

import enum
import sqlite3
import warnings
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from ..context import context_key
from ..errors import QueryError, RunCorruptedError, RunNotFoundError
from ..frames import METRIC_COLUMNS, RUN_PROPS, concat, metric_dataframe, pandas, run_row
from .catalog import load_entries, scan
from .evaluate import RunView
from .limits import timed
from .validate import CompiledQuery, compile_query

if TYPE_CHECKING:
    from ..repo import Repo
    from ..run import Run
    from ..sequence import Metric

__all__ = ["MetricCollection", "QueryReportMode", "RunCollection", "RunMatch", "RunMetrics",
           "compile_query", "query_metrics", "query_runs"]

Entry = dict[str, Any]


class QueryReportMode(enum.Enum):
    """Aim's ``report_mode``: no progress bar is ever drawn here; ``PROGRESS_TUPLE`` makes
    ``iter_runs()`` yield ``(collection, (n, total))`` pairs."""

    DISABLED = 0
    PROGRESS_BAR = 1
    PROGRESS_TUPLE = 2


@timed
def query_runs(repo: Repo, q: str, *, skip_corrupted: bool = True,
               fields: Iterable[tuple[str, ...]] | None = None,
               timeout: float | None = None, paginated: bool = False,
               offset: str | None = None,
               report_mode: QueryReportMode | int = QueryReportMode.PROGRESS_BAR
               ) -> RunCollection:
    """Return the runs whose catalog entry matches the AimQL expression ``q``.

    With ``timeout`` (seconds), evaluating the query for longer raises QueryError.

    Damaged runs are skipped with one warning unless ``skip_corrupted`` is False (listings
    show them as ``corrupted``). With ``fields`` (entry paths such as ``("props", "name")``)
    the matches hold only those paths instead of their full entries: faster for listings.
    ``offset`` (a run hash) starts after that run, as Aim does; ``paginated`` is accepted
    and changes nothing (as in Aim); ``report_mode`` see :class:`QueryReportMode`.
    """
    mode = QueryReportMode(report_mode)
    compiled = compile_query(q or "", allow_metric=False)
    wanted = None if fields is None else compiled.paths | set(fields)
    rows, full = _entries(repo, wanted if wanted is not None else compiled.paths)
    rows = _after(rows, offset)
    candidates = _candidates(repo, rows, compiled, skip_corrupted)
    hashes = [h for h, _entry, view in candidates if _test(compiled.test, view, None, h)]
    entries = full if full is not None else dict(rows)
    if fields is None and full is None:
        entries = load_entries(repo, hashes)
    matches = [RunMatch(repo, h, entries[h]) for h in hashes if h in entries]
    if skip_corrupted:
        matches = _drop_damaged(matches)
    return RunCollection(matches, mode)


@timed
def query_metrics(repo: Repo, q: str, *, timeout: float | None = None, paginated: bool = False,
                  offset: str | None = None,
                  report_mode: QueryReportMode | int = QueryReportMode.PROGRESS_BAR
                  ) -> MetricCollection:
    """Return the metrics (sequence, run) that match the AimQL expression ``q``.

    With ``timeout`` (seconds), evaluating the query for longer raises QueryError.
    ``paginated``, ``offset`` and ``report_mode`` work as for :func:`query_runs`.
    """
    mode = QueryReportMode(report_mode)
    compiled = compile_query(q or "", allow_metric=True)
    run_test, metric_test = compiled.run_test, compiled.metric_test
    rows, full = _entries(repo, compiled.run_paths if run_test else compiled.paths)
    rows = _after(rows, offset)
    hashes = [run_hash for run_hash, entry, view in _candidates(repo, rows, compiled)
              if run_test is None or _test(run_test, view, None, run_hash)]
    entries = full if full is not None else load_entries(repo, hashes)
    matches: list[tuple[str, Entry, list[dict[str, Any]]]] = []
    for run_hash in hashes:
        entry = entries.get(run_hash)
        if entry is None:
            continue  # deleted meanwhile
        view = RunView(run_hash, entry, repo.status_of)
        sequences = [s for s in entry.get("sequences") or []
                     if s.get("kind", "metric") == "metric"]  # objects: query_objects
        if metric_test is not None:
            sequences = [s for s in sequences if _test(metric_test, view, s, run_hash)]
        if sequences:
            matches.append((run_hash, entry, sequences))
    return MetricCollection(repo, matches, mode)


def _after(rows: list[tuple[str, Entry]], offset: str | None) -> list[tuple[str, Entry]]:
    """The rows after the run ``offset`` (all of them when it is None or unknown)."""
    if offset is None:
        return rows
    for i, (run_hash, _entry) in enumerate(rows):
        if run_hash == offset:
            return rows[i + 1:]
    return rows


def _with_progress(items: list[Any], mode: QueryReportMode) -> Iterator[Any]:
    """``items``, or ``(item, (n, total))`` pairs in ``PROGRESS_TUPLE`` mode."""
    if mode is not QueryReportMode.PROGRESS_TUPLE:
        return iter(items)
    total = len(items)
    return ((item, (n, total)) for n, item in enumerate(items, 1))


def _entries(repo: Repo, paths: Iterable[tuple[str, ...]]
             ) -> tuple[list[tuple[str, Entry]], dict[str, Entry] | None]:
    """Partial catalog entries holding ``paths`` (and full ones, when that path failed)."""
    try:
        return list(scan(repo, paths)), None
    except (sqlite3.Error, AttributeError, OSError):
        rows = list(repo.catalog_entries())  # no JSON functions, or an unusual repo
        return rows, dict(rows)


def _candidates(repo: Repo, rows: list[tuple[str, Entry]], compiled: CompiledQuery,
                skip_corrupted: bool = True) -> Iterator[tuple[str, Entry, RunView]]:
    """Catalog entries a query looks at: archived runs only if it names ``run.archived``."""
    show_archived = compiled.mentions_archived
    status_of = repo.status_of
    warned = False
    for run_hash, entry in rows:
        if skip_corrupted and entry.get("corrupted"):
            warned = warned or _warn_damaged(run_hash)
            continue
        if not show_archived and entry["props"].get("archived"):
            continue
        yield run_hash, entry, RunView(run_hash, entry, status_of)


def _drop_damaged(matches: list[RunMatch]) -> list[RunMatch]:
    """Skip matches whose run file is damaged (a header check of the matching runs only)."""
    kept, warned = [], False
    for match in matches:
        if match.status == "corrupted":
            warned = warned or _warn_damaged(match.hash)
        else:
            kept.append(match)
    return kept


def _warn_damaged(run_hash: str) -> bool:
    warnings.warn(f"skipping run {run_hash}: its file is damaged (run `aim-core runs ls` to "
                  "see every damaged run; further ones are skipped without a warning)",
                  stacklevel=4)
    return True


def _test(test: Any, view: RunView, metric: Any, run_hash: str) -> bool:
    try:
        return bool(test(view, metric))
    except QueryError:
        raise
    except Exception as exc:  # any other failure is the query's, reported with the run
        raise QueryError(f"the query failed on run {run_hash}: "
                         f"{type(exc).__name__}: {exc}") from exc


class LazyRun:
    """``.run``: the read-only :class:`Run` of ``self.repo`` and ``self.hash``, opened once."""

    repo: Repo
    hash: str
    _run: Run | None

    @property
    def run(self) -> Run:
        """The read-only :class:`Run` (opened on first access); RunNotFoundError when it was
        deleted meanwhile."""
        if self._run is None:
            run = self.repo.get_run(self.hash)
            if run is None:
                raise self.repo.not_found(self.hash)
            self._run = run
        return self._run


class RunMatch(LazyRun):
    """One run found by ``query_runs``: catalog figures at once, ``.run`` opened on demand."""

    def __init__(self, repo: Repo, run_hash: str, entry: Entry) -> None:
        self.repo, self.hash, self.entry = repo, run_hash, entry
        self._run: Run | None = None
        self._status: str | None = None

    def __repr__(self) -> str:
        return f"<RunMatch {self.hash} {self.name!r}>"

    def __iter__(self) -> Iterator[Metric]:
        return self.iter()

    def iter(self) -> Iterator[Metric]:
        """Yield the run's metrics (Aim's per-run collection)."""
        return iter(list(self.run.metrics()))

    def dataframe(self, only_last: bool = False, include_run: bool = True,
                  include_name: bool = True, include_context: bool = True, **_: Any) -> Any:
        """The points of the run's metrics, with Aim's columns (see ``Metric.dataframe``)."""
        return metrics_dataframe(self, only_last, include_run, include_name, include_context)

    @property
    def props(self) -> dict[str, Any]:
        """Properties from the catalog (name, experiment, tags, times, archived)."""
        return self.entry["props"]

    @property
    def params(self) -> dict[str, Any]:
        """Params from the catalog, as nested dicts."""
        return self.entry.get("params") or {}

    @property
    def sequences(self) -> list[dict[str, Any]]:
        """Sequence summaries: name, context, count, first/last step and value, min, max."""
        return self.entry.get("sequences") or []

    @property
    def name(self) -> str | None:
        """The run's name."""
        return self.props.get("name")

    @property
    def status(self) -> str:
        """running, finished, failed, crashed or corrupted."""
        if self._status is None:
            self._status = self.repo.status_of(self.hash, self.entry)
        return self._status

    def row(self, include_props: bool = True, include_params: bool = True) -> dict[str, Any]:
        """Properties and params as one flat dict (a dataframe row, Aim's column names)."""
        return run_row(self.hash, self.props, self.params, self.status, include_props,
                       include_params)


class RunCollection:
    """The result of ``query_runs``: iterate (or ``.iter_runs()``) for :class:`RunMatch`.

    As in Aim, ``.iter()`` yields the metrics of every matching run.
    """

    def __init__(self, matches: list[RunMatch],
                 report_mode: QueryReportMode = QueryReportMode.PROGRESS_BAR) -> None:
        self._matches = matches
        self.report_mode = report_mode

    def __iter__(self) -> Iterator[RunMatch]:
        return iter(self._matches)

    def __len__(self) -> int:
        return len(self._matches)

    def __repr__(self) -> str:
        return f"<RunCollection of {len(self._matches)} runs>"

    def iter_runs(self) -> Iterator[Any]:
        """Yield each match; ``match.run`` is the read-only Run (as in Aim)."""
        return _with_progress(self._matches, self.report_mode)

    def iter(self) -> Iterator[Metric]:
        """Yield the metrics of every matching run."""
        for match in self._matches:
            yield from match.iter()

    def hashes(self) -> list[str]:
        """The hashes of the matching runs, in catalog order."""
        return [m.hash for m in self._matches]

    def dataframe(self, only_last: bool = False, include_run: bool = True,
                  include_name: bool = True, include_context: bool = True,
                  include_props: bool = True, include_params: bool = True) -> Any:
        """One row per run, as Aim's: ``hash``, properties, params by dotted path."""
        pd = pandas("RunCollection.dataframe()")
        if not self._matches:
            return pd.DataFrame(columns=["hash", *RUN_PROPS] if include_props else ["hash"])
        rows = [m.row(include_props, include_params) for m in self._matches]
        return pd.DataFrame(rows, index=[0] * len(rows))  # Aim stacks one-row frames


class MetricCollection:
    """The result of ``query_metrics``: iterate (or ``.iter()``) for :class:`Metric`."""

    def __init__(self, repo: Repo, matches: list[tuple[str, Entry, list[dict[str, Any]]]],
                 report_mode: QueryReportMode = QueryReportMode.PROGRESS_BAR) -> None:
        self.repo = repo
        self._matches = matches
        self.report_mode = report_mode

    def __len__(self) -> int:
        return sum(len(sequences) for _, _, sequences in self._matches)

    def __repr__(self) -> str:
        return f"<MetricCollection of {len(self)} metrics in {len(self._matches)} runs>"

    def __iter__(self) -> Iterator[Metric]:
        return self.iter()

    def iter(self) -> Iterator[Metric]:
        """Yield each matching :class:`Metric` (with ``.run``); points load on first read."""
        warned = False
        for run_metrics in self._run_collections():
            try:
                _ = run_metrics.run
            except (RunCorruptedError, RunNotFoundError):
                warned = warned or _warn_damaged(run_metrics.hash)
                continue
            yield from run_metrics

    def iter_runs(self) -> Iterator[Any]:
        """Yield one :class:`RunMetrics` per matching run (Aim's per-run collections)."""
        return _with_progress(self._run_collections(), self.report_mode)

    def _run_collections(self) -> list[RunMetrics]:
        return [RunMetrics(self.repo, run_hash, sequences)
                for run_hash, _entry, sequences in self._matches]

    def summaries(self) -> Iterator[dict[str, Any]]:
        """One flat dict per match, from the catalog: run hash and name, metric summary."""
        for run_hash, entry, sequences in self._matches:
            for summary in sequences:
                yield {"run_hash": run_hash, "run_name": entry["props"].get("name"),
                       "experiment": entry["props"].get("experiment"), **summary}

    def dataframe(self, only_last: bool = False, include_run: bool = True,
                  include_name: bool = True, include_context: bool = True, **_: Any) -> Any:
        """Every matching metric's points (or last points), stacked, with Aim's columns:
        ``idx, step, value, epoch, time, run.hash, run.<param>, metric.name,
        metric.context.<key>`` (see ``Metric.dataframe``)."""
        return metrics_dataframe(self, only_last, include_run, include_name, include_context)


class RunMetrics(LazyRun):
    """The metrics of one run matched by ``query_metrics``: Aim's per-run collection.

    ``.run`` is the read-only Run (opened on first use); iterate (or ``.iter()``) for its
    matching metrics.
    """

    def __init__(self, repo: Repo, run_hash: str, sequences: list[dict[str, Any]]) -> None:
        self.repo, self.hash = repo, run_hash
        self.sequences = sequences  # the catalog summaries of the matching sequences
        self._run: Run | None = None

    def __repr__(self) -> str:
        return f"<RunMetrics of run {self.hash}: {len(self.sequences)} metrics>"

    def __len__(self) -> int:
        return len(self.sequences)

    def __iter__(self) -> Iterator[Metric]:
        return self.iter()

    def iter(self) -> Iterator[Metric]:
        """Yield each matching metric of the run; points load on first read."""
        run = self.run
        for summary in self.sequences:
            metric = run.get_metric(summary["name"], summary.get("context") or {})
            if metric is not None:
                yield metric

    def dataframe(self, only_last: bool = False, include_run: bool = True,
                  include_name: bool = True, include_context: bool = True, **_: Any) -> Any:
        """The run's matching points with Aim's columns (see ``Metric.dataframe``)."""
        return metrics_dataframe(self, only_last, include_run, include_name, include_context)


def metrics_dataframe(metrics: Iterable[Metric], only_last: bool, include_run: bool,
                      include_name: bool, include_context: bool) -> Any:
    """Metric frames stacked as Aim's collections stack them."""
    pd = pandas("dataframe()")
    frames = [metric_dataframe(m, include_name, include_context, include_run, only_last)
              for m in metrics]
    return concat(pd, frames, METRIC_COLUMNS)


POINT_COLUMNS = ("run_hash", "metric", "context", "step", "value", "epoch", "timestamp")


def metric_frame(pd: Any, metric: Metric) -> Any:
    """One metric's points as a DataFrame with :data:`POINT_COLUMNS`."""
    steps = metric.steps
    return pd.DataFrame({
        "run_hash": metric.run.hash, "metric": metric.name,
        "context": context_text(metric.context), "step": steps, "value": metric.values,
        "epoch": metric.epochs, "timestamp": metric.timestamps,
    }, index=range(len(steps)))


def context_text(context: Any) -> str:
    """A context as compact JSON with sorted keys (how tables and exports show it)."""
    return context_key(context or {})
