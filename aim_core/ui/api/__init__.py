"""The dashboard's JSON API under `/api/`: one module per area, each with `routes()`.

To add an area (say images), write `aim_core/ui/api/images.py` with handlers
`handler(request, dash) -> dict | Response` wrapped by `handler.endpoint` and a `routes()`
function, then add the module to `MODULES` below.
"""

from __future__ import annotations

from starlette.routing import Route

from aim_core.ui.api import compare, logs, metrics, objects, runs
from aim_core.ui.api.handler import Dashboard, endpoint

MODULES = (runs, metrics, compare, objects, logs)

__all__ = ["MODULES", "Dashboard", "endpoint", "routes"]


def routes() -> list[Route]:
    """Every `/api/` route of every module."""
    return [route for module in MODULES for route in module.routes()]
