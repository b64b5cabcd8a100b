"""Reading sequences: ``Metric`` gives a run's points as numpy arrays, sorted by step."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from .arrays import SequenceArray
from .context import Context
from .storage.chunks import Columns

if TYPE_CHECKING:
    from .run import Run

Loader = Callable[[], Columns]


class Metric:
    """One scalar sequence of a run: ``(name, context)`` and its points."""

    def __init__(self, run: Run, name: str, context: dict[str, Any],
                 summary: dict[str, Any] | None, loader: Loader) -> None:
        self.run = run
        self.name = name
        self.context = Context(context)
        self._summary = summary  # None for a live run: figures come from the points
        self._loader = loader
        self._columns: Columns | None = None

    def __repr__(self) -> str:
        return f"<Metric {self.name} {self.context.to_dict()} of run {self.run.hash}>"

    def __len__(self) -> int:
        """Number of points (as Aim's ``len(metric)``)."""
        return self.count

    def _load(self) -> Columns:
        if self._columns is None:
            steps, values, epochs, times = self._loader()
            self._columns = (steps, SequenceArray(values, steps), SequenceArray(epochs, steps),
                             SequenceArray(times, steps))
        return self._columns

    def data_columns(self) -> Columns:
        """``(steps, values, epochs, timestamps)`` as numpy arrays sorted by step."""
        return self._load()

    @property
    def steps(self) -> np.ndarray:
        """Steps (int64), ascending."""
        return self._load()[0]

    @property
    def values(self) -> SequenceArray:
        """Values (float64) in step order; also Aim's ``values.sparse_numpy()`` and the rest."""
        return self._load()[1]

    @property
    def epochs(self) -> SequenceArray:
        """Epochs (float64), NaN where none was given."""
        return self._load()[2]

    @property
    def timestamps(self) -> SequenceArray:
        """Unix times (float64 seconds) at which each point was tracked."""
        return self._load()[3]

    @property
    def data(self) -> MetricData:
        """Aim-style accessor: ``metric.data.numpy()``."""
        return MetricData(self)

    # -- summary figures -----------------------------------------------------------------
    def _figure(self, key: str) -> Any:
        if self._summary is not None and self._columns is None:
            return self._summary.get(key)
        return _figures(self._load()).get(key)

    @property
    def count(self) -> int:
        """Number of points."""
        return self._figure("count") or 0

    @property
    def last(self) -> float | None:
        """Value at the highest step (one point per step: the last tracked)."""
        return self._figure("last")

    @property
    def last_step(self) -> int | None:
        """The highest step."""
        return self._figure("last_step")

    @property
    def first(self) -> float | None:
        """Value at the lowest step (one point per step: the last tracked)."""
        return self._figure("first")

    @property
    def first_step(self) -> int | None:
        """The lowest step."""
        return self._figure("first_step")

    @property
    def min(self) -> float | None:
        """Smallest value, NaN ignored."""
        return self._figure("min")

    @property
    def max(self) -> float | None:
        """Largest value, NaN ignored."""
        return self._figure("max")

    # -- conversions -----------------------------------------------------------------------
    def dataframe(self, include_name: bool = False, include_context: bool = False,
                  include_run: bool = False, only_last: bool = False) -> Any:
        """Points as a pandas DataFrame with Aim's columns (``idx, step, value, epoch, time``).

        ``include_run`` adds ``run.hash`` and the params as ``run.<path>``, ``include_name``
        adds ``metric.name``, ``include_context`` the ``metric.context.<key>`` columns;
        ``only_last`` keeps the point of the highest step.
        """
        from .frames import metric_dataframe

        return metric_dataframe(self, include_name, include_context, include_run, only_last)

    def sample(self, k: int) -> Metric:
        """At most ``k`` points, evenly spread, always keeping first, last, min and max."""
        columns = self._load()
        n = len(columns[0])
        if n <= k:
            return self
        if k < 4:
            raise ValueError("sample(k) needs k >= 4 to keep first, last, min and max")
        keep = np.linspace(0, n - 1, k - 2).round().astype(np.int64)
        values = columns[1]
        if not np.all(np.isnan(values)):
            keep = np.concatenate([keep, [np.nanargmin(values), np.nanargmax(values)]])
        keep = np.unique(keep)
        sampled = tuple(np.asarray(col)[keep] for col in columns)
        metric = Metric(self.run, self.name, self.context.to_dict(), None, lambda: sampled)
        metric._summary = _figures(columns)
        return metric


class MetricData:
    """``metric.data``: Aim's container shape for a metric's points, as for object sequences."""

    def __init__(self, metric: Metric) -> None:
        self._metric = metric

    def numpy(self) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Return ``(steps, (values, epochs, timestamps))``."""
        steps, values, epochs, times = self._metric._load()
        return steps, (values.view(np.ndarray), epochs.view(np.ndarray), times.view(np.ndarray))

    def items(self) -> Iterator[tuple[int, tuple[float, float | None, float]]]:
        """Yield ``(step, (value, epoch, timestamp))``; epoch is None where none was given."""
        steps, (values, epochs, times) = self.items_list()
        for step, value, epoch, time in zip(steps, values, epochs, times, strict=True):
            yield step, (value, None if math.isnan(epoch) else epoch, time)

    __iter__ = items

    def items_list(self) -> tuple[list[int], list[list[float]]]:
        """``(steps, [values, epochs, timestamps])`` as lists (epochs NaN where none)."""
        steps, columns = self.numpy()
        return steps.tolist(), [column.tolist() for column in columns]

    def values(self) -> Iterator[float]:
        """Yield each step's value."""
        yield from self.values_list()

    def values_list(self) -> list[float]:
        """Every step's value."""
        return self._metric._load()[1].tolist()

    def indices(self) -> Iterator[int]:
        """Yield the steps."""
        yield from self.indices_list()

    def indices_list(self) -> list[int]:
        """The steps."""
        return self._metric._load()[0].tolist()

    def __len__(self) -> int:
        return len(self._metric._load()[0])


def _figures(columns: Columns) -> dict[str, Any]:
    steps, values = columns[0], columns[1]
    n = len(steps)
    if not n:
        return {"count": 0}
    hi, lo = int(steps[-1]), int(steps[0])
    last_idx, first_idx = n - 1, 0  # one point per step, sorted by step
    finite = values[~np.isnan(values)]
    return {
        "count": n,
        "last_step": hi, "last": float(values[last_idx]),
        "first_step": lo, "first": float(values[first_idx]),
        "min": float(finite.min()) if len(finite) else None,
        "max": float(finite.max()) if len(finite) else None,
    }
