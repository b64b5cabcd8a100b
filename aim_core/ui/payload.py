"""The JSON shapes the dashboard API returns, built from catalog entries, runs and metrics."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from aim_core.params import flatten as flatten_params

MAX_POINTS = 1000
"""Default and upper bound of points sent per series (first/last/min/max always kept)."""

PROPS = ("name", "experiment", "description", "tags", "archived", "creation_time", "end_time")


def clean(value: Any) -> Any:
    """Return `value` as strict JSON data: NaN/inf become None, numpy scalars plain numbers."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    if isinstance(value, np.generic):
        return clean(value.item())
    if value is None or isinstance(value, (str, int)):
        return value
    return str(value)


def flatten(params: Mapping[str, Any]) -> dict[str, Any]:
    """Flatten nested params to dotted keys (`{"hparams": {"lr": 1}}` -> `{"hparams.lr": 1}`)."""
    return {key: clean(value) for key, value in flatten_params(params).items()}


def float_list(values: Any) -> list[float | None]:
    """Return a float array as a list, with None where a value is NaN or infinite."""
    array = np.asarray(values, dtype=np.float64)
    out = array.tolist()
    bad = ~np.isfinite(array)
    if bad.any():
        for i in np.flatnonzero(bad):
            out[i] = None
    return out


def sequence_key(name: str, context: Mapping[str, Any]) -> str:
    """A stable string id for a (name, context) pair, used as a table column key."""
    return f"{name} {json.dumps(clean(dict(context)), sort_keys=True, separators=(',', ':'))}"


def duration(props: Mapping[str, Any], status: str, now: float | None = None) -> float | None:
    """Seconds from creation to end, or to now while the run is running."""
    start, end = props.get("creation_time"), props.get("end_time")
    if start is None:
        return None
    if end is None:
        return (now or time.time()) - start if status == "running" else None
    return max(0.0, end - start)


def run_props(run_hash: str, props: Mapping[str, Any], status: str) -> dict[str, Any]:
    """The properties every run listing shows."""
    row = {"hash": run_hash, "status": status, "active": status == "running"}
    row.update({key: clean(props.get(key)) for key in PROPS})
    row["tags"] = list(row["tags"] or [])
    row["archived"] = bool(row["archived"])
    row["duration"] = clean(duration(props, status))
    return row


def summary(seq: Mapping[str, Any]) -> dict[str, Any]:
    """A catalog sequence summary as JSON (name, context, count, first/last, min/max)."""
    keys = ("count", "first_step", "first", "last_step", "last", "min", "max")
    out = {"name": seq["name"], "context": clean(dict(seq.get("context") or {}))}
    out.update({key: clean(seq.get(key)) for key in keys})
    out["key"] = sequence_key(out["name"], out["context"])
    return out


def series(metric: Any, points: int, start: float | None) -> dict[str, Any]:
    """A metric's points, downsampled to at most `points` (keeping first/last/min/max)."""
    count = len(metric.steps)
    sampled = metric.sample(points) if count > points else metric
    stamps = np.asarray(sampled.timestamps, dtype=np.float64)
    if start is None:
        start = float(stamps[0]) if len(stamps) else 0.0
    epochs = np.asarray(sampled.epochs, dtype=np.float64)
    return {
        "run": metric.run.hash,
        "name": metric.name,
        "context": clean(dict(metric.context)),
        "count": count,
        "steps": np.asarray(sampled.steps).tolist(),
        "values": float_list(sampled.values),
        "epochs": None if np.isnan(epochs).all() else float_list(epochs),
        "times": float_list(np.round(stamps - start, 3)),
    }


def union_columns(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Param columns seen across flattened param dicts, flagged when their values differ."""
    seen: dict[str, set[str]] = {}
    present: dict[str, int] = {}
    total = 0
    for flat in rows:
        total += 1
        for key, value in flat.items():
            seen.setdefault(key, set()).add(json.dumps(value, sort_keys=True))
            present[key] = present.get(key, 0) + 1
    return [
        {"key": k, "varying": len(v) > 1 or present[k] < total} for k, v in sorted(seen.items())
    ]
