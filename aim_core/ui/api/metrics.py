"""Metric endpoints: the grouped, aggregated metric search and one run's series."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.routing import Route

from aim_core.query import query_metrics
from aim_core.query.catalog import load_entries
from aim_core.ui import aggregate, explore, payload
from aim_core.ui.api.handler import BadRequest, Dashboard, bool_arg, choice_arg, endpoint, int_arg
from aim_core.ui.api.runs import catalog_entry
from aim_core.ui.run_table import SYSTEM_PREFIX, is_system, metric_summaries

DEFAULT_SERIES, MAX_SERIES = 500, 2000
"""Series one metric search returns by default / at most (`limit`); the page says when more
matched. Each series opens its run, so this bounds the answer time of a broad query."""
MAX_FIELDS = 12


def points_arg(request: Request) -> int:
    """`points` per series, between MIN_POINTS and MAX_POINTS."""
    return int_arg(request, "points", payload.MAX_POINTS, payload.MIN_POINTS, payload.MAX_POINTS)


def axis_arg(request: Request) -> str:
    """`x`: step, epoch, time, wall or metric:<name>."""
    axis = request.query_params.get("x") or "step"
    if axis not in explore.AXES and not (axis.startswith("metric:") and len(axis) > 7):
        raise BadRequest(f"x must be one of {', '.join(explore.AXES)} or metric:<name>; "
                         f"got {axis!r}")
    return axis


def group_args(request: Request) -> list[str]:
    """`group` fields: run.hash, run.name, run.experiment, run.<param>, metric.context[.<k>]."""
    fields = request.query_params.getlist("group")
    if len(fields) > MAX_FIELDS:
        raise BadRequest(f"at most {MAX_FIELDS} group fields, got {len(fields)}")
    for field in fields:
        if not (field.startswith(("run.", "metric.context")) and len(field) > 4):
            raise BadRequest(f"group field {field!r} must be run.<property or param> or "
                             "metric.context[.<key>]")
    return list(dict.fromkeys(fields))


def shown_name(name: Any, system: bool) -> bool:
    """False for a system metric (`__system__cpu`, ...) when the query did not name them."""
    return system or not is_system(str(name))


def specs_of(collection: Any, limit: int, system: bool = True) -> tuple[list[explore.Spec], bool]:
    """The matching series (at most `limit`; system metrics only if `system`) and whether
    more matched."""
    specs: list[explore.Spec] = []
    for run_metrics in collection.iter_runs():  # catalog summaries; no run file is opened
        run_hash, sequences = run_metrics.hash, run_metrics.sequences
        for s in sequences:
            if not isinstance(s, dict) or s.get("kind", "metric") != "metric":
                continue
            if not shown_name(s.get("name"), system):
                continue
            if len(specs) == limit:
                return specs, True
            clean = payload.summary(s)
            specs.append(explore.Spec(run_hash, clean["name"], clean["context"], clean))
    return specs, False


def brief(dash: Dashboard, run_hash: str, entry: Any) -> dict[str, Any]:
    """What a chart needs of a run: names for legends, flat params for grouping, liveness."""
    entry = entry if isinstance(entry, dict) else {}
    props = entry.get("props") if isinstance(entry.get("props"), dict) else {}
    status = dash.repo.status_of(run_hash, {"props": props, "corrupted": entry.get("corrupted")})
    return {
        "hash": run_hash, "name": payload.clean(props.get("name")),
        "experiment": payload.clean(props.get("experiment")),
        "creation_time": payload.number(props.get("creation_time")),
        "active": status == "running", "params": payload.flatten(entry.get("params")),
    }


def search_metrics(request: Request, dash: Dashboard) -> dict[str, Any]:
    """GET /api/metrics: matching series, sampled and aligned on `x`, grouped, aggregated."""
    args = request.query_params
    q = args.get("q", "").strip()
    points = points_arg(request)
    limit = int_arg(request, "limit", DEFAULT_SERIES, 1, MAX_SERIES)
    axis, fields = axis_arg(request), group_args(request)
    center = choice_arg(request, "agg", aggregate.CENTERS, "none")
    band = choice_arg(request, "band", aggregate.BANDS, "none")
    raw = bool_arg(request, "raw", True) or center == "none"
    collection = dash.repo.query_metrics(q, **dash.query_options(query_metrics))
    system = SYSTEM_PREFIX in q
    specs, truncated = specs_of(collection, limit, system)
    hashes = list(dict.fromkeys(spec.run for spec in specs))
    entries = load_entries(dash.repo, hashes)
    runs = {h: brief(dash, h, entries.get(h)) for h in hashes}
    sequences = {h: metric_summaries(entries.get(h) or {}) for h in hashes}
    per_series = explore.points_for(points, len(specs))
    loader = explore.Loader(dash.repo, dash.series, per_series, request.state.deadline)
    x_name = axis[7:] if axis.startswith("metric:") else None
    wanted: list[explore.Wanted] = []
    unaligned = 0
    for spec in specs:
        x_metric = None
        if x_name is not None:
            x_metric = explore.find_x_metric(spec, sequences[spec.run], x_name)
            if x_metric is None:
                unaligned += 1
                continue
        wanted.append((spec, x_metric))
    samples = loader.load_all(wanted)
    loaded = [(spec, sampled) for (spec, _), sampled in zip(wanted, samples, strict=True)
              if sampled is not None]
    series = []
    for spec, sampled in loaded:
        item = explore.series_json(spec, sampled, axis, runs[spec.run]["creation_time"])
        if not raw:
            item.update(steps=None, values=None, x=None)
        series.append(item)
    groups = [] if center == "none" else group_series(loaded, runs, fields, axis, center, band,
                                                      per_series)
    names = sorted({s["name"] for seqs in sequences.values() for s in seqs
                    if shown_name(s["name"], system)})
    return {"runs": runs, "series": series, "groups": groups, "truncated": truncated,
            "points": per_series, "x": axis, "names": names, "unaligned": unaligned}


def group_series(loaded: list[tuple[explore.Spec, explore.Sampled]], runs: dict[str, Any],
                 fields: list[str], axis: str, center: str, band: str,
                 points: int) -> list[dict[str, Any]]:
    """One aggregate per metric name and combination of the group fields' values."""
    members: dict[tuple[str, ...], list[int]] = {}
    for i, (spec, _) in enumerate(loaded):
        values = [payload.compact_json(explore.field_value(f, spec, runs[spec.run]))
                  for f in fields]
        members.setdefault((spec.name, *values), []).append(i)
    out = []
    for key in sorted(members):
        index = members[key]
        curves = []
        for i in index:
            spec, sampled = loaded[i]
            start = runs[spec.run]["creation_time"]
            curves.append((explore.x_array(sampled, axis, start), sampled.values))
        result = aggregate.aggregate(curves, center, band, points)
        if result is None:
            continue
        out.append({"name": key[0], "key": {f: json.loads(v) for f, v in zip(fields, key[1:],
                                                                          strict=True)},
                    "members": index, **{k: clean_list(v) for k, v in result.items()}})
    return out


def clean_list(values: list[float] | None) -> list[float | None] | None:
    """NaN and inf as None, so the answer is strict JSON."""
    return None if values is None else payload.float_list(values)


def get_series(request: Request, dash: Dashboard) -> dict[str, Any]:
    """GET /api/series?run=H[&name=N][&context=JSON][&points=K]: one run's sampled metrics."""
    args = request.query_params
    run_hash = args.get("run")
    if not run_hash:
        raise BadRequest("run is required: /api/series?run=<hash>")
    name, context = args.get("name"), parse_context(args.get("context"))
    points = points_arg(request)
    entry = catalog_entry(dash, run_hash)
    start = brief(dash, run_hash, entry)["creation_time"]
    loader = explore.Loader(dash.repo, dash.series, points, request.state.deadline)
    specs = [explore.Spec(run_hash, s["name"], s["context"], s) for s in metric_summaries(entry)
             if (name is None or s["name"] == name)
             and (context is None or s["context"] == context)]
    out = []
    for spec, sampled in zip(specs, loader.load_all([(s, None) for s in specs]), strict=True):
        if sampled is None:
            continue
        item = explore.series_json(spec, sampled, "time", start)
        epochs = explore.x_values(sampled, "epoch", start)
        item.update(times=item.pop("x"),
                    epochs=None if all(e is None for e in epochs) else epochs)
        out.append(item)
    return {"run": run_hash, "series": out}


def parse_context(raw: str | None) -> dict[str, Any] | None:
    """Parse the `context` argument: a flat JSON object, or None when absent; 400 otherwise."""
    if raw is None:
        return None
    example = 'a JSON object such as {"subset": "val"}'
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise BadRequest(f"context must be {example}: {exc}") from None
    except RecursionError:
        raise BadRequest(f"context is nested too deeply; it must be {example}") from None
    if not isinstance(value, dict):
        raise BadRequest(f"context must be {example}")
    if not all(v is None or isinstance(v, (str, int, float)) for v in value.values()):
        raise BadRequest(f"context values must be strings, numbers, booleans or null: {example}")
    return value


def routes() -> list[Route]:
    """The metric routes."""
    return [
        Route("/api/metrics", endpoint(search_metrics)),
        Route("/api/series", endpoint(get_series)),
    ]
