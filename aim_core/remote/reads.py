"""The server's read-only endpoints: runs, one run, a sequence's points, AimQL queries.

They back ``Repo("aim://...")``; the query runs here, next to the catalog, and only the
matches travel.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..context import canonical_context
from ..errors import RunNotFoundError
from ..repo import Repo
from ..run import check_hash
from .protocol import SERIES_TYPE, encode_series
from .responses import BadRequest, endpoint


def _repo(request: Request) -> Repo:
    return request.app.state.repo


def _hash(request: Request) -> str:
    return check_hash(request.path_params["hash"])


def _with_status(repo: Repo, run_hash: str, entry: dict[str, Any]) -> dict[str, Any]:
    return {**entry, "status": repo.status_of(run_hash, entry)}


def list_runs(request: Request) -> Any:
    """Every run's catalog entry with its status."""
    repo = _repo(request)
    return {"runs": [[h, _with_status(repo, h, e)] for h, e in repo.catalog_entries()]}


def get_run(request: Request) -> Any:
    """One run's catalog entry with its status."""
    repo, run_hash = _repo(request), _hash(request)
    entry = repo.catalog.get(run_hash)
    if entry is None:
        raise repo.not_found(run_hash)
    if entry.get("file_params"):  # some params live in the run file only (system params)
        run = repo.get_run(run_hash)
        if run is not None:
            entry = {**entry, "params": run.params}
    return _with_status(repo, run_hash, entry)


def get_series(request: Request) -> Response:
    """The stored points of one sequence, as binary columns."""
    repo, run_hash = _repo(request), _hash(request)
    name = request.query_params.get("name")
    try:
        context = canonical_context(json.loads(request.query_params.get("context") or "{}"))
    except (ValueError, TypeError) as exc:
        raise BadRequest(f"context must be a JSON object of scalars ({exc})") from None
    if not name:
        raise BadRequest("name is required")
    run = repo.get_run(run_hash)
    metric = run.get_metric(name, context) if run is not None else None
    if metric is None:
        raise RunNotFoundError(f"Run {run_hash} has no metric {name!r} with context {context}.")
    columns = tuple(np.asarray(column) for column in (
        metric.steps, metric.values, metric.epochs, metric.timestamps))
    return Response(encode_series(columns), media_type=SERIES_TYPE)


def _query_options(request: Request) -> dict[str, Any]:
    """``q`` and the optional ``timeout`` (seconds) and ``offset`` (a run hash)."""
    params = request.query_params
    options: dict[str, Any] = {"report_mode": 0}  # no progress bar on the server
    if params.get("timeout"):
        try:
            options["timeout"] = float(params["timeout"])
        except ValueError:
            raise BadRequest("timeout must be a number of seconds") from None
    if params.get("offset"):
        options["offset"] = check_hash(params["offset"])
    return options


def query_runs(request: Request) -> Any:
    """Runs matching ``q``: ``[[hash, entry with status], ...]``."""
    repo = _repo(request)
    matches = repo.query_runs(request.query_params.get("q", ""), **_query_options(request))
    return {"runs": [[m.hash, {**m.entry, "status": m.status}] for m in matches]}


def query_metrics(request: Request) -> Any:
    """Metrics matching ``q``: ``[[hash, entry with status, [summaries]], ...]``."""
    repo = _repo(request)
    found = repo.query_metrics(request.query_params.get("q", ""), **_query_options(request))
    matches = []
    for run_metrics in found.iter_runs():
        entry = repo.catalog.get(run_metrics.hash)
        if entry is not None:
            matches.append([run_metrics.hash, _with_status(repo, run_metrics.hash, entry),
                            run_metrics.sequences])
    return {"matches": matches}


def routes() -> list[Route]:
    """The read routes (mounted under ``/remote/v1``)."""
    return [
        Route("/runs", endpoint(list_runs)),
        Route("/runs/{hash}", endpoint(get_run)),
        Route("/runs/{hash}/series", endpoint(get_series)),
        Route("/query/runs", endpoint(query_runs)),
        Route("/query/metrics", endpoint(query_metrics)),
    ]
