"""The terminal-logs endpoint: the lines a run captured, for the run page's Logs tab."""

from __future__ import annotations

from typing import Any

import numpy as np
from starlette.requests import Request
from starlette.routing import Route

from aim_core.errors import RunNotFoundError
from aim_core.ui.api.handler import BadRequest, Dashboard, endpoint, int_arg

MAX_LINES = 10_000


def get_logs(request: Request, dash: Dashboard) -> dict[str, Any]:
    """GET /api/runs/{hash}/logs?tail=N | since=S[&limit=N]: captured lines as
    ``[step, text]``: the last N, or from line S on (a line seen again may have changed: an
    unfinished line such as a progress bar is rewritten until it ends)."""
    run_hash = request.path_params["hash"]
    args = request.query_params
    if "tail" in args and "since" in args:
        raise BadRequest("give either tail or since, not both")
    run = dash.repo.get_run(run_hash)
    if run is None:
        raise RunNotFoundError(f"No run {run_hash!r} in this repo.")
    logs = run.get_terminal_logs()
    if logs is None:
        return {"run": run_hash, "count": 0, "first_step": None, "last_step": None,
                "lines": []}
    steps = logs.steps
    if "since" in args:
        since = int_arg(request, "since", 0, 0, 2**62)
        start = int(np.searchsorted(steps, since, side="left"))
        stop = start + int_arg(request, "limit", MAX_LINES, 1, MAX_LINES)
    else:
        stop = len(steps)
        start = max(stop - int_arg(request, "tail", 1000, 1, MAX_LINES), 0)
    lines = [[int(steps[i]), logs.value_at(i).data] for i in range(start, min(stop, len(steps)))]
    return {"run": run_hash, "count": len(steps),
            "first_step": int(steps[0]) if len(steps) else None,
            "last_step": int(steps[-1]) if len(steps) else None, "lines": lines}


def routes() -> list[Route]:
    """The logs route."""
    return [Route("/api/runs/{hash}/logs", endpoint(get_logs))]
