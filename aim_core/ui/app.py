"""The dashboard's Starlette app: the pages, their static files, plotly.js and the JSON API."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, Iterable
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    Response,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from aim_core.ui import api, pages
from aim_core.ui.api.handler import QUERY_SECONDS
from aim_core.ui.hosts import HostCheck

NO_CACHE = {"Cache-Control": "no-cache"}


def plotly_js() -> Path:
    """The plotly.min.js file shipped inside the installed `plotly` package."""
    spec = importlib.util.find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("The dashboard needs plotly: pip install 'aim-core[ui]'")
    folder = Path(next(iter(spec.submodule_search_locations)))
    path = folder / "package_data" / "plotly.min.js"
    if not path.is_file():
        raise RuntimeError(f"plotly is installed but {path} is missing; reinstall plotly")
    return path


def page_endpoint(page: pages.Page) -> Callable[[Request], Response]:
    """An endpoint serving one page."""

    def endpoint(request: Request) -> Response:
        return HTMLResponse(pages.render(page), headers=NO_CACHE)

    endpoint.__name__ = f"{page.name}_page"
    return endpoint


def vendor_plotly(request: Request) -> Response:
    """Serve plotly.js from the plotly package (cached: it only changes with the package)."""
    path = request.app.state.plotly_js
    if path is None:
        raise HTTPException(404, "plotly is not installed")
    headers = {"Cache-Control": "public, max-age=86400"}
    return FileResponse(path, media_type="text/javascript", headers=headers)


async def not_found(request: Request, exc: Exception) -> Response:
    """404 as JSON under /api/ (the pages expect `{"error": ...}`), as text elsewhere."""
    if request.url.path.startswith("/api/"):
        return JSONResponse({"error": f"No run or endpoint at {request.url.path}."}, 404)
    return PlainTextResponse("Not Found", 404)


def create_app(repo_path: str | os.PathLike[str], allow_writes: bool = False,
               allowed_hosts: Iterable[str] = (),
               query_seconds: float = QUERY_SECONDS) -> Starlette:
    """Build the dashboard app over the repo at `repo_path` (read-only unless `allow_writes`).

    Requests must name the dashboard in their Host header: loopback names, IP addresses or
    one of `allowed_hosts` (the server adds the address it listens on). API answers give up
    after `query_seconds` with a 503.
    """
    routes = [
        *(Route(page.route, page_endpoint(page)) for page in pages.PAGES),
        Route("/vendor/plotly.min.js", vendor_plotly),
        *api.routes(),
        Mount("/static", StaticFiles(directory=pages.STATIC), name="static"),
    ]
    middleware = [Middleware(HostCheck, allowed=tuple(allowed_hosts))]
    app = Starlette(routes=routes, middleware=middleware, exception_handlers={404: not_found})
    app.state.dashboard = api.Dashboard(os.fspath(repo_path), allow_writes, query_seconds)
    app.state.plotly_js = plotly_js()
    return app
