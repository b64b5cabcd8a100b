"""AimQL over object sequences: ``query_objects(repo, "image", q)`` and its result.

The sequence variable is the kind's plural, as in Aim: ``images``, ``texts``,
``distributions``, ``audios``, ``figures`` (``log_records`` too), with the fields of
``metric`` that an object sequence has: ``name``, ``context``, ``count``, ``first_step``,
``last_step``. Filtering reads the catalog only; the result opens the matching runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ..errors import QueryError, RunCorruptedError, RunNotFoundError
from .evaluate import RunView
from .limits import timed
from .results import _candidates, _entries, _test, _warn_damaged
from .validate import compile_query

if TYPE_CHECKING:
    from ..repo import Repo

VARIABLES = {"image": "images", "text": "texts", "distribution": "distributions",
             "audio": "audios", "figure": "figures", "log_record": "log_records"}
Match = tuple[str, dict[str, Any], list[dict[str, Any]]]


@timed
def query_objects(repo: Repo, kind: str, q: str, *, timeout: float | None = None
                  ) -> ObjectCollection:
    """The ``kind`` sequences (``"image"``, ...) matching the AimQL expression ``q``.

    With ``timeout`` (seconds), evaluating the query for longer raises QueryError.
    """
    variable = VARIABLES.get(kind)
    if variable is None:
        raise QueryError(f"unknown object kind {kind!r}; one of {', '.join(VARIABLES)}")
    compiled = compile_query(q or "", allow_metric=True, sequence=variable)
    run_test, sequence_test = compiled.run_test, compiled.metric_test
    rows, _ = _entries(repo, compiled.paths | {("sequences",)})
    matches: list[Match] = []
    for run_hash, entry, view in _candidates(repo, rows, compiled):
        if run_test is not None and not _test(run_test, view, None, run_hash):
            continue
        sequences = [s for s in entry.get("sequences") or ()
                     if isinstance(s, dict) and s.get("kind") == kind]
        if sequence_test is not None:
            sequences = [s for s in sequences if _test(sequence_test, view, s, run_hash)]
        if sequences:
            matches.append((run_hash, entry, sequences))
    return ObjectCollection(repo, kind, matches)


class ObjectCollection:
    """The result of an object query: iterate (or ``.iter()``) for sequences with ``.run``."""

    def __init__(self, repo: Repo, kind: str, matches: list[Match]) -> None:
        self.repo, self.kind = repo, kind
        self._matches = matches

    def __len__(self) -> int:
        return sum(len(sequences) for _, _, sequences in self._matches)

    def __repr__(self) -> str:
        return (f"<ObjectCollection of {len(self)} {VARIABLES[self.kind]} in "
                f"{len(self._matches)} runs>")

    def __iter__(self) -> Iterator[Any]:
        return self.iter()

    def iter(self) -> Iterator[Any]:
        """Yield each matching sequence (``Images``, ``Texts``, ...); elements load lazily."""
        for _run_hash, run, summaries in self._runs():
            for summary in summaries:
                seq = run._object_sequence(self.kind, summary["name"], summary.get("context"))
                if seq is not None:
                    yield seq

    def iter_runs(self) -> Iterator[RunObjects]:
        """Yield one group per matching run: ``.run``, ``.hash`` and its sequences."""
        for run_hash, run, summaries in self._runs():
            yield RunObjects(run_hash, run, self.kind, summaries)

    def summaries(self) -> Iterator[dict[str, Any]]:
        """One flat dict per match, from the catalog: run hash and name, sequence summary."""
        for run_hash, entry, sequences in self._matches:
            for summary in sequences:
                yield {"run_hash": run_hash, "run_name": entry["props"].get("name"),
                       "experiment": entry["props"].get("experiment"), **summary}

    def _runs(self) -> Iterator[tuple[str, Any, list[dict[str, Any]]]]:
        warned = False
        for run_hash, _entry, summaries in self._matches:
            try:
                run = self.repo.get_run(run_hash)
            except (RunCorruptedError, RunNotFoundError):
                warned = warned or _warn_damaged(run_hash)
                continue
            if run is None:  # deleted meanwhile
                continue
            yield run_hash, run, summaries


class RunObjects:
    """The matching sequences of one run."""

    def __init__(self, run_hash: str, run: Any, kind: str,
                 summaries: list[dict[str, Any]]) -> None:
        self.hash, self.run, self.kind, self.summaries = run_hash, run, kind, summaries

    def __iter__(self) -> Iterator[Any]:
        return self.iter()

    def iter(self) -> Iterator[Any]:
        """Yield the run's matching sequences."""
        for summary in self.summaries:
            seq = self.run._object_sequence(self.kind, summary["name"], summary.get("context"))
            if seq is not None:
                yield seq


__all__ = ["VARIABLES", "ObjectCollection", "RunObjects", "RunView", "query_objects"]
