"""Columns of metric points: built from buffered tuples, one point per step, and summaries.

Re-tracking a step replaces its value for readers: points are kept as tracked, and readers
see them sorted by step with only the last tracked point of each step. A summary (``count``,
``first``/``last`` and their steps, ``min``/``max``) describes that view: ``count`` is the
number of distinct steps.
"""

from __future__ import annotations

import itertools
import math
import operator
from typing import Any

import numpy as np

from .. import deferred

STEP_DTYPE = np.dtype("<i8")
FLOAT_DTYPE = np.dtype("<f8")
Columns = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
Summary = dict[str, Any]
_first = operator.itemgetter(0)


def empty_columns() -> Columns:
    """Four empty arrays: steps, values, epochs, timestamps."""
    return (np.empty(0, STEP_DTYPE), np.empty(0, FLOAT_DTYPE),
            np.empty(0, FLOAT_DTYPE), np.empty(0, FLOAT_DTYPE))


def pending_columns(points: list[tuple[Any, Any, Any, Any]]) -> Columns:
    """Turn buffered ``(step, value, epoch, timestamp)`` tuples into four arrays; values held
    on an accelerator (``deferred.DeviceValue``) are converted first, in one batch."""
    if deferred.ever_captured():
        points = deferred.host_points(points)
    n = len(points)
    if not n:
        return empty_columns()
    table = np.fromiter(itertools.chain.from_iterable(points), FLOAT_DTYPE, 4 * n).reshape(n, 4)
    steps = np.fromiter(map(_first, points), STEP_DTYPE, n)  # exact beyond 2**53
    return steps, table[:, 1].copy(), table[:, 2].copy(), table[:, 3].copy()


def concat_columns(parts: list[Columns]) -> Columns:
    """Join columns in order."""
    if not parts:
        return empty_columns()
    if len(parts) == 1:
        return parts[0]
    return tuple(np.concatenate([p[i] for p in parts]) for i in range(4))  # type: ignore[return-value]


def latest_per_step(columns: Columns) -> Columns:
    """Sort by step and keep, of equal steps, the point tracked last."""
    steps = columns[0]
    if len(steps) < 2:
        return columns
    diffs = np.diff(steps)
    if bool((diffs > 0).all()):
        return columns  # the common case: already one point per step, in order
    if bool((diffs >= 0).all()):
        order = None
    else:
        order = np.argsort(steps, kind="stable")
        steps = steps[order]
    keep = np.empty(len(steps), dtype=bool)
    keep[-1] = True
    np.not_equal(steps[1:], steps[:-1], out=keep[:-1])
    if order is not None:
        keep = order[keep]
    return tuple(col[keep] for col in columns)  # type: ignore[return-value]


def summarize(columns: Columns) -> Summary:
    """The summary of points already reduced by :func:`latest_per_step`."""
    steps, values = columns[0], columns[1]
    if not len(steps):
        return {"count": 0}
    out: Summary = {"count": int(len(steps)),
                    "first_step": int(steps[0]), "first": float(values[0]),
                    "last_step": int(steps[-1]), "last": float(values[-1])}
    finite = values[~np.isnan(values)]
    out["min"] = float(finite.min()) if len(finite) else None
    out["max"] = float(finite.max()) if len(finite) else None
    return out


def merged_summary(summary: Summary, new: Columns) -> Summary | None:
    """``summary`` extended by new points, or None when a new step is not above ``last_step``
    (a re-tracked or earlier step: the caller recomputes from every stored point)."""
    new = latest_per_step(new)
    steps = new[0]
    if not len(steps):
        return summary
    last_step = summary.get("last_step")
    if last_step is not None and int(steps[0]) <= last_step:
        return None
    added = summarize(new)
    if not summary.get("count"):
        return added
    out = dict(summary)
    out["count"] = summary["count"] + added["count"]
    out["last_step"], out["last"] = added["last_step"], added["last"]
    for key, pick in (("min", min), ("max", max)):
        old, fresh = summary.get(key), added[key]
        out[key] = fresh if _missing(old) else old if fresh is None else pick(old, fresh)
    return out


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))
