"""What every API endpoint shares: the dashboard state, arguments, errors as JSON, and
running each handler on a worker thread within a time budget.

Handlers are plain functions `handler(request, dash) -> dict | Response`. They run on a
thread (never on the event loop) and the wait for them is bounded, so a slow query answers
503 after `query_seconds` while every other request is served meanwhile.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from aim_core import Repo
from aim_core.errors import QueryError, RunCorruptedError, RunLockedError, RunNotFoundError
from aim_core.ui.explore import OutOfTime
from aim_core.ui.run_table import RunTables
from aim_core.ui.series_cache import SeriesCache

QUERY_SECONDS = 20.0
"""How long the dashboard waits for one API answer before replying 503."""

WORKERS = 8
"""API handlers running at once; more requests wait for a free worker (within the budget)."""


class BadRequest(Exception):
    """A request argument is malformed or out of range (answered with 400)."""


class Forbidden(Exception):
    """A write was asked of a read-only dashboard (answered with 403)."""


@dataclass
class Dashboard:
    """What every endpoint needs: the repo, its caches, whether writes are allowed."""

    repo_path: str
    allow_writes: bool = False
    query_seconds: float = QUERY_SECONDS
    repo: Repo = field(init=False)
    write_lock: threading.Lock = field(default_factory=threading.Lock)
    tables: RunTables = field(init=False)
    series: SeriesCache = field(default_factory=SeriesCache)
    _limiter: anyio.CapacityLimiter | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.repo = Repo(self.repo_path)
        self.tables = RunTables(self.repo)

    def limiter(self) -> anyio.CapacityLimiter:
        """The worker limit (made inside the event loop, on first use)."""
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(WORKERS)
        return self._limiter

    def warm(self) -> None:
        """Prepare the table of all runs (the first page people open) ahead of the request."""
        from aim_core.query import query_runs

        with contextlib.suppress(Exception):  # a failure shows again, properly, on request
            self.tables.table("", lambda q, **kw: query_runs(self.repo, q, **kw))

    def query_options(self, func: Callable[..., Any]) -> dict[str, Any]:
        """`timeout=` for a query function that accepts it: the evaluator then stops itself
        (with a QueryError, 400) a little before the dashboard would give up waiting (503)."""
        return {"timeout": self.query_seconds * 0.9} if accepts_timeout(func) else {}


@functools.cache
def accepts_timeout(func: Callable[..., Any]) -> bool:
    """True when `func` takes a `timeout` keyword."""
    try:
        return "timeout" in inspect.signature(func).parameters
    except (TypeError, ValueError):
        return False


Handler = Callable[[Request, Dashboard], Any]


def endpoint(handler: Handler) -> Callable[[Request], Any]:
    """An async endpoint running `handler` on a worker thread, waiting at most the budget."""

    @functools.wraps(handler)
    async def wrapped(request: Request) -> Response:
        dash: Dashboard = request.app.state.dashboard
        request.state.deadline = time.monotonic() + dash.query_seconds
        call = functools.partial(answer, handler, request, dash)
        try:
            with anyio.fail_after(dash.query_seconds):
                return await anyio.to_thread.run_sync(
                    call, abandon_on_cancel=True, limiter=dash.limiter())
        except TimeoutError:
            return too_slow(dash)

    return wrapped


def answer(handler: Handler, request: Request, dash: Dashboard) -> Response:
    """Call a handler (on a worker thread); JSON its result, map errors to status codes."""
    try:
        result = handler(request, dash)
        return result if isinstance(result, Response) else JSONResponse(result)
    except (QueryError, BadRequest) as exc:
        return error(400, exc)
    except RecursionError:  # an argument nested deeper than any parser should follow
        return error(400, "A request argument is nested too deeply; send a flatter value.")
    except Forbidden as exc:
        return error(403, exc)
    except RunNotFoundError as exc:
        return error(404, exc)
    except RunLockedError as exc:
        return error(409, exc)
    except RunCorruptedError as exc:
        return error(500, exc)
    except OutOfTime:
        return too_slow(dash)


def too_slow(dash: Dashboard) -> JSONResponse:
    """503: the answer took longer than the dashboard's time budget."""
    return error(503, f"No answer within {dash.query_seconds:g} s, so the request was given "
                      "up; narrow the query (fewer runs or metrics) and try again.")


def error(status: int, exc: Exception | str) -> JSONResponse:
    """A JSON error body `{"error": message}`."""
    return JSONResponse({"error": str(exc)}, status_code=status)


def int_arg(request: Request, name: str, default: int, lower: int, upper: int) -> int:
    """An integer query argument within `[lower, upper]`; 400 otherwise."""
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"{name} must be an integer, got {raw!r}") from None
    if not lower <= value <= upper:
        raise BadRequest(f"{name} must be between {lower} and {upper}, got {value}")
    return value


def choice_arg(request: Request, name: str, choices: tuple[str, ...], default: str) -> str:
    """One of `choices`; 400 for anything else."""
    raw = request.query_params.get(name) or default
    if raw not in choices:
        raise BadRequest(f"{name} must be one of {', '.join(choices)}; got {raw!r}")
    return raw


def bool_arg(request: Request, name: str, default: bool) -> bool:
    """`1`/`0` (also true/false); 400 for anything else."""
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in ("1", "true", "yes"):
        return True
    if raw.lower() in ("0", "false", "no"):
        return False
    raise BadRequest(f"{name} must be 1 or 0, got {raw!r}")
