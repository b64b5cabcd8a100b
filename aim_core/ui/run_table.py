"""The runs table: every run's row prepared once per catalog state, sorted and paged.

A listing of 10,000 runs reads the catalog in one query (`query_runs` with `fields`),
flattens params and collects the column choices once, and keeps that prepared table until
the catalog file changes (or a few seconds pass), so paging and sorting cost only the sort.
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aim_core.ui import payload

if TYPE_CHECKING:
    from aim_core import Repo

FIELDS = (("props",), ("params",), ("sequences",), ("corrupted",))
"""The catalog entry parts a listing needs."""

FIXED = ("hash", "name", "experiment", "status", "creation_time", "duration")
"""Columns every row has, in table order (also valid `sort` keys)."""

HIDDEN_PARAMS = ("__system_params",)
"""Params left out of table columns: packages and environment would be hundreds of columns
(the run page shows them)."""

SYSTEM_PREFIX = "__system__"

CACHED_TABLES = 4
FRESH_SECONDS = 5.0
"""A prepared table is reused while the catalog file is unchanged, at most this long."""


@dataclass
class Row:
    """One run as the table needs it: catalog props, flat params, last metric values."""

    hash: str
    props: dict[str, Any]
    flat: dict[str, Any]
    lasts: dict[str, Any]
    status: str
    metrics: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)

    def value(self, column: str, now: float) -> Any:
        """The value shown (and sorted on) in `column` (`p:` param, `m:` metric, or fixed)."""
        if column.startswith("p:"):
            return self.flat.get(column[2:])
        if column.startswith("m:"):
            return self.lasts.get(column[2:])
        if column == "hash":
            return self.hash
        if column == "status":
            return self.status
        if column == "duration":
            return payload.duration(self.props, self.status, now)
        return self.props.get(column)


@dataclass
class Table:
    """The rows matching one query and the columns they offer."""

    rows: list[Row]
    params: list[dict[str, Any]]
    metrics: list[dict[str, Any]]
    made: float = field(default_factory=time.monotonic)


class RunTables:
    """Prepared tables by query, reused while the catalog is unchanged."""

    def __init__(self, repo: Repo) -> None:
        self.repo = repo
        self._lock = threading.Lock()
        self._tables: OrderedDict[tuple, Table] = OrderedDict()
        self._building: dict[tuple, threading.Event] = {}

    def table(self, q: str, query: Callable[..., Any]) -> Table:
        """The table of runs matching `q`; `query(q, fields=...)` runs the AimQL query.

        Requests arriving while the same table is being built wait for it (the Runs and
        Params pages opened together, or the warm-up at start) instead of building it twice.
        """
        key = (q, self.stamp())
        while True:
            with self._lock:
                table = self._tables.get(key)
                if table is not None and time.monotonic() - table.made < FRESH_SECONDS:
                    self._tables.move_to_end(key)
                    return table
                building = self._building.get(key)
                if building is None:
                    building = self._building[key] = threading.Event()
                    break
            building.wait(60)
        try:
            table = build_table(self.repo, query(q, skip_corrupted=False, fields=FIELDS))
            with self._lock:
                self._tables[key] = table
                while len(self._tables) > CACHED_TABLES:
                    self._tables.popitem(last=False)
            return table
        finally:
            with self._lock:
                del self._building[key]
            building.set()

    def stamp(self) -> tuple:
        """Size and modification time of the catalog and its WAL: changes with every write."""
        base = self.repo.root / "index.sqlite"
        out = []
        for path in (base, base.with_name("index.sqlite-wal")):
            try:
                st = os.stat(path)
                out.append((st.st_mtime_ns, st.st_size))
            except OSError:
                out.append(None)
        return tuple(out)


def build_table(repo: Repo, matches: Iterable[Any]) -> Table:
    """Prepare the rows of `matches` (query results holding `.hash` and `.entry`)."""
    rows = [prepare_row(m.hash, m.entry) for m in matches]
    metrics: dict[str, dict[str, Any]] = {}
    for row in rows:
        for key, (name, context) in row.metrics.items():
            if key not in metrics:
                metrics[key] = {"key": key, "name": name, "context": context}
    ordered = sorted(metrics.values(), key=lambda c: (is_system(c["name"]), c["key"]))
    return Table(rows, param_columns(rows), ordered)


def is_system(name: str) -> bool:
    """True for the sampler's metrics (`__system__cpu`, ...), listed after the run's own."""
    return name.startswith(SYSTEM_PREFIX)


def prepare_row(run_hash: str, entry: Any) -> Row:
    """One row from a catalog entry, tolerating damaged or crafted entries."""
    entry = entry if isinstance(entry, dict) else {}
    props = entry.get("props") if isinstance(entry.get("props"), dict) else {}
    params = entry.get("params") if isinstance(entry.get("params"), dict) else {}
    if any(key in params for key in HIDDEN_PARAMS):
        params = {k: v for k, v in params.items() if k not in HIDDEN_PARAMS}
    lasts: dict[str, Any] = {}
    metrics: dict[str, tuple[str, dict[str, Any]]] = {}
    sequences = entry.get("sequences")
    for seq in sequences if isinstance(sequences, list) else ():
        if not isinstance(seq, dict) or seq.get("kind", "metric") != "metric" or "name" not in seq:
            continue
        name, context = str(seq["name"]), payload.context_of(seq.get("context"))
        key = payload.sequence_key(name, context)
        lasts[key] = payload.clean(seq.get("last"))
        metrics[key] = (name, context)
    return Row(run_hash, props, payload.flatten(params), lasts, catalog_status(entry, props),
               metrics)


def metric_summaries(entry: dict[str, Any]) -> list[dict[str, Any]]:
    """The entry's metric sequence summaries as JSON (object sequences left out)."""
    sequences = entry.get("sequences")
    if not isinstance(sequences, list):
        return []
    return [payload.summary(s) for s in sequences
            if isinstance(s, dict) and s.get("kind", "metric") == "metric" and "name" in s]


def catalog_status(entry: dict[str, Any], props: dict[str, Any]) -> str:
    """The status the catalog records (a live check refines it for the rows shown)."""
    if entry.get("corrupted"):
        return "corrupted"
    if props.get("active"):
        return "running"
    status = props.get("status")
    return status if isinstance(status, str) else "finished"


def param_columns(rows: list[Row]) -> list[dict[str, Any]]:
    """Param keys seen across rows, flagged `varying` when a value differs or is missing."""
    first: dict[str, Any] = {}
    counts: dict[str, int] = {}
    varying: set[str] = set()
    for row in rows:
        for key, value in row.flat.items():
            if key not in first:
                first[key], counts[key] = value, 1
                continue
            counts[key] += 1
            if key not in varying:
                seen = first[key]
                if type(seen) is not type(value) or seen != value:
                    varying.add(key)
    total = len(rows)
    return [{"key": k, "varying": k in varying or counts[k] < total} for k in sorted(first)]


def sort_rows(rows: list[Row], column: str, descending: bool) -> list[Row]:
    """Rows ordered by `column`; runs missing the value come last in both directions."""
    now = time.time()
    keyed = [(row.value(column, now), row) for row in rows]
    present = [(sort_key(v), r) for v, r in keyed if v is not None]
    missing = [r for v, r in keyed if v is None]
    present.sort(key=lambda pair: pair[0], reverse=descending)
    return [r for _, r in present] + missing


def sort_key(value: Any) -> tuple:
    """Numbers before text before anything else; each compared within its kind."""
    if isinstance(value, bool):
        return (1, int(value), "")
    if isinstance(value, (int, float)):
        return (0, value, "")
    if isinstance(value, str):
        return (2, 0, value.casefold())
    return (3, 0, payload.compact_json(value))
