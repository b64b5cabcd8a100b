"""Run endpoints: the paged runs table and its CSV, one run's detail, and the writes."""

from __future__ import annotations

import csv
import io
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from aim_core import Run
from aim_core.errors import RunNotFoundError
from aim_core.query import query_runs
from aim_core.query.catalog import load_entries
from aim_core.spreadsheet import text_cell
from aim_core.ui import payload
from aim_core.ui.api.handler import (
    BadRequest,
    Dashboard,
    Forbidden,
    Handler,
    choice_arg,
    endpoint,
    int_arg,
)
from aim_core.ui.run_table import (
    FIXED,
    Row,
    Table,
    build_table,
    is_system,
    prepare_row,
    sort_rows,
)

WRITE_HEADER = "x-aim-core-write"
"""Writes need this header: a cross-site form cannot set it, so a web page cannot delete runs."""

DEFAULT_LIMIT, MAX_LIMIT = 1000, 20_000
"""Rows one answer holds by default / at most (the Runs page asks for one page)."""
MAX_HASHES = 1000
DEFAULT_PARAM_COLUMNS = 4
DEFAULT_METRIC_COLUMNS = 4


class RunPick:
    """A (hash, catalog entry) pair shaped like a query match."""

    def __init__(self, run_hash: str, entry: Any) -> None:
        self.hash, self.entry = run_hash, entry


def info(request: Request, dash: Dashboard) -> dict[str, Any]:
    """GET /api/info: the repo path and whether writes are allowed."""
    return {"repo": str(dash.repo.path), "allow_writes": dash.allow_writes}


def table_for(request: Request, dash: Dashboard) -> Table:
    """The table a runs request asks for: the runs matching `q`, or the given `hash`es."""
    args = request.query_params
    hashes = args.getlist("hash")
    if hashes:
        if len(hashes) > MAX_HASHES:
            raise BadRequest(f"at most {MAX_HASHES} hash arguments, got {len(hashes)}")
        entries = load_entries(dash.repo, hashes)
        return build_table(dash.repo, [RunPick(h, entries[h]) for h in hashes if h in entries])
    q = args.get("q", "").strip()
    return dash.tables.table(
        q, lambda text, **kw: query_runs(dash.repo, text, **kw,
                                         **dash.query_options(query_runs)))


def picked_columns(request: Request, table: Table) -> dict[str, list[str]]:
    """The columns the page asked for, or with `auto=1` a few sensible ones."""
    args = request.query_params
    if args.get("auto") == "1":
        varying = [c["key"] for c in table.params if c["varying"]]
        return {
            "params": varying[:DEFAULT_PARAM_COLUMNS],
            "metrics": [c["key"] for c in table.metrics
                        if not is_system(c["name"])][:DEFAULT_METRIC_COLUMNS],
        }
    return {"params": args.getlist("param"), "metrics": args.getlist("metric")}


def sort_args(request: Request) -> tuple[str, bool]:
    """`sort` (a fixed column, `p:<param>` or `m:<metric key>`) and `dir` (asc or desc)."""
    column = request.query_params.get("sort") or "creation_time"
    if column not in FIXED and not column.startswith(("p:", "m:")):
        raise BadRequest(f"sort must be one of {', '.join(FIXED)}, p:<param> or m:<metric>; "
                         f"got {column!r}")
    descending = choice_arg(request, "dir", ("asc", "desc"), "desc") == "desc"
    return column, descending


def list_runs(request: Request, dash: Dashboard) -> dict[str, Any]:
    """GET /api/runs: one page of the runs matching `q` (or the given `hash`es)."""
    column, descending = sort_args(request)
    offset = int_arg(request, "offset", 0, 0, 10**9)
    limit = int_arg(request, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    table = table_for(request, dash)
    shown = picked_columns(request, table)
    rows = sort_rows(table.rows, column, descending)[offset:offset + limit]
    return {
        "count": len(table.rows), "offset": offset, "limit": limit,
        "runs": [row_json(dash, row, shown) for row in rows],
        "columns": {"params": table.params, "metrics": table.metrics}, "shown": shown,
    }


def row_json(dash: Dashboard, row: Row, shown: dict[str, list[str]]) -> dict[str, Any]:
    """One row: properties with the live status, picked params, last values of metrics."""
    entry = {"props": row.props, "corrupted": row.status == "corrupted"}
    out = payload.run_props(row.hash, row.props, dash.repo.status_of(row.hash, entry))
    out["params"] = {k: row.flat.get(k) for k in shown["params"]}
    out["metrics"] = {k: row.lasts.get(k) for k in shown["metrics"]}
    return out


def runs_csv(request: Request, dash: Dashboard) -> Response:
    """GET /api/runs.csv: every run the table shows (all pages), its columns, its order."""
    column, descending = sort_args(request)
    table = table_for(request, dash)
    shown = picked_columns(request, table)
    titles = ["hash", "name", "experiment", "status", "creation_time", "end_time", "duration",
              *shown["params"], *shown["metrics"]]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(titles)
    for row in sort_rows(table.rows, column, descending):
        data = row_json(dash, row, shown)
        cells = [data[k] for k in titles[:7]]
        cells += [data["params"][k] for k in shown["params"]]
        cells += [data["metrics"][k] for k in shown["metrics"]]
        writer.writerow([csv_cell(v) for v in cells])
    headers = {"Content-Disposition": 'attachment; filename="runs.csv"'}
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8", headers=headers)


def csv_cell(value: Any) -> str:
    """A CSV cell: empty for None, JSON for lists and dicts, repr-exact numbers, and text a
    spreadsheet would run as a formula (``=``, ``+``, ``-``, ``@``) quoted with ``'``."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return payload.compact_json(value)
    return str(text_cell(value))


def catalog_entry(dash: Dashboard, run_hash: str) -> dict[str, Any]:
    """The catalog entry of one run; RunNotFoundError (404) when the catalog lacks it."""
    entry = load_entries(dash.repo, [run_hash]).get(run_hash)
    if not isinstance(entry, dict):
        raise RunNotFoundError(f"No run {run_hash!r} in {dash.repo.path}.")
    return entry


def get_run(request: Request, dash: Dashboard) -> dict[str, Any]:
    """GET /api/runs/{hash}: properties, the params tree and the sequences' summaries."""
    run_hash = request.path_params["hash"]
    entry = catalog_entry(dash, run_hash)
    row = prepare_row(run_hash, entry)
    run = dash.repo.get_run(run_hash)
    if run is None:  # deleted since the catalog was read
        raise dash.repo.not_found(run_hash)
    sequences = entry.get("sequences") if isinstance(entry.get("sequences"), list) else []
    summaries = []
    for s in sequences:
        if isinstance(s, dict):
            summaries.append({**payload.summary(s), "kind": str(s.get("kind", "metric"))})
    return {
        "run": payload.run_props(run_hash, row.props, dash.repo.status_of(run_hash, entry)),
        "params": payload.clean(run.params),
        "sequences": sorted(summaries, key=lambda s: s["key"]),
    }


def write(action: str) -> Handler:
    """A handler for one write action (archive, unarchive, delete), guarded twice."""

    def handler(request: Request, dash: Dashboard) -> dict[str, Any]:
        if not dash.allow_writes:
            raise Forbidden("This dashboard is read-only; restart it with --allow-writes.")
        if request.headers.get(WRITE_HEADER) != "1":
            raise Forbidden(f"Write requests need the header {WRITE_HEADER}: 1.")
        run_hash = request.path_params["hash"]
        with dash.write_lock:
            catalog_entry(dash, run_hash)  # 404 for an unknown hash
            if action == "delete":
                dash.repo.delete_run(run_hash)
            else:
                set_archived(dash, run_hash, action == "archive")
        return {"hash": run_hash, "done": action}

    handler.__name__ = f"{action}_run"
    handler.__doc__ = f"{action} one run (only with --allow-writes)."
    return handler


def set_archived(dash: Dashboard, run_hash: str, archived: bool) -> None:
    """Archive or unarchive a run (closing it keeps how it had ended)."""
    run = Run(run_hash=run_hash, repo=dash.repo, system_tracking_interval=None,
              capture_terminal_logs=False)  # the dashboard's machine is not the run's
    try:
        run.archived = archived
    finally:
        run.close()


def routes() -> list[Route]:
    """The run routes."""
    return [
        Route("/api/info", endpoint(info)),
        Route("/api/runs", endpoint(list_runs)),
        Route("/api/runs.csv", endpoint(runs_csv)),
        Route("/api/runs/{hash}", endpoint(get_run), methods=["GET"]),
        Route("/api/runs/{hash}", endpoint(write("delete")), methods=["DELETE"]),
        Route("/api/runs/{hash}/archive", endpoint(write("archive")), methods=["POST"]),
        Route("/api/runs/{hash}/unarchive", endpoint(write("unarchive")), methods=["POST"]),
    ]
