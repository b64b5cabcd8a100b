"""Metric series for the charts: load, align on the chosen x-axis, sample, group.

A series is one (run, name, context). Its points are sampled to at most `points` points
(always keeping the first, last, lowest and highest), on the step axis or, for an x-axis
that is another metric, on the steps both metrics share. Samples are cached (see
`series_cache`) under the sequence's catalog summary, so a live run's new points show up.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from aim_core.errors import RunCorruptedError, RunNotFoundError
from aim_core.ui import payload
from aim_core.ui.series_cache import SeriesCache

if TYPE_CHECKING:
    from aim_core import Repo, Run

AXES = ("step", "epoch", "time", "wall")
"""x-axes besides `metric:<name>` (another metric's value at the same step)."""

POINT_BUDGET = 50_000
"""Points one answer holds at most: many series get fewer points each (at least 50)."""


class OutOfTime(Exception):
    """The request's time budget ran out while series were loading."""


@dataclass(frozen=True)
class Spec:
    """One series to load: the run, the sequence summary from the catalog."""

    run: str
    name: str
    context: dict[str, Any]
    summary: dict[str, Any]

    @property
    def key(self) -> str:
        """The sequence's column key (`name {"ctx":...}`)."""
        return payload.sequence_key(self.name, self.context)


@dataclass(frozen=True)
class Sampled:
    """Sampled columns of one series: steps, values, epochs, unix times, x values."""

    count: int
    steps: np.ndarray
    values: np.ndarray
    epochs: np.ndarray
    times: np.ndarray
    xs: np.ndarray | None = None


def points_for(requested: int, series: int) -> int:
    """Points per series: the requested number, fewer when many series share the budget."""
    return max(min(requested, 50), min(requested, POINT_BUDGET // max(series, 1)))


def sample_indices(values: np.ndarray, k: int) -> np.ndarray:
    """At most about `k` indices, evenly spread, always with first, last, min and max."""
    n = len(values)
    if n <= k:
        return np.arange(n)
    keep = np.linspace(0, n - 1, k - 2).round().astype(np.int64)
    finite = np.isfinite(values)
    if finite.any():
        idx = np.flatnonzero(finite)
        extremes = [idx[np.argmin(values[idx])], idx[np.argmax(values[idx])]]
        keep = np.concatenate([keep, extremes])
    return np.unique(keep)


Wanted = tuple[Spec, "Spec | None"]
"""A series to load and the metric to align it on (None: its own steps)."""

READERS = 4
"""Run files read at once: SQLite reads release the GIL, so a cold search of many runs
opens several files in parallel."""


class Loader:
    """Loads specs' samples through the cache, reading the missing ones run by run."""

    def __init__(self, repo: Repo, cache: SeriesCache, points: int, deadline: float) -> None:
        self.repo, self.cache, self.points, self.deadline = repo, cache, points, deadline

    def load(self, spec: Spec, x_metric: Spec | None = None) -> Sampled | None:
        """The sampled series (aligned on `x_metric`'s steps when given), None if gone."""
        return self.load_all([(spec, x_metric)])[0]

    def load_all(self, wanted: list[Wanted]) -> list[Sampled | None]:
        """`load` for many series: cached ones at once, the others by a few reader threads
        (each opens one run, reads its series and keeps only the samples)."""
        results: list[Sampled | None] = [None] * len(wanted)
        missing: dict[str, list[int]] = {}
        for i, (spec, x_metric) in enumerate(wanted):
            found = self.cache.get(*self._key(spec, x_metric))
            if found is not None:
                results[i] = found
            else:
                missing.setdefault(spec.run, []).append(i)
        jobs = [[(i, *wanted[i]) for i in indexes] for indexes in missing.values()]
        if len(jobs) == 1:
            done = [self._read_run(jobs[0])]
        elif jobs:
            with ThreadPoolExecutor(max_workers=min(READERS, len(jobs))) as pool:
                done = list(pool.map(self._read_run, jobs))
        else:
            done = []
        for found in done:
            for i, sampled in found:
                results[i] = sampled
        return results

    def _key(self, spec: Spec, x_metric: Spec | None) -> tuple[tuple, str]:
        key = (spec.run, spec.key, self.points, None if x_metric is None else x_metric.key)
        version = json.dumps([spec.summary, x_metric and x_metric.summary], sort_keys=True,
                             default=str)
        return key, version

    def _read_run(self, job: list[tuple[int, Spec, Spec | None]]) -> list[tuple[int, Sampled]]:
        """Read the series of one run (the run file is opened and used on this thread only)."""
        try:
            run = self.repo.get_run(job[0][1].run)
        except (RunNotFoundError, RunCorruptedError):
            return []  # damaged since the query
        if run is None:
            return []  # deleted since the query
        out = []
        for i, spec, x_metric in job:
            if time.monotonic() > self.deadline:
                raise OutOfTime
            sampled = self._read(run, spec, x_metric)
            if sampled is not None:
                self.cache.put(*self._key(spec, x_metric), sampled, len(sampled.steps))
                out.append((i, sampled))
        return out

    def _read(self, run: Run, spec: Spec, x_metric: Spec | None) -> Sampled | None:
        columns = columns_of(run, spec)
        if columns is None:
            return None
        steps, values, epochs, times = columns
        xs = None
        if x_metric is not None:
            other = columns_of(run, x_metric)
            if other is None:
                return None
            _, mine, theirs = np.intersect1d(steps, other[0], return_indices=True)
            steps, values, epochs, times = (c[mine] for c in columns)
            xs = other[1][theirs]
        keep = sample_indices(values, self.points)
        return Sampled(len(columns[0]), steps[keep], values[keep], epochs[keep], times[keep],
                       None if xs is None else xs[keep])


def columns_of(run: Run, spec: Spec) -> tuple[np.ndarray, ...] | None:
    """Every point of one of the run's metrics: steps, values, epochs, timestamps."""
    metric = run.get_metric(spec.name, spec.context)
    if metric is None:
        return None
    return metric.steps, metric.values, metric.epochs, metric.timestamps


def x_values(sampled: Sampled, axis: str, start: float | None) -> list[Any] | None:
    """The x list for `axis` (None for the step axis: the steps are sent anyway)."""
    if axis == "step":
        return None
    if axis == "epoch":
        return payload.float_list(sampled.epochs)
    if axis in ("time", "wall"):
        return payload.float_list(np.round(x_array(sampled, axis, start), 3))
    return payload.float_list(sampled.xs)


def x_array(sampled: Sampled, axis: str, start: float | None) -> np.ndarray:
    """The x values for `axis` as floats (for aggregation)."""
    if axis == "step":
        return sampled.steps.astype(np.float64)
    if axis == "epoch":
        return sampled.epochs
    if axis == "time":
        origin = start if start is not None else (sampled.times[0] if len(sampled.times) else 0)
        return sampled.times - origin
    if axis == "wall":
        return sampled.times
    return sampled.xs if sampled.xs is not None else np.empty(0)


def series_json(spec: Spec, sampled: Sampled, axis: str, start: float | None) -> dict[str, Any]:
    """One series as the charts receive it."""
    out = {
        "run": spec.run, "name": spec.name, "context": spec.context, "count": sampled.count,
        "steps": sampled.steps.tolist(), "values": payload.float_list(sampled.values),
    }
    if axis != "step":
        out["x"] = x_values(sampled, axis, start)
    return out


def find_x_metric(spec: Spec, sequences: list[dict[str, Any]], name: str) -> Spec | None:
    """The run's metric `name` to use as x for `spec`: same context, else the only one."""
    same = [s for s in sequences if s["name"] == name]
    for s in same:
        if s["context"] == spec.context:
            return Spec(spec.run, name, s["context"], s)
    if len(same) == 1:
        return Spec(spec.run, name, same[0]["context"], same[0])
    return None


def field_value(field: str, spec: Spec, run: dict[str, Any]) -> Any:
    """The value of a grouping field (`run.hash`, `run.<param>`, `metric.context.<k>`...)."""
    if field == "metric.name":
        return spec.name
    if field == "metric.context":
        return spec.context
    if field.startswith("metric.context."):
        return spec.context.get(field[len("metric.context."):])
    if field in ("run.hash", "run.name", "run.experiment"):
        return spec.run if field == "run.hash" else run.get(field[4:])
    return run["params"].get(field[4:])
