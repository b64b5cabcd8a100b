"""pandas DataFrames of runs and metrics, with Aim's signatures and column names.

A metric's frame has ``idx, step, value, epoch, time`` (``time`` as a naive local
datetime, as Aim gives it), then on request ``run.hash`` and the params as ``run.<path>``,
``metric.name`` and ``metric.context.<key>``. A run's frame is one row: ``hash``, the
properties, then the params by dotted path. As in Aim, params are unfolded three levels
deep and lists or deeper dicts become JSON text.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .sequence import Metric

PARAM_DEPTH = 3  # how deep Aim unfolds params into columns
METRIC_COLUMNS = ("idx", "step", "value", "epoch", "time")
RUN_PROPS = ("name", "description", "archived", "creation_time", "end_time", "active",
             "experiment", "tags")  # Aim's; a row adds ``status`` and ``duration``


def pandas(caller: str) -> Any:
    """Import pandas, or say how to install it."""
    try:
        import pandas
    except ImportError as exc:
        raise ImportError(f"{caller} needs pandas: pip install 'aim-core[export]'") from exc
    return pandas


def unfold(tree: Mapping[str, Any], prefix: str = "", depth: int = PARAM_DEPTH
           ) -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``, at most ``depth`` levels; containers as JSON."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping) and value and depth > 1:
            flat.update(unfold(value, name, depth - 1))
        elif isinstance(value, (Mapping, list, tuple)):
            flat[name] = json.dumps(value)
        else:
            flat[name] = value
    return flat


def local_times(pd: Any, timestamps: np.ndarray) -> Any:
    """Unix seconds as naive local datetimes (what Aim's ``datetime.fromtimestamp`` gives)."""
    from dateutil.tz import tzlocal  # a pandas dependency

    utc = pd.to_datetime(np.asarray(timestamps, dtype=np.float64), unit="s", utc=True)
    return utc.tz_convert(tzlocal()).tz_localize(None)


def metric_dataframe(metric: Metric, include_name: bool = False, include_context: bool = False,
                     include_run: bool = False, only_last: bool = False) -> Any:
    """One metric's points (or only its last point) as a DataFrame."""
    pd = pandas("Metric.dataframe()")
    steps, values, epochs, times = (np.asarray(column) for column in metric.data_columns())
    if only_last and len(steps):
        steps, values, epochs, times = steps[-1:], values[-1:], epochs[-1:], times[-1:]
    n = len(steps)
    data: dict[str, Any] = {"idx": np.arange(n), "step": steps, "value": values,
                            "epoch": epochs, "time": local_times(pd, times)}
    if include_run:
        data["run.hash"] = [metric.run.hash] * n
        for key, value in unfold(metric.run.params, "run").items():
            data[key] = [value] * n
    if include_name:
        data["metric.name"] = [metric.name] * n
    if include_context:
        for key, value in unfold(metric.context.to_dict(), "metric.context").items():
            data[key] = [value] * n
    return pd.DataFrame(data)


def run_row(run_hash: str, props: Mapping[str, Any], params: Mapping[str, Any], status: str,
            include_props: bool = True, include_params: bool = True) -> dict[str, Any]:
    """One run as a flat dict: hash, properties (Aim's and ours), params by dotted path."""
    row: dict[str, Any] = {"hash": run_hash}
    if include_props:
        end, start = props.get("end_time"), props.get("creation_time")
        for key in RUN_PROPS:
            row[key] = props.get(key)
        row.update(tags=json.dumps(list(props.get("tags") or [])), active=status == "running",
                   status=status, duration=None if start is None or end is None else end - start)
    if include_params:
        for key, value in unfold(params).items():
            row[key if key not in row else f"params.{key}"] = value
    return row


def concat(pd: Any, frames: list[Any], columns: tuple[str, ...]) -> Any:
    """Frames stacked as Aim does (each keeps its own index); an empty frame when none."""
    if not frames:
        return pd.DataFrame(columns=list(columns))
    return pd.concat(frames)
