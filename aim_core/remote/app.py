"""The tracking server's ASGI app: write endpoints, read endpoints, optionally the dashboard.

Everything lives under ``/remote/v1`` (the dashboard, with ``--ui``, under ``/``), behind
:class:`~aim_core.remote.security.TokenGuard`:

- ``POST /runs/{hash}/batches``: a batch (see :mod:`.protocol`); answered once durable with
  ``{"applied": bool, "seq": n}`` (``applied`` is false for a batch already applied).
- ``POST /runs/{hash}/heartbeat?session=S&interval=SECONDS``: the session is alive.
- ``GET /runs/{hash}/state``: params, props and sequences for a client that resumes the run.
- ``GET /info``, and the reads of :mod:`.reads`.

Errors: ``{"error": message}`` with 400 (malformed), 401 (token), 404 (unknown run),
409 (another session holds the run), 413 (body too large), 503 (try again).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Iterable
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

from .. import __version__
from ..repo import Repo
from ..run import check_hash
from ..ui.hosts import HostCheck  # the dashboard's DNS-rebinding guard
from . import reads
from . import server_storage as storage
from .live_runs import LiveRuns
from .protocol import VERSION, BatchError, decode_batch
from .responses import BadRequest, Json, TooLarge, answer_error, endpoint
from .security import TokenGuard

DEFAULT_MAX_BODY = 64 << 20
INFLATE_FACTOR = 8  # a batch may inflate to this many times the body limit


async def post_batch(request: Request) -> Response:
    """Apply one batch, answering once it is durable."""
    state = request.app.state
    try:
        run_hash = check_hash(request.path_params["hash"])
        body = await _read_body(request, state.max_body)
        batch = await run_in_threadpool(decode_batch, body, state.max_body * INFLATE_FACTOR)
        if batch.run != run_hash:
            raise BatchError(f"batch is for run {batch.run}, posted to run {run_hash}")
        return Json(await run_in_threadpool(state.live.apply, batch))
    except Exception as exc:
        return answer_error(exc)


async def _read_body(request: Request, limit: int) -> bytes:
    parts, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"request body over the server's limit of {limit} bytes")
        parts.append(chunk)
    return b"".join(parts)


def heartbeat(request: Request) -> Any:
    """Keep a session's run alive (or re-attach it after a server restart)."""
    run_hash = check_hash(request.path_params["hash"])
    session = request.query_params.get("session") or ""
    try:
        interval = float(request.query_params.get("interval", "10"))
    except ValueError:
        raise BadRequest("interval must be a number of seconds") from None
    if not (0 < interval <= 3600):
        raise BadRequest("interval must be in (0, 3600] seconds")
    request.app.state.live.heartbeat(run_hash, session, interval)
    return {"ok": True}


def run_state(request: Request) -> Any:
    """What a resuming client needs, and who holds the run now (if anyone)."""
    repo: Repo = request.app.state.repo
    run_hash = check_hash(request.path_params["hash"])
    if not storage.run_exists(repo, run_hash):
        raise repo.not_found(run_hash)
    props, params, sequences = storage.read_state(repo, run_hash)
    live_runs: LiveRuns = request.app.state.live
    live = live_runs.holder(run_hash)
    holder = dict(live.client) if live is not None else None
    if holder is None and not live_runs.holds(run_hash) and repo.status_of(
            run_hash, None) == "running":
        holder = {"host": "the server's host", "pid": -1}  # a local process writes it
    return {"props": props, "params": params, "sequences": sequences, "holder": holder}


def info(request: Request) -> Any:
    """Server and protocol version."""
    return {"server": "aim-core", "version": __version__, "protocol": VERSION,
            "repo": os.fspath(request.app.state.repo.path)}


def create_app(repo_path: str | os.PathLike[str], *, token: str | None = None,
               ui: bool = False, max_body: int = DEFAULT_MAX_BODY,
               allowed_hosts: Iterable[str] = ()) -> Any:
    """The server app over the repo at ``repo_path`` (created if missing).

    Without a token, requests must name the server by a loopback name, an IP address or one
    of ``allowed_hosts`` in their Host header (a web page cannot then reach the API by DNS
    rebinding); the dashboard always checks that.
    """
    repo = Repo(repo_path, init=True)
    live = LiveRuns(repo)
    api = [
        Route("/info", endpoint(info)),
        Route("/runs/{hash}/batches", post_batch, methods=["POST"]),
        Route("/runs/{hash}/heartbeat", endpoint(heartbeat), methods=["POST"]),
        Route("/runs/{hash}/state", endpoint(run_state)),
        *reads.routes(),
    ]
    routes = [Mount("/remote/v1", routes=api)]
    if ui:
        from ..ui.app import create_app as create_dashboard

        routes.append(Mount("/", app=create_dashboard(repo.path,
                                                      allowed_hosts=tuple(allowed_hosts))))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        live.start()
        try:
            yield
        finally:
            live.shutdown()

    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.repo, app.state.live, app.state.max_body = repo, live, max_body
    guarded = app if token else HostCheck(app, allowed=tuple(allowed_hosts))
    return TokenGuard(guarded, token, max_body)
