"""Aggregating a group of curves: align them on one x grid, then mean or median and a band.

Each curve is interpolated linearly onto the union of the group's x values (or an even
grid of `points` values when the union is longer), and only inside its own x range, so a
short run never drags the aggregate towards an invented value. When the curves share
their x values (runs of one sweep logging the same steps) the aggregate at each x is
exactly the mean (or median) of the tracked values there.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

CENTERS = ("none", "mean", "median")
BANDS = ("none", "minmax", "std")

Curve = tuple[np.ndarray, np.ndarray]


def prepared(x: Any, y: Any) -> Curve | None:
    """A curve with finite points only, ordered by x, one point per x (duplicates averaged)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    if not len(x):
        return None
    xs, inverse = np.unique(x, return_inverse=True)
    if len(xs) == len(x):
        return xs, y[np.argsort(x, kind="stable")]
    sums = np.bincount(inverse, weights=y, minlength=len(xs))
    return xs, sums / np.bincount(inverse, minlength=len(xs))


def grid_of(curves: Sequence[Curve], points: int) -> np.ndarray:
    """The x values to aggregate at: the union of the curves' x, or an even grid."""
    union = np.unique(np.concatenate([x for x, _ in curves]))
    if len(union) <= points:
        return union
    return np.linspace(union[0], union[-1], points)


def aggregate(curves: Sequence[tuple[Any, Any]], center: str, band: str,
              points: int) -> dict[str, Any] | None:
    """`{x, y, lo, hi, n}` lists for the group, or None when no curve has a point.

    `center` is mean or median; `band` is minmax (lowest to highest curve), std (mean
    minus to plus one standard deviation) or none (`lo`/`hi` are then None).
    """
    ready = [c for c in (prepared(x, y) for x, y in curves) if c is not None]
    if not ready:
        return None
    grid = grid_of(ready, points)
    matrix = np.vstack([np.interp(grid, x, y, left=np.nan, right=np.nan) for x, y in ready])
    counts = np.sum(~np.isnan(matrix), axis=0)
    cols = counts > 0
    grid, matrix, counts = grid[cols], matrix[:, cols], counts[cols]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mid = np.nanmedian(matrix, axis=0) if center == "median" else np.nanmean(matrix, axis=0)
        lo = hi = None
        if band == "minmax":
            lo, hi = np.nanmin(matrix, axis=0), np.nanmax(matrix, axis=0)
        elif band == "std":
            mean, std = np.nanmean(matrix, axis=0), np.nanstd(matrix, axis=0)
            lo, hi = mean - std, mean + std
    return {
        "x": grid.tolist(), "y": mid.tolist(), "n": counts.tolist(),
        "lo": None if lo is None else lo.tolist(), "hi": None if hi is None else hi.tolist(),
    }
