"""The JSON shapes the dashboard API returns, built from catalog entries, runs and metrics.

Catalog entries and run files may have been crafted by someone else: every function here
accepts odd types (a count that is a string, a context that is a list) without failing,
and the pages insert every value as text.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from aim_core.params import flatten as flatten_params

MAX_POINTS = 1000
"""Default and upper bound of points sent per series (first/last/min/max always kept)."""
MIN_POINTS = 10
"""Fewest points per series a request may ask for."""

PROPS = ("name", "experiment", "description", "tags", "archived", "creation_time", "end_time")


_PLAIN = frozenset({str, int, bool, type(None)})


def clean(value: Any) -> Any:
    """Return `value` as strict JSON data: NaN/inf become None, numpy scalars plain numbers."""
    kind = type(value)
    if kind in _PLAIN:
        return value
    if kind is float:
        return value if math.isfinite(value) else None
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


def number(value: Any) -> float | None:
    """`value` when it is a finite real number (not a bool), else None."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value) if math.isfinite(value) else None
    return None


def flatten(params: Any) -> dict[str, Any]:
    """Flatten nested params to dotted keys (`{"hparams": {"lr": 1}}` -> `{"hparams.lr": 1}`).

    The same keys as `aim_core.params.flatten`, for the plain dicts JSON gives (fast: the
    runs table flattens every run of the repo).
    """
    if not isinstance(params, Mapping):
        return {}
    if type(params) is not dict:
        return {str(k): clean(v) for k, v in flatten_params(params).items()}
    out: dict[str, Any] = {}
    _flatten_into(out, params, "")
    return out


def _flatten_into(out: dict[str, Any], node: dict, prefix: str) -> None:
    for key, value in node.items():
        name = f"{prefix}{key}"
        if type(value) is dict and value:
            _flatten_into(out, value, name + ".")
        else:
            out[name] = clean(value)


def float_list(values: Any) -> list[float | None]:
    """Return a float array as a list, with None where a value is NaN or infinite."""
    array = np.asarray(values, dtype=np.float64)
    out = array.tolist()
    bad = ~np.isfinite(array)
    if bad.any():
        for i in np.flatnonzero(bad):
            out[i] = None
    return out


def compact_json(value: Any) -> str:
    """Compact JSON with sorted keys (odd values as their text)."""
    return json.dumps(clean(value), sort_keys=True, separators=(",", ":"))


def context_of(value: Any) -> dict[str, Any]:
    """A context as clean JSON; {} for anything that is not a mapping."""
    return clean(dict(value)) if isinstance(value, Mapping) else {}


_KEYS: dict[tuple, str] = {}


def sequence_key(name: str, context: Mapping[str, Any]) -> str:
    """A stable string id for a (name, context) pair, used as a table column key."""
    try:  # runs of a sweep share their sequences: remember the keys of scalar contexts
        memo = (name, *sorted((k, type(v), v) for k, v in context.items()))
        found = _KEYS.get(memo)
    except TypeError:  # unhashable or unorderable values (crafted files)
        return f"{name} {compact_json(dict(context))}"
    if found is None:
        found = f"{name} {compact_json(dict(context))}"
        if len(_KEYS) < 100_000:
            _KEYS[memo] = found
    return found


def duration(props: Mapping[str, Any], status: str, now: float | None = None) -> float | None:
    """Seconds from creation to end, or to now while the run is running."""
    start, end = number(props.get("creation_time")), number(props.get("end_time"))
    if start is None:
        return None
    if end is None:
        return (now or time.time()) - start if status == "running" else None
    return max(0.0, end - start)


def run_props(run_hash: str, props: Any, status: str) -> dict[str, Any]:
    """The properties every run listing shows."""
    props = props if isinstance(props, Mapping) else {}
    row = {"hash": run_hash, "status": status, "active": status == "running"}
    row.update({key: clean(props.get(key)) for key in PROPS})
    tags = row["tags"]
    row["tags"] = [clean(t) for t in tags] if isinstance(tags, list) else []
    row["archived"] = bool(row["archived"])
    row["duration"] = clean(duration(props, status))
    return row


def summary(seq: Mapping[str, Any]) -> dict[str, Any]:
    """A catalog sequence summary as JSON (name, context, count, first/last, min/max)."""
    keys = ("count", "first_step", "first", "last_step", "last", "min", "max")
    out = {"name": str(seq.get("name")), "context": context_of(seq.get("context"))}
    out.update({key: clean(seq.get(key)) for key in keys})
    out["key"] = sequence_key(out["name"], out["context"])
    return out
