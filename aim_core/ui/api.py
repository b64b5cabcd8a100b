"""The dashboard's JSON endpoints under `/api/`: runs, one run, metric search, series, writes."""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from aim_core import Repo, Run
from aim_core.errors import QueryError, RunCorruptedError, RunLockedError, RunNotFoundError
from aim_core.ui import payload

DEFAULT_SERIES, MAX_SERIES = 500, 2000
"""Series one metric search returns by default / at most (`limit`); the page says when more
matched. Each series opens its run, so this bounds the answer time of a broad query."""

WRITE_HEADER = "x-aim-core-write"
"""Writes need this header: a cross-site form cannot set it, so a web page cannot delete runs."""

DEFAULT_PARAM_COLUMNS = 4
DEFAULT_METRIC_COLUMNS = 4


class BadRequest(Exception):
    """A request argument is malformed (answered with 400)."""


class Forbidden(Exception):
    """A write was asked of a read-only dashboard (answered with 403)."""


@dataclass
class Dashboard:
    """What every endpoint needs: the repo, whether writes are allowed, and a lock."""

    repo_path: str
    allow_writes: bool = False
    repo: Repo = field(init=False)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.repo = Repo(self.repo_path)


Handler = Callable[[Request, Dashboard], Any]


def endpoint(handler: Handler) -> Callable[[Request], Response]:
    """Wrap a handler: serialise access to the repo, JSON the result, map errors to codes."""

    @functools.wraps(handler)
    def wrapped(request: Request) -> Response:
        dash: Dashboard = request.app.state.dashboard
        try:
            with dash.lock:
                return JSONResponse(handler(request, dash))
        except (QueryError, BadRequest) as exc:
            return error(400, exc)
        except Forbidden as exc:
            return error(403, exc)
        except RunNotFoundError as exc:
            return error(404, exc)
        except RunLockedError as exc:
            return error(409, exc)
        except RunCorruptedError as exc:
            return error(500, exc)

    return wrapped


def error(status: int, exc: Exception) -> JSONResponse:
    """A JSON error body `{"error": message}`."""
    return JSONResponse({"error": str(exc)}, status_code=status)


def int_arg(request: Request, name: str, default: int, upper: int) -> int:
    """A positive integer query argument, capped at `upper`."""
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"{name} must be an integer, got {raw!r}") from None
    if value < 1:
        raise BadRequest(f"{name} must be at least 1, got {value}")
    return min(value, upper)


def info(request: Request, dash: Dashboard) -> dict[str, Any]:
    """GET /api/info: the repo path and whether writes are allowed."""
    return {"repo": str(dash.repo.path), "allow_writes": dash.allow_writes}


def list_runs(request: Request, dash: Dashboard) -> dict[str, Any]:
    """GET /api/runs: runs matching `q` (or the given `hash`es) with the picked columns."""
    args = request.query_params
    q, hashes = args.get("q", "").strip(), args.getlist("hash")
    if q and not hashes:
        entries = {m.hash: m.entry for m in dash.repo.query_runs(q)}
    else:
        entries = dict(dash.repo.catalog_entries())
        if hashes:
            entries = {h: entries[h] for h in hashes if h in entries}
        else:
            entries = {h: e for h, e in entries.items() if not e["props"].get("archived")}
    flats = {h: payload.flatten(e.get("params") or {}) for h, e in entries.items()}
    sums = {h: [payload.summary(s) for s in e.get("sequences") or []] for h, e in entries.items()}
    columns = {
        "params": payload.union_columns(flats.values()),
        "metrics": metric_columns(sums.values()),
    }
    shown = picked_columns(request, columns)
    rows = [run_row(h, e, dash, flats[h], sums[h], shown) for h, e in entries.items()]
    rows.sort(key=lambda r: r.get("creation_time") or 0, reverse=True)
    return {"count": len(rows), "runs": rows, "columns": columns, "shown": shown}


def metric_columns(summaries: Any) -> list[dict[str, Any]]:
    """Every (name, context) seen across the runs, sorted by name then context."""
    seen: dict[str, dict[str, Any]] = {}
    for run_sums in summaries:
        for s in run_sums:
            seen.setdefault(s["key"], {"key": s["key"], "name": s["name"], "context": s["context"]})
    return sorted(seen.values(), key=lambda c: c["key"])


def picked_columns(request: Request, columns: dict[str, Any]) -> dict[str, list[str]]:
    """The columns the page asked for, or with `auto=1` a few sensible ones."""
    args = request.query_params
    if args.get("auto") == "1":
        varying = [c["key"] for c in columns["params"] if c["varying"]]
        return {
            "params": varying[:DEFAULT_PARAM_COLUMNS],
            "metrics": [c["key"] for c in columns["metrics"]][:DEFAULT_METRIC_COLUMNS],
        }
    return {"params": args.getlist("param"), "metrics": args.getlist("metric")}


def run_row(
    run_hash: str,
    entry: dict[str, Any],
    dash: Dashboard,
    flat: dict[str, Any],
    sums: list[dict[str, Any]],
    shown: dict[str, list[str]],
) -> dict[str, Any]:
    """One row of the runs table: properties, picked params, last values of picked metrics."""
    status = dash.repo.status_of(run_hash, entry)
    row = payload.run_props(run_hash, entry.get("props") or {}, status)
    row["params"] = {k: flat.get(k) for k in shown["params"]}
    by_key = {s["key"]: s for s in sums}
    row["metrics"] = {k: by_key[k]["last"] if k in by_key else None for k in shown["metrics"]}
    return row


def catalog_entry(dash: Dashboard, run_hash: str) -> dict[str, Any]:
    """The catalog entry of one run; RunNotFoundError (404) when the catalog lacks it."""
    for h, entry in dash.repo.catalog_entries():
        if h == run_hash:
            return entry
    raise RunNotFoundError(f"No run {run_hash!r} in {dash.repo.path}.")


def get_run(request: Request, dash: Dashboard) -> dict[str, Any]:
    """GET /api/runs/{hash}: properties, the params tree and the sequences' summaries."""
    run_hash = request.path_params["hash"]
    entry = catalog_entry(dash, run_hash)
    status = dash.repo.status_of(run_hash, entry)
    run = dash.repo.get_run(run_hash)
    sequences = [payload.summary(s) for s in entry.get("sequences") or []]
    return {
        "run": payload.run_props(run_hash, entry.get("props") or {}, status),
        "params": payload.clean(run.params),
        "sequences": sorted(sequences, key=lambda s: s["key"]),
    }


def get_series(request: Request, dash: Dashboard) -> dict[str, Any]:
    """GET /api/series?run=H[&name=N][&context=JSON][&points=K]: one run's sampled sequences."""
    args = request.query_params
    run_hash = args.get("run")
    if not run_hash:
        raise BadRequest("run is required: /api/series?run=<hash>")
    name, context = args.get("name"), parse_context(args.get("context"))
    points = int_arg(request, "points", payload.MAX_POINTS, payload.MAX_POINTS)
    catalog_entry(dash, run_hash)
    run = dash.repo.get_run(run_hash)
    start = run.creation_time
    out = []
    for metric in run.metrics():
        if name is not None and metric.name != name:
            continue
        if context is not None and metric.context != context:
            continue
        out.append(payload.series(metric, points, start))
    return {"run": run_hash, "series": out}


def parse_context(raw: str | None) -> dict[str, Any] | None:
    """Parse the `context` argument: a JSON object, or None when absent."""
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise BadRequest(f"context must be a JSON object: {exc}") from None
    if not isinstance(value, dict):
        raise BadRequest("context must be a JSON object such as {\"subset\": \"val\"}")
    return value


def search_metrics(request: Request, dash: Dashboard) -> dict[str, Any]:
    """GET /api/metrics?q=...: matching sequences, sampled, with their runs' params."""
    q = request.query_params.get("q", "").strip()
    points = int_arg(request, "points", payload.MAX_POINTS, payload.MAX_POINTS)
    limit = int_arg(request, "limit", DEFAULT_SERIES, MAX_SERIES)
    runs: dict[str, dict[str, Any]] = {}
    out: list[dict[str, Any]] = []
    truncated = False
    for metric in dash.repo.query_metrics(q):
        if len(out) == limit:
            truncated = True
            break
        run = metric.run
        if run.hash not in runs:
            runs[run.hash] = brief(run)
        out.append(payload.series(metric, points, runs[run.hash]["creation_time"]))
    return {"runs": runs, "series": out, "truncated": truncated}


def brief(run: Run) -> dict[str, Any]:
    """What a chart needs of a run: names for legends, flat params for colouring."""
    return {
        "hash": run.hash,
        "name": run.name,
        "experiment": run.experiment,
        "creation_time": run.creation_time,
        "params": payload.flatten(run.params),
    }


def write(action: str) -> Handler:
    """A handler for one write action (archive, unarchive, delete), guarded twice."""

    def handler(request: Request, dash: Dashboard) -> dict[str, Any]:
        if not dash.allow_writes:
            raise Forbidden("This dashboard is read-only; restart it with --allow-writes.")
        if request.headers.get(WRITE_HEADER) != "1":
            raise Forbidden(f"Write requests need the header {WRITE_HEADER}: 1.")
        run_hash = request.path_params["hash"]
        if action == "delete":
            catalog_entry(dash, run_hash)  # 404 for an unknown hash
            dash.repo.delete_run(run_hash)
        else:
            set_archived(dash, run_hash, action == "archive")
        return {"hash": run_hash, "done": action}

    handler.__name__ = f"{action}_run"
    handler.__doc__ = f"{action} one run (only with --allow-writes)."
    return handler


def set_archived(dash: Dashboard, run_hash: str, archived: bool) -> None:
    """Archive or unarchive a run (closing it keeps how it had ended)."""
    run = Run(run_hash=run_hash, repo=dash.repo)
    try:
        run.archived = archived
    finally:
        run.close()


def routes() -> list[Route]:
    """The `/api/` routes."""
    return [
        Route("/api/info", endpoint(info)),
        Route("/api/runs", endpoint(list_runs)),
        Route("/api/runs/{hash}", endpoint(get_run), methods=["GET"]),
        Route("/api/runs/{hash}", endpoint(write("delete")), methods=["DELETE"]),
        Route("/api/runs/{hash}/archive", endpoint(write("archive")), methods=["POST"]),
        Route("/api/runs/{hash}/unarchive", endpoint(write("unarchive")), methods=["POST"]),
        Route("/api/series", endpoint(get_series)),
        Route("/api/metrics", endpoint(search_metrics)),
    ]
