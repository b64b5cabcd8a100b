"""The compare endpoint: chosen runs' params side by side and the metrics they share."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.routing import Route

from aim_core.errors import RunNotFoundError
from aim_core.query.catalog import load_entries
from aim_core.ui import payload
from aim_core.ui.api.handler import BadRequest, Dashboard, endpoint
from aim_core.ui.run_table import is_system, prepare_row

MAX_RUNS = 50


def compare(request: Request, dash: Dashboard) -> dict[str, Any]:
    """GET /api/compare?run=H1&run=H2...: runs, `params` rows with `differs`, shared metrics."""
    hashes = list(dict.fromkeys(request.query_params.getlist("run")))
    if not 1 <= len(hashes) <= MAX_RUNS:
        raise BadRequest(f"give 1 to {MAX_RUNS} runs: /api/compare?run=<hash>&run=<hash>")
    entries = load_entries(dash.repo, hashes)
    missing = [h for h in hashes if not isinstance(entries.get(h), dict)]
    if missing:
        raise RunNotFoundError(f"No run {missing[0]!r} in {dash.repo.path}.")
    rows = [prepare_row(h, entries[h]) for h in hashes]
    keys = sorted({key for row in rows for key in row.flat})
    params = []
    for key in keys:
        values = [row.flat.get(key) for row in rows]
        texts = {payload.compact_json(v) for v in values}
        present = sum(key in row.flat for row in rows)
        params.append({"key": key, "values": values,
                       "differs": len(texts) > 1 or present < len(rows)})
    shared = {key for key, (name, _) in rows[0].metrics.items() if not is_system(name)}
    for row in rows[1:]:
        shared &= set(row.lasts)
    runs = []
    for h, row in zip(hashes, rows, strict=True):
        runs.append(payload.run_props(h, row.props, dash.repo.status_of(h, entries[h])))
    return {"runs": runs, "params": params,
            "metrics": [{"key": key, "name": rows[0].metrics[key][0],
                         "context": rows[0].metrics[key][1]} for key in sorted(shared)]}


def routes() -> list[Route]:
    """The compare route."""
    return [Route("/api/compare", endpoint(compare))]
